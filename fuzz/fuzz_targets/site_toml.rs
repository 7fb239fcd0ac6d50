//! Site settings documents (`assent site update`, the dashboard's settings form): the loader, the
//! validation it runs, and the trip back through `assent site show` (see `fuzz/invariants.rs`).
#![no_main]

#[path = "../invariants.rs"]
mod invariants;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        invariants::site_toml(text);
    }
});
