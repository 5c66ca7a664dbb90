//! `netsmith connect`: the client of every tutorial, and nc's client mode.
//!
//! stdin goes to the socket and the socket to stdout, with the end-of-stream
//! policy of [`crate::session`]; `-u` and `unixgram:` switch to datagrams
//! ([`crate::datagram`]).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::cli::{ExecArgs, FamilyArgs, SessionArgs, duration};
use crate::datagram::{self, ClientWait};
use crate::endpoint::{self, Endpoint, PortZero};
use crate::error::{Error, Result};
use crate::exec::Program;
use crate::net::{Datagram, Resolve, Stream, dial};
use crate::services::Proto;
use crate::session::{self, Input};
use crate::stdio::{self, Stdout};
use crate::tls::Connector;

/// How long a TCP connect may take when `-w` is not given.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Arguments of `netsmith connect`.
#[derive(Debug, Args)]
pub struct ConnectArgs {
    /// Where to connect: HOST PORT, HOST:PORT, [IPv6]:PORT, tcp://HOST:PORT,
    /// tls://HOST:PORT, udp://HOST:PORT, unix:PATH or unixgram:PATH.
    #[arg(value_name = "TARGET", required_unless_present = "unix")]
    pub target: Option<String>,
    /// The port, when TARGET is a bare host (a number or a service name).
    #[arg(value_name = "PORT")]
    pub port: Option<String>,
    /// More ports to check, with -z (nc takes several PORT words).
    #[arg(value_name = "PORTS")]
    pub more_ports: Vec<String>,
    /// Only check whether ports answer, sending nothing (nc -z): PORT may be
    /// a list or range (22,80,http,8000-8010), more PORT words may follow;
    /// -v says one line per port; -w bounds each port's wait (TCP: 10s by
    /// default). Exit 0 if any port answered, else 1. A scan: beyond
    /// loopback it needs --authorized.
    #[arg(
        short = 'z',
        long = "zero-io",
        conflicts_with_all = [
            "unix", "source", "source_port", "send", "recv_only", "send_only", "crlf",
            "hex", "idle_timeout", "quit_after_eof", "no_shutdown", "tls", "proxy", "exec",
            "sh_exec",
        ]
    )]
    pub zero: bool,
    /// With -z: affirm written permission to probe a host outside loopback.
    #[arg(long, requires = "zero")]
    pub authorized: bool,
    /// UDP instead of TCP: one datagram per chunk of stdin.
    #[arg(short = 'u', long)]
    pub udp: bool,
    /// Connect to the Unix stream socket at PATH (with -u, a datagram socket).
    #[arg(short = 'U', long, value_name = "PATH", conflicts_with = "target")]
    pub unix: Option<PathBuf>,
    #[command(flatten)]
    pub family: FamilyArgs,
    /// TCP: give up connecting after DUR (default 10s). UDP: fail if a
    /// datagram gets no reply within DUR.
    #[arg(short = 'w', long = "timeout", value_name = "DUR", value_parser = crate::cli::timeout)]
    pub timeout: Option<Duration>,
    /// UDP: after stdin ends, keep printing replies until DUR passes without one.
    #[arg(long, value_name = "DUR", value_parser = duration, default_value = "1s")]
    pub wait: Duration,
    /// Local address to connect from: ADDR, ADDR:PORT or [IPv6]:PORT.
    #[arg(short = 's', long, value_name = "ADDR[:PORT]")]
    pub source: Option<String>,
    /// Local port to connect from (nc -p).
    #[arg(short = 'p', value_name = "PORT")]
    pub source_port: Option<String>,
    #[command(flatten)]
    pub session: SessionArgs,
    #[command(flatten)]
    pub exec: ExecArgs,
    #[command(flatten)]
    pub tls: crate::tls::ClientArgs,
    #[command(flatten)]
    pub proxy: crate::proxy::ProxyArgs,
}

/// A validated `connect` command.
#[derive(Debug)]
pub struct ConnectConfig {
    pub target: Endpoint,
    pub resolve: Resolve,
    pub source: Option<SocketAddr>,
    pub connect_timeout: Duration,
    pub wait: ClientWait,
    pub args: SessionArgs,
    /// TLS on the stream (`--tls` or `tls://`).
    pub tls: Option<Connector>,
    /// `--allow-truncation`: a close without `close_notify` is an end.
    pub allow_truncation: bool,
    /// `--proxy` (or `$NETSMITH_PROXY`): the TCP connection goes through it.
    pub proxy: Option<crate::proxy::Proxy>,
    /// `--exec`/`--sh-exec`: the program joined to the connection instead
    /// of stdin and stdout.
    pub program: Option<Program>,
}

impl TryFrom<ConnectArgs> for ConnectConfig {
    type Error = Error;

    fn try_from(a: ConnectArgs) -> Result<Self> {
        if let Some(extra) = a.more_ports.first() {
            return Err(Error::usage(format!(
                "unexpected argument \"{extra}\": connect takes one HOST PORT \
                 (several ports are for -z, the port check)"
            )));
        }
        let proto = if a.udp { Proto::Udp } else { Proto::Tcp };
        let tls_scheme = a.target.as_deref().and_then(Endpoint::strip_tls);
        let tls = a.tls.connector(tls_scheme.is_some())?;
        let target_text = tls_scheme.map(str::to_string).or(a.target.clone());
        let target = match (&a.unix, &target_text, &a.port) {
            (Some(path), _, _) => Endpoint::Unix {
                path: path.clone(),
                datagram: a.udp,
            },
            (None, Some(host), Some(port)) => {
                Endpoint::from_parts(host, port, proto, PortZero::Refused)?
            }
            (None, Some(text), None) => Endpoint::parse(text, proto, PortZero::Refused)?,
            (None, None, _) => {
                return Err(Error::usage(
                    "missing target: give HOST PORT, HOST:PORT or unix:PATH",
                ));
            }
        };
        let datagrams = matches!(
            target,
            Endpoint::Inet {
                proto: Proto::Udp,
                ..
            } | Endpoint::Unix { datagram: true, .. }
        );
        if tls.is_some() && datagrams {
            return Err(Error::usage(
                "TLS runs over a stream: drop -u (or udp://, unixgram:) or --tls (or tls://)",
            ));
        }
        if a.exec.given() && datagrams {
            return Err(crate::cli::exec_needs_stream());
        }
        let program = a.exec.program()?.map(|(program, _)| program);
        let source = parse_source(a.source.as_deref(), a.source_port.as_deref(), proto)?;
        if source.is_some() && matches!(target, Endpoint::Unix { .. }) {
            return Err(Error::usage(
                "-s/-p set an IP source address and cannot be used with a Unix socket",
            ));
        }
        let proxy = a.proxy.proxy()?;
        if let Some(p) = &proxy {
            if datagrams {
                return Err(Error::usage(format!(
                    "the proxy {p} carries TCP streams: drop -u (or udp://, unixgram:) or --proxy"
                )));
            }
            if matches!(target, Endpoint::Unix { .. }) {
                return Err(Error::usage(format!(
                    "the proxy {p} reaches hosts, not Unix sockets: drop -U (or unix:) or --proxy"
                )));
            }
        }
        Ok(ConnectConfig {
            target,
            resolve: a.family.resolve(),
            source,
            connect_timeout: a.timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT),
            wait: ClientWait {
                linger: a.wait,
                reply_timeout: a.timeout,
            },
            args: a.session,
            tls,
            allow_truncation: a.tls.allow_truncation,
            proxy,
            program,
        })
    }
}

/// `-s ADDR[:PORT]` and `-p PORT` into one local address.
fn parse_source(
    addr: Option<&str>,
    port: Option<&str>,
    proto: Proto,
) -> Result<Option<SocketAddr>> {
    let port = port
        .map(|p| endpoint::parse_port(p, proto, PortZero::Allowed))
        .transpose()?;
    let Some(text) = addr else {
        return Ok(port.map(|p| SocketAddr::from(([0, 0, 0, 0], p))));
    };
    let bad = || {
        Error::usage(format!(
            "invalid source address \"{text}\": give an IP address, ADDR:PORT or [IPv6]:PORT"
        ))
    };
    let parsed = if let Ok(sa) = text.parse::<SocketAddr>() {
        sa
    } else {
        endpoint::refuse_numeric(text)?;
        let host = endpoint::parse_host(text).map_err(|_| bad())?;
        match host {
            endpoint::Host::Ip(ip) => SocketAddr::new(ip, 0),
            endpoint::Host::Name(_) => return Err(bad()),
        }
    };
    Ok(Some(match port {
        Some(p) => SocketAddr::new(parsed.ip(), p),
        None => parsed,
    }))
}

/// Runs `connect -z` (nc -z): checks each port through the scan engine
/// and says which answered in nc's words (every line with `verbose`).
pub async fn check(a: ConnectArgs, verbose: bool) -> Result<()> {
    let mut proto = if a.udp { Proto::Udp } else { Proto::Tcp };
    let Some(target) = a.target.as_deref() else {
        return Err(Error::usage(
            "missing target: give HOST PORT, such as 127.0.0.1 22",
        ));
    };
    let words: Vec<&str> = a
        .port
        .iter()
        .chain(&a.more_ports)
        .map(String::as_str)
        .collect();
    let (host, ports) = if words.is_empty() {
        // HOST:PORT (or udp://HOST:PORT) as every command takes it.
        match Endpoint::parse(target, proto, PortZero::Refused) {
            Ok(Endpoint::Inet {
                proto: p,
                host,
                port,
            }) => {
                proto = p;
                (host, vec![port])
            }
            Ok(Endpoint::Unix { .. }) => {
                return Err(Error::usage(
                    "-z checks TCP and UDP ports, not Unix sockets: give HOST PORT",
                ));
            }
            Err(_) if endpoint::parse_host(target).is_ok() => {
                return Err(Error::usage(format!(
                    "missing port for \"{target}\": -z takes HOST PORT..., each PORT a number, \
                     a service name, a range or a list (22 80, 8000-8010 or 22,80,http)"
                )));
            }
            Err(err) => return Err(err),
        }
    } else {
        let mut ports = Vec::new();
        for word in words {
            ports.extend(endpoint::parse_port_list(word, proto)?);
        }
        // In the order given, each port once.
        let mut seen = std::collections::HashSet::new();
        ports.retain(|p| seen.insert(*p));
        (endpoint::parse_host(target)?, ports)
    };
    crate::scan::check(crate::scan::Check {
        host,
        ports,
        proto,
        resolve: a.family.resolve(),
        timeout: a.timeout,
        authorized: a.authorized,
        verbose,
    })
    .await
}

/// Runs `connect` until the session ends.
pub async fn run(cfg: ConnectConfig) -> Result<()> {
    let mut out = Stdout::get();
    let target = cfg.target.to_string();
    match open(&cfg).await? {
        Opened::Stream(stream, peer) => {
            if !told_connected(&cfg.target, &peer) {
                tracing::info!("connected to {peer}");
            }
            let opts = session::Options {
                allow_truncation: cfg.allow_truncation,
                ..cfg.args.options()
            };
            if let Some(program) = &cfg.program {
                // However connect ends (Ctrl-C too), the program ends with it.
                let _programs = crate::exec::Programs;
                return crate::exec::session(stream, &peer, program, &opts)
                    .await?
                    .into_result(program);
            }
            tokio::select! {
                r = session::run(stream, &peer, input(&cfg.args), out, &opts) => r,
                r = stdio::ended() => r,
            }
        }
        Opened::Datagram(socket) => {
            // nc says "succeeded" of a UDP socket too; netsmith says nothing.
            told_connected(
                &cfg.target,
                target.strip_prefix("udp://").unwrap_or(&target),
            );
            datagram::client(
                &socket,
                &target,
                chunks(&cfg.args),
                &mut out,
                cfg.wait,
                cfg.args.hex,
            )
            .await
        }
    }
}

/// Says "connected" in a personality's words ([`crate::compat`]); false
/// when netsmith's own words are for the caller to say.
fn told_connected(target: &Endpoint, peer: &str) -> bool {
    let (host, port, proto) = match target {
        Endpoint::Inet { host, port, proto } => {
            let host = match host {
                endpoint::Host::Ip(ip) => ip.to_string(),
                endpoint::Host::Name(name) => name.clone(),
            };
            (host, *port, *proto)
        }
        Endpoint::Unix { path, .. } => (path.display().to_string(), 0, Proto::Tcp),
    };
    crate::compat::tell(&crate::compat::Event::Connected {
        host: &host,
        port,
        proto,
        peer,
    })
}

/// A socket connected to the target.
enum Opened {
    /// A stream, and the peer's address for messages.
    Stream(Stream, String),
    Datagram(Datagram),
}

async fn open_socket(cfg: &ConnectConfig) -> Result<Opened> {
    let target = cfg.target.to_string();
    if let (
        Some(proxy),
        Endpoint::Inet {
            proto: Proto::Tcp,
            host,
            port,
        },
    ) = (&cfg.proxy, &cfg.target)
    {
        let to = (host, *port);
        let stream =
            crate::proxy::connect(proxy, &cfg.resolve, to, cfg.source, cfg.connect_timeout).await?;
        return Ok(Opened::Stream(
            Stream::Tcp(stream),
            format!("{target} through {proxy}"),
        ));
    }
    Ok(match &cfg.target {
        Endpoint::Inet { proto, host, port } => {
            let addrs = cfg.resolve.addrs(host, *port).await?;
            match proto {
                Proto::Tcp => {
                    let stream =
                        dial::tcp(&target, &addrs, cfg.source, cfg.connect_timeout).await?;
                    let peer = stream.peer_addr().map_or(target, |a| a.to_string());
                    Opened::Stream(Stream::Tcp(stream), peer)
                }
                Proto::Udp => Opened::Datagram(dial::udp(&target, &addrs, cfg.source).await?),
            }
        }
        Endpoint::Unix {
            path,
            datagram: false,
        } => Opened::Stream(dial::unix(path).await?, target),
        Endpoint::Unix {
            path,
            datagram: true,
        } => Opened::Datagram(dial::unixgram(path)?),
    })
}

/// Opens the target: the socket, and for TLS the handshake on it, both
/// within the connect timeout.
async fn open(cfg: &ConnectConfig) -> Result<Opened> {
    let Some(tls) = &cfg.tls else {
        return open_socket(cfg).await;
    };
    let host = match &cfg.target {
        Endpoint::Inet { host, .. } => host.clone(),
        // A Unix socket has no name to check: --sni, --pin or --insecure says.
        Endpoint::Unix { .. } => endpoint::Host::Name("localhost".into()),
    };
    let handshake = async {
        match open_socket(cfg).await? {
            Opened::Stream(stream, peer) => {
                let stream = tls.connect(&host, stream, &peer).await?;
                Ok(Opened::Stream(stream, peer))
            }
            Opened::Datagram(_) => Err(Error::usage("TLS runs over a stream, not datagrams")),
        }
    };
    tokio::time::timeout(cfg.connect_timeout, handshake)
        .await
        .map_err(|_| Error::Network {
            what: format!("TLS connection to {}", cfg.target),
            reason: format!(
                "no handshake within {} (-w)",
                crate::duration::show(cfg.connect_timeout)
            ),
        })?
}

/// The byte stream a stream session sends: `--send TEXT`, stdin, or nothing.
pub fn input(args: &SessionArgs) -> Input {
    match &args.send {
        Some(text) => Box::new(std::io::Cursor::new(text.clone().into_bytes())),
        None if args.recv_only => Box::new(tokio::io::empty()),
        None => Box::new(stdio::reader(stdio::stdin_chunks())),
    }
}

/// The datagrams a datagram session sends: `--send TEXT` as one, stdin's
/// chunks, or none.
pub fn chunks(args: &SessionArgs) -> Option<stdio::Chunks> {
    if let Some(text) = &args.send {
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        let _ = tx.try_send(Ok(bytes::Bytes::from(text.clone().into_bytes())));
        return Some(rx);
    }
    args.reads_stdin().then(stdio::stdin_chunks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_forms() {
        assert_eq!(
            parse_source(Some("127.0.0.2"), None, Proto::Tcp).unwrap(),
            Some("127.0.0.2:0".parse().unwrap())
        );
        assert_eq!(
            parse_source(Some("[::1]:5000"), None, Proto::Tcp).unwrap(),
            Some("[::1]:5000".parse().unwrap())
        );
        assert_eq!(
            parse_source(None, Some("5000"), Proto::Tcp).unwrap(),
            Some("0.0.0.0:5000".parse().unwrap())
        );
        assert!(parse_source(Some("nohost"), None, Proto::Tcp).is_err());
    }
}
