//! Helpers shared by the integration tests: unique EAL file prefixes, the EAL
//! arguments every test process uses, scratch directories and test frames.
//!
//! Each test binary includes this with `mod common;` and uses a part of it.

#![allow(dead_code)]

use std::fs::File;
use std::io::{BufReader, BufWriter, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use pcap_file::pcap::{PcapPacket, PcapReader, PcapWriter};
use pcap_file::DataLink;

/// EAL arguments for every test process: no hugepages (ordinary memory is
/// enough for vdevs), no shared-config files under the runtime directory, no
/// telemetry socket. `--in-memory` would do the last two at once, but DPDK
/// 22.11 refuses it together with `--no-huge` ("--legacy-mem is not
/// compatible with --in-memory"). `--no-pci` is not here: `Config::eal_args`
/// adds it when no port is a PCI device.
pub const EAL_ARGS: &[&str] = &["--no-huge", "--no-shconf", "--no-telemetry", "-m", "512"];

/// `EAL_ARGS` as a TOML array, for `[eal] args = ...`.
pub fn eal_args_toml() -> String {
    let quoted: Vec<String> = EAL_ARGS.iter().map(|a| format!("{a:?}")).collect();
    format!("[{}]", quoted.join(", "))
}

/// A file prefix no other process uses: the test's tag and this process's pid.
pub fn unique_prefix(tag: &str) -> String {
    format!("dp-test-{tag}-{}", std::process::id())
}

/// Removes, when dropped (also on a panic), the runtime directory that EAL
/// creates for `prefix`. Create it before the `Eal` so that it drops after it.
pub struct RuntimeDir(pub String);

impl Drop for RuntimeDir {
    fn drop(&mut self) {
        remove_runtime_dir(&self.0);
    }
}

/// Removes what an EAL process with this (unique, per-pid) file prefix left behind: its
/// runtime directory, and the hugepage files a primary on hugepages keeps after exit so
/// that secondaries could attach (without this each run would strand its hugepages).
/// Only paths named after exactly this prefix are touched.
pub fn remove_runtime_dir(prefix: &str) {
    let mut bases = vec![PathBuf::from("/var/run/dpdk")];
    if let Some(xdg) = std::env::var_os("XDG_RUNTIME_DIR") {
        bases.push(Path::new(&xdg).join("dpdk"));
    }
    bases.push(PathBuf::from("/tmp/dpdk"));
    for base in bases {
        let _ = std::fs::remove_dir_all(base.join(prefix));
    }
    let hugepage_file = format!("{prefix}map_");
    if let Ok(entries) = std::fs::read_dir("/dev/hugepages") {
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with(&hugepage_file) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

/// A scratch directory under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    /// Creates `<tmp>/dataplane-<tag>-<pid>` afresh.
    pub fn new(tag: &str) -> TempDir {
        let path = std::env::temp_dir().join(format!("dataplane-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// A path inside the directory.
    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Frame lengths used by the tests: 60..=1514 bytes, spread over the range
/// (a stride coprime with the range's size, so consecutive frames differ).
pub fn frame_len(seq: u32) -> usize {
    const MIN: u32 = 60;
    const SPAN: u32 = 1514 - MIN + 1;
    (MIN + seq.wrapping_mul(797) % SPAN) as usize
}

/// A distinct Ethernet frame of `len` bytes: locally administered MACs,
/// the IEEE local-experimental EtherType 0x88b5, then `stream`, the sequence
/// number (big-endian) and a payload that depends on both.
pub fn frame(stream: u8, seq: u32, len: usize) -> Vec<u8> {
    assert!(len >= 19, "a frame holds at least its 19-byte header");
    let mut f = Vec::with_capacity(len);
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x02]); // dst
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x01]); // src
    f.extend_from_slice(&[0x88, 0xb5]);
    f.push(stream);
    f.extend_from_slice(&seq.to_be_bytes());
    let mut x = seq.wrapping_mul(2_654_435_761) ^ u32::from(stream) << 24;
    while f.len() < len {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        f.push((x >> 16) as u8);
    }
    f
}

/// Where two packet lists first differ, for a readable failure message.
pub fn first_difference(got: &[Vec<u8>], want: &[Vec<u8>]) -> Option<String> {
    if let Some(i) = got.iter().zip(want).position(|(g, w)| g != w) {
        let byte = got[i].iter().zip(&want[i]).position(|(g, w)| g != w);
        return Some(format!(
            "packet {i} differs: got {} bytes, want {} bytes, first differing byte {byte:?}",
            got[i].len(),
            want[i].len()
        ));
    }
    (got.len() != want.len()).then(|| format!("got {} packets, want {}", got.len(), want.len()))
}

/// Runs the `dataplane` binary with `args`, killing it if it has not finished after `limit`.
pub fn run_dataplane(args: &[&str], limit: Duration) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_dataplane"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot run the dataplane binary");
    // Read the pipes on threads so a chatty child cannot block on a full pipe.
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut v = Vec::new();
        stdout.read_to_end(&mut v).map(|_| v)
    });
    let err = std::thread::spawn(move || {
        let mut v = Vec::new();
        stderr.read_to_end(&mut v).map(|_| v)
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for dataplane") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("dataplane {args:?} still running after {limit:?}; killed it");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output { status, stdout: out.join().unwrap().unwrap(), stderr: err.join().unwrap().unwrap() }
}

/// `EAL_ARGS` with `-m` set to `megabytes`, as a TOML array for `[eal] args = ...`
/// (l3fwd's route tables alone take 128 MiB: 64 MiB each for rte_lpm and rte_lpm6).
pub fn eal_args_toml_with_memory(megabytes: u32) -> String {
    let mut args: Vec<String> = EAL_ARGS.iter().map(|a| (*a).to_owned()).collect();
    let m = args.iter().position(|a| a == "-m").expect("EAL_ARGS sets -m");
    args[m + 1] = megabytes.to_string();
    let quoted: Vec<String> = args.iter().map(|a| format!("{a:?}")).collect();
    format!("[{}]", quoted.join(", "))
}

/// Polls `done` every millisecond until it holds or `limit` passed; returns its last value.
pub fn wait_for(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Copies `frames` into mbufs from `pool` and enqueues them into `ring` in bursts of at
/// most 32, in order, retrying (for at most 10 s) while the ring is full.
pub fn send_frames(pool: &mempool::Pool, ring: &mempool::MbufRing, frames: &[Vec<u8>]) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut burst: mempool::Burst = mempool::Burst::new();
    for chunk in frames.chunks(burst.capacity()) {
        for f in chunk {
            let mut m = mempool::Mbuf::alloc(pool).unwrap_or_else(|e| panic!("pool {}: {e}", pool.name()));
            m.set_data(f).unwrap_or_else(|e| panic!("frame of {} bytes: {e}", f.len()));
            burst.push(m).expect("the burst has room for a chunk");
        }
        while !burst.is_empty() {
            if ring.enqueue(&mut burst) == 0 {
                assert!(Instant::now() < deadline, "ring {} stayed full for 10 s", ring.name());
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }
}

/// Dequeues everything in `ring`, in order, as byte vectors (each packet must be one
/// segment); the mbufs go back to their pool.
pub fn drain_frames(ring: &mempool::MbufRing) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut burst: mempool::Burst = mempool::Burst::new();
    while ring.dequeue(&mut burst) > 0 {
        for m in burst.as_slice() {
            assert_eq!(m.nb_segs(), 1, "packet {} out of {} is segmented", out.len(), ring.name());
            assert_eq!(m.pkt_len(), m.data_len(), "packet {} out of {}", out.len(), ring.name());
            out.push(m.data().to_vec());
        }
        burst.clear();
    }
    out
}

/// The MAC address of ethdev `port` (`rte_eth_macaddr_get`).
///
/// # Panics
/// If DPDK refuses (no such port).
pub fn port_mac(port: dataplane::port::PortId) -> [u8; 6] {
    let mut addr = dpdk_sys::rte_ether_addr::default();
    // SAFETY: writes 6 bytes into `addr`, which lives across the call.
    let ret = unsafe { dpdk_sys::rte_eth_macaddr_get(port.0, &mut addr) };
    assert_eq!(ret, 0, "rte_eth_macaddr_get({port})");
    addr.addr_bytes
}

/// Gives a net_ring port (whose MAC is 00:00:00:00:00:00 and which does not implement
/// `rte_eth_dev_default_mac_addr_set`) the MAC `mac`: `rte_eth_dev_mac_addr_add` puts
/// an address into the first all-zero slot, which for such a port is slot 0, the
/// address `rte_eth_macaddr_get` reports. Checks that it did.
///
/// # Panics
/// If DPDK refuses, or the port's MAC is not `mac` afterwards.
pub fn set_ring_port_mac(port: dataplane::port::PortId, mac: [u8; 6]) {
    let mut addr = dpdk_sys::rte_ether_addr { addr_bytes: mac };
    // SAFETY: DPDK reads 6 bytes from `addr`, which lives across the call.
    let ret = unsafe { dpdk_sys::rte_eth_dev_mac_addr_add(port.0, &mut addr, 0) };
    assert_eq!(ret, 0, "rte_eth_dev_mac_addr_add({port}, {mac:02x?})");
    assert_eq!(port_mac(port), mac, "{port}: slot 0 did not take the MAC (was it not all-zero?)");
}

/// Writes `frames` to an Ethernet pcap file.
pub fn write_pcap(path: &Path, frames: &[Vec<u8>]) {
    let file = File::create(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut w = PcapWriter::new(BufWriter::new(file)).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    for (i, f) in frames.iter().enumerate() {
        let ts = Duration::from_millis(1_700_000_000_000 + i as u64);
        w.write_packet(&PcapPacket::new(ts, f.len() as u32, f)).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
    let mut inner = w.into_writer();
    std::io::Write::flush(&mut inner).unwrap();
}

/// The packets of a pcap file (Ethernet), checking each was captured whole.
pub fn read_pcap(path: &Path) -> Vec<Vec<u8>> {
    let file = File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut r = PcapReader::new(BufReader::new(file)).unwrap_or_else(|e| panic!("{}: not a pcap file: {e}", path.display()));
    assert_eq!(r.header().datalink, DataLink::ETHERNET, "{}", path.display());
    let mut out = Vec::new();
    while let Some(p) = r.next_packet() {
        let p = p.unwrap_or_else(|e| panic!("{}: packet {}: {e}", path.display(), out.len()));
        assert_eq!(p.orig_len as usize, p.data.len(), "{}: packet {} truncated", path.display(), out.len());
        out.push(p.data.into_owned());
    }
    out
}

/// Two net_null ports in an io pair and one worker on lcore 1 polling both (like
/// configs/null.toml), with the tests' EAL arguments and `prefix` as file prefix.
pub fn null_pair_config(prefix: &str) -> String {
    format!(
        r#"[eal]
file_prefix = "{prefix}"
args = {args}

[forward]
pairs = [["null0", "null1"]]

[[port]]
name = "null0"
device = "net_null0"
args = "size=64,copy=0"

[[port]]
name = "null1"
device = "net_null1"
args = "size=64,copy=0"

[[worker]]
lcore = 1
rx = [{{ port = "null0", queue = 0 }}, {{ port = "null1", queue = 0 }}]
"#,
        args = eal_args_toml()
    )
}

/// An Ethernet/IPv4 ICMP echo request from 10.0.0.2 (MAC `src_mac`) to `dst` (MAC
/// `dst_mac`), identifier `id`, sequence `seq`, `payload` bytes of 0x55; checksums valid,
/// padded to 60 bytes.
pub fn icmp_echo_request(dst_mac: [u8; 6], src_mac: [u8; 6], dst: [u8; 4], id: u16, seq: u16, payload: usize) -> Vec<u8> {
    use dataplane::net::{emit, ethernet::ethertype, ip_proto, l4::icmp_type, MacAddr};
    let icmp = emit::icmp(icmp_type::ECHO_REQUEST, 0, emit::echo_rest(id, seq), &vec![0x55; payload]);
    let ip = emit::Ipv4Repr { ident: 0, ..emit::Ipv4Repr::new([10, 0, 0, 2].into(), dst.into(), ip_proto::ICMP) }.emit(&icmp);
    emit::ethernet(MacAddr(dst_mac), MacAddr(src_mac), &[], ethertype::IPV4, &ip)
}

/// A `dpdk-dumpcap` command (package dpdk) that cannot see the host's PCI devices.
///
/// dpdk-dumpcap 22.11 builds its own EAL arguments (only `--file-prefix` is passed
/// through: no `--no-pci`, no allow-list), so its EAL would scan the host's PCI bus and
/// try its NIC. It runs instead in a private mount namespace (`unshare --mount`, which
/// makes every mount private) where an empty tmpfs covers `/sys/bus/pci/devices`: the
/// scan finds nothing. The forwarders in the tests have vdev ports only, so nothing is
/// lost. Needs CAP_SYS_ADMIN (the tests that run dumpcap need root for hugepages anyway).
pub fn dumpcap_command() -> Command {
    let mut cmd = Command::new("unshare");
    cmd.args([
        "--mount",
        "--",
        "sh",
        "-c",
        "if [ -d /sys/bus/pci/devices ]; then \
           mount -t tmpfs -o size=4k,mode=0555 dp-no-pci /sys/bus/pci/devices || exit 125; \
         fi; exec dpdk-dumpcap \"$@\"",
        "dpdk-dumpcap",
    ]);
    cmd
}

/// A net_ring port for a forwarder running in the test's process
/// (`rte_eth_from_rings`): the test enqueues frames into `rx` (what the port receives)
/// and finds what the forwarder sent in `tx`.
pub struct RingPort {
    pub id: dataplane::port::PortId,
    pub rx: mempool::MbufRing,
    pub tx: mempool::MbufRing,
}

impl RingPort {
    /// Rings `<tag>_rx` and `<tag>_tx` holding up to `capacity` mbufs each, and the ethdev
    /// `net_ring_<tag>` over them (the config's `device`), checked to be found under that
    /// name as the forwarder will look it up.
    ///
    /// # Panics
    /// If DPDK refuses a ring or the port (a name taken, no memory).
    pub fn create(tag: &str, capacity: u32) -> RingPort {
        RingPort::with_capacities(tag, capacity, capacity)
    }

    /// As `create`, with TX and RX rings of their own sizes (a small TX ring nobody reads
    /// fills up: the way to refuse the forwarder's TX).
    pub fn with_capacities(tag: &str, rx_capacity: u32, tx_capacity: u32) -> RingPort {
        use mempool::{MbufRing, SocketId};
        let ring = |dir: &str, capacity: u32| {
            let name = format!("{tag}_{dir}");
            MbufRing::create(&name, capacity, SocketId::ANY).unwrap_or_else(|e| panic!("ring {name}: {e}"))
        };
        let (rx, tx) = (ring("rx", rx_capacity), ring("tx", tx_capacity));
        let name = format!("net_ring_{tag}");
        let id =
            dataplane::port::create_ring_port(&name, &rx, &tx, SocketId::ANY).unwrap_or_else(|e| panic!("ring port {name}: {e}"));
        assert_eq!(
            dataplane::port::find_port(&name),
            Some(id),
            "create_ring_port({name:?}) returned {id}, but no ethdev is named {name:?}: the forwarder \
             would not find this port (rte_eth_from_rings names its ethdev \"net_ring_\" + its argument)"
        );
        RingPort { id, rx, tx }
    }

    /// Gives the port the MAC `mac` (`set_ring_port_mac`: a net_ring port starts all-zero).
    pub fn with_mac(self, mac: [u8; 6]) -> RingPort {
        set_ring_port_mac(self.id, mac);
        self
    }
}

/// A pool of `size` mbufs (2,176-byte data rooms, no cache) for the frames a test sends,
/// apart from the forwarder's own pool so that what each holds can be told apart.
///
/// # Panics
/// If DPDK refuses it (a name taken, no memory).
pub fn test_pool(name: &str, size: u32) -> mempool::Pool {
    mempool::Pool::create(&mempool::PoolParams {
        name: name.into(),
        size,
        cache: 0,
        priv_size: 0,
        data_room: 2176,
        socket: mempool::SocketId::ANY,
    })
    .unwrap_or_else(|e| panic!("test pool {name}: {e}"))
}

/// Starts EAL once for a test binary whose tests share it (`EAL_ARGS`, `--no-pci`, one
/// lcore, file prefix `<tag>-<pid>`) and returns the lock that serialises those tests.
/// EAL lives as long as the process: it is never cleaned up, so its runtime directory
/// (none: `--no-shconf`) and memory go with the process.
///
/// # Panics
/// If EAL does not start.
pub fn shared_eal(tag: &str) -> std::sync::MutexGuard<'static, ()> {
    use std::sync::{Mutex, OnceLock};
    static EAL: OnceLock<dataplane::eal::Eal> = OnceLock::new();
    static TURN: Mutex<()> = Mutex::new(());
    EAL.get_or_init(|| {
        let mut args: Vec<String> = vec![tag.to_owned()];
        args.extend(EAL_ARGS.iter().map(|a| (*a).to_owned()));
        let prefix = format!("{tag}-{}", std::process::id());
        args.extend(["--no-pci", "-l", "0", "--log-level", "lib.eal:error", "--file-prefix", &prefix].map(String::from));
        let eal = dataplane::eal::Eal::init(&args).unwrap_or_else(|e| panic!("EAL did not start ({e}); arguments: {args:?}"));
        // With --no-shconf and --no-telemetry nothing lives in EAL's runtime directory, and
        // a static EAL is never cleaned up: remove it now rather than leave one per run.
        remove_runtime_dir(&prefix);
        eal
    });
    // A test that failed while holding the lock left nothing half-done that others share.
    TURN.lock().unwrap_or_else(|e| e.into_inner())
}
