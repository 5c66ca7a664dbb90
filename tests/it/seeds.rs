//! The Python programs of the seed tutorials (/work/shared/seeds), kept
//! verbatim in tests/seeds/, run against netsmith: their servers with
//! `netsmith connect` as the client, their clients against `netsmith listen`.
//!
//! At test time each program is rewritten by plain string replacement: its
//! port becomes 0 (a server) or the port netsmith bound (a client), a
//! `gethostname()` or `''` host becomes 127.0.0.1 so that nothing leaves
//! loopback, and a server gets one line after its `bind` that prints the
//! bound port. That line prints to stderr, where [`Proc::wait_stderr`] can
//! read it while the server runs. Every replacement must match, so a seed
//! that changes fails here rather than running unmodified.

use std::fmt::Write as _;
use std::path::PathBuf;

use tempfile::TempDir;

use crate::util::{self, Output, Proc, WAIT};

pub(crate) const GREETING_SERVER: &str = include_str!("../seeds/greeting_server.py");
pub(crate) const GREETING_CLIENT: &str = include_str!("../seeds/greeting_client.py");
pub(crate) const ECHO_SERVER: &str = include_str!("../seeds/echo_server.py");
pub(crate) const ECHO_CLIENT: &str = include_str!("../seeds/echo_client.py");
const UDP_ECHO_SERVICE: &str = include_str!("../seeds/udp_echo_service.py");
const UDP_ECHO_SERVICE_PERSISTENT: &str = include_str!("../seeds/udp_echo_service_persistent.py");
pub(crate) const UDP_ECHO_CLIENT: &str = include_str!("../seeds/udp_echo_client.py");
const UDP_ECHO_CLIENT_PROMPT: &str = include_str!("../seeds/udp_echo_client_prompt.py");
const UDP_TIMEOUT_RECEIVER: &str = include_str!("../seeds/udp_timeout_receiver.py");
const QOTD_SERVICE: &str = include_str!("../seeds/qotd_service.py");
pub(crate) const QOTD_CLIENT: &str = include_str!("../seeds/qotd_client.py");

/// The quote of the 004 quote-of-the-day service.
pub(crate) const QUOTE: &str =
    "Object oriented programs are offered as alternatives to correct ones.";

/// A rewritten seed program in a temporary file (so that tracebacks and
/// failure messages name it).
pub(crate) struct Program {
    _dir: TempDir,
    path: PathBuf,
}

impl Program {
    /// `source` with each `(from, to)` of `edits` applied; each `from` must occur.
    pub(crate) fn new(name: &str, source: &str, edits: &[(&str, &str)]) -> Program {
        let mut text = source.to_string();
        for (from, to) in edits {
            assert!(
                text.contains(from),
                "{name} no longer contains {from:?}:\n{text}"
            );
            text = text.replace(from, to);
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        Program { _dir: dir, path }
    }

    fn args(&self) -> [&str; 2] {
        ["-u", self.path.to_str().expect("utf-8 temp path")]
    }

    /// Starts the program.
    fn spawn(&self) -> Proc {
        util::spawn_cmd(util::require("python3"), &self.args())
    }

    /// Runs the program to completion with `stdin`.
    pub(crate) fn run(&self, stdin: &[u8]) -> Output {
        util::run_cmd(util::require("python3"), &self.args(), stdin)
    }
}

/// `source` with a line after its (first) `X.bind(...)` line that prints
/// "bound port N" on stderr, indented like the bind.
fn announce_port(name: &str, source: &str) -> String {
    let mut out = String::new();
    let mut done = false;
    for line in source.split_inclusive('\n') {
        out.push_str(line);
        if done {
            continue;
        }
        let code = line.trim_start();
        if let Some(at) = code.find(".bind(") {
            let indent = &line[..line.len() - code.len()];
            let socket = &code[..at];
            let _ = writeln!(
                out,
                "{indent}print(\"bound port\", {socket}.getsockname()[1], file=__import__(\"sys\").stderr, flush=True)"
            );
            done = true;
        }
    }
    assert!(done, "{name} has no bind line:\n{source}");
    out
}

/// Starts a seed server rewritten by `edits` (which must make it bind port
/// 0 on loopback); returns it, its program and the port it bound.
pub(crate) fn serve(name: &str, source: &str, edits: &[(&str, &str)]) -> (Proc, Program, String) {
    let program = Program::new(name, &announce_port(name, source), edits);
    let mut server = program.spawn();
    let line = server.wait_stderr("bound port ");
    let port = line.trim_start_matches("bound port ").trim().to_string();
    assert!(
        port.parse::<u16>().is_ok_and(|p| p != 0),
        "{name} announced {line:?}"
    );
    (server, program, port)
}

/// Starts `netsmith listen ARGS`; returns it and the port it bound.
fn netsmith_listen(args: &[&str]) -> (Proc, String) {
    let mut server = util::spawn(args);
    let port = server.port().to_string();
    (server, port)
}

// 001: the greeting server, and its client

#[test]
fn greeting_server_thanks_netsmith_connect() {
    let edits = [
        ("socket.gethostname()", "'127.0.0.1'"),
        ("port = 9999", "port = 0"),
    ];
    let (server, _program, port) = serve("greeting_server.py", GREETING_SERVER, &edits);
    let out = util::run(&["connect", "127.0.0.1", &port], b"");
    out.ok();
    assert_eq!(out.out(), "Thank you for connecting", "{}", out.dump());
    let server = server.kill();
    assert!(
        server
            .out()
            .contains("Got a connection from ('127.0.0.1', "),
        "{}",
        server.dump()
    );
}

#[test]
fn greeting_client_reads_netsmith_listen() {
    let (server, port) = netsmith_listen(&[
        "listen",
        "127.0.0.1",
        "0",
        "--send",
        "Thank you for connecting",
    ]);
    let port_line = format!("port = {port}");
    let edits = [
        ("socket.gethostname()", "'127.0.0.1'"),
        ("port = 9999", port_line.as_str()),
    ];
    let client = Program::new("greeting_client.py", GREETING_CLIENT, &edits).run(b"");
    let server = server.finish(WAIT);
    client.ok();
    server.ok();
    assert_eq!(
        client.out(),
        "Thank you for connecting\n",
        "{}",
        client.dump()
    );
    assert_eq!(server.out(), "", "{}", server.dump());
}

// 003: the echo server and its "Hello World" client

#[test]
fn echo_server_echoes_netsmith_send() {
    let (server, _program, port) = serve(
        "echo_server.py",
        ECHO_SERVER,
        &[("PORT = 65432", "PORT = 0")],
    );
    let out = util::run(
        &["connect", "127.0.0.1", &port, "--send", "Hello World"],
        b"",
    );
    out.ok();
    assert_eq!(out.out(), "Hello World", "{}", out.dump());
    // It serves one client and exits when that client closes.
    let server = server.finish(WAIT);
    server.ok();
    assert!(
        server.out().starts_with("Connected by ('127.0.0.1', "),
        "{}",
        server.dump()
    );
}

#[test]
fn echo_client_talks_to_netsmith_listen() {
    let (server, port) = netsmith_listen(&["listen", "127.0.0.1", "0", "--send", "reply"]);
    let port_line = format!("PORT = {port}");
    let client = Program::new(
        "echo_client.py",
        ECHO_CLIENT,
        &[("PORT = 65432", port_line.as_str())],
    )
    .run(b"");
    let server = server.finish(WAIT);
    client.ok();
    server.ok();
    assert_eq!(client.out(), "Received : b'reply'\n", "{}", client.dump());
    assert_eq!(server.out(), "Hello World", "{}", server.dump());
}

// 004: the UDP echo service, one-shot (example 1) and persistent (example 2)

const UDP_SERVICE_PORT: (&str, &str) = ("('127.0.0.1',12345)", "('127.0.0.1',0)");

#[test]
fn udp_echo_service_echoes_netsmith_send() {
    let (server, _program, port) =
        serve("udp_echo_service.py", UDP_ECHO_SERVICE, &[UDP_SERVICE_PORT]);
    let out = util::run(
        &["connect", "-u", "127.0.0.1", &port, "--send", "Hello World"],
        b"",
    );
    out.ok();
    assert_eq!(out.out(), "Hello World", "{}", out.dump());
    let server = server.finish(WAIT);
    server.ok();
    let log = server.out();
    assert!(
        log.contains("received b'Hello World' from ('127.0.0.1', "),
        "{}",
        server.dump()
    );
    assert!(log.contains("sent b'Hello World'"), "{}", server.dump());
}

#[test]
fn udp_echo_service_echoes_netsmith_stdin() {
    let (server, _program, port) =
        serve("udp_echo_service.py", UDP_ECHO_SERVICE, &[UDP_SERVICE_PORT]);
    let out = util::run(&["connect", "-u", "127.0.0.1", &port], b"hi\n");
    out.ok();
    assert_eq!(out.out(), "hi\n", "{}", out.dump());
    let server = server.finish(WAIT);
    server.ok();
    assert!(
        server
            .out()
            .contains("received b'hi\\n' from ('127.0.0.1', "),
        "{}",
        server.dump()
    );
}

#[test]
fn udp_echo_service_persistent_serves_one_netsmith_after_another() {
    let name = "udp_echo_service_persistent.py";
    let (server, _program, port) = serve(name, UDP_ECHO_SERVICE_PERSISTENT, &[UDP_SERVICE_PORT]);
    let first = util::run(&["connect", "-u", "127.0.0.1", &port, "--send", "one"], b"");
    let second = util::run(&["connect", "-u", "127.0.0.1", &port], b"two\n");
    first.ok();
    second.ok();
    assert_eq!(first.out(), "one", "{}", first.dump());
    assert_eq!(second.out(), "two\n", "{}", second.dump());
    let server = server.kill();
    let log = server.out();
    assert!(log.contains("received b'one' from"), "{}", server.dump());
    assert!(log.contains("received b'two\\n' from"), "{}", server.dump());
}

#[test]
fn udp_echo_client_talks_to_netsmith_listen_udp() {
    let args = [
        "listen",
        "-u",
        "127.0.0.1",
        "0",
        "--send",
        "Hello back",
        "--timeout",
        "2s",
    ];
    let (server, port) = netsmith_listen(&args);
    let target = format!("('127.0.0.1',{port})");
    let edits = [("('127.0.0.1',12345)", target.as_str())];
    let client = Program::new("udp_echo_client.py", UDP_ECHO_CLIENT, &edits).run(b"");
    // After the datagram, netsmith ends once 2 s pass without another.
    let server = server.finish(WAIT);
    client.ok();
    server.ok();
    let want =
        format!("sending...\nreceiving...\nb'Hello back' received from ('127.0.0.1', {port})\n");
    assert_eq!(client.out(), want, "{}", client.dump());
    assert_eq!(server.out(), "Hello World", "{}", server.dump());
}

#[test]
fn udp_echo_client_prompt_talks_to_netsmith_listen_udp() {
    let args = [
        "listen",
        "-u",
        "127.0.0.1",
        "0",
        "--send",
        "HI",
        "--timeout",
        "2s",
    ];
    let (server, port) = netsmith_listen(&args);
    let target = format!("('127.0.0.1',{port})");
    let edits = [("('127.0.0.1',12345)", target.as_str())];
    let client =
        Program::new("udp_echo_client_prompt.py", UDP_ECHO_CLIENT_PROMPT, &edits).run(b"hi\n");
    let server = server.finish(WAIT);
    client.ok();
    server.ok();
    let want = format!("Text to send: b'HI' received from ('127.0.0.1', {port})\n");
    assert_eq!(client.out(), want, "{}", client.dump());
    assert_eq!(server.out(), "hi", "{}", server.dump());
}

// 004: the UDP receiver with a timeout ("No connection!")

#[test]
fn udp_timeout_receiver_obtains_netsmith_datagram() {
    let name = "udp_timeout_receiver.py";
    let (receiver, _program, port) = serve(name, UDP_TIMEOUT_RECEIVER, &[UDP_SERVICE_PORT]);
    let out = util::run(
        &["connect", "-u", "127.0.0.1", &port, "--send", "ping"],
        b"",
    );
    let receiver = receiver.finish(WAIT);
    out.ok();
    receiver.ok();
    assert_eq!(out.out(), "", "the receiver never answers\n{}", out.dump());
    let log = receiver.out();
    assert!(
        log.contains("received: ('127.0.0.1', "),
        "{}",
        receiver.dump()
    );
    assert!(log.contains("obtained: b'ping'\n"), "{}", receiver.dump());
}

#[test]
fn udp_timeout_receiver_reports_no_connection_when_netsmith_sends_nothing() {
    let name = "udp_timeout_receiver.py";
    let edits = [UDP_SERVICE_PORT, ("s.settimeout(3)", "s.settimeout(1)")];
    let (receiver, _program, port) = serve(name, UDP_TIMEOUT_RECEIVER, &edits);
    // Empty stdin: no datagram at all, not even an empty one.
    let out = util::run(&["connect", "-u", "127.0.0.1", &port], b"");
    let receiver = receiver.finish(WAIT);
    out.ok();
    receiver.ok();
    assert_eq!(out.out(), "", "{}", out.dump());
    assert_eq!(receiver.out(), "No connection!\n", "{}", receiver.dump());
}

#[test]
fn listen_udp_timeout_without_sender_is_the_no_connection_case() {
    let out = util::run(&["listen", "-u", "127.0.0.1", "0", "--timeout", "1"], b"");
    out.code_is(1);
    assert!(
        out.stderr.contains("no datagram within 1s"),
        "{}",
        out.dump()
    );
    assert_eq!(out.out(), "", "{}", out.dump());
}

// 004: the quote-of-the-day service and its client

#[test]
fn qotd_service_gives_netsmith_connect_the_quote() {
    let edits = [("('',12345)", "('127.0.0.1',0)")];
    let (server, _program, port) = serve("qotd_service.py", QOTD_SERVICE, &edits);
    let out = util::run(&["connect", "127.0.0.1", &port], b"");
    out.ok();
    assert_eq!(out.out(), QUOTE, "{}", out.dump());
    // A service: it serves the next client too.
    let again = util::run(&["connect", "127.0.0.1", &port], b"");
    again.ok();
    assert_eq!(again.out(), QUOTE, "{}", again.dump());
    drop(server);
}

#[test]
fn qotd_client_reads_the_quote_from_netsmith_listen() {
    let (server, port) = netsmith_listen(&["listen", "127.0.0.1", "0", "--send", QUOTE]);
    let target = format!("('127.0.0.1',{port})");
    let client = Program::new(
        "qotd_client.py",
        QOTD_CLIENT,
        &[("('127.0.0.1',12345)", target.as_str())],
    )
    .run(b"");
    let server = server.finish(WAIT);
    client.ok();
    server.ok();
    // It prints the message as it grows, four bytes at a time, then whole.
    let out = client.out();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.first(), Some(&"bytearray(b'')"), "{}", client.dump());
    assert_eq!(
        lines.last().copied(),
        Some(format!("bytearray(b'{QUOTE}')").as_str()),
        "{}",
        client.dump()
    );
    assert_eq!(server.out(), "", "{}", server.dump());
}
