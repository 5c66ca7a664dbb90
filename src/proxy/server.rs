//! Being a proxy: `netsmith proxy` (a relay whose TO is `proxy:`). Each
//! client names its target in a SOCKS5 (RFC 1928, RFC 1929 credentials),
//! SOCKS4/4a or HTTP handshake, told apart by the first byte as gost does;
//! the target is checked against the destination policy and dialled, and
//! from then on the two streams are joined by relay's copy path (splice,
//! half-close, idle timeout, hex dump) like any other relay connection.
//!
//! Refusals go back in the client's protocol (a SOCKS reply code, an HTTP
//! 403 or 407) and to the log. Every handshake has a deadline and a size
//! limit; a malformed one is answered with the protocol's error and closed.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use ipnet::IpNet;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::endpoint::Host;
use crate::error::{Error, Result};
use crate::net::{Resolve, Stream, dial};

/// How long a client has to finish its handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The longest HTTP request header taken from a client.
const MAX_HTTP_HEADER: usize = 16 * 1024;

/// The handshake's read buffer: a whole SOCKS request, or a typical HTTP
/// header, in one receive.
const HANDSHAKE_BUF: usize = 4096;

/// Who may use the proxy, and to reach what.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// `--proxy-auth USER:PASS`: what every client must present.
    pub credentials: Option<(String, String)>,
    /// `--to-allow` and `--to-deny` rules.
    pub allow: Vec<Rule>,
    pub deny: Vec<Rule>,
    /// Loopback and link-local targets are refused unless allowed: set
    /// when the proxy listens beyond loopback.
    pub guard_local: bool,
}

/// A destination rule: an address block, a set of ports, or both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub net: Option<IpNet>,
    pub ports: Option<Vec<u16>>,
}

impl Rule {
    /// `CIDR`, `ADDR`, `PORTS` (`80,443`, `8000-8010`) or `CIDR:PORTS`
    /// (`[V6CIDR]:PORTS` for IPv6).
    pub fn parse(text: &str) -> std::result::Result<Rule, String> {
        let bad = || {
            format!(
                "invalid destination rule \"{}\": write CIDR, PORTS or CIDR:PORTS \
                 (10.0.0.0/8, 443, 8000-8010, 10.0.0.0/8:80,443, [fd00::/8]:22)",
                crate::error::printable(text)
            )
        };
        let net = |t: &str| -> std::result::Result<IpNet, String> {
            t.parse::<IpNet>()
                .or_else(|_| t.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| bad())
        };
        let ports = |t: &str| {
            crate::endpoint::parse_port_list(t, crate::services::Proto::Tcp).map_err(|_| bad())
        };
        if text
            .chars()
            .all(|c| c.is_ascii_digit() || c == ',' || c == '-')
        {
            return Ok(Rule {
                net: None,
                ports: Some(ports(text)?),
            });
        }
        if let Some(rest) = text.strip_prefix('[') {
            let (block, tail) = rest.split_once(']').ok_or_else(bad)?;
            let ports = match tail.strip_prefix(':') {
                Some(p) => Some(ports(p)?),
                None if tail.is_empty() => None,
                None => return Err(bad()),
            };
            return Ok(Rule {
                net: Some(net(block)?),
                ports,
            });
        }
        match text.split_once(':') {
            Some((block, p)) if !block.contains(':') && !p.contains(':') => Ok(Rule {
                net: Some(net(block)?),
                ports: Some(ports(p)?),
            }),
            _ => Ok(Rule {
                net: Some(net(text)?),
                ports: None,
            }),
        }
    }

    fn matches(&self, to: SocketAddr) -> bool {
        let ip = to.ip().to_canonical();
        self.net
            .is_none_or(|n| n.contains(&ip) || n.contains(&to.ip()))
            && self.ports.as_ref().is_none_or(|p| p.contains(&to.port()))
    }
}

impl Policy {
    /// Whether the proxy may connect to `to`.
    pub fn admits(&self, to: SocketAddr) -> bool {
        if self.deny.iter().any(|r| r.matches(to)) {
            return false;
        }
        let allowed = self.allow.iter().any(|r| r.matches(to));
        let ip = to.ip().to_canonical();
        let local = crate::net::is_loopback(ip)
            || match ip {
                IpAddr::V4(v4) => v4.is_link_local() || v4.is_unspecified(),
                IpAddr::V6(v6) => v6.is_unicast_link_local() || v6.is_unspecified(),
            };
        if self.guard_local && local && !allowed {
            return false;
        }
        self.allow.is_empty() || allowed
    }
}

/// Why a client was turned away, in the words of its protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum No {
    /// Malformed or unsupported: SOCKS5 1/7/8, SOCKS4 91, HTTP 400.
    Malformed(u8),
    /// Credentials missing or wrong: SOCKS5 auth failure, HTTP 407.
    Auth,
    /// The destination policy: SOCKS5 2, SOCKS4 91, HTTP 403.
    Policy,
    /// The target could not be reached: SOCKS5 3/4/5, HTTP 502/504.
    Unreachable(u8),
}

/// Which protocol the client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Speaks {
    Socks4,
    Socks5,
    Http,
}

/// What the client asked for.
struct Request {
    host: Host,
    port: u16,
    /// An HTTP request to forward (not CONNECT): its rewritten header.
    forward: Option<Vec<u8>>,
}

/// Takes a client's handshake, checks and dials its target, answers, and
/// returns the stream to the target (with a forwarded HTTP request already
/// sent on it). `label` names the connection in the log.
pub async fn accept(
    client: &mut Stream,
    policy: &Policy,
    resolve: &Resolve,
    timeout: Duration,
    label: &str,
) -> Result<Stream> {
    let work = async {
        // Buffered: a handshake's fields arrive together, and one receive
        // takes them all. What the client sent after its request (an
        // optimistic client's first bytes, a request body) goes on to the
        // target after the answer.
        let mut client = tokio::io::BufReader::with_capacity(HANDSHAKE_BUF, &mut *client);
        let mut first = [0u8; 1];
        client
            .read_exact(&mut first)
            .await
            .map_err(|e| Error::io(format!("{label}: read the handshake"), &e))?;
        let speaks = match first[0] {
            5 => Speaks::Socks5,
            4 => Speaks::Socks4,
            b'A'..=b'Z' => Speaks::Http,
            other => {
                return Err(Error::Network {
                    what: format!("{label}: handshake"),
                    reason: format!(
                        "first byte {other:#04x} is neither SOCKS4, SOCKS5 nor HTTP; closed"
                    ),
                });
            }
        };
        let request = match speaks {
            Speaks::Socks5 => socks5_request(&mut client, policy).await,
            Speaks::Socks4 => socks4_request(&mut client, policy).await,
            Speaks::Http => http_request(&mut client, first[0], policy).await,
        };
        let request = match request {
            Ok(r) => r,
            Err(Step::No(no, why)) => {
                return Err(refuse(&mut client, speaks, no, label, &why).await);
            }
            Err(Step::Io(e)) => return Err(Error::io(format!("{label}: handshake"), &e)),
        };
        let shown = crate::endpoint::Endpoint::Inet {
            proto: crate::services::Proto::Tcp,
            host: request.host.clone(),
            port: request.port,
        }
        .to_string();
        let addrs = match resolve.addrs(&request.host, request.port).await {
            Ok(a) => a,
            Err(e) => {
                let why = e.to_string();
                return Err(refuse(&mut client, speaks, No::Unreachable(4), label, &why).await);
            }
        };
        let allowed: Vec<SocketAddr> = addrs.into_iter().filter(|a| policy.admits(*a)).collect();
        if allowed.is_empty() {
            let why = format!("{shown}: not allowed by the destination policy");
            return Err(refuse(&mut client, speaks, No::Policy, label, &why).await);
        }
        let target = match dial::tcp(&shown, &allowed, None, timeout).await {
            Ok(t) => t,
            Err(e) => {
                let why = e.to_string();
                let code = reach_code(&why);
                return Err(refuse(&mut client, speaks, No::Unreachable(code), label, &why).await);
            }
        };
        let _ = target.set_nodelay(true);
        let mut target = Stream::Tcp(target);
        let early = client.buffer().to_vec();
        answer(
            client.get_mut(),
            &mut target,
            speaks,
            request.forward.as_deref(),
            &early,
        )
        .await
        .map_err(|e| Error::io(format!("{label}: answer the handshake for {shown}"), &e))?;
        tracing::info!("{label}: {} to {shown}", speaks.word());
        Ok(target)
    };
    match tokio::time::timeout(timeout.max(HANDSHAKE_TIMEOUT), work).await {
        Ok(result) => result,
        Err(_) => Err(Error::Network {
            what: format!("{label}: handshake"),
            reason: format!(
                "not finished within {}; closed",
                crate::duration::show(timeout.max(HANDSHAKE_TIMEOUT))
            ),
        }),
    }
}

/// Tells the client its target is connected, in its protocol; for a
/// forwarded HTTP request, sends the request on instead. Then sends the
/// target what the client sent after its request (`early`).
async fn answer<C: AsyncWrite + Unpin>(
    client: &mut C,
    target: &mut Stream,
    speaks: Speaks,
    forward: Option<&[u8]>,
    early: &[u8],
) -> std::io::Result<()> {
    greet(client, target, speaks, forward).await?;
    if !early.is_empty() {
        target.write_all(early).await?;
    }
    Ok(())
}

/// [`answer`]'s first half: the reply in the client's protocol.
async fn greet<C: AsyncWrite + Unpin>(
    client: &mut C,
    target: &mut Stream,
    speaks: Speaks,
    forward: Option<&[u8]>,
) -> std::io::Result<()> {
    let bound = match &*target {
        Stream::Tcp(t) => t.local_addr().ok(),
        _ => None,
    };
    match (speaks, forward) {
        (Speaks::Socks5, _) => {
            let mut reply = vec![5, 0, 0];
            push_addr(&mut reply, bound);
            client.write_all(&reply).await
        }
        (Speaks::Socks4, _) => {
            let mut reply = vec![0, 0x5a];
            reply.extend(bound.map_or(0, |b| b.port()).to_be_bytes());
            let ip = match bound.map(|b| b.ip().to_canonical()) {
                Some(IpAddr::V4(v4)) => v4.octets(),
                _ => [0; 4],
            };
            reply.extend(ip);
            client.write_all(&reply).await
        }
        (Speaks::Http, None) => {
            client
                .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                .await
        }
        (Speaks::Http, Some(header)) => target.write_all(header).await,
    }
}

impl Speaks {
    fn word(self) -> &'static str {
        match self {
            Speaks::Socks4 => "SOCKS4",
            Speaks::Socks5 => "SOCKS5",
            Speaks::Http => "HTTP",
        }
    }
}

/// A SOCKS5 code for a failed dial, from the reason's words.
fn reach_code(why: &str) -> u8 {
    if why.contains("refused") {
        5
    } else if why.contains("network is unreachable") {
        3
    } else {
        4
    }
}

/// SOCKS's address encoding of `addr` (0.0.0.0:0 if unknown).
fn push_addr(out: &mut Vec<u8>, addr: Option<SocketAddr>) {
    match addr {
        Some(SocketAddr::V6(a)) => {
            out.push(4);
            out.extend(a.ip().octets());
            out.extend(a.port().to_be_bytes());
        }
        Some(SocketAddr::V4(a)) => {
            out.push(1);
            out.extend(a.ip().octets());
            out.extend(a.port().to_be_bytes());
        }
        None => out.extend([1, 0, 0, 0, 0, 0, 0]),
    }
}

/// Answers a refusal in the client's protocol, and says why in the log.
async fn refuse<C: AsyncWrite + Unpin>(
    client: &mut C,
    speaks: Speaks,
    no: No,
    label: &str,
    why: &str,
) -> Error {
    let reply: Vec<u8> = match (speaks, no) {
        (Speaks::Socks5, No::Auth) => Vec::new(), // answered in the sub-negotiation
        (Speaks::Socks5, No::Malformed(code) | No::Unreachable(code)) => {
            let mut r = vec![5, code, 0];
            push_addr(&mut r, None);
            r
        }
        (Speaks::Socks5, No::Policy) => {
            let mut r = vec![5, 2, 0];
            push_addr(&mut r, None);
            r
        }
        (Speaks::Socks4, _) => vec![0, 0x5b, 0, 0, 0, 0, 0, 0],
        (Speaks::Http, no) => {
            let (status, extra) = match no {
                No::Malformed(_) => ("400 Bad Request", ""),
                No::Auth => (
                    "407 Proxy Authentication Required",
                    "Proxy-Authenticate: Basic realm=\"netsmith\"\r\n",
                ),
                No::Policy => ("403 Forbidden", ""),
                No::Unreachable(4) if why.contains("timed out") => ("504 Gateway Timeout", ""),
                No::Unreachable(_) => ("502 Bad Gateway", ""),
            };
            format!("HTTP/1.1 {status}\r\n{extra}Content-Length: 0\r\nConnection: close\r\n\r\n")
                .into_bytes()
        }
    };
    if !reply.is_empty() {
        let _ = client.write_all(&reply).await;
        let _ = client.flush().await;
    }
    Error::Network {
        what: format!("{label}: {} handshake", speaks.word()),
        reason: format!("refused: {}", crate::error::printable(why)),
    }
}

/// A handshake step's failure: a refusal to answer, or a dead connection.
enum Step {
    No(No, String),
    Io(std::io::Error),
}

impl From<std::io::Error> for Step {
    fn from(e: std::io::Error) -> Self {
        Step::Io(e)
    }
}

/// Compares credentials without stopping at the first differing byte.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn read_u8<S: AsyncRead + Unpin>(s: &mut S) -> std::io::Result<u8> {
    let mut b = [0u8; 1];
    s.read_exact(&mut b).await?;
    Ok(b[0])
}

/// Reads bytes up to a NUL (SOCKS4's user id and 4a's name), at most 255.
async fn read_nul<S: AsyncRead + Unpin>(s: &mut S) -> std::result::Result<Vec<u8>, Step> {
    let mut out = Vec::new();
    loop {
        match read_u8(s).await? {
            0 => return Ok(out),
            b if out.len() < 255 => out.push(b),
            _ => {
                return Err(Step::No(
                    No::Malformed(0),
                    "a SOCKS4 field longer than 255 bytes".into(),
                ));
            }
        }
    }
}

/// SOCKS5 after its version byte: methods, credentials, the request.
async fn socks5_request<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    policy: &Policy,
) -> std::result::Result<Request, Step> {
    let n = read_u8(s).await?;
    let mut methods = vec![0u8; usize::from(n)];
    s.read_exact(&mut methods).await?;
    let wanted = if policy.credentials.is_some() { 2 } else { 0 };
    if !methods.contains(&wanted) {
        s.write_all(&[5, 0xff]).await?;
        let why = if wanted == 2 {
            "the client offered no username and password (--proxy-auth is set)"
        } else {
            "the client offered no method this proxy takes"
        };
        return Err(Step::No(No::Auth, why.into()));
    }
    s.write_all(&[5, wanted]).await?;
    if let Some((user, pass)) = &policy.credentials {
        let version = read_u8(s).await?;
        let ulen = read_u8(s).await?;
        let mut u = vec![0u8; usize::from(ulen)];
        s.read_exact(&mut u).await?;
        let plen = read_u8(s).await?;
        let mut p = vec![0u8; usize::from(plen)];
        s.read_exact(&mut p).await?;
        let ok = version == 1 && same(&u, user.as_bytes()) & same(&p, pass.as_bytes());
        s.write_all(&[1, u8::from(!ok)]).await?;
        if !ok {
            return Err(Step::No(No::Auth, "wrong username or password".into()));
        }
    }
    let mut head = [0u8; 4];
    s.read_exact(&mut head).await?;
    if head[0] != 5 {
        return Err(Step::No(
            No::Malformed(1),
            format!("a request of version {} in a SOCKS5 handshake", head[0]),
        ));
    }
    let host = match head[3] {
        1 => {
            let mut a = [0u8; 4];
            s.read_exact(&mut a).await?;
            Host::Ip(IpAddr::from(a))
        }
        4 => {
            let mut a = [0u8; 16];
            s.read_exact(&mut a).await?;
            Host::Ip(IpAddr::from(a))
        }
        3 => {
            let len = read_u8(s).await?;
            let mut name = vec![0u8; usize::from(len)];
            s.read_exact(&mut name).await?;
            name_host(&name).map_err(|why| Step::No(No::Malformed(4), why))?
        }
        other => {
            return Err(Step::No(
                No::Malformed(8),
                format!("address type {other} is not SOCKS5's"),
            ));
        }
    };
    let mut port = [0u8; 2];
    s.read_exact(&mut port).await?;
    if head[1] != 1 {
        return Err(Step::No(
            No::Malformed(7),
            format!("command {} (only CONNECT, 1, is served)", head[1]),
        ));
    }
    Ok(Request {
        host,
        port: u16::from_be_bytes(port),
        forward: None,
    })
}

/// A name sent by a client: printable, and an address if it is one.
fn name_host(name: &[u8]) -> std::result::Result<Host, String> {
    let text = std::str::from_utf8(name)
        .ok()
        .filter(|t| !t.is_empty() && t.chars().all(|c| c.is_ascii_graphic()))
        .ok_or_else(|| "a target name that is not a host name".to_string())?;
    Ok(match text.parse::<IpAddr>() {
        Ok(ip) => Host::Ip(ip),
        Err(_) => Host::Name(text.to_string()),
    })
}

/// SOCKS4 and 4a after the version byte. SOCKS4 has no password: with
/// `--proxy-auth` set it is refused.
async fn socks4_request<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    policy: &Policy,
) -> std::result::Result<Request, Step> {
    let mut head = [0u8; 7];
    s.read_exact(&mut head).await?;
    let port = u16::from_be_bytes([head[1], head[2]]);
    let ip = [head[3], head[4], head[5], head[6]];
    let _user = read_nul(s).await?;
    let host = if ip[..3] == [0, 0, 0] && ip[3] != 0 {
        let name = read_nul(s).await?;
        name_host(&name).map_err(|why| Step::No(No::Malformed(0), why))?
    } else {
        Host::Ip(IpAddr::from(ip))
    };
    if policy.credentials.is_some() {
        return Err(Step::No(
            No::Auth,
            "SOCKS4 carries no password and --proxy-auth is set".into(),
        ));
    }
    if head[0] != 1 {
        return Err(Step::No(
            No::Malformed(0),
            format!("SOCKS4 command {} (only CONNECT, 1, is served)", head[0]),
        ));
    }
    Ok(Request {
        host,
        port,
        forward: None,
    })
}

/// An HTTP request whose first byte was `first`: CONNECT, or a request for
/// an absolute `http://` URI, forwarded with `Connection: close` (one
/// request per connection, so none goes to the wrong host).
async fn http_request<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    first: u8,
    policy: &Policy,
) -> std::result::Result<Request, Step> {
    let mut header = vec![first];
    while !header.ends_with(b"\r\n\r\n") && !header.ends_with(b"\n\n") {
        if header.len() >= MAX_HTTP_HEADER {
            return Err(Step::No(
                No::Malformed(0),
                format!("a request header longer than {MAX_HTTP_HEADER} bytes"),
            ));
        }
        header.push(read_u8(s).await?);
    }
    let text = String::from_utf8_lossy(&header).into_owned();
    let mut lines = text.split('\n').map(|l| l.trim_end_matches('\r'));
    let request_line = lines.next().unwrap_or("");
    let parts: Vec<&str> = request_line.split(' ').collect();
    let [method, target, version] = parts[..] else {
        return Err(Step::No(
            No::Malformed(0),
            format!("a malformed request line \"{request_line}\""),
        ));
    };
    if !version.starts_with("HTTP/1.") {
        return Err(Step::No(No::Malformed(0), format!("version \"{version}\"")));
    }
    let fields: Vec<(&str, &str)> = lines
        .filter(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim(), v.trim()))
        .collect();
    if let Some((user, pass)) = &policy.credentials {
        use base64::Engine as _;
        let expected = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
        let given = fields
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("Proxy-Authorization"))
            .and_then(|(_, v)| v.strip_prefix("Basic "))
            .unwrap_or("");
        if !same(given.trim().as_bytes(), expected.as_bytes()) {
            let why = if given.is_empty() {
                "no Proxy-Authorization (--proxy-auth is set)"
            } else {
                "wrong username or password"
            };
            return Err(Step::No(No::Auth, why.into()));
        }
    }
    if method == "CONNECT" {
        let (host, port) = authority(target, None)
            .ok_or_else(|| Step::No(No::Malformed(0), format!("CONNECT to \"{target}\"")))?;
        return Ok(Request {
            host,
            port,
            forward: None,
        });
    }
    let Some(rest) = target.strip_prefix("http://") else {
        return Err(Step::No(
            No::Malformed(0),
            format!("\"{method} {target}\": a proxy takes CONNECT or an absolute http:// URI"),
        ));
    };
    let (auth, path) = rest.find('/').map_or((rest, "/"), |i| rest.split_at(i));
    let (host, port) = authority(auth, Some(80))
        .ok_or_else(|| Step::No(No::Malformed(0), format!("the URI \"{target}\"")))?;
    let mut forward = format!("{method} {path} {version}\r\n");
    for (k, v) in &fields {
        let hop = [
            "proxy-authorization",
            "proxy-connection",
            "connection",
            "keep-alive",
        ];
        if !hop.iter().any(|h| k.eq_ignore_ascii_case(h)) {
            let _ = write!(forward, "{k}: {v}\r\n");
        }
    }
    forward.push_str("Connection: close\r\n\r\n");
    Ok(Request {
        host,
        port,
        forward: Some(forward.into_bytes()),
    })
}

/// `HOST:PORT` or `[V6]:PORT` (the port may default).
fn authority(text: &str, default_port: Option<u16>) -> Option<(Host, u16)> {
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (h, tail) = rest.split_once(']')?;
        (h, tail.strip_prefix(':'))
    } else {
        match text.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (text, None),
        }
    };
    let port = match port {
        Some(p) => p.parse().ok().filter(|p| *p != 0)?,
        None => default_port?,
    };
    Some((name_host(host.as_bytes()).ok()?, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destination_rules_parse_and_match() {
        let r = Rule::parse("10.0.0.0/8:80,443").unwrap();
        assert!(r.matches("10.1.2.3:443".parse().unwrap()));
        assert!(!r.matches("10.1.2.3:22".parse().unwrap()));
        assert!(!r.matches("11.0.0.1:80".parse().unwrap()));
        let r = Rule::parse("22").unwrap();
        assert!(r.matches("[::1]:22".parse().unwrap()));
        let r = Rule::parse("127.0.0.1").unwrap();
        assert!(r.matches("[::ffff:127.0.0.1]:9".parse().unwrap()));
        let r = Rule::parse("[fd00::/8]:1-1024").unwrap();
        assert!(r.matches("[fd00::1]:1024".parse().unwrap()));
        for bad in ["10.0.0.0/33", "x", "[fd00::/8", "1.2.3.4:0", "70000"] {
            assert!(Rule::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_policy_guards_local_targets_beyond_loopback_unless_allowed() {
        let mut p = Policy {
            guard_local: true,
            ..Policy::default()
        };
        assert!(!p.admits("127.0.0.1:22".parse().unwrap()));
        assert!(!p.admits("[::ffff:127.0.0.1]:22".parse().unwrap()));
        assert!(!p.admits("169.254.169.254:80".parse().unwrap()));
        assert!(!p.admits("[fe80::1]:80".parse().unwrap()));
        assert!(p.admits("192.0.2.1:80".parse().unwrap()));
        p.allow.push(Rule::parse("127.0.0.1:22").unwrap());
        assert!(p.admits("127.0.0.1:22".parse().unwrap()));
        assert!(!p.admits("192.0.2.1:80".parse().unwrap()));
        p.deny.push(Rule::parse("22").unwrap());
        assert!(!p.admits("127.0.0.1:22".parse().unwrap()));
    }

    #[test]
    fn authorities_and_names() {
        assert_eq!(
            authority("[::1]:8080", None),
            Some((Host::Ip("::1".parse().unwrap()), 8080))
        );
        assert_eq!(
            authority("example.test", Some(80)),
            Some((Host::Name("example.test".into()), 80))
        );
        assert_eq!(authority("h:0", None), None);
        assert_eq!(authority("h", None), None);
        assert!(name_host(b"a b").is_err());
        assert!(name_host(b"").is_err());
    }
}
