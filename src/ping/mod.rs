//! `netsmith ping`: ICMP echo (RFC 792, RFC 4443) for IPv4 and IPv6, or the
//! time a TCP connect takes (`--tcp PORT`), with the output iputils ping
//! users know: a line per reply (bytes, from, seq, ttl, time) and the
//! summary (transmitted, received, loss, min/avg/max/mdev).
//!
//! Replies are matched by identifier and sequence. A second reply to the
//! same request is a duplicate (`DUP!`) and a reply that comes after its
//! request's `-W` wait is late: both are shown and counted apart, never as
//! received. Ctrl-C ends the run with the summary; the exit status is then
//! ping's: 0 if any reply came, 1 if none.
//!
//! Try it: `netsmith ping -c 3 127.0.0.1`, `netsmith ping --tcp 22 localhost`.

pub mod icmp;
pub mod socket;

use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use clap::Args;
use serde_json::json;
use tokio::time::Instant;

use crate::cli::FamilyArgs;
use crate::duration::sleep_until;
use crate::endpoint::{self, PortZero};
use crate::error::{Error, Result};
use crate::net::dial;
use crate::services::Proto;
use socket::IcmpSocket;

/// iputils' floor on the interval for users other than root: anything
/// faster is a flood.
const MIN_USER_INTERVAL: Duration = Duration::from_millis(200);

/// Below this interval, requests are paced by their replies (`ping -f`'s
/// rule: as fast as they come back, or a hundred a second).
const FLOOD_GAP: Duration = Duration::from_millis(10);

/// The largest payload an IPv4 datagram can carry after the IP and ICMP
/// headers (65535 - 20 - 8).
const MAX_SIZE: u16 = 65507;

/// `netsmith ping`.
#[derive(Debug, Args)]
pub struct PingArgs {
    /// The host to ping: a name or an address.
    #[arg(value_name = "HOST")]
    pub host: String,
    /// Stop after COUNT requests (default: until Ctrl-C).
    #[arg(short = 'c', long, value_name = "COUNT",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,
    /// Time between requests (below 200ms only for root, as with iputils).
    #[arg(short = 'i', long, value_name = "DUR", default_value = "1s",
          value_parser = crate::cli::duration)]
    pub interval: Duration,
    /// How long to wait for each reply; a reply after that is "late".
    #[arg(short = 'W', long = "timeout", value_name = "DUR", default_value = "10s",
          value_parser = crate::cli::timeout)]
    pub timeout: Duration,
    /// Payload bytes per ICMP request (the ICMP message is 8 more).
    #[arg(short = 's', long = "size", value_name = "BYTES", default_value_t = 56,
          value_parser = clap::value_parser!(u16).range(..=i64::from(MAX_SIZE)))]
    pub size: u16,
    /// Ping a TCP port instead: time a connect (no privilege needed).
    #[arg(long, value_name = "PORT")]
    pub tcp: Option<String>,
    #[command(flatten)]
    pub family: FamilyArgs,
    #[command(flatten)]
    pub proxy: crate::proxy::ProxyArgs,
    /// Quiet: the header and the summary only, as ping -q.
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// One JSON object per reply and one for the summary.
    #[arg(long)]
    pub json: bool,
}

/// How output is written: text as iputils prints it, or JSON lines.
#[derive(Clone, Copy)]
struct Out {
    json: bool,
    /// `-q`: no line per reply, only the header and the summary.
    quiet: bool,
}

impl Out {
    /// A per-reply line (text) or object (JSON).
    fn event(self, text: impl FnOnce() -> String, json: impl FnOnce() -> serde_json::Value) {
        if self.quiet {
            return;
        }
        if self.json {
            crate::stdio::print(&format!("{}\n", json()));
        } else {
            crate::stdio::print(&format!("{}\n", text()));
        }
    }
}

/// The counts and round-trip times of a run.
#[derive(Default)]
struct Tally {
    transmitted: u64,
    received: u64,
    duplicates: u64,
    late: u64,
    errors: u64,
    min: f64,
    max: f64,
    sum: f64,
    sum2: f64,
}

impl Tally {
    /// A reply in time, `ms` after its request.
    fn reply(&mut self, ms: f64) {
        if self.received == 0 || ms < self.min {
            self.min = ms;
        }
        if ms > self.max {
            self.max = ms;
        }
        self.received += 1;
        self.sum += ms;
        self.sum2 += ms * ms;
    }

    fn loss_percent(&self) -> f64 {
        if self.transmitted == 0 {
            return 0.0;
        }
        (self.transmitted - self.received) as f64 * 100.0 / self.transmitted as f64
    }

    /// (min, avg, max, mdev) in ms; mdev as iputils computes it, the
    /// standard deviation sqrt(E[x²] - E[x]²).
    fn rtt(&self) -> Option<(f64, f64, f64, f64)> {
        if self.received == 0 {
            return None;
        }
        let n = self.received as f64;
        let avg = self.sum / n;
        let mdev = (self.sum2 / n - avg * avg).max(0.0).sqrt();
        Some((self.min, avg, self.max, mdev))
    }

    /// The summary in iputils' words; `what` heads it ("127.0.0.1 ping").
    fn text(&self, what: &str, elapsed: Duration, sent: &str, answered: &str) -> String {
        let mut s = format!(
            "\n--- {what} statistics ---\n{} {sent}, {} {answered}",
            self.transmitted, self.received
        );
        for (n, name) in [
            (self.duplicates, "duplicates"),
            (self.late, "late"),
            (self.errors, "errors"),
        ] {
            if n > 0 {
                let _ = write!(s, ", +{n} {name}");
            }
        }
        let _ = writeln!(
            s,
            ", {}% packet loss, time {}ms",
            fmt_g(self.loss_percent()),
            elapsed.as_millis()
        );
        if let Some((min, avg, max, mdev)) = self.rtt() {
            let _ = writeln!(
                s,
                "rtt min/avg/max/mdev = {min:.3}/{avg:.3}/{max:.3}/{mdev:.3} ms"
            );
        }
        s
    }

    fn json(&self, host: &str, to: &str, socket: &str, elapsed: Duration) -> serde_json::Value {
        let rtt = self.rtt();
        json!({
            "type": "summary",
            "host": host,
            "address": to,
            "socket": socket,
            "transmitted": self.transmitted,
            "received": self.received,
            "duplicates": self.duplicates,
            "late": self.late,
            "errors": self.errors,
            "loss_percent": self.loss_percent(),
            "time_ms": elapsed.as_millis() as u64,
            "min_ms": rtt.map(|r| r.0),
            "avg_ms": rtt.map(|r| r.1),
            "max_ms": rtt.map(|r| r.2),
            "mdev_ms": rtt.map(|r| r.3),
        })
    }
}

/// A percentage as C's `%g` prints it (iputils): 0, 50, 33.3333.
fn fmt_g(x: f64) -> String {
    let s = format!("{x:.4}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// A round-trip time as iputils prints it: three significant digits below
/// 100 ms, whole milliseconds above.
fn fmt_rtt(ms: f64) -> String {
    if ms >= 100.0 {
        format!("{ms:.0}")
    } else if ms >= 10.0 {
        format!("{ms:.1}")
    } else if ms >= 1.0 {
        format!("{ms:.2}")
    } else {
        format!("{ms:.3}")
    }
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Runs `ping` until its count is done or `stop` completes (Ctrl-C).
pub async fn run(args: PingArgs, quiet: bool, stop: impl Future<Output = ()>) -> Result<()> {
    if args.interval < MIN_USER_INTERVAL && !nix::unistd::geteuid().is_root() {
        return Err(Error::usage(format!(
            "interval \"{}\" is below 200ms, which only root may use (iputils ping refuses it too): \
             use -i 200ms or more",
            crate::duration::show(args.interval)
        )));
    }
    let port = args
        .tcp
        .as_deref()
        .map(|p| endpoint::parse_port(p, Proto::Tcp, PortZero::Refused))
        .transpose()?;
    let host = endpoint::parse_host(&args.host)?;
    let proxy = args.proxy.proxy()?;
    let out = Out {
        json: args.json,
        quiet: quiet || args.quiet,
    };
    let plan = Plan {
        host: args.host.clone(),
        count: args.count,
        interval: args.interval,
        timeout: args.timeout,
        out,
    };
    let resolve = args.family.resolve();
    match (port, proxy) {
        (Some(port), Some(proxy)) => {
            // The proxy resolves the name if its scheme says so: nothing
            // is looked up here that the proxy should look up.
            let target = Target::Proxied(proxy, resolve, host, port);
            tcp(&plan, target, stop).await
        }
        (Some(port), None) => {
            let ip = resolve.answer(&host).await?.addrs[0];
            tcp(&plan, Target::Direct(SocketAddr::new(ip, port)), stop).await
        }
        (None, Some(proxy)) => Err(Error::usage(format!(
            "--proxy {proxy} carries TCP connects, not ICMP: add --tcp PORT"
        ))),
        (None, None) => {
            let ip = resolve.answer(&host).await?.addrs[0];
            echo(&plan, ip, usize::from(args.size), stop).await
        }
    }
}

/// What a TCP ping connects to.
enum Target {
    Direct(SocketAddr),
    /// Through a proxy: the time is the connect to the proxy plus its
    /// handshake, which ends when the proxy has reached the target.
    Proxied(
        crate::proxy::Proxy,
        crate::net::Resolve,
        endpoint::Host,
        u16,
    ),
}

impl Target {
    async fn connect(&self, timeout: Duration) -> Result<()> {
        match self {
            Target::Direct(to) => dial::tcp(&to.to_string(), &[*to], None, timeout)
                .await
                .map(drop),
            Target::Proxied(proxy, resolve, host, port) => {
                crate::proxy::connect(proxy, resolve, (host, *port), None, timeout)
                    .await
                    .map(drop)
            }
        }
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Direct(to) => write!(f, "{to}"),
            Target::Proxied(proxy, _, host, port) => {
                let to = endpoint::Endpoint::Inet {
                    proto: Proto::Tcp,
                    host: host.clone(),
                    port: *port,
                };
                write!(f, "{to} through {proxy}")
            }
        }
    }
}

/// What a run is asked to do, whatever it pings with.
struct Plan {
    host: String,
    count: Option<u64>,
    interval: Duration,
    timeout: Duration,
    out: Out,
}

impl Plan {
    /// Whether request number `sent + 1` is still to be sent.
    fn more(&self, sent: u64) -> bool {
        self.count.is_none_or(|c| sent < c)
    }

    /// Prints the summary; the run's result is ping's exit status.
    fn finish(
        &self,
        tally: &Tally,
        to: &str,
        socket: &str,
        title: &str,
        words: (&str, &str),
        start: Instant,
    ) -> Result<()> {
        let elapsed = start.elapsed();
        if self.out.json {
            crate::stdio::print(&format!(
                "{}\n",
                tally.json(&self.host, to, socket, elapsed)
            ));
        } else {
            crate::stdio::print(&tally.text(title, elapsed, words.0, words.1));
        }
        if tally.received == 0 {
            return Err(Error::Silence(format!("no reply from {}", self.host)));
        }
        Ok(())
    }
}

/// Where an echo request stands.
#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Waiting,
    Answered,
    /// Its `-W` wait ended without a reply.
    Expired,
    /// An ICMP error came back for it.
    Failed,
}

struct Probe {
    sent: Instant,
    state: State,
}

/// What woke the loop.
enum Event {
    Stop,
    Tick,
    Packet(std::io::Result<socket::Received>),
}

/// The requests of an ICMP run and what became of them.
#[derive(Default)]
struct Requests {
    /// By sequence number; a number reused after 65536 requests replaces
    /// the old entry, so this never holds more than 65536.
    probes: HashMap<u16, Probe>,
    /// Deadlines in send order (the wait is the same for every request,
    /// so they are sorted); entries no longer waiting are skipped.
    deadlines: VecDeque<(Instant, u16)>,
    /// Requests still waiting for their reply.
    waiting: usize,
    tally: Tally,
}

impl Requests {
    /// Request `seq` went out at `now`.
    fn sent(&mut self, seq: u16, now: Instant, timeout: Duration) {
        self.probes.insert(
            seq,
            Probe {
                sent: now,
                state: State::Waiting,
            },
        );
        self.deadlines.push_back((now + timeout, seq));
        self.waiting += 1;
    }

    /// Ends the wait of every request whose deadline has passed.
    fn expire(&mut self, now: Instant) {
        while let Some(&(deadline, seq)) = self.deadlines.front() {
            if deadline > now {
                break;
            }
            self.deadlines.pop_front();
            if let Some(p) = self
                .probes
                .get_mut(&seq)
                .filter(|p| p.state == State::Waiting)
            {
                p.state = State::Expired;
                self.waiting -= 1;
            }
        }
    }

    /// Takes `first` and every packet queued behind it.
    fn drain(
        &mut self,
        sock: &IcmpSocket,
        buf: &mut [u8],
        first: std::io::Result<socket::Received>,
        size: usize,
        out: Out,
    ) -> Result<()> {
        let raw_v4 = sock.kind == socket::Kind::Raw && !sock.v6;
        let mut got = first;
        loop {
            match got {
                Ok(packet) => {
                    let parsed = icmp::parse(sock.v6, raw_v4, &buf[..packet.len], size);
                    if parsed.id() == Some(sock.id) {
                        self.packet(parsed, &packet, Instant::now(), out);
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(Error::io("receive ICMP", &e)),
            }
            got = sock.try_recv(buf);
        }
    }

    /// A packet for our identifier: prints its line and counts it.
    fn packet(&mut self, parsed: icmp::Parsed, got: &socket::Received, now: Instant, out: Out) {
        match parsed {
            icmp::Parsed::Reply {
                seq,
                len,
                intact,
                ttl,
                ..
            } => {
                let Some(probe) = self.probes.get_mut(&seq) else {
                    return;
                };
                let ms = millis(now - probe.sent);
                let mark = match probe.state {
                    State::Waiting => {
                        probe.state = State::Answered;
                        self.waiting -= 1;
                        self.tally.reply(ms);
                        ""
                    }
                    State::Answered => {
                        self.tally.duplicates += 1;
                        " (DUP!)"
                    }
                    State::Expired | State::Failed => {
                        self.tally.late += 1;
                        " (late)"
                    }
                };
                let ttl = ttl.or(got.ttl);
                let bad = if intact { "" } else { " (wrong data)" };
                let from = got.from;
                out.event(
                    || {
                        let ttl = ttl.map(|t| format!(" ttl={t}")).unwrap_or_default();
                        let time = fmt_rtt(ms);
                        format!(
                            "{len} bytes from {from}: icmp_seq={seq}{ttl} time={time} ms{mark}{bad}"
                        )
                    },
                    || {
                        json!({
                            "type": "reply", "bytes": len, "from": from, "seq": seq,
                            "ttl": ttl, "time_ms": ms, "dup": mark == " (DUP!)",
                            "late": mark == " (late)", "intact": intact,
                        })
                    },
                );
            }
            icmp::Parsed::Error { seq, what, .. } => {
                let Some(probe) = self.probes.get_mut(&seq) else {
                    return;
                };
                if probe.state == State::Waiting {
                    probe.state = State::Failed;
                    self.waiting -= 1;
                }
                self.tally.errors += 1;
                let from = got.from;
                out.event(
                    || format!("From {from} icmp_seq={seq} {what}"),
                    || json!({ "type": "error", "from": from, "seq": seq, "error": what }),
                );
            }
            icmp::Parsed::Other => {}
        }
    }
}

/// ICMP echo to `ip`.
async fn echo(plan: &Plan, ip: IpAddr, size: usize, stop: impl Future<Output = ()>) -> Result<()> {
    let sock = IcmpSocket::open(ip)?;
    let out = plan.out;
    tracing::info!(socket = sock.kind.name(), id = sock.id, "ICMP socket open");
    if !out.json {
        let header = if sock.v6 {
            format!("PING {} ({ip}) {size} data bytes\n", plan.host)
        } else {
            format!(
                "PING {} ({ip}) {size}({}) bytes of data.\n",
                plan.host,
                size + 28
            )
        };
        crate::stdio::print(&header);
    }
    tokio::pin!(stop);
    let start = Instant::now();
    let mut reqs = Requests::default();
    let mut sent = 0u64;
    let mut next_send = start;
    let mut last_sent = start;
    let mut buf = vec![0u8; 65536 + 60];
    loop {
        // stdout's reader left (`ping | head -2`) or stdout failed: nothing
        // more can be shown (a failure other than EPIPE is the exit status).
        if crate::stdio::closed() {
            return Ok(());
        }
        let now = Instant::now();
        reqs.expire(now);
        // Faster than FLOOD_GAP, a request waits for the previous reply (or
        // FLOOD_GAP), as `ping -f` paces itself: requests sent in a burst
        // would queue behind one another and their times measure the queue.
        let send_at = if plan.interval < FLOOD_GAP && reqs.waiting > 0 {
            next_send.max(last_sent + FLOOD_GAP)
        } else {
            next_send
        };
        if plan.more(sent) && now >= send_at {
            // Replies already queued are read (and timed) before the next
            // request goes: with `-i 0` the requests would otherwise crowd
            // them out.
            let queued = sock.try_recv(&mut buf);
            reqs.drain(&sock, &mut buf, queued, size, out)?;
            sent += 1;
            let seq = sent as u16;
            let msg = icmp::echo_request(sock.v6, sock.id, seq, size);
            reqs.tally.transmitted += 1;
            match sock.send_to(&msg, ip).await {
                Ok(()) => {
                    last_sent = Instant::now();
                    reqs.sent(seq, last_sent, plan.timeout);
                }
                Err(e) if sent == 1 => return Err(Error::io(format!("ping {ip}"), &e)),
                Err(e) => {
                    reqs.tally.errors += 1;
                    let why = crate::error::describe_io(&e);
                    eprintln!("netsmith: ping {ip}: icmp_seq={seq}: {why}");
                }
            }
            // On to the select even when the next request is due at once
            // (`-i 0`): replies are read between requests, not after all.
            next_send += plan.interval;
        }
        if !plan.more(sent) && reqs.waiting == 0 {
            break;
        }
        let deadline = reqs.deadlines.front().map(|d| d.0);
        let event = tokio::select! {
            () = &mut stop => Event::Stop,
            () = tokio::time::sleep_until(send_at), if plan.more(sent) => Event::Tick,
            () = sleep_until(deadline) => Event::Tick,
            r = sock.recv(&mut buf) => Event::Packet(r),
        };
        match event {
            Event::Stop => break,
            Event::Tick => {}
            Event::Packet(first) => reqs.drain(&sock, &mut buf, first, size, out)?,
        }
    }
    plan.finish(
        &reqs.tally,
        &ip.to_string(),
        sock.kind.name(),
        &format!("{} ping", plan.host),
        ("packets transmitted", "received"),
        start,
    )
}

/// TCP connect ping to `to`: each probe is a connect, timed, then closed.
/// A refusal proves the host is up but is not a reply: it counts as an
/// error, as does any failure, and a connect not made within `-W` is lost.
async fn tcp(plan: &Plan, to: Target, stop: impl Future<Output = ()>) -> Result<()> {
    let out = plan.out;
    if !out.json {
        crate::stdio::print(&format!("TCP PING {} ({to})\n", plan.host));
    }
    let to = std::sync::Arc::new(to);
    let shown = to.to_string();
    tokio::pin!(stop);
    let start = Instant::now();
    let mut tally = Tally::default();
    let mut probes = tokio::task::JoinSet::new();
    let mut sent = 0u64;
    let mut next_send = start;
    loop {
        // As in the ICMP loop: no stdout, no point going on.
        if crate::stdio::closed() {
            return Ok(());
        }
        if plan.more(sent) && Instant::now() >= next_send {
            sent += 1;
            tally.transmitted += 1;
            let (seq, timeout, to) = (sent, plan.timeout, std::sync::Arc::clone(&to));
            probes.spawn(async move {
                let begun = Instant::now();
                let result = to.connect(timeout).await;
                (seq, result.map(|()| begun.elapsed()))
            });
            // On to the select even when the next request is due at once
            // (`-i 0`): replies are read between requests, not after all.
            next_send += plan.interval;
        }
        if !plan.more(sent) && probes.is_empty() {
            break;
        }
        let done = tokio::select! {
            () = &mut stop => break,
            () = tokio::time::sleep_until(next_send), if plan.more(sent) => continue,
            Some(done) = probes.join_next() => done,
        };
        let Ok((seq, result)) = done else {
            tally.errors += 1;
            continue;
        };
        match result {
            Ok(rtt) => {
                let ms = millis(rtt);
                tally.reply(ms);
                out.event(
                    || format!("connected to {shown}: seq={seq} time={} ms", fmt_rtt(ms)),
                    || json!({ "type": "reply", "from": shown, "seq": seq, "time_ms": ms }),
                );
            }
            Err(err) => {
                let reason = match err {
                    Error::Network { reason, .. } => reason,
                    other => other.to_string(),
                };
                if reason.starts_with("timed out") {
                    // Lost, as an unanswered echo is; said so, unlike ICMP,
                    // because a connect attempt ends with a verdict.
                } else {
                    tally.errors += 1;
                }
                out.event(
                    || format!("From {shown}: seq={seq} {reason}"),
                    || json!({ "type": "error", "from": shown, "seq": seq, "error": reason }),
                );
            }
        }
    }
    plan.finish(
        &tally,
        &shown,
        "tcp",
        &format!("{} tcp ping", plan.host),
        ("connects tried", "connected"),
        start,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_reads_like_iputils() {
        let mut t = Tally {
            transmitted: 3,
            ..Tally::default()
        };
        for ms in [1.0, 2.0, 3.0] {
            t.reply(ms);
        }
        t.duplicates = 1;
        let text = t.text(
            "127.0.0.1 ping",
            Duration::from_millis(2003),
            "packets transmitted",
            "received",
        );
        assert_eq!(
            text,
            "\n--- 127.0.0.1 ping statistics ---\n\
             3 packets transmitted, 3 received, +1 duplicates, 0% packet loss, time 2003ms\n\
             rtt min/avg/max/mdev = 1.000/2.000/3.000/0.816 ms\n"
        );
        let mut lost = Tally {
            transmitted: 3,
            ..Tally::default()
        };
        lost.reply(0.5);
        assert!(
            lost.text("h ping", Duration::ZERO, "packets transmitted", "received")
                .contains(", 66.6667% packet loss")
        );
        let none = Tally {
            transmitted: 2,
            ..Tally::default()
        };
        let text = none.text("h ping", Duration::ZERO, "packets transmitted", "received");
        assert!(
            text.contains("100% packet loss") && !text.contains("rtt"),
            "{text}"
        );
    }

    #[test]
    fn times_have_iputils_precision() {
        assert_eq!(fmt_rtt(0.0456), "0.046");
        assert_eq!(fmt_rtt(1.234_56), "1.23");
        assert_eq!(fmt_rtt(12.345), "12.3");
        assert_eq!(fmt_rtt(123.4), "123");
        assert_eq!(fmt_g(0.0), "0");
        assert_eq!(fmt_g(100.0), "100");
        assert_eq!(fmt_g(100.0 / 3.0), "33.3333");
    }
}
