//! Each mode's per-packet decision (`dataplane::forward::{macswap, l2fwd, l3fwd}`) on
//! arbitrary frames, with a small linear-scan route table standing in for rte_lpm.
//!
//! The first input byte picks the mode and whether the input port has local addresses;
//! the rest is the frame. Checked: nothing panics; a dropped or punted frame is left
//! untouched; a forwarded IPv4 frame had its TTL decremented by one with a checksum
//! that still verifies, and got the next hop's MACs; a frame whose next hop must be
//! resolved first (next hop 2) had only its TTL or hop limit decremented, its MACs left
//! for the slow path; the common-case path (`l3fwd_common`) decides and writes exactly
//! what `l3fwd` does wherever it applies.

#![no_main]

use std::net::{Ipv4Addr, Ipv6Addr};

use dataplane::forward::{l2fwd, l3fwd, l3fwd_common, macswap, Action, DropReason, Hop, NextHop, NextHops, Routes, RxChecksum};
use dataplane::local::Local;
use dataplane::net::{parse, Ipv4Packet, Ipv6Packet, MacAddr, L3};
use dataplane::port::PortIdx;
use libfuzzer_sys::fuzz_target;

/// (prefix, length, is IPv6, next hop), longest match wins.
struct Table(&'static [(u128, u8, bool, u32)]);

impl Table {
    fn best(&self, v6: bool, addr: u128, bits: u32) -> Option<u32> {
        self.0
            .iter()
            .filter(|(p, len, is6, _)| {
                *is6 == v6 && (*len == 0 || addr >> (bits - u32::from(*len)) == p >> (bits - u32::from(*len)))
            })
            .max_by_key(|r| r.1)
            .map(|r| r.3)
    }
}

impl Routes for Table {
    fn lookup_v4(&self, dst: Ipv4Addr) -> Option<u32> {
        self.best(false, u128::from(u32::from(dst)), 32)
    }
    fn lookup_v6(&self, dst: Ipv6Addr) -> Option<u32> {
        self.best(true, u128::from(dst), 128)
    }
}

/// 10.0.0.0/8 -> 0, 10.1.0.0/16 -> 1, 10.1.2.0/24 -> 7 (no such next hop: must be
/// no_route, not a panic), 10.2.0.0/16 -> 2 (to be resolved), 10.3.0.0/16 -> 3 (an ECMP
/// group of 1 and 2, by the flow hash), 2001:db8::/32 -> 0, 2001:db8:1::/48 -> 1,
/// 2001:db8:2::/48 -> 2, 2001:db8:3::/48 -> 3, ::/0 -> 1.
const ROUTES: Table = Table(&[
    (0x0a00_0000, 8, false, 0),
    (0x0a03_0000, 16, false, 3),
    (0x2001_0db8_0003_0000_0000_0000_0000_0000, 48, true, 3),
    (0x0a01_0000, 16, false, 1),
    (0x0a01_0200, 24, false, 7),
    (0x0a02_0000, 16, false, 2),
    (0x2001_0db8_0002_0000_0000_0000_0000_0000, 48, true, 2),
    (0x2001_0db8_0000_0000_0000_0000_0000_0000, 32, true, 0),
    (0x2001_0db8_0001_0000_0000_0000_0000_0000, 48, true, 1),
    (0, 0, true, 1),
]);

const HOPS: [NextHop; 2] = [
    NextHop { port: PortIdx(0), src: MacAddr([2, 0, 0, 0, 0, 0]), dst: MacAddr([2, 0, 0, 0, 1, 1]) },
    NextHop { port: PortIdx(1), src: MacAddr([2, 0, 0, 0, 0, 1]), dst: MacAddr([2, 0, 0, 0, 2, 2]) },
];

/// HOPS, next hop 2 out of port 1 whose neighbour is not resolved, and group 3 of 1 and 2
/// (the flow hash of whatever the input is picks one).
struct Hops;

impl NextHops for Hops {
    fn next_hop(&self, id: u32) -> Option<NextHop> {
        HOPS.get(id as usize).copied()
    }
    fn lookup(&self, id: u32, flow: impl FnOnce() -> u32) -> Hop {
        let id = if id == 3 { 1 + flow() % 2 } else { id };
        match id {
            2 => Hop::Resolve { port: PortIdx(1), next_hop: id },
            _ => self.next_hop(id).map_or(Hop::Missing, Hop::Ready),
        }
    }
}

fn local() -> Local {
    Local {
        mac: MacAddr([2, 0, 0, 0, 0, 1]),
        ipv4: Some(Ipv4Addr::new(10, 0, 0, 1)),
        ipv6: Some(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, frame)) = data.split_first() else { return };
    let before = frame.to_vec();
    let mut f = frame.to_vec();
    match sel % 4 {
        0 => match macswap(&mut f) {
            Ok(()) => {
                assert_eq!((&f[..6], &f[6..12]), (&before[6..12], &before[..6]));
                assert_eq!(f[12..], before[12..]);
            }
            Err(r) => {
                assert_eq!(r, DropReason::Truncated);
                assert_eq!(f, before);
            }
        },
        1 => {
            let (src, dst) = (MacAddr([2, 0, 0, 0, 0, 9]), MacAddr([2, 0, 0, 0, 9, 9]));
            match l2fwd(&mut f, src, dst) {
                Ok(()) => {
                    assert_eq!((&f[..6], &f[6..12]), (&dst.0[..], &src.0[..]));
                    assert_eq!(f[12..], before[12..]);
                }
                Err(_) => assert_eq!(f, before),
            }
        }
        n => {
            let l = local();
            let mut common = frame.to_vec();
            let action = l3fwd(&mut f, &ROUTES, &Hops, (n == 3).then_some(&l));
            if n == 2 {
                if let Some(c) = l3fwd_common(&mut common, &ROUTES, &Hops, RxChecksum::Unknown) {
                    assert_eq!((c.action, &common), (action, &f), "the common-case path disagrees");
                    assert_eq!(Ok(c.parsed()), parse(frame));
                }
            }
            match action {
                Action::Drop(_) | Action::Punt => assert_eq!(f, before, "{action:?} modified the frame"),
                Action::Resolve { port, next_hop } => {
                    assert_eq!((port, next_hop), (PortIdx(1), 2));
                    assert_eq!(f[..12], before[..12], "MACs are the slow path's to write");
                    let p = parse(&f).expect("a routed frame still parses");
                    let l3 = usize::from(p.l3_offset);
                    match p.l3 {
                        L3::Ipv4 => {
                            let ip = Ipv4Packet::new_checked(&f[l3..]).unwrap();
                            assert!(ip.verify_checksum());
                            assert_eq!(ip.ttl(), before[l3 + 8] - 1);
                        }
                        L3::Ipv6 => assert_eq!(f[l3 + 7], before[l3 + 7] - 1),
                        other => panic!("resolving a non-IP frame ({other:?})"),
                    }
                }
                Action::Tx(port) => {
                    let hop = HOPS.iter().find(|h| h.port == port).expect("a configured port");
                    assert_eq!(&f[..6], &hop.dst.0[..]);
                    assert_eq!(&f[6..12], &hop.src.0[..]);
                    let p = parse(&f).expect("a forwarded frame still parses");
                    let l3 = usize::from(p.l3_offset);
                    match p.l3 {
                        L3::Ipv4 => {
                            let ip = Ipv4Packet::new_checked(&f[l3..]).unwrap();
                            assert!(ip.verify_checksum(), "forwarded with a bad checksum");
                            assert_eq!(ip.ttl(), before[l3 + 8] - 1);
                        }
                        L3::Ipv6 => {
                            let ip = Ipv6Packet::new_checked(&f[l3..]).unwrap();
                            assert_eq!(ip.hop_limit(), before[l3 + 7] - 1);
                        }
                        other => panic!("forwarded a non-IP frame ({other:?})"),
                    }
                }
            }
        }
    }
});
