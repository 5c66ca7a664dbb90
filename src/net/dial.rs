//! Outgoing connections.
//!
//! TCP follows RFC 8305 (Happy Eyeballs v2): the addresses of a name are
//! interleaved by family, the first attempt starts at once, and each next one
//! starts when the previous fails or after a short head start, whichever is
//! first; the first connection to complete wins and the others are dropped.
//! A name like `localhost` that lists an unreachable `::1` before a working
//! `127.0.0.1` therefore costs 250 ms instead of a full SYN timeout, the
//! delay that nc, ncat and socat users know.
//!
//! # References
//! RFC 8305 §4 (address interleaving) and §5 (connection attempt delay).

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use tokio::net::{TcpSocket, TcpStream, UdpSocket, UnixDatagram, UnixStream};
use tokio::task::JoinSet;

use super::{Datagram, Stream};
use crate::error::{Error, Result, describe_io};

/// RFC 8305 §5's recommended head start of one attempt over the next.
pub const CONNECTION_ATTEMPT_DELAY: Duration = Duration::from_millis(250);

/// Orders addresses as RFC 8305 §4 says: alternate families, starting with
/// the family of the resolver's first choice, keeping order within a family.
pub fn interleave(addrs: &[SocketAddr]) -> Vec<SocketAddr> {
    let Some(first) = addrs.first() else {
        return Vec::new();
    };
    let (mut preferred, mut other): (Vec<_>, Vec<_>) = addrs
        .iter()
        .copied()
        .partition(|a| a.is_ipv4() == first.is_ipv4());
    preferred.reverse();
    other.reverse();
    let mut out = Vec::with_capacity(addrs.len());
    while let Some(a) = preferred.pop() {
        out.push(a);
        if let Some(b) = other.pop() {
            out.push(b);
        }
    }
    out.extend(other.into_iter().rev());
    out
}

/// Connects to the first of `addrs` that answers, racing them as RFC 8305
/// says, within `timeout` overall. `what` names the target in errors
/// ("localhost:80"). `source` binds the local end (`-s`).
pub async fn tcp(
    what: &str,
    addrs: &[SocketAddr],
    source: Option<SocketAddr>,
    timeout: Duration,
) -> Result<TcpStream> {
    let order: Vec<SocketAddr> = interleave(addrs)
        .into_iter()
        .filter(|a| fits(source, *a))
        .collect();
    if order.is_empty() {
        return Err(Error::usage(format!(
            "the source address is of another family than every address of {what}"
        )));
    }
    // One address has nothing to race: no task, no timer.
    let dial = async {
        match order[..] {
            [only] => attempt(only, source).await.1.map_err(|e| vec![(only, e)]),
            _ => race(order, source).await,
        }
    };
    match tokio::time::timeout(timeout, dial).await {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(failures)) => Err(summarize(what, &failures)),
        Err(_) => Err(Error::Network {
            what: format!("connect to {what}"),
            reason: format!("timed out after {}", crate::duration::show(timeout)),
        }),
    }
}

async fn race(
    order: Vec<SocketAddr>,
    source: Option<SocketAddr>,
) -> std::result::Result<TcpStream, Vec<(SocketAddr, io::Error)>> {
    let mut pending = order.into_iter().peekable();
    let mut attempts = JoinSet::new();
    let mut failures = Vec::new();
    loop {
        if attempts.is_empty() {
            match pending.next() {
                Some(addr) => {
                    attempts.spawn(attempt(addr, source));
                }
                None => return Err(failures),
            }
        }
        let more = pending.peek().is_some();
        tokio::select! {
            Some(done) = attempts.join_next() => match done {
                Ok((_, Ok(stream))) => {
                    tracing::debug!(peer = ?stream.peer_addr().ok(), "connected");
                    return Ok(stream);
                }
                Ok((addr, Err(err))) => {
                    tracing::debug!(%addr, error = %err, "connect attempt failed");
                    failures.push((addr, err));
                    if let Some(next) = pending.next() {
                        attempts.spawn(attempt(next, source));
                    }
                }
                Err(join) => failures.push((
                    SocketAddr::from(([0, 0, 0, 0], 0)),
                    io::Error::other(join.to_string()),
                )),
            },
            () = tokio::time::sleep(CONNECTION_ATTEMPT_DELAY), if more => {
                if let Some(next) = pending.next() {
                    tracing::debug!(%next, "head start over, starting the next attempt");
                    attempts.spawn(attempt(next, source));
                }
            }
        }
    }
}

async fn attempt(
    addr: SocketAddr,
    source: Option<SocketAddr>,
) -> (SocketAddr, io::Result<TcpStream>) {
    let result = async {
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        if let Some(src) = source {
            socket.set_reuseaddr(true)?;
            socket.bind(local_for(src, addr))?;
        }
        socket.connect(addr).await
    }
    .await;
    (addr, result)
}

/// Whether `target` can be reached from `source`: same family, or any
/// family when only a source port was given (`-p`).
fn fits(source: Option<SocketAddr>, target: SocketAddr) -> bool {
    source.is_none_or(|s| s.ip().is_unspecified() || s.is_ipv4() == target.is_ipv4())
}

/// The local address to bind for `target`: `source`, with an unspecified IP
/// turned into the unspecified address of the target's family.
fn local_for(source: SocketAddr, target: SocketAddr) -> SocketAddr {
    if !source.ip().is_unspecified() || source.is_ipv4() == target.is_ipv4() {
        return source;
    }
    let any = if target.is_ipv4() {
        std::net::IpAddr::from([0, 0, 0, 0])
    } else {
        std::net::IpAddr::from([0u16; 8])
    };
    SocketAddr::new(any, source.port())
}

/// One error for a set of failed attempts: the common reason when they
/// agree, each address with its reason when they do not.
fn summarize(what: &str, failures: &[(SocketAddr, io::Error)]) -> Error {
    let Some((_, first)) = failures.first() else {
        return Error::Network {
            what: format!("connect to {what}"),
            reason: "no address to try".into(),
        };
    };
    if failures.iter().all(|(_, e)| e.kind() == first.kind()) {
        return Error::io(format!("connect to {what}"), first);
    }
    let reasons: Vec<String> = failures
        .iter()
        .map(|(addr, err)| format!("{addr}: {}", describe_io(err)))
        .collect();
    Error::Network {
        what: format!("connect to {what}"),
        reason: reasons.join("; "),
    }
}

/// A UDP socket connected to the first of `addrs`, so that replies from
/// other hosts are filtered by the kernel and ICMP port unreachable is
/// reported back as "refused".
pub async fn udp(what: &str, addrs: &[SocketAddr], source: Option<SocketAddr>) -> Result<Datagram> {
    let target = addrs
        .iter()
        .copied()
        .find(|a| fits(source, *a))
        .ok_or_else(|| {
            Error::usage(format!(
                "the source address is of another family than every address of {what}"
            ))
        })?;
    let local = local_for(
        source.unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0))),
        target,
    );
    let socket = UdpSocket::bind(local)
        .await
        .map_err(|e| Error::bind(format!("cannot bind {local}"), &e, Some(local.port())))?;
    socket
        .connect(target)
        .await
        .map_err(|e| Error::io(format!("connect to {what}"), &e))?;
    Ok(Datagram::Udp(socket))
}

/// A Unix stream connection to `path`.
pub async fn unix(path: &Path) -> Result<Stream> {
    UnixStream::connect(path)
        .await
        .map(Stream::Unix)
        .map_err(|e| unix_error(path, &e))
}

/// A Unix datagram socket connected to `path`. It is bound to an abstract
/// address (Linux) so that the server can reply, without leaving a file
/// behind as nc's `/tmp/nc.XXXX` does.
pub fn unixgram(path: &Path) -> Result<Datagram> {
    use std::os::linux::net::SocketAddrExt;
    let name = format!("netsmith-{}-{}", std::process::id(), unique());
    let local = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
        .map_err(|e| Error::io("create a Unix datagram address", &e))?;
    let socket = std::os::unix::net::UnixDatagram::bind_addr(&local)
        .map_err(|e| Error::io("bind a Unix datagram socket", &e))?;
    socket.connect(path).map_err(|e| unix_error(path, &e))?;
    socket
        .set_nonblocking(true)
        .map_err(|e| Error::io("set up a Unix datagram socket", &e))?;
    UnixDatagram::from_std(socket)
        .map(Datagram::Unix)
        .map_err(|e| Error::io("set up a Unix datagram socket", &e))
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::from(d.subsec_nanos()));
    nanos ^ (NEXT.fetch_add(1, Ordering::Relaxed) << 32)
}

/// A missing socket file is the user's mistake (exit 2); a file nobody
/// listens on is the peer's answer (exit 1).
/// What `path` is when it exists and is not a socket ("a regular file").
fn not_a_socket(path: &Path) -> Option<&'static str> {
    use std::os::unix::fs::FileTypeExt;
    let kind = std::fs::metadata(path).ok()?.file_type();
    Some(if kind.is_socket() {
        return None;
    } else if kind.is_dir() {
        "a directory"
    } else if kind.is_file() {
        "a regular file"
    } else if kind.is_fifo() {
        "a named pipe"
    } else {
        "a device"
    })
}

fn unix_error(path: &Path, err: &io::Error) -> Error {
    let what = format!("connect to unix:{}", path.display());
    match err.kind() {
        io::ErrorKind::NotFound => Error::Local {
            what,
            reason: "no such socket file".into(),
        },
        // Linux answers a path that is no socket with "refused" too: say
        // what the path is, a local mistake (exit 2), not the network's no.
        io::ErrorKind::ConnectionRefused => match not_a_socket(path) {
            Some(kind) => Error::Local {
                what,
                reason: format!("not a socket ({kind})"),
            },
            None => Error::Network {
                what,
                reason: "connection refused (the socket file exists but nothing listens on it)"
                    .into(),
            },
        },
        _ => Error::io(what, err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn interleaves_families_starting_with_the_first() {
        let got = interleave(&[
            addr("[::1]:1"),
            addr("[::2]:1"),
            addr("[::3]:1"),
            addr("127.0.0.1:1"),
        ]);
        assert_eq!(
            got,
            vec![
                addr("[::1]:1"),
                addr("127.0.0.1:1"),
                addr("[::2]:1"),
                addr("[::3]:1")
            ]
        );
        let got = interleave(&[addr("127.0.0.1:1"), addr("127.0.0.2:1"), addr("[::1]:1")]);
        assert_eq!(
            got,
            vec![addr("127.0.0.1:1"), addr("[::1]:1"), addr("127.0.0.2:1")]
        );
        assert!(interleave(&[]).is_empty());
    }

    #[tokio::test]
    async fn refused_everywhere_is_one_network_error() {
        // Bind then drop a listener: its port is closed on loopback.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let err = tcp(
            "127.0.0.1",
            &[SocketAddr::from(([127, 0, 0, 1], port))],
            None,
            Duration::from_secs(5),
        )
        .await
        .unwrap_err();
        assert_eq!(err.exit_code(), 1);
        assert!(err.to_string().contains("connection refused"), "{err}");
    }
}
