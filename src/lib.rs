//! netsmith: the everyday network tool as a library.
//!
//! The binary is a thin shell over [`run`]; everything it does is here, in
//! modules named for what they do:
//!
//! - [`endpoint`]: the one endpoint grammar (`HOST:PORT`, `[v6]:PORT`,
//!   `udp://`, `unix:PATH`, ...), pure parsing.
//! - [`net`]: resolution, Happy Eyeballs dialing, binding, and the stream,
//!   listener and datagram types over TCP, UDP and Unix sockets.
//! - [`copy`]: the copy loop every byte goes through.
//! - [`session`]: a connection joined to stdin/stdout, with the one
//!   end-of-stream (half-close) policy; [`datagram`]: the same for datagrams.
//! - [`tls`]: TLS client connector and server acceptor (rustls), turning
//!   any stream into an encrypted one.
//! - [`exec`]: programs as the peer (`--exec`, `exec:`): started per
//!   connection in a process group of their own, with ncat's environment.
//! - [`server`]: the accept loop, with its connection limit and EMFILE back-off;
//!   [`fanout`]: one stream of chunks to many clients through bounded queues.
//! - [`connect`], [`listen`], [`serve`], [`relay`], [`scan`], [`bench`], [`sniff`],
//!   [`resolve`], [`ping`], [`demo`]: the commands;
//!   [`broker`]: `listen --broker`/`--chat`; [`acl`]: `--allow`/`--deny`;
//!   [`proxy`]: SOCKS and HTTP CONNECT proxies, as client and as
//!   `netsmith proxy`.
//! - [`error`]: the error type and the one mapping to exit statuses.

pub mod acl;
pub mod bench;
pub mod broker;
pub mod cli;
pub mod compat;
pub mod connect;
pub mod copy;
pub mod datagram;
pub mod demo;
pub mod duration;
pub mod endpoint;
pub mod error;
pub mod exec;
pub mod fanout;
pub mod listen;
pub mod logging;
pub mod net;
pub mod ping;
pub mod proxy;
pub mod relay;
pub mod resolve;
pub mod runtime;
pub mod scan;
pub mod script;
pub mod serve;
pub mod server;
pub mod services;
pub mod session;
pub mod sniff;
#[cfg(target_os = "linux")]
pub mod splice;
pub mod stdio;
pub mod tls;
pub mod tube;

pub use error::{Error, Result};

use cli::{Cli, Command};

/// How long output may still drain after Ctrl-C.
const INTERRUPT_FLUSH: std::time::Duration = std::time::Duration::from_secs(1);

/// Runs one command line to completion, or until Ctrl-C/SIGTERM, which
/// drops the command (closing its sockets and removing its socket files)
/// and reports [`Error::Interrupted`]. `serve` stops gracefully instead.
///
/// Whatever the command, a write to stdout that failed other than by its
/// reader leaving (`| head`, EPIPE, a quiet exit) fails the command: "write
/// to stdout: no space left on device", exit 1.
pub async fn run(cli: Cli) -> Result<()> {
    let result = command(cli).await;
    match (result, stdio::failure()) {
        (Ok(()), Some(e)) if !stdio::reader_left(&e) => Err(Error::stdout(&e)),
        // Interrupted after output was lost: both are said (exit 130).
        (Err(Error::Interrupted), Some(e)) if !stdio::reader_left(&e) => {
            eprintln!("netsmith: {}", Error::stdout(&e));
            Err(Error::Interrupted)
        }
        (result, _) => result,
    }
}

/// [`run`] without the final stdout check.
async fn command(cli: Cli) -> Result<()> {
    // Installed before anything is bound, so that no signal can arrive
    // between a "listening on" line and its handler.
    let mut signals = Signals::new();
    if let Command::Serve(args) = cli.command {
        return serve(serve::ServeConfig::new(args, cli.quiet)?, &mut signals).await;
    }
    if let Command::Sniff(args) = cli.command {
        return sniff(args, cli.quiet, &mut signals).await;
    }
    if let Command::Bench(args) = cli.command {
        return bench(args, cli.quiet, &mut signals).await;
    }
    // Ctrl-C ends a ping with its summary, as iputils ping does.
    if let Command::Ping(args) = cli.command {
        return ping::run(args, cli.quiet, signals.next()).await;
    }
    let command = async {
        match cli.command {
            Command::Connect(args) if args.zero => {
                connect::check(args, cli.verbose > 0 && !cli.quiet).await
            }
            Command::Connect(args) => connect::run(args.try_into()?).await,
            Command::Listen(args) => listen::run(listen::ListenConfig::new(args, cli.quiet)?).await,
            Command::Demo => demo::run().await,
            Command::Relay(args) => relay::run(relay::RelayConfig::new(&args, cli.quiet)?).await,
            Command::Proxy(args) => {
                relay::run(relay::RelayConfig::new(&args.into(), cli.quiet)?).await
            }
            Command::Scan(args) => scan::run(args, cli.quiet).await,
            Command::Resolve(args) => resolve::run(args).await,
            Command::Script(args) => script::run(args).await,
            Command::Serve(_) | Command::Sniff(_) | Command::Ping(_) | Command::Bench(_) => Ok(()),
        }
    };
    let result = tokio::select! {
        r = command => r,
        () = signals.next() => Err(Error::Interrupted),
    };
    // Whatever way the command ended, what it received reaches stdout;
    // after Ctrl-C only for a moment, in case stdout's reader is stuck.
    match result {
        Err(Error::Interrupted) => {
            let _ = tokio::time::timeout(INTERRUPT_FLUSH, stdio::Stdout::sync_global()).await;
        }
        // A failed stdout is reported by `run`.
        _ => drop(stdio::Stdout::sync_global().await),
    }
    result
}

/// A server stops gracefully: the first Ctrl-C or SIGTERM stops accepting
/// and lets open connections finish (`--grace`); a second one ends at once.
/// A server stopped this way has done its job: exit 0, with its totals.
async fn serve(cfg: serve::ServeConfig, signals: &mut Signals) -> Result<()> {
    let report = stopped_by_signal(signals, |stop| serve::run(cfg, stop)).await?;
    // Totals are the command's result: stdout (JSON lines with --json).
    stdio::print(&report);
    Ok(())
}

/// A capture ends normally at Ctrl-C, as tcpdump's does: the first signal
/// stops it and its totals are printed (exit 0); a second one ends at once.
async fn sniff(args: sniff::SniffArgs, quiet: bool, signals: &mut Signals) -> Result<()> {
    stopped_by_signal(signals, |stop| sniff::run(args, quiet, stop)).await
}

/// Ctrl-C ends a bench with the results measured so far, then exit 130
/// (the run did not finish); a second signal ends it at once.
async fn bench(args: bench::BenchArgs, quiet: bool, signals: &mut Signals) -> Result<()> {
    let result = stopped_by_signal(signals, |stop| bench::run(args, quiet, stop)).await;
    let _ = tokio::time::timeout(INTERRUPT_FLUSH, stdio::Stdout::sync_global()).await;
    result
}

/// Runs a command that stops on its own when its token is cancelled: the
/// first signal cancels it, and the command ends as it does at its end; a
/// second signal ends it at once ([`Error::Interrupted`]).
async fn stopped_by_signal<T, F>(
    signals: &mut Signals,
    start: impl FnOnce(tokio_util::sync::CancellationToken) -> F,
) -> Result<T>
where
    F: std::future::Future<Output = Result<T>>,
{
    let stop = tokio_util::sync::CancellationToken::new();
    let run = start(stop.clone());
    tokio::pin!(run);
    tokio::select! {
        r = &mut run => r,
        () = signals.next() => {
            stop.cancel();
            tokio::select! {
                r = &mut run => r,
                () = signals.next() => Err(Error::Interrupted),
            }
        }
    }
}

/// SIGINT, SIGTERM and SIGHUP (a closed terminal), caught from the moment
/// this is created, so that each ends a command through its drop guards
/// (socket files removed) rather than the default action.
struct Signals {
    int: Option<tokio::signal::unix::Signal>,
    term: Option<tokio::signal::unix::Signal>,
    hup: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    fn new() -> Self {
        use tokio::signal::unix::{SignalKind, signal};
        Signals {
            int: signal(SignalKind::interrupt()).ok(),
            term: signal(SignalKind::terminate()).ok(),
            // Under nohup (SIGHUP ignored from the start) it stays ignored.
            hup: if inherited_ignore(libc::SIGHUP) {
                None
            } else {
                signal(SignalKind::hangup()).ok()
            },
        }
    }

    /// Completes on the next SIGINT, SIGTERM or SIGHUP.
    async fn next(&mut self) {
        async fn recv(s: &mut Option<tokio::signal::unix::Signal>) {
            match s {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending().await,
            }
        }
        tokio::select! {
            () = recv(&mut self.int) => {}
            () = recv(&mut self.term) => {}
            () = recv(&mut self.hup) => {}
        }
    }
}

/// Whether `signal` was ignored when the process started (`nohup` ignores
/// SIGHUP), read from the kernel's `SigIgn` mask in /proc/self/status:
/// installing a handler would undo what the user asked for.
fn inherited_ignore(signal: i32) -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let mask = status.lines().find_map(|l| l.strip_prefix("SigIgn:"))?;
            u64::from_str_radix(mask.trim(), 16).ok()
        })
        .is_some_and(|mask| (signal - 1) < 64 && mask & (1 << (signal - 1)) != 0)
}
