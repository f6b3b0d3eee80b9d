//! Raw FFI bindings to the system DPDK, generated at build time by bindgen from the
//! headers that `pkg-config libdpdk` names, plus `dp_*` wrappers (src/shim.c) for the
//! `static inline` fast-path functions that have no symbol of their own.
//!
//! Nothing here is safe: the `mempool` and `dataplane` crates wrap what they use.
//! DPDK is linked as shared libraries; PMDs are loaded by EAL from its plugin directory.

#![allow(non_upper_case_globals, non_camel_case_types, non_snake_case)]
#![allow(clippy::all, clippy::undocumented_unsafe_blocks, rustdoc::all, improper_ctypes)]

include!(concat!(env!("OUT_DIR"), "/bindings.rs"));
