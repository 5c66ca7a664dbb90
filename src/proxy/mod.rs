//! Reaching a host through a proxy: SOCKS4 and its 4a names, SOCKS5 (RFC 1928,
//! with RFC 1929's username and password) and HTTP CONNECT (RFC 9110
//! §9.3.6, with Basic credentials).
//!
//! The proxy is dialled like any other host (Happy Eyeballs, `-w`, `-s`),
//! then the handshake asks it for the target; what comes back is a plain
//! TCP stream to the target, on which TLS, the copy loop and splice work as
//! on any other. A proxy that fails says so in its own words (a SOCKS reply
//! code, an HTTP status line), told apart from a target that fails.
//!
//! Credentials never appear in messages: a [`Proxy`] shows itself as
//! `scheme://HOST:PORT`.

use std::fmt::{self, Write as _};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use clap::{Args, ValueEnum};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

pub mod server;

use crate::endpoint::{self, Host};
use crate::error::{Error, Result};
use crate::net::{Resolve, dial};

/// The environment variable that gives a proxy when `--proxy` does not.
pub const PROXY_ENV: &str = "NETSMITH_PROXY";

/// The longest HTTP response header we read from a CONNECT proxy.
const MAX_HTTP_HEADER: usize = 16 * 1024;

/// `--proxy` and its companions, on every command that connects.
#[derive(Debug, Clone, Default, Args)]
pub struct ProxyArgs {
    /// Reach the target through a proxy: socks5://[USER:PASS@]HOST[:PORT]
    /// (the name resolved here), socks5h:// (resolved by the proxy),
    /// socks4://, socks4a://, http:// (CONNECT); or HOST[:PORT] with
    /// --proxy-type. Default: the `NETSMITH_PROXY` environment variable.
    #[arg(long, value_name = "URL")]
    pub proxy: Option<String>,
    /// The protocol of a --proxy given as HOST[:PORT] (ncat): http (the
    /// default), socks4, socks4a, socks5, socks5h.
    #[arg(long, value_name = "TYPE", value_enum)]
    pub proxy_type: Option<Kind>,
    /// The proxy's credentials, USER:PASS (SOCKS5 username and password,
    /// HTTP Basic; SOCKS4 sends USER as its user id).
    #[arg(long, value_name = "USER:PASS")]
    pub proxy_auth: Option<String>,
    /// Who resolves the target's name (ncat): local, remote (the proxy),
    /// both (here, then the proxy if that fails) or none (addresses only).
    /// Default: as the scheme says (socks5h, socks4a, http: remote).
    #[arg(long, value_name = "WHERE", value_enum)]
    pub proxy_dns: Option<Dns>,
}

/// A proxy protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Kind {
    Socks4,
    Socks4a,
    Socks5,
    Socks5h,
    Http,
}

impl Kind {
    fn scheme(self) -> &'static str {
        match self {
            Kind::Socks4 => "socks4",
            Kind::Socks4a => "socks4a",
            Kind::Socks5 => "socks5",
            Kind::Socks5h => "socks5h",
            Kind::Http => "http",
        }
    }

    /// The port a proxy of this kind usually listens on (nc's defaults).
    fn default_port(self) -> u16 {
        match self {
            Kind::Http => 3128,
            _ => 1080,
        }
    }

    /// Where a target's name is resolved unless `--proxy-dns` says.
    fn default_dns(self) -> Dns {
        match self {
            Kind::Socks4 | Kind::Socks5 => Dns::Local,
            Kind::Socks4a | Kind::Socks5h | Kind::Http => Dns::Remote,
        }
    }
}

/// Where the target's name is resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Dns {
    Local,
    Remote,
    Both,
    None,
}

/// A proxy to go through.
#[derive(Clone, PartialEq, Eq)]
pub struct Proxy {
    pub kind: Kind,
    pub host: Host,
    pub port: u16,
    user: Option<String>,
    pass: Option<String>,
    pub dns: Dns,
}

/// Shows `scheme://HOST:PORT`, never the credentials.
impl fmt::Display for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}:{}", self.kind.scheme(), self.host, self.port)
    }
}

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Proxy({self})")
    }
}

impl ProxyArgs {
    /// The proxy these flags (or `$NETSMITH_PROXY`) name, if any.
    pub fn proxy(&self) -> Result<Option<Proxy>> {
        let Some(text) = self
            .proxy
            .clone()
            .or_else(|| std::env::var(PROXY_ENV).ok().filter(|v| !v.is_empty()))
        else {
            if self.proxy_type.is_some() || self.proxy_auth.is_some() || self.proxy_dns.is_some() {
                return Err(Error::usage(
                    "--proxy-type, --proxy-auth and --proxy-dns need --proxy URL \
                     (or NETSMITH_PROXY)",
                ));
            }
            return Ok(None);
        };
        let mut proxy = parse(&text, self.proxy_type)?;
        if let Some(auth) = &self.proxy_auth {
            let (user, pass) = auth.split_once(':').ok_or_else(|| {
                Error::usage("invalid --proxy-auth: write USER:PASS (the password after a colon)")
            })?;
            proxy.user = Some(user.to_string());
            proxy.pass = Some(pass.to_string());
        }
        if let Some(dns) = self.proxy_dns {
            proxy.dns = dns;
        }
        Ok(Some(proxy))
    }
}

/// Parses `scheme://[USER[:PASS]@]HOST[:PORT]`, or `HOST[:PORT]` of kind
/// `kind` (HTTP if none).
pub fn parse(text: &str, kind: Option<Kind>) -> Result<Proxy> {
    let (kind, rest) = match text.split_once("://") {
        Some((scheme, rest)) => {
            let named = Kind::from_str(scheme, true).ok().ok_or_else(|| {
                Error::usage(format!(
                    "unknown proxy scheme \"{scheme}\" in \"{}\": use socks5://, socks5h://, \
                     socks4://, socks4a:// or http://",
                    crate::error::printable(&hide_password(text))
                ))
            })?;
            if kind.is_some_and(|k| k != named) {
                return Err(Error::usage(format!(
                    "--proxy-type contradicts the proxy's scheme \"{scheme}://\": give one"
                )));
            }
            (named, rest)
        }
        None => (kind.unwrap_or(Kind::Http), text),
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let (creds, address) = match rest.rsplit_once('@') {
        Some((creds, address)) => (Some(creds), address),
        None => (None, rest),
    };
    let (user, pass) = match creds {
        Some(c) => match c.split_once(':') {
            Some((u, p)) => (Some(unescape(u)?), Some(unescape(p)?)),
            None => (Some(unescape(c)?), None),
        },
        None => (None, None),
    };
    let with_port = if has_port(address) {
        address.to_string()
    } else {
        format!("{address}:{}", kind.default_port())
    };
    let target = endpoint::Endpoint::parse(
        &with_port,
        crate::services::Proto::Tcp,
        endpoint::PortZero::Refused,
    )
    .map_err(|e| Error::usage(format!("invalid proxy address: {e}")))?;
    let endpoint::Endpoint::Inet { host, port, .. } = target else {
        return Err(Error::usage(format!(
            "invalid proxy address \"{address}\": write HOST:PORT"
        )));
    };
    Ok(Proxy {
        kind,
        host,
        port,
        user,
        pass,
        dns: kind.default_dns(),
    })
}

/// Whether `HOST:PORT` or `[V6]:PORT` carries a port.
fn has_port(address: &str) -> bool {
    match address.strip_prefix('[') {
        Some(rest) => rest
            .split_once(']')
            .is_some_and(|(_, p)| p.starts_with(':')),
        None => address.matches(':').count() == 1,
    }
}

/// `socks5://user:secret@host` shown as `socks5://user:***@host`.
fn hide_password(text: &str) -> String {
    let Some((scheme, rest)) = text.split_once("://") else {
        return text.to_string();
    };
    match rest.rsplit_once('@') {
        Some((creds, address)) => {
            let user = creds.split_once(':').map_or(creds, |(u, _)| u);
            format!("{scheme}://{user}:***@{address}")
        }
        None => text.to_string(),
    }
}

/// Decodes a URL's `%XX` escapes (a password may hold `@` or `:`).
fn unescape(text: &str) -> Result<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3).unwrap_or("");
            let byte = u8::from_str_radix(hex, 16).map_err(|_| {
                Error::usage(
                    "invalid %-escape in the proxy's credentials: write %XX (two hex digits)",
                )
            })?;
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out)
        .map_err(|_| Error::usage("the proxy's credentials are not UTF-8 once unescaped"))
}

/// Connects to `host:port` through `proxy`, all within `timeout`: the
/// connection to the proxy, then its handshake.
pub async fn connect(
    proxy: &Proxy,
    resolve: &Resolve,
    (host, port): (&Host, u16),
    source: Option<SocketAddr>,
    timeout: Duration,
) -> Result<TcpStream> {
    let target = endpoint::Endpoint::Inet {
        proto: crate::services::Proto::Tcp,
        host: host.clone(),
        port,
    }
    .to_string();
    let through = format!("connect to {target} through {proxy}");
    let work = async {
        let destination = destination(proxy, resolve, host, port).await?;
        let addrs = proxy.addrs(resolve).await?;
        let mut stream = dial_proxy(proxy, &addrs, source, timeout).await?;
        handshake(proxy, &mut stream, &destination)
            .await
            .map_err(|e| e.into_error(&through))?;
        let _ = stream.set_nodelay(false);
        Ok(stream)
    };
    match tokio::time::timeout(timeout, work).await {
        Ok(result) => result,
        Err(_) => Err(Error::Network {
            what: through,
            reason: format!("timed out after {}", crate::duration::show(timeout)),
        }),
    }
}

impl Proxy {
    /// The proxy's own addresses. They may be of either family, whatever
    /// -4/-6 say of the target.
    pub async fn addrs(&self, resolve: &Resolve) -> Result<Vec<SocketAddr>> {
        let any = Resolve {
            family: crate::net::Family::Any,
            numeric: resolve.numeric,
        };
        any.addrs(&self.host, self.port).await
    }
}

/// Dials the proxy at one of `addrs` (Happy Eyeballs), Nagle off for the
/// handshake's small messages.
async fn dial_proxy(
    proxy: &Proxy,
    addrs: &[SocketAddr],
    source: Option<SocketAddr>,
    timeout: Duration,
) -> Result<TcpStream> {
    let stream = dial::tcp(&format!("proxy {proxy}"), addrs, source, timeout).await?;
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

/// What a SOCKS5 proxy answered when asked for a target (`scan --proxy`,
/// which reads a port's state from it).
#[derive(Debug)]
pub enum Probe {
    /// The target accepted: the stream reaches it.
    Open(TcpStream),
    /// The proxy's reply code (RFC 1928 §6): 5 refused, 3 network and 4
    /// host unreachable, 6 TTL expired, 2 not allowed, 1 general failure.
    Replied(u8),
    /// No answer within the timeout.
    Silent,
}

/// Asks the SOCKS5 `proxy`, at one of `addrs`, to connect to `target`,
/// within `timeout`. Only the proxy's own failures are errors (it refused
/// us, reset, or answered in another protocol): a target's are answers.
pub async fn probe(
    proxy: &Proxy,
    addrs: &[SocketAddr],
    target: SocketAddr,
    timeout: Duration,
) -> Result<Probe> {
    let work = async {
        let mut stream = dial_proxy(proxy, addrs, None, timeout).await?;
        match handshake(proxy, &mut stream, &Destination::Addr(target)).await {
            Ok(()) => Ok(Probe::Open(stream)),
            Err(Refusal::Socks5(code)) => Ok(Probe::Replied(code)),
            Err(e) => Err(e.into_error(&format!("connect to {target} through {proxy}"))),
        }
    };
    tokio::time::timeout(timeout, work)
        .await
        .unwrap_or(Ok(Probe::Silent))
}

/// What the proxy is asked to connect to.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Destination {
    Addr(SocketAddr),
    Name(String, u16),
}

/// Resolves the target here, or leaves it to the proxy, as `proxy.dns` says.
async fn destination(
    proxy: &Proxy,
    resolve: &Resolve,
    host: &Host,
    port: u16,
) -> Result<Destination> {
    let name = match host {
        Host::Ip(ip) => return Ok(Destination::Addr(SocketAddr::new(*ip, port))),
        Host::Name(name) => name,
    };
    let local = || async {
        let addrs = resolve.addrs(host, port).await?;
        // SOCKS4 carries IPv4 only.
        let fits = |a: &&SocketAddr| proxy.kind != Kind::Socks4 || a.is_ipv4();
        addrs
            .iter()
            .find(fits)
            .copied()
            .map(Destination::Addr)
            .ok_or_else(|| {
                Error::Resolve(format!(
                    "{name} has no IPv4 address, and socks4:// carries IPv4 only"
                ))
            })
    };
    match proxy.dns {
        Dns::Local => local().await,
        Dns::Remote => Ok(Destination::Name(name.clone(), port)),
        Dns::Both => match local().await {
            Ok(d) => Ok(d),
            Err(_) => Ok(Destination::Name(name.clone(), port)),
        },
        Dns::None => Err(Error::usage(format!(
            "--proxy-dns none: give the target as an address, not the name \"{name}\""
        ))),
    }
}

/// Why a handshake failed.
#[derive(Debug)]
enum Refusal {
    /// The proxy answered no, in these words.
    Said(String),
    /// A SOCKS5 proxy answered with this reply code (not 0).
    Socks5(u8),
    /// The connection to the proxy failed or closed.
    Io(std::io::Error),
    /// What was asked cannot be said in this protocol.
    Usage(String),
}

impl From<std::io::Error> for Refusal {
    fn from(e: std::io::Error) -> Self {
        Refusal::Io(e)
    }
}

impl Refusal {
    /// The error a command reports: `through` says what was being done.
    fn into_error(self, through: &str) -> Error {
        let said = |reason: String| Error::Network {
            what: through.to_string(),
            reason: format!("the proxy says: {reason}"),
        };
        match self {
            Refusal::Said(reason) => said(reason),
            Refusal::Socks5(code) => said(socks5_reply(code)),
            Refusal::Io(e) => Error::Network {
                what: through.to_string(),
                reason: format!(
                    "the proxy's handshake failed: {}",
                    crate::error::describe_io(&e)
                ),
            },
            Refusal::Usage(message) => Error::usage(message),
        }
    }
}

/// A stream whose waiting bytes can be looked at before they are taken.
pub(crate) trait Peek: AsyncRead + AsyncWrite + Unpin {
    /// Waits for bytes and copies what is there, leaving it unread.
    async fn peek(&mut self, buf: &mut [u8]) -> std::io::Result<usize>;
}

impl Peek for TcpStream {
    async fn peek(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        TcpStream::peek(self, buf).await
    }
}

/// Reads an HTTP header up to and including its blank line, and no
/// further. Each round looks at what has arrived (`MSG_PEEK`) and takes only
/// the header's part of it, so a header costs a receive or two, not one
/// per byte.
async fn read_header<S: Peek>(s: &mut S) -> std::result::Result<Vec<u8>, Refusal> {
    let mut header = Vec::with_capacity(256);
    let mut look = vec![0u8; 4096];
    loop {
        let n = s.peek(&mut look).await?;
        if n == 0 {
            return Err(Refusal::Io(std::io::ErrorKind::UnexpectedEof.into()));
        }
        let had = header.len();
        header.extend_from_slice(&look[..n]);
        // The blank line may straddle the last round and this one.
        let from = had.saturating_sub(3);
        let end = header[from..]
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map(|i| from + i + 4);
        header.truncate(end.unwrap_or(header.len()));
        let take = header.len() - had;
        s.read_exact(&mut look[..take]).await?;
        if end.is_some() {
            return Ok(header);
        }
        if header.len() >= MAX_HTTP_HEADER {
            return Err(Refusal::Said(format!(
                "a response header longer than {MAX_HTTP_HEADER} bytes"
            )));
        }
    }
}

async fn handshake<S: Peek>(
    proxy: &Proxy,
    s: &mut S,
    to: &Destination,
) -> std::result::Result<(), Refusal> {
    match proxy.kind {
        Kind::Socks4 | Kind::Socks4a => socks4(proxy, s, to).await,
        Kind::Socks5 | Kind::Socks5h => socks5(proxy, s, to).await,
        Kind::Http => http(proxy, s, to).await,
    }
}

/// SOCKS4 (and 4a, which carries a name after an address of 0.0.0.x).
async fn socks4<S: AsyncRead + AsyncWrite + Unpin>(
    proxy: &Proxy,
    s: &mut S,
    to: &Destination,
) -> std::result::Result<(), Refusal> {
    let mut request = vec![4, 1];
    let user = proxy.user.as_deref().unwrap_or("");
    match to {
        Destination::Addr(SocketAddr::V4(a)) => {
            request.extend(a.port().to_be_bytes());
            request.extend(a.ip().octets());
            request.extend(user.as_bytes());
            request.push(0);
        }
        Destination::Addr(SocketAddr::V6(_)) => {
            return Err(Refusal::Usage(format!(
                "{proxy} carries IPv4 only: use socks5:// for an IPv6 target"
            )));
        }
        Destination::Name(name, port) => {
            request.extend(port.to_be_bytes());
            request.extend([0, 0, 0, 1]);
            request.extend(user.as_bytes());
            request.push(0);
            request.extend(name.as_bytes());
            request.push(0);
        }
    }
    s.write_all(&request).await?;
    let mut reply = [0u8; 8];
    s.read_exact(&mut reply).await?;
    if reply[0] != 0 {
        return Err(Refusal::Said(format!(
            "a reply that is not SOCKS4 (first byte {:#04x})",
            reply[0]
        )));
    }
    match reply[1] {
        0x5a => Ok(()),
        0x5b => Err(Refusal::Said(
            "request rejected or failed (SOCKS4 reply 91)".into(),
        )),
        0x5c => Err(Refusal::Said(
            "request rejected: the proxy cannot reach our identd (SOCKS4 reply 92)".into(),
        )),
        0x5d => Err(Refusal::Said(
            "request rejected: identd and the user id disagree (SOCKS4 reply 93)".into(),
        )),
        code => Err(Refusal::Said(format!("unknown SOCKS4 reply {code}"))),
    }
}

/// SOCKS5's reply codes in words (RFC 1928 §6).
pub fn socks5_reply(code: u8) -> String {
    let words = match code {
        1 => "general SOCKS server failure",
        2 => "connection not allowed by the proxy's rules",
        3 => "network unreachable",
        4 => "host unreachable",
        5 => "connection refused",
        6 => "TTL expired",
        7 => "command not supported",
        8 => "address type not supported",
        _ => "unknown reply",
    };
    format!("{words} (SOCKS5 reply {code})")
}

/// SOCKS5's method sub-negotiation: none, or username and password.
async fn socks5_auth<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    method: u8,
    creds: Option<(&str, &str)>,
) -> std::result::Result<(), Refusal> {
    match (method, creds) {
        (0, _) => {}
        (2, Some((user, pass))) => {
            if user.len() > 255 || pass.len() > 255 {
                return Err(Refusal::Usage(
                    "SOCKS5 takes a user name and password of at most 255 bytes each".into(),
                ));
            }
            let mut auth = vec![1, user.len() as u8];
            auth.extend(user.as_bytes());
            auth.push(pass.len() as u8);
            auth.extend(pass.as_bytes());
            s.write_all(&auth).await?;
            let mut status = [0u8; 2];
            s.read_exact(&mut status).await?;
            if status[1] != 0 {
                return Err(Refusal::Said("the user name or password is wrong".into()));
            }
        }
        (0xff, None) => {
            return Err(Refusal::Said(
                "it needs credentials (give --proxy-auth USER:PASS or socks5://USER:PASS@...)"
                    .into(),
            ));
        }
        (0xff, Some(_)) => {
            return Err(Refusal::Said(
                "it takes neither no authentication nor a user name and password".into(),
            ));
        }
        (method, _) => {
            return Err(Refusal::Said(format!(
                "it chose authentication method {method}, which was not offered"
            )));
        }
    }
    Ok(())
}

/// SOCKS5, with username and password when we have them (RFC 1929).
async fn socks5<S: AsyncRead + AsyncWrite + Unpin>(
    proxy: &Proxy,
    s: &mut S,
    to: &Destination,
) -> std::result::Result<(), Refusal> {
    let creds = proxy
        .user
        .as_deref()
        .map(|u| (u, proxy.pass.as_deref().unwrap_or("")));
    let greeting: &[u8] = if creds.is_some() {
        &[5, 2, 0, 2]
    } else {
        &[5, 1, 0]
    };
    s.write_all(greeting).await?;
    let mut choice = [0u8; 2];
    s.read_exact(&mut choice).await?;
    if choice[0] != 5 {
        return Err(Refusal::Said(format!(
            "a reply that is not SOCKS5 (first byte {:#04x})",
            choice[0]
        )));
    }
    socks5_auth(s, choice[1], creds).await?;
    let mut request = vec![5, 1, 0];
    let port = match to {
        Destination::Addr(a) => {
            match a.ip() {
                IpAddr::V4(ip) => {
                    request.push(1);
                    request.extend(ip.octets());
                }
                IpAddr::V6(ip) => {
                    request.push(4);
                    request.extend(ip.octets());
                }
            }
            a.port()
        }
        Destination::Name(name, port) => {
            let len = u8::try_from(name.len())
                .map_err(|_| Refusal::Usage("SOCKS5 carries names of at most 255 bytes".into()))?;
            request.push(3);
            request.push(len);
            request.extend(name.as_bytes());
            *port
        }
    };
    request.extend(port.to_be_bytes());
    s.write_all(&request).await?;
    let mut head = [0u8; 4];
    s.read_exact(&mut head).await?;
    if head[0] != 5 {
        return Err(Refusal::Said(format!(
            "a reply that is not SOCKS5 (first byte {:#04x})",
            head[0]
        )));
    }
    if head[1] != 0 {
        return Err(Refusal::Socks5(head[1]));
    }
    // The address the proxy bound: read past it, so that the stream
    // starts at the target's first byte.
    let rest = match head[3] {
        1 => 4 + 2,
        4 => 16 + 2,
        3 => {
            let mut len = [0u8; 1];
            s.read_exact(&mut len).await?;
            usize::from(len[0]) + 2
        }
        other => {
            return Err(Refusal::Said(format!(
                "a reply with an unknown address type {other}"
            )));
        }
    };
    let mut bound = vec![0u8; rest];
    s.read_exact(&mut bound).await?;
    Ok(())
}

/// HTTP CONNECT. The response header is taken up to its blank line and
/// not one byte further: what follows is the tunnel's.
async fn http<S: Peek>(
    proxy: &Proxy,
    s: &mut S,
    to: &Destination,
) -> std::result::Result<(), Refusal> {
    use base64::Engine as _;
    let authority = match to {
        Destination::Addr(a) => a.to_string(),
        Destination::Name(name, port) => format!("{name}:{port}"),
    };
    let mut request = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n");
    if let Some(user) = &proxy.user {
        let token = base64::engine::general_purpose::STANDARD
            .encode(format!("{user}:{}", proxy.pass.as_deref().unwrap_or("")));
        let _ = write!(request, "Proxy-Authorization: Basic {token}\r\n");
    }
    request.push_str("\r\n");
    s.write_all(request.as_bytes()).await?;
    let header = read_header(s).await?;
    let text = String::from_utf8_lossy(&header);
    let status = text.lines().next().unwrap_or("").trim();
    let code = status.split_whitespace().nth(1).unwrap_or("");
    if !status.starts_with("HTTP/") {
        return Err(Refusal::Said(format!(
            "a response that is not HTTP: \"{}\"",
            crate::error::printable(status)
        )));
    }
    if code.starts_with('2') {
        return Ok(());
    }
    let hint = match code {
        "407" if proxy.user.is_none() => " (give --proxy-auth USER:PASS)",
        "407" => " (the user name or password is wrong)",
        _ => "",
    };
    Err(Refusal::Said(format!(
        "{}{hint}",
        crate::error::printable(status)
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_kind_address_credentials_and_default_port() {
        let p = parse("socks5h://alice:s%40cret@proxy.example:9050", None).unwrap();
        assert_eq!(p.kind, Kind::Socks5h);
        assert_eq!(p.host, Host::Name("proxy.example".into()));
        assert_eq!(p.port, 9050);
        assert_eq!(p.user.as_deref(), Some("alice"));
        assert_eq!(p.pass.as_deref(), Some("s@cret"));
        assert_eq!(p.dns, Dns::Remote);
        assert_eq!(p.to_string(), "socks5h://proxy.example:9050");
        assert!(!format!("{p:?}").contains("cret"));
        let p = parse("socks4://127.0.0.1", None).unwrap();
        assert_eq!((p.kind, p.port, p.dns), (Kind::Socks4, 1080, Dns::Local));
        let p = parse("[::1]:8080", None).unwrap();
        assert_eq!((p.kind, p.port), (Kind::Http, 8080));
        assert_eq!(p.host, Host::Ip("::1".parse().unwrap()));
        let p = parse("127.0.0.1", Some(Kind::Socks5)).unwrap();
        assert_eq!((p.kind, p.port), (Kind::Socks5, 1080));
        let p = parse("http://127.0.0.1/", None).unwrap();
        assert_eq!((p.kind, p.port), (Kind::Http, 3128));
    }

    #[test]
    fn bad_urls_say_what_would_be_right() {
        for (text, want) in [
            ("ftp://h:1", "unknown proxy scheme \"ftp\""),
            ("socks5://u:secret@h:99999", "invalid proxy address"),
            ("socks5://u:%zz@h:1", "%-escape"),
            ("socks5://h:0", "invalid proxy address"),
        ] {
            let e = parse(text, None).unwrap_err().to_string();
            assert!(e.contains(want), "{text}: {e}");
            assert!(!e.contains("secret"), "{text}: {e}");
        }
        let e = parse("socks4://h:1", Some(Kind::Http))
            .unwrap_err()
            .to_string();
        assert!(e.contains("contradicts"), "{e}");
    }

    /// Runs `handshake` against a scripted proxy on loopback: what it must
    /// receive, what it answers (`answer`, then `after`, the tunnel's first
    /// bytes, which the handshake must leave unread).
    async fn scripted(
        proxy: &Proxy,
        to: &Destination,
        expect: &[u8],
        answer: &[u8],
    ) -> std::result::Result<(), Refusal> {
        let after = b"tunnel";
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut ours = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (mut theirs, _) = listener.accept().await.unwrap();
        let (expect, answer) = (expect.to_vec(), answer.to_vec());
        // The whole answer goes first: the client reads each reply when
        // its step needs it, and sends each request after the last reply.
        let server = tokio::spawn(async move {
            theirs.write_all(&answer).await.unwrap();
            theirs.write_all(after).await.unwrap();
            let mut got = vec![0u8; expect.len()];
            theirs.read_exact(&mut got).await.unwrap();
            assert_eq!(got, expect);
            theirs
        });
        let result = handshake(proxy, &mut ours, to).await;
        drop(server.await.unwrap());
        if result.is_ok() {
            let mut rest = Vec::new();
            ours.read_to_end(&mut rest).await.unwrap();
            assert_eq!(rest, after, "the handshake took bytes of the tunnel");
        }
        result
    }

    #[tokio::test]
    async fn socks5_with_credentials_and_a_name_speaks_rfc_1928_and_1929() {
        let p = parse("socks5h://u:pw@127.0.0.1:1", None).unwrap();
        let to = Destination::Name("example.test".into(), 443);
        let mut expect = vec![5, 2, 0, 2, 1, 1, b'u', 2, b'p', b'w', 5, 1, 0, 3, 12];
        expect.extend(b"example.test");
        expect.extend([1, 187]);
        let answer = [5, 2, 1, 0, 5, 0, 0, 1, 127, 0, 0, 1, 0x1f, 0x90];
        scripted(&p, &to, &expect, &answer).await.unwrap();
    }

    #[tokio::test]
    async fn socks5_refusals_are_told_in_words() {
        let p = parse("socks5://127.0.0.1:1", None).unwrap();
        let to = Destination::Addr("127.0.0.1:9".parse().unwrap());
        let expect = [5, 1, 0, 5, 1, 0, 1, 127, 0, 0, 1, 0, 9];
        let Err(refusal) = scripted(&p, &to, &expect, &[5, 0, 5, 5, 0, 1]).await else {
            panic!("not refused");
        };
        assert!(matches!(refusal, Refusal::Socks5(5)), "{refusal:?}");
        let said = refusal.into_error("connect").to_string();
        assert!(
            said.ends_with("the proxy says: connection refused (SOCKS5 reply 5)"),
            "{said}"
        );
        let Err(Refusal::Said(why)) = scripted(&p, &to, &[5, 1, 0], &[5, 0xff]).await else {
            panic!("not refused");
        };
        assert!(why.contains("--proxy-auth"), "{why}");
    }

    #[tokio::test]
    async fn socks4a_and_http_connect_requests_are_exact() {
        let p = parse("socks4a://127.0.0.1:1", None).unwrap();
        let to = Destination::Name("h".into(), 80);
        let expect = [4, 1, 0, 80, 0, 0, 0, 1, 0, b'h', 0];
        scripted(&p, &to, &expect, &[0, 0x5a, 0, 0, 0, 0, 0, 0])
            .await
            .unwrap();
        let p = parse("http://a:b@127.0.0.1:1", None).unwrap();
        let to = Destination::Addr("[::1]:22".parse().unwrap());
        let expect = b"CONNECT [::1]:22 HTTP/1.1\r\nHost: [::1]:22\r\n\
                       Proxy-Authorization: Basic YTpi\r\n\r\n";
        let answer = b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n";
        let Err(Refusal::Said(why)) = scripted(&p, &to, expect, answer).await else {
            panic!("not refused");
        };
        assert_eq!(
            why,
            "HTTP/1.1 407 Proxy Authentication Required (the user name or password is wrong)"
        );
    }

    #[tokio::test]
    async fn an_http_answer_is_taken_to_its_blank_line_and_no_further() {
        let p = parse("http://127.0.0.1:1", None).unwrap();
        let to = Destination::Addr("127.0.0.1:7".parse().unwrap());
        let expect = b"CONNECT 127.0.0.1:7 HTTP/1.1\r\nHost: 127.0.0.1:7\r\n\r\n";
        let answer = b"HTTP/1.1 200 Connection established\r\nVia: x\r\n\r\n";
        scripted(&p, &to, expect, answer).await.unwrap();
    }
}
