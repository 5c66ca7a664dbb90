//! The `netsmith` binary: parse, log to stderr, run, map the outcome to an
//! exit status. Everything else lives in the library.

use std::process::ExitCode;

use netsmith::cli::Cli;
use netsmith::error::printable;

fn main() -> ExitCode {
    // Run as nc, ncat, ... (or with --compat): that tool's command line,
    // rewritten as netsmith's.
    let line = match netsmith::compat::translate(std::env::args_os().collect()) {
        Ok(line) => line,
        Err(err) => {
            eprintln!("netsmith: {}", printable(&err.to_string()));
            return ExitCode::from(err.exit_code());
        }
    };
    let cli = match Cli::parse_line(line.args.clone()) {
        Ok(cli) => cli,
        Err(err) => return usage_error(&err),
    };
    netsmith::compat::speak(&line, cli.verbose > 0 && !cli.quiet);
    netsmith::logging::init(line.log_verbosity(cli.verbose), cli.quiet);
    if let Err(err) = netsmith::net::check_fd_floor() {
        eprintln!("netsmith: {}", printable(&err.to_string()));
        return ExitCode::from(err.exit_code());
    }
    // A pipe (connect, listen) gets one thread for its sockets, and stdin and
    // stdout have their own (see `stdio`): all the parallelism a pipe can
    // use. A server gets a thread per core.
    let multi_thread = cli.command.worker_threads();
    let runtime = match netsmith::runtime::build(multi_thread) {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("netsmith: cannot start the runtime: {e}");
            return ExitCode::from(netsmith::error::exit::USAGE);
        }
    };
    let result = if multi_thread.is_some() {
        // The command runs on a worker, not on this thread: a task that an
        // accept loop spawns from a worker goes to that worker's own queue,
        // where one spawned from here would go through the shared queue
        // and wake a worker (a futex and an eventfd write per connection).
        runtime.block_on(async {
            tokio::spawn(netsmith::run(cli))
                .await
                .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
        })
    } else {
        runtime.block_on(netsmith::run(cli))
    };
    // Do not wait for a resolver thread that may still be blocked.
    runtime.shutdown_background();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            if !matches!(
                err,
                netsmith::Error::Interrupted | netsmith::Error::Reported(_)
            ) {
                eprintln!("netsmith: {}", printable(&err.to_string()));
            }
            ExitCode::from(err.exit_code())
        }
    }
}

/// Help and version go to stdout as clap prints them; a usage error becomes
/// one line on stderr, as every other bad input does, and exit status 2.
fn usage_error(err: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        err.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
    ) {
        use std::io::Write as _;
        // Help that did not reach stdout (a full disk) is not a success.
        return match err.print().and_then(|()| std::io::stdout().flush()) {
            Err(e) if !netsmith::stdio::reader_left(&e) => {
                eprintln!("netsmith: {}", netsmith::Error::stdout(&e));
                ExitCode::from(netsmith::error::exit::NETWORK)
            }
            _ => ExitCode::SUCCESS,
        };
    }
    let text = err.render().to_string();
    if err.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
        eprintln!("netsmith: {}", missing_command(&text));
        return ExitCode::from(netsmith::error::exit::USAGE);
    }
    eprintln!(
        "netsmith: {} (see --help)",
        printable(&netsmith::cli::one_line(&text))
    );
    ExitCode::from(netsmith::error::exit::USAGE)
}

/// With no command (or `bench` with no workload) clap renders the whole
/// help, whose first line is the about text: name the missing command and
/// the choices instead.
fn missing_command(help: &str) -> String {
    let usage = help
        .lines()
        .find_map(|l| l.trim().strip_prefix("Usage: "))
        .unwrap_or("netsmith");
    let program: Vec<&str> = usage
        .split_whitespace()
        .take_while(|w| !w.starts_with(['[', '<']))
        .collect();
    let choices: Vec<&str> = help
        .lines()
        .skip_while(|l| l.trim() != "Commands:")
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .collect();
    let program = program.join(" ");
    let within = program.strip_prefix("netsmith").unwrap_or("").trim();
    let what = if within.is_empty() {
        String::new()
    } else {
        format!("{within}: ")
    };
    format!(
        "{what}a command is needed: one of {} (see {program} --help)",
        choices.join(", ")
    )
}
