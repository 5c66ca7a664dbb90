//! TCP to TCP without copying through user space (Linux): bytes move
//! socket -> pipe -> socket with splice(2), so the payload pages are handed
//! from one socket buffer to the other and never reach a buffer of ours.
//! Readiness comes from tokio: a splice that would block clears the
//! socket's readiness and waits for the next event, as a `read` would.
//! splice(2) stops at TCP's urgent mark; the read side steps over it (see
//! [`Splicer::past_urgent_mark`]), so urgent data behaves as in the copy
//! loop.
//!
//! Used by `relay` (each direction of a TCP to TCP relay) and by `serve`'s
//! echo once a connection streams (the socket back to itself). Measured on
//! loopback (bench/relay.sh, bench/serve.sh): see README's Performance
//! section.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

use nix::fcntl::{FcntlArg, OFlag, SpliceFFlags, fcntl, splice};
use nix::sys::socket::{MsgFlags, recv};
use tokio::io::Interest;
use tokio::net::TcpStream;

use crate::copy::{CopyError, Tap};

/// The pipe's capacity: 1 MiB lets one splice move a whole socket
/// buffer's worth; the kernel's default (64 KiB) costs four times as many
/// calls. An unprivileged process may get less: above `pipe-max-size`, or
/// once its user's pipes hold `pipe-user-pages-soft` (64 MiB), the kernel
/// refuses and the pipe keeps what it has, down to 2 pages. The pipe's
/// real capacity is asked for, not assumed.
const PIPE_SIZE: i32 = 1 << 20;

/// Below this capacity a splice moves less than one copy-loop read, and
/// the copy is cheaper: a stream that may copy instead does.
const WORTHWHILE: usize = 64 * 1024;

const FLAGS: SpliceFFlags = SpliceFFlags::SPLICE_F_MOVE.union(SpliceFFlags::SPLICE_F_NONBLOCK);

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
            .or_else(|_| fcntl(&write, FcntlArg::F_GETPIPE_SZ))?;
        let size = usize::try_from(size).map_err(|_| io::Error::other("negative pipe size"))?;
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

    /// A splicer for a stream that can also be copied: `None` when no pipe
    /// can be had (no descriptors left) or when the kernel gives one too
    /// small to beat the copy loop (an unprivileged user over its quota).
    pub fn if_worthwhile() -> Option<Splicer> {
        Splicer::new().ok().filter(|s| s.pipe.size >= WORTHWHILE)
    }

    /// Moves `src` to `dst` until EOF; returns the bytes moved. `src` and
    /// `dst` may be the same socket (echo). The tap's activity and counters
    /// apply. `dst` is left open: the caller decides on the half-close.
    ///
    /// The pipe is a buffer that fills and drains at once: bytes are taken
    /// from `src` while `dst` is full, and given to `dst` while `src` is
    /// dry, so neither socket waits for the other's turn.
    pub async fn pump(
        &self,
        src: &TcpStream,
        dst: &TcpStream,
        tap: &Tap<'_>,
    ) -> Result<u64, CopyError> {
        let pipe = &self.pipe;
        let mut total = 0u64;
        // Bytes in the pipe.
        let mut held = 0usize;
        let mut eof = false;
        // `src` has bytes the pipe cannot take now (it is out of slots, or
        // at the urgent mark): wait for it to drain, not for `src`.
        let mut stalled = false;
        let mut woken = false;
        loop {
            let mut moved = false;
            if !eof && !stalled && held < pipe.size {
                match self.fill(src, pipe.size - held, held, woken) {
                    Ok(Fill::Moved(0)) => eof = true,
                    Ok(Fill::Moved(n)) => {
                        tap.took(n);
                        held += n;
                        moved = true;
                    }
                    Ok(Fill::Stalled) => stalled = true,
                    Ok(Fill::Dry) => {}
                    Err(e) => return Err(CopyError::Read(e)),
                }
                woken = false;
            }
            if held > 0 {
                let drained = dst.try_io(Interest::WRITABLE, || {
                    splice(&pipe.read, None, dst, None, held, FLAGS).map_err(io::Error::from)
                });
                match drained {
                    Ok(0) => return Err(CopyError::Write(io::ErrorKind::WriteZero.into())),
                    Ok(m) => {
                        held -= m;
                        total += m as u64;
                        tap.touch();
                        tap.gave(m);
                        moved = true;
                        stalled &= held > 0;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(CopyError::Write(e)),
                }
            }
            if eof && held == 0 {
                return Ok(total);
            }
            if moved {
                continue;
            }
            let want_src = !eof && !stalled && held < pipe.size;
            tokio::select! {
                r = src.readable(), if want_src => {
                    r.map_err(CopyError::Read)?;
                    woken = true;
                }
                r = dst.writable(), if held > 0 => r.map_err(CopyError::Write)?,
            }
        }
    }
}

/// What one try at filling the pipe did.
enum Fill {
    /// Moved this many bytes in; 0 at the end of the stream.
    Moved(usize),
    /// `src` has nothing now (its readiness is cleared).
    Dry,
    /// `src` has bytes the pipe does not take now.
    Stalled,
}

impl Splicer {
    /// Moves what `src` has into the pipe's `room`, without waiting. `held`
    /// bytes are in the pipe already; `woken` says `src` has just been
    /// reported readable.
    fn fill(&self, src: &TcpStream, room: usize, held: usize, woken: bool) -> io::Result<Fill> {
        let pipe = &self.pipe;
        let tried = src.try_io(Interest::READABLE, || {
            match splice(src, None, &pipe.write, None, room, FLAGS) {
                Ok(n) => Ok(Some(n)),
                // EAGAIN comes from the socket or from the pipe: only an
                // empty socket may clear the socket's readiness, or its
                // bytes would wait for an event that never comes.
                Err(nix::errno::Errno::EAGAIN) if has_bytes(src)? => Ok(None),
                Err(e) => Err(io::Error::from(e)),
            }
        });
        match tried {
            Ok(Some(0)) if held > 0 => Ok(Fill::Stalled),
            // At the urgent mark after the peer's FIN, splice says 0 too:
            // only a receive tells the end from the mark.
            Ok(Some(0)) => Ok(Fill::Moved(self.past_urgent_mark(src)?.unwrap_or(0))),
            Ok(Some(n)) => Ok(Fill::Moved(n)),
            // An empty pipe that takes nothing from a socket with bytes:
            // the urgent mark.
            Ok(None) if held == 0 => Ok(match self.past_urgent_mark(src)? {
                Some(n) => Fill::Moved(n),
                None => Fill::Dry,
            }),
            Ok(None) => Ok(Fill::Stalled),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                // Woken for bytes that splice will not take: the urgent
                // mark. (After a wake-up for bytes already taken, this
                // costs one receive that finds nothing.)
                if woken
                    && held == 0
                    && let Some(n) = self.past_urgent_mark(src)?
                {
                    return Ok(Fill::Moved(n));
                }
                Ok(Fill::Dry)
            }
            Err(e) => Err(e),
        }
    }

    /// splice(2) stops at TCP's urgent mark (`send(MSG_OOB)`, a telnet
    /// Synch) and says EAGAIN while the bytes behind it wait, for ever, or
    /// 0 once the peer has half-closed, as if at the end. A plain receive
    /// steps over the mark, dropping the urgent byte as the copy loop does;
    /// what it got goes into the pipe (0: the real end). `None`: nothing
    /// was waiting after all.
    fn past_urgent_mark(&self, src: &TcpStream) -> io::Result<Option<usize>> {
        // PIPE_BUF bytes into an empty pipe are written whole.
        let mut buf = [0u8; 4096];
        match recv(src.as_raw_fd(), &mut buf, MsgFlags::MSG_DONTWAIT) {
            Ok(0) => Ok(Some(0)),
            Ok(n) => {
                let written = nix::unistd::write(&self.pipe.write, &buf[..n])?;
                if written < n {
                    return Err(io::Error::other("the pipe took part of a write"));
                }
                Ok(Some(n))
            }
            Err(nix::errno::Errno::EAGAIN) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

/// Whether `socket` has bytes waiting (a one-byte peek; EOF is not bytes).
fn has_bytes(socket: &TcpStream) -> io::Result<bool> {
    let mut byte = [0u8; 1];
    match recv(
        socket.as_raw_fd(),
        &mut byte,
        MsgFlags::MSG_PEEK | MsgFlags::MSG_DONTWAIT,
    ) {
        Ok(n) => Ok(n > 0),
        Err(nix::errno::Errno::EAGAIN) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Moves `src` to `dst` until EOF, then shuts down `dst`'s write side (the
/// half-close passes through); returns the bytes moved. Messages are
/// copied, through a buffer of the shared pool held only while bytes are in
/// hand, so a short connection (a proxied request, an idle session) never
/// makes a pipe: that saves two descriptors and eight system calls per
/// connection. Once a read fills the buffer the connection is streaming,
/// and the rest goes through a pipe of its own, never copied.
pub async fn pump(src: &TcpStream, dst: &TcpStream, tap: &Tap<'_>) -> Result<u64, CopyError> {
    let pool = crate::copy::Pool::shared();
    let mut total = 0u64;
    loop {
        src.readable().await.map_err(CopyError::Read)?;
        let mut buf = pool
            .take()
            .unwrap_or_else(|| vec![0u8; crate::copy::BUF_SIZE]);
        let n = match src.try_read(&mut buf) {
            Ok(n) => n,
            Err(e) => {
                pool.give(buf);
                if e.kind() == io::ErrorKind::WouldBlock {
                    continue;
                }
                return Err(CopyError::Read(e));
            }
        };
        if n == 0 {
            pool.give(buf);
            break;
        }
        tap.took(n);
        let sent = send_all(dst, &buf[..n], tap).await;
        let full = n == buf.len();
        pool.give(buf);
        sent?;
        tap.gave(n);
        total += n as u64;
        if full && let Some(splicer) = Splicer::if_worthwhile() {
            total += splicer.pump(src, dst, tap).await?;
            break;
        }
    }
    socket2::SockRef::from(dst)
        .shutdown(std::net::Shutdown::Write)
        .map_err(CopyError::Write)?;
    Ok(total)
}

/// Writes all of `data` to `dst`, touching the tap's activity on each
/// partial write (a slow but live peer is not idle).
async fn send_all(dst: &TcpStream, mut data: &[u8], tap: &Tap<'_>) -> Result<(), CopyError> {
    while !data.is_empty() {
        let n = dst
            .async_io(Interest::WRITABLE, || {
                socket2::SockRef::from(dst).send(data)
            })
            .await
            .map_err(CopyError::Write)?;
        if n == 0 {
            return Err(CopyError::Write(io::ErrorKind::WriteZero.into()));
        }
        tap.touch();
        data = &data[n..];
    }
    Ok(())
}
