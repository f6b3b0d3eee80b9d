//! Checks, without EAL, that the bindings match the DPDK the crate was built against and
//! that the C shim links. (bindgen's own layout assertions are compile-time constants in
//! the generated file.)

use std::ffi::CStr;

#[test]
fn mbuf_is_two_cache_lines() {
    assert_eq!(std::mem::size_of::<dpdk_sys::rte_mbuf>(), 128);
    assert_eq!(std::mem::align_of::<dpdk_sys::rte_mbuf>(), 64);
}

#[test]
fn runtime_version_is_at_least_22_11() {
    // SAFETY: rte_version returns a static NUL-terminated string and needs no EAL.
    let v = unsafe { CStr::from_ptr(dpdk_sys::rte_version()) }.to_str().unwrap().to_owned();
    let nums: Vec<u32> = v.trim_start_matches("DPDK ").split('.').take(2).map(|s| s.parse().unwrap()).collect();
    assert!(nums[0] > 22 || (nums[0] == 22 && nums[1] >= 11), "{v}");
}

#[test]
fn shim_links_and_tsc_advances() {
    // SAFETY: rte_rdtsc reads the time-stamp counter; no EAL state is involved.
    let (a, b) = unsafe { (dpdk_sys::dp_rdtsc(), dpdk_sys::dp_rdtsc()) };
    assert!(b >= a);
    // SAFETY: rte_lcore_id reads a thread-local; a non-EAL thread reports LCORE_ID_ANY.
    assert_eq!(unsafe { dpdk_sys::dp_lcore_id() }, u32::MAX);
}
