//! `scan --proxy`: a connect scan through a SOCKS5 proxy. Each probe asks
//! the proxy to connect to one (host, port), and the proxy's reply code is
//! the port's state: granted is open, "connection refused" closed, "host"
//! or "network unreachable" unreachable, no answer within the timeout (or
//! "TTL expired", the proxy's own timeout) filtered.
//!
//! The proxy's own failures are not port states: a proxy that refuses us,
//! resets, or speaks another protocol ends the scan with exit 1, so a dead
//! proxy is never reported as 65,535 closed ports. Only SOCKS5 says why a
//! connect failed; SOCKS4 and HTTP CONNECT say only yes or no, so they are
//! refused for scanning.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinSet;

use super::engine::{BANNER_MAX, Outcome, Plan, Scan, State};
use crate::error::{Error, Result};
use crate::proxy::{Kind, Probe, Proxy};

/// Probes in flight through the proxy at most: each is a connection the
/// proxy holds (a thread, for some), so far fewer than a direct scan's.
pub const WINDOW: usize = 64;
/// The timeout of each attempt unless `--timeout` says: the proxy's
/// connect plus its answer, on any network a proxy sits on.
pub const TIMEOUT: Duration = Duration::from_secs(3);

/// Checks that `proxy` can tell port states apart.
pub fn check(proxy: &Proxy) -> Result<()> {
    match proxy.kind {
        Kind::Socks5 | Kind::Socks5h => Ok(()),
        _ => Err(Error::usage(format!(
            "scan --proxy needs a socks5:// proxy, whose reply codes tell open from closed; \
             {proxy} says only yes or no"
        ))),
    }
}

/// Starts the scan: probes go through `proxy`, reached at `addrs`. The
/// handle's error is the proxy's own failure, if it failed.
pub fn start(
    plan: Arc<Plan>,
    proxy: Proxy,
    addrs: Vec<SocketAddr>,
) -> (Scan, tokio::task::JoinHandle<Result<()>>) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let stop = Arc::new(AtomicBool::new(false));
    let via = Arc::new((proxy, addrs));
    let driver = tokio::spawn(drive(plan, via, tx, Arc::clone(&stop)));
    (Scan::new(rx, stop), driver)
}

/// Launches probes, at most [`WINDOW`] at a time and `--rate` a second,
/// and sends each outcome as it lands.
async fn drive(
    plan: Arc<Plan>,
    via: Arc<(Proxy, Vec<SocketAddr>)>,
    tx: UnboundedSender<Vec<Outcome>>,
    stop: Arc<AtomicBool>,
) -> Result<()> {
    let window = plan.window.clamp(1, WINDOW);
    let pace = plan.rate.map(|r| Duration::from_secs_f64(1.0 / r));
    let mut next_launch = tokio::time::Instant::now();
    let mut probes = JoinSet::new();
    let mut next = 0;
    loop {
        while probes.len() < window && next < plan.jobs() && !stop.load(Ordering::Relaxed) {
            if let Some(pace) = pace {
                tokio::time::sleep_until(next_launch).await;
                next_launch += pace;
            }
            let addr = plan.job(next);
            next += 1;
            probes.spawn(port(Arc::clone(&plan), Arc::clone(&via), addr));
        }
        match probes.join_next().await {
            None => return Ok(()),
            Some(Ok(Ok(outcome))) => {
                let _ = tx.send(vec![outcome]);
            }
            Some(Ok(Err(e))) => return Err(e),
            Some(Err(e)) => {
                return Err(Error::Network {
                    what: "scan through the proxy".into(),
                    reason: format!("a probe failed: {e}"),
                });
            }
        }
    }
}

/// Probes one port, again after a timeout (`--retries`).
async fn port(
    plan: Arc<Plan>,
    via: Arc<(Proxy, Vec<SocketAddr>)>,
    addr: SocketAddr,
) -> Result<Outcome> {
    let (proxy, addrs) = &*via;
    let timeout = plan.fixed_timeout.unwrap_or(TIMEOUT);
    let mut tries = 0;
    loop {
        tries += 1;
        let sent = Instant::now();
        let answer = crate::proxy::probe(proxy, addrs, addr, timeout).await?;
        let rtt = sent.elapsed();
        let (state, reason): (State, &'static str) = match answer {
            Probe::Open(mut stream) => {
                let banner = match plan.banner {
                    Some(wait) => banner(&mut stream, wait).await,
                    None => None,
                };
                return Ok(outcome(
                    addr,
                    State::Open,
                    "proxy-granted",
                    Some(rtt),
                    banner,
                    tries,
                ));
            }
            Probe::Silent if tries <= plan.retries => continue,
            Probe::Silent => (State::Filtered, "no-response"),
            Probe::Replied(5) => (State::Closed, "proxy-conn-refused"),
            Probe::Replied(3) => (State::Unreachable, "proxy-net-unreach"),
            Probe::Replied(4) => (State::Unreachable, "proxy-host-unreach"),
            Probe::Replied(6) => (State::Filtered, "proxy-ttl-expired"),
            Probe::Replied(2) => (State::Filtered, "proxy-denied"),
            Probe::Replied(1) => (State::Filtered, "proxy-general-failure"),
            Probe::Replied(_) => (State::Undecided, "proxy-unknown-reply"),
        };
        let rtt = (state != State::Filtered).then_some(rtt);
        return Ok(outcome(addr, state, reason, rtt, None, tries));
    }
}

fn outcome(
    addr: SocketAddr,
    state: State,
    reason: &'static str,
    rtt: Option<Duration>,
    banner: Option<Vec<u8>>,
    tries: u8,
) -> Outcome {
    Outcome {
        ip: addr.ip(),
        port: addr.port(),
        state,
        reason: Cow::Borrowed(reason),
        rtt,
        banner,
        tries,
    }
}

/// What an open port says first within `wait`: up to a line, or
/// [`BANNER_MAX`] bytes.
async fn banner(stream: &mut tokio::net::TcpStream, wait: Duration) -> Option<Vec<u8>> {
    let mut said = Vec::new();
    let mut buf = [0u8; BANNER_MAX];
    let read = async {
        while said.len() < BANNER_MAX && !said.contains(&b'\n') {
            match stream.read(&mut buf[..BANNER_MAX - said.len()]).await {
                Ok(0) | Err(_) => break,
                Ok(n) => said.extend_from_slice(&buf[..n]),
            }
        }
    };
    let _ = tokio::time::timeout(wait, read).await;
    (!said.is_empty()).then_some(said)
}
