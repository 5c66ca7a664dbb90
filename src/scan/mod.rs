//! `netsmith scan`: a TCP connect scan (and UDP probes) that is fast,
//! exact, and safe by default.
//!
//! - [`targets`]: the target grammar (addresses, CIDR blocks, ranges,
//!   names) and the deduplicated host set.
//! - [`probes`]: the ranked port list and the UDP payloads.
//! - [`engine`]: the probe loops, one per core.
//! - [`proxied`]: the probes through a SOCKS5 proxy (`--proxy`).
//! - [`report`]: the table, `--json` and `--grep` outputs.
//!
//! The one rule a user cannot turn off by accident: nothing is sent to an
//! address outside loopback unless `--authorized` says the operator has
//! the network owner's written permission (the tutorials' warning, made
//! part of the tool).

mod check;
mod engine;
pub mod probes;
mod proxied;
mod report;
pub mod targets;

use std::collections::HashMap;
use std::io::{IsTerminal, Read};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;

use crate::cli::{FamilyArgs, timeout};
use crate::endpoint::{self, Host};
use crate::error::{Error, Result};
use crate::services::Proto;

pub use check::{Check, check};
pub use engine::{Outcome, Scan, State};
use targets::{Spec, Targets};

/// Probes in flight at most, whatever the descriptor limit: beyond this a
/// loopback scan gets no faster and a real network only more loss.
const MAX_WINDOW: usize = 32_768;
/// Descriptors kept back for everything else (stdio, the resolver, logs).
const RESERVED_FDS: u64 = 32;

/// `netsmith scan`.
#[derive(Debug, Args)]
#[command(after_help = "\
Scan only hosts you have written permission to scan. Loopback (127.0.0.0/8, ::1) is
always allowed; any other target needs --authorized.

States: open (the connect completed), closed (refused), filtered (no answer),
unreachable (an ICMP error or no route), open|filtered (UDP, no answer).
Through a SOCKS5 proxy (--proxy), the proxy's reply code gives the state, and
the targets are the proxy's neighbours: a proxy outside loopback needs --authorized.

Examples:
  netsmith scan 127.0.0.1                    the top ports of this host
  netsmith scan localhost -p- --all          every port, every state
  netsmith scan ::1 -p 22,80,8000-8100 --banner
  netsmith scan -u 127.0.0.1 -p 53,123,161   UDP
  netsmith scan 127.0.0.1 -p 1-1024 --proxy socks5://127.0.0.1:1080
  netsmith scan -iL hosts.txt --authorized --shard 2/4 --json")]
pub struct ScanArgs {
    /// Targets: addresses, CIDR blocks (10.1.2.0/24), ranges (10.1.2.3-40),
    /// host names; `-` reads targets from stdin.
    #[arg(value_name = "TARGET")]
    pub targets: Vec<String>,
    /// Read targets from FILE (also -iL FILE), several per line, `#` comments; `-` for stdin.
    #[arg(long = "input-list", value_name = "FILE")]
    pub input_list: Option<PathBuf>,
    /// Ports: 22,80,8000-8100, service names (http,ssh), `-` (-p-) for 1-65535.
    /// Default: the whole ranked list (see --top-ports).
    #[arg(short = 'p', long, value_name = "PORTS", allow_hyphen_values = true)]
    pub ports: Option<String>,
    /// The N most common ports, from netsmith's ranked list.
    #[arg(long, value_name = "N", conflicts_with = "ports")]
    pub top_ports: Option<usize>,
    /// UDP probes (open, closed by ICMP port unreachable, or open|filtered).
    #[arg(short = 'u', long)]
    pub udp: bool,
    /// A fixed per-attempt timeout; default: learned from the round trips
    /// measured, starting at 250ms.
    #[arg(long, value_name = "DUR", value_parser = timeout)]
    pub timeout: Option<Duration>,
    /// Retries for probes that timed out (never for answered ones).
    #[arg(long, value_name = "N", default_value_t = engine::DEFAULT_RETRIES)]
    pub retries: u8,
    /// At most N attempts per second.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub rate: Option<u32>,
    /// Start with a small window and halve it when answered hosts stop
    /// answering (for lossy or rate-limiting networks).
    #[arg(long)]
    pub adaptive: bool,
    /// Read what open ports say first and show it on one line.
    #[arg(long)]
    pub banner: bool,
    /// How long --banner waits for a port to speak.
    #[arg(long, value_name = "DUR", value_parser = timeout, default_value = "1s")]
    pub banner_wait: Duration,
    /// Show every port in every state, not only open ones.
    #[arg(long)]
    pub all: bool,
    /// One JSON object per port result as results land, then a summary object.
    #[arg(long, conflicts_with = "grep")]
    pub json: bool,
    /// One line per host, like nmap -oG.
    #[arg(long)]
    pub grep: bool,
    /// Affirm written permission to scan targets outside loopback.
    #[arg(long)]
    pub authorized: bool,
    /// Take share K of N (1 <= K <= N) of the (target, port) space, so that
    /// N machines together scan it once.
    #[arg(long, value_name = "K/N", value_parser = shard)]
    pub shard: Option<(u64, u64)>,
    /// Scan only the first address of each host name (default: all).
    #[arg(long)]
    pub first_address: bool,
    #[command(flatten)]
    pub family: FamilyArgs,
    #[command(flatten)]
    pub proxy: crate::proxy::ProxyArgs,
}

/// clap value parser for `--shard K/N`: returns it zero-based.
fn shard(text: &str) -> std::result::Result<(u64, u64), String> {
    let bad = || format!("\"{text}\" is not K/N with 1 <= K <= N, such as 1/4");
    let (k, n) = text.split_once('/').ok_or_else(bad)?;
    let (k, n): (u64, u64) = (k.parse().map_err(|_| bad())?, n.parse().map_err(|_| bad())?);
    if k == 0 || n == 0 || k > n {
        return Err(bad());
    }
    Ok((k - 1, n))
}

/// Runs a scan and prints its report.
pub async fn run(args: ScanArgs, quiet: bool) -> Result<()> {
    let proto = if args.udp { Proto::Udp } else { Proto::Tcp };
    let ports = match (&args.ports, args.top_ports) {
        (Some(list), _) => endpoint::parse_port_list(list, proto)?,
        (None, Some(n)) => probes::top(n)?,
        (None, None) => probes::top(probes::top_len())?,
    };
    let proxy = args.proxy.proxy()?;
    if let Some(proxy) = &proxy {
        proxied::check(proxy)?;
        if args.udp || args.adaptive {
            return Err(Error::usage(format!(
                "{} does not go through a proxy: SOCKS5 CONNECT carries TCP, paced by --rate",
                if args.udp { "-u" } else { "--adaptive" }
            )));
        }
    }
    let specs = read_specs(&args)?;
    let (targets, unresolved) = resolve(specs, &args).await?;
    authorize(&targets, args.authorized)?;
    let via = match proxy {
        Some(proxy) => {
            let addrs = proxy.addrs(&args.family.resolve()).await?;
            authorize_proxy(&proxy, &addrs, args.authorized)?;
            Some((proxy, addrs))
        }
        None => None,
    };
    let options = report::Options {
        format: if args.json {
            report::Format::Json
        } else if args.grep {
            report::Format::Grep
        } else {
            report::Format::Table
        },
        all: args.all,
        progress: !quiet && std::io::stdout().is_terminal() && std::io::stderr().is_terminal(),
    };
    let plan = plan(&args, targets, ports)?;
    let mut report = report::Report::new(Arc::clone(&plan), options);
    let started = Instant::now();
    let (mut scan, driver) = match via {
        Some((proxy, addrs)) => {
            let (scan, driver) = proxied::start(Arc::clone(&plan), proxy, addrs);
            (scan, Some(driver))
        }
        None => (
            engine::start(&plan).map_err(|e| Error::io("start the scan workers", &e))?,
            None,
        ),
    };
    while let Some(batch) = scan.outcomes.recv().await {
        report.add(batch);
    }
    // The proxy's own failure ends the scan, with no summary: the ports
    // not probed were not scanned.
    if let Some(driver) = driver {
        driver.await.unwrap_or_else(|e| {
            Err(Error::Network {
                what: "scan through the proxy".into(),
                reason: e.to_string(),
            })
        })?;
    }
    report.finish(started.elapsed());
    let undecided = report.count(State::Undecided);
    if undecided > 0 {
        return Err(Error::Network {
            what: "scan".into(),
            reason: format!(
                "{undecided} ports could not be probed (the reason is in each one's line); \
                 raise the descriptor limit (ulimit -n) or lower --rate"
            ),
        });
    }
    if unresolved > 0 {
        return Err(Error::Resolve(format!(
            "{unresolved} target name{} did not resolve (named above)",
            if unresolved == 1 { "" } else { "s" }
        )));
    }
    Ok(())
}

/// The scan's gate, for every command that scans: nothing goes to an
/// address outside loopback without `--authorized`.
fn authorize(targets: &Targets, authorized: bool) -> Result<()> {
    match targets.outside_loopback() {
        Some(ip) if !authorized => Err(Error::usage(format!(
            "refusing to scan {ip}: it is outside loopback (127.0.0.0/8, ::1). Scan only networks \
             whose owner gave you written permission, and say so with --authorized"
        ))),
        _ => Ok(()),
    }
}

/// Through a proxy, every target is reached from the proxy's host: its
/// "127.0.0.1" is its own loopback. So a proxy outside loopback puts every
/// target on another machine's network, which needs `--authorized` too.
fn authorize_proxy(
    proxy: &crate::proxy::Proxy,
    addrs: &[std::net::SocketAddr],
    authorized: bool,
) -> Result<()> {
    match addrs.iter().find(|a| !crate::net::is_loopback(a.ip())) {
        Some(a) if !authorized => Err(Error::usage(format!(
            "refusing to scan through {proxy}: it is at {}, outside loopback, so every target \
             is on its network. Scan only networks whose owner gave you written permission, \
             and say so with --authorized",
            a.ip()
        ))),
        _ => Ok(()),
    }
}

/// Targets from the command line, `-iL FILE`, and stdin (`-`).
fn read_specs(args: &ScanArgs) -> Result<Vec<Spec>> {
    let mut specs = Vec::new();
    let read = |path: Option<&PathBuf>| -> Result<String> {
        let mut text = String::new();
        match path {
            Some(p) if p.as_os_str() != "-" => {
                text = std::fs::read_to_string(p).map_err(|e| Error::Local {
                    what: format!("read target list {}", p.display()),
                    reason: crate::error::describe_io(&e),
                })?;
            }
            _ => {
                std::io::stdin()
                    .read_to_string(&mut text)
                    .map_err(|e| Error::stdin(&e))?;
            }
        }
        Ok(text)
    };
    for t in &args.targets {
        if t == "-" {
            specs.extend(targets::parse_list(&read(None)?)?);
        } else {
            specs.push(targets::parse(t)?);
        }
    }
    if let Some(path) = &args.input_list {
        specs.extend(targets::parse_list(&read(Some(path))?)?);
    }
    if specs.is_empty() {
        return Err(Error::usage(
            "no targets: give addresses, CIDR blocks, ranges or names (such as 127.0.0.1), \
             -iL FILE, or - for stdin",
        ));
    }
    Ok(specs)
}

/// Resolves names; returns the host set and how many names failed (each
/// named on stderr; the scan goes on without them, as nmap's does).
async fn resolve(specs: Vec<Spec>, args: &ScanArgs) -> Result<(Targets, usize)> {
    let resolve = args.family.resolve();
    let mut spans = Vec::new();
    let mut names = HashMap::new();
    let mut unresolved = 0;
    for spec in specs {
        match spec {
            Spec::Span(span) => {
                if !resolve.family.admits(span.first()) {
                    let v4 = span.first().is_ipv4();
                    return Err(Error::usage(format!(
                        "target {span} is IPv{}, but {} allows only IPv{}",
                        if v4 { 4 } else { 6 },
                        if v4 { "-6" } else { "-4" },
                        if v4 { 6 } else { 4 },
                    )));
                }
                spans.push(span);
            }
            Spec::Name(name) => match resolve.addrs(&Host::Name(name.clone()), 0).await {
                Ok(addrs) => {
                    let take = if args.first_address { 1 } else { addrs.len() };
                    for addr in addrs.into_iter().take(take) {
                        names.entry(addr.ip()).or_insert_with(|| name.clone());
                        spans.push(targets::Span::from(addr.ip()));
                    }
                }
                Err(err @ Error::Usage(_)) => return Err(err),
                Err(err) => {
                    eprintln!("netsmith: {}", crate::error::printable(&err.to_string()));
                    unresolved += 1;
                }
            },
        }
    }
    let targets = Targets::new(spans, names);
    if targets.is_empty() {
        return Err(Error::Resolve("no target resolved: nothing to scan".into()));
    }
    Ok((targets, unresolved))
}

/// The scan the flags ask for.
fn plan(args: &ScanArgs, targets: Targets, ports: Vec<u16>) -> Result<Arc<engine::Plan>> {
    let items = targets.len().saturating_mul(ports.len() as u128);
    if items > u128::from(u64::MAX / 2) {
        return Err(Error::usage(format!(
            "scan too large: {items} (host, port) pairs; narrow the targets or ports"
        )));
    }
    Ok(Arc::new(sized(engine::Plan {
        udp: args.udp,
        shard: args.shard.unwrap_or((0, 1)),
        fixed_timeout: args.timeout,
        retries: args.retries,
        rate: args.rate.map(f64::from),
        adaptive: args.adaptive,
        banner: args.banner.then_some(args.banner_wait),
        ..engine::Plan::new(targets, ports)
    })))
}

/// Scans `ips` on `ports` over TCP with the default settings, and returns
/// every port's outcome: the scan as a library call (the demo's scanner).
/// The loopback rule is the caller's to keep.
pub async fn scan(ips: &[IpAddr], ports: Vec<u16>) -> Result<Vec<Outcome>> {
    let targets = Targets::new(
        ips.iter().map(|&ip| targets::Span::from(ip)),
        HashMap::new(),
    );
    let plan = Arc::new(sized(engine::Plan::new(targets, ports)));
    let mut scan = engine::start(&plan).map_err(|e| Error::io("start the scan workers", &e))?;
    let mut all = Vec::new();
    while let Some(batch) = scan.outcomes.recv().await {
        all.extend(batch);
    }
    Ok(all)
}

/// Starts a TCP scan of `targets` (as the command line takes them:
/// addresses, blocks, ranges, names) on `ports` (a port list, `-` for
/// all), with the default settings and the command's gate: nothing
/// outside loopback without `authorized`. The outcomes arrive in batches
/// as they land (`netsmith.scan` in Python reads them one by one).
pub async fn start(targets: &[String], ports: &str, authorized: bool) -> Result<Scan> {
    let ports = endpoint::parse_port_list(ports, Proto::Tcp)?;
    let resolve = crate::net::Resolve::default();
    let mut spans = Vec::new();
    let mut names = HashMap::new();
    for text in targets {
        match targets::parse(text)? {
            Spec::Span(span) => spans.push(span),
            Spec::Name(name) => {
                for ip in resolve.answer(&Host::Name(name.clone())).await?.addrs {
                    names.entry(ip).or_insert_with(|| name.clone());
                    spans.push(targets::Span::from(ip));
                }
            }
        }
    }
    let targets = Targets::new(spans, names);
    if targets.is_empty() {
        return Err(Error::usage(
            "no targets: give addresses, blocks, ranges or names",
        ));
    }
    authorize(&targets, authorized)?;
    let plan = Arc::new(sized(engine::Plan::new(targets, ports)));
    engine::start(&plan).map_err(|e| Error::io("start the scan workers", &e))
}

/// The size of the ephemeral port range.
fn local_ports() -> usize {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|text| {
            let mut ends = text.split_whitespace().map(str::parse::<usize>);
            match (ends.next(), ends.next()) {
                (Some(Ok(lo)), Some(Ok(hi))) if hi >= lo => Some(hi - lo + 1),
                _ => None,
            }
        })
        .unwrap_or(28_232)
}

/// Sizes a scan: the window from the descriptor budget, one worker per
/// core that has enough work to share.
fn sized(mut plan: engine::Plan) -> engine::Plan {
    let limit = crate::net::raise_fd_limit();
    let open = std::fs::read_dir("/proc/self/fd").map_or(16, |d| d.count() as u64);
    let budget = limit.saturating_sub(open + RESERVED_FDS).max(1);
    plan.window = (budget as usize).min(MAX_WINDOW);
    // The table for as many probes in flight as this scan can have, grown
    // once, before the workers start.
    let in_flight = (plan.window as u64).min(plan.jobs());
    crate::net::reserve_fds((open + RESERVED_FDS + in_flight).min(limit.saturating_sub(1)));
    if plan.udp {
        // Each UDP probe holds a local port of its own (a TCP connect
        // shares one across destinations): keep some of the range free.
        plan.window = plan.window.min(local_ports() * 3 / 4).max(1);
    }
    // Asked only when there is work to share: the answer costs a look
    // at the cgroup files, a noticeable part of a small check's start-up.
    let shares = plan.jobs().div_ceil(4096) as usize;
    let cores = if shares > 1 {
        std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
    } else {
        1
    };
    plan.workers = cores.min(shares).min(plan.window).max(1);
    tracing::debug!(
        "scan: {} probes, window {} (descriptor limit {limit}), {} workers",
        plan.jobs(),
        plan.window,
        plan.workers
    );
    plan
}
