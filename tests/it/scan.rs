//! `netsmith scan` against ports whose state the test knows: its own
//! listeners, nftables rules that drop, reset or answer with ICMP, and the
//! kernel's refusals.
//!
//! Traffic goes only to loopback or to network namespaces the tests make
//! themselves. Each namespace is held by a small Python helper started under
//! `unshare` (its listeners bind port 0 and print the ports); commands run in
//! it through `nsenter`. The helper lives until its stdin closes, and
//! dropping it kills it, so a namespace ends with its test, failed or not,
//! and even when the test binary itself is killed. A test that must know
//! every open port runs in such a namespace, where only its own exist.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{ErrorKind, Write};
use std::net::{IpAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Deserialize;
use tempfile::TempDir;

use crate::util::{self, Output, Proc};

/// Holds a namespace: runs each `--setup` shell command, then makes the
/// sockets asked for (`--tcp ADDR` listens and never accepts, `--udp ADDR`
/// is a silent UDP socket, `--udp-echo ADDR` answers each datagram), prints
/// "sock KIND ADDR PORT" for each and "ready" on stderr, and waits for EOF
/// on stdin.
const NS_HELPER: &str = r#"
import socket, subprocess, sys, threading

def echo(s):
    while True:
        data, peer = s.recvfrom(65535)
        s.sendto(data, peer)

socks = []
args = sys.argv[1:]
for flag, val in zip(args[::2], args[1::2]):
    if flag == "--setup":
        subprocess.run(["sh", "-ec", val], check=True)
        continue
    fam = socket.AF_INET6 if ":" in val else socket.AF_INET
    kind = socket.SOCK_STREAM if flag == "--tcp" else socket.SOCK_DGRAM
    s = socket.socket(fam, kind)
    if fam == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    s.bind((val, 0))
    if flag == "--tcp":
        s.listen(128)
    elif flag == "--udp-echo":
        threading.Thread(target=echo, args=(s,), daemon=True).start()
    socks.append(s)
    print("sock", flag[2:], val, s.getsockname()[1], file=sys.stderr, flush=True)
print("ready", file=sys.stderr, flush=True)
sys.stdin.read()
"#;

/// A socket the helper made.
#[derive(Clone, Debug)]
struct Sock {
    kind: String,
    addr: IpAddr,
    port: u16,
}

/// A network namespace of the test's own, held by the helper (`ping`'s
/// tests use it too).
pub(crate) struct Netns {
    helper: Proc,
    pub(crate) pid: String,
    /// `unshare -m` too: commands enter the mount namespace as well.
    mount: bool,
    socks: Vec<Sock>,
}

impl Netns {
    /// A fresh network namespace (and mount namespace if `mount`) with
    /// loopback up, `setup` run in it, and the sockets `socks` listed as
    /// (flag, address) pairs for the helper.
    #[track_caller]
    pub(crate) fn start(mount: bool, setup: &[&str], socks: &[(&str, &str)]) -> Netns {
        for tool in ["unshare", "nsenter", "python3", "ip"] {
            util::require(tool);
        }
        let mut args: Vec<&str> = if mount { vec!["-m", "-n"] } else { vec!["-n"] };
        args.extend(["python3", "-c", NS_HELPER, "--setup", "ip link set lo up"]);
        for cmd in setup {
            args.extend(["--setup", cmd]);
        }
        for (flag, addr) in socks {
            args.extend([*flag, *addr]);
        }
        let mut helper = util::spawn_cmd("unshare", &args);
        let mut made = Vec::new();
        for _ in socks {
            let line = helper.wait_stderr("sock ");
            let f: Vec<&str> = line.split_whitespace().collect();
            assert_eq!(f.len(), 4, "helper said {line:?}");
            made.push(Sock {
                kind: f[1].to_string(),
                addr: f[2].parse().expect("helper socket address"),
                port: f[3].parse().expect("helper socket port"),
            });
        }
        helper.wait_stderr("ready");
        // unshare execs the helper, so its pid names the namespaces.
        let pid = helper.pid().to_string();
        Netns {
            helper,
            pid,
            mount,
            socks: made,
        }
    }

    /// Runs `program` inside the namespace.
    #[track_caller]
    pub(crate) fn cmd(&self, program: &str, args: &[&str], stdin: &[u8]) -> Output {
        let mut all = vec!["-t", self.pid.as_str(), "-n"];
        if self.mount {
            all.push("-m");
        }
        all.push(program);
        all.extend(args);
        util::run_cmd("nsenter", &all, stdin)
    }

    /// Runs a shell script inside the namespace; it must succeed.
    #[track_caller]
    pub(crate) fn sh(&self, script: &str) -> Output {
        let out = self.cmd("sh", &["-ec", script], b"");
        out.ok();
        out
    }

    /// Runs `netsmith ARGS` inside the namespace.
    #[track_caller]
    pub(crate) fn netsmith(&self, args: &[&str], stdin: &[u8]) -> Output {
        self.cmd(util::bin().to_str().unwrap(), args, stdin)
    }

    /// Starts `netsmith ARGS` inside the namespace (network only).
    pub(crate) fn spawn_netsmith(&self, args: &[&str]) -> Proc {
        let bin = util::bin();
        let mut all = vec!["-t", self.pid.as_str(), "-n", bin.to_str().unwrap()];
        all.extend(args);
        util::spawn_cmd("nsenter", &all)
    }

    /// Runs `netsmith scan ARGS` inside the namespace.
    #[track_caller]
    fn scan(&self, args: &[&str]) -> Output {
        let mut all = vec!["scan"];
        all.extend(args);
        self.netsmith(&all, b"")
    }

    /// The (address, port) of each socket of this kind.
    fn socks(&self, kind: &str) -> BTreeSet<(IpAddr, u16)> {
        self.socks
            .iter()
            .filter(|s| s.kind == kind)
            .map(|s| (s.addr, s.port))
            .collect()
    }

    /// The ports of the sockets of this kind.
    fn ports(&self, kind: &str) -> Vec<u16> {
        self.socks(kind).into_iter().map(|(_, p)| p).collect()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Closing stdin ends the helper; Proc's own Drop kills it anyway.
        self.helper.close_stdin();
    }
}

/// Makes the namespace's ephemeral ports (also those of port-0 binds) fall
/// in `range`, so that a short scan covers its listeners and its own
/// source ports.
fn port_range(from: u16, to: u16) -> String {
    format!("echo '{from} {to}' > /proc/sys/net/ipv4/ip_local_port_range")
}

/// One `--json` port line; every documented field, and no other.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PortLine {
    #[serde(rename = "type")]
    kind: String,
    host: IpAddr,
    name: Option<String>,
    port: u16,
    proto: String,
    state: String,
    reason: String,
    service: String,
    rtt_ms: Option<f64>,
    tries: u8,
    banner: Option<String>,
}

/// The `--json` summary line.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Summary {
    #[serde(rename = "type")]
    kind: String,
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

impl Summary {
    /// The count for a state as the table names it.
    fn count(&self, state: &str) -> u64 {
        match state {
            "open" => self.open,
            "closed" => self.closed,
            "filtered" => self.filtered,
            "unreachable" => self.unreachable,
            "open|filtered" => self.open_filtered,
            "undecided" => self.undecided,
            other => panic!("unknown state {other:?}"),
        }
    }
}

/// A whole `--json` report.
#[derive(Debug)]
struct Report {
    ports: Vec<PortLine>,
    summary: Summary,
}

impl Report {
    /// (host, port) to the line about it; each pair at most once.
    fn by_port(&self) -> BTreeMap<(IpAddr, u16), &PortLine> {
        let mut map = BTreeMap::new();
        for p in &self.ports {
            assert!(
                map.insert((p.host, p.port), p).is_none(),
                "{} port {} reported twice",
                p.host,
                p.port
            );
        }
        map
    }

    /// (host, port) of each line in `state`.
    fn in_state(&self, state: &str) -> BTreeSet<(IpAddr, u16)> {
        self.ports
            .iter()
            .filter(|p| p.state == state)
            .map(|p| (p.host, p.port))
            .collect()
    }

    /// The line about `host` port `port`.
    #[track_caller]
    fn port(&self, host: &str, port: u16) -> &PortLine {
        let host: IpAddr = host.parse().unwrap();
        self.ports
            .iter()
            .find(|p| p.host == host && p.port == port)
            .unwrap_or_else(|| panic!("no line for {host} port {port} in {:#?}", self.ports))
    }
}

/// Parses `--json` output: port lines, then exactly one summary, last.
#[track_caller]
fn report(out: &Output) -> Report {
    let text = out.out();
    let lines: Vec<&str> = text.lines().collect();
    let Some((last, ports)) = lines.split_last() else {
        panic!("no output\n{}", out.dump())
    };
    let summary: Summary = serde_json::from_str(last)
        .unwrap_or_else(|e| panic!("last line is not the summary: {e}\n{}", out.dump()));
    assert_eq!(summary.kind, "summary");
    let ports: Vec<PortLine> = ports
        .iter()
        .map(|l| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("bad port line {l:?}: {e}\n{}", out.dump()))
        })
        .collect();
    for p in &ports {
        assert_eq!(p.kind, "port", "{p:?}");
    }
    Report { ports, summary }
}

/// Asserts the summary's state counts, in the order open, closed,
/// filtered, unreachable, open|filtered, undecided.
#[track_caller]
fn assert_counts(s: &Summary, want: [u64; 6]) {
    let got = [
        s.open,
        s.closed,
        s.filtered,
        s.unreachable,
        s.open_filtered,
        s.undecided,
    ];
    assert_eq!(
        got, want,
        "counts (open, closed, filtered, unreachable, open|filtered, undecided) in {s:?}"
    );
    assert_eq!(s.probed, want.iter().sum::<u64>(), "{s:?}");
}

fn v4() -> IpAddr {
    "127.0.0.1".parse().unwrap()
}

fn v6() -> IpAddr {
    "::1".parse().unwrap()
}

fn list(ports: &[u16]) -> String {
    ports
        .iter()
        .map(u16::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// Every port of loopback in both families, in a fresh namespace
/// where the test's ten listeners are the only ones: exactly those are
/// open, and every other port is closed. The ephemeral range lies inside
/// 1-65535, so the scan's own source ports meet the ports it probes: a
/// self-connect taken for an open port would show here.
#[test]
fn full_scan_finds_exactly_its_own_listeners() {
    let mut socks = vec![("--tcp", "127.0.0.1"); 5];
    socks.extend([("--tcp", "::1"); 5]);
    let ns = Netns::start(false, &[], &socks);
    let out = ns.scan(&["127.0.0.1", "::1", "-p-", "--json"]);
    out.ok();
    let r = report(&out);
    assert_eq!(r.in_state("open"), ns.socks("tcp"), "{}", out.dump());
    // By default only open ports are shown.
    assert_eq!(r.ports.len(), 10, "{}", out.dump());
    for p in &r.ports {
        assert_eq!(
            (p.proto.as_str(), p.reason.as_str(), p.tries),
            ("tcp", "syn-ack", 1),
            "{p:?}"
        );
        assert!(p.rtt_ms.is_some_and(|ms| ms >= 0.0), "{p:?}");
        assert!(p.name.is_none() && p.banner.is_none(), "{p:?}");
    }
    let s = &r.summary;
    assert_eq!((s.hosts, s.ports), (2, 65535), "{s:?}");
    assert_counts(s, [10, 2 * 65535 - 10, 0, 0, 0, 0]);
}

/// With one ephemeral port, a connect to that port can only come from it:
/// the socket connects to itself (TCP simultaneous open). That is not a
/// listener, and the scan must say closed, not open. (The retry from
/// "another" port waits about a second for Linux to free the only one.)
#[test]
fn a_tcp_connect_to_itself_is_not_an_open_port() {
    let ns = Netns::start(false, &[&port_range(40000, 40000)], &[]);
    let out = ns.scan(&["127.0.0.1", "::1", "-p", "40000", "--all", "--json"]);
    out.ok();
    let r = report(&out);
    for host in ["127.0.0.1", "::1"] {
        let p = r.port(host, 40000);
        assert_eq!(
            (p.state.as_str(), p.reason.as_str()),
            ("closed", "self-connect"),
            "{}",
            out.dump()
        );
    }
    assert_counts(&r.summary, [0, 2, 0, 0, 0, 0]);
}

/// The UDP form of the same trap: a probe socket bound to the port it
/// probes receives its own datagram. Nothing listens there, so the port
/// must not be reported open.
#[test]
fn a_udp_probe_that_hears_itself_is_not_an_open_port() {
    let ns = Netns::start(false, &[&port_range(40000, 40000)], &[]);
    for host in ["127.0.0.1", "::1"] {
        let out = ns.scan(&[
            "-u",
            host,
            "-p",
            "40000",
            "--all",
            "--json",
            "--timeout",
            "200ms",
        ]);
        let r = report(&out);
        assert_ne!(
            r.port(host, 40000).state,
            "open",
            "nothing listens on udp port 40000; the probe heard its own datagram\n{}",
            out.dump()
        );
        assert_eq!(r.summary.open, 0, "{}", out.dump());
    }
}

/// Out of local ports, UDP probes wait for one, as TCP probes do; a
/// port is never left undecided for that. (Ten ephemeral ports for a
/// hundred probes; none of the probed ports is among them.)
#[test]
fn udp_probes_wait_for_a_free_source_port() {
    let ns = Netns::start(false, &[&port_range(40000, 40009)], &[]);
    for udp in [false, true] {
        let mut args = vec!["127.0.0.1", "-p", "1-100", "--all", "--json"];
        if udp {
            args.push("-u");
        }
        let out = ns.scan(&args);
        let r = report(&out);
        assert_counts(&r.summary, [0, 100, 0, 0, 0, 0]);
        out.ok();
    }
}

/// nftables rules in a target namespace, scanned from another over a veth
/// pair, by IPv4 and IPv6.
const TARGET_RULES: &str = "
table inet scantest {
  set seen4 { type ipv4_addr; flags dynamic; }
  chain in {
    type filter hook input priority 0;
    tcp dport 1001-1003 drop
    tcp dport 1011-1013 reject with tcp reset
    tcp dport 1021-1023 reject with icmpx type host-unreachable
    tcp dport 1031 reject with icmpx type port-unreachable
    tcp dport 1041 tcp flags syn ip saddr != @seen4 add @seen4 { ip saddr } drop
    udp dport 1051 drop
    udp dport 1061 reject with icmpx type host-unreachable
  }
}
";

/// The target's addresses in [`veth_pair`].
pub(crate) const T4: &str = "10.99.0.2";
pub(crate) const T6: &str = "fd00:99::2";

/// Two namespaces joined by a veth pair: a target ([`T4`], [`T6`]) with
/// [`TARGET_RULES`], two IPv4 and one IPv6 TCP listener and a UDP echo
/// socket, and a scanner (`10.99.0.1`, `fd00:99::1`) with no other route.
/// Returns (target, scanner).
fn veth_pair() -> (Netns, Netns) {
    util::require("nft");
    let rules = format!("nft -f - <<'EOF'\n{TARGET_RULES}\nEOF");
    let target = Netns::start(
        false,
        &[
            // ICMP errors must not be rate-limited for exact answers.
            "echo 0 > /proc/sys/net/ipv4/icmp_ratelimit",
            "echo 1000000 > /proc/sys/net/ipv4/icmp_msgs_per_sec",
            "echo 1000000 > /proc/sys/net/ipv4/icmp_msgs_burst",
            "echo 0 > /proc/sys/net/ipv6/icmp/ratelimit",
            &rules,
        ],
        &[
            ("--tcp", "0.0.0.0"),
            ("--tcp", "0.0.0.0"),
            ("--tcp", "::"),
            ("--udp-echo", "0.0.0.0"),
        ],
    );
    let scanner = Netns::start(false, &[], &[]);
    link_veth(&scanner, &target);
    (target, scanner)
}

/// Joins two namespaces with a veth pair: `near` gets 10.99.0.1 and
/// `fd00:99::1` on veth0, `far` gets [`T4`] and [`T6`] on veth1.
pub(crate) fn link_veth(near: &Netns, far: &Netns) {
    // Fixed MAC addresses and permanent neighbour entries: no ARP or
    // neighbour discovery (and no DAD) to wait for, so the first SYN of
    // the scan already goes out.
    let (mac1, mac2) = ("02:00:00:00:99:01", "02:00:00:00:99:02");
    let link = |ns: &Netns, dev: &str, me: &str, peer: &str, mac: &str| {
        ns.sh(&format!(
            "echo 0 > /proc/sys/net/ipv6/conf/{dev}/accept_dad
             ip addr add 10.99.0.{me}/24 dev {dev}
             ip -6 addr add fd00:99::{me}/64 dev {dev} nodad
             ip link set {dev} up
             ip neigh add 10.99.0.{peer} lladdr {mac} dev {dev} nud permanent
             ip -6 neigh add fd00:99::{peer} lladdr {mac} dev {dev} nud permanent"
        ))
    };
    near.sh(&format!(
        "ip link add veth0 address {mac1} type veth peer name veth1 address {mac2} netns {}",
        far.pid
    ));
    link(near, "veth0", "1", "2", mac2);
    link(far, "veth1", "2", "1", mac1);
}

/// Drop, reset and ICMP rules become filtered, closed and unreachable, by
/// IPv4 and IPv6, in one attempt of the fixed `--timeout`.
#[test]
fn filtered_closed_and_unreachable_across_a_veth_pair() {
    let (target, scanner) = veth_pair();
    let (t4, t6) = (T4, T6);
    let open4: Vec<u16> = target
        .socks("tcp")
        .iter()
        .filter(|(a, _)| a.is_ipv4())
        .map(|(_, p)| *p)
        .collect();
    let open6: Vec<u16> = target
        .socks("tcp")
        .iter()
        .filter(|(a, _)| a.is_ipv6())
        .map(|(_, p)| *p)
        .collect();
    let all_open: Vec<u16> = open4.iter().chain(&open6).copied().collect();
    let ports = format!("1001-1003,1011-1013,1021-1023,1031,{}", list(&all_open));

    // Every rule, both families, one attempt of 200ms.
    let out = scanner.scan(&[
        "--authorized",
        t4,
        t6,
        "-p",
        &ports,
        "--all",
        "--json",
        "--timeout",
        "200ms",
        "--retries",
        "0",
    ]);
    out.ok();
    let r = report(&out);
    for host in [t4, t6] {
        let open = if host == t4 { &open4 } else { &open6 };
        let mut want: Vec<(u16, &str, &str)> = Vec::new();
        want.extend((1001..=1003).map(|p| (p, "filtered", "no-response")));
        want.extend((1011..=1013).map(|p| (p, "closed", "conn-refused")));
        want.extend((1021..=1023).map(|p| (p, "unreachable", "host-unreach")));
        want.push((1031, "closed", "conn-refused"));
        for &p in &all_open {
            let state = if open.contains(&p) {
                (p, "open", "syn-ack")
            } else {
                (p, "closed", "conn-refused")
            };
            want.push(state);
        }
        for (port, state, reason) in want {
            let line = r.port(host, port);
            assert_eq!(
                (line.state.as_str(), line.reason.as_str(), line.tries),
                (state, reason, 1),
                "{host} port {port}\n{}",
                out.dump()
            );
            // An RTT for a SYN-ACK or a reset, none for silence. (An ICMP
            // error can come back while connect() still holds the socket;
            // Linux then keeps it as a soft error, which the scan reads
            // at the deadline, with no RTT.)
            let icmp = (1021..=1031).contains(&port);
            match state {
                "filtered" => assert_eq!(line.rtt_ms, None, "{line:?}"),
                _ if !icmp => assert!(line.rtt_ms.is_some(), "{line:?}"),
                _ => {}
            }
        }
    }
    let s = &r.summary;
    assert_eq!(s.probed, 2 * (10 + all_open.len() as u64), "{s:?}");
    assert!(
        (0.19..2.0).contains(&s.seconds),
        "one attempt of 200ms each should take about 200ms: {s:?}"
    );
}

/// `--timeout` fixes each attempt's wait, `--retries` counts the retries of
/// silent ports only, and a host gets a second retry only once one of its
/// retries has been answered.
#[test]
fn retries_are_for_silent_ports_and_earned_by_answers() {
    let (_target, scanner) = veth_pair();
    let t4 = T4;
    // Silent ports get `--retries` more attempts, each with the fixed wait.
    let silent = |retries: &str, ports: &str| {
        let out = scanner.scan(&[
            "--authorized",
            t4,
            "-p",
            ports,
            "--all",
            "--json",
            "--timeout",
            "200ms",
            "--retries",
            retries,
        ]);
        out.ok();
        report(&out)
    };
    let r = silent("1", "1001-1003,1011");
    for p in 1001..=1003 {
        assert_eq!(r.port(t4, p).tries, 2, "{:#?}", r.ports);
    }
    assert_eq!(r.port(t4, 1011).tries, 1, "answered ports are not retried");
    assert!(
        (0.39..3.0).contains(&r.summary.seconds),
        "two attempts of 200ms: {:?}",
        r.summary
    );

    // Two retries allowed, but this host never answered a retry: one.
    let r = silent("2", "1001-1003,1011");
    for p in 1001..=1003 {
        assert_eq!(r.port(t4, p).tries, 2, "{:#?}", r.ports);
    }
    // Port 1041 drops the first SYN from each source address and refuses
    // the next: an answered retry, which earns the silent ports a second.
    let r = silent("2", "1001-1003,1041");
    let p = r.port(t4, 1041);
    assert_eq!((p.state.as_str(), p.tries), ("closed", 2), "{p:?}");
    for p in 1001..=1003 {
        assert_eq!(r.port(t4, p).tries, 3, "{:#?}", r.ports);
    }
    assert!(
        (0.59..4.0).contains(&r.summary.seconds),
        "three attempts of 200ms: {:?}",
        r.summary
    );
}

/// UDP across the veth pair: an answer (open), ICMP port unreachable
/// (closed), ICMP host unreachable (unreachable: an ICMP error is an
/// answer, so not open|filtered), and silence (open|filtered).
#[test]
fn udp_answers_across_a_veth_pair() {
    let (target, scanner) = veth_pair();
    let echo = target.ports("udp-echo")[0];
    let out = scanner.scan(&[
        "-u",
        "--authorized",
        T4,
        "-p",
        &format!("1051,1061,1071,{echo}"),
        "--all",
        "--json",
        "--timeout",
        "200ms",
        "--retries",
        "0",
    ]);
    out.ok();
    let r = report(&out);
    for (port, state, reason) in [
        (1051, "open|filtered", "no-response"),
        (1071, "closed", "port-unreach"),
        (echo, "open", "udp-response"),
        (1061, "unreachable", "host-unreach"),
    ] {
        let line = r.port(T4, port);
        assert_eq!(
            (
                line.proto.as_str(),
                line.state.as_str(),
                line.reason.as_str()
            ),
            ("udp", state, reason),
            "{}",
            out.dump()
        );
    }
    assert_counts(&r.summary, [1, 1, 0, 1, 1, 0]);
}

/// Hosts file for the name tests.
const HOSTS: &str = "127.0.0.1 localhost
127.0.0.1 dual.test
::1 dual.test
192.0.2.7 outside.test
127.0.0.1 mixed.test
192.0.2.8 mixed.test
";

/// A namespace with its own /etc/hosts and a resolver on its own loopback
/// (where nothing answers), so no name lookup leaves it; `extra` runs
/// after the mounts.
fn names_namespace(dir: &TempDir, extra: &[&str], socks: &[(&str, &str)]) -> Netns {
    let hosts = dir.path().join("hosts");
    let resolv = dir.path().join("resolv.conf");
    std::fs::write(&hosts, HOSTS).unwrap();
    std::fs::write(
        &resolv,
        "nameserver 127.0.0.1\noptions attempts:1 timeout:1\n",
    )
    .unwrap();
    let mounts = format!(
        "mount --bind {} /etc/hosts; mount --bind {} /etc/resolv.conf",
        hosts.display(),
        resolv.display()
    );
    let mut setup = vec![mounts.as_str()];
    setup.extend(extra);
    Netns::start(true, &setup, socks)
}

/// Packets the namespace's nftables counter `name` has seen.
#[track_caller]
fn packets(ns: &Netns, name: &str) -> u64 {
    let out = ns.cmd("nft", &["list", "counter", "inet", "guard", name], b"");
    out.ok();
    let text = out.out();
    text.split_whitespace()
        .skip_while(|w| *w != "packets")
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no packet count in {text}"))
}

/// A target outside loopback without `--authorized`: exit 2, a message
/// that says why and what to add, and not one packet. The namespace has a
/// route for every address (into a veth pair of its own, where nftables
/// drops anything not for loopback), so a scan that went ahead would show
/// in the output counter of TCP and UDP packets to anywhere but loopback
/// (the kernel's own neighbour discovery on the new link is not counted).
#[test]
fn targets_outside_loopback_need_authorized_and_get_nothing() {
    util::require("nft");
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("targets");
    std::fs::write(&list, "127.0.0.1\n10.0.0.1 # not mine\n").unwrap();
    let ns = names_namespace(
        &dir,
        &[
            "ip link add d0 type veth peer name d1
             ip addr add 10.200.0.1/24 dev d0
             ip -6 addr add fd00:200::1/64 dev d0 nodad
             ip link set d0 up
             ip link set d1 up
             ip route add default dev d0
             ip -6 route add default dev d0",
            "nft -f - <<'EOF'
table inet guard {
  counter loopback { }
  counter outside { }
  chain out {
    type filter hook output priority 0;
    ip daddr 127.0.0.0/8 meta l4proto { tcp, udp } counter name \"loopback\" accept
    ip6 daddr ::1 meta l4proto { tcp, udp } counter name \"loopback\" accept
    meta l4proto { tcp, udp } counter name \"outside\" drop
    ip daddr != 127.0.0.0/8 drop
    ip6 daddr != ::1 drop
  }
}
EOF",
        ],
        &[("--tcp", "127.0.0.1")],
    );
    let port = ns.ports("tcp")[0].to_string();
    // The same hook counts a loopback scan's packets.
    let out = ns.scan(&["127.0.0.1", "-p", &port, "--json"]);
    out.ok();
    assert_eq!(report(&out).summary.open, 1, "{}", out.dump());
    assert!(
        packets(&ns, "loopback") > 0,
        "the hook missed a loopback scan"
    );

    let list = list.to_str().unwrap();
    let cases: &[(&[&str], &[u8], &str)] = &[
        (&["10.0.0.1", "-p", "80"], b"", "10.0.0.1"),
        (&["192.0.2.0/24", "-p", "80"], b"", "192.0.2.0"),
        (&["127.0.0.1", "10.0.0.1", "-p", "80"], b"", "10.0.0.1"),
        (&["127.255.255.254-128.0.0.1", "-p", "80"], b"", "128.0.0.0"),
        (&["fd00:200::9", "-p", "80"], b"", "fd00:200::9"),
        (&["::ffff:10.0.0.1", "-p", "80"], b"", "::ffff:10.0.0.1"),
        (&["outside.test", "-p", "80"], b"", "192.0.2.7"),
        (&["mixed.test", "-p", "80"], b"", "192.0.2.8"),
        (&["-iL", list, "-p", "80"], b"", "10.0.0.1"),
        (&["-", "-p", "80"], b"127.0.0.1 10.0.0.1\n", "10.0.0.1"),
        (&["10.0.0.1", "--top-ports", "10", "-u"], b"", "10.0.0.1"),
    ];
    for (args, stdin, addr) in cases {
        let mut all = vec!["scan"];
        all.extend(*args);
        let out = ns.netsmith(&all, stdin);
        out.code_is(2);
        for word in ["refusing to scan", *addr, "--authorized"] {
            assert!(out.stderr.contains(word), "lacks {word:?}\n{}", out.dump());
        }
        assert_eq!(out.stderr.lines().count(), 1, "{}", out.dump());
        assert!(out.stdout.is_empty(), "{}", out.dump());
    }
    assert_eq!(packets(&ns, "outside"), 0, "a refused scan sent packets");
}

/// Names scan every address they resolve to unless `-4`, `-6` or
/// `--first-address` say otherwise, and each line names the name; a name
/// that does not resolve is named on stderr, the others are scanned, and
/// the exit status is 1.
#[test]
fn names_resolve_to_each_address_and_a_bad_one_does_not_stop_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let ns = names_namespace(&dir, &[], &[("--tcp", "127.0.0.1")]);
    let port = ns.ports("tcp")[0];
    let p = port.to_string();
    let hosts = |args: &[&str]| -> BTreeMap<IpAddr, String> {
        let mut all = vec!["dual.test", "-p", &p, "--all", "--json"];
        all.extend(args);
        let out = ns.scan(&all);
        out.ok();
        report(&out)
            .ports
            .iter()
            .map(|l| {
                assert_eq!(l.name.as_deref(), Some("dual.test"), "{l:?}");
                assert_eq!(l.port, port);
                (l.host, l.state.clone())
            })
            .collect()
    };
    let both = hosts(&[]);
    assert_eq!(
        both,
        BTreeMap::from([(v4(), "open".into()), (v6(), "closed".into())])
    );
    assert_eq!(hosts(&["-4"]), BTreeMap::from([(v4(), "open".into())]));
    assert_eq!(hosts(&["-6"]), BTreeMap::from([(v6(), "closed".into())]));
    assert_eq!(hosts(&["--first-address"]).len(), 1);

    let out = ns.scan(&["nosuch.invalid", "dual.test", "-p", &p]);
    out.code_is(1);
    assert!(out.stderr.contains("nosuch.invalid"), "{}", out.dump());
    let text = out.out();
    assert!(
        text.contains("127.0.0.1 (dual.test)") && text.contains(&format!("{port}/tcp")),
        "{}",
        out.dump()
    );
    assert!(
        text.contains("scanned 2 hosts, 1 tcp port in "),
        "{}",
        out.dump()
    );

    let out = ns.scan(&["nosuch.invalid", "-p", &p]);
    out.code_is(1);
    assert!(out.stderr.contains("nosuch.invalid"), "{}", out.dump());
    assert!(out.stdout.is_empty(), "{}", out.dump());
}

/// One table: host titles, a header, rows, "not shown" lines, and the
/// summary line last.
#[derive(Debug, Default)]
struct Table {
    /// (host, port) to (state, service, reason).
    rows: BTreeMap<(IpAddr, u16), (String, String, String)>,
    /// The state counts of the summary line.
    counts: BTreeMap<String, u64>,
    summary: String,
}

#[track_caller]
fn table(out: &Output) -> Table {
    let text = out.out();
    let mut t = Table::default();
    let mut host = None;
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        if lines.peek().is_none() {
            assert!(line.starts_with("scanned "), "{}", out.dump());
            t.summary = line.to_string();
            let (_, counts) = line.split_once(": ").expect("counts after ': '");
            for part in counts.split(", ") {
                let (n, state) = part.split_once(' ').expect("N STATE");
                let state = state.split(" (shard").next().unwrap();
                t.counts.insert(state.to_string(), n.parse().unwrap());
            }
        } else if line.is_empty() || line.starts_with("not shown: ") {
        } else if line.starts_with("PORT ") {
            let cols: Vec<&str> = line.split_whitespace().collect();
            assert_eq!(cols[..5], ["PORT", "STATE", "SERVICE", "REASON", "RTT"]);
        } else if line.starts_with(|c: char| c.is_ascii_digit()) && line.contains('/') {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let port = cols[0].split('/').next().unwrap().parse().unwrap();
            let row = (cols[1].into(), cols[2].into(), cols[3].into());
            let host = host.unwrap_or_else(|| panic!("a row before a host\n{}", out.dump()));
            assert!(t.rows.insert((host, port), row).is_none(), "{line}");
        } else {
            // "ADDR", "ADDR (NAME)" or "ADDR: no open ports (...)".
            let title = line.split(": no ").next().unwrap();
            let title = title.split(' ').next().unwrap();
            host = Some(
                title
                    .parse()
                    .unwrap_or_else(|_| panic!("not a host title: {line:?}\n{}", out.dump())),
            );
        }
    }
    t
}

/// `--grep` lines: (host, port) to (state, service).
#[track_caller]
fn grep(out: &Output) -> BTreeMap<(IpAddr, u16), (String, String)> {
    let text = out.out();
    let mut map = BTreeMap::new();
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines.last().is_some_and(|l| l.starts_with("# scanned ")),
        "{}",
        out.dump()
    );
    for line in &lines[..lines.len() - 1] {
        let fields: Vec<&str> = line.split('\t').collect();
        let host = fields[0]
            .strip_prefix("Host: ")
            .and_then(|h| h.split(' ').next())
            .and_then(|h| h.parse().ok())
            .unwrap_or_else(|| panic!("bad grep line {line:?}"));
        let ports = fields[1].strip_prefix("Ports: ").expect("Ports:");
        for entry in ports.split(", ").filter(|e| !e.is_empty()) {
            let f: Vec<&str> = entry.split('/').collect();
            assert_eq!(f.len(), 8, "{entry:?}");
            let port = f[0].parse().unwrap();
            map.insert((host, port), (f[1].to_string(), f[4].to_string()));
        }
    }
    map
}

/// `--json`, the table and `--grep` tell the same story: the same ports in
/// the same states, open only by default, all with `--all`, and the same
/// totals.
#[test]
fn json_table_and_grep_agree() {
    let ns = Netns::start(
        false,
        &[&port_range(20000, 20999)],
        &[
            ("--tcp", "127.0.0.1"),
            ("--tcp", "127.0.0.1"),
            ("--tcp", "127.0.0.1"),
            ("--tcp", "::1"),
        ],
    );
    let listeners = ns.socks("tcp");
    let base = ["127.0.0.1", "::1", "-p", "19990-21009"];
    let run = |extra: &[&str]| {
        let mut args = base.to_vec();
        args.extend(extra);
        let out = ns.scan(&args);
        out.ok();
        out
    };
    for all in [false, true] {
        let flag: &[&str] = if all { &["--all"] } else { &[] };
        let json_out = run(&[flag, &["--json"]].concat());
        let j = report(&json_out);
        let t_out = run(flag);
        let t = table(&t_out);
        let g = grep(&run(&[flag, &["--grep"]].concat()));

        let from_json: BTreeMap<_, _> = j
            .ports
            .iter()
            .map(|p| {
                (
                    (p.host, p.port),
                    (p.state.clone(), p.service.clone(), p.reason.clone()),
                )
            })
            .collect();
        assert_eq!(from_json.len(), j.ports.len(), "a port twice");
        assert_eq!(t.rows, from_json, "table vs json\n{}", t_out.dump());
        let from_json_grep: BTreeMap<_, _> = from_json
            .iter()
            .map(|(k, (state, service, _))| (*k, (state.clone(), service.clone())))
            .collect();
        assert_eq!(g, from_json_grep, "grep vs json");

        assert_eq!(j.in_state("open"), listeners, "{}", json_out.dump());
        let shown = if all { 2 * 1020 } else { listeners.len() };
        assert_eq!(j.ports.len(), shown);
        assert_counts(&j.summary, [4, 2 * 1020 - 4, 0, 0, 0, 0]);
        for (state, n) in &t.counts {
            assert_eq!(*n, j.summary.count(state), "{}", t.summary);
        }
        assert!(
            t.summary.starts_with("scanned 2 hosts, 1020 tcp ports in "),
            "{}",
            t.summary
        );
    }
}

/// Port lists take names and ranges, each port once; `--top-ports N`
/// takes N ports of the ranked list, web first.
#[test]
fn port_lists_and_top_ports() {
    let ns = Netns::start(false, &[], &[]);
    let ports = |args: &[&str]| -> Vec<u16> {
        let mut all = vec!["127.0.0.1", "--all", "--json"];
        all.extend(args);
        let out = ns.scan(&all);
        out.ok();
        let r = report(&out);
        assert_eq!(r.summary.ports, r.ports.len() as u64, "{}", out.dump());
        let mut ports: Vec<u16> = r.ports.iter().map(|p| p.port).collect();
        ports.sort_unstable();
        ports
    };
    assert_eq!(ports(&["-p", "http,ssh,22,79-81"]), [22, 79, 80, 81]);
    assert_eq!(ports(&["-p", "65533-"]), [65533, 65534, 65535]);
    assert_eq!(ports(&["-p", "-3"]), [1, 2, 3]);
    let top = ports(&["--top-ports", "20"]);
    assert_eq!(top.len(), 20);
    assert!(top.contains(&80) && top.contains(&443), "{top:?}");
    let default = ports(&[]);
    assert!(
        default.len() > 20 && top.iter().all(|p| default.contains(p)),
        "the default is the whole ranked list: {default:?}"
    );
}

/// A listener on 127.0.0.1 that accepts until stopped (at most 10 s and 8
/// clients), sends each client `greeting`, and holds every connection open
/// until then, so a banner ends by its line or its length, not by EOF.
struct Talker {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Talker {
    fn new(greeting: &'static [u8]) -> Talker {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(10);
            let mut held: Vec<TcpStream> = Vec::new();
            while !flag.load(Ordering::Relaxed) && Instant::now() < deadline && held.len() < 8 {
                match listener.accept() {
                    Ok((mut s, _)) => {
                        let _ = s.write_all(greeting);
                        held.push(s);
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    Err(_) => break,
                }
            }
            while !flag.load(Ordering::Relaxed) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        Talker {
            port,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Talker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// `--banner` shows what a port says first, on one line: the line ending
/// dropped, control and non-ASCII bytes escaped, at most 512 bytes; a port
/// that says nothing within `--banner-wait` is open without a banner.
#[test]
fn banners_are_shown_escaped_on_one_line() {
    let ssh = Talker::new(b"SSH-2.0-test\r\n");
    let odd = Talker::new(b"a\x00b\tc\\d\xff/e\r\n");
    let silent = Talker::new(b"");
    let long = Talker::new(&[b'x'; 600]);
    let ports = list(&[ssh.port, odd.port, silent.port, long.port]);
    let scan = |format: &str| {
        let args = [
            "scan",
            "127.0.0.1",
            "-p",
            &ports,
            "--banner",
            "--banner-wait",
            "300ms",
            format,
        ];
        let out = util::run(&args, b"");
        out.ok();
        out
    };
    let out = scan("--json");
    let r = report(&out);
    let banner = |port| r.port("127.0.0.1", port).banner.clone();
    assert_eq!(banner(ssh.port).as_deref(), Some("SSH-2.0-test"));
    assert_eq!(banner(odd.port).as_deref(), Some(r"a\x00b\tc\\d\xff/e"));
    assert_eq!(banner(silent.port), None, "{}", out.dump());
    assert_eq!(banner(long.port), Some("x".repeat(512)));
    assert_counts(&r.summary, [4, 0, 0, 0, 0, 0]);

    let out = scan("--all");
    let text = out.out();
    let header = text.lines().find(|l| l.starts_with("PORT")).unwrap();
    assert!(header.ends_with("  BANNER"), "{}", out.dump());
    for (port, shown) in [
        (ssh.port, "SSH-2.0-test"),
        (odd.port, r"a\x00b\tc\\d\xff/e"),
    ] {
        let row = text
            .lines()
            .find(|l| l.starts_with(&format!("{port}/tcp ")))
            .unwrap_or_else(|| panic!("no row for {port}\n{}", out.dump()));
        assert!(row.ends_with(&format!("  {shown}")), "{row:?}");
    }
    assert_eq!(text.lines().filter(|l| l.contains('\0')).count(), 0);

    // In nmap's -oG version field, '/' would end the field.
    let out = scan("--grep");
    assert!(
        out.out().contains(&format!("{}/open/tcp//", odd.port))
            && out.out().contains(r"a\x00b\tc\\d\xff|e/"),
        "{}",
        out.dump()
    );
}

/// UDP probes: `netsmith serve echo` answers (open), a port with nothing
/// bound gets ICMP port unreachable (closed), a silent socket is
/// open|filtered; only open ports are shown by default.
#[test]
fn udp_open_closed_and_open_filtered() {
    let ns = Netns::start(false, &[], &[("--udp", "127.0.0.1")]);
    let silent = ns.ports("udp")[0];
    let mut serve = ns.spawn_netsmith(&["serve", "echo=0", "--udp"]);
    let echo_addr = serve.listening_services(1)[&("echo".to_string(), "udp".to_string())].clone();
    let echo: u16 = echo_addr.rsplit(':').next().unwrap().parse().unwrap();
    let ports = format!("1,{echo},{silent}");
    let args = [
        "-u",
        "127.0.0.1",
        "-p",
        &ports,
        "--timeout",
        "200ms",
        "--retries",
        "1",
        "--json",
    ];
    let out = ns.scan(&[&args[..], &["--all"]].concat());
    out.ok();
    let r = report(&out);
    for (port, state, reason, tries) in [
        (1, "closed", "port-unreach", 1),
        (echo, "open", "udp-response", 1),
        (silent, "open|filtered", "no-response", 2),
    ] {
        let p = r.port("127.0.0.1", port);
        assert_eq!(
            (
                p.proto.as_str(),
                p.state.as_str(),
                p.reason.as_str(),
                p.tries
            ),
            ("udp", state, reason, tries),
            "{}",
            out.dump()
        );
    }
    assert_counts(&r.summary, [1, 1, 0, 0, 1, 0]);

    let out = ns.scan(&args);
    out.ok();
    let r = report(&out);
    assert_eq!(r.in_state("open"), BTreeSet::from([(v4(), echo)]));
    assert_eq!(r.ports.len(), 1, "{}", out.dump());
    let out = serve.interrupt();
    assert!(out.status.success(), "{}", out.dump());
}

/// `--shard K/N` splits the (host, port) space into N disjoint shares that
/// together are the whole scan.
#[test]
fn shards_are_disjoint_and_cover_the_scan() {
    // Listeners, and the scan's own source ports, inside 1-3000.
    let ns = Netns::start(
        false,
        &[&port_range(2000, 2999)],
        &[
            ("--tcp", "127.0.0.1"),
            ("--tcp", "127.0.0.1"),
            ("--tcp", "::1"),
        ],
    );
    let base = ["127.0.0.1", "::1", "-p", "1-3000", "--all", "--json"];
    let states = |extra: &[&str]| {
        let out = ns.scan(&[&base[..], extra].concat());
        out.ok();
        let r = report(&out);
        assert_eq!(r.summary.probed, r.ports.len() as u64, "{}", out.dump());
        assert_eq!(r.summary.undecided, 0, "{}", out.dump());
        r.by_port()
            .into_iter()
            .map(|(k, p)| (k, p.state.clone()))
            .collect::<BTreeMap<_, _>>()
    };
    let whole = states(&[]);
    assert_eq!(whole.len(), 6000);
    let open: BTreeSet<_> = whole
        .iter()
        .filter(|(_, s)| *s == "open")
        .map(|(k, _)| *k)
        .collect();
    assert_eq!(open, ns.socks("tcp"));
    let mut union = BTreeMap::new();
    for k in 1..=3 {
        let share = states(&["--shard", &format!("{k}/3")]);
        assert_eq!(share.len(), 2000, "shard {k}/3");
        for (key, state) in share {
            assert!(union.insert(key, state).is_none(), "{key:?} in two shards");
        }
    }
    assert_eq!(union, whole);
    let out = ns.scan(&["127.0.0.1", "-p", "1-3000", "--shard", "2/3"]);
    out.ok();
    assert!(
        out.out().trim_end().ends_with("(shard 2/3)"),
        "{}",
        out.dump()
    );
}

/// With 40 descriptors (the hard limit too, so it cannot be raised) the
/// scan still decides every port, and correctly.
#[test]
fn a_small_descriptor_limit_still_decides_every_port() {
    let ns = Netns::start(
        false,
        &[&port_range(3000, 3999)],
        &[("--tcp", "127.0.0.1"); 5],
    );
    let cmd = format!(
        "ulimit -n 40 && exec {} scan 127.0.0.1 -p 1-5000 --all --json",
        util::bin().display()
    );
    let out = ns.cmd("sh", &["-c", &cmd], b"");
    out.ok();
    let r = report(&out);
    assert_eq!(r.in_state("open"), ns.socks("tcp"), "{}", out.dump());
    assert_eq!(r.by_port().len(), 5000);
    assert_counts(&r.summary, [5, 4995, 0, 0, 0, 0]);
}

/// Targets from `-iL FILE` (comments, blank lines, several per line) and
/// from stdin (`-`, `-iL -`); an address given twice, or inside a block
/// also given, is scanned once.
#[test]
fn target_lists_from_files_and_stdin_scan_each_host_once() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("targets");
    std::fs::write(
        &file,
        "# my hosts\n\n127.0.0.1   # this one\n\t127.0.0.0/31 127.0.0.1\n\n# end\n",
    )
    .unwrap();
    let file = file.to_str().unwrap();
    let want = BTreeMap::from([
        ("127.0.0.0".parse::<IpAddr>().unwrap(), "closed".to_string()),
        (v4(), "open".to_string()),
    ]);
    let stdin: &[u8] = b"127.0.0.1\n# comment\n127.0.0.0/31\n";
    let none: &[u8] = b"";
    for (args, input) in [
        (vec!["-iL", file], none),
        (vec!["--input-list", file, "127.0.0.1"], none),
        (vec!["-"], stdin),
        (vec!["-iL", "-"], stdin),
        (vec!["127.0.0.1", "127.0.0.0/31", "127.0.0.1"], none),
    ] {
        let mut all = vec!["scan"];
        all.extend(&args);
        all.extend(["-p", &port, "--all", "--json"]);
        let out = util::run(&all, input);
        out.ok();
        let r = report(&out);
        let got: BTreeMap<IpAddr, String> =
            r.ports.iter().map(|p| (p.host, p.state.clone())).collect();
        assert_eq!(got, want, "{}", out.dump());
        assert_eq!(
            (r.summary.hosts, r.summary.probed),
            (2, 2),
            "{}",
            out.dump()
        );
    }
    // A bad entry in a list is named, and nothing is scanned.
    std::fs::write(dir.path().join("bad"), "127.0.0.1\n127.0.0.0/99\n").unwrap();
    let bad = dir.path().join("bad");
    let out = util::run(&["scan", "-iL", bad.to_str().unwrap(), "-p", &port], b"");
    out.code_is(2);
    assert!(out.stderr.contains("127.0.0.0/99"), "{}", out.dump());
    assert!(out.stdout.is_empty(), "{}", out.dump());
}

/// `--rate N` caps attempts per second.
#[test]
fn rate_caps_attempts_per_second() {
    let ns = Netns::start(false, &[], &[]);
    let out = ns.scan(&["127.0.0.1", "-p", "1-100", "--rate", "200", "--json"]);
    out.ok();
    let r = report(&out);
    assert_eq!(r.summary.closed, 100);
    assert!(
        (0.4..5.0).contains(&r.summary.seconds),
        "100 attempts at 200/s take about half a second: {:?}",
        r.summary
    );
}

/// `--adaptive` starts with a small window and grows it on answers: still
/// exact, and still fast on a host that answers everything.
#[test]
fn adaptive_mode_is_exact() {
    let ns = Netns::start(false, &[], &[("--tcp", "127.0.0.1"); 3]);
    let out = ns.scan(&["127.0.0.1", "-p-", "--adaptive", "--json"]);
    out.ok();
    let r = report(&out);
    assert_eq!(r.in_state("open"), ns.socks("tcp"), "{}", out.dump());
    assert_counts(&r.summary, [3, 65535 - 3, 0, 0, 0, 0]);
    assert!(r.summary.seconds < 10.0, "{:?}", r.summary);
}

/// `::ffff:127.0.0.1` is the IPv4 loopback in IPv6 form: scanned without
/// `--authorized` (`::ffff:10.0.0.1` stays refused, in the table above).
#[test]
fn hardening_05_mapped_loopback_target_needs_no_authorized() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let out = util::run(&["scan", "::ffff:127.0.0.1", "-p", &port, "--json"], b"");
    out.ok();
    assert_eq!(report(&out).summary.open, 1, "{}", out.dump());
}

#[test]
fn hardening_02_scan_json_stdout_write_error_is_exit_1() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let out = util::run_to_full(&["scan", "127.0.0.1", "-p", &port, "--json"], b"");
    util::assert_stdout_full(&out);
}
