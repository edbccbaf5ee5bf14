//! Row layouts of a reward matrix: dense `(B, 1+K)`, ragged CSR (`values` + `offsets`), and
//! padded `(B, Kmax+1)` with `lengths`. Constructors validate everything once, so row access
//! afterwards cannot go out of bounds.

use crate::error::{Error, Result};

/// A validated view of B rows over a flat value buffer.
#[derive(Debug, Clone, Copy)]
pub struct Rows<'a, T> {
    values: &'a [T],
    kind: Kind<'a>,
}

#[derive(Debug, Clone, Copy)]
enum Kind<'a> {
    Dense { ncols: usize },
    Csr { offsets: &'a [i64] },
    Padded { ncols: usize, lengths: &'a [i64] },
}

impl<'a, T> Rows<'a, T> {
    /// Row-major `(values.len() / ncols, ncols)`.
    pub fn dense(values: &'a [T], ncols: usize) -> Result<Self> {
        if ncols == 0 {
            return Err(Error::layout(
                "logits",
                "at least one column (the target)",
                "0 columns",
            ));
        }
        if values.len() % ncols != 0 {
            return Err(Error::layout(
                "logits",
                format!("a multiple of {ncols} values"),
                values.len(),
            ));
        }
        Ok(Rows {
            values,
            kind: Kind::Dense { ncols },
        })
    }

    /// CSR: row b is `values[offsets[b]..offsets[b+1]]`.
    pub fn csr(values: &'a [T], offsets: &'a [i64]) -> Result<Self> {
        check_offsets(offsets, values.len())?;
        Ok(Rows {
            values,
            kind: Kind::Csr { offsets },
        })
    }

    /// Padded: row b is the first `lengths[b]` entries of row b of `(B, ncols)`.
    pub fn padded(values: &'a [T], ncols: usize, lengths: &'a [i64]) -> Result<Self> {
        let rows = Rows::dense(values, ncols)?;
        if lengths.len() != rows.len() {
            return Err(Error::layout(
                "lengths",
                format!("one length per row ({})", rows.len()),
                format!("{} lengths", lengths.len()),
            ));
        }
        if let Some((b, &l)) = lengths
            .iter()
            .enumerate()
            .find(|(_, &l)| l < 1 || l as u64 > ncols as u64)
        {
            return Err(Error::layout(
                "lengths",
                format!("every length in [1, {ncols}]"),
                format!("lengths[{b}] = {l}"),
            ));
        }
        Ok(Rows {
            values,
            kind: Kind::Padded { ncols, lengths },
        })
    }

    /// Number of rows B.
    pub fn len(&self) -> usize {
        match self.kind {
            Kind::Dense { ncols } | Kind::Padded { ncols, .. } => self.values.len() / ncols,
            Kind::Csr { offsets } => offsets.len() - 1,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True when every row has the same length (dense layout).
    pub fn is_dense(&self) -> bool {
        matches!(self.kind, Kind::Dense { .. })
    }

    /// The flat buffer, padding included.
    pub fn values(&self) -> &'a [T] {
        self.values
    }

    /// Start of row b in the flat buffer.
    #[inline]
    pub fn start(&self, b: usize) -> usize {
        match self.kind {
            Kind::Dense { ncols } | Kind::Padded { ncols, .. } => b * ncols,
            Kind::Csr { offsets } => offsets[b] as usize,
        }
    }

    /// Row b (padding excluded).
    #[inline]
    pub fn row(&self, b: usize) -> &'a [T] {
        let start = self.start(b);
        let len = match self.kind {
            Kind::Dense { ncols } => ncols,
            Kind::Csr { offsets } => (offsets[b + 1] - offsets[b]) as usize,
            Kind::Padded { lengths, .. } => lengths[b] as usize,
        };
        &self.values[start..start + len]
    }
}

fn check_offsets(offsets: &[i64], n_values: usize) -> Result<()> {
    let Some(&first) = offsets.first() else {
        return Err(Error::layout(
            "offsets",
            "B+1 offsets starting at 0",
            "an empty array",
        ));
    };
    if first != 0 {
        return Err(Error::layout(
            "offsets",
            "offsets[0] == 0",
            format!("offsets[0] = {first}"),
        ));
    }
    for (b, w) in offsets.windows(2).enumerate() {
        if w[1] <= w[0] {
            let what = if w[1] == w[0] {
                "an empty segment"
            } else {
                "a decrease"
            };
            return Err(Error::layout(
                "offsets",
                "strictly increasing offsets (every row holds its target)",
                format!(
                    "{what}: offsets[{b}] = {}, offsets[{}] = {}",
                    w[0],
                    b + 1,
                    w[1]
                ),
            ));
        }
    }
    let last = offsets[offsets.len() - 1];
    if last as u64 != n_values as u64 {
        return Err(Error::layout(
            "offsets",
            format!("offsets[-1] == number of values ({n_values})"),
            format!("offsets[-1] = {last}"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csr_rows_and_errors() {
        let v = [1.0f32, 2.0, 3.0, 4.0, 5.0];
        let r = Rows::csr(&v, &[0, 2, 5]).unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(r.row(1), &[3.0, 4.0, 5.0]);
        assert!(Rows::csr(&v, &[]).is_err());
        assert!(Rows::csr(&v, &[1, 5]).is_err());
        assert!(Rows::csr(&v, &[0, 2, 2, 5]).is_err());
        assert!(Rows::csr(&v, &[0, 3, 2, 5]).is_err());
        assert!(Rows::csr(&v, &[0, 2, 4]).is_err());
        assert!(Rows::csr(&v, &[0, -1, 5]).is_err());
    }

    #[test]
    fn padded_and_dense() {
        let v = [1.0f64, 2.0, 0.0, 4.0, 5.0, 6.0];
        let r = Rows::padded(&v, 3, &[2, 3]).unwrap();
        assert_eq!(r.row(0), &[1.0, 2.0]);
        assert_eq!(r.row(1), &[4.0, 5.0, 6.0]);
        assert!(Rows::padded(&v, 3, &[0, 3]).is_err());
        assert!(Rows::padded(&v, 3, &[4, 3]).is_err());
        assert!(Rows::padded(&v, 3, &[3]).is_err());
        assert!(Rows::dense(&v, 4).is_err());
        assert!(Rows::dense(&v, 0).is_err());
        assert_eq!(Rows::dense(&v, 2).unwrap().len(), 3);
    }
}
