//! The endpoint grammar, the same for every command (DESIGN.md):
//!
//! ```text
//! HOST:PORT   [IPv6]:PORT   tcp://HOST:PORT   udp://HOST:PORT
//! unix:PATH   unixgram:PATH   tls://HOST:PORT (a client's, see strip_tls)
//! ```
//!
//! plus the two-argument form `HOST PORT` (where HOST may be a bare IPv6
//! literal such as `::1`). Ports are numbers or service names. Parsing is
//! pure: nothing here resolves a name or touches a socket, so every rule is
//! unit-tested below, and every error names the bad value and what would be
//! right.

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::services::{self, Proto};

/// A host as typed: an address literal, or a name to resolve later.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Host {
    Ip(IpAddr),
    Name(String),
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]"),
            Host::Ip(ip) => write!(f, "{ip}"),
            Host::Name(name) => f.write_str(name),
        }
    }
}

/// Where to connect or listen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// A TCP or UDP endpoint: a host and a port.
    Inet { proto: Proto, host: Host, port: u16 },
    /// A Unix-domain socket: stream (`unix:`) or datagram (`unixgram:`).
    Unix { path: PathBuf, datagram: bool },
}

impl fmt::Display for Endpoint {
    /// The endpoint in the grammar it was parsed from, so that a printed
    /// endpoint can be pasted back into a command.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Inet {
                proto: Proto::Tcp,
                host,
                port,
            } => write!(f, "{host}:{port}"),
            Endpoint::Inet {
                proto: Proto::Udp,
                host,
                port,
            } => write!(f, "udp://{host}:{port}"),
            Endpoint::Unix {
                path,
                datagram: false,
            } => write!(f, "unix:{}", path.display()),
            Endpoint::Unix {
                path,
                datagram: true,
            } => write!(f, "unixgram:{}", path.display()),
        }
    }
}

/// Whether a port of 0 ("pick a free one") makes sense where it is parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PortZero {
    /// Listening: 0 asks the kernel for a free port.
    Allowed,
    /// Connecting: port 0 is never a real destination.
    Refused,
}

/// Parses a port: a number from 1 to 65535 (or 0 where allowed), or a
/// service name known to `/etc/services` for `proto`.
pub fn parse_port(text: &str, proto: Proto, zero: PortZero) -> Result<u16> {
    if text.is_empty() {
        return Err(Error::usage(
            "missing port: give a number from 1 to 65535 or a service name such as http",
        ));
    }
    if text.bytes().all(|b| b.is_ascii_digit()) {
        return match text.parse::<u32>() {
            Ok(0) if zero == PortZero::Allowed => Ok(0),
            Ok(0) => Err(Error::usage(
                "invalid port \"0\": a destination port must be 1-65535 (0 only picks a free port when listening)",
            )),
            Ok(n) if n <= 65535 => Ok(n as u16),
            _ => Err(Error::usage(format!(
                "invalid port \"{text}\": must be 1-65535 or a service name such as http"
            ))),
        };
    }
    if !is_service_name(text) {
        return Err(Error::usage(format!(
            "invalid port \"{text}\": must be 1-65535 or a service name such as http"
        )));
    }
    services::port_of(text, proto).ok_or_else(|| {
        Error::usage(format!(
            "unknown service \"{text}\" for {proto}: give a port number (1-65535) or a name listed in /etc/services"
        ))
    })
}

/// Whether `text` is spelled like a service name of `/etc/services`
/// (`http`, `ms-sql-s`, `z39.50`): letters first, then letters, digits and
/// `-_.+`.
pub fn is_service_name(text: &str) -> bool {
    text.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.' || b == b'+')
        && text.starts_with(|c: char| c.is_ascii_alphabetic())
}

/// Parses a host as typed: `[v6]`, a bare IPv6 literal, a dotted quad, or a
/// name (checked for characters no resolver accepts).
pub fn parse_host(text: &str) -> Result<Host> {
    if text.is_empty() {
        return Err(Error::usage(
            "empty host: give a name or address (for \"any address\", 0.0.0.0 or ::)",
        ));
    }
    let inner = match (text.strip_prefix('['), text.strip_suffix(']')) {
        (Some(_), Some(_)) => &text[1..text.len() - 1],
        (Some(_), None) => {
            return Err(Error::usage(format!(
                "unterminated IPv6 literal \"{text}\": write it as [::1]:PORT"
            )));
        }
        _ => text,
    };
    if inner.is_empty() {
        return Err(Error::usage(format!(
            "empty host in \"{text}\": give a name or address (for \"any address\", 0.0.0.0 or ::)"
        )));
    }
    if let Ok(ip) = inner.parse::<IpAddr>() {
        return Ok(Host::Ip(ip));
    }
    refuse_numeric(inner)?;
    if inner.contains(':') {
        return Err(Error::usage(format!(
            "invalid IPv6 address \"{text}\": expected a literal such as ::1 or [fe80::1]"
        )));
    }
    let valid_name = inner.len() <= 253
        && inner
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_');
    if !valid_name {
        return Err(Error::usage(format!(
            "invalid host \"{text}\": expected a name such as localhost or an address such as 127.0.0.1"
        )));
    }
    Ok(Host::Name(inner.to_string()))
}

/// Refuses a host that is all numbers and dots (or `0x` hex numbers) but
/// not a dotted quad of 0-255: `0`, `127.1`, `010.0.0.1` and `0x7f.1` are
/// shorthand that C's `inet_aton` (and so `getaddrinfo`) silently widens
/// to an address (`0` to 0.0.0.0: every interface), and `1.2.3.4.5`,
/// `999.0.0.1` are malformed addresses, never names (no top-level domain
/// is numeric). Either way the user gets exit 2 and the value named: the
/// full form to write, or the part that is wrong. `Ok` for anything else,
/// which is then an address literal or a name.
pub fn refuse_numeric(text: &str) -> Result<()> {
    let numeric = |p: &str| match p.strip_prefix("0x").or_else(|| p.strip_prefix("0X")) {
        Some(hex) => hex.bytes().all(|b| b.is_ascii_hexdigit()),
        None => !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()),
    };
    let parts: Vec<&str> = text.split('.').collect();
    if !parts.iter().all(|p| p.is_empty() || numeric(p)) || !parts.iter().any(|p| numeric(p)) {
        return Ok(());
    }
    if text.parse::<std::net::Ipv4Addr>().is_ok() {
        return Ok(());
    }
    let bad = |why: String| {
        Err(Error::usage(format!(
            "invalid address \"{text}\": {why}; write four numbers 0-255, such as 127.0.0.1"
        )))
    };
    if parts.iter().any(|p| p.is_empty()) {
        return bad("an octet is empty".into());
    }
    if parts.len() > 4 {
        return bad(format!(
            "{} numbers, but an IPv4 address has 4",
            parts.len()
        ));
    }
    // inet_aton's reading: each part but the last is one octet; the last
    // fills the bits that are left (127.1 is 127.0.0.1).
    let value = |p: &str| match p.strip_prefix("0x").or_else(|| p.strip_prefix("0X")) {
        Some("") => Some(0),
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None if p.len() > 1 && p.starts_with('0') => u64::from_str_radix(&p[1..], 8).ok(),
        None => p.parse::<u64>().ok(),
    };
    let last_bits = 32 - 8 * (parts.len() - 1);
    let mut address: u64 = 0;
    for (i, part) in parts.iter().enumerate() {
        let bits = if i + 1 == parts.len() { last_bits } else { 8 };
        match value(part) {
            Some(v) if v < 1u64 << bits => address = (address << bits) | v,
            _ if bits == 8 => return bad(format!("octet {part} is more than 255")),
            _ if parts.len() == 1 => return bad(format!("{part} is more than 32 bits hold")),
            _ => {
                return bad(format!(
                    "{part} is more than the last {bits} bits of the address hold"
                ));
            }
        }
    }
    let full = std::net::Ipv4Addr::from(u32::try_from(address).unwrap_or(u32::MAX));
    let note = if parts
        .iter()
        .any(|p| p.starts_with("0x") || p.starts_with("0X"))
    {
        " (0x means hex)"
    } else if parts.iter().any(|p| p.len() > 1 && p.starts_with('0')) {
        " (a leading 0 means octal)"
    } else {
        ""
    };
    Err(Error::usage(format!(
        "shorthand address \"{text}\"{note}: write it in full, {full}"
    )))
}

impl Endpoint {
    /// Parses one endpoint string. `proto` is the transport when the string
    /// names none (`-u` makes it UDP, and `unix:PATH` a datagram socket); a
    /// scheme that contradicts it is an error rather than a silent choice.
    pub fn parse(text: &str, proto: Proto, zero: PortZero) -> Result<Endpoint> {
        if let Some(path) = text.strip_prefix("unix:") {
            return unix(path, proto == Proto::Udp);
        }
        if let Some(path) = text.strip_prefix("unixgram:") {
            return unix(path, true);
        }
        let (rest, proto) = if let Some(rest) = text.strip_prefix("tcp://") {
            (rest, scheme_agrees(Proto::Tcp, proto, text)?)
        } else if let Some(rest) = text.strip_prefix("udp://") {
            (rest, scheme_agrees(Proto::Udp, proto, text)?)
        } else if text.starts_with("tls://") {
            return Err(Error::usage(format!(
                "\"tls://\" is not taken here (\"{text}\"): give HOST:PORT and --tls"
            )));
        } else if let Some((scheme, _)) = text.split_once("://") {
            return Err(Error::usage(format!(
                "unknown scheme \"{scheme}://\" in \"{text}\": use tcp://, udp://, unix: or unixgram:"
            )));
        } else {
            (text, proto)
        };
        let (host, port) = split_host_port(rest)?;
        Ok(Endpoint::Inet {
            proto,
            host: parse_host(host)?,
            port: parse_port(port, proto, zero)?,
        })
    }

    /// Splits off the `tls://` scheme of a TLS client endpoint
    /// (`tls://HOST:PORT`): the rest, to parse as TCP, if it is there.
    pub fn strip_tls(text: &str) -> Option<&str> {
        text.strip_prefix("tls://")
    }

    /// The two-argument form `HOST PORT`, where HOST may be a bare IPv6
    /// literal (`::1 80`).
    pub fn from_parts(host: &str, port: &str, proto: Proto, zero: PortZero) -> Result<Endpoint> {
        Ok(Endpoint::Inet {
            proto,
            host: parse_host(host)?,
            port: parse_port(port, proto, zero)?,
        })
    }

    /// The transport of an IP endpoint (`None` for Unix sockets).
    pub fn proto(&self) -> Option<Proto> {
        match self {
            Endpoint::Inet { proto, .. } => Some(*proto),
            Endpoint::Unix { .. } => None,
        }
    }
}

fn unix(path: &str, datagram: bool) -> Result<Endpoint> {
    if path.is_empty() {
        let scheme = if datagram { "unixgram" } else { "unix" };
        return Err(Error::usage(format!(
            "empty path in \"{scheme}:\": write {scheme}:/path/to/socket"
        )));
    }
    Ok(Endpoint::Unix {
        path: PathBuf::from(path),
        datagram,
    })
}

fn scheme_agrees(scheme: Proto, flag: Proto, text: &str) -> Result<Proto> {
    // `flag` is TCP unless -u was given, so only "udp flag, tcp scheme" conflicts.
    if scheme == Proto::Tcp && flag == Proto::Udp {
        return Err(Error::usage(format!(
            "\"{text}\" names TCP but -u asks for UDP: drop one of them"
        )));
    }
    Ok(scheme)
}

/// Splits `host:port` or `[v6]:port` at the port's colon.
fn split_host_port(text: &str) -> Result<(&str, &str)> {
    if text.starts_with('[') {
        let Some(close) = text.find(']') else {
            return Err(Error::usage(format!(
                "unterminated IPv6 literal \"{text}\": write it as [::1]:PORT"
            )));
        };
        let (host, rest) = text.split_at(close + 1);
        return match rest.strip_prefix(':') {
            Some(port) => Ok((host, port)),
            None => Err(Error::usage(format!(
                "missing port in \"{text}\": write [ADDR]:PORT, for example [::1]:8080"
            ))),
        };
    }
    match text.rsplit_once(':') {
        Some((host, _)) if host.contains(':') => Err(Error::usage(format!(
            "ambiguous IPv6 address \"{text}\": put it in brackets, [ADDR]:PORT, or pass the port as a separate argument"
        ))),
        Some((host, port)) => Ok((host, port)),
        None => Err(Error::usage(format!(
            "missing port in \"{text}\": write HOST:PORT or HOST PORT, for example localhost:8080"
        ))),
    }
}

/// One side of `relay`: an endpoint that listens for clients, one that is
/// connected to once per client, or a local source of bytes. The relay's
/// spellings extend the grammar above rather than repeating it:
///
/// ```text
/// tcp-listen:[ADDR:]PORT  udp-listen:[ADDR:]PORT  unix-listen:PATH
/// tls-listen:[ADDR:]PORT
/// tcp://HOST:PORT  HOST:PORT  udp://HOST:PORT  unix:PATH  tls://HOST:PORT
/// stdio  -  exec:COMMAND  sh:COMMAND
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Side {
    /// `tcp-listen:`, `udp-listen:`, `unix-listen:`: accepts clients.
    Listen(Endpoint),
    /// `tcp://`, `HOST:PORT`, `udp://`, `unix:`: connected to per client.
    Connect(Endpoint),
    /// `tls-listen:`: a TCP listener whose clients speak TLS (terminated
    /// here). The endpoint is TCP.
    TlsListen(Endpoint),
    /// `tls://HOST:PORT`: a TCP connection over which this side speaks TLS
    /// (originated here). The endpoint is TCP.
    TlsConnect(Endpoint),
    /// `stdio` or `-`: this process's stdin and stdout.
    Stdio,
    /// `exec:COMMAND`: a program started per client, its arguments split
    /// as a shell would split them but with no shell involved.
    Exec(Vec<String>),
    /// `sh:COMMAND`: a command line run by `/bin/sh -c` per client.
    Shell(String),
    /// `proxy:`: each client names its target in a SOCKS4 (or 4a), SOCKS5
    /// or HTTP handshake (`netsmith proxy`).
    Proxy,
}

/// The address a listening side binds when only a port is given: loopback,
/// as every netsmith server does unless told otherwise.
const LISTEN_DEFAULT: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

impl Side {
    /// Parses one side of a relay.
    pub fn parse(text: &str) -> Result<Side> {
        if text == "stdio" || text == "-" {
            return Ok(Side::Stdio);
        }
        if text == "proxy:" {
            return Ok(Side::Proxy);
        }
        if let Some(command) = text.strip_prefix("exec:") {
            return match crate::exec::split(command) {
                Ok(argv) => Ok(Side::Exec(argv)),
                Err(crate::exec::SplitError::Unbalanced) => Err(Error::usage(format!(
                    "unbalanced quotes in \"{text}\": close every ' and \" in the command"
                ))),
                Err(crate::exec::SplitError::Empty) => Err(Error::usage(format!(
                    "empty command in \"{text}\": write exec:PROGRAM ARGS, for example exec:cat"
                ))),
            };
        }
        if let Some(command) = text.strip_prefix("sh:") {
            if command.trim().is_empty() {
                return Err(Error::usage(format!(
                    "empty command in \"{text}\": write sh:COMMAND, for example 'sh:date; cat'"
                )));
            }
            return Ok(Side::Shell(command.to_string()));
        }
        if let Some(rest) = text.strip_prefix("tcp-listen:") {
            return listen_inet(rest, Proto::Tcp).map(Side::Listen);
        }
        if let Some(rest) = text.strip_prefix("udp-listen:") {
            return listen_inet(rest, Proto::Udp).map(Side::Listen);
        }
        if let Some(path) = text.strip_prefix("unix-listen:") {
            return unix(path, false).map(Side::Listen);
        }
        if let Some(rest) = text.strip_prefix("tls-listen:") {
            return listen_inet(rest, Proto::Tcp).map(Side::TlsListen);
        }
        if let Some((kind, _)) = text.split_once("-listen:") {
            return Err(Error::usage(format!(
                "unknown listening endpoint \"{kind}-listen:\" in \"{text}\": use tcp-listen:, udp-listen:, unix-listen: or tls-listen:"
            )));
        }
        if let Some(rest) = Endpoint::strip_tls(text) {
            // TLS needs a host name to verify: only HOST:PORT follows tls://.
            if rest.contains("://") || rest.starts_with("unix") {
                return Err(Error::usage(format!(
                    "\"{text}\": write tls://HOST:PORT, for example tls://example.org:443"
                )));
            }
            return Endpoint::parse(rest, Proto::Tcp, PortZero::Refused).map(Side::TlsConnect);
        }
        Endpoint::parse(text, Proto::Tcp, PortZero::Refused).map(Side::Connect)
    }

    /// The program this side runs (`exec:`, `sh:`), if it runs one.
    pub fn program(&self) -> Option<crate::exec::Program> {
        match self {
            Side::Exec(argv) => Some(crate::exec::Program::Exec(argv.clone())),
            Side::Shell(line) => Some(crate::exec::Program::Shell(line.clone())),
            _ => None,
        }
    }

    /// Whether this side accepts clients.
    pub fn listens(&self) -> bool {
        matches!(self, Side::Listen(_) | Side::TlsListen(_))
    }
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Side::Listen(Endpoint::Inet { proto, host, port }) => {
                write!(f, "{proto}-listen:{host}:{port}")
            }
            Side::Listen(Endpoint::Unix { path, .. }) => {
                write!(f, "unix-listen:{}", path.display())
            }
            Side::Connect(endpoint) => write!(f, "{endpoint}"),
            Side::TlsListen(Endpoint::Inet { host, port, .. }) => {
                write!(f, "tls-listen:{host}:{port}")
            }
            Side::TlsConnect(Endpoint::Inet { host, port, .. }) => {
                write!(f, "tls://{host}:{port}")
            }
            Side::TlsListen(other) | Side::TlsConnect(other) => write!(f, "tls over {other}"),
            Side::Stdio => f.write_str("stdio"),
            Side::Exec(argv) => write!(f, "exec:{}", shell_words::join(argv)),
            Side::Shell(command) => write!(f, "sh:{command}"),
            Side::Proxy => f.write_str("proxy:"),
        }
    }
}

/// `[ADDR:]PORT` of a listening side; port 0 picks a free port.
fn listen_inet(text: &str, proto: Proto) -> Result<Endpoint> {
    let (host, port) = if text.contains(':') {
        let (host, port) = split_host_port(text)?;
        (parse_host(host)?, port)
    } else {
        (Host::Ip(LISTEN_DEFAULT), text)
    };
    Ok(Endpoint::Inet {
        proto,
        host,
        port: parse_port(port, proto, PortZero::Allowed)?,
    })
}

/// Parses a port list as `scan -p` takes it: `22,80,8000-8100`, service
/// names (`http,ssh`), open-ended ranges (`-1024`, `60000-`), and `-` for
/// every port. Returns the ports sorted, each once.
pub fn parse_port_list(text: &str, proto: Proto) -> Result<Vec<u16>> {
    let mut wanted = vec![false; 65536];
    for item in text.split(',') {
        let item = item.trim();
        if item.is_empty() {
            return Err(Error::usage(format!(
                "invalid port list \"{text}\": an empty item; write ports and ranges \
                 separated by commas, such as 22,80,8000-8100"
            )));
        }
        let (from, to) = match item.split_once('-') {
            // A service name may contain '-' (e.g. "sql-net"): try it whole first.
            Some(_) if item.starts_with(|c: char| c.is_ascii_alphabetic()) => {
                let port = parse_port(item, proto, PortZero::Refused)?;
                (port, port)
            }
            Some((a, b)) => {
                let end = |t: &str, default: u16| {
                    if t.is_empty() {
                        Ok(default)
                    } else {
                        parse_port(t, proto, PortZero::Refused)
                    }
                };
                let (a, b) = (end(a, 1)?, end(b, 65535)?);
                if a > b {
                    return Err(Error::usage(format!(
                        "invalid port range \"{item}\": it ends before it starts; write the lower port first"
                    )));
                }
                (a, b)
            }
            None => {
                let port = parse_port(item, proto, PortZero::Refused)?;
                (port, port)
            }
        };
        wanted[usize::from(from)..=usize::from(to)].fill(true);
    }
    Ok((1..=65535u16).filter(|&p| wanted[usize::from(p)]).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn tcp(text: &str) -> Result<Endpoint> {
        Endpoint::parse(text, Proto::Tcp, PortZero::Refused)
    }

    fn inet(proto: Proto, host: Host, port: u16) -> Endpoint {
        Endpoint::Inet { proto, host, port }
    }

    #[test]
    fn host_port_forms() {
        let v4 = Host::Ip(IpAddr::V4(Ipv4Addr::LOCALHOST));
        let v6 = Host::Ip(IpAddr::V6(Ipv6Addr::LOCALHOST));
        assert_eq!(
            tcp("127.0.0.1:80").unwrap(),
            inet(Proto::Tcp, v4.clone(), 80)
        );
        assert_eq!(tcp("[::1]:80").unwrap(), inet(Proto::Tcp, v6.clone(), 80));
        assert_eq!(
            tcp("tcp://[::1]:http").unwrap(),
            inet(Proto::Tcp, v6.clone(), 80)
        );
        assert_eq!(
            tcp("udp://localhost:53").unwrap(),
            inet(Proto::Udp, Host::Name("localhost".into()), 53)
        );
        assert_eq!(
            Endpoint::from_parts("::1", "8080", Proto::Tcp, PortZero::Refused).unwrap(),
            inet(Proto::Tcp, v6, 8080)
        );
        assert_eq!(
            Endpoint::parse("127.0.0.1:0", Proto::Udp, PortZero::Allowed).unwrap(),
            inet(Proto::Udp, v4, 0)
        );
    }

    #[test]
    fn unix_forms() {
        assert_eq!(
            tcp("unix:/tmp/s").unwrap(),
            Endpoint::Unix {
                path: "/tmp/s".into(),
                datagram: false
            }
        );
        assert_eq!(
            tcp("unixgram:rel/s").unwrap(),
            Endpoint::Unix {
                path: "rel/s".into(),
                datagram: true
            }
        );
    }

    #[test]
    fn display_round_trips() {
        for text in [
            "127.0.0.1:80",
            "[::1]:443",
            "udp://localhost:53",
            "unix:/tmp/x",
        ] {
            assert_eq!(tcp(text).unwrap().to_string(), text);
        }
    }

    #[test]
    fn bad_ports_name_the_value() {
        for (text, words) in [
            ("h:65536", "\"65536\""),
            ("h:12ab", "\"12ab\""),
            ("h:0", "\"0\""),
            ("h:", "missing port"),
            ("h:nosuchsvc", "unknown service \"nosuchsvc\""),
            ("h:-1", "\"-1\""),
            ("h:99999999999", "\"99999999999\""),
        ] {
            let err = tcp(text).unwrap_err().to_string();
            assert!(err.contains(words), "{text}: {err}");
        }
    }

    #[test]
    fn bad_hosts_name_the_value() {
        for (text, words) in [
            ("[::1:80", "unterminated"),
            ("[::1]80", "missing port"),
            (":80", "empty host"),
            ("::1:80", "ambiguous"),
            ("bad host:80", "\"bad host\""),
            ("[::zz]:80", "invalid IPv6"),
            // A bracket in a name is a bad name, not a bad IPv6 address.
            ("a[b:80", "invalid host \"a[b\""),
            ("x]y:80", "invalid host \"x]y\""),
            ("localhost", "missing port"),
            ("tls://h:1", "--tls"),
            ("ftp://h:1", "unknown scheme"),
            ("unix:", "empty path"),
        ] {
            let err = tcp(text).unwrap_err().to_string();
            assert!(err.contains(words), "{text}: {err}");
        }
    }

    /// Asserts that `parse_host` refuses `text` with exit 2 and a message
    /// holding every one of `words`.
    #[track_caller]
    fn refused_naming(text: &str, words: &[&str]) {
        let err = parse_host(text).unwrap_err();
        assert_eq!(err.exit_code(), 2, "{text}");
        let err = err.to_string();
        for word in words {
            assert!(err.contains(word), "{text}: {err} lacks {word}");
        }
    }

    #[test]
    fn hardening_15_shorthand_addresses_are_refused_with_the_full_form() {
        for (text, full) in [
            ("0", "0.0.0.0"),
            ("0.0", "0.0.0.0"),
            ("127.1", "127.0.0.1"),
            ("127.0.1", "127.0.0.1"),
            ("10.1.2", "10.1.0.2"),
            ("2130706433", "127.0.0.1"),
            ("0x7f.1", "127.0.0.1"),
            ("0X7F000001", "127.0.0.1"),
            ("010.0.0.1", "8.0.0.1"),
            ("0177.0.0.01", "127.0.0.1"),
        ] {
            let quoted = format!("\"{text}\"");
            refused_naming(text, &[&quoted, &format!("write it in full, {full}")]);
        }
        // The same rule in every spelling of the grammar.
        for text in ["0:8080", "tcp://0.0:80", "udp://127.1:53"] {
            assert!(
                tcp(text).unwrap_err().to_string().contains("shorthand"),
                "{text}"
            );
        }
        let two = Endpoint::from_parts("0", "8080", Proto::Tcp, PortZero::Allowed);
        assert!(two.unwrap_err().to_string().contains("0.0.0.0"));
        // Dotted quads, IPv6 and names are what they were.
        assert_eq!(
            parse_host("0.0.0.0").unwrap(),
            Host::Ip([0, 0, 0, 0].into())
        );
        assert_eq!(
            parse_host("::").unwrap(),
            Host::Ip(Ipv6Addr::UNSPECIFIED.into())
        );
        for name in ["localhost", "1e100.net", "0xdead.example", "db-1", "x0"] {
            assert_eq!(parse_host(name).unwrap(), Host::Name(name.into()), "{name}");
        }
    }

    #[test]
    fn hardening_16_malformed_numeric_addresses_name_the_octet() {
        for (text, words) in [
            ("1.2.3.4.5", "5 numbers"),
            ("999.0.0.1", "octet 999 is more than 255"),
            ("300.1.1.1", "octet 300 is more than 255"),
            ("1.2.3.256", "octet 256 is more than 255"),
            ("0x100.0.0.1", "octet 0x100"),
            ("1.2.3.4.", "empty"),
            ("1..3.4", "empty"),
            ("1.16777216", "16777216"),
            ("4294967296", "4294967296"),
            ("99999999999999999999999", "99999999999999999999999"),
        ] {
            refused_naming(text, &[&format!("invalid address \"{text}\""), words]);
        }
        assert!(tcp("999.0.0.1:80").unwrap_err().to_string().contains("999"));
    }

    #[test]
    fn udp_flag_makes_unix_a_datagram_socket() {
        assert_eq!(
            Endpoint::parse("unix:/s", Proto::Udp, PortZero::Refused).unwrap(),
            Endpoint::Unix {
                path: "/s".into(),
                datagram: true
            }
        );
    }

    #[test]
    fn scheme_must_agree_with_flag() {
        let err = Endpoint::parse("tcp://h:1", Proto::Udp, PortZero::Refused).unwrap_err();
        assert!(err.to_string().contains("-u"));
    }
    #[test]
    fn port_lists() {
        let list = |t: &str| parse_port_list(t, Proto::Tcp);
        assert_eq!(
            list("22,80,8000-8003").unwrap(),
            [22, 80, 8000, 8001, 8002, 8003]
        );
        assert_eq!(list("80,22,80,21-23").unwrap(), [21, 22, 23, 80]);
        assert_eq!(list("-").unwrap().len(), 65535);
        assert_eq!(list("-3").unwrap(), [1, 2, 3]);
        assert_eq!(list("65534-").unwrap(), [65534, 65535]);
        assert_eq!(list("65535").unwrap(), [65535]);
        assert_eq!(list("1-65535").unwrap().len(), 65535);
        assert_eq!(list("ssh,http").unwrap(), [22, 80]);
        let err = |t: &str| list(t).unwrap_err().to_string();
        assert!(
            err("100-22").contains("ends before it starts"),
            "{}",
            err("100-22")
        );
        assert!(err("0").contains("1-65535"));
        assert!(err("65536").contains("1-65535"));
        assert!(err("22,,80").contains("empty item"));
        assert!(err("1-2-3").contains("invalid port"));
        assert!(err("nosuchservice").contains("unknown service"));
    }
}

#[cfg(test)]
mod side_tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn side(text: &str) -> Result<Side> {
        Side::parse(text)
    }

    #[test]
    fn listening_sides_default_to_loopback() {
        let lo = Host::Ip(IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert_eq!(
            side("tcp-listen:8080").unwrap(),
            Side::Listen(Endpoint::Inet {
                proto: Proto::Tcp,
                host: lo.clone(),
                port: 8080
            })
        );
        assert_eq!(
            side("udp-listen:0.0.0.0:0").unwrap(),
            Side::Listen(Endpoint::Inet {
                proto: Proto::Udp,
                host: Host::Ip(IpAddr::from([0, 0, 0, 0])),
                port: 0
            })
        );
        assert_eq!(
            side("tcp-listen:[::1]:http").unwrap().to_string(),
            "tcp-listen:[::1]:80"
        );
        assert_eq!(
            side("unix-listen:/tmp/s").unwrap().to_string(),
            "unix-listen:/tmp/s"
        );
        assert!(side("tcp-listen:8080").unwrap().listens());
    }

    #[test]
    fn connecting_sides_use_the_endpoint_grammar() {
        assert_eq!(
            side("127.0.0.1:80").unwrap(),
            Side::Connect(Endpoint::parse("127.0.0.1:80", Proto::Tcp, PortZero::Refused).unwrap())
        );
        assert_eq!(
            side("udp://[::1]:53").unwrap().to_string(),
            "udp://[::1]:53"
        );
        assert_eq!(side("unix:/s").unwrap().to_string(), "unix:/s");
        assert_eq!(side("-").unwrap(), Side::Stdio);
        assert_eq!(side("stdio").unwrap(), Side::Stdio);
    }

    #[test]
    fn tls_sides_are_tcp_with_tls_on_top() {
        let lo = Host::Ip(IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert_eq!(
            side("tls-listen:8443").unwrap(),
            Side::TlsListen(Endpoint::Inet {
                proto: Proto::Tcp,
                host: lo,
                port: 8443
            })
        );
        assert!(side("tls-listen:0").unwrap().listens());
        assert_eq!(
            side("tls-listen:[::1]:https").unwrap().to_string(),
            "tls-listen:[::1]:443"
        );
        assert_eq!(
            side("tls://localhost:443").unwrap().to_string(),
            "tls://localhost:443"
        );
        assert!(!side("tls://localhost:443").unwrap().listens());
        for bad in [
            "tls://unix:/s",
            "tls://udp://h:1",
            "tls://h",
            "tls-listen:x",
        ] {
            assert!(side(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn programs_split_without_a_shell() {
        assert_eq!(
            side("exec:wc -c").unwrap(),
            Side::Exec(vec!["wc".into(), "-c".into()])
        );
        assert_eq!(
            side(r#"exec:printf '%s\n' "a b""#).unwrap(),
            Side::Exec(vec!["printf".into(), "%s\\n".into(), "a b".into()])
        );
        assert_eq!(
            side("sh:date; cat").unwrap(),
            Side::Shell("date; cat".into())
        );
        assert_eq!(side("exec:wc -c").unwrap().to_string(), "exec:wc -c");
    }

    #[test]
    fn bad_sides_name_the_value() {
        for (text, words) in [
            ("exec:", "empty command"),
            ("exec:'cat", "unbalanced quotes"),
            ("sh: ", "empty command"),
            ("tcp-listen:70000", "\"70000\""),
            ("tcp-listen:", "missing port"),
            ("tcp-listen:bad host:1", "\"bad host\""),
            ("sctp-listen:1", "unknown listening endpoint"),
            ("unix-listen:", "empty path"),
            ("localhost", "missing port"),
            ("127.0.0.1:0", "\"0\""),
            ("tcp-listen:0:8080", "0.0.0.0"),
            ("udp-listen:0.0:53", "0.0.0.0"),
            ("tls-listen:127.1:0", "127.0.0.1"),
            ("300.1.1.1:80", "octet 300"),
        ] {
            let err = side(text).unwrap_err().to_string();
            assert!(err.contains(words), "{text}: {err}");
        }
    }
}
