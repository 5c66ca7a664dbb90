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
//! - [`server`]: the accept loop, with its connection limit and EMFILE back-off.
//! - [`connect`], [`listen`], [`serve`], [`relay`], [`scan`], [`bench`], [`sniff`],
//!   [`resolve`], [`ping`], [`demo`]: the commands;
//!   [`acl`]: `--allow`/`--deny`.
//! - [`error`]: the error type and the one mapping to exit statuses.

pub mod acl;
pub mod bench;
pub mod cli;
pub mod connect;
pub mod copy;
pub mod datagram;
pub mod demo;
pub mod duration;
pub mod endpoint;
pub mod error;
pub mod listen;
pub mod logging;
pub mod net;
pub mod ping;
pub mod relay;
pub mod resolve;
pub mod scan;
pub mod serve;
pub mod server;
pub mod services;
pub mod session;
pub mod sniff;
#[cfg(target_os = "linux")]
pub mod splice;
pub mod stdio;
pub mod tls;

pub use error::{Error, Result};

use cli::{Cli, Command};

/// How long output may still drain after Ctrl-C.
const INTERRUPT_FLUSH: std::time::Duration = std::time::Duration::from_secs(1);

/// Runs one command line to completion, or until Ctrl-C/SIGTERM, which
/// drops the command (closing its sockets and removing its socket files)
/// and reports [`Error::Interrupted`]. `serve` stops gracefully instead.
pub async fn run(cli: Cli) -> Result<()> {
    // Installed before anything is bound, so that no signal can arrive
    // between a "listening on" line and its handler.
    let mut signals = Signals::new();
    if let Command::Serve(args) = cli.command {
        return serve(serve::ServeConfig::new(args, cli.quiet)?, &mut signals).await;
    }
    if let Command::Sniff(args) = cli.command {
        return sniff(args, cli.quiet, &mut signals).await;
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
            Command::Bench(args) => bench::run(args, cli.quiet).await,
            Command::Scan(args) => scan::run(args, cli.quiet).await,
            Command::Resolve(args) => resolve::run(args).await,
            Command::Serve(_) | Command::Sniff(_) | Command::Ping(_) => Ok(()),
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
        _ => stdio::Stdout::sync_global().await,
    }
    result
}

/// A server stops gracefully: the first Ctrl-C or SIGTERM stops accepting
/// and lets open connections finish (`--grace`); a second one ends at once.
/// A server stopped this way has done its job: exit 0, with its totals.
async fn serve(cfg: serve::ServeConfig, signals: &mut Signals) -> Result<()> {
    let stop = tokio_util::sync::CancellationToken::new();
    let run = serve::run(cfg, stop.clone());
    tokio::pin!(run);
    let report = tokio::select! {
        r = &mut run => r?,
        () = signals.next() => {
            stop.cancel();
            tokio::select! {
                r = &mut run => r?,
                () = signals.next() => return Err(Error::Interrupted),
            }
        }
    };
    // Totals are the command's result: stdout (JSON lines with --json).
    stdio::print(&report);
    Ok(())
}

/// A capture ends normally at Ctrl-C, as tcpdump's does: the first signal
/// stops it and its totals are printed (exit 0); a second one ends at once.
async fn sniff(args: sniff::SniffArgs, quiet: bool, signals: &mut Signals) -> Result<()> {
    let stop = tokio_util::sync::CancellationToken::new();
    let run = sniff::run(args, quiet, stop.clone());
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

/// SIGINT and SIGTERM, caught from the moment this is created.
struct Signals {
    int: Option<tokio::signal::unix::Signal>,
    term: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    fn new() -> Self {
        use tokio::signal::unix::{SignalKind, signal};
        Signals {
            int: signal(SignalKind::interrupt()).ok(),
            term: signal(SignalKind::terminate()).ok(),
        }
    }

    /// Completes on the next SIGINT or SIGTERM.
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
        }
    }
}
