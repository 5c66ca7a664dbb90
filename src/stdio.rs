//! The process's stdin and stdout as async endpoints.
//!
//! stdin and stdout may be a terminal, a pipe, a file or /dev/null, and are
//! shared with the shell that started us, so they cannot be switched to
//! non-blocking mode (that would leak into the shell after we exit). Each
//! gets a plain thread doing blocking reads or writes of whole chunks,
//! joined to the async side by a small bounded channel: one hand-off per
//! 64 KiB, reads of stdin overlapping writes to the socket, and no tokio
//! blocking-pool task that would keep the runtime from shutting down while
//! a terminal waits for input. (stdout gets one hand-off per write the
//! session makes, whatever its size.)

use std::fs::File;
use std::io::{self, Read as _, Write as _};
use std::os::fd::AsFd;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use tokio::io::AsyncWrite;
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::io::StreamReader;
use tokio_util::sync::PollSender;

use crate::copy::Pool;

/// Writes a command's result text to stdout; returns whether stdout took
/// it. A failure is kept for the exit status (see [`failure`]): a closed
/// stdout (`| head`) is not an error, the reader has all it wanted, but any
/// other (a full disk) is data lost. After either, nothing more is
/// written, and a command that prints as it goes should stop
/// ([`closed`]). `print!` would panic.
pub fn print(text: &str) -> bool {
    print_bytes(text.as_bytes())
}

/// [`print`] for bytes that need not be text.
pub fn print_bytes(data: &[u8]) -> bool {
    if closed() {
        return false;
    }
    let mut out = io::stdout().lock();
    match out.write_all(data).and_then(|()| out.flush()) {
        Ok(()) => true,
        Err(e) => {
            record(&e);
            false
        }
    }
}

/// The first error writing stdout met, by kind and OS number (an
/// `io::Error` cannot be cloned).
static FAILED: std::sync::OnceLock<(io::ErrorKind, Option<i32>)> = std::sync::OnceLock::new();

/// Woken when a stdout failure is recorded.
static FAILED_NOW: tokio::sync::Notify = tokio::sync::Notify::const_new();

/// Keeps the first stdout write error, for [`failure`] and [`closed`]
/// (for a command with its own stdout writer, such as `sniff`).
pub fn record(err: &io::Error) {
    let _ = FAILED.set((err.kind(), err.raw_os_error()));
    FAILED_NOW.notify_waiters();
}

/// Completes once stdout can take no more: a write failed (EPIPE or
/// another error), or its reader left ([`reader_gone`], which this
/// watches too).
pub async fn gone() {
    let failed = async {
        loop {
            let woken = FAILED_NOW.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            if closed() {
                return;
            }
            woken.await;
        }
    };
    tokio::select! {
        () = failed => {}
        () = reader_gone() => {}
    }
}

/// The first error a write to stdout met, if one did: EPIPE when its
/// reader left, anything else when data was lost.
pub fn failure() -> Option<io::Error> {
    FAILED.get().map(|&(kind, raw)| match raw {
        Some(code) => io::Error::from_raw_os_error(code),
        None => io::Error::from(kind),
    })
}

/// Whether stdout can take no more (its reader left, or writing failed).
pub fn closed() -> bool {
    FAILED.get().is_some()
}

/// Completes when stdout is a pipe or socket whose reader has gone (`|
/// head` has exited), without writing to it, and records that as EPIPE;
/// never completes for a file or a terminal. For a server that may write
/// nothing for a long time (`listen -k`): it can stop at once, as a
/// command that writes stops at its next write.
pub async fn reader_gone() {
    use tokio::io::Interest;
    use tokio::io::unix::AsyncFd;
    // Deprecated because a `T` that does not own its descriptor could let
    // it be closed while registered; this `OwnedFd` (a duplicate of
    // stdout) moves into the `AsyncFd`, which alone closes it (as in
    // `net::stream`; the replacement is `unsafe`, which this crate allows
    // nowhere but the capture).
    #[allow(deprecated)]
    let watch = io::stdout()
        .as_fd()
        .try_clone_to_owned()
        .and_then(|fd| AsyncFd::with_interest(fd, Interest::ERROR));
    // A regular file cannot be watched (EPERM): it has no reader to lose.
    let Ok(watch) = watch else {
        return std::future::pending().await;
    };
    loop {
        match watch.ready(Interest::ERROR).await {
            Ok(guard) if guard.ready().is_error() => {
                record(&io::Error::from(io::ErrorKind::BrokenPipe));
                return;
            }
            Ok(mut guard) => guard.clear_ready(),
            Err(_) => return std::future::pending().await,
        }
    }
}

/// Completes when stdout is gone ([`gone`]), with what that means for a
/// command that writes there: a quiet end when its reader left, else
/// "write to stdout: REASON" (exit 1). A session whose peer has closed may
/// otherwise wait for stdin with nowhere left to put what it receives.
pub async fn ended() -> crate::Result<()> {
    gone().await;
    match failure() {
        Some(e) if !reader_left(&e) => Err(crate::Error::stdout(&e)),
        _ => {
            tracing::info!("stdout closed, ending");
            Ok(())
        }
    }
}

/// Whether a stdout write error is only its reader leaving (EPIPE, `|
/// head`): the one write error that is a quiet exit.
pub fn reader_left(err: &io::Error) -> bool {
    err.kind() == io::ErrorKind::BrokenPipe
}

/// The size of one read from stdin: one chunk, one UDP datagram at most.
pub const CHUNK: usize = 64 * 1024;

/// Chunks in flight between a stdio thread and the async side.
const DEPTH: usize = 8;

/// Buffers kept for reuse: enough for every chunk in flight.
const POOL_MAX: usize = DEPTH + 4;

/// A stdin chunk whose buffer goes back to the pool when the socket side
/// is done with it (the owner of a [`Bytes`]).
struct Pooled {
    buf: Vec<u8>,
    len: usize,
    pool: Pool,
}

impl AsRef<[u8]> for Pooled {
    fn as_ref(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        self.pool.give(std::mem::take(&mut self.buf));
    }
}

/// stdin as a stream of chunks, each the result of one `read`; the channel
/// closes at EOF. Chunk boundaries matter for UDP (one chunk, one datagram).
pub type Chunks = mpsc::Receiver<io::Result<Bytes>>;

/// A chunk channel read as a byte stream.
pub type ChunkReader = StreamReader<ReceiverStream<io::Result<Bytes>>, Bytes>;

/// Starts reading stdin on its own thread. A closed stdin (`<&-`) reads as
/// empty.
pub fn stdin_chunks() -> Chunks {
    let (tx, rx) = mpsc::channel(DEPTH);
    let file = io::stdin().as_fd().try_clone_to_owned().map(File::from);
    std::thread::Builder::new()
        .name("stdin".into())
        .spawn(move || {
            let Ok(mut file) = file else {
                return; // no stdin at all: EOF
            };
            let pool = Pool::new(POOL_MAX);
            loop {
                // Pooled buffers stay CHUNK long and initialized: no zero-fill.
                let mut buf = pool.take().unwrap_or_else(|| vec![0; CHUNK]);
                match file.read(&mut buf) {
                    Ok(0) => return,
                    Ok(len) => {
                        let chunk = Bytes::from_owner(Pooled {
                            buf,
                            len,
                            pool: pool.clone(),
                        });
                        if tx.blocking_send(Ok(chunk)).is_err() {
                            return;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        let _ = tx.blocking_send(Err(e));
                        return;
                    }
                }
            }
        })
        .map_or_else(|_| mpsc::channel(1).1, |_| rx)
}

/// A chunk channel as an `AsyncRead`.
pub fn reader(chunks: Chunks) -> ChunkReader {
    StreamReader::new(ReceiverStream::new(chunks))
}

enum Msg {
    Data(Vec<u8>),
    Sync(oneshot::Sender<()>),
}

/// stdout as an `AsyncWrite`. Clones share the one writer thread, so
/// several connections (`listen -k`) can write whole chunks to it.
#[derive(Clone)]
pub struct Stdout {
    tx: PollSender<Msg>,
    /// Buffers the writer thread has finished with.
    pool: Pool,
}

/// The process's one stdout writer, started on first use.
static STDOUT: std::sync::OnceLock<Stdout> = std::sync::OnceLock::new();

impl Stdout {
    /// A handle on the process's stdout writer (one thread for the process,
    /// so that [`Stdout::sync_global`] can flush it on every way out,
    /// Ctrl-C included).
    pub fn get() -> Stdout {
        STDOUT.get_or_init(Stdout::start).clone()
    }

    /// Waits until everything written to stdout so far has reached it, if
    /// stdout was ever used.
    ///
    /// # Errors
    /// The write error that stopped stdout, if one did.
    pub async fn sync_global() -> io::Result<()> {
        match STDOUT.get() {
            Some(stdout) => stdout.sync().await,
            None => Ok(()),
        }
    }

    fn start() -> Stdout {
        let (tx, mut rx) = mpsc::channel::<Msg>(DEPTH);
        let pool = Pool::new(POOL_MAX);
        let used = pool.clone();
        let file = io::stdout().as_fd().try_clone_to_owned().map(File::from);
        let spawned = std::thread::Builder::new()
            .name("stdout".into())
            .spawn(move || {
                let Ok(mut file) = file else { return };
                while let Some(msg) = rx.blocking_recv() {
                    match msg {
                        Msg::Data(buf) => {
                            if let Err(e) = file.write_all(&buf) {
                                // Senders see this error (EPIPE, ENOSPC, ...).
                                record(&e);
                                return;
                            }
                            used.give(buf);
                        }
                        Msg::Sync(ack) => {
                            let _ = ack.send(());
                        }
                    }
                }
            });
        if spawned.is_err() {
            tracing::warn!("cannot start the stdout thread; output is dropped");
        }
        Stdout {
            tx: PollSender::new(tx),
            pool,
        }
    }

    /// Waits until everything written so far has reached stdout.
    ///
    /// # Errors
    /// The write error that stopped stdout, if one did.
    pub async fn sync(&self) -> io::Result<()> {
        let Some(tx) = self.tx.get_ref() else {
            return Err(Self::closed());
        };
        let (ack, done) = oneshot::channel();
        if tx.send(Msg::Sync(ack)).await.is_ok() && done.await.is_ok() {
            return Ok(());
        }
        Err(Self::closed())
    }

    /// The error that stopped the writer thread: the real one (ENOSPC is
    /// not EPIPE), or `BrokenPipe` when there was no stdout to write to.
    fn closed() -> io::Error {
        failure().unwrap_or_else(|| io::Error::new(io::ErrorKind::BrokenPipe, "stdout is closed"))
    }
}

impl AsyncWrite for Stdout {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if ready!(self.tx.poll_reserve(cx)).is_err() {
            return Poll::Ready(Err(Self::closed()));
        }
        let mut chunk = self
            .pool
            .take()
            .unwrap_or_else(|| Vec::with_capacity(CHUNK));
        chunk.clear();
        chunk.extend_from_slice(buf);
        match self.tx.send_item(Msg::Data(chunk)) {
            Ok(()) => Poll::Ready(Ok(buf.len())),
            Err(_) => Poll::Ready(Err(Self::closed())),
        }
    }

    /// Data is handed to the writer thread, not yet written: this does not
    /// wait for it. [`Stdout::sync`] is the barrier that does.
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
