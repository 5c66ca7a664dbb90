//! `netsmith relay FROM TO`: socat-style forwarding between two endpoints.
//!
//! A listening FROM (`tcp-listen:`, `unix-listen:`) accepts many clients at
//! once through the one accept loop ([`crate::server`]), each joined to its
//! own new connection to TO (a socket, or a program started for it); a
//! `udp-listen:` FROM keeps a session per client address ([`udp`]). Any
//! other FROM (a socket to connect to, `stdio`, a program) is opened once
//! and joined to TO once, and the command ends with that connection.
//!
//! Each direction is copied until EOF and then half-closed on the other
//! side, so a request whose answer comes after the client's FIN works, and
//! the connection ends when both directions have; when one side fails the
//! other is closed and the reason logged (`-v`). TCP to TCP on Linux moves
//! bytes with splice(2) ([`crate::splice`]); everything else, and everything
//! inspected with `--hex`, goes through the copy loop ([`crate::copy`]).
//!
//! TLS sides are TCP with TLS on top: a `tls-listen:` FROM runs the
//! server handshake on each accepted client before TO is opened, a
//! `tls://` TO the client handshake after connecting ([`crate::tls`], with
//! relay's flags in [`tls`]); their streams are never spliced (the kernel
//! sees only ciphertext), so they take the copy loop.
//!
//! Sides are opened as [`Io`] streams: a socket, or a boxed stream for
//! programs and stdio, so another kind of stream is one more arm of
//! [`open`] and of the listener match in [`run`].

mod io;
mod proxy;
mod tls;
mod udp;

use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Args;
use tokio::io::AsyncWriteExt;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::acl::Acl;
use crate::cli::{FamilyArgs, LimitArgs};
use crate::copy::{self, Activity, CopyError, DumpSink, HexDump, Tap};
use crate::endpoint::{Endpoint, Side};
use crate::error::{Error, Result, printable};
use crate::net::{Listener, Peer, Reset, Resolve, Stream, bind, dial};
use crate::services::Proto;
use crate::tls::{Acceptor, Connector};
pub use io::Io;
pub use proxy::ProxyCommandArgs;
pub use tls::RelayTlsArgs;

/// Pending connections the kernel queues on a listening FROM.
const LISTEN_BACKLOG: u32 = 1024;

/// Descriptors one relayed connection may hold: two sockets, and a pipe
/// (two descriptors) per direction when spliced.
const FDS_PER_CONN: u64 = 6;

const AFTER_HELP: &str = "\
Endpoints: tcp-listen:[ADDR:]PORT  udp-listen:[ADDR:]PORT  unix-listen:PATH
           tls-listen:[ADDR:]PORT (--cert/--key, or self-signed)
           tcp://HOST:PORT or HOST:PORT  udp://HOST:PORT  unix:PATH
           tls://HOST:PORT (verified; --ca, --pin, --insecure, --client-cert)
           stdio or -  exec:COMMAND (no shell)  sh:COMMAND (/bin/sh -c)
A listening FROM binds 127.0.0.1 unless ADDR is given and serves many clients at
once, each with its own connection to TO (stdio as TO: one client). udp-listen:
relays to udp:// only, one session per client address.

Examples:
  netsmith relay tcp-listen:8080 example.org:80
  netsmith relay tcp-listen:2222 unix:/run/app.sock
  netsmith relay tcp-listen:7000 'exec:wc -c'
  netsmith relay tls-listen:8443 127.0.0.1:80
  netsmith relay tcp-listen:8080 tls://example.org:443
  netsmith relay --hex tcp-listen:8080 127.0.0.1:80";

/// Arguments of `netsmith relay`.
#[derive(Debug, Args)]
#[command(after_help = AFTER_HELP)]
pub struct RelayArgs {
    /// Where clients come from (or the one side opened first).
    #[arg(value_name = "FROM")]
    pub from: String,
    /// Where each client is relayed to.
    #[arg(value_name = "TO")]
    pub to: String,
    #[command(flatten)]
    pub limits: LimitArgs,
    #[command(flatten)]
    pub family: FamilyArgs,
    #[command(flatten)]
    pub tls: RelayTlsArgs,
    /// Give up connecting to TO after DUR (the client is then closed).
    #[arg(short = 'w', long = "timeout", value_name = "DUR", value_parser = crate::cli::timeout, default_value = "10s")]
    pub timeout: Duration,
    /// Hexdump both directions with timestamps and the connection (on stderr).
    #[arg(long)]
    pub hex: bool,
    /// Write the --hex dump to FILE instead of stderr (implies --hex).
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// Copy through user space even where splice(2) applies (for comparison).
    #[arg(long)]
    pub no_splice: bool,
    #[command(flatten)]
    pub proxy: crate::proxy::ProxyArgs,
    #[command(flatten)]
    pub destinations: DestinationArgs,
    /// Credentials every client of a `proxy:` TO must present: set by
    /// `netsmith proxy --proxy-auth` (relay's own `--proxy-auth` is for the
    /// upstream `--proxy`).
    #[arg(skip)]
    pub server_credentials: Option<String>,
}

/// Where a `proxy:` TO may connect (`netsmith proxy`, `relay ... proxy:`).
#[derive(Debug, Clone, Default, Args)]
pub struct DestinationArgs {
    /// proxy: only: let clients reach only these targets: CIDR, PORTS or
    /// CIDR:PORTS (repeatable). Loopback and link-local targets of a
    /// proxy that listens beyond loopback need this.
    #[arg(long, value_name = "RULE", value_parser = crate::proxy::server::Rule::parse)]
    pub to_allow: Vec<crate::proxy::server::Rule>,
    /// proxy: only: never let clients reach these targets (repeatable;
    /// wins over --to-allow).
    #[arg(long, value_name = "RULE", value_parser = crate::proxy::server::Rule::parse)]
    pub to_deny: Vec<crate::proxy::server::Rule>,
}

impl RelayArgs {
    /// Whether the relay may serve many clients (and wants several threads).
    pub fn serves_many(&self) -> bool {
        Side::parse(&self.from).is_ok_and(|s| s.listens())
    }
}

/// A validated `relay` command.
#[derive(Debug)]
pub struct RelayConfig {
    pub from: Side,
    pub to: Side,
    pub resolve: Resolve,
    /// `--max-conns`, or `None` for what the descriptor limit allows.
    pub max_conns: Option<usize>,
    pub idle: Duration,
    pub acl: Acl,
    /// How long a connection to TO may take.
    pub timeout: Duration,
    /// Where `--hex` dumps go, if anywhere.
    pub hex: Option<DumpSink>,
    /// Whether TCP to TCP may use splice(2).
    pub splice: bool,
    /// The server handshake of a `tls-listen:` FROM.
    pub acceptor: Option<Acceptor>,
    /// The client handshake of a `tls://` side.
    pub connector: Option<Connector>,
    /// `--allow-truncation`: a TLS side's close without `close_notify` is
    /// its end (else an error that ends the connection).
    pub allow_truncation: bool,
    /// `--proxy`: TCP and `tls://` sides that connect go through it.
    pub proxy: Option<crate::proxy::Proxy>,
    /// Who may use a `proxy:` TO, and to reach what.
    pub policy: crate::proxy::server::Policy,
    pub quiet: bool,
}

impl RelayConfig {
    /// Validates `a`; `quiet` suppresses the "listening on" line.
    pub fn new(a: &RelayArgs, quiet: bool) -> Result<Self> {
        let from = Side::parse(&a.from)?;
        let to = Side::parse(&a.to)?;
        check_pair(&from, &to)?;
        // A program that cannot run is refused now, not at every client.
        for side in [&from, &to] {
            if let Some(program) = side.program() {
                program.check().map_err(|e| in_side(e, side))?;
            }
        }
        let acceptor = match &from {
            Side::TlsListen(endpoint) => a.tls.acceptor(true, &endpoint_host(endpoint), quiet)?,
            _ => a.tls.acceptor(false, "", quiet)?,
        };
        let connects = [&from, &to]
            .iter()
            .any(|s| matches!(s, Side::TlsConnect(_)));
        let connector = a.tls.connector(connects)?;
        a.tls
            .check_alpn(acceptor.is_some() || connector.is_some())?;
        let hex = match &a.log {
            Some(path) => {
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|e| Error::Local {
                        what: format!("cannot open log file {}", path.display()),
                        reason: crate::error::describe_io(&e),
                    })?;
                Some(DumpSink::File(Arc::new(Mutex::new(file))))
            }
            None => a.hex.then_some(DumpSink::Stderr),
        };
        let proxy = a.proxy.proxy()?;
        let through_proxy = |s: &&Side| {
            matches!(
                s,
                Side::TlsConnect(_)
                    | Side::Connect(Endpoint::Inet {
                        proto: crate::services::Proto::Tcp,
                        ..
                    })
            )
        };
        if let Some(p) = &proxy
            && ![&from, &to].iter().any(through_proxy)
        {
            return Err(Error::usage(format!(
                "the proxy {p} carries TCP: no side of this relay connects over TCP \
                 (HOST:PORT, tcp://, tls://)"
            )));
        }
        let policy = proxy_policy(&from, &to, a)?;
        Ok(RelayConfig {
            from,
            to,
            resolve: a.family.resolve(),
            max_conns: a.limits.access.max_conns.map(|n| n as usize),
            idle: a.limits.idle_timeout,
            acl: a.limits.access.acl()?,
            timeout: a.timeout,
            hex,
            splice: !a.no_splice,
            acceptor,
            connector,
            allow_truncation: a.tls.allow_truncation,
            proxy,
            policy,
            quiet,
        })
    }
}

/// The destination policy of a `proxy:` TO. A proxy that listens beyond
/// loopback is an open proxy unless clients must log in or are limited:
/// it refuses to start without `--proxy-auth` (`netsmith proxy`) or
/// `--allow`, and keeps clients off loopback and link-local targets
/// unless `--to-allow` names them.
fn proxy_policy(from: &Side, to: &Side, a: &RelayArgs) -> Result<crate::proxy::server::Policy> {
    let d = &a.destinations;
    if *to != Side::Proxy {
        if !d.to_allow.is_empty() || !d.to_deny.is_empty() {
            return Err(Error::usage(
                "--to-allow and --to-deny apply to a proxy (netsmith proxy, or relay's TO proxy:)",
            ));
        }
        return Ok(crate::proxy::server::Policy::default());
    }
    let (Side::Listen(Endpoint::Inet { host, proto, .. })
    | Side::TlsListen(Endpoint::Inet { host, proto, .. })) = from
    else {
        if let Side::Listen(Endpoint::Unix { .. }) = from {
            return Ok(crate::proxy::server::Policy {
                allow: d.to_allow.clone(),
                deny: d.to_deny.clone(),
                ..Default::default()
            });
        }
        return Err(Error::usage(format!(
            "TO proxy: needs a listening FROM (tcp-listen:, tls-listen:, unix-listen:), not \"{from}\""
        )));
    };
    if *proto != Proto::Tcp {
        return Err(Error::usage(
            "a proxy listens on TCP: use tcp-listen:[ADDR:]PORT",
        ));
    }
    let beyond = match host {
        crate::endpoint::Host::Ip(ip) => !crate::net::is_loopback(*ip),
        crate::endpoint::Host::Name(name) => name != "localhost",
    };
    let credentials = a
        .server_credentials
        .as_deref()
        .map(|c| {
            c.split_once(':')
                .map(|(u, p)| (u.to_string(), p.to_string()))
                .ok_or_else(|| Error::usage("invalid --proxy-auth: write USER:PASS"))
        })
        .transpose()?;
    let limited = !a.limits.access.allow.is_empty() || !a.limits.access.allowfile.is_empty();
    if beyond && credentials.is_none() && !limited {
        return Err(Error::usage(format!(
            "refusing to run an open proxy on {host}: anyone who reaches it could use it; \
             give --proxy-auth USER:PASS or --allow CIDR (--allowfile FILE), or listen on 127.0.0.1"
        )));
    }
    Ok(crate::proxy::server::Policy {
        credentials,
        allow: d.to_allow.clone(),
        deny: d.to_deny.clone(),
        guard_local: beyond,
    })
}

/// An error about `side`'s program, naming the side as the user wrote it.
fn in_side(e: Error, side: &Side) -> Error {
    match e {
        Error::Local { what, reason } => Error::Local {
            what: format!("\"{side}\": {what}"),
            reason,
        },
        other => other,
    }
}

/// The host of an endpoint, for a self-signed certificate's names.
fn endpoint_host(endpoint: &Endpoint) -> String {
    match endpoint {
        Endpoint::Inet { host, .. } => host.to_string(),
        Endpoint::Unix { .. } => String::new(),
    }
}

/// Refuses the pairs a relay cannot join, naming both sides.
fn check_pair(from: &Side, to: &Side) -> Result<()> {
    let udp = |s: &Side| {
        matches!(
            s,
            Side::Listen(Endpoint::Inet {
                proto: Proto::Udp,
                ..
            }) | Side::Connect(Endpoint::Inet {
                proto: Proto::Udp,
                ..
            })
        )
    };
    for side in [from, to] {
        if let Side::Connect(Endpoint::Unix { datagram: true, .. }) = side {
            return Err(Error::usage(format!(
                "\"{side}\": relay joins Unix stream sockets only; use unix:PATH"
            )));
        }
    }
    if to.listens() {
        return Err(Error::usage(format!(
            "TO \"{to}\" listens: the listening side goes first, as FROM (relay FROM TO)"
        )));
    }
    if *from == Side::Stdio && *to == Side::Stdio {
        return Err(Error::usage(
            "FROM and TO are both stdio: one of them must be another endpoint",
        ));
    }
    match (udp(from), udp(to)) {
        (false, false) => Ok(()),
        (true, true) if from.listens() => Ok(()),
        _ => Err(Error::usage(format!(
            "\"{from}\" to \"{to}\": a UDP relay goes from udp-listen:[ADDR:]PORT to udp://HOST:PORT"
        ))),
    }
}

/// Runs the relay: until interrupted for a listening FROM, else until its
/// one connection ends.
pub async fn run(cfg: RelayConfig) -> Result<()> {
    let cfg = Arc::new(cfg);
    // However the relay ends (Ctrl-C and SIGTERM drop this future), the
    // programs it started end with it.
    let _programs = crate::exec::Programs;
    let (Side::Listen(endpoint) | Side::TlsListen(endpoint)) = &cfg.from else {
        let a = open(&cfg.from, &cfg, None).await?;
        let b = open(&cfg.to, &cfg, None).await?;
        let label = cfg.from.to_string();
        let (up, down) = stdio_outcome(join(a, b, &cfg, &label).await)?;
        tracing::info!("done: {up} bytes to {}, {down} bytes back", cfg.to);
        return Ok(());
    };
    let (max, fd_limit) = crate::server::max_conns(cfg.max_conns, FDS_PER_CONN);
    tracing::info!("descriptor limit {fd_limit}, relaying at most {max} connections at once");
    match endpoint {
        Endpoint::Inet { proto, host, port } => {
            let addr = crate::listen::bind_addr(&cfg.resolve, host, *port).await?;
            if *proto == Proto::Udp {
                let socket = bind::udp(addr)?;
                // Ready to count drops before clients are told to send.
                crate::datagram::enlarge_receive_queue(&socket);
                crate::datagram::count_drops(&socket);
                let local = socket.local_addr().unwrap_or(addr);
                announce(&cfg, &format!("udp://{local}"));
                crate::net::warn_if_exposed(&format!("udp://{local}"), local.ip());
                let Side::Connect(target) = &cfg.to else {
                    return Err(Error::usage("udp-listen: relays to udp://HOST:PORT only"));
                };
                return udp::serve(socket, target.clone(), cfg.clone(), max).await;
            }
            let listener = bind::tcp(addr, LISTEN_BACKLOG)?;
            let local = listener.local_addr().unwrap_or(addr);
            announce(&cfg, &local.to_string());
            crate::net::warn_if_exposed(&local.to_string(), local.ip());
            serve(&listener, &cfg, max).await
        }
        Endpoint::Unix { path, .. } => {
            let (listener, _file) = bind::unix(path, LISTEN_BACKLOG)?;
            announce(&cfg, &format!("unix:{}", path.display()));
            serve(&listener, &cfg, max).await
        }
    }
}

/// The "listening on" line, and for a program as TO, who may now run it.
fn announce(cfg: &RelayConfig, local: &str) {
    if !cfg.quiet {
        eprintln!("listening on {}", printable(local));
    }
    if let Some(program) = cfg.to.program() {
        eprintln!(
            "{}",
            crate::exec::warning(local, &program, &cfg.to.to_string())
        );
    }
}

/// Accepts clients and relays each to a new connection to TO. With stdio
/// as TO there is one stdin and one stdout, so one client, then the end.
async fn serve(listener: &Listener, cfg: &Arc<RelayConfig>, max: usize) -> Result<()> {
    let next_id = Arc::new(AtomicU64::new(1));
    if cfg.to == Side::Stdio {
        let (stream, peer) = crate::server::accept_admitted(listener, &cfg.acl).await?;
        let stream = terminate(cfg, stream, &peer).await?;
        let env = crate::exec::Env::of(&stream);
        let to = open(&cfg.to, cfg, Some(&env)).await?;
        return stdio_outcome(join(Io::Net(stream), to, cfg, &format!("#1 {peer}")).await)
            .map(|_| ());
    }
    let limit = Arc::new(Semaphore::new(max));
    let (tracker, forever) = (TaskTracker::new(), CancellationToken::new());
    crate::server::accept_loop(listener, limit, &tracker, &forever, |stream, peer| {
        if !crate::server::admitted(&cfg.acl, &stream, &peer) {
            return None;
        }
        let id = next_id.fetch_add(1, Ordering::Relaxed);
        Some(client(stream, peer, id, cfg.clone()))
    })
    .await;
    Ok(())
}

/// The server handshake on an accepted client of a `tls-listen:` FROM
/// (the stream as it is otherwise).
async fn terminate(cfg: &RelayConfig, stream: Stream, peer: &Peer) -> Result<Stream> {
    match &cfg.acceptor {
        Some(acceptor) => acceptor.accept(stream, &peer.to_string()).await,
        None => Ok(stream),
    }
}

/// Relays one accepted client: completes its TLS handshake (`tls-listen:`),
/// opens TO for it and joins the two. A failed handshake or a TO that
/// cannot be opened closes the client; the relay goes on.
async fn client(stream: Stream, peer: Peer, id: u64, cfg: Arc<RelayConfig>) {
    tracing::info!("#{id} connection from {peer}");
    let stream = match terminate(&cfg, stream, &peer).await {
        Ok(stream) => stream,
        Err(e) => {
            tracing::warn!("#{id} {peer}: {e}; client closed");
            return;
        }
    };
    let mut stream = stream;
    let opened = if cfg.to == Side::Proxy {
        let label = format!("#{id} {peer}");
        crate::proxy::server::accept(&mut stream, &cfg.policy, &cfg.resolve, cfg.timeout, &label)
            .await
            .map(Io::Net)
    } else {
        let env = crate::exec::Env::of(&stream);
        open(&cfg.to, &cfg, Some(&env)).await
    };
    let to = match opened {
        Ok(to) => to,
        Err(e) => {
            tracing::warn!("#{id} {peer}: {e}; client closed");
            return;
        }
    };
    match join(Io::Net(stream), to, &cfg, &format!("#{id} {peer}")).await {
        Ok((up, down)) => {
            let to = match &cfg.to {
                Side::Proxy => "its target".to_string(),
                to => to.to_string(),
            };
            tracing::info!("#{id} closed: {up} bytes to {to}, {down} bytes back");
        }
        Err(e) => tracing::info!("#{id} ended: {e}; both sides closed"),
    }
}

/// Opens a side that is not a listener: connects, or starts a program
/// (with `env`, ncat's variables for the client it serves, if any).
async fn open(side: &Side, cfg: &RelayConfig, env: Option<&crate::exec::Env>) -> Result<Io> {
    match side {
        Side::Connect(
            target @ Endpoint::Inet {
                proto: Proto::Tcp,
                host,
                port,
            },
        ) => dial_tcp(target, host, *port, cfg).await.map(Io::Net),
        Side::TlsConnect(
            target @ Endpoint::Inet {
                proto: Proto::Tcp,
                host,
                port,
            },
        ) => {
            let Some(connector) = &cfg.connector else {
                return Err(Error::usage(format!(
                    "\"{side}\": no TLS client was set up"
                )));
            };
            let stream = dial_tcp(target, host, *port, cfg).await?;
            let peer = side.to_string();
            // The handshake is bounded by -w as the connection is.
            tokio::time::timeout(cfg.timeout, connector.connect(host, stream, &peer))
                .await
                .map_err(|_| Error::Network {
                    what: format!("TLS handshake with {peer}"),
                    reason: format!("no handshake within {}", crate::duration::show(cfg.timeout)),
                })?
                .map(Io::Net)
        }
        Side::Connect(Endpoint::Unix {
            path,
            datagram: false,
        }) => dial::unix(path).await.map(Io::Net),
        Side::Exec(_) | Side::Shell(_) => match side.program() {
            Some(program) => io::program(&program, env),
            None => Err(Error::usage(format!("\"{side}\" names no program"))),
        },
        Side::Stdio => Ok(io::stdio()),
        Side::Listen(_)
        | Side::Connect(_)
        | Side::TlsListen(_)
        | Side::TlsConnect(_)
        | Side::Proxy => Err(Error::usage(format!(
            "\"{side}\" cannot be opened as one stream"
        ))),
    }
}

/// Connects to a TCP `target` within `-w`, Nagle off.
async fn dial_tcp(
    target: &Endpoint,
    host: &crate::endpoint::Host,
    port: u16,
    cfg: &RelayConfig,
) -> Result<Stream> {
    let stream = if let Some(proxy) = &cfg.proxy {
        crate::proxy::connect(proxy, &cfg.resolve, (host, port), None, cfg.timeout).await?
    } else {
        let addrs = cfg.resolve.addrs(host, port).await?;
        dial::tcp(&target.to_string(), &addrs, None, cfg.timeout).await?
    };
    // Relayed round trips must not wait for Nagle's delayed ACKs.
    let _ = stream.set_nodelay(true);
    Ok(Stream::Tcp(stream))
}

/// Joins `a` (the client, or FROM) and `b` (TO) until both directions
/// have ended; returns the bytes moved each way. `label` names the
/// connection in dumps.
async fn join(a: Io, b: Io, cfg: &RelayConfig, label: &str) -> Result<(u64, u64)> {
    if let Io::Net(Stream::Tcp(client)) = &a {
        let _ = client.set_nodelay(true);
    }
    let activity = Arc::new(Activity::default());
    let (from, to) = (cfg.from.to_string(), cfg.to.to_string());
    #[cfg(target_os = "linux")]
    if cfg.splice
        && cfg.hex.is_none()
        && let (Io::Net(Stream::Tcp(x)), Io::Net(Stream::Tcp(y))) = (&a, &b)
    {
        let tap = Tap::new(false, None, Some(activity.clone()));
        let fwd = crate::splice::pump(x, y, &tap);
        let back = crate::splice::pump(y, x, &tap);
        // Both sockets outlive the pumps here: no second descriptor needed.
        let reset = || {
            for s in [x, y] {
                let _ = socket2::SockRef::from(s).set_linger(Some(Duration::ZERO));
            }
        };
        return finish(fwd, back, &activity, cfg.idle, &reset, (&from, &to)).await;
    }
    // The streams move into the copy loops: keep a descriptor of each TCP
    // socket to reset it with.
    let resets: Vec<Reset> = [&a, &b]
        .into_iter()
        .filter_map(|io| match io {
            Io::Net(stream) => stream.reset_handle(),
            Io::Boxed(_) => None,
        })
        .collect();
    let reset = || resets.iter().for_each(Reset::reset);
    let (a_rd, mut a_wr) = tokio::io::split(a.boxed());
    let (b_rd, mut b_wr) = tokio::io::split(b.boxed());
    let allow = cfg.allow_truncation;
    let mut a_rd = crate::tls::TruncationAsEof::new(a_rd, allow, &from);
    let mut b_rd = crate::tls::TruncationAsEof::new(b_rd, allow, &to);
    let dump = |direction| {
        cfg.hex
            .as_ref()
            .map(|sink| HexDump::new(direction, Some(label.to_string())).timestamped(sink.clone()))
    };
    let mut fwd_tap = Tap::new(false, dump('>'), Some(activity.clone()));
    let mut back_tap = Tap::new(false, dump('<'), Some(activity.clone()));
    let fwd = async {
        let n = copy::pump(&mut a_rd, &mut b_wr, &mut fwd_tap).await?;
        b_wr.shutdown().await.map_err(CopyError::Write)?;
        Ok(n)
    };
    let back = async {
        let n = copy::pump(&mut b_rd, &mut a_wr, &mut back_tap).await?;
        a_wr.shutdown().await.map_err(CopyError::Write)?;
        Ok(n)
    };
    finish(fwd, back, &activity, cfg.idle, &reset, (&from, &to)).await
}

/// Waits for both directions; the first failure, or `idle` without a byte
/// either way, ends both (the caller drops, and so closes, both sides). A
/// failure resets the TCP sides (`reset`): a side that was cut (a reset,
/// a TLS stream without `close_notify`) must not reach the other as a
/// clean end of stream.
async fn finish<F, B>(
    fwd: F,
    back: B,
    activity: &Activity,
    idle: Duration,
    reset: &(dyn Fn() + Sync),
    (from, to): (&str, &str),
) -> Result<(u64, u64)>
where
    F: Future<Output = std::result::Result<u64, CopyError>>,
    B: Future<Output = std::result::Result<u64, CopyError>>,
{
    tokio::pin!(fwd, back);
    let (mut up, mut down) = (None, None);
    loop {
        tokio::select! {
            r = &mut fwd, if up.is_none() => up = Some(r.map_err(|e| failure(e, from, to, reset))?),
            r = &mut back, if down.is_none() => down = Some(r.map_err(|e| failure(e, to, from, reset))?),
            () = activity.idle_for(idle) => {
                return Err(Error::Network {
                    what: format!("relay {from} to {to}"),
                    reason: format!(
                        "idle for {}, closed (--idle-timeout)",
                        crate::duration::show(idle)
                    ),
                });
            }
        }
        if let (Some(up), Some(down)) = (up, down) {
            return Ok((up, down));
        }
    }
}

/// A relay with stdio as a side ends as `connect` does when stdout fails:
/// quietly when its reader left (`| head`, EPIPE), else with "write to
/// stdout: REASON" (exit 1), not as a network failure.
fn stdio_outcome<T: Default>(result: Result<T>) -> Result<T> {
    match (result, crate::stdio::failure()) {
        (Err(_), Some(e)) if crate::stdio::reader_left(&e) => {
            tracing::info!("stdout closed, ending");
            Ok(T::default())
        }
        (Err(_), Some(e)) => Err(Error::stdout(&e)),
        (result, _) => result,
    }
}

/// Names the side that failed: a read fails on the source, a write on the
/// destination; and has both sides reset when they close.
fn failure(e: CopyError, src: &str, dst: &str, reset: &(dyn Fn() + Sync)) -> Error {
    reset();
    match e {
        CopyError::Read(e) => Error::io(format!("read from {src}"), &e),
        CopyError::Write(e) => Error::io(format!("write to {dst}"), &e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(from: &str, to: &str) -> Result<()> {
        check_pair(&Side::parse(from)?, &Side::parse(to)?)
    }

    #[test]
    fn pairs_a_relay_can_join() {
        for (from, to) in [
            ("tcp-listen:0", "127.0.0.1:1"),
            ("tcp-listen:0", "unix:/s"),
            ("unix-listen:/s", "exec:cat"),
            ("udp-listen:0", "udp://127.0.0.1:1"),
            ("stdio", "127.0.0.1:1"),
            ("exec:cat", "127.0.0.1:1"),
            ("tcp-listen:0", "-"),
        ] {
            assert!(pair(from, to).is_ok(), "{from} {to}");
        }
    }

    #[test]
    fn pairs_a_relay_refuses_say_why() {
        for (from, to, words) in [
            ("127.0.0.1:1", "tcp-listen:0", "goes first"),
            ("udp-listen:0", "127.0.0.1:1", "UDP relay"),
            ("tcp-listen:0", "udp://127.0.0.1:1", "UDP relay"),
            ("udp://127.0.0.1:1", "udp://127.0.0.1:2", "UDP relay"),
            ("stdio", "-", "both stdio"),
            ("tcp-listen:0", "unixgram:/s", "stream sockets only"),
        ] {
            let err = pair(from, to).unwrap_err().to_string();
            assert!(err.contains(words), "{from} {to}: {err}");
        }
    }
}
