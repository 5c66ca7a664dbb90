//! Datagram sessions (`connect -u`, `listen -u`, and the Unix datagram
//! forms): each chunk of input is one datagram, each datagram received is
//! written out as it came.
//!
//! The client keeps listening after its input ends (`--wait`), so that
//! `printf q | netsmith connect -u HOST PORT` shows the answer, which nc and
//! ncat do not; `--timeout` turns silence into an error, the tutorial's
//! "No connection!" case.
//!
//! UDP may lose datagrams, and the commonest place is the receiver's own
//! socket: a sender faster than this process fills the kernel's queue and
//! the kernel drops the rest. Every UDP receiver here asks the kernel for
//! its count (`SO_RXQ_OVFL`, which comes with each datagram received) and
//! says how many were lost: exit 0 means every datagram arrived. The queue
//! is made larger than the default to ride out bursts.
//!
//! `listen -u` talks with the first sender only, as ncat does (`--peers`
//! chooses the latest sender or all of them instead): a datagram from
//! anyone else cannot take over the conversation.

use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::socket::{
    ControlMessageOwned, MsgFlags, SockaddrLike, SockaddrStorage, recvmsg, setsockopt, sockopt,
};
use tokio::io::{AsyncWrite, AsyncWriteExt, Interest};
use tokio::time::Instant;

use crate::copy::HexDump;
use crate::duration::show;
use crate::error::{Error, Result, describe_io};
use crate::net::{Datagram, Peer};
use crate::stdio::{self, Chunks};

/// The largest UDP payload over IPv4 (65,535 - 20 - 8); longer input
/// chunks are split.
pub const MAX_DATAGRAM: usize = 65_507;

/// The receive queue asked for on a datagram receiver's socket: about a
/// hundred of the largest datagrams, or thousands of small ones, before the
/// kernel drops any (root may exceed `net.core.rmem_max`; others get at
/// most that).
pub const RECEIVE_QUEUE: usize = 4 << 20;

/// How long a send waits out a full buffer below the socket (`ENOBUFS`)
/// before the datagram counts as not sent.
const SEND_PATIENCE: Duration = Duration::from_secs(2);

/// Peers a `--peers all` listener sends to at once; the oldest is forgotten
/// beyond this.
const MAX_PEERS: usize = 1024;

/// Senders whose ignored datagrams are logged once each.
const MAX_IGNORED_LOGGED: usize = 64;

/// A datagram socket's receiving side, counting what arrives and what the
/// kernel dropped on the socket for want of room in its queue.
///
/// Dropped with datagrams lost and not yet reported (Ctrl-C), it says how
/// many on stderr, if it was made with [`Receiver::reporting`].
pub struct Receiver<'a> {
    socket: &'a Datagram,
    cmsg: Vec<u8>,
    /// The kernel's count of datagrams dropped on this socket (cumulative).
    dropped: u32,
    received: u64,
    /// What the loss is reported as, when this receiver is dropped unreported.
    report_as: Option<String>,
}

impl<'a> Receiver<'a> {
    /// Starts counting the kernel's drops on `socket` (UDP only: a Unix
    /// datagram sender waits for room instead of losing datagrams).
    pub fn new(socket: &'a Datagram) -> Self {
        count_drops(socket);
        Receiver {
            socket,
            cmsg: nix::cmsg_space!(u32),
            dropped: 0,
            received: 0,
            report_as: None,
        }
    }

    /// Reports unreported losses on stderr if dropped (an interrupted
    /// command), as `what: N of M datagrams lost ...`.
    #[must_use]
    pub fn reporting(mut self, what: impl Into<String>) -> Self {
        self.report_as = Some(what.into());
        self
    }

    /// Datagrams the kernel dropped on this socket so far, as the last
    /// datagram received said (drops after it are known to
    /// [`kernel_drops`]).
    pub fn dropped(&self) -> u64 {
        u64::from(self.dropped)
    }

    /// Datagrams dropped so far, including those after the last datagram
    /// received (which no datagram has reported).
    fn dropped_now(&self) -> u64 {
        let later = match self.socket {
            Datagram::Udp(s) => kernel_drops(s).unwrap_or(0),
            Datagram::Unix(_) => 0,
        };
        self.dropped().max(later)
    }

    /// Datagrams received so far.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// The loss so far as an error naming `what` (exit 1), if there was any;
    /// after this the receiver no longer reports it when dropped.
    pub fn loss(&mut self, what: &str) -> Option<Error> {
        self.report_as = None;
        let dropped = self.dropped_now();
        (dropped > 0).then(|| lost(what, dropped, self.received))
    }

    /// Receives one datagram and its sender.
    pub async fn recv_from(&mut self, buf: &mut [u8]) -> io::Result<(usize, Peer)> {
        let Datagram::Udp(s) = self.socket else {
            let r = self.socket.recv_from(buf).await?;
            self.received += 1;
            return Ok(r);
        };
        let (n, from) = recv_counted(s, buf, &mut self.cmsg, &mut self.dropped).await?;
        self.received += 1;
        let from = from.ok_or_else(|| io::Error::other("a datagram without a sender"))?;
        Ok((n, Peer::Inet(from)))
    }

    /// Receives one datagram on a connected socket.
    pub async fn recv(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Datagram::Udp(s) = self.socket else {
            let n = self.socket.recv(buf).await?;
            self.received += 1;
            return Ok(n);
        };
        let (n, _) = recv_counted(s, buf, &mut self.cmsg, &mut self.dropped).await?;
        self.received += 1;
        Ok(n)
    }
}

impl Drop for Receiver<'_> {
    fn drop(&mut self) {
        if let Some(what) = &self.report_as {
            let dropped = self.dropped_now();
            if dropped > 0 {
                eprintln!("netsmith: {}", lost(what, dropped, self.received));
            }
        }
    }
}

/// "N of M datagrams lost" as an error (exit 1).
fn lost(what: &str, dropped: u64, received: u64) -> Error {
    Error::Network {
        what: what.to_string(),
        reason: format!(
            "{dropped} of {} datagrams lost: dropped by the kernel, the receive \
             queue was full (the sender outran this receiver)",
            dropped + received
        ),
    }
}

/// The kernel's count of datagrams dropped on a UDP socket, as of now:
/// the `drops` column of its line in `/proc/net/udp` (or `udp6`), found by
/// the socket's inode. `SO_RXQ_OVFL` tells only with a later datagram, so a
/// burst whose tail was dropped would go unreported without this.
pub fn kernel_drops(socket: &impl AsFd) -> Option<u64> {
    let inode = nix::sys::stat::fstat(socket.as_fd())
        .ok()?
        .st_ino
        .to_string();
    ["/proc/self/net/udp", "/proc/self/net/udp6"]
        .iter()
        .filter_map(|table| std::fs::read_to_string(table).ok())
        .find_map(|text| {
            text.lines().skip(1).find_map(|line| {
                // sl local rem st tx:rx tr:when retrnsmt uid timeout inode ref pointer drops
                let cols: Vec<&str> = line.split_whitespace().collect();
                (cols.get(9) == Some(&inode.as_str()))
                    .then(|| cols.get(12)?.parse().ok())
                    .flatten()
            })
        })
}

/// One `recvmsg` on a UDP socket, noting the kernel's drop count that
/// comes with the datagram.
async fn recv_counted(
    socket: &tokio::net::UdpSocket,
    buf: &mut [u8],
    cmsg: &mut [u8],
    dropped: &mut u32,
) -> io::Result<(usize, Option<SocketAddr>)> {
    // ERROR too: an ICMP port unreachable on a connected socket is only an
    // error event, which the receive must see to report the refusal.
    socket
        .async_io(Interest::READABLE | Interest::ERROR, || {
            let mut iov = [IoSliceMut::new(buf)];
            let msg = recvmsg::<SockaddrStorage>(
                socket.as_raw_fd(),
                &mut iov,
                Some(cmsg),
                MsgFlags::MSG_DONTWAIT,
            )
            .map_err(io::Error::from)?;
            if let Ok(cmsgs) = msg.cmsgs() {
                for c in cmsgs {
                    if let ControlMessageOwned::RxqOvfl(n) = c {
                        *dropped = n;
                    }
                }
            }
            Ok((msg.bytes, msg.address.and_then(|a| socket_addr(&a))))
        })
        .await
}

/// A sender's address as std has it.
pub(crate) fn socket_addr(addr: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = addr.as_sockaddr_in() {
        Some(SocketAddr::V4((*v4).into()))
    } else {
        addr.as_sockaddr_in6()
            .map(|v6| SocketAddr::V6((*v6).into()))
    }
    .filter(|_| addr.len() > 0)
}

/// Has the kernel tell, with each datagram it queues on `socket` from now
/// on, how many it has dropped (`SO_RXQ_OVFL`). The count is attached when
/// a datagram is queued, so a server turns this on before it says it is
/// listening: datagrams queued earlier would report no drops.
pub fn count_drops(socket: &Datagram) {
    if let Datagram::Udp(s) = socket
        && let Err(e) = setsockopt(s, sockopt::RxqOvfl, &1)
    {
        tracing::debug!("no drop count on the socket (SO_RXQ_OVFL): {}", e.desc());
    }
}

/// Asks for a receive queue of [`RECEIVE_QUEUE`] on a UDP socket, beyond
/// `net.core.rmem_max` where allowed (root): best effort.
pub fn enlarge_receive_queue(socket: &Datagram) {
    let Datagram::Udp(s) = socket else { return };
    if setsockopt(s, sockopt::RcvBufForce, &RECEIVE_QUEUE).is_err() {
        let _ = setsockopt(s, sockopt::RcvBuf, &RECEIVE_QUEUE);
    }
}

/// Sends one datagram (to `to`, or on a connected socket). A full socket
/// buffer is waited for (the runtime waits for room), and so is a full
/// queue below it (`ENOBUFS`), with growing pauses, for at most
/// [`SEND_PATIENCE`]: a sender faster than the path is paced, not cut.
pub async fn send_paced(socket: &Datagram, data: &[u8], to: Option<&Peer>) -> io::Result<()> {
    let started = Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        let r = match to {
            Some(peer) => socket.send_to(data, peer).await,
            None => socket.send(data).await,
        };
        match r {
            Err(e)
                if e.raw_os_error() == Some(Errno::ENOBUFS as i32)
                    && started.elapsed() < SEND_PATIENCE =>
            {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(100));
            }
            Err(e) => return Err(e),
            Ok(_) => return Ok(()),
        }
    }
}

/// Datagrams and bytes of input that could not be sent.
#[derive(Debug, Default)]
struct Unsent {
    datagrams: u64,
    bytes: u64,
    /// The last reason.
    reason: String,
}

impl Unsent {
    fn add(&mut self, len: usize, err: &io::Error) {
        self.datagrams += 1;
        self.bytes += len as u64;
        self.reason = describe_io(err);
    }

    /// What was not sent as an error (exit 1), if anything was not.
    fn error(&self, to: &str) -> Option<Error> {
        (self.datagrams > 0).then(|| Error::Network {
            what: format!("send to {to}"),
            reason: format!(
                "{} datagrams ({} bytes) of input not sent: {}",
                self.datagrams, self.bytes, self.reason
            ),
        })
    }
}

/// How a datagram client waits for replies.
#[derive(Clone, Copy, Debug)]
pub struct ClientWait {
    /// After input ends, keep receiving until this long passes without a
    /// datagram (`--wait`).
    pub linger: Duration,
    /// Fail if a datagram sent gets no reply within this long (`--timeout`).
    pub reply_timeout: Option<Duration>,
}

/// Sends each input chunk as one datagram on a connected socket and writes
/// every datagram received to `output`. Ends with an error if the kernel
/// dropped replies or input could not be sent.
pub async fn client<O>(
    socket: &Datagram,
    target: &str,
    mut input: Option<Chunks>,
    output: &mut O,
    wait: ClientWait,
    hex: bool,
) -> Result<()>
where
    O: AsyncWrite + Unpin,
{
    enlarge_receive_queue(socket);
    let what = format!("receive from {target}");
    let mut receiver = Receiver::new(socket).reporting(what.clone());
    let mut unsent = Unsent::default();
    let mut buf = vec![0u8; 65_536];
    let mut hex_out = hex.then(|| HexDump::new('>', None));
    let mut hex_in = hex.then(|| HexDump::new('<', None));
    // The first datagram sent since the last reply, if it is still unanswered.
    let mut unanswered: Option<Instant> = None;
    let mut last_event = Instant::now();
    let ended = loop {
        let deadline = match (unanswered, wait.reply_timeout, input.is_some()) {
            (Some(sent), Some(limit), _) => Some((sent + limit, true)),
            (_, _, false) => Some((last_event + wait.linger, false)),
            _ => None,
        };
        tokio::select! {
            // Queued replies are taken before a deadline is looked at: a
            // process that was stopped must not end with them unread.
            biased;
            r = receiver.recv(&mut buf) => {
                let n = r.map_err(|e| refused_or(target, &e))?;
                if let Some(h) = &mut hex_in { h.dump(&buf[..n]); }
                if !write_out(output, &buf[..n]).await? {
                    receiver.loss(&what);
                    return Ok(());
                }
                unanswered = None;
                last_event = Instant::now();
            }
            chunk = recv_chunk(&mut input), if input.is_some() => match chunk {
                Some(Ok(bytes)) => {
                    for piece in bytes.chunks(MAX_DATAGRAM) {
                        if let Some(h) = &mut hex_out { h.dump(piece); }
                        match send_paced(socket, piece, None).await {
                            Ok(()) => {}
                            Err(e) if e.raw_os_error() == Some(Errno::ENOBUFS as i32) => {
                                unsent.add(piece.len(), &e);
                            }
                            Err(e) => return Err(refused_or(target, &e)),
                        }
                    }
                    unanswered.get_or_insert_with(Instant::now);
                }
                Some(Err(e)) => return Err(Error::stdin(&e)),
                None => {
                    tracing::info!("stdin EOF, waiting up to {} for replies", show(wait.linger));
                    input = None;
                    last_event = Instant::now();
                }
            },
            () = crate::duration::sleep_until(deadline.map(|d| d.0)), if deadline.is_some() => {
                if deadline.is_some_and(|d| d.1) {
                    let limit = wait.reply_timeout.unwrap_or_default();
                    break Err(Error::Silence(format!("no reply from {target} within {}", show(limit))));
                }
                break Ok(());
            }
        }
    };
    settle(ended, receiver.loss(&what), unsent.error(target))
}

/// The end of a datagram session: the first error, and the others as
/// warnings (so that a loss is never left unsaid).
fn settle(ended: Result<()>, lost: Option<Error>, unsent: Option<Error>) -> Result<()> {
    let mut errors = ended.err().into_iter().chain(lost).chain(unsent);
    let Some(first) = errors.next() else {
        return Ok(());
    };
    for other in errors {
        eprintln!("netsmith: {other}");
    }
    Err(first)
}

/// Whom `listen -u` talks with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Peers {
    /// The first sender only, as ncat: others' datagrams are not printed
    /// (logged with -v) and get nothing.
    #[default]
    First,
    /// Every sender's datagrams are printed; stdin goes to the latest one.
    Latest,
    /// Every sender's datagrams are printed; stdin goes to all of them.
    All,
}

/// How a datagram server runs.
#[derive(Clone, Debug, Default)]
pub struct ServerOptions {
    /// End after this long without a datagram: an error if none ever came.
    pub timeout: Option<Duration>,
    /// `--hex`.
    pub hex: bool,
    /// Whom the conversation is with.
    pub peers: Peers,
    /// The socket's name in messages (`udp://127.0.0.1:5000`).
    pub name: String,
    /// End quietly as soon as stdout is closed (`| head`), even with no
    /// datagram to write: set when the output is the process's stdout.
    pub watch_stdout: bool,
}

/// Receives datagrams and writes them to `output`, and sends input chunks
/// to the peers of [`ServerOptions::peers`]. Ends with an error if the
/// kernel dropped datagrams or input could not be sent.
pub async fn server<O>(
    socket: &Datagram,
    mut input: Option<Chunks>,
    output: &mut O,
    opts: &ServerOptions,
) -> Result<()>
where
    O: AsyncWrite + Unpin,
{
    enlarge_receive_queue(socket);
    let what = format!("receive on {}", opts.name);
    let mut receiver = Receiver::new(socket).reporting(what.clone());
    let mut unsent = Unsent::default();
    let mut buf = vec![0u8; 65_536];
    // Whom stdin goes to: the first sender, the latest, or all (oldest first).
    let mut peers: Vec<Peer> = Vec::new();
    let mut ignored: Vec<Peer> = Vec::new();
    let mut received_any = false;
    let mut last_event = Instant::now();
    // Stdout gone: its reader left (`| head`, a quiet end), or a write
    // failed (a full disk: exit 1), even while no datagram comes to write.
    let stdout_gone = async {
        if opts.watch_stdout {
            stdio::ended().await
        } else {
            std::future::pending().await
        }
    };
    tokio::pin!(stdout_gone);
    let ended = loop {
        let deadline = opts.timeout.map(|t| last_event + t);
        tokio::select! {
            // Queued datagrams are taken before a deadline is looked at: a
            // process that was stopped must not end with them unread.
            biased;
            ended = &mut stdout_gone => {
                receiver.loss(&what);
                return ended;
            }
            r = receiver.recv_from(&mut buf) => match r {
                Ok((n, peer)) => {
                    received_any = true;
                    last_event = Instant::now();
                    if !admit(opts.peers, &mut peers, &mut ignored, &peer) {
                        continue;
                    }
                    if opts.hex {
                        HexDump::new('<', Some(peer.to_string())).dump(&buf[..n]);
                    }
                    if !write_out(output, &buf[..n]).await? {
                        receiver.loss(&what);
                        return Ok(());
                    }
                }
                // An ICMP error for an earlier reply must not stop the server.
                Err(e) => tracing::warn!("receive failed: {}", describe_io(&e)),
            },
            chunk = recv_chunk(&mut input), if input.is_some() && !peers.is_empty() => match chunk {
                Some(Ok(bytes)) => {
                    let targets = match opts.peers {
                        Peers::All => &peers[..],
                        _ => &peers[peers.len() - 1..],
                    };
                    for peer in targets {
                        for piece in bytes.chunks(MAX_DATAGRAM) {
                            if opts.hex {
                                HexDump::new('>', Some(peer.to_string())).dump(piece);
                            }
                            if let Err(e) = send_paced(socket, piece, Some(peer)).await {
                                tracing::warn!("send to {peer} failed: {}", describe_io(&e));
                                unsent.add(piece.len(), &e);
                            }
                        }
                    }
                }
                Some(Err(e)) => return Err(Error::stdin(&e)),
                None => input = None,
            },
            () = crate::duration::sleep_until(deadline), if deadline.is_some() => {
                let limit = show(opts.timeout.unwrap_or_default());
                if received_any {
                    tracing::info!("no datagram for {limit}, ending");
                    break Ok(());
                }
                break Err(Error::Silence(format!("no datagram within {limit}")));
            }
        }
    };
    let to = match opts.peers {
        Peers::All => "the peers".to_string(),
        _ => peers
            .last()
            .map_or_else(|| "the peer".to_string(), ToString::to_string),
    };
    settle(ended, receiver.loss(&what), unsent.error(&to))
}

/// Whether a datagram from `peer` is part of the conversation, noting a
/// new peer; says (with -v) why one is not.
fn admit(policy: Peers, peers: &mut Vec<Peer>, ignored: &mut Vec<Peer>, peer: &Peer) -> bool {
    if peers.last() == Some(peer) {
        return true;
    }
    match policy {
        Peers::First if !peers.is_empty() => {
            if ignored.len() < MAX_IGNORED_LOGGED && !ignored.contains(peer) {
                ignored.push(peer.clone());
                tracing::info!(
                    "ignored datagram from {peer}: the conversation is with {} \
                     (--peers latest or all to change)",
                    peers[0]
                );
            }
            return false;
        }
        Peers::First | Peers::Latest => {
            tracing::info!("datagram from {peer}");
            peers.clear();
            peers.push(peer.clone());
        }
        Peers::All => {
            if let Some(at) = peers.iter().position(|p| p == peer) {
                // The latest sender goes last, so the oldest is forgotten first.
                let known = peers.remove(at);
                peers.push(known);
            } else {
                tracing::info!("datagram from {peer}");
                if peers.len() >= MAX_PEERS {
                    let oldest = peers.remove(0);
                    tracing::info!("{MAX_PEERS} peers: {oldest} forgotten");
                }
                peers.push(peer.clone());
            }
        }
    }
    true
}

async fn recv_chunk(input: &mut Option<Chunks>) -> Option<std::io::Result<bytes::Bytes>> {
    match input {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// Writes one datagram to the output; `false` when stdout has been closed
/// (`| head`), which ends the session quietly.
async fn write_out<O: AsyncWrite + Unpin>(output: &mut O, data: &[u8]) -> Result<bool> {
    match output.write_all(data).await {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(Error::stdout(&e)),
    }
}

/// A refused datagram means an ICMP port unreachable came back.
fn refused_or(target: &str, err: &std::io::Error) -> Error {
    if err.kind() == std::io::ErrorKind::ConnectionRefused {
        return Error::Network {
            what: format!("send to {target}"),
            reason: "connection refused (port unreachable: nothing listens there)".into(),
        };
    }
    Error::io(format!("send to {target}"), err)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(port: u16) -> Peer {
        Peer::Inet(SocketAddr::from(([127, 0, 0, 1], port)))
    }

    /// Which of the datagrams from `senders` are printed, and who stdin goes to after.
    fn run(policy: Peers, senders: &[u16]) -> (Vec<u16>, Vec<Peer>) {
        let (mut peers, mut ignored) = (Vec::new(), Vec::new());
        let printed = senders
            .iter()
            .copied()
            .filter(|&p| admit(policy, &mut peers, &mut ignored, &peer(p)))
            .collect();
        (printed, peers)
    }

    #[test]
    fn first_stays_with_the_first_sender() {
        let (printed, peers) = run(Peers::First, &[1, 2, 1, 3]);
        assert_eq!(printed, [1, 1]);
        assert_eq!(peers, [peer(1)]);
    }

    #[test]
    fn latest_follows_the_latest_sender() {
        let (printed, peers) = run(Peers::Latest, &[1, 2, 1, 3]);
        assert_eq!(printed, [1, 2, 1, 3]);
        assert_eq!(peers, [peer(3)]);
    }

    #[test]
    fn all_keeps_every_sender_once_latest_last() {
        let (printed, peers) = run(Peers::All, &[1, 2, 1, 3]);
        assert_eq!(printed, [1, 2, 1, 3]);
        assert_eq!(peers, [peer(2), peer(1), peer(3)]);
    }

    #[test]
    fn loss_names_how_many_of_how_many() {
        let msg = lost("receive on udp://127.0.0.1:9", 3, 7).to_string();
        assert!(msg.contains("3 of 10 datagrams lost"), "{msg}");
        assert_eq!(lost("x", 1, 0).exit_code(), 1);
    }
}
