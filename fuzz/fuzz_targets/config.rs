//! `dataplane::Config::from_toml_str` on arbitrary text: it returns a config or a typed
//! error, never panics; an accepted config yields EAL arguments and its error-free
//! derived values without panicking.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match dataplane::Config::from_toml_str(text) {
        Ok(config) => {
            let args = config.eal_args("dataplane", &[]);
            assert!(args.len() >= 5, "{args:?}");
            let _ = format!("{config:?}");
        }
        Err(e) => {
            // Every error names what is wrong in one line.
            let msg = e.to_string();
            assert!(!msg.is_empty());
        }
    }
});
