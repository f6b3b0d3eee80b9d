//! The forwarder's live state over DPDK's own telemetry socket, and `rte_pdump` for packet
//! capture from outside the process.
//!
//! [`register`] adds one command per [`SECTIONS`] entry to DPDK telemetry: `/dataplane/stats`,
//! `/dataplane/softnet`, `/dataplane/latency`, `/dataplane/pools`, `/dataplane/memory` and
//! `/dataplane/fpm`. The control thread calls [`publish`] with a
//! JSON snapshot for a section a few times a second; each command returns the latest
//! snapshot of its section, so `dpdk-telemetry.py -f PREFIX` shows it. A section not yet
//! published returns an empty dict. Snapshots live behind a mutex: this is the control plane,
//! never the hot path. The command callback runs on DPDK's telemetry thread, takes the lock
//! only to clone an `Arc`, and catches panics so none unwinds into C.
//!
//! # How JSON maps to telemetry (DPDK 22.11)
//!
//! DPDK 22.11 has no float, bool or null type and puts limits on names and strings, so a
//! snapshot is translated as follows (the reply is what `dpdk-telemetry.py` prints):
//!
//! - The reply is always a dict. A snapshot that is not an object is returned as
//!   `{"value": ...}`.
//! - Numbers: a non-negative integer becomes a `u64` (`rte_tel_data_add_dict_u64`); a
//!   negative one that fits in `i32` an `int`; any other number (floats, large negatives) the
//!   string of its JSON text, so `0.5` arrives as `"0.5"`. `true`, `false` and `null` arrive as
//!   the strings `"true"`, `"false"` and `"null"`.
//! - Strings keep at most 127 bytes (`RTE_TEL_MAX_STRING_LEN` - 1) and only printable ASCII:
//!   22.11's JSON writer mangles bytes above 0x7f into invalid escapes, and drops most control
//!   characters, so a non-ASCII character becomes `?` and a control character a space.
//! - Dict names may only hold ASCII letters, digits, `_` and `/` (22.11 refuses any other
//!   name with `-EINVAL`): every other character becomes `_`, an empty name becomes `_`, names
//!   are cut to 127 bytes, and a name that collides with an earlier one in the same dict gets
//!   `_2`, `_3`, ... appended.
//! - An object becomes a nested dict (`rte_tel_data_alloc` + `rte_tel_data_add_dict_container`
//!   with `keep = 0`, so DPDK frees it after writing the reply). 22.11 nests dicts inside
//!   dict containers to any depth; this module nests at most [`MAX_DEPTH`] levels below the
//!   reply, and at most [`MAX_CONTAINERS`] containers per reply (each one is a ~66 KiB
//!   allocation, and DPDK's reply is capped at 16 KiB of text anyway). Past either limit the
//!   rest is flattened into the innermost dict with `/`-joined names: `{"a": {"b": 1}}` at
//!   the limit becomes `"a/b": 1`, an array `"a": [1, 2]` becomes `"a/0": 1, "a/1": 2`.
//! - An array of scalars becomes a typed array container: `u64` when all are non-negative
//!   integers, `int` when all are integers that fit in `i32`, otherwise strings (each element
//!   as above, numbers as their JSON text). 22.11 cannot put an array of containers inside a
//!   dict, so an array holding any object or array becomes a dict keyed `"0"`, `"1"`, ...
//! - DPDK's limits: a dict keeps its first 256 entries and an array its first 512; DPDK
//!   leaves out whatever does not fit in its 16 KiB reply (the reply stays valid JSON).
//!
//! # Packet capture
//!
//! [`pdump_init`] registers the `rte_pdump` server so `dpdk-dumpcap` / `dpdk-pdump` (secondary
//! processes with the same `--file-prefix`) can capture from the ports. It needs multi-process
//! support: with `--no-shconf` or `--in-memory`, DPDK 22.11 still returns success but no
//! capture tool can attach. Call [`pdump_uninit`] before EAL clean-up. A second
//! `rte_pdump_init` would fail (its memzone exists), so [`pdump_init`] runs it once until
//! [`pdump_uninit`].
//!
//! Telemetry serves up to 10 clients, each on its own thread, so the callback may run on
//! several threads at once; it shares nothing but the snapshot lock.

use std::collections::HashSet;
use std::ffi::{c_char, c_int, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::NonNull;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use dpdk_sys::rte_tel_data;
use mempool::DpdkError;
use serde_json::Value;

/// The sections [`publish`] accepts; section `s` is served as the command `/dataplane/s`.
pub const SECTIONS: [&str; 7] = ["stats", "softnet", "latency", "pools", "memory", "fpm", "neighbours"];

/// How many levels of nested dicts and arrays a reply may have below its top-level dict;
/// anything deeper is flattened into `/`-joined names.
pub const MAX_DEPTH: usize = 3;

/// How many nested dicts and arrays one reply may allocate; the rest is flattened.
pub const MAX_CONTAINERS: usize = 64;

/// Each command and its help text, in [`SECTIONS`] order.
const COMMANDS: [(&CStr, &CStr); 7] = [
    (c"/dataplane/stats", c"Forwarder counters: ports, workers, drops. No parameters"),
    (c"/dataplane/softnet", c"Per-lcore poll loop counters. No parameters"),
    (c"/dataplane/latency", c"Per-packet latency histograms. No parameters"),
    (c"/dataplane/pools", c"Mbuf pool occupancy. No parameters"),
    (c"/dataplane/memory", c"Protocol memory accounts and groups. No parameters"),
    (c"/dataplane/fpm", c"zebra's FPM session and its routes. No parameters"),
    (c"/dataplane/neighbours", c"The neighbour table (ARP, ND). No parameters"),
];

/// The prefix every command shares.
const PREFIX: &[u8] = b"/dataplane/";

/// Longest name or string value DPDK stores without truncating (`RTE_TEL_MAX_STRING_LEN` - 1).
const MAX_STR: usize = dpdk_sys::RTE_TEL_MAX_STRING_LEN as usize - 1;
/// Entries DPDK keeps per dict.
const MAX_DICT: usize = dpdk_sys::RTE_TEL_MAX_DICT_ENTRIES as usize;
/// Entries DPDK keeps per array.
const MAX_ARRAY: usize = dpdk_sys::RTE_TEL_MAX_ARRAY_ENTRIES as usize;

/// Telemetry refuses a command of 56 bytes or more, and help of 128 (22.11) or 64 (older).
const _: () = {
    let mut i = 0;
    while i < COMMANDS.len() {
        assert!(COMMANDS[i].0.to_bytes().len() < 56);
        assert!(COMMANDS[i].1.to_bytes().len() < 64);
        i += 1;
    }
};

/// The latest snapshot of each section, in [`SECTIONS`] order.
static PUBLISHED: Mutex<[Option<Arc<Value>>; SECTIONS.len()]> = Mutex::new([const { None }; SECTIONS.len()]);
/// Which commands telemetry has accepted (it does not refuse duplicates, so do not repeat).
static REGISTERED: Mutex<[bool; SECTIONS.len()]> = Mutex::new([false; SECTIONS.len()]);
/// Whether `rte_pdump_init` has run without a matching `rte_pdump_uninit`.
static PDUMP_ON: Mutex<bool> = Mutex::new(false);

/// Every value guarded here is valid after a panic elsewhere (each write is one assignment).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Registers `/dataplane/stats`, `/dataplane/softnet`, `/dataplane/latency`,
/// `/dataplane/pools`, `/dataplane/memory` and `/dataplane/fpm` with DPDK telemetry (`rte_telemetry_register_cmd`).
///
/// Call it once after EAL init (telemetry also accepts commands registered before; it serves
/// them once EAL has opened the socket). Calling it again registers nothing twice.
///
/// # Errors
/// The [`DpdkError`] of the first command telemetry refused (`ENOENT` when its table of
/// commands is full). Commands registered before it stay registered (telemetry cannot
/// unregister); a later call retries only the missing ones.
pub fn register() -> Result<(), DpdkError> {
    let mut done = lock(&REGISTERED);
    for ((cmd, help), done) in COMMANDS.iter().zip(done.iter_mut()) {
        if *done {
            continue;
        }
        // SAFETY: both strings are NUL-terminated and static (telemetry copies them anyway);
        // on_command has telemetry_cb's signature and may run on any thread.
        let ret = unsafe { dpdk_sys::rte_telemetry_register_cmd(cmd.as_ptr(), Some(on_command), help.as_ptr()) };
        if ret < 0 {
            return Err(DpdkError::from_ret("rte_telemetry_register_cmd", ret));
        }
        *done = true;
    }
    Ok(())
}

/// Replaces the snapshot that section `section`'s command returns. `section` is one of
/// [`SECTIONS`]; any other name is ignored (and is a bug: debug builds panic).
pub fn publish(section: &str, value: Value) {
    let Some(i) = SECTIONS.iter().position(|s| *s == section) else {
        debug_assert!(false, "telemetry::publish: unknown section {section:?}, expected one of {SECTIONS:?}");
        return;
    };
    let old = lock(&PUBLISHED)[i].replace(Arc::new(value));
    drop(old); // freed outside the lock
}

/// Registers the `rte_pdump` server (`rte_pdump_init`) so `dpdk-dumpcap` and `dpdk-pdump`
/// can capture from this process's ports. A second call without [`pdump_uninit`] does nothing.
///
/// # Errors
/// `ENODEV` when EAL has not been started; otherwise `rte_errno` from `rte_pdump_init`
/// (`ENOMEM` when its statistics memzone cannot be reserved).
pub fn pdump_init() -> Result<(), DpdkError> {
    let mut on = lock(&PDUMP_ON);
    if *on {
        return Ok(());
    }
    // SAFETY: reads EAL's configuration (a static, zero before rte_eal_init).
    if unsafe { dpdk_sys::rte_lcore_count() } == 0 {
        return Err(DpdkError { op: "rte_pdump_init", errno: libc::ENODEV });
    }
    // SAFETY: EAL is running (checked above); this reserves a memzone and registers an IPC
    // action, serialised with pdump_uninit by PDUMP_ON's lock.
    if unsafe { dpdk_sys::rte_pdump_init() } < 0 {
        return Err(DpdkError::last("rte_pdump_init"));
    }
    *on = true;
    Ok(())
}

/// Unregisters the `rte_pdump` server and frees its memzone (`rte_pdump_uninit`). Call it
/// before EAL clean-up; without a successful [`pdump_init`] it does nothing.
pub fn pdump_uninit() {
    let mut on = lock(&PDUMP_ON);
    if *on {
        // SAFETY: pdump_init succeeded, so EAL is running and the memzone is ours to free.
        unsafe { dpdk_sys::rte_pdump_uninit() };
        *on = false;
    }
}

/// The telemetry callback of every `/dataplane/...` command: the section's latest snapshot
/// as a dict, or an empty dict before the first [`publish`]. Runs on DPDK's telemetry thread.
extern "C" fn on_command(cmd: *const c_char, _params: *const c_char, d: *mut rte_tel_data) -> c_int {
    let reply = catch_unwind(AssertUnwindSafe(|| {
        if cmd.is_null() || d.is_null() {
            return -1;
        }
        // SAFETY: DPDK passes the NUL-terminated command it matched, valid for this call.
        let cmd = unsafe { CStr::from_ptr(cmd) }.to_bytes();
        let Some(section) = cmd.strip_prefix(PREFIX).and_then(|name| SECTIONS.iter().position(|s| s.as_bytes() == name)) else {
            return -1;
        };
        let snapshot = lock(&PUBLISHED)[section].clone();
        let entries = snapshot.map(|v| reply_entries(&v)).unwrap_or_default();
        // SAFETY: d is the reply DPDK handed to this callback, ours alone until we return.
        unsafe { fill_dict(d, &entries) };
        0
    }));
    // A panic leaves the reply half-built: -1 makes DPDK answer `null` (and leak whatever
    // containers were already attached, which only a bug here can cause).
    reply.unwrap_or(-1)
}

/// A value as DPDK telemetry can hold it: the plan built from JSON before any FFI call.
#[derive(Debug, Clone, PartialEq, Eq)]
enum TelEntry {
    U64(u64),
    Int(i32),
    Str(CString),
    Dict(Vec<(CString, TelEntry)>),
    U64s(Vec<u64>),
    Ints(Vec<i32>),
    Strs(Vec<CString>),
}

/// The entries of the top-level reply dict for a snapshot.
fn reply_entries(value: &Value) -> Vec<(CString, TelEntry)> {
    let mut budget = MAX_CONTAINERS;
    let mut dict = DictBuilder::default();
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                add_entry(&mut dict, k, v, 0, &mut budget);
            }
        }
        other => add_entry(&mut dict, "value", other, 0, &mut budget),
    }
    dict.entries
}

/// A dict being planned: sanitised, de-duplicated names and DPDK's entry limit.
#[derive(Default)]
struct DictBuilder {
    entries: Vec<(CString, TelEntry)>,
    names: HashSet<String>,
}

impl DictBuilder {
    fn is_full(&self) -> bool {
        self.entries.len() >= MAX_DICT
    }

    fn push(&mut self, raw_name: &str, value: TelEntry) {
        if self.is_full() {
            return;
        }
        let base = tel_name(raw_name);
        let mut name = base.clone();
        let mut n = 2u32;
        while self.names.contains(&name) {
            let suffix = format!("_{n}");
            name = format!("{}{suffix}", &base[..base.len().min(MAX_STR - suffix.len())]);
            n += 1;
        }
        self.names.insert(name.clone());
        self.entries.push((ascii_cstring(name), value));
    }
}

/// Adds `value` under `name` to `dict`, which sits `depth` levels below the reply.
fn add_entry(dict: &mut DictBuilder, name: &str, value: &Value, depth: usize, budget: &mut usize) {
    if dict.is_full() {
        return;
    }
    let nest = depth < MAX_DEPTH && *budget > 0;
    match value {
        Value::Object(map) if nest => {
            *budget -= 1;
            let mut child = DictBuilder::default();
            for (k, v) in map {
                add_entry(&mut child, k, v, depth + 1, budget);
            }
            dict.push(name, TelEntry::Dict(child.entries));
        }
        Value::Array(items) if nest => {
            *budget -= 1;
            let entry = scalar_array(items).unwrap_or_else(|| {
                let mut child = DictBuilder::default();
                for (i, v) in items.iter().enumerate() {
                    add_entry(&mut child, &i.to_string(), v, depth + 1, budget);
                }
                TelEntry::Dict(child.entries)
            });
            dict.push(name, entry);
        }
        Value::Object(map) => {
            for (k, v) in map {
                add_entry(dict, &format!("{name}/{k}"), v, depth, budget);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                add_entry(dict, &format!("{name}/{i}"), v, depth, budget);
            }
        }
        scalar => dict.push(name, scalar_entry(scalar)),
    }
}

/// A dict value for a JSON scalar.
fn scalar_entry(value: &Value) -> TelEntry {
    if let Value::Number(n) = value {
        if let Some(x) = n.as_u64() {
            return TelEntry::U64(x);
        }
        if let Some(x) = n.as_i64().and_then(|x| i32::try_from(x).ok()) {
            return TelEntry::Int(x);
        }
    }
    TelEntry::Str(scalar_string(value))
}

/// A JSON scalar as telemetry text: a string as itself, anything else as its JSON text.
fn scalar_string(value: &Value) -> CString {
    match value {
        Value::String(s) => tel_string(s),
        other => tel_string(&other.to_string()),
    }
}

/// A typed array for an array of scalars; `None` when it holds an object or array.
fn scalar_array(items: &[Value]) -> Option<TelEntry> {
    if items.iter().any(|v| v.is_object() || v.is_array()) {
        return None;
    }
    let items = &items[..items.len().min(MAX_ARRAY)];
    if let Some(xs) = items.iter().map(Value::as_u64).collect::<Option<Vec<u64>>>() {
        return Some(TelEntry::U64s(xs));
    }
    let as_i32 = |v: &Value| v.as_i64().and_then(|x| i32::try_from(x).ok());
    if let Some(xs) = items.iter().map(as_i32).collect::<Option<Vec<i32>>>() {
        return Some(TelEntry::Ints(xs));
    }
    Some(TelEntry::Strs(items.iter().map(scalar_string).collect()))
}

/// A dict name DPDK 22.11 accepts: ASCII letters, digits, `_` and `/`, 1 to 127 bytes.
fn tel_name(raw: &str) -> String {
    let mut name: String =
        raw.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '/' { c } else { '_' }).take(MAX_STR).collect();
    if name.is_empty() {
        name.push('_');
    }
    name
}

/// A string value DPDK 22.11 writes as valid JSON: printable ASCII, at most 127 bytes.
fn tel_string(raw: &str) -> CString {
    let text: String = raw
        .chars()
        .map(|c| match c {
            ' '..='~' => c,
            c if c.is_ascii_control() => ' ',
            _ => '?',
        })
        .take(MAX_STR)
        .collect();
    ascii_cstring(text)
}

/// A C string of text known to hold no NUL (the sanitisers above map NUL away).
fn ascii_cstring(text: String) -> CString {
    CString::new(text).unwrap_or_default()
}

/// One `rte_tel_data` from `rte_tel_data_alloc`, freed on drop unless handed to a parent.
struct OwnedTelData(NonNull<rte_tel_data>);

impl OwnedTelData {
    fn alloc() -> Option<OwnedTelData> {
        // SAFETY: a plain malloc of one rte_tel_data; NULL is handled.
        NonNull::new(unsafe { dpdk_sys::rte_tel_data_alloc() }).map(OwnedTelData)
    }

    fn as_ptr(&self) -> *mut rte_tel_data {
        self.0.as_ptr()
    }
}

impl Drop for OwnedTelData {
    fn drop(&mut self) {
        // SAFETY: allocated by rte_tel_data_alloc and not handed to a parent (fill_dict
        // forgets the owner once DPDK has taken the pointer).
        unsafe { dpdk_sys::rte_tel_data_free(self.0.as_ptr()) };
    }
}

/// Makes `d` a dict holding `entries`.
///
/// # Safety
/// `d` must point to an `rte_tel_data` the caller may overwrite: the callback's reply, or a
/// fresh container.
unsafe fn fill_dict(d: *mut rte_tel_data, entries: &[(CString, TelEntry)]) {
    // SAFETY: d is writable (the caller's contract).
    unsafe { dpdk_sys::rte_tel_data_start_dict(d) };
    for (name, value) in entries {
        let name = name.as_ptr();
        // Each add can only fail on limits the plan already enforces, and then adds nothing.
        match value {
            // SAFETY: d is a dict; name is a valid NUL-terminated name DPDK copies.
            TelEntry::U64(x) => unsafe { dpdk_sys::rte_tel_data_add_dict_u64(d, name, *x) },
            // SAFETY: as above.
            TelEntry::Int(x) => unsafe { dpdk_sys::rte_tel_data_add_dict_int(d, name, *x) },
            // SAFETY: as above; s is NUL-terminated and copied.
            TelEntry::Str(s) => unsafe { dpdk_sys::rte_tel_data_add_dict_string(d, name, s.as_ptr()) },
            container => {
                let Some(child) = OwnedTelData::alloc() else { continue };
                // SAFETY: child is a fresh allocation nobody else sees.
                unsafe { fill_container(child.as_ptr(), container) };
                // SAFETY: d is a dict and child a filled dict or array; with keep = 0 DPDK
                // frees child after writing the reply, but only if it accepted it (ret >= 0).
                let ret = unsafe { dpdk_sys::rte_tel_data_add_dict_container(d, name, child.as_ptr(), 0) };
                if ret >= 0 {
                    std::mem::forget(child);
                }
                ret
            }
        };
    }
}

/// Makes `c` the dict or array `value` describes (a scalar leaves an empty dict).
///
/// # Safety
/// As [`fill_dict`].
unsafe fn fill_container(c: *mut rte_tel_data, value: &TelEntry) {
    match value {
        // SAFETY: c is writable (the caller's contract).
        TelEntry::Dict(entries) => unsafe { fill_dict(c, entries) },
        // SAFETY: c is writable and is started as an array of the type added to it.
        TelEntry::U64s(xs) => unsafe {
            dpdk_sys::rte_tel_data_start_array(c, dpdk_sys::rte_tel_value_type_RTE_TEL_U64_VAL);
            for x in xs {
                dpdk_sys::rte_tel_data_add_array_u64(c, *x);
            }
        },
        // SAFETY: as above.
        TelEntry::Ints(xs) => unsafe {
            dpdk_sys::rte_tel_data_start_array(c, dpdk_sys::rte_tel_value_type_RTE_TEL_INT_VAL);
            for x in xs {
                dpdk_sys::rte_tel_data_add_array_int(c, *x);
            }
        },
        // SAFETY: as above; each string is NUL-terminated and copied.
        TelEntry::Strs(xs) => unsafe {
            dpdk_sys::rte_tel_data_start_array(c, dpdk_sys::rte_tel_value_type_RTE_TEL_STRING_VAL);
            for x in xs {
                dpdk_sys::rte_tel_data_add_array_string(c, x.as_ptr());
            }
        },
        // SAFETY: c is writable.
        TelEntry::U64(_) | TelEntry::Int(_) | TelEntry::Str(_) => unsafe {
            dpdk_sys::rte_tel_data_start_dict(c);
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The JSON DPDK writes for a plan (what `dpdk-telemetry.py` prints for the command).
    fn rendered(value: &Value) -> Value {
        fn entry(e: &TelEntry) -> Value {
            let s = |c: &CString| Value::String(c.to_str().unwrap().to_owned());
            match e {
                TelEntry::U64(x) => json!(x),
                TelEntry::Int(x) => json!(x),
                TelEntry::Str(c) => s(c),
                TelEntry::Dict(entries) => dict(entries),
                TelEntry::U64s(xs) => json!(xs),
                TelEntry::Ints(xs) => json!(xs),
                TelEntry::Strs(xs) => Value::Array(xs.iter().map(s).collect()),
            }
        }
        fn dict(entries: &[(CString, TelEntry)]) -> Value {
            Value::Object(entries.iter().map(|(k, v)| (k.to_str().unwrap().to_owned(), entry(v))).collect())
        }
        dict(&reply_entries(value))
    }

    #[test]
    fn scalars_map_to_u64_int_or_string() {
        let got = rendered(&json!({
            "rx": 123, "max": u64::MAX, "neg": -5, "big_neg": -5_000_000_000i64,
            "ratio": 0.5, "up": true, "none": null, "driver": "net_null"
        }));
        assert_eq!(
            got,
            json!({
                "rx": 123, "max": u64::MAX, "neg": -5, "big_neg": "-5000000000",
                "ratio": "0.5", "up": "true", "none": "null", "driver": "net_null"
            })
        );
    }

    #[test]
    fn objects_nest_then_flatten_past_max_depth() {
        let got = rendered(&json!({"a": {"b": {"c": {"d": {"e": 1}, "f": [1, 2]}}}}));
        assert_eq!(got, json!({"a": {"b": {"c": {"d/e": 1, "f/0": 1, "f/1": 2}}}}));
    }

    #[test]
    fn arrays_are_typed_or_keyed_by_index() {
        let got = rendered(&json!({
            "u": [1, 2], "i": [-1, 2], "mixed": [1, "x", 0.5, null], "empty": [],
            "objs": [{"p": 1}, 7, [3]]
        }));
        assert_eq!(
            got,
            json!({
                "u": [1, 2], "i": [-1, 2], "mixed": ["1", "x", "0.5", "null"], "empty": [],
                "objs": {"0": {"p": 1}, "1": 7, "2": [3]}
            })
        );
    }

    #[test]
    fn names_are_sanitised_and_deduplicated() {
        // Keys in sorted order, so that the result does not depend on serde_json's map order.
        let got = rendered(&json!({"": 3, "a-b": 2, "a.b": 1, "ok/x_1": 4, "\u{e9}": 5}));
        assert_eq!(got, json!({"_": 3, "a_b": 2, "a_b_2": 1, "ok/x_1": 4, "__2": 5}));
        let long = "n".repeat(300);
        let got = reply_entries(&json!({ long.clone(): 1, format!("{long}x"): 2 }));
        assert_eq!(got[0].0.as_bytes().len(), MAX_STR);
        assert_eq!(got[1].0.as_bytes().len(), MAX_STR);
        assert!(got[1].0.to_str().unwrap().ends_with("_2"));
    }

    #[test]
    fn strings_become_short_printable_ascii() {
        let got = rendered(&json!({"s": "h\u{e9}llo\n\0\"q\"", "long": "x".repeat(500)}));
        assert_eq!(got["s"], json!("h?llo  \"q\""));
        assert_eq!(got["long"].as_str().unwrap().len(), MAX_STR);
    }

    #[test]
    fn non_objects_are_wrapped_and_limits_hold() {
        assert_eq!(rendered(&json!(5)), json!({"value": 5}));
        assert_eq!(rendered(&json!([1, 2])), json!({"value": [1, 2]}));
        let wide: serde_json::Map<String, Value> = (0..300).map(|i| (format!("k{i}"), json!(i))).collect();
        assert_eq!(reply_entries(&Value::Object(wide)).len(), MAX_DICT);
        let long: Vec<u64> = (0..600).collect();
        match &reply_entries(&json!({ "a": long }))[0].1 {
            TelEntry::U64s(xs) => assert_eq!(xs.len(), MAX_ARRAY),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn container_budget_flattens_the_rest() {
        let many: serde_json::Map<String, Value> = (0..100).map(|i| (format!("p{i}"), json!({"x": i}))).collect();
        let entries = reply_entries(&json!({ "ports": many }));
        let TelEntry::Dict(ports) = &entries[0].1 else { panic!() };
        let nested = ports.iter().filter(|(_, v)| matches!(v, TelEntry::Dict(_))).count();
        assert_eq!(nested, MAX_CONTAINERS - 1);
        assert_eq!(ports.len(), 100);
        assert_eq!(ports[99].0.to_str().unwrap(), "p99/x");
    }
}
