//! The packet decoder: a pure function from captured bytes to the layers
//! they hold (Ethernet, ARP, IPv4, IPv6 and its extension headers, TCP,
//! UDP, ICMP, `ICMPv6`), so that unit tests and the fuzzer (fuzz/) drive it
//! without a socket.
//!
//! The slicing is etherparse's "lax" mode: every layer that decodes is
//! kept and the first one that does not is recorded in
//! [`Packet::stopped`], as tcpdump's `[|tcp]` marks a truncated packet.
//! etherparse checks each length before it reads (it returns `LenError`
//! rather than indexing past the end), and this module only reads through
//! its checked views: a truncated or malformed frame can end decoding
//! early, never panic.
//!
//! # References
//! RFC 791 (IPv4), RFC 8200 (IPv6), RFC 9293 (TCP), RFC 768 (UDP),
//! RFC 792 (ICMP), RFC 4443 and RFC 4861 (`ICMPv6`), RFC 826 (ARP).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use etherparse::{EtherType, LaxNetSlice, LaxSlicedPacket, LinkSlice, TransportSlice};
use serde::Serialize;

/// How a captured frame begins: the link type of the interface or of the
/// pcap file, known rather than guessed from the bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkType {
    /// An Ethernet II header (Ethernet, veth, loopback on Linux).
    Ethernet,
    /// A bare IPv4 or IPv6 packet (tun devices, pcap `LINKTYPE_RAW`).
    RawIp,
    /// Linux "cooked" capture v1 (pcap `LINKTYPE_LINUX_SLL`, `tcpdump -i any`).
    LinuxSll,
}

/// Every layer of one frame that decoded.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Packet {
    /// The Ethernet header, when the frame had one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ethernet: Option<Ethernet>,
    /// The network layer: IPv4, IPv6 or ARP.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub net: Option<Net>,
    /// The transport layer (TCP, UDP, ICMP, `ICMPv6`), or the protocol
    /// number of one this decoder does not know.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transport: Option<Transport>,
    /// Why decoding stopped early (a truncated or malformed header).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
}

/// An Ethernet II header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ethernet {
    /// Source MAC address, `aa:bb:cc:dd:ee:ff`.
    pub src: String,
    /// Destination MAC address.
    pub dst: String,
    /// The `EtherType` of what follows (0x0800 IPv4, 0x86dd IPv6, 0x0806 ARP).
    pub ether_type: u16,
}

/// The network layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "proto", rename_all = "lowercase")]
pub enum Net {
    /// An IPv4 header.
    Ipv4 {
        src: Ipv4Addr,
        dst: Ipv4Addr,
        ttl: u8,
        id: u16,
        /// Total length from the header (header and payload).
        length: u16,
        /// Whether this packet is a fragment (more fragments or an offset).
        fragment: bool,
    },
    /// An IPv6 header and the extension headers that follow it.
    Ipv6 {
        src: Ipv6Addr,
        dst: Ipv6Addr,
        hop_limit: u8,
        /// Payload length from the header (extension headers included).
        length: u16,
        /// The extension headers in order ("hop-by-hop", "routing",
        /// "fragment", "destination-options", "auth").
        extensions: Vec<&'static str>,
    },
    /// An ARP packet.
    Arp {
        /// "request", "reply" or the operation number.
        operation: String,
        /// Sender protocol address, when it is IPv4.
        #[serde(skip_serializing_if = "Option::is_none")]
        sender_ip: Option<Ipv4Addr>,
        /// Target protocol address, when it is IPv4.
        #[serde(skip_serializing_if = "Option::is_none")]
        target_ip: Option<Ipv4Addr>,
        /// Sender hardware address.
        sender_mac: String,
    },
}

/// The transport layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "proto", rename_all = "lowercase")]
pub enum Transport {
    /// A TCP segment.
    Tcp {
        src_port: u16,
        dst_port: u16,
        /// tcpdump's flag letters: S SYN, F FIN, R RST, P PSH, U URG,
        /// E ECE, W CWR, `.` ACK.
        flags: String,
        seq: u32,
        ack: u32,
        window: u16,
        /// Payload bytes.
        length: usize,
    },
    /// A UDP datagram.
    Udp {
        src_port: u16,
        dst_port: u16,
        /// Payload bytes, from the UDP length field.
        length: usize,
    },
    /// An ICMP (v4) message.
    Icmp(Icmp),
    /// An `ICMPv6` message.
    Icmp6(Icmp),
    /// A protocol this decoder does not look into.
    Other {
        /// The IP protocol number.
        number: u8,
        length: usize,
    },
}

/// An ICMP or `ICMPv6` message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Icmp {
    /// The type's name ("echo request", "destination unreachable").
    pub name: &'static str,
    pub r#type: u8,
    pub code: u8,
    /// Identifier and sequence number of an echo request or reply.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub echo: Option<Echo>,
    /// The whole ICMP message (header and data), as tcpdump counts it.
    pub length: usize,
}

/// The identifier and sequence number of an ICMP echo.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Echo {
    pub id: u16,
    pub seq: u16,
}

impl Packet {
    /// The source and destination IP addresses, for IPv4 and IPv6.
    pub fn ips(&self) -> Option<(IpAddr, IpAddr)> {
        match &self.net {
            Some(Net::Ipv4 { src, dst, .. }) => Some(((*src).into(), (*dst).into())),
            Some(Net::Ipv6 { src, dst, .. }) => Some(((*src).into(), (*dst).into())),
            _ => None,
        }
    }

    /// The source and destination ports, for TCP and UDP.
    pub fn ports(&self) -> Option<(u16, u16)> {
        match self.transport {
            Some(
                Transport::Tcp {
                    src_port, dst_port, ..
                }
                | Transport::Udp {
                    src_port, dst_port, ..
                },
            ) => Some((src_port, dst_port)),
            _ => None,
        }
    }
}

/// Decodes one captured frame. Never panics, whatever the bytes.
pub fn decode(link: LinkType, data: &[u8]) -> Packet {
    let sliced = match link {
        LinkType::Ethernet => LaxSlicedPacket::from_ethernet(data).map_err(|e| e.to_string()),
        LinkType::RawIp => LaxSlicedPacket::from_ip(data).map_err(|e| e.to_string()),
        LinkType::LinuxSll => linux_sll(data),
    };
    let sliced = match sliced {
        Ok(s) => s,
        Err(why) => {
            return Packet {
                stopped: Some(why),
                ..Packet::default()
            };
        }
    };
    let mut packet = Packet {
        ethernet: match &sliced.link {
            Some(LinkSlice::Ethernet2(eth)) => Some(Ethernet {
                src: mac(&eth.source()),
                dst: mac(&eth.destination()),
                ether_type: eth.ether_type().0,
            }),
            _ => None,
        },
        net: sliced.net.as_ref().map(net),
        transport: None,
        stopped: sliced.stop_err.as_ref().map(|(e, _)| e.to_string()),
    };
    packet.transport = match &sliced.transport {
        Some(t) => Some(transport(t)),
        None => sliced
            .net
            .as_ref()
            .and_then(LaxNetSlice::ip_payload_ref)
            .filter(|p| packet.stopped.is_none() || !p.payload.is_empty())
            .map(|p| Transport::Other {
                number: p.ip_number.0,
                length: p.payload.len(),
            }),
    };
    packet
}

/// A Linux cooked (SLL) header: 16 bytes, the `EtherType` in the last two.
fn linux_sll(data: &[u8]) -> Result<LaxSlicedPacket<'_>, String> {
    const SLL_LEN: usize = 16;
    match (data.get(14..SLL_LEN), data.get(SLL_LEN..)) {
        (Some(&[hi, lo]), Some(rest)) => Ok(LaxSlicedPacket::from_ether_type(
            EtherType(u16::from_be_bytes([hi, lo])),
            rest,
        )),
        _ => Err(format!(
            "Linux cooked header needs {SLL_LEN} bytes, frame has {}",
            data.len()
        )),
    }
}

fn net(slice: &LaxNetSlice<'_>) -> Net {
    match slice {
        LaxNetSlice::Ipv4(ip) => {
            let h = ip.header();
            Net::Ipv4 {
                src: h.source_addr(),
                dst: h.destination_addr(),
                ttl: h.ttl(),
                id: h.identification(),
                length: h.total_len(),
                fragment: h.is_fragmenting_payload(),
            }
        }
        LaxNetSlice::Ipv6(ip) => {
            let h = ip.header();
            Net::Ipv6 {
                src: h.source_addr(),
                dst: h.destination_addr(),
                hop_limit: h.hop_limit(),
                length: h.payload_length(),
                extensions: extension_names(
                    ip.extensions().first_header().map(|n| n.0),
                    ip.extensions().slice(),
                ),
            }
        }
        LaxNetSlice::Arp(arp) => {
            let p = arp.to_packet();
            let ipv4 = |b: &[u8]| <[u8; 4]>::try_from(b).ok().map(Ipv4Addr::from);
            Net::Arp {
                operation: match p.operation.0 {
                    1 => "request".into(),
                    2 => "reply".into(),
                    n => n.to_string(),
                },
                sender_ip: ipv4(p.sender_protocol_addr()),
                target_ip: ipv4(p.target_protocol_addr()),
                sender_mac: mac(p.sender_hw_addr()),
            }
        }
    }
}

/// Names the IPv6 extension headers in `slice`, the first being of type
/// `first`. Walked here with checked reads rather than with etherparse's
/// `Ipv6ExtensionsSlice` iterator: in 0.21 that iterator trusts the slice
/// to be complete, and on a lax slice cut short inside the chain it reads
/// past the end (found by this module's tests; debug builds abort on the
/// `get_unchecked` precondition).
fn extension_names(first: Option<u8>, mut slice: &[u8]) -> Vec<&'static str> {
    let mut names = Vec::new();
    let mut next = first;
    while let Some(kind) = next {
        let (name, len) = match (kind, slice.get(1)) {
            (0, Some(&l)) => ("hop-by-hop", (usize::from(l) + 1) * 8),
            (43, Some(&l)) => ("routing", (usize::from(l) + 1) * 8),
            (60, Some(&l)) => ("destination-options", (usize::from(l) + 1) * 8),
            (44, Some(_)) => ("fragment", 8),
            (51, Some(&l)) => ("auth", (usize::from(l) + 2) * 4),
            _ => break,
        };
        let Some(rest) = slice.get(len..) else { break };
        names.push(name);
        next = slice.first().copied();
        slice = rest;
    }
    names
}

fn transport(slice: &TransportSlice<'_>) -> Transport {
    match slice {
        TransportSlice::Tcp(tcp) => {
            let mut flags = String::new();
            for (set, letter) in [
                (tcp.syn(), 'S'),
                (tcp.fin(), 'F'),
                (tcp.rst(), 'R'),
                (tcp.psh(), 'P'),
                (tcp.urg(), 'U'),
                (tcp.ece(), 'E'),
                (tcp.cwr(), 'W'),
                (tcp.ack(), '.'),
            ] {
                if set {
                    flags.push(letter);
                }
            }
            if flags.is_empty() {
                flags.push_str("none");
            }
            Transport::Tcp {
                src_port: tcp.source_port(),
                dst_port: tcp.destination_port(),
                flags,
                seq: tcp.sequence_number(),
                ack: tcp.acknowledgment_number(),
                window: tcp.window_size(),
                length: tcp.payload().len(),
            }
        }
        TransportSlice::Udp(udp) => Transport::Udp {
            src_port: udp.source_port(),
            dst_port: udp.destination_port(),
            length: usize::from(udp.length()).saturating_sub(8),
        },
        TransportSlice::Icmpv4(icmp) => {
            let (t, code) = (icmp.type_u8(), icmp.code_u8());
            Transport::Icmp(Icmp {
                name: icmp4_name(t),
                r#type: t,
                code,
                echo: matches!(t, 0 | 8).then(|| echo(icmp.bytes5to8())),
                length: icmp.slice().len(),
            })
        }
        TransportSlice::Icmpv6(icmp) => {
            let (t, code) = (icmp.type_u8(), icmp.code_u8());
            Transport::Icmp6(Icmp {
                name: icmp6_name(t),
                r#type: t,
                code,
                echo: matches!(t, 128 | 129).then(|| echo(icmp.bytes5to8())),
                length: icmp.slice().len(),
            })
        }
        TransportSlice::Igmp(igmp) => Transport::Other {
            number: 2,
            length: igmp.slice().len(),
        },
    }
}

fn echo(b: [u8; 4]) -> Echo {
    Echo {
        id: u16::from_be_bytes([b[0], b[1]]),
        seq: u16::from_be_bytes([b[2], b[3]]),
    }
}

/// ICMP type names as tcpdump prints them (RFC 792, RFC 950).
pub fn icmp4_name(t: u8) -> &'static str {
    match t {
        0 => "echo reply",
        3 => "destination unreachable",
        4 => "source quench",
        5 => "redirect",
        8 => "echo request",
        9 => "router advertisement",
        10 => "router solicitation",
        11 => "time exceeded",
        12 => "parameter problem",
        13 => "timestamp request",
        14 => "timestamp reply",
        17 => "address mask request",
        18 => "address mask reply",
        _ => "type unknown",
    }
}

/// `ICMPv6` type names (RFC 4443, RFC 4861, RFC 3810).
pub fn icmp6_name(t: u8) -> &'static str {
    match t {
        1 => "destination unreachable",
        2 => "packet too big",
        3 => "time exceeded",
        4 => "parameter problem",
        128 => "echo request",
        129 => "echo reply",
        130 => "multicast listener query",
        131 => "multicast listener report",
        132 => "multicast listener done",
        133 => "router solicitation",
        134 => "router advertisement",
        135 => "neighbor solicitation",
        136 => "neighbor advertisement",
        137 => "redirect",
        143 => "multicast listener report v2",
        _ => "type unknown",
    }
}

fn mac(b: &[u8]) -> String {
    let parts: Vec<String> = b.iter().map(|x| format!("{x:02x}")).collect();
    parts.join(":")
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An Ethernet + IPv4 + TCP SYN frame, 127.0.0.1:40000 -> 127.0.0.1:80.
    pub(crate) fn tcp_syn() -> Vec<u8> {
        let mut f = vec![0u8; 12];
        f.extend([0x08, 0x00]);
        f.extend([
            0x45, 0, 0, 40, 0x12, 0x34, 0x40, 0, 64, 6, 0, 0, 127, 0, 0, 1, 127, 0, 0, 1,
        ]);
        f.extend(40000u16.to_be_bytes());
        f.extend(80u16.to_be_bytes());
        f.extend(1000u32.to_be_bytes());
        f.extend(0u32.to_be_bytes());
        f.extend([0x50, 0x02]);
        f.extend(65495u16.to_be_bytes());
        f.extend([0, 0, 0, 0]);
        f
    }

    /// Ethernet + IPv6 (hop-by-hop, then UDP) `::1:5000` -> `::1:53`, 3 bytes.
    pub(crate) fn udp6_hop_by_hop() -> Vec<u8> {
        let mut f = vec![0u8; 12];
        f.extend([0x86, 0xdd]);
        f.extend([0x60, 0, 0, 0, 0, 19, 0, 64]);
        f.extend(Ipv6Addr::LOCALHOST.octets());
        f.extend(Ipv6Addr::LOCALHOST.octets());
        f.extend([17, 0, 1, 4, 0, 0, 0, 0]);
        f.extend(5000u16.to_be_bytes());
        f.extend(53u16.to_be_bytes());
        f.extend(11u16.to_be_bytes());
        f.extend([0, 0, b'a', b'b', b'c']);
        f
    }

    /// Ethernet + IPv4 + ICMP echo request id 7 seq 3.
    pub(crate) fn icmp_echo() -> Vec<u8> {
        let mut f = vec![0u8; 12];
        f.extend([0x08, 0x00]);
        f.extend([
            0x45, 0, 0, 32, 0, 1, 0, 0, 64, 1, 0, 0, 127, 0, 0, 1, 127, 0, 0, 2,
        ]);
        f.extend([8, 0, 0, 0, 0, 7, 0, 3, 1, 2, 3, 4]);
        f
    }

    /// Ethernet + ARP request: who has 10.0.0.2, tell 10.0.0.1.
    pub(crate) fn arp_request() -> Vec<u8> {
        let mut f = vec![0xff; 6];
        f.extend([2, 0, 0, 0, 0, 1, 0x08, 0x06]);
        f.extend([0, 1, 8, 0, 6, 4, 0, 1]);
        f.extend([2, 0, 0, 0, 0, 1, 10, 0, 0, 1]);
        f.extend([0, 0, 0, 0, 0, 0, 10, 0, 0, 2]);
        f
    }

    #[test]
    fn tcp_syn_decodes_every_field() {
        let p = decode(LinkType::Ethernet, &tcp_syn());
        assert_eq!(p.stopped, None);
        assert_eq!(
            p.transport,
            Some(Transport::Tcp {
                src_port: 40000,
                dst_port: 80,
                flags: "S".into(),
                seq: 1000,
                ack: 0,
                window: 65495,
                length: 0
            })
        );
        assert!(matches!(
            p.net,
            Some(Net::Ipv4 {
                ttl: 64,
                id: 0x1234,
                ..
            })
        ));
    }

    #[test]
    fn ipv6_extension_headers_are_listed() {
        let p = decode(LinkType::Ethernet, &udp6_hop_by_hop());
        let Some(Net::Ipv6 { extensions, .. }) = &p.net else {
            panic!("{p:?}")
        };
        assert_eq!(extensions, &["hop-by-hop"]);
        assert_eq!(
            p.transport,
            Some(Transport::Udp {
                src_port: 5000,
                dst_port: 53,
                length: 3
            })
        );
    }

    #[test]
    fn icmp_and_arp_have_names() {
        let p = decode(LinkType::Ethernet, &icmp_echo());
        assert!(matches!(
            p.transport,
            Some(Transport::Icmp(Icmp {
                name: "echo request",
                echo: Some(Echo { id: 7, seq: 3 }),
                length: 12,
                ..
            }))
        ));
        let p = decode(LinkType::Ethernet, &arp_request());
        assert_eq!(
            p.net,
            Some(Net::Arp {
                operation: "request".into(),
                sender_ip: Some(Ipv4Addr::new(10, 0, 0, 1)),
                target_ip: Some(Ipv4Addr::new(10, 0, 0, 2)),
                sender_mac: "02:00:00:00:00:01".into()
            })
        );
    }

    #[test]
    fn raw_ip_and_cooked_frames_decode_the_same_packet() {
        let eth = tcp_syn();
        let raw = decode(LinkType::RawIp, &eth[14..]);
        let mut sll = vec![0, 0, 3, 4, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0];
        sll.extend(&eth[12..]);
        let cooked = decode(LinkType::LinuxSll, &sll);
        let full = decode(LinkType::Ethernet, &eth);
        assert_eq!(raw.transport, full.transport);
        assert_eq!(cooked.transport, full.transport);
        assert_eq!(raw.ethernet, None);
    }

    #[test]
    fn every_truncation_stops_without_panicking() {
        for frame in [tcp_syn(), udp6_hop_by_hop(), icmp_echo(), arp_request()] {
            for len in 0..frame.len() {
                let cut = &frame[..len];
                for link in [LinkType::Ethernet, LinkType::RawIp, LinkType::LinuxSll] {
                    let p = decode(link, cut);
                    if link == LinkType::Ethernet && len < 14 {
                        assert!(p.stopped.is_some() && p.net.is_none(), "{len}: {p:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn a_truncated_tcp_header_keeps_the_ip_layer_and_says_why() {
        let frame = tcp_syn();
        let p = decode(LinkType::Ethernet, &frame[..14 + 20 + 7]);
        assert!(p.ips().is_some());
        assert!(!matches!(p.transport, Some(Transport::Tcp { .. })), "{p:?}");
        assert!(p.stopped.is_some(), "{p:?}");
    }

    #[test]
    fn malformed_headers_never_panic() {
        // Bad IHL, lengths that lie, every byte flipped in turn.
        let mut bad_ihl = tcp_syn();
        bad_ihl[14] = 0x4f;
        let mut lying_len = udp6_hop_by_hop();
        lying_len[18] = 0xff;
        let mut short_ihl = icmp_echo();
        short_ihl[14] = 0x41;
        for frame in [bad_ihl, lying_len, short_ihl] {
            let _ = decode(LinkType::Ethernet, &frame);
        }
        for base in [tcp_syn(), udp6_hop_by_hop(), icmp_echo(), arp_request()] {
            for i in 0..base.len() {
                for v in [0x00, 0xff, 0x0f, 0x80] {
                    let mut f = base.clone();
                    f[i] = v;
                    let _ = decode(LinkType::Ethernet, &f);
                }
            }
        }
        // A deterministic pseudo-random sweep (xorshift) of odd frames.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let len = (x % 80) as usize;
            let bytes: Vec<u8> = (0..len).map(|i| (x >> (i % 56)) as u8).collect();
            let mut eth = vec![0u8; 12];
            eth.extend([0x86, 0xdd, 0x60]);
            eth.extend(&bytes);
            let _ = decode(LinkType::Ethernet, &eth);
            let _ = decode(LinkType::RawIp, &bytes);
        }
    }
}
