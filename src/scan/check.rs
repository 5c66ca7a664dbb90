//! `connect -z` (nc -z): do these ports of one host answer? Every
//! (address, port) is one probe of the scan engine, behind the scan's
//! loopback gate, and the answers are told in OpenBSD nc's words, in the
//! order the ports were given, each as soon as it and the ports before it
//! are known:
//!
//! ```text
//! Connection to HOST PORT port [tcp/SERVICE] succeeded!
//! netsmith: connect to HOST port PORT (tcp) failed: Connection refused
//! ```
//!
//! As in nc, these lines need `-v`; without it only the exit status
//! answers (0 if any port answered, else 1). All of a name's addresses
//! are probed at once and told in the resolver's order, as nc tries them:
//! a failure line for each address before the first that answered, then
//! that one's success line. Over UDP a port counts as
//! answering unless an ICMP error comes back (nc's test), so a silent port
//! succeeds and a refused one fails.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use super::engine::{self, Outcome, State};
use super::targets::{Span, Targets};
use crate::endpoint::Host;
use crate::error::{Error, Result};
use crate::net::Resolve;
use crate::services::{self, Proto};

/// A port check as `connect -z` asks for it.
#[derive(Debug)]
pub struct Check {
    pub host: Host,
    /// In the order given, each once.
    pub ports: Vec<u16>,
    pub proto: Proto,
    pub resolve: Resolve,
    /// `-w`: how long a port may take to answer.
    pub timeout: Option<Duration>,
    pub authorized: bool,
    /// `-v`: one line per port on stderr.
    pub verbose: bool,
}

/// Runs the check: the lines (with `verbose`), and exit 0 if any port
/// answered, [`Error::Reported`] (exit 1, nothing more to say) if none did.
pub async fn check(c: Check) -> Result<()> {
    let mut addrs: Vec<IpAddr> = c
        .resolve
        .addrs(&c.host, 0)
        .await?
        .into_iter()
        .map(|a| a.ip())
        .collect();
    let mut seen = HashSet::new();
    addrs.retain(|ip| seen.insert(*ip));
    let targets = Targets::new(addrs.iter().map(|&ip| Span::from(ip)), HashMap::new());
    super::authorize(&targets, c.authorized)?;
    let udp = c.proto == Proto::Udp;
    // A TCP port gets as long as `connect` gives a connect (-w, else its
    // default), in one attempt, as nc's does. A UDP port answers only
    // when closed: without -w, the scan's learned timeouts and retries
    // decide how long silence takes (a fraction of a second on loopback).
    let (fixed_timeout, retries) = match c.timeout {
        Some(t) => (Some(t), 0),
        None if udp => (None, engine::DEFAULT_RETRIES),
        None => (Some(crate::connect::DEFAULT_CONNECT_TIMEOUT), 0),
    };
    let plan = Arc::new(super::sized(engine::Plan {
        udp,
        fixed_timeout,
        retries,
        ..engine::Plan::new(targets, c.ports.clone())
    }));
    let mut scan = engine::start(&plan).map_err(|e| Error::io("start the scan workers", &e))?;
    let mut teller = Teller {
        check: &c,
        addrs,
        results: HashMap::new(),
        next: 0,
        answered: false,
    };
    while let Some(batch) = scan.outcomes.recv().await {
        teller.add(batch);
    }
    if teller.next < c.ports.len() {
        return Err(Error::Network {
            what: "check ports".into(),
            reason: "the scan workers stopped before every port was probed".into(),
        });
    }
    if teller.answered {
        Ok(())
    } else {
        Err(Error::Reported(format!(
            "no port of {} answered",
            host_text(&c.host)
        )))
    }
}

/// Tells each port's answer once it and every port before it are known.
struct Teller<'a> {
    check: &'a Check,
    /// The host's addresses in the resolver's order.
    addrs: Vec<IpAddr>,
    results: HashMap<(IpAddr, u16), Outcome>,
    /// The first port not yet told.
    next: usize,
    answered: bool,
}

impl Teller<'_> {
    fn add(&mut self, batch: Vec<Outcome>) {
        for outcome in batch {
            self.results.insert((outcome.ip, outcome.port), outcome);
        }
        let mut text = String::new();
        let mut answered = false;
        while let Some(&port) = self.check.ports.get(self.next) {
            let Some(told) = self.port(port) else { break };
            for (ip, outcome) in told {
                let ok = succeeded(outcome.state);
                answered |= ok;
                if self.check.verbose {
                    text.push_str(&self.line(ip, port, outcome, ok));
                    text.push('\n');
                }
            }
            self.next += 1;
        }
        self.answered |= answered;
        if !text.is_empty() {
            let mut err = std::io::stderr().lock();
            let _ = err.write_all(text.as_bytes());
            let _ = err.flush();
        }
    }

    /// What to tell of `port`, once known: each address's outcome up to
    /// the first that answered.
    fn port(&self, port: u16) -> Option<Vec<(IpAddr, &Outcome)>> {
        let mut told = Vec::new();
        for &ip in &self.addrs {
            let outcome = self.results.get(&(ip, port))?;
            told.push((ip, outcome));
            if succeeded(outcome.state) {
                break;
            }
        }
        Some(told)
    }

    /// nc's line for one outcome.
    fn line(&self, ip: IpAddr, port: u16, outcome: &Outcome, ok: bool) -> String {
        let c = self.check;
        // nc names the address too when the host was a name.
        let host = match &c.host {
            Host::Ip(ip) => ip.to_string(),
            Host::Name(name) => format!("{name} ({ip})"),
        };
        let proto = c.proto;
        let service = if c.resolve.numeric {
            None
        } else {
            services::name_of(port, c.proto)
        };
        // nc's words, or those of the personality netsmith runs as.
        let failure = (!ok).then(|| reason(outcome));
        if let Some(line) =
            crate::compat::zero_line(&host_text(&c.host), ip, port, proto, service, failure)
        {
            return line;
        }
        if ok {
            format!(
                "Connection to {host} {port} port [{proto}/{}] succeeded!",
                service.unwrap_or("*")
            )
        } else {
            format!(
                "netsmith: connect to {host} port {port} ({proto}) failed: {}",
                reason(outcome)
            )
        }
    }
}

/// nc's test: a TCP connect completed, or a UDP port sent no ICMP error.
fn succeeded(state: State) -> bool {
    matches!(state, State::Open | State::OpenFiltered)
}

/// Why a port failed, as `strerror` words it in nc's line.
fn reason(outcome: &Outcome) -> &str {
    match outcome.reason.as_ref() {
        "conn-refused" | "port-unreach" | "self-connect" => "Connection refused",
        "reset" => "Connection reset by peer",
        "no-response" => "Connection timed out",
        "host-unreach" => "No route to host",
        "net-unreach" => "Network is unreachable",
        "host-down" => "Host is down",
        "admin-prohibited" => "Permission denied",
        other => other,
    }
}

fn host_text(host: &Host) -> String {
    match host {
        Host::Ip(ip) => ip.to_string(),
        Host::Name(name) => name.clone(),
    }
}
