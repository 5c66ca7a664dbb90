//! Live capture: one `AF_PACKET` socket (`SOCK_RAW`, `ETH_P_ALL`) whose
//! packets arrive in a memory-mapped ring ([`super::ring`], `TPACKET_V3`).
//!
//! Each packet comes with the kernel's timestamp, the interface it crossed,
//! in which direction and with which link type. The kernel counts the
//! packets it dropped for want of a free block (`PACKET_STATISTICS`). The
//! capture waits in `poll` for at most [`POLL`] so the capture thread
//! notices a stop request.
//!
//! `-i IFACE` is applied by the kernel filter (below) and again here, by
//! interface index: the kernel ignores `SO_BINDTODEVICE` on packet sockets.

use std::collections::HashMap;
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, SystemTime};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::{self, AddressFamily, SockFlag, SockProtocol, SockType};

use super::bpf::{self, ARPHRD_ETHER, ARPHRD_LOOPBACK, PACKET_OUTGOING};
use super::decode::LinkType;
use super::filter::Filter;
use super::ring::{self, Ring};
use crate::{Error, Result};

/// How long one read waits before the capture loop checks for a stop.
const POLL: Duration = Duration::from_millis(100);

/// `ARPHRD_*` values from `<linux/if_arp.h>` that say how a frame begins
/// (Ethernet and loopback are `bpf`'s).
const ARPHRD_RAWIP: u16 = 519;
const ARPHRD_NONE: u16 = 0xfffe;

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
    /// Declared before `fd`: unmapped before the socket closes.
    ring: Ring,
    fd: OwnedFd,
    /// Only frames on this interface index (`-i`), or every interface.
    only: Option<usize>,
    /// Interface names by index, refreshed when an unknown index appears.
    names: HashMap<usize, String>,
    snaplen: usize,
    /// The kernel's count of frames dropped for want of ring space.
    drops: u64,
}

impl Capture {
    /// Opens a capture on one interface or all, keeping `snaplen` bytes of
    /// each frame; the kernel turns away what `filter` surely does not keep.
    pub fn open(interface: Option<&str>, snaplen: usize, filter: &Filter) -> Result<Self> {
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
        let names = interfaces();
        let only = interface_index(interface)?;
        let snaplen = snaplen.max(1);
        // Best effort: without the kernel filter every packet still
        // passes the same tests below, only at a higher cost.
        let program = bpf::program(only, filter, u32::try_from(snaplen).unwrap_or(u32::MAX));
        if let Err(e) = socket2::SockRef::from(&fd).attach_filter(&bpf::sock_filters(&program)) {
            tracing::debug!("no kernel filter on the capture socket: {e}");
        }
        let ring = Ring::new(&fd).map_err(|e| Error::Local {
            what: "map the capture ring (PACKET_RX_RING, TPACKET_V3)".into(),
            reason: crate::error::describe_io(&e),
        })?;
        Ok(Capture {
            ring,
            fd,
            only,
            names,
            snaplen,
            drops: 0,
        })
    }

    /// Frames the kernel dropped so far (as of the last wait for frames,
    /// or the last [`Capture::update_drops`]).
    pub fn drops(&self) -> u64 {
        self.drops
    }

    /// Asks the kernel for the drops since the last asking.
    pub fn update_drops(&mut self) -> u64 {
        self.drops += ring::take_drops(&self.fd);
        self.drops
    }

    /// The next frame, or `None` when [`POLL`] passed without one.
    pub fn next_frame(&mut self) -> Result<Option<Frame<'_>>> {
        let only = self.only;
        let keep = |m: &ring::Meta| {
            // On loopback every packet is seen twice, going out and coming
            // in; libpcap keeps only the incoming copy, and so do we.
            only.is_none_or(|only| only == m.ifindex)
                && !(m.hatype == ARPHRD_LOOPBACK && m.pkttype == PACKET_OUTGOING)
        };
        if !self.ring.ready() {
            self.update_drops();
            let mut fds = [PollFd::new(self.fd.as_fd(), PollFlags::POLLIN)];
            let wait = PollTimeout::try_from(POLL).unwrap_or(PollTimeout::MAX);
            match poll(&mut fds, wait) {
                Ok(_) | Err(Errno::EINTR) => {}
                Err(e) => {
                    return Err(Error::Local {
                        what: "wait on the capture socket".into(),
                        reason: e.desc().to_lowercase(),
                    });
                }
            }
        }
        let Some((meta, data)) = self.ring.next_packet(keep) else {
            return Ok(None);
        };
        if !self.names.contains_key(&meta.ifindex) {
            self.names = interfaces();
        }
        let interface = self
            .names
            .entry(meta.ifindex)
            .or_insert_with(|| format!("if{}", meta.ifindex));
        let link = match meta.hatype {
            ARPHRD_ETHER | ARPHRD_LOOPBACK => Some(LinkType::Ethernet),
            ARPHRD_RAWIP | ARPHRD_NONE => Some(LinkType::RawIp),
            _ => None,
        };
        Ok(Some(Frame {
            time: SystemTime::UNIX_EPOCH + Duration::new(u64::from(meta.sec), meta.nsec),
            interface,
            direction: Direction::from_pkttype(meta.pkttype),
            link,
            wire_len: meta.wire_len,
            data: &data[..data.len().min(self.snaplen)],
        }))
    }
}
/// The index of the interface `-i` names (`None` for every interface).
pub fn interface_index(interface: Option<&str>) -> Result<Option<usize>> {
    let names = interfaces();
    let Some(name) = interface.filter(|n| *n != "any") else {
        return Ok(None);
    };
    names
        .iter()
        .find(|(_, n)| n.as_str() == name)
        .map(|(i, _)| Some(*i))
        .ok_or_else(|| {
            let mut known: Vec<&str> = names.values().map(String::as_str).collect();
            known.sort_unstable();
            Error::usage(format!(
                "no such interface \"{name}\": this host has {} (or \"any\")",
                known.join(", ")
            ))
        })
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
