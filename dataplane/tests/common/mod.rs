//! Helpers shared by the integration tests: unique EAL file prefixes, the EAL
//! arguments every test process uses, scratch directories and test frames.
//!
//! Each test binary includes this with `mod common;` and uses a part of it.

#![allow(dead_code)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

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

/// Removes the (empty, thanks to `--no-shconf`) EAL runtime directory that a
/// process with this file prefix left behind. Only ever removes an empty
/// directory of exactly that name.
pub fn remove_runtime_dir(prefix: &str) {
    let mut bases = vec![PathBuf::from("/var/run/dpdk")];
    if let Some(xdg) = std::env::var_os("XDG_RUNTIME_DIR") {
        bases.push(Path::new(&xdg).join("dpdk"));
    }
    bases.push(PathBuf::from("/tmp/dpdk"));
    for base in bases {
        let _ = std::fs::remove_dir(base.join(prefix));
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
