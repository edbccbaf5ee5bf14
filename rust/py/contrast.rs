//! Bindings of `crate::contrast`: prompts in as a list of str, the GIL released around the
//! generator, the sets out as one flat list of str (each target object first, then its
//! contrastive prompts), int64 offsets (B+1) and uint8 rule ids (255 at target slots).

use crate::contrast::{self, lexicon::Lexicon, Rule};
use crate::error::Error;
use numpy::PyArray1;
use pyo3::prelude::*;
use pyo3::types::{PyList, PyString};
use std::sync::{Arc, OnceLock};

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<ContrastLexicon>()?;
    m.add_function(wrap_pyfunction!(contrast_sets, m)?)?;
    m.add_function(wrap_pyfunction!(contrast_rule_names, m)?)?;
    m.add_function(wrap_pyfunction!(contrast_default_rule_names, m)?)?;
    m.add("CONTRAST_DEFAULT_LEXICON", contrast::lexicon::DEFAULT_JSON)?;
    m.add("CONTRAST_DEFAULT_MAX_BYTES", contrast::DEFAULT_MAX_BYTES)?;
    Ok(())
}

/// The rule id written at target slots of the flat list.
const TARGET_ID: u8 = 255;

fn default_lexicon() -> Arc<Lexicon> {
    static DEFAULT: OnceLock<Arc<Lexicon>> = OnceLock::new();
    DEFAULT
        .get_or_init(|| Arc::new(Lexicon::default_lexicon()))
        .clone()
}

/// A compiled lexicon (built from JSON layers, later ones extending earlier ones).
#[pyclass(frozen, module = "textnorm._core")]
pub struct ContrastLexicon {
    inner: Arc<Lexicon>,
}

#[pymethods]
impl ContrastLexicon {
    #[new]
    fn new(py: Python<'_>, layers: Vec<String>) -> PyResult<Self> {
        let refs: Vec<&str> = layers.iter().map(String::as_str).collect();
        let lex = py.detach(|| Lexicon::from_json_layers(&refs))?;
        Ok(ContrastLexicon {
            inner: Arc::new(lex),
        })
    }

    /// This lexicon with what rules may write narrowed to a vocabulary (JSON word lists).
    fn restricted(&self, py: Python<'_>, vocabulary: &str) -> PyResult<Self> {
        let lex = py.detach(|| self.inner.restricted(vocabulary))?;
        Ok(ContrastLexicon {
            inner: Arc::new(lex),
        })
    }

    /// Number of object nouns.
    #[getter]
    fn num_nouns(&self) -> usize {
        self.inner.nouns.len()
    }
}

/// Every rule name, in table order (a rule's position is its id in `contrast_sets`).
#[pyfunction]
fn contrast_rule_names() -> Vec<&'static str> {
    contrast::RULES.iter().map(|d| d.name).collect()
}

/// The rules `rules=None` runs, in table order.
#[pyfunction]
fn contrast_default_rule_names() -> Vec<&'static str> {
    Rule::defaults().into_iter().map(Rule::name).collect()
}

/// (flat prompts, int64 offsets, uint8 rule ids).
type Sets<'py> = (
    Bound<'py, PyList>,
    Bound<'py, PyArray1<i64>>,
    Bound<'py, PyArray1<u8>>,
);

/// Contrastive sets of `prompts`: (flat, offsets, rule_ids).
#[pyfunction]
#[pyo3(signature = (prompts, *, rules=None, k=None, seed=0, lexicon=None, max_bytes=contrast::DEFAULT_MAX_BYTES))]
fn contrast_sets<'py>(
    py: Python<'py>,
    prompts: &Bound<'py, PyList>,
    rules: Option<Vec<String>>,
    k: Option<usize>,
    seed: u64,
    lexicon: Option<&Bound<'py, ContrastLexicon>>,
    max_bytes: usize,
) -> PyResult<Sets<'py>> {
    let rules = match rules {
        Some(names) => Rule::parse_list(&names)?,
        None => Rule::defaults(),
    };
    if k == Some(0) {
        return Err(Error::parameter("k", "None or an integer >= 1", 0).into());
    }
    if max_bytes == 0 {
        return Err(Error::parameter("max_bytes", "an integer >= 1", 0).into());
    }
    let lex = match lexicon {
        Some(l) => l.get().inner.clone(),
        None => default_lexicon(),
    };
    let items: Vec<Bound<'py, PyAny>> = prompts.iter().collect();
    let mut texts: Vec<&str> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let s = item.cast::<PyString>().map_err(|_| {
            Error::parameter(
                "prompts",
                "a list of str",
                format!("{} at index {i}", type_name(item)),
            )
        })?;
        let t = s.to_str().map_err(|_| {
            Error::parameter(
                "prompts",
                "valid Unicode text (no lone surrogates)",
                format!("an unencodable str at index {i}"),
            )
        })?;
        texts.push(t);
    }
    let sets = py.detach(|| contrast::contrast(&texts, &rules, k, seed, &lex, max_bytes))?;
    let total = sets.iter().map(|s| s.len() + 1).sum::<usize>();
    let mut flat: Vec<Bound<'py, PyAny>> = Vec::with_capacity(total);
    let mut offsets: Vec<i64> = Vec::with_capacity(sets.len() + 1);
    let mut ids: Vec<u8> = Vec::with_capacity(total);
    offsets.push(0);
    for (item, set) in items.into_iter().zip(sets) {
        flat.push(item);
        ids.push(TARGET_ID);
        for (text, rule) in set {
            flat.push(PyString::new(py, &text).into_any());
            ids.push(rule.id());
        }
        offsets.push(flat.len() as i64);
    }
    Ok((
        PyList::new(py, flat)?,
        PyArray1::from_vec(py, offsets),
        PyArray1::from_vec(py, ids),
    ))
}

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "an object".to_string())
}
