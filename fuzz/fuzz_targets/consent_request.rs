//! `POST /api/consent` bodies: decoding, the choices an action resolves to, the language tag, the page
//! path kept in the proof log and the consent id (see `fuzz/invariants.rs`).
#![no_main]

#[path = "../invariants.rs"]
mod invariants;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    invariants::consent_body(data);
    // The free-text fields on their own too, so the fuzzer need not build JSON to reach them.
    if let Ok(text) = std::str::from_utf8(data) {
        invariants::page_path(text);
        invariants::language(text);
        invariants::consent_id(text);
    }
});
