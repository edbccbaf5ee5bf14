//! A shallow grammar for text-to-image prompts: words, noun phrases and spatial relations.
//!
//! Words are maximal runs of ASCII letters and digits and non-ASCII characters, with `-` and
//! `'` inside a word (between two word characters). Everything else is kept verbatim.
//! A noun phrase is `[determiner] modifier* noun`, its words separated by spaces or tabs:
//! the noun is the last lexicon noun of the run (so "an orange cat" has head "cat" and
//! colour "orange"); with a determiner, up to three unknown modifiers ("a very cute dog")
//! may precede the first noun. A phrase has at most `MAX_UNITS` words or nouns and only the
//! first `MAX_NPS` phrases are kept, so work and output stay bounded on very long prompts.
//! A relation is a lexicon phrase alone between two adjacent
//! noun phrases ("a cat to the left of a dog"). Offsets are byte offsets into the prompt.

use super::inflection::{number_word_value, NUMBER_WORDS};
use super::lexicon::{Kind, Lexicon};

/// Most unknown words a determiner may be separated from its noun by.
pub const MAX_UNKNOWN_MODIFIERS: usize = 3;
/// Most words-or-nouns in one phrase (bounds the parser's work on long attribute runs).
pub const MAX_UNITS: usize = 12;
/// Noun phrases the rules see (the first ones); bounds the candidates of long prompts.
pub const MAX_NPS: usize = 16;
/// Largest digit count read as a count (6 digits).
pub const MAX_DIGIT_COUNT: u32 = 999_999;

/// Determiners that are not counts.
pub const OTHER_DETERMINERS: &[&str] = &[
    "the", "this", "that", "these", "those", "some", "several", "many", "few", "my", "your", "his",
    "her", "its", "our", "their", "every", "each", "no", "another",
];

/// Words that never modify a noun (they end a determiner's run).
pub const FUNCTION_WORDS: &[&str] = &[
    "of", "in", "on", "at", "to", "with", "without", "and", "or", "but", "nor", "is", "are", "was",
    "were", "be", "been", "being", "for", "from", "by", "as", "into", "onto", "over", "under",
    "than", "then", "there", "here", "not", "it", "they", "he", "she", "we", "you", "i", "has",
    "have", "had", "do", "does", "did", "which", "who", "whom", "whose", "while", "where", "when",
    "if", "so", "also", "just", "only", "all", "both", "either", "neither", "about", "across",
    "against", "along", "among", "around", "through", "toward", "towards", "upon", "within", "via",
    "like", "unlike", "up", "down", "out", "off",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    /// "a"/"an": 1 is written as an article, others as words.
    Article,
    /// "one": 1 is written "one", others as words.
    One,
    /// "two".."twenty".
    Word,
    /// "3": always digits.
    Digit,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Count {
    pub n: u32,
    pub style: Style,
}

#[derive(Clone, Debug)]
pub struct Det {
    pub start: usize,
    pub end: usize,
    pub count: Option<Count>,
}

#[derive(Clone, Debug)]
pub struct Mod {
    pub start: usize,
    pub end: usize,
    pub attr: Option<(Kind, usize)>,
}

#[derive(Clone, Debug)]
pub struct Head {
    pub start: usize,
    pub end: usize,
    pub noun: usize,
    pub plural: bool,
}

#[derive(Clone, Debug)]
pub struct Np {
    pub start: usize,
    pub end: usize,
    pub det: Option<Det>,
    pub mods: Vec<Mod>,
    pub head: Head,
}

#[derive(Clone, Debug)]
pub struct Relation {
    /// Index of the noun phrase before the phrase (the next one follows it).
    pub left: usize,
    pub start: usize,
    pub end: usize,
    pub opposite: String,
    pub symmetric: bool,
    /// Whether the lexicon lets rules write the opposite.
    pub writable: bool,
}

#[derive(Clone, Debug)]
pub struct Tok {
    pub start: usize,
    pub end: usize,
    pub lower: String,
}

/// A parsed prompt.
#[derive(Clone, Debug, Default)]
pub struct Parsed {
    pub toks: Vec<Tok>,
    pub nps: Vec<Np>,
    pub relations: Vec<Relation>,
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || !c.is_ascii()
}

/// Splits a prompt into words (see the module docs).
pub fn tokenize(text: &str) -> Vec<Tok> {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let mut toks = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if !is_word_char(chars[i].1) {
            i += 1;
            continue;
        }
        let start = chars[i].0;
        let mut j = i + 1;
        while j < chars.len() {
            let c = chars[j].1;
            let joiner =
                (c == '-' || c == '\'') && j + 1 < chars.len() && is_word_char(chars[j + 1].1);
            if is_word_char(c) || joiner {
                j += 1;
            } else {
                break;
            }
        }
        let end = if j < chars.len() {
            chars[j].0
        } else {
            text.len()
        };
        toks.push(Tok {
            start,
            end,
            lower: text[start..end].to_ascii_lowercase(),
        });
        i = j;
    }
    toks
}

/// True when the text between two words is one or more spaces or tabs.
fn space_gap(text: &str, a: &Tok, b: &Tok) -> bool {
    let gap = &text.as_bytes()[a.end..b.start];
    !gap.is_empty() && gap.iter().all(|&c| c == b' ' || c == b'\t')
}

fn count_of(word: &str) -> Option<Count> {
    match word {
        "a" | "an" => Some(Count {
            n: 1,
            style: Style::Article,
        }),
        "one" => Some(Count {
            n: 1,
            style: Style::One,
        }),
        _ => {
            if let Some(n) = number_word_value(word) {
                return Some(Count {
                    n,
                    style: Style::Word,
                });
            }
            if !word.is_empty() && word.len() <= 6 && word.bytes().all(|c| c.is_ascii_digit()) {
                let n: u32 = word.parse().ok()?;
                if (1..=MAX_DIGIT_COUNT).contains(&n) {
                    return Some(Count {
                        n,
                        style: Style::Digit,
                    });
                }
            }
            None
        }
    }
}

/// (first word, end word, Some((noun, plural)) for a noun).
type Unit = (usize, usize, Option<(usize, bool)>);

struct Ctx<'a> {
    text: &'a str,
    toks: &'a [Tok],
    lex: &'a Lexicon,
}

impl Ctx<'_> {
    fn is_modifier_word(&self, w: &str) -> bool {
        !w.bytes().any(|c| c.is_ascii_digit())
            && !FUNCTION_WORDS.contains(&w)
            && !OTHER_DETERMINERS.contains(&w)
            && !NUMBER_WORDS.contains(&w)
            && w != "a"
            && w != "an"
            && !self.lex.relation_words.contains(w)
    }

    /// Longest noun form starting at word `k`: (words, noun, plural).
    fn noun_at(&self, k: usize) -> Option<(usize, usize, bool)> {
        let max = self.lex.max_noun_words.min(self.toks.len() - k);
        let mut key = String::new();
        let mut best = None;
        for m in 1..=max {
            if m > 1 {
                if !space_gap(self.text, &self.toks[k + m - 2], &self.toks[k + m - 1]) {
                    break;
                }
                key.push(' ');
            }
            key.push_str(&self.toks[k + m - 1].lower);
            if let Some(&(noun, plural)) = self.lex.forms.get(&key) {
                best = Some((m, noun, plural));
            }
        }
        best
    }

    /// Parses `modifier* noun` from word `j`: (mods, head, index after the head).
    fn phrase_at(&self, j: usize, allow_unknown: bool) -> Option<(Vec<Mod>, Head, usize)> {
        // Units: (first word, end word, noun?).
        let mut units: Vec<Unit> = Vec::new();
        let (mut k, mut unknown, mut seen_noun) = (j, 0, false);
        while k < self.toks.len() {
            if units.len() >= MAX_UNITS
                || (k > j && !space_gap(self.text, &self.toks[k - 1], &self.toks[k]))
            {
                break;
            }
            if let Some((m, noun, plural)) = self.noun_at(k) {
                units.push((k, k + m, Some((noun, plural))));
                seen_noun = true;
                k += m;
                continue;
            }
            if seen_noun {
                break;
            }
            let w = &self.toks[k].lower;
            if self.lex.attrs.contains_key(w) {
                units.push((k, k + 1, None));
            } else if allow_unknown && unknown < MAX_UNKNOWN_MODIFIERS && self.is_modifier_word(w) {
                unknown += 1;
                units.push((k, k + 1, None));
            } else {
                break;
            }
            k += 1;
        }
        let h = units.iter().rposition(|u| u.2.is_some())?;
        let (hs, he, Some((noun, plural))) = units[h] else {
            return None;
        };
        let mods = units[..h]
            .iter()
            .map(|&(a, b, _)| Mod {
                start: self.toks[a].start,
                end: self.toks[b - 1].end,
                attr: if b == a + 1 {
                    self.lex.attrs.get(&self.toks[a].lower).copied()
                } else {
                    None
                },
            })
            .collect();
        let head = Head {
            start: self.toks[hs].start,
            end: self.toks[he - 1].end,
            noun,
            plural,
        };
        Some((mods, head, he))
    }
}

/// Parses a prompt into words, noun phrases and relations.
pub fn parse(text: &str, lex: &Lexicon) -> Parsed {
    let toks = tokenize(text);
    let ctx = Ctx {
        text,
        toks: &toks,
        lex,
    };
    let mut nps: Vec<Np> = Vec::new();
    let mut i = 0;
    while i < toks.len() && nps.len() < MAX_NPS {
        let w = toks[i].lower.as_str();
        let count = count_of(w);
        let is_det = count.is_some() || OTHER_DETERMINERS.contains(&w);
        if is_det && i + 1 < toks.len() && space_gap(text, &toks[i], &toks[i + 1]) {
            if let Some((mods, head, next)) = ctx.phrase_at(i + 1, true) {
                let det = Det {
                    start: toks[i].start,
                    end: toks[i].end,
                    count,
                };
                nps.push(Np {
                    start: det.start,
                    end: head.end,
                    det: Some(det),
                    mods,
                    head,
                });
                i = next;
                continue;
            }
        }
        if let Some((mods, head, next)) = ctx.phrase_at(i, false) {
            let start = mods.first().map_or(head.start, |m| m.start);
            nps.push(Np {
                start,
                end: head.end,
                det: None,
                mods,
                head,
            });
            i = next;
            continue;
        }
        i += 1;
    }
    let relations = find_relations(text, &toks, &nps, lex);
    Parsed {
        toks,
        nps,
        relations,
    }
}

fn find_relations(text: &str, toks: &[Tok], nps: &[Np], lex: &Lexicon) -> Vec<Relation> {
    let mut out = Vec::new();
    for (t, pair) in nps.windows(2).enumerate() {
        // Words strictly between the two phrases.
        let first = toks.partition_point(|w| w.start < pair[0].end);
        let last = toks.partition_point(|w| w.start < pair[1].start);
        let m = last.saturating_sub(first);
        if m == 0 || m > lex.max_relation_words || first == 0 {
            continue;
        }
        if !(first - 1..last).all(|q| space_gap(text, &toks[q], &toks[q + 1])) {
            continue;
        }
        let key: Vec<&str> = toks[first..last].iter().map(|w| w.lower.as_str()).collect();
        if let Some(entry) = lex.relations.get(&key.join(" ")) {
            out.push(Relation {
                left: t,
                start: toks[first].start,
                end: toks[last - 1].end,
                opposite: entry.opposite.clone(),
                symmetric: entry.symmetric,
                writable: entry.writable,
            });
        }
    }
    out
}
