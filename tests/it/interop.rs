//! netsmith against itself and against the reference tools, ncat and socat,
//! in both roles: 64 MiB of random bytes each way at once, over TCP on
//! 127.0.0.1 and `[::1]` and over Unix stream sockets, checked by SHA-256 on
//! both sides. And a request over a half-closed connection against a Python
//! server that answers only after EOF, and a peer that half-closes first
//! while netsmith still has stdin to send.
//!
//! End-of-stream behaviour of the peers, which decides whether both
//! directions can complete:
//!
//! - ncat as a client shuts down its write side at stdin EOF and keeps
//!   sending after the server's EOF; it needs no flag.
//! - ncat as a server (`ncat -l`) quits as soon as its client's EOF
//!   arrives, even with stdin left to send, so the netsmith client runs with
//!   `--no-shutdown`: it never sends EOF, and ends when ncat, done sending,
//!   half-closes.
//! - socat waits only 0.5 s for the other direction after the first EOF
//!   (`-t`); `-t 30` lets both directions finish (it still quits as soon as
//!   both have).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::util::{self, Output, Proc, WAIT};

/// The bytes sent each way.
pub(crate) const SIZE: usize = 64 << 20;

/// A program and its arguments.
pub(crate) struct Cmd {
    program: PathBuf,
    args: Vec<String>,
}

pub(crate) fn netsmith(args: &[&str]) -> Cmd {
    cmd(util::bin(), args)
}

pub(crate) fn ncat(args: &[&str]) -> Cmd {
    cmd(util::require("ncat"), args)
}

fn socat(args: &[&str]) -> Cmd {
    cmd(util::require("socat"), args)
}

pub(crate) fn cmd(program: PathBuf, args: &[&str]) -> Cmd {
    Cmd {
        program,
        args: args.iter().map(ToString::to_string).collect(),
    }
}

/// How the test learns that the server accepts connections, and where.
pub(crate) enum Ready {
    /// netsmith bound port 0 and names the port in its "listening on" line.
    Announced,
    /// A peer that cannot report its port listens on this one (from
    /// [`util::free_port`]).
    Tcp(u16),
    /// A Unix stream socket at this path.
    Unix(PathBuf),
}

/// Starts `cmd` and feeds it `data` on stdin from a thread, then EOF.
pub(crate) fn start(cmd: &Cmd, data: &Arc<Vec<u8>>) -> (Proc, JoinHandle<()>) {
    let args: Vec<&str> = cmd.args.iter().map(String::as_str).collect();
    let mut proc = util::spawn_cmd(&cmd.program, &args);
    let mut stdin = proc.take_stdin();
    let data = data.clone();
    // A process that quits early makes this write fail (EPIPE); the
    // comparison of what arrived reports it.
    let feeder = std::thread::spawn(move || {
        let _ = stdin.write_all(&data);
    });
    (proc, feeder)
}

/// Fails unless `out` exited 0, without dumping megabytes of random stdout.
#[track_caller]
pub(crate) fn assert_ok(out: &Output) {
    assert!(
        out.status.success(),
        "{} failed: {}\n--- stderr ---\n{}",
        out.cmd,
        out.status,
        out.stderr
    );
}

/// Fails unless `receiver` printed exactly `sent`, by SHA-256.
#[track_caller]
pub(crate) fn assert_received(receiver: &Output, sent: &[u8], sender: &Output) {
    let (got, want) = (util::sha256(&receiver.stdout), util::sha256(sent));
    if got == want {
        return;
    }
    let first_difference = receiver.stdout.iter().zip(sent).position(|(a, b)| a != b);
    let how = match first_difference {
        Some(at) => format!("they differ from byte {at} on"),
        None if receiver.stdout.len() < sent.len() => {
            "what arrived is a truncated copy".to_string()
        }
        None => "what was sent is followed by extra bytes".to_string(),
    };
    panic!(
        "{} printed {} bytes with SHA-256 {got}, but {} was given {} bytes with SHA-256 {want}: {how}\n\
         --- receiver stderr ---\n{}\n--- sender stderr ---\n{}",
        receiver.cmd,
        receiver.stdout.len(),
        sender.cmd,
        sent.len(),
        receiver.stderr,
        sender.stderr
    );
}

/// Starts `server`, waits until it is `ready`, connects `client(port)` (port
/// 0 for a Unix socket), and sends `size` random bytes each way at once:
/// both exit 0, and each printed exactly what the other was given on stdin.
pub(crate) fn both_ways(server: &Cmd, ready: Ready, client: impl FnOnce(u16) -> Cmd, size: usize) {
    let to_client = Arc::new(util::random_bytes(size));
    let to_server = Arc::new(util::random_bytes(size));
    let (mut srv, srv_feeder) = start(server, &to_client);
    let port = match ready {
        Ready::Announced => srv.port(),
        Ready::Tcp(port) => {
            util::wait_tcp_listen(port);
            port
        }
        Ready::Unix(path) => {
            util::wait_unix_listen(&path);
            0
        }
    };
    let (cli, cli_feeder) = start(&client(port), &to_server);
    // One WAIT for the whole transfer; the server ends with its client.
    let deadline = Instant::now() + WAIT;
    let cli = cli.finish(WAIT);
    let srv = srv.finish(
        deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_secs(2)),
    );
    let _ = cli_feeder.join();
    let _ = srv_feeder.join();
    assert_ok(&cli);
    assert_ok(&srv);
    assert_received(&srv, &to_server, &cli);
    assert_received(&cli, &to_client, &srv);
}

fn sock(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("s.sock")
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

// netsmith <-> netsmith

#[test]
fn netsmith_to_netsmith_tcp4() {
    let server = netsmith(&["listen", "127.0.0.1", "0"]);
    both_ways(
        &server,
        Ready::Announced,
        |p| netsmith(&["connect", "127.0.0.1", &p.to_string()]),
        SIZE,
    );
}

#[test]
fn netsmith_to_netsmith_tcp6() {
    let server = netsmith(&["listen", "[::1]:0"]);
    both_ways(
        &server,
        Ready::Announced,
        |p| netsmith(&["connect", &format!("[::1]:{p}")]),
        SIZE,
    );
}

#[test]
fn netsmith_to_netsmith_unix() {
    let dir = tempfile::tempdir().unwrap();
    let path = sock(&dir);
    let server = netsmith(&["listen", &format!("unix:{}", path_str(&path))]);
    both_ways(
        &server,
        Ready::Unix(path.clone()),
        |_| netsmith(&["connect", "-U", path_str(&path)]),
        SIZE,
    );
}

// ncat -l as the server, netsmith connect as the client

#[test]
fn ncat_server_netsmith_client_tcp4() {
    let port = util::free_port().to_string();
    let server = ncat(&["-l", "127.0.0.1", &port]);
    let ready = Ready::Tcp(port.parse().unwrap());
    both_ways(
        &server,
        ready,
        |_| netsmith(&["connect", "--no-shutdown", "127.0.0.1", &port]),
        SIZE,
    );
}

#[test]
fn ncat_server_netsmith_client_tcp6() {
    let port = util::free_port().to_string();
    let server = ncat(&["-6", "-l", "::1", &port]);
    let ready = Ready::Tcp(port.parse().unwrap());
    both_ways(
        &server,
        ready,
        |_| netsmith(&["connect", "--no-shutdown", "::1", &port]),
        SIZE,
    );
}

#[test]
fn ncat_server_netsmith_client_unix() {
    let dir = tempfile::tempdir().unwrap();
    let path = sock(&dir);
    let server = ncat(&["-l", "-U", path_str(&path)]);
    let client = |_| {
        netsmith(&[
            "connect",
            "--no-shutdown",
            &format!("unix:{}", path_str(&path)),
        ])
    };
    both_ways(&server, Ready::Unix(path.clone()), client, SIZE);
}

// netsmith listen as the server, ncat as the client

#[test]
fn netsmith_server_ncat_client_tcp4() {
    let server = netsmith(&["listen", "127.0.0.1", "0"]);
    both_ways(
        &server,
        Ready::Announced,
        |p| ncat(&["127.0.0.1", &p.to_string()]),
        SIZE,
    );
}

#[test]
fn netsmith_server_ncat_client_tcp6() {
    let server = netsmith(&["listen", "::1", "0"]);
    both_ways(
        &server,
        Ready::Announced,
        |p| ncat(&["-6", "::1", &p.to_string()]),
        SIZE,
    );
}

#[test]
fn netsmith_server_ncat_client_unix() {
    let dir = tempfile::tempdir().unwrap();
    let path = sock(&dir);
    let server = netsmith(&["listen", "-U", path_str(&path)]);
    both_ways(
        &server,
        Ready::Unix(path.clone()),
        |_| ncat(&["-U", path_str(&path)]),
        SIZE,
    );
}

// socat as the server, netsmith connect as the client

#[test]
fn socat_server_netsmith_client_tcp4() {
    let port = util::free_port().to_string();
    let server = socat(&[
        "-t",
        "30",
        &format!("TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr"),
        "STDIO",
    ]);
    let ready = Ready::Tcp(port.parse().unwrap());
    both_ways(
        &server,
        ready,
        |_| netsmith(&["connect", "127.0.0.1", &port]),
        SIZE,
    );
}

#[test]
fn socat_server_netsmith_client_tcp6() {
    let port = util::free_port().to_string();
    let server = socat(&[
        "-t",
        "30",
        &format!("TCP6-LISTEN:{port},bind=[::1],reuseaddr"),
        "STDIO",
    ]);
    let ready = Ready::Tcp(port.parse().unwrap());
    both_ways(
        &server,
        ready,
        |_| netsmith(&["connect", &format!("[::1]:{port}")]),
        SIZE,
    );
}

#[test]
fn socat_server_netsmith_client_unix() {
    let dir = tempfile::tempdir().unwrap();
    let path = sock(&dir);
    let server = socat(&[
        "-t",
        "30",
        &format!("UNIX-LISTEN:{}", path_str(&path)),
        "STDIO",
    ]);
    both_ways(
        &server,
        Ready::Unix(path.clone()),
        |_| netsmith(&["connect", "-U", path_str(&path)]),
        SIZE,
    );
}

// netsmith listen as the server, socat as the client

#[test]
fn netsmith_server_socat_client_tcp4() {
    let server = netsmith(&["listen", "-p", "0"]);
    both_ways(
        &server,
        Ready::Announced,
        |p| socat(&["-t", "30", "STDIO", &format!("TCP:127.0.0.1:{p}")]),
        SIZE,
    );
}

#[test]
fn netsmith_server_socat_client_tcp6() {
    let server = netsmith(&["listen", "-6", "0"]);
    both_ways(
        &server,
        Ready::Announced,
        |p| socat(&["-t", "30", "STDIO", &format!("TCP6:[::1]:{p}")]),
        SIZE,
    );
}

#[test]
fn netsmith_server_socat_client_unix() {
    let dir = tempfile::tempdir().unwrap();
    let path = sock(&dir);
    let server = netsmith(&["listen", &format!("unix:{}", path_str(&path))]);
    let client = |_| {
        socat(&[
            "-t",
            "30",
            "STDIO",
            &format!("UNIX-CONNECT:{}", path_str(&path)),
        ])
    };
    both_ways(&server, Ready::Unix(path.clone()), client, SIZE);
}

// A request over a half-closed connection

/// Reads until EOF, then answers with the byte count: only a client that
/// half-closes (and keeps reading) gets the answer.
const COUNT_SERVER: &str = r#"
import socket, sys
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(1)
print("port", s.getsockname()[1], file=sys.stderr, flush=True)
c, _ = s.accept()
n = 0
while True:
    b = c.recv(65536)
    if not b:
        break
    n += len(b)
c.sendall(b"got %d bytes\n" % n)
c.close()
"#;

#[test]
fn half_close_request_gets_the_answer() {
    let mut server = util::spawn_cmd(util::require("python3"), &["-u", "-c", COUNT_SERVER]);
    let line = server.wait_stderr("port ");
    let port = line.trim_start_matches("port ").trim();
    let out = util::run(&["connect", "127.0.0.1", port], &vec![b'x'; 1 << 20]);
    out.ok();
    assert_eq!(out.out(), "got 1048576 bytes\n", "{}", out.dump());
    server.finish(WAIT).ok();
}

// The peer half-closes first: its EOF must not cut off what we still send.
//
// A peer's EOF is a half-close: it may still be reading. ncat as a client,
// OpenBSD nc -N and socat -t keep sending their stdin after it; netsmith
// must too, or a transfer both ways at once loses the tail of whichever
// direction ends last. (The README currently documents the opposite: "stdin
// that has not been sent yet is dropped, as with ncat".)

/// Says "bye", half-closes at once, then counts what arrives until EOF.
const EARLY_EOF_PEER: &str = r#"
import socket, sys
if len(sys.argv) > 1:
    c = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
else:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    print("port", s.getsockname()[1], file=sys.stderr, flush=True)
    c, _ = s.accept()
c.sendall(b"bye\n")
c.shutdown(socket.SHUT_WR)
n = 0
while True:
    b = c.recv(65536)
    if not b:
        break
    n += len(b)
print("received", n)
"#;

/// What the early-EOF peer is sent: enough that it is still on its way when
/// the peer's EOF arrives.
const EARLY_EOF_SIZE: usize = 16 << 20;

#[test]
fn connect_sends_all_of_stdin_after_the_server_half_closes() {
    let mut server = util::spawn_cmd(util::require("python3"), &["-u", "-c", EARLY_EOF_PEER]);
    let line = server.wait_stderr("port ");
    let port = line.trim_start_matches("port ").trim();
    let out = util::run(
        &["connect", "127.0.0.1", port],
        &util::random_bytes(EARLY_EOF_SIZE),
    );
    let server = server.finish(WAIT);
    out.ok();
    server.ok();
    assert_eq!(out.out(), "bye\n", "{}", out.dump());
    assert_eq!(
        server.out(),
        format!("received {EARLY_EOF_SIZE}\n"),
        "netsmith stopped sending at the server's EOF\n{}",
        out.dump()
    );
}

#[test]
fn listen_sends_all_of_stdin_after_the_client_half_closes() {
    let data = Arc::new(util::random_bytes(EARLY_EOF_SIZE));
    let (mut server, feeder) = start(&netsmith(&["listen", "127.0.0.1", "0"]), &data);
    let port = server.port().to_string();
    let client = util::run_cmd(
        util::require("python3"),
        &["-u", "-c", EARLY_EOF_PEER, &port],
        b"",
    );
    let server = server.finish(WAIT);
    let _ = feeder.join();
    client.ok();
    server.ok();
    assert_eq!(server.out(), "bye\n", "{}", server.dump());
    assert_eq!(
        client.out(),
        format!("received {EARLY_EOF_SIZE}\n"),
        "netsmith stopped sending at the client's EOF\n{}",
        server.dump()
    );
}
