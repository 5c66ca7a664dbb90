//! `netsmith listen`: the tutorials' servers, and nc's `-l`.
//!
//! Binds 127.0.0.1 unless told otherwise and prints the bound address on
//! stderr ("listening on 127.0.0.1:41234"), so port 0 is usable from
//! scripts. One client is piped to stdin/stdout with the session policy of
//! [`crate::session`]; `-k` keeps accepting, writes what every client sends
//! to stdout and sends stdin to every client (ncat's `-k`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use clap::Args;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::cli::{ExecArgs, FamilyArgs, SessionArgs};
use crate::connect::{chunks, input};
use crate::datagram;
use crate::endpoint::{self, Endpoint, Host, PortZero};
use crate::error::{Error, Result};
use crate::exec::Program;
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
    /// With -k, the most clients served at once; others wait in the backlog.
    #[arg(long, value_name = "N", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_conns: u32,
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
    pub max_conns: usize,
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
        if a.exec.given() && datagrams && a.peers != datagram::Peers::First {
            return Err(Error::usage(
                "--peers is for stdin and stdout: with --exec each sender has its own program \
                 (-k: many senders at once)",
            ));
        }
        // A program that cannot run is refused now, before listening.
        let program = a.exec.program()?;
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
            keep_open: a.keep_open,
            max_conns: a.max_conns as usize,
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
            crate::exec::datagrams(socket, program, cfg.keep_open, cfg.max_conns, idle).await
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
    if !cfg.quiet {
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

/// Serves stream clients: one, or many with `-k`.
async fn streams(cfg: &ListenConfig, listener: Listener, stdout: &Stdout) -> Result<()> {
    if let Some((program, _)) = &cfg.program {
        // However listen ends (Ctrl-C, SIGTERM), no program outlives it.
        let _programs = crate::exec::Programs;
        return programs(cfg, listener, program).await;
    }
    if cfg.keep_open {
        let fanout = Fanout::start(&cfg.args);
        let mut opts = cfg.args.options();
        opts.label_hex = true;
        opts.allow_truncation = cfg.allow_truncation;
        let opts = Arc::new(opts);
        let limit = Arc::new(tokio::sync::Semaphore::new(cfg.max_conns));
        // Cancelled when stdout fails: with no stdout (`| head`) there is
        // nothing left to listen for.
        let (tracker, stop) = (TaskTracker::new(), CancellationToken::new());
        let watcher = stop.clone();
        tokio::spawn(async move {
            // A failure other than EPIPE is reported by `crate::run`.
            let _ = stdio::ended().await;
            watcher.cancel();
        });
        crate::server::accept_loop(&listener, limit, &tracker, &stop, |stream, peer| {
            let peer = peer.to_string();
            let (input, dropped) = fanout.subscribe(&peer);
            let out = stdout.clone();
            let opts = opts.clone();
            let tls = cfg.tls.clone();
            Some(async move {
                tracing::info!("connection from {peer}");
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
    let limit = Arc::new(tokio::sync::Semaphore::new(cfg.max_conns));
    let (tracker, forever) = (TaskTracker::new(), CancellationToken::new());
    crate::server::accept_loop(&listener, limit, &tracker, &forever, |stream, peer| {
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
    let accepted = match cfg.timeout {
        Some(limit) => tokio::time::timeout(limit, listener.accept())
            .await
            .map_err(|_| {
                Error::Silence(format!(
                    "no connection within {}",
                    crate::duration::show(limit)
                ))
            })?,
        None => listener.accept().await,
    };
    let (stream, peer) = accepted.map_err(|e| Error::io("accept a connection", &e))?;
    // Like nc: one client, so stop listening; later clients are refused.
    drop(listener);
    tracing::info!("connection from {peer}");
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

/// Sends stdin to every connected client (`listen -k`). Each client gets
/// its own bounded queue ([`CLIENT_QUEUE`] chunks) and every chunk is
/// delivered to every client connected when it was read: a slow client
/// slows stdin down, for at most [`CLIENT_STALL`]. A client whose queue
/// stays full that long (it does not read) is dropped, and said on stderr,
/// so that one client cannot stop stdin for all; the others miss nothing.
/// At stdin EOF every client's write side is shut down, and later clients
/// get EOF at once.
struct Fanout {
    /// `None` once stdin has ended.
    clients: Arc<Mutex<Option<Vec<Client>>>>,
    /// `--send TEXT`: each client gets the text instead of stdin.
    text: Option<String>,
    /// Whether stdin is read at all (not with `--recv-only`).
    reads_stdin: bool,
}

/// One client's queue of stdin chunks, and the token that drops it.
#[derive(Clone)]
struct Client {
    tx: mpsc::Sender<std::io::Result<Bytes>>,
    /// Cancelled when the client falls behind: its session ends.
    dropped: CancellationToken,
    peer: String,
}

/// Chunks queued for one client before stdin waits for it.
const CLIENT_QUEUE: usize = 16;

/// How long stdin waits for a client whose queue is full before dropping
/// it: long enough for a live client on a slow path to take one more
/// chunk (the queue and the socket buffers hold over a megabyte), short
/// enough that the other clients are not kept waiting for long.
pub const CLIENT_STALL: Duration = Duration::from_secs(5);

impl Fanout {
    fn start(args: &SessionArgs) -> Fanout {
        let clients: Arc<Mutex<Option<Vec<Client>>>> = Arc::new(Mutex::new(Some(Vec::new())));
        if args.reads_stdin() {
            let mut rx = stdio::stdin_chunks();
            let shared = clients.clone();
            tokio::spawn(async move {
                while let Some(chunk) = rx.recv().await {
                    let Ok(bytes) = chunk else { break };
                    let targets = shared
                        .lock()
                        .map(|g| g.clone().unwrap_or_default())
                        .unwrap_or_default();
                    deliver(&targets, &bytes).await;
                    if let Ok(mut guard) = shared.lock()
                        && let Some(list) = guard.as_mut()
                    {
                        list.retain(Client::live);
                    }
                }
                if let Ok(mut guard) = shared.lock() {
                    *guard = None;
                }
            });
        }
        Fanout {
            clients,
            text: args.send.clone(),
            reads_stdin: args.reads_stdin(),
        }
    }

    /// The input of a new client's session, and the token cancelled if
    /// the client is dropped for falling behind.
    fn subscribe(&self, peer: &str) -> (Input, CancellationToken) {
        let dropped = CancellationToken::new();
        if let Some(text) = &self.text {
            return (
                Box::new(std::io::Cursor::new(text.clone().into_bytes())),
                dropped,
            );
        }
        if !self.reads_stdin {
            // --recv-only: nothing to send, nothing to keep per client.
            return (Box::new(tokio::io::empty()), dropped);
        }
        let (tx, rx) = mpsc::channel(CLIENT_QUEUE);
        if let Ok(mut guard) = self.clients.lock()
            && let Some(list) = guard.as_mut()
        {
            // Clients that left are dropped here too, not only when stdin
            // next delivers: an idle stdin must not make the list grow.
            list.retain(Client::live);
            list.push(Client {
                tx,
                dropped: dropped.clone(),
                peer: peer.to_string(),
            });
        }
        (Box::new(stdio::reader(rx)), dropped)
    }
}

impl Client {
    /// Still connected and not dropped.
    fn live(&self) -> bool {
        !self.tx.is_closed() && !self.dropped.is_cancelled()
    }
}

/// Queues `bytes` for every client: at once where there is room, else
/// waiting for room until [`CLIENT_STALL`] has passed (one deadline for
/// all, so several stalled clients cost one stall); a client still full
/// then is dropped.
async fn deliver(targets: &[Client], bytes: &Bytes) {
    use tokio::sync::mpsc::error::TrySendError;
    let mut full = Vec::new();
    for client in targets.iter().filter(|c| c.live()) {
        match client.tx.try_send(Ok(bytes.clone())) {
            Ok(()) | Err(TrySendError::Closed(_)) => {}
            Err(TrySendError::Full(item)) => full.push((client, item)),
        }
    }
    let deadline = tokio::time::Instant::now() + CLIENT_STALL;
    for (client, item) in full {
        if tokio::time::timeout_at(deadline, client.tx.send(item))
            .await
            .is_err()
        {
            tracing::warn!(
                "netsmith: {}: dropped: its queue of stdin ({} chunks) stayed full for {} \
                 (listen -k); the other clients go on",
                client.peer,
                CLIENT_QUEUE,
                crate::duration::show(CLIENT_STALL)
            );
            client.dropped.cancel();
        }
    }
}
