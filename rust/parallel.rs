//! Row-parallel execution on a private rayon pool.
//!
//! Rows are independent, so splitting them across threads never changes a result bit.
//! Small inputs run on the calling thread: a pool hand-off costs several microseconds.

use rayon::prelude::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

/// Below this many values a call stays on the calling thread.
pub const PARALLEL_MIN_VALUES: usize = 1 << 15;

static POOL: OnceLock<Option<rayon::ThreadPool>> = OnceLock::new();
/// Runtime cap on the threads a call may use (0 = no cap); see [`set_num_threads`].
static LIMIT: AtomicUsize = AtomicUsize::new(0);

/// Threads used for large inputs: `TEXTNORM_NUM_THREADS` when set to a positive integer,
/// else the number of available cores; lowered by [`set_num_threads`].
pub fn num_threads() -> usize {
    let pool = pool().map_or(1, |p| p.current_num_threads());
    match LIMIT.load(Ordering::Relaxed) {
        0 => pool,
        n => n.min(pool),
    }
}

/// Caps the threads of later calls at `n` (at most the pool's size; 0 removes the cap).
pub fn set_num_threads(n: usize) {
    LIMIT.store(n, Ordering::Relaxed);
}

fn pool() -> Option<&'static rayon::ThreadPool> {
    POOL.get_or_init(|| {
        let n = std::env::var("TEXTNORM_NUM_THREADS")
            .ok()
            .and_then(|s| s.trim().parse::<usize>().ok())
            .filter(|&n| n > 0)
            .unwrap_or_else(|| {
                std::thread::available_parallelism()
                    .map(|n| n.get())
                    .unwrap_or(1)
            });
        if n <= 1 {
            return None;
        }
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .thread_name(|i| format!("textnorm-{i}"))
            .build()
            .ok()
    })
    .as_ref()
}

/// Calls `f(first_row, out_chunk)` over `out` split into contiguous chunks of rows,
/// in parallel when `work` (values touched) is large enough. `f` returns the first error.
pub fn for_each_chunk<T, E, F>(out: &mut [T], work: usize, f: F) -> Result<(), E>
where
    T: Send,
    E: Send,
    F: Fn(usize, &mut [T]) -> Result<(), E> + Sync,
{
    let threads = num_threads();
    match pool() {
        Some(pool) if threads > 1 && work >= PARALLEL_MIN_VALUES && out.len() >= 2 => {
            // A few chunks per thread balance ragged rows without much scheduling; chunk
            // boundaries never change results, since each row is computed alone.
            let chunk = out.len().div_ceil(threads * 4).max(1);
            pool.install(|| {
                out.par_chunks_mut(chunk)
                    .enumerate()
                    .try_for_each(|(i, c)| f(i * chunk, c))
            })
        }
        _ => f(0, out),
    }
}
