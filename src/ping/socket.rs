//! The ICMP socket `ping` sends from: a raw socket when the process may
//! open one (root or `CAP_NET_RAW`), else the unprivileged ICMP datagram
//! socket Linux offers to the groups in `net.ipv4.ping_group_range` (which
//! governs IPv6 too). With neither, the error says so and points at
//! `--tcp`, which needs no privilege.
//!
//! The two differ in what they hand back: a raw IPv4 socket gives the whole
//! IP datagram (so the TTL is in the header) and every ICMP packet the host
//! receives, so replies are told apart by the identifier; a datagram socket
//! gives the ICMP message alone, only replies to its own identifier (the
//! kernel sets the identifier to the socket's port), and the TTL as
//! ancillary data (`IP_RECVTTL`, `IPV6_RECVHOPLIMIT`), as a raw IPv6 socket
//! does.

use std::io::{self, IoSliceMut};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;

use nix::sys::socket::{self as nixsock, ControlMessageOwned, MsgFlags, SockaddrStorage, sockopt};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use tokio::io::Interest;
use tokio::net::UdpSocket;

use crate::error::{Error, Result};

/// Which kind of socket the kernel granted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `SOCK_RAW`: needs root or `CAP_NET_RAW`.
    Raw,
    /// `SOCK_DGRAM` with `IPPROTO_ICMP`/`IPPROTO_ICMPV6`: unprivileged,
    /// for the groups of `net.ipv4.ping_group_range`.
    Dgram,
}

impl Kind {
    /// The name `--json` and `-v` use.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Raw => "raw",
            Kind::Dgram => "dgram",
        }
    }
}

/// One received packet.
pub struct Received {
    /// Bytes read into the buffer.
    pub len: usize,
    /// Who sent it.
    pub from: IpAddr,
    /// The TTL or hop limit from ancillary data, when the kernel gave it.
    pub ttl: Option<u8>,
}

/// An open ICMP socket of either kind, registered with the runtime.
/// tokio's UDP socket carries it: its calls (`sendto`, `recvmsg`) are those
/// of any datagram socket, and it is the safe way to register a descriptor
/// with the runtime.
pub struct IcmpSocket {
    sock: UdpSocket,
    /// Which kind it is.
    pub kind: Kind,
    /// Whether the family is IPv6.
    pub v6: bool,
    /// The echo identifier replies carry: ours for a raw socket, the
    /// kernel's (the bound port) for a datagram socket.
    pub id: u16,
}

impl IcmpSocket {
    /// Opens a raw socket if allowed, else a datagram socket, for the
    /// family of `target`.
    pub fn open(target: IpAddr) -> Result<IcmpSocket> {
        let v6 = target.is_ipv6();
        let (domain, proto) = if v6 {
            (Domain::IPV6, Protocol::ICMPV6)
        } else {
            (Domain::IPV4, Protocol::ICMPV4)
        };
        let (socket, kind) = match Socket::new(domain, Type::RAW, Some(proto)) {
            Ok(s) => (s, Kind::Raw),
            Err(raw) if raw.kind() == io::ErrorKind::PermissionDenied => {
                match Socket::new(domain, Type::DGRAM, Some(proto)) {
                    Ok(s) => (s, Kind::Dgram),
                    Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                        return Err(no_privilege());
                    }
                    Err(e) => return Err(Error::io("open an ICMP datagram socket", &e)),
                }
            }
            Err(e) => return Err(Error::io("open a raw ICMP socket", &e)),
        };
        let setup = |what: &str, r: io::Result<()>| r.map_err(|e| Error::io(what, &e));
        setup(
            "set the ICMP socket non-blocking",
            socket.set_nonblocking(true),
        )?;
        let fd = socket.as_raw_fd();
        let ttl = if v6 {
            nixsock::setsockopt(&socket, sockopt::Ipv6RecvHopLimit, &true)
        } else if kind == Kind::Dgram {
            nixsock::setsockopt(&socket, sockopt::Ipv4RecvTtl, &true)
        } else {
            Ok(())
        };
        setup("ask for the TTL of replies", ttl.map_err(io::Error::from))?;
        let id = match kind {
            Kind::Raw => (std::process::id() as u16) ^ (fd as u16).rotate_left(8),
            Kind::Dgram => {
                let any = SocketAddr::new(
                    if v6 {
                        std::net::Ipv6Addr::UNSPECIFIED.into()
                    } else {
                        std::net::Ipv4Addr::UNSPECIFIED.into()
                    },
                    0,
                );
                setup("bind the ICMP socket", socket.bind(&SockAddr::from(any)))?;
                socket
                    .local_addr()
                    .ok()
                    .and_then(|a| a.as_socket())
                    .map_or(0, |a| a.port())
            }
        };
        let sock = UdpSocket::from_std(socket.into())
            .map_err(|e| Error::io("register the ICMP socket", &e))?;
        Ok(IcmpSocket { sock, kind, v6, id })
    }

    /// Sends one message to `to`.
    pub async fn send_to(&self, msg: &[u8], to: IpAddr) -> io::Result<()> {
        self.sock
            .send_to(msg, SocketAddr::new(to, 0))
            .await
            .map(|_| ())
    }

    /// Receives one packet into `buf`, with the TTL from ancillary data
    /// where the socket kind provides it.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<Received> {
        let fd = self.sock.as_raw_fd();
        self.sock
            .async_io(Interest::READABLE, || recv_msg(fd, buf))
            .await
    }

    /// Receives a packet already queued, or `WouldBlock`: the loop drains
    /// the queue before it sends again, so that a fast run (`-i 0`) never
    /// lets the receive buffer overflow.
    pub fn try_recv(&self, buf: &mut [u8]) -> io::Result<Received> {
        let fd = self.sock.as_raw_fd();
        self.sock.try_io(Interest::READABLE, || recv_msg(fd, buf))
    }
}

/// One `recvmsg`, with the TTL or hop limit from its ancillary data.
fn recv_msg(fd: std::os::fd::RawFd, buf: &mut [u8]) -> io::Result<Received> {
    let mut cmsg = nix::cmsg_space!(nix::libc::c_int);
    let mut iov = [IoSliceMut::new(buf)];
    let msg =
        nixsock::recvmsg::<SockaddrStorage>(fd, &mut iov, Some(&mut cmsg), MsgFlags::MSG_DONTWAIT)
            .map_err(io::Error::from)?;
    let mut ttl = None;
    for c in msg.cmsgs().map_err(io::Error::from)? {
        if let ControlMessageOwned::Ipv4Ttl(t) | ControlMessageOwned::Ipv6HopLimit(t) = c {
            ttl = u8::try_from(t).ok();
        }
    }
    let from = msg
        .address
        .as_ref()
        .and_then(address_of)
        .ok_or_else(|| io::Error::other("a packet without a sender"))?;
    Ok(Received {
        len: msg.bytes,
        from,
        ttl,
    })
}

fn address_of(addr: &SockaddrStorage) -> Option<IpAddr> {
    addr.as_sockaddr_in()
        .map(|a| IpAddr::V4(a.ip()))
        .or_else(|| addr.as_sockaddr_in6().map(|a| IpAddr::V6(a.ip())))
}

/// Neither socket kind is allowed: say why, with the range and group that
/// decide, and what works without privilege.
fn no_privilege() -> Error {
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ping_group_range").map_or_else(
        |_| "unknown".into(),
        |r| r.split_whitespace().collect::<Vec<_>>().join("-"),
    );
    let gid = nix::unistd::getegid();
    Error::Local {
        what: "cannot open an ICMP socket".into(),
        reason: format!(
            "raw sockets need root or CAP_NET_RAW, and ICMP datagram sockets need a group in \
             net.ipv4.ping_group_range (now {range}; this process's group is {gid}); \
             use --tcp PORT to ping a TCP port instead, which needs no privilege"
        ),
    }
}
