//! Programs as the peer: `listen --exec`/`--sh-exec` (one client, or one
//! child per client with `-k`), `connect --exec`, and the nc spellings
//! `-e`/`-c`. Random payloads through `/bin/cat` compared by SHA-256 after
//! a half-close, each direction's EOF passed through, ncat's environment,
//! the child's descriptors, its process group ended with the connection and
//! with netsmith, the refusals at start, the warning, TLS, and ncat on the
//! other side. Every listener binds port 0 and every wait is bounded.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream, UdpSocket};
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Barrier};
use std::time::Duration;

use crate::relay::{running, start_grandchild, wait_gone};
use crate::util::{self, Proc, WAIT};

/// Starts `netsmith listen ARGS 127.0.0.1 0` and waits for its "listening
/// on" line; returns the process and the address.
fn listen(args: &[&str]) -> (Proc, String) {
    let mut command = vec!["listen"];
    command.extend_from_slice(args);
    command.extend(["127.0.0.1", "0"]);
    let mut proc = util::spawn(&command);
    let addr = proc.listening();
    (proc, addr)
}

/// Sends `data` on `stream` from another thread, half-closes, and reads
/// everything until the other side closes; returns what came back.
fn exchange_on(stream: &TcpStream, data: &[u8]) -> Vec<u8> {
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let mut writer = stream.try_clone().unwrap();
    let data = data.to_vec();
    let sender = std::thread::spawn(move || {
        writer.write_all(&data).expect("send");
        writer.shutdown(Shutdown::Write).expect("half-close");
    });
    let mut back = Vec::new();
    let mut reader = stream;
    reader.read_to_end(&mut back).expect("read to EOF");
    sender.join().unwrap();
    back
}

/// [`exchange_on`] a new connection to `addr`.
fn exchange(addr: &str, data: &[u8]) -> Vec<u8> {
    let stream = TcpStream::connect(addr).expect("connect to the listener");
    exchange_on(&stream, data)
}

#[track_caller]
fn same(got: &[u8], want: &[u8]) {
    assert_eq!(
        (got.len(), util::sha256(got)),
        (want.len(), util::sha256(want)),
        "the bytes that came back differ from those sent"
    );
}

/// The `NAME=VALUE` lines of `env` output, as pairs.
fn vars(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .filter(|(k, _)| k.starts_with("NCAT_") || k.starts_with("NETSMITH_"))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Asserts ncat's five variables, and the same as `NETSMITH_*`.
#[track_caller]
fn has_env(vars: &[(String, String)], want: [(&str, &str); 5]) {
    for prefix in ["NCAT_", "NETSMITH_"] {
        for (name, value) in want {
            let key = format!("{prefix}{name}");
            let got = vars
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v.as_str());
            assert_eq!(got, Some(value), "{key} in {vars:?}");
        }
    }
}

#[test]
fn listen_exec_cat_carries_16_mib_each_way_through_a_half_close() {
    let (srv, addr) = listen(&["--exec", "/bin/cat"]);
    let data = util::random_bytes(16 << 20);
    same(&exchange(&addr, &data), &data);
    // One client, then the end: every byte arrived, exit 0.
    srv.wait_exit(WAIT).ok();
}

#[test]
fn connect_exec_cat_carries_16_mib_each_way_through_a_half_close() {
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = server.local_addr().unwrap().port().to_string();
    let client = util::spawn(&["connect", "--exec", "/bin/cat", "127.0.0.1", &port]);
    let (stream, _) = server.accept().unwrap();
    let data = util::random_bytes(16 << 20);
    same(&exchange_on(&stream, &data), &data);
    client.wait_exit(WAIT).ok();
}

#[test]
fn listen_k_runs_a_child_per_client_at_once_each_with_its_own_output() {
    let (_srv, addr) = listen(&[
        "-k",
        "--max-conns",
        "8",
        "--sh-exec",
        "echo $NCAT_REMOTE_PORT; exec cat",
    ]);
    let clients = 4;
    // Every client has read its child's first line before any sends: the
    // four children run at the same time.
    let all_started = Arc::new(Barrier::new(clients));
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let (addr, all_started) = (addr.clone(), all_started.clone());
            std::thread::spawn(move || {
                let stream = TcpStream::connect(&addr).unwrap();
                stream.set_read_timeout(Some(WAIT)).unwrap();
                let mine = stream.local_addr().unwrap().port();
                let mut line = Vec::new();
                let mut byte = [0u8; 1];
                while !line.ends_with(b"\n") {
                    assert_eq!(
                        (&stream).read(&mut byte).unwrap(),
                        1,
                        "first line cut short"
                    );
                    line.push(byte[0]);
                }
                assert_eq!(String::from_utf8_lossy(&line).trim(), mine.to_string());
                all_started.wait();
                let data = util::random_bytes(1 << 20);
                same(&exchange_on(&stream, &data), &data);
            })
        })
        .collect();
    for t in threads {
        t.join().expect("a client failed");
    }
}

#[test]
fn children_see_ncats_environment_on_tcp_ipv6_and_unix() {
    for host in ["127.0.0.1", "[::1]"] {
        let mut srv = util::spawn(&["listen", "--sh-exec", "env", &format!("{host}:0")]);
        let addr = srv.listening();
        let stream = TcpStream::connect(&addr).unwrap();
        let (me, it) = (stream.local_addr().unwrap(), stream.peer_addr().unwrap());
        let env = String::from_utf8(exchange_on(&stream, b"")).unwrap();
        has_env(
            &vars(&env),
            [
                ("REMOTE_ADDR", &me.ip().to_string()),
                ("REMOTE_PORT", &me.port().to_string()),
                ("LOCAL_ADDR", &it.ip().to_string()),
                ("LOCAL_PORT", &it.port().to_string()),
                ("PROTO", "TCP"),
            ],
        );
        srv.wait_exit(WAIT).ok();
    }
    // connect: the remote end is the server.
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = server.local_addr().unwrap().port();
    let client = util::spawn(&["connect", "-c", "env", "127.0.0.1", &port.to_string()]);
    let (stream, them) = server.accept().unwrap();
    let env = String::from_utf8(exchange_on(&stream, b"")).unwrap();
    has_env(
        &vars(&env),
        [
            ("REMOTE_ADDR", "127.0.0.1"),
            ("REMOTE_PORT", &port.to_string()),
            ("LOCAL_ADDR", "127.0.0.1"),
            ("LOCAL_PORT", &them.port().to_string()),
            ("PROTO", "TCP"),
        ],
    );
    client.wait_exit(WAIT).ok();
    // A Unix socket's ends are "localhost" with no port, as ncat says them.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("exec.sock");
    let mut srv = util::spawn(&["listen", "--unix", path.to_str().unwrap(), "-c", "env"]);
    srv.listening();
    let mut stream = UnixStream::connect(&path).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    stream.shutdown(Shutdown::Write).unwrap();
    let mut env = String::new();
    stream.read_to_string(&mut env).unwrap();
    has_env(
        &vars(&env),
        [
            ("REMOTE_ADDR", "localhost"),
            ("REMOTE_PORT", ""),
            ("LOCAL_ADDR", "localhost"),
            ("LOCAL_PORT", ""),
            ("PROTO", "TCP"),
        ],
    );
    srv.wait_exit(WAIT).ok();
}

#[test]
fn a_child_gets_only_descriptors_0_1_2_even_when_netsmith_inherited_more() {
    // netsmith starts with descriptor 7 open without close-on-exec, as a
    // shell's `7</dev/null` leaves it.
    let mut srv = util::spawn_cmd(
        "/bin/sh",
        &[
            "-c",
            "exec 7</dev/null; exec \"$0\" \"$@\"",
            util::bin().to_str().unwrap(),
            "listen",
            "-k",
            "--sh-exec",
            "ls /proc/$$/fd",
            "127.0.0.1",
            "0",
        ],
    );
    let addr = srv.listening();
    let inherited = std::fs::read_link(format!("/proc/{}/fd/7", srv.pid()));
    assert!(
        inherited.is_ok_and(|p| p == std::path::Path::new("/dev/null")),
        "the test did not give netsmith descriptor 7"
    );
    for _ in 0..2 {
        let fds = String::from_utf8(exchange(&addr, b"")).unwrap();
        let fds: Vec<&str> = fds.split_whitespace().collect();
        assert_eq!(fds, ["0", "1", "2"], "the child's descriptors");
    }
}

#[test]
fn the_peers_eof_closes_the_childs_stdin() {
    let (srv, addr) = listen(&["--exec", "wc -c"]);
    let data = util::random_bytes(100_000);
    assert_eq!(exchange(&addr, &data), b"100000\n");
    srv.wait_exit(WAIT).ok();
}

#[test]
fn the_childs_eof_half_closes_the_socket_and_its_input_still_arrives() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("received");
    let program = format!("echo first; exec >&-; cat > '{}'", file.display());
    let (srv, addr) = listen(&["--sh-exec", &program]);
    let mut stream = TcpStream::connect(&addr).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    // The child closed its stdout: its line, then EOF, while this side
    // has not even started sending.
    let mut first = Vec::new();
    stream.read_to_end(&mut first).unwrap();
    assert_eq!(first, b"first\n");
    // The other direction is still open: the child reads all of this.
    let data = util::random_bytes(4 << 20);
    stream.write_all(&data).unwrap();
    stream.shutdown(Shutdown::Write).unwrap();
    srv.wait_exit(WAIT).ok();
    same(&std::fs::read(&file).unwrap(), &data);
}

#[test]
fn a_child_that_exits_early_has_its_output_delivered_and_the_connection_closed() {
    let (srv, addr) = listen(&["--sh-exec", "echo bye"]);
    let stream = TcpStream::connect(&addr).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    // The client keeps sending what nobody reads; the answer still comes
    // whole, then EOF, not a reset.
    let mut writer = stream.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        let chunk = vec![b'x'; 64 << 10];
        for _ in 0..64 {
            if writer.write_all(&chunk).is_err() {
                break;
            }
        }
        let _ = writer.shutdown(Shutdown::Write);
    });
    let mut back = Vec::new();
    (&stream)
        .read_to_end(&mut back)
        .expect("the answer, then EOF");
    assert_eq!(back, b"bye\n");
    sender.join().unwrap();
    srv.wait_exit(WAIT).ok();
}

#[test]
fn a_childs_process_group_ends_with_its_connection_and_with_netsmith() {
    let program = "sleep 1000 >/dev/null & echo $!; cat";
    let (srv, addr) = listen(&["-k", "--sh-exec", program]);
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
    // netsmith is stopped with two connections open.
    let (_a, first) = start_grandchild(&addr);
    let (_b, second) = start_grandchild(&addr);
    assert!(running(first) && running(second));
    srv.signal("TERM");
    srv.wait_exit(WAIT).code_is(130);
    wait_gone(first, "after netsmith's SIGTERM");
    wait_gone(second, "after netsmith's SIGTERM");

    // connect --exec: the same when connect is stopped.
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = server.local_addr().unwrap().port().to_string();
    let client = util::spawn(&["connect", "-c", program, "127.0.0.1", &port]);
    let (stream, _) = server.accept().unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let mut line = String::new();
    let mut byte = [0u8; 1];
    while !line.ends_with('\n') {
        assert_eq!((&stream).read(&mut byte).unwrap(), 1, "pid line cut short");
        line.push(byte[0] as char);
    }
    let pid: u32 = line.trim().parse().unwrap();
    assert!(running(pid));
    client.signal("TERM");
    client.wait_exit(WAIT).code_is(130);
    wait_gone(pid, "after connect's SIGTERM");
}

#[test]
fn a_program_that_cannot_run_is_exit_2_before_listening_or_connecting() {
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("not-executable");
    std::fs::write(&plain, "#!/bin/sh\n").unwrap();
    let plain = plain.to_str().unwrap();
    for (args, words) in [
        (
            &["listen", "--exec", "/nonexistent/prog", "0"][..],
            "cannot run /nonexistent/prog: no such file",
        ),
        (
            &["listen", "-e", "no-such-program-13 -x", "0"],
            "cannot run no-such-program-13: no such program in PATH",
        ),
        (&["listen", "--exec", plain, "0"], "not an executable file"),
        (
            &["-l", "-p", "0", "-e", "/nonexistent/prog"],
            "cannot run /nonexistent/prog",
        ),
        (
            &["connect", "--exec", "/nonexistent/prog", "127.0.0.1", "9"],
            "cannot run /nonexistent/prog",
        ),
    ] {
        let out = util::run(args, b"");
        out.code_is(2);
        assert!(out.stderr.contains(words), "{args:?}\n{}", out.dump());
        assert!(!out.stderr.contains("listening on"), "{}", out.dump());
        assert_eq!(out.stderr.lines().count(), 1, "{}", out.dump());
    }
}

#[test]
fn a_listener_with_a_program_says_who_can_run_it_even_on_loopback() {
    let (mut srv, addr) = listen(&["--exec", "/bin/cat"]);
    let line = srv.wait_stderr("warning:");
    assert_eq!(
        line,
        format!("warning: every client of {addr} can run /bin/cat (--exec /bin/cat), as this user")
    );
    drop(srv);
    // Control characters in the command line are shown escaped.
    let (mut srv, addr) = listen(&["--sh-exec", "printf '\x1b[31m'"]);
    let line = srv.wait_stderr("warning:");
    assert!(!line.contains('\x1b'), "{line:?}");
    assert!(
        line.contains(&format!(
            "every client of {addr} can run /bin/sh (--sh-exec printf '\\u{{1b}}[31m'), as this user"
        )),
        "{line:?}"
    );
}

#[test]
fn nc_style_lines_run_programs() {
    let mut srv = util::spawn(&["-l", "-p", "0", "-e", "/bin/cat"]);
    let addr = srv.listening();
    assert_eq!(exchange(&addr, b"one shot"), b"one shot");
    srv.wait_exit(WAIT).ok();
    let mut srv = util::spawn(&["-lk", "0", "-c", "cat"]);
    let addr = srv.listening();
    for text in [&b"first"[..], b"second"] {
        assert_eq!(exchange(&addr, text), text);
    }
}

#[test]
fn a_failing_program_is_exit_1_for_one_connection_and_a_warning_with_k() {
    let (srv, addr) = listen(&["--sh-exec", "cat; exit 3"]);
    assert_eq!(exchange(&addr, b"all of it"), b"all of it");
    let out = srv.wait_exit(WAIT);
    out.code_is(1);
    assert!(
        out.stderr
            .contains("netsmith: the program /bin/sh exited with status 3"),
        "{}",
        out.dump()
    );
    let (mut srv, addr) = listen(&["-k", "--sh-exec", "cat; exit 4"]);
    for _ in 0..2 {
        let stream = TcpStream::connect(&addr).unwrap();
        let me = stream.local_addr().unwrap();
        assert_eq!(exchange_on(&stream, b"x"), b"x");
        srv.wait_stderr(&format!(
            "netsmith: {me}: the program /bin/sh exited with status 4"
        ));
    }
}

#[test]
fn tls_listener_runs_a_program_over_the_encrypted_stream() {
    let mut srv = util::spawn(&["listen", "--tls", "--exec", "/bin/cat", "127.0.0.1", "0"]);
    let line = srv.wait_stderr("--pin ");
    let pin = line.split("--pin ").nth(1).unwrap().trim().to_string();
    let addr = srv.listening();
    let data = util::random_bytes(1 << 20);
    let out = util::run(&["connect", "--pin", &pin, &format!("tls://{addr}")], &data);
    out.ok();
    same(&out.stdout, &data);
    srv.wait_exit(WAIT).ok();
}

#[test]
fn ncat_client_against_listen_exec() {
    let ncat = util::require("ncat");
    let (srv, addr) = listen(&["--exec", "/bin/cat"]);
    let (host, port) = addr.rsplit_once(':').unwrap();
    let data = util::random_bytes(4 << 20);
    let out = util::run_cmd(ncat, &[host, port], &data);
    out.ok();
    same(&out.stdout, &data);
    srv.wait_exit(WAIT).ok();
}

#[test]
fn connect_exec_against_ncat_listen() {
    let ncat = util::require("ncat");
    let port = util::free_port().to_string();
    let data = util::random_bytes(4 << 20);
    let mut server = util::spawn_cmd(ncat, &["-l", "127.0.0.1", &port]);
    let mut stdin = server.take_stdin();
    let feed = data.clone();
    let feeder = std::thread::spawn(move || {
        let _ = stdin.write_all(&feed);
    });
    util::wait_tcp_listen(port.parse().unwrap());
    util::run(&["connect", "--exec", "/bin/cat", "127.0.0.1", &port], b"").ok();
    let out = server.wait_exit(WAIT);
    feeder.join().unwrap();
    out.ok();
    same(&out.stdout, &data);
}

#[test]
fn relay_programs_see_ncats_environment_too() {
    let mut relay = util::spawn(&["relay", "tcp-listen:0", "sh:env"]);
    let addr = relay.listening();
    let stream = TcpStream::connect(&addr).unwrap();
    let (me, it) = (stream.local_addr().unwrap(), stream.peer_addr().unwrap());
    let env = String::from_utf8(exchange_on(&stream, b"")).unwrap();
    has_env(
        &vars(&env),
        [
            ("REMOTE_ADDR", "127.0.0.1"),
            ("REMOTE_PORT", &me.port().to_string()),
            ("LOCAL_ADDR", "127.0.0.1"),
            ("LOCAL_PORT", &it.port().to_string()),
            ("PROTO", "TCP"),
        ],
    );
}

#[test]
fn listen_k_runs_at_most_max_conns_children_and_the_rest_wait() {
    let (_srv, addr) = listen(&[
        "-k",
        "--max-conns",
        "1",
        "--sh-exec",
        "echo $NCAT_REMOTE_PORT; exec cat",
    ]);
    let first_line = |stream: &TcpStream| {
        let mut line = String::new();
        let mut byte = [0u8; 1];
        while !line.ends_with('\n') {
            match (&*stream).read(&mut byte) {
                Ok(1) => line.push(byte[0] as char),
                other => return Err(other),
            }
        }
        Ok(line)
    };
    let a = TcpStream::connect(&addr).unwrap();
    a.set_read_timeout(Some(WAIT)).unwrap();
    first_line(&a).expect("the first client's child");
    // The second client waits in the backlog: no child, no line.
    let b = TcpStream::connect(&addr).unwrap();
    b.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut byte = [0u8; 1];
    assert!(
        (&b).read(&mut byte).is_err(),
        "a second child started beyond --max-conns 1"
    );
    // The first connection ends: the second client gets its child.
    assert_eq!(exchange_on(&a, b"a"), b"a");
    b.set_read_timeout(Some(WAIT)).unwrap();
    let line = first_line(&b).expect("the second client's child");
    assert_eq!(line.trim(), b.local_addr().unwrap().port().to_string());
}

/// Sends `what` from `socket` to `addr` and returns the next datagram.
fn ask(socket: &UdpSocket, addr: &str, what: &[u8]) -> Vec<u8> {
    socket.send_to(what, addr).unwrap();
    next_datagram(socket)
}

fn next_datagram(socket: &UdpSocket) -> Vec<u8> {
    socket.set_read_timeout(Some(WAIT)).unwrap();
    let mut buf = vec![0u8; 70_000];
    let n = socket.recv(&mut buf).expect("a datagram back");
    buf.truncate(n);
    buf
}

#[test]
fn listen_udp_k_runs_a_program_per_sender_datagrams_in_and_out() {
    let mut srv = util::spawn(&[
        "listen",
        "-u",
        "-k",
        "--sh-exec",
        // The first datagram is read by the shell, so the first line is
        // alone in the pipe when netsmith reads it: each read of the
        // program's stdout is one datagram, and an echo written at once
        // could share the read.
        "echo $NCAT_REMOTE_PORT $NCAT_PROTO; read -r _; exec cat",
        "127.0.0.1",
        "0",
    ]);
    let addr = srv.listening();
    let addr = addr.strip_prefix("udp://").unwrap().to_string();
    let senders: Vec<UdpSocket> = (0..3)
        .map(|_| UdpSocket::bind("127.0.0.1:0").unwrap())
        .collect();
    for (i, socket) in senders.iter().enumerate() {
        let port = socket.local_addr().unwrap().port();
        // The program's first line, then a datagram echoed by its cat.
        assert_eq!(
            ask(socket, &addr, b"start\n"),
            format!("{port} UDP\n").as_bytes()
        );
        let hello = format!("hello {i}\n");
        assert_eq!(ask(socket, &addr, hello.as_bytes()), hello.as_bytes());
    }
    // Each sender still talks with its own program, a large datagram whole.
    for socket in &senders {
        let data = util::random_bytes(60_000);
        assert_eq!(ask(socket, &addr, &data), data);
    }
}

#[test]
fn listen_udp_serves_the_first_sender_and_ends_with_its_program() {
    let mut srv = util::spawn(&[
        "listen",
        "-u",
        "--sh-exec",
        "read line; echo \"got $line\"",
        "127.0.0.1",
        "0",
    ]);
    let addr = srv.listening();
    let addr = addr.strip_prefix("udp://").unwrap().to_string();
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    assert_eq!(ask(&socket, &addr, b"one\n"), b"got one\n");
    srv.wait_exit(WAIT).ok();
}

#[test]
fn listen_udp_k_ends_an_idle_senders_program_and_serves_it_anew() {
    let mut srv = util::spawn(&[
        "listen",
        "-u",
        "-k",
        "-i",
        "300ms",
        "--sh-exec",
        // `read` takes the first datagram: see the test above.
        "echo $$; read -r _; exec cat",
        "127.0.0.1",
        "0",
    ]);
    let addr = srv.listening();
    let addr = addr.strip_prefix("udp://").unwrap().to_string();
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let first = ask(&socket, &addr, b"a\n");
    assert_eq!(ask(&socket, &addr, b"x\n"), b"x\n");
    let pid: u32 = String::from_utf8_lossy(&first).trim().parse().unwrap();
    srv.wait_stderr("idle for 300ms");
    wait_gone(pid, "after the idle timeout");
    // The same sender gets a new program.
    let second = ask(&socket, &addr, b"b\n");
    assert_ne!(first, second);
    assert_eq!(ask(&socket, &addr, b"y\n"), b"y\n");
}
