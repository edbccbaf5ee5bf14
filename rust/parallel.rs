//! Row-parallel execution on a private rayon pool.
//!
//! Rows are independent, so splitting them across threads never changes a result bit.
//! Small inputs run on the calling thread: a pool hand-off costs several microseconds.
//!
//! The pool's size comes from `TEXTNORM_NUM_THREADS`, read once (the Python module reads it
//! when imported): a positive integer, at most [`MAX_THREADS_PER_CORE`] per available core
//! (larger values are capped; 100,000 threads once kept the first call from returning).
//! Unset or empty means the number of available cores; anything else (`abc`, `0`, `-3`) is
//! ignored in favour of that default, with a warning ([`env_warning`]).

use rayon::prelude::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

/// Below this many values a call stays on the calling thread.
pub const PARALLEL_MIN_VALUES: usize = 1 << 15;

/// Threads allowed per available core: beyond this, threads only add scheduling cost.
pub const MAX_THREADS_PER_CORE: usize = 4;

/// The environment variable that sets the pool's size.
pub const ENV_VAR: &str = "TEXTNORM_NUM_THREADS";

static CONFIG: OnceLock<ThreadConfig> = OnceLock::new();
static POOL: OnceLock<Option<rayon::ThreadPool>> = OnceLock::new();
/// Runtime cap on the threads a call may use (0 = no cap); see [`set_num_threads`].
static LIMIT: AtomicUsize = AtomicUsize::new(0);

/// The pool's size, and why the environment's value was not used as given (if it was not).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadConfig {
    pub threads: usize,
    pub warning: Option<String>,
}

/// The pool size for `TEXTNORM_NUM_THREADS = raw` on a machine with `available` cores.
pub fn parse_num_threads(raw: Option<&str>, available: usize) -> ThreadConfig {
    let available = available.max(1);
    let max = available.saturating_mul(MAX_THREADS_PER_CORE);
    let raw = raw.map(str::trim).filter(|s| !s.is_empty());
    let Some(raw) = raw else {
        return ThreadConfig {
            threads: available,
            warning: None,
        };
    };
    match raw.parse::<usize>() {
        Ok(n) if n > 0 && n <= max => ThreadConfig {
            threads: n,
            warning: None,
        },
        Ok(n) if n > max => ThreadConfig {
            threads: max,
            warning: Some(format!(
                "{ENV_VAR}: expected at most {max} ({MAX_THREADS_PER_CORE} per available core), \
                 got {n}; using {max} threads"
            )),
        },
        _ => ThreadConfig {
            threads: available,
            warning: Some(format!(
                "{ENV_VAR}: expected a positive integer, got {raw:?}; using {available} threads \
                 (the available cores)"
            )),
        },
    }
}

fn config() -> &'static ThreadConfig {
    CONFIG.get_or_init(|| {
        let raw = std::env::var_os(ENV_VAR).map(|v| v.to_string_lossy().into_owned());
        let available = std::thread::available_parallelism().map_or(1, |n| n.get());
        parse_num_threads(raw.as_deref(), available)
    })
}

/// Why `TEXTNORM_NUM_THREADS` was not used as given, if it was not (reads it on first call).
pub fn env_warning() -> Option<&'static str> {
    config().warning.as_deref()
}

/// Threads used for large inputs: the pool's size (see the module docs), lowered by
/// [`set_num_threads`].
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
        let n = config().threads;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_count_from_the_environment_is_validated_and_capped() {
        let ok = |threads| ThreadConfig {
            threads,
            warning: None,
        };
        assert_eq!(parse_num_threads(None, 8), ok(8));
        assert_eq!(parse_num_threads(Some("  "), 8), ok(8));
        assert_eq!(parse_num_threads(Some("3"), 8), ok(3));
        assert_eq!(parse_num_threads(Some(" 32 "), 8), ok(32));
        assert_eq!(parse_num_threads(None, 0), ok(1));
        let capped = parse_num_threads(Some("100000"), 2);
        assert_eq!(capped.threads, 8);
        let w = capped.warning.unwrap();
        assert!(w.contains(ENV_VAR) && w.contains("100000") && w.contains("at most 8"));
        for bad in ["abc", "0", "-3", "2.5", "99999999999999999999999"] {
            let c = parse_num_threads(Some(bad), 4);
            assert_eq!(c.threads, 4, "{bad}");
            let w = c.warning.unwrap();
            assert!(w.contains(ENV_VAR) && w.contains("positive integer") && w.contains(bad));
        }
    }
}
