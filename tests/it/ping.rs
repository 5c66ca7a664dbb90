//! `netsmith ping` on loopback and across a veth pair between two network
//! namespaces the tests make (scan's [`Netns`]), where nftables and netem
//! rules in the target drop, duplicate, delay or refuse the replies; the
//! unprivileged ICMP datagram socket with privileges dropped (`setpriv`) in
//! a namespace whose `ping_group_range` the test sets; iputils ping as the
//! reference for the counts.

use std::net::TcpListener;

use serde_json::Value;

use crate::scan::{Netns, T4, T6, link_veth};
use crate::util::{self, Output, require, run, run_cmd};

/// Runs `script` (`$NETSMITH` is the binary) in a fresh network namespace
/// with loopback up, after `setup`.
fn in_netns(setup: &str, script: &str) -> Output {
    require("unshare");
    let script = format!(
        "set -e; ip link set lo up; {setup}\nNETSMITH='{}'; set +e; {script}",
        util::bin().display()
    );
    run_cmd("unshare", &["-n", "bash", "-c", &script], b"")
}

/// As nobody (uid and gid 65534, no supplementary groups).
const AS_NOBODY: &str = "setpriv --reuid=65534 --regid=65534 --clear-groups";

/// The JSON summary (the last line) of a `--json` run.
fn summary(out: &Output) -> Value {
    let text = out.out();
    let last = text
        .lines()
        .last()
        .unwrap_or_else(|| panic!("no output\n{}", out.dump()));
    let v: Value = serde_json::from_str(last).unwrap_or_else(|e| panic!("{e}\n{}", out.dump()));
    assert_eq!(v["type"], "summary", "{}", out.dump());
    v
}

/// The `icmp_seq` of each reply line, in order.
fn seqs(out: &Output) -> Vec<u64> {
    out.out()
        .lines()
        .filter(|l| l.contains(" bytes from "))
        .filter_map(|l| l.split("icmp_seq=").nth(1)?.split(' ').next()?.parse().ok())
        .collect()
}

#[track_caller]
fn assert_line(out: &Output, line: &str) {
    assert!(
        out.out().lines().any(|l| l == line),
        "no line {line:?}\n{}",
        out.dump()
    );
}

#[test]
fn loopback_v4_and_v6_with_iputils_format() {
    for (addr, header) in [
        (
            "127.0.0.1",
            "PING 127.0.0.1 (127.0.0.1) 56(84) bytes of data.",
        ),
        ("::1", "PING ::1 (::1) 56 data bytes"),
    ] {
        let out = run(&["ping", "-c", "3", "-i", "200ms", addr], b"");
        out.ok();
        let text = out.out();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], header, "{}", out.dump());
        for (i, line) in lines[1..4].iter().enumerate() {
            let prefix = format!("64 bytes from {addr}: icmp_seq={} ttl=64 time=", i + 1);
            assert!(
                line.starts_with(&prefix) && line.ends_with(" ms"),
                "{line:?}\n{}",
                out.dump()
            );
        }
        assert_eq!(lines[4], "");
        assert_eq!(lines[5], format!("--- {addr} ping statistics ---"));
        assert!(
            lines[6].starts_with("3 packets transmitted, 3 received, 0% packet loss, time "),
            "{}",
            out.dump()
        );
        assert!(
            lines[7].starts_with("rtt min/avg/max/mdev = "),
            "{}",
            out.dump()
        );
    }
}

#[test]
fn json_replies_and_summary() {
    let out = run(
        &[
            "ping",
            "--json",
            "-c",
            "2",
            "-i",
            "200ms",
            "-s",
            "100",
            "127.0.0.1",
        ],
        b"",
    );
    out.ok();
    let lines: Vec<Value> = out
        .out()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "{}", out.dump());
    for (i, reply) in lines[..2].iter().enumerate() {
        assert_eq!(reply["type"], "reply");
        assert_eq!(reply["seq"], i + 1);
        assert_eq!(reply["bytes"], 108);
        assert_eq!(reply["ttl"], 64);
        assert_eq!(reply["intact"], true);
        assert_eq!(reply["dup"], false);
        assert!(reply["time_ms"].as_f64().unwrap() > 0.0);
    }
    let s = summary(&out);
    assert_eq!(
        (s["transmitted"].as_u64(), s["received"].as_u64()),
        (Some(2), Some(2))
    );
    assert_eq!(s["socket"], "raw");
    assert_eq!(s["loss_percent"], 0.0);
    assert!(s["min_ms"].as_f64().unwrap() <= s["max_ms"].as_f64().unwrap());
}

#[test]
fn unprivileged_icmp_datagram_socket_where_the_group_range_allows() {
    require("setpriv");
    let out = in_netns(
        "echo '0 2147483647' > /proc/sys/net/ipv4/ping_group_range",
        &format!(
            "{AS_NOBODY} \"$NETSMITH\" ping --json -c 2 -i 200ms 127.0.0.1 || exit 9
             {AS_NOBODY} \"$NETSMITH\" ping --json -c 2 -i 200ms ::1"
        ),
    );
    out.ok();
    let lines: Vec<Value> = out
        .out()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let summaries: Vec<&Value> = lines.iter().filter(|v| v["type"] == "summary").collect();
    assert_eq!(summaries.len(), 2, "{}", out.dump());
    for s in summaries {
        assert_eq!(s["socket"], "dgram", "{}", out.dump());
        assert_eq!(s["received"], 2, "{}", out.dump());
    }
    // The TTL comes as ancillary data on a datagram socket.
    assert!(
        lines
            .iter()
            .filter(|v| v["type"] == "reply")
            .all(|v| v["ttl"] == 64),
        "{}",
        out.dump()
    );
}

#[test]
fn neither_socket_allowed_says_so_and_points_at_tcp() {
    require("setpriv");
    let out = in_netns(
        "echo '1 0' > /proc/sys/net/ipv4/ping_group_range",
        &format!("exec {AS_NOBODY} \"$NETSMITH\" ping -c 1 127.0.0.1"),
    );
    out.code_is(2);
    for words in ["CAP_NET_RAW", "ping_group_range", "--tcp PORT"] {
        assert!(out.stderr.contains(words), "{words}\n{}", out.dump());
    }
    // Faster than 200ms is for root only, as with iputils.
    let out = in_netns(
        "echo '0 2147483647' > /proc/sys/net/ipv4/ping_group_range",
        &format!("exec {AS_NOBODY} \"$NETSMITH\" ping -c 1 -i 100ms 127.0.0.1"),
    );
    out.code_is(2);
    assert!(
        out.stderr.contains("\"100ms\" is below 200ms"),
        "{}",
        out.dump()
    );
}

/// A pinger and a target namespace joined by a veth pair; `rules` is an
/// nftables ruleset for the target.
fn pair(target_setup: &[&str]) -> (Netns, Netns) {
    require("nft");
    let target = Netns::start(false, target_setup, &[]);
    let pinger = Netns::start(false, &[], &[]);
    link_veth(&pinger, &target);
    (target, pinger)
}

/// nftables in the target: drop the replies to requests 2 and 4.
const DROP_2_AND_4: &str = "nft -f - <<'EOF'
table inet loss {
  chain out {
    type filter hook output priority 0;
    icmp type echo-reply icmp sequence { 2, 4 } drop
    icmpv6 type echo-reply icmpv6 sequence { 2, 4 } drop
  }
}
EOF";

#[test]
fn loss_across_a_veth_pair_counts_like_iputils() {
    require("ping");
    let (_target, pinger) = pair(&[DROP_2_AND_4]);
    for addr in [T4, T6] {
        let out = pinger.netsmith(
            &["ping", "-c", "5", "-i", "200ms", "-W", "500ms", addr],
            b"",
        );
        out.code_is(0);
        assert_eq!(seqs(&out), [1, 3, 5], "{}", out.dump());
        let counts = "5 packets transmitted, 3 received, 40% packet loss, time ";
        assert!(out.out().contains(counts), "{}", out.dump());
        // iputils ping, the reference, counts the same.
        let iputils = pinger.cmd("ping", &["-c", "5", "-i", "0.2", "-W", "0.5", addr], b"");
        assert!(iputils.out().contains(counts), "{}", iputils.dump());
        assert_eq!(seqs(&iputils), [1, 3, 5], "{}", iputils.dump());
    }
}

#[test]
fn no_reply_at_all_is_exit_1() {
    let (_target, pinger) = pair(&[
        "nft add table inet t; nft add chain inet t out '{ type filter hook output priority 0; }'; nft add rule inet t out icmp type echo-reply drop",
    ]);
    let out = pinger.netsmith(&["ping", "-c", "2", "-i", "200ms", "-W", "300ms", T4], b"");
    out.code_is(1);
    assert!(
        out.out()
            .contains("2 packets transmitted, 0 received, 100% packet loss"),
        "{}",
        out.dump()
    );
    assert!(!out.out().contains("rtt"), "{}", out.dump());
    assert!(
        out.stderr.contains(&format!("no reply from {T4}")),
        "{}",
        out.dump()
    );
}

#[test]
fn duplicates_are_shown_and_not_counted_as_received() {
    let (target, pinger) = pair(&[]);
    target.sh("nft add table ip t
         nft add chain ip t out '{ type filter hook output priority 0; }'
         nft add rule ip t out icmp type echo-reply dup to 10.99.0.1 device veth1");
    let out = pinger.netsmith(&["ping", "-c", "3", "-i", "200ms", "-W", "500ms", T4], b"");
    out.ok();
    // The copy of the last reply may come after the run has all it waits
    // for (it ends at once then, as iputils does), so it may be missed.
    let check = |out: &Output| {
        let dups: Vec<u64> = out
            .out()
            .lines()
            .filter(|l| l.ends_with("(DUP!)"))
            .filter_map(|l| l.split("icmp_seq=").nth(1)?.split(' ').next()?.parse().ok())
            .collect();
        assert!(dups == [1, 2] || dups == [1, 2, 3], "{}", out.dump());
        let counts = format!(
            "3 packets transmitted, 3 received, +{} duplicates, 0% packet loss",
            dups.len()
        );
        assert!(out.out().contains(&counts), "{}", out.dump());
    };
    check(&out);
    require("ping");
    check(&pinger.cmd("ping", &["-c", "3", "-i", "0.2", "-W", "0.5", T4], b""));
}

/// Answers ICMP echo requests itself (the kernel's answers are turned
/// off), each after `argv[1]` seconds.
const SLOW_RESPONDER: &str = r#"
import socket, struct, sys, threading, time
delay = float(sys.argv[1])
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
def csum(b):
    if len(b) % 2: b += b"\0"
    n = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while n > 0xffff: n = (n & 0xffff) + (n >> 16)
    return ~n & 0xffff
def answer(reply, dst):
    time.sleep(delay)
    s.sendto(reply, (dst, 0))
print("ready", file=sys.stderr, flush=True)
while True:
    pkt, (src, _) = s.recvfrom(65535)
    icmp = bytearray(pkt[(pkt[0] & 15) * 4:])
    if len(icmp) < 8 or icmp[0] != 8: continue
    icmp[0] = 0; icmp[2:4] = b"\0\0"; icmp[2:4] = struct.pack("!H", csum(bytes(icmp)))
    threading.Thread(target=answer, args=(bytes(icmp), src), daemon=True).start()
"#;

#[test]
fn late_replies_are_shown_and_not_counted_as_received() {
    let (target, pinger) = pair(&["echo 1 > /proc/sys/net/ipv4/icmp_echo_ignore_all"]);
    let mut responder = util::spawn_cmd(
        "nsenter",
        &[
            "-t",
            &target.pid,
            "-n",
            "python3",
            "-c",
            SLOW_RESPONDER,
            "0.4",
        ],
    );
    responder.wait_stderr("ready");
    let out = pinger.netsmith(
        &[
            "ping", "--json", "-c", "3", "-i", "500ms", "-W", "200ms", T4,
        ],
        b"",
    );
    out.code_is(1);
    let lines: Vec<Value> = out
        .out()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let late: Vec<u64> = lines
        .iter()
        .filter(|v| v["late"] == true)
        .map(|v| v["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(late, [1, 2], "{}", out.dump());
    let s = summary(&out);
    assert_eq!(
        (s["received"].as_u64(), s["late"].as_u64()),
        (Some(0), Some(2)),
        "{}",
        out.dump()
    );
}

#[test]
fn icmp_errors_are_reported_per_request() {
    let (_target, pinger) = pair(&[
        "nft add table inet t; nft add chain inet t in '{ type filter hook input priority 0; }'; nft add rule inet t in icmp type echo-request reject with icmp type host-unreachable",
    ]);
    let out = pinger.netsmith(&["ping", "-c", "2", "-i", "200ms", "-W", "500ms", T4], b"");
    out.code_is(1);
    assert_line(
        &out,
        &format!("From {T4} icmp_seq=1 Destination Host Unreachable"),
    );
    assert!(
        out.out()
            .contains("2 packets transmitted, 0 received, +2 errors, 100% packet loss"),
        "{}",
        out.dump()
    );
}

#[test]
fn tcp_connect_ping() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let out = run(
        &[
            "ping",
            "--tcp",
            &port,
            "-c",
            "3",
            "-i",
            "200ms",
            "127.0.0.1",
        ],
        b"",
    );
    out.ok();
    assert_eq!(
        out.out()
            .matches(&format!("connected to 127.0.0.1:{port}: seq="))
            .count(),
        3,
        "{}",
        out.dump()
    );
    assert!(
        out.out()
            .contains("3 connects tried, 3 connected, 0% packet loss"),
        "{}",
        out.dump()
    );
    drop(listener);
    // A closed port: refused each time, exit 1.
    let out = in_netns(
        "",
        "exec \"$NETSMITH\" ping --tcp 9 -c 2 -i 200ms 127.0.0.1",
    );
    out.code_is(1);
    assert_eq!(
        out.out().matches("connection refused").count(),
        2,
        "{}",
        out.dump()
    );
    assert!(
        out.out().contains("+2 errors, 100% packet loss"),
        "{}",
        out.dump()
    );
}

/// Ctrl-C after the first reply (read from the pipe, so no sleep guesses
/// when): the summary, and ping's exit status 0 since a reply came.
#[test]
fn ctrl_c_prints_the_summary_and_exits_0_after_replies() {
    let script = format!(
        "exec 3< <('{}' ping -i 200ms 127.0.0.1 & p=$!; echo \"$p\"; wait $p; echo \"exit=$?\")
         read -r -u 3 pid; read -r -u 3 header; echo \"$header\"; read -r -u 3 reply; echo \"$reply\"
         kill -INT \"$pid\"
         cat <&3",
        util::bin().display()
    );
    let out = run_cmd("bash", &["-c", &script], b"");
    out.ok();
    let text = out.out();
    assert!(
        text.contains("--- 127.0.0.1 ping statistics ---"),
        "{}",
        out.dump()
    );
    assert!(text.contains(" received, 0% packet loss"), "{}", out.dump());
    assert!(text.trim_end().ends_with("exit=0"), "{}", out.dump());
}

/// `-i 0` (root only): requests paced by their replies, none lost to a
/// full receive buffer, `-q` prints the header and summary only.
#[test]
fn as_fast_as_replies_come_back_loses_none() {
    for addr in ["127.0.0.1", "::1"] {
        let out = run(&["ping", "-c", "2000", "-i", "0", "-q", addr], b"");
        out.ok();
        let text = out.out();
        assert!(
            text.contains("2000 packets transmitted, 2000 received, 0% packet loss"),
            "{}",
            out.dump()
        );
        assert!(!text.contains(" bytes from "), "{}", out.dump());
        assert!(text.starts_with("PING "), "{}", out.dump());
    }
}

/// A listener for `ping --tcp`, and its port.
fn tcp_target() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    (listener, port)
}

#[test]
fn hardening_14_ping_into_head_exits_quietly_when_head_leaves() {
    // TCP ping to a listener of this test: no privilege needed. Without
    // -c it would run forever; after head's two lines it must end, exit 0.
    let (_listener, port) = tcp_target();
    let out = run_cmd(
        "bash",
        &[
            "-c",
            "set -o pipefail; \"$0\" ping --tcp \"$1\" -i 200ms 127.0.0.1 | head -2",
            util::bin().to_str().unwrap(),
            &port,
        ],
        b"",
    );
    out.ok();
    assert_eq!(out.out().lines().count(), 2, "{}", out.dump());
}

#[test]
fn hardening_02_ping_stdout_write_error_is_exit_1() {
    let (_listener, port) = tcp_target();
    let out = util::run_to_full(
        &[
            "ping",
            "--tcp",
            &port,
            "-c",
            "2",
            "-i",
            "200ms",
            "127.0.0.1",
        ],
        b"",
    );
    util::assert_stdout_full(&out);
}
