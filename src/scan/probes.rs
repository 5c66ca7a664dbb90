//! What a scan sends, beyond a bare TCP connect: the port lists it picks by
//! default, and the UDP payloads that make a service answer.

use crate::error::{Error, Result};

/// The ranked port list behind `--top-ports` (see the file's header for
/// its source, licence and how it was ordered).
const TOP_PORTS: &str = include_str!("top_ports.txt");

/// The ranked list, most common first, parsed once.
fn ranked() -> &'static [u16] {
    static RANKED: std::sync::OnceLock<Vec<u16>> = std::sync::OnceLock::new();
    RANKED.get_or_init(|| {
        TOP_PORTS
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    })
}

/// The `n` most common TCP ports by the ranked list, sorted.
pub fn top(n: usize) -> Result<Vec<u16>> {
    let ranked = ranked();
    if n == 0 || n > ranked.len() {
        return Err(Error::usage(format!(
            "invalid --top-ports {n}: must be 1-{}, the length of netsmith's ranked list \
             (use -p for other ports, -p- for all)",
            ranked.len()
        )));
    }
    let mut ports = ranked[..n].to_vec();
    ports.sort_unstable();
    Ok(ports)
}

/// The number of ports in the ranked list: the default scan.
pub fn top_len() -> usize {
    ranked().len()
}

/// A DNS query for the root's name servers: any DNS server answers it,
/// even with a refusal, which is enough to show the port open.
const DNS_QUERY: &[u8] = &[
    0x6e, 0x73, // id "ns"
    0x01, 0x00, // standard query, recursion desired
    0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // one question
    0x00, // the root name
    0x00, 0x02, // type NS
    0x00, 0x01, // class IN
];

/// An NTP version 4 client request (RFC 5905): LI 0, version 4, mode 3.
const NTP_REQUEST: &[u8] = &{
    let mut p = [0u8; 48];
    p[0] = 0x23;
    p
};

/// The datagram sent to a UDP port: a request its usual service answers,
/// or an empty datagram (which echo, daytime, time and qotd answer).
pub fn udp_payload(port: u16) -> &'static [u8] {
    match port {
        53 | 5353 => DNS_QUERY,
        123 => NTP_REQUEST,
        _ => &[],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranked_list_is_valid_and_starts_with_the_web() {
        let all = top(top_len()).unwrap();
        let mut dedup = all.clone();
        dedup.dedup();
        assert_eq!(all, dedup, "no port twice");
        assert!(all.iter().all(|&p| p > 0));
        assert!(top(2).unwrap().contains(&80));
        assert!(top(0).is_err());
        assert!(
            top(top_len() + 1)
                .unwrap_err()
                .to_string()
                .contains("--top-ports")
        );
    }

    #[test]
    fn payloads() {
        assert_eq!(udp_payload(53).len(), 17);
        assert_eq!(udp_payload(123).len(), 48);
        assert!(udp_payload(7).is_empty());
    }
}
