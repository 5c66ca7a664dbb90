//! `netsmith resolve` through the system resolver, in namespaces of the
//! test's own: a mount namespace where the test's /etc/hosts (and, where the
//! answer must be "no such host", an nsswitch.conf that consults only
//! files) is bind-mounted over the system's, and a network namespace with no
//! route, so that a name that must not resolve is never asked of a real
//! DNS server.

use serde_json::Value;
use tempfile::TempDir;

use crate::util::{Output, bin, require, run};

const HOSTS: &str = "\
127.0.0.1 localhost
::1 localhost ip6-localhost
192.0.2.10 alpha.test alpha
2001:db8::10 alpha.test alpha
192.0.2.11 beta.test
198.51.100.7 netsmith-host.test netsmith-host
";

/// How names not in the test's /etc/hosts fail.
#[derive(Clone, Copy, PartialEq)]
enum Dns {
    /// nsswitch consults /etc/hosts only: "no such host", no query at all.
    FilesOnly,
    /// nsswitch as the system has it; DNS goes to a nameserver on the
    /// namespace's own loopback, where nothing answers.
    DeadServer,
}

/// Runs `script` (`$NETSMITH` is the binary) with the test's /etc/hosts,
/// in new mount, network and UTS namespaces (host name `netsmith-host`)
/// with loopback up.
fn in_names_ns(dns: Dns, script: &str) -> Output {
    require("unshare");
    let dir = TempDir::new().unwrap();
    let hosts = dir.path().join("hosts");
    let resolv = dir.path().join("resolv.conf");
    let nsswitch = dir.path().join("nsswitch.conf");
    std::fs::write(&hosts, HOSTS).unwrap();
    std::fs::write(
        &resolv,
        "nameserver 127.0.0.1\noptions attempts:1 timeout:1\n",
    )
    .unwrap();
    std::fs::write(&nsswitch, "hosts: files\n").unwrap();
    let mut setup = format!(
        "set -e; ip link set lo up; hostname netsmith-host
         mount --bind {} /etc/hosts; mount --bind {} /etc/resolv.conf\n",
        hosts.display(),
        resolv.display()
    );
    if dns == Dns::FilesOnly {
        setup.push_str("mount --bind ");
        setup.push_str(&nsswitch.display().to_string());
        setup.push_str(" /etc/nsswitch.conf\n");
    }
    let script = format!("{setup}NETSMITH='{}'; set +e; {script}", bin().display());
    crate::util::run_cmd("unshare", &["-m", "-n", "-u", "bash", "-c", &script], b"")
}

/// Output lines, sorted: the order of a name's addresses is the
/// resolver's (RFC 6724 rules, which depend on the host's own addresses).
fn sorted(text: &str) -> Vec<String> {
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    lines.sort();
    lines
}

fn json_lines(out: &Output) -> Vec<Value> {
    out.out()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}\n{}", out.dump())))
        .collect()
}

#[test]
fn localhost_and_its_reverse() {
    let out = run(&["resolve", "-4", "localhost"], b"");
    out.ok();
    assert!(
        out.out().contains("localhost has address 127.0.0.1"),
        "{}",
        out.dump()
    );
    let out = in_names_ns(
        Dns::FilesOnly,
        "exec \"$NETSMITH\" resolve -x 127.0.0.1 -x ::1",
    );
    out.ok();
    assert_eq!(
        out.out(),
        "127.0.0.1 has name localhost\n::1 has name localhost\n",
        "{}",
        out.dump()
    );
}

#[test]
fn hosts_file_names_every_address_and_the_canonical_name() {
    let out = in_names_ns(Dns::FilesOnly, "exec \"$NETSMITH\" resolve alpha beta.test");
    out.ok();
    assert_eq!(
        sorted(&out.out()),
        sorted(
            "alpha is an alias for alpha.test\n\
             alpha has IPv6 address 2001:db8::10\n\
             alpha has address 192.0.2.10\n\
             beta.test has address 192.0.2.11\n"
        ),
        "{}",
        out.dump()
    );
    let out = in_names_ns(Dns::FilesOnly, "exec \"$NETSMITH\" resolve -6 alpha.test");
    out.ok();
    assert_eq!(
        out.out(),
        "alpha.test has IPv6 address 2001:db8::10\n",
        "{}",
        out.dump()
    );
    // -6 for a name with no IPv6 address is the network's "no" (exit 1).
    let out = in_names_ns(Dns::FilesOnly, "exec \"$NETSMITH\" resolve -6 beta.test");
    out.code_is(1);
    assert!(
        out.stderr.contains("beta.test has no address"),
        "{}",
        out.dump()
    );
}

#[test]
fn json_is_one_object_per_answer() {
    let out = in_names_ns(
        Dns::FilesOnly,
        "exec \"$NETSMITH\" resolve --json alpha '' -x 192.0.2.11 --service 443/tcp --hostname",
    );
    out.ok();
    let lines = json_lines(&out);
    let want = [
        r#"{"query":"alpha","address":"192.0.2.10","family":"ipv4","canonical":"alpha.test"}"#,
        r#"{"query":"alpha","address":"2001:db8::10","family":"ipv6","canonical":"alpha.test"}"#,
        r#"{"query":"","address":"0.0.0.0","family":"ipv4","special":"any"}"#,
        r#"{"query":"192.0.2.11","address":"192.0.2.11","name":"beta.test"}"#,
        r#"{"hostname":"netsmith-host"}"#,
        r#"{"query":"netsmith-host","address":"198.51.100.7","family":"ipv4","canonical":"netsmith-host.test"}"#,
        r#"{"query":"443/tcp","service":"https","port":443,"proto":"tcp"}"#,
    ];
    let mut want: Vec<Value> = want
        .iter()
        .map(|w| serde_json::from_str(w).unwrap())
        .collect();
    // The two addresses of alpha come in the resolver's order.
    let mut lines = lines;
    lines[..2].sort_by_key(ToString::to_string);
    want[..2].sort_by_key(ToString::to_string);
    assert_eq!(lines, want, "{}", out.dump());
}

#[test]
fn this_hosts_name_and_addresses() {
    let out = in_names_ns(Dns::FilesOnly, "exec \"$NETSMITH\" resolve --hostname");
    out.ok();
    assert_eq!(
        out.out(),
        "this host is netsmith-host\n\
         netsmith-host is an alias for netsmith-host.test\n\
         netsmith-host has address 198.51.100.7\n",
        "{}",
        out.dump()
    );
}

#[test]
fn a_name_that_does_not_exist_is_exit_1_and_the_rest_still_resolve() {
    let out = in_names_ns(
        Dns::FilesOnly,
        "exec \"$NETSMITH\" resolve alpha.test no-such-name.test beta.test",
    );
    out.code_is(1);
    assert_eq!(
        sorted(&out.out()),
        sorted(
            "alpha.test has IPv6 address 2001:db8::10\n\
             alpha.test has address 192.0.2.10\n\
             beta.test has address 192.0.2.11\n"
        ),
        "{}",
        out.dump()
    );
    assert_eq!(
        out.stderr.trim(),
        "netsmith: cannot resolve no-such-name.test: no such host",
        "{}",
        out.dump()
    );
    // An address with no name.
    let out = in_names_ns(Dns::FilesOnly, "exec \"$NETSMITH\" resolve -x 192.0.2.99");
    out.code_is(1);
    assert!(
        out.stderr
            .contains("cannot resolve 192.0.2.99: no such host"),
        "{}",
        out.dump()
    );
}

#[test]
fn a_dns_server_that_does_not_answer_is_exit_1() {
    let out = in_names_ns(
        Dns::DeadServer,
        "exec \"$NETSMITH\" resolve no-such-name.test",
    );
    out.code_is(1);
    assert!(
        out.stderr.contains("cannot resolve no-such-name.test: "),
        "{}",
        out.dump()
    );
    assert!(out.out().is_empty(), "{}", out.dump());
}

#[test]
fn services_both_ways() {
    let out = run(
        &[
            "resolve",
            "--service",
            "http",
            "--service",
            "443/tcp",
            "--service",
            "domain/udp",
        ],
        b"",
    );
    out.ok();
    let text = out.out();
    for line in [
        "http is port 80/tcp",
        "443/tcp is service https",
        "domain is port 53/udp",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "no {line:?}\n{}",
            out.dump()
        );
    }
    let out = run(&["resolve", "--service", "no-such-service"], b"");
    out.code_is(1);
    assert!(
        out.stderr.contains("no such service \"no-such-service\""),
        "{}",
        out.dump()
    );
}

#[test]
fn the_tutorials_special_forms_are_explained() {
    let out = run(&["resolve", "", "<broadcast>", "0.0.0.0", "::"], b"");
    out.ok();
    let lines: Vec<String> = out.out().lines().map(String::from).collect();
    assert_eq!(lines.len(), 4, "{}", out.dump());
    assert!(
        lines[0].starts_with("'' means 0.0.0.0, the any address (INADDR_ANY)"),
        "{}",
        out.dump()
    );
    assert!(
        lines[1].starts_with("<broadcast> means 255.255.255.255, the limited broadcast address"),
        "{}",
        out.dump()
    );
    assert!(
        lines[2].starts_with("0.0.0.0 is the any address"),
        "{}",
        out.dump()
    );
    assert!(
        lines[3].starts_with(":: is the any address"),
        "{}",
        out.dump()
    );
    let out = run(&["resolve", "-6", ""], b"");
    out.ok();
    assert!(out.out().starts_with("'' means ::, "), "{}", out.dump());
}

#[test]
fn hardening_02_resolve_stdout_write_error_is_exit_1() {
    let out = crate::util::run_to_full(&["resolve", "localhost"], b"");
    crate::util::assert_stdout_full(&out);
}
