//! The capture filter: a small subset of tcpdump's language, parsed into an
//! expression tree and evaluated in user space on each decoded packet.
//!
//! ```text
//! expr      := and ("or" and)*             ("||" also)
//! and       := unary ("and" unary)*        ("&&" also)
//! unary     := ("not" | "!") unary | primary
//! primary   := "(" expr ")"
//!            | proto [qualified]           ("tcp port 80" means "tcp and port 80")
//!            | qualified
//! proto     := tcp | udp | icmp | icmp6 | arp | ip | ip6
//! qualified := [src | dst] (host ADDR | port N | net CIDR)
//! ```
//!
//! This evaluation is the exact one. The kernel runs a pre-filter compiled
//! from the same tree ([`super::bpf`]) that turns away only what this one
//! surely would: a BPF program that had to agree with the decoder on every
//! packet (IPv6 extension headers, IPv4 options, ARP, VLAN tags) would lose
//! packets silently where it did not, while a pre-filter that is unsure
//! lets the packet through.

use std::net::IpAddr;

use ipnet::IpNet;

use super::decode::{Net, Packet, Transport};

/// A parsed filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    /// Matches every packet (the empty filter).
    All,
    Proto(Proto),
    Host(Dir, IpAddr),
    Port(Dir, u16),
    Net(Dir, IpNet),
    Not(Box<Filter>),
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
}

/// A protocol keyword.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    Tcp,
    Udp,
    Icmp,
    Icmp6,
    Arp,
    Ip,
    Ip6,
}

/// Which address or port a primitive looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    Src,
    Dst,
    Either,
}

/// A malformed filter: what was wrong and where (1-based column).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// Column of the offending word in the filter text, counting from 1.
    pub position: usize,
    /// What was found and what would be right.
    pub message: String,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "at position {}: {}", self.position, self.message)
    }
}

const PRIMITIVES: &str =
    "tcp, udp, icmp, icmp6, arp, ip, ip6, host, port, net, src, dst, not or '('";

/// How deep parentheses and `not` may nest. The parser, the matcher and
/// the filter's drop all recurse once per level, so without a bound a
/// filter nested 20,000 deep overflows the stack; tcpdump filters written
/// by people nest a handful of levels.
pub const MAX_DEPTH: usize = 100;

/// How many primitives (`tcp`, `port 80`, ...) one filter may join: each
/// `and`/`or` adds a level to the tree the matcher walks.
pub const MAX_TERMS: usize = 1000;

/// Parses a filter; the empty text matches everything.
pub fn parse(text: &str) -> Result<Filter, ParseError> {
    let tokens = tokenize(text);
    if tokens.is_empty() {
        return Ok(Filter::All);
    }
    let mut p = Parser {
        tokens,
        at: 0,
        end: text.chars().count() + 1,
        depth: 0,
        terms: 0,
    };
    let filter = p.or()?;
    match p.peek() {
        None => Ok(filter),
        Some((pos, word)) => Err(ParseError {
            position: pos,
            message: format!("unexpected \"{word}\": expected \"and\", \"or\" or the end"),
        }),
    }
}

/// Splits into words and parentheses, each with its 1-based column.
fn tokenize(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut word: Option<(usize, String)> = None;
    for (i, c) in text.chars().enumerate() {
        let col = i + 1;
        if c.is_whitespace() || c == '(' || c == ')' {
            out.extend(word.take());
            if c != ' ' && !c.is_whitespace() {
                out.push((col, c.to_string()));
            }
        } else {
            word.get_or_insert_with(|| (col, String::new())).1.push(c);
        }
    }
    out.extend(word);
    out
}

struct Parser {
    tokens: Vec<(usize, String)>,
    at: usize,
    /// The column just past the text, for "found the end" errors.
    end: usize,
    /// Parentheses and `not`s open at this point ([`MAX_DEPTH`]).
    depth: usize,
    /// Primitives parsed so far ([`MAX_TERMS`]).
    terms: usize,
}

impl Parser {
    fn peek(&self) -> Option<(usize, &str)> {
        self.tokens.get(self.at).map(|(p, w)| (*p, w.as_str()))
    }

    fn next_word(&mut self, wanted: &str) -> Result<(usize, String), ParseError> {
        match self.tokens.get(self.at) {
            Some(t) => {
                self.at += 1;
                Ok(t.clone())
            }
            None => Err(ParseError {
                position: self.end,
                message: format!("expected {wanted}, found the end of the filter"),
            }),
        }
    }

    fn or(&mut self) -> Result<Filter, ParseError> {
        self.chain(["or", "||"], Self::and, Filter::Or)
    }

    fn and(&mut self) -> Result<Filter, ParseError> {
        self.chain(["and", "&&"], Self::unary, Filter::And)
    }

    /// Operands of one binary operator (either spelling), joined left to right.
    fn chain(
        &mut self,
        op: [&str; 2],
        operand: fn(&mut Self) -> Result<Filter, ParseError>,
        join: fn(Box<Filter>, Box<Filter>) -> Filter,
    ) -> Result<Filter, ParseError> {
        let mut left = operand(self)?;
        while self.peek().is_some_and(|(_, w)| op.contains(&w)) {
            self.at += 1;
            left = join(Box::new(left), Box::new(operand(self)?));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Filter, ParseError> {
        if let Some((pos, "not" | "!")) = self.peek() {
            self.at += 1;
            self.nest(pos)?;
            let inner = self.unary();
            self.depth -= 1;
            return Ok(Filter::Not(Box::new(inner?)));
        }
        self.primary()
    }

    /// Enters one level of nesting, refusing beyond [`MAX_DEPTH`].
    fn nest(&mut self, pos: usize) -> Result<(), ParseError> {
        if self.depth >= MAX_DEPTH {
            return Err(ParseError {
                position: pos,
                message: format!(
                    "the filter nests parentheses and \"not\" deeper than {MAX_DEPTH} levels: \
                     at most {MAX_DEPTH}"
                ),
            });
        }
        self.depth += 1;
        Ok(())
    }

    fn primary(&mut self) -> Result<Filter, ParseError> {
        let (pos, word) = self.next_word(&format!("one of {PRIMITIVES}"))?;
        if word == "(" {
            self.nest(pos)?;
            let inner = self.or();
            self.depth -= 1;
            let inner = inner?;
            let (pos, close) = self.next_word("')'")?;
            if close != ")" {
                return Err(ParseError {
                    position: pos,
                    message: format!("expected ')', found \"{close}\""),
                });
            }
            return Ok(inner);
        }
        self.terms += 1;
        if self.terms > MAX_TERMS {
            return Err(ParseError {
                position: pos,
                message: format!(
                    "the filter has more than {MAX_TERMS} primitives: at most {MAX_TERMS}"
                ),
            });
        }
        let proto = match word.as_str() {
            "tcp" => Some(Proto::Tcp),
            "udp" => Some(Proto::Udp),
            "icmp" => Some(Proto::Icmp),
            "icmp6" => Some(Proto::Icmp6),
            "arp" => Some(Proto::Arp),
            "ip" => Some(Proto::Ip),
            "ip6" => Some(Proto::Ip6),
            _ => None,
        };
        if let Some(proto) = proto {
            // tcpdump's "tcp port 80": a protocol directly followed by a
            // qualified primitive is joined to it by "and".
            if matches!(
                self.peek(),
                Some((_, "src" | "dst" | "host" | "port" | "net"))
            ) {
                let (pos, word) = self.next_word("")?;
                let rest = self.qualified(pos, &word)?;
                return Ok(Filter::And(Box::new(Filter::Proto(proto)), Box::new(rest)));
            }
            return Ok(Filter::Proto(proto));
        }
        self.qualified(pos, &word)
    }

    fn qualified(&mut self, pos: usize, word: &str) -> Result<Filter, ParseError> {
        let (dir, pos, word) = match word {
            "src" | "dst" => {
                let dir = if word == "src" { Dir::Src } else { Dir::Dst };
                let (pos, w) = self.next_word("host, port or net")?;
                (dir, pos, w)
            }
            _ => (Dir::Either, pos, word.to_string()),
        };
        match word.as_str() {
            "host" => {
                let (pos, value) = self.next_word("an IPv4 or IPv6 address after \"host\"")?;
                let addr = value.parse::<IpAddr>().map_err(|_| ParseError {
                    position: pos,
                    message: format!(
                        "\"{value}\" is not an IP address: host takes a numeric IPv4 or IPv6 address"
                    ),
                })?;
                Ok(Filter::Host(dir, addr))
            }
            "port" => {
                let (pos, value) = self.next_word("a port number (0-65535) after \"port\"")?;
                let port = value
                    .parse::<u16>()
                    .ok()
                    .or_else(|| {
                        crate::services::port_of(&value, crate::services::Proto::Tcp)
                            .or_else(|| crate::services::port_of(&value, crate::services::Proto::Udp))
                    })
                    .ok_or_else(|| ParseError {
                        position: pos,
                        message: format!(
                            "\"{value}\" is not a port: give a number from 0 to 65535 or a service name"
                        ),
                    })?;
                Ok(Filter::Port(dir, port))
            }
            "net" => {
                let (pos, value) = self.next_word("a network in CIDR form after \"net\"")?;
                let net = value.parse::<IpNet>().map_err(|_| ParseError {
                    position: pos,
                    message: format!(
                        "\"{value}\" is not a network: net takes CIDR such as 10.0.0.0/8 or fd00::/8"
                    ),
                })?;
                Ok(Filter::Net(dir, net.trunc()))
            }
            _ if dir != Dir::Either => Err(ParseError {
                position: pos,
                message: format!("expected host, port or net, found \"{word}\""),
            }),
            _ => Err(ParseError {
                position: pos,
                message: format!("expected one of {PRIMITIVES}, found \"{word}\""),
            }),
        }
    }
}

impl Filter {
    /// Whether a decoded packet matches.
    pub fn matches(&self, p: &Packet) -> bool {
        match self {
            Filter::All => true,
            Filter::Proto(proto) => proto_matches(*proto, p),
            Filter::Host(dir, addr) => {
                addrs(p).is_some_and(|(s, d)| pick(*dir, s, d, |a| a == *addr))
            }
            Filter::Net(dir, net) => {
                addrs(p).is_some_and(|(s, d)| pick(*dir, s, d, |a| net.contains(&a)))
            }
            Filter::Port(dir, port) => p
                .ports()
                .is_some_and(|(s, d)| pick(*dir, s, d, |x| x == *port)),
            Filter::Not(f) => !f.matches(p),
            Filter::And(a, b) => a.matches(p) && b.matches(p),
            Filter::Or(a, b) => a.matches(p) || b.matches(p),
        }
    }
}

fn pick<T: Copy>(dir: Dir, src: T, dst: T, test: impl Fn(T) -> bool) -> bool {
    match dir {
        Dir::Src => test(src),
        Dir::Dst => test(dst),
        Dir::Either => test(src) || test(dst),
    }
}

/// Source and destination addresses: IP's, or ARP's protocol addresses
/// (as tcpdump's `host` matches ARP too).
fn addrs(p: &Packet) -> Option<(IpAddr, IpAddr)> {
    match &p.net {
        Some(Net::Arp {
            sender_ip: Some(s),
            target_ip: Some(t),
            ..
        }) => Some(((*s).into(), (*t).into())),
        _ => p.ips(),
    }
}

fn proto_matches(proto: Proto, p: &Packet) -> bool {
    match proto {
        Proto::Tcp => matches!(p.transport, Some(Transport::Tcp { .. })),
        Proto::Udp => matches!(p.transport, Some(Transport::Udp { .. })),
        Proto::Icmp => matches!(p.transport, Some(Transport::Icmp(_))),
        Proto::Icmp6 => matches!(p.transport, Some(Transport::Icmp6(_))),
        Proto::Arp => matches!(p.net, Some(Net::Arp { .. })),
        Proto::Ip => matches!(p.net, Some(Net::Ipv4 { .. })),
        Proto::Ip6 => matches!(p.net, Some(Net::Ipv6 { .. })),
    }
}

#[cfg(test)]
mod tests {
    use super::super::decode::{LinkType, decode, tests as frames};
    use super::*;

    fn matches(filter: &str, frame: &[u8]) -> bool {
        parse(filter)
            .unwrap_or_else(|e| panic!("{filter}: {e}"))
            .matches(&decode(LinkType::Ethernet, frame))
    }

    #[test]
    fn primitives_match_what_they_name() {
        let syn = frames::tcp_syn();
        let udp6 = frames::udp6_hop_by_hop();
        let arp = frames::arp_request();
        let icmp = frames::icmp_echo();
        assert!(matches("", &syn));
        assert!(matches("tcp", &syn) && !matches("udp", &syn));
        assert!(matches("tcp port 80", &syn) && matches("src port 40000", &syn));
        assert!(!matches("dst port 40000", &syn));
        assert!(matches("port http", &syn));
        assert!(matches("udp and dst port 53 and host ::1", &udp6));
        assert!(matches("ip6 and net ::/0", &udp6) && !matches("ip", &udp6));
        assert!(matches("arp and src host 10.0.0.1", &arp));
        assert!(matches("dst host 10.0.0.2", &arp) && !matches("dst host 10.0.0.1", &arp));
        assert!(matches("icmp and dst host 127.0.0.2", &icmp));
        assert!(matches("net 127.0.0.0/8", &icmp) && !matches("net 10.0.0.0/8", &icmp));
        assert!(matches("not (udp or arp) and (icmp or tcp)", &icmp));
        assert!(matches("! tcp && ! udp", &arp));
        assert!(matches("tcp or udp and port 9", &syn), "and binds tighter");
    }

    #[test]
    fn malformed_filters_name_the_position() {
        for (text, pos, words) in [
            ("tcp and", 8, "found the end"),
            ("tcp or bogus", 8, "\"bogus\""),
            ("host 1.2.3", 6, "not an IP address"),
            ("port 70000", 6, "not a port"),
            ("net 10.0.0.0/33", 5, "CIDR"),
            ("(tcp", 5, "')'"),
            ("tcp)", 4, "unexpected \")\""),
            ("src tcp", 5, "host, port or net"),
            ("tcp udp", 5, "unexpected \"udp\""),
        ] {
            let err = parse(text).expect_err(text);
            assert_eq!(err.position, pos, "{text}: {err}");
            assert!(err.message.contains(words), "{text}: {err}");
        }
    }

    #[test]
    fn odd_text_never_panics() {
        for text in [
            "(((",
            ")))",
            "not",
            "not not not tcp",
            "src",
            "é é",
            "\t(\ttcp\t)",
        ] {
            let _ = parse(text);
        }
    }

    #[test]
    fn hardening_13_deep_filters_are_refused_not_overflowed() {
        let deep = format!("{}tcp{}", "(".repeat(20_000), ")".repeat(20_000));
        let err = parse(&deep).unwrap_err();
        assert!(err.message.contains("at most 100"), "{err}");
        let nots = format!("{}tcp", "not ".repeat(20_000));
        assert!(parse(&nots).unwrap_err().message.contains("at most 100"));
        let long = vec!["tcp"; 100_000].join(" and ");
        let err = parse(&long).unwrap_err();
        assert!(err.message.contains("at most 1000"), "{err}");
        let fits = format!("{}tcp{}", "(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
        assert!(parse(&fits).is_ok());
        assert!(parse(&vec!["tcp"; MAX_TERMS].join(" or ")).is_ok());
    }
}
