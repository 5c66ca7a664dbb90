//! `netsmith demo`, the main job: every tutorial system on loopback, both
//! sides shown, exit 0 only when every exchange was right.

use std::time::{Duration, Instant};

use crate::util::{Output, bin, require, run_cmd};

/// Runs `script` (with `$NETSMITH` set to the binary) in a network
/// namespace of its own with loopback up. The demo scans every loopback
/// port: on the shared loopback it would connect to the listeners of tests
/// running beside it (a single-client `listen` would take the scan's probe
/// as its client).
fn in_own_netns(script: &str) -> Output {
    require("unshare");
    let script = format!(
        "ip link set lo up; NETSMITH='{}'; {script}",
        bin().display()
    );
    run_cmd("unshare", &["-n", "bash", "-c", &script], b"")
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
        "7 of 7 systems ran as the tutorials show them.",
    ] {
        assert!(
            text.contains(words),
            "demo output lacks {words:?}\n{}",
            out.dump()
        );
    }
    assert_eq!(text.matches("\n  ok\n").count(), 7, "{}", out.dump());
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
