//! What a scan prints: a table (open ports by default, `--all` for every
//! state), `--json` lines streamed as results land, or `--grep` lines in
//! nmap's -oG shape; a summary at the end; a progress bar on a terminal.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use serde::Serialize;

use super::engine::{Outcome, Plan, State};
use crate::services::{self, Proto};
use crate::stdio;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
    Grep,
}

#[derive(Clone, Copy, Debug)]
pub struct Options {
    pub format: Format,
    /// Show every state, not only open ports.
    pub all: bool,
    pub progress: bool,
}

/// The most hosts for which every host gets its own counts and lines.
const DETAIL_HOSTS: u128 = 4096;

const STATES: [State; 6] = [
    State::Open,
    State::Closed,
    State::Filtered,
    State::Unreachable,
    State::OpenFiltered,
    State::Undecided,
];

#[derive(Default)]
struct HostReport {
    counts: [u64; STATES.len()],
    shown: Vec<Outcome>,
}

/// Collects outcomes and prints them.
pub struct Report {
    plan: Arc<Plan>,
    options: Options,
    hosts: BTreeMap<IpAddr, HostReport>,
    /// Per-host counts of every state, for "not shown: 65530 closed": kept
    /// for scans of up to `DETAIL_HOSTS` hosts. Beyond that only hosts with
    /// something to show are kept, so a /8 costs no memory per silent host.
    detail: bool,
    counts: [u64; STATES.len()],
    bar: Option<ProgressBar>,
}

fn index(state: State) -> usize {
    STATES.iter().position(|&s| s == state).unwrap_or(0)
}

impl Report {
    pub fn new(plan: Arc<Plan>, options: Options) -> Self {
        let bar = options.progress.then(|| {
            let bar = ProgressBar::with_draw_target(
                Some(plan.jobs()),
                ProgressDrawTarget::stderr_with_hz(10),
            );
            if let Ok(style) = ProgressStyle::with_template(
                "scanning [{bar:30}] {human_pos}/{human_len} ports, {rate} ports/s, ETA {eta} {msg}",
            ) {
                bar.set_style(
                    style
                        .with_key("rate", |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                            let _ = write!(w, "{:.0}", state.per_sec());
                        })
                        .progress_chars("=> "),
                );
            }
            bar
        });
        Report {
            detail: plan.targets.len() <= DETAIL_HOSTS,
            plan,
            options,
            hosts: BTreeMap::new(),
            counts: [0; STATES.len()],
            bar,
        }
    }

    fn proto(&self) -> Proto {
        if self.plan.udp {
            Proto::Udp
        } else {
            Proto::Tcp
        }
    }

    /// Takes a batch of final outcomes; with `--json`, prints them now.
    pub fn add(&mut self, batch: Vec<Outcome>) {
        let mut json = String::new();
        let proto = self.proto();
        for outcome in batch {
            let i = index(outcome.state);
            self.counts[i] += 1;
            let shown = self.options.all || outcome.state == State::Open;
            if !shown && !self.detail {
                continue;
            }
            let host = self.hosts.entry(outcome.ip).or_default();
            if self.detail {
                host.counts[i] += 1;
            }
            if shown {
                if self.options.format == Format::Json {
                    json.push_str(&port_json(&self.plan, &outcome, proto));
                    json.push('\n');
                }
                host.shown.push(outcome);
            }
        }
        if !json.is_empty() {
            self.suspend(|| {
                stdio::print(&json);
            });
        }
        if let Some(bar) = &self.bar {
            bar.set_position(self.counts.iter().sum());
            let open = self.counts[index(State::Open)];
            if open > 0 {
                bar.set_message(format!("({open} open)"));
            }
        }
    }

    fn suspend(&self, f: impl FnOnce()) {
        match &self.bar {
            Some(bar) => bar.suspend(f),
            None => f(),
        }
    }

    /// How many ports ended in `state`.
    pub fn count(&self, state: State) -> u64 {
        self.counts[index(state)]
    }

    /// Prints the report (the table or grep lines) and the summary.
    pub fn finish(&mut self, elapsed: Duration) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        for host in self.hosts.values_mut() {
            host.shown.sort_unstable_by_key(|o| o.port);
        }
        let text = match self.options.format {
            Format::Table => self.table(elapsed),
            Format::Grep => self.grep(elapsed),
            Format::Json => {
                let mut line = serde_json::to_string(&self.summary(elapsed)).unwrap_or_default();
                line.push('\n');
                line
            }
        };
        stdio::print(&text);
    }

    fn summary(&self, elapsed: Duration) -> Summary {
        let c = |s| self.counts[index(s)];
        Summary {
            kind: "summary",
            hosts: self.plan.targets.len() as u64,
            ports: self.plan.ports.len() as u64,
            probed: self.counts.iter().sum(),
            open: c(State::Open),
            closed: c(State::Closed),
            filtered: c(State::Filtered),
            unreachable: c(State::Unreachable),
            open_filtered: c(State::OpenFiltered),
            undecided: c(State::Undecided),
            seconds: elapsed.as_secs_f64(),
        }
    }

    fn summary_line(&self, elapsed: Duration) -> String {
        let hosts = self.plan.targets.len();
        let ports = self.plan.ports.len();
        let mut line = format!(
            "scanned {hosts} host{}, {ports} {} port{} in {}:",
            plural(hosts),
            self.proto(),
            plural(ports),
            show_secs(elapsed),
        );
        let mut first = true;
        for (i, state) in STATES.iter().enumerate() {
            if self.counts[i] > 0 || *state == State::Open {
                let sep = if first { "" } else { "," };
                first = false;
                let _ = write!(line, "{sep} {} {}", self.counts[i], state.as_str());
            }
        }
        if self.plan.shard.1 > 1 {
            let _ = write!(
                line,
                " (shard {}/{})",
                self.plan.shard.0 + 1,
                self.plan.shard.1
            );
        }
        line.push('\n');
        line
    }

    fn table(&self, elapsed: Duration) -> String {
        let proto = self.proto();
        let mut out = String::new();
        for (ip, host) in &self.hosts {
            let title = self.host_title(*ip);
            if host.shown.is_empty() {
                let _ = writeln!(
                    out,
                    "{title}: no {} ports ({})",
                    if self.options.all { "" } else { "open" },
                    hidden(host, &[])
                );
                continue;
            }
            let _ = writeln!(out, "{title}");
            let width = |f: &dyn Fn(&Outcome) -> usize, title: &str| {
                host.shown.iter().map(f).max().unwrap_or(0).max(title.len())
            };
            let pw = width(&|o| o.port.to_string().len() + 4, "PORT");
            let stw = width(&|o| o.state.as_str().len(), "STATE");
            let sw = width(&|o| service(o.port, proto).len(), "SERVICE");
            let rw = width(&|o| o.reason.len(), "REASON");
            let banner = host.shown.iter().any(|o| o.banner.is_some());
            let header = format!(
                "{:<pw$}  {:<stw$}  {:<sw$}  {:<rw$}  {:>8}{}",
                "PORT",
                "STATE",
                "SERVICE",
                "REASON",
                "RTT",
                if banner { "  BANNER" } else { "" },
            );
            out.push_str(header.trim_end());
            out.push('\n');
            for o in &host.shown {
                let mut row = format!(
                    "{:<pw$}  {:<stw$}  {:<sw$}  {:<rw$}  {:>8}",
                    format!("{}/{proto}", o.port),
                    o.state.as_str(),
                    service(o.port, proto),
                    o.reason,
                    o.rtt.map(show_rtt).unwrap_or_default(),
                );
                if let Some(b) = &o.banner {
                    let _ = write!(row, "  {}", escape(b));
                }
                out.push_str(row.trim_end());
                out.push('\n');
            }
            let shown_states: Vec<State> = host.shown.iter().map(|o| o.state).collect();
            let rest = hidden(host, &shown_states);
            if !rest.is_empty() {
                let _ = writeln!(out, "not shown: {rest}");
            }
            out.push('\n');
        }
        out.push_str(&self.summary_line(elapsed));
        out
    }

    fn grep(&self, elapsed: Duration) -> String {
        let proto = self.proto();
        let mut out = String::new();
        for (ip, host) in &self.hosts {
            let name = self.plan.targets.name(*ip).unwrap_or_default();
            let ports: Vec<String> = host
                .shown
                .iter()
                .map(|o| {
                    let version = o.banner.as_deref().map(escape).unwrap_or_default();
                    format!(
                        "{}/{}/{proto}//{}//{}/",
                        o.port,
                        o.state.as_str(),
                        service(o.port, proto),
                        version.replace('/', "|").replace(',', ";"),
                    )
                })
                .collect();
            let _ = write!(out, "Host: {ip} ({name})\tPorts: {}", ports.join(", "));
            // nmap names the most common state it left out.
            let shown_states: Vec<State> = host.shown.iter().map(|o| o.state).collect();
            if let Some((i, n)) = host
                .counts
                .iter()
                .enumerate()
                .filter(|(i, n)| **n > 0 && !shown_states.contains(&STATES[*i]))
                .max_by_key(|(_, n)| **n)
            {
                let _ = write!(out, "\tIgnored State: {} ({n})", STATES[i].as_str());
            }
            out.push('\n');
        }
        let _ = write!(out, "# {}", self.summary_line(elapsed));
        out
    }

    fn host_title(&self, ip: IpAddr) -> String {
        match self.plan.targets.name(ip) {
            Some(name) => format!("{ip} ({name})"),
            None => ip.to_string(),
        }
    }
}

/// "65530 closed, 2 filtered": the states a host has that are not shown.
fn hidden(host: &HostReport, shown: &[State]) -> String {
    STATES
        .iter()
        .enumerate()
        .filter(|(i, s)| host.counts[*i] > 0 && !shown.contains(s))
        .map(|(i, s)| format!("{} {}", host.counts[i], s.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

fn plural(n: impl TryInto<u8>) -> &'static str {
    if n.try_into().ok() == Some(1) {
        ""
    } else {
        "s"
    }
}

fn service(port: u16, proto: Proto) -> &'static str {
    services::name_of(port, proto).unwrap_or("unknown")
}

fn show_secs(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{}ms", d.as_millis())
    } else {
        format!("{:.2}s", d.as_secs_f64())
    }
}

fn show_rtt(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1e3;
    if ms < 10.0 {
        format!("{ms:.2}ms")
    } else {
        format!("{ms:.0}ms")
    }
}

/// A banner on one line: printable ASCII as is, `\r \n \t \\` escaped,
/// any other byte as `\xNN`; the line ending it came with dropped.
pub fn escape(bytes: &[u8]) -> String {
    let trimmed = bytes
        .strip_suffix(b"\n")
        .map_or(bytes, |b| b.strip_suffix(b"\r").unwrap_or(b));
    crate::copy::escape_bytes(trimmed, None)
}

#[derive(Serialize)]
struct Summary {
    #[serde(rename = "type")]
    kind: &'static str,
    hosts: u64,
    ports: u64,
    probed: u64,
    open: u64,
    closed: u64,
    filtered: u64,
    unreachable: u64,
    open_filtered: u64,
    undecided: u64,
    seconds: f64,
}

#[derive(Serialize)]
struct PortJson<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    host: IpAddr,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    port: u16,
    proto: &'static str,
    state: &'static str,
    reason: &'a str,
    service: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    rtt_ms: Option<f64>,
    tries: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    banner: Option<String>,
}

fn port_json(plan: &Plan, o: &Outcome, proto: Proto) -> String {
    serde_json::to_string(&PortJson {
        kind: "port",
        host: o.ip,
        name: plan.targets.name(o.ip),
        port: o.port,
        proto: if proto == Proto::Udp { "udp" } else { "tcp" },
        state: o.state.as_str(),
        reason: &o.reason,
        service: service(o.port, proto),
        rtt_ms: o.rtt.map(|d| (d.as_secs_f64() * 1e6).round() / 1e3),
        tries: o.tries,
        banner: o.banner.as_deref().map(escape),
    })
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn banners_fit_on_one_line() {
        assert_eq!(escape(b"SSH-2.0-OpenSSH_9.2\r\n"), "SSH-2.0-OpenSSH_9.2");
        assert_eq!(escape(b"220 hi\r\nmore\n"), "220 hi\\r\\nmore");
        assert_eq!(escape(b"\x00\xff\t\\"), "\\x00\\xff\\t\\\\");
    }
}
