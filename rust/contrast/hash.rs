//! A small, fast non-cryptographic hasher (the Fx multiply-rotate scheme) for the lexicon's
//! lookup tables and duplicate detection: the keys are short words and prompts, where
//! SipHash's per-call cost dominates. Not DoS-resistant; tables hold lexicon words and one
//! prompt's own candidates only.

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
        self.0
    }
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
