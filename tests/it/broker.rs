//! `listen --broker` and `--chat` (ncat's): bytes from one client reach
//! every other client exactly and never come back; a client that does not
//! read is dropped while the others go on, in bounded time and memory;
//! chat's names, announcements and escaping byte for byte; the access
//! files (`--allowfile`, `--denyfile`) on listen, serve and relay; and ncat
//! clients against netsmith's broker, beside the same scenario against
//! `ncat -l --broker`.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::util::{self, Proc, WAIT};

/// Starts `netsmith listen -v ARGS 0` and returns it with its port.
fn broker(args: &[&str]) -> (Proc, u16) {
    let mut all = vec!["listen", "-v"];
    all.extend_from_slice(args);
    all.push("0");
    let mut p = util::spawn(&all);
    let port = p.port();
    (p, port)
}

/// A client on loopback whose reads give up after [`WAIT`].
fn client(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s
}

/// Connects `n` clients and waits until the server has taken each in
/// (its `-v` line), so that all of them hear what is sent next.
fn clients(server: &mut Proc, port: u16, n: usize) -> Vec<TcpStream> {
    (0..n)
        .map(|_| {
            let s = client(port);
            let me = s.local_addr().unwrap().to_string();
            server.wait_stderr(&format!("connection from {me}"));
            s
        })
        .collect()
}

/// Reads exactly `n` bytes.
#[track_caller]
fn read_n(s: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut buf = vec![0; n];
    s.read_exact(&mut buf).unwrap();
    buf
}

/// Reads exactly as many bytes as `want` has and asserts they are `want`.
#[track_caller]
fn expect(s: &mut TcpStream, want: &[u8]) {
    let got = read_n(s, want.len());
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(want),
        "bytes received"
    );
}

#[test]
fn broker_relays_each_clients_bytes_to_every_other_client_never_back() {
    // nc's spelling: -l with ncat's --broker.
    let mut server = util::spawn(&["-lv", "--broker", "0"]);
    let port = server.port();
    let mut c = clients(&mut server, port, 3);
    let payload = util::random_bytes(8 << 20);
    let want = util::sha256(&payload);
    let mut sender = c.remove(0);
    let (mut b, mut cc) = (c.remove(0), c.remove(0));
    let data = payload.clone();
    let mut writer = sender.try_clone().unwrap();
    let send = std::thread::spawn(move || writer.write_all(&data).unwrap());
    let n = payload.len();
    let third = std::thread::spawn(move || {
        let got = read_n(&mut cc, n);
        (util::sha256(&got), cc)
    });
    let got = read_n(&mut b, n);
    send.join().unwrap();
    assert_eq!(util::sha256(&got), want, "receiver b");
    let (sha, mut cc) = third.join().unwrap();
    assert_eq!(sha, want, "receiver c");
    // The sender's first byte back is b's, not its own: nothing echoed.
    b.write_all(b"from b\n").unwrap();
    expect(&mut sender, b"from b\n");
    expect(&mut cc, b"from b\n");
    // stdin goes to every client; stdout gets nothing (as ncat's broker).
    server.write(b"from stdin\n");
    for s in [&mut sender, &mut b, &mut cc] {
        expect(s, b"from stdin\n");
    }
    // stdin's end leaves the clients connected and relayed.
    server.close_stdin();
    cc.write_all(b"after eof\n").unwrap();
    expect(&mut sender, b"after eof\n");
    expect(&mut b, b"after eof\n");
    let out = server.kill();
    assert!(out.stdout.is_empty(), "stdout: {}", out.dump());
}

/// The peak resident memory of process `pid` in KiB (`VmHWM`).
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap()
}

#[test]
fn broker_drops_a_client_that_never_reads_while_the_others_get_everything() {
    let (mut server, port) = broker(&["--broker", "--recv-only"]);
    let mut c = clients(&mut server, port, 4);
    let (mut sender, mut reader, stalled, mut quitter) =
        (c.remove(0), c.remove(0), c.remove(0), c.remove(0));
    let stalled_addr = stalled.local_addr().unwrap().to_string();
    // 64 MiB: far more than the stalled client's queue and socket buffers.
    let payload = util::random_bytes(64 << 20);
    let want = util::sha256(&payload);
    let start = Instant::now();
    let data = payload.clone();
    let mut writer = sender.try_clone().unwrap();
    let send = std::thread::spawn(move || writer.write_all(&data).unwrap());
    // One client reads a little and vanishes mid-stream.
    read_n(&mut quitter, 1 << 20);
    drop(quitter);
    let got = read_n(&mut reader, payload.len());
    send.join().unwrap();
    let took = start.elapsed();
    assert_eq!(util::sha256(&got), want, "the reading client");
    let line = server.wait_stderr(&format!("{stalled_addr}: dropped"));
    assert!(line.contains("stayed full for 5s (--broker)"), "{line}");
    // One stall (5 s) and the transfer itself, not a stall per chunk.
    assert!(took < Duration::from_secs(15), "took {took:?}");
    // Memory stayed bounded: the queues, not the 64 MiB.
    let peak = peak_rss_kib(server.pid());
    assert!(peak < 48 * 1024, "peak RSS {peak} KiB");
    // The dropped client's connection is closed: it reads to an end.
    let mut stalled = stalled;
    let mut sink = Vec::new();
    let end = stalled.read_to_end(&mut sink);
    assert!(
        end.is_ok()
            || end
                .as_ref()
                .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset),
        "{end:?}"
    );
    assert!(sink.len() < payload.len());
    // The others go on.
    sender.write_all(b"still here\n").unwrap();
    expect(&mut reader, b"still here\n");
}

/// The two lines every client gets when user `id` joins from 127.0.0.1
/// with `others` (their numbers) already there.
fn join_lines(id: u32, others: &[u32]) -> String {
    let list = if others.is_empty() {
        "nobody".to_string()
    } else {
        others
            .iter()
            .map(|n| format!("127.0.0.1 as <user{n}>"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "<announce> 127.0.0.1 is connected as <user{id}>.\n<announce> already connected: {list}.\n"
    )
}

#[test]
fn chat_names_announces_and_escapes_byte_for_byte() {
    let (mut server, port) = broker(&["--chat"]);
    let mut a = client(port);
    expect(&mut a, join_lines(1, &[]).as_bytes());
    let mut b = client(port);
    for s in [&mut a, &mut b] {
        expect(s, join_lines(2, &[1]).as_bytes());
    }
    let mut c = client(port);
    for s in [&mut a, &mut b, &mut c] {
        expect(s, join_lines(3, &[1, 2]).as_bytes());
    }
    // A line in two pieces arrives whole, with one name.
    a.write_all(b"hel").unwrap();
    a.write_all(b"lo\n").unwrap();
    for s in [&mut b, &mut c] {
        expect(s, b"<user1> hello\n");
    }
    // Control characters cannot reach another terminal; text can.
    b.write_all(b"\x1b[2J\x07red\rX\x00\xff\xc2\x9b caf\xc3\xa9\r\n")
        .unwrap();
    let want = "<user2> \\033[2J\\007red\\015X\\000\\377\\302\\233 caf\u{e9}\r\n";
    for s in [&mut a, &mut c] {
        expect(s, want.as_bytes());
    }
    server.write(b"from stdin\n");
    for s in [&mut a, &mut b, &mut c] {
        expect(s, b"<user0> from stdin\n");
    }
    // A leave is announced to those who stay; an unfinished line is sent.
    c.write_all(b"bye").unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    for s in [&mut a, &mut b] {
        expect(s, b"<user3> bye\n<announce> <user3> is disconnected.\n");
    }
    // Names are never reused.
    let mut d = client(port);
    for s in [&mut a, &mut b, &mut d] {
        expect(s, join_lines(4, &[1, 2]).as_bytes());
    }
    drop(server);
}

/// Writes `text` to a file in `dir` and returns its path.
fn file(dir: &tempfile::TempDir, name: &str, text: &str) -> String {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path.to_string_lossy().into_owned()
}

#[test]
fn listen_rule_forms_by_flag_and_by_file_match_mapped_clients_on_dual_stack() {
    let dir = tempfile::tempdir().unwrap();
    // --allow/--deny on listen, then the same rules from files
    // (`--allowfile`, `--denyfile`), each with a comment and blank lines.
    for by_file in [false, true] {
        let failures = util::check_rule_forms(|bind, flag, rule| {
            let (flag, value) = if by_file {
                let text = format!("# rules\n\n{rule}   # the one rule\n\n");
                (format!("{flag}file"), file(&dir, "rules", &text))
            } else {
                (flag.to_string(), rule.to_string())
            };
            let mut p = util::spawn(&["listen", "-k", "--send", "hi\n", &flag, &value, bind, "0"]);
            let port = p.port();
            (p, port)
        });
        assert!(
            failures.is_empty(),
            "by file {by_file}:\n{}",
            failures.join("\n\n")
        );
    }
}

#[test]
fn access_files_work_on_serve_relay_and_one_shot_listen() {
    let dir = tempfile::tempdir().unwrap();
    let deny = file(&dir, "deny", "127.0.0.0/8\n");
    let allow = file(&dir, "allow", "# only the loopback\n127.0.0.1\n");
    let refused = |port: &str| {
        let out = util::run(&["connect", "127.0.0.1", port], b"hi\n");
        out.code_is(1);
        assert!(out.stderr.contains("connection reset"), "{}", out.dump());
    };
    let echo_port = |p: &mut Proc| {
        let addr = &p.listening_services(1)[&("echo".to_string(), "tcp".to_string())];
        addr.rsplit(':').next().unwrap().to_string()
    };
    let mut serve = util::spawn(&["serve", "echo=0", "--tcp", "--denyfile", &deny]);
    refused(&echo_port(&mut serve));
    let mut echo = util::spawn(&["serve", "echo=0", "--tcp", "--allowfile", &allow]);
    let port = echo_port(&mut echo);
    let out = util::run(&["connect", "127.0.0.1", &port], b"hi\n");
    assert_eq!(out.ok().out(), "hi\n");
    let target = format!("127.0.0.1:{port}");
    let mut relay = util::spawn(&[
        "relay",
        "--denyfile",
        &deny,
        "tcp-listen:127.0.0.1:0",
        &target,
    ]);
    refused(&relay.port().to_string());
    // Without -k, a refused client is turned away and the next allowed
    // one is served.
    let mut one = util::spawn(&["listen", "--denyfile", &deny, "--allow", "::1", "::", "0"]);
    let port = one.port().to_string();
    refused(&port);
    let mut allowed = util::spawn(&["connect", "-6", "::1", &port]);
    allowed.write(b"hi\n");
    allowed.close_stdin();
    let got = one.finish(WAIT);
    assert_eq!(got.out(), "hi\n", "{}", got.dump());
    allowed.finish(WAIT).ok();
}

#[test]
fn bad_access_files_exit_2_naming_file_line_and_value() {
    let dir = tempfile::tempdir().unwrap();
    let bad = file(&dir, "bad", "# ok\n10.0.0.0/8\n\n10.0.0.0/33 # typo\n");
    for cmd in [
        &["listen", "--allowfile", &bad, "0"][..],
        &["serve", "echo=0", "--denyfile", &bad],
        &[
            "relay",
            "--allowfile",
            &bad,
            "tcp-listen:127.0.0.1:0",
            "127.0.0.1:9",
        ],
    ] {
        let out = util::run(cmd, b"");
        out.code_is(2);
        let flag = cmd.iter().find(|a| a.ends_with("file")).unwrap();
        let want = format!("{flag} {bad}:4: invalid address \"10.0.0.0/33\"");
        assert!(out.stderr.contains(&want), "want {want}\n{}", out.dump());
        assert_eq!(out.stderr.lines().count(), 1, "{}", out.dump());
    }
    let missing = dir.path().join("missing").to_string_lossy().into_owned();
    let out = util::run(&["listen", "-k", "--denyfile", &missing, "0"], b"");
    out.code_is(2);
    assert!(
        out.stderr.contains(&format!("--denyfile {missing}: ")),
        "{}",
        out.dump()
    );
    for (args, want) in [
        (
            &["listen", "--broker", "-u", "0"][..],
            "--broker relays stream clients",
        ),
        (
            &["listen", "--chat", "-q", "1", "0"],
            "-q does not apply to --chat",
        ),
        (
            &["listen", "-u", "--deny", "10.0.0.0/8", "0"],
            "apply to stream listeners",
        ),
    ] {
        let out = util::run(args, b"");
        out.code_is(2);
        assert!(out.stderr.contains(want), "want {want}\n{}", out.dump());
    }
}

/// A peer program whose stdout is collected as it comes, so that a test
/// can wait for what it has received.
struct Tail {
    child: Child,
    got: Arc<Mutex<Vec<u8>>>,
}

impl Tail {
    fn start(program: &std::path::Path, args: &[&str]) -> Tail {
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let got = Arc::new(Mutex::new(Vec::new()));
        let mut out = child.stdout.take().unwrap();
        let sink = got.clone();
        std::thread::spawn(move || {
            let mut buf = [0; 4096];
            while let Ok(n @ 1..) = out.read(&mut buf) {
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Tail { child, got }
    }

    fn send(&mut self, data: &[u8]) {
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin.write_all(data).unwrap();
        stdin.flush().unwrap();
    }

    /// Waits until what arrived ends with `tail`.
    #[track_caller]
    fn wait_for(&self, tail: &[u8]) {
        let deadline = Instant::now() + WAIT;
        while !self.got.lock().unwrap().ends_with(tail) {
            assert!(
                Instant::now() < deadline,
                "waited for {:?}; got {:?}",
                String::from_utf8_lossy(tail),
                String::from_utf8_lossy(&self.got.lock().unwrap())
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn received(&self) -> Vec<u8> {
        self.got.lock().unwrap().clone()
    }
}

impl Drop for Tail {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How many times `needle` occurs in `hay`.
fn count(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len()).filter(|w| *w == needle).count()
}

impl Tail {
    /// Waits until `needle` has arrived `n` times.
    #[track_caller]
    fn wait_count(&self, needle: &[u8], n: usize) {
        let deadline = Instant::now() + WAIT;
        while count(&self.got.lock().unwrap(), needle) < n {
            assert!(
                Instant::now() < deadline,
                "waited for {n} of {:?}; got {:?}",
                String::from_utf8_lossy(needle),
                String::from_utf8_lossy(&self.got.lock().unwrap())
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// Three ncat clients on `server` (listening on `port`, saying
/// "onnection from 127.0.0.1:" on stderr as each arrives): each speaks in
/// turn, then the server's stdin, then the first client leaves. Returns
/// what each client received, `<userN>` names renumbered by rank (ncat
/// numbers them by descriptor, netsmith from 1).
fn ncat_scenario(server: &mut Proc, port: u16, chat: bool) -> Vec<String> {
    let ncat = util::require("ncat");
    let port = port.to_string();
    let mut c: Vec<Tail> = Vec::new();
    for i in 0..3 {
        c.push(Tail::start(&ncat, &["127.0.0.1", &port]));
        server.wait_stderr("onnection from 127.0.0.1:");
        if chat {
            // Each client present hears this join.
            for (j, t) in c.iter().enumerate() {
                t.wait_count(b"already connected", i + 1 - j);
            }
        }
    }
    let turns: [(&[u8], &[u8]); 3] = [
        (b"one from the first\n", b"one from the first\n"),
        (b"two \x1b[1mbold\n", b"two \\033[1mbold\n"),
        (b"three\n", b"three\n"),
    ];
    for (i, (said, heard)) in turns.iter().enumerate() {
        c[i].send(said);
        for (j, t) in c.iter().enumerate() {
            if j != i {
                t.wait_for(if chat { heard } else { said });
            }
        }
    }
    server.write(b"from stdin\n");
    for t in &c {
        t.wait_for(b"from stdin\n");
    }
    drop(c.remove(0));
    if chat {
        for t in &c {
            t.wait_for(b" is disconnected.\n");
        }
    }
    let mut all = vec![Vec::new()];
    all.extend(c.iter().map(Tail::received));
    // The first client's own record is not kept (it was killed); the two
    // that stay heard everything.
    renumber(&all[1..])
}

/// `<userN>` names renumbered 1, 2, ... by rank of N (0, stdin, stays).
fn renumber(outputs: &[Vec<u8>]) -> Vec<String> {
    let text: Vec<String> = outputs
        .iter()
        .map(|o| String::from_utf8_lossy(o).into_owned())
        .collect();
    let mut ids: Vec<u64> = text
        .iter()
        .flat_map(|t| t.split("<user").skip(1))
        .filter_map(|rest| rest.split('>').next()?.parse().ok())
        .filter(|n| *n != 0)
        .collect();
    ids.sort_unstable();
    ids.dedup();
    text.iter()
        .map(|t| {
            let mut out = t.clone();
            // Largest first, so that <user1> is not rewritten inside <user12>.
            for (rank, id) in ids.iter().enumerate().rev() {
                out = out.replace(&format!("<user{id}>"), &format!("<#{}>", rank + 1));
            }
            out.replace("<#", "<user")
        })
        .collect()
}

#[test]
fn ncat_clients_get_from_netsmith_broker_and_chat_what_ncat_gives_them() {
    let ncat = util::require("ncat");
    for mode in ["--broker", "--chat"] {
        let chat = mode == "--chat";
        let (mut ours, port) = broker(&[mode]);
        let got = ncat_scenario(&mut ours, port, chat);
        let theirs_port = util::free_port();
        let mut theirs = util::spawn_cmd(
            &ncat,
            &["-l", "-v", mode, "127.0.0.1", &theirs_port.to_string()],
        );
        util::wait_tcp_listen(theirs_port);
        let want = ncat_scenario(&mut theirs, theirs_port, chat);
        assert_eq!(got, want, "{mode}: netsmith, then ncat");
        if chat {
            assert_eq!(
                got[0],
                "<announce> 127.0.0.1 is connected as <user2>.\n\
                 <announce> already connected: 127.0.0.1 as <user1>.\n\
                 <announce> 127.0.0.1 is connected as <user3>.\n\
                 <announce> already connected: 127.0.0.1 as <user1>, 127.0.0.1 as <user2>.\n\
                 <user1> one from the first\n\
                 <user3> three\n\
                 <user0> from stdin\n\
                 <announce> <user1> is disconnected.\n"
            );
        } else {
            assert_eq!(got[0], "one from the first\nthree\nfrom stdin\n");
        }
    }
}
