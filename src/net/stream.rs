//! One type for a connected byte stream and one for a listener, over TCP and
//! Unix sockets, so that the session code, the accept loop and relays take
//! either without being generic over every transport.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpStream, UdpSocket, UnixDatagram, UnixStream};

/// The other end of a connection or the sender of a datagram.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Peer {
    Inet(SocketAddr),
    /// A Unix socket peer; `None` when the peer's socket is unnamed.
    Unix(Option<PathBuf>),
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Peer::Inet(addr) => write!(f, "{addr}"),
            Peer::Unix(Some(path)) => write!(f, "unix:{}", path.display()),
            Peer::Unix(None) => f.write_str("unix:(unnamed)"),
        }
    }
}

impl Peer {
    fn from_unix(addr: &tokio::net::unix::SocketAddr) -> Peer {
        Peer::Unix(addr.as_pathname().map(PathBuf::from))
    }
}

/// A TCP connection to be reset rather than closed: a relay whose one side
/// failed (a reset, a TLS stream cut without `close_notify`) must not pass
/// that on to the other side as a clean end of stream (FIN), which would
/// tell it that everything arrived.
#[derive(Debug)]
pub struct Reset(std::os::fd::OwnedFd);

impl Reset {
    /// Makes the connection end with RST when its last descriptor closes
    /// (`SO_LINGER` 0), as it does once the relay drops it.
    pub fn reset(&self) {
        let _ = socket2::SockRef::from(&self.0).set_linger(Some(std::time::Duration::ZERO));
    }
}

/// A connected stream socket.
#[derive(Debug)]
pub enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
    /// A TLS session over one of the others (see [`crate::tls`]). It has
    /// no non-blocking `try_read`/`try_write` (a record may need more
    /// bytes, or a write may need to flush first): callers that use them
    /// check [`Stream::is_tls`] and take their waiting path.
    Tls(Box<crate::tls::TlsStream>),
}

impl Stream {
    /// Waits until the socket has bytes (or EOF, or an error) to read,
    /// without a buffer: an idle connection holds no memory for it.
    /// For TLS, the socket under it (whose bytes may not make a record yet).
    pub async fn readable(&self) -> std::io::Result<()> {
        match self {
            Stream::Tcp(s) => s.readable().await,
            Stream::Unix(s) => s.readable().await,
            Stream::Tls(s) => Box::pin(s.get_ref().0.readable()).await,
        }
    }

    /// A second descriptor of the TCP socket under this stream (through
    /// TLS), kept to reset the connection ([`Reset`]) after the stream
    /// itself has moved into a copy loop; `None` for a Unix socket.
    pub fn reset_handle(&self) -> Option<Reset> {
        use std::os::fd::AsFd;
        match self {
            Stream::Tcp(s) => s.as_fd().try_clone_to_owned().ok().map(Reset),
            Stream::Unix(_) => None,
            Stream::Tls(s) => s.get_ref().0.reset_handle(),
        }
    }

    /// Waits until the socket takes bytes (or has failed), without a
    /// buffer. For TLS, the socket under it.
    pub async fn writable(&self) -> std::io::Result<()> {
        match self {
            Stream::Tcp(s) => s.writable().await,
            Stream::Unix(s) => s.writable().await,
            Stream::Tls(s) => Box::pin(s.get_ref().0.writable()).await,
        }
    }

    /// Looks for bytes to read (or the end, or an error) for up to
    /// `window`, without sleeping and without taking them (see
    /// [`crate::net::spin_for`]): true if there are. The reactor's view is
    /// untouched, so the next read finds them. Always false on TLS.
    pub fn look_for_bytes(&self, window: std::time::Duration) -> bool {
        use nix::errno::Errno;
        use nix::sys::socket::{MsgFlags, recv};
        use std::os::fd::AsRawFd;
        let fd = match self {
            Stream::Tcp(s) => s.as_raw_fd(),
            Stream::Unix(s) => s.as_raw_fd(),
            Stream::Tls(_) => return false,
        };
        let mut byte = [0u8; 1];
        let flags = MsgFlags::MSG_PEEK | MsgFlags::MSG_DONTWAIT;
        super::spin_for(window, || match recv(fd, &mut byte, flags) {
            Err(Errno::EAGAIN | Errno::EINTR) => None,
            Ok(_) | Err(_) => Some(()),
        })
        .is_some()
    }

    /// Reads what is there without waiting (`WouldBlock` if nothing is).
    /// Unsupported on TLS.
    pub fn try_read(&self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.try_read(buf),
            Stream::Unix(s) => s.try_read(buf),
            Stream::Tls(_) => Err(no_try_on_tls()),
        }
    }

    /// Writes what the socket takes now, without waiting. Unsupported on TLS.
    pub fn try_write(&self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.try_write(buf),
            Stream::Unix(s) => s.try_write(buf),
            Stream::Tls(_) => Err(no_try_on_tls()),
        }
    }

    /// This end's IP address and port; `None` for a Unix socket.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        match self {
            Stream::Tcp(s) => s.local_addr().ok(),
            Stream::Unix(_) => None,
            Stream::Tls(s) => s.get_ref().0.local_addr(),
        }
    }

    /// Whether this is a TLS session (see [`Stream::Tls`]).
    pub fn is_tls(&self) -> bool {
        matches!(self, Stream::Tls(_))
    }

    /// The address of the other end, for logs.
    pub fn peer(&self) -> Peer {
        match self {
            Stream::Tcp(s) => s.peer_addr().map_or(Peer::Unix(None), Peer::Inet),
            Stream::Unix(s) => s
                .peer_addr()
                .map_or(Peer::Unix(None), |a| Peer::from_unix(&a)),
            Stream::Tls(s) => s.get_ref().0.peer(),
        }
    }
}

fn no_try_on_tls() -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        "a TLS stream has no non-blocking read or write",
    )
}

macro_rules! delegate {
    ($self:ident, $s:ident => $e:expr) => {
        match $self.get_mut() {
            Stream::Tcp($s) => $e,
            Stream::Unix($s) => $e,
            Stream::Tls($s) => {
                let $s = $s.as_mut();
                $e
            }
        }
    };
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        delegate!(self, s => Pin::new(s).poll_read(cx, buf))
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        delegate!(self, s => Pin::new(s).poll_write(cx, buf))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        delegate!(self, s => Pin::new(s).poll_flush(cx))
    }

    /// Shuts down the write side only (TCP FIN, or `shutdown(SHUT_WR)` on a
    /// Unix socket): the half-close every session relies on. TLS sends
    /// `close_notify` first, then shuts down the socket under it.
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        delegate!(self, s => Pin::new(s).poll_shutdown(cx))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        delegate!(self, s => Pin::new(s).poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        !self.is_tls()
    }
}

/// A listening stream socket, TCP or Unix.
///
/// It is held as a plain socket under [`AsyncFd`] rather than as tokio's
/// listener types, so that an accepted connection need not be registered
/// with the reactor: see [`Accepted`].
#[derive(Debug)]
pub struct Listener {
    socket: AsyncFd<socket2::Socket>,
    unix: bool,
}

impl Listener {
    /// Wraps a bound, listening, non-blocking socket; registers it with
    /// the reactor (so it must be called within the runtime).
    pub(crate) fn new(socket: socket2::Socket, unix: bool) -> io::Result<Listener> {
        // `AsyncFd::new` is deprecated because a `T` that does not own its
        // descriptor could let it be closed while registered. The socket
        // here owns its descriptor and moves into the `AsyncFd`, which
        // alone can close it; the replacement, `register`, is an `unsafe`
        // fn for the same promise, and this crate allows no unsafe code.
        #[allow(deprecated)]
        let socket = AsyncFd::new(socket)?;
        Ok(Listener { socket, unix })
    }

    /// The bound IP address (`None` for a Unix socket).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.socket.get_ref().local_addr().ok()?.as_socket()
    }

    /// Waits for the next client, as a stream ready for async I/O.
    pub async fn accept(&self) -> io::Result<(Stream, Peer)> {
        let accepted = self.accept_unregistered().await?;
        let peer = accepted.peer.clone();
        Ok((accepted.into_stream()?, peer))
    }

    /// Waits for the next client, and leaves it unregistered: see
    /// [`Accepted`].
    pub async fn accept_unregistered(&self) -> io::Result<Accepted> {
        loop {
            let mut ready = self.socket.readable().await?;
            let accepted = ready.try_io(|socket| {
                socket
                    .get_ref()
                    .accept4(libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC)
            });
            if let Ok(result) = accepted {
                let (socket, addr) = result?;
                let peer = match (self.unix, addr.as_socket()) {
                    (false, Some(addr)) => Peer::Inet(addr),
                    _ => Peer::Unix(addr.as_pathname().map(PathBuf::from)),
                };
                return Ok(Accepted {
                    socket,
                    unix: self.unix,
                    peer,
                });
            }
        }
    }
}

/// A connection just accepted and not yet registered with the reactor. A
/// server that can answer at once (a one-shot service: write, check, close)
/// does so with `try_write_last` and `try_read`, and never pays the two
/// `epoll_ctl` calls and the bookkeeping of a registration: about a tenth of
/// the server's CPU per connection, measured. Anything that may wait makes
/// it a [`Stream`] with [`Accepted::into_stream`].
#[derive(Debug)]
pub struct Accepted {
    socket: socket2::Socket,
    unix: bool,
    peer: Peer,
}

impl Accepted {
    /// The client.
    pub fn peer(&self) -> &Peer {
        &self.peer
    }

    /// Registers the connection with the reactor, for async I/O.
    pub fn into_stream(self) -> io::Result<Stream> {
        Ok(if self.unix {
            Stream::Unix(UnixStream::from_std(self.socket.into())?)
        } else {
            Stream::Tcp(TcpStream::from_std(self.socket.into())?)
        })
    }

    /// Writes what the socket takes now, without waiting, as the last
    /// write before closing or [`Accepted::into_stream`]. On TCP the bytes
    /// are held back (`MSG_MORE`) so that the FIN rides on the same
    /// segment: one packet instead of two for a one-shot answer, and one
    /// ACK less for the client. The kernel pushes held bytes at the next
    /// plain write, at `shutdown` and at `close`, which every way on from
    /// here comes to.
    pub fn try_write_last(&self, buf: &[u8]) -> io::Result<usize> {
        let flags = if self.unix { 0 } else { libc::MSG_MORE };
        self.socket.send_with_flags(buf, flags | libc::MSG_NOSIGNAL)
    }

    /// Reads what is there without waiting (`WouldBlock` if nothing is).
    pub fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        io::Read::read(&mut &self.socket, buf)
    }

    /// Turns the client away with a reset, not a clean close: a client
    /// that an access rule refuses must not read a FIN as "the server took
    /// everything I sent" (netcat would exit 0 on it; netsmith's `connect`
    /// exits 1, "connection reset").
    pub fn refuse(self) {
        if !self.unix {
            let _ = self.socket.set_linger(Some(std::time::Duration::ZERO));
        }
    }
}

/// A datagram socket: UDP or Unix datagram.
#[derive(Debug)]
pub enum Datagram {
    Udp(UdpSocket),
    Unix(UnixDatagram),
}

impl Datagram {
    /// The bound IP address (`None` for a Unix socket).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        match self {
            Datagram::Udp(s) => s.local_addr().ok(),
            Datagram::Unix(_) => None,
        }
    }

    /// Receives one datagram into `buf`; returns its length and sender.
    pub async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, Peer)> {
        match self {
            Datagram::Udp(s) => {
                let (n, addr) = s.recv_from(buf).await?;
                Ok((n, Peer::Inet(addr)))
            }
            Datagram::Unix(s) => {
                let (n, addr) = s.recv_from(buf).await?;
                Ok((n, Peer::from_unix(&addr)))
            }
        }
    }

    /// Sends one datagram to `peer` (on an unconnected socket).
    pub async fn send_to(&self, buf: &[u8], peer: &Peer) -> io::Result<usize> {
        match (self, peer) {
            (Datagram::Udp(s), Peer::Inet(addr)) => s.send_to(buf, addr).await,
            (Datagram::Unix(s), Peer::Unix(Some(path))) => s.send_to(buf, path).await,
            _ => Err(io::Error::new(
                io::ErrorKind::AddrNotAvailable,
                "the sender has no address to reply to",
            )),
        }
    }

    /// Sends one datagram on a connected socket.
    pub async fn send(&self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Datagram::Udp(s) => s.send(buf).await,
            Datagram::Unix(s) => s.send(buf).await,
        }
    }

    /// Connects a UDP socket to `peer`: it then sends there by default and
    /// hears no one else.
    pub async fn connect(&self, peer: SocketAddr) -> io::Result<()> {
        match self {
            Datagram::Udp(s) => s.connect(peer).await,
            Datagram::Unix(_) => Err(io::ErrorKind::InvalidInput.into()),
        }
    }

    /// Receives one datagram on a connected socket. For UDP, an ICMP port
    /// unreachable for an earlier datagram surfaces here as `ConnectionRefused`.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Datagram::Udp(s) => s.recv(buf).await,
            Datagram::Unix(s) => s.recv(buf).await,
        }
    }
}
