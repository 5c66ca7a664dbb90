//! `netsmith serve`: the classic inetd services (echo, discard, chargen,
//! qotd, daytime, time) and the 001 tutorial's greeting server (banner), in
//! one process, over TCP, UDP and Unix stream sockets.
//!
//! Hardened by default: loopback unless `--bind` says otherwise, a
//! connection limit below the descriptor limit (raised to its hard limit at
//! start), an idle timeout, `--allow`/`--deny`, and UDP that cannot be used
//! as a reflector (no answers to the services' own ports, a per-source
//! rate limit). Ctrl-C stops accepting, lets open connections finish for
//! `--grace`, and prints the totals of every service.

pub mod handlers;
pub mod proto;
pub mod stats;
pub mod udp;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::acl::Acl;
use crate::cli::{FamilyArgs, LimitArgs, duration};
use crate::endpoint::{self, PortZero};
use crate::error::{Error, Result};
use crate::net::{Listener, Peer, bind};
use crate::services::Proto;
use handlers::Ctx;
use proto::{DaytimeFormat, Service};
use stats::Stats;

/// Pending connections the kernel queues per listener.
const LISTEN_BACKLOG: u32 = 1024;

/// Arguments of `netsmith serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Services to run: echo, discard, chargen, qotd, daytime, time, banner.
    /// NAME=PORT picks the port (0: a free one); otherwise the well-known
    /// port (banner: 9999).
    #[arg(value_name = "SERVICE[=PORT]", required = true)]
    pub services: Vec<String>,
    /// The port, when one service is named.
    #[arg(long, value_name = "PORT")]
    pub port: Option<String>,
    /// TCP (alone, unless --udp or --unix is given too).
    #[arg(long)]
    pub tcp: bool,
    /// UDP (alone, unless --tcp or --unix is given too).
    #[arg(long)]
    pub udp: bool,
    /// Serve over Unix stream sockets, DIR/SERVICE.sock (alone, or with
    /// --tcp/--udp as well).
    #[arg(long, value_name = "DIR")]
    pub unix: Option<PathBuf>,
    /// Address to listen on (0.0.0.0 or :: for every interface).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1")]
    pub bind: String,
    #[command(flatten)]
    pub family: FamilyArgs,
    #[command(flatten)]
    pub limits: LimitArgs,
    /// After Ctrl-C, how long open connections may take to finish.
    #[arg(long, value_name = "DUR", value_parser = duration, default_value = "5s")]
    pub grace: Duration,
    /// Print the totals as JSON, one object per service.
    #[arg(long)]
    pub json: bool,
    /// qotd: serve the quotes of this fortune file (quotes between lines of `%`).
    #[arg(long, value_name = "FILE")]
    pub quotes: Option<PathBuf>,
    /// banner: the text to send.
    #[arg(long, value_name = "TEXT", default_value = "Thank you for connecting")]
    pub text: String,
    /// daytime: ctime (as inetd) or rfc3339.
    #[arg(long, value_name = "FORMAT", default_value = "ctime")]
    pub daytime_format: DaytimeFormat,
    /// UDP replies per second to one source address (0: no limit).
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub udp_rate: u32,
    #[command(flatten)]
    pub tls: crate::tls::ServerArgs,
}

/// A validated `serve` command.
#[derive(Debug)]
pub struct ServeConfig {
    /// Each service with its port.
    pub services: Vec<(Service, u16)>,
    pub tcp: bool,
    pub udp: bool,
    pub unix: Option<PathBuf>,
    pub bind: IpAddr,
    pub max_conns: Option<usize>,
    pub idle: Duration,
    pub acl: Acl,
    pub grace: Duration,
    pub json: bool,
    pub quotes: Arc<Vec<String>>,
    pub text: Arc<str>,
    pub daytime: DaytimeFormat,
    pub udp_rate: u32,
    pub quiet: bool,
    /// TLS on every stream connection (`--tls`; no UDP then).
    pub tls: Option<crate::tls::Acceptor>,
}

impl ServeConfig {
    /// Validates `a`; `quiet` suppresses the "listening on" lines.
    pub fn new(a: ServeArgs, quiet: bool) -> Result<Self> {
        let mut services: Vec<(Service, u16)> = Vec::new();
        for spec in &a.services {
            let (name, port) = match spec.split_once('=') {
                Some((name, port)) => (name, Some(port)),
                None => (spec.as_str(), None),
            };
            let svc: Service = name.parse().map_err(Error::Usage)?;
            if services.iter().any(|(s, _)| *s == svc) {
                return Err(Error::usage(format!("service \"{svc}\" is named twice")));
            }
            let port = match (port, &a.port) {
                (Some(p), _) => endpoint::parse_port(p, Proto::Tcp, PortZero::Allowed)?,
                (None, Some(_)) if a.services.len() > 1 => {
                    return Err(Error::usage(
                        "--port goes with one service; give several services their ports as NAME=PORT",
                    ));
                }
                (None, Some(p)) => endpoint::parse_port(p, Proto::Tcp, PortZero::Allowed)?,
                (None, None) => svc.port(),
            };
            services.push((svc, port));
        }
        let bind = match endpoint::parse_host(&a.bind)? {
            endpoint::Host::Ip(ip) => ip,
            endpoint::Host::Name(n) if n == "localhost" => IpAddr::from([127, 0, 0, 1]),
            endpoint::Host::Name(n) => {
                return Err(Error::usage(format!(
                    "--bind \"{n}\": give an address (127.0.0.1, ::1, 0.0.0.0, ::)"
                )));
            }
        };
        if !a.family.resolve().family.admits(bind) {
            return Err(Error::usage(format!(
                "--bind {bind} is not of the family -4/-6 asks for"
            )));
        }
        let quotes = match &a.quotes {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| Error::Local {
                    what: format!("cannot read quotes file {}", path.display()),
                    reason: crate::error::describe_io(&e),
                })?;
                proto::parse_quotes(&text)
                    .map_err(|e| Error::usage(format!("{}: {e}", path.display())))?
            }
            None => proto::BUILTIN_QUOTES
                .iter()
                .map(|q| format!("{q}\n"))
                .collect(),
        };
        if a.text.len() > 65_507 {
            return Err(Error::usage(
                "--text is longer than one datagram can carry (65,507 bytes)",
            ));
        }
        if a.tls.tls && a.udp {
            return Err(Error::usage(
                "TLS runs over streams: drop --udp or --tls (with --tls, services are TCP only)",
            ));
        }
        if a.tls.allow_truncation {
            return Err(Error::usage(
                "--allow-truncation is for listen and connect: serve's services already \
                 take a client's close without close_notify as its end",
            ));
        }
        let tls = a.tls.acceptor(&[bind.to_string()], quiet)?;
        Ok(ServeConfig {
            services,
            // Neither flag: TCP and UDP (TCP only with TLS), or with
            // --unix neither; each flag adds its transport.
            tcp: a.tcp || (!a.udp && a.unix.is_none()),
            udp: a.udp || (!a.tcp && a.unix.is_none() && tls.is_none()),
            unix: a.unix,
            bind,
            max_conns: a.limits.access.max_conns.map(|n| n as usize),
            idle: a.limits.idle_timeout,
            acl: a.limits.access.acl()?,
            grace: a.grace,
            json: a.json,
            quotes: Arc::new(quotes),
            text: Arc::from(a.text),
            daytime: a.daytime_format,
            udp_rate: a.udp_rate,
            quiet,
            tls,
        })
    }
}

/// One bound socket of one service.
enum Socket {
    Stream(Listener, &'static str),
    Datagram(std::net::UdpSocket),
}

/// Every bound socket, each with its service's context: a `serve` that
/// has its ports and has not begun serving. [`Bound::addresses`] says
/// where each service is (port 0 given, the kernel's choice), which is
/// how a program that starts a service in-process (the Python package's
/// `netsmith.serve`) learns its ports; [`Bound::run`] serves.
pub struct Bound {
    sockets: Vec<(Arc<Ctx>, Socket)>,
    /// One per service, shared by its transports: the totals.
    contexts: Vec<Arc<Ctx>>,
    /// Removes the Unix socket files when dropped.
    files: Vec<bind::SocketFile>,
    addresses: Vec<Address>,
    cfg: ServeConfig,
}

/// Where one service listens.
#[derive(Clone, Debug)]
pub struct Address {
    pub service: Service,
    /// "tcp", "tls", "udp" or "unix".
    pub transport: &'static str,
    /// An IP socket's address; `None` for a Unix socket.
    pub addr: Option<SocketAddr>,
    /// As "listening on" shows it: `127.0.0.1:7`, `udp://...`, `unix:PATH`.
    pub shown: String,
}

/// Binds every service on every transport asked for, printing each address.
/// Any failure (a port in use, a privileged port) ends the command before
/// anything is served. Call within a Tokio runtime.
pub fn bind(cfg: ServeConfig) -> Result<Bound> {
    let mut bound = Bound {
        sockets: Vec::new(),
        contexts: Vec::new(),
        files: Vec::new(),
        addresses: Vec::new(),
        cfg,
    };
    let cfg = &bound.cfg;
    if cfg.tcp || cfg.udp {
        // One line for every service: they all bind the same address.
        let shown = endpoint::Host::Ip(cfg.bind).to_string();
        crate::net::warn_if_exposed(&shown, cfg.bind);
    }
    for &(svc, port) in &cfg.services {
        let ctx = Arc::new(Ctx::new(
            svc,
            cfg.quotes.clone(),
            cfg.text.clone(),
            cfg.daytime,
            cfg.idle,
        ));
        bound.contexts.push(ctx.clone());
        let addr = SocketAddr::new(cfg.bind, port);
        if cfg.tcp {
            let listener = bind::tcp(addr, LISTEN_BACKLOG)?;
            let local = listener.local_addr().unwrap_or(addr);
            let transport = if cfg.tls.is_some() { "tls" } else { "tcp" };
            bound.addresses.push(announce(
                cfg,
                local.to_string(),
                svc,
                transport,
                Some(local),
            ));
            bound
                .sockets
                .push((ctx.clone(), Socket::Stream(listener, transport)));
        }
        if cfg.udp {
            let socket = bind::udp_std(addr)?;
            let local = socket.local_addr().unwrap_or(addr);
            let shown = format!("udp://{local}");
            bound
                .addresses
                .push(announce(cfg, shown, svc, "udp", Some(local)));
            bound.sockets.push((ctx.clone(), Socket::Datagram(socket)));
        }
        if let Some(dir) = &cfg.unix {
            let path = dir.join(format!("{svc}.sock"));
            let (listener, file) = bind::unix(&path, LISTEN_BACKLOG)?;
            let shown = format!("unix:{}", path.display());
            bound
                .addresses
                .push(announce(cfg, shown, svc, "unix", None));
            bound.files.push(file);
            bound.sockets.push((ctx, Socket::Stream(listener, "unix")));
        }
    }
    Ok(bound)
}

/// Binds, then runs the services until `stop` is cancelled, then drains
/// and returns the totals report.
pub async fn run(cfg: ServeConfig, stop: CancellationToken) -> Result<String> {
    bind(cfg)?.run(stop).await
}

impl Bound {
    /// Where each service listens, in the order they were bound.
    pub fn addresses(&self) -> &[Address] {
        &self.addresses
    }

    /// Runs the services until `stop` is cancelled, then drains and
    /// returns the totals report.
    pub async fn run(self, stop: CancellationToken) -> Result<String> {
        let Bound {
            sockets,
            contexts,
            files,
            cfg,
            addresses: _,
        } = self;
        let (max_conns, fd_limit) = crate::server::max_conns(cfg.max_conns, 1);
        tracing::info!(
            "descriptor limit {fd_limit}, serving at most {max_conns} connections at once"
        );

        // Ports of our own UDP sockets: two of our services (echo=7007,
        // chargen=7019) must not answer each other either.
        let own_ports: Arc<[u16]> = sockets
            .iter()
            .filter_map(|(_, s)| match s {
                Socket::Datagram(d) => d.local_addr().ok().map(|a| a.port()),
                Socket::Stream(..) => None,
            })
            .collect();
        let limit = Arc::new(Semaphore::new(max_conns));
        let connections = TaskTracker::new();
        let mut loops = tokio::task::JoinSet::new();
        for (ctx, socket) in sockets {
            let (acl, stop) = (cfg.acl.clone(), stop.clone());
            match socket {
                Socket::Stream(listener, transport) => {
                    let (limit, connections) = (limit.clone(), connections.clone());
                    let tls = cfg.tls.clone();
                    loops.spawn(async move {
                        let on = Accepting {
                            transport,
                            tls: tls.as_ref(),
                        };
                        accept(&listener, on, &ctx, &acl, limit, &connections, &stop).await;
                    });
                }
                Socket::Datagram(socket) => {
                    let policy = udp::Policy {
                        acl,
                        rate: cfg.udp_rate,
                        own_ports: own_ports.clone(),
                    };
                    loops.spawn(udp::serve(socket, ctx, policy, stop));
                }
            }
        }

        stop.cancelled().await;
        while loops.join_next().await.is_some() {}
        let open = connections.len();
        if open > 0 {
            tracing::warn!(
                "stopping: waiting up to {} for {open} open connections",
                crate::duration::show(cfg.grace)
            );
        }
        connections.close();
        tokio::select! {
            () = connections.wait() => {}
            () = tokio::time::sleep(cfg.grace) => {
                tracing::warn!("grace period over: closing {} connections", connections.len());
            }
        }
        drop(files);
        let totals: Vec<(Service, &Stats)> =
            contexts.iter().map(|c| (c.service, &c.stats)).collect();
        Ok(stats::report(&totals, cfg.json))
    }
}

/// How a listener's clients arrive: its transport's name, and TLS.
struct Accepting<'a> {
    transport: &'static str,
    tls: Option<&'a crate::tls::Acceptor>,
}

/// Serves one stream listener of one service until `stop`.
async fn accept(
    listener: &Listener,
    on: Accepting<'_>,
    ctx: &Arc<Ctx>,
    acl: &Acl,
    limit: Arc<Semaphore>,
    connections: &TaskTracker,
    stop: &CancellationToken,
) {
    let transport = on.transport;
    crate::server::accept_unregistered(listener, limit, connections, stop, |conn| {
        let peer = conn.peer().clone();
        let admitted = match &peer {
            Peer::Inet(addr) => acl.admits(addr.ip()),
            Peer::Unix(_) => true,
        };
        if !admitted {
            Stats::add(&ctx.stats.denied, 1);
            tracing::info!("refused {peer} ({}/{transport}): not allowed", ctx.service);
            conn.refuse();
            return None;
        }
        Stats::add(&ctx.stats.connections, 1);
        tracing::info!("connection from {peer} ({}/{transport})", ctx.service);
        // A one-shot answer is served here when it needs no waiting (with
        // TLS it always needs the handshake first).
        let tls = on.tls.cloned();
        let (conn, rest) = if ctx.service.is_one_shot() && tls.is_none() {
            let (conn, rest) = ctx.serve_now(conn, &peer, transport)?;
            (conn, Some(rest))
        } else {
            (conn, None)
        };
        let ctx = ctx.clone();
        Some(async move {
            let stream = match conn.into_stream() {
                Ok(stream) => stream,
                Err(e) => return ctx.failed(Err(e), &peer, transport),
            };
            let stream = match tls {
                // Boxed: the handshake's state would otherwise be part of
                // every plain connection's future, idle or not.
                Some(tls) => match Box::pin(tls.accept(stream, &peer.to_string())).await {
                    Ok(stream) => stream,
                    Err(e) => {
                        Stats::add(&ctx.stats.errors, 1);
                        return tracing::info!("{e}");
                    }
                },
                None => stream,
            };
            match rest {
                Some(rest) => ctx.serve_rest(stream, rest, &peer, transport).await,
                None => ctx.serve(stream, &peer, transport).await,
            }
        })
    })
    .await;
}

/// Says where `svc` listens (unless quiet) and returns it as an [`Address`].
fn announce(
    cfg: &ServeConfig,
    shown: String,
    service: Service,
    transport: &'static str,
    addr: Option<SocketAddr>,
) -> Address {
    if !cfg.quiet {
        eprintln!(
            "listening on {} ({service}/{transport})",
            crate::error::printable(&shown)
        );
    }
    Address {
        service,
        transport,
        addr,
        shown,
    }
}
