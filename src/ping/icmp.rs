//! ICMP and `ICMPv6` echo messages: building requests and reading what comes
//! back, without touching a socket, so every rule is unit-tested.
//!
//! A raw IPv4 socket hands over the whole IP datagram (header first); raw
//! IPv6 sockets and the unprivileged ICMP datagram sockets of both families
//! hand over the ICMP message alone. Every read is bounds-checked: a short
//! or malformed packet is [`Parsed::Other`], never a panic.
//!
//! # References
//! RFC 792 (ICMP), RFC 4443 (`ICMPv6`), RFC 1071 (the Internet checksum).

/// ICMP echo request and reply types, and the error types whose payload
/// quotes our request, for IPv4 (RFC 792) and IPv6 (RFC 4443).
mod types {
    pub const V4_ECHO_REPLY: u8 = 0;
    pub const V4_UNREACHABLE: u8 = 3;
    pub const V4_ECHO_REQUEST: u8 = 8;
    pub const V4_TIME_EXCEEDED: u8 = 11;
    pub const V6_UNREACHABLE: u8 = 1;
    pub const V6_TOO_BIG: u8 = 2;
    pub const V6_TIME_EXCEEDED: u8 = 3;
    pub const V6_ECHO_REQUEST: u8 = 128;
    pub const V6_ECHO_REPLY: u8 = 129;
}

/// The ICMP header: type, code, checksum, identifier, sequence.
pub const HEADER_LEN: usize = 8;
/// The fixed IPv6 header an `ICMPv6` error quotes.
const IPV6_HEADER_LEN: usize = 40;

/// The payload byte at `i` of every request: iputils' pattern (0x10, 0x11,
/// ...), so that a corrupted reply shows in a capture the same way.
fn pattern(i: usize) -> u8 {
    (0x10 + i) as u8
}

/// An echo request with `size` payload bytes. The checksum is filled for
/// IPv4; for `ICMPv6` the kernel computes it over the pseudo-header (raw
/// `ICMPv6` sockets always do, RFC 3542 §3.1), and ICMP datagram sockets
/// compute it for both families.
pub fn echo_request(v6: bool, id: u16, seq: u16, size: usize) -> Vec<u8> {
    let mut msg = Vec::with_capacity(HEADER_LEN + size);
    msg.push(if v6 {
        types::V6_ECHO_REQUEST
    } else {
        types::V4_ECHO_REQUEST
    });
    msg.push(0);
    msg.extend_from_slice(&[0, 0]);
    msg.extend_from_slice(&id.to_be_bytes());
    msg.extend_from_slice(&seq.to_be_bytes());
    msg.extend((0..size).map(pattern));
    if !v6 {
        let sum = checksum(&msg);
        msg[2..4].copy_from_slice(&sum.to_be_bytes());
    }
    msg
}

/// The Internet checksum (RFC 1071): the ones' complement of the ones'
/// complement sum of 16-bit words.
pub fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w.get(1).copied().unwrap_or(0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// What a received packet turned out to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parsed {
    /// An echo reply: its identifier and sequence, the ICMP length (header
    /// and payload, what ping prints as "bytes"), whether the payload is
    /// the one sent, and the TTL when the IP header was there to read it.
    Reply {
        id: u16,
        seq: u16,
        len: usize,
        intact: bool,
        ttl: Option<u8>,
    },
    /// An ICMP error quoting one of our requests (identifier and sequence),
    /// in ping's words ("Destination Host Unreachable").
    Error {
        id: u16,
        seq: u16,
        what: &'static str,
    },
    /// Anything else: another program's ICMP, our own request seen by a raw
    /// socket on loopback, a truncated packet.
    Other,
}

impl Parsed {
    /// The echo identifier of a reply or of the request an error quotes.
    pub fn id(self) -> Option<u16> {
        match self {
            Parsed::Reply { id, .. } | Parsed::Error { id, .. } => Some(id),
            Parsed::Other => None,
        }
    }
}

/// Reads one packet. `with_ip_header` is true for raw IPv4 sockets.
pub fn parse(v6: bool, with_ip_header: bool, packet: &[u8], size: usize) -> Parsed {
    let (icmp, ttl) = if with_ip_header {
        match strip_ipv4(packet) {
            Some((icmp, ttl)) => (icmp, Some(ttl)),
            None => return Parsed::Other,
        }
    } else {
        (packet, None)
    };
    if icmp.len() < HEADER_LEN {
        return Parsed::Other;
    }
    let (kind, code) = (icmp[0], icmp[1]);
    let id = u16::from_be_bytes([icmp[4], icmp[5]]);
    let seq = u16::from_be_bytes([icmp[6], icmp[7]]);
    let reply = if v6 {
        types::V6_ECHO_REPLY
    } else {
        types::V4_ECHO_REPLY
    };
    if kind == reply {
        let payload = &icmp[HEADER_LEN..];
        let intact =
            payload.len() == size && payload.iter().enumerate().all(|(i, b)| *b == pattern(i));
        return Parsed::Reply {
            id,
            seq,
            len: icmp.len(),
            intact,
            ttl,
        };
    }
    let Some(what) = error_name(v6, kind, code) else {
        return Parsed::Other;
    };
    // The error quotes the request's IP header, then its ICMP header.
    let quoted = &icmp[HEADER_LEN..];
    let inner = if v6 {
        quoted.get(IPV6_HEADER_LEN..)
    } else {
        strip_ipv4(quoted).map(|(inner, _)| inner)
    };
    let request = if v6 {
        types::V6_ECHO_REQUEST
    } else {
        types::V4_ECHO_REQUEST
    };
    match inner {
        Some(inner) if inner.len() >= HEADER_LEN && inner[0] == request => Parsed::Error {
            id: u16::from_be_bytes([inner[4], inner[5]]),
            seq: u16::from_be_bytes([inner[6], inner[7]]),
            what,
        },
        _ => Parsed::Other,
    }
}

/// The payload of an IPv4 datagram and its TTL, if the header is whole.
/// A quoted header in an ICMP error may come with a truncated payload, so
/// the total length field is not required to fit.
fn strip_ipv4(packet: &[u8]) -> Option<(&[u8], u8)> {
    let first = *packet.first()?;
    if first >> 4 != 4 {
        return None;
    }
    let header = usize::from(first & 0x0f) * 4;
    if header < 20 || packet.len() < header {
        return None;
    }
    Some((&packet[header..], packet[8]))
}

/// ping's words for the ICMP errors that quote a request.
fn error_name(v6: bool, kind: u8, code: u8) -> Option<&'static str> {
    Some(match (v6, kind, code) {
        (false, types::V4_UNREACHABLE, 0) => "Destination Net Unreachable",
        (false, types::V4_UNREACHABLE, 1) => "Destination Host Unreachable",
        (false, types::V4_UNREACHABLE, 3) => "Destination Port Unreachable",
        (false, types::V4_UNREACHABLE, 13) => "Communication prohibited by filter",
        (false, types::V4_UNREACHABLE, _) => "Destination Unreachable",
        (false, types::V4_TIME_EXCEEDED, _) => "Time to live exceeded",
        (true, types::V6_UNREACHABLE, 0) => "Destination unreachable: No route",
        (true, types::V6_UNREACHABLE, 1) => "Destination unreachable: Administratively prohibited",
        (true, types::V6_UNREACHABLE, 3) => "Destination unreachable: Address unreachable",
        (true, types::V6_UNREACHABLE, 4) => "Destination unreachable: Port unreachable",
        (true, types::V6_UNREACHABLE, _) => "Destination unreachable",
        (true, types::V6_TOO_BIG, _) => "Packet too big",
        (true, types::V6_TIME_EXCEEDED, _) => "Time exceeded: Hop limit",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An IPv4 header (no options) with `ttl` around `payload`.
    fn ipv4(ttl: u8, payload: &[u8]) -> Vec<u8> {
        let mut p = vec![0x45, 0, 0, 0, 0, 0, 0, 0, ttl, 1, 0, 0];
        p.extend_from_slice(&[127, 0, 0, 1, 127, 0, 0, 1]);
        p.extend_from_slice(payload);
        p
    }

    fn as_reply(mut msg: Vec<u8>, kind: u8) -> Vec<u8> {
        msg[0] = kind;
        msg
    }

    #[test]
    fn checksum_of_a_request_verifies_to_zero() {
        let req = echo_request(false, 0x1234, 7, 56);
        assert_eq!(req.len(), 64);
        assert_eq!(checksum(&req), 0);
        // Odd length: the last byte is padded with zero (RFC 1071).
        let odd = echo_request(false, 1, 1, 3);
        assert_eq!(checksum(&odd), 0);
        // RFC 1071's worked example.
        assert_eq!(
            checksum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
            !0xddf2
        );
    }

    #[test]
    fn replies_with_and_without_ip_header() {
        let reply = as_reply(echo_request(false, 9, 3, 56), types::V4_ECHO_REPLY);
        assert_eq!(
            parse(false, true, &ipv4(63, &reply), 56),
            Parsed::Reply {
                id: 9,
                seq: 3,
                len: 64,
                intact: true,
                ttl: Some(63)
            }
        );
        assert_eq!(
            parse(false, false, &reply, 56),
            Parsed::Reply {
                id: 9,
                seq: 3,
                len: 64,
                intact: true,
                ttl: None
            }
        );
        let v6 = as_reply(echo_request(true, 9, 4, 8), types::V6_ECHO_REPLY);
        assert!(matches!(
            parse(true, false, &v6, 8),
            Parsed::Reply {
                seq: 4,
                len: 16,
                intact: true,
                ..
            }
        ));
        let mut bad = reply.clone();
        bad[20] ^= 0xff;
        assert!(matches!(
            parse(false, false, &bad, 56),
            Parsed::Reply { intact: false, .. }
        ));
    }

    #[test]
    fn our_own_request_and_strangers_are_other() {
        let req = echo_request(false, 9, 3, 56);
        assert_eq!(parse(false, true, &ipv4(64, &req), 56), Parsed::Other);
        assert_eq!(
            parse(true, false, &echo_request(true, 1, 1, 0), 0),
            Parsed::Other
        );
    }

    #[test]
    fn errors_name_the_quoted_request() {
        let req = echo_request(false, 0xbeef, 12, 56);
        let mut err = vec![types::V4_UNREACHABLE, 1, 0, 0, 0, 0, 0, 0];
        err.extend(ipv4(64, &req[..8]));
        assert_eq!(
            parse(false, true, &ipv4(64, &err), 56),
            Parsed::Error {
                id: 0xbeef,
                seq: 12,
                what: "Destination Host Unreachable"
            }
        );
        let req6 = echo_request(true, 5, 6, 56);
        let mut err6 = vec![types::V6_UNREACHABLE, 3, 0, 0, 0, 0, 0, 0];
        err6.extend([0x60; IPV6_HEADER_LEN]);
        err6.extend_from_slice(&req6[..8]);
        assert_eq!(
            parse(true, false, &err6, 56),
            Parsed::Error {
                id: 5,
                seq: 6,
                what: "Destination unreachable: Address unreachable"
            }
        );
    }

    #[test]
    fn truncated_and_malformed_packets_never_panic() {
        let reply = ipv4(
            64,
            &as_reply(echo_request(false, 1, 1, 56), types::V4_ECHO_REPLY),
        );
        for v6 in [false, true] {
            for header in [false, true] {
                for len in 0..reply.len() {
                    let _ = parse(v6, header, &reply[..len], 56);
                }
            }
        }
        // An IHL of 15 (60 bytes) in a 30-byte packet, an IHL below 5.
        let mut p = reply.clone();
        p[0] = 0x4f;
        assert_eq!(parse(false, true, &p[..30], 56), Parsed::Other);
        p[0] = 0x44;
        assert_eq!(parse(false, true, &p, 56), Parsed::Other);
        // An error quoting a truncated header.
        let err = [types::V4_UNREACHABLE, 1, 0, 0, 0, 0, 0, 0, 0x45, 0, 0];
        assert_eq!(parse(false, false, &err, 56), Parsed::Other);
    }
}
