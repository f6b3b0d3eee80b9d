//! IPv4 and IPv6 route tables against a real EAL (`--no-huge -m 512 --no-pci`, started once
//! for this test binary). Each table's first level takes 64 MiB (and an IPv6 table is two
//! rte_lpm6), so the tests take turns through one lock rather than run side by side.
//!
//! Lookups go through a registered RCU reader, as on a worker; the writer (this thread)
//! never holds it online while it waits for a grace period.

mod common;

use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::MutexGuard;

use dataplane::lpm::{Change6, Lpm4, Lpm6, LpmError};
use dataplane::rcu::Qsbr;
use mempool::SocketId;
use proptest::prelude::*;

/// A QS variable for a test: one reader slot.
fn qsbr() -> std::sync::Arc<Qsbr> {
    Qsbr::new(2).unwrap()
}

/// Looks `addr` up as a worker would: through a reader registered for the call.
macro_rules! look {
    ($t:expr, $q:expr, $addr:expr) => {{
        let reader = $q.register(0).unwrap();
        $t.reader().lookup(&reader, $addr)
    }};
}

/// Starts EAL on first use and returns the lock that serialises the tests.
fn eal() -> MutexGuard<'static, ()> {
    common::shared_eal("lpm-test")
}

fn v4(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn v6(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

/// A 64-bit LCG (Knuth's MMIX constants); the high half is the usable output.
struct Lcg(u64);

impl Lcg {
    fn next_u32(&mut self) -> u32 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 32) as u32
    }
}

#[test]
fn v4_longest_prefix_wins() {
    let _turn = eal();
    let q = qsbr();
    let mut t = Lpm4::create("t4_lpm", 64, 16, SocketId::ANY, &q).unwrap();
    assert_eq!(t.name(), "t4_lpm");
    t.add(v4("10.0.0.0"), 8, 1).unwrap();
    t.add(v4("10.1.0.0"), 16, 2).unwrap();
    t.add(v4("10.1.2.0"), 24, 3).unwrap();
    t.add(v4("10.1.2.3"), 32, 4).unwrap();
    for (addr, want) in [
        ("10.200.0.1", Some(1)),
        ("10.1.200.1", Some(2)),
        ("10.1.2.200", Some(3)),
        ("10.1.2.3", Some(4)),
        ("10.1.2.4", Some(3)),
        ("11.0.0.1", None),
        ("0.0.0.0", None),
    ] {
        assert_eq!(look!(t, q, v4(addr)), want, "{addr} without a default route");
    }
    t.add(v4("0.0.0.0"), 0, 9).unwrap();
    for (addr, want) in [("11.0.0.1", 9), ("255.255.255.255", 9), ("0.0.0.0", 9), ("10.1.2.3", 4), ("10.9.9.9", 1)] {
        assert_eq!(look!(t, q, v4(addr)), Some(want), "{addr} with a default route");
    }
    // Host bits past the depth are ignored, and re-adding a prefix replaces its next hop.
    t.add(v4("10.1.77.77"), 16, 20).unwrap();
    assert_eq!(look!(t, q, v4("10.1.200.1")), Some(20));
    t.delete(v4("0.0.0.0"), 0).unwrap();
    assert_eq!(look!(t, q, v4("11.0.0.1")), None);
}

#[test]
fn v4_deep_prefixes_and_delete() {
    let _turn = eal();
    let q = qsbr();
    let mut t = Lpm4::create("t4_deep", 64, 16, SocketId::ANY, &q).unwrap();
    t.add(v4("192.168.0.0"), 16, 1).unwrap();
    t.add(v4("192.168.1.0"), 24, 2).unwrap();
    t.add(v4("192.168.1.128"), 25, 3).unwrap(); // tbl8
    t.add(v4("192.168.1.192"), 26, 4).unwrap();
    t.add(v4("192.168.1.200"), 30, 5).unwrap();
    t.add(v4("192.168.1.201"), 32, 6).unwrap();
    for (addr, want) in [
        ("192.168.1.1", 2),
        ("192.168.1.129", 3),
        ("192.168.1.193", 4),
        ("192.168.1.202", 5),
        ("192.168.1.201", 6),
        ("192.168.2.1", 1),
    ] {
        assert_eq!(look!(t, q, v4(addr)), Some(want), "{addr}");
    }
    t.delete(v4("192.168.1.201"), 32).unwrap();
    assert_eq!(look!(t, q, v4("192.168.1.201")), Some(5), "/32 gone: the /30 covers it");
    t.delete(v4("192.168.1.192"), 26).unwrap();
    assert_eq!(look!(t, q, v4("192.168.1.193")), Some(3), "/26 gone: the /25 covers it");
    assert_eq!(look!(t, q, v4("192.168.1.202")), Some(5), "the /30 stays");
    t.delete(v4("192.168.1.0"), 24).unwrap();
    assert_eq!(look!(t, q, v4("192.168.1.1")), Some(1), "/24 gone: the /16 covers it");
    t.delete(v4("192.168.0.0"), 16).unwrap();
    assert_eq!(look!(t, q, v4("192.168.1.1")), None);
    assert_eq!(look!(t, q, v4("192.168.1.129")), Some(3));
    t.delete(v4("192.168.1.128"), 25).unwrap();
    t.delete(v4("192.168.1.200"), 30).unwrap();
    assert_eq!(look!(t, q, v4("192.168.1.202")), None, "every route gone");

    let missing = t.delete(v4("192.168.1.0"), 24).unwrap_err();
    assert_eq!(missing, LpmError::NoSuchRoute { prefix: v4("192.168.1.0").into(), depth: 24 });
    assert_eq!(t.delete(v4("0.0.0.0"), 0).unwrap_err(), LpmError::NoSuchRoute { prefix: v4("0.0.0.0").into(), depth: 0 });
}

#[test]
fn v4_bad_input_is_typed_and_dpdk_errors_pass_through() {
    let _turn = eal();
    let q = qsbr();
    let mut t = Lpm4::create("t4_err", 4, 1, SocketId::ANY, &q).unwrap();
    assert_eq!(t.add(v4("10.0.0.0"), 33, 1), Err(LpmError::BadDepth { depth: 33, max: 32 }));
    assert_eq!(t.delete(v4("10.0.0.0"), 40), Err(LpmError::BadDepth { depth: 40, max: 32 }));
    assert_eq!(t.add(v4("10.0.0.0"), 8, 1 << 24), Err(LpmError::NextHopTooLarge { next_hop: 1 << 24, max: Lpm4::MAX_NEXT_HOP }));
    assert_eq!(t.add(v4("0.0.0.0"), 0, u32::MAX), Err(LpmError::NextHopTooLarge { next_hop: u32::MAX, max: Lpm4::MAX_NEXT_HOP }));
    assert_eq!(look!(t, q, v4("10.0.0.1")), None, "nothing reached DPDK");
    t.add(v4("10.0.0.0"), 8, Lpm4::MAX_NEXT_HOP).unwrap();
    assert_eq!(look!(t, q, v4("10.0.0.1")), Some(Lpm4::MAX_NEXT_HOP), "all 24 bits survive");

    // One tbl8 group: a second /24 with a longer prefix under it needs another.
    t.add(v4("10.0.0.1"), 32, 1).unwrap();
    match t.add(v4("10.0.1.1"), 32, 2) {
        Err(LpmError::Dpdk(e)) => assert_eq!((e.op, e.errno), ("rte_lpm_add", 28), "ENOSPC: {e}"),
        other => panic!("unexpected {other:?}"),
    }

    match Lpm4::create("t4_err", 4, 1, SocketId::ANY, &q) {
        Err(e) => {
            assert_eq!((e.op, e.errno), ("rte_lpm_create", 17), "EEXIST: {e}");
            assert!(!e.to_string().contains('\n'));
        }
        Ok(_) => panic!("duplicate name accepted"),
    }
    assert_eq!(Lpm4::create("t4_zero", 0, 1, SocketId::ANY, &q).unwrap_err().errno, 22, "max_rules 0 is EINVAL");
    assert_eq!(Lpm4::create("t4\0nul", 4, 1, SocketId::ANY, &q).unwrap_err().errno, 22);
    drop(t);
    let again = Lpm4::create("t4_err", 4, 1, SocketId::ANY, &q).expect("drop frees the name");
    assert_eq!(look!(again, q, v4("10.0.0.1")), None, "a fresh table is empty");
}

#[test]
fn v6_longest_prefix_wins() {
    let _turn = eal();
    let q = qsbr();
    let mut t = Lpm6::create("t6_lpm", 64, 64, SocketId::ANY, &q).unwrap();
    assert_eq!(t.name(), "t6_lpm");
    t.add(v6("2001:db8::"), 32, 1).unwrap();
    t.add(v6("2001:db8:1::"), 48, 2).unwrap();
    t.add(v6("2001:db8:1:2::"), 64, 3).unwrap();
    t.add(v6("2001:db8:1:2::42"), 128, 4).unwrap();
    for (addr, want) in [
        ("2001:db8:ffff::1", Some(1)),
        ("2001:db8:1:ffff::1", Some(2)),
        ("2001:db8:1:2::1", Some(3)),
        ("2001:db8:1:2::42", Some(4)),
        ("2001:db8:1:2::43", Some(3)),
        ("2001:db9::1", None),
        ("::", None),
    ] {
        assert_eq!(look!(t, q, v6(addr)), want, "{addr} without a default route");
    }
    t.add(v6("::"), 0, 9).unwrap();
    for (addr, want) in [("2001:db9::1", 9), ("::", 9), ("ffff::", 9), ("2001:db8:1:2::42", 4)] {
        assert_eq!(look!(t, q, v6(addr)), Some(want), "{addr} with a default route");
    }
    t.add(v6("2001:db8:1:ffff::"), 48, 20).unwrap();
    assert_eq!(look!(t, q, v6("2001:db8:1:ffff::1")), Some(20), "host bits ignored, next hop replaced");
    t.delete(v6("::"), 0).unwrap();
    assert_eq!(look!(t, q, v6("2001:db9::1")), None);
}

#[test]
fn v6_deep_prefixes_and_delete() {
    let _turn = eal();
    let q = qsbr();
    let mut t = Lpm6::create("t6_deep", 64, 256, SocketId::ANY, &q).unwrap();
    t.add(v6("2001:db8::"), 32, 1).unwrap();
    t.add(v6("2001:db8:1::"), 48, 2).unwrap();
    t.add(v6("2001:db8:1:2::"), 64, 3).unwrap();
    t.add(v6("2001:db8:1:2::40"), 122, 5).unwrap();
    t.add(v6("2001:db8:1:2::42"), 128, 4).unwrap();
    assert_eq!(look!(t, q, v6("2001:db8:1:2::42")), Some(4));
    assert_eq!(look!(t, q, v6("2001:db8:1:2::41")), Some(5));
    assert_eq!(look!(t, q, v6("2001:db8:1:2::80")), Some(3));
    t.delete(v6("2001:db8:1:2::42"), 128).unwrap();
    assert_eq!(look!(t, q, v6("2001:db8:1:2::42")), Some(5), "/128 gone: the /122 covers it");
    t.delete(v6("2001:db8:1:2::40"), 122).unwrap();
    assert_eq!(look!(t, q, v6("2001:db8:1:2::42")), Some(3), "/122 gone: the /64 covers it");
    t.delete(v6("2001:db8:1:2::"), 64).unwrap();
    assert_eq!(look!(t, q, v6("2001:db8:1:2::42")), Some(2));
    t.delete(v6("2001:db8:1::"), 48).unwrap();
    assert_eq!(look!(t, q, v6("2001:db8:1:2::42")), Some(1));
    t.delete(v6("2001:db8::"), 32).unwrap();
    assert_eq!(look!(t, q, v6("2001:db8:1:2::42")), None, "every route gone");
    assert_eq!(t.delete(v6("2001:db8::"), 32).unwrap_err(), LpmError::NoSuchRoute { prefix: v6("2001:db8::").into(), depth: 32 });
}

#[test]
fn v6_bad_input_is_typed_and_dpdk_errors_pass_through() {
    let _turn = eal();
    let q = qsbr();
    let mut t = Lpm6::create("t6_err", 4, 4, SocketId::ANY, &q).unwrap();
    assert_eq!(t.add(v6("2001:db8::"), 129, 1), Err(LpmError::BadDepth { depth: 129, max: 128 }));
    assert_eq!(t.delete(v6("2001:db8::"), 200), Err(LpmError::BadDepth { depth: 200, max: 128 }));
    assert_eq!(
        t.add(v6("2001:db8::"), 32, 1 << 21),
        Err(LpmError::NextHopTooLarge { next_hop: 1 << 21, max: Lpm6::MAX_NEXT_HOP })
    );
    assert_eq!(look!(t, q, v6("2001:db8::1")), None, "nothing reached DPDK");
    t.add(v6("2001:db8::"), 32, Lpm6::MAX_NEXT_HOP).unwrap();
    assert_eq!(look!(t, q, v6("2001:db8::1")), Some(Lpm6::MAX_NEXT_HOP), "all 21 bits survive");
    let mut out = [None; 1];
    let reader = q.register(0).unwrap();
    t.reader().lookup_bulk(&reader, &[v6("2001:db8::1").octets()], &mut out);
    drop(reader);
    assert_eq!(out, [Some(Lpm6::MAX_NEXT_HOP)], "the largest next hop is not mistaken for a miss");

    match Lpm6::create("t6_err", 4, 4, SocketId::ANY, &q) {
        Err(e) => assert_eq!(e.errno, 17, "EEXIST: {e}"),
        Ok(_) => panic!("duplicate name accepted"),
    }
    assert_eq!(Lpm6::create("t6_zero", 0, 4, SocketId::ANY, &q).unwrap_err().errno, 22, "max_rules 0 is EINVAL");
    drop(t);
    Lpm6::create("t6_err", 4, 4, SocketId::ANY, &q).expect("drop frees the name");
}

#[test]
fn v4_bulk_agrees_with_single_lookups() {
    let _turn = eal();
    let q = qsbr();
    let mut t = Lpm4::create("t4_bulk", 256, 64, SocketId::ANY, &q).unwrap();
    let mut rng = Lcg(0x5eed);
    let mut routes = Vec::new();
    for i in 0..120u32 {
        let depth = [8, 12, 16, 20, 24, 26, 28, 32][i as usize % 8];
        let addr = Ipv4Addr::from(rng.next_u32());
        t.add(addr, depth, i + 1).unwrap();
        routes.push(u32::from(addr));
    }
    // Half near the routes (so the tbl8 groups are hit), half anywhere; 300 is not a
    // multiple of the 64-address chunk.
    let addrs: Vec<u32> =
        (0..300).map(|i| if i % 2 == 0 { routes[i % routes.len()] ^ (rng.next_u32() & 0xff) } else { rng.next_u32() }).collect();
    for default in [None, Some(7)] {
        if let Some(nh) = default {
            t.add(Ipv4Addr::UNSPECIFIED, 0, nh).unwrap();
        }
        let mut out = vec![Some(u32::MAX); addrs.len()];
        let reader = q.register(0).unwrap();
        let r = t.reader();
        r.lookup_bulk(&reader, &addrs, &mut out);
        let single: Vec<Option<u32>> = addrs.iter().map(|&a| r.lookup(&reader, Ipv4Addr::from(a))).collect();
        // The inline lookups read the table as DPDK's rte_lpm_lookup_bulk does.
        let mut dpdk = vec![Some(u32::MAX); addrs.len()];
        r.lookup_bulk_dpdk(&reader, &addrs, &mut dpdk);
        drop(reader);
        assert_eq!(out, single);
        assert_eq!(out, dpdk);
        let hits = out.iter().filter(|h| h.is_some() && **h != default).count();
        assert!(hits > 50, "only {hits} of 300 addresses hit a route");
        if default.is_some() {
            assert!(out.iter().all(Option::is_some), "the default route catches every miss");
        } else {
            assert!(out.iter().any(Option::is_none), "some addresses miss");
        }
    }
    let mut empty: [Option<u32>; 0] = [];
    t.reader().lookup_bulk(&q.register(0).unwrap(), &[], &mut empty);
}

#[test]
fn v6_bulk_agrees_with_single_lookups() {
    let _turn = eal();
    let q = qsbr();
    let mut t = Lpm6::create("t6_bulk", 256, 2048, SocketId::ANY, &q).unwrap();
    let mut rng = Lcg(0xfeed);
    let random_v6 = |rng: &mut Lcg| {
        let mut b = [0u8; 16];
        b[..2].copy_from_slice(&[0x20, 0x01]);
        for chunk in b[2..].chunks_mut(4) {
            chunk.copy_from_slice(&rng.next_u32().to_be_bytes()[..chunk.len()]);
        }
        b
    };
    let mut routes = Vec::new();
    for i in 0..100u32 {
        let depth = [16, 24, 32, 40, 48, 56, 64, 96, 120, 128][i as usize % 10];
        let addr = random_v6(&mut rng);
        t.add(Ipv6Addr::from(addr), depth, i + 1).unwrap();
        routes.push(addr);
    }
    let addrs: Vec<[u8; 16]> = (0..300)
        .map(|i| {
            if i % 2 == 0 {
                let mut a = routes[i % routes.len()];
                a[15] ^= rng.next_u32() as u8;
                a
            } else {
                random_v6(&mut rng)
            }
        })
        .collect();
    for default in [None, Some(7)] {
        if let Some(nh) = default {
            t.add(Ipv6Addr::UNSPECIFIED, 0, nh).unwrap();
        }
        let mut out = vec![Some(u32::MAX); addrs.len()];
        let reader = q.register(0).unwrap();
        let r = t.reader();
        r.lookup_bulk(&reader, &addrs, &mut out);
        let single: Vec<Option<u32>> = addrs.iter().map(|&a| r.lookup(&reader, Ipv6Addr::from(a))).collect();
        drop(reader);
        assert_eq!(out, single);
        let hits = out.iter().filter(|h| h.is_some() && **h != default).count();
        assert!(hits > 50, "only {hits} of 300 addresses hit a route");
    }
}

#[test]
#[should_panic(expected = "differ in length")]
fn bulk_lengths_must_match() {
    let _turn = eal();
    let q = qsbr();
    let t = Lpm4::create("t4_len", 4, 1, SocketId::ANY, &q).unwrap();
    let mut out = [None; 2];
    t.reader().lookup_bulk(&q.register(0).unwrap(), &[1, 2, 3], &mut out);
}

/// Readers on two threads look up without a lock while this thread adds, replaces and
/// deletes routes under them: every answer is one the table could give at some moment
/// (never a torn or foreign next hop), for IPv4 (rte_lpm with its RCU defer queue, few
/// tbl8 groups, so freed ones must be reused) and IPv6 (the table pair).
#[test]
fn lookups_while_the_writer_changes_the_tables() {
    let _turn = eal();
    let q = Qsbr::new(8).unwrap();
    let mut t4 = Lpm4::create("t4_churn", 64, 4, SocketId::ANY, &q).unwrap();
    let mut t6 = Lpm6::create("t6_churn", 512, 4096, SocketId::ANY, &q).unwrap();
    t4.add(v4("10.0.0.0"), 8, 1).unwrap();
    t6.add(v6("2001:db8::"), 32, 1).unwrap();
    let stop = std::sync::atomic::AtomicBool::new(false);
    // Readers that finished a first pass: the writer starts only then, so that on a loaded
    // machine it cannot finish before a reader has looked anything up.
    let started = std::sync::atomic::AtomicU32::new(0);
    /// Stops the readers however the writer's loop ends (a failed assertion included).
    struct Stop<'a>(&'a std::sync::atomic::AtomicBool);
    impl Drop for Stop<'_> {
        fn drop(&mut self) {
            self.0.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }
    std::thread::scope(|s| {
        let readers: Vec<_> = (0..2u32)
            .map(|id| {
                let (r4, r6, stop, q, started) = (t4.reader(), t6.reader(), &stop, &q, &started);
                s.spawn(move || {
                    let mut rcu = q.register(id).unwrap();
                    let mut n = 0u64;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        for i in 0..256u32 {
                            // 10.0.<i>.7 is under the /8 (1) and maybe a /32 (2..=3).
                            let a = r4.lookup(&rcu, Ipv4Addr::from(0x0a00_0007 | (i << 8)));
                            assert!(matches!(a, Some(1..=3)), "IPv4 answer {a:?}");
                            let b = r6.lookup(
                                &rcu,
                                Ipv6Addr::from(0x2001_0db8_0000_0000_0000_0000_0000_0007u128 | u128::from(i) << 16),
                            );
                            assert!(matches!(b, Some(1..=3)), "IPv6 answer {b:?}");
                            n += 2;
                        }
                        rcu.quiescent();
                        if n == 512 {
                            started.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                    }
                    n
                })
            })
            .collect();
        let guard = Stop(&stop);
        // (A reader that failed ends early: its join below reports it.)
        while started.load(std::sync::atomic::Ordering::Relaxed) < 2 && !readers.iter().any(|r| r.is_finished()) {
            std::thread::yield_now();
        }
        let mut rng = Lcg(7);
        for round in 0..1500u32 {
            let i = rng.next_u32() % 256;
            let nh = 2 + round % 2;
            let a4 = Ipv4Addr::from(0x0a00_0007 | (i << 8));
            let a6 = Ipv6Addr::from(0x2001_0db8_0000_0000_0000_0000_0000_0007u128 | u128::from(i) << 16);
            if rng.next_u32().is_multiple_of(3) {
                let _ = t4.delete(a4, 32);
                let _ = t6.delete(a6, 128);
            } else {
                // Four tbl8 groups only: a full table is a normal answer here.
                match t4.add(a4, 32, nh) {
                    Ok(()) => {}
                    Err(e) => assert!(e.is_full(), "{e}"),
                }
                t6.add(a6, 128, nh).unwrap();
            }
        }
        drop(guard);
        for r in readers {
            assert!(r.join().unwrap() > 0);
        }
    });
}

/// A route table as a list, for the property tests: the longest matching prefix wins.
#[derive(Default)]
struct Model(std::collections::BTreeMap<(u128, u8), u32>);

impl Model {
    fn lookup(&self, addr: u128, bits: u32) -> Option<u32> {
        self.0
            .iter()
            .filter(|((p, len), _)| *len == 0 || addr >> (bits - u32::from(*len)) == p >> (bits - u32::from(*len)))
            .max_by_key(|((_, len), _)| *len)
            .map(|(_, &nh)| nh)
    }
}

fn mask(addr: u128, len: u8, bits: u32) -> u128 {
    if len == 0 {
        0
    } else {
        addr & (!0u128 >> (128 - bits)) >> (bits - u32::from(len)) << (bits - u32::from(len))
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// After random adds and deletes (prefixes drawn from a small space so they nest and
    /// collide), rte_lpm answers every probe as the list model does.
    #[test]
    fn v4_agrees_with_a_model(ops in proptest::collection::vec((any::<bool>(), 0u32..64, 0u8..=32, 1u32..1000), 1..200),
                              probes in proptest::collection::vec(any::<u32>(), 64)) {
        let _turn = eal();
        let q = qsbr();
        let mut t = Lpm4::create("t4_prop", 256, 256, SocketId::ANY, &q).unwrap();
        let mut m = Model::default();
        for (add, a, len, nh) in ops {
            // Addresses from a few /26s of 10.0.0.0/16 plus their high bits.
            let addr = 0x0a00_0000u32 | (a.rotate_right(6) & 0x00ff_ffc0) | (a & 0x3f);
            let key = (mask(u128::from(addr), len, 32), len);
            if add {
                t.add(Ipv4Addr::from(addr), len, nh).unwrap();
                m.0.insert(key, nh);
            } else {
                let r = t.delete(Ipv4Addr::from(addr), len);
                prop_assert_eq!(r.is_ok(), m.0.remove(&key).is_some());
            }
        }
        let reader = q.register(0).unwrap();
        let r = t.reader();
        for p in probes.iter().map(|&p| 0x0a00_0000 | (p & 0x00ff_ffff)).chain(m.0.keys().map(|k| k.0 as u32)) {
            prop_assert_eq!(r.lookup(&reader, Ipv4Addr::from(p)), m.lookup(u128::from(p), 32), "{}", Ipv4Addr::from(p));
        }
    }

    /// The same for the rte_lpm6 pair, with changes applied in batches.
    #[test]
    fn v6_agrees_with_a_model(batches in proptest::collection::vec(
                                  proptest::collection::vec((any::<bool>(), 0u32..64, 0u8..=128, 1u32..1000), 1..20), 1..10),
                              probes in proptest::collection::vec(any::<u64>(), 64)) {
        let _turn = eal();
        let q = qsbr();
        let mut t = Lpm6::create("t6_prop", 512, 2048, SocketId::ANY, &q).unwrap();
        let mut m = Model::default();
        let base = 0x2001_0db8u128 << 96;
        let spread = |a: u32| base | u128::from(a & 7) << 80 | u128::from(a >> 3) << 40 | u128::from(a);
        for batch in batches {
            // A batch is all or nothing: skip deletes of what the batch's model lacks.
            let mut changes = Vec::new();
            let mut next = Model(m.0.clone());
            for (add, a, len, nh) in batch {
                let addr = spread(a);
                let key = (mask(addr, len, 128), len);
                if add {
                    next.0.insert(key, nh);
                    changes.push(Change6 { addr: Ipv6Addr::from(addr), depth: len, next_hop: Some(nh) });
                } else if next.0.remove(&key).is_some() {
                    changes.push(Change6 { addr: Ipv6Addr::from(addr), depth: len, next_hop: None });
                }
            }
            t.apply(&changes).unwrap();
            m = next;
        }
        let reader = q.register(0).unwrap();
        let r = t.reader();
        for p in probes.iter().map(|&p| spread(p as u32) ^ u128::from(p >> 32)).chain(m.0.keys().map(|k| k.0)) {
            prop_assert_eq!(r.lookup(&reader, Ipv6Addr::from(p)), m.lookup(p, 128), "{}", Ipv6Addr::from(p));
        }
    }
}

#[test]
fn a_v6_batch_that_fails_changes_nothing() {
    let _turn = eal();
    let q = qsbr();
    let mut t = Lpm6::create("t6_undo", 64, 64, SocketId::ANY, &q).unwrap();
    t.add(v6("2001:db8::"), 32, 1).unwrap();
    let err = t
        .apply(&[
            Change6 { addr: v6("2001:db8::"), depth: 32, next_hop: Some(2) },
            Change6 { addr: v6("2001:db8:1::"), depth: 48, next_hop: Some(3) },
            Change6 { addr: v6("2001:db9::"), depth: 32, next_hop: None },
        ])
        .unwrap_err();
    assert_eq!(err, (2, LpmError::NoSuchRoute { prefix: v6("2001:db9::").into(), depth: 32 }));
    assert_eq!(look!(t, q, v6("2001:db8:1::1")), Some(1), "the batch was undone");
    // And both tables of the pair still agree: a batch that succeeds flips to the other.
    t.add(v6("2001:db8:2::"), 48, 4).unwrap();
    assert_eq!(look!(t, q, v6("2001:db8:1::1")), Some(1));
    assert_eq!(look!(t, q, v6("2001:db8:2::1")), Some(4));
}
