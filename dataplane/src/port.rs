//! Ethernet ports: finding a probed device, configuring its queues, starting, stopping,
//! reading its counters, and the RX/TX queue handles the workers poll.
//!
//! A [`Port`] owns one ethdev from configuration to close: dropping it stops and closes the
//! device, which releases every mbuf still sitting in its descriptor rings.

use std::ffi::{CStr, CString};
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mempool::{Burst, DpdkError, Pool, SocketId};

use crate::net::MacAddr;

/// An ethdev port id; prints as `port0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortId(pub u16);

impl fmt::Display for PortId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "port{}", self.0)
    }
}

/// A port's position in the config's `[[port]]` list: what the config, the workers' TX
/// buffers and the counters index ports by. Prints as the config key, `port[0]`. The
/// ethdev id EAL gave the device is a [`PortId`]; a [`PortTable`] maps one to the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct PortIdx(pub u16);

impl PortIdx {
    /// The position, for indexing per-port arrays.
    #[inline]
    pub const fn index(self) -> usize {
        self.0 as usize
    }

    /// Every index below `ports`, in config order.
    pub fn all(ports: usize) -> impl Iterator<Item = PortIdx> {
        (0..ports).map(|i| PortIdx(i as u16))
    }
}

impl fmt::Display for PortIdx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "port[{}]", self.0)
    }
}

/// The one map between config order ([`PortIdx`]) and ethdev ids ([`PortId`]), both ways
/// in O(1): built once the ports are found, then shared read-only (the slow path and the
/// workers turn an mbuf's `port` field into the config's port with it).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PortTable {
    /// By `PortIdx`.
    ids: Vec<PortId>,
    /// By ethdev id.
    idx: Vec<Option<PortIdx>>,
}

impl PortTable {
    /// The table for ports whose ethdev ids, in config order, are `ids`.
    ///
    /// # Panics
    /// If an id appears twice (one device cannot be two config ports).
    pub fn new(ids: Vec<PortId>) -> PortTable {
        let mut idx = vec![None; ids.iter().map(|id| usize::from(id.0) + 1).max().unwrap_or(0)];
        for (i, id) in ids.iter().enumerate() {
            let slot = &mut idx[usize::from(id.0)];
            assert!(slot.is_none(), "{id} is two config ports");
            *slot = Some(PortIdx(i as u16));
        }
        PortTable { ids, idx }
    }

    /// The ethdev id of config port `p`.
    ///
    /// # Panics
    /// If `p` is not below [`PortTable::len`].
    #[inline]
    pub fn id(&self, p: PortIdx) -> PortId {
        self.ids[p.index()]
    }

    /// The config port of ethdev `id`, if it is one.
    #[inline]
    pub fn idx(&self, id: PortId) -> Option<PortIdx> {
        self.idx.get(usize::from(id.0)).copied().flatten()
    }

    /// Number of ports.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether there is no port.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Every port, in config order.
    pub fn iter(&self) -> impl Iterator<Item = (PortIdx, PortId)> + '_ {
        self.ids.iter().enumerate().map(|(i, &id)| (PortIdx(i as u16), id))
    }
}

/// A queue index on a port; prints as `q0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QueueId(pub u16);

impl fmt::Display for QueueId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "q{}", self.0)
    }
}

/// How to set a port up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortSetup {
    /// RX queues; with more than one, RSS over IP/TCP/UDP spreads flows across them.
    pub rx_queues: u16,
    /// TX queues.
    pub tx_queues: u16,
    /// RX descriptors per queue (the PMD may round it).
    pub rx_desc: u16,
    /// TX descriptors per queue (the PMD may round it).
    pub tx_desc: u16,
    /// Accept every destination MAC.
    pub promiscuous: bool,
    /// Set this MTU; `None` leaves the device's.
    pub mtu: Option<u16>,
}

/// A snapshot of the device's own counters (`rte_eth_stats_get`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PortStats {
    /// Packets received.
    pub ipackets: u64,
    /// Packets sent.
    pub opackets: u64,
    /// Bytes received.
    pub ibytes: u64,
    /// Bytes sent.
    pub obytes: u64,
    /// Packets the NIC dropped because no RX descriptor was free (RX ring full).
    pub imissed: u64,
    /// Erroneous received packets.
    pub ierrors: u64,
    /// Failed transmissions.
    pub oerrors: u64,
    /// RX mbuf allocation failures (pool empty).
    pub rx_nombuf: u64,
}

impl PortStats {
    /// The counters as an array, in declaration order.
    fn fields(&self) -> [u64; 8] {
        [self.ipackets, self.opackets, self.ibytes, self.obytes, self.imissed, self.ierrors, self.oerrors, self.rx_nombuf]
    }

    fn from_fields(f: [u64; 8]) -> Self {
        let [ipackets, opackets, ibytes, obytes, imissed, ierrors, oerrors, rx_nombuf] = f;
        PortStats { ipackets, opackets, ibytes, obytes, imissed, ierrors, oerrors, rx_nombuf }
    }
}

/// Keeps a port's counters monotonic when the PMD resets its own: net_memif, for one,
/// starts again from 0 when its peer disconnects and reconnects. Each reading is compared
/// with the previous one; a counter that went backwards was reset, and what it had
/// counted until the last reading is kept in a base added to every later reading (as
/// Prometheus's `rate()` treats a counter reset). What the device counted between the last
/// reading and the reset is lost: read often (the control thread reads every 250 ms).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct MonotonicStats {
    last: PortStats,
    base: PortStats,
}

impl MonotonicStats {
    /// Takes a raw reading of the device's counters and returns the monotonic totals.
    pub fn update(&mut self, raw: PortStats) -> PortStats {
        let (mut base, last, now) = (self.base.fields(), self.last.fields(), raw.fields());
        let mut total = [0; 8];
        for i in 0..8 {
            if now[i] < last[i] {
                base[i] += last[i];
            }
            total[i] = base[i] + now[i];
        }
        self.base = PortStats::from_fields(base);
        self.last = raw;
        PortStats::from_fields(total)
    }
}

/// Link state as the PMD reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkStatus {
    /// Whether the link is up.
    pub up: bool,
    /// DPDK's text for it, e.g. "Link up at 10 Gbps FDX Fixed".
    pub text: String,
}

/// A port failure, naming the step.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{port}: {error}")]
pub struct PortError {
    /// The port.
    pub port: PortId,
    /// The DPDK call and errno.
    pub error: DpdkError,
}

fn check(port: PortId, op: &'static str, ret: i32) -> Result<(), PortError> {
    if ret < 0 {
        Err(PortError { port, error: DpdkError::from_ret(op, ret) })
    } else {
        Ok(())
    }
}

/// Creates a virtual device after EAL start-up (`rte_vdev_init`), e.g. `net_null0` with
/// `size=64`. Creating it here rather than with EAL's `--vdev` lets an unknown driver be
/// reported against the config's port instead of failing EAL as a whole.
///
/// # Errors
/// [`VdevError`] with DPDK's return value: no driver matches the name, or the driver
/// refused its arguments (DPDK returns a bare -1 for both, so there is no errno to give).
pub fn create_vdev(name: &str, args: &str) -> Result<(), VdevError> {
    let cname = CString::new(name).map_err(|_| VdevError { ret: -libc::EINVAL })?;
    let cargs = CString::new(args).map_err(|_| VdevError { ret: -libc::EINVAL })?;
    // SAFETY: both strings outlive the call; the driver copies what it keeps.
    let ret = unsafe { dpdk_sys::rte_vdev_init(cname.as_ptr(), cargs.as_ptr()) };
    if ret < 0 {
        Err(VdevError { ret })
    } else {
        Ok(())
    }
}

/// `rte_vdev_init` failed.
#[derive(Debug, PartialEq, Eq)]
pub struct VdevError {
    /// What rte_vdev_init returned.
    pub ret: i32,
}

impl std::fmt::Display for VdevError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.ret == -libc::EEXIST {
            write!(f, "a device of this name already exists (rte_vdev_init returned -EEXIST)")
        } else {
            write!(
                f,
                "no vdev driver matches the name, or the driver refused its arguments (rte_vdev_init returned {}; EAL's log above says which)",
                self.ret
            )
        }
    }
}

impl std::error::Error for VdevError {}

/// Whether the PMD `driver` is known to deliver mbuf chains whose lengths disagree, so that
/// packets received on its ports are checked by default (`[[port]] check_chains`):
/// DPDK 22.11's `net_pcap` sets `pkt_len` to the captured length cut to 16 bits, so a frame
/// over 65,535 bytes arrives as a chain whose `pkt_len` is short of its data, and a TX PMD
/// that trusts it (net_pcap's own `rte_pktmbuf_read`) crashes.
pub fn builds_bad_chains(driver: &str) -> bool {
    matches!(driver, "net_pcap")
}

/// The ethdev port named `name` (a vdev name or a PCI address), if EAL probed it.
pub fn find_port(name: &str) -> Option<PortId> {
    let cname = CString::new(name).ok()?;
    let mut id = 0u16;
    // SAFETY: cname outlives the call; id is written on success only.
    let ret = unsafe { dpdk_sys::rte_eth_dev_get_port_by_name(cname.as_ptr(), &mut id) };
    (ret == 0).then_some(PortId(id))
}

/// An ethdev owned from configuration to close.
///
/// Starting it creates one [`RxQueue`] and one [`TxQueue`] handle per queue, which the
/// caller takes ([`Port::take_rx`], [`Port::take_tx`]) and moves to the lcore that polls
/// it. The port is stopped and closed only once every handle is gone again: a handle can
/// never poll a stopped port.
#[derive(Debug)]
pub struct Port {
    id: PortId,
    driver: String,
    /// While started: the token every queue handle holds a reference to.
    started: Option<Arc<Started>>,
    /// Handles not yet taken, by queue.
    rx: Vec<Option<RxQueue>>,
    tx: Vec<Option<TxQueue>>,
    closed: bool,
    /// The device's counters, kept monotonic across its resets.
    counters: std::sync::Mutex<MonotonicStats>,
}

/// Proof that a port is started; each queue handle holds a reference.
#[derive(Debug)]
struct Started;

impl Port {
    /// Takes over port `id` (found with [`find_port`]) and reads its driver name.
    ///
    /// # Errors
    /// When `rte_eth_dev_info_get` fails.
    pub fn open(id: PortId) -> Result<Port, PortError> {
        let info = dev_info(id)?;
        // SAFETY: driver_name is a static NUL-terminated string owned by the PMD.
        let driver = unsafe { CStr::from_ptr(info.driver_name) }.to_string_lossy().into_owned();
        Ok(Port { id, driver, started: None, rx: Vec::new(), tx: Vec::new(), closed: false, counters: Default::default() })
    }

    /// The port id.
    pub fn id(&self) -> PortId {
        self.id
    }

    /// The PMD's name, e.g. `net_null`, `mlx5_pci`, `net_e1000_igb`.
    pub fn driver(&self) -> &str {
        &self.driver
    }

    /// The NUMA socket the device sits on; vdevs report none, and then `fallback` is used.
    pub fn socket(&self, fallback: SocketId) -> SocketId {
        // SAFETY: a lookup by a valid port id.
        let s = unsafe { dpdk_sys::rte_eth_dev_socket_id(self.id.0) };
        if s < 0 {
            fallback
        } else {
            SocketId(s)
        }
    }

    /// The port's MAC address.
    pub fn mac(&self) -> MacAddr {
        let mut addr = dpdk_sys::rte_ether_addr::default();
        // SAFETY: writes 6 bytes into addr for a valid port.
        unsafe { dpdk_sys::rte_eth_macaddr_get(self.id.0, &mut addr) };
        MacAddr(addr.addr_bytes)
    }

    /// Configures queues (RSS when more than one RX queue), sets the MTU, sets every RX queue
    /// up to take buffers from `pool`, starts the device and applies promiscuous mode.
    ///
    /// # Errors
    /// The first DPDK call that fails, by name. Promiscuous mode that the PMD does not support
    /// is not an error.
    pub fn configure_and_start(&mut self, setup: &PortSetup, pool: &Pool, socket: SocketId) -> Result<(), PortError> {
        let id = self.id;
        let info = dev_info(id)?;
        let mut conf = dpdk_sys::rte_eth_conf::default();
        if setup.rx_queues > 1 {
            conf.rxmode.mq_mode = dpdk_sys::rte_eth_rx_mq_mode_RTE_ETH_MQ_RX_RSS;
            // SAFETY: returns a constant.
            let wanted = unsafe { dpdk_sys::dp_eth_rss_ip_tcp_udp() };
            conf.rx_adv_conf.rss_conf.rss_hf = wanted & info.flow_type_rss_offloads;
        }
        // SAFETY: conf is a valid, fully initialised rte_eth_conf; DPDK copies it.
        check(id, "rte_eth_dev_configure", unsafe {
            dpdk_sys::rte_eth_dev_configure(id.0, setup.rx_queues, setup.tx_queues, &conf)
        })?;
        let (mut rxd, mut txd) = (setup.rx_desc, setup.tx_desc);
        // SAFETY: rxd/txd are valid for writes; DPDK clamps them to the device's limits.
        check(id, "rte_eth_dev_adjust_nb_rx_tx_desc", unsafe {
            dpdk_sys::rte_eth_dev_adjust_nb_rx_tx_desc(id.0, &mut rxd, &mut txd)
        })?;
        if let Some(mtu) = setup.mtu {
            // SAFETY: a plain call on a configured port.
            check(id, "rte_eth_dev_set_mtu", unsafe { dpdk_sys::rte_eth_dev_set_mtu(id.0, mtu) })?;
        }
        for q in 0..setup.rx_queues {
            // SAFETY: NULL rxconf selects the PMD's defaults; the pool outlives the port
            // (the runtime closes ports before it frees pools).
            check(id, "rte_eth_rx_queue_setup", unsafe {
                dpdk_sys::rte_eth_rx_queue_setup(id.0, q, rxd, socket.0 as u32, std::ptr::null(), pool.as_ptr())
            })?;
        }
        for q in 0..setup.tx_queues {
            // SAFETY: NULL txconf selects the PMD's defaults.
            check(id, "rte_eth_tx_queue_setup", unsafe {
                dpdk_sys::rte_eth_tx_queue_setup(id.0, q, txd, socket.0 as u32, std::ptr::null())
            })?;
        }
        // SAFETY: every queue is set up.
        check(id, "rte_eth_dev_start", unsafe { dpdk_sys::rte_eth_dev_start(id.0) })?;
        let started = Arc::new(Started);
        self.rx = (0..setup.rx_queues)
            .map(|q| Some(RxQueue { port: id, queue: QueueId(q), _started: started.clone(), _not_sync: PhantomData }))
            .collect();
        self.tx = (0..setup.tx_queues)
            .map(|q| Some(TxQueue { port: id, queue: QueueId(q), _started: started.clone(), _not_sync: PhantomData }))
            .collect();
        self.started = Some(started);
        if setup.promiscuous {
            // SAFETY: a plain call on a started port. -ENOTSUP is fine: some vdevs have no filter.
            let ret = unsafe { dpdk_sys::rte_eth_promiscuous_enable(id.0) };
            if ret < 0 && ret != -libc::ENOTSUP {
                check(id, "rte_eth_promiscuous_enable", ret)?;
            }
        }
        Ok(())
    }

    /// Polls the link until it is up or `timeout` passed (l2fwd's check_all_ports_link_status).
    pub fn wait_link(&self, timeout: Duration) -> LinkStatus {
        let start = Instant::now();
        loop {
            let link = self.link();
            if link.up || start.elapsed() >= timeout {
                return link;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The link state now.
    pub fn link(&self) -> LinkStatus {
        let mut link = dpdk_sys::rte_eth_link::default();
        // SAFETY: writes link for a valid port without waiting.
        let ret = unsafe { dpdk_sys::rte_eth_link_get_nowait(self.id.0, &mut link) };
        if ret < 0 {
            return LinkStatus {
                up: false,
                text: format!("link unknown ({})", DpdkError::from_ret("rte_eth_link_get_nowait", ret)),
            };
        }
        let mut buf = [0 as std::ffi::c_char; 64];
        // SAFETY: rte_eth_link_to_str writes a NUL-terminated string of at most len bytes.
        unsafe { dpdk_sys::rte_eth_link_to_str(buf.as_mut_ptr(), buf.len(), &link) };
        // SAFETY: buf is NUL-terminated (written above, or zeroed).
        let text = unsafe { CStr::from_ptr(buf.as_ptr()) }.to_string_lossy().into_owned();
        LinkStatus { up: u32::from(link.link_status()) == dpdk_sys::RTE_ETH_LINK_UP, text }
    }

    /// The device's counters (`rte_eth_stats_get`), monotonic even where the PMD resets
    /// its own (see [`MonotonicStats`]).
    pub fn stats(&self) -> PortStats {
        let raw = stats(self.id);
        self.counters.lock().unwrap_or_else(|e| e.into_inner()).update(raw)
    }

    /// Zeroes the device's counters and extended counters (`rte_eth_stats_reset`,
    /// `rte_eth_xstats_reset`); a PMD without them keeps counting from where it was.
    pub fn reset_stats(&self) {
        // SAFETY: both only touch the port's own counters; a valid port id.
        unsafe {
            dpdk_sys::rte_eth_stats_reset(self.id.0);
            dpdk_sys::rte_eth_xstats_reset(self.id.0);
        }
    }

    /// Sets the link up or down (`rte_eth_dev_set_link_up` / `_down`), as `ip link set`.
    ///
    /// # Errors
    /// [`PortError`] with ENOTSUP when the PMD cannot (net_null), or what it said.
    pub fn set_link(&self, up: bool) -> Result<(), PortError> {
        if up {
            // SAFETY: a valid, started port; the PMD serialises with its own datapath.
            check(self.id, "rte_eth_dev_set_link_up", unsafe { dpdk_sys::rte_eth_dev_set_link_up(self.id.0) })
        } else {
            // SAFETY: as above.
            check(self.id, "rte_eth_dev_set_link_down", unsafe { dpdk_sys::rte_eth_dev_set_link_down(self.id.0) })
        }
    }

    /// The extended statistics, name and value, in the PMD's order (`rte_eth_xstats_get`).
    pub fn xstats(&self) -> Vec<(String, u64)> {
        // SAFETY: NULL with size 0 asks for the count only.
        let n = unsafe { dpdk_sys::rte_eth_xstats_get_names(self.id.0, std::ptr::null_mut(), 0) };
        if n <= 0 {
            return Vec::new();
        }
        let mut names = vec![dpdk_sys::rte_eth_xstat_name::default(); n as usize];
        let mut values = vec![dpdk_sys::rte_eth_xstat::default(); n as usize];
        // SAFETY: both arrays have n entries, the size passed.
        let got_names = unsafe { dpdk_sys::rte_eth_xstats_get_names(self.id.0, names.as_mut_ptr(), n as u32) };
        // SAFETY: as above.
        let got = unsafe { dpdk_sys::rte_eth_xstats_get(self.id.0, values.as_mut_ptr(), n as u32) };
        if got_names != n || got != n {
            return Vec::new();
        }
        values
            .iter()
            .filter_map(|v| {
                let name = names.get(v.id as usize)?;
                // SAFETY: DPDK writes NUL-terminated names into the fixed-size array.
                let text = unsafe { CStr::from_ptr(name.name.as_ptr()) }.to_string_lossy().into_owned();
                Some((text, v.value))
            })
            .collect()
    }

    /// Takes the handle of RX queue `q`: there is one per queue, from the port's start.
    /// `None` when the port is not started, the queue does not exist or was taken.
    pub fn take_rx(&mut self, q: QueueId) -> Option<RxQueue> {
        self.rx.get_mut(usize::from(q.0))?.take()
    }

    /// Takes the handle of TX queue `q`, as [`Port::take_rx`].
    pub fn take_tx(&mut self, q: QueueId) -> Option<TxQueue> {
        self.tx.get_mut(usize::from(q.0))?.take()
    }

    /// Stops and closes the device; the PMD frees every mbuf left in its rings.
    ///
    /// # Errors
    /// [`PortError`] with `EBUSY` (`rte_eth_dev_stop`) while a queue handle taken from it
    /// still exists; otherwise the failing DPDK call.
    pub fn close(mut self) -> Result<(), PortError> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<(), PortError> {
        self.rx.clear();
        self.tx.clear();
        if let Some(started) = self.started.take() {
            if let Err(started) = Arc::try_unwrap(started) {
                // A handle is still out there: stopping now could let it poll a stopped
                // port. Leave the port running (the process is ending anyway).
                self.started = Some(started);
                return Err(PortError { port: self.id, error: DpdkError { op: "rte_eth_dev_stop", errno: libc::EBUSY } });
            }
            // SAFETY: no queue handle exists any more, so nothing polls the port.
            check(self.id, "rte_eth_dev_stop", unsafe { dpdk_sys::rte_eth_dev_stop(self.id.0) })?;
        }
        if self.closed {
            return Ok(());
        }
        self.closed = true;
        let mut name = [0 as std::ffi::c_char; dpdk_sys::RTE_ETH_NAME_MAX_LEN as usize];
        // SAFETY: writes a NUL-terminated name of at most RTE_ETH_NAME_MAX_LEN bytes.
        let named = unsafe { dpdk_sys::rte_eth_dev_get_name_by_port(self.id.0, name.as_mut_ptr()) } == 0;
        // SAFETY: the port is stopped; close releases its queues and their mbufs.
        check(self.id, "rte_eth_dev_close", unsafe { dpdk_sys::rte_eth_dev_close(self.id.0) })?;
        if named {
            // A vdev stays on the vdev bus under its name until uninit, and creating it
            // again would fail; a PCI device is not on that bus (-ENOENT), which is fine.
            // SAFETY: name is NUL-terminated; the device's only port is closed.
            unsafe { dpdk_sys::rte_vdev_uninit(name.as_ptr()) };
        }
        Ok(())
    }
}

impl Drop for Port {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

/// Creates an ethdev named `name` whose RX queue reads from `rx` and whose TX queue writes
/// to `tx` (`rte_eth_from_rings`): a port another part of the process can feed and drain.
/// `name` must start with `net_ring_` (the driver prefixes the name it is given with it).
/// Both rings must outlive the port.
///
/// # Errors
/// When the net_ring driver refuses (for example a duplicate name).
pub fn create_ring_port(
    name: &str,
    rx: &mempool::MbufRing,
    tx: &mempool::MbufRing,
    socket: SocketId,
) -> Result<PortId, DpdkError> {
    let invalid = DpdkError { op: "rte_eth_from_rings", errno: libc::EINVAL };
    // rte_eth_from_rings names the ethdev "net_ring_" + its argument: pass the rest.
    let suffix = name.strip_prefix("net_ring_").filter(|s| !s.is_empty()).ok_or(invalid)?;
    let cname = CString::new(suffix).map_err(|_| invalid)?;
    let mut rxs = [rx.as_ptr()];
    let mut txs = [tx.as_ptr()];
    // SAFETY: the arrays hold one valid ring each and are read during the call only; the
    // driver keeps the ring pointers, which the caller keeps alive (documented above).
    let ret = unsafe { dpdk_sys::rte_eth_from_rings(cname.as_ptr(), rxs.as_mut_ptr(), 1, txs.as_mut_ptr(), 1, socket.0 as u32) };
    if ret < 0 {
        Err(DpdkError::last("rte_eth_from_rings"))
    } else {
        Ok(PortId(ret as u16))
    }
}

fn dev_info(id: PortId) -> Result<dpdk_sys::rte_eth_dev_info, PortError> {
    let mut info = dpdk_sys::rte_eth_dev_info::default();
    // SAFETY: writes info for the given port; fails cleanly for an invalid id.
    check(id, "rte_eth_dev_info_get", unsafe { dpdk_sys::rte_eth_dev_info_get(id.0, &mut info) })?;
    Ok(info)
}

fn stats(id: PortId) -> PortStats {
    let mut s = dpdk_sys::rte_eth_stats::default();
    // SAFETY: writes s for the port; the PMD reads its queue counters (safe while polling).
    unsafe { dpdk_sys::rte_eth_stats_get(id.0, &mut s) };
    PortStats {
        ipackets: s.ipackets,
        opackets: s.opackets,
        ibytes: s.ibytes,
        obytes: s.obytes,
        imissed: s.imissed,
        ierrors: s.ierrors,
        oerrors: s.oerrors,
        rx_nombuf: s.rx_nombuf,
    }
}

/// An RX queue of a started port: the one handle through which it is polled. Created once
/// per queue by [`Port::configure_and_start`] and taken with [`Port::take_rx`]; not `Copy`
/// and not `Clone`, so the lcore that holds it is the queue's only poller (DPDK's RX
/// functions are not thread-safe on one queue). `Send`, so it can move to that lcore; the
/// port is not stopped while it exists.
#[derive(Debug)]
pub struct RxQueue {
    port: PortId,
    queue: QueueId,
    _started: Arc<Started>,
    /// Not `Sync`: polling needs `&mut self` anyway; this keeps shared references from
    /// crossing lcores.
    _not_sync: PhantomData<std::cell::Cell<()>>,
}

impl RxQueue {
    /// The port.
    pub fn port(&self) -> PortId {
        self.port
    }

    /// The queue.
    pub fn queue(&self) -> QueueId {
        self.queue
    }

    /// Receives up to `max` packets (and at most the burst's spare room) into `burst`:
    /// `rte_eth_rx_burst`, inline (see [`fp_ops`]).
    #[inline]
    pub fn rx_burst<const N: usize>(&mut self, burst: &mut Burst<N>, max: u16) -> usize {
        let (port, queue) = (self.port.0, usize::from(self.queue.0));
        let ops = fp_ops(self.port);
        // SAFETY: as rte_eth_rx_burst does: the port is started (this handle's `Started`
        // reference keeps it so), so its fast-path entry holds the PMD's burst function and
        // the queue's data, and stays unchanged while the handle exists; `&mut self` on the
        // one handle of this queue makes this call its only poller. The PMD writes
        // n <= room owned mbufs into the spare slots; the callbacks (rte_pdump's) may only
        // drop packets from the front n they are given. The callback list pointer is read
        // with a relaxed atomic load, as rte_eth_rx_burst reads it.
        unsafe {
            burst.fill_raw(|slots, room| {
                let nb = room.min(max);
                let rx = (*ops).rx_pkt_burst.unwrap_unchecked();
                let qd = *(*ops).rxq.data.add(queue);
                let n = rx(qd, slots, nb);
                let cb = (*(*ops).rxq.clbk.add(queue).cast::<std::sync::atomic::AtomicPtr<std::ffi::c_void>>())
                    .load(std::sync::atomic::Ordering::Relaxed);
                if cb.is_null() {
                    n
                } else {
                    dpdk_sys::rte_eth_call_rx_callbacks(port, queue as u16, slots, n, nb, cb)
                }
            })
        }
    }
}

/// `&rte_eth_fp_ops[port]`: the ethdev's fast-path table (`rte_ethdev_core.h`), which
/// `rte_eth_rx_burst` and `rte_eth_tx_burst` read inline in C; read inline here too rather
/// than through a shim call per burst.
#[inline(always)]
fn fp_ops(port: PortId) -> *const dpdk_sys::rte_eth_fp_ops {
    // A port id DPDK gave out is below RTE_MAX_ETHPORTS, the array's length; the pointer is
    // computed without reading anything.
    std::ptr::addr_of!(dpdk_sys::rte_eth_fp_ops).cast::<dpdk_sys::rte_eth_fp_ops>().wrapping_add(usize::from(port.0))
}

/// A TX queue of a started port: the one handle through which it is sent on, as
/// [`RxQueue`]. Each worker holds its own TX queue of every port it sends to.
#[derive(Debug)]
pub struct TxQueue {
    port: PortId,
    queue: QueueId,
    _started: Arc<Started>,
    _not_sync: PhantomData<std::cell::Cell<()>>,
}

impl TxQueue {
    /// The port.
    pub fn port(&self) -> PortId {
        self.port
    }

    /// The queue.
    pub fn queue(&self) -> QueueId {
        self.queue
    }

    /// Hands the front of `burst` to the NIC; returns how many it took. The rest stay in
    /// the burst. `rte_eth_tx_burst`, inline (see [`fp_ops`]).
    #[inline]
    pub fn tx_burst<const N: usize>(&mut self, burst: &mut Burst<N>) -> usize {
        let (port, queue) = (self.port.0, usize::from(self.queue.0));
        let ops = fp_ops(self.port);
        // SAFETY: as in RxQueue::rx_burst: the port is started and its fast-path entry
        // stable while this handle exists, and `&mut self` makes this lcore the queue's only
        // sender. The callbacks and the PMD take ownership of exactly the first n mbufs
        // they report.
        unsafe {
            burst.give_raw(|mbufs, len| {
                let cb = (*(*ops).txq.clbk.add(queue).cast::<std::sync::atomic::AtomicPtr<std::ffi::c_void>>())
                    .load(std::sync::atomic::Ordering::Relaxed);
                let len =
                    if cb.is_null() { len } else { dpdk_sys::rte_eth_call_tx_callbacks(port, queue as u16, mbufs, len, cb) };
                let tx = (*ops).tx_pkt_burst.unwrap_unchecked();
                tx(*(*ops).txq.data.add(queue), mbufs, len)
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_table_maps_both_ways() {
        let t = PortTable::new(vec![PortId(3), PortId(0), PortId(7)]);
        assert_eq!(t.len(), 3);
        assert_eq!(t.id(PortIdx(0)), PortId(3));
        assert_eq!(t.idx(PortId(7)), Some(PortIdx(2)));
        assert_eq!(t.idx(PortId(0)), Some(PortIdx(1)));
        assert_eq!(t.idx(PortId(1)), None);
        assert_eq!(t.idx(PortId(u16::MAX)), None);
        assert_eq!(t.iter().map(|(i, id)| (i.0, id.0)).collect::<Vec<_>>(), [(0, 3), (1, 0), (2, 7)]);
        assert_eq!(PortIdx(2).to_string(), "port[2]");
        assert_eq!(PortId(2).to_string(), "port2");
    }

    #[test]
    #[should_panic(expected = "two config ports")]
    fn one_device_is_one_port() {
        PortTable::new(vec![PortId(1), PortId(1)]);
    }

    #[test]
    fn counters_stay_monotonic_across_a_device_reset() {
        let reading = |ipackets, opackets| PortStats { ipackets, opackets, ..PortStats::default() };
        let mut m = MonotonicStats::default();
        assert_eq!(m.update(reading(10, 7)), reading(10, 7));
        assert_eq!(m.update(reading(25, 9)), reading(25, 9));
        // net_memif's peer went away: the PMD starts again from 0.
        assert_eq!(m.update(reading(0, 0)), reading(25, 9));
        assert_eq!(m.update(reading(4, 1)), reading(29, 10));
        // Only one counter reset: only that one is rebased.
        assert_eq!(m.update(reading(2, 3)), reading(31, 12));
    }
}
