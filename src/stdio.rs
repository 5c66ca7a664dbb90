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

/// Writes a command's result text to stdout. A closed stdout (`| head`)
/// is not an error: the reader has all it wanted. `print!` would panic.
pub fn print(text: &str) {
    let _ = io::stdout().lock().write_all(text.as_bytes());
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
    pub async fn sync_global() {
        if let Some(stdout) = STDOUT.get() {
            stdout.sync().await;
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
                            if file.write_all(&buf).is_err() {
                                return; // closed stdout: senders see BrokenPipe
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
    pub async fn sync(&self) {
        let Some(tx) = self.tx.get_ref() else { return };
        let (ack, done) = oneshot::channel();
        if tx.send(Msg::Sync(ack)).await.is_ok() {
            let _ = done.await;
        }
    }

    fn closed() -> io::Error {
        io::Error::new(io::ErrorKind::BrokenPipe, "stdout is closed")
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
