//! A small, fast non-cryptographic hasher (the Fx multiply-rotate scheme) for the lexicon's
//! lookup tables and duplicate detection: the keys are short words and prompts, where
//! SipHash's per-call cost dominates. Not DoS-resistant; tables hold lexicon words and one
//! prompt's own candidates only. `finish` applies a full-avalanche finaliser, so table
//! indices stay spread for keys that share long prefixes (lookups stay O(1) on big lexicons).

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

const K: u64 = 0x517c_c1b7_2722_0a95;

#[derive(Default, Clone, Copy)]
pub struct FxHasher(u64);

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(K);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(u64::from_le_bytes(c.try_into().unwrap_or([0; 8])));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut buf = [0u8; 8];
            buf[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(buf) ^ (rest.len() as u64) << 56);
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(i as u64);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        fmix64(self.0)
    }
}

/// MurmurHash3's 64-bit finaliser. The multiply-rotate state mixes high input bits poorly
/// into the low bits a hash table indexes by: words that differ only in their later bytes
/// ("critter1", "critter2", ...) filled the same buckets and made lookups linear (a lexicon
/// of 100,000 nouns took 17 s). After this every input bit reaches every output bit.
#[inline]
fn fmix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^ (k >> 33)
}

pub type FxBuild = BuildHasherDefault<FxHasher>;
pub type FxHashMap<K, V> = HashMap<K, V, FxBuild>;
pub type FxHashSet<K> = HashSet<K, FxBuild>;

fn is_space(b: &u8) -> bool {
    matches!(*b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

/// ASCII lower case of 8 packed bytes (non-ASCII bytes unchanged).
#[inline]
fn lower8(x: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let heptets = x & !HIGH;
    let gt_z = heptets.wrapping_add((0x7f - b'Z' as u64) * ONES);
    let ge_a = heptets.wrapping_add((0x80 - b'A' as u64) * ONES);
    let upper = !x & (ge_a ^ gt_z) & HIGH;
    x | (upper >> 2)
}

/// Hash of a prompt's duplicate key (`sampling::dedup_key`) without building the key: the
/// key's words (ASCII lower-cased), 8 bytes at a time, each word closed by its length.
pub fn dedup_hash(text: &str) -> u64 {
    let mut h = FxHasher::default();
    for w in text.as_bytes().split(is_space).filter(|w| !w.is_empty()) {
        let mut chunks = w.chunks_exact(8);
        for c in &mut chunks {
            h.add(lower8(u64::from_le_bytes(c.try_into().unwrap_or([0; 8]))));
        }
        let rest = chunks.remainder();
        let mut buf = [0u8; 8];
        buf[..rest.len()].copy_from_slice(rest);
        h.add(lower8(u64::from_le_bytes(buf)) ^ ((w.len() as u64) << 56));
    }
    h.finish()
}

/// Whether two prompts have the same duplicate key, without building either key.
pub fn same_key(a: &str, b: &str) -> bool {
    let mut wa = words(a);
    let mut wb = words(b);
    loop {
        match (wa.next(), wb.next()) {
            (None, None) => return true,
            (Some(x), Some(y)) if x.eq_ignore_ascii_case(y) => continue,
            _ => return false,
        }
    }
}

fn words(t: &str) -> impl Iterator<Item = &[u8]> {
    t.as_bytes().split(is_space).filter(|w| !w.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contrast::sampling::dedup_key;

    #[test]
    fn lower8_is_ascii_lowercase() {
        for b in 0..=255u8 {
            let x = u64::from_le_bytes([b, b'A', b'z', b'@', b'[', 0xC3, b'Z', b'a']);
            let want = u64::from_le_bytes([
                b.to_ascii_lowercase(),
                b'a',
                b'z',
                b'@',
                b'[',
                0xC3,
                b'z',
                b'a',
            ]);
            assert_eq!(lower8(x), want, "{b}");
        }
    }

    #[test]
    fn low_bits_spread_for_keys_with_a_common_prefix() {
        use std::hash::BuildHasher;
        // 4096 keys into 4096 buckets by the low 12 bits: a uniform hash fills about 63% of
        // them (1 - 1/e); the unmixed state filled a handful.
        let build = FxBuild::default();
        let mut low: FxHashSet<u64> = FxHashSet::default();
        let mut dedup_low: FxHashSet<u64> = FxHashSet::default();
        for i in 0..4096 {
            let key = format!("critter{i}");
            low.insert(build.hash_one(&key) & 0xfff);
            dedup_low.insert(dedup_hash(&format!("a {key} on a table")) & 0xfff);
        }
        assert!(low.len() > 2300, "{}", low.len());
        assert!(dedup_low.len() > 2300, "{}", dedup_low.len());
    }

    #[test]
    fn key_hash_and_equality_follow_dedup_key() {
        let cases = [
            "A  cat",
            "a cat",
            " a\tCAT\n",
            "a cats",
            "",
            "  ",
            "\u{e9}A b",
        ];
        for a in cases {
            for b in cases {
                let same = dedup_key(a) == dedup_key(b);
                assert_eq!(same_key(a, b), same, "{a:?} {b:?}");
                if same {
                    assert_eq!(dedup_hash(a), dedup_hash(b));
                }
            }
        }
    }
}
