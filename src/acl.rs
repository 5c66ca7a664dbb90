//! `--allow CIDR` and `--deny CIDR`: which client addresses a server talks
//! to. Deny wins over allow; with no `--allow`, every address not denied is
//! allowed.
//!
//! One rule for both address families, so that a client gets the same
//! answer from an IPv4 listener (`127.0.0.1`, `0.0.0.0`) and from a
//! dual-stack one (`::`), where the kernel shows the same IPv4 client as
//! the IPv4-mapped address `::ffff:a.b.c.d`: **an IPv4 client has two
//! forms, `a.b.c.d` and `::ffff:a.b.c.d`, and a rule matches it when it
//! contains either form**, whichever family the listener is. So
//! `127.0.0.1`, `127.0.0.0/8`, `::ffff:127.0.0.1` and `::ffff:127.0.0.0/104`
//! all match the client 127.0.0.1; `0.0.0.0/0` and `::ffff:0:0/96` match
//! every IPv4 client; `::/0` matches every client of either family (it
//! holds every `::ffff:` address), while `0.0.0.0/0` matches no IPv6
//! client. An IPv6 client (`::1`) has only its own form.
//!
//! `--allowfile FILE` and `--denyfile FILE` (ncat's) add the rules listed
//! in a file: one address or CIDR block per line (several on a line,
//! separated by blanks, are taken too), `#` starting a comment to the end
//! of the line, blank lines ignored. A line that is not an address stops
//! the command (exit 2) with the file, the line number and the value.

use std::net::IpAddr;
use std::path::Path;

use ipnet::IpNet;

use crate::error::{Error, Result};

/// Allow and deny lists.
#[derive(Clone, Debug, Default)]
pub struct Acl {
    allow: Vec<IpNet>,
    deny: Vec<IpNet>,
}

impl Acl {
    /// Lists as given on the command line.
    pub fn new(allow: Vec<IpNet>, deny: Vec<IpNet>) -> Self {
        Acl { allow, deny }
    }

    /// Whether a client at `ip` may be served.
    pub fn admits(&self, ip: IpAddr) -> bool {
        let forms = forms(ip);
        let matches = |net: &IpNet| forms.iter().flatten().any(|ip| net.contains(ip));
        if self.deny.iter().any(matches) {
            return false;
        }
        self.allow.is_empty() || self.allow.iter().any(matches)
    }
}

/// Every form of a client's address that a rule may name: an IPv4 client
/// (`10.0.0.1`, or `::ffff:10.0.0.1` as a dual-stack listener sees it) is
/// both; any other IPv6 address only itself.
fn forms(ip: IpAddr) -> [Option<IpAddr>; 2] {
    let v4 = match ip {
        IpAddr::V4(v4) => Some(v4),
        IpAddr::V6(v6) => v6.to_ipv4_mapped(),
    };
    match v4 {
        Some(v4) => [Some(IpAddr::V4(v4)), Some(IpAddr::V6(v4.to_ipv6_mapped()))],
        None => [Some(ip), None],
    }
}

/// The rules listed in `path` (see the module docs): a missing or
/// unreadable file, or a line that is not an address or CIDR block, is
/// bad input (exit 2) named by `flag`, file and line.
pub fn read_rules(flag: &str, path: &Path) -> Result<Vec<IpNet>> {
    let text = std::fs::read(path).map_err(|e| Error::Local {
        what: format!("{flag} {}", path.display()),
        reason: crate::error::describe_io(&e),
    })?;
    parse_rules(&String::from_utf8_lossy(&text)).map_err(|(line, value)| {
        Error::usage(format!(
            "{flag} {}:{line}: invalid address \"{}\": write one address or CIDR block \
             per line (10.0.0.1, 10.0.0.0/8, fd00::/8), # for comments",
            path.display(),
            crate::error::printable(&value)
        ))
    })
}

/// The rules in a file's text, or the first bad value and its line
/// number (from 1).
fn parse_rules(text: &str) -> Result<Vec<IpNet>, (usize, String)> {
    let mut rules = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or_default();
        for word in line.split_whitespace() {
            rules.push(parse_cidr(word).map_err(|_| (n + 1, word.to_string()))?);
        }
    }
    Ok(rules)
}

/// Parses a CIDR block (`10.0.0.0/8`, `fd00::/8`) or a single address.
pub fn parse_cidr(text: &str) -> Result<IpNet, String> {
    text.parse::<IpNet>()
        .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
        .map(|net| net.trunc())
        .map_err(|_| format!("invalid CIDR block \"{text}\": write ADDR/PREFIX, for example 10.0.0.0/8 or fd00::/8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acl(allow: &[&str], deny: &[&str]) -> Acl {
        let p = |v: &[&str]| v.iter().map(|s| parse_cidr(s).unwrap()).collect();
        Acl::new(p(allow), p(deny))
    }

    #[test]
    fn deny_wins_and_empty_allow_admits_all() {
        let a = acl(&[], &["127.0.0.2"]);
        assert!(a.admits("127.0.0.1".parse().unwrap()));
        assert!(!a.admits("127.0.0.2".parse().unwrap()));
        let a = acl(&["127.0.0.0/8"], &["127.0.0.5/32"]);
        assert!(a.admits("127.9.9.9".parse().unwrap()));
        assert!(!a.admits("127.0.0.5".parse().unwrap()));
        assert!(!a.admits("::1".parse().unwrap()));
        assert!(a.admits("::ffff:127.0.0.1".parse().unwrap()));
    }

    /// Which clients a rule matches: the IPv4 client 127.0.0.1 (as an
    /// IPv4 listener sees it, and as `::ffff:127.0.0.1` on a dual-stack
    /// one), the IPv6 client `::1`, both, or neither.
    #[derive(Clone, Copy)]
    enum Hits {
        V4,
        V6,
        Both,
        Neither,
    }

    #[test]
    fn hardening_05_every_rule_form_matches_both_forms_of_an_ipv4_client() {
        use Hits::{Both, Neither, V4, V6};
        let rules = [
            (V4, "127.0.0.1"),
            (V4, "127.0.0.0/8"),
            (V4, "::ffff:127.0.0.1"),
            (V4, "::ffff:127.0.0.0/104"),
            (V4, "::ffff:0:0/96"),
            (Both, "::/0"),
            (V4, "0.0.0.0/0"),
            (V6, "::1"),
            (Neither, "10.0.0.0/8"),
            (Neither, "::ffff:10.0.0.0/104"),
        ];
        let v4: IpAddr = "127.0.0.1".parse().unwrap();
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        let v6: IpAddr = "::1".parse().unwrap();
        for (hits, rule) in rules {
            let deny = acl(&[], &[rule]);
            let allow = acl(&[rule], &[]);
            let hits_v4 = matches!(hits, V4 | Both);
            let hits_v6 = matches!(hits, V6 | Both);
            for (client, hit) in [(v4, hits_v4), (mapped, hits_v4), (v6, hits_v6)] {
                assert_eq!(deny.admits(client), !hit, "--deny {rule}, client {client}");
                assert_eq!(allow.admits(client), hit, "--allow {rule}, client {client}");
            }
        }
    }

    #[test]
    fn hardening_05_mapped_client_outside_a_rule_is_not_matched() {
        // ::ffff:10.0.0.1 is the IPv4 client 10.0.0.1: outside both loopback forms.
        let a = acl(&["127.0.0.0/8", "::ffff:127.0.0.0/104"], &[]);
        assert!(!a.admits("::ffff:10.0.0.1".parse().unwrap()));
        assert!(!a.admits("10.0.0.1".parse().unwrap()));
        // An IPv6 address that is not mapped is never taken for IPv4.
        let a = acl(&[], &["0.0.0.0/0"]);
        assert!(a.admits("::7f00:1".parse().unwrap()));
        assert!(a.admits("64:ff9b::7f00:1".parse().unwrap()));
    }

    #[test]
    fn rule_files_take_comments_blanks_and_name_the_bad_line() {
        let text = "# office\n\n10.0.0.0/8   # the lab\n  ::1 192.168.1.7\n\t\n";
        let rules: Vec<String> = parse_rules(text)
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(rules, ["10.0.0.0/8", "::1/128", "192.168.1.7/32"]);
        assert_eq!(
            parse_rules("127.0.0.1\n\n10.0.0.0/33 # typo\n"),
            Err((3, "10.0.0.0/33".to_string()))
        );
        assert_eq!(parse_rules("").unwrap(), []);
    }

    #[test]
    fn cidr_errors_name_the_value() {
        assert!(
            parse_cidr("10.0.0.0/33")
                .unwrap_err()
                .contains("\"10.0.0.0/33\"")
        );
        assert_eq!(parse_cidr("10.1.2.3/8").unwrap().to_string(), "10.0.0.0/8");
    }
}
