//! Event URLs and referrers built from parts, with a non-UTM parameter that no stored field may hold:
//! the path, UTM, referrer and source enrichment (see `fuzz/invariants.rs`).
#![no_main]

#[path = "../invariants.rs"]
mod invariants;

use arbitrary::Arbitrary;

#[derive(Arbitrary, Debug)]
struct Input {
    https: bool,
    host: u8,
    path: Vec<String>,
    query: Vec<(u8, String, String)>,
    secret_at: u8,
    fragment: Option<String>,
    referrer_host: String,
    referrer_path: String,
    ua: u8,
    screen_width: Option<u32>,
}

libfuzzer_sys::fuzz_target!(|i: Input| {
    invariants::url_case(&invariants::UrlCase {
        https: i.https,
        host: i.host,
        path: i.path,
        query: i.query,
        secret_at: i.secret_at,
        fragment: i.fragment,
        referrer_host: i.referrer_host,
        referrer_path: i.referrer_path,
        ua: i.ua,
        screen_width: i.screen_width,
    });
});
