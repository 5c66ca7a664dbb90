//! Listening sockets: TCP with a chosen backlog, UDP, and Unix sockets whose
//! file is created safely and removed when the listener goes away.

use std::io;
use std::net::SocketAddr;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
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
/// every way out of a command: normal end, error, or Ctrl-C. Only the file
/// this process bound is removed: its device and inode are recorded right
/// after `bind`, and a path that now holds another file (a server started
/// after ours, a file put there by someone else) is left alone.
#[derive(Debug)]
pub struct SocketFile {
    path: PathBuf,
    dev: u64,
    ino: u64,
}

impl SocketFile {
    /// The guard for the socket file just bound at `path`.
    fn bound(path: &Path) -> Result<SocketFile> {
        let meta = std::fs::symlink_metadata(path).map_err(|e| unix_bind_error(path, &e))?;
        Ok(SocketFile {
            // Absolute, so that the file is found whatever the working
            // directory is at exit.
            path: std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()),
            dev: meta.dev(),
            ino: meta.ino(),
        })
    }
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        let ours = std::fs::symlink_metadata(&self.path)
            .is_ok_and(|m| m.dev() == self.dev && m.ino() == self.ino);
        if ours {
            let _ = std::fs::remove_file(&self.path);
        } else {
            tracing::info!(path = %self.path.display(), "socket file replaced since bind: left in place");
        }
    }
}

/// A Unix stream listener on `path`, and the guard that removes its file.
pub fn unix(path: &Path, backlog: u32) -> Result<(Listener, SocketFile)> {
    claim(path)?;
    let std =
        std::os::unix::net::UnixListener::bind(path).map_err(|e| unix_bind_error(path, &e))?;
    let guard = SocketFile::bound(path)?;
    // std binds with a backlog of 128; apply the one asked for.
    let socket = Socket::from(std);
    let fail = |e: io::Error| unix_bind_error(path, &e);
    socket.listen(backlog_int(backlog)).map_err(fail)?;
    socket.set_nonblocking(true).map_err(fail)?;
    Ok((Listener::new(socket, true).map_err(fail)?, guard))
}

/// A Unix datagram socket bound to `path`, and the guard that removes its file.
pub fn unixgram(path: &Path) -> Result<(Datagram, SocketFile)> {
    claim(path)?;
    let std =
        std::os::unix::net::UnixDatagram::bind(path).map_err(|e| unix_bind_error(path, &e))?;
    let guard = SocketFile::bound(path)?;
    std.set_nonblocking(true)
        .map_err(|e| unix_bind_error(path, &e))?;
    let socket = UnixDatagram::from_std(std).map_err(|e| unix_bind_error(path, &e))?;
    Ok((Datagram::Unix(socket), guard))
}

/// Makes `path` free for a new socket: a missing directory
/// or a file that is not a socket is refused; a socket nobody listens on
/// (left by a crashed server) is removed; a live one is refused and left
/// as it is.
fn claim(path: &Path) -> Result<()> {
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
        return Ok(());
    };
    if !meta.file_type().is_socket() {
        return Err(Error::Local {
            what: format!("cannot create unix:{}", path.display()),
            reason: "a file that is not a socket is in the way; refusing to replace it".into(),
        });
    }
    let refuse = |reason: String| Error::Local {
        what: format!("cannot listen on unix:{}", path.display()),
        reason,
    };
    // A server in this network namespace is found by the file's inode,
    // without a probe that a one-client server would take for its client;
    // one elsewhere (another namespace) only by connecting.
    let liveness = if bound_here(meta.dev(), meta.ino()) == Some(true) {
        Liveness::Live
    } else {
        probe(path)
    };
    match liveness {
        Liveness::Live => {
            return Err(refuse(
                "another process is listening on this socket; stop it or choose another path"
                    .into(),
            ));
        }
        Liveness::Gone => return Ok(()),
        Liveness::Unknown(e) => {
            return Err(refuse(format!(
                "cannot tell whether a server still uses it ({}); remove it if it is stale",
                crate::error::describe_io(&e)
            )));
        }
        Liveness::Stale => {}
    }
    // Remove the file probed, not one that took its place meanwhile.
    let same = std::fs::symlink_metadata(path)
        .is_ok_and(|m| m.dev() == meta.dev() && m.ino() == meta.ino());
    if same {
        tracing::info!(path = %path.display(), "removing stale socket file");
        std::fs::remove_file(path)
            .map_err(|e| Error::io(format!("remove stale socket {}", path.display()), &e))?;
    }
    Ok(())
}

/// What connecting to an existing socket file says about it.
#[derive(Debug)]
enum Liveness {
    /// A socket is bound there and takes connections (or is of another
    /// type, or its queue is full): in use.
    Live,
    /// Nothing is bound to the file: left by a server that is gone.
    Stale,
    /// The file went away meanwhile.
    Gone,
    /// The probe could not tell (permission denied, for instance).
    Unknown(io::Error),
}

/// Connects a datagram socket to `path`, without blocking and without
/// sending, to learn whether a server is bound there. The kernel's answer
/// covers what a look at `/proc/net/unix` misses: a server bound through a
/// relative path, a symlinked directory, or in another network namespace.
/// Always a datagram socket: a stream connect would be accepted by a live
/// one-client server (`listen --unix`) as its client, and end its session.
/// A stream server answers it with EPROTOTYPE, a datagram server accepts
/// it, and a file nobody is bound to refuses it.
fn probe(path: &Path) -> Liveness {
    let addr = match socket2::SockAddr::unix(path) {
        Ok(addr) => addr,
        Err(e) => return Liveness::Unknown(e),
    };
    let connected = Socket::new(Domain::UNIX, Type::DGRAM.nonblocking().cloexec(), None)
        .and_then(|socket| socket.connect(&addr));
    match connected {
        Ok(()) => Liveness::Live,
        Err(e) => match e.raw_os_error() {
            Some(nix::libc::ECONNREFUSED) => Liveness::Stale,
            Some(nix::libc::ENOENT) => Liveness::Gone,
            // A stream or seqpacket socket is bound there.
            Some(nix::libc::EPROTOTYPE) => Liveness::Live,
            _ => Liveness::Unknown(e),
        },
    }
}

/// Whether a socket of this network namespace is bound to the file with
/// device `dev` and inode `ino`, as the kernel's socket table says
/// (`NETLINK_SOCK_DIAG`, `UDIAG_SHOW_VFS`: what `ss -x` reads); `None`
/// when the table cannot be read. The inode, not the path as text: a
/// server bound through a relative path or a symlinked directory is found.
fn bound_here(dev: u64, ino: u64) -> Option<bool> {
    use std::io::Read;
    const NETLINK_SOCK_DIAG: i32 = 4;
    const SOCK_DIAG_BY_FAMILY: u16 = 20;
    const NLM_F_REQUEST_DUMP: u16 = 0x1 | 0x300;
    const NLMSG_ERROR: u16 = 2;
    const NLMSG_DONE: u16 = 3;
    const UDIAG_SHOW_VFS: u32 = 0x2;
    const UNIX_DIAG_VFS: u16 = 1;
    // The kernel's encoding of a device number (MKDEV), from stat's.
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
    let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
    let want_dev = (major << 20) | minor;

    let socket = Socket::new(
        Domain::from(nix::libc::AF_NETLINK),
        Type::DGRAM.cloexec(),
        Some(socket2::Protocol::from(NETLINK_SOCK_DIAG)),
    )
    .ok()?;
    socket
        .set_read_timeout(Some(std::time::Duration::from_secs(1)))
        .ok()?;
    // nlmsghdr (16 bytes), then unix_diag_req (24 bytes): every state,
    // every socket, with the inode and device of its file.
    let mut request = Vec::with_capacity(40);
    request.extend_from_slice(&40u32.to_ne_bytes());
    request.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    request.extend_from_slice(&NLM_F_REQUEST_DUMP.to_ne_bytes());
    request.extend_from_slice(&[0; 8]); // sequence, port id
    request.extend_from_slice(&[nix::libc::AF_UNIX as u8, 0, 0, 0]);
    request.extend_from_slice(&u32::MAX.to_ne_bytes()); // states
    request.extend_from_slice(&0u32.to_ne_bytes()); // inode: any
    request.extend_from_slice(&UDIAG_SHOW_VFS.to_ne_bytes());
    request.extend_from_slice(&[0; 8]); // cookie
    socket.send(&request).ok()?;

    let u16_at = |b: &[u8], i: usize| b.get(i..i + 2).map(|x| u16::from_ne_bytes([x[0], x[1]]));
    let u32_at = |b: &[u8], i: usize| {
        b.get(i..i + 4)
            .map(|x| u32::from_ne_bytes([x[0], x[1], x[2], x[3]]))
    };
    let mut buf = vec![0u8; 64 * 1024];
    let mut found = false;
    loop {
        let n = (&socket).read(&mut buf).ok()?;
        let mut at = 0;
        while at + 16 <= n {
            let len = u32_at(&buf, at)? as usize;
            let kind = u16_at(&buf, at + 4)?;
            if len < 16 || at + len > n {
                return None;
            }
            match kind {
                NLMSG_DONE => return Some(found),
                NLMSG_ERROR => return None,
                _ => {}
            }
            // unix_diag_msg (16 bytes), then attributes (rtattr: len, type).
            let msg = &buf[at + 16..at + len];
            let mut attr = 16;
            while attr + 4 <= msg.len() {
                let attr_len = usize::from(u16_at(msg, attr)?);
                if attr_len < 4 {
                    break;
                }
                if u16_at(msg, attr + 2)? == UNIX_DIAG_VFS
                    && u32_at(msg, attr + 4).map(u64::from) == Some(ino & 0xffff_ffff)
                    && u32_at(msg, attr + 8).map(u64::from) == Some(want_dev)
                {
                    found = true;
                }
                attr += (attr_len + 3) & !3;
            }
            at += (len + 3) & !3;
        }
        if n == 0 {
            return None;
        }
    }
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

    /// A live stream server is found through a symlinked directory, by a
    /// stream or a datagram claim (EPROTOTYPE), and left answering.
    #[tokio::test]
    async fn hardening_06_live_socket_behind_a_symlinked_dir_is_not_taken() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("real")).unwrap();
        std::os::unix::fs::symlink("real", dir.path().join("link")).unwrap();
        let live = std::os::unix::net::UnixListener::bind(dir.path().join("real/s")).unwrap();
        let via_link = dir.path().join("link/s");
        let err = unix(&via_link, 16).unwrap_err();
        assert!(err.to_string().contains("another process"), "{err}");
        assert_eq!(err.exit_code(), 2);
        let err = unixgram(&via_link).unwrap_err();
        assert!(err.to_string().contains("another process"), "{err}");
        // Still there, untouched (found in the kernel's table, no probe in
        // its queue), and still answering.
        live.set_nonblocking(true).unwrap();
        let untouched = live.accept().map(|_| ()).map_err(|e| e.kind());
        assert_eq!(untouched, Err(io::ErrorKind::WouldBlock));
        let _client = std::os::unix::net::UnixStream::connect(&via_link).unwrap();
        assert!(live.accept().is_ok());
    }

    /// The kernel's socket table finds a server by its file's inode, with
    /// no connection made (a one-client server would take it for its
    /// client).
    #[test]
    fn hardening_06_the_kernel_table_finds_a_socket_by_its_inode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        let live = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(bound_here(meta.dev(), meta.ino()), Some(true));
        drop(live);
        assert_eq!(bound_here(meta.dev(), meta.ino()), Some(false));
        let gram = std::os::unix::net::UnixDatagram::bind(dir.path().join("g")).unwrap();
        let meta = std::fs::metadata(dir.path().join("g")).unwrap();
        assert_eq!(bound_here(meta.dev(), meta.ino()), Some(true));
        drop(gram);
    }

    /// A live datagram socket is found by a datagram claim, and by a
    /// stream claim (EPROTOTYPE).
    #[tokio::test]
    async fn hardening_06_live_datagram_socket_is_not_taken() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("g");
        let live = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
        for err in [unixgram(&path).unwrap_err(), unix(&path, 16).unwrap_err()] {
            assert!(err.to_string().contains("another process"), "{err}");
        }
        assert!(path.exists());
        // Once it is gone, its file is stale: replaced.
        drop(live);
        let (_d, _guard) = unixgram(&path).unwrap();
    }

    /// Only the file bound is removed at exit: a file that took its place
    /// after the bind stays.
    #[tokio::test]
    async fn hardening_06_a_file_replaced_after_bind_is_not_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        let (_l, guard) = unix(&path, 16).unwrap();
        std::fs::remove_file(&path).unwrap();
        let other = std::os::unix::net::UnixListener::bind(&path).unwrap();
        drop(guard);
        assert!(path.exists(), "another server's socket file was removed");
        drop(other);
        let (_d, guard) = unixgram(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, b"not a socket").unwrap();
        drop(guard);
        assert_eq!(std::fs::read(&path).unwrap(), b"not a socket");
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
