//! A conversation with a peer, one step at a time: send a line, receive
//! until a prompt, a line, N bytes, a regex or the end. Over any stream
//! netsmith opens (TCP, TLS, Unix sockets, a program's stdin and stdout)
//! and over datagrams (UDP, Unix datagram sockets), where each send is one
//! datagram and what arrives is read as one stream of bytes.
//!
//! Every receive has a deadline ([`Tube::set_timeout`], 5 s at first). A
//! receive that runs out of time is an error, [`TubeError::Timeout`], that
//! carries what had arrived, and those bytes stay in the tube for the next
//! receive: nothing received is ever dropped, unlike a receive that returns
//! an empty string on timeout and keeps the data out of sight. The end of
//! the stream in the middle of a receive is [`TubeError::Closed`], with what
//! had arrived.
//!
//! `netsmith script` is a thin layer over this type.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use netsmith::tube::{Tube, TubeError};
//! use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
//!
//! // A line-echo server on loopback, to talk to.
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let addr = listener.local_addr()?;
//! tokio::spawn(async move {
//!     let (socket, _) = listener.accept().await.unwrap();
//!     let (rd, mut wr) = socket.into_split();
//!     wr.write_all(b"220 ready\r\n").await.unwrap();
//!     let mut lines = BufReader::new(rd).lines();
//!     while let Some(line) = lines.next_line().await.unwrap() {
//!         wr.write_all(format!("250 {line}\r\n").as_bytes()).await.unwrap();
//!     }
//! });
//!
//! let mut t = Tube::connect(&addr.to_string()).await?;
//! t.set_timeout(Duration::from_millis(200));
//! // A receive that times out says so, with what had arrived...
//! match t.recv_until(b"250").await {
//!     Err(TubeError::Timeout { partial, .. }) => assert_eq!(partial, b"220 ready\r\n"),
//!     other => panic!("{other:?}"),
//! }
//! // ... which is still there for the next receive.
//! assert_eq!(t.recv_line().await?, b"220 ready\r\n");
//! t.send_line(b"HELO netsmith").await?;
//! assert_eq!(t.recv_until(b"\r\n").await?, b"250 HELO netsmith\r\n");
//! # Ok(())
//! # }
//! ```

use std::io;
use std::path::Path;
use std::time::Duration;

use regex::bytes::Regex;
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::time::Instant;

use crate::endpoint::{Endpoint, Side};
use crate::error::{Error, Result};
use crate::net::{Datagram, Duplex, Resolve, Stream, dial};

/// How long a receive waits unless told otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// Bytes read from the peer at a time.
const READ_SIZE: usize = 64 * 1024;

/// Why a receive failed. What had arrived stays in the tube either way.
#[derive(Debug, thiserror::Error)]
pub enum TubeError {
    /// Nothing that matched arrived within the timeout.
    #[error("timed out after {}", crate::duration::show(*.waited))]
    Timeout { partial: Vec<u8>, waited: Duration },
    /// The peer ended the stream before anything matched.
    #[error("the peer closed the connection")]
    Closed { partial: Vec<u8> },
    /// The connection failed.
    #[error("{}", crate::error::describe_io(.0))]
    Io(#[from] io::Error),
}

impl TubeError {
    /// What had arrived, unmatched, when the receive failed.
    pub fn partial(&self) -> &[u8] {
        match self {
            TubeError::Timeout { partial, .. } | TubeError::Closed { partial } => partial,
            TubeError::Io(_) => &[],
        }
    }
}

/// Which way bytes went, for a transcript.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Sent,
    Received,
}

/// Called with every chunk sent and received (`script --transcript`).
pub type Observer = Box<dyn FnMut(Direction, &[u8]) + Send>;

enum Io {
    /// Split, so that a send can read while it waits to write.
    Stream(ReadHalf<Box<dyn Duplex>>, WriteHalf<Box<dyn Duplex>>),
    Datagram(Datagram),
}

/// A conversation with one peer. See the [module docs](self).
pub struct Tube {
    io: Io,
    /// Received and not yet taken.
    buf: Vec<u8>,
    eof: bool,
    timeout: Duration,
    newline: &'static [u8],
    observer: Option<Observer>,
    /// Where reads land before they join `buf`: allocated once, so a
    /// short exchange costs no allocation and no 64 KiB of zeroing.
    scratch: Vec<u8>,
    /// A second descriptor of a plain socket's, to look for an answer
    /// without going to sleep ([`SPIN`]); `None` for TLS and programs.
    spin: Option<std::os::fd::OwnedFd>,
}

/// How long a receive on a plain socket keeps looking for the answer
/// before it sleeps until the kernel wakes it. A dialogue is a round trip
/// per step, and on a virtual machine the wake-up alone can cost more than
/// the round trip: a 1,000-step dialogue with `netsmith serve echo` took 25
/// to 96 ms here without looking, 36 to 39 ms looking for 50 µs, 28 to 35
/// ms for 200 µs. The time is spent only while an answer is due, at most
/// once per chunk received, never by an idle tube.
const SPIN: Duration = Duration::from_micros(200);

impl std::fmt::Debug for Tube {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tube")
            .field("buffered", &self.buf.len())
            .field("eof", &self.eof)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// What a regex receive matched.
#[derive(Debug, Clone)]
pub struct Matched {
    /// Everything taken, up to the end of the match.
    pub taken: Vec<u8>,
    /// The match itself, then each group (`None` if it did not take part).
    pub groups: Vec<Option<Vec<u8>>>,
}

impl Tube {
    /// A tube over any two-way stream.
    pub fn new(stream: impl Duplex + 'static) -> Tube {
        let boxed: Box<dyn Duplex> = Box::new(stream);
        let (rd, wr) = tokio::io::split(boxed);
        Tube::over(Io::Stream(rd, wr))
    }

    /// A tube over a plain socket (TCP or Unix stream), whose receives
    /// look for an answer briefly before they sleep; a TLS stream as
    /// [`Tube::new`].
    pub fn socket(stream: Stream) -> Tube {
        use std::os::fd::AsFd;
        let spin = match &stream {
            Stream::Tcp(s) => s.as_fd().try_clone_to_owned().ok(),
            Stream::Unix(s) => s.as_fd().try_clone_to_owned().ok(),
            Stream::Tls(_) => None,
        };
        let mut tube = Tube::new(stream);
        tube.spin = spin;
        tube
    }

    /// A tube over a connected datagram socket: each send is a datagram.
    pub fn datagram(socket: Datagram) -> Tube {
        Tube::over(Io::Datagram(socket))
    }

    fn over(io: Io) -> Tube {
        Tube {
            io,
            buf: Vec::new(),
            eof: false,
            timeout: DEFAULT_TIMEOUT,
            newline: b"\n",
            observer: None,
            scratch: Vec::new(),
            spin: None,
        }
    }

    /// Connects to an endpoint of netsmith's grammar: `HOST:PORT`,
    /// `tcp://HOST:PORT`, `udp://HOST:PORT`, `unix:PATH`, `unixgram:PATH`,
    /// or `tls://HOST:PORT` (verified against the system's roots; see
    /// [`Tube::connect_tls`] for a pin or a CA).
    pub async fn connect(endpoint: &str) -> Result<Tube> {
        Tube::connect_tls(endpoint, &crate::tls::ClientArgs::default()).await
    }

    /// [`Tube::connect`], with TLS set up by `tls` (`--ca`, `--pin`,
    /// `--insecure`, ...), for `tls://` endpoints and `tls.tls`.
    pub async fn connect_tls(endpoint: &str, tls: &crate::tls::ClientArgs) -> Result<Tube> {
        let timeout = crate::connect::DEFAULT_CONNECT_TIMEOUT;
        let resolve = Resolve::default();
        let side = Side::parse(endpoint)?;
        let (target, tls_on) = match side {
            Side::Connect(t) => (t, tls.tls),
            Side::TlsConnect(t) => (t, true),
            other => {
                return Err(Error::usage(format!(
                    "\"{other}\" is not an endpoint to connect to: write HOST:PORT, tls://HOST:PORT, \
                     udp://HOST:PORT or unix:PATH"
                )));
            }
        };
        match &target {
            Endpoint::Inet {
                proto: crate::services::Proto::Udp,
                host,
                port,
            } => {
                let addrs = resolve.addrs(host, *port).await?;
                Ok(Tube::datagram(
                    dial::udp(&target.to_string(), &addrs, None).await?,
                ))
            }
            Endpoint::Inet { host, port, .. } => {
                let addrs = resolve.addrs(host, *port).await?;
                let stream =
                    Stream::Tcp(dial::tcp(&target.to_string(), &addrs, None, timeout).await?);
                if !tls_on {
                    return Ok(Tube::socket(stream));
                }
                let connector = crate::tls::Connector::new(tls)?;
                Ok(Tube::new(connector.connect(host, stream, endpoint).await?))
            }
            Endpoint::Unix {
                path,
                datagram: false,
            } => Ok(Tube::socket(dial::unix(path).await?)),
            Endpoint::Unix {
                path,
                datagram: true,
            } => Ok(Tube::datagram(dial::unixgram(path)?)),
        }
    }

    /// Starts `command` (split as a shell would, no shell involved) with
    /// its stdin and stdout as the tube; its stderr stays ours. It is ended
    /// with the tube.
    pub fn spawn(command: &str) -> Result<Tube> {
        let side = Side::parse(&format!("exec:{command}"))?;
        let program = side
            .program()
            .ok_or_else(|| Error::usage(format!("\"{command}\" names no program")))?;
        program.check()?;
        Ok(Tube::new(program.start(None)?.into_stream()))
    }

    /// Waits for one client on `listener` and talks to it.
    pub async fn accept(listener: &crate::net::Listener) -> Result<Tube> {
        let (stream, _) = listener
            .accept()
            .await
            .map_err(|e| Error::io("accept a connection", &e))?;
        Ok(Tube::socket(stream))
    }

    /// How long each receive waits from now on.
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// The timeout receives use.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Ends each [`Tube::send_line`] with CRLF rather than LF.
    pub fn set_crlf(&mut self, crlf: bool) {
        self.newline = if crlf { b"\r\n" } else { b"\n" };
    }

    /// Calls `observer` with every chunk sent and received. Bytes already
    /// received and not yet taken (a UDP listener's first datagram) are
    /// passed to it at once, so a transcript misses nothing.
    pub fn observe(&mut self, mut observer: Observer) {
        if !self.buf.is_empty() {
            observer(Direction::Received, &self.buf);
        }
        self.observer = Some(observer);
    }

    /// What has been received and not yet taken.
    pub fn buffered(&self) -> &[u8] {
        &self.buf
    }

    /// Whether the peer has ended its stream.
    pub fn at_eof(&self) -> bool {
        self.eof
    }

    /// Sends `data` whole (one datagram on a datagram tube). While the
    /// peer is not taking more, what it sends is read into the tube, so a
    /// large send to a peer that answers as it reads (an echo) cannot
    /// deadlock with both sides waiting to write.
    pub async fn send(&mut self, data: &[u8]) -> io::Result<()> {
        match &mut self.io {
            Io::Stream(rd, wr) => {
                let mut left = data;
                while !left.is_empty() {
                    if self.scratch.is_empty() {
                        self.scratch = vec![0u8; READ_SIZE];
                    }
                    tokio::select! {
                        // Writing first: a short send is done before the
                        // read is ever polled.
                        biased;
                        n = wr.write(left) => match n? {
                            0 => return Err(io::ErrorKind::WriteZero.into()),
                            n => left = &left[n..],
                        },
                        n = rd.read(&mut self.scratch), if !self.eof => {
                            let n = n?;
                            self.eof = n == 0;
                            self.buf.extend_from_slice(&self.scratch[..n]);
                            if n > 0 && let Some(observe) = &mut self.observer {
                                observe(Direction::Received, &self.scratch[..n]);
                            }
                        }
                    }
                }
                wr.flush().await?;
            }
            Io::Datagram(d) => {
                d.send(data).await?;
            }
        }
        if let Some(observe) = &mut self.observer {
            observe(Direction::Sent, data);
        }
        Ok(())
    }

    /// Sends `line` and a newline (LF, or CRLF after `set_crlf(true)`).
    pub async fn send_line(&mut self, line: &[u8]) -> io::Result<()> {
        let mut data = Vec::with_capacity(line.len() + 2);
        data.extend_from_slice(line);
        data.extend_from_slice(self.newline);
        self.send(&data).await
    }

    /// Receives up to `delim`, then sends `line` (pwntools' `sendlineafter`);
    /// returns what was taken.
    pub async fn send_line_after(
        &mut self,
        delim: &[u8],
        line: &[u8],
    ) -> std::result::Result<Vec<u8>, TubeError> {
        let taken = self.recv_until(delim).await?;
        self.send_line(line).await?;
        Ok(taken)
    }

    /// Ends our side of the stream (the peer reads EOF) and keeps reading.
    pub async fn close(&mut self) -> io::Result<()> {
        match &mut self.io {
            Io::Stream(_, wr) => wr.shutdown().await,
            Io::Datagram(_) => Ok(()),
        }
    }

    /// Whatever has arrived, at least one byte.
    pub async fn recv(&mut self) -> std::result::Result<Vec<u8>, TubeError> {
        self.take_when(|buf| (!buf.is_empty()).then_some(buf.len()))
            .await
    }

    /// Everything up to and including `delim`.
    pub async fn recv_until(&mut self, delim: &[u8]) -> std::result::Result<Vec<u8>, TubeError> {
        self.take_when(|buf| find(buf, delim).map(|at| at + delim.len()))
            .await
    }

    /// One line, with its `\n`.
    pub async fn recv_line(&mut self) -> std::result::Result<Vec<u8>, TubeError> {
        self.recv_until(b"\n").await
    }

    /// Exactly `n` bytes.
    pub async fn recv_exact(&mut self, n: usize) -> std::result::Result<Vec<u8>, TubeError> {
        self.take_when(|buf| (buf.len() >= n).then_some(n)).await
    }

    /// Everything up to the end of the first match of `re`, with its groups.
    pub async fn recv_regex(&mut self, re: &Regex) -> std::result::Result<Matched, TubeError> {
        let mut groups = Vec::new();
        let taken = self
            .take_when(|buf| {
                let caps = re.captures(buf)?;
                groups = caps
                    .iter()
                    .map(|g| g.map(|m| m.as_bytes().to_vec()))
                    .collect();
                caps.get(0).map(|m| m.end())
            })
            .await?;
        Ok(Matched { taken, groups })
    }

    /// Everything until the peer ends the stream, within the timeout.
    pub async fn recv_all(&mut self) -> std::result::Result<Vec<u8>, TubeError> {
        let deadline = Instant::now() + self.timeout;
        while !self.eof {
            self.fill(deadline).await?;
        }
        Ok(std::mem::take(&mut self.buf))
    }

    /// Hands the conversation to this terminal, as nc does: what is
    /// buffered goes to stdout first, then stdin to the peer and the peer
    /// to stdout until both ends have closed. Stream tubes only.
    pub async fn interactive(mut self) -> Result<()> {
        use std::io::Write as _;
        let Io::Stream(mut rd, mut wr) = self.io else {
            return Err(Error::usage(
                "interactive needs a stream (TCP, TLS, Unix, a program), not datagrams",
            ));
        };
        {
            let mut out = std::io::stdout().lock();
            out.write_all(&std::mem::take(&mut self.buf))
                .and_then(|()| out.flush())
                .map_err(|e| Error::stdout(&e))?;
        }
        let mut input = crate::stdio::reader(crate::stdio::stdin_chunks());
        let mut output = crate::stdio::Stdout::get();
        let mut tap_in = crate::copy::Tap::new(false, None, None);
        let mut tap_out = crate::copy::Tap::new(false, None, None);
        let up = async {
            let n = crate::copy::pump(&mut input, &mut wr, &mut tap_in).await;
            let _ = wr.shutdown().await;
            n
        };
        let down = async {
            let n = crate::copy::pump(&mut rd, &mut output, &mut tap_out).await;
            let _ = output.flush().await;
            n
        };
        let (up, down) = tokio::join!(up, down);
        for (result, from, to) in [(down, "the peer", "stdout"), (up, "stdin", "the peer")] {
            match result {
                Ok(_) => {}
                Err(crate::copy::CopyError::Read(e)) => {
                    return Err(Error::io(format!("read from {from}"), &e));
                }
                Err(crate::copy::CopyError::Write(e)) => {
                    return Err(Error::io(format!("write to {to}"), &e));
                }
            }
        }
        Ok(())
    }

    /// Takes the first `end` bytes once `matches` finds an end in what has
    /// arrived; waits for more until the deadline.
    async fn take_when(
        &mut self,
        mut matches: impl FnMut(&[u8]) -> Option<usize>,
    ) -> std::result::Result<Vec<u8>, TubeError> {
        let deadline = Instant::now() + self.timeout;
        loop {
            if let Some(end) = matches(&self.buf) {
                let rest = self.buf.split_off(end);
                return Ok(std::mem::replace(&mut self.buf, rest));
            }
            if self.eof {
                return Err(TubeError::Closed {
                    partial: self.buf.clone(),
                });
            }
            self.fill(deadline).await?;
        }
    }

    /// Reads what the peer sends next into the buffer, by `deadline`.
    async fn fill(&mut self, deadline: Instant) -> std::result::Result<(), TubeError> {
        if self.scratch.is_empty() {
            self.scratch = vec![0u8; READ_SIZE];
        }
        if let Some(n) = self.look()? {
            self.took(n);
            return Ok(());
        }
        let read = match &mut self.io {
            Io::Stream(rd, _) => {
                tokio::time::timeout_at(deadline, rd.read(&mut self.scratch)).await
            }
            Io::Datagram(d) => tokio::time::timeout_at(deadline, d.recv(&mut self.scratch)).await,
        };
        let n = match read {
            Ok(Ok(n)) => n,
            Ok(Err(e)) => return Err(TubeError::Io(e)),
            Err(_) => {
                return Err(TubeError::Timeout {
                    partial: self.buf.clone(),
                    waited: self.timeout,
                });
            }
        };
        self.took(n);
        Ok(())
    }

    /// Looks for bytes on a plain socket for up to [`SPIN`], without
    /// sleeping: `Some(n)` read into the scratch buffer (0 at the end).
    fn look(&mut self) -> io::Result<Option<usize>> {
        let Some(fd) = &self.spin else {
            return Ok(None);
        };
        let fd = std::os::fd::AsRawFd::as_raw_fd(fd);
        let scratch = &mut self.scratch;
        let flags = nix::sys::socket::MsgFlags::MSG_DONTWAIT;
        crate::net::spin_for(SPIN, || match nix::sys::socket::recv(fd, scratch, flags) {
            Ok(n) => Some(Ok(n)),
            Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EINTR) => None,
            Err(e) => Some(Err(e.into())),
        })
        .transpose()
    }

    /// Takes `n` bytes of the scratch buffer into the tube (0: the end).
    fn took(&mut self, n: usize) {
        self.buf.extend_from_slice(&self.scratch[..n]);
        if n == 0 && matches!(self.io, Io::Stream(..)) {
            self.eof = true;
        }
        if n > 0
            && let Some(observe) = &mut self.observer
        {
            observe(Direction::Received, &self.scratch[..n]);
        }
    }
}

/// Where `needle` first occurs in `hay`.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Where a [`Tube`] waits for its peer: a stream listener, or a UDP socket
/// that talks to whoever sends the first datagram (as `nc -u -l` does).
pub enum Listening {
    Stream(crate::net::Listener, Option<crate::net::bind::SocketFile>),
    /// `None` once its sender has been taken.
    Udp(Option<Datagram>, Option<std::net::SocketAddr>),
}

impl Listening {
    /// Binds `endpoint`: what [`listener`] takes, or `udp://[ADDR:]PORT`.
    pub fn bind(endpoint: &str) -> Result<Listening> {
        let Some(udp) = endpoint
            .strip_prefix("udp://")
            .or_else(|| endpoint.strip_prefix("udp-listen:"))
        else {
            let (listener, file) = listener(endpoint)?;
            return Ok(Listening::Stream(listener, file));
        };
        match Side::parse(&format!("udp-listen:{udp}"))? {
            Side::Listen(Endpoint::Inet {
                host: crate::endpoint::Host::Ip(ip),
                port,
                ..
            }) => {
                let socket = crate::net::bind::udp(std::net::SocketAddr::new(ip, port))?;
                let local = socket.local_addr();
                Ok(Listening::Udp(Some(socket), local))
            }
            _ => Err(Error::usage(format!(
                "\"{endpoint}\" is not a UDP endpoint to listen on: write udp://ADDR:PORT"
            ))),
        }
    }

    /// The bound IP address (`None` for a Unix socket).
    pub fn local_addr(&self) -> Option<std::net::SocketAddr> {
        match self {
            Listening::Stream(listener, _) => listener.local_addr(),
            Listening::Udp(_, local) => *local,
        }
    }

    /// Waits for the next client. Over UDP there is one: the first sender,
    /// to which the socket is then connected (so other senders are not
    /// heard); its datagram is the first thing the tube receives.
    pub async fn accept(&mut self) -> Result<Tube> {
        match self {
            Listening::Stream(listener, _) => Tube::accept(listener).await,
            Listening::Udp(slot, _) => {
                let used = || {
                    Error::usage(
                        "a UDP listener talks to its first sender only: bind another for the next",
                    )
                };
                // Borrowed until the sender is known, so that an accept
                // given up (a timeout) leaves the listener as it was.
                let ready = slot.as_ref().ok_or_else(used)?;
                let mut first = vec![0; 65_536];
                let (n, peer) = ready
                    .recv_from(&mut first)
                    .await
                    .map_err(|e| Error::io("receive a datagram", &e))?;
                let crate::net::Peer::Inet(from) = peer else {
                    return Err(Error::usage("a UDP listener hears IP senders only"));
                };
                ready
                    .connect(from)
                    .await
                    .map_err(|e| Error::io(format!("connect to {from}"), &e))?;
                let socket = slot.take().ok_or_else(used)?;
                let mut tube = Tube::datagram(socket);
                tube.buf.extend_from_slice(&first[..n]);
                Ok(tube)
            }
        }
    }
}

/// A listener for [`Tube::accept`], on `endpoint` (`PORT`, `ADDR:PORT`,
/// `tcp-listen:...`, `unix:PATH`); a Unix socket's file is removed when
/// the listener is dropped.
pub fn listener(
    endpoint: &str,
) -> Result<(crate::net::Listener, Option<crate::net::bind::SocketFile>)> {
    let text = if endpoint.contains("-listen:") {
        endpoint.to_string()
    } else if let Some(path) = endpoint.strip_prefix("unix:") {
        format!("unix-listen:{path}")
    } else {
        format!("tcp-listen:{endpoint}")
    };
    match Side::parse(&text)? {
        Side::Listen(Endpoint::Inet {
            proto: crate::services::Proto::Tcp,
            host: crate::endpoint::Host::Ip(ip),
            port,
        }) => Ok((
            crate::net::bind::tcp(std::net::SocketAddr::new(ip, port), 1)?,
            None,
        )),
        Side::Listen(Endpoint::Unix {
            path,
            datagram: false,
        }) => {
            let (listener, file) = crate::net::bind::unix(Path::new(&path), 1)?;
            Ok((listener, Some(file)))
        }
        _ => Err(Error::usage(format!(
            "\"{endpoint}\" is not a stream endpoint to listen on: write PORT, ADDR:PORT or unix:PATH"
        ))),
    }
}
