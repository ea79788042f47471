//! How many threads inference uses: a board profile's choice, or the
//! user's `RAYON_NUM_THREADS`, checked against the same bounds.

/// Inference threads a board profile or the environment may ask for:
/// the boards have 4 to 8 cores; past 64, threads only cost memory and
/// start-up.
pub const THREADS: std::ops::RangeInclusive<u64> = 1..=64;

/// A thread count in the environment that is not a number in
/// [`THREADS`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{var}={value}: use a number of threads from {} to {}",
    THREADS.start(),
    THREADS.end()
)]
pub struct ThreadVarError {
    /// The variable.
    pub var: &'static str,
    /// Its value.
    pub value: String,
}

/// Environment variable read by candle's quantized thread pool.
const CANDLE_THREADS_VAR: &str = "CANDLE_NUM_THREADS";
/// Environment variable read by candle's f32 products (gemm), and by Pleura
/// for its own split of quantized products.
const THREADS_VAR: &str = "RAYON_NUM_THREADS";

/// Uses `threads` threads for inference (a board profile's choice), unless
/// the user set `RAYON_NUM_THREADS`. Call it before the model's first
/// product and before other threads start.
pub fn set_threads(threads: usize) {
    if std::env::var_os(THREADS_VAR).is_none() {
        // SAFETY: called while the program is single-threaded, before the
        // first product reads the variable.
        unsafe { std::env::set_var(THREADS_VAR, threads.max(1).to_string()) };
    }
}

/// Checks the thread counts a user may set in the environment
/// (`RAYON_NUM_THREADS`, `CANDLE_NUM_THREADS`) against the same bounds as
/// a board profile's `threads` ([`THREADS`]): thread pools
/// are sized from them, and 100 000 threads take a unit down. Fails on the
/// first one that is not a number in range.
pub fn check_thread_vars() -> Result<(), ThreadVarError> {
    for var in [THREADS_VAR, CANDLE_THREADS_VAR] {
        let Some(value) = std::env::var_os(var) else {
            continue;
        };
        let value = value.to_string_lossy();
        match value.trim().parse::<u64>() {
            Ok(n) if THREADS.contains(&n) => {}
            _ => {
                return Err(ThreadVarError {
                    var,
                    value: value.into_owned(),
                });
            }
        }
    }
    Ok(())
}

/// Threads for inference: `RAYON_NUM_THREADS`, else every core.
pub fn threads() -> usize {
    std::env::var(THREADS_VAR)
        .ok()
        .and_then(|n| n.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from))
}

/// Sets candle's quantized thread pool to one thread unless the user chose
/// otherwise; Pleura parallelizes quantized products itself (see
/// `model/conv.rs`). Call it first thing in `main`, before any other thread starts,
/// and before the first quantized product.
pub fn init_threads() {
    if std::env::var_os(CANDLE_THREADS_VAR).is_none() {
        // SAFETY: called at program start, before any thread exists that
        // could read or write the environment concurrently.
        unsafe { std::env::set_var(CANDLE_THREADS_VAR, "1") };
    }
}
