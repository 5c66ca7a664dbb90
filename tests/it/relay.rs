//! `netsmith relay`: random payloads through every kind of endpoint pair,
//! compared by SHA-256 after a half-close, several clients at once, a
//! target that refuses, the limits (`--allow`/`--deny`, `--max-conns`), and
//! the `--hex` inspector. Targets are `netsmith serve echo` (TCP, UDP,
//! Unix) and programs; every relay binds port 0 and every wait is bounded.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream, UdpSocket};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use crate::util::{self, Proc, WAIT};

/// How long a test waits to prove that nothing arrives.
const SILENCE: Duration = Duration::from_millis(300);

/// A `netsmith serve echo` on a free port: (process, address without scheme).
fn echo(transport: &str) -> (Proc, String) {
    let mut proc = util::spawn(&["serve", "echo=0", transport, "--udp-rate", "0"]);
    let addrs = proc.listening_services(1);
    let addr = addrs.into_values().next().expect("one socket");
    (proc, addr)
}

/// A Unix-socket echo server in `dir`: (process, socket path).
fn unix_echo(dir: &Path) -> (Proc, String) {
    let mut proc = util::spawn(&["serve", "echo", "--unix", dir.to_str().unwrap()]);
    let addrs = proc.listening_services(1);
    (proc, addrs.into_values().next().expect("one socket"))
}

/// Starts `netsmith relay ARGS` and waits for its "listening on" line;
/// returns the process and the address (or path) it listens on.
fn relay(args: &[&str]) -> (Proc, String) {
    let mut command = vec!["-v", "relay"];
    command.extend_from_slice(args);
    let mut proc = util::spawn(&command);
    let addr = proc.listening();
    let addr = addr
        .strip_prefix("udp://")
        .or_else(|| addr.strip_prefix("unix:"))
        .unwrap_or(&addr)
        .to_string();
    (proc, addr)
}

/// Connects to `addr`, sends `data` from another thread, half-closes, and
/// reads everything until the relay closes; returns what came back.
fn exchange(addr: &str, data: &[u8]) -> Vec<u8> {
    let stream = TcpStream::connect(addr).expect("connect to the relay");
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let mut writer = stream.try_clone().unwrap();
    let data = data.to_vec();
    let sender = std::thread::spawn(move || {
        writer.write_all(&data).expect("send");
        writer.shutdown(Shutdown::Write).expect("half-close");
    });
    let mut back = Vec::new();
    (&stream).read_to_end(&mut back).expect("read to EOF");
    sender.join().unwrap();
    back
}

/// Connects to `addr` and expects the relay to close the connection
/// without sending anything (a FIN, or a reset).
#[track_caller]
fn closed_without_a_byte(addr: &str) {
    // A reset may even beat the end of `connect` (a refused client).
    let mut stream = match TcpStream::connect(addr) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return,
        Err(e) => panic!("connect to the relay: {e}"),
    };
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let mut buf = [0u8; 16];
    match stream.read(&mut buf) {
        Ok(0) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        other => panic!("expected the relay to close the client, got {other:?}"),
    }
}

#[track_caller]
fn same(got: &[u8], want: &[u8]) {
    assert_eq!(got.len(), want.len(), "length differs");
    assert_eq!(util::sha256(got), util::sha256(want));
}

#[test]
fn tcp_to_tcp_carries_payloads_of_several_clients_at_once() {
    let (_echo, target) = echo("--tcp");
    for extra in [&[][..], &["--no-splice"][..]] {
        let mut args = vec!["tcp-listen:0", target.as_str()];
        args.extend_from_slice(extra);
        let (_relay, port) = relay(&args);
        let addr = port.clone();
        let clients: Vec<_> = (0..4)
            .map(|_| {
                let addr = addr.clone();
                std::thread::spawn(move || {
                    let data = util::random_bytes(4 << 20);
                    let back = exchange(&addr, &data);
                    same(&back, &data);
                })
            })
            .collect();
        for c in clients {
            c.join().expect("a client failed");
        }
    }
}

#[test]
fn tcp_to_tcp_carries_a_stream_across_an_urgent_byte() {
    // splice(2) alone would stop at the urgent mark for ever.
    let (_echo, target) = echo("--tcp");
    let (_relay, addr) = relay(&["tcp-listen:0", &format!("tcp://{target}")]);
    let before = util::random_bytes(4 << 20);
    let back = util::echo_across_urgent_mark(&addr, &before, b"after the urgent byte");
    let mut want = before;
    want.extend_from_slice(b"after the urgent byte");
    same(&back, &want);
}

#[test]
fn tcp_to_unix_carries_a_payload() {
    let dir = tempfile::tempdir().unwrap();
    let (_echo, path) = unix_echo(dir.path());
    let (_relay, port) = relay(&["tcp-listen:0", &format!("unix:{path}")]);
    let data = util::random_bytes(8 << 20);
    same(&exchange(&port, &data), &data);
}

#[test]
fn unix_listen_to_tcp_carries_a_payload() {
    let dir = tempfile::tempdir().unwrap();
    let (_echo, target) = echo("--tcp");
    let path = dir.path().join("relay.sock");
    let (_relay, _) = relay(&[&format!("unix-listen:{}", path.display()), &target]);
    let stream = UnixStream::connect(&path).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let data = util::random_bytes(2 << 20);
    let mut writer = stream.try_clone().unwrap();
    let sent = data.clone();
    let sender = std::thread::spawn(move || {
        writer.write_all(&sent).unwrap();
        writer.shutdown(Shutdown::Write).unwrap();
    });
    let mut back = Vec::new();
    (&stream).read_to_end(&mut back).unwrap();
    sender.join().unwrap();
    same(&back, &data);
}

#[test]
fn udp_clients_at_once_each_get_their_own_replies() {
    let (_echo, target) = echo("--udp");
    let (_relay, addr) = relay(&["udp-listen:0", &format!("udp://{target}")]);
    let clients: Vec<_> = (0..2)
        .map(|_| {
            let addr = addr.clone();
            std::thread::spawn(move || {
                let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
                socket
                    .set_read_timeout(Some(Duration::from_secs(2)))
                    .unwrap();
                socket.connect(&addr).unwrap();
                let (mut sent, mut got) = (Vec::new(), Vec::new());
                let mut buf = [0u8; 2048];
                for _ in 0..200 {
                    let datagram = util::random_bytes(1000);
                    socket.send(&datagram).unwrap();
                    let n = socket.recv(&mut buf).expect("a reply within 2 s");
                    sent.extend_from_slice(&datagram);
                    got.extend_from_slice(&buf[..n]);
                }
                same(&got, &sent);
            })
        })
        .collect();
    for c in clients {
        c.join().expect("a UDP client failed");
    }
}

#[test]
fn udp_sessions_expire_after_the_idle_time() {
    let (_echo, target) = echo("--udp");
    let (mut relay, addr) = relay(&["-i", "300ms", "udp-listen:0", &format!("udp://{target}")]);
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_read_timeout(Some(WAIT)).unwrap();
    socket.send_to(b"ping", &addr).unwrap();
    let mut buf = [0u8; 16];
    let n = socket.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"ping");
    relay.wait_stderr("session closed");
    socket.send_to(b"again", &addr).unwrap();
    let n = socket.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"again");
    relay.wait_stderr("#2 ");
}

#[test]
fn exec_cat_echoes_a_payload() {
    let (relay_proc, port) = relay(&["tcp-listen:0", "exec:cat"]);
    let data = util::random_bytes(4 << 20);
    same(&exchange(&port, &data), &data);
    let out = relay_proc.kill();
    assert!(
        out.stderr.contains("can run cat (exec:cat)"),
        "no warning about the program:\n{}",
        out.dump()
    );
}

#[test]
fn exec_wc_counts_after_the_half_close() {
    let (_relay, port) = relay(&["tcp-listen:0", "exec:wc -c"]);
    let data = util::random_bytes(3_000_001);
    let back = exchange(&port, &data);
    assert_eq!(String::from_utf8_lossy(&back).trim(), "3000001");
}

#[test]
fn sh_runs_a_command_line_per_client() {
    let (_relay, port) = relay(&["tcp-listen:0", "sh:cat; printf done"]);
    let data = util::random_bytes(1 << 20);
    let mut want = data.clone();
    want.extend_from_slice(b"done");
    for _ in 0..2 {
        same(&exchange(&port, &data), &want);
    }
}

#[test]
fn stdio_to_tcp_is_one_connection() {
    let (_echo, target) = echo("--tcp");
    let data = util::random_bytes(4 << 20);
    let out = util::run(&["relay", "stdio", &format!("tcp://{target}")], &data);
    out.ok();
    same(&out.stdout, &data);
    let out = util::run(&["relay", "-", &target], b"hello\n");
    out.ok();
    assert_eq!(out.stdout, b"hello\n");
}

#[test]
fn a_program_as_from_is_one_connection() {
    let (_echo, target) = echo("--tcp");
    let out = util::run(&["relay", "sh:printf hello", &target], b"");
    out.ok();
    // What came back from the echo server went to the program's stdin,
    // which printed nothing more: the relay ends when both directions have.
    assert!(out.stdout.is_empty(), "{}", out.dump());
}

#[test]
fn tcp_listen_to_stdio_serves_one_client() {
    let (mut proc, port) = relay(&["tcp-listen:0", "stdio"]);
    proc.close_stdin();
    let data = util::random_bytes(2 << 20);
    let back = exchange(&port, &data);
    assert!(back.is_empty(), "stdin was empty");
    let out = proc.wait_exit(WAIT);
    out.ok();
    same(&out.stdout, &data);
}

#[test]
fn a_refusing_target_closes_the_client_and_the_relay_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("echo.sock");
    let (mut relay, port) = relay(&["tcp-listen:0", &format!("unix:{}", path.display())]);
    let addr = port.clone();
    // No server yet: the client is closed without a byte.
    closed_without_a_byte(&addr);
    relay.wait_stderr("client closed");
    // Once the target exists, the same relay serves the next client.
    let (_echo, _) = unix_echo(dir.path());
    let data = util::random_bytes(1 << 20);
    same(&exchange(&addr, &data), &data);
}

#[test]
fn refused_tcp_target_is_logged_and_the_relay_goes_on() {
    let closed = util::free_port();
    let (mut relay, port) = relay(&["tcp-listen:0", &format!("127.0.0.1:{closed}")]);
    for _ in 0..2 {
        closed_without_a_byte(&port);
        let line = relay.wait_stderr("client closed");
        assert!(line.contains("refused"), "{line}");
    }
}

#[test]
fn deny_and_allow_choose_the_clients() {
    let (_echo, target) = echo("--tcp");
    for args in [&["--deny", "127.0.0.1"][..], &["--allow", "10.0.0.0/8"][..]] {
        let mut all = args.to_vec();
        all.extend(["tcp-listen:0", target.as_str()]);
        let (mut relay, port) = relay(&all);
        closed_without_a_byte(&port);
        relay.wait_stderr("not allowed");
    }
    let (_relay, port) = relay(&["--allow", "127.0.0.0/8", "tcp-listen:0", &target]);
    assert_eq!(exchange(&port, b"hello"), b"hello");
}

#[test]
fn max_conns_makes_the_next_client_wait() {
    let (_echo, target) = echo("--tcp");
    let (_relay, port) = relay(&["--max-conns", "1", "tcp-listen:0", &target]);
    let addr = port.clone();
    let mut first = TcpStream::connect(&addr).unwrap();
    first.set_read_timeout(Some(WAIT)).unwrap();
    first.write_all(b"a").unwrap();
    let mut buf = [0u8; 1];
    first.read_exact(&mut buf).unwrap();
    let mut second = TcpStream::connect(&addr).unwrap();
    second.write_all(b"b").unwrap();
    second.set_read_timeout(Some(SILENCE)).unwrap();
    assert!(
        second.read(&mut buf).is_err(),
        "the second client was served while the first held the only slot"
    );
    drop(first);
    second.set_read_timeout(Some(WAIT)).unwrap();
    second.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"b");
}

#[test]
fn hex_dumps_both_directions_with_time_and_connection() {
    let (_echo, target) = echo("--tcp");
    let (relay_proc, port) = relay(&["--hex", "tcp-listen:0", &target]);
    assert_eq!(exchange(&port, b"hello"), b"hello");
    std::thread::sleep(SILENCE);
    let out = relay_proc.kill();
    let sent = out
        .stderr
        .lines()
        .find(|l| l.contains("> 00000000"))
        .unwrap_or_else(|| panic!("no dump of the sent bytes\n{}", out.dump()));
    assert!(sent.contains("[#1 127.0.0.1:"), "{sent}");
    assert!(
        sent.contains("68 65 6c 6c 6f") && sent.ends_with("|hello|"),
        "{sent}"
    );
    assert!(
        sent.starts_with("20") && sent.contains('T'),
        "no timestamp: {sent}"
    );
    assert!(out.stderr.contains("< 00000000"), "{}", out.dump());

    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("dump.log");
    let (relay_proc, port) = relay(&["--log", log.to_str().unwrap(), "tcp-listen:0", &target]);
    assert_eq!(exchange(&port, b"hi"), b"hi");
    std::thread::sleep(SILENCE);
    let out = relay_proc.kill();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("> 00000000  68 69"), "{text}");
    assert!(!out.stderr.contains("00000000"), "{}", out.dump());
}

#[test]
fn idle_connections_are_closed() {
    let (_echo, target) = echo("--tcp");
    let (mut relay, port) = relay(&["-i", "300ms", "tcp-listen:0", &target]);
    closed_without_a_byte(&port);
    relay.wait_stderr("idle for 300ms");
}

// TLS: termination (tls-listen:) and origination (tls://).

/// Starts `netsmith -v relay ARGS` whose FROM is `tls-listen:` with a
/// self-signed certificate: (process, port, the `--pin` it printed).
fn tls_relay(args: &[&str]) -> (Proc, String, String) {
    let mut command = vec!["-v", "relay"];
    command.extend_from_slice(args);
    let mut proc = util::spawn(&command);
    let line = proc.wait_stderr("--pin ");
    let pin = line.split("--pin ").nth(1).unwrap().trim().to_string();
    let addr = proc.listening();
    (proc, addr, pin)
}

#[test]
fn tls_listen_terminates_for_netsmith_connect() {
    let (_echo, target) = echo("--tcp");
    let (_relay, addr, pin) = tls_relay(&["tls-listen:0", &target]);
    let data = util::random_bytes(4 << 20);
    let out = util::run(&["connect", "--pin", &pin, &format!("tls://{addr}")], &data);
    out.code_is(0);
    same(&out.stdout, &data);
    // The relay ended the TLS session properly after the echo's FIN.
    assert!(!out.stderr.contains("close_notify"), "{}", out.stderr);
}

#[test]
fn tls_listen_terminates_for_openssl_s_client() {
    let openssl = util::require("openssl");
    let (_echo, target) = echo("--tcp");
    let (_relay, addr, _pin) = tls_relay(&["tls-listen:0", &target]);
    let data = util::random_bytes(4 << 20);
    // -quiet ignores stdin's EOF, so s_client reads whatever comes back; it
    // is stopped once all of it has.
    let mut client = std::process::Command::new(openssl)
        .args(["s_client", "-quiet", "-connect", &addr])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start openssl s_client");
    let mut stdin = client.stdin.take().unwrap();
    let sent = data.clone();
    let feeder = std::thread::spawn(move || stdin.write_all(&sent));
    let mut stdout = client.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let want = data.len();
    std::thread::spawn(move || {
        let mut back = vec![0u8; want];
        let _ = tx.send(stdout.read_exact(&mut back).map(|()| back));
    });
    let back = rx.recv_timeout(WAIT);
    let _ = client.kill();
    let _ = client.wait();
    let _ = feeder.join();
    let back = back
        .expect("s_client got the echo in time")
        .expect("read the echo");
    same(&back, &data);
}

#[test]
fn tcp_to_tls_originates_to_a_pinned_serve_tls_echo() {
    let mut srv = util::spawn(&["serve", "--tls", "echo=0"]);
    let line = srv.wait_stderr("--pin ");
    let pin = line.split("--pin ").nth(1).unwrap().trim().to_string();
    let target = srv.listening_services(1)[&("echo".into(), "tls".into())].clone();
    let to = format!("tls://{target}");
    let (_relay, port) = relay(&["--pin", &pin, "tcp-listen:0", &to]);
    let data = util::random_bytes(4 << 20);
    same(&exchange(&port, &data), &data);
}

#[test]
fn tls_to_tls_carries_a_payload_through_two_relays() {
    // tcp -> tls:// -> tls-listen: -> tcp echo: both ends of TLS are relays.
    let (_echo, target) = echo("--tcp");
    let (_inner, inner_addr, pin) = tls_relay(&["tls-listen:0", &target]);
    let to = format!("tls://{inner_addr}");
    let (_outer, port) = relay(&["--pin", &pin, "tcp-listen:0", &to]);
    let data = util::random_bytes(4 << 20);
    same(&exchange(&port, &data), &data);
}

#[test]
fn refused_certificate_closes_the_client_and_the_relay_goes_on() {
    let mut srv = util::spawn(&["serve", "--tls", "echo=0"]);
    let line = srv.wait_stderr("--pin ");
    let pin = line.split("--pin ").nth(1).unwrap().trim().to_string();
    let target = srv.listening_services(1)[&("echo".into(), "tls".into())].clone();
    let port = target.rsplit(':').next().unwrap();
    // Self-signed and unpinned: verification fails (unknown issuer).
    let (mut bad, bad_addr) = relay(&["tcp-listen:0", &format!("tls://localhost:{port}")]);
    for _ in 0..2 {
        closed_without_a_byte(&bad_addr);
        let logged = bad.wait_stderr("client closed");
        assert!(logged.contains("unknown issuer"), "{logged}");
    }
    // A relay verifying with the right pin carries the same server's echo.
    let (_good, good_addr) = relay(&["--pin", &pin, "tcp-listen:0", &format!("tls://{target}")]);
    let data = util::random_bytes(64 << 10);
    same(&exchange(&good_addr, &data), &data);
    // The refusing relay still serves (and still refuses).
    closed_without_a_byte(&bad_addr);
    bad.wait_stderr("client closed");
}

#[test]
fn hardening_05_rule_forms_match_ipv4_clients_on_ipv4_and_dual_stack_listeners() {
    let (_echo, target) = echo("--tcp");
    let failures = util::check_rule_forms(|bind, flag, rule| {
        let listen = if bind.contains(':') {
            format!("tcp-listen:[{bind}]:0")
        } else {
            format!("tcp-listen:{bind}:0")
        };
        let mut relay = util::spawn(&["relay", flag, rule, &listen, &target]);
        let port = relay.port();
        (relay, port)
    });
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn hardening_02_relay_stdio_stdout_write_error_is_exit_1_and_epipe_is_quiet() {
    let (_echo, target) = echo("--tcp");
    let data = util::random_bytes(1 << 20);
    let out = util::run_to_full(&["relay", "-", &target], &data);
    util::assert_stdout_full(&out);
    // `| head`: the reader leaving is a quiet end, not "broken pipe".
    let bin = util::bin();
    let out = util::run_cmd(
        "bash",
        &[
            "-c",
            "set -o pipefail; \"$0\" relay - \"$1\" | head -c 10 >/dev/null",
            bin.to_str().unwrap(),
            &target,
        ],
        &data,
    );
    out.ok();
    assert!(out.stderr.is_empty(), "{}", out.dump());
}

/// `relay EXTRA - tls://` to an `ncat --ssl -l` that sends a line and
/// then closes without `close_notify`; relay's stdin stays open until the
/// relay has either failed or said it accepted the cut.
fn relay_from_ncat_that_cuts(extra: &[&str]) -> util::Output {
    let port = util::free_port();
    let mut ncat = util::spawn_cmd(
        util::require("ncat"),
        &["--ssl", "-l", "127.0.0.1", &port.to_string()],
    );
    ncat.write(b"from ncat\n");
    ncat.close_stdin();
    util::wait_tcp_listen(port);
    let mut args = vec!["relay", "--insecure"];
    args.extend_from_slice(extra);
    let target = format!("tls://127.0.0.1:{port}");
    args.extend(["-", &target]);
    let mut relay = util::spawn(&args);
    if extra.contains(&"--allow-truncation") {
        relay.wait_stderr("accepted: --allow-truncation");
        relay.close_stdin();
    }
    let out = relay.wait_exit(WAIT);
    let _ = ncat.kill();
    out
}

#[test]
fn hardening_03_relay_tls_side_cut_without_close_notify_is_exit_1_unless_allowed() {
    let out = relay_from_ncat_that_cuts(&[]);
    out.code_is(1);
    assert!(
        out.stderr.contains("close_notify") && out.stderr.contains("--allow-truncation"),
        "{}",
        out.dump()
    );
    let out = relay_from_ncat_that_cuts(&["--allow-truncation"]);
    out.ok();
    assert_eq!(out.stdout, b"from ncat\n");
}

/// Connects to a relay whose program starts `sleep 1000` in the background
/// and prints its pid; returns the connection and that pid.
pub(crate) fn start_grandchild(addr: &str) -> (TcpStream, u32) {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while !line.ends_with(b"\n") {
        let n = (&stream).read(&mut byte).unwrap();
        assert_eq!(n, 1, "the program's pid line was cut short");
        line.push(byte[0]);
    }
    let pid = String::from_utf8_lossy(&line).trim().parse().unwrap();
    assert!(running(pid), "sleep {pid} is not running");
    (stream, pid)
}

/// Whether process `pid` exists and is not a zombie.
pub(crate) fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let state = stat.rsplit(") ").next()?.split(' ').next()?.to_string();
            Some(state != "Z" && state != "X")
        })
        .unwrap_or(false)
}

/// Waits (bounded) until process `pid` has ended.
#[track_caller]
pub(crate) fn wait_gone(pid: u32, case: &str) {
    let deadline = std::time::Instant::now() + WAIT;
    while running(pid) {
        assert!(
            std::time::Instant::now() < deadline,
            "{case}: the program's background sleep {pid} outlived its connection"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn hardening_09_a_programs_background_jobs_end_with_its_connection_and_the_relay() {
    let program = "sh:sleep 1000 >/dev/null & echo $!; cat";
    let (mut relay, addr) = relay(&["-i", "1s", "tcp-listen:0", program]);
    // The client half-closes: cat and sh exit, the connection ends.
    let (stream, pid) = start_grandchild(&addr);
    stream.shutdown(Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    let _ = (&stream).read_to_end(&mut rest);
    wait_gone(pid, "after the client closed");
    // The client resets the connection.
    let (stream, pid) = start_grandchild(&addr);
    socket2::SockRef::from(&stream)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(stream);
    wait_gone(pid, "after a reset");
    // The connection goes idle past -i.
    let (_idle, pid) = start_grandchild(&addr);
    relay.wait_stderr("idle for 1s");
    wait_gone(pid, "after the idle timeout");
    // The relay is stopped with a connection open.
    let (_open, pid) = start_grandchild(&addr);
    relay.signal("TERM");
    let out = relay.wait_exit(WAIT);
    out.code_is(130);
    wait_gone(pid, "after the relay's SIGTERM");
}

#[test]
fn hardening_17_a_program_that_cannot_run_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("not-executable");
    std::fs::write(&plain, "#!/bin/sh\n").unwrap();
    let plain = format!("exec:{}", plain.display());
    for (to, words) in [
        (
            "exec:/nonexistent/prog",
            "cannot run /nonexistent/prog: no such file",
        ),
        (
            "exec:no-such-program-17 -x",
            "cannot run no-such-program-17: no such program in PATH",
        ),
        (plain.as_str(), "not an executable file"),
    ] {
        let out = util::run(&["relay", "tcp-listen:127.0.0.1:0", to], b"");
        out.code_is(2);
        assert!(out.stderr.contains(words), "{to}\n{}", out.dump());
        assert!(!out.stderr.contains("listening on"), "{}", out.dump());
    }
    // A bare name is found in PATH, as exec finds it.
    let (_relay, addr) = relay(&["tcp-listen:0", "exec:cat"]);
    assert_eq!(exchange(&addr, b"found"), b"found");
}

#[test]
fn hardening_08_a_full_udp_relay_evicts_the_least_recently_active_session() {
    let (_echo, target) = echo("--udp");
    let (mut relay, addr) = relay(&[
        "--max-conns",
        "2",
        "-i",
        "1m",
        "udp-listen:0",
        &format!("udp://{target}"),
    ]);
    let ask = |socket: &UdpSocket, what: &[u8]| {
        socket.set_read_timeout(Some(WAIT)).unwrap();
        socket.send_to(what, &addr).unwrap();
        let mut buf = [0u8; 64];
        let n = socket.recv(&mut buf).expect("a reply through the relay");
        assert_eq!(&buf[..n], what);
    };
    let clients: Vec<UdpSocket> = (0..3)
        .map(|_| UdpSocket::bind("127.0.0.1:0").unwrap())
        .collect();
    ask(&clients[0], b"a");
    // Apart in time, so that "least recently active" names one of them
    // (activity is kept to the millisecond).
    std::thread::sleep(Duration::from_millis(20));
    ask(&clients[1], b"b");
    // Every session is in use: the third client once got nothing until
    // one expired (here a minute), without a word.
    ask(&clients[2], b"c");
    let line = relay.wait_stderr("evicted for");
    let (a, c) = (
        clients[0].local_addr().unwrap(),
        clients[2].local_addr().unwrap(),
    );
    assert!(line.contains(&format!("{a}: evicted for {c}")), "{line}");
    relay.wait_stderr("make way for new clients");
    // The second client's session was left alone.
    ask(&clients[1], b"b again");
}

#[test]
fn hardening_04_a_udp_relay_says_what_the_kernel_dropped() {
    let (_echo, target) = echo("--udp");
    let (mut relay, addr) = relay(&["udp-listen:0", &format!("udp://{target}")]);
    let burst = UdpSocket::bind("127.0.0.1:0").unwrap();
    // 24 MB while the relay is stopped: more than its receive queue.
    relay.signal("STOP");
    for i in 0..400u32 {
        burst.send_to(&vec![i as u8; 60_000], &addr).unwrap();
    }
    relay.signal("CONT");
    // The kernel tells its count with the next datagram it queues: one
    // that is answered was queued after the drops.
    let marker = UdpSocket::bind("127.0.0.1:0").unwrap();
    marker
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut answered = false;
    for _ in 0..100 {
        marker.send_to(b"marker", &addr).unwrap();
        let mut buf = [0u8; 16];
        if marker.recv(&mut buf).is_ok_and(|n| &buf[..n] == b"marker") {
            answered = true;
            break;
        }
    }
    assert!(answered, "the relay never answered after the burst");
    let line = relay.wait_stderr("datagrams from clients");
    assert!(line.contains("the kernel dropped"), "{line}");
}

/// A TLS side cut without `close_notify` reaches the other side as a
/// reset, not as a clean end of stream that would say everything arrived.
#[test]
fn hardening_03_relay_passes_a_tls_cut_on_as_a_reset() {
    let port = util::free_port();
    let mut ncat = util::spawn_cmd(
        util::require("ncat"),
        &["--ssl", "-l", "127.0.0.1", &port.to_string()],
    );
    ncat.write(b"from ncat\n");
    ncat.close_stdin();
    util::wait_tcp_listen(port);
    let target = format!("tls://127.0.0.1:{port}");
    let mut relay = util::spawn(&[
        "relay",
        "-v",
        "--insecure",
        "tcp-listen:127.0.0.1:0",
        &target,
    ]);
    let addr = relay.listening();
    let mut client = TcpStream::connect(&addr).unwrap();
    client.set_read_timeout(Some(WAIT)).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 256];
    let end = loop {
        match client.read(&mut buf) {
            Ok(0) => break None,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => break Some(e.kind()),
        }
    };
    assert_eq!(
        end,
        Some(std::io::ErrorKind::ConnectionReset),
        "got {got:?}"
    );
    assert_eq!(got, b"from ncat\n");
    relay.wait_stderr("close_notify");
    let _ = ncat.kill();
}

/// The warning that a program is now open to clients shows control
/// characters of the user's command escaped, not sent to the terminal.
#[test]
fn hardening_18_exec_warning_escapes_control_characters() {
    let mut relay = util::spawn(&["relay", "tcp-listen:127.0.0.1:0", "sh:echo \x1b[2J"]);
    let line = relay.wait_stderr("can run");
    assert!(line.contains("\\u{1b}[2J"), "{line}");
    let out = relay.kill();
    assert!(!out.stderr.contains('\x1b'), "{}", out.dump());
}
