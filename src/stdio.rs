//! The process's stdin and stdout as async endpoints.
//!
//! stdin and stdout may be a terminal, a pipe, a file or /dev/null, and are
//! shared with the shell that started us, so they cannot be switched to
//! non-blocking mode (that would leak into the shell after we exit). Each
//! gets a plain thread doing blocking reads or writes of whole chunks,
//! joined to the async side by a small bounded channel: one hand-off per
//! 64 KiB, reads of stdin overlapping writes to the socket, and no tokio
//! blocking-pool task that would keep the runtime from shutting down while
//! a terminal waits for input.

use std::fs::File;
use std::io::{self, Read as _, Write as _};
use std::os::fd::AsFd;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Bytes, BytesMut};
use tokio::io::AsyncWrite;
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::io::StreamReader;
use tokio_util::sync::PollSender;

/// The size of one read from stdin: one chunk, one UDP datagram at most.
pub const CHUNK: usize = 64 * 1024;

/// Chunks in flight between a stdio thread and the async side.
const DEPTH: usize = 8;

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
            loop {
                let mut buf = BytesMut::zeroed(CHUNK);
                match file.read(&mut buf) {
                    Ok(0) => return,
                    Ok(n) => {
                        buf.truncate(n);
                        if tx.blocking_send(Ok(buf.freeze())).is_err() {
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
    Data(Bytes),
    Sync(oneshot::Sender<()>),
}

/// stdout as an `AsyncWrite`. Clones share the one writer thread, so
/// several connections (`listen -k`) can write whole chunks to it.
#[derive(Clone)]
pub struct Stdout {
    tx: PollSender<Msg>,
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
        let file = io::stdout().as_fd().try_clone_to_owned().map(File::from);
        let spawned = std::thread::Builder::new()
            .name("stdout".into())
            .spawn(move || {
                let Ok(mut file) = file else { return };
                while let Some(msg) = rx.blocking_recv() {
                    match msg {
                        Msg::Data(bytes) => {
                            if file.write_all(&bytes).is_err() {
                                return; // closed stdout: senders see BrokenPipe
                            }
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
        match self.tx.send_item(Msg::Data(Bytes::copy_from_slice(buf))) {
            Ok(()) => Poll::Ready(Ok(buf.len())),
            Err(_) => Poll::Ready(Err(Self::closed())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
