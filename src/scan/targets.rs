//! Scan targets: addresses, CIDR blocks, ranges and names, as typed on the
//! command line or read from a file, turned into one deduplicated list.
//!
//! A /16 is 65,536 hosts and an IPv6 /64 more than anyone will scan, so the
//! list is kept as sorted, merged address intervals rather than expanded:
//! overlapping blocks and repeated addresses disappear in the merge, the
//! size is known up front (for sharding and the progress bar), and host
//! number `i` is found by binary search.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

use crate::error::{Error, Result};

/// One target as typed, before names are resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Spec {
    /// A literal address, a CIDR block, or a range: an inclusive interval.
    Span(Span),
    /// A host name, resolved later.
    Name(String),
}

/// An inclusive interval of addresses of one family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Span {
    V4(u32, u32),
    V6(u128, u128),
}

impl From<IpAddr> for Span {
    fn from(ip: IpAddr) -> Span {
        Span::single(ip)
    }
}

impl Span {
    fn single(ip: IpAddr) -> Span {
        match ip {
            IpAddr::V4(a) => Span::V4(a.into(), a.into()),
            IpAddr::V6(a) => Span::V6(a.into(), a.into()),
        }
    }

    /// The span's first address.
    pub fn first(self) -> IpAddr {
        match self {
            Span::V4(a, _) => IpAddr::V4(a.into()),
            Span::V6(a, _) => IpAddr::V6(a.into()),
        }
    }

    /// The span's last address.
    pub fn last(self) -> IpAddr {
        match self {
            Span::V4(_, b) => IpAddr::V4(b.into()),
            Span::V6(_, b) => IpAddr::V6(b.into()),
        }
    }

    /// Whether every address of the span is a loopback address: in
    /// 127.0.0.0/8, `::1`, or 127.0.0.0/8 in its IPv4-mapped form
    /// (`::ffff:127.0.0.1` is the IPv4 loopback; `::ffff:10.0.0.1` is not).
    pub fn is_loopback(self) -> bool {
        match self {
            Span::V4(a, b) => a >> 24 == 127 && b >> 24 == 127,
            Span::V6(a, b) => {
                (a == 1 && b == 1) || (MAPPED_LOOPBACK.contains(&a) && MAPPED_LOOPBACK.contains(&b))
            }
        }
    }
}

/// 127.0.0.0/8 as IPv4-mapped IPv6 addresses (`::ffff:127.0.0.0/104`).
const MAPPED_LOOPBACK: std::ops::RangeInclusive<u128> = 0xffff_7f00_0000..=0xffff_7fff_ffff;

/// An address, or `first-last`.
impl std::fmt::Display for Span {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.first() == self.last() {
            write!(f, "{}", self.first())
        } else {
            write!(f, "{}-{}", self.first(), self.last())
        }
    }
}

/// Parses one target: `10.1.2.3`, `::1`, `[::1]`, `10.1.2.0/24`,
/// `fd00::/120`, `10.1.2.3-40` (last octet), `10.1.2.3-10.1.3.7`,
/// `fd00::1-ff` (last group), or a host name.
pub fn parse(text: &str) -> Result<Spec> {
    let bare = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(text);
    if bare.is_empty() {
        return Err(Error::usage(
            "empty target: give an address, a CIDR block, a range or a host name",
        ));
    }
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(Spec::Span(Span::single(ip)));
    }
    // The endpoint grammar's rule for numbers that are not a dotted quad
    // (127.1, 300.1.2.3), as every command has it.
    crate::endpoint::refuse_numeric(bare)?;
    if let Some((addr, bits)) = bare.split_once('/') {
        crate::endpoint::refuse_numeric(addr)?;
        let net: IpNet = bare.parse().map_err(|_| {
            Error::usage(format!(
                "invalid CIDR block \"{text}\": want ADDRESS/BITS, such as 10.1.2.0/24 or fd00::/120{}",
                bits_hint(addr, bits)
            ))
        })?;
        // Host bits are ignored, as nmap does: 10.1.2.5/24 is 10.1.2.0/24.
        let net = net.trunc();
        return Ok(Spec::Span(match net {
            IpNet::V4(n) => Span::V4(n.network().into(), n.broadcast().into()),
            IpNet::V6(n) => Span::V6(n.network().into(), n.broadcast().into()),
        }));
    }
    if let Some((from, to)) = bare.split_once('-') {
        if let Ok(start) = from.parse::<IpAddr>() {
            return range(text, start, to).map(Spec::Span);
        }
        crate::endpoint::refuse_numeric(from)?;
    }
    let valid_name = bare.len() <= 253
        && bare.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    if valid_name && bare.bytes().any(|b| b.is_ascii_alphabetic()) {
        return Ok(Spec::Name(bare.to_string()));
    }
    Err(Error::usage(format!(
        "invalid target \"{text}\": want an address (10.1.2.3, ::1), a CIDR block (10.1.2.0/24), \
         a range (10.1.2.3-40) or a host name"
    )))
}

fn bits_hint(addr: &str, bits: &str) -> String {
    let max = if addr.contains(':') { 128 } else { 32 };
    match bits.parse::<u32>() {
        Ok(n) if n > max => format!(" (/{n} is longer than {max} bits)"),
        _ => String::new(),
    }
}

/// The end of a range: a whole address, or the last octet (IPv4) or last
/// group (IPv6) of the start address replaced.
fn range(text: &str, start: IpAddr, to: &str) -> Result<Span> {
    let bad = || {
        Error::usage(format!(
            "invalid range \"{text}\": want START-END with END a whole address or the last \
             part of START, such as 10.1.2.3-40 or fd00::1-ff"
        ))
    };
    let end = match (start, to.parse::<IpAddr>()) {
        (_, Ok(end)) => end,
        (IpAddr::V4(s), Err(_)) => {
            let last: u8 = to.parse().map_err(|_| bad())?;
            let [a, b, c, _] = s.octets();
            IpAddr::V4(Ipv4Addr::new(a, b, c, last))
        }
        (IpAddr::V6(s), Err(_)) => {
            if to.is_empty() || to.len() > 4 {
                return Err(bad());
            }
            let last = u16::from_str_radix(to, 16).map_err(|_| bad())?;
            let mut groups = s.segments();
            groups[7] = last;
            IpAddr::V6(Ipv6Addr::from(groups))
        }
    };
    let span = match (start, end) {
        (IpAddr::V4(s), IpAddr::V4(e)) => Span::V4(s.into(), e.into()),
        (IpAddr::V6(s), IpAddr::V6(e)) => Span::V6(s.into(), e.into()),
        _ => {
            return Err(Error::usage(format!(
                "invalid range \"{text}\": both ends must be IPv4 or both IPv6"
            )));
        }
    };
    let reversed = match span {
        Span::V4(a, b) => a > b,
        Span::V6(a, b) => a > b,
    };
    if reversed {
        return Err(Error::usage(format!(
            "invalid range \"{text}\": it ends before it starts; write the lower address first"
        )));
    }
    Ok(span)
}

/// Reads targets from a file's text (`-iL`): whitespace-separated, `#`
/// starts a comment that runs to the end of the line.
pub fn parse_list(text: &str) -> Result<Vec<Spec>> {
    text.lines()
        .map(|line| line.split('#').next().unwrap_or_default())
        .flat_map(str::split_whitespace)
        .map(parse)
        .collect()
}

/// The deduplicated set of hosts to scan.
#[derive(Debug, Default)]
pub struct Targets {
    /// Merged, sorted, disjoint intervals: IPv4 ones first.
    spans: Vec<Span>,
    /// `starts[i]`: the number of hosts before `spans[i]`.
    starts: Vec<u128>,
    len: u128,
    /// Names the user typed, for display, by the address they resolved to.
    names: HashMap<IpAddr, String>,
}

impl Targets {
    /// Builds the set from spans, merging overlaps and repeats.
    pub fn new(spans: impl IntoIterator<Item = Span>, names: HashMap<IpAddr, String>) -> Self {
        let mut v4: Vec<(u32, u32)> = Vec::new();
        let mut v6: Vec<(u128, u128)> = Vec::new();
        for span in spans {
            match span {
                Span::V4(a, b) => v4.push((a, b)),
                Span::V6(a, b) => v6.push((a, b)),
            }
        }
        let mut spans: Vec<Span> = merge(v4).into_iter().map(|(a, b)| Span::V4(a, b)).collect();
        spans.extend(merge(v6).into_iter().map(|(a, b)| Span::V6(a, b)));
        let mut starts = Vec::with_capacity(spans.len());
        let mut len: u128 = 0;
        for span in &spans {
            starts.push(len);
            let size = match *span {
                Span::V4(a, b) => u128::from(b - a) + 1,
                // An IPv6 /0 has 2^128 hosts, one more than u128 holds:
                // saturate, and let the caller refuse a scan that large.
                Span::V6(a, b) => (b - a).saturating_add(1),
            };
            len = len.saturating_add(size);
        }
        Targets {
            spans,
            starts,
            len,
            names,
        }
    }

    /// The number of distinct hosts.
    pub fn len(&self) -> u128 {
        self.len
    }

    /// Whether there is nothing to scan.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Host number `index` (`index < len()`), in address order.
    pub fn get(&self, index: u128) -> IpAddr {
        let i = self.starts.partition_point(|&s| s <= index) - 1;
        let offset = index - self.starts[i];
        match self.spans[i] {
            Span::V4(a, _) => IpAddr::V4(Ipv4Addr::from(a + offset as u32)),
            Span::V6(a, _) => IpAddr::V6(Ipv6Addr::from(a + offset)),
        }
    }

    /// The first address outside loopback, if any: what `--authorized`
    /// must cover.
    pub fn outside_loopback(&self) -> Option<IpAddr> {
        // A span that starts inside loopback and runs past it: name the
        // first address past loopback, not the span's start.
        self.spans
            .iter()
            .find(|s| !s.is_loopback())
            .map(|s| match *s {
                Span::V4(a, _) if a >> 24 == 127 => IpAddr::V4(Ipv4Addr::new(128, 0, 0, 0)),
                Span::V6(1, _) => IpAddr::V6(Ipv6Addr::from(2u128)),
                Span::V6(a, _) if MAPPED_LOOPBACK.contains(&a) => {
                    IpAddr::V6(Ipv6Addr::from(MAPPED_LOOPBACK.end() + 1))
                }
                other => other.first(),
            })
    }

    /// The name the user typed for `ip`, if it came from one.
    pub fn name(&self, ip: IpAddr) -> Option<&str> {
        self.names.get(&ip).map(String::as_str)
    }
}

fn merge<T: Copy + Ord + num::One>(mut spans: Vec<(T, T)>) -> Vec<(T, T)> {
    spans.sort_unstable();
    let mut out: Vec<(T, T)> = Vec::with_capacity(spans.len());
    for (a, b) in spans {
        match out.last_mut() {
            // Overlapping or adjacent (prev.1 + 1 == a) intervals join.
            Some(prev) if a <= prev.1 || num::One::succ(prev.1) == Some(a) => {
                prev.1 = prev.1.max(b);
            }
            _ => out.push((a, b)),
        }
    }
    out
}

/// Checked successor for the two address widths.
mod num {
    pub trait One: Sized {
        fn succ(self) -> Option<Self>;
    }
    impl One for u32 {
        fn succ(self) -> Option<Self> {
            self.checked_add(1)
        }
    }
    impl One for u128 {
        fn succ(self) -> Option<Self> {
            self.checked_add(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(text: &str) -> Span {
        match parse(text).unwrap() {
            Spec::Span(s) => s,
            Spec::Name(n) => panic!("{n} parsed as a name"),
        }
    }

    fn err(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    #[test]
    fn addresses_blocks_and_ranges() {
        assert_eq!(span("10.1.2.3"), Span::V4(0x0a01_0203, 0x0a01_0203));
        assert_eq!(span("[::1]"), Span::V6(1, 1));
        assert_eq!(span("10.1.2.0/24"), Span::V4(0x0a01_0200, 0x0a01_02ff));
        assert_eq!(span("10.1.2.77/24"), Span::V4(0x0a01_0200, 0x0a01_02ff));
        assert_eq!(span("10.1.2.3/32"), Span::V4(0x0a01_0203, 0x0a01_0203));
        assert_eq!(span("0.0.0.0/0"), Span::V4(0, u32::MAX));
        assert_eq!(span("::1/128"), Span::V6(1, 1));
        assert_eq!(
            span("fd00::/120"),
            Span::V6(0xfd00 << 112, (0xfd00 << 112) + 255)
        );
        assert_eq!(span("10.1.2.3-40"), Span::V4(0x0a01_0203, 0x0a01_0228));
        assert_eq!(
            span("10.1.2.250-10.1.3.4"),
            Span::V4(0x0a01_02fa, 0x0a01_0304)
        );
        assert_eq!(
            span("fd00::1-ff"),
            Span::V6((0xfd00 << 112) + 1, (0xfd00 << 112) + 255)
        );
        assert_eq!(span("10.1.2.3-3"), Span::V4(0x0a01_0203, 0x0a01_0203));
        assert_eq!(parse("localhost").unwrap(), Spec::Name("localhost".into()));
        assert_eq!(
            parse("db-1.example").unwrap(),
            Spec::Name("db-1.example".into())
        );
    }

    #[test]
    fn malformed_targets_say_what_is_wrong() {
        assert!(err("10.1.2.40-3").contains("ends before it starts"));
        assert!(err("10.1.2.3-300").contains("invalid range"));
        assert!(err("10.1.2.3-::1").contains("both ends"));
        assert!(err("10.1.2.0/33").contains("longer than 32 bits"));
        assert!(err("::/129").contains("longer than 128 bits"));
        assert!(err("10.1.2.0/x").contains("invalid CIDR block"));
        assert!(err("").contains("empty target"));
        assert!(err("300.1.2.3").contains("octet 300"));
        assert!(err("a..b").contains("invalid target"));
        assert!(err("fd00::1-12345").contains("invalid range"));
    }

    #[test]
    fn lists_skip_comments_and_blank_lines() {
        let specs = parse_list("# hosts\n127.0.0.1  ::1 # both\n\n  127.0.0.0/30\n").unwrap();
        assert_eq!(specs.len(), 3);
        assert!(parse_list("127.0.0.1\nbad/99\n").is_err());
    }

    #[test]
    fn overlaps_and_repeats_merge() {
        let t = Targets::new(
            [
                span("10.0.0.0/30"),
                span("10.0.0.2-5"),
                span("10.0.0.3"),
                span("10.0.0.6"),
                span("::1"),
                span("10.0.0.9"),
                span("::1"),
            ],
            HashMap::new(),
        );
        // 10.0.0.0-6, 10.0.0.9, ::1.
        assert_eq!(t.len(), 9);
        assert_eq!(t.get(0), "10.0.0.0".parse::<IpAddr>().unwrap());
        assert_eq!(t.get(6), "10.0.0.6".parse::<IpAddr>().unwrap());
        assert_eq!(t.get(7), "10.0.0.9".parse::<IpAddr>().unwrap());
        assert_eq!(t.get(8), "::1".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn whole_address_spaces_count_without_overflow() {
        let t = Targets::new([span("0.0.0.0/0")], HashMap::new());
        assert_eq!(t.len(), 1 << 32);
        assert_eq!(
            t.get((1 << 32) - 1),
            "255.255.255.255".parse::<IpAddr>().unwrap()
        );
        let t = Targets::new([span("::/0")], HashMap::new());
        assert_eq!(t.len(), u128::MAX);
    }

    #[test]
    fn loopback_check_covers_whole_spans() {
        let t = Targets::new([span("127.0.0.0/8"), span("::1")], HashMap::new());
        assert_eq!(t.outside_loopback(), None);
        let t = Targets::new([span("127.255.255.250-128.0.0.3")], HashMap::new());
        assert_eq!(t.outside_loopback(), Some("128.0.0.0".parse().unwrap()));
        let t = Targets::new([span("126.0.0.1-127.0.0.1")], HashMap::new());
        assert_eq!(t.outside_loopback(), Some("126.0.0.1".parse().unwrap()));
        let t = Targets::new([span("::/127")], HashMap::new());
        assert_eq!(t.outside_loopback(), Some("::".parse().unwrap()));
        let t = Targets::new([span("::1-2")], HashMap::new());
        assert_eq!(t.outside_loopback(), Some("::2".parse().unwrap()));
    }

    #[test]
    fn hardening_05_mapped_loopback_is_loopback_and_mapped_other_is_not() {
        for inside in [
            "::ffff:127.0.0.1",
            "[::ffff:127.0.0.1]",
            "::ffff:127.0.0.0/104",
            "::ffff:127.255.255.254-ffff",
        ] {
            let t = Targets::new([span(inside)], HashMap::new());
            assert_eq!(t.outside_loopback(), None, "{inside}");
        }
        for (outside, first) in [
            ("::ffff:10.0.0.1", "::ffff:10.0.0.1"),
            (
                "::ffff:126.255.255.255-::ffff:127.0.0.1",
                "::ffff:126.255.255.255",
            ),
            (
                "::ffff:127.255.255.255-::ffff:128.0.0.1",
                "::ffff:128.0.0.0",
            ),
            ("::ffff:0:0/96", "::ffff:0.0.0.0"),
            ("::7f00:1", "::7f00:1"),
        ] {
            let t = Targets::new([span(outside)], HashMap::new());
            assert_eq!(
                t.outside_loopback(),
                Some(first.parse().unwrap()),
                "{outside}"
            );
        }
    }
}
