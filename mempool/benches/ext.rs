//! Packet extension costs, in ns and TSC cycles per operation.
//!
//! `cargo bench -p mempool --bench ext` (add `-- --quick` for a short run, `-- --batch 4096`
//! for packets whose headers are no longer in cache; the default batch is 256). EAL runs
//! `--no-huge -l 0` on this thread, so mempool per-lcore caches are in use, as on a worker.
//! Each row times one operation over a batch of packets, many rounds; the median round is
//! reported, with the fastest one next to it.
//!
//! The first rows run before the framework is started (the hooks see offset -1); the same
//! rows run again after `start`, on packets without extensions, to show what the
//! framework costs packets that do not use it. The raw C rows (no hooks at all) run in
//! both phases as a control for drift.

use std::ffi::CString;
use std::hint::black_box;
use std::time::Instant;

use mempool::ext;
use mempool::{Burst, ExtParams, ExtRegistry, Mbuf, Pool, PoolParams, SocketId};

#[allow(dead_code)] // only the size matters
#[derive(Clone, Copy, Default)]
struct Trace {
    tsc: u64,
    lcore: u16,
    queue: u16,
}

#[allow(dead_code)]
#[derive(Clone, Copy, Default)]
struct Flow {
    class: u8,
    l3: u16,
    l4: u16,
    hash: u32,
}

struct Bench {
    batch: usize,
    rounds: usize,
    tsc_hz: f64,
    rows: Vec<(String, f64, f64, f64)>,
}

impl Bench {
    /// Runs `setup` (untimed) then `timed` over `batch` items, `rounds` times; records
    /// ns/op (median, min) and cycles/op (median). `cleanup` runs untimed after each round.
    fn run<S>(
        &mut self,
        name: &str,
        mut setup: impl FnMut(usize) -> S,
        mut timed: impl FnMut(&mut S),
        mut cleanup: impl FnMut(S),
    ) {
        let mut ns = Vec::with_capacity(self.rounds);
        let mut cyc = Vec::with_capacity(self.rounds);
        for round in 0..self.rounds + 3 {
            let mut s = setup(self.batch);
            // SAFETY: reads the TSC.
            let c0 = unsafe { dpdk_sys::dp_rdtsc() };
            let t0 = Instant::now();
            timed(&mut s);
            let el = t0.elapsed();
            // SAFETY: as above.
            let c1 = unsafe { dpdk_sys::dp_rdtsc() };
            cleanup(s);
            if round >= 3 {
                ns.push(el.as_nanos() as f64 / self.batch as f64);
                cyc.push((c1 - c0) as f64 / self.batch as f64);
            }
        }
        ns.sort_by(f64::total_cmp);
        cyc.sort_by(f64::total_cmp);
        let (med, min, cmed) = (ns[ns.len() / 2], ns[0], cyc[cyc.len() / 2]);
        println!("{name:<52} {med:>8.2} {min:>8.2} {cmed:>9.1}");
        self.rows.push((name.to_owned(), med, min, cmed));
    }

    fn median(&self, name: &str) -> f64 {
        self.rows.iter().find(|r| r.0 == name).map(|r| r.1).unwrap()
    }
}

fn eal() {
    let prefix = format!("ext-bench-{}", std::process::id());
    let args = [
        "ext-bench",
        "--no-huge",
        "--no-shconf",
        "-m",
        "512",
        "--no-pci",
        "-l",
        "0",
        "--log-level",
        "lib.eal:error",
        "--file-prefix",
        &prefix,
    ];
    let cargs: Vec<CString> = args.iter().map(|a| CString::new(*a).unwrap()).collect();
    let mut argv: Vec<*mut std::os::raw::c_char> = cargs.iter().map(|a| a.as_ptr() as *mut _).collect();
    // SAFETY: argv points at NUL-terminated strings that outlive the call (leaked below).
    let ret = unsafe { dpdk_sys::rte_eal_init(argv.len() as i32, argv.as_mut_ptr()) };
    assert!(ret >= 0, "rte_eal_init failed");
    // With --no-shconf nothing is shared through the runtime directory EAL made
    // (/var/run/dpdk/PREFIX as root): removed now, as the process never cleans EAL up.
    let _ = std::fs::remove_dir_all(format!("/var/run/dpdk/{prefix}"));
    std::mem::forget(cargs);
}

fn alloc_n(p: &Pool, n: usize) -> Vec<Mbuf> {
    (0..n).map(|_| Mbuf::alloc(p).unwrap()).collect()
}

fn alloc_raw(p: &Pool, n: usize) -> Vec<*mut dpdk_sys::rte_mbuf> {
    // SAFETY: the pool is valid; each pointer is an owned mbuf or the unwrap fails.
    (0..n).map(|_| unsafe { dpdk_sys::dp_pktmbuf_alloc(p.as_ptr()) }).inspect(|m| assert!(!m.is_null())).collect()
}

fn free_raw(v: Vec<*mut dpdk_sys::rte_mbuf>) {
    for m in v {
        // SAFETY: each pointer is an owned mbuf, freed once.
        unsafe { dpdk_sys::dp_pktmbuf_free(m) };
    }
}

/// The rows measured in both phases: free and clone of packets without extensions.
fn plain_rows(b: &mut Bench, p: &Pool, phase: &str) {
    b.run(
        &format!("free, raw C rte_pktmbuf_free (no hook) [{phase}]"),
        |n| alloc_raw(p, n),
        |v| {
            for m in v.drain(..) {
                // SAFETY: owned, freed once.
                unsafe { dpdk_sys::dp_pktmbuf_free(black_box(m)) };
            }
        },
        drop,
    );
    b.run(
        &format!("free, Mbuf::drop, no extension [{phase}]"),
        |n| alloc_n(p, n),
        |v| {
            for m in v.drain(..) {
                drop(black_box(m));
            }
        },
        drop,
    );
    b.run(
        &format!("clone, raw C rte_pktmbuf_clone (no hook) [{phase}]"),
        |n| (alloc_raw(p, n), Vec::with_capacity(n)),
        |(src, out)| {
            for &m in src.iter() {
                // SAFETY: m is a valid mbuf; the clone is owned by `out`.
                out.push(unsafe { dpdk_sys::rte_pktmbuf_clone(black_box(m), p.as_ptr()) });
            }
        },
        |(src, out)| {
            free_raw(out);
            free_raw(src);
        },
    );
    b.run(
        &format!("clone, Mbuf::clone_in, no extension [{phase}]"),
        |n| (alloc_n(p, n), Vec::with_capacity(n)),
        |(src, out)| {
            for m in src.iter() {
                out.push(black_box(m).clone_in(p).unwrap());
            }
        },
        |(src, out)| {
            // Same order as the raw row: clones first, so the lcore cache ends up alike.
            drop(out);
            drop(src);
        },
    );
    b.run(
        &format!("Burst::release_extensions per pkt, none [{phase}]"),
        |n| {
            let mut v: Vec<Burst> = (0..n / 32).map(|_| Burst::new()).collect();
            for burst in &mut v {
                p.alloc_bulk(burst, 32).unwrap();
            }
            v
        },
        |v| {
            for burst in v.iter_mut() {
                black_box(burst).release_extensions();
            }
        },
        drop,
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    // Packets per timed batch: 256 keeps their headers in L1/L2, as a 32-packet burst is
    // in the forwarder; 4096 shows cache-cold costs.
    let batch =
        args.iter().position(|a| a == "--batch").and_then(|i| args.get(i + 1)).map_or(256, |v| v.parse().expect("--batch N"));
    eal();
    // SAFETY: EAL is initialised; a read of the calibrated TSC frequency.
    let tsc_hz = unsafe { dpdk_sys::rte_get_tsc_hz() } as f64;
    let p = Pool::create(&PoolParams {
        name: "bench_mbufs".into(),
        size: 16383,
        cache: 512,
        priv_size: 0,
        data_room: 2176,
        socket: SocketId::ANY,
    })
    .unwrap();
    let rounds = if quick { 50 } else { (1_200_000 / batch).clamp(100, 5000) };
    let mut b = Bench { batch, rounds, tsc_hz, rows: Vec::new() };
    println!(
        "TSC {:.2} GHz, batch {} packets, {} rounds; ns/op median and min, cycles/op median",
        tsc_hz / 1e9,
        b.batch,
        b.rounds
    );
    println!("{:<52} {:>8} {:>8} {:>9}", "operation", "ns", "min ns", "cycles");

    plain_rows(&mut b, &p, "not started");

    let mut r = ExtRegistry::new();
    let trace = r.register::<Trace>("trace").unwrap();
    let flow = r.register::<Flow>("flow").unwrap();
    let ext = r.start(&ExtParams { name: "bench_ext".into(), areas: 16383, cache: 512, socket: SocketId::ANY }).unwrap();
    println!("-- framework started: area {} bytes, dynfield at offset {}", ext.area_size(), ext.dynfield_offset());

    plain_rows(&mut b, &p, "started");

    let with_trace = |n: usize| {
        let mut v = alloc_n(&p, n);
        for (i, m) in v.iter_mut().enumerate() {
            ext::set(m, trace, Trace { tsc: i as u64, lcore: 0, queue: 0 }).unwrap();
        }
        v
    };
    b.run(
        "add, first extension (takes an area)",
        |n| alloc_n(&p, n),
        |v| {
            for m in v.iter_mut() {
                ext::add(black_box(m), trace).unwrap().tsc = 1;
            }
        },
        drop,
    );
    b.run(
        "add, second extension (area already there)",
        with_trace,
        |v| {
            for m in v.iter_mut() {
                ext::add(black_box(m), flow).unwrap().hash = 1;
            }
        },
        drop,
    );
    b.run(
        "set, overwrite, exclusive area",
        with_trace,
        |v| {
            for m in v.iter_mut() {
                ext::set(black_box(m), trace, Trace::default()).unwrap();
            }
        },
        drop,
    );
    b.run(
        "get, active",
        with_trace,
        |v| {
            let mut sum = 0;
            for m in v.iter() {
                sum += ext::get(black_box(m), trace).map_or(0, |t| t.tsc);
            }
            black_box(sum);
        },
        drop,
    );
    b.run(
        "get, not active (bit test)",
        |n| alloc_n(&p, n),
        |v| {
            let mut sum = 0;
            for m in v.iter() {
                sum += ext::get(black_box(m), trace).map_or(0, |t| t.tsc);
            }
            black_box(sum);
        },
        drop,
    );
    b.run(
        "get_mut, exclusive area (no copy)",
        with_trace,
        |v| {
            for m in v.iter_mut() {
                ext::get_mut(black_box(m), trace).unwrap().unwrap().lcore = 1;
            }
        },
        drop,
    );
    b.run(
        "clone, Mbuf::clone_in, with area (refcnt + 1)",
        |n| (with_trace(n), Vec::with_capacity(n)),
        |(src, out)| {
            for m in src.iter() {
                out.push(black_box(m).clone_in(&p).unwrap());
            }
        },
        |(src, out)| {
            drop(out);
            drop(src);
        },
    );
    b.run(
        "COW write: get_mut on a shared area (copy)",
        |n| {
            let src = with_trace(n);
            let clones: Vec<Mbuf> = src.iter().map(|m| m.clone_in(&p).unwrap()).collect();
            (src, clones)
        },
        |(_, clones)| {
            for m in clones.iter_mut() {
                ext::get_mut(black_box(m), trace).unwrap().unwrap().lcore = 2;
            }
        },
        drop,
    );
    b.run(
        "free, Mbuf::drop, with area (refcnt 1: no RMW)",
        with_trace,
        |v| {
            for m in v.drain(..) {
                drop(black_box(m));
            }
        },
        drop,
    );
    b.run(
        "free, Mbuf::drop, shared area (atomic dec)",
        |n| {
            let src = with_trace(n);
            let clones: Vec<Mbuf> = src.iter().map(|m| m.clone_in(&p).unwrap()).collect();
            (src, clones)
        },
        |(src, _)| {
            for m in src.drain(..) {
                drop(black_box(m));
            }
        },
        drop,
    );
    b.run(
        "del, last extension (area freed)",
        with_trace,
        |v| {
            for m in v.iter_mut() {
                ext::del(black_box(m), trace);
            }
        },
        drop,
    );
    b.run(
        "Burst::release_extensions per pkt, with areas",
        |n| {
            let mut v: Vec<Burst> = (0..n / 32).map(|_| Burst::new()).collect();
            for burst in &mut v {
                p.alloc_bulk(burst, 32).unwrap();
                for m in burst.as_mut_slice() {
                    ext::add(m, trace).unwrap();
                }
            }
            v
        },
        |v| {
            for burst in v.iter_mut() {
                black_box(burst).release_extensions();
            }
        },
        drop,
    );

    assert_eq!(ext.stats().in_use, 0, "the bench leaked areas");
    assert!(p.is_full(), "the bench leaked mbufs");

    println!();
    println!("No-extension fast path, started minus not started (median ns/op; raw C rows are the drift control):");
    for what in [
        "free, raw C rte_pktmbuf_free (no hook)",
        "free, Mbuf::drop, no extension",
        "clone, raw C rte_pktmbuf_clone (no hook)",
        "clone, Mbuf::clone_in, no extension",
        "Burst::release_extensions per pkt, none",
    ] {
        let (a, s) = (b.median(&format!("{what} [not started]")), b.median(&format!("{what} [started]")));
        println!("  {what:<48} {a:>7.2} -> {s:>7.2}  ({:+.2} ns, {:+.1} cycles)", s - a, (s - a) * b.tsc_hz / 1e9);
    }
}
