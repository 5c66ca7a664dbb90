//! Socket plumbing shared by every command: name resolution with the
//! `-4`/`-6`/`-n` rules, dialing (Happy Eyeballs for TCP), binding (with the
//! Unix-socket file rules), and one stream type over TCP and Unix sockets so
//! that sessions, the accept loop and later relays are written once.

pub mod bind;
pub mod dial;
mod stream;

use std::net::{IpAddr, SocketAddr};

pub use stream::{Accepted, Datagram, Listener, Peer, Reset, Stream};

use crate::endpoint::Host;
use crate::error::{Error, Result};

/// Any two-way byte stream: a socket, TLS over one, a program's stdin and
/// stdout, this process's stdio.
pub trait Duplex: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}

impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Duplex for T {}

/// Calls `probe` until it has an answer or `window` has passed, without
/// sleeping in between. On a virtual machine, waking a sleeping thread (an
/// interrupt to an idle CPU) can cost more than a loopback round trip, so
/// a side that expects bytes within microseconds looks for them instead.
/// Only for short windows, on paths where an answer is due.
pub fn spin_for<T>(window: std::time::Duration, mut probe: impl FnMut() -> Option<T>) -> Option<T> {
    let until = std::time::Instant::now() + window;
    for tries in 1u32.. {
        if let Some(found) = probe() {
            return Some(found);
        }
        if std::time::Instant::now() >= until {
            return None;
        }
        // Now and then the CPU is offered to others: the thread being
        // waited for may share this CPU.
        if tries % 4 == 0 {
            std::thread::yield_now();
        } else {
            std::hint::spin_loop();
        }
    }
    None
}

/// Raises the soft descriptor limit to the hard one (servers and scans
/// hold a socket per client or probe); returns the limit now in force.
pub fn raise_fd_limit() -> u64 {
    rlimit::increase_nofile_limit(u64::MAX)
        .or_else(|_| rlimit::getrlimit(rlimit::Resource::NOFILE).map(|(soft, _)| soft))
        .unwrap_or(1024)
}

/// Grows this process's descriptor table now to hold descriptor `fd`, so
/// that the sockets opened later do not grow it step by step: in a
/// process with several threads, Linux waits for an RCU grace period at
/// each growth (`expand_fdtable`), milliseconds each time, which a short
/// scan spends idle. Best effort: the table grows on demand anyway.
pub fn reserve_fds(fd: u64) {
    use nix::fcntl::{FcntlArg, fcntl};
    let (Ok(null), Ok(fd)) = (std::fs::File::open("/dev/null"), i32::try_from(fd)) else {
        return;
    };
    if let Ok(dup) = fcntl(&null, FcntlArg::F_DUPFD_CLOEXEC(fd)) {
        let _ = nix::unistd::close(dup);
    }
}

/// Whether `ip` is a loopback address: 127.0.0.0/8 and `::1`, and
/// 127.0.0.0/8 in IPv4-mapped form (`::ffff:127.0.0.1` is loopback,
/// `::ffff:10.0.0.1` is not).
pub fn is_loopback(ip: IpAddr) -> bool {
    ip.to_canonical().is_loopback()
}

/// The warning a server gives when it binds `ip` (shown as `shown`, with
/// its port or scheme) beyond loopback, so that no bind to every interface
/// goes unsaid; `None` on loopback.
pub fn exposure(shown: &str, ip: IpAddr) -> Option<String> {
    if is_loopback(ip) {
        return None;
    }
    let which = if ip.to_canonical().is_unspecified() {
        "every interface"
    } else {
        "not loopback"
    };
    Some(format!(
        "warning: {shown} is open to other hosts ({which}); bind 127.0.0.1 to keep it to this host"
    ))
}

/// Says [`exposure`]'s warning on stderr, whatever `-q` says.
pub fn warn_if_exposed(shown: &str, ip: IpAddr) {
    if let Some(line) = exposure(shown, ip) {
        eprintln!("{line}");
    }
}

/// Descriptors every command needs beyond those already open: the
/// runtime's epoll and waker, the signal pipe (two), stdin's and stdout's
/// threads, a resolver, and a socket or two for the work itself.
pub const MIN_FREE_FDS: u64 = 8;

/// Raises the descriptor limit and refuses to start (exit 2) when it
/// leaves fewer than [`MIN_FREE_FDS`] free: the runtime's own set-up would
/// otherwise fail inside a library that panics on it.
pub fn check_fd_floor() -> Result<()> {
    let limit = raise_fd_limit();
    let open = std::fs::read_dir("/proc/self/fd").map_or(3, |d| d.count().saturating_sub(1) as u64);
    let needed = open + MIN_FREE_FDS;
    if limit < needed {
        return Err(Error::Local {
            what: format!("descriptor limit {limit}"),
            reason: format!(
                "too low: netsmith needs at least {needed} ({open} open already and \
                 {MIN_FREE_FDS} to work); raise it with ulimit -n"
            ),
        });
    }
    Ok(())
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
        let answer = self.answer(host).await?;
        Ok(answer
            .addrs
            .into_iter()
            .map(|ip| SocketAddr::new(ip, port))
            .collect())
    }

    /// What the resolver says about `host` (its addresses, filtered by
    /// family, and its canonical name); an address literal is its own answer.
    pub async fn answer(&self, host: &Host) -> Result<Answer> {
        let mut answer = match host {
            Host::Ip(ip) => Answer {
                canonical: None,
                addrs: vec![*ip],
            },
            Host::Name(_) if self.numeric => {
                return Err(Error::usage(format!(
                    "\"{host}\" is a name, but -n forbids DNS lookups: give a numeric address"
                )));
            }
            Host::Name(name) => lookup_name(name.clone()).await?,
        };
        answer.addrs.retain(|ip| self.family.admits(*ip));
        if answer.addrs.is_empty() {
            let err = format!(
                "{host} has no address of the requested family{}",
                self.family.flag()
            );
            return Err(match host {
                Host::Ip(_) => Error::usage(err),
                Host::Name(_) => Error::Resolve(err),
            });
        }
        Ok(answer)
    }
}

/// What the system resolver says about a name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    /// The canonical name (`AI_CANONNAME`): the name the resolver finally
    /// found the addresses under, after aliases (CNAMEs, /etc/hosts aliases).
    pub canonical: Option<String>,
    /// Each address once, in the resolver's preference order.
    pub addrs: Vec<IpAddr>,
}

/// Every address of `name` and its canonical name, through the system
/// resolver (so /etc/hosts and nsswitch are honoured), as `getaddrinfo`
/// with `AI_CANONNAME` gives them. Runs on a blocking thread.
pub async fn lookup_name(name: String) -> Result<Answer> {
    let result = tokio::task::spawn_blocking({
        let name = name.clone();
        move || {
            let hints = dns_lookup::AddrInfoHints {
                flags: nix::libc::AI_CANONNAME,
                // One entry per address rather than one per socket type.
                socktype: nix::libc::SOCK_STREAM,
                ..dns_lookup::AddrInfoHints::default()
            };
            dns_lookup::getaddrinfo(Some(&name), None, Some(hints))
                .map(|iter| iter.filter_map(std::result::Result::ok).collect::<Vec<_>>())
        }
    })
    .await
    .map_err(|_| Error::Resolve(format!("cannot resolve {name}: the resolver thread failed")))?;
    match result {
        Ok(infos) => {
            let canonical = infos.iter().find_map(|i| i.canonname.clone());
            let mut addrs: Vec<IpAddr> = Vec::with_capacity(infos.len());
            for info in infos {
                let ip = info.sockaddr.ip();
                if !addrs.contains(&ip) {
                    addrs.push(ip);
                }
            }
            Ok(Answer { canonical, addrs })
        }
        Err(err) => Err(Error::Resolve(format!(
            "cannot resolve {name}: {}",
            lookup_failure(&err)
        ))),
    }
}

/// The name of an address (a PTR lookup, or /etc/hosts) through
/// `getnameinfo` with `NI_NAMEREQD`, so that "no name" is an error rather
/// than the address echoed back. Runs on a blocking thread.
pub async fn lookup_addr(ip: IpAddr) -> Result<String> {
    let result = tokio::task::spawn_blocking(move || {
        dns_lookup::getnameinfo(&SocketAddr::new(ip, 0), nix::libc::NI_NAMEREQD)
    })
    .await
    .map_err(|_| Error::Resolve(format!("cannot resolve {ip}: the resolver thread failed")))?;
    result
        .map(|(name, _)| name)
        .map_err(|err| Error::Resolve(format!("cannot resolve {ip}: {}", lookup_failure(&err))))
}

/// The reason for a failed lookup, in the words of `host` and `getent`.
fn lookup_failure(err: &dns_lookup::LookupError) -> &'static str {
    use dns_lookup::LookupErrorKind as K;
    match err.kind() {
        K::NoName | K::NoData => "no such host",
        K::Again => "temporary failure in name resolution (is a DNS server reachable?)",
        _ => "name resolution failed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hardening_15_binds_beyond_loopback_are_said_mapped_loopback_is_not() {
        for local in ["127.0.0.1", "127.5.5.5", "::1", "::ffff:127.0.0.1"] {
            let ip: IpAddr = local.parse().unwrap();
            assert!(is_loopback(ip), "{local}");
            assert_eq!(exposure(local, ip), None, "{local}");
        }
        for (local, which) in [
            ("0.0.0.0", "every interface"),
            ("::", "every interface"),
            ("::ffff:0.0.0.0", "every interface"),
            ("::ffff:10.0.0.1", "not loopback"),
            ("10.0.0.1", "not loopback"),
            ("fe80::1", "not loopback"),
        ] {
            let ip: IpAddr = local.parse().unwrap();
            assert!(!is_loopback(ip), "{local}");
            let line = exposure(local, ip).unwrap_or_default();
            assert!(
                line.starts_with(&format!("warning: {local} ")) && line.contains(which),
                "{local}: {line}"
            );
        }
    }
}
