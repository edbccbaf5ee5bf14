//! Rewriting a prompt: noun phrases re-rendered with a new count, noun or modifiers (the
//! article and the noun's number agreeing), and span edits applied to the original text so
//! everything a rule does not touch (case, punctuation, spacing) is kept.

use super::inflection::{article, transfer_case, NUMBER_WORDS};
use super::lexicon::Lexicon;
use super::parse::{Np, Style};

/// A replacement of `text[start..end]`.
pub type Edit = (usize, usize, String);

/// What a rule changes in one noun phrase.
#[derive(Default)]
pub struct NpChange {
    pub count: Option<u32>,
    pub noun: Option<usize>,
    /// The full new modifier list (their texts), when modifiers change.
    pub mods: Option<Vec<String>>,
}

/// The written form of count `n` in `style`; `next` is the word after it (for a/an).
pub fn count_text(n: u32, style: Style, next: &str) -> String {
    match (style, n) {
        (Style::Digit, _) => n.to_string(),
        (Style::One, 1) => "one".to_string(),
        (_, 1) => article(next).to_string(),
        (_, n) if (n as usize) < NUMBER_WORDS.len() => NUMBER_WORDS[n as usize].to_string(),
        _ => n.to_string(),
    }
}

/// The text of `np` after `change`.
pub fn render_np(text: &str, np: &Np, lex: &Lexicon, change: &NpChange) -> String {
    let orig_head = &text[np.head.start..np.head.end];
    let plural = match change.count {
        Some(c) => c != 1,
        None => np.head.plural,
    };
    let head = if change.noun.is_some() || change.count.is_some() {
        let noun = &lex.nouns[change.noun.unwrap_or(np.head.noun)];
        let form = if plural { &noun.plural } else { &noun.singular };
        if change.noun.is_none() && form.eq_ignore_ascii_case(orig_head) {
            orig_head.to_string()
        } else {
            transfer_case(orig_head, form)
        }
    } else {
        orig_head.to_string()
    };
    let mods: Vec<String> = match &change.mods {
        Some(m) => m.clone(),
        None => np
            .mods
            .iter()
            .map(|m| text[m.start..m.end].to_string())
            .collect(),
    };
    let mut parts: Vec<String> = Vec::with_capacity(mods.len() + 2);
    if let Some(det) = &np.det {
        let orig_det = &text[det.start..det.end];
        let next = mods.first().unwrap_or(&head);
        let next_word = next.split(' ').next().unwrap_or("");
        let det_text = match (det.count, change.count) {
            (Some(c), Some(n)) if n != c.n => {
                transfer_case(orig_det, &count_text(n, c.style, next_word))
            }
            (Some(c), _) if c.style == Style::Article => {
                transfer_case(orig_det, article(next_word))
            }
            _ => orig_det.to_string(),
        };
        parts.push(det_text);
    }
    parts.extend(mods);
    parts.push(head);
    transfer_case(&text[np.start..np.end], &parts.join(" "))
}

/// `text` with `edits` (non-overlapping, any order) applied.
pub fn apply(text: &str, mut edits: Vec<Edit>) -> String {
    edits.sort_by_key(|e| e.0);
    let mut out = String::with_capacity(text.len() + 16);
    let mut pos = 0;
    for (s, e, r) in edits {
        out.push_str(&text[pos..s]);
        out.push_str(&r);
        pos = e;
    }
    out.push_str(&text[pos..]);
    out
}

/// `text` with `np` replaced by its rendering after `change`.
pub fn edit_np(text: &str, np: &Np, lex: &Lexicon, change: &NpChange) -> Edit {
    (np.start, np.end, render_np(text, np, lex, change))
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
        let one = edit_np(
            text,
            np,
            &lex,
            &NpChange {
                count: Some(1),
                ..Default::default()
            },
        );
        assert_eq!(apply(text, vec![one]), "A realistic photo of a mouse");
        let text = "An apple";
        let p = parse(text, &lex);
        let two = edit_np(
            text,
            &p.nps[0],
            &lex,
            &NpChange {
                count: Some(2),
                ..Default::default()
            },
        );
        assert_eq!(apply(text, vec![two]), "Two apples");
        assert_eq!(count_text(25, Style::Word, "x"), "25");
        assert_eq!(count_text(1, Style::Digit, "x"), "1");
    }
}
