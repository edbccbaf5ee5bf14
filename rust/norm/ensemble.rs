//! Ensembles of calibrated rewards over M models (DESIGN.md section 2):
//! mean r = (1/M) sum_m p_m; `Ur`: r - lam (1/M) sum_m (p_m - r)^2 (population variance, the
//! paper's); `UrStd`: r - lam * sqrt(variance).

use super::{confidence, Float, Options, Rows, Target};
use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Mean,
    Ur,
    UrStd,
}

impl std::str::FromStr for Method {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "mean" => Ok(Method::Mean),
            "ur" => Ok(Method::Ur),
            "ur_std" => Ok(Method::UrStd),
            other => Err(Error::parameter(
                "method",
                "\"mean\", \"ur\" or \"ur_std\"",
                format!("{other:?}"),
            )),
        }
    }
}

/// Ensemble confidence of every row over `models` (all with the same layout): `(B,)`.
pub fn ensemble<T: Float>(
    models: &[Rows<T>],
    target: Target,
    opts: Options,
    method: Method,
    lam: f64,
) -> Result<Vec<T>> {
    if models.is_empty() {
        return Err(Error::layout(
            "logits",
            "at least one model on the leading axis",
            "0 models",
        ));
    }
    if !(lam.is_finite() && lam >= 0.0) {
        return Err(Error::parameter("lam", "a finite number >= 0", lam));
    }
    let per_model = models
        .iter()
        .map(|rows| confidence(rows, target, opts, false))
        .collect::<Result<Vec<_>>>()?;
    let m = per_model.len() as f64;
    let n = per_model[0].len();
    let out = (0..n)
        .map(|b| {
            let mean = per_model.iter().map(|p| p[b].to_f64()).sum::<f64>() / m;
            let var = per_model
                .iter()
                .map(|p| (p[b].to_f64() - mean).powi(2))
                .sum::<f64>()
                / m;
            T::from_f64(match method {
                Method::Mean => mean,
                Method::Ur => mean - lam * var,
                Method::UrStd => mean - lam * var.sqrt(),
            })
        })
        .collect();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::{Mode, NanPolicy, Scale};
    use super::*;

    #[test]
    fn ur_is_mean_minus_lambda_variance() {
        let a = [0.0f64, 1.0, 2.0, 5.0, 1.0, 1.0];
        let b = [3.0f64, 1.0, 0.0, 0.0, 2.0, 4.0];
        let ra = Rows::dense(&a, 3).unwrap();
        let rb = Rows::dense(&b, 3).unwrap();
        let opts = Options {
            scale: Scale::All(1.0),
            mode: Mode::Temperature,
            nan: NanPolicy::Raise,
        };
        let pa = confidence(&ra, Target::All(0), opts, false).unwrap();
        let pb = confidence(&rb, Target::All(0), opts, false).unwrap();
        let got = ensemble(&[ra, rb], Target::All(0), opts, Method::Ur, 0.5).unwrap();
        for i in 0..2 {
            let mean = (pa[i] + pb[i]) / 2.0;
            let var = ((pa[i] - mean).powi(2) + (pb[i] - mean).powi(2)) / 2.0;
            assert!((got[i] - (mean - 0.5 * var)).abs() < 1e-15);
        }
        assert!(ensemble(&[ra], Target::All(0), opts, Method::Ur, -1.0).is_err());
        assert!(ensemble::<f64>(&[], Target::All(0), opts, Method::Mean, 0.0).is_err());
        assert!("median".parse::<Method>().is_err());
    }
}
