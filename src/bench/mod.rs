//! `netsmith bench`: a load generator whose figures can be trusted.
//!
//! - `bench echo`: C connections, messages of S bytes, `--pipeline N` in
//!   flight each; every byte that comes back is compared with what was sent.
//! - `bench stream`: P connections each sending as fast as they can while
//!   reading back (or `--send-only`); the returned stream is compared byte
//!   for byte with the sent one.
//! - `bench connect`: connections per second (connect, optionally send a
//!   request, read to EOF, close), connect time and time to first byte.
//! - `bench udp`: request/response datagrams: rate, loss, latency.
//!
//! Every failure is counted by kind (refused, reset, timeout, mismatch,
//! ...), never hidden: any error makes the exit status 1 unless
//! `--allow-errors`. Latencies go into HDR histograms (one per worker,
//! merged at the end, so no lock is taken per request).

mod report;
mod workloads;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::{Args, Subcommand};
use hdrhistogram::Histogram;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::cli::duration;
use crate::endpoint::{Endpoint, PortZero};
use crate::error::{Error, Result};
use crate::net::{Stream, dial};
use crate::services::Proto;

/// Arguments of `netsmith bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub workload: Workload,
}

/// The workloads.
#[derive(Debug, Subcommand)]
pub enum Workload {
    /// Round trips against an echo server: rate, MB/s, latency percentiles.
    Echo(EchoArgs),
    /// Bulk streams: MB/s each way, with the echoed stream checked.
    Stream(StreamArgs),
    /// Connections per second: connect, (send,) read to EOF, close.
    Connect(ConnectArgs),
    /// UDP request/response: rate, loss, latency.
    Udp(UdpArgs),
}

/// The most worker threads `--threads` may ask for: far more than any
/// machine has cores, and few enough that the runtime can start them all
/// (each thread reserves its stack).
pub const MAX_THREADS: u16 = 1024;

/// Flags every workload takes.
#[derive(Debug, Args, Clone)]
pub struct Common {
    /// The server: HOST:PORT, [IPv6]:PORT, unix:PATH (udp: HOST:PORT).
    #[arg(value_name = "TARGET")]
    pub target: String,
    /// How long to measure.
    #[arg(short = 'd', long, value_name = "DUR", value_parser = duration, default_value = "5s")]
    pub duration: Duration,
    /// Stop after this many requests (connections for `connect`) instead.
    #[arg(short = 'n', long, value_name = "COUNT")]
    pub count: Option<u64>,
    /// Run this long before measuring (not counted).
    #[arg(long, value_name = "DUR", value_parser = duration, default_value = "0s")]
    pub warmup: Duration,
    /// A request with no answer within DUR is an error of kind "timeout".
    #[arg(short = 'w', long = "timeout", value_name = "DUR", value_parser = crate::cli::timeout, default_value = "5s")]
    pub timeout: Duration,
    /// Worker threads (default: one per core; at most 1024).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=i64::from(MAX_THREADS)))]
    pub threads: Option<u16>,
    /// Print one JSON object with the results (on stdout).
    #[arg(long)]
    pub json: bool,
    /// Print one JSON object per interval while running, then the result.
    #[arg(long)]
    pub json_stream: bool,
    /// The interval of progress lines and --json-stream objects.
    #[arg(short = 'i', long, value_name = "DUR", value_parser = crate::cli::timeout, default_value = "1s")]
    pub interval: Duration,
    /// Exit 0 even if some requests failed.
    #[arg(long)]
    pub allow_errors: bool,
    /// Use IPv4 only (`-n` is the request count here, so names always resolve).
    #[arg(short = '4', conflicts_with = "ipv6")]
    pub ipv4: bool,
    /// Use IPv6 only.
    #[arg(short = '6')]
    pub ipv6: bool,
    #[command(flatten)]
    pub proxy: crate::proxy::ProxyArgs,
}

/// `bench echo`.
#[derive(Debug, Args)]
pub struct EchoArgs {
    #[command(flatten)]
    pub common: Common,
    /// Connections.
    #[arg(short = 'c', long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    pub connections: u32,
    /// Bytes per message.
    #[arg(short = 's', long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=16_777_216))]
    pub size: u32,
    /// Messages in flight per connection.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub pipeline: u32,
}

/// `bench stream`.
#[derive(Debug, Args)]
pub struct StreamArgs {
    #[command(flatten)]
    pub common: Common,
    /// Parallel connections.
    #[arg(short = 'P', long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub parallel: u32,
    /// Only send (for discard servers); nothing is read back or checked.
    #[arg(long)]
    pub send_only: bool,
}

/// `bench connect`.
#[derive(Debug, Args)]
pub struct ConnectArgs {
    #[command(flatten)]
    pub common: Common,
    /// Concurrent workers, each opening one connection after another.
    #[arg(short = 'c', long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    pub connections: u32,
    /// Send this request on each connection (then half-close) before reading.
    #[arg(long, value_name = "TEXT")]
    pub send: Option<String>,
}

/// `bench udp`.
#[derive(Debug, Args)]
pub struct UdpArgs {
    #[command(flatten)]
    pub common: Common,
    /// Clients, each with its own socket and one datagram in flight.
    #[arg(short = 'c', long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..))]
    pub clients: u32,
    /// Bytes per datagram.
    #[arg(short = 's', long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=65_507))]
    pub size: u32,
}

impl BenchArgs {
    /// Worker threads asked for, if any.
    pub fn threads(&self) -> Option<usize> {
        self.common().threads.map(usize::from)
    }

    fn common(&self) -> &Common {
        match &self.workload {
            Workload::Echo(a) => &a.common,
            Workload::Stream(a) => &a.common,
            Workload::Connect(a) => &a.common,
            Workload::Udp(a) => &a.common,
        }
    }
}

/// Worker threads a bench run should use (`--threads`, or one per core).
pub fn threads(args: &BenchArgs) -> usize {
    args.threads().unwrap_or_else(crate::runtime::cores).max(1)
}

/// Where the load goes.
#[derive(Clone, Debug)]
pub enum Target {
    Tcp(SocketAddr),
    Unix(PathBuf),
    /// A TCP target reached through a proxy (`--proxy`), at one of its
    /// addresses (resolved once).
    Proxied(SocketAddr, Arc<(crate::proxy::Proxy, Vec<SocketAddr>)>),
}

impl Target {
    /// Opens one stream connection.
    pub async fn connect(&self, timeout: Duration) -> std::result::Result<Stream, ErrorKind> {
        match self {
            Target::Tcp(addr) => {
                let s = dial::tcp(&addr.to_string(), &[*addr], None, timeout)
                    .await
                    .map_err(|e| ErrorKind::of_error(&e))?;
                let _ = s.set_nodelay(true);
                Ok(Stream::Tcp(s))
            }
            Target::Unix(path) => dial::unix(path).await.map_err(|e| ErrorKind::of_error(&e)),
            Target::Proxied(to, via) => {
                let (proxy, addrs) = &**via;
                match crate::proxy::probe(proxy, addrs, *to, timeout).await {
                    Ok(crate::proxy::Probe::Open(s)) => {
                        let _ = s.set_nodelay(true);
                        Ok(Stream::Tcp(s))
                    }
                    Ok(crate::proxy::Probe::Replied(5)) => Err(ErrorKind::Refused),
                    Ok(crate::proxy::Probe::Replied(_)) => Err(ErrorKind::Other),
                    Ok(crate::proxy::Probe::Silent) => Err(ErrorKind::Timeout),
                    Err(e) => Err(ErrorKind::of_error(&e)),
                }
            }
        }
    }
}

/// Why a request failed, as the report counts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ErrorKind {
    Refused,
    Reset,
    Timeout,
    /// The server closed before answering in full.
    Eof,
    /// The answer differed from what was sent.
    Mismatch,
    Other,
}

impl ErrorKind {
    /// The name used in reports and JSON.
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::Refused => "refused",
            ErrorKind::Reset => "reset",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Eof => "eof",
            ErrorKind::Mismatch => "mismatch",
            ErrorKind::Other => "other",
        }
    }

    /// Classifies an I/O error.
    pub fn of_io(e: &std::io::Error) -> Self {
        use std::io::ErrorKind as K;
        match e.kind() {
            K::ConnectionRefused => ErrorKind::Refused,
            K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe => ErrorKind::Reset,
            K::TimedOut => ErrorKind::Timeout,
            K::UnexpectedEof => ErrorKind::Eof,
            _ => ErrorKind::Other,
        }
    }

    fn of_error(e: &Error) -> Self {
        let text = e.to_string();
        if text.contains("refused") {
            ErrorKind::Refused
        } else if text.contains("timed out") {
            ErrorKind::Timeout
        } else if text.contains("reset") {
            ErrorKind::Reset
        } else {
            ErrorKind::Other
        }
    }
}

/// State shared by the workers of one run.
pub struct Run {
    /// Cancelled when the run is over.
    pub stop: CancellationToken,
    /// False during warmup: nothing is recorded.
    measuring: AtomicBool,
    /// Requests left in `-n` mode.
    remaining: Option<AtomicU64>,
    pub ops: AtomicU64,
    pub bytes_sent: AtomicU64,
    pub bytes_received: AtomicU64,
    errors: Mutex<BTreeMap<ErrorKind, u64>>,
    /// Per-request timeout.
    pub timeout: Duration,
}

impl Run {
    fn new(common: &Common, interrupt: &CancellationToken) -> Arc<Run> {
        Arc::new(Run {
            stop: interrupt.child_token(),
            measuring: AtomicBool::new(common.warmup.is_zero()),
            remaining: common.count.map(AtomicU64::new),
            ops: AtomicU64::new(0),
            bytes_sent: AtomicU64::new(0),
            bytes_received: AtomicU64::new(0),
            errors: Mutex::new(BTreeMap::new()),
            timeout: common.timeout,
        })
    }

    /// Whether results are being recorded (warmup is over).
    pub fn measuring(&self) -> bool {
        self.measuring.load(Ordering::Relaxed)
    }

    /// Claims one request; false when the run is over. In `-n` mode a
    /// worker that finds nothing left ends, and the run ends with its last
    /// worker, so every request claimed is also completed (or failed).
    pub fn claim(&self) -> bool {
        if self.stop.is_cancelled() {
            return false;
        }
        match &self.remaining {
            None => true,
            Some(left) if !self.measuring() => left.load(Ordering::Relaxed) > 0,
            Some(left) => left
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                .is_ok(),
        }
    }

    /// Records a completed request of `sent`/`received` bytes.
    pub fn done(&self, sent: u64, received: u64) {
        if self.measuring() {
            self.ops.fetch_add(1, Ordering::Relaxed);
            self.bytes_sent.fetch_add(sent, Ordering::Relaxed);
            self.bytes_received.fetch_add(received, Ordering::Relaxed);
        }
    }

    /// Records bytes moved outside of a request (streams).
    pub fn moved(&self, sent: u64, received: u64) {
        if self.measuring() {
            self.bytes_sent.fetch_add(sent, Ordering::Relaxed);
            self.bytes_received.fetch_add(received, Ordering::Relaxed);
        }
    }

    /// Records a failed request.
    pub fn error(&self, kind: ErrorKind) {
        if let Ok(mut e) = self.errors.lock() {
            *e.entry(kind).or_insert(0) += 1;
        }
    }

    fn error_counts(&self) -> BTreeMap<ErrorKind, u64> {
        self.errors.lock().map(|e| e.clone()).unwrap_or_default()
    }
}

/// A latency histogram in microseconds, 1 µs to 1 hour, 3 significant digits.
///
/// # Panics
/// Never: the bounds are constants the constructor accepts.
pub fn histogram() -> Histogram<u64> {
    // Constant bounds that satisfy the constructor's rules (low >= 1,
    // high >= 2 * low, 3 significant figures): it cannot fail.
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid constant histogram bounds")
}

/// Records `started.elapsed()` in `hist` if the run is measuring.
pub fn record(run: &Run, hist: &mut Histogram<u64>, started: Instant) {
    if run.measuring() {
        let us = started.elapsed().as_micros().max(1) as u64;
        let _ = hist.record(us.min(hist.high()));
    }
}

/// The most memory a bench run may give its own buffers and latency
/// histograms: 2 GiB. A load generator shares the machine with what it
/// measures, often the server itself; 2 GiB holds 10,000 echo connections
/// at the default sizes (each mostly its 184 KiB histogram) and refuses the
/// counts and sizes that used to end in the OOM killer or an abort.
pub const MEMORY_LIMIT: u64 = 2 << 30;

/// Bytes a worker holds besides its buffers and histograms: its task,
/// socket state and bookkeeping (an estimate, on the generous side).
const WORKER_OVERHEAD: u64 = 8 * 1024;

/// Descriptors kept back from the workers: stdio, the runtime, resolver.
const RESERVED_FDS: u64 = 32;

/// What one worker of `workload` costs: bytes of memory, and its name
/// for the message ("connections", "clients", ...).
fn worker_cost(workload: &Workload) -> (u64, u64, &'static str, &'static str) {
    let hist = (histogram().distinct_values() * std::mem::size_of::<u64>()) as u64;
    match workload {
        Workload::Echo(a) => (
            u64::from(a.connections),
            hist + u64::from(a.size) * (u64::from(a.pipeline) + 1) + WORKER_OVERHEAD,
            "-c",
            "connections",
        ),
        Workload::Stream(a) => (
            u64::from(a.parallel),
            hist + workloads::STREAM_CHUNK as u64 + WORKER_OVERHEAD,
            "-P",
            "connections",
        ),
        Workload::Connect(a) => (
            u64::from(a.connections),
            3 * hist + workloads::CONNECT_BUFFER as u64 + WORKER_OVERHEAD,
            "-c",
            "workers",
        ),
        Workload::Udp(a) => (
            u64::from(a.clients),
            hist + u64::from(a.size) + workloads::UDP_BUFFER as u64 + WORKER_OVERHEAD,
            "-c",
            "clients",
        ),
    }
}

/// Refuses up front (exit 2) a run that cannot fit: more workers than the
/// descriptor limit leaves sockets for, or more memory than
/// [`MEMORY_LIMIT`]. The message names the value and the largest that fits.
fn check_fits(workload: &Workload) -> Result<()> {
    let (count, each, flag, what) = worker_cost(workload);
    if let Workload::Echo(a) = workload
        && each > MEMORY_LIMIT
    {
        let fixed = each - u64::from(a.size) * (u64::from(a.pipeline) + 1);
        let pipeline = ((MEMORY_LIMIT - fixed) / u64::from(a.size)).saturating_sub(1);
        return Err(Error::usage(format!(
            "--pipeline {} with -s {}: one connection needs {} of buffers, more than \
             bench's {} limit: at most --pipeline {pipeline} at -s {}",
            a.pipeline,
            a.size,
            bytes(each),
            bytes(MEMORY_LIMIT),
            a.size
        )));
    }
    let limit = crate::net::raise_fd_limit();
    let open = std::fs::read_dir("/proc/self/fd").map_or(16, |d| d.count() as u64);
    let by_fds = limit.saturating_sub(open + RESERVED_FDS).max(1);
    let by_memory = (MEMORY_LIMIT / each).max(1);
    if count > by_fds.min(by_memory) {
        let reason = if by_fds <= by_memory {
            format!(
                "one descriptor each, and the descriptor limit ({limit}) leaves {by_fds}: \
                 at most {flag} {by_fds} (or raise ulimit -n)"
            )
        } else {
            format!(
                "{} each, {} in all, more than bench's {} limit: at most {flag} {by_memory}",
                bytes(each),
                bytes(count.saturating_mul(each)),
                bytes(MEMORY_LIMIT)
            )
        };
        return Err(Error::usage(format!(
            "{flag} {count}: {what} take {reason}"
        )));
    }
    Ok(())
}

/// A byte count in binary units, as the limits are stated.
fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Runs a bench command to completion and prints its report. Cancelling
/// `interrupt` (Ctrl-C) stops the run early: the results so far are
/// printed, then [`Error::Interrupted`].
pub async fn run(args: BenchArgs, quiet: bool, interrupt: CancellationToken) -> Result<()> {
    let common = args.common().clone();
    let outcome = measure(args, quiet, &interrupt).await?;
    crate::stdio::print(&outcome.text);
    if interrupt.is_cancelled() {
        return Err(Error::Interrupted);
    }
    if outcome.failed > 0 && !common.allow_errors {
        return Err(Error::Network {
            what: format!("bench {}", common.target),
            reason: format!(
                "{} requests failed ({}); --allow-errors to accept",
                outcome.failed, outcome.error_summary
            ),
        });
    }
    Ok(())
}

/// Runs a bench command to completion (or until `interrupt`) and returns
/// its report without printing it: what `run` prints, and what the Python
/// package's `bench_*` functions return. Failed requests are counted in
/// the report, not returned as an error.
pub async fn measure(
    args: BenchArgs,
    quiet: bool,
    interrupt: &CancellationToken,
) -> Result<report::Outcome> {
    check_fits(&args.workload)?;
    let common = args.common().clone();
    let target_proto = if matches!(args.workload, Workload::Udp(_)) {
        Proto::Udp
    } else {
        Proto::Tcp
    };
    let endpoint = Endpoint::parse(&common.target, target_proto, PortZero::Refused)?;
    let resolve = crate::cli::FamilyArgs {
        ipv4: common.ipv4,
        ipv6: common.ipv6,
        numeric: false,
    }
    .resolve();
    let proxy = common.proxy.proxy()?;
    if proxy.is_some() && (target_proto == Proto::Udp || matches!(endpoint, Endpoint::Unix { .. }))
    {
        return Err(Error::usage(format!(
            "\"{}\": --proxy carries TCP only: give a HOST:PORT target to bench echo, stream \
             or connect",
            common.target
        )));
    }
    let target = match &endpoint {
        Endpoint::Inet { host, port, .. } => {
            let addrs = resolve.addrs(host, *port).await?;
            match proxy {
                Some(proxy) => {
                    let at = proxy.addrs(&resolve).await?;
                    Target::Proxied(addrs[0], Arc::new((proxy, at)))
                }
                None => Target::Tcp(addrs[0]),
            }
        }
        Endpoint::Unix {
            path,
            datagram: false,
        } if target_proto == Proto::Tcp => Target::Unix(path.clone()),
        Endpoint::Unix { .. } => {
            return Err(Error::usage(format!(
                "\"{}\": bench udp needs HOST:PORT; the others take HOST:PORT or unix:PATH",
                common.target
            )));
        }
    };
    let run = Run::new(&common, interrupt);
    let label = match &args.workload {
        Workload::Echo(a) => format!(
            "echo, {} connections, {} B messages, pipeline {}",
            a.connections, a.size, a.pipeline
        ),
        Workload::Stream(a) => format!(
            "stream, {} connections{}",
            a.parallel,
            if a.send_only { ", send only" } else { "" }
        ),
        Workload::Connect(a) => format!("connect, {} workers", a.connections),
        Workload::Udp(a) => format!("udp, {} clients, {} B datagrams", a.clients, a.size),
    };
    let workers = workloads::start(&args.workload, &target, &run);
    report::drive(&run, &common, workers, &label, quiet).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn workload(args: &[&str]) -> Workload {
        #[derive(Parser)]
        struct Top {
            #[command(subcommand)]
            w: Workload,
        }
        Top::try_parse_from(std::iter::once("bench").chain(args.iter().copied()))
            .unwrap()
            .w
    }

    #[test]
    fn hardening_11_huge_counts_are_refused_naming_what_fits() {
        let err = check_fits(&workload(&["echo", "x:1", "-c", "99999999"])).unwrap_err();
        let msg = err.to_string();
        assert_eq!(err.exit_code(), 2);
        assert!(msg.starts_with("-c 99999999: "), "{msg}");
        assert!(msg.contains("at most -c "), "{msg}");
        let err = check_fits(&workload(&["udp", "x:1", "-c", "4000000000"])).unwrap_err();
        assert!(err.to_string().contains("at most -c "), "{err}");
        assert!(check_fits(&workload(&["echo", "x:1", "-c", "10"])).is_ok());
        assert_eq!(bytes(MEMORY_LIMIT), "2.0 GiB");
    }
}
