//! `--proxy`: `connect` and `relay` through real proxies. dante (SOCKS4 and
//! SOCKS5) passes half-close on, so a 16 MiB echo goes through it as
//! through nothing. microsocks and ncat's HTTP proxy close both ways at the
//! client's EOF (their own behaviour), so through them the payload goes to
//! a counting echo that closes once every byte is back, and the client
//! keeps its write side open (`--no-shutdown`) until then.

use std::process::Command;
use std::time::Duration;

use crate::util::{self, Output, Proc};

const MIB16: usize = 16 << 20;

/// `netsmith serve echo` on loopback: the process and "127.0.0.1:PORT".
pub(crate) fn echo() -> (Proc, String) {
    let mut p = util::spawn(&["serve", "echo=0", "--tcp"]);
    let line = p.listening();
    let addr = line.split_whitespace().next().unwrap().to_string();
    (p, addr)
}

/// Runs a Python server `script` with `args`; it says "port N" on stderr
/// once it listens.
fn python_server(script: &str, args: &[&str]) -> (Proc, u16) {
    let mut all = vec!["-c", script];
    all.extend(args);
    let mut p = util::spawn_cmd(util::require("python3"), &all);
    let line = p.wait_stderr("port ");
    let port = line.trim_start_matches("port ").trim().parse().unwrap();
    (p, port)
}

/// Echoes one connection's bytes back and closes once `n` have come.
fn counting_echo(n: usize) -> (Proc, u16) {
    const SCRIPT: &str = r#"
import socket, sys
n = int(sys.argv[1])
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen()
print("port", s.getsockname()[1], file=sys.stderr, flush=True)
c, _ = s.accept(); got = 0
while got < n:
    d = c.recv(65536)
    if not d: break
    c.sendall(d); got += len(d)
c.close()
"#;
    python_server(SCRIPT, &[&n.to_string()])
}

/// Serves one connection one way: `up` reads `n` bytes and answers
/// their SHA-256 in hex; `down` sends the file `arg` and closes.
pub(crate) fn one_way(mode: &str, arg: &str) -> (Proc, u16) {
    const SCRIPT: &str = r#"
import hashlib, socket, sys
mode, arg = sys.argv[1], sys.argv[2]
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen()
print("port", s.getsockname()[1], file=sys.stderr, flush=True)
c, _ = s.accept()
if mode == "up":
    n, h = int(arg), hashlib.sha256()
    while n > 0:
        d = c.recv(min(n, 65536))
        if not d: break
        h.update(d); n -= len(d)
    c.sendall(h.hexdigest().encode())
else:
    c.sendall(open(arg, "rb").read())
c.close()
"#;
    python_server(SCRIPT, &[mode, arg])
}

/// microsocks on a free port, with a user and password if given.
fn microsocks(auth: Option<(&str, &str)>) -> (Proc, u16) {
    let port = util::free_port();
    let port_text = port.to_string();
    let mut args = vec!["-i", "127.0.0.1", "-p", &port_text];
    if let Some((user, pass)) = auth {
        args.extend(["-u", user, "-P", pass]);
    }
    let p = util::spawn_cmd(util::require("microsocks"), &args);
    util::wait_tcp_listen(port);
    (p, port)
}

/// dante's server on a free port: SOCKS4 and SOCKS5, no authentication,
/// clients and targets on loopback only.
pub(crate) fn dante() -> (Proc, u16, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let port = util::free_port();
    let conf = dir.path().join("danted.conf");
    std::fs::write(
        &conf,
        format!(
            "logoutput: stderr\ninternal: 127.0.0.1 port = {port}\nexternal: 127.0.0.1\n\
             clientmethod: none\nsocksmethod: none\nuser.privileged: root\n\
             user.notprivileged: nobody\n\
             client pass {{ from: 127.0.0.0/8 to: 127.0.0.0/8 }}\n\
             socks pass {{ from: 127.0.0.0/8 to: 127.0.0.0/8 }}\n"
        ),
    )
    .unwrap();
    let conf = conf.to_str().unwrap().to_string();
    let p = util::spawn_cmd(util::require("danted"), &["-f", &conf, "-N", "1"]);
    util::wait_tcp_listen(port);
    (p, port, dir)
}

/// ncat's HTTP CONNECT proxy on a free port, with `--proxy-auth` if given.
pub(crate) fn ncat_http(auth: Option<&str>) -> (Proc, u16) {
    let port = util::free_port();
    let port_text = port.to_string();
    let mut args = vec!["-l", "--proxy-type", "http", "127.0.0.1", &port_text];
    if let Some(auth) = auth {
        args.extend(["--proxy-auth", auth]);
    }
    let p = util::spawn_cmd(util::require("ncat"), &args);
    util::wait_tcp_listen(port);
    (p, port)
}

#[track_caller]
fn intact(out: &Output, sent: &[u8]) {
    out.ok();
    assert_eq!(out.stdout.len(), sent.len(), "{}", out.dump());
    assert_eq!(
        util::sha256(&out.stdout),
        util::sha256(sent),
        "{}",
        out.dump()
    );
}

#[track_caller]
fn refused(out: &Output, words: &[&str]) {
    out.code_is(1);
    for w in words {
        assert!(out.stderr.contains(w), "no {w:?}\n{}", out.dump());
    }
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.dump());
}

#[test]
fn through_dante_16_mib_echo_both_ways_with_half_close_in_every_socks_scheme() {
    let (_dante, port, _dir) = dante();
    let (_echo, addr) = echo();
    let echo_port = addr.rsplit(':').next().unwrap();
    let data = util::random_bytes(MIB16);
    for (scheme, host) in [
        ("socks5", "127.0.0.1"),
        ("socks5h", "localhost"),
        ("socks4", "127.0.0.1"),
        ("socks4a", "127.0.0.1"),
    ] {
        let url = format!("{scheme}://127.0.0.1:{port}");
        let out = util::run(&["connect", "-4", "--proxy", &url, host, echo_port], &data);
        intact(&out, &data);
    }
}

#[test]
fn through_microsocks_with_and_without_a_password() {
    // microsocks stalls when both directions are full (it blocks writing
    // one side while the other fills), so each way is its own transfer.
    let data = util::random_bytes(MIB16);
    let (_open, open_port) = microsocks(None);
    let url = format!("socks5://127.0.0.1:{open_port}");
    let (_up, up) = one_way("up", &data.len().to_string());
    let out = util::run(
        &[
            "connect",
            "--no-shutdown",
            "--proxy",
            &url,
            "127.0.0.1",
            &up.to_string(),
        ],
        &data,
    );
    out.ok();
    assert_eq!(out.out(), util::sha256(&data), "{}", out.dump());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("down");
    std::fs::write(&file, &data).unwrap();
    let (_down, down) = one_way("down", file.to_str().unwrap());
    let out = util::run(
        &[
            "connect",
            "--recv-only",
            "--proxy",
            &url,
            "127.0.0.1",
            &down.to_string(),
        ],
        b"",
    );
    intact(&out, &data);

    let (_locked, port) = microsocks(Some(("alice", "s3cret")));
    let plain = format!("socks5://127.0.0.1:{port}");
    let (_target, target) = counting_echo(5);
    let target = target.to_string();
    let args = |extra: &[&str]| {
        let mut a = vec!["connect", "--no-shutdown"];
        a.extend(extra);
        a.extend(["127.0.0.1", target.as_str()]);
        a.iter().map(ToString::to_string).collect::<Vec<_>>()
    };
    let run =
        |a: Vec<String>| util::run(&a.iter().map(String::as_str).collect::<Vec<_>>(), b"hello");
    refused(
        &run(args(&["--proxy", &plain])),
        &[
            "through socks5://127.0.0.1:",
            "needs credentials",
            "--proxy-auth",
        ],
    );
    let wrong = run(args(&["--proxy", &plain, "--proxy-auth", "alice:nope"]));
    refused(&wrong, &["the user name or password is wrong"]);
    assert!(!wrong.stderr.contains("nope"), "{}", wrong.dump());
    let out = run(args(&["--proxy", &plain, "--proxy-auth", "alice:s3cret"]));
    intact(&out, b"hello");
    let (_target, target2) = counting_echo(5);
    let url = format!("socks5://alice:s3cret@127.0.0.1:{port}");
    let out = util::run(
        &[
            "connect",
            "--no-shutdown",
            "--proxy",
            &url,
            "127.0.0.1",
            &target2.to_string(),
        ],
        b"hello",
    );
    intact(&out, b"hello");
}

#[test]
fn through_ncat_http_connect_and_its_refusals_in_its_words() {
    let data = util::random_bytes(MIB16);
    let (_proxy, port) = ncat_http(None);
    let (_target, target) = counting_echo(data.len());
    // A bare HOST:PORT is an HTTP proxy, as ncat --proxy takes it.
    let bare = format!("127.0.0.1:{port}");
    let out = util::run(
        &[
            "connect",
            "--no-shutdown",
            "--proxy",
            &bare,
            "127.0.0.1",
            &target.to_string(),
        ],
        &data,
    );
    intact(&out, &data);
    let url = format!("http://127.0.0.1:{port}");
    let closed = util::free_port().to_string();
    refused(
        &util::run(&["connect", "--proxy", &url, "127.0.0.1", &closed], b"x"),
        &[&format!(
            "connect to 127.0.0.1:{closed} through {url}: the proxy says: HTTP/1.0 504"
        )],
    );

    let (_locked, port) = ncat_http(Some("u:p"));
    let url = format!("http://127.0.0.1:{port}");
    let (_target, target) = counting_echo(2);
    let target = target.to_string();
    refused(
        &util::run(&["connect", "--proxy", &url, "127.0.0.1", &target], b"hi"),
        &["407 Proxy Authentication Required (give --proxy-auth USER:PASS)"],
    );
    let out = util::run(
        &[
            "connect",
            "--no-shutdown",
            "--proxy",
            &url,
            "--proxy-auth",
            "u:p",
            "127.0.0.1",
            &target,
        ],
        b"hi",
    );
    intact(&out, b"hi");
}

#[test]
fn a_down_proxy_is_told_apart_from_a_refusing_target() {
    let (_proxy, port) = microsocks(None);
    let url = format!("socks5://127.0.0.1:{port}");
    let closed = util::free_port().to_string();
    refused(
        &util::run(&["connect", "--proxy", &url, "127.0.0.1", &closed], b"x"),
        &[&format!(
            "connect to 127.0.0.1:{closed} through {url}: the proxy says: connection refused \
             (SOCKS5 reply 5)"
        )],
    );
    let down = format!("socks5://127.0.0.1:{closed}");
    refused(
        &util::run(&["connect", "--proxy", &down, "127.0.0.1", "22"], b"x"),
        &[&format!("connect to proxy {down}: connection refused")],
    );
}

#[test]
fn netsmith_proxy_in_the_environment_is_used_and_its_password_never_shown() {
    let (_proxy, port) = microsocks(Some(("alice", "s3cret")));
    let (_target, target) = counting_echo(5);
    let run = |url: String| {
        let mut cmd = Command::new(util::bin());
        cmd.args(["connect", "--no-shutdown", "127.0.0.1", &target.to_string()])
            .env("NETSMITH_PROXY", url);
        let mut p = util::spawn_command(cmd, "connect with NETSMITH_PROXY".into());
        p.write(b"hello");
        p.finish(Duration::from_secs(20))
    };
    let wrong = run(format!("socks5://alice:hunter2@127.0.0.1:{port}"));
    refused(
        &wrong,
        &[
            &format!("through socks5://127.0.0.1:{port}"),
            "password is wrong",
        ],
    );
    assert!(!wrong.stderr.contains("hunter2"), "{}", wrong.dump());
    let out = run(format!("socks5://alice:s3cret@127.0.0.1:{port}"));
    intact(&out, b"hello");
}

#[test]
fn relay_reaches_its_target_through_the_proxy() {
    let (_dante, port, _dir) = dante();
    let (_echo, addr) = echo();
    let url = format!("socks5://127.0.0.1:{port}");
    let mut relay = util::spawn(&["relay", "--proxy", &url, "tcp-listen:0", &addr]);
    let relay_addr = relay.listening();
    let data = util::random_bytes(4 << 20);
    let out = util::run(&["connect", &relay_addr], &data);
    intact(&out, &data);
}

// netsmith as the proxy.

/// `netsmith proxy 0` with `extra` flags: the process and its port.
fn netsmith_proxy(extra: &[&str]) -> (Proc, u16) {
    let mut args = vec!["proxy", "0"];
    args.extend(extra);
    let mut p = util::spawn(&args);
    let port = p.port();
    (p, port)
}

/// An HTTP server for one file, `/file`: the process and its port.
fn http_server(dir: &std::path::Path) -> (Proc, u16) {
    const SCRIPT: &str = r#"
import http.server, os, sys
os.chdir(sys.argv[1])
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
print("port", s.server_port, file=sys.stderr, flush=True)
s.serve_forever()
"#;
    let dir = dir.to_str().unwrap();
    python_server(SCRIPT, &[dir])
}

/// A SOCKS5 CONNECT to 127.0.0.1:`to` through the proxy on `proxy`,
/// written by hand, then `payload` echoed back.
fn socks5_echo(proxy: u16, to: u16, payload: &[u8]) -> std::io::Result<Vec<u8>> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", proxy))?;
    s.set_read_timeout(Some(util::WAIT))?;
    s.write_all(&[5, 1, 0])?;
    let mut choice = [0u8; 2];
    s.read_exact(&mut choice)?;
    assert_eq!(choice, [5, 0]);
    let mut request = vec![5, 1, 0, 1, 127, 0, 0, 1];
    request.extend(to.to_be_bytes());
    s.write_all(&request)?;
    let mut reply = [0u8; 10];
    s.read_exact(&mut reply)?;
    assert_eq!(reply[..4], [5, 0, 0, 1], "{reply:?}");
    s.write_all(payload)?;
    s.shutdown(std::net::Shutdown::Write)?;
    let mut back = Vec::new();
    s.read_to_end(&mut back)?;
    Ok(back)
}

#[test]
fn netsmith_proxy_serves_curl_nc_ncat_and_netsmith_on_one_port() {
    let (_proxy, port) = netsmith_proxy(&[]);
    let (_echo, addr) = echo();
    let echo_port = addr.rsplit(':').next().unwrap();
    let data = util::random_bytes(MIB16);
    for url in ["socks5", "socks5h", "socks4", "socks4a", "http"] {
        let url = format!("{url}://127.0.0.1:{port}");
        let out = util::run(&["connect", "--proxy", &url, "localhost", echo_port], &data);
        intact(&out, &data);
    }
    let proxy = format!("127.0.0.1:{port}");
    for kind in ["5", "4", "connect"] {
        let out = util::run_cmd(
            util::require("nc.openbsd"),
            &["-N", "-X", kind, "-x", &proxy, "127.0.0.1", echo_port],
            b"through nc\n",
        );
        assert_eq!(out.stdout, b"through nc\n", "-X {kind}\n{}", out.dump());
    }
    for kind in ["socks5", "socks4", "http"] {
        let out = util::run_cmd(
            util::require("ncat"),
            &[
                "--proxy",
                &proxy,
                "--proxy-type",
                kind,
                "127.0.0.1",
                echo_port,
            ],
            b"through ncat\n",
        );
        assert_eq!(out.stdout, b"through ncat\n", "{kind}\n{}", out.dump());
    }
    let dir = tempfile::tempdir().unwrap();
    let page = util::random_bytes(1 << 20);
    std::fs::write(dir.path().join("file"), &page).unwrap();
    let (_web, web) = http_server(dir.path());
    for how in [
        vec!["--socks5-hostname", proxy.as_str()],
        vec!["--socks4", proxy.as_str()],
        // An absolute URI, forwarded; then the same through CONNECT (-p).
        vec!["-x", proxy.as_str()],
        vec!["-p", "-x", proxy.as_str()],
    ] {
        let mut args = vec!["-sS", "--max-time", "20"];
        args.extend(&how);
        let url = format!("http://localhost:{web}/file");
        args.push(&url);
        let out = util::run_cmd(util::require("curl"), &args, b"");
        out.ok();
        assert_eq!(
            util::sha256(&out.stdout),
            util::sha256(&page),
            "{how:?}\n{}",
            out.dump()
        );
    }
}

#[test]
fn netsmith_proxy_auth_and_destination_policy_answer_in_each_protocol() {
    let (_echo, addr) = echo();
    let echo_port = addr.rsplit(':').next().unwrap();
    let (_proxy, port) = netsmith_proxy(&["--proxy-auth", "alice:s3cret"]);
    let at = |scheme: &str, creds: &str| format!("{scheme}://{creds}127.0.0.1:{port}");
    for scheme in ["socks5", "http"] {
        let url = at(scheme, "alice:s3cret@");
        let out = util::run(&["connect", "--proxy", &url, "127.0.0.1", echo_port], b"hi");
        intact(&out, b"hi");
    }
    for (url, words) in [
        (at("socks5", ""), "needs credentials"),
        (
            at("socks5", "alice:x@"),
            "the user name or password is wrong",
        ),
        (at("http", ""), "407 Proxy Authentication Required"),
        (at("http", "alice:x@"), "407"),
        (at("socks4", ""), "request rejected"),
    ] {
        let out = util::run(&["connect", "--proxy", &url, "127.0.0.1", echo_port], b"hi");
        refused(&out, &[words]);
    }

    let (_proxy, port) = netsmith_proxy(&["--to-deny", echo_port]);
    for (scheme, words) in [
        (
            "socks5",
            "connection not allowed by the proxy's rules (SOCKS5 reply 2)",
        ),
        ("socks4", "request rejected"),
        ("http", "403 Forbidden"),
    ] {
        let url = format!("{scheme}://127.0.0.1:{port}");
        let out = util::run(&["connect", "--proxy", &url, "127.0.0.1", echo_port], b"hi");
        refused(&out, &[words]);
    }
    let closed = util::free_port().to_string();
    let url = format!("socks5://127.0.0.1:{port}");
    refused(
        &util::run(&["connect", "--proxy", &url, "127.0.0.1", &closed], b"hi"),
        &["connection refused (SOCKS5 reply 5)"],
    );
    let url = format!("http://127.0.0.1:{port}");
    refused(
        &util::run(&["connect", "--proxy", &url, "127.0.0.1", &closed], b"hi"),
        &["502 Bad Gateway"],
    );
}

#[test]
fn netsmith_proxy_answers_malformed_handshakes_and_keeps_serving() {
    use std::io::{Read, Write};
    let (mut proxy, port) = netsmith_proxy(&["-v"]);
    let (_echo, addr) = echo();
    let echo_port: u16 = addr.rsplit(':').next().unwrap().parse().unwrap();
    let long_user: Vec<u8> = [&[4u8, 1, 0, 80, 127, 0, 0, 1][..], &[b'u'; 300]].concat();
    let long_header = vec![b'X'; 17 * 1024];
    let cases: Vec<(&str, Vec<u8>, &[u8])> = vec![
        ("SOCKS5 cut short", vec![5], b""),
        (
            "SOCKS5 request of version 4",
            vec![5, 1, 0, 4, 1, 0, 1, 127, 0, 0, 1, 0, 80],
            &[5, 0, 5, 1],
        ),
        (
            "SOCKS5 BIND",
            vec![5, 1, 0, 5, 2, 0, 1, 127, 0, 0, 1, 0, 80],
            &[5, 0, 5, 7],
        ),
        (
            "SOCKS5 address type 9",
            vec![5, 1, 0, 5, 1, 0, 9],
            &[5, 0, 5, 8],
        ),
        ("SOCKS5 with no usable method", vec![5, 1, 2], &[5, 0xff]),
        (
            "SOCKS5 name with a space",
            [&[5u8, 1, 0, 5, 1, 0, 3, 3][..], b"a b", &[0, 80]].concat(),
            &[5, 0, 5, 4],
        ),
        ("SOCKS4 user id of 300 bytes", long_user, &[0, 0x5b]),
        (
            "HTTP origin-form request",
            b"GET / HTTP/1.1\r\n\r\n".to_vec(),
            b"HTTP/1.1 400",
        ),
        (
            "HTTP CONNECT without a port",
            b"CONNECT nohost HTTP/1.1\r\n\r\n".to_vec(),
            b"HTTP/1.1 400",
        ),
        ("HTTP header of 17 KiB", long_header, b"HTTP/1.1 400"),
        ("TLS client hello", vec![0x16, 3, 1, 0, 5], b""),
    ];
    let mut failures = Vec::new();
    for (what, bytes, want) in &cases {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(util::WAIT)).unwrap();
        let _ = s.write_all(bytes);
        let _ = s.shutdown(std::net::Shutdown::Write);
        let mut got = Vec::new();
        let ended = s.read_to_end(&mut got);
        if !got.starts_with(want) || ended.is_err() && got.is_empty() && !want.is_empty() {
            failures.push(format!(
                "{what}: got {got:?}, want {want:?} first ({ended:?})"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // A client that sends its handshake a byte at a time is served.
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(util::WAIT)).unwrap();
    let mut request = vec![5, 1, 0, 5, 1, 0, 1, 127, 0, 0, 1];
    request.extend(echo_port.to_be_bytes());
    for b in &request {
        s.write_all(&[*b]).unwrap();
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut reply = [0u8; 12];
    s.read_exact(&mut reply).unwrap();
    assert_eq!(reply[..4], [5, 0, 5, 0]);
    drop(s);
    // And the proxy goes on serving.
    assert_eq!(
        socks5_echo(port, echo_port, b"still here").unwrap(),
        b"still here"
    );
    proxy.wait_stderr("SOCKS5 to 127.0.0.1:");
}

#[test]
fn netsmith_proxy_serves_200_clients_at_once() {
    let (_proxy, port) = netsmith_proxy(&[]);
    let (_echo, addr) = echo();
    let echo_port: u16 = addr.rsplit(':').next().unwrap().parse().unwrap();
    let clients: Vec<_> = (0..200u32)
        .map(|i| {
            std::thread::spawn(move || {
                let payload: Vec<u8> = (0..4096u32).map(|j| (i ^ j) as u8).collect();
                let back = socks5_echo(port, echo_port, &payload).unwrap();
                back == payload
            })
        })
        .collect();
    let ok = clients
        .into_iter()
        .map(|c| c.join().unwrap_or(false))
        .filter(|ok| *ok)
        .count();
    assert_eq!(ok, 200);
}

// Through a proxy, beyond connect and relay: scan, ping --tcp, bench.

/// A listener that greets each client with `banner`, for as long as the
/// test runs.
fn greeter(banner: &'static [u8]) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut client in listener.incoming().flatten() {
            let _ = std::io::Write::write_all(&mut client, banner);
        }
    });
    port
}

/// `scan --proxy` reads each port's state from the SOCKS5 reply, through
/// netsmith's proxy and through microsocks: listeners open, closed ports
/// closed, with the proxy's reasons and the banner of an open port.
#[test]
fn scan_through_socks5_proxies_reads_states_from_reply_codes() {
    let open = [greeter(b"SSH-2.0-test\r\n"), greeter(b"")];
    let closed = [util::free_port(), util::free_port()];
    let ports: Vec<String> = open.iter().chain(&closed).map(u16::to_string).collect();
    let ports = ports.join(",");
    let (_ours, ours) = netsmith_proxy(&[]);
    let (_micro, micro) = microsocks(None);
    for port in [ours, micro] {
        let url = format!("socks5://127.0.0.1:{port}");
        let out = util::run(
            &[
                "scan",
                "127.0.0.1",
                "-p",
                &ports,
                "--all",
                "--json",
                "--banner",
                "--proxy",
                &url,
            ],
            b"",
        );
        out.ok();
        let lines: Vec<serde_json::Value> = out
            .out()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let state = |p: u16| {
            let line = lines
                .iter()
                .find(|l| l["port"] == p)
                .unwrap_or_else(|| panic!("no line for port {p}\n{}", out.dump()));
            (
                line["state"].as_str().unwrap().to_string(),
                line["reason"].as_str().unwrap().to_string(),
                line["banner"].clone(),
            )
        };
        for p in open {
            let (s, r, _) = state(p);
            assert_eq!(
                (s.as_str(), r.as_str()),
                ("open", "proxy-granted"),
                "{}",
                out.dump()
            );
        }
        assert_eq!(state(open[0]).2, "SSH-2.0-test", "{}", out.dump());
        for p in closed {
            let (s, r, _) = state(p);
            assert_eq!(
                (s.as_str(), r.as_str()),
                ("closed", "proxy-conn-refused"),
                "{}",
                out.dump()
            );
        }
        let summary = lines.last().unwrap();
        assert_eq!(
            (summary["open"].as_u64(), summary["closed"].as_u64()),
            (Some(2), Some(2))
        );
    }
}

/// A proxy that is down ends the scan with exit 1 and the proxy's failure,
/// never a table of closed ports; a proxy that cannot tell closed from
/// filtered (HTTP, SOCKS4) and UDP through a proxy are refused, exit 2.
#[test]
fn scan_through_a_down_or_unfit_proxy_says_so() {
    let down = util::free_port();
    let out = util::run(
        &[
            "scan",
            "127.0.0.1",
            "-p",
            "1-100",
            "--proxy",
            &format!("socks5://127.0.0.1:{down}"),
        ],
        b"",
    );
    out.code_is(1);
    assert!(
        out.stderr.contains(&format!(
            "connect to proxy socks5://127.0.0.1:{down}: connection refused"
        )),
        "{}",
        out.dump()
    );
    assert!(out.stdout.is_empty(), "{}", out.dump());
    for (args, words) in [
        (
            &["--proxy", "http://127.0.0.1:1"][..],
            "needs a socks5:// proxy",
        ),
        (
            &["--proxy", "socks4://127.0.0.1:1"][..],
            "needs a socks5:// proxy",
        ),
        (
            &["--proxy", "socks5://127.0.0.1:1", "-u"][..],
            "-u does not go through a proxy",
        ),
    ] {
        let mut all = vec!["scan", "127.0.0.1", "-p", "80"];
        all.extend(args);
        let out = util::run(&all, b"");
        out.code_is(2);
        assert!(out.stderr.contains(words), "{}", out.dump());
        assert_eq!(out.stderr.lines().count(), 1, "{}", out.dump());
    }
}

/// A network namespace, deleted when dropped.
struct Gone(String);

impl Drop for Gone {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

/// Through a proxy outside loopback every target is on another network,
/// "127.0.0.1" included: refused without --authorized, before anything is
/// sent. Run in a namespace of its own with no route but loopback's, so
/// nothing could leave even if the check failed.
#[test]
fn scan_through_a_proxy_beyond_loopback_needs_authorized() {
    util::require("ip");
    let ns = format!("ns-scanproxy-{}", std::process::id());
    let ip = |args: &[&str]| {
        let st = Command::new("ip").args(args).status().unwrap();
        assert!(st.success(), "ip {args:?}");
    };
    ip(&["netns", "add", &ns]);
    let _gone = Gone(ns.clone());
    ip(&["-n", &ns, "link", "set", "lo", "up"]);
    let bin = util::bin();
    let out = util::run_cmd(
        "ip",
        &[
            "netns",
            "exec",
            &ns,
            bin.to_str().unwrap(),
            "scan",
            "127.0.0.1",
            "-p",
            "22",
            "--proxy",
            "socks5://192.0.2.1:1080",
        ],
        b"",
    );
    out.code_is(2);
    for word in [
        "refusing to scan through socks5://192.0.2.1:1080",
        "outside loopback",
        "--authorized",
    ] {
        assert!(out.stderr.contains(word), "lacks {word:?}\n{}", out.dump());
    }
}

/// `ping --tcp --proxy` times the proxy's connect to the target; the name
/// goes to the proxy with socks5h; a refusal is in the proxy's words.
#[test]
fn ping_tcp_through_a_proxy() {
    let (_proxy, port) = netsmith_proxy(&[]);
    let open = greeter(b"");
    let url = format!("socks5h://127.0.0.1:{port}");
    let out = util::run(
        &[
            "ping",
            "--tcp",
            &open.to_string(),
            "-c",
            "2",
            "-i",
            "200ms",
            "--proxy",
            &url,
            "localhost",
        ],
        b"",
    );
    out.ok();
    let through = format!("localhost:{open} through {url}");
    assert!(
        out.out()
            .contains(&format!("connected to {through}: seq=2 time=")),
        "{}",
        out.dump()
    );
    assert!(
        out.out()
            .contains("2 connects tried, 2 connected, 0% packet loss"),
        "{}",
        out.dump()
    );
    let closed = util::free_port().to_string();
    let out = util::run(
        &[
            "ping",
            "--tcp",
            &closed,
            "-c",
            "1",
            "--proxy",
            &url,
            "127.0.0.1",
        ],
        b"",
    );
    out.code_is(1);
    assert!(
        out.out()
            .contains("seq=1 the proxy says: connection refused (SOCKS5 reply 5)"),
        "{}",
        out.dump()
    );
    let out = util::run(&["ping", "-c", "1", "--proxy", &url, "127.0.0.1"], b"");
    out.code_is(2);
    assert!(out.stderr.contains("add --tcp PORT"), "{}", out.dump());
}

/// `bench connect --proxy` and `bench stream --proxy` load a server
/// through the proxy: every connection counted, every byte checked.
#[test]
fn bench_through_a_proxy() {
    let (_proxy, port) = netsmith_proxy(&[]);
    let mut qotd = util::spawn(&["serve", "qotd=0", "--tcp"]);
    let line = qotd.listening();
    let qotd_addr = line.split_whitespace().next().unwrap().to_string();
    let url = format!("socks5://127.0.0.1:{port}");
    let out = util::run(
        &[
            "bench", "connect", "-n", "200", "-c", "4", "--json", "--proxy", &url, &qotd_addr,
        ],
        b"",
    );
    out.ok();
    let v: serde_json::Value = serde_json::from_str(&out.out()).unwrap();
    assert_eq!(v["latency"]["count"], 200, "{}", out.dump());
    assert_eq!(v["errors"], serde_json::json!({}), "{}", out.dump());
    let (_echo, echo_addr) = echo();
    let out = util::run(
        &[
            "bench", "stream", "-d", "1s", "--json", "--proxy", &url, &echo_addr,
        ],
        b"",
    );
    out.ok();
    let v: serde_json::Value = serde_json::from_str(&out.out()).unwrap();
    assert!(
        v["bytes_received"].as_u64().unwrap() > 1 << 20,
        "{}",
        out.dump()
    );
    let out = util::run(
        &["bench", "udp", "-n", "1", "--proxy", &url, &echo_addr],
        b"",
    );
    out.code_is(2);
    assert!(
        out.stderr.contains("--proxy carries TCP only"),
        "{}",
        out.dump()
    );
}
