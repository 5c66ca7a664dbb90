//! Per-service counters, updated by every connection and datagram and
//! printed when the server stops.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

use super::proto::Service;

/// Counters of one service, over all its transports.
#[derive(Debug, Default)]
pub struct Stats {
    pub connections: AtomicU64,
    pub datagrams: AtomicU64,
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    /// Connections that ended in an error (reset, idle timeout, ...).
    pub errors: AtomicU64,
    /// Connections and datagrams refused by `--allow`/`--deny`.
    pub denied: AtomicU64,
    /// Datagrams dropped because their source is another service's port.
    pub dropped_loop: AtomicU64,
    /// Datagrams dropped by `--udp-rate`.
    pub dropped_rate: AtomicU64,
    /// Datagrams the kernel dropped before the server could read them (the
    /// socket's receive queue was full).
    pub dropped_kernel: AtomicU64,
}

impl Stats {
    /// Adds `n` to a counter.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    fn snapshot(&self, service: Service) -> Totals {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Totals {
            service: service.name(),
            connections: get(&self.connections),
            datagrams: get(&self.datagrams),
            bytes_in: get(&self.bytes_in),
            bytes_out: get(&self.bytes_out),
            errors: get(&self.errors),
            denied: get(&self.denied),
            udp_dropped_loop: get(&self.dropped_loop),
            udp_dropped_rate: get(&self.dropped_rate),
            udp_dropped_kernel: get(&self.dropped_kernel),
        }
    }
}

/// One service's totals, as printed (and as `--json` writes them).
#[derive(Debug, Serialize)]
pub struct Totals {
    pub service: &'static str,
    pub connections: u64,
    pub datagrams: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub errors: u64,
    pub denied: u64,
    pub udp_dropped_loop: u64,
    pub udp_dropped_rate: u64,
    pub udp_dropped_kernel: u64,
}

/// The totals of every service: a table, or one JSON object per line.
pub fn report(services: &[(Service, &Stats)], json: bool) -> String {
    let totals: Vec<Totals> = services
        .iter()
        .map(|(svc, stats)| stats.snapshot(*svc))
        .collect();
    let mut out = String::new();
    if json {
        for t in &totals {
            let _ = writeln!(out, "{}", serde_json::to_string(t).unwrap_or_default());
        }
        return out;
    }
    let _ = writeln!(
        out,
        "{:<8} {:>11} {:>9} {:>12} {:>12} {:>6} {:>6} {:>8}",
        "service",
        "connections",
        "datagrams",
        "bytes in",
        "bytes out",
        "errors",
        "denied",
        "dropped"
    );
    for t in &totals {
        let _ = writeln!(
            out,
            "{:<8} {:>11} {:>9} {:>12} {:>12} {:>6} {:>6} {:>8}",
            t.service,
            t.connections,
            t.datagrams,
            t.bytes_in,
            t.bytes_out,
            t.errors,
            t.denied,
            t.udp_dropped_loop + t.udp_dropped_rate + t.udp_dropped_kernel
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_has_one_object_per_service() {
        let s = Stats::default();
        Stats::add(&s.connections, 2);
        Stats::add(&s.bytes_in, 10);
        let text = report(
            &[(Service::Echo, &s), (Service::Time, &Stats::default())],
            true,
        );
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        let v: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(v["service"], "echo");
        assert_eq!(v["connections"], 2);
        assert_eq!(v["bytes_in"], 10);
    }
}
