//! Bindings of `crate::norm`: numpy arrays in (zero-copy, C-contiguous float32/float64), the
//! GIL released around the kernels, numpy arrays out in the input's dtype.
//! Layout: `values` with `offsets` (CSR, 1-D per model), with `lengths` (padded), or dense;
//! the last axis holds the rows' entries, and `ensemble` adds a leading model axis.

use crate::error::Error;
use crate::norm::{self, Float, Method, Mode, NanPolicy, Options, Rows, Scale, Target};
use numpy::{
    Element, PyArray1, PyArrayDescrMethods, PyArrayDyn, PyArrayMethods, PyReadonlyArray1,
    PyUntypedArray, PyUntypedArrayMethods,
};
use pyo3::prelude::*;

/// Inputs with fewer values keep the GIL while the kernel runs (a few microseconds at most).
const DETACH_MIN_VALUES: usize = 4096;

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(confidence, m)?)?;
    m.add_function(wrap_pyfunction!(probabilities, m)?)?;
    m.add_function(wrap_pyfunction!(ensemble, m)?)?;
    Ok(())
}

/// Layout arguments as the kernels see them.
struct LayoutArgs<'a> {
    offsets: Option<&'a [i64]>,
    lengths: Option<&'a [i64]>,
}

impl<'a> LayoutArgs<'a> {
    fn new<'py>(
        offsets: &'a Option<PyReadonlyArray1<'py, i64>>,
        lengths: &'a Option<PyReadonlyArray1<'py, i64>>,
    ) -> PyResult<Self> {
        Ok(LayoutArgs {
            offsets: slice_of(offsets, "offsets")?,
            lengths: slice_of(lengths, "lengths")?,
        })
    }

    /// Rows of one model: `values` is that model's flat buffer, `shape` its array shape.
    fn rows<'v, T>(&self, values: &'v [T], shape: &[usize]) -> Result<Rows<'v, T>, Error>
    where
        Self: 'v,
    {
        match (self.offsets, self.lengths) {
            (Some(_), Some(_)) => Err(Error::layout(
                "offsets",
                "offsets or lengths, not both",
                "both",
            )),
            (Some(off), None) => {
                if shape.len() != 1 {
                    return Err(Error::layout(
                        "logits",
                        "1-D values per model with offsets",
                        format!("shape {}", py_shape(shape)),
                    ));
                }
                Rows::csr(values, off)
            }
            (None, lengths) => {
                if shape.len() != 2 {
                    return Err(Error::layout(
                        "logits",
                        "a (B, 1+K) matrix per model (or 1-D values with offsets)",
                        format!("shape {}", py_shape(shape)),
                    ));
                }
                match lengths {
                    Some(l) => Rows::padded(values, shape[1], l),
                    None => Rows::dense(values, shape[1]),
                }
            }
        }
    }
}

fn slice_of<'a, 'py, T: Element>(
    arr: &'a Option<PyReadonlyArray1<'py, T>>,
    arg: &'static str,
) -> PyResult<Option<&'a [T]>> {
    match arr {
        None => Ok(None),
        Some(a) => a
            .as_slice()
            .map(Some)
            .map_err(|_| not_a_slice(arg, a.as_untyped()).into()),
    }
}

/// Why an array cannot be read as one slice: it is strided, or C-contiguous but unaligned
/// (a view at an odd byte offset of a buffer). The Python facade copies both kinds.
fn not_a_slice(arg: &'static str, arr: &Bound<'_, PyUntypedArray>) -> Error {
    let got = if !arr.is_c_contiguous() {
        "a strided (not C-contiguous) array"
    } else if !arr.is_aligned() {
        "a C-contiguous but unaligned array"
    } else {
        "an array that cannot be read as one slice"
    };
    Error::layout(arg, "an aligned, C-contiguous array", got)
}

fn options<'a>(
    scale: f64,
    scales: &'a Option<&'a [f64]>,
    mode: &str,
    nan_raise: bool,
) -> Result<Options<'a>, Error> {
    Ok(Options {
        scale: match scales {
            Some(s) => Scale::PerRow(s),
            None => Scale::All(scale),
        },
        mode: mode.parse::<Mode>()?,
        nan: if nan_raise {
            NanPolicy::Raise
        } else {
            NanPolicy::Propagate
        },
    })
}

/// Which kernel to run on the flat buffer, with everything but the dtype resolved.
#[derive(Clone, Copy)]
enum Op<'a> {
    Confidence {
        target: Target<'a>,
        log: bool,
    },
    Probabilities,
    Ensemble {
        target: Target<'a>,
        method: Method,
        lam: f64,
    },
}

struct Call<'a> {
    layout: LayoutArgs<'a>,
    opts: Options<'a>,
    op: Op<'a>,
}

impl Call<'_> {
    fn run<T: Float>(&self, values: &[T], shape: &[usize]) -> Result<Vec<T>, Error> {
        match self.op {
            Op::Confidence { target, log } => {
                let rows = self.layout.rows(values, shape)?;
                norm::confidence(&rows, target, self.opts, log)
            }
            Op::Probabilities => {
                let rows = self.layout.rows(values, shape)?;
                norm::probabilities(&rows, self.opts)
            }
            Op::Ensemble {
                target,
                method,
                lam,
            } => {
                let Some((&m, inner)) = shape.split_first() else {
                    return Err(Error::layout("logits", "a leading model axis", "a scalar"));
                };
                if m == 0 {
                    return Err(Error::layout("logits", "at least one model", "0 models"));
                }
                let per = values.len() / m;
                let models = values
                    .chunks_exact(per.max(1))
                    .take(m)
                    .map(|v| self.layout.rows(v, inner))
                    .collect::<Result<Vec<_>, _>>()?;
                norm::ensemble(&models, target, self.opts, method, lam)
            }
        }
    }
}

/// Dispatches on dtype, runs without the GIL, returns a new array of the input's dtype.
fn dispatch<'py>(
    py: Python<'py>,
    values: &Bound<'py, PyUntypedArray>,
    call: &Call,
    out_shape: impl FnOnce(&[usize]) -> Vec<usize>,
) -> PyResult<Bound<'py, PyAny>> {
    fn go<'py, T: Float + Element>(
        py: Python<'py>,
        values: &Bound<'py, PyUntypedArray>,
        call: &Call,
        out_shape: impl FnOnce(&[usize]) -> Vec<usize>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let arr = values.cast::<PyArrayDyn<T>>()?.readonly();
        let shape = arr.shape().to_vec();
        let flat = arr.as_slice().map_err(|_| not_a_slice("logits", values))?;
        // Releasing and re-taking the GIL costs about a microsecond: only worth it when the
        // kernel runs long enough for another Python thread to use the time.
        let out = if flat.len() >= DETACH_MIN_VALUES {
            py.detach(|| call.run(flat, &shape))?
        } else {
            call.run(flat, &shape)?
        };
        let dims = out_shape(&shape);
        let arr = PyArray1::from_vec(py, out);
        if dims.len() == 1 {
            return Ok(arr.into_any());
        }
        Ok(arr.reshape(dims)?.into_any())
    }
    let dtype = values.dtype();
    if dtype.is_equiv_to(&numpy::dtype::<f32>(py)) {
        go::<f32>(py, values, call, out_shape)
    } else if dtype.is_equiv_to(&numpy::dtype::<f64>(py)) {
        go::<f64>(py, values, call, out_shape)
    } else {
        let got = format!("dtype {dtype}");
        let expected = "float32 or float64 values in native byte order";
        Err(Error::layout("logits", expected, got).into())
    }
}

/// Confidence of each row's target (B,); see `textnorm.confidence`.
#[pyfunction]
#[pyo3(signature = (values, *, offsets=None, lengths=None, scale=1.0, scales=None,
                    mode="minmax", target=0, targets=None, log=false, nan_raise=true))]
#[allow(clippy::too_many_arguments)]
fn confidence<'py>(
    py: Python<'py>,
    values: &Bound<'py, PyUntypedArray>,
    offsets: Option<PyReadonlyArray1<'py, i64>>,
    lengths: Option<PyReadonlyArray1<'py, i64>>,
    scale: f64,
    scales: Option<PyReadonlyArray1<'py, f64>>,
    mode: &str,
    target: i64,
    targets: Option<PyReadonlyArray1<'py, i64>>,
    log: bool,
    nan_raise: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let scales_s = slice_of(&scales, "scale")?;
    let targets_s = slice_of(&targets, "target")?;
    let call = Call {
        layout: LayoutArgs::new(&offsets, &lengths)?,
        opts: options(scale, &scales_s, mode, nan_raise)?,
        op: Op::Confidence {
            target: targets_s.map_or(Target::All(target), Target::PerRow),
            log,
        },
    };
    let n_rows = n_rows(&call.layout, values.shape());
    dispatch(py, values, &call, |_| vec![n_rows])
}

/// Probabilities of every entry, shaped like `values`; see `textnorm.probabilities`.
#[pyfunction]
#[pyo3(signature = (values, *, offsets=None, lengths=None, scale=1.0, scales=None,
                    mode="minmax", nan_raise=true))]
#[allow(clippy::too_many_arguments)]
fn probabilities<'py>(
    py: Python<'py>,
    values: &Bound<'py, PyUntypedArray>,
    offsets: Option<PyReadonlyArray1<'py, i64>>,
    lengths: Option<PyReadonlyArray1<'py, i64>>,
    scale: f64,
    scales: Option<PyReadonlyArray1<'py, f64>>,
    mode: &str,
    nan_raise: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let scales_s = slice_of(&scales, "scale")?;
    let call = Call {
        layout: LayoutArgs::new(&offsets, &lengths)?,
        opts: options(scale, &scales_s, mode, nan_raise)?,
        op: Op::Probabilities,
    };
    dispatch(py, values, &call, |shape| shape.to_vec())
}

/// Ensemble confidence over the leading model axis (B,); see `textnorm.ensemble`.
#[pyfunction]
#[pyo3(signature = (values, *, offsets=None, lengths=None, scale=1.0, scales=None,
                    mode="minmax", target=0, targets=None, method="mean", lam=0.0,
                    nan_raise=true))]
#[allow(clippy::too_many_arguments)]
fn ensemble<'py>(
    py: Python<'py>,
    values: &Bound<'py, PyUntypedArray>,
    offsets: Option<PyReadonlyArray1<'py, i64>>,
    lengths: Option<PyReadonlyArray1<'py, i64>>,
    scale: f64,
    scales: Option<PyReadonlyArray1<'py, f64>>,
    mode: &str,
    target: i64,
    targets: Option<PyReadonlyArray1<'py, i64>>,
    method: &str,
    lam: f64,
    nan_raise: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let scales_s = slice_of(&scales, "scale")?;
    let targets_s = slice_of(&targets, "target")?;
    let call = Call {
        layout: LayoutArgs::new(&offsets, &lengths)?,
        opts: options(scale, &scales_s, mode, nan_raise)?,
        op: Op::Ensemble {
            target: targets_s.map_or(Target::All(target), Target::PerRow),
            method: method.parse::<Method>()?,
            lam,
        },
    };
    let shape = values.shape();
    let n = if shape.is_empty() {
        0
    } else {
        n_rows(&call.layout, &shape[1..])
    };
    dispatch(py, values, &call, |_| vec![n])
}

/// A shape as Python writes it: `(2, 3)`, `(5,)`, `()`.
fn py_shape(shape: &[usize]) -> String {
    match shape {
        [n] => format!("({n},)"),
        _ => {
            let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
            format!("({})", dims.join(", "))
        }
    }
}

/// Rows implied by the layout (validated later by the kernels; only sizes the output).
fn n_rows(layout: &LayoutArgs, shape: &[usize]) -> usize {
    match layout.offsets {
        Some(off) => off.len().saturating_sub(1),
        None => shape.first().copied().unwrap_or(0),
    }
}
