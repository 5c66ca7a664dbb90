//! `netsmith demo`, the main job: every tutorial system on loopback, both
//! sides shown, exit 0 only when every exchange was right.

use std::time::{Duration, Instant};

use crate::util::{Output, bin, require, run_cmd};

/// Runs `script` (with `$NETSMITH` set to the binary) in network, mount
/// and UTS namespaces of its own, with loopback up, the host name
/// `netsmith-demo`, and `hosts` as /etc/hosts (with `files_only`, nsswitch
/// looks names up there alone). The demo scans every loopback port: on the
/// shared loopback it would connect to the listeners of tests running
/// beside it (a single-client `listen` would take the scan's probe as its
/// client). Its host-name step resolves this host's name: here the test
/// decides the answer.
fn in_own_namespaces(hosts: &str, files_only: bool, script: &str) -> Output {
    require("unshare");
    let dir = tempfile::TempDir::new().unwrap();
    let path = dir.path().join("hosts");
    std::fs::write(&path, hosts).unwrap();
    let nsswitch = dir.path().join("nsswitch.conf");
    std::fs::write(&nsswitch, "hosts: files\n").unwrap();
    let files_only = if files_only {
        format!("mount --bind '{}' /etc/nsswitch.conf;", nsswitch.display())
    } else {
        String::new()
    };
    let script = format!(
        "set -e; ip link set lo up; hostname netsmith-demo; mount --bind '{}' /etc/hosts; {files_only}
         set +e; NETSMITH='{}'; {script}",
        path.display(),
        bin().display()
    );
    run_cmd("unshare", &["-n", "-m", "-u", "bash", "-c", &script], b"")
}

/// The name resolves to an address of this host (all of 127/8 is).
const HOSTS: &str = "127.0.0.1 localhost\n127.0.1.1 netsmith-demo\n";

fn in_own_netns(script: &str) -> Output {
    in_own_namespaces(HOSTS, false, script)
}

#[test]
fn demo_runs_every_tutorial_system_and_checks_it() {
    let start = Instant::now();
    let out = in_own_netns("exec \"$NETSMITH\" demo");
    out.ok();
    let text = out.out();
    for words in [
        "Got a connection from ('127.0.0.1', ",
        "client | Thank you for connecting",
        "client | Received : b'Hello World'",
        "server | received b'Hello World' from ('127.0.0.1', ",
        "server | sent b'Hello World'",
        "client | Text to send: bye",
        "client | bytearray(b'Obje')",
        "client | bytearray(b'Object oriented programs are offered as alternatives to correct ones.')",
        "server | No connection!",
        "client | netsmith scan 127.0.0.1 -p-: 65535 ports in ",
        "(the demo's)",
        "client | socket.gethostname() -> 'netsmith-demo'",
        "client | socket.gethostbyname('netsmith-demo') -> '127.0.1.1'",
        "8 of 8 systems ran as the tutorials show them.",
    ] {
        assert!(
            text.contains(words),
            "demo output lacks {words:?}\n{}",
            out.dump()
        );
    }
    assert_eq!(text.matches("\n  ok\n").count(), 8, "{}", out.dump());
    assert!(!text.contains("FAILED"), "{}", out.dump());
    assert!(
        out.stderr.is_empty(),
        "demo is quiet about internals\n{}",
        out.dump()
    );
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "demo took {:?}",
        start.elapsed()
    );
}

#[test]
fn demo_into_a_closed_pipe_exits_0_without_a_panic() {
    let out = in_own_netns("\"$NETSMITH\" demo | head -n 1; exit ${PIPESTATUS[0]}");
    out.ok();
    assert!(!out.stderr.contains("panicked"), "{}", out.dump());
}

/// The host-name step checks what it shows: a host name that resolves to
/// no address, or to one that is not this host's, fails it (and the demo).
#[test]
fn demo_fails_when_this_hosts_name_is_not_this_host() {
    for (hosts, words) in [
        (
            "127.0.0.1 localhost\n",
            "socket.gethostbyname('netsmith-demo') failed: cannot resolve netsmith-demo: no such host",
        ),
        (
            "127.0.0.1 localhost\n192.0.2.1 netsmith-demo\n",
            "192.0.2.1 is not an address of this host",
        ),
    ] {
        let out = in_own_namespaces(hosts, true, "exec \"$NETSMITH\" demo");
        out.code_is(1);
        let text = out.out();
        assert!(text.contains(words), "{}", out.dump());
        assert_eq!(text.matches("\n  ok\n").count(), 7, "{}", out.dump());
        assert_eq!(text.matches("\n  FAILED\n").count(), 1, "{}", out.dump());
        assert!(
            out.stderr.contains("1 of 8 systems failed"),
            "{}",
            out.dump()
        );
    }
}
