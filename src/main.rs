//! The `pleura` command line: parses the arguments and dispatches them
//! (`cli`); the library does the work.

mod cli;

use clap::Parser;

fn main() {
    if let Err(e) = pleura::model::check_thread_vars() {
        eprintln!("pleura: {e}");
        std::process::exit(1);
    }
    pleura::model::init_threads();
    quiet_library_backtraces();
    steady_heap();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    if let Err(e) = cli::run(cli::Cli::parse()) {
        eprintln!("pleura: {e:#}");
        let partly_written = matches!(
            e.downcast_ref(),
            Some(pleura::update::UpdateError::Unfinished { .. })
        );
        std::process::exit(if partly_written {
            pleura::update::EXIT_PARTLY_WRITTEN
        } else {
            1
        });
    }
}

/// Keeps `RUST_BACKTRACE` for panics (real bugs) but stops libraries
/// (candle, anyhow) from capturing a backtrace into ordinary errors, which
/// then printed it to the user. `RUST_LIB_BACKTRACE`, when set, wins.
fn quiet_library_backtraces() {
    if std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
        // SAFETY: called first thing in `main`, before any other thread.
        unsafe { std::env::set_var("RUST_LIB_BACKTRACE", "0") };
    }
}

/// Fixes glibc's mmap threshold at its starting value, 128 KiB. Left
/// alone, glibc raises it to the size of every mapped block freed (up to
/// 32 MiB): once start-up had freed a 1.1 MiB buffer, every later
/// buffer up to that size (zone clips, PNG screens) came from the threads'
/// heaps, whose fragments kept resident memory creeping up in steps for
/// the first half hour of a soak. Fixed, a large buffer is mapped when
/// taken and returned to the kernel when freed. `MALLOC_MMAP_THRESHOLD_`,
/// when set, wins.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn steady_heap() {
    const MMAP_THRESHOLD: libc::c_int = 128 * 1024;
    if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_none() {
        // SAFETY: mallopt only changes malloc's settings; called first
        // thing in `main`, before any other thread.
        unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD) };
    }
}

/// Other C libraries keep their own allocation policy.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn steady_heap() {}
