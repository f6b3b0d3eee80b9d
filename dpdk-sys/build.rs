//! Finds the system DPDK with pkg-config, generates bindings with bindgen and compiles
//! the C shim for DPDK's static-inline functions, both with exactly DPDK's own cflags.

use std::env;
use std::path::PathBuf;
use std::process::Command;

const MIN_DPDK: &str = "22.11";

fn main() {
    println!("cargo:rerun-if-changed=src/wrapper.h");
    println!("cargo:rerun-if-changed=src/shim.h");
    println!("cargo:rerun-if-changed=src/shim.c");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");

    let lib = pkg_config::Config::new().atleast_version(MIN_DPDK).probe("libdpdk").unwrap_or_else(|e| {
        panic!(
            "\n\ndpdk-sys needs DPDK >= {MIN_DPDK} found through pkg-config `libdpdk`.\n\
                 On Debian: apt-get install libdpdk-dev pkg-config (or run ci/setup.sh).\n\
                 pkg-config said: {e}\n"
        )
    });
    // rte_eth_from_rings and rte_vdev_init live in the net_ring PMD and the vdev bus
    // driver, which the .pc file does not list. Linking them is safe: the plugin directory
    // holds the same files, and the loader maps each library once.
    println!("cargo:rustc-link-lib=rte_net_ring");
    println!("cargo:rustc-link-lib=rte_bus_vdev");
    println!("cargo:version={}", lib.version);

    let cflags = dpdk_cflags();

    let mut shim = cc::Build::new();
    shim.file("src/shim.c").include("src").opt_level(3).warnings(true);
    for flag in &cflags {
        shim.flag(flag);
    }
    shim.compile("dpdk_shim");

    let bindings = bindgen::Builder::default()
        .header("src/wrapper.h")
        .clang_args(&cflags)
        .clang_arg("-Isrc")
        .allowlist_function("rte_.*|dp_.*")
        .allowlist_type("rte_.*")
        .allowlist_var("RTE_.*")
        // The ethdev fast-path table that rte_eth_rx_burst/rte_eth_tx_burst read inline.
        .allowlist_var("rte_eth_fp_ops")
        // A packed type that contains a repr(align) type (E0588), and two whose Debug
        // derive cannot hold: keep them opaque.
        .opaque_type("rte_l2tpv2_combined_msg_hdr")
        .opaque_type("rte_gtp_psc_generic_hdr")
        .opaque_type("rte_flow_item_gtp_psc")
        .derive_default(true)
        .generate_comments(false)
        .layout_tests(true)
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()))
        .generate()
        .expect("bindgen failed on DPDK's headers");

    let out = PathBuf::from(env::var("OUT_DIR").unwrap()).join("bindings.rs");
    bindings.write_to_file(&out).expect("cannot write bindings.rs");
}

/// `pkg-config --cflags libdpdk`, split into arguments. These include
/// `-include rte_config.h -march=corei7`; any other -march breaks rte_memcpy.
fn dpdk_cflags() -> Vec<String> {
    let out = Command::new("pkg-config").args(["--cflags", "libdpdk"]).output().expect("cannot run pkg-config");
    assert!(out.status.success(), "pkg-config --cflags libdpdk failed");
    String::from_utf8(out.stdout).expect("pkg-config printed non-UTF-8").split_whitespace().map(str::to_owned).collect()
}
