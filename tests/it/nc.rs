//! The nc front door: `netsmith -z` port checks side by side with OpenBSD
//! nc (the reference for their wording) in network namespaces of the
//! tests' own, and the global flags accepted after the command.
//!
//! Each namespace's ephemeral range is first narrowed to one port, so that
//! the helper's port-0 bind lands on a known port (8080, named http-alt in
//! /etc/services; its neighbours 8079 and 8082 are closed), and then moved
//! away (20000-29999), so that no probe's source port is a probed port.

use std::time::{Duration, Instant};

use crate::scan::{Netns, T4, link_veth};
use crate::util::{self, Output};

/// The port the namespace's listener gets.
const OPEN: u16 = 8080;

/// Narrows the ephemeral range to `port`, for the helper's bind.
fn only_port(port: u16) -> String {
    format!("echo '{port} {port}' > /proc/sys/net/ipv4/ip_local_port_range")
}

/// A namespace with a socket of `kind` (`--tcp`, `--udp`) on 127.0.0.1
/// `port` and `setup` run first.
fn namespace(kind: &str, port: u16, setup: &[&str]) -> Netns {
    namespace_on(kind, "127.0.0.1", port, setup)
}

/// The same with the socket on `addr`.
fn namespace_on(kind: &str, addr: &str, port: u16, setup: &[&str]) -> Netns {
    let range = only_port(port);
    let mut all = vec![range.as_str()];
    all.extend(setup);
    let ns = Netns::start(false, &all, &[(kind, addr)]);
    ns.sh("echo '20000 29999' > /proc/sys/net/ipv4/ip_local_port_range");
    ns
}

/// nc.openbsd's stderr with its name as netsmith's.
fn as_netsmith(nc: &Output) -> String {
    nc.stderr.replace("nc.openbsd: ", "netsmith: ")
}

/// Runs the same nc command line through netsmith and nc.openbsd in `ns`,
/// asserts the same exit status and the same stderr (but for the program
/// name), and returns netsmith's run.
#[track_caller]
fn same_as_nc(ns: &Netns, args: &[&str]) -> Output {
    let nc = ns.cmd("nc.openbsd", args, b"");
    let ours = ns.netsmith(args, b"");
    assert_eq!(
        (ours.code(), ours.stderr.as_str()),
        (nc.code(), as_netsmith(&nc).as_str()),
        "netsmith and nc.openbsd differ\n{}\n--- nc.openbsd ---\n{}",
        ours.dump(),
        nc.dump()
    );
    assert!(ours.stdout.is_empty(), "{}", ours.dump());
    ours
}

fn refused(port: u16, proto: &str) -> String {
    format!("netsmith: connect to 127.0.0.1 port {port} ({proto}) failed: Connection refused\n")
}

/// `-z` over a range with one open port: the lines, their order and the
/// exit statuses are OpenBSD nc's, with and without -v, for several PORT
/// words, a service name, and a host name.
#[test]
fn nc_zero_checks_a_range_as_openbsd_nc_does() {
    util::require("nc.openbsd");
    let ns = namespace("--tcp", OPEN, &[]);
    let out = same_as_nc(&ns, &["-zv", "127.0.0.1", "8078-8082"]);
    out.code_is(0);
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 5, "{}", out.dump());
    assert!(
        lines[2].starts_with("Connection to 127.0.0.1 8080 port [tcp/")
            && lines[2].ends_with("] succeeded!"),
        "{}",
        out.dump()
    );
    for (i, port) in [(0, 8078), (1, 8079), (3, 8081), (4, 8082)] {
        assert_eq!(format!("{}\n", lines[i]), refused(port, "tcp"));
    }
    // -n: no service name looked up.
    let out = ns.netsmith(&["-zvn", "127.0.0.1", "8079-8080"], b"");
    out.code_is(0);
    assert_eq!(
        out.stderr,
        format!(
            "{}Connection to 127.0.0.1 8080 port [tcp/*] succeeded!\n",
            refused(8079, "tcp")
        )
    );
    // Without -v, only the exit status answers, as in nc.
    same_as_nc(&ns, &["-z", "127.0.0.1", "8079-8081"]).code_is(0);
    // None open: exit 1.
    same_as_nc(&ns, &["-zv", "127.0.0.1", "8081-8083"]).code_is(1);
    same_as_nc(&ns, &["-z", "127.0.0.1", "8081"]).code_is(1);
    // Several PORT words, in the order given; a service name; a host name.
    same_as_nc(&ns, &["-zv", "127.0.0.1", "8082", "http-alt", "8079"]).code_is(0);
    same_as_nc(&ns, &["-zv", "localhost", "8080", "8082"]).code_is(0);
    same_as_nc(&ns, &["-zvw1", "127.0.0.1", "8080"]).code_is(0);
    // A list in one word (which nc refuses): its ports in order, each once.
    let out = ns.netsmith(&["-zvn", "127.0.0.1", "8082,http-alt,8082"], b"");
    out.code_is(0);
    assert_eq!(
        out.stderr,
        format!(
            "Connection to 127.0.0.1 8080 port [tcp/*] succeeded!\n{}",
            refused(8082, "tcp")
        )
    );
    // The netsmith spelling is the same check.
    let out = ns.netsmith(&["connect", "-z", "-v", "-n", "127.0.0.1:8080"], b"");
    out.code_is(0);
    assert_eq!(
        out.stderr,
        "Connection to 127.0.0.1 8080 port [tcp/*] succeeded!\n"
    );
}

/// A port whose SYNs are dropped times out after -w (1 s), not after the
/// kernel's two minutes, while the ports around it are told at once.
#[test]
fn nc_zero_filtered_port_times_out_after_w() {
    util::require("nft");
    let ns = namespace("--tcp", OPEN, &[DROP_8081]);
    let started = Instant::now();
    let out = ns.netsmith(&["-zvnw1", "127.0.0.1", "8080-8082"], b"");
    let took = started.elapsed();
    out.code_is(0);
    assert_eq!(
        out.stderr,
        format!(
            "Connection to 127.0.0.1 8080 port [tcp/*] succeeded!\n\
             netsmith: connect to 127.0.0.1 port 8081 (tcp) failed: Connection timed out\n{}",
            refused(8082, "tcp")
        ),
        "{}",
        out.dump()
    );
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(3),
        "took {took:?}\n{}",
        out.dump()
    );
    let started = Instant::now();
    let out = ns.netsmith(&["-zw1", "127.0.0.1", "8081"], b"");
    out.code_is(1);
    assert!(out.stderr.is_empty(), "{}", out.dump());
    let took = started.elapsed();
    assert!(took < Duration::from_secs(3), "took {took:?}");
}

/// The nftables rule of [`nc_zero_filtered_port_times_out_after_w`] and
/// [`nc_zero_beyond_loopback_needs_authorized`]: SYNs to 8081 dropped.
const DROP_8081: &str = "nft 'add table inet nctest; \
    add chain inet nctest in { type filter hook input priority 0; }; \
    add rule inet nctest in tcp dport 8081 drop'";

/// A host beyond loopback (another namespace, over a veth pair) is
/// checked only with --authorized, as any scan; then its open, dropped
/// and closed ports are told as on loopback.
#[test]
fn nc_zero_beyond_loopback_needs_authorized() {
    util::require("nft");
    let target = namespace_on("--tcp", "0.0.0.0", OPEN, &[DROP_8081]);
    let scanner = Netns::start(false, &[], &[]);
    link_veth(&scanner, &target);
    let out = scanner.netsmith(&["-zvnw1", T4, "8080-8082"], b"");
    out.code_is(2);
    assert!(
        out.stderr.contains(&format!("refusing to scan {T4}"))
            && out.stderr.contains("--authorized"),
        "{}",
        out.dump()
    );
    let started = Instant::now();
    let out = scanner.netsmith(&["-zvnw1", "--authorized", T4, "8080-8082"], b"");
    let took = started.elapsed();
    out.code_is(0);
    assert_eq!(
        out.stderr,
        format!(
            "Connection to {T4} 8080 port [tcp/*] succeeded!\n\
             netsmith: connect to {T4} port 8081 (tcp) failed: Connection timed out\n\
             netsmith: connect to {T4} port 8082 (tcp) failed: Connection refused\n"
        ),
        "{}",
        out.dump()
    );
    assert!(took < Duration::from_secs(3), "took {took:?}");
}

/// -zu: a bound UDP socket that never answers succeeds, a closed port
/// (ICMP port unreachable) does not: nc's test, and nc's success line.
#[test]
fn nc_zero_udp_succeeds_unless_port_unreachable() {
    util::require("nc.openbsd");
    let ns = namespace("--udp", 5353, &[]);
    // nc says nothing of a refused UDP port, even with -v; netsmith says
    // why, in the words of its TCP line.
    let nc = ns.cmd("nc.openbsd", &["-zuv", "127.0.0.1", "5353"], b"");
    nc.code_is(0);
    let out = ns.netsmith(&["-zuv", "127.0.0.1", "5353", "5354"], b"");
    out.code_is(0);
    assert_eq!(
        out.stderr,
        format!("{}{}", nc.stderr, refused(5354, "udp")),
        "{}",
        out.dump()
    );
    assert!(
        nc.stderr
            .starts_with("Connection to 127.0.0.1 5353 port [udp/")
    );
    // Without -v, nc does not test a UDP port at all (it exits 0 for a
    // closed one); netsmith tests it the same with or without -v.
    let out = ns.netsmith(&["-zun", "127.0.0.1", "5354"], b"");
    out.code_is(1);
    assert!(out.stderr.is_empty(), "{}", out.dump());
    ns.cmd("nc.openbsd", &["-zuvn", "127.0.0.1", "5354"], b"")
        .code_is(1);
    same_as_nc(&ns, &["-zuvn", "127.0.0.1", "5353"]).code_is(0);
}

/// `-q` and `-v` after the command: `serve ... -q` starts without its
/// "listening on" lines; `scan ... -v -q` is accepted.
#[test]
fn nc_global_flags_after_the_command() {
    let ns = Netns::start(false, &[], &[]);
    let serve = ns.spawn_netsmith(&["serve", "echo=0", "-q"]);
    // Listening once the namespace has a listening TCP socket (state 0A).
    let deadline = Instant::now() + util::WAIT;
    loop {
        let tcp = ns.cmd("cat", &["/proc/net/tcp"], b"");
        if tcp
            .out()
            .lines()
            .skip(1)
            .any(|l| l.split_whitespace().nth(3) == Some("0A"))
        {
            break;
        }
        assert!(Instant::now() < deadline, "serve never listened");
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = serve.interrupt();
    out.code_is(0);
    assert!(!out.stderr.contains("listening on"), "{}", out.dump());
    assert!(out.out().contains("echo"), "{}", out.dump());

    let out = util::run(&["scan", "127.0.0.1", "-p", "1", "--all", "-v"], b"");
    out.code_is(0);
    assert!(out.out().contains("closed"), "{}", out.dump());
    let out = util::run(&["resolve", "localhost", "-q"], b"");
    out.code_is(0);
    // After connect, -q is still nc's quit-after-EOF, which takes a value.
    util::run(&["connect", "127.0.0.1", "1", "-q"], b"").code_is(2);
}
