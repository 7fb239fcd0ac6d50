//! What request headers bring: user agents, `X-Forwarded-For` / `Forwarded` chains from trusted and
//! untrusted peers, `Origin` values, referrers and hosts (see `fuzz/invariants.rs`).
#![no_main]

#[path = "../invariants.rs"]
mod invariants;

use std::net::IpAddr;

use arbitrary::Arbitrary;

#[derive(Arbitrary, Debug)]
struct Input {
    user_agent: String,
    peer: IpAddr,
    forwarded: String,
    rfc7239: bool,
    trusted: Vec<(IpAddr, u8)>,
    origin: String,
    referrer: String,
    host: String,
    domain: String,
}

libfuzzer_sys::fuzz_target!(|i: Input| {
    invariants::header_case(&invariants::HeaderCase {
        user_agent: i.user_agent,
        peer: i.peer,
        forwarded: i.forwarded,
        rfc7239: i.rfc7239,
        trusted: i.trusted,
        origin: i.origin,
        referrer: i.referrer,
        host: i.host,
        domain: i.domain,
    });
});
