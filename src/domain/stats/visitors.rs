//! How the statistics count visitors without holding their keys. A visitor is counted by a 32-bit number
//! mixed from its pseudonymous key with a secret of the site's own (not the key, nor a part of it);
//! aggregates keep multisets of these numbers (one entry per visit, or per visit and value), so that the
//! visitors of any range are the distinct numbers of its days, exactly up to the odd collision (about one
//! in 40 000 among 100 000 visitors), and erasure can remove a visitor's entries. Multisets are stored
//! sorted, as varint gaps.

use sha2::{Digest, Sha256};

/// The site's key for the mix, derived from its secret.
pub fn salt_of(site_secret: &[u8]) -> u64 {
    let mut h = Sha256::new();
    h.update(b"assent statistics visitor number");
    h.update(site_secret);
    let digest = h.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_le_bytes(first)
}

/// The number a visitor is counted by (splitmix64 of the key and the site's salt, upper half).
pub fn number(salt: u64, visitor_key: i64) -> u32 {
    let mut z = (visitor_key as u64) ^ salt;
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 32) as u32
}

/// Encodes a sorted multiset.
pub fn encode(sorted: &[u32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(sorted.len() * 3);
    let mut prev = 0u32;
    for &n in sorted {
        let mut gap = n - prev;
        prev = n;
        loop {
            let byte = (gap & 0x7f) as u8;
            gap >>= 7;
            if gap == 0 {
                out.push(byte);
                break;
            }
            out.push(byte | 0x80);
        }
    }
    out
}

/// Appends the numbers of an encoded multiset to `out`. Malformed input ends the decoding.
pub fn decode_into(bytes: &[u8], out: &mut Vec<u32>) {
    let mut prev = 0u32;
    let mut gap = 0u32;
    let mut shift = 0u32;
    for &b in bytes {
        if shift > 28 {
            return;
        }
        gap |= ((b & 0x7f) as u32) << shift;
        if b & 0x80 == 0 {
            prev = prev.wrapping_add(gap);
            out.push(prev);
            gap = 0;
            shift = 0;
        } else {
            shift += 7;
        }
    }
}

pub fn decode(bytes: &[u8]) -> Vec<u32> {
    let mut out = Vec::new();
    decode_into(bytes, &mut out);
    out
}

/// How many distinct numbers `numbers` holds (sorts it).
pub fn distinct(numbers: &mut [u32]) -> u64 {
    if numbers.len() < 1 << 15 {
        return distinct_sorted(numbers);
    }
    // A year of a large site has millions of numbers. They are uniform hashes, so one counting pass by
    // their top 16 bits spreads them evenly over 65 536 buckets of a few dozen, each then sorted in cache:
    // several times faster than sorting the whole.
    const BUCKETS: usize = 1 << 16;
    let mut starts = vec![0usize; BUCKETS + 1];
    for &x in numbers.iter() {
        starts[(x >> 16) as usize + 1] += 1;
    }
    for b in 0..BUCKETS {
        starts[b + 1] += starts[b];
    }
    let mut next = starts.clone();
    let mut spread = vec![0u32; numbers.len()];
    for &x in numbers.iter() {
        let slot = &mut next[(x >> 16) as usize];
        spread[*slot] = x;
        *slot += 1;
    }
    (0..BUCKETS)
        .map(|b| distinct_sorted(&mut spread[starts[b]..starts[b + 1]]))
        .sum()
}

fn distinct_sorted(numbers: &mut [u32]) -> u64 {
    numbers.sort_unstable();
    let mut n = 0;
    let mut last = None;
    for &x in numbers.iter() {
        if last != Some(x) {
            n += 1;
            last = Some(x);
        }
    }
    n
}

/// Removes one occurrence of each of `gone` from the sorted multiset `set`; returns how many it found.
pub fn remove_each(set: &mut Vec<u32>, gone: &[u32]) -> usize {
    let mut found = 0;
    for g in gone {
        if let Ok(i) = set.binary_search(g) {
            set.remove(i);
            found += 1;
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_counts_large_sets_like_sorting_does() {
        let mut state = 0x1234_5678_u64;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) as u32
        };
        // Few values repeated (many duplicates) and many values (few), both above the bucketing size.
        for (len, modulo) in [(100_000usize, 5_000u32), (200_000, u32::MAX)] {
            let mut numbers: Vec<u32> = (0..len).map(|_| next() % modulo).collect();
            numbers.extend([0, u32::MAX, 0, u32::MAX]);
            let mut sorted = numbers.clone();
            sorted.sort_unstable();
            sorted.dedup();
            assert_eq!(distinct(&mut numbers), sorted.len() as u64);
        }
    }

    #[test]
    fn multisets_round_trip() {
        let mut v = vec![7, 7, 1, u32::MAX, 300, 0, 1 << 20];
        v.sort_unstable();
        let bytes = encode(&v);
        assert_eq!(decode(&bytes), v);
        assert_eq!(distinct(&mut v.clone()), 6);
        let mut s = v.clone();
        assert_eq!(remove_each(&mut s, &[7, 9]), 1);
        assert_eq!(s.iter().filter(|x| **x == 7).count(), 1);
    }

    #[test]
    fn numbers_depend_on_the_salt() {
        let a = salt_of(b"secret a");
        let b = salt_of(b"secret b");
        assert_eq!(number(a, 42), number(a, 42));
        assert_ne!(number(a, 42), number(b, 42));
        assert_ne!(number(a, 42), 42u32);
    }
}
