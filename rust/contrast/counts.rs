//! The count rules. `count` moves one count at a time (a contrastive prompt differs from its
//! target in one thing); `joint_count` moves them together, the template of the authors'
//! TIA2 composition sets, and is off by default.

use super::parse::Np;
use super::render::{Cands, NpChange};
use super::rules::Input;

/// `joint_count` varies counts jointly while the number of combinations stays at most
/// this; beyond it each count varies alone.
pub const MAX_JOINT_COUNTS: usize = 4096;

/// Count windows: max(1, n-2)..=n+2.
fn window(n: u32) -> Vec<u32> {
    (n.saturating_sub(2).max(1)..=n.saturating_add(2)).collect()
}

/// Phrases with a count (in text order) and their counts.
fn counted(inp: &Input) -> (Vec<usize>, Vec<u32>) {
    inp.p
        .nps
        .iter()
        .enumerate()
        .filter_map(|(i, np)| Some((i, np.det.as_ref()?.count?.n)))
        .unzip()
}

/// Appends the prompt with the counted phrases at `values` (unchanged where equal to
/// `targets`).
fn render(inp: &Input, out: &mut Cands, counted: &[usize], targets: &[u32], values: &[u32]) {
    let changes: Vec<(&Np, NpChange)> = counted
        .iter()
        .zip(values.iter().zip(targets))
        .filter(|(_, (v, t))| v != t)
        .map(|(&i, (&v, _))| {
            let change = NpChange {
                count: Some(v),
                ..Default::default()
            };
            (&inp.p.nps[i], change)
        })
        .collect();
    out.push_nps(inp.text, inp.lex, &changes);
}

/// Each count alone through its window, phrase by phrase in text order (the subject first).
fn one_at_a_time(inp: &Input, out: &mut Cands, counted: &[usize], targets: &[u32]) {
    for (j, &n) in targets.iter().enumerate() {
        for v in window(n) {
            if v != n {
                let mut values = targets.to_vec();
                values[j] = v;
                render(inp, out, counted, targets, &values);
            }
        }
    }
}

/// `count`: each counted phrase's count moves to N-2..N+2 (>= 1) while every other count
/// stays ("two mice on a table" gives "two mice on three tables", never "four mice on
/// three tables"). Reproduces the authors' TIA2 counting sets.
pub fn count(inp: &Input, out: &mut Cands) {
    let (counted, targets) = counted(inp);
    one_at_a_time(inp, out, &counted, &targets);
}

/// Order of joint index tuples: by largest index, then the sorted indices, then the
/// tuple in descending order (for two counts: (1,0), (0,1), (1,1), (2,0), (0,2), ...).
fn joint_key(t: &[usize]) -> (usize, Vec<usize>, Vec<std::cmp::Reverse<usize>>) {
    let mut s = t.to_vec();
    s.sort_unstable();
    let max = *s.last().unwrap_or(&0);
    (max, s, t.iter().map(|&x| std::cmp::Reverse(x)).collect())
}

/// `joint_count`: counts move to N-2..N+2 (>= 1) jointly over all counted phrases, in the
/// order of the authors' TIA2 composition sets ("two airplanes and two teddy bears" for
/// "an airplane and a teddy bear"). Its prompts may differ from the target in several
/// counts, so it is not a default rule. Beyond `MAX_JOINT_COUNTS` combinations each count
/// varies alone.
pub fn joint_count(inp: &Input, out: &mut Cands) {
    let (counted, targets) = counted(inp);
    if counted.is_empty() {
        return;
    }
    let windows: Vec<Vec<u32>> = targets.iter().map(|&n| window(n)).collect();
    let total = windows
        .iter()
        .try_fold(1usize, |acc, w| acc.checked_mul(w.len()))
        .filter(|&t| t <= MAX_JOINT_COUNTS);
    let Some(total) = total else {
        return one_at_a_time(inp, out, &counted, &targets);
    };
    let mut tuples: Vec<Vec<usize>> = Vec::with_capacity(total);
    for mut r in 0..total {
        let mut t = vec![0; windows.len()];
        for (j, w) in windows.iter().enumerate().rev() {
            t[j] = r % w.len();
            r /= w.len();
        }
        tuples.push(t);
    }
    tuples.sort_by_cached_key(|t| joint_key(t));
    for t in tuples {
        let values: Vec<u32> = t.iter().zip(&windows).map(|(&i, w)| w[i]).collect();
        if values != targets {
            render(inp, out, &counted, &targets, &values);
        }
    }
}
