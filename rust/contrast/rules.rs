//! The contrastive rules. Each takes a parsed prompt and appends candidate prompts in a
//! fixed order; `mod.rs` removes the target and duplicates and samples. A rule is registered
//! by one entry in `registry.rs`.
//!
//! Words a rule writes that are not in the prompt come from the lexicon's writable pools
//! (`Lexicon::by_category`, `attr_pool`, a relation's `writable` opposite), so a lexicon
//! restricted to a vocabulary (`vocabulary.rs`) keeps every rule inside it.

use super::inflection::transfer_case;
use super::lexicon::{Kind, Lexicon, KINDS};
use super::parse::{Np, Parsed};
use super::render::{apply, render_np, Cands, NpChange};

/// Attribute words (in text order) the `color` and `attribute` rules rewrite at most.
pub const MAX_ATTRIBUTE_WORDS: usize = 64;

/// One parsed prompt, as every rule sees it.
pub struct Input<'a> {
    pub text: &'a str,
    pub p: &'a Parsed,
    pub lex: &'a Lexicon,
}

impl Input<'_> {
    fn np_text(&self, i: usize) -> &str {
        &self.text[self.p.nps[i].start..self.p.nps[i].end]
    }

    /// The prompt with everything from the first to the last noun phrase replaced by `mid`
    /// (which takes the case of the first phrase's first letter).
    fn with_middle(&self, mid: &str) -> String {
        let (s, e) = (self.p.nps[0].start, self.p.nps[self.p.nps.len() - 1].end);
        let mid = transfer_case(&self.text[s..e], mid);
        apply(self.text, vec![(s, e, mid)])
    }
}

/// `drop`: with several noun phrases, each one alone.
pub fn drop(inp: &Input, out: &mut Cands) {
    if inp.p.nps.len() < 2 {
        return;
    }
    for i in 0..inp.p.nps.len() {
        out.push_str(&inp.with_middle(inp.np_text(i)));
    }
}

/// `hybrid`: for two phrases X and Y, "an X-like Y" and "a Y-like X".
pub fn hybrid(inp: &Input, out: &mut Cands) {
    let nps = &inp.p.nps;
    if nps.len() != 2 || nps[0].head.noun == nps[1].head.noun {
        return;
    }
    for (x, y) in [(0, 1), (1, 0)] {
        let y_np = &nps[y];
        let like = format!("{}-like", inp.lex.nouns[nps[x].head.noun].singular);
        // Y's text with "X-like" before its noun, re-rendered so the article agrees.
        let mut mods: Vec<&str> = y_np
            .mods
            .iter()
            .map(|m| &inp.text[m.start..m.end])
            .collect();
        mods.push(&like);
        let change = NpChange {
            mods: Some(mods),
            ..Default::default()
        };
        out.push_str(&inp.with_middle(&render_np(inp.text, y_np, inp.lex, &change)));
    }
}

/// Replacement nouns for phrase `i`: others of its supercategory, else the first noun of
/// every other supercategory; never a noun (or a synonym of one) already in the prompt.
fn alternatives(inp: &Input, i: usize) -> Vec<usize> {
    let lex = inp.lex;
    let used: Vec<usize> = inp
        .p
        .nps
        .iter()
        .map(|n| lex.nouns[n.head.noun].synonym_group)
        .collect();
    let ok = |n: usize| !used.contains(&lex.nouns[n].synonym_group);
    let cat = lex.nouns[inp.p.nps[i].head.noun].category;
    let same: Vec<usize> = lex.by_category[cat]
        .iter()
        .copied()
        .filter(|&n| ok(n))
        .collect();
    if !same.is_empty() {
        return same;
    }
    (0..lex.categories.len())
        .filter(|&c| c != cat)
        .filter_map(|c| lex.by_category[c].first().copied())
        .filter(|&n| ok(n))
        .collect()
}

/// `object`: a noun replaced by another, same supercategory first.
pub fn object(inp: &Input, out: &mut Cands) {
    for (i, np) in inp.p.nps.iter().enumerate() {
        for n in alternatives(inp, i) {
            let change = NpChange {
                noun: Some(n),
                ..Default::default()
            };
            out.push_nps(inp.text, inp.lex, &[(np, change)]);
        }
    }
}

/// (start, end, kind, group, Some((phrase, modifier)) or None for a free word).
type Occurrence = (usize, usize, Kind, usize, Option<(usize, usize)>);

/// `color`: each colour word, in a phrase or free in the text, replaced by every other
/// colour group.
pub fn color(inp: &Input, out: &mut Cands) {
    attributes(inp, &[Kind::Color], out);
}

/// `attribute`: each size, material or texture word replaced by every other group of its
/// kind.
pub fn attribute(inp: &Input, out: &mut Cands) {
    attributes(inp, &[Kind::Size, Kind::Material, Kind::Texture], out);
}

/// Each word of `kinds`, in a phrase or free in the text, replaced by every other writable
/// group of its kind.
pub fn attributes(inp: &Input, kinds: &[Kind], out: &mut Cands) {
    let lex = inp.lex;
    let p = inp.p;
    // (start, end, kind, group, Some((phrase, modifier)) or None for a free word).
    let mut occ: Vec<Occurrence> = Vec::new();
    for (i, np) in p.nps.iter().enumerate() {
        for (j, m) in np.mods.iter().enumerate() {
            if let Some((k, g)) = m.attr {
                occ.push((m.start, m.end, k, g, Some((i, j))));
            }
        }
    }
    for t in &p.toks {
        let inside = p.nps.iter().any(|n| n.start <= t.start && t.end <= n.end);
        if let (false, Some(&(k, g))) = (inside, lex.attrs.get(&t.lower)) {
            occ.push((t.start, t.end, k, g, None));
        }
    }
    occ.sort_by_key(|o| o.0);
    occ.truncate(MAX_ATTRIBUTE_WORDS);
    for (s, e, kind, g, at) in occ {
        if !kinds.contains(&kind) {
            continue;
        }
        let orig = &inp.text[s..e];
        for &g2 in &lex.attr_pool[kind as usize] {
            if g2 == g {
                continue;
            }
            let word = &lex.groups[kind as usize][g2];
            let new = transfer_case(orig, word);
            match at {
                None => out.push_edits(inp.text, vec![(s, e, new)]),
                Some((i, j)) => {
                    let np = &p.nps[i];
                    let mut mods: Vec<&str> =
                        np.mods.iter().map(|m| &inp.text[m.start..m.end]).collect();
                    mods[j] = &new;
                    let change = NpChange {
                        mods: Some(mods),
                        ..Default::default()
                    };
                    out.push_nps(inp.text, lex, &[(np, change)]);
                }
            }
        }
    }
}

/// Adjective order used when a moved attribute has no slot: size, texture, colour, material.
fn rank(k: Kind) -> u8 {
    match k {
        Kind::Size => 0,
        Kind::Texture => 1,
        Kind::Color => 2,
        Kind::Material => 3,
    }
}

/// `np`'s modifiers with those of the kinds in `swap` replaced by `other`'s.
fn swapped_mods<'t>(text: &'t str, np: &Np, other: &Np, swap: &[Kind]) -> Vec<&'t str> {
    let mut cur: Vec<(&str, Option<Kind>)> = np
        .mods
        .iter()
        .map(|m| (&text[m.start..m.end], m.attr.map(|a| a.0)))
        .collect();
    for &k in swap {
        let slot = cur.iter().position(|m| m.1 == Some(k));
        cur.retain(|m| m.1 != Some(k));
        let incoming: Vec<(&str, Option<Kind>)> = other
            .mods
            .iter()
            .filter(|m| m.attr.map(|a| a.0) == Some(k))
            .map(|m| (&text[m.start..m.end], Some(k)))
            .collect();
        let at = match slot {
            Some(s) => s,
            None => cur
                .iter()
                .position(|m| m.1.is_some_and(|k2| rank(k2) > rank(k)))
                .unwrap_or(cur.len()),
        };
        cur.splice(at..at, incoming);
    }
    cur.into_iter().map(|m| m.0).collect()
}

/// `binding`: two phrases exchange their attributes, one kind at a time, then all at once.
pub fn binding(inp: &Input, out: &mut Cands) {
    let nps = &inp.p.nps;
    let groups = |np: &Np, k: Kind| -> Vec<usize> {
        np.mods
            .iter()
            .filter_map(|m| m.attr)
            .filter(|a| a.0 == k)
            .map(|a| a.1)
            .collect()
    };
    for a in 0..nps.len() {
        for b in a + 1..nps.len() {
            let differ: Vec<Kind> = KINDS
                .iter()
                .copied()
                .filter(|&k| groups(&nps[a], k) != groups(&nps[b], k))
                .collect();
            let mut swaps: Vec<Vec<Kind>> = differ.iter().map(|&k| vec![k]).collect();
            if differ.len() >= 2 {
                swaps.push(differ.clone());
            }
            for swap in swaps {
                let ma = swapped_mods(inp.text, &nps[a], &nps[b], &swap);
                let mb = swapped_mods(inp.text, &nps[b], &nps[a], &swap);
                let ca = NpChange {
                    mods: Some(ma),
                    ..Default::default()
                };
                let cb = NpChange {
                    mods: Some(mb),
                    ..Default::default()
                };
                out.push_nps(inp.text, inp.lex, &[(&nps[a], ca), (&nps[b], cb)]);
            }
        }
    }
}

/// `relation`: a spatial relation replaced by its opposite.
pub fn relation(inp: &Input, out: &mut Cands) {
    for r in inp.p.relations.iter().filter(|r| r.writable) {
        let new = transfer_case(&inp.text[r.start..r.end], &r.opposite);
        out.push_edits(inp.text, vec![(r.start, r.end, new)]);
    }
}

/// `swap`: the two phrases around an asymmetric relation exchanged.
pub fn swap(inp: &Input, out: &mut Cands) {
    for r in inp.p.relations.iter().filter(|r| !r.symmetric) {
        let (a, b) = (&inp.p.nps[r.left], &inp.p.nps[r.left + 1]);
        let (ta, tb) = (inp.np_text(r.left), inp.np_text(r.left + 1));
        let edits = vec![
            (a.start, a.end, transfer_case(ta, tb)),
            (b.start, b.end, transfer_case(tb, ta)),
        ];
        out.push_edits(inp.text, edits);
    }
}
