//! The slow path's side of neighbour resolution, between the [`NeighTable`] and the wire:
//! what a received ARP message or neighbour advertisement teaches ([`Resolver::learn`]),
//! packets waiting for a neighbour ([`Resolver::resolve`]), the solicitations the table asks
//! for built as whole frames from the port's own addresses, and the announcements made at
//! start (gratuitous ARP, unsolicited neighbour advertisements with Override).
//!
//! Pure: no mbufs, no rings; packets are any `P`. The slow path turns each [`Output`] into
//! an mbuf on a ring.

use std::net::IpAddr;
use std::time::Duration;

use super::{Event, NeighDrop, NeighKey, NeighParams, NeighStats, NeighTable, NeighView};
use crate::local::{Learn, Local};
use crate::net::{arp, ndisc, MacAddr};
use crate::port::PortIdx;

/// What the slow path must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output<P> {
    /// Send this frame (a solicitation, an announcement) out of `port`.
    Frame {
        /// The out port.
        port: PortIdx,
        /// The whole frame.
        frame: Vec<u8>,
    },
    /// Send a held packet to `mac` out of `port` (its destination MAC to be rewritten).
    Send {
        /// The neighbour.
        key: NeighKey,
        /// The out port.
        port: PortIdx,
        /// The neighbour's MAC.
        mac: MacAddr,
        /// The packet.
        packet: P,
    },
    /// Drop a held packet.
    Drop {
        /// The packet.
        packet: P,
        /// Why.
        reason: NeighDrop,
    },
    /// Tell the workers what they may now use for `key` (see [`Event::Publish`]).
    Publish {
        /// The neighbour.
        key: NeighKey,
        /// Its MAC, or `None` to hand packets to the slow path.
        mac: Option<MacAddr>,
    },
}

/// What the resolver sent and learned, beside the table's own [`NeighStats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ResolverStats {
    /// ARP requests sent (broadcast and unicast probes).
    pub arp_requests: u64,
    /// Neighbour solicitations sent (multicast and unicast probes).
    pub neighbor_solicits: u64,
    /// Gratuitous ARP and unsolicited advertisements sent.
    pub announcements: u64,
    /// Solicitations the table asked for that could not be built: the port has no address
    /// of the family any more (a config change), counted and skipped.
    pub solicit_unsendable: u64,
    /// Received messages an entry took ([`NeighTable::arp_input`] and friends returned true).
    pub learned: u64,
}

/// The slow path's neighbour resolution.
pub struct Resolver<P> {
    table: NeighTable<P>,
    events: Vec<Event<P>>,
    stats: ResolverStats,
}

impl<P> std::fmt::Debug for Resolver<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver").field("table", &self.table).field("stats", &self.stats).finish()
    }
}

impl<P> Resolver<P> {
    /// An empty table with `params`, at `now`.
    pub fn new(params: NeighParams, seed: u64, now: Duration) -> Self {
        Resolver { table: NeighTable::new(params, seed, now), events: Vec::new(), stats: ResolverStats::default() }
    }

    /// The table (for `show neighbours`).
    pub fn table(&self) -> &NeighTable<P> {
        &self.table
    }

    /// Its counters and the table's.
    pub fn stats(&self) -> (ResolverStats, NeighStats) {
        (self.stats, self.table.stats())
    }

    /// Every entry.
    pub fn entries(&self, now: Duration) -> Vec<NeighView> {
        self.table.entries(now).collect()
    }

    /// A static neighbour (a route's `via` with `via_mac`).
    pub fn add_static(&mut self, key: NeighKey, mac: MacAddr, now: Duration, locals: &[Option<Local>], out: &mut Vec<Output<P>>) {
        self.table.add_permanent(key, mac, now, &mut self.events);
        self.drain(locals, out);
    }

    /// What a valid ARP message, solicitation or advertisement received on `port` teaches.
    pub fn learn(&mut self, port: PortIdx, learn: Learn, now: Duration, locals: &[Option<Local>], out: &mut Vec<Output<P>>) {
        let took = match learn {
            Learn::Arp(msg) => self.table.arp_input(port, msg, now, &mut self.events),
            Learn::Solicit { src, sllao } => self.table.ns_input(port, src, sllao, now, &mut self.events),
            Learn::Advert { target, tlla, flags } => {
                self.table.na_input(port, target, tlla, flags.router, flags.solicited, flags.override_, now, &mut self.events)
            }
        };
        self.stats.learned += u64::from(took);
        self.drain(locals, out);
    }

    /// A packet for neighbour `key`: sent at once if the entry is usable, held otherwise (at
    /// most `qlen` per neighbour), starting resolution ([`NeighTable::hold`]).
    pub fn resolve(
        &mut self,
        key: NeighKey,
        packet: P,
        qlen: u32,
        now: Duration,
        locals: &[Option<Local>],
        out: &mut Vec<Output<P>>,
    ) {
        self.table.hold(key, packet, now, qlen, &mut self.events);
        self.drain(locals, out);
    }

    /// The workers sent to `key` directly (their "used" mark).
    pub fn touch(&mut self, key: NeighKey, now: Duration) {
        self.table.touch(key, now);
    }

    /// Timers and collection ([`NeighTable::tick`]).
    pub fn tick(&mut self, now: Duration, locals: &[Option<Local>], out: &mut Vec<Output<P>>) {
        self.table.tick(now, &mut self.events);
        self.drain(locals, out);
    }

    /// The earliest time [`tick`](Self::tick) has work.
    pub fn next_deadline(&self) -> Duration {
        self.table.next_deadline()
    }

    /// Empties the table (at shutdown), handing back what it held.
    pub fn clear(&mut self) -> Vec<P> {
        self.table.clear().into_iter().map(|(_, p)| p).collect()
    }

    /// A gratuitous ARP (with `arp_notify`) and an unsolicited neighbour advertisement
    /// (Override, Router; with `ndisc_notify`) for each of our addresses, so hosts that cached
    /// another MAC for them take ours (RFC 826 practice, RFC 4861 7.2.6).
    pub fn announce(&mut self, locals: &[Option<Local>], out: &mut Vec<Output<P>>) {
        let (arp_notify, ndisc_notify) = (self.table.params().arp_notify, self.table.params().ndisc_notify);
        for (i, l) in locals.iter().enumerate() {
            let Some(l) = l else { continue };
            let port = PortIdx(i as u16);
            if let (Some(a), true) = (l.ipv4, arp_notify) {
                out.push(Output::Frame { port, frame: arp::request_frame(l.mac, a, a, None) });
                self.stats.announcements += 1;
            }
            if let (Some(a), true) = (l.ipv6, ndisc_notify) {
                out.push(Output::Frame { port, frame: ndisc::unsolicited_advert_frame(l.mac, a, true) });
                self.stats.announcements += 1;
            }
        }
    }

    /// Turns the table's events into outputs: solicitations into frames from the port's
    /// own address of the family.
    fn drain(&mut self, locals: &[Option<Local>], out: &mut Vec<Output<P>>) {
        for e in self.events.drain(..) {
            match e {
                Event::Solicit { key, unicast } => {
                    let local = locals.get(key.port.index()).copied().flatten();
                    let frame = match (key.addr, local) {
                        (IpAddr::V4(target), Some(Local { mac, ipv4: Some(src), .. })) => {
                            self.stats.arp_requests += 1;
                            Some(arp::request_frame(mac, src, target, unicast))
                        }
                        (IpAddr::V6(target), Some(Local { mac, ipv6: Some(src), .. })) => {
                            self.stats.neighbor_solicits += 1;
                            Some(ndisc::solicit_frame(mac, src, target, unicast))
                        }
                        _ => None,
                    };
                    match frame {
                        Some(frame) => out.push(Output::Frame { port: key.port, frame }),
                        None => self.stats.solicit_unsendable += 1,
                    }
                }
                Event::Send { key, mac, packet } => out.push(Output::Send { key, port: key.port, mac, packet }),
                Event::Drop { packet, reason, .. } => out.push(Output::Drop { packet, reason }),
                Event::Publish { key, mac } => out.push(Output::Publish { key, mac }),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;
    use crate::neigh::{ArpInput, NeighState};
    use crate::net::arp::ArpRepr;
    use crate::net::ndisc::{NaFlags, NdiscRepr};
    use crate::net::{Ipv6Packet, L3};

    const OUR: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);
    const HOST: MacAddr = MacAddr([2, 0, 0, 0, 0, 0x99]);

    fn locals() -> Vec<Option<Local>> {
        vec![Some(Local { mac: OUR, ipv4: Some(Ipv4Addr::new(10, 0, 0, 1)), ipv6: Some("2001:db8::1".parse().unwrap()) })]
    }

    fn key(addr: &str) -> NeighKey {
        NeighKey { port: PortIdx(0), addr: addr.parse().unwrap() }
    }

    fn frames(out: &[Output<u32>]) -> Vec<&Vec<u8>> {
        out.iter().filter_map(|o| if let Output::Frame { frame, .. } = o { Some(frame) } else { None }).collect()
    }

    #[test]
    fn resolving_sends_a_broadcast_request_then_releases_on_the_reply() {
        let mut r: Resolver<u32> = Resolver::new(NeighParams::default(), 1, Duration::from_secs(10));
        let mut out = Vec::new();
        let now = Duration::from_secs(10);
        r.resolve(key("10.0.0.2"), 7, 101, now, &locals(), &mut out);
        let f = frames(&out);
        assert_eq!(f.len(), 1);
        assert_eq!(&f[0][0..6], &[0xff; 6], "broadcast");
        let req = ArpRepr::check(&f[0][14..]).unwrap();
        assert_eq!(req, ArpRepr::request(OUR, Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2)));
        out.clear();
        let reply = ArpInput {
            request: false,
            sha: HOST,
            spa: Ipv4Addr::new(10, 0, 0, 2),
            tpa: Ipv4Addr::new(10, 0, 0, 1),
            for_us: true,
            unicast: true,
        };
        r.learn(PortIdx(0), Learn::Arp(reply), now, &locals(), &mut out);
        assert_eq!(
            out,
            [
                Output::Send { key: key("10.0.0.2"), port: PortIdx(0), mac: HOST, packet: 7 },
                Output::Publish { key: key("10.0.0.2"), mac: Some(HOST) }
            ],
            "held packets leave before the workers are told, so they stay first"
        );
        assert_eq!(r.stats().0.learned, 1);
        assert_eq!(r.table().get(key("10.0.0.2"), now).unwrap().state, NeighState::Reachable);
    }

    #[test]
    fn ipv6_solicits_multicast_then_probes_unicast() {
        let p = NeighParams { base_reachable_time: Duration::from_secs(2), ..NeighParams::default() };
        let mut r: Resolver<u32> = Resolver::new(p, 1, Duration::ZERO);
        let mut out = Vec::new();
        let k = key("2001:db8::2");
        r.resolve(k, 1, 101, Duration::ZERO, &locals(), &mut out);
        let f = frames(&out)[0].clone();
        assert_eq!(&f[0..6], &[0x33, 0x33, 0xff, 0, 0, 2]);
        let ip = Ipv6Packet::new_checked(&f[14..]).unwrap();
        assert_eq!(ip.dst_addr(), "ff02::1:ff00:2".parse::<Ipv6Addr>().unwrap());
        let msg = NdiscRepr::parse(ip.src_addr(), ip.dst_addr(), ip.hop_limit(), ip.payload()).unwrap();
        assert_eq!(msg, NdiscRepr::Solicit { target: "2001:db8::2".parse().unwrap(), sllao: Some(OUR) });
        out.clear();
        let flags = NaFlags { router: false, solicited: true, override_: true };
        r.learn(
            PortIdx(0),
            Learn::Advert { target: "2001:db8::2".parse().unwrap(), tlla: Some(HOST), flags },
            Duration::ZERO,
            &locals(),
            &mut out,
        );
        // Used now, so when REACHABLE ends it goes DELAY, then PROBE: a unicast solicitation.
        out.clear();
        r.touch(k, Duration::from_secs(2));
        let mut now = Duration::ZERO;
        while now < Duration::from_secs(12) {
            now += Duration::from_millis(10);
            r.tick(now, &locals(), &mut out);
        }
        let probes: Vec<&Vec<u8>> = frames(&out);
        assert!(!probes.is_empty());
        assert_eq!(&probes[0][0..6], &HOST.0, "a unicast probe to the cached MAC");
        assert_eq!(crate::net::parse(probes[0]).unwrap().l3, L3::Ipv6);
    }

    #[test]
    fn announcements_and_unsendable_solicitations() {
        let mut r: Resolver<u32> = Resolver::new(NeighParams::default(), 1, Duration::ZERO);
        let mut out = Vec::new();
        r.announce(&locals(), &mut out);
        assert!(out.is_empty(), "arp_notify and ndisc_notify are off by default, as in Linux");
        let p = NeighParams { arp_notify: true, ndisc_notify: true, ..NeighParams::default() };
        let mut r: Resolver<u32> = Resolver::new(p, 1, Duration::ZERO);
        r.announce(&locals(), &mut out);
        let f = frames(&out);
        assert_eq!(f.len(), 2);
        let garp = ArpRepr::check(&f[0][14..]).unwrap();
        assert_eq!((garp.spa, garp.tpa), (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(f[1][54 + 4], 0xa0, "unsolicited NA: Router and Override");
        out.clear();
        // The port lost its IPv6 address: the solicitation is counted, not sent.
        let v4_only = vec![Some(Local { ipv6: None, ..locals()[0].unwrap() })];
        r.resolve(key("2001:db8::2"), 1, 101, Duration::ZERO, &v4_only, &mut out);
        assert!(frames(&out).is_empty());
        assert_eq!(r.stats().0.solicit_unsendable, 1);
        assert_eq!(r.clear(), [1]);
    }
}
