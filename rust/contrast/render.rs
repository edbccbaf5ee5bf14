//! Rewriting a prompt: noun phrases re-rendered with a new count, noun or modifiers (the
//! article and the noun's number agreeing), and span edits applied to the original text so
//! everything a rule does not touch (case, punctuation, spacing) is kept.

use super::inflection::{article, case_in_place, NUMBER_WORDS};
use super::lexicon::Lexicon;
use super::parse::{Np, Style};
use std::borrow::Cow;

/// A replacement of `text[start..end]`.
pub type Edit = (usize, usize, String);

/// What a rule changes in one noun phrase.
#[derive(Default)]
pub struct NpChange<'a> {
    pub count: Option<u32>,
    pub noun: Option<usize>,
    /// The full new modifier list (their texts), when modifiers change.
    pub mods: Option<Vec<&'a str>>,
}

/// The written form of count `n` in `style`; `next` is the word after it (for a/an).
pub fn count_text(n: u32, style: Style, next: &str) -> Cow<'static, str> {
    match (style, n) {
        (Style::Digit, _) => Cow::Owned(n.to_string()),
        (Style::One, 1) => Cow::Borrowed("one"),
        (_, 1) => Cow::Borrowed(article(next)),
        (_, n) if (n as usize) < NUMBER_WORDS.len() => Cow::Borrowed(NUMBER_WORDS[n as usize]),
        _ => Cow::Owned(n.to_string()),
    }
}

/// Appends the text of `np` after `change` to `out`.
pub fn render_np_into(out: &mut String, text: &str, np: &Np, lex: &Lexicon, change: &NpChange) {
    let orig_head = &text[np.head.start..np.head.end];
    let plural = match change.count {
        Some(c) => c != 1,
        None => np.head.plural,
    };
    // The head's text, and whether it takes the original head's case.
    let (head, recase): (&str, bool) = if change.noun.is_some() || change.count.is_some() {
        let noun = &lex.nouns[change.noun.unwrap_or(np.head.noun)];
        let form = if plural { &noun.plural } else { &noun.singular };
        if change.noun.is_none() && form.eq_ignore_ascii_case(orig_head) {
            (orig_head, false)
        } else {
            (form.as_str(), true)
        }
    } else {
        (orig_head, false)
    };
    let first_mod: Option<&str> = match &change.mods {
        Some(m) => m.first().copied(),
        None => np.mods.first().map(|m| &text[m.start..m.end]),
    };
    let np_start = out.len();
    if let Some(det) = &np.det {
        let orig_det = &text[det.start..det.end];
        let next = first_mod.unwrap_or(head);
        let next_word = next.split(' ').next().unwrap_or("");
        let start = out.len();
        match (det.count, change.count) {
            (Some(c), Some(n)) if n != c.n => out.push_str(&count_text(n, c.style, next_word)),
            (Some(c), _) if c.style == Style::Article => out.push_str(article(next_word)),
            _ => out.push_str(orig_det),
        }
        case_in_place(orig_det, &mut out[start..]);
        out.push(' ');
    }
    match &change.mods {
        Some(m) => m.iter().for_each(|x| {
            out.push_str(x);
            out.push(' ');
        }),
        None => np.mods.iter().for_each(|m| {
            out.push_str(&text[m.start..m.end]);
            out.push(' ');
        }),
    }
    let start = out.len();
    out.push_str(head);
    if recase {
        case_in_place(orig_head, &mut out[start..]);
    }
    case_in_place(&text[np.start..np.end], &mut out[np_start..]);
}

/// The text of `np` after `change`.
pub fn render_np(text: &str, np: &Np, lex: &Lexicon, change: &NpChange) -> String {
    let mut out = String::with_capacity(np.end - np.start + 24);
    render_np_into(&mut out, text, np, lex, change);
    out
}

/// Appends `text` with noun phrases re-rendered (`changes` in text order, non-overlapping).
fn apply_nps_into(out: &mut String, text: &str, lex: &Lexicon, changes: &[(&Np, NpChange)]) {
    let mut pos = 0;
    for (np, change) in changes {
        out.push_str(&text[pos..np.start]);
        render_np_into(out, text, np, lex, change);
        pos = np.end;
    }
    out.push_str(&text[pos..]);
}

/// Appends `text` with `edits` (non-overlapping, any order) applied.
fn apply_into(out: &mut String, text: &str, mut edits: Vec<Edit>) {
    edits.sort_by_key(|e| e.0);
    let mut pos = 0;
    for (s, e, r) in edits {
        out.push_str(&text[pos..s]);
        out.push_str(&r);
        pos = e;
    }
    out.push_str(&text[pos..]);
}

/// `text` with noun phrases re-rendered (`changes` in text order, non-overlapping).
pub fn apply_nps(text: &str, lex: &Lexicon, changes: &[(&Np, NpChange)]) -> String {
    let mut out = String::with_capacity(text.len() + 24);
    apply_nps_into(&mut out, text, lex, changes);
    out
}

/// `text` with `edits` (non-overlapping, any order) applied.
pub fn apply(text: &str, edits: Vec<Edit>) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    apply_into(&mut out, text, edits);
    out
}

/// A prompt's candidates written back to back into one buffer, so making a candidate costs
/// no allocation; only the ones kept become `String`s. The buffer holds at most `limit`
/// bytes: the candidate that passes it is dropped and every later push does nothing.
pub struct Cands {
    buf: String,
    ends: Vec<usize>,
    limit: usize,
    over: bool,
}

impl Default for Cands {
    fn default() -> Self {
        Cands::with_limit(usize::MAX)
    }
}

impl Cands {
    pub fn with_limit(limit: usize) -> Self {
        Cands {
            buf: String::new(),
            ends: Vec::new(),
            limit,
            over: false,
        }
    }

    /// Whether a candidate was dropped for passing the limit.
    pub fn over_limit(&self) -> bool {
        self.over
    }

    /// Bytes of candidate text written.
    pub fn bytes(&self) -> usize {
        self.buf.len()
    }

    /// Ends the candidate written since the last one (or drops it when past the limit).
    fn close(&mut self) {
        if self.buf.len() > self.limit {
            self.over = true;
            self.buf.truncate(self.ends.last().copied().unwrap_or(0));
        } else {
            self.ends.push(self.buf.len());
        }
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    pub fn get(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.buf[start..self.ends[i]]
    }

    pub fn push_str(&mut self, s: &str) {
        if !self.over {
            self.buf.push_str(s);
            self.close();
        }
    }

    pub fn push_edits(&mut self, text: &str, edits: Vec<Edit>) {
        if !self.over {
            apply_into(&mut self.buf, text, edits);
            self.close();
        }
    }

    pub fn push_nps(&mut self, text: &str, lex: &Lexicon, changes: &[(&Np, NpChange)]) {
        if !self.over {
            apply_nps_into(&mut self.buf, text, lex, changes);
            self.close();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contrast::parse::parse;

    #[test]
    fn counts_agree() {
        let lex = Lexicon::default_lexicon();
        let text = "A realistic photo of two mice";
        let p = parse(text, &lex);
        let np = &p.nps[0];
        let one = NpChange {
            count: Some(1),
            ..Default::default()
        };
        assert_eq!(
            apply_nps(text, &lex, &[(np, one)]),
            "A realistic photo of a mouse"
        );
        let text = "An apple";
        let p = parse(text, &lex);
        let two = NpChange {
            count: Some(2),
            ..Default::default()
        };
        assert_eq!(apply_nps(text, &lex, &[(&p.nps[0], two)]), "Two apples");
        assert_eq!(apply(text, vec![(0, 2, "One".into())]), "One apple");
        assert_eq!(count_text(25, Style::Word, "x"), "25");
        assert_eq!(count_text(1, Style::Digit, "x"), "1");
    }
}
