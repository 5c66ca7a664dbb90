//! What each service does with a connection, and with a datagram.
//!
//! A connection handler never blocks the others: each runs on its own task,
//! a client that stops reading only stalls its own writes (and is closed by
//! the idle timeout), and every handler ends on the first error.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::proto::{self, DaytimeFormat, Service};
use super::stats::Stats;
use crate::copy::{self, Activity, CopyError, Tap};
use crate::net::{Accepted, Stream};

/// Everything a service's handlers need, shared by its connections.
#[derive(Debug)]
pub struct Ctx {
    pub service: Service,
    pub stats: Stats,
    /// qotd's quotes, each ending in a newline.
    pub quotes: Arc<Vec<String>>,
    /// The next quote to serve (rotating).
    next_quote: AtomicUsize,
    /// chargen's next line for UDP (rotating across datagrams, as inetd).
    next_line: AtomicUsize,
    /// banner's text.
    pub text: Arc<str>,
    pub daytime: DaytimeFormat,
    /// Close a connection after this long without progress either way.
    pub idle: Duration,
    /// Echo connections open now (see [`LOOK`]).
    echoing: AtomicUsize,
}

/// How long a one-shot service (qotd, daytime, time, banner) keeps reading
/// after its answer for the client's close. Closing with the client's bytes
/// unread would send a reset that can destroy the answer in flight; a
/// client that sends nothing and closes late must not hold a descriptor
/// (and a `--max-conns` slot) for long.
const LINGER: Duration = Duration::from_millis(250);

/// How long a lone echo connection looks for its client's next request
/// after answering, before its thread sleeps. A client in a dialogue (a
/// script, a `Tube`, a prompt) answers within microseconds, and waking a
/// sleeping thread on a virtual machine costs more than the round trip: a
/// 1,000-step `netsmith script` dialogue took 35 ms with the server
/// sleeping after each answer, and 28 to 30 ms looking (19 ms when the
/// two threads are on different CPUs). Only while the service has one
/// connection open: with more, a worker has others to serve, and a busy
/// server seldom sleeps. The cost is at most this much CPU per answer,
/// and an idle connection pays it once, after its last answer. UDP does
/// the same ([`super::udp`]).
const LOOK: Duration = Duration::from_micros(30);

impl Ctx {
    pub fn new(
        service: Service,
        quotes: Arc<Vec<String>>,
        text: Arc<str>,
        daytime: DaytimeFormat,
        idle: Duration,
    ) -> Self {
        Ctx {
            service,
            stats: Stats::default(),
            quotes,
            next_quote: AtomicUsize::new(0),
            next_line: AtomicUsize::new(0),
            text,
            daytime,
            idle,
            echoing: AtomicUsize::new(0),
        }
    }

    /// The answer of a one-shot service, or of any service to one datagram
    /// (`None`: no answer, as for discard).
    pub fn answer<'a>(&self, request: &'a [u8]) -> Option<std::borrow::Cow<'a, [u8]>> {
        use std::borrow::Cow;
        Some(match self.service {
            Service::Echo => Cow::Borrowed(request),
            Service::Discard => return None,
            Service::Chargen => {
                let n = self.next_line.fetch_add(1, Ordering::Relaxed);
                Cow::Owned(proto::chargen_line(n).to_vec())
            }
            Service::Qotd => {
                let n = self.next_quote.fetch_add(1, Ordering::Relaxed);
                let quote = &self.quotes[n % self.quotes.len()];
                Cow::Owned(quote.as_bytes().to_vec())
            }
            Service::Daytime => {
                Cow::Owned(proto::daytime(SystemTime::now(), self.daytime).into_bytes())
            }
            Service::Time => Cow::Owned(proto::rfc868(SystemTime::now()).to_vec()),
            Service::Banner => Cow::Owned(self.text.as_bytes().to_vec()),
        })
    }

    /// Serves one connection to its end; errors are counted and logged, not
    /// returned. `transport` names the socket kind in logs.
    pub async fn serve(&self, stream: Stream, peer: &impl std::fmt::Display, transport: &str) {
        if self.service.is_one_shot() {
            let answer = self.answer(b"").unwrap_or_default().into_owned();
            return self.serve_rest(stream, answer, peer, transport).await;
        }
        let activity = Arc::new(Activity::default());
        let work = async {
            match self.service {
                Service::Echo => self.echo(stream, &activity).await,
                Service::Discard => self.discard(stream, &activity).await,
                _ => self.chargen(stream, &activity).await,
            }
        };
        let result = tokio::select! {
            r = work => r,
            () = activity.idle_for(self.idle) => Err(idle_timeout()),
        };
        self.failed(result, peer, transport);
    }

    /// A one-shot service's whole exchange, if it can be had without
    /// waiting: the answer fits in the socket's buffer and the client has
    /// sent nothing, so the connection closes at once, as inetd closes it.
    /// Most qotd or daytime clients go this way, with no task, no timer, no
    /// wake-up and no reactor registration. Otherwise returns the
    /// connection and the answer's unsent rest, for [`Ctx::serve_rest`].
    pub fn serve_now(
        &self,
        conn: Accepted,
        peer: &impl std::fmt::Display,
        transport: &str,
    ) -> Option<(Accepted, Vec<u8>)> {
        let answer = self.answer(b"").unwrap_or_default();
        let sent = match conn.try_write_last(&answer) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
            Err(e) => {
                self.failed(Err(e), peer, transport);
                return None;
            }
        };
        Stats::add(&self.stats.bytes_out, sent as u64);
        if sent < answer.len() {
            return Some((conn, answer[sent..].to_vec()));
        }
        match self.heard(|buf| conn.try_read(buf)) {
            Ok(false) => None,
            Ok(true) => Some((conn, Vec::new())),
            Err(e) => {
                self.failed(Err(e), peer, transport);
                None
            }
        }
    }

    /// Sends `rest` of a one-shot answer and ends the connection; a plain
    /// timeout bounds it (no activity clock: it is one write).
    pub async fn serve_rest(
        &self,
        stream: Stream,
        rest: Vec<u8>,
        peer: &impl std::fmt::Display,
        transport: &str,
    ) {
        let result = tokio::time::timeout(self.idle, self.one_shot(stream, &rest))
            .await
            .unwrap_or_else(|_| Err(idle_timeout()));
        self.failed(result, peer, transport);
    }

    /// Counts and logs a connection's failure.
    pub fn failed(&self, result: io::Result<()>, peer: &impl std::fmt::Display, transport: &str) {
        // A TLS client that closes without close_notify has still had
        // its answer: for a service that is a plain close.
        if let Err(e) = result
            && !crate::tls::is_truncation(&e)
        {
            Stats::add(&self.stats.errors, 1);
            tracing::info!(
                "{peer} ({}/{transport}): {}",
                self.service,
                crate::error::describe_io(&e)
            );
        }
    }

    /// RFC 862: every byte back until the client closes; its half-close is
    /// passed on once everything has been returned.
    async fn echo(&self, mut stream: Stream, activity: &Arc<Activity>) -> io::Result<()> {
        // A client that writes a message in pieces must not wait for its
        // delayed ACK before the rest of the answer comes (Nagle).
        if let Stream::Tcp(s) = &stream {
            let _ = s.set_nodelay(true);
        }
        let mut tap = Tap::new(false, None, Some(activity.clone()))
            .counting(&self.stats.bytes_in, &self.stats.bytes_out);
        let _open = Open::count(&self.echoing);
        let alone = || (self.echoing.load(Ordering::Relaxed) == 1).then_some(LOOK);
        copy::reflect(&mut stream, &mut tap, copy::Pool::shared(), alone)
            .await
            .map_err(into_io)?;
        stream.shutdown().await
    }

    /// RFC 863: read and drop everything. As echo does, a connection holds
    /// a buffer only while bytes are in hand: it waits for them with none,
    /// then reads into one of the shared pool's, so an idle connection
    /// costs no buffer (TLS, which cannot read without waiting, holds one).
    async fn discard(&self, stream: Stream, activity: &Arc<Activity>) -> io::Result<()> {
        if !stream.is_tls() {
            return self.swallow(&stream, activity).await;
        }
        let (mut rd, _wr) = tokio::io::split(stream);
        let dropped = std::sync::atomic::AtomicU64::new(0);
        let mut tap =
            Tap::new(false, None, Some(activity.clone())).counting(&self.stats.bytes_in, &dropped);
        copy::pump(&mut rd, &mut tokio::io::sink(), &mut tap)
            .await
            .map_err(into_io)?;
        Ok(())
    }

    /// RFC 864: the rotating lines until the client goes away. As inetd
    /// does, the client's half-close does not stop the stream; a failed
    /// write (the client closed) does. What the client sends is discarded.
    async fn chargen(&self, stream: Stream, activity: &Arc<Activity>) -> io::Result<()> {
        static PERIOD: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
        let period = PERIOD.get_or_init(|| proto::chargen_period().repeat(8));
        if !stream.is_tls() {
            return self.chargen_plain(&stream, period, activity).await;
        }
        let (mut rd, mut wr) = tokio::io::split(stream);
        let write = async {
            // The stream is the period over and over; `pos` is where in it
            // the next write starts, and every byte the kernel takes counts.
            let mut pos = 0;
            loop {
                let written = wr.write(&period[pos..]).await;
                if let Some(end) = self.chargen_wrote(written, &mut pos, period.len(), activity) {
                    return end;
                }
            }
        };
        let drain = async {
            self.drain(&mut rd).await;
            std::future::pending::<()>().await;
        };
        tokio::select! {
            r = write => r,
            () = drain => Ok(()),
        }
    }

    /// [`Ctx::chargen`] over a plain socket: the period is written as the
    /// socket takes it, and what the client sends is read only once it is
    /// there, into a pooled buffer, so a client that reads nothing costs
    /// no buffer while its connection waits.
    async fn chargen_plain(
        &self,
        stream: &Stream,
        period: &[u8],
        activity: &Activity,
    ) -> io::Result<()> {
        let mut pos = 0;
        let mut reading = true;
        loop {
            tokio::select! {
                ready = stream.writable() => {
                    ready?;
                    let written = stream.try_write(&period[pos..]);
                    if let Some(end) = self.chargen_wrote(written, &mut pos, period.len(), activity) {
                        return end;
                    }
                }
                ready = stream.readable(), if reading => {
                    // The client's half-close (or a failed read) ends only
                    // the reading, as inetd's chargen does.
                    reading = ready.is_ok() && self.swallow_once(stream);
                }
            }
        }
    }

    /// Counts one chargen write and moves `pos` on; `None` to go on, or
    /// how the session ends. The client hanging up is how it ends well.
    fn chargen_wrote(
        &self,
        written: io::Result<usize>,
        pos: &mut usize,
        period_len: usize,
        activity: &Activity,
    ) -> Option<io::Result<()>> {
        match written {
            Ok(0) => Some(Err(io::ErrorKind::WriteZero.into())),
            Ok(n) => {
                activity.touch();
                Stats::add(&self.stats.bytes_out, n as u64);
                *pos = (*pos + n) % period_len;
                None
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => None,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
                ) =>
            {
                Some(Ok(()))
            }
            Err(e) => Some(Err(e)),
        }
    }

    /// One read of what the client sent, into a pooled buffer; false once
    /// the client has half-closed or the read failed.
    fn swallow_once(&self, stream: &Stream) -> bool {
        match read_pooled(stream) {
            Ok(0) => false,
            Ok(n) => {
                Stats::add(&self.stats.bytes_in, n as u64);
                true
            }
            Err(e) => e.kind() == io::ErrorKind::WouldBlock,
        }
    }

    /// qotd, daytime, time, banner: the answer, then close.
    async fn one_shot(&self, mut stream: Stream, rest: &[u8]) -> io::Result<()> {
        stream.write_all(rest).await?;
        Stats::add(&self.stats.bytes_out, rest.len() as u64);
        // TLS cannot peek: it always ends with close_notify and the linger.
        if !stream.is_tls() && !self.heard(|buf| stream.try_read(buf))? {
            return Ok(());
        }
        // The client sent a request: linger (briefly) for its close, as
        // closing with its bytes unread would send a reset that can destroy
        // the answer in flight.
        stream.shutdown().await?;
        let _ = tokio::time::timeout(LINGER, self.drain(&mut stream)).await;
        Ok(())
    }

    /// Whether a one-shot client has sent anything (or closed): a client
    /// that has sent nothing is closed at once, as inetd does, since with
    /// nothing unread close sends a plain FIN.
    fn heard(&self, try_read: impl FnOnce(&mut [u8]) -> io::Result<usize>) -> io::Result<bool> {
        let mut buf = [0u8; 512];
        match try_read(&mut buf) {
            Ok(0) => Ok(false),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
            Ok(n) => {
                Stats::add(&self.stats.bytes_in, n as u64);
                Ok(true)
            }
            Err(e) => Err(e),
        }
    }
}

impl Ctx {
    /// Reads and counts what the client sends until it closes, with a
    /// buffer from the shared pool only while a read is in hand.
    async fn swallow(&self, stream: &Stream, activity: &Activity) -> io::Result<()> {
        loop {
            stream.readable().await?;
            match read_pooled(stream) {
                Ok(0) => return Ok(()),
                Ok(n) => {
                    activity.touch();
                    Stats::add(&self.stats.bytes_in, n as u64);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Reads and counts what the client sends until it closes (or fails).
    /// The buffer is on the heap: on the stack it would be part of every
    /// connection's future, idle or not (4 KiB each, measured; even the
    /// 512 bytes of a one-shot's linger cost every echo connection 0.6 KB).
    async fn drain(&self, rd: &mut (impl tokio::io::AsyncRead + Unpin)) {
        let mut buf = vec![0u8; 4096];
        while let Ok(n) = rd.read(&mut buf).await {
            if n == 0 {
                break;
            }
            Stats::add(&self.stats.bytes_in, n as u64);
        }
    }
}

/// Reads what is there into a buffer of the pool, held only for the read
/// (`WouldBlock` if nothing is); the bytes are counted, not kept.
fn read_pooled(stream: &Stream) -> io::Result<usize> {
    let pool = copy::Pool::shared();
    let mut buf = pool.take().unwrap_or_else(|| vec![0u8; copy::BUF_SIZE]);
    let read = stream.try_read(&mut buf);
    pool.give(buf);
    read
}

fn into_io(e: CopyError) -> io::Error {
    match e {
        CopyError::Read(e) | CopyError::Write(e) => e,
    }
}

fn idle_timeout() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "idle timeout")
}

/// One open connection in a count, for as long as it lives.
struct Open<'a>(&'a AtomicUsize);

impl<'a> Open<'a> {
    fn count(open: &'a AtomicUsize) -> Self {
        open.fetch_add(1, Ordering::Relaxed);
        Open(open)
    }
}

impl Drop for Open<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}
