//! Live capture: one `AF_PACKET` socket (`SOCK_RAW`, `ETH_P_ALL`) read with
//! `recvmsg`, through nix's safe wrappers (no `unsafe` here).
//!
//! Each read gives the frame, the `sockaddr_ll` that says which interface
//! it crossed, in which direction and with which link type, the kernel's
//! timestamp (`SO_TIMESTAMPNS`) and the socket's drop counter
//! (`SO_RXQ_OVFL`, the count `PACKET_STATISTICS` reports as drops). Reads
//! time out every [`POLL`] so the capture thread notices a stop request.
//!
//! `-i IFACE` is applied here, in user space, by interface index: the
//! kernel ignores `SO_BINDTODEVICE` on packet sockets, and binding to a
//! `sockaddr_ll` needs a constructor nix does not offer safely.

use std::collections::HashMap;
use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, SystemTime};

use nix::errno::Errno;
use nix::sys::socket::{
    self, AddressFamily, ControlMessageOwned, LinkAddr, MsgFlags, SockFlag, SockProtocol, SockType,
    sockopt,
};
use nix::sys::time::{TimeVal, TimeValLike as _};

use super::decode::LinkType;
use crate::{Error, Result};

/// How long one read waits before the capture loop checks for a stop.
const POLL: Duration = Duration::from_millis(100);

/// `ARPHRD_*` values from `<linux/if_arp.h>` that say how a frame begins.
const ARPHRD_ETHER: u16 = 1;
const ARPHRD_LOOPBACK: u16 = 772;
const ARPHRD_RAWIP: u16 = 519;
const ARPHRD_NONE: u16 = 0xfffe;

/// `PACKET_*` packet types from `<linux/if_packet.h>`.
const PACKET_OUTGOING: u8 = 4;

/// The capture socket's receive queue, in bytes of kernel memory.
const RECEIVE_QUEUE: usize = 8 << 20;

/// A classic BPF program the kernel runs on each packet before queueing it
/// for us: it drops the outgoing copy of every loopback packet (lo shows
/// each packet twice, leaving and arriving; tcpdump shows it once) and,
/// with `-i`, packets of other interfaces (`SO_BINDTODEVICE` does nothing
/// on packet sockets). Each dropped packet then costs no copy, no queue
/// space and no `recvmsg`: on loopback that halves the work.
fn kernel_filter(only: Option<usize>) -> Vec<socket2::SockFilter> {
    use socket2::SockFilter;
    const LD_ABS_W: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
    const JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
    const RET_K: u16 = 0x06; // BPF_RET | BPF_K
    const SKF_AD_OFF: u32 = 0xffff_f000; // -0x1000: the ancillary data
    const SKF_AD_PKTTYPE: u32 = SKF_AD_OFF + 4;
    const SKF_AD_IFINDEX: u32 = SKF_AD_OFF + 8;
    const SKF_AD_HATYPE: u32 = SKF_AD_OFF + 28;
    let mut program = Vec::new();
    if let Some(index) = only {
        program.push(SockFilter::new(LD_ABS_W, 0, 0, SKF_AD_IFINDEX));
        // Another interface: on to the last instruction (drop).
        program.push(SockFilter::new(
            JEQ_K,
            0,
            5,
            u32::try_from(index).unwrap_or(0),
        ));
    }
    program.extend([
        SockFilter::new(LD_ABS_W, 0, 0, SKF_AD_HATYPE),
        // Not loopback: accept.
        SockFilter::new(JEQ_K, 0, 2, u32::from(ARPHRD_LOOPBACK)),
        SockFilter::new(LD_ABS_W, 0, 0, SKF_AD_PKTTYPE),
        // Loopback and outgoing: drop.
        SockFilter::new(JEQ_K, 1, 0, u32::from(PACKET_OUTGOING)),
        SockFilter::new(RET_K, 0, 0, u32::MAX),
        SockFilter::new(RET_K, 0, 0, 0),
    ]);
    program
}

/// Which way a packet crossed its interface, as tcpdump names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    In,
    Out,
    Broadcast,
    Multicast,
    OtherHost,
}

impl Direction {
    fn from_pkttype(t: u8) -> Self {
        match t {
            1 => Direction::Broadcast,
            2 => Direction::Multicast,
            3 => Direction::OtherHost,
            PACKET_OUTGOING => Direction::Out,
            _ => Direction::In,
        }
    }

    /// tcpdump's word for it: `In`, `Out`, `B`, `M`, `P`.
    pub fn label(self) -> &'static str {
        match self {
            Direction::In => "In",
            Direction::Out => "Out",
            Direction::Broadcast => "B",
            Direction::Multicast => "M",
            Direction::OtherHost => "P",
        }
    }
}

/// One captured frame, borrowed from the capture's buffer.
#[derive(Debug)]
pub struct Frame<'a> {
    pub time: SystemTime,
    pub interface: &'a str,
    pub direction: Direction,
    /// How the bytes begin; `None` for a link type this tool cannot decode.
    pub link: Option<LinkType>,
    /// The frame's length on the wire (more than `data` when cut by the snap length).
    pub wire_len: usize,
    pub data: &'a [u8],
}

/// An open capture.
pub struct Capture {
    fd: OwnedFd,
    /// Only frames on this interface index (`-i`), or every interface.
    only: Option<usize>,
    /// Interface names by index, refreshed when an unknown index appears.
    names: HashMap<usize, String>,
    buf: Vec<u8>,
    cmsg: Vec<u8>,
    /// The kernel's count of frames dropped for want of buffer space.
    drops: u32,
}

impl Capture {
    /// Opens a capture on one interface or all, keeping `snaplen` bytes of each frame.
    pub fn open(interface: Option<&str>, snaplen: usize) -> Result<Self> {
        let fd = socket::socket(
            AddressFamily::Packet,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::EthAll,
        )
        .map_err(|e| match e {
            Errno::EPERM | Errno::EACCES => Error::Local {
                what: "open a packet capture (AF_PACKET socket)".into(),
                reason: "permission denied: capturing needs root or CAP_NET_RAW \
                         (try sudo, or setcap cap_net_raw+ep on the binary)"
                    .into(),
            },
            e => Error::Local {
                what: "open a packet capture (AF_PACKET socket)".into(),
                reason: e.desc().to_lowercase(),
            },
        })?;
        let setup = |what: &str, r: nix::Result<()>| {
            r.map_err(|e| Error::Local {
                what: format!("set {what} on the capture socket"),
                reason: e.desc().to_lowercase(),
            })
        };
        setup(
            "SO_TIMESTAMPNS",
            socket::setsockopt(&fd, sockopt::ReceiveTimestampns, &true),
        )?;
        setup("SO_RXQ_OVFL", socket::setsockopt(&fd, sockopt::RxqOvfl, &1))?;
        setup(
            "SO_RCVTIMEO",
            socket::setsockopt(
                &fd,
                sockopt::ReceiveTimeout,
                &TimeVal::milliseconds(POLL.as_millis() as i64),
            ),
        )?;
        let names = interfaces();
        let only = match interface {
            None | Some("any") => None,
            Some(name) => Some(
                names
                    .iter()
                    .find(|(_, n)| n.as_str() == name)
                    .map(|(i, _)| *i)
                    .ok_or_else(|| {
                        let mut known: Vec<&str> = names.values().map(String::as_str).collect();
                        known.sort_unstable();
                        Error::usage(format!(
                            "no such interface \"{name}\": this host has {} (or \"any\")",
                            known.join(", ")
                        ))
                    })?,
            ),
        };
        // Best effort: without the kernel filter every packet still
        // passes the same tests below, only at a higher cost.
        if let Err(e) = socket2::SockRef::from(&fd).attach_filter(&kernel_filter(only)) {
            tracing::debug!("no kernel filter on the capture socket: {e}");
        }
        // A bigger queue rides out bursts while we format or write (root
        // may exceed rmem_max; otherwise the default stays).
        let _ = socket::setsockopt(&fd, sockopt::RcvBufForce, &RECEIVE_QUEUE);
        Ok(Capture {
            fd,
            only,
            names,
            buf: vec![0; snaplen.max(1)],
            cmsg: nix::cmsg_space!(nix::sys::time::TimeSpec, u32),
            drops: 0,
        })
    }

    /// Frames the kernel dropped so far (as of the last frame read).
    pub fn drops(&self) -> u64 {
        u64::from(self.drops)
    }

    /// The next frame, or `None` when [`POLL`] passed without one.
    pub fn next_frame(&mut self) -> Result<Option<Frame<'_>>> {
        loop {
            let mut iov = [IoSliceMut::new(&mut self.buf)];
            let msg = match socket::recvmsg::<LinkAddr>(
                self.fd.as_raw_fd(),
                &mut iov,
                Some(&mut self.cmsg),
                MsgFlags::MSG_TRUNC,
            ) {
                Ok(m) => m,
                Err(Errno::EAGAIN | Errno::EINTR) => return Ok(None),
                Err(e) => {
                    return Err(Error::Local {
                        what: "read from the capture socket".into(),
                        reason: e.desc().to_lowercase(),
                    });
                }
            };
            let wire_len = msg.bytes;
            let mut time = None;
            if let Ok(cmsgs) = msg.cmsgs() {
                for c in cmsgs {
                    match c {
                        ControlMessageOwned::ScmTimestampns(ts) => {
                            time = Some(
                                SystemTime::UNIX_EPOCH
                                    + Duration::new(
                                        u64::try_from(ts.tv_sec()).unwrap_or(0),
                                        u32::try_from(ts.tv_nsec()).unwrap_or(0),
                                    ),
                            );
                        }
                        ControlMessageOwned::RxqOvfl(n) => self.drops = n,
                        _ => {}
                    }
                }
            }
            let Some(addr) = msg.address else { continue };
            let (index, hatype, pkttype) = (addr.ifindex(), addr.hatype(), addr.pkttype());
            if self.only.is_some_and(|only| only != index) {
                continue;
            }
            // On loopback every packet is seen twice, going out and coming
            // in; libpcap keeps only the incoming copy, and so do we.
            if hatype == ARPHRD_LOOPBACK && pkttype == PACKET_OUTGOING {
                continue;
            }
            if !self.names.contains_key(&index) {
                self.names = interfaces();
            }
            let interface = self
                .names
                .entry(index)
                .or_insert_with(|| format!("if{index}"));
            let link = match hatype {
                ARPHRD_ETHER | ARPHRD_LOOPBACK => Some(LinkType::Ethernet),
                ARPHRD_RAWIP | ARPHRD_NONE => Some(LinkType::RawIp),
                _ => None,
            };
            return Ok(Some(Frame {
                time: time.unwrap_or_else(SystemTime::now),
                interface,
                direction: Direction::from_pkttype(pkttype),
                link,
                wire_len,
                data: &self.buf[..wire_len.min(self.buf.len())],
            }));
        }
    }
}

/// This host's interfaces by index.
fn interfaces() -> HashMap<usize, String> {
    nix::net::if_::if_nameindex()
        .map(|list| {
            list.iter()
                .map(|i| (i.index() as usize, i.name().to_string_lossy().into_owned()))
                .collect()
        })
        .unwrap_or_default()
}
