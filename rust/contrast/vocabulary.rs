//! Restricting what the rules may write to a vocabulary.
//!
//! A restricted lexicon still reads every word it knows (so prompts parse as before), but
//! its writable pools hold only the vocabulary's words: `object` writes only its nouns,
//! `color` and `attribute` only its colours, sizes, materials and textures, `relation` only
//! opposites it lists. The other rules write no new word (`count` writes numbers and the
//! prompt's own nouns, `hybrid` "X-like" of a noun of the prompt, `drop`, `binding` and
//! `swap` move the prompt's own words). A kind the vocabulary leaves out has no writable
//! word, and restricting twice keeps only words both vocabularies allow.
//!
//! JSON schema (every key optional):
//! ```json
//! {"nouns": ["circle", "squares"], "colors": ["red", "grey"], "sizes": ["small", "big"],
//!  "materials": [], "textures": [], "relations": ["above", "below"]}
//! ```
//! Nouns may be given in either number; an attribute word stands for its synonym group and
//! is the word written for it. Every word must be known to the lexicon (extend it first).

use super::lexicon::{norm_phrase, Kind, Lexicon, KINDS};
use crate::error::{Error, Result};
use serde::Deserialize;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Vocabulary {
    nouns: Option<Vec<String>>,
    colors: Option<Vec<String>>,
    sizes: Option<Vec<String>>,
    materials: Option<Vec<String>>,
    textures: Option<Vec<String>>,
    relations: Option<Vec<String>>,
}

fn unknown(what: &str, words: &[String]) -> Error {
    Error::parameter(
        "vocabulary",
        format!("{what} the lexicon knows (extend the lexicon first)"),
        format!("{words:?}"),
    )
}

impl Lexicon {
    /// This lexicon with its writable pools narrowed to the vocabulary in `json` (schema in
    /// the module docs).
    pub fn restricted(&self, json: &str) -> Result<Lexicon> {
        let voc: Vocabulary = serde_json::from_str(json).map_err(|e| {
            Error::parameter(
                "vocabulary",
                "a JSON object of word lists (nouns, colors, sizes, materials, textures, relations)",
                e,
            )
        })?;
        let mut lex = self.clone();

        let mut nouns = vec![false; lex.nouns.len()];
        let mut bad = Vec::new();
        for w in voc.nouns.unwrap_or_default() {
            match lex.forms.get(&norm_phrase(&w)) {
                Some(&(i, _)) => nouns[i] = true,
                None => bad.push(w),
            }
        }
        if !bad.is_empty() {
            return Err(unknown("nouns", &bad));
        }
        for pool in &mut lex.by_category {
            pool.retain(|&n| nouns[n]);
        }

        let lists = [voc.colors, voc.sizes, voc.materials, voc.textures];
        for (kind, words) in KINDS.iter().zip(lists) {
            lex.restrict_attributes(*kind, &words.unwrap_or_default())?;
        }

        let mut allowed = Vec::new();
        for w in voc.relations.unwrap_or_default() {
            let phrase = norm_phrase(&w);
            if !lex.relations.contains_key(&phrase) {
                bad.push(w);
            }
            allowed.push(phrase);
        }
        if !bad.is_empty() {
            return Err(unknown("relations", &bad));
        }
        for entry in lex.relations.values_mut() {
            entry.writable &= allowed.contains(&entry.opposite);
        }
        Ok(lex)
    }

    fn restrict_attributes(&mut self, kind: Kind, words: &[String]) -> Result<()> {
        let k = kind as usize;
        let mut chosen: Vec<Option<String>> = vec![None; self.groups[k].len()];
        let mut bad = Vec::new();
        for w in words {
            let w = norm_phrase(w);
            match self.attrs.get(&w) {
                Some(&(k2, g)) if k2 == kind => {
                    chosen[g].get_or_insert(w);
                }
                _ => bad.push(w),
            }
        }
        if !bad.is_empty() {
            let what = ["colors", "sizes", "materials", "textures"][k];
            return Err(unknown(what, &bad));
        }
        self.attr_pool[k].retain(|&g| chosen[g].is_some());
        for (g, word) in chosen.into_iter().enumerate() {
            if let Some(word) = word {
                self.groups[k][g] = word;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contrast::{contrast_one, Rule};

    fn run(lex: &Lexicon, text: &str) -> Vec<String> {
        contrast_one(text, &Rule::defaults(), None, 0, lex)
            .into_iter()
            .map(|c| c.0)
            .collect()
    }

    #[test]
    fn rules_write_only_the_vocabulary() {
        let full = Lexicon::default_lexicon();
        let lex = full
            .restricted(
                r#"{"nouns": ["circle", "squares", "star"], "colors": ["red", "grey"],
                    "sizes": ["small", "big"], "relations": ["above", "below"]}"#,
            )
            .unwrap();
        let got = run(&lex, "a big blue hexagon above two green circles");
        assert!(got.contains(&"a big blue square above two green circles".to_string()));
        assert!(got.contains(&"a big red hexagon above two green circles".to_string()));
        assert!(got.contains(&"a big grey hexagon above two green circles".to_string()));
        assert!(got.contains(&"a big blue hexagon below two green circles".to_string()));
        assert!(!got
            .iter()
            .any(|c| c.contains("pentagon") || c.contains("purple")));
        // a relation whose opposite is not in the vocabulary is never flipped
        assert!(run(&lex, "a red star left of a red circle")
            .iter()
            .all(|c| !c.contains("right of")));
        // unknown words are errors naming the vocabulary
        assert!(full.restricted(r#"{"nouns": ["blorp"]}"#).is_err());
        assert!(full.restricted(r#"{"colors": ["big"]}"#).is_err());
        assert!(full.restricted(r#"{"relations": ["amid"]}"#).is_err());
        assert!(full.restricted(r#"{"verbs": []}"#).is_err());
        // restricting twice keeps the intersection
        let two = lex.restricted(r#"{"nouns": ["circle", "cat"]}"#).unwrap();
        assert!(run(&two, "a blue hexagon")
            .iter()
            .all(|c| !c.contains("star") && !c.contains("cat")));
    }
}
