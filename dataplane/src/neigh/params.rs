//! The neighbour subsystem's knobs, with the Linux kernel's defaults and sysctl names
//! (`/proc/sys/net/ipv{4,6}/neigh/default/*`, read from a 6.18 kernel; the same for ARP and
//! neighbour discovery).

use std::time::Duration;

/// Timers, probe counts, queue and table limits of one neighbour table
/// (`struct neigh_parms` and the table's `gc_thresh*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NeighParams {
    /// `base_reachable_time_ms` (30 s): REACHABLE lasts a random time uniform in
    /// [base / 2, 3 base / 2] (RFC 4861 REACHABLE_TIME with MIN/MAX_RANDOM_FACTOR), drawn
    /// again every 300 s (`neigh_rand_reach_time`). Periodic garbage collection runs every
    /// base / 2.
    pub base_reachable_time: Duration,
    /// `retrans_time_ms` (1 s): between two solicitations (RFC 4861 RETRANS_TIMER).
    pub retrans_time: Duration,
    /// `delay_first_probe_time` (5 s): how long DELAY waits for a confirmation before PROBE
    /// (RFC 4861 DELAY_FIRST_PROBE_TIME).
    pub delay_first_probe_time: Duration,
    /// `mcast_solicit` (3): multicast (IPv6) or broadcast (ARP) solicitations in INCOMPLETE
    /// before FAILED (RFC 4861 MAX_MULTICAST_SOLICIT).
    pub mcast_solicit: u32,
    /// `ucast_solicit` (3): unicast probes to the cached address in PROBE before FAILED
    /// (RFC 4861 MAX_UNICAST_SOLICIT).
    pub ucast_solicit: u32,
    /// `mcast_resolicit` (0): multicast solicitations in PROBE once the unicast ones went
    /// unanswered (RFC 7048).
    pub mcast_resolicit: u32,
    /// `unres_qlen` (101): packets held per INCOMPLETE entry; a new one beyond it drops the
    /// oldest (`unres_discards`). Every mbuf has the same truesize here, so this is
    /// `unres_qlen_bytes` / truesize.
    pub unres_qlen: u32,
    /// Not a Linux knob: the per-entry limit while the held packet's protocol account is
    /// under memory pressure (the queue is moderated like a socket's backlog).
    pub unres_qlen_under_pressure: u32,
    /// `gc_stale_time` (60 s): an entry unused this long may be collected.
    pub gc_stale_time: Duration,
    /// `gc_thresh1` (128): below this many entries periodic collection does nothing.
    pub gc_thresh1: u32,
    /// `gc_thresh2` (512): above it, a new entry first forces a collection if the last forced
    /// one is more than 5 s old.
    pub gc_thresh2: u32,
    /// `gc_thresh3` (1024): the hard maximum; a new entry that forced collection cannot make
    /// room for is refused ("neighbour table overflow", `table_fulls`).
    pub gc_thresh3: u32,
    /// `net.ipv4.conf.*.arp_notify` (off): send a gratuitous ARP for each of our IPv4
    /// addresses when the forwarder starts, so hosts that cached another MAC for it take ours.
    pub arp_notify: bool,
    /// `net.ipv6.conf.*.ndisc_notify` (off): send an unsolicited neighbour advertisement
    /// (Override set) for each of our IPv6 addresses when the forwarder starts.
    pub ndisc_notify: bool,
}

impl NeighParams {
    /// Linux's defaults.
    pub const LINUX: NeighParams = NeighParams {
        base_reachable_time: Duration::from_secs(30),
        retrans_time: Duration::from_secs(1),
        delay_first_probe_time: Duration::from_secs(5),
        mcast_solicit: 3,
        ucast_solicit: 3,
        mcast_resolicit: 0,
        unres_qlen: 101,
        unres_qlen_under_pressure: 3,
        gc_stale_time: Duration::from_secs(60),
        gc_thresh1: 128,
        gc_thresh2: 512,
        gc_thresh3: 1024,
        arp_notify: false,
        ndisc_notify: false,
    };

    /// Probes an entry in `state` may send before it fails (`neigh_max_probes`): unicast ones,
    /// then multicast ones (`mcast_solicit` in INCOMPLETE, `mcast_resolicit` in PROBE).
    pub(super) fn max_probes(&self, probe_state: bool) -> u32 {
        self.ucast_solicit + if probe_state { self.mcast_resolicit } else { self.mcast_solicit }
    }
}

impl Default for NeighParams {
    fn default() -> Self {
        Self::LINUX
    }
}
