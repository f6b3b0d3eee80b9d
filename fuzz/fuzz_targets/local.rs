//! `dataplane::local::{classify, answer}` on arbitrary frames: requests to the
//! forwarder's own addresses and the replies written in place.
//!
//! Checked: nothing panics; `answer` succeeds only on what `classify` accepts; a reply
//! keeps the frame's length, still parses, is addressed back to the requester's MAC from
//! ours, and an IPv4 echo reply carries a valid header checksum.

#![no_main]

use std::net::{Ipv4Addr, Ipv6Addr};

use dataplane::local::{answer, classify, is_for, Local, Request};
use dataplane::net::MacAddr;
use dataplane::net::{parse, Ipv4Packet};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, frame)) = data.split_first() else { return };
    let local = Local {
        mac: MacAddr([2, 0, 0, 0, 0, 1]),
        ipv4: (sel & 1 == 0).then_some(Ipv4Addr::new(10, 0, 0, 1)),
        ipv6: (sel & 2 == 0).then(|| Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)),
    };
    let request = parse(frame).ok().and_then(|p| {
        let _ = is_for(frame, &p, &local);
        classify(frame, &p, &local).map(|r| (r, p))
    });
    let mut f = frame.to_vec();
    let answered = answer(&mut f, &local);
    if request.is_none() {
        assert!(!answered, "answered a frame classify refused");
        assert_eq!(f, frame, "a refused frame was modified");
    }
    if answered {
        let (req, p) = request.unwrap();
        assert_eq!(f.len(), frame.len());
        assert_eq!(&f[..6], &frame[6..12], "reply not sent back to the requester");
        assert_eq!(&f[6..12], &local.mac.0[..]);
        let q = parse(&f).expect("a reply parses");
        assert_eq!((q.l3, q.l3_offset, q.l4_offset), (p.l3, p.l3_offset, p.l4_offset));
        if req == Request::Echo {
            let ip = Ipv4Packet::new_checked(&f[usize::from(q.l3_offset)..]).unwrap();
            assert!(ip.verify_checksum(), "echo reply with a bad IPv4 checksum");
        }
    }
});
