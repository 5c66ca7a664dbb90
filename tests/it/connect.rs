//! `netsmith connect` against servers written here with std sockets, so each
//! test controls exactly what the peer does and when.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream, UdpSocket};
use std::os::unix::net::UnixDatagram;
use std::thread;
use std::time::{Duration, Instant};

use crate::util::{WAIT, run, spawn};

/// A one-connection TCP server on 127.0.0.1:0 running `serve` on its
/// thread; returns the port and the thread (which yields what serve returns).
fn server<T: Send + 'static>(
    serve: impl FnOnce(TcpStream) -> T + Send + 'static,
) -> (u16, thread::JoinHandle<T>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        stream.set_read_timeout(Some(WAIT)).unwrap();
        serve(stream)
    });
    (port, handle)
}

/// A UDP server on 127.0.0.1:0 that answers one datagram with
/// `answer(datagram)`; its thread yields the datagram's length.
fn udp_server(
    answer: impl FnOnce(&[u8]) -> Vec<u8> + Send + 'static,
) -> (u16, thread::JoinHandle<usize>) {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = sock.local_addr().unwrap().port();
    let handle = thread::spawn(move || {
        sock.set_read_timeout(Some(WAIT)).unwrap();
        let mut buf = vec![0u8; 65536];
        let (n, from) = sock.recv_from(&mut buf).unwrap();
        sock.send_to(&answer(&buf[..n]), from).unwrap();
        n
    });
    (port, handle)
}

fn read_all(stream: &mut TcpStream) -> Vec<u8> {
    let mut buf = Vec::new();
    stream.read_to_end(&mut buf).unwrap();
    buf
}

#[test]
fn half_closed_request_gets_its_answer() {
    // The server answers only after EOF: the request must be half-closed
    // and the answer still read.
    let (port, srv) = server(|mut s| {
        let n = read_all(&mut s).len();
        s.write_all(format!("got {n} bytes\n").as_bytes()).unwrap();
    });
    let data = crate::util::random_bytes(3 * 1024 * 1024 + 17);
    let out = run(&["connect", "127.0.0.1", &port.to_string()], &data);
    out.ok();
    assert_eq!(out.out(), format!("got {} bytes\n", data.len()));
    srv.join().unwrap();
}

/// Runs its arguments with a terminal (a pty) on stdin, types one line
/// and leaves the terminal open and idle; exits with the program's status
/// (99 if it has not exited within 10 s).
const ON_AN_IDLE_TERMINAL: &str = r#"
import os, pty, subprocess, sys
m, s = pty.openpty()
p = subprocess.Popen(sys.argv[1:], stdin=s)
os.close(s)
os.write(m, b"still typing\n")
try:
    code = p.wait(timeout=10)
except subprocess.TimeoutExpired:
    p.kill()
    code = 99
sys.exit(code)
"#;

#[test]
fn exits_when_peer_closes_even_if_a_terminal_stays_open() {
    // The server reads what was typed before it closes: closing with unread
    // bytes would send a reset, which netsmith rightly reports.
    let (port, srv) = server(|mut s| {
        let mut typed = [0u8; 13];
        s.read_exact(&mut typed).unwrap();
        s.write_all(b"bye\n").unwrap();
    });
    let bin = crate::util::bin();
    let addr = format!("127.0.0.1:{port}");
    let out = crate::util::run_cmd(
        crate::util::require("python3"),
        &[
            "-c",
            ON_AN_IDLE_TERMINAL,
            bin.to_str().unwrap(),
            "connect",
            &addr,
        ],
        b"",
    );
    srv.join().unwrap();
    out.ok();
    assert_eq!(out.stdout, b"bye\n");
}

#[test]
fn hardening_01_input_the_closed_peer_refuses_is_exit_1_with_the_count() {
    // The peer reads the first 1000 bytes and closes for good; the rest of
    // stdin comes after a pause longer than the 200 ms that once ended the
    // session quietly, and cannot be delivered.
    let (port, srv) = server(|mut s| {
        let mut first = [0u8; 1000];
        s.read_exact(&mut first).unwrap();
    });
    let mut p = spawn(&["connect", "-v", "127.0.0.1", &port.to_string()]);
    p.write(&[b'a'; 1000]);
    srv.join().unwrap();
    p.wait_stderr("peer closed after");
    // The input's own pause (the scenario), not a synchronisation.
    thread::sleep(Duration::from_millis(400));
    let mut pipe = p.take_stdin();
    let feeder = thread::spawn(move || {
        let _ = pipe.write_all(&vec![b'b'; 4 << 20]);
    });
    let out = p.wait_exit(WAIT);
    let _ = feeder.join();
    out.code_is(1);
    assert!(
        out.stderr.contains("bytes of input not sent"),
        "no count of what was not sent\n{}",
        out.dump()
    );
}

#[test]
fn hardening_02_connect_stdout_write_error_is_exit_1() {
    let (port, srv) = server(|mut s| {
        let _ = s.write_all(&vec![b'x'; 1 << 20]);
    });
    let out = crate::util::run_to_full(&["connect", "127.0.0.1", &port.to_string()], b"");
    crate::util::assert_stdout_full(&out);
    srv.join().unwrap();
}

#[test]
fn a_half_closed_peer_that_reads_slowly_still_gets_all_of_stdin() {
    // Regression: a socket write blocked on a slow reader once looked like
    // idle stdin, and the rest of stdin was dropped with exit 0.
    let (port, srv) = server(|mut s| {
        s.shutdown(Shutdown::Write).unwrap();
        thread::sleep(Duration::from_millis(700));
        read_all(&mut s).len()
    });
    let data = crate::util::random_bytes(16 << 20);
    let out = run(&["connect", "127.0.0.1", &port.to_string()], &data);
    out.ok();
    assert_eq!(srv.join().unwrap(), data.len());
}

#[test]
fn verbose_logs_each_change_of_state() {
    let (port, srv) = server(|mut s| {
        let got = read_all(&mut s);
        s.write_all(&got).unwrap();
    });
    let out = run(&["connect", "-v", "127.0.0.1", &port.to_string()], b"ping");
    out.ok();
    assert_eq!(out.stdout, b"ping");
    for words in [
        "connected to 127.0.0.1:",
        "stdin EOF after 4 bytes, write side shut down",
        "peer closed after 4 bytes",
    ] {
        assert!(
            out.stderr.contains(words),
            "missing {words:?}\n{}",
            out.dump()
        );
    }
    srv.join().unwrap();
}

#[test]
fn no_shutdown_keeps_the_write_side_open() {
    let (port, srv) = server(|mut s| {
        let mut buf = [0u8; 4];
        s.read_exact(&mut buf).unwrap();
        // No FIN may follow: a read must time out, not return 0.
        s.set_read_timeout(Some(Duration::from_millis(400)))
            .unwrap();
        let mut more = [0u8; 1];
        let eof_seen = matches!(s.read(&mut more), Ok(0));
        s.write_all(b"done").unwrap();
        eof_seen
    });
    let out = run(
        &["connect", "--no-shutdown", "127.0.0.1", &port.to_string()],
        b"data",
    );
    out.ok();
    assert_eq!(out.stdout, b"done");
    assert!(
        !srv.join().unwrap(),
        "the peer saw EOF despite --no-shutdown"
    );
}

#[test]
fn quit_after_eof_ends_without_the_peer() {
    let (port, srv) = server(|mut s| {
        let got = read_all(&mut s);
        thread::sleep(Duration::from_secs(3));
        got
    });
    let start = Instant::now();
    let out = run(
        &["connect", "-q", "300ms", "127.0.0.1", &port.to_string()],
        b"x",
    );
    out.ok();
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "took {:?}",
        start.elapsed()
    );
    assert_eq!(srv.join().unwrap(), b"x");
}

#[test]
fn idle_timeout_closes_a_silent_connection() {
    let (port, _srv) = server(|mut s| {
        let _ = read_all(&mut s);
    });
    let mut p = spawn(&["connect", "-i", "300ms", "127.0.0.1", &port.to_string()]);
    p.write(b"hello");
    let start = Instant::now();
    let out = p.wait_exit(Duration::from_secs(5));
    out.code_is(1);
    assert!(out.stderr.contains("idle for 300ms"), "{}", out.dump());
    assert!(start.elapsed() < Duration::from_secs(3));
}

#[test]
fn send_text_recv_only_and_send_only() {
    let (port, srv) = server(|mut s| {
        let got = read_all(&mut s);
        s.write_all(b"reply").unwrap();
        got
    });
    let out = run(
        &[
            "connect",
            "--send",
            "literal",
            "127.0.0.1",
            &port.to_string(),
        ],
        b"ignored stdin",
    );
    out.ok();
    assert_eq!(out.stdout, b"reply");
    assert_eq!(srv.join().unwrap(), b"literal");

    // --recv-only: nothing sent, no FIN; the server talks and closes.
    let (port, srv) = server(|mut s| {
        s.set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let mut b = [0u8; 1];
        let got = s.read(&mut b);
        s.write_all(b"news").unwrap();
        got.is_err() // timed out: no data and no EOF
    });
    let out = run(
        &["connect", "--recv-only", "127.0.0.1", &port.to_string()],
        b"not sent",
    );
    out.ok();
    assert_eq!(out.stdout, b"news");
    assert!(srv.join().unwrap(), "--recv-only sent data or EOF");

    // --send-only: what arrives is discarded.
    let (port, srv) = server(|mut s| {
        s.write_all(b"unwanted").unwrap();
        read_all(&mut s)
    });
    let out = run(
        &["connect", "--send-only", "127.0.0.1", &port.to_string()],
        b"upload",
    );
    out.ok();
    assert!(out.stdout.is_empty(), "{}", out.dump());
    assert_eq!(srv.join().unwrap(), b"upload");
}

#[test]
fn crlf_and_hexdump() {
    let (port, srv) = server(|mut s| {
        let got = read_all(&mut s);
        s.write_all(b"OK\r\n").unwrap();
        got
    });
    let out = run(
        &["connect", "--crlf", "--hex", "127.0.0.1", &port.to_string()],
        b"HELO a\nQUIT\r\n",
    );
    out.ok();
    assert_eq!(srv.join().unwrap(), b"HELO a\r\nQUIT\r\n");
    assert_eq!(out.stdout, b"OK\r\n");
    assert!(
        out.stderr
            .contains("> 00000000  48 45 4c 4f 20 61 0d 0a  51 55 49 54 0d 0a"),
        "{}",
        out.dump()
    );
    assert!(out.stderr.contains("|HELO a..QUIT..|"), "{}", out.dump());
    assert!(
        out.stderr.contains("< 00000000  4f 4b 0d 0a"),
        "{}",
        out.dump()
    );
}

#[test]
fn source_address_is_used() {
    let (port, srv) = server(|s| s.peer_addr().unwrap());
    let out = run(
        &["connect", "-s", "127.0.0.2", "127.0.0.1", &port.to_string()],
        b"",
    );
    out.ok();
    assert_eq!(srv.join().unwrap().ip().to_string(), "127.0.0.2");
}

#[test]
fn source_port_alone_fits_either_family() {
    let listener = TcpListener::bind("[::1]:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let srv = thread::spawn(move || listener.accept().unwrap().1);
    let local = crate::util::free_port();
    let out = run(
        &[
            "connect",
            "-p",
            &local.to_string(),
            "::1",
            &port.to_string(),
        ],
        b"",
    );
    out.ok();
    let peer = srv.join().unwrap();
    assert_eq!(
        (peer.ip().to_string().as_str(), peer.port()),
        ("::1", local)
    );
}

#[test]
fn refused_is_a_network_error() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = run(&["connect", "127.0.0.1", &port.to_string()], b"");
    out.code_is(1);
    assert_eq!(
        out.stderr.trim(),
        format!("netsmith: connect to 127.0.0.1:{port}: connection refused")
    );
}

#[test]
fn ipv6_literal_forms() {
    for form in [
        &["[::1]:PORT"][..],
        &["::1", "PORT"],
        &["-6", "localhost6", "PORT"],
    ] {
        let listener = TcpListener::bind("[::1]:0").unwrap();
        let port = listener.local_addr().unwrap().port().to_string();
        let srv = thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            s.write_all(b"v6").unwrap();
        });
        let args: Vec<String> = std::iter::once("connect".to_string())
            .chain(form.iter().map(|a| a.replace("PORT", &port)))
            .collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        if args.contains(&"localhost6")
            && !std::fs::read_to_string("/etc/hosts")
                .unwrap_or_default()
                .contains("localhost6")
        {
            // Not every /etc/hosts names ::1; the literal forms still ran.
            drop(srv);
            continue;
        }
        let out = run(&args, b"");
        out.ok();
        assert_eq!(out.stdout, b"v6", "{args:?}");
        srv.join().unwrap();
    }
}

#[test]
fn udp_prints_the_reply_after_stdin_ends() {
    let (port, srv) = udp_server(|got| {
        // Answer slowly: stdin has long ended when the reply arrives.
        thread::sleep(Duration::from_millis(200));
        got.to_ascii_uppercase()
    });
    let out = run(&["connect", "-u", "127.0.0.1", &port.to_string()], b"q");
    out.ok();
    assert_eq!(out.stdout, b"Q");
    srv.join().unwrap();
}

#[test]
fn udp_large_datagram_is_not_truncated() {
    let (port, srv) = udp_server(<[u8]>::to_vec);
    let payload = "x".repeat(60_000);
    let out = run(
        &[
            "connect",
            "-u",
            "--send",
            &payload,
            "127.0.0.1",
            &port.to_string(),
        ],
        b"",
    );
    out.ok();
    assert_eq!(srv.join().unwrap(), 60_000);
    assert_eq!(out.stdout.len(), 60_000);
}

#[test]
fn udp_port_unreachable_is_refused() {
    let port = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = run(
        &[
            "connect",
            "-u",
            "--send",
            "x",
            "127.0.0.1",
            &port.to_string(),
        ],
        b"",
    );
    out.code_is(1);
    assert!(out.stderr.contains("refused"), "{}", out.dump());
}

#[test]
fn udp_timeout_reports_no_reply() {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = sock.local_addr().unwrap().port();
    let start = Instant::now();
    let out = run(
        &[
            "connect",
            "-u",
            "-w",
            "300ms",
            "--send",
            "x",
            "127.0.0.1",
            &port.to_string(),
        ],
        b"",
    );
    out.code_is(1);
    assert_eq!(
        out.stderr.trim(),
        format!("netsmith: no reply from udp://127.0.0.1:{port} within 300ms")
    );
    assert!(start.elapsed() < Duration::from_secs(3));
    drop(sock);
}

#[test]
fn unix_datagram_gets_a_reply() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dgram");
    let sock = UnixDatagram::bind(&path).unwrap();
    let srv = thread::spawn(move || {
        sock.set_read_timeout(Some(WAIT)).unwrap();
        let mut buf = [0u8; 1024];
        let (n, from) = sock.recv_from(&mut buf).unwrap();
        // The client is bound to an abstract name, so it can be answered.
        let to = std::os::linux::net::SocketAddrExt::as_abstract_name(&from).map(<[u8]>::to_vec);
        assert!(to.is_some(), "client socket has no address");
        sock.send_to_addr(&buf[..n], &from).unwrap();
    });
    let out = run(
        &["connect", &format!("unixgram:{}", path.display())],
        b"hi there",
    );
    out.ok();
    assert_eq!(out.stdout, b"hi there");
    srv.join().unwrap();
}

#[test]
fn unix_stream_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s");
    let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let srv = thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).unwrap();
        s.write_all(&got).unwrap();
        s.shutdown(Shutdown::Both).unwrap();
    });
    let out = run(&["connect", "-U", path.to_str().unwrap()], b"over unix");
    out.ok();
    assert_eq!(out.stdout, b"over unix");
    srv.join().unwrap();
}

#[test]
fn hardening_19_ctrl_c_exits_130() {
    // stdin stays open and the server waits for it: nothing but the signal
    // can end the session, so the exit status cannot depend on which of
    // two endings wins (closing stdin after the signal once raced it).
    let (port, _srv) = server(|mut s| {
        let _ = read_all(&mut s);
    });
    let mut p = spawn(&["connect", "-v", "127.0.0.1", &port.to_string()]);
    p.wait_stderr("connected to");
    p.signal("INT");
    let out = p.wait_exit(WAIT);
    out.code_is(130);
}

#[test]
fn nc_style_invocation_connects() {
    let (port, srv) = server(|mut s| s.write_all(b"nc style").unwrap());
    let out = run(&["127.0.0.1", &port.to_string()], b"");
    out.ok();
    assert_eq!(out.stdout, b"nc style");
    srv.join().unwrap();
}

#[test]
fn hardening_04_connect_udp_says_how_many_replies_the_kernel_dropped() {
    // A peer that answers one datagram with 400 of 60,000 bytes while
    // connect is stopped: more than connect's receive queue holds.
    let (count, size) = (400u64, 60_000);
    let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
    peer.set_read_timeout(Some(WAIT)).unwrap();
    let port = peer.local_addr().unwrap().port().to_string();
    let mut p = spawn(&["connect", "-u", "--wait", "500ms", "127.0.0.1", &port]);
    p.write(b"hi");
    let mut buf = [0u8; 16];
    let (_, client) = peer.recv_from(&mut buf).unwrap();
    p.signal("STOP");
    for i in 0..count {
        peer.send_to(&vec![i as u8; size], client).unwrap();
    }
    p.signal("CONT");
    let out = p.finish(WAIT);
    out.code_is(1);
    assert_eq!(out.stdout.len() % size, 0, "{}", out.dump());
    let received = (out.stdout.len() / size) as u64;
    let lost = count - received;
    assert!(lost > 0, "{}", out.dump());
    assert!(
        out.stderr
            .contains(&format!("{lost} of {count} datagrams lost")),
        "{}",
        out.dump()
    );
}

#[test]
fn hardening_18_a_path_that_is_no_socket_is_said_so_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plain");
    std::fs::write(&file, "data").unwrap();
    for (path, kind) in [
        (file.to_str().unwrap(), "a regular file"),
        (dir.path().to_str().unwrap(), "a directory"),
    ] {
        let out = crate::util::run(&["connect", "-U", path], b"");
        out.code_is(2);
        assert!(
            out.stderr.contains(&format!("not a socket ({kind})")),
            "{}",
            out.dump()
        );
        assert!(!out.stderr.contains("refused"), "{}", out.dump());
    }
}

/// A peer that resets the connection while stdin is still open: the
/// error says that input was not sent, whichever direction met the reset
/// first.
#[test]
fn hardening_01_a_reset_before_stdin_eof_says_input_was_not_sent() {
    let (port, srv) = server(|mut s| {
        let mut first = [0u8; 1000];
        s.read_exact(&mut first).unwrap();
        socket2::SockRef::from(&s)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
    });
    let mut p = spawn(&["connect", "127.0.0.1", &port.to_string()]);
    p.write(&[b'a'; 1000]);
    srv.join().unwrap();
    let out = p.wait_exit(WAIT);
    out.code_is(1);
    assert!(
        out.stderr.contains("connection reset") && out.stderr.contains("input not sent"),
        "{}",
        out.dump()
    );
}
