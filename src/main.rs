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
