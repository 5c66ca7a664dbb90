//! TCP to TCP without copying through user space (Linux): bytes move
//! socket -> pipe -> socket with splice(2), so the payload pages are handed
//! from one socket buffer to the other and never reach a buffer of ours.
//! Readiness comes from tokio (`async_io`): a splice that would block
//! clears the socket's readiness and waits for the next event, as a `read`
//! would.
//!
//! Used by `relay` (each direction of a TCP to TCP relay) and by `serve`'s
//! echo once a connection streams (the socket back to itself). Measured on
//! loopback (bench/relay.sh, bench/serve.sh): see README's Performance
//! section.

use std::io;
use std::os::fd::OwnedFd;

use nix::fcntl::{FcntlArg, OFlag, SpliceFFlags, fcntl, splice};
use tokio::io::Interest;
use tokio::net::TcpStream;

use crate::copy::{CopyError, Tap};

/// The pipe's capacity: 1 MiB lets one splice move a whole socket
/// buffer's worth; the kernel's default (64 KiB) costs four times as many
/// calls. An unprivileged process may get less (`pipe-max-size`): the
/// default is then kept.
const PIPE_SIZE: i32 = 1 << 20;

/// A pipe for one direction.
struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
    /// What one splice asks for: the pipe's capacity.
    size: usize,
}

impl Pipe {
    fn new() -> io::Result<Pipe> {
        let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK)?;
        let size = fcntl(&write, FcntlArg::F_SETPIPE_SZ(PIPE_SIZE))
            .map_or(64 * 1024, |n| usize::try_from(n).unwrap_or(64 * 1024));
        Ok(Pipe { read, write, size })
    }
}

/// A pipe to splice through: two descriptors, so a caller that may run
/// out of them makes it first and falls back to copying if it cannot.
pub struct Splicer {
    pipe: Pipe,
}

impl Splicer {
    pub fn new() -> io::Result<Splicer> {
        Pipe::new().map(|pipe| Splicer { pipe })
    }

    /// Moves `src` to `dst` until EOF; returns the bytes moved. `src` and
    /// `dst` may be the same socket (echo). The tap's activity and counters
    /// apply. `dst` is left open: the caller decides on the half-close.
    pub async fn pump(
        &self,
        src: &TcpStream,
        dst: &TcpStream,
        tap: &Tap<'_>,
    ) -> Result<u64, CopyError> {
        let pipe = &self.pipe;
        let flags = SpliceFFlags::SPLICE_F_MOVE | SpliceFFlags::SPLICE_F_NONBLOCK;
        let mut total = 0u64;
        loop {
            // The pipe is empty here, so a splice that would block is
            // waiting on the socket, and readiness is the socket's.
            let n = src
                .async_io(Interest::READABLE, || {
                    splice(src, None, &pipe.write, None, pipe.size, flags).map_err(io::Error::from)
                })
                .await
                .map_err(CopyError::Read)?;
            if n == 0 {
                return Ok(total);
            }
            tap.took(n);
            let mut left = n;
            while left > 0 {
                let m = dst
                    .async_io(Interest::WRITABLE, || {
                        splice(&pipe.read, None, dst, None, left, flags).map_err(io::Error::from)
                    })
                    .await
                    .map_err(CopyError::Write)?;
                if m == 0 {
                    return Err(CopyError::Write(io::ErrorKind::WriteZero.into()));
                }
                left -= m;
                tap.touch();
            }
            tap.gave(n);
            total += n as u64;
        }
    }
}

/// Moves `src` to `dst` until EOF through a pipe of its own, then shuts
/// down `dst`'s write side (the half-close passes through); returns the
/// bytes moved.
pub async fn pump(src: &TcpStream, dst: &TcpStream, tap: &Tap<'_>) -> Result<u64, CopyError> {
    let splicer = Splicer::new().map_err(CopyError::Read)?;
    let n = splicer.pump(src, dst, tap).await?;
    socket2::SockRef::from(dst)
        .shutdown(std::net::Shutdown::Write)
        .map_err(CopyError::Write)?;
    Ok(n)
}
