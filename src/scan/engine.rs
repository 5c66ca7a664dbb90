//! The probe engine: many non-blocking connects in flight, one event loop
//! per core.
//!
//! A scan is millions of tiny, identical operations: socket, connect, wait
//! for writability, read the result, close. A task per probe (tokio) or a
//! thread per batch (`RustScan`'s async-std) costs more than the probe, so
//! each worker is a plain mio loop over a slab of sockets, with a heap of
//! deadlines. Workers take probes from one shared cursor, so a slow host
//! never leaves a core idle.
//!
//! What makes it honest, not only fast:
//!
//! - The window is the descriptor budget, and EMFILE (or no free local port)
//!   is back-pressure: the probe waits and the window shrinks; nothing is
//!   reported for a port that was never tried.
//! - A connect whose source port equals its destination port connects to
//!   itself (TCP simultaneous open) and looks open; it is detected and the
//!   probe is tried again from another source port.
//! - Timeouts come from the round trips the scan measures (RFC 6298's
//!   estimator, per host), with a short first guess; retries wait twice as
//!   long each time, and, as in nmap, a host gets a second retry only once a
//!   first retry has ever been answered: so a host that drops everything
//!   costs two passes, not five.
//! - Every event is read before any deadline is judged, so a busy loop
//!   never mistakes its own lateness for a silent port.

use std::borrow::Cow;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::io::{self, Read};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use std::os::fd::{AsRawFd, RawFd};

use mio::net::UdpSocket;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use nix::errno::Errno;
use socket2::{Domain, Protocol, Socket, Type};

use super::targets::Targets;

/// The first timeout for a host no probe has heard from yet: nmap -T5's
/// initial guess. A wrong guess costs only a retry, which waits longer.
pub const INITIAL_TIMEOUT: Duration = Duration::from_millis(250);
/// Learned timeouts never go below this (nmap's default minimum).
pub const MIN_TIMEOUT: Duration = Duration::from_millis(100);
/// Nor above this.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(10);
/// Launches between two looks at the event queue, so that a big window
/// never delays the reading of answers.
const LAUNCH_BATCH: usize = 256;
/// The longest a worker sleeps without checking the stop flag.
const MAX_NAP: Duration = Duration::from_millis(100);
/// How long a worker keeps retrying a probe that cannot get a descriptor
/// or a local port while it has nothing else in flight.
const STARVED_FOR: Duration = Duration::from_secs(3);
/// Bytes of a banner kept.
pub(super) const BANNER_MAX: usize = 512;

/// What a probe found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum State {
    Open,
    Closed,
    Filtered,
    Unreachable,
    /// UDP without an answer: open, or filtered; no way to tell.
    OpenFiltered,
    /// The probe could not be made (a local failure that persisted).
    Undecided,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Open => "open",
            State::Closed => "closed",
            State::Filtered => "filtered",
            State::Unreachable => "unreachable",
            State::OpenFiltered => "open|filtered",
            State::Undecided => "undecided",
        }
    }
}

/// The final result for one (host, port).
#[derive(Clone, Debug)]
pub struct Outcome {
    pub ip: IpAddr,
    pub port: u16,
    pub state: State,
    /// Why: "syn-ack", "conn-refused", "no-response", "host-unreach", ...
    pub reason: Cow<'static, str>,
    /// Time from the connect (or send) to the answer, if there was one.
    pub rtt: Option<Duration>,
    /// What an open port said first (`--banner`).
    pub banner: Option<Vec<u8>>,
    /// Probes sent for this port.
    pub tries: u8,
}

/// Everything the workers need, shared read-only.
#[derive(Debug)]
pub struct Plan {
    pub targets: Targets,
    pub ports: Vec<u16>,
    pub udp: bool,
    /// `--shard K/N`, zero-based: this machine takes items `k, k+n, k+2n, ...`.
    pub shard: (u64, u64),
    /// `--timeout`: a fixed per-attempt timeout instead of learned ones.
    pub fixed_timeout: Option<Duration>,
    pub retries: u8,
    /// `--rate`: attempts per second, all workers together.
    pub rate: Option<f64>,
    pub adaptive: bool,
    /// `--banner`: how long to wait for an open port's first words.
    pub banner: Option<Duration>,
    /// The most probes in flight, all workers together.
    pub window: usize,
    pub workers: usize,
}

/// Retries for a probe that timed out, unless `--retries` says otherwise.
pub const DEFAULT_RETRIES: u8 = 2;

impl Plan {
    /// A TCP scan of `targets` on `ports` with the default settings, one
    /// probe at a time until the caller sizes the window and workers.
    pub fn new(targets: Targets, ports: Vec<u16>) -> Self {
        Plan {
            targets,
            ports,
            udp: false,
            shard: (0, 1),
            fixed_timeout: None,
            retries: DEFAULT_RETRIES,
            rate: None,
            adaptive: false,
            banner: None,
            window: 1,
            workers: 1,
        }
    }

    /// (host, port) items before sharding.
    pub fn items(&self) -> u128 {
        self.targets.len() * self.ports.len() as u128
    }

    /// Items this shard probes.
    pub fn jobs(&self) -> u64 {
        let (k, n) = self.shard;
        let total = self.items();
        // The caller refuses scans whose item count does not fit in u64.
        ((total + u128::from(n) - 1 - u128::from(k)) / u128::from(n)) as u64
    }

    /// Job `j` of this shard: hosts vary fastest, so consecutive probes go
    /// to different hosts and each host gets its share of the window.
    pub(super) fn job(&self, j: u64) -> SocketAddr {
        let (k, n) = self.shard;
        let item = u128::from(k) + u128::from(j) * u128::from(n);
        let hosts = self.targets.len();
        let ip = self.targets.get(item % hosts);
        SocketAddr::new(ip, self.ports[(item / hosts) as usize])
    }
}

/// A running scan: its workers send batches of outcomes until they are
/// done; dropping it stops them.
pub struct Scan {
    pub outcomes: tokio::sync::mpsc::UnboundedReceiver<Vec<Outcome>>,
    stop: Arc<AtomicBool>,
}

impl Scan {
    /// A scan whose outcomes come from `outcomes`, and whose probes stop
    /// launching once `stop` is set (when the scan is dropped).
    pub(super) fn new(
        outcomes: tokio::sync::mpsc::UnboundedReceiver<Vec<Outcome>>,
        stop: Arc<AtomicBool>,
    ) -> Scan {
        Scan { outcomes, stop }
    }
}

impl Drop for Scan {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Starts the workers.
pub fn start(plan: &Arc<Plan>) -> io::Result<Scan> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let stop = Arc::new(AtomicBool::new(false));
    let cursor = Arc::new(AtomicU64::new(0));
    let workers = plan.workers.max(1);
    for id in 0..workers {
        let window = plan.window / workers + usize::from(id < plan.window % workers);
        let worker = Worker::new(
            Arc::clone(plan),
            Arc::clone(&cursor),
            window.max(1),
            tx.clone(),
            Arc::clone(&stop),
        )?;
        std::thread::Builder::new()
            .name(format!("scan-{id}"))
            .spawn(move || worker.run())?;
    }
    Ok(Scan { outcomes: rx, stop })
}

/// One attempt at one (host, port).
#[derive(Clone, Copy, Debug)]
struct Probe {
    addr: SocketAddr,
    /// Zero for the first attempt.
    attempt: u8,
    self_connects: u8,
}

/// A probe's socket. TCP sockets outlive their probe: after a refused
/// connect, Linux lets the same socket connect again, which saves the
/// `socket()`, `close()` and epoll registration that would otherwise cost
/// more than the probe itself.
enum Sock {
    Tcp(Socket),
    Udp(UdpSocket),
}

impl Sock {
    fn fd(&self) -> RawFd {
        match self {
            Sock::Tcp(s) => s.as_raw_fd(),
            Sock::Udp(s) => s.as_raw_fd(),
        }
    }
}

enum Phase {
    Connecting,
    /// Open; reading the banner.
    Banner {
        rtt: Duration,
        buf: Vec<u8>,
    },
}

struct Active {
    probe: Probe,
    started: Instant,
    phase: Phase,
}

#[derive(Default)]
struct Slot {
    generation: u32,
    sock: Option<Sock>,
    active: Option<Active>,
}

/// What the scan has learned about one host.
#[derive(Clone, Copy, Debug, Default)]
struct HostStats {
    /// Smoothed round trip and its variation, in microseconds (RFC 6298).
    srtt: f64,
    rttvar: f64,
    samples: u32,
    /// The highest attempt number that ever got an answer.
    max_answered_attempt: u8,
}

impl HostStats {
    fn sample(&mut self, rtt: Duration, attempt: u8) {
        let r = rtt.as_secs_f64() * 1e6;
        if self.samples == 0 {
            self.srtt = r;
            self.rttvar = r / 2.0;
        } else {
            self.rttvar = 0.75 * self.rttvar + 0.25 * (self.srtt - r).abs();
            self.srtt = 0.875 * self.srtt + 0.125 * r;
        }
        self.samples += 1;
        self.max_answered_attempt = self.max_answered_attempt.max(attempt);
    }

    fn timeout(&self) -> Duration {
        if self.samples == 0 {
            return INITIAL_TIMEOUT;
        }
        Duration::from_micros((self.srtt + 4.0 * self.rttvar) as u64)
            .clamp(MIN_TIMEOUT, MAX_TIMEOUT)
    }
}

/// How a failed connect or send is taken.
enum Refusal {
    /// The port or path answered: a final state.
    Final(State, Cow<'static, str>),
    /// The local system is out of something (descriptors, ports, buffers):
    /// try again when a probe in flight finishes.
    Pressure(&'static str),
}

/// The errno of an I/O error (`UnknownErrno` for an error without one).
fn errno(err: &io::Error) -> Errno {
    Errno::from_raw(err.raw_os_error().unwrap_or(0))
}

fn classify(err: &io::Error) -> Refusal {
    use State::{Closed, Filtered, Undecided, Unreachable};
    match errno(err) {
        Errno::ECONNREFUSED => Refusal::Final(Closed, "conn-refused".into()),
        Errno::ECONNRESET => Refusal::Final(Closed, "reset".into()),
        Errno::ETIMEDOUT => Refusal::Final(Filtered, "no-response".into()),
        Errno::EHOSTUNREACH => Refusal::Final(Unreachable, "host-unreach".into()),
        Errno::ENETUNREACH => Refusal::Final(Unreachable, "net-unreach".into()),
        Errno::EHOSTDOWN => Refusal::Final(Unreachable, "host-down".into()),
        Errno::EACCES | Errno::EPERM => Refusal::Final(Filtered, "admin-prohibited".into()),
        Errno::EMFILE | Errno::ENFILE => Refusal::Pressure("out of file descriptors"),
        Errno::EADDRNOTAVAIL | Errno::EADDRINUSE => Refusal::Pressure("no free local port"),
        Errno::ENOBUFS | Errno::ENOMEM => Refusal::Pressure("out of socket buffers"),
        _ => Refusal::Final(Undecided, crate::error::describe_io(err).into()),
    }
}

/// A token bucket for `--rate`.
struct Bucket {
    per_sec: f64,
    tokens: f64,
    burst: f64,
    last: Instant,
}

impl Bucket {
    fn new(per_sec: f64) -> Self {
        let burst = (per_sec / 100.0).max(1.0);
        Bucket {
            per_sec,
            tokens: 1.0,
            burst,
            last: Instant::now(),
        }
    }

    /// Takes a token, or says how long until there is one.
    fn take(&mut self, now: Instant) -> Result<(), Duration> {
        self.tokens = (self.tokens + now.duration_since(self.last).as_secs_f64() * self.per_sec)
            .min(self.burst);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) / self.per_sec))
        }
    }
}

struct Worker {
    plan: Arc<Plan>,
    cursor: Arc<AtomicU64>,
    /// Jobs taken from the cursor and not yet launched.
    taken: std::ops::Range<u64>,
    poll: Poll,
    slots: Vec<Slot>,
    /// Slots holding an unconnected TCP socket, by family (IPv4, IPv6).
    idle: [Vec<usize>; 2],
    /// Slots without a socket.
    empty: Vec<usize>,
    deadlines: BinaryHeap<Reverse<(Instant, usize, u32)>>,
    /// Probes to launch before new jobs: retries, and probes put back by
    /// back-pressure.
    again: VecDeque<Probe>,
    hosts: HashMap<IpAddr, HostStats>,
    in_flight: usize,
    /// The most in flight this worker may have: its share of the budget.
    budget: usize,
    /// The current limit: below `budget` after back-pressure, and in
    /// `--adaptive` mode after timeouts.
    window: f64,
    last_backoff: Option<Instant>,
    /// Set while out of descriptors or ports with nothing in flight.
    starved_since: Option<Instant>,
    nap_until: Option<Instant>,
    bucket: Option<Bucket>,
    out: Vec<Outcome>,
    tx: tokio::sync::mpsc::UnboundedSender<Vec<Outcome>>,
    stop: Arc<AtomicBool>,
    buf: Vec<u8>,
}

impl Worker {
    fn new(
        plan: Arc<Plan>,
        cursor: Arc<AtomicU64>,
        budget: usize,
        tx: tokio::sync::mpsc::UnboundedSender<Vec<Outcome>>,
        stop: Arc<AtomicBool>,
    ) -> io::Result<Self> {
        let workers = plan.workers.max(1) as f64;
        let bucket = plan.rate.map(|r| Bucket::new(r / workers));
        let window = if plan.adaptive {
            budget.min(64) as f64
        } else {
            budget as f64
        };
        Ok(Worker {
            plan,
            cursor,
            taken: 0..0,
            poll: Poll::new()?,
            slots: Vec::new(),
            idle: [Vec::new(), Vec::new()],
            empty: Vec::new(),
            deadlines: BinaryHeap::new(),
            again: VecDeque::new(),
            hosts: HashMap::new(),
            in_flight: 0,
            budget,
            window,
            last_backoff: None,
            starved_since: None,
            nap_until: None,
            bucket,
            out: Vec::new(),
            tx,
            stop,
            buf: vec![0; BANNER_MAX],
        })
    }

    fn run(mut self) {
        let mut events = Events::with_capacity(1024);
        loop {
            if self.stop.load(Ordering::Relaxed) {
                return;
            }
            let wait = self.launch();
            if self.in_flight == 0 && self.again.is_empty() && wait.is_none() {
                self.flush();
                return;
            }
            let timeout = self.poll_timeout(wait);
            if let Err(err) = self.poll.poll(&mut events, Some(timeout))
                && err.kind() != io::ErrorKind::Interrupted
            {
                tracing::error!("scan worker: poll failed: {err}");
                return;
            }
            let mut count = 0;
            for event in &events {
                count += 1;
                self.on_event(event.token().0);
            }
            // A full batch of events means more may be waiting: read them
            // before judging any deadline.
            if count < events.capacity() {
                self.expire(Instant::now());
            }
            self.flush();
        }
    }

    /// Launches probes while the window, the rate and the descriptors allow.
    /// Returns `None` when there is nothing left to launch, or how long
    /// until launching may continue (zero: at once).
    fn launch(&mut self) -> Option<Duration> {
        let now = Instant::now();
        if let Some(until) = self.nap_until {
            if until > now {
                return Some(until - now);
            }
            self.nap_until = None;
        }
        for _ in 0..LAUNCH_BATCH {
            if self.in_flight >= self.window as usize {
                return Some(MAX_NAP);
            }
            let probe = self.next_probe()?;
            if let Some(bucket) = &mut self.bucket
                && let Err(wait) = bucket.take(now)
            {
                self.again.push_front(probe);
                return Some(wait);
            }
            match self.start(probe, now) {
                Ok(()) => self.starved_since = None,
                Err(Refusal::Final(state, reason)) => self.finish(probe, state, reason, None, None),
                Err(Refusal::Pressure(why)) => {
                    return Some(self.pressure(probe, why, now));
                }
            }
        }
        Some(Duration::ZERO)
    }

    fn next_probe(&mut self) -> Option<Probe> {
        if let Some(p) = self.again.pop_front() {
            return Some(p);
        }
        if self.taken.is_empty() {
            const CHUNK: u64 = 64;
            let total = self.plan.jobs();
            let from = self.cursor.fetch_add(CHUNK, Ordering::Relaxed);
            if from >= total {
                return None;
            }
            self.taken = from..(from + CHUNK).min(total);
        }
        let j = self.taken.next()?;
        Some(Probe {
            addr: self.plan.job(j),
            attempt: 0,
            self_connects: 0,
        })
    }

    /// Out of descriptors or local ports: the probe waits its turn, and the
    /// window shrinks to what the system gave us. With nothing in flight
    /// that could free one, wait a little; after `STARVED_FOR`, give the
    /// probe up as undecided rather than spin forever.
    fn pressure(&mut self, probe: Probe, why: &'static str, now: Instant) -> Duration {
        tracing::debug!("scan: {why} with {} in flight", self.in_flight);
        if self.in_flight > 0 {
            self.window = (self.in_flight as f64 * 0.9).max(1.0);
            self.again.push_front(probe);
            return MAX_NAP;
        }
        let since = *self.starved_since.get_or_insert(now);
        if now.duration_since(since) >= STARVED_FOR {
            self.finish(probe, State::Undecided, why.into(), None, None);
            return Duration::ZERO;
        }
        self.again.push_front(probe);
        let nap = Duration::from_millis(20);
        self.nap_until = Some(now + nap);
        nap
    }

    /// Launches one probe: on a TCP socket left idle by a refused probe of
    /// the same family if there is one, else on a new socket.
    fn start(&mut self, probe: Probe, now: Instant) -> Result<(), Refusal> {
        let family = usize::from(probe.addr.is_ipv6());
        let key = if self.plan.udp {
            None
        } else {
            self.idle[family].pop()
        };
        let key = key.or_else(|| self.empty.pop()).unwrap_or_else(|| {
            self.slots.push(Slot::default());
            self.slots.len() - 1
        });
        if self.slots[key].sock.is_none() {
            match self.open(key, probe.addr) {
                Ok(sock) => self.slots[key].sock = Some(sock),
                Err(err) => {
                    self.empty.push(key);
                    return Err(classify(&err));
                }
            }
        }
        let socket = match &self.slots[key].sock {
            Some(Sock::Tcp(socket)) => socket,
            Some(Sock::Udp(socket)) => {
                // A socket bound to the very port it probes would hear its
                // own datagram: try another source port, as for TCP.
                if socket.local_addr().ok() == Some(probe.addr) {
                    self.slots[key].sock = None;
                    self.empty.push(key);
                    return match self_connect(probe, &mut self.again) {
                        Some((state, reason)) => Err(Refusal::Final(state, reason.into())),
                        None => Ok(()),
                    };
                }
                if let Err(err) = socket.send(super::probes::udp_payload(probe.addr.port())) {
                    self.slots[key].sock = None;
                    self.empty.push(key);
                    return Err(classify(&err));
                }
                self.activate(key, probe, now);
                return Ok(());
            }
            None => unreachable!("a socket was just put in the slot"),
        };
        match socket.connect(&probe.addr.into()) {
            Err(err) if errno(&err) == Errno::EINPROGRESS => {
                self.activate(key, probe, now);
                Ok(())
            }
            // Connected at once (possible on loopback): the event loop
            // still hears of it and takes it from there.
            Ok(()) => {
                self.activate(key, probe, now);
                Ok(())
            }
            Err(err) => {
                // The socket is still unconnected and reusable.
                self.idle[family].push(key);
                Err(classify(&err))
            }
        }
    }

    /// A new socket for `addr`, registered with the poller under `key`;
    /// for UDP, with the probe datagram sent.
    fn open(&self, key: usize, addr: SocketAddr) -> io::Result<Sock> {
        let (sock, interest) = if self.plan.udp {
            (Sock::Udp(udp_probe(addr)?), Interest::READABLE)
        } else {
            let socket = Socket::new(
                Domain::for_address(addr),
                Type::STREAM.nonblocking(),
                Some(Protocol::TCP),
            )?;
            // Registered once for the socket's whole life: each connect's
            // end shows as writability (or an error, which epoll always
            // reports); readability is for banners.
            (Sock::Tcp(socket), Interest::WRITABLE | Interest::READABLE)
        };
        self.poll
            .registry()
            .register(&mut SourceFd(&sock.fd()), Token(key), interest)?;
        Ok(sock)
    }

    fn activate(&mut self, key: usize, probe: Probe, now: Instant) {
        let timeout = self.timeout(probe);
        let slot = &mut self.slots[key];
        slot.active = Some(Active {
            probe,
            started: now,
            phase: Phase::Connecting,
        });
        self.deadlines
            .push(Reverse((now + timeout, key, slot.generation)));
        self.in_flight += 1;
    }

    fn timeout(&self, probe: Probe) -> Duration {
        if let Some(fixed) = self.plan.fixed_timeout {
            return fixed;
        }
        let base = self
            .hosts
            .get(&probe.addr.ip())
            .map_or(INITIAL_TIMEOUT, HostStats::timeout);
        base.saturating_mul(1 << probe.attempt.min(6))
            .min(MAX_TIMEOUT)
    }

    fn poll_timeout(&self, launch_wait: Option<Duration>) -> Duration {
        let now = Instant::now();
        let mut timeout = launch_wait.unwrap_or(MAX_NAP).min(MAX_NAP);
        if let Some(Reverse((deadline, _, _))) = self.deadlines.peek() {
            timeout = timeout.min(deadline.saturating_duration_since(now));
        }
        timeout
    }

    /// Ends the slot's probe. A TCP socket whose connect was refused is
    /// kept for the next probe of its family (`reuse`); any other socket
    /// is closed.
    fn release(&mut self, key: usize, reuse: bool) -> Option<Active> {
        let slot = &mut self.slots[key];
        let active = slot.active.take()?;
        slot.generation = slot.generation.wrapping_add(1);
        self.in_flight -= 1;
        if reuse && matches!(slot.sock, Some(Sock::Tcp(_))) {
            self.idle[usize::from(active.probe.addr.is_ipv6())].push(key);
        } else {
            slot.sock = None;
            self.empty.push(key);
        }
        Some(active)
    }

    fn on_event(&mut self, key: usize) {
        let Some(Slot {
            active: Some(active),
            sock: Some(sock),
            ..
        }) = self.slots.get_mut(key)
        else {
            return;
        };
        let now = Instant::now();
        let rtt = now.duration_since(active.started);
        let probe = active.probe;
        match (sock, &mut active.phase) {
            (Sock::Tcp(socket), Phase::Connecting) => {
                // Connecting again is how to ask how the first connect
                // ended: EALREADY while pending, success (or EISCONN) once
                // connected, else the error, which also leaves the socket
                // unconnected and ready for the next probe.
                let result = match socket.connect(&probe.addr.into()) {
                    Ok(()) => Ok(()),
                    Err(e) if errno(&e) == Errno::EISCONN => Ok(()),
                    Err(e) if matches!(errno(&e), Errno::EALREADY | Errno::EINPROGRESS) => {
                        return;
                    }
                    Err(e) => Err(e),
                };
                let result = result.map(|()| socket.local_addr().ok().and_then(|a| a.as_socket()));
                self.connected(key, result, rtt, now);
            }
            (Sock::Tcp(socket), Phase::Banner { buf, .. }) => {
                if read_banner(socket, buf, &mut self.buf) {
                    self.banner_done(key);
                }
            }
            (Sock::Udp(socket), _) => match socket.recv(&mut self.buf) {
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
                result => {
                    self.answered(probe, rtt);
                    self.release(key, false);
                    let (state, reason) = match result.map_err(|e| classify(&e)) {
                        Ok(_) => (State::Open, "udp-response".into()),
                        Err(Refusal::Final(State::Closed, _)) => {
                            (State::Closed, "port-unreach".into())
                        }
                        Err(Refusal::Final(state, reason)) => (state, reason),
                        Err(Refusal::Pressure(why)) => (State::Undecided, why.into()),
                    };
                    self.finish(probe, state, reason, Some(rtt), None);
                }
            },
        }
    }

    /// A TCP connect ended: `Ok(local address)` or the error.
    fn connected(
        &mut self,
        key: usize,
        result: io::Result<Option<SocketAddr>>,
        rtt: Duration,
        now: Instant,
    ) {
        let probe = match &self.slots[key].active {
            Some(active) => active.probe,
            None => return,
        };
        match result {
            Ok(local) if local == Some(probe.addr) => {
                self.release(key, false);
                if let Some((state, reason)) = self_connect(probe, &mut self.again) {
                    self.finish(probe, state, reason.into(), Some(rtt), None);
                }
            }
            Ok(_) => {
                self.answered(probe, rtt);
                let Some(wait) = self.plan.banner else {
                    self.release(key, false);
                    self.finish(probe, State::Open, "syn-ack".into(), Some(rtt), None);
                    return;
                };
                // Keep the connection, now waiting to read; a new
                // generation retires the connect's deadline.
                let slot = &mut self.slots[key];
                slot.generation = slot.generation.wrapping_add(1);
                if let Some(active) = &mut slot.active {
                    active.phase = Phase::Banner {
                        rtt,
                        buf: Vec::new(),
                    };
                }
                self.deadlines
                    .push(Reverse((now + wait, key, slot.generation)));
                // The banner may have come with the handshake already.
                if let Some(Slot {
                    sock: Some(Sock::Tcp(socket)),
                    active:
                        Some(Active {
                            phase: Phase::Banner { buf, .. },
                            ..
                        }),
                    ..
                }) = self.slots.get_mut(key)
                    && read_banner(socket, buf, &mut self.buf)
                {
                    self.banner_done(key);
                }
            }
            Err(err) => {
                self.release(key, true);
                match classify(&err) {
                    Refusal::Final(state, reason) => {
                        self.answered(probe, rtt);
                        self.finish(probe, state, reason, Some(rtt), None);
                    }
                    Refusal::Pressure(why) => {
                        self.pressure(probe, why, now);
                    }
                }
            }
        }
    }

    fn banner_done(&mut self, key: usize) {
        if let Some(Active {
            probe,
            phase: Phase::Banner { rtt, buf },
            ..
        }) = self.release(key, false)
        {
            let banner = (!buf.is_empty()).then_some(buf);
            self.finish(probe, State::Open, "syn-ack".into(), Some(rtt), banner);
        }
    }

    /// The host answered a probe: learn from its round trip, and in
    /// adaptive mode open the window a little.
    fn answered(&mut self, probe: Probe, rtt: Duration) {
        self.hosts
            .entry(probe.addr.ip())
            .or_default()
            .sample(rtt, probe.attempt);
        if self.plan.adaptive && self.window < self.budget as f64 {
            self.window = (self.window + 1.0).min(self.budget as f64);
        } else if !self.plan.adaptive && self.window < self.budget as f64 {
            // Recovering from back-pressure.
            self.window = (self.window + 0.1).min(self.budget as f64);
        }
    }

    fn expire(&mut self, now: Instant) {
        while let Some(&Reverse((deadline, key, generation))) = self.deadlines.peek() {
            if deadline > now {
                break;
            }
            self.deadlines.pop();
            if self.slots[key].generation != generation {
                continue;
            }
            match &self.slots[key].active {
                Some(Active {
                    phase: Phase::Banner { .. },
                    ..
                }) => self.banner_done(key),
                Some(_) => {
                    // An ICMP error that arrived while connect() still held
                    // the socket (on a fast path it can come back within
                    // the call) is kept only as a "soft" error, which
                    // SO_ERROR reports: an answer after all.
                    let soft = match &self.slots[key].sock {
                        Some(Sock::Tcp(socket)) => socket.take_error().ok().flatten(),
                        _ => None,
                    };
                    // Close the socket (reusing it would need the connect
                    // aborted first).
                    let Some(active) = self.release(key, false) else {
                        continue;
                    };
                    match soft.as_ref().map(classify) {
                        Some(Refusal::Final(state, reason)) => {
                            self.finish(active.probe, state, reason, None, None);
                        }
                        _ => self.timed_out(active.probe, now),
                    }
                }
                None => {}
            }
        }
    }

    /// No answer in time: retry, or call it filtered.
    fn timed_out(&mut self, probe: Probe, now: Instant) {
        let stats = self
            .hosts
            .get(&probe.addr.ip())
            .copied()
            .unwrap_or_default();
        if self.plan.adaptive && stats.samples > 0 {
            // A host that answers others but not this one: maybe loss from
            // going too fast. Halve the window, once per timeout period.
            let period = stats.timeout();
            if self
                .last_backoff
                .is_none_or(|t| now.duration_since(t) >= period)
            {
                self.window = (self.window / 2.0).max(8.0);
                self.last_backoff = Some(now);
            }
        }
        let may_retry = probe.attempt < self.plan.retries
            && (probe.attempt == 0 || stats.max_answered_attempt >= probe.attempt);
        if may_retry {
            self.again.push_back(Probe {
                attempt: probe.attempt + 1,
                ..probe
            });
        } else {
            let silent = if self.plan.udp {
                State::OpenFiltered
            } else {
                State::Filtered
            };
            self.finish(probe, silent, "no-response".into(), None, None);
        }
    }

    fn finish(
        &mut self,
        probe: Probe,
        state: State,
        reason: Cow<'static, str>,
        rtt: Option<Duration>,
        banner: Option<Vec<u8>>,
    ) {
        self.out.push(Outcome {
            ip: probe.addr.ip(),
            port: probe.addr.port(),
            state,
            reason,
            rtt,
            banner,
            tries: probe.attempt + 1,
        });
    }

    fn flush(&mut self) {
        if !self.out.is_empty() && self.tx.send(std::mem::take(&mut self.out)).is_err() {
            // The reader is gone: the scan was dropped.
            self.stop.store(true, Ordering::Relaxed);
        }
    }
}

/// A probe whose socket got the probed address as its own (TCP connects
/// to itself, UDP hears itself): nothing listens there. It goes again from
/// another source port for a true answer; twice in a row is answer enough.
/// Returns the final state when there is one to report now.
fn self_connect(probe: Probe, again: &mut VecDeque<Probe>) -> Option<(State, &'static str)> {
    if probe.self_connects == 0 {
        again.push_front(Probe {
            self_connects: 1,
            ..probe
        });
        None
    } else {
        Some((State::Closed, "self-connect"))
    }
}

/// Reads what an open port says; true once the banner is complete (a
/// line, the buffer full, or the end of the stream).
fn read_banner(mut stream: &Socket, banner: &mut Vec<u8>, buf: &mut [u8]) -> bool {
    loop {
        let room = (BANNER_MAX - banner.len()).min(buf.len());
        match stream.read(&mut buf[..room]) {
            Ok(0) => return true,
            Ok(n) => {
                banner.extend_from_slice(&buf[..n]);
                if banner.len() >= BANNER_MAX || banner.contains(&b'\n') {
                    return true;
                }
            }
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => return false,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return true,
        }
    }
}

/// A connected UDP socket that has sent the probe for its port.
fn udp_probe(addr: SocketAddr) -> io::Result<UdpSocket> {
    use nix::sys::socket::{setsockopt, sockopt};
    let any = match addr {
        SocketAddr::V4(_) => SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
        SocketAddr::V6(_) => SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0),
    };
    let socket = UdpSocket::bind(any)?;
    // Without IP_RECVERR, Linux tells a UDP socket of ICMP port
    // unreachable only; with it, of host and network unreachable too.
    let recverr = if addr.is_ipv6() {
        setsockopt(&socket, sockopt::Ipv6RecvErr, &true)
    } else {
        setsockopt(&socket, sockopt::Ipv4RecvErr, &true)
    };
    recverr.map_err(io::Error::from)?;
    socket.connect(addr)?;
    Ok(socket)
}
