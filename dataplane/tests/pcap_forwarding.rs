//! The `dataplane` binary on configs/pcap.toml, pointed at files in a scratch
//! directory: every frame of in.pcap must come out in out.pcap, in order and
//! byte for byte, the run must exit 0 and report its pool full.
//!
//! ```text
//!   in.pcap --RX--> pcap0 --forward--> pcap1 --TX--> out.pcap
//!   out0.pcap <--TX-- pcap0 <--forward-- pcap1 <--RX-- empty.pcap
//! ```
//! EAL runs in the child process (`--no-huge`, `--no-pci`, a per-pid file
//! prefix); this process never starts it.

mod common;

use std::path::Path;
use std::time::Duration;

use dataplane::Config;

/// Frames in in.pcap.
const FRAMES: u32 = 200;

/// configs/pcap.toml with its /tmp paths moved into `dir`, the test's EAL
/// arguments and a unique file prefix.
fn config_text(dir: &common::TempDir, prefix: &str) -> String {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/pcap.toml");
    let mut text = std::fs::read_to_string(&shipped).unwrap_or_else(|e| panic!("{}: {e}", shipped.display()));
    let eal_before = "[eal]\n";
    let args_before = r#"args = ["--no-huge", "-m", "512"]"#;
    let replacements = [
        ("/tmp/dataplane-in.pcap", dir.join("in.pcap").display().to_string()),
        ("/tmp/dataplane-empty.pcap", dir.join("empty.pcap").display().to_string()),
        ("/tmp/dataplane-out0.pcap", dir.join("out0.pcap").display().to_string()),
        ("/tmp/dataplane-out.pcap", dir.join("out.pcap").display().to_string()),
        (eal_before, format!("[eal]\nfile_prefix = \"{prefix}\"\n")),
        (args_before, format!("args = {}", common::eal_args_toml())),
    ];
    for (from, to) in replacements {
        assert!(text.contains(from), "{} no longer contains {from:?}; update this test", shipped.display());
        text = text.replace(from, &to);
    }
    text
}

#[test]
fn pcap_in_comes_out_unchanged() {
    let dir = common::TempDir::new("pcap");
    let prefix = common::unique_prefix("pcap");
    let _runtime_dir = common::RuntimeDir(prefix.clone());

    let frames: Vec<Vec<u8>> = (0..FRAMES).map(|seq| common::frame(0x5c, seq, common::frame_len(seq))).collect();
    let lens: Vec<usize> = frames.iter().map(Vec::len).collect();
    assert!(lens.iter().any(|&l| l < 100) && lens.iter().any(|&l| l > 1400), "sizes not mixed: {lens:?}");
    common::write_pcap(&dir.join("in.pcap"), &frames);
    common::write_pcap(&dir.join("empty.pcap"), &[]);

    let cfg = dir.join("pcap.toml");
    std::fs::write(&cfg, config_text(&dir, &prefix)).unwrap();
    // What EAL will be given: vdevs only, so --no-pci, and the test's options.
    let config = Config::load(&cfg).unwrap_or_else(|e| panic!("{e}"));
    let eal_args = config.eal_args("dataplane", &[]);
    for want in ["--no-pci", "--no-huge", prefix.as_str()] {
        assert!(eal_args.iter().any(|a| a == want), "EAL arguments lack {want}: {eal_args:?}");
    }

    let out = common::run_dataplane(&["--config", cfg.to_str().unwrap(), "--duration", "2"], Duration::from_secs(30));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let context = format!("\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}");
    // Shown by the harness on failure, or with --nocapture.
    println!("{context}");
    assert!(out.status.success(), "dataplane exited with {}{context}", out.status);

    let pool_lines: Vec<&str> = stdout.lines().filter(|l| l.trim_start().starts_with("pool ")).collect();
    assert!(!pool_lines.is_empty(), "no pool line in the report{context}");
    for line in &pool_lines {
        assert!(line.ends_with(": full"), "pool not full: {line}{context}");
    }
    assert!(
        stdout.contains(&format!("forwarded {FRAMES} packets")),
        "report does not say {FRAMES} packets were forwarded{context}"
    );

    // pcap0 received every byte of in.pcap and pcap1 sent every byte.
    let bytes: usize = lens.iter().sum();
    assert!(stdout.contains(&format!("ipackets {FRAMES} opackets 0 ibytes {bytes} obytes 0")), "pcap0 counters{context}");
    assert!(stdout.contains(&format!("ipackets 0 opackets {FRAMES} ibytes 0 obytes {bytes}")), "pcap1 counters{context}");

    let got = common::read_pcap(&dir.join("out.pcap"));
    if let Some(diff) = common::first_difference(&got, &frames) {
        panic!("out.pcap: {diff}{context}");
    }
    let back = common::read_pcap(&dir.join("out0.pcap"));
    assert!(back.is_empty(), "out0.pcap should be empty (pcap1 reads an empty file), has {} packets", back.len());
}
