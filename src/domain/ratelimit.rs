//! Rate limiting by token buckets: per client network (never per address) for ingestion, with a burst of
//! a few seconds' worth so a page load's several requests pass; per key for the Stats API.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::Instant;

use crate::domain::network::ClientNet;

pub struct RateLimiter<K = ClientNet> {
    per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<K, (f64, Instant)>>,
}

impl RateLimiter<ClientNet> {
    /// `per_second` 0 turns limiting off; the burst is four seconds' worth.
    pub fn new(per_second: u32) -> RateLimiter {
        RateLimiter::with(per_second as f64, (per_second as f64 * 4.0).max(10.0))
    }
}

impl<K: Hash + Eq + Copy> RateLimiter<K> {
    /// `per_second` tokens refill a bucket of `burst`; 0 per second turns limiting off.
    pub fn with(per_second: f64, burst: f64) -> RateLimiter<K> {
        RateLimiter {
            per_second,
            burst,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    pub fn allow(&self, net: K) -> bool {
        self.allow_at(net, Instant::now())
    }

    pub fn allow_at(&self, net: K, now: Instant) -> bool {
        if self.per_second <= 0.0 {
            return true;
        }
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() > 100_000 {
            // Idle buckets are full again; dropping them loses nothing.
            let burst = self.burst;
            let rate = self.per_second;
            buckets.retain(|_, (tokens, at)| {
                *tokens + now.duration_since(*at).as_secs_f64() * rate < burst
            });
        }
        let (tokens, at) = buckets.entry(net).or_insert((self.burst, now));
        *tokens =
            (*tokens + now.duration_since(*at).as_secs_f64() * self.per_second).min(self.burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn limits_and_refills() {
        let rl = RateLimiter::new(5);
        let net = ClientNet::from_addr("192.0.2.1".parse().unwrap());
        let other = ClientNet::from_addr("198.51.100.1".parse().unwrap());
        let t0 = Instant::now();
        let passed = (0..100).filter(|_| rl.allow_at(net, t0)).count();
        assert_eq!(passed, 20, "burst is four seconds' worth");
        assert!(rl.allow_at(other, t0), "other networks are not affected");
        assert!(rl.allow_at(net, t0 + Duration::from_secs(1)));
        assert!(RateLimiter::new(0).allow(net));
    }
}
