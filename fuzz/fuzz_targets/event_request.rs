//! `POST /api/event` bodies: decoding, validation and enrichment into the stored row (see
//! `fuzz/invariants.rs`). The first byte picks the user agent the event is sent with.
#![no_main]

#[path = "../invariants.rs"]
mod invariants;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let ua = invariants::AGENTS[pick as usize % invariants::AGENTS.len()];
    invariants::event_body(body, ua);
});
