//! `netsmith listen`: the tutorials' servers, and nc's `-l`.
//!
//! Binds 127.0.0.1 unless told otherwise and prints the bound address on
//! stderr ("listening on 127.0.0.1:41234"), so port 0 is usable from
//! scripts. One client is piped to stdin/stdout with the session policy of
//! [`crate::session`]; `-k` keeps accepting, writes what every client sends
//! to stdout and sends stdin to every client (ncat's `-k`); `--broker` and
//! `--chat` relay the clients to each other ([`crate::broker`]).
//! `--allow`/`--deny` (and their files) and `--max-conns` are those of
//! every server ([`AccessArgs`]).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::acl::Acl;
use crate::broker;
use crate::cli::{AccessArgs, ExecArgs, FamilyArgs, SessionArgs};
use crate::connect::{chunks, input};
use crate::datagram;
use crate::endpoint::{self, Endpoint, Host, PortZero};
use crate::error::{Error, Result};
use crate::exec::Program;
use crate::fanout::Hub;
use crate::net::{Datagram, Family, Listener, Resolve, Stream, bind};
use crate::services::Proto;
use crate::session::{self, Input};
use crate::stdio::{self, Stdout};
use crate::tls::Acceptor;

/// Arguments of `netsmith listen`.
#[derive(Debug, Args)]
pub struct ListenArgs {
    /// [ADDR] PORT, ADDR:PORT, [IPv6]:PORT, udp://ADDR:PORT, unix:PATH or
    /// unixgram:PATH. ADDR defaults to 127.0.0.1 (the IPv6 loopback with
    /// -6); 0.0.0.0 or [::] listen on every interface. Port 0 picks a free port.
    #[arg(value_name = "ADDR_PORT", num_args = 0..=2)]
    pub address: Vec<String>,
    /// Listen mode: accepted for nc compatibility (it is implied).
    #[arg(short = 'l', hide = true)]
    pub listen: bool,
    /// Port to listen on (nc -l -p PORT).
    #[arg(short = 'p', value_name = "PORT")]
    pub port: Option<String>,
    /// Address to listen on (ncat -s).
    #[arg(short = 's', long = "source", value_name = "ADDR")]
    pub bind: Option<String>,
    /// Keep accepting: serve many clients at once; stdin goes to all of them.
    #[arg(short = 'k', long = "keep-open")]
    pub keep_open: bool,
    /// Relay every client's bytes to every other client (ncat --broker;
    /// implies -k); stdin goes to every client, stdout gets nothing.
    #[arg(long)]
    pub broker: bool,
    /// As --broker, as a chat (ncat --chat): each client is named <userN>,
    /// its lines are prefixed with the name, control characters escaped,
    /// joins and leaves announced.
    #[arg(long)]
    pub chat: bool,
    #[command(flatten)]
    pub access: AccessArgs,
    /// Length of the kernel's queue of pending connections.
    #[arg(long, value_name = "N", default_value_t = 128, value_parser = clap::value_parser!(u32).range(1..))]
    pub backlog: u32,
    /// UDP: datagrams instead of a stream; see --peers for whom with.
    #[arg(short = 'u', long)]
    pub udp: bool,
    /// UDP: whom to talk with: the first sender only (as ncat), the latest
    /// sender, or all senders (stdin goes to each).
    #[arg(long, value_name = "WHO", value_enum, default_value_t = datagram::Peers::First)]
    pub peers: datagram::Peers,
    /// Listen on a Unix socket at PATH (created, and removed on exit).
    #[arg(short = 'U', long, value_name = "PATH")]
    pub unix: Option<PathBuf>,
    #[command(flatten)]
    pub family: FamilyArgs,
    /// Give up when no client connects (TCP) or no datagram arrives (UDP)
    /// within DUR.
    #[arg(short = 'w', long = "timeout", value_name = "DUR", value_parser = crate::cli::timeout)]
    pub timeout: Option<Duration>,
    #[command(flatten)]
    pub session: SessionArgs,
    #[command(flatten)]
    pub exec: ExecArgs,
    #[command(flatten)]
    pub tls: crate::tls::ServerArgs,
}

/// A validated `listen` command.
#[derive(Debug)]
pub struct ListenConfig {
    pub endpoint: Endpoint,
    pub resolve: Resolve,
    pub keep_open: bool,
    /// `--broker` or `--chat`: clients relayed to each other.
    pub hub: Option<broker::Mode>,
    /// `--max-conns`, or `None` for what the descriptor limit allows.
    pub max_conns: Option<usize>,
    /// `--allow`/`--deny` and their files.
    pub acl: Acl,
    pub backlog: u32,
    pub timeout: Option<Duration>,
    pub quiet: bool,
    pub args: SessionArgs,
    /// TLS on every accepted stream (`--tls`).
    pub tls: Option<Acceptor>,
    /// `--allow-truncation`: a close without `close_notify` is an end.
    pub allow_truncation: bool,
    /// `-u`: whom the conversation is with.
    pub peers: datagram::Peers,
    /// `--exec`/`--sh-exec`: the program run for each client instead of
    /// stdin and stdout, and how the user spelled it.
    pub program: Option<(Program, String)>,
}

impl ListenConfig {
    /// Validates `args`; `quiet` suppresses the "listening on" line.
    pub fn new(a: ListenArgs, quiet: bool) -> Result<Self> {
        let proto = if a.udp { Proto::Udp } else { Proto::Tcp };
        let default_host = || match a.family.resolve().family {
            Family::V6 => Host::Ip(IpAddr::V6(Ipv6Addr::LOCALHOST)),
            _ => Host::Ip(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        };
        let host_of = |text: Option<&String>| {
            text.map_or_else(|| Ok(default_host()), |t| endpoint::parse_host(t))
        };
        let endpoint = if let Some(path) = &a.unix {
            if !a.address.is_empty() || a.port.is_some() {
                return Err(Error::usage("--unix PATH takes no address or port"));
            }
            Endpoint::Unix {
                path: path.clone(),
                datagram: a.udp,
            }
        } else {
            match (a.address.as_slice(), &a.port) {
                ([], None) => {
                    return Err(Error::usage(
                        "missing port: give PORT, ADDR PORT or -p PORT (0 picks a free port)",
                    ));
                }
                ([], Some(port)) => Endpoint::Inet {
                    proto,
                    host: host_of(a.bind.as_ref())?,
                    port: endpoint::parse_port(port, proto, PortZero::Allowed)?,
                },
                // One word without a colon is a port (a number or a service name).
                ([one], None) if !one.contains(':') => Endpoint::Inet {
                    proto,
                    host: host_of(a.bind.as_ref())?,
                    port: endpoint::parse_port(one, proto, PortZero::Allowed)?,
                },
                ([one], None) => Endpoint::parse(one, proto, PortZero::Allowed)?,
                ([host], Some(port)) | ([host, port], None) => {
                    Endpoint::from_parts(host, port, proto, PortZero::Allowed)?
                }
                _ => {
                    return Err(Error::usage(
                        "too many addresses: give [ADDR] PORT, ADDR:PORT or -p PORT",
                    ));
                }
            }
        };
        let datagrams = matches!(
            endpoint,
            Endpoint::Inet {
                proto: Proto::Udp,
                ..
            } | Endpoint::Unix { datagram: true, .. }
        );
        let hub = hub_mode(&a, datagrams)?;
        if datagrams && a.access.filters() {
            return Err(Error::usage(
                "--allow/--deny/--allowfile/--denyfile apply to stream listeners: drop -u \
                 (or udp://, unixgram:), or use `netsmith serve` or `relay` for UDP",
            ));
        }
        let acl = a.access.acl()?;
        let program = exec_program(&a, hub.is_some(), datagrams)?;
        let tls = match &endpoint {
            Endpoint::Inet {
                proto: Proto::Udp, ..
            }
            | Endpoint::Unix { datagram: true, .. }
                if a.tls.tls =>
            {
                return Err(Error::usage(
                    "TLS runs over a stream: drop -u (or udp://, unixgram:) or --tls",
                ));
            }
            Endpoint::Inet { host, .. } => a.tls.acceptor(&[host.to_string()], quiet)?,
            Endpoint::Unix { .. } => a.tls.acceptor(&[], quiet)?,
        };
        Ok(ListenConfig {
            endpoint,
            resolve: a.family.resolve(),
            keep_open: a.keep_open || hub.is_some(),
            hub,
            max_conns: a.access.max_conns.map(|n| n as usize),
            acl,
            backlog: a.backlog,
            timeout: a.timeout,
            quiet,
            allow_truncation: a.tls.allow_truncation,
            args: a.session,
            tls,
            peers: a.peers,
            program,
        })
    }
}

/// `--exec` or `--sh-exec`, checked against the other peers and flags;
/// a program that cannot run is refused now, before listening.
fn exec_program(a: &ListenArgs, hub: bool, datagrams: bool) -> Result<Option<(Program, String)>> {
    if a.exec.given() && hub {
        return Err(Error::usage(
            "--exec/--sh-exec and --broker/--chat are two different peers: give one",
        ));
    }
    if a.exec.given() && datagrams && a.peers != datagram::Peers::First {
        return Err(Error::usage(
            "--peers is for stdin and stdout: with --exec each sender has its own program \
             (-k: many senders at once)",
        ));
    }
    a.exec.program()
}

/// `--broker` or `--chat`, checked against the flags they leave no
/// meaning to.
fn hub_mode(a: &ListenArgs, datagrams: bool) -> Result<Option<broker::Mode>> {
    let (mode, flag) = match (a.chat, a.broker) {
        (true, _) => (broker::Mode::Chat, "--chat"),
        (false, true) => (broker::Mode::Broker, "--broker"),
        (false, false) => return Ok(None),
    };
    if datagrams {
        return Err(Error::usage(format!(
            "{flag} relays stream clients: drop -u (or udp://, unixgram:)"
        )));
    }
    let s = &a.session;
    let unused = [
        (s.send.is_some(), "--send"),
        (s.send_only, "--send-only"),
        (s.quit_after_eof.is_some(), "-q"),
        (s.no_shutdown, "--no-shutdown"),
        (s.crlf, "-C/--crlf"),
    ];
    if let Some((_, bad)) = unused.iter().find(|(given, _)| *given) {
        return Err(Error::usage(format!(
            "{bad} does not apply to {flag}, which sends stdin to every client as it \
             comes and never closes them at its end; drop {bad}"
        )));
    }
    Ok(Some(mode))
}

/// Runs `listen` until its client leaves (or forever with `-k`).
pub async fn run(cfg: ListenConfig) -> Result<()> {
    let (bound, _socket_file, name) = bind(&cfg).await?;
    let mut stdout = Stdout::get();
    match bound {
        Bound::Streams(listener) => streams(&cfg, listener, &stdout).await,
        Bound::Datagrams(socket) if cfg.program.is_some() => {
            let Some((program, _)) = &cfg.program else {
                return Ok(());
            };
            // However listen ends (Ctrl-C, SIGTERM), no program outlives it.
            let _programs = crate::exec::Programs;
            let idle = cfg.args.idle_timeout;
            let (max, _) = crate::server::max_conns(cfg.max_conns, 3);
            crate::exec::datagrams(socket, program, cfg.keep_open, max, idle).await
        }
        Bound::Datagrams(socket) => {
            let opts = datagram::ServerOptions {
                timeout: cfg.timeout,
                hex: cfg.args.hex,
                peers: cfg.peers,
                name,
                watch_stdout: true,
            };
            datagram::server(&socket, chunks(&cfg.args), &mut stdout, &opts).await
        }
    }
}

/// A bound socket, ready for clients.
enum Bound {
    Streams(Listener),
    Datagrams(Datagram),
}

/// Binds the endpoint and prints where (port 0 becomes the real port);
/// returns that name too.
async fn bind(cfg: &ListenConfig) -> Result<(Bound, Option<bind::SocketFile>, String)> {
    let (bound, file) = match &cfg.endpoint {
        Endpoint::Inet { proto, host, port } => {
            let addr = bind_addr(&cfg.resolve, host, *port).await?;
            match proto {
                Proto::Tcp => (Bound::Streams(bind::tcp(addr, cfg.backlog)?), None),
                Proto::Udp => (Bound::Datagrams(bind::udp(addr)?), None),
            }
        }
        Endpoint::Unix {
            path,
            datagram: false,
        } => {
            let (listener, file) = bind::unix(path, cfg.backlog)?;
            (Bound::Streams(listener), Some(file))
        }
        Endpoint::Unix {
            path,
            datagram: true,
        } => {
            let (socket, file) = bind::unixgram(path)?;
            (Bound::Datagrams(socket), Some(file))
        }
    };
    let local = match &bound {
        Bound::Streams(l) => l.local_addr(),
        Bound::Datagrams(s) => s.local_addr(),
    };
    let name = match (&cfg.endpoint, local) {
        (
            Endpoint::Inet {
                proto: Proto::Tcp, ..
            },
            Some(addr),
        ) => addr.to_string(),
        (
            Endpoint::Inet {
                proto: Proto::Udp, ..
            },
            Some(addr),
        ) => format!("udp://{addr}"),
        (endpoint, _) => endpoint.to_string(),
    };
    let told = crate::compat::tell(&crate::compat::Event::Listening {
        addr: local,
        name: &name,
    });
    if !cfg.quiet && !told {
        eprintln!("listening on {}", crate::error::printable(&name));
    }
    if let Some(addr) = local {
        crate::net::warn_if_exposed(&name, addr.ip());
    }
    if let Some((program, spelled)) = &cfg.program {
        eprintln!("{}", crate::exec::warning(&name, program, spelled));
    }
    Ok((bound, file, name))
}

/// The address to bind: a literal as given, or a name's first address.
pub(crate) async fn bind_addr(resolve: &Resolve, host: &Host, port: u16) -> Result<SocketAddr> {
    let addrs = resolve.addrs(host, port).await?;
    addrs
        .first()
        .copied()
        .ok_or_else(|| Error::Resolve(format!("{host} has no address to listen on")))
}

/// Serves stream clients: one, many with `-k`, or relayed to each other
/// with `--broker`/`--chat`.
async fn streams(cfg: &ListenConfig, listener: Listener, stdout: &Stdout) -> Result<()> {
    if let Some((program, _)) = &cfg.program {
        // However listen ends (Ctrl-C, SIGTERM), no program outlives it.
        let _programs = crate::exec::Programs;
        return programs(cfg, listener, program).await;
    }
    if cfg.keep_open {
        let (max_conns, fd_limit) = crate::server::max_conns(cfg.max_conns, 1);
        tracing::info!("descriptor limit {fd_limit}, serving at most {max_conns} clients at once");
        if let Some(mode) = cfg.hub {
            let opts = broker::Options {
                mode,
                acl: cfg.acl.clone(),
                max_conns,
                idle: cfg.args.idle_timeout,
                hex: cfg.args.hex,
                reads_stdin: cfg.args.reads_stdin(),
                tls: cfg.tls.clone(),
            };
            broker::serve(&listener, opts).await;
            return Ok(());
        }
        let fanout = Fanout::start(&cfg.args);
        let mut opts = cfg.args.options();
        opts.label_hex = true;
        opts.grow_reads = false;
        opts.allow_truncation = cfg.allow_truncation;
        let opts = Arc::new(opts);
        let limit = Arc::new(tokio::sync::Semaphore::new(max_conns));
        // Cancelled when stdout fails: with no stdout (`| head`) there is
        // nothing left to listen for.
        let (tracker, stop) = (TaskTracker::new(), CancellationToken::new());
        let watcher = stop.clone();
        tokio::spawn(async move {
            // A failure other than EPIPE is reported by `crate::run`.
            let _ = stdio::ended().await;
            watcher.cancel();
        });
        let local = listener.local_addr();
        let mut next_id = 0;
        crate::server::accept_loop(&listener, limit, &tracker, &stop, |stream, peer_addr| {
            if !crate::server::admitted(&cfg.acl, &stream, &peer_addr) {
                return None;
            }
            let peer = peer_addr.to_string();
            next_id += 1;
            let (input, dropped) = fanout.subscribe(next_id, &peer);
            let out = stdout.clone();
            let opts = opts.clone();
            let tls = cfg.tls.clone();
            Some(async move {
                if !crate::compat::tell(&crate::compat::Event::Accepted {
                    local,
                    peer: &peer_addr,
                }) {
                    tracing::info!("connection from {peer}");
                }
                let stream = match secure(tls.as_ref(), stream, &peer).await {
                    Ok(stream) => stream,
                    Err(e) => return tracing::warn!("{e}"),
                };
                // A dropped client's connection is closed with its session.
                let result = tokio::select! {
                    r = session::run(stream, &peer, input, out, &opts) => r,
                    () = dropped.cancelled() => return,
                };
                if stdio::closed() {
                    return; // the watcher above ends the listener
                }
                match result {
                    Ok(()) => tracing::info!("{peer} disconnected"),
                    Err(e) => tracing::warn!("{e}"),
                }
            })
        })
        .await;
        // Only a failed stdout ends the loop: quietly for EPIPE, else
        // `crate::run` reports it (exit 1).
        return Ok(());
    }
    let (stream, peer) = accept_one(cfg, listener).await?;
    let opts = session::Options {
        allow_truncation: cfg.allow_truncation,
        ..cfg.args.options()
    };
    tokio::select! {
        r = session::run(stream, &peer, input(&cfg.args), stdout.clone(), &opts) => r,
        r = stdio::ended() => r,
    }
}

/// Serves clients with a program each (`--exec`, `--sh-exec`): one client,
/// whose program's failure is the command's (exit 1); or with `-k` many at
/// once, up to `--max-conns`, each program's failure said on stderr.
async fn programs(cfg: &ListenConfig, listener: Listener, program: &Program) -> Result<()> {
    let mut opts = cfg.args.options();
    opts.allow_truncation = cfg.allow_truncation;
    if !cfg.keep_open {
        let (stream, peer) = accept_one(cfg, listener).await?;
        return crate::exec::session(stream, &peer, program, &opts)
            .await?
            .into_result(program);
    }
    opts.label_hex = true;
    let opts = Arc::new(opts);
    let program = Arc::new(program.clone());
    let (max_conns, fd_limit) = crate::server::max_conns(cfg.max_conns, 3);
    tracing::info!("descriptor limit {fd_limit}, serving at most {max_conns} clients at once");
    let limit = Arc::new(tokio::sync::Semaphore::new(max_conns));
    let (tracker, forever) = (TaskTracker::new(), CancellationToken::new());
    crate::server::accept_loop(&listener, limit, &tracker, &forever, |stream, peer| {
        if !crate::server::admitted(&cfg.acl, &stream, &peer) {
            return None;
        }
        let (opts, program, tls) = (opts.clone(), program.clone(), cfg.tls.clone());
        Some(async move {
            let peer = peer.to_string();
            tracing::info!("connection from {peer}");
            let stream = match secure(tls.as_ref(), stream, &peer).await {
                Ok(stream) => stream,
                Err(e) => return tracing::warn!("netsmith: {e}"),
            };
            match crate::exec::session(stream, &peer, &program, &opts).await {
                Ok(outcome) => {
                    if let Some(failed) = outcome.program_failure(&program) {
                        tracing::warn!("netsmith: {peer}: {failed}");
                    }
                    match outcome.result {
                        Ok(()) => tracing::info!("{peer} disconnected"),
                        Err(e) => tracing::warn!("netsmith: {peer}: {e}"),
                    }
                }
                Err(e) => tracing::warn!("netsmith: {peer}: {e}"),
            }
        })
    })
    .await;
    Ok(())
}

/// Accepts the one client of a listener without `-k` (within `--timeout`),
/// closes the listener (later clients are refused, as with nc) and
/// completes its TLS handshake (`--tls`).
async fn accept_one(cfg: &ListenConfig, listener: Listener) -> Result<(Stream, String)> {
    let (stream, peer) = match cfg.timeout {
        Some(limit) => {
            tokio::time::timeout(limit, crate::server::accept_admitted(&listener, &cfg.acl))
                .await
                .map_err(|_| {
                    Error::Silence(format!(
                        "no connection within {}",
                        crate::duration::show(limit)
                    ))
                })?
        }
        None => crate::server::accept_admitted(&listener, &cfg.acl).await,
    }?;
    // Like nc: one client, so stop listening; later clients are refused.
    let local = listener.local_addr();
    drop(listener);
    if !crate::compat::tell(&crate::compat::Event::Accepted { local, peer: &peer }) {
        tracing::info!("connection from {peer}");
    }
    let peer = peer.to_string();
    let stream = secure(cfg.tls.as_ref(), stream, &peer).await?;
    Ok((stream, peer))
}

/// The TLS handshake on an accepted stream, when `--tls` asks for one.
async fn secure(tls: Option<&Acceptor>, stream: Stream, peer: &str) -> Result<Stream> {
    match tls {
        Some(acceptor) => acceptor.accept(stream, peer).await,
        None => Ok(stream),
    }
}

/// Sends stdin to every connected client (`listen -k`) through a [`Hub`]
/// (bounded queues; a client that does not read is dropped, the others
/// miss nothing). At stdin EOF every client's write side is shut down, and
/// later clients get EOF at once.
struct Fanout {
    hub: Hub,
    /// `--send TEXT`: each client gets the text instead of stdin.
    text: Option<String>,
    /// Whether stdin is read at all (not with `--recv-only`).
    reads_stdin: bool,
}

impl Fanout {
    fn start(args: &SessionArgs) -> Fanout {
        let hub = Hub::new("listen -k");
        if args.reads_stdin() {
            let hub = hub.clone();
            tokio::spawn(async move {
                hub.feed(None, stdio::stdin_chunks(), Some).await;
                hub.close();
            });
        }
        Fanout {
            hub,
            text: args.send.clone(),
            reads_stdin: args.reads_stdin(),
        }
    }

    /// The input of client `id`'s session, and the token cancelled if the
    /// client is dropped for falling behind.
    fn subscribe(&self, id: u64, peer: &str) -> (Input, CancellationToken) {
        if let Some(text) = &self.text {
            let text = std::io::Cursor::new(text.clone().into_bytes());
            return (Box::new(text), CancellationToken::new());
        }
        if !self.reads_stdin {
            // --recv-only: nothing to send, nothing to keep per client.
            return (Box::new(tokio::io::empty()), CancellationToken::new());
        }
        let (joined, _) = self.hub.join(id, peer);
        (Box::new(stdio::reader(joined.chunks)), joined.dropped)
    }
}
