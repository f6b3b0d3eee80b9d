//! Pools, mbufs, bursts and rings against a real EAL (`--no-huge --no-pci`, started once
//! for this test binary). Every test checks that its pool is full again at the end.

use std::ffi::CString;
use std::sync::OnceLock;

use mempool::{Burst, Mbuf, MbufError, MbufRing, Pool, PoolError, PoolParams, RingError, SocketId};

fn eal() {
    static EAL: OnceLock<()> = OnceLock::new();
    EAL.get_or_init(|| {
        let prefix = format!("mempool-test-{}", std::process::id());
        let args = [
            "mempool-test",
            "--no-huge",
            "--no-shconf",
            "-m",
            "256",
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
        // SAFETY: argv points at NUL-terminated strings that outlive the call (EAL keeps
        // pointers into them, so they are leaked below); EAL is initialised once per process.
        let ret = unsafe { dpdk_sys::rte_eal_init(argv.len() as i32, argv.as_mut_ptr()) };
        assert!(ret >= 0, "rte_eal_init failed");
        // With --no-shconf nothing is shared through the runtime directory EAL made
        // (/var/run/dpdk/PREFIX as root): removed now, as the process never cleans EAL up.
        let _ = std::fs::remove_dir_all(format!("/var/run/dpdk/{prefix}"));
        std::mem::forget(cargs);
    });
}

fn pool(name: &str, size: u32) -> Pool {
    eal();
    Pool::create(&PoolParams { name: name.into(), size, cache: 0, priv_size: 0, data_room: 2176, socket: SocketId::ANY }).unwrap()
}

#[test]
fn alloc_write_free_returns_everything() {
    let p = pool("t_alloc", 64);
    assert_eq!(p.stats().in_use, 0);
    let mut m = Mbuf::alloc(&p).unwrap();
    assert_eq!(m.data_len(), 0);
    m.set_data(&[1, 2, 3, 4]).unwrap();
    assert_eq!(m.data(), &[1, 2, 3, 4]);
    m.data_mut().unwrap()[0] = 9;
    assert_eq!(m.data(), &[9, 2, 3, 4]);
    assert_eq!(m.pkt_len(), 4);
    assert_eq!(p.stats().in_use, 1);
    m.set_user_tag(0xdead_beef);
    assert_eq!(m.user_tag(), 0xdead_beef, "the application's tag");
    assert_eq!(m.data(), &[9, 2, 3, 4], "beside the data");
    drop(m);
    assert!(p.is_full());
}

#[test]
fn exhaustion_is_typed_and_recovers() {
    let p = pool("t_exhaust", 40);
    let mut held = Vec::new();
    loop {
        match Mbuf::alloc(&p) {
            Ok(m) => held.push(m),
            Err(e) => {
                assert!(matches!(e, PoolError::Exhausted { wanted: 1, .. }), "{e}");
                break;
            }
        }
    }
    assert_eq!(held.len(), 40);
    assert_eq!(p.stats().available, 0);
    held.clear();
    assert!(p.is_full());
    assert!(Mbuf::alloc(&p).is_ok());
}

#[test]
fn bulk_alloc_is_all_or_nothing_and_burst_drop_frees() {
    let p = pool("t_bulk", 48);
    {
        let mut b: Burst = Burst::new();
        p.alloc_bulk(&mut b, 32).unwrap();
        assert_eq!(b.len(), 32);
        assert_eq!(p.stats().in_use, 32);
        let mut c: Burst = Burst::new();
        let err = p.alloc_bulk(&mut c, 20).unwrap_err();
        assert!(matches!(err, PoolError::Exhausted { wanted: 20, .. }));
        assert!(c.is_empty());
        assert_eq!(p.stats().in_use, 32, "a failed bulk alloc takes nothing");
        // More than the burst's room is refused without touching the pool.
        assert!(p.alloc_bulk(&mut b, 1).is_err());
    }
    assert!(p.is_full(), "dropping a burst frees what it holds");
}

#[test]
fn retain_and_pop_keep_ownership_straight() {
    let p = pool("t_retain", 64);
    let mut b: Burst<8> = Burst::new();
    for i in 0..8u8 {
        let mut m = Mbuf::alloc(&p).unwrap();
        m.set_data(&[i]).unwrap();
        b.push(m).unwrap();
    }
    let extra = Mbuf::alloc(&p).unwrap();
    let extra = b.push(extra).unwrap_err();
    drop(extra);
    let mut rejected = Vec::new();
    b.retain(|m| m.data()[0] % 2 == 0, |m| rejected.push(m.data()[0]));
    assert_eq!(rejected, vec![1, 3, 5, 7]);
    let kept: Vec<u8> = b.as_slice().iter().map(|m| m.data()[0]).collect();
    assert_eq!(kept, vec![0, 2, 4, 6]);
    assert_eq!(b.pop().unwrap().data(), &[6]);
    assert_eq!(p.stats().in_use, 3);
    drop(b);
    assert!(p.is_full());
}

#[test]
fn clone_shares_data_and_blocks_writes() {
    let p = pool("t_clone", 16);
    let mut a = Mbuf::alloc(&p).unwrap();
    a.set_data(b"hello").unwrap();
    let c = a.clone_in(&p).unwrap();
    assert_eq!(c.data(), b"hello");
    assert_eq!(a.refcnt(), 2);
    assert!(a.data_mut().is_none(), "shared data is read-only");
    assert_eq!(a.set_data(b"x"), Err(MbufError::Shared));
    assert_eq!(a.data(), b"hello", "a refused set_data leaves the packet alone");
    assert_eq!(p.stats().in_use, 2);
    drop(a);
    assert_eq!(c.data(), b"hello", "the clone keeps the data alive");
    assert_eq!(p.stats().in_use, 2, "the direct mbuf stays until its clone goes");
    drop(c);
    assert!(p.is_full());
}

#[test]
fn ring_moves_mbufs_and_frees_leftovers() {
    let p = pool("t_ring", 64);
    let ring = MbufRing::create("t_ring_r", 16, SocketId::ANY).unwrap();
    let mut b: Burst = Burst::new();
    p.alloc_bulk(&mut b, 20).unwrap();
    assert_eq!(ring.enqueue(&mut b), 15, "a ring of 16 holds 15");
    assert_eq!(b.len(), 5);
    let mut out: Burst<4> = Burst::new();
    assert_eq!(ring.dequeue(&mut out), 4);
    assert_eq!(ring.len(), 11);
    drop(out);
    drop(b);
    assert_eq!(p.stats().in_use, 11);
    drop(ring);
    assert!(p.is_full(), "dropping a ring frees what it holds");
    assert!(matches!(MbufRing::create("t_ring_bad", 10, SocketId::ANY), Err(RingError::Invalid { .. })));
    let _dup = MbufRing::create("t_ring_dup", 16, SocketId::ANY).unwrap();
    match MbufRing::create("t_ring_dup", 16, SocketId::ANY) {
        Err(RingError::Dpdk { ring, error }) => assert_eq!((ring.as_str(), error.errno), ("t_ring_dup", libc::EEXIST)),
        other => panic!("a duplicate ring name: {other:?}"),
    }
    let mut m = Mbuf::alloc(&p).unwrap();
    assert_eq!(m.set_data(&[0; 70_000]), Err(MbufError::DoesNotFit { len: 70_000 }));
    assert_eq!(m.set_data(&[0; 2049]), Err(MbufError::DoesNotFit { len: 2049 }), "2048 bytes after the headroom");
    m.set_data(&[7; 2048]).unwrap();
}

#[test]
fn pool_errors_come_from_dpdk() {
    let p = pool("t_dup", 16);
    let err = Pool::create(&PoolParams {
        name: "t_dup".into(),
        size: 16,
        cache: 0,
        priv_size: 0,
        data_room: 2176,
        socket: SocketId::ANY,
    })
    .unwrap_err();
    match err {
        PoolError::Dpdk(e) => assert_eq!(e.errno, libc::EEXIST, "{e}"),
        other => panic!("unexpected {other}"),
    }
    assert_eq!(p.dpdk_name(), "t_dup");
}

#[test]
fn unshare_copies_a_shared_packet_once() {
    let p = pool("t_unshare", 16);
    let mut a = Mbuf::alloc(&p).unwrap();
    a.set_data(b"abcd").unwrap();
    let c = a.clone_in(&p).unwrap();
    a.unshare(&p).unwrap()[0] = b'X';
    assert_eq!(a.data(), b"Xbcd");
    assert_eq!(c.data(), b"abcd", "the clone keeps the original bytes");
    assert!(a.is_exclusive());
    let before = p.stats().in_use;
    a.unshare(&p).unwrap()[1] = b'Y';
    assert_eq!(p.stats().in_use, before, "an exclusive packet is not copied again");
    drop((a, c));
    assert!(p.is_full());
}

#[test]
fn drain_yields_in_order_and_frees_the_rest() {
    let p = pool("t_drain", 64);
    let mut b: Burst<8> = Burst::new();
    for i in 0..8u8 {
        let mut m = Mbuf::alloc(&p).unwrap();
        m.set_data(&[i]).unwrap();
        b.push(m).unwrap();
    }
    let firsts: Vec<u8> = b.drain().take(3).map(|m| m.data()[0]).collect();
    assert_eq!(firsts, vec![0, 1, 2]);
    assert!(b.is_empty());
    assert!(p.is_full(), "the five not taken were freed with the Drain");

    let mut src: Burst<8> = Burst::new();
    let mut dst: Burst<4> = Burst::new();
    for i in 0..6u8 {
        let mut m = Mbuf::alloc(&p).unwrap();
        m.set_data(&[i]).unwrap();
        src.push(m).unwrap();
    }
    assert_eq!(dst.move_from(&mut src), 4);
    assert_eq!(dst.as_slice().iter().map(|m| m.data()[0]).collect::<Vec<_>>(), vec![0, 1, 2, 3]);
    assert_eq!(src.as_slice().iter().map(|m| m.data()[0]).collect::<Vec<_>>(), vec![4, 5]);
    assert_eq!(dst.move_from(&mut src), 0, "full");
    drop((src, dst));
    assert!(p.is_full());
}

/// A chain of `segs` segments holding `len` bytes each.
fn chain_of(p: &Pool, segs: usize, len: usize) -> Mbuf {
    let mut head = Mbuf::alloc(p).unwrap();
    head.set_data(&vec![0xab; len]).unwrap();
    for _ in 1..segs {
        let mut seg = Mbuf::alloc(p).unwrap();
        seg.set_data(&vec![0xcd; len]).unwrap();
        head.chain(seg).unwrap();
    }
    head
}

/// The three length fields of one segment, written directly, as a buggy PMD would.
fn set_lengths(m: &mut Mbuf, seg: usize, nb_segs: Option<u16>, pkt_len: Option<u32>, data_len: Option<u16>) {
    let mut raw = m.as_ptr();
    for _ in 0..seg {
        // SAFETY: `seg` is below the chain's real length (the callers pick it so), so each
        // `next` followed here is a valid segment this test owns.
        raw = unsafe { (*raw).next };
    }
    // SAFETY: raw is a valid segment of a chain this test owns and nothing else reads it
    // meanwhile; writing plain length fields cannot free or move anything.
    unsafe {
        if let Some(n) = nb_segs {
            (*raw).nb_segs = n;
        }
        if let Some(l) = pkt_len {
            (*raw).pkt_len = l;
        }
        if let Some(l) = data_len {
            (*raw).data_len = l;
        }
    }
}

#[test]
fn chains_whose_lengths_disagree_are_caught() {
    let p = pool("t_chain", 256);
    let one = chain_of(&p, 1, 60);
    assert!(one.chain_is_consistent());
    let mut c = chain_of(&p, 3, 1000);
    assert_eq!((c.nb_segs(), c.pkt_len(), c.data_len()), (3, 3000, 1000));
    assert!(c.chain_is_consistent());
    // net_pcap's bug: a 70,000-byte frame whose pkt_len was cut to 16 bits.
    let mut big = chain_of(&p, 35, 2000);
    assert!(big.chain_is_consistent());
    set_lengths(&mut big, 0, None, Some(70_000 & 0xffff), None);
    assert!(!big.chain_is_consistent(), "pkt_len truncated to 16 bits");
    // nb_segs that disagrees with the chain, either way.
    set_lengths(&mut c, 0, Some(2), None, None);
    assert!(!c.chain_is_consistent(), "nb_segs below the chain");
    set_lengths(&mut c, 0, Some(4), None, None);
    assert!(!c.chain_is_consistent(), "nb_segs above the chain");
    set_lengths(&mut c, 0, Some(3), None, None);
    assert!(c.chain_is_consistent(), "restored");
    // A segment's data_len that no longer adds up.
    set_lengths(&mut c, 2, None, None, Some(999));
    assert!(!c.chain_is_consistent(), "data_len of the last segment");
    // A single segment claiming more than it holds, or to be two.
    let mut s = chain_of(&p, 1, 60);
    set_lengths(&mut s, 0, None, Some(61), None);
    assert!(!s.chain_is_consistent());
    set_lengths(&mut s, 0, Some(2), Some(60), None);
    assert!(!s.chain_is_consistent());
    drop((one, c, big, s));
    assert!(p.is_full(), "every segment of every chain went back");
}

/// Random corruptions of random chains: the check says "consistent" exactly when the
/// lengths agree, never crashes, and every segment goes back to the pool.
#[test]
fn random_chain_corruptions_are_caught() {
    let p = pool("t_chain_fuzz", 512);
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let (mut caught, mut kept) = (0, 0);
    for _ in 0..2000 {
        let segs = 1 + next() as usize % 6;
        let len = 1 + next() as usize % 1500;
        let mut m = chain_of(&p, segs, len);
        let (mut nb, mut total, mut lens) = (segs as u16, (segs * len) as u32, vec![len as u16; segs]);
        match next() % 4 {
            0 => nb = (next() % 8) as u16,
            1 => total = (next() % 10_000) as u32,
            2 => {
                let i = next() as usize % segs;
                lens[i] = (next() % 2000) as u16;
            }
            _ => {}
        }
        set_lengths(&mut m, 0, Some(nb), Some(total), None);
        for (i, &l) in lens.iter().enumerate() {
            set_lengths(&mut m, i, None, None, Some(l));
        }
        let agree = usize::from(nb) == segs && u64::from(total) == lens.iter().map(|&l| u64::from(l)).sum::<u64>();
        assert_eq!(m.chain_is_consistent(), agree, "segs {segs} nb_segs {nb} pkt_len {total} data_len {lens:?}");
        if agree {
            kept += 1;
        } else {
            caught += 1;
        }
    }
    assert!(caught > 500 && kept > 200, "caught {caught} kept {kept}");
    assert!(p.is_full());
}

#[test]
fn rss_hash_only_when_the_pmd_set_one() {
    let p = pool("t_rss", 64);
    let mut m = Mbuf::alloc(&p).unwrap();
    assert_eq!(m.rss_hash(), None, "a fresh mbuf carries no RSS hash");
    // What a PMD with RSS does at RX: the hash, and the flag that says it is there.
    // SAFETY: `m` is the only handle to this mbuf; the fields are plain integers.
    unsafe {
        let raw = m.as_ptr();
        (*raw).__bindgen_anon_2.hash.rss = 0xdead_beef;
        (*raw).ol_flags |= u64::from(dpdk_sys::RTE_MBUF_F_RX_RSS_HASH);
    }
    assert_eq!(m.rss_hash(), Some(0xdead_beef));
    m.set_port(3);
    drop(m);
    assert_eq!(p.stats().in_use, 0);
}
