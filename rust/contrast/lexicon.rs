//! The lexicon: object nouns with supercategories, attribute words (colours, sizes,
//! materials, textures) in synonym groups, and spatial relations with their opposites.
//!
//! JSON schema (every key optional when extending the default):
//! ```json
//! {"nouns": {"animal": ["cat", ["mouse", "mice"]]},
//!  "synonyms": [["car", "automobile"]],
//!  "colors": [["gray", "grey"]], "sizes": [...], "materials": [...], "textures": [...],
//!  "relations": [["above", "below"]], "symmetric_relations": ["next to"]}
//! ```
//! A noun is a singular string (plural by `inflection::plural`) or `[singular, plural]`.
//! An attribute group lists synonyms; its first word is the one written in outputs.
//! Words are matched case-insensitively (ASCII); whitespace inside phrases is collapsed.

use crate::error::{Error, Result};
use serde::Deserialize;
use std::collections::HashMap;

use super::hash::{FxHashMap, FxHashSet};

use super::inflection::plural;

/// The JSON text of the default lexicon.
pub const DEFAULT_JSON: &str = include_str!("default_lexicon.json");

/// Attribute kinds, in the order the rules visit them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    Color = 0,
    Size = 1,
    Material = 2,
    Texture = 3,
}

pub const KINDS: [Kind; 4] = [Kind::Color, Kind::Size, Kind::Material, Kind::Texture];

#[derive(Deserialize)]
#[serde(untagged)]
enum NounSpec {
    Regular(String),
    Forms(Vec<String>),
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Spec {
    #[serde(default, deserialize_with = "ordered_map")]
    nouns: Vec<(String, Vec<NounSpec>)>,
    #[serde(default)]
    synonyms: Vec<Vec<String>>,
    #[serde(default)]
    colors: Vec<Vec<String>>,
    #[serde(default)]
    sizes: Vec<Vec<String>>,
    #[serde(default)]
    materials: Vec<Vec<String>>,
    #[serde(default)]
    textures: Vec<Vec<String>>,
    #[serde(default)]
    relations: Vec<(String, String)>,
    #[serde(default)]
    symmetric_relations: Vec<String>,
}

/// A JSON object as (key, value) pairs in file order (category order decides fallbacks).
fn ordered_map<'de, D>(d: D) -> std::result::Result<Vec<(String, Vec<NounSpec>)>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    struct V;
    impl<'de> serde::de::Visitor<'de> for V {
        type Value = Vec<(String, Vec<NounSpec>)>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an object {category: [nouns]}")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> std::result::Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(entry) = map.next_entry()? {
                out.push(entry);
            }
            Ok(out)
        }
    }
    d.deserialize_map(V)
}

/// One object noun.
#[derive(Clone, Debug)]
pub struct Noun {
    pub singular: String,
    pub plural: String,
    pub category: usize,
    /// Nouns sharing a synonym group never replace each other.
    pub synonym_group: usize,
}

/// A spatial relation's entry.
#[derive(Clone, Debug)]
pub struct RelationEntry {
    pub opposite: String,
    /// Both sides can swap freely ("next to"): the `swap` rule skips it.
    pub symmetric: bool,
    /// Whether the `relation` rule may write the opposite (false outside a vocabulary).
    pub writable: bool,
}

/// A compiled lexicon: lookup tables for the parser and the rules. The parser reads every
/// word; the rules write only the writable pools (`by_category`, `attr_pool`, relations
/// with `writable`), which `Lexicon::restricted` narrows to a vocabulary.
#[derive(Clone, Debug, Default)]
pub struct Lexicon {
    pub nouns: Vec<Noun>,
    pub categories: Vec<String>,
    /// Nouns of each category rules may write, in lexicon order.
    pub by_category: Vec<Vec<usize>>,
    /// Lowercase surface form ("teddy bears") -> (noun, is plural).
    pub forms: FxHashMap<String, (usize, bool)>,
    /// Most words in a noun form.
    pub max_noun_words: usize,
    /// Lowercase word -> (kind, group).
    pub attrs: FxHashMap<String, (Kind, usize)>,
    /// Word written for each group (its first word), per kind.
    pub groups: [Vec<String>; 4],
    /// Groups rules may write, per kind, in lexicon order.
    pub attr_pool: [Vec<usize>; 4],
    /// Lowercase phrase -> its entry.
    pub relations: FxHashMap<String, RelationEntry>,
    pub max_relation_words: usize,
    /// Every word of a relation phrase (such words never modify a noun).
    pub relation_words: FxHashSet<String>,
}

pub(crate) fn norm_phrase(s: &str) -> String {
    s.split_ascii_whitespace()
        .map(|w| w.to_ascii_lowercase())
        .collect::<Vec<_>>()
        .join(" ")
}

impl Lexicon {
    /// The default lexicon.
    pub fn default_lexicon() -> Self {
        Self::from_json(DEFAULT_JSON).expect("the embedded default lexicon is valid")
    }

    /// A lexicon from JSON text.
    pub fn from_json(text: &str) -> Result<Self> {
        Self::from_json_layers(&[text])
    }

    /// A lexicon from JSON layers, later layers extending earlier ones (same order).
    pub fn from_json_layers(texts: &[&str]) -> Result<Self> {
        let mut lex = Lexicon::default();
        let mut syn_count = 0usize;
        let mut syn_of: HashMap<String, usize> = HashMap::new();
        let mut specs = Vec::with_capacity(texts.len());
        for text in texts {
            let spec: Spec = serde_json::from_str(text).map_err(|e| {
                Error::parameter("lexicon", "a JSON lexicon (see textnorm.Lexicon)", e)
            })?;
            specs.push(spec);
        }
        // Synonym groups first so nouns can be tagged as they are added.
        for spec in &specs {
            for group in &spec.synonyms {
                let id = syn_count;
                syn_count += 1;
                for w in group {
                    syn_of.insert(norm_phrase(w), id);
                }
            }
        }
        for spec in &specs {
            for (cat, nouns) in &spec.nouns {
                let cat = norm_phrase(cat);
                let ci = match lex.categories.iter().position(|c| *c == cat) {
                    Some(i) => i,
                    None => {
                        lex.categories.push(cat);
                        lex.by_category.push(Vec::new());
                        lex.categories.len() - 1
                    }
                };
                for spec in nouns {
                    let (s, p) = match spec {
                        NounSpec::Regular(s) => (norm_phrase(s), plural(&norm_phrase(s))),
                        NounSpec::Forms(v) if v.len() == 2 => {
                            (norm_phrase(&v[0]), norm_phrase(&v[1]))
                        }
                        NounSpec::Forms(v) => {
                            return Err(Error::parameter(
                                "lexicon",
                                "a noun as \"singular\" or [singular, plural]",
                                format!("a list of {} strings", v.len()),
                            ))
                        }
                    };
                    if s.is_empty() || p.is_empty() {
                        return Err(Error::parameter(
                            "lexicon",
                            "non-empty nouns",
                            "an empty noun",
                        ));
                    }
                    lex.add_noun(s, p, ci, &mut syn_of, &mut syn_count);
                }
            }
        }
        for spec in &specs {
            let kinds = [&spec.colors, &spec.sizes, &spec.materials, &spec.textures];
            for (kind, groups) in KINDS.iter().zip(kinds) {
                for group in groups {
                    lex.add_attr_group(*kind, group)?;
                }
            }
            for (a, b) in &spec.relations {
                let (a, b) = (norm_phrase(a), norm_phrase(b));
                if a.is_empty() || b.is_empty() {
                    return Err(Error::parameter(
                        "lexicon",
                        "non-empty relations",
                        "an empty relation",
                    ));
                }
                let symmetric = lex.relations.get(&a).is_some_and(|r| r.symmetric);
                lex.max_relation_words = lex.max_relation_words.max(a.split(' ').count());
                lex.relation_words.extend(a.split(' ').map(str::to_string));
                let entry = RelationEntry {
                    opposite: b,
                    symmetric,
                    writable: true,
                };
                lex.relations.insert(a, entry);
            }
            for r in &spec.symmetric_relations {
                if let Some(e) = lex.relations.get_mut(&norm_phrase(r)) {
                    e.symmetric = true;
                }
            }
        }
        Ok(lex)
    }

    fn add_noun(
        &mut self,
        singular: String,
        plural: String,
        category: usize,
        syn_of: &mut HashMap<String, usize>,
        syn_count: &mut usize,
    ) {
        if let Some(&(i, _)) = self.forms.get(&singular) {
            if self.nouns[i].singular == singular {
                return; // already known: the first category wins
            }
        }
        let synonym_group = *syn_of.entry(singular.clone()).or_insert_with(|| {
            *syn_count += 1;
            *syn_count - 1
        });
        let id = self.nouns.len();
        for (form, is_plural) in [(&plural, true), (&singular, false)] {
            self.max_noun_words = self.max_noun_words.max(form.split(' ').count());
            self.forms
                .insert(form.clone(), (id, is_plural && plural != singular));
        }
        self.nouns.push(Noun {
            singular,
            plural,
            category,
            synonym_group,
        });
        self.by_category[category].push(id);
    }

    fn add_attr_group(&mut self, kind: Kind, words: &[String]) -> Result<()> {
        let words: Vec<String> = words.iter().map(|w| norm_phrase(w)).collect();
        if words.is_empty() || words.iter().any(|w| w.is_empty() || w.contains(' ')) {
            return Err(Error::parameter(
                "lexicon",
                "attribute groups as non-empty lists of single words",
                format!("{words:?}"),
            ));
        }
        if words.iter().all(|w| self.attrs.contains_key(w)) {
            return Ok(()); // a group the lexicon already has
        }
        let g = self.groups[kind as usize].len();
        self.groups[kind as usize].push(words[0].clone());
        self.attr_pool[kind as usize].push(g);
        for w in words {
            self.attrs.entry(w).or_insert((kind, g));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_large_enough() {
        let lex = Lexicon::default_lexicon();
        assert!(lex.nouns.len() >= 150);
        assert!(lex.groups[Kind::Color as usize].len() >= 15);
        assert_eq!(lex.forms["mice"], (lex.forms["mouse"].0, true));
        assert!(!lex.forms["deer"].1);
        assert!(lex.forms["teddy bears"].1);
        assert_eq!(lex.relations["left of"].opposite, "right of");
        assert!(lex.relations["next to"].symmetric);
        assert_eq!(lex.attrs["grey"], lex.attrs["gray"]);
    }

    #[test]
    fn layers_extend_and_bad_json_is_an_error() {
        let lex =
            Lexicon::from_json_layers(&[DEFAULT_JSON, r#"{"nouns": {"animal": ["axolotl"]}}"#])
                .unwrap();
        let (i, _) = lex.forms["axolotls"];
        assert_eq!(lex.categories[lex.nouns[i].category], "animal");
        assert!(Lexicon::from_json("{").is_err());
        assert!(Lexicon::from_json(r#"{"nounz": {}}"#).is_err());
        assert!(Lexicon::from_json(r#"{"nouns": {"x": [["a", "b", "c"]]}}"#).is_err());
    }
}
