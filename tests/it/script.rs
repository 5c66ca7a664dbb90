//! `netsmith script`: dialogues with servers written here (an SMTP-like
//! one and a login prompt), netsmith's own services, the seeds' Python
//! servers, a spawned `bc`, TLS with a pin; every failure with its exit
//! status and message; 100 steps; 64 MiB with SHA-256.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;

use crate::util::{self, Output};

/// A server on loopback that runs `talk` for each of its first `n`
/// clients, each in a thread of its own.
fn server(n: usize, talk: fn(std::net::TcpStream)) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for client in listener.incoming().take(n).flatten() {
            std::thread::spawn(move || talk(client));
        }
    });
    port
}

/// SMTP's shape: a 220 greeting, 250 to HELO, 221 to QUIT and close.
fn smtp(client: std::net::TcpStream) {
    let mut out = client.try_clone().unwrap();
    let _ = out.write_all(b"220 mail.test ready\r\n");
    for line in BufReader::new(client).lines() {
        let Ok(line) = line else { return };
        let line = line.trim_end();
        let reply = if let Some(name) = line.strip_prefix("HELO ") {
            format!("250 hello {name}\r\n")
        } else if line == "QUIT" {
            let _ = out.write_all(b"221 bye\r\n");
            return;
        } else {
            "500 what?\r\n".to_string()
        };
        let _ = out.write_all(reply.as_bytes());
    }
}

/// A login prompt: alice with "s3cret" is welcome, anyone else denied.
fn login(client: std::net::TcpStream) {
    let mut out = client.try_clone().unwrap();
    let mut lines = BufReader::new(client).lines();
    let _ = out.write_all(b"login: ");
    let user = lines.next().and_then(Result::ok).unwrap_or_default();
    let _ = out.write_all(b"password: ");
    let pass = lines.next().and_then(Result::ok).unwrap_or_default();
    if user == "alice" && pass == "s3cret" {
        let _ = out.write_all(b"welcome alice, you have 3 messages\n");
    } else {
        let _ = out.write_all(b"denied\n");
    }
}

fn script_file(text: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::Builder::new().suffix(".ns").tempfile().unwrap();
    f.write_all(text.as_bytes()).unwrap();
    f
}

fn script(args: &[&str]) -> Output {
    let mut all = vec!["script"];
    all.extend(args);
    util::run(&all, b"")
}

/// Exit 1 with one message that names `words`.
fn fails(out: &Output, words: &[&str]) {
    out.code_is(1);
    for w in words {
        assert!(out.stderr.contains(w), "lacks {w:?}\n{}", out.dump());
    }
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.dump());
}

#[test]
fn the_issue_example_speaks_smtp_with_json_and_a_transcript() {
    let port = server(1, smtp);
    let f = script_file(
        "connect 127.0.0.1 ${1}           # the server under test\n\
         expect \"220 \"\n\
         sendline \"HELO netsmith\"\n\
         expect /(?m)^250 (.*)\\r$/ timeout 2s capture HELLO\n\
         print \"it said: ${HELLO}\"\n\
         send \"QUIT\\r\\n\"\n\
         expect eof\n",
    );
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("t.log");
    let path = f.path().to_str().unwrap();
    let out = script(&[
        "--json",
        "--transcript",
        log.to_str().unwrap(),
        path,
        &port.to_string(),
    ]);
    out.ok();
    let lines: Vec<serde_json::Value> = out
        .out()
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 7, "{}", out.dump());
    assert_eq!(lines[1]["step"], "expect");
    assert_eq!(lines[1]["line"], 2);
    assert_eq!(lines[1]["matched"], "220 ");
    assert_eq!(
        lines[3]["matched"],
        "mail.test ready\\r\\n250 hello netsmith\\r"
    );
    assert_eq!(lines[6]["matched"], "\\n221 bye\\r\\n");
    assert!(
        lines
            .iter()
            .all(|l| l["ok"] == true && l["elapsed_ms"].is_number())
    );
    assert!(
        out.out().contains("it said: hello netsmith\n"),
        "{}",
        out.dump()
    );
    let t = std::fs::read_to_string(&log).unwrap();
    for want in [
        "< \"220 mail.test ready\\r\\n\"",
        "> \"HELO netsmith\\n\"",
        "> \"QUIT\\r\\n\"",
    ] {
        assert!(t.contains(want), "transcript lacks {want}:\n{t}");
    }
}

#[test]
fn a_login_dialogue_takes_arguments_and_fails_in_words() {
    let port = server(2, login).to_string();
    let steps = "connect 127.0.0.1 ${1}; expect \"login: \"; sendline ${2}; \
                 expect \"password: \"; sendline ${3}; expect /welcome (\\w+)/ capture WHO; \
                 print \"in as ${WHO}\"";
    let out = script(&["-e", steps, &port, "alice", "s3cret"]);
    out.ok();
    assert_eq!(out.out(), "in as alice\n");
    let out = script(&["-e", steps, &port, "alice", "wrong"]);
    fails(
        &out,
        &["-e:1: expect /welcome (\\w+)/: the peer closed the connection; received \"denied\\n\""],
    );
}

#[test]
fn netsmith_services_and_the_seed_servers() {
    let mut srv = util::spawn(&["serve", "echo=0", "qotd=0", "--tcp"]);
    let (mut echo, mut qotd) = (String::new(), String::new());
    for _ in 0..2 {
        let line = srv.wait_stderr("listening on ");
        let addr = line.split_whitespace().nth(2).unwrap().to_string();
        if line.contains("echo") {
            echo = addr;
        } else {
            qotd = addr;
        }
    }
    let out = script(&[
        "-e",
        &format!("connect {echo}; sendline ping; expect \"ping\\n\"; close; expect eof"),
    ]);
    out.ok();
    let out = script(&[
        "-e",
        &format!("connect {qotd}; expect eof capture Q; print \"${{Q}}\""),
    ]);
    out.ok();
    assert!(out.out().ends_with("\n\n"), "{}", out.dump());
    // The tutorials' echo server, and their greeting server.
    let (_s, _p, port) = crate::seeds::serve(
        "echo_server.py",
        crate::seeds::ECHO_SERVER,
        &[("PORT = 65432", "PORT = 0")],
    );
    let out = script(&[
        "-e",
        &format!(
            "connect 127.0.0.1:{port}; send \"Hello World\"; expect \"Hello World\"; close; expect eof"
        ),
    ]);
    out.ok();
    let (_s, _p, port) = crate::seeds::serve(
        "greeting_server.py",
        crate::seeds::GREETING_SERVER,
        &[
            ("socket.gethostname()", "'127.0.0.1'"),
            ("port = 9999", "port = 0"),
        ],
    );
    let out = script(&[
        "-e",
        &format!("connect 127.0.0.1 {port}; expect \"Thank you for connecting\"; expect eof"),
    ]);
    out.ok();
}

#[test]
fn spawn_talks_to_bc() {
    util::require("bc");
    let out = script(&[
        "-e",
        "spawn bc -q; sendline \"6*7\"; expect line capture R; print \"bc: ${R}\"; sendline quit; expect eof",
    ]);
    out.ok();
    assert_eq!(out.out(), "bc: 42\n");
}

#[test]
fn tls_with_a_pin() {
    let mut srv = util::spawn(&[
        "listen",
        "-k",
        "--tls",
        "--send",
        "over tls\n",
        "127.0.0.1",
        "0",
    ]);
    let line = srv.wait_stderr("--pin ");
    let pin = line.split("--pin ").nth(1).unwrap().trim().to_string();
    let port = srv.port();
    let steps = format!("connect tls://localhost:{port}; expect \"over tls\\n\"");
    let out = script(&["--pin", &pin, "-e", &steps]);
    out.ok();
    let wrong = format!("sha256:{}", "00".repeat(32));
    let out = script(&["--pin", &wrong, "-e", &steps]);
    fails(&out, &["-e:1: TLS", "does not match --pin"]);
}

#[test]
fn each_failure_says_where_what_and_what_came() {
    // A timeout shows what had arrived.
    let port = server(4, |mut c| {
        let _ = c.write_all(b"partial answer");
        std::thread::sleep(std::time::Duration::from_secs(2));
    })
    .to_string();
    let out = script(&[
        "-e",
        &format!("connect 127.0.0.1 {port}\nexpect line timeout 300ms"),
    ]);
    fails(
        &out,
        &["-e:2: expect a line: timed out after 300ms; received \"partial answer\""],
    );
    let out = script(&[
        "-e",
        &format!("connect 127.0.0.1 {port}; expect /^\\d+$/ timeout 200ms"),
    ]);
    fails(
        &out,
        &["-e:1: expect /^\\d+$/: timed out after 200ms; received \"partial answer\""],
    );
    let out = script(&[
        "-e",
        &format!("connect 127.0.0.1 {port}; expect bytes 100 timeout 200ms"),
    ]);
    fails(&out, &["expect 100 bytes: timed out"]);
    // The end of the stream in the middle.
    let port = server(1, |mut c| {
        let _ = c.write_all(b"220 hi\r\n");
    });
    let out = script(&[
        "-e",
        &format!("connect 127.0.0.1 {port}; expect \"220\"; expect \"250\""),
    ]);
    fails(
        &out,
        &["-e:1: expect \"250\": the peer closed the connection; received \" hi\\r\\n\""],
    );
    // A refused connect.
    let closed = util::free_port();
    let out = script(&["-e", &format!("connect 127.0.0.1 {closed}; sendline x")]);
    fails(
        &out,
        &[&format!(
            "-e:1: connect to 127.0.0.1:{closed}: connection refused"
        )],
    );
    // Parse errors: file, line, column; exit 2; nothing sent.
    let f = script_file("connect 127.0.0.1 9\nexpect \"ok\" timout 2s\n");
    let out = script(&[f.path().to_str().unwrap()]);
    out.code_is(2);
    let want = format!(
        "{}:2:13: after what to expect come only",
        f.path().display()
    );
    assert!(out.stderr.contains(&want), "{}", out.dump());
    let out = script(&["-e", "connect 127.0.0.1 9; send ${1}"]);
    out.code_is(2);
    assert!(
        out.stderr
            .contains("-e:1:27: ${1}: the script was given 0 arguments"),
        "{}",
        out.dump()
    );
    let out = script(&["/nonexistent/x.ns"]);
    out.code_is(2);
    assert!(
        out.stderr
            .contains("read the script /nonexistent/x.ns: no such file"),
        "{}",
        out.dump()
    );
}

#[test]
fn a_hundred_steps_and_64_mib_both_ways() {
    let mut srv = util::spawn(&["serve", "echo=0", "--tcp"]);
    let line = srv.wait_stderr("listening on ");
    let echo = line.split_whitespace().nth(2).unwrap().to_string();
    let mut text = format!("connect {echo}\n");
    for i in 0..49 {
        let _ = write!(text, "sendline \"line {i}\"\nexpect \"line {i}\\n\"\n");
    }
    text.push_str("close\n");
    let f = script_file(&text);
    let out = script(&["--json", f.path().to_str().unwrap()]);
    out.ok();
    assert_eq!(out.out().lines().count(), 100);

    let data = util::random_bytes(64 << 20);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("payload");
    std::fs::write(&path, &data).unwrap();
    let steps = format!(
        "connect {echo}; sendfile {}; expect bytes {} timeout 60s capture DATA; close; expect eof; print ${{DATA}}",
        path.display(),
        data.len()
    );
    let out = script(&["-e", &steps]);
    out.ok();
    assert_eq!(out.stdout.len(), data.len() + 1, "{}", out.dump());
    assert_eq!(util::sha256(&out.stdout[..data.len()]), util::sha256(&data));
}

#[test]
fn datagrams_each_send_one_and_answers_read_as_a_stream() {
    let mut srv = util::spawn(&["serve", "echo=0", "--udp"]);
    let line = srv.wait_stderr("listening on ");
    let addr = line.split_whitespace().nth(2).unwrap().to_string();
    let out = script(&[
        "-e",
        &format!(
            "connect {addr}; send \"one\"; expect \"one\"; sendline two; expect line capture L; print ${{L}}"
        ),
    ]);
    out.ok();
    assert_eq!(out.out(), "two\n");
}

/// `listen udp://...` waits for the first datagram and answers its sender;
/// the transcript has that first datagram too.
#[test]
fn listen_udp_talks_to_the_first_sender() {
    let dir = tempfile::tempdir().unwrap();
    let transcript = dir.path().join("t.txt");
    let mut run = util::spawn(&[
        "script",
        "--transcript",
        transcript.to_str().unwrap(),
        "-e",
        "listen udp://127.0.0.1:0; expect \"hello\"; send \"back\"; print \"done\"",
    ]);
    let line = run.wait_stderr("listening on udp://");
    let addr = line.trim().strip_prefix("listening on udp://").unwrap();
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    sock.send_to(b"hello", addr).unwrap();
    let mut buf = [0u8; 16];
    let n = sock.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"back");
    let out = run.finish(std::time::Duration::from_secs(10));
    out.ok();
    assert_eq!(out.out(), "done\n", "{}", out.dump());
    let text = std::fs::read_to_string(&transcript).unwrap();
    assert!(text.contains("< \"hello\""), "{text}");
    assert!(text.contains("> \"back\""), "{text}");
}
