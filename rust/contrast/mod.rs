//! Rule-based contrastive prompt sets: near-misses of a text-to-image prompt that differ in
//! one thing a reward model tends to miss (a count, an object, a colour or other attribute,
//! which object has which attribute, a spatial relation).
//!
//! Invariants:
//! - a set never contains the target or a duplicate (compared by [`sampling::dedup_key`]:
//!   ASCII case and whitespace runs ignored);
//! - text a rule does not rewrite is kept byte for byte (case, punctuation, spacing);
//! - the output depends only on (prompt, rules, k, seed, lexicon): never on the prompt's
//!   position or the number of threads;
//! - no input panics: empty, whitespace-only, non-ASCII and very long prompts give sets
//!   (possibly empty);
//! - the work and memory of a call are linear in the lexicon and in the prompts' length,
//!   and the candidate text it writes is at most `max_bytes` (default [`DEFAULT_MAX_BYTES`];
//!   beyond it the call returns an error).
//!
//! Rules are registered in [`registry::RULES`]. `tests/reference_contrast.py` is a
//! pure-Python implementation of the same rules; the tests compare the two on random prompts.

pub mod counts;
pub mod hash;
pub mod inflection;
pub mod lexicon;
pub mod parse;
pub mod registry;
pub mod render;
pub mod rules;
pub mod sampling;
pub mod vocabulary;

use crate::error::{Error, Result};
use hash::{dedup_hash, same_key, FxHashMap};
pub use lexicon::Lexicon;
pub use registry::{Rule, RULES};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Default of `max_bytes`: the most bytes of candidate text (before duplicates are removed
/// and `k` sampled) one call may generate, 1 GiB. Beyond it the call fails with an error
/// naming `prompts`, instead of filling memory (a 1,000,000-character prompt alone would
/// write 1.6 GB).
pub const DEFAULT_MAX_BYTES: usize = 1 << 30;

/// One prompt's contrastive set: (prompt, rule) pairs in rule order.
pub type Set = Vec<(String, Rule)>;

/// Every candidate of `rules` for `text`, target and duplicates removed, then a seeded
/// sample of `k` when given (order kept), and the bytes of candidate text written. Writes
/// at most `budget` bytes of candidates, else returns `None`.
fn contrast_within(
    text: &str,
    rules: &[Rule],
    k: Option<usize>,
    seed: u64,
    lex: &Lexicon,
    budget: usize,
) -> Option<(Set, usize)> {
    let parsed = parse::parse(text, lex);
    let inp = rules::Input {
        text,
        p: &parsed,
        lex,
    };
    let mut cands = render::Cands::with_limit(budget);
    let mut rule_of: Vec<Rule> = Vec::new();
    for &rule in rules {
        (rule.def().run)(&inp, &mut cands);
        if cands.over_limit() {
            return None;
        }
        rule_of.resize(cands.len(), rule);
    }
    // Duplicate detection by key hash, confirmed exactly (usize::MAX stands for the target).
    let mut seen: FxHashMap<u64, usize> =
        FxHashMap::with_capacity_and_hasher(cands.len() + 1, Default::default());
    seen.insert(dedup_hash(text), usize::MAX);
    let mut kept: Vec<usize> = Vec::with_capacity(cands.len());
    for i in 0..cands.len() {
        let cand = cands.get(i);
        let h = dedup_hash(cand);
        let fresh = match seen.get(&h) {
            None => {
                seen.insert(h, i);
                true
            }
            Some(&j) => {
                let first = if j == usize::MAX { text } else { cands.get(j) };
                // A hash collision of different keys: decide by an exact scan.
                !same_key(first, cand)
                    && !same_key(text, cand)
                    && !kept.iter().any(|&q| same_key(cands.get(q), cand))
            }
        };
        if fresh {
            kept.push(i);
        }
    }
    if let Some(k) = k {
        if k < kept.len() {
            kept = sampling::sample(kept.len(), k, seed, text)
                .into_iter()
                .map(|j| kept[j])
                .collect();
        }
    }
    let set = kept
        .into_iter()
        .map(|i| (cands.get(i).to_string(), rule_of[i]))
        .collect();
    Some((set, cands.bytes()))
}

/// [`contrast_within`] without a byte limit (for tests and small inputs).
pub fn contrast_one(text: &str, rules: &[Rule], k: Option<usize>, seed: u64, lex: &Lexicon) -> Set {
    contrast_within(text, rules, k, seed, lex, usize::MAX).map_or_else(Vec::new, |s| s.0)
}

/// Sets for many prompts, in parallel for large inputs (see `crate::parallel`); the result
/// is the same for any number of threads. Fails when the candidates of all prompts together
/// exceed `max_bytes` (the same for any number of threads: each prompt's candidates are
/// counted once, and a prompt stops as soon as the call's total would pass the cap).
pub fn contrast<S: AsRef<str> + Sync>(
    prompts: &[S],
    rules: &[Rule],
    k: Option<usize>,
    seed: u64,
    lex: &Lexicon,
    max_bytes: usize,
) -> Result<Vec<Set>> {
    if rules.is_empty() {
        return Err(Error::parameter(
            "rules",
            "at least one rule",
            "an empty list",
        ));
    }
    let used = AtomicUsize::new(0);
    let mut out: Vec<Set> = vec![Vec::new(); prompts.len()];
    // A prompt costs far more than a normalised value: weigh bytes by 64.
    let work = prompts.iter().map(|p| p.as_ref().len() + 1).sum::<usize>() * 64;
    crate::parallel::for_each_chunk(&mut out, work, |first, chunk: &mut [Set]| {
        for (j, slot) in chunk.iter_mut().enumerate() {
            let text = prompts[first + j].as_ref();
            let budget = max_bytes.saturating_sub(used.load(Ordering::Relaxed));
            let over = || too_much(max_bytes, first + j, text);
            let (set, bytes) =
                contrast_within(text, rules, k, seed, lex, budget).ok_or_else(over)?;
            if used.fetch_add(bytes, Ordering::Relaxed) + bytes > max_bytes {
                return Err(over());
            }
            *slot = set;
        }
        Ok::<(), Error>(())
    })?;
    Ok(out)
}

fn too_much(max_bytes: usize, index: usize, text: &str) -> Error {
    Error::parameter(
        "prompts",
        format!(
            "contrastive sets of at most max_bytes={max_bytes} bytes of candidate text in all \
             (shorten the prompts, pass fewer at once or raise max_bytes)"
        ),
        format!("more (passed at prompt {index}, {} bytes long)", text.len()),
    )
}

#[cfg(test)]
mod tests;
