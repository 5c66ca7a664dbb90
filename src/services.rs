//! Service names ("http", "ssh") to port numbers and back.
//!
//! The system's `/etc/services` is the source, read once, as getent and
//! Python's `getservbyname` read it. A machine without it (minimal
//! containers lack the `netbase` package) still knows the handful of names
//! the tutorials and the classic services use, from a small built-in table.

use std::collections::HashMap;
use std::sync::OnceLock;

/// A transport protocol, as `/etc/services` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

/// Used only when `/etc/services` is missing: the well-known ports of RFC
/// 1340's era that the tutorials and `serve` use, valid for TCP and UDP.
const BUILTIN: &[(&str, u16)] = &[
    ("echo", 7),
    ("discard", 9),
    ("daytime", 13),
    ("qotd", 17),
    ("chargen", 19),
    ("ftp", 21),
    ("ssh", 22),
    ("telnet", 23),
    ("smtp", 25),
    ("time", 37),
    ("domain", 53),
    ("http", 80),
    ("pop3", 110),
    ("ntp", 123),
    ("imap", 143),
    ("https", 443),
];

struct Table {
    by_name: HashMap<(String, Proto), u16>,
    by_port: HashMap<(u16, Proto), String>,
}

fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| {
        let text = std::fs::read_to_string("/etc/services").unwrap_or_else(|_| {
            use std::fmt::Write as _;
            BUILTIN
                .iter()
                .fold(String::new(), |mut text, (name, port)| {
                    let _ = write!(text, "{name} {port}/tcp\n{name} {port}/udp\n");
                    text
                })
        });
        parse(&text)
    })
}

/// Parses the `/etc/services` format: `name port/proto [aliases...] [# comment]`.
fn parse(text: &str) -> Table {
    let mut by_name = HashMap::new();
    let mut by_port = HashMap::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("");
        let mut fields = line.split_whitespace();
        let (Some(name), Some(port_proto)) = (fields.next(), fields.next()) else {
            continue;
        };
        let Some((port, proto)) = port_proto.split_once('/') else {
            continue;
        };
        let Ok(port) = port.parse::<u16>() else {
            continue;
        };
        let proto = match proto {
            "tcp" => Proto::Tcp,
            "udp" => Proto::Udp,
            _ => continue,
        };
        by_port
            .entry((port, proto))
            .or_insert_with(|| name.to_string());
        for alias in std::iter::once(name).chain(fields) {
            by_name.entry((alias.to_string(), proto)).or_insert(port);
        }
    }
    Table { by_name, by_port }
}

/// The port of a service name for `proto`, as `getservbyname` would give it.
pub fn port_of(name: &str, proto: Proto) -> Option<u16> {
    table()
        .by_name
        .get(&(name.to_ascii_lowercase(), proto))
        .copied()
}

/// The service name of a port, as `getservbyport` would give it.
pub fn name_of(port: u16, proto: Proto) -> Option<&'static str> {
    table().by_port.get(&(port, proto)).map(String::as_str)
}

impl std::fmt::Display for Proto {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_aliases_and_comments() {
        let t = parse("# c\nhttp 80/tcp www # WorldWideWeb\nhttp 80/udp\nbad line\nx 99999/tcp\n");
        assert_eq!(t.by_name.get(&("www".into(), Proto::Tcp)), Some(&80));
        assert_eq!(t.by_name.get(&("http".into(), Proto::Udp)), Some(&80));
        assert_eq!(
            t.by_port.get(&(80, Proto::Tcp)).map(String::as_str),
            Some("http")
        );
        assert_eq!(t.by_name.len(), 3);
    }

    #[test]
    fn knows_common_names() {
        assert_eq!(port_of("http", Proto::Tcp), Some(80));
        assert_eq!(port_of("HTTP", Proto::Tcp), Some(80));
        assert_eq!(port_of("echo", Proto::Udp), Some(7));
        assert_eq!(port_of("no-such-service", Proto::Tcp), None);
    }
}
