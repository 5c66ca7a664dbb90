//! Diagnostics go to stderr, never stdout: stdout carries the data of
//! `connect` and `listen`, and a log line in it would corrupt a transfer.
//!
//! The default shows warnings only; `-v` adds connections and state changes,
//! `-vv` debug, `-vvv` trace; `-q` errors only. `NETSMITH_LOG` (an
//! `EnvFilter` directive) overrides all of them.

use tracing_subscriber::EnvFilter;

/// Installs the stderr logger for a verbosity count and the quiet flag.
pub fn init(verbose: u8, quiet: bool) {
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, 2) => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_env("NETSMITH_LOG")
        .unwrap_or_else(|_| EnvFilter::new(format!("netsmith={level}")));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .without_time()
        .with_target(false)
        .with_level(verbose >= 2)
        .with_ansi(false)
        .try_init();
}
