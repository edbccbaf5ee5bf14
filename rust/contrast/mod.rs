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
//!   (possibly empty).
//!
//! `textnorm._contrast_ref` is a pure-Python implementation of the same rules; the tests
//! compare the two on random prompts.

pub mod hash;
pub mod inflection;
pub mod lexicon;
pub mod parse;
pub mod render;
pub mod rules;
pub mod sampling;

use crate::error::{Error, Result};
use hash::{dedup_hash, same_key, FxHashMap};
use lexicon::Kind;
pub use lexicon::Lexicon;

/// The rules, in their default order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    Drop = 0,
    Count = 1,
    Hybrid = 2,
    Object = 3,
    Color = 4,
    Attribute = 5,
    Binding = 6,
    Relation = 7,
    Swap = 8,
}

pub const RULES: [Rule; 9] = [
    Rule::Drop,
    Rule::Count,
    Rule::Hybrid,
    Rule::Object,
    Rule::Color,
    Rule::Attribute,
    Rule::Binding,
    Rule::Relation,
    Rule::Swap,
];

impl Rule {
    pub fn name(self) -> &'static str {
        [
            "drop",
            "count",
            "hybrid",
            "object",
            "color",
            "attribute",
            "binding",
            "relation",
            "swap",
        ][self as usize]
    }

    pub fn from_name(name: &str) -> Result<Rule> {
        RULES
            .iter()
            .copied()
            .find(|r| r.name() == name)
            .ok_or_else(|| {
                let names: Vec<&str> = RULES.iter().map(|r| r.name()).collect();
                Error::parameter(
                    "rules",
                    format!("names among {}", names.join(", ")),
                    format!("{name:?}"),
                )
            })
    }

    /// Rules from names, in the given order, repeats removed; an empty list is an error.
    pub fn parse_list<S: AsRef<str>>(names: &[S]) -> Result<Vec<Rule>> {
        let mut out = Vec::new();
        for n in names {
            let r = Rule::from_name(n.as_ref())?;
            if !out.contains(&r) {
                out.push(r);
            }
        }
        if out.is_empty() {
            return Err(Error::parameter(
                "rules",
                "at least one rule name (or None for all)",
                "an empty list",
            ));
        }
        Ok(out)
    }
}

/// One prompt's contrastive set: (prompt, rule) pairs in rule order.
pub type Set = Vec<(String, Rule)>;

/// Every candidate of `rules` for `text`, target and duplicates removed, then a seeded
/// sample of `k` when given (order kept).
pub fn contrast_one(text: &str, rules: &[Rule], k: Option<usize>, seed: u64, lex: &Lexicon) -> Set {
    let parsed = parse::parse(text, lex);
    let inp = rules::Input {
        text,
        p: &parsed,
        lex,
    };
    let mut cands = render::Cands::default();
    let mut rule_of: Vec<Rule> = Vec::new();
    for &rule in rules {
        match rule {
            Rule::Drop => rules::drop(&inp, &mut cands),
            Rule::Count => rules::count(&inp, &mut cands),
            Rule::Hybrid => rules::hybrid(&inp, &mut cands),
            Rule::Object => rules::object(&inp, &mut cands),
            Rule::Color => rules::attributes(&inp, &[Kind::Color], &mut cands),
            Rule::Attribute => rules::attributes(
                &inp,
                &[Kind::Size, Kind::Material, Kind::Texture],
                &mut cands,
            ),
            Rule::Binding => rules::binding(&inp, &mut cands),
            Rule::Relation => rules::relation(&inp, &mut cands),
            Rule::Swap => rules::swap(&inp, &mut cands),
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
    kept.into_iter()
        .map(|i| (cands.get(i).to_string(), rule_of[i]))
        .collect()
}

/// Sets for many prompts, in parallel for large inputs (see `crate::parallel`); the result
/// is the same for any number of threads.
pub fn contrast<S: AsRef<str> + Sync>(
    prompts: &[S],
    rules: &[Rule],
    k: Option<usize>,
    seed: u64,
    lex: &Lexicon,
) -> Result<Vec<Set>> {
    if rules.is_empty() {
        return Err(Error::parameter(
            "rules",
            "at least one rule",
            "an empty list",
        ));
    }
    let mut out: Vec<Set> = vec![Vec::new(); prompts.len()];
    // A prompt costs far more than a normalised value: weigh bytes by 64.
    let work = prompts.iter().map(|p| p.as_ref().len() + 1).sum::<usize>() * 64;
    crate::parallel::for_each_chunk(&mut out, work, |first, chunk: &mut [Set]| {
        for (j, slot) in chunk.iter_mut().enumerate() {
            *slot = contrast_one(prompts[first + j].as_ref(), rules, k, seed, lex);
        }
        Ok::<(), Error>(())
    })?;
    Ok(out)
}

#[cfg(test)]
mod tests;
