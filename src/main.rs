//! The `netsmith` binary: parse, log to stderr, run, map the outcome to an
//! exit status. Everything else lives in the library.

use std::process::ExitCode;

use clap::Parser;
use netsmith::cli::{Cli, nc_style};

fn main() -> ExitCode {
    let cli = Cli::parse_from(nc_style(std::env::args_os().collect()));
    netsmith::logging::init(cli.verbose, cli.quiet);
    // One thread runs the sockets; stdin and stdout have their own threads
    // (see `stdio`), which is all the parallelism a pipe can use.
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("netsmith: cannot start the runtime: {e}");
            return ExitCode::from(netsmith::error::exit::USAGE);
        }
    };
    let result = runtime.block_on(netsmith::run(cli));
    // Do not wait for a resolver thread that may still be blocked.
    runtime.shutdown_background();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            if !matches!(err, netsmith::Error::Interrupted) {
                eprintln!("netsmith: {err}");
            }
            ExitCode::from(err.exit_code())
        }
    }
}
