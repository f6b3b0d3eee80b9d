//! The neighbour subsystem's input: arbitrary frames through the slow path's validation
//! (`local::answer`) into a `NeighTable`, interleaved with held packets and time passing.
//!
//! The input is a sequence of records: one opcode byte, then (for a frame) a length byte and
//! that many bytes. Opcodes: a frame on port 0 or 1, a packet to hold for one of a few
//! neighbours, or time passing (up to ~2.5 s). Small knobs, so every timer fires.
//!
//! Checked: nothing panics; every held packet comes out exactly once (sent or dropped),
//! held packets leave each neighbour in order, a packet is only sent to the entry's
//! current MAC, nothing is held outside INCOMPLETE, and what the workers are told
//! (`Event::Publish`) is always what the entries say.

#![no_main]

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use dataplane::local::{answer, Learn, Local};
use dataplane::neigh::{Event, NeighKey, NeighParams, NeighState, NeighTable};
use dataplane::net::MacAddr;
use dataplane::port::PortIdx;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let locals = [
        Local {
            mac: MacAddr([2, 0, 0, 0, 0, 1]),
            ipv4: Some(Ipv4Addr::new(10, 0, 0, 1)),
            ipv6: Some(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)),
        },
        Local { mac: MacAddr([2, 0, 0, 0, 1, 1]), ipv4: Some(Ipv4Addr::new(10, 0, 1, 1)), ipv6: None },
    ];
    let params = NeighParams {
        base_reachable_time: Duration::from_millis(2000),
        retrans_time: Duration::from_millis(100),
        delay_first_probe_time: Duration::from_millis(500),
        mcast_resolicit: 1,
        unres_qlen: 3,
        gc_thresh1: 2,
        gc_thresh2: 4,
        gc_thresh3: 6,
        gc_stale_time: Duration::from_millis(3000),
        ..NeighParams::default()
    };
    let mut now = Duration::from_secs(100);
    let mut t: NeighTable<u32> = NeighTable::new(params, 1, now);
    let mut out = Vec::new();
    let mut published: HashMap<NeighKey, Option<MacAddr>> = HashMap::new();
    let mut last_sent: HashMap<NeighKey, u32> = HashMap::new();
    let (mut given, mut came_out) = (0u32, 0u32);
    let mut rest = data;
    while let Some((&op, tail)) = rest.split_first() {
        rest = tail;
        match op % 4 {
            0 | 1 => {
                let port = usize::from(op % 4);
                let Some((&len, tail)) = rest.split_first() else { break };
                let len = usize::from(len).min(tail.len());
                let (frame, tail) = tail.split_at(len);
                rest = tail;
                if let Ok(a) = answer(frame, &locals[port]) {
                    let p = PortIdx(port as u16);
                    match a.learn {
                        Some(Learn::Arp(msg)) => {
                            t.arp_input(p, msg, now, &mut out);
                        }
                        Some(Learn::Solicit { src, sllao }) => {
                            t.ns_input(p, src, sllao, now, &mut out);
                        }
                        Some(Learn::Advert { target, tlla, flags }) => {
                            t.na_input(p, target, tlla, flags.router, flags.solicited, flags.override_, now, &mut out);
                        }
                        None => {}
                    }
                }
            }
            2 => {
                given += 1;
                let n = op >> 2;
                let addr = if n & 1 == 0 {
                    IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2 + (n >> 1) % 4))
                } else {
                    IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2 + u16::from(n >> 1) % 4))
                };
                t.hold(NeighKey { port: PortIdx(0), addr }, given, now, u32::from(op >> 6) + 1, &mut out);
            }
            _ => {
                now += Duration::from_millis(u64::from(op >> 2) * 40);
                t.tick(now, &mut out);
            }
        }
        for e in out.drain(..) {
            match e {
                Event::Send { key, mac, packet } => {
                    came_out += 1;
                    assert!(packet > last_sent.get(&key).copied().unwrap_or(0), "out of order");
                    last_sent.insert(key, packet);
                    assert_eq!(t.get(key, now).and_then(|v| v.mac), Some(mac), "sent to a MAC the entry does not have");
                }
                Event::Drop { .. } => came_out += 1,
                Event::Publish { key, mac } => {
                    published.insert(key, mac);
                }
                Event::Solicit { .. } => {}
            }
        }
        for v in t.entries(now) {
            assert!(v.queued == 0 || v.state == NeighState::Incomplete, "{v:?}");
            let want = if v.state.usable() { v.mac } else { None };
            assert_eq!(published.get(&v.key).copied().flatten(), want, "published view of {v:?}");
        }
    }
    came_out += t.clear().len() as u32;
    assert_eq!(given, came_out, "a held packet was lost or duplicated");
});
