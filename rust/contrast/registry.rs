//! The rule table: every rule is one function `fn(&Input, &mut Cands)` and one entry here.
//! Names, ids (the entry's position), the default set and name parsing all derive from the
//! table, and so do the Python bindings (`textnorm.contrast.RULES`, `DEFAULT_RULES`).
//!
//! To add a rule: write the function (in `rules.rs` or `counts.rs`) and add one `RuleDef`
//! below; the pure-Python oracle in `tests/reference_contrast.py` needs its twin for the
//! parity tests.

use super::counts;
use super::render::Cands;
use super::rules::{self, Input};
use crate::error::{Error, Result};

/// One registered rule.
pub struct RuleDef {
    /// The name users pass in `rules=[...]`.
    pub name: &'static str,
    /// Appends the rule's candidates for one parsed prompt, in a fixed order.
    pub run: fn(&Input, &mut Cands),
    /// Whether `rules=None` runs it (what each rule does: its function's docs).
    pub default: bool,
}

/// Every rule, in its default order (the position is the rule's id in the bindings' output).
pub static RULES: &[RuleDef] = &[
    RuleDef {
        name: "drop",
        run: rules::drop,
        default: true,
    },
    RuleDef {
        name: "count",
        run: counts::count,
        default: true,
    },
    RuleDef {
        name: "joint_count",
        run: counts::joint_count,
        default: false,
    },
    RuleDef {
        name: "hybrid",
        run: rules::hybrid,
        default: true,
    },
    RuleDef {
        name: "object",
        run: rules::object,
        default: true,
    },
    RuleDef {
        name: "color",
        run: rules::color,
        default: true,
    },
    RuleDef {
        name: "attribute",
        run: rules::attribute,
        default: true,
    },
    RuleDef {
        name: "binding",
        run: rules::binding,
        default: true,
    },
    RuleDef {
        name: "relation",
        run: rules::relation,
        default: true,
    },
    RuleDef {
        name: "swap",
        run: rules::swap,
        default: true,
    },
];

// Ids are u8 and 255 marks targets in the bindings' output.
const _: () = assert!(RULES.len() < 255);

/// A registered rule: its position in [`RULES`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Rule(u8);

impl Rule {
    /// Every rule, in table order.
    pub fn all() -> Vec<Rule> {
        (0..RULES.len()).map(|i| Rule(i as u8)).collect()
    }

    /// The rules `rules=None` runs, in table order.
    pub fn defaults() -> Vec<Rule> {
        Rule::all()
            .into_iter()
            .filter(|r| r.def().default)
            .collect()
    }

    pub fn def(self) -> &'static RuleDef {
        &RULES[self.0 as usize]
    }

    pub fn id(self) -> u8 {
        self.0
    }

    pub fn name(self) -> &'static str {
        self.def().name
    }

    pub fn from_name(name: &str) -> Result<Rule> {
        match RULES.iter().position(|d| d.name == name) {
            Some(i) => Ok(Rule(i as u8)),
            None => {
                let names: Vec<&str> = RULES.iter().map(|d| d.name).collect();
                Err(Error::parameter(
                    "rules",
                    format!("names among {}", names.join(", ")),
                    format!("{name:?}"),
                ))
            }
        }
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
                "at least one rule name (or None for the defaults)",
                "an empty list",
            ));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_round_trip() {
        for r in Rule::all() {
            assert_eq!(Rule::from_name(r.name()).unwrap(), r);
        }
        let mut names: Vec<&str> = RULES.iter().map(|d| d.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), RULES.len());
        assert!(!Rule::defaults().contains(&Rule::from_name("joint_count").unwrap()));
    }
}
