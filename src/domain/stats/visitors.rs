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
    let mut at = 0;
    // A year of rollups is tens of millions of numbers: while eight bytes remain, a gap is read from one
    // little-endian word, its length found from the first byte without the continuation bit, with no
    // branch per byte (gap lengths vary at random, so a byte loop mispredicts about once per number).
    while let Some(word) = bytes.get(at..at + 8) {
        let mut w = [0u8; 8];
        w.copy_from_slice(word);
        let w = u64::from_le_bytes(w);
        let stops = !w & 0x8080_8080_8080_8080;
        // A gap has at most five bytes (32 bits); more continuation bits are malformed.
        if stops & 0x80_8080_8080 == 0 {
            return;
        }
        let len = (stops.trailing_zeros() / 8 + 1) as usize;
        let w = w & (u64::MAX >> (64 - 8 * len));
        // Byte k holds bits 7k..7k+6 of the gap; bits past 32 are dropped, as the byte loop drops them.
        let gap = (w & 0x7f)
            | ((w >> 1) & 0x3f80)
            | ((w >> 2) & 0x1f_c000)
            | ((w >> 3) & 0xfe0_0000)
            | ((w >> 4) & 0x7_f000_0000);
        prev = prev.wrapping_add(gap as u32);
        out.push(prev);
        at += len;
    }
    let mut gap = 0u32;
    let mut shift = 0u32;
    for &b in &bytes[at..] {
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

/// How many distinct numbers `numbers` holds (reorders it).
pub fn distinct(numbers: &mut [u32]) -> u64 {
    if numbers.len() < SMALL {
        return distinct_sorted(numbers);
    }
    distinct_in(&[numbers])
}

/// Below this many numbers a sort is quicker than the bitmap.
const SMALL: usize = 1 << 15;

/// How many distinct numbers the parts hold together, without first copying them into one list: a
/// year's total of a breakdown is the union of thousands of rows' numbers, tens of megabytes, and the
/// count below needs only one spread copy of them.
pub fn distinct_in(parts: &[&[u32]]) -> u64 {
    distinct_within(parts, 1 << 22)
}

/// [`distinct_in`], copying at most `spread_max` numbers at a time (more if one part of the 256 holds more).
fn distinct_within(parts: &[&[u32]], spread_max: usize) -> u64 {
    let total: usize = parts.iter().map(|p| p.len()).sum();
    if total < SMALL {
        let mut all: Vec<u32> = parts.concat();
        return distinct_sorted(&mut all);
    }
    // A year of a large site has millions of numbers. They are uniform hashes: one counting pass and one
    // scatter by their top 8 bits (256 places to write, kind to the caches) spread them into parts whose
    // numbers differ in their low 24 bits only; each part is then counted on a bitmap of those 24 bits
    // (2 MiB, mostly in cache), cleared after each part by visiting its numbers again. No sort.
    // Past `spread_max` numbers the parts are spread and counted in rounds, each a pass over the numbers,
    // so that the copy stays within `spread_max` (a year of pages is 7 million numbers, 29 MB, counted
    // with a 16 MB copy).
    const PARTS: usize = 1 << 8;
    let numbers = || parts.iter().flat_map(|p| p.iter().copied());
    let mut counts = [0usize; PARTS];
    for x in numbers() {
        counts[(x >> 24) as usize] += 1;
    }
    let largest = counts.iter().copied().max().unwrap_or(0);
    // The last slot takes the numbers of the parts outside a round.
    let mut spread = vec![0u32; total.min(spread_max).max(largest) + 1];
    let dump = spread.len() - 1;
    let mut bits = vec![0u64; 1 << (24 - 6)];
    let mut n = 0;
    let mut low = 0;
    while low < PARTS {
        let mut high = low;
        let mut size = 0;
        while high < PARTS && (high == low || size + counts[high] <= dump) {
            size += counts[high];
            high += 1;
        }
        let mut next = [dump; PARTS];
        let mut starts = [0usize; PARTS + 1];
        for p in low..high {
            next[p] = starts[p];
            starts[p + 1] = starts[p] + counts[p];
        }
        // Branch-free: a number of a part outside the round is written to the last slot and its
        // part's place does not move.
        for x in numbers() {
            let p = (x >> 24) as usize;
            let slot = next[p];
            spread[slot] = x;
            next[p] = slot + usize::from(p.wrapping_sub(low) < high - low);
        }
        for p in low..high {
            let part = &spread[starts[p]..starts[p + 1]];
            for &x in part {
                let i = (x & 0xff_ffff) as usize;
                let (word, mask) = (&mut bits[i >> 6], 1u64 << (i & 63));
                n += u64::from(*word & mask == 0);
                *word |= mask;
            }
            for &x in part {
                bits[(x & 0xff_ffff) as usize >> 6] = 0;
            }
        }
        low = high;
    }
    n
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
            // Counted in parts (as a breakdown's total is, from its rows), cut at uneven places.
            let cuts = [0, 1, 7, len / 3, len / 3, len - 2, numbers.len()];
            let parts: Vec<&[u32]> = cuts.windows(2).map(|w| &numbers[w[0]..w[1]]).collect();
            assert_eq!(distinct_in(&parts), sorted.len() as u64);
            // In rounds: several parts a round, one part a round, a part larger than the limit.
            for spread_max in [len / 3, 2_000, 10] {
                assert_eq!(distinct_within(&parts, spread_max), sorted.len() as u64);
            }
            assert_eq!(distinct(&mut numbers), sorted.len() as u64);
        }
        // Few numbers in many parts take the sorting path.
        let parts: Vec<&[u32]> = vec![&[5, 1], &[], &[1, 9, 5], &[u32::MAX]];
        assert_eq!(distinct_in(&parts), 4);
        assert_eq!(distinct_in(&[]), 0);
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
    fn decoding_reads_every_gap_length_and_stops_at_malformed_input() {
        // Gaps of one to five bytes, in runs longer and shorter than the eight-byte word read.
        let mut state = 7u64;
        let mut set: Vec<u32> = (0..5_000)
            .map(|i| {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1);
                let bits = [7, 14, 21, 28, 32][i % 5];
                ((state >> 32) as u32) >> (32 - bits)
            })
            .collect();
        set.extend([0, 0, u32::MAX, u32::MAX]);
        set.sort_unstable();
        let bytes = encode(&set);
        assert_eq!(decode(&bytes), set);
        for cut in [1, 2, 3, 7, 8, 9, 13] {
            let short = &bytes[..bytes.len() - cut];
            let mut slow = Vec::new();
            let (mut prev, mut gap, mut shift) = (0u32, 0u32, 0u32);
            for &b in short {
                gap |= ((b & 0x7f) as u32) << shift;
                if b & 0x80 == 0 {
                    prev = prev.wrapping_add(gap);
                    slow.push(prev);
                    (gap, shift) = (0, 0);
                } else {
                    shift += 7;
                }
            }
            assert_eq!(decode(short), slow, "cut {cut}");
        }
        // Six bytes with the continuation bit: not a number; what came before is kept.
        let mut bad = encode(&[5, 9]);
        bad.extend([0xff; 6]);
        bad.extend([0x01; 12]);
        assert_eq!(decode(&bad), [5, 9]);
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
