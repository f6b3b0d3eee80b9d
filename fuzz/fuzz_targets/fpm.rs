//! `dataplane::fpm`: arbitrary bytes as zebra's FPM stream, decoded frame by frame and
//! applied to a `Rib` as the listener does, with a sweep at the end.
//!
//! Checked: nothing panics; a decoded unicast route has a next hop and a drop route none;
//! every prefix has its host bits clear; the Rib's per-origin counts add up to its size;
//! a second pass of the same frames after a reconnect changes nothing, and its sweep
//! removes nothing it re-sent.

#![no_main]

use std::time::Instant;

use dataplane::fpm::wire::{decode_stream, Message};
use dataplane::fpm::{Rib, RouteKind};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let frames: Vec<Vec<Message>> = decode_stream(data).into_iter().map_while(Result::ok).collect();
    for m in frames.iter().flatten() {
        if let Message::Upsert(r) = m {
            assert_eq!(r.kind == RouteKind::Unicast, !r.next_hops.is_empty(), "{r:?}");
            assert_eq!(r.key.prefix.network(), r.key.prefix.addr(), "{r:?}");
        }
        if let Message::Delete(k) = m {
            assert_eq!(k.prefix.network(), k.prefix.addr(), "{k:?}");
        }
    }
    let now = Instant::now();
    let mut rib = Rib::new();
    let mut changes = Vec::new();
    rib.connected(now);
    for f in &frames {
        rib.apply_frame(f.clone(), now, &mut changes);
    }
    assert_eq!(rib.by_protocol().values().sum::<usize>(), rib.len());
    // The table it ended with, replayed on a new session: no change, nothing swept.
    let table: Vec<_> = rib.routes().cloned().collect();
    rib.disconnected();
    rib.connected(now);
    changes.clear();
    for r in &table {
        rib.apply_frame(vec![Message::Upsert(r.clone())], now, &mut changes);
    }
    assert!(changes.is_empty(), "{changes:?}");
    assert_eq!(rib.sweep(&mut changes).deletes, 0);
    assert_eq!(rib.len(), table.len());
});
