//! The copy loop: the one place bytes move from a reader to a writer.
//!
//! Every command that moves a stream (connect, listen, and later relay)
//! goes through [`pump`], so its buffer size, its LF-to-CRLF rule, its
//! hexdump and its idle accounting are written once. A pump never shuts
//! down its writer itself: when to half-close is the caller's policy
//! (see `session`).

use std::io::{self, Write as _};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

use crate::net::Stream;

/// Bytes read per call: large enough that a 1 GiB transfer costs few
/// syscalls, small enough to stay in L2 cache.
pub const BUF_SIZE: usize = 64 * 1024;

/// What a pump's buffer may grow to while every read fills it (a bulk
/// download, see [`Tap::growing`]). Fewer, larger reads cost the kernel
/// less per byte on a fast stream: a 1 GiB download through a SOCKS5
/// proxy went from 1.3 GB/s with 64 KiB reads to 1.9 GB/s with 1 MiB, as
/// fast as a Python client reading 1 MiB at a time.
pub const GROWN_BUF_SIZE: usize = 1024 * 1024;

/// Buffers reused so that steady traffic allocates nothing: a fresh 64 KiB
/// buffer per chunk costs a malloc, a zero-fill and, once the allocator has
/// returned freed memory to the kernel, a page fault per 4 KiB (measured:
/// about 60,000 faults per GiB on the connect/listen pipe).
#[derive(Clone, Debug)]
pub struct Pool {
    free: Arc<Mutex<Vec<Vec<u8>>>>,
    /// Buffers kept at most; more are freed.
    max: usize,
}

impl Pool {
    /// A pool that keeps up to `max` buffers.
    pub fn new(max: usize) -> Self {
        Pool {
            free: Arc::default(),
            max,
        }
    }

    /// The process's pool, shared by every stream that holds a buffer only
    /// while it has bytes in hand (serve's echo and discard, relayed
    /// messages): 64 buffers, 4 MiB, kept after a burst.
    pub fn shared() -> &'static Pool {
        static POOL: std::sync::OnceLock<Pool> = std::sync::OnceLock::new();
        POOL.get_or_init(|| Pool::new(64))
    }

    /// A buffer from the pool, if it has one.
    pub fn take(&self) -> Option<Vec<u8>> {
        self.free.lock().ok().and_then(|mut p| p.pop())
    }

    /// Returns a buffer for reuse.
    pub fn give(&self, buf: Vec<u8>) {
        if let Ok(mut p) = self.free.lock()
            && p.len() < self.max
        {
            p.push(buf);
        }
    }
}

/// Which side of a pump failed; the two mean different things to a user
/// (a reset peer versus a closed stdout).
#[derive(Debug)]
pub enum CopyError {
    Read(io::Error),
    Write(io::Error),
}

/// When bytes last moved, in either direction of a connection, for
/// `--idle-timeout`.
#[derive(Debug)]
pub struct Activity {
    start: Instant,
    last_ms: AtomicU64,
}

impl Default for Activity {
    fn default() -> Self {
        Activity {
            start: Instant::now(),
            last_ms: AtomicU64::new(0),
        }
    }
}

impl Activity {
    /// Records that bytes moved now.
    pub fn touch(&self) {
        let ms = self.start.elapsed().as_millis() as u64;
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    /// How long it has been since bytes last moved.
    pub fn quiet_for(&self) -> Duration {
        let last = self.start + Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
        Instant::now().saturating_duration_since(last)
    }

    /// Completes once nothing has moved for `limit`.
    pub async fn idle_for(&self, limit: Duration) {
        loop {
            let last = self.start + Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
            // A limit too far away to represent never expires.
            let Some(deadline) = last.checked_add(limit) else {
                return std::future::pending().await;
            };
            if Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep_until(deadline).await;
        }
    }
}

/// The input side of a pump, for a caller that must tell "the input has
/// gone quiet" from "the output is slow" (a blocked write is not an idle
/// input).
#[derive(Debug, Default)]
pub struct Feed {
    /// When the input last delivered bytes.
    pub read: Activity,
    /// A write of what was read is under way.
    writing: AtomicBool,
}

impl Feed {
    /// Whether the pump is waiting on its input (not on a write) and has
    /// been for `pause`.
    pub fn quiet_for(&self, pause: Duration) -> bool {
        !self.writing.load(Ordering::Relaxed) && self.read.quiet_for() >= pause
    }
}

/// What a pump does to the bytes besides moving them.
#[derive(Debug, Default)]
pub struct Tap<'a> {
    /// `--crlf`: turn each LF not already preceded by CR into CRLF.
    pub crlf: bool,
    /// `--hex`: dump what moves to stderr.
    pub hex: Option<HexDump>,
    /// Shared with the other direction, for `--idle-timeout`.
    pub activity: Option<Arc<Activity>>,
    /// The input side's state, for the end-of-stream drain of a session.
    pub feed: Option<Arc<Feed>>,
    /// Counters of bytes read and bytes written, added to as they move (so
    /// a connection that fails midway is still counted).
    pub counted: Option<(&'a AtomicU64, &'a AtomicU64)>,
    /// The last byte seen was CR (a CRLF may straddle two reads).
    last_cr: bool,
    /// Reads that fill the buffer double it, up to [`GROWN_BUF_SIZE`].
    grow: bool,
}

impl<'a> Tap<'a> {
    /// A tap with the given conversions and accounting.
    pub fn new(crlf: bool, hex: Option<HexDump>, activity: Option<Arc<Activity>>) -> Self {
        Tap {
            crlf,
            hex,
            activity,
            feed: None,
            counted: None,
            last_cr: false,
            grow: false,
        }
    }

    /// Lets the pump's buffer grow while reads fill it, up to
    /// [`GROWN_BUF_SIZE`]: for a connection's one receiving side (a
    /// session's), not for a server's many, where it would cost each
    /// streaming client a megabyte.
    #[must_use]
    pub fn growing(mut self) -> Self {
        self.grow = true;
        self
    }

    /// Also records the input side's state in `feed`.
    #[must_use]
    pub fn feeding(mut self, feed: Arc<Feed>) -> Self {
        self.feed = Some(feed);
        self
    }

    /// Accounts for `n` bytes just read.
    pub(crate) fn took(&self, n: usize) {
        if let Some(activity) = &self.activity {
            activity.touch();
        }
        if let Some(feed) = &self.feed {
            feed.read.touch();
            feed.writing.store(true, Ordering::Relaxed);
        }
        if let Some((read, _)) = self.counted {
            read.fetch_add(n as u64, Ordering::Relaxed);
        }
    }

    /// Accounts for bytes written, some of a chunk: the connection is alive.
    pub(crate) fn touch(&self) {
        if let Some(activity) = &self.activity {
            activity.touch();
        }
    }

    /// Accounts for `n` bytes just written in full.
    pub(crate) fn gave(&self, n: usize) {
        if let Some(feed) = &self.feed {
            feed.writing.store(false, Ordering::Relaxed);
        }
        if let Some((_, written)) = self.counted {
            written.fetch_add(n as u64, Ordering::Relaxed);
        }
    }

    /// Also adds the bytes read to `read` and the bytes written to `written`.
    #[must_use]
    pub fn counting(mut self, read: &'a AtomicU64, written: &'a AtomicU64) -> Self {
        self.counted = Some((read, written));
        self
    }
}

/// Copies `reader` to `writer` until EOF; returns the bytes read.
pub async fn pump<R, W>(reader: &mut R, writer: &mut W, tap: &mut Tap<'_>) -> Result<u64, CopyError>
where
    R: AsyncRead + Unpin + ?Sized,
    W: AsyncWrite + Unpin + ?Sized,
{
    let mut buf = vec![0u8; BUF_SIZE];
    let mut converted = Vec::new();
    let mut total = 0u64;
    loop {
        let n = reader.read(&mut buf).await.map_err(CopyError::Read)?;
        if n == 0 {
            writer.flush().await.map_err(CopyError::Write)?;
            return Ok(total);
        }
        total += n as u64;
        tap.took(n);
        let full = n == buf.len();
        let data = if tap.crlf {
            tap.last_cr = lf_to_crlf(&buf[..n], tap.last_cr, &mut converted);
            &converted[..]
        } else {
            &buf[..n]
        };
        if let Some(hex) = &mut tap.hex {
            hex.dump(data);
        }
        write_all(writer, data, tap.activity.as_deref()).await?;
        // A TLS writer may keep encrypted bytes when the socket is full;
        // they must not wait for the next chunk (for plain sockets and
        // stdout this is free).
        writer.flush().await.map_err(CopyError::Write)?;
        tap.gave(data.len());
        if full && tap.grow && buf.len() < GROWN_BUF_SIZE {
            buf.resize(buf.len() * 2, 0);
        }
    }
}

/// Sends a stream's bytes back to it until EOF (echo), holding a buffer
/// from `pool` only while bytes are in hand. An idle connection costs no
/// buffer at all, which is what lets a server hold 10,000 of them in a few
/// megabytes. A TCP connection that fills a whole buffer is streaming: its
/// bytes then go back through a pipe with splice(2), never copied, and it
/// keeps the pipe (two descriptors, no buffered bytes once drained) for
/// the rest of its life. The tap's activity and counters apply; CRLF and
/// hexdump do not. After each answer, `look` may give a moment to wait for
/// the next request without sleeping ([`Stream::look_for_bytes`]).
pub async fn reflect(
    stream: &mut Stream,
    tap: &mut Tap<'_>,
    pool: &Pool,
    look: impl Fn() -> Option<Duration>,
) -> Result<u64, CopyError> {
    if stream.is_tls() {
        return reflect_tls(stream, tap, pool).await;
    }
    let mut total = 0u64;
    let mut tried_splice = false;
    loop {
        stream.readable().await.map_err(CopyError::Read)?;
        let mut buf = pool.take().unwrap_or_else(|| vec![0u8; BUF_SIZE]);
        let n = match stream.try_read(&mut buf) {
            Ok(n) => n,
            Err(e) => {
                pool.give(buf);
                if e.kind() == io::ErrorKind::WouldBlock {
                    continue; // a spurious wake-up
                }
                return Err(CopyError::Read(e));
            }
        };
        if n == 0 {
            pool.give(buf);
            return Ok(total);
        }
        total += n as u64;
        tap.took(n);
        let written = write_all(stream, &buf[..n], tap.activity.as_deref()).await;
        pool.give(buf);
        written?;
        tap.gave(n);
        // The answer is out; a client in a dialogue sends its next request
        // within microseconds. Looking for it (when `look` says so) keeps
        // the thread awake; the read below finds it either way.
        if let Some(window) = look() {
            stream.look_for_bytes(window);
        }
        // A full buffer means a stream, not a message: from here on the
        // bytes go back without a copy, unless there is no descriptor left
        // for the pipe or it would be small (then the copy goes on).
        #[cfg(target_os = "linux")]
        if n == BUF_SIZE
            && !tried_splice
            && let Stream::Tcp(tcp) = &*stream
        {
            tried_splice = true;
            if let Some(splicer) = crate::splice::Splicer::if_worthwhile() {
                return Ok(total + splicer.pump(tcp, tcp, tap).await?);
            }
        }
    }
}

/// [`reflect`] for TLS, which cannot read without waiting: the buffer is
/// held for the connection's life (its TLS state costs more anyway).
async fn reflect_tls(
    stream: &mut Stream,
    tap: &mut Tap<'_>,
    pool: &Pool,
) -> Result<u64, CopyError> {
    let mut buf = pool.take().unwrap_or_else(|| vec![0u8; BUF_SIZE]);
    let mut total = 0u64;
    let result = loop {
        let n = match stream.read(&mut buf).await {
            Ok(0) => break Ok(total),
            Ok(n) => n,
            Err(e) => break Err(CopyError::Read(e)),
        };
        total += n as u64;
        tap.took(n);
        if let Err(e) = write_all(stream, &buf[..n], tap.activity.as_deref()).await {
            break Err(e);
        }
        // TLS buffers what it encrypts: send it before waiting to read.
        if let Err(e) = stream.flush().await {
            break Err(CopyError::Write(e));
        }
        tap.gave(n);
    };
    pool.give(buf);
    result
}

/// `write_all`, recording progress on every partial write, so that a slow
/// but live peer never looks idle.
pub async fn write_all<W>(
    writer: &mut W,
    mut data: &[u8],
    activity: Option<&Activity>,
) -> Result<(), CopyError>
where
    W: AsyncWrite + Unpin + ?Sized,
{
    while !data.is_empty() {
        let n = writer.write(data).await.map_err(CopyError::Write)?;
        if n == 0 {
            return Err(CopyError::Write(io::ErrorKind::WriteZero.into()));
        }
        if let Some(activity) = activity {
            activity.touch();
        }
        data = &data[n..];
    }
    Ok(())
}

/// Appends `data` to `out` (cleared first) with bare LFs turned into CRLF;
/// returns whether `data` ended in CR, for the next call.
fn lf_to_crlf(data: &[u8], mut last_cr: bool, out: &mut Vec<u8>) -> bool {
    out.clear();
    out.reserve(data.len() + data.len() / 16);
    for &b in data {
        if b == b'\n' && !last_cr {
            out.push(b'\r');
        }
        out.push(b);
        last_cr = b == b'\r';
    }
    last_cr
}

/// Bytes as one line of text, as Python's `repr` shows them: printable
/// ASCII as is; backslash, CR, LF, tab and `quote` escaped with a
/// backslash; any other byte as `\xNN`.
pub fn escape_bytes(bytes: &[u8], quote: Option<u8>) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        match b {
            b'\\' => out.push_str("\\\\"),
            b'\r' => out.push_str("\\r"),
            b'\n' => out.push_str("\\n"),
            b'\t' => out.push_str("\\t"),
            _ if Some(b) == quote => {
                out.push('\\');
                out.push(b as char);
            }
            0x20..=0x7e => out.push(b as char),
            _ => {
                let _ = write!(out, "\\x{b:02x}");
            }
        }
    }
    out
}

/// Where hexdumps go: stderr, or a file shared by every connection
/// (`relay --log FILE`), locked per chunk so lines never interleave.
#[derive(Clone, Debug, Default)]
pub enum DumpSink {
    #[default]
    Stderr,
    File(Arc<Mutex<std::fs::File>>),
}

/// A hexdump of one direction of a connection, as `hexdump -C` lays it
/// out, each line prefixed with the direction (`>` sent, `<` received) and
/// the peer when several are open.
#[derive(Debug)]
pub struct HexDump {
    /// `>` for bytes sent, `<` for bytes received.
    direction: char,
    /// Names the connection when more than one may be open (`listen -k`).
    label: Option<String>,
    /// Offset of the next byte in this direction.
    offset: u64,
    /// Prefix each line with the wall-clock time (`relay --hex`), so that
    /// the two directions of an exchange can be put in order.
    timestamps: bool,
    sink: DumpSink,
}

impl HexDump {
    /// A dump of the sent (`'>'`) or received (`'<'`) direction.
    pub fn new(direction: char, label: Option<String>) -> Self {
        HexDump {
            direction,
            label,
            offset: 0,
            timestamps: false,
            sink: DumpSink::Stderr,
        }
    }

    /// Lines prefixed with the time, written to `sink`.
    #[must_use]
    pub fn timestamped(mut self, sink: DumpSink) -> Self {
        self.timestamps = true;
        self.sink = sink;
        self
    }

    /// Writes `data` as hexdump lines to stderr (or the sink).
    pub fn dump(&mut self, data: &[u8]) {
        let text = self.format(data);
        match &self.sink {
            DumpSink::Stderr => {
                let _ = io::stderr().lock().write_all(text.as_bytes());
            }
            DumpSink::File(file) => {
                if let Ok(mut file) = file.lock() {
                    let _ = file.write_all(text.as_bytes());
                }
            }
        }
    }

    /// The hexdump lines for `data`, continuing this direction's offset
    /// (`sniff -x` prints them on stdout, one fresh dump per packet).
    pub fn format(&mut self, data: &[u8]) -> String {
        use std::fmt::Write as _;
        let mut out = String::with_capacity(data.len() * 5);
        let now = self
            .timestamps
            .then(|| humantime::format_rfc3339_micros(std::time::SystemTime::now()).to_string());
        for line in data.chunks(16) {
            if let Some(now) = &now {
                let _ = write!(out, "{now} ");
            }
            if let Some(label) = &self.label {
                let _ = write!(out, "[{label}] ");
            }
            let _ = write!(out, "{} {:08x}  ", self.direction, self.offset);
            for i in 0..16 {
                match line.get(i) {
                    Some(b) => {
                        let _ = write!(out, "{b:02x} ");
                    }
                    None => out.push_str("   "),
                }
                if i == 7 {
                    out.push(' ');
                }
            }
            out.push_str(" |");
            out.extend(line.iter().map(|&b| {
                if b.is_ascii_graphic() || b == b' ' {
                    b as char
                } else {
                    '.'
                }
            }));
            out.push_str("|\n");
            self.offset += line.len() as u64;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crlf_converts_bare_lf_only_even_across_reads() {
        let mut out = Vec::new();
        let cr = lf_to_crlf(b"a\nb\r\nc\r", false, &mut out);
        assert_eq!(out, b"a\r\nb\r\nc\r");
        assert!(cr);
        lf_to_crlf(b"\nd\n", cr, &mut out);
        assert_eq!(out, b"\nd\r\n");
    }

    #[test]
    fn hexdump_lines_carry_direction_offset_and_ascii() {
        let mut h = HexDump::new('>', None);
        let text = h.format(b"Hello, World!\n\x00\x01\x02");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "> 00000000  48 65 6c 6c 6f 2c 20 57  6f 72 6c 64 21 0a 00 01  |Hello, World!...|"
        );
        assert!(lines[1].starts_with("> 00000010  02 "), "{}", lines[1]);
        assert!(lines[1].ends_with("|.|"));
        let again = h.format(b"x");
        assert!(again.starts_with("> 00000011  78"), "{again}");
    }

    #[tokio::test]
    async fn pump_moves_everything_and_counts() {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let mut reader = &data[..];
        let mut out = Vec::new();
        let n = pump(&mut reader, &mut out, &mut Tap::default())
            .await
            .unwrap();
        assert_eq!(n, data.len() as u64);
        assert_eq!(out, data);
    }

    /// A reader over bytes that records how much room each read offered.
    struct Offered<'a> {
        data: &'a [u8],
        sizes: Vec<usize>,
    }

    impl AsyncRead for Offered<'_> {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
            buf: &mut tokio::io::ReadBuf<'_>,
        ) -> std::task::Poll<io::Result<()>> {
            let room = buf.remaining();
            self.sizes.push(room);
            std::pin::Pin::new(&mut self.data).poll_read(cx, buf)
        }
    }

    #[tokio::test]
    async fn a_growing_pump_doubles_its_reads_up_to_the_limit_and_loses_nothing() {
        let data: Vec<u8> = (0..5_000_000u32).map(|i| (i % 251) as u8).collect();
        for grow in [false, true] {
            let mut reader = Offered {
                data: &data,
                sizes: Vec::new(),
            };
            let mut tap = Tap::default();
            if grow {
                tap = tap.growing();
            }
            let mut out = Vec::new();
            let n = pump(&mut reader, &mut out, &mut tap).await.unwrap();
            assert_eq!(n, data.len() as u64);
            assert_eq!(out, data);
            let largest = reader.sizes.iter().copied().max().unwrap();
            if grow {
                assert_eq!(
                    &reader.sizes[..6],
                    &[
                        BUF_SIZE,
                        2 * BUF_SIZE,
                        4 * BUF_SIZE,
                        8 * BUF_SIZE,
                        GROWN_BUF_SIZE,
                        GROWN_BUF_SIZE
                    ]
                );
                assert_eq!(largest, GROWN_BUF_SIZE);
            } else {
                assert_eq!(largest, BUF_SIZE);
            }
        }
    }
}
