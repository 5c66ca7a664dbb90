//! Listening sockets: TCP with a chosen backlog, UDP, and Unix sockets whose
//! file is created safely and removed when the listener goes away.

use std::io;
use std::net::SocketAddr;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use socket2::{Domain, Socket, Type};
use tokio::net::{UdpSocket, UnixDatagram};

use super::{Datagram, Listener};
use crate::error::{Error, Result};

/// A TCP listener on `addr` with `backlog` pending connections.
/// `SO_REUSEADDR` is set, as every server does, so that a restart does not
/// wait for old connections in `TIME_WAIT`.
pub fn tcp(addr: SocketAddr, backlog: u32) -> Result<Listener> {
    let fail =
        |e: io::Error| Error::bind(format!("cannot listen on {addr}"), &e, Some(addr.port()));
    let socket = Socket::new(
        Domain::for_address(addr),
        Type::STREAM.nonblocking().cloexec(),
        None,
    )
    .map_err(fail)?;
    socket.set_reuse_address(true).map_err(fail)?;
    socket.bind(&addr.into()).map_err(fail)?;
    socket.listen(backlog_int(backlog)).map_err(fail)?;
    Listener::new(socket, false).map_err(fail)
}

/// The backlog as `listen(2)` takes it (the kernel caps it at somaxconn).
fn backlog_int(backlog: u32) -> i32 {
    i32::try_from(backlog).unwrap_or(i32::MAX)
}

/// A UDP socket bound to `addr`.
pub fn udp(addr: SocketAddr) -> Result<Datagram> {
    let socket = udp_std(addr)?;
    socket
        .set_nonblocking(true)
        .and_then(|()| UdpSocket::from_std(socket))
        .map(Datagram::Udp)
        .map_err(|e| udp_failed(addr, &e))
}

/// A blocking UDP socket bound to `addr`, for a thread that serves it.
pub fn udp_std(addr: SocketAddr) -> Result<std::net::UdpSocket> {
    std::net::UdpSocket::bind(addr).map_err(|e| udp_failed(addr, &e))
}

fn udp_failed(addr: SocketAddr, e: &io::Error) -> Error {
    Error::bind(
        format!("cannot listen on udp://{addr}"),
        e,
        Some(addr.port()),
    )
}

/// Removes a Unix socket file when dropped, so that the file goes away on
/// every way out of a command: normal end, error, or Ctrl-C.
#[derive(Debug)]
pub struct SocketFile {
    path: PathBuf,
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A Unix stream listener on `path`, and the guard that removes its file.
pub fn unix(path: &Path, backlog: u32) -> Result<(Listener, SocketFile)> {
    let guard = claim(path)?;
    let std =
        std::os::unix::net::UnixListener::bind(path).map_err(|e| unix_bind_error(path, &e))?;
    let guard = SocketFile {
        path: guard.to_path_buf(),
    };
    // std binds with a backlog of 128; apply the one asked for.
    let socket = Socket::from(std);
    let fail = |e: io::Error| unix_bind_error(path, &e);
    socket.listen(backlog_int(backlog)).map_err(fail)?;
    socket.set_nonblocking(true).map_err(fail)?;
    Ok((Listener::new(socket, true).map_err(fail)?, guard))
}

/// A Unix datagram socket bound to `path`, and the guard that removes its file.
pub fn unixgram(path: &Path) -> Result<(Datagram, SocketFile)> {
    let path = claim(path)?;
    let std =
        std::os::unix::net::UnixDatagram::bind(path).map_err(|e| unix_bind_error(path, &e))?;
    let guard = SocketFile {
        path: path.to_path_buf(),
    };
    std.set_nonblocking(true)
        .map_err(|e| unix_bind_error(path, &e))?;
    let socket = UnixDatagram::from_std(std).map_err(|e| unix_bind_error(path, &e))?;
    Ok((Datagram::Unix(socket), guard))
}

/// Makes `path` free for a new socket: a missing directory or a file that is
/// not a socket is refused; a socket nobody listens on (left by a crashed
/// server) is removed; a live one is refused.
fn claim(path: &Path) -> Result<&Path> {
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !parent.is_dir() {
        return Err(Error::Local {
            what: format!("cannot create unix:{}", path.display()),
            reason: format!("directory {} does not exist", parent.display()),
        });
    }
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return Ok(path);
    };
    if !meta.file_type().is_socket() {
        return Err(Error::Local {
            what: format!("cannot create unix:{}", path.display()),
            reason: "a file that is not a socket is in the way; refusing to replace it".into(),
        });
    }
    let live = bound_in_kernel(path).unwrap_or_else(|| {
        std::os::unix::net::UnixDatagram::unbound()
            .and_then(|s| s.connect(path))
            .is_ok()
    });
    if live {
        return Err(Error::Local {
            what: format!("cannot listen on unix:{}", path.display()),
            reason: "another process is listening on this socket".into(),
        });
    }
    tracing::info!(path = %path.display(), "removing stale socket file");
    std::fs::remove_file(path)
        .map_err(|e| Error::io(format!("remove stale socket {}", path.display()), &e))?;
    Ok(path)
}

/// Whether a live socket is bound to `path`, read from the kernel's table of
/// Unix sockets (`None` if it cannot be read). Connecting to find out would
/// not do: a live stream server would accept the probe as its client.
fn bound_in_kernel(path: &Path) -> Option<bool> {
    let table = std::fs::read_to_string("/proc/net/unix").ok()?;
    let absolute = std::path::absolute(path).ok();
    Some(table.lines().skip(1).any(|line| {
        // Num RefCount Protocol Flags Type St Inode Path (the path may hold spaces).
        let bound: Vec<&str> = line.split_whitespace().skip(7).collect();
        let bound = Path::new(&bound.join(" ")).to_path_buf();
        !bound.as_os_str().is_empty()
            && (bound == path || absolute.as_deref() == Some(bound.as_path()))
    }))
}

fn unix_bind_error(path: &Path, err: &io::Error) -> Error {
    Error::bind(
        format!("cannot listen on unix:{}", path.display()),
        err,
        None,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn unix_listener_replaces_stale_socket_and_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        assert!(path.exists(), "a dropped std listener leaves its file");
        let (_l, guard) = unix(&path, 16).unwrap();
        let err = unix(&path, 16).unwrap_err();
        assert!(err.to_string().contains("another process"), "{err}");
        drop(guard);
        assert!(!path.exists());
    }

    #[tokio::test]
    async fn unix_listener_refuses_regular_file_and_missing_dir() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, b"keep me").unwrap();
        let err = unix(&file, 16).unwrap_err();
        assert!(err.to_string().contains("not a socket"), "{err}");
        assert_eq!(std::fs::read(&file).unwrap(), b"keep me");
        let err = unix(&dir.path().join("nope/s"), 16).unwrap_err();
        assert!(err.to_string().contains("does not exist"), "{err}");
        assert_eq!(err.exit_code(), 2);
    }
}
