//! `--allow CIDR` and `--deny CIDR`: which client addresses a server talks
//! to. Deny wins over allow; with no `--allow`, every address not denied is
//! allowed. IPv4-mapped IPv6 addresses (`::ffff:10.0.0.1`, seen on a
//! dual-stack `[::]` listener) are matched as the IPv4 address they carry.

use std::net::IpAddr;

use ipnet::IpNet;

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
        let ip = ip.to_canonical();
        if self.deny.iter().any(|net| net.contains(&ip)) {
            return false;
        }
        self.allow.is_empty() || self.allow.iter().any(|net| net.contains(&ip))
    }
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
