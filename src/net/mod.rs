//! Socket plumbing shared by every command: name resolution with the
//! `-4`/`-6`/`-n` rules, dialing (Happy Eyeballs for TCP), binding (with the
//! Unix-socket file rules), and one stream type over TCP and Unix sockets so
//! that sessions, the accept loop and later relays are written once.

pub mod bind;
pub mod dial;
mod stream;

use std::net::{IpAddr, SocketAddr};

pub use stream::{Accepted, Datagram, Listener, Peer, Stream};

use crate::endpoint::Host;
use crate::error::{Error, Result};

/// Raises the soft descriptor limit to the hard one (servers and scans
/// hold a socket per client or probe); returns the limit now in force.
pub fn raise_fd_limit() -> u64 {
    rlimit::increase_nofile_limit(u64::MAX)
        .or_else(|_| rlimit::getrlimit(rlimit::Resource::NOFILE).map(|(soft, _)| soft))
        .unwrap_or(1024)
}

/// Which address families a command may use (`-4`, `-6`, or both).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Family {
    #[default]
    Any,
    V4,
    V6,
}

impl Family {
    /// Whether `ip` is allowed under this restriction.
    pub fn admits(self, ip: IpAddr) -> bool {
        match self {
            Family::Any => true,
            Family::V4 => ip.is_ipv4(),
            Family::V6 => ip.is_ipv6(),
        }
    }

    fn flag(self) -> &'static str {
        match self {
            Family::Any => "",
            Family::V4 => " (-4 allows only IPv4)",
            Family::V6 => " (-6 allows only IPv6)",
        }
    }
}

/// How names become addresses.
#[derive(Clone, Copy, Debug, Default)]
pub struct Resolve {
    /// The families to keep.
    pub family: Family,
    /// `-n`: refuse names, accept only address literals (no DNS at all).
    pub numeric: bool,
}

impl Resolve {
    /// Every address of `host` for `port`, in the resolver's preference order
    /// (RFC 6724, as getaddrinfo sorts them), filtered by family. The system
    /// resolver is used so that /etc/hosts and nsswitch are honoured.
    pub async fn addrs(&self, host: &Host, port: u16) -> Result<Vec<SocketAddr>> {
        let ips: Vec<IpAddr> = match host {
            Host::Ip(ip) => vec![*ip],
            Host::Name(_) if self.numeric => {
                return Err(Error::usage(format!(
                    "\"{host}\" is a name, but -n forbids DNS lookups: give a numeric address"
                )));
            }
            Host::Name(name) => lookup(name.clone()).await?,
        };
        let addrs: Vec<SocketAddr> = ips
            .into_iter()
            .filter(|ip| self.family.admits(*ip))
            .map(|ip| SocketAddr::new(ip, port))
            .collect();
        if addrs.is_empty() {
            let err = format!(
                "{host} has no address of the requested family{}",
                self.family.flag()
            );
            return Err(match host {
                Host::Ip(_) => Error::usage(err),
                Host::Name(_) => Error::Resolve(err),
            });
        }
        Ok(addrs)
    }
}

/// getaddrinfo on a blocking thread (it may take seconds on a slow resolver).
async fn lookup(name: String) -> Result<Vec<IpAddr>> {
    let result = tokio::task::spawn_blocking({
        let name = name.clone();
        move || dns_lookup::lookup_host(&name).map(Iterator::collect::<Vec<_>>)
    })
    .await
    .map_err(|_| Error::Resolve(format!("cannot resolve {name}: the resolver thread failed")))?;
    match result {
        Ok(mut ips) => {
            // getaddrinfo returns one entry per socket type; keep each address once.
            let mut seen = Vec::with_capacity(ips.len());
            ips.retain(|ip| {
                let new = !seen.contains(ip);
                seen.push(*ip);
                new
            });
            Ok(ips)
        }
        Err(err) => {
            use dns_lookup::LookupErrorKind as K;
            let why = match err.kind() {
                K::NoName | K::NoData => "no such host",
                K::Again => "temporary failure in name resolution (is a DNS server reachable?)",
                _ => "name resolution failed",
            };
            Err(Error::Resolve(format!("cannot resolve {name}: {why}")))
        }
    }
}
