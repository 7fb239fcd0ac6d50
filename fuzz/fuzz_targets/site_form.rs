//! The dashboard's site settings form: any text posted in any of its fields, read by the loader of
//! `assent site update` (see `fuzz/invariants.rs`). The first byte picks the field, the rest is the text.
#![no_main]

#[path = "../invariants.rs"]
mod invariants;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    if let Ok(text) = std::str::from_utf8(rest) {
        let fields = assent::domain::dashboard::site_form::TEXT_FIELDS;
        let field = fields[usize::from(pick) % fields.len()];
        invariants::site_form(field, text);
    }
});
