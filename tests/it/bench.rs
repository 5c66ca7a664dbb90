//! `netsmith bench` against netsmith's own echo server, and against broken
//! echo servers written here: a corrupted or stalled answer must be counted
//! as an error of the right kind, with exit 1, and never pass as a result.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;

use crate::util::{WAIT, run, spawn};

/// An echo server on 127.0.0.1:0 that passes each connection's bytes
/// through `mangle` (per connection, with the running offset).
fn broken_echo(mangle: fn(u64, &mut [u8]) -> bool) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    thread::spawn(move || {
        for conn in listener.incoming().take(64) {
            let Ok(mut conn) = conn else { continue };
            thread::spawn(move || serve_mangled(&mut conn, mangle));
        }
    });
    port
}

fn serve_mangled(conn: &mut TcpStream, mangle: fn(u64, &mut [u8]) -> bool) {
    conn.set_read_timeout(Some(WAIT)).unwrap();
    let mut buf = [0u8; 4096];
    let mut offset = 0u64;
    while let Ok(n) = conn.read(&mut buf) {
        if n == 0 {
            return;
        }
        if !mangle(offset, &mut buf[..n]) {
            // Stall: keep the connection open, answer nothing.
            thread::sleep(WAIT);
            return;
        }
        offset += n as u64;
        if conn.write_all(&buf[..n]).is_err() {
            return;
        }
    }
}

/// `netsmith serve echo` on a free TCP port, and its address.
fn echo_server() -> (crate::util::Proc, String) {
    let mut server = spawn(&["serve", "echo=0", "--tcp"]);
    let addr = server.listening_services(1)[&("echo".to_string(), "tcp".to_string())].clone();
    (server, addr)
}

fn json(line: &str) -> serde_json::Value {
    serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
}

#[test]
fn echo_against_netsmith_serve_reports_rates_and_latency_as_json() {
    let (server, addr) = echo_server();
    let out = run(
        &[
            "bench",
            "echo",
            &addr,
            "-c",
            "4",
            "-s",
            "100",
            "--pipeline",
            "4",
            "-d",
            "500ms",
            "--json",
        ],
        b"",
    );
    out.ok();
    let v = json(out.out().trim());
    assert_eq!(v["type"], "result");
    let requests = v["requests"].as_u64().unwrap();
    assert!(requests > 100, "{v}");
    assert_eq!(v["bytes_sent"].as_u64(), Some(requests * 100));
    assert_eq!(v["bytes_received"], v["bytes_sent"]);
    assert_eq!(v["errors"], serde_json::json!({}));
    for p in ["p50_ms", "p90_ms", "p99_ms", "p99_9_ms", "max_ms"] {
        assert!(v["latency"][p].as_f64().unwrap() > 0.0, "{p}: {v}");
    }
    let stopped = server.interrupt();
    stopped.ok();
}

#[test]
fn count_mode_stops_after_exactly_n_requests() {
    let (_server, addr) = echo_server();
    let out = run(
        &["bench", "echo", &addr, "-c", "3", "-n", "1000", "--json"],
        b"",
    );
    out.ok();
    assert_eq!(json(out.out().trim())["requests"], 1000);
}

#[test]
fn a_flipped_byte_is_a_mismatch_and_exit_1() {
    let port = broken_echo(|offset, buf| {
        // Corrupt one byte a little way into the stream.
        if (offset..offset + buf.len() as u64).contains(&300) {
            buf[(300 - offset) as usize] ^= 0x01;
        }
        true
    });
    let out = run(
        &[
            "bench",
            "echo",
            &format!("127.0.0.1:{port}"),
            "-c",
            "1",
            "-d",
            "500ms",
            "--json",
        ],
        b"",
    );
    out.code_is(1);
    assert!(out.stderr.contains("mismatch"), "{}", out.dump());
    let v = json(out.out().trim());
    assert!(v["errors"]["mismatch"].as_u64().unwrap() >= 1, "{v}");
}

#[test]
fn a_stalled_server_is_a_timeout_and_exit_1() {
    let port = broken_echo(|offset, _| offset < 640);
    let out = run(
        &[
            "bench",
            "echo",
            &format!("127.0.0.1:{port}"),
            "-c",
            "1",
            "-d",
            "1s",
            "--timeout",
            "300ms",
        ],
        b"",
    );
    out.code_is(1);
    assert!(out.out().contains("timeout"), "{}", out.dump());
    assert!(out.stderr.contains("timeout"), "{}", out.dump());
}

#[test]
fn refused_is_counted_and_allow_errors_exits_0() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let target = format!("127.0.0.1:{port}");
    let out = run(&["bench", "connect", &target, "-d", "200ms", "--json"], b"");
    out.code_is(1);
    assert!(
        json(out.out().trim())["errors"]["refused"]
            .as_u64()
            .unwrap()
            > 0
    );
    let out = run(
        &["bench", "connect", &target, "-d", "200ms", "--allow-errors"],
        b"",
    );
    out.ok();
}

#[test]
fn stream_connect_and_udp_against_serve() {
    let mut server = spawn(&["serve", "echo=0", "qotd=0", "--udp-rate", "0"]);
    let found = server.listening_services(4);
    let tcp = |svc: &str| found[&(svc.to_string(), "tcp".to_string())].clone();
    let udp = found[&("echo".to_string(), "udp".to_string())]
        .trim_start_matches("udp://")
        .to_string();

    let out = run(
        &[
            "bench",
            "stream",
            &tcp("echo"),
            "-P",
            "2",
            "-d",
            "500ms",
            "--json",
        ],
        b"",
    );
    out.ok();
    let v = json(out.out().trim());
    assert!(v["bytes_received"].as_u64().unwrap() > 1_000_000, "{v}");

    let out = run(
        &[
            "bench",
            "connect",
            &tcp("qotd"),
            "-c",
            "4",
            "-n",
            "200",
            "--json",
        ],
        b"",
    );
    out.ok();
    let v = json(out.out().trim());
    assert_eq!(v["requests"], 200);
    assert!(
        v["time_to_first_byte"]["p50_ms"].as_f64().unwrap() > 0.0,
        "{v}"
    );

    let out = run(
        &["bench", "udp", &udp, "-c", "4", "-n", "500", "--json"],
        b"",
    );
    out.ok();
    assert_eq!(json(out.out().trim())["requests"], 500);
}

#[test]
fn json_stream_prints_interval_objects_then_the_result() {
    let (_server, addr) = echo_server();
    let out = run(
        &[
            "bench",
            "echo",
            &addr,
            "-d",
            "1200ms",
            "-i",
            "300ms",
            "--json-stream",
        ],
        b"",
    );
    out.ok();
    let lines: Vec<serde_json::Value> = out.out().lines().map(json).collect();
    assert!(lines.len() >= 4, "{}", out.dump());
    assert!(
        lines[..lines.len() - 1]
            .iter()
            .all(|v| v["type"] == "interval")
    );
    assert_eq!(lines[lines.len() - 1]["type"], "result");
}

#[test]
fn hardening_02_bench_stdout_write_error_is_exit_1() {
    let mut echo = spawn(&["serve", "echo=0", "--tcp"]);
    let line = echo.wait_stderr("listening on");
    let addr = line
        .split("listening on ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap()
        .to_string();
    let out = crate::util::run_to_full(&["bench", "echo", &addr, "-n", "10"], b"");
    crate::util::assert_stdout_full(&out);
    let _ = echo.interrupt();
}

#[test]
fn hardening_11_more_workers_than_descriptors_are_refused_up_front() {
    let prlimit = crate::util::require("prlimit");
    let out = crate::util::run_cmd(
        prlimit,
        &[
            "--nofile=64",
            crate::util::bin().to_str().unwrap(),
            "bench",
            "connect",
            "127.0.0.1:9",
            "-c",
            "1000",
            "-d",
            "1s",
        ],
        b"",
    );
    out.code_is(2);
    assert!(out.stderr.contains("-c 1000"), "{}", out.dump());
    assert!(
        out.stderr.contains("descriptor limit (64)"),
        "{}",
        out.dump()
    );
    assert!(out.stderr.contains("at most -c "), "{}", out.dump());
}

#[test]
fn hardening_11_a_connection_larger_than_the_memory_limit_is_refused() {
    let out = run(
        &[
            "bench",
            "echo",
            "127.0.0.1:9",
            "-s",
            "16777216",
            "--pipeline",
            "4096",
        ],
        b"",
    );
    out.code_is(2);
    for word in [
        "--pipeline 4096",
        "64.0 GiB",
        "2.0 GiB limit",
        "at most --pipeline 126",
    ] {
        assert!(out.stderr.contains(word), "{word}: {}", out.dump());
    }
}

#[test]
fn hardening_13_a_zero_interval_is_refused_not_a_panic() {
    let out = run(&["bench", "echo", "127.0.0.1:9", "-i", "0s"], b"");
    out.code_is(2);
    assert!(
        out.stderr.contains("\"0s\" must be more than 0"),
        "{}",
        out.dump()
    );
    assert!(!out.stderr.contains("panicked"), "{}", out.dump());
}

#[test]
fn hardening_17_ctrl_c_prints_the_results_so_far_then_exits_130() {
    // An echo server that says when it has echoed a few hundred bytes, so
    // the signal comes while requests are being measured.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        let Ok((mut conn, _)) = listener.accept() else {
            return;
        };
        conn.set_read_timeout(Some(WAIT)).unwrap();
        let mut buf = [0u8; 4096];
        let mut echoed = 0;
        while let Ok(n) = conn.read(&mut buf) {
            if n == 0 || conn.write_all(&buf[..n]).is_err() {
                return;
            }
            echoed += n;
            if echoed >= 640 {
                let _ = tx.send(());
            }
        }
    });
    let addr = format!("127.0.0.1:{port}");
    let bench = spawn(&["bench", "echo", &addr, "-c", "1", "-d", "60s", "--json"]);
    rx.recv_timeout(WAIT).expect("the bench sent nothing");
    let out = bench.interrupt();
    out.code_is(130);
    let v = json(out.out().trim());
    assert_eq!(v["type"], "result", "{}", out.dump());
    assert!(v["duration_s"].as_f64().unwrap() < 60.0, "{v}");
    assert!(v["requests"].as_u64().is_some(), "{v}");
}
