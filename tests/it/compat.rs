//! Personalities: the built binary run through symlinks named nc, netcat,
//! nc.openbsd, ncat and nc.traditional (and with `--compat`), as scripts
//! and ssh configs run those tools: bytes through, the `-v` and `-z`
//! lines in each tool's words, the letters the netcats disagree on, and
//! one-line refusals (exit 2) for what netsmith does not do.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::util::{self, Output, Proc};

/// A temporary directory of links to the binary under test, one per name.
struct Names {
    dir: tempfile::TempDir,
}

impl Names {
    fn new() -> Names {
        let dir = tempfile::tempdir().expect("tempdir");
        for name in ["nc", "netcat", "nc.openbsd", "ncat", "nc.traditional"] {
            std::os::unix::fs::symlink(util::bin(), dir.path().join(name)).expect("symlink");
        }
        Names { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn spawn(&self, name: &str, args: &[&str]) -> Proc {
        util::spawn_cmd(self.path(name), args)
    }

    fn run(&self, name: &str, args: &[&str], stdin: &[u8]) -> Output {
        util::run_cmd(self.path(name), args, stdin)
    }
}

/// The port at the end of a listening line ("Listening on 127.0.0.1 4000",
/// "Ncat: Listening on 127.0.0.1:4000", "listening on [127.0.0.1] 4000 ...").
fn port_of(line: &str) -> u16 {
    line.trim_end_matches(" ...")
        .rsplit([' ', ':'])
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {line:?}"))
}

/// Sends `data` from `client` (args before HOST PORT) to the listener and
/// asserts it arrived whole; returns both runs.
#[track_caller]
fn round_trip(
    names: &Names,
    listener: &mut Proc,
    client: (&str, &[&str]),
    port: u16,
    data: &[u8],
) -> (Output, Output) {
    let port = port.to_string();
    let mut args = client.1.to_vec();
    args.extend(["127.0.0.1", &port]);
    // The listener has nothing to send: its write side closes at once.
    listener.close_stdin();
    let sent = names.run(client.0, &args, data);
    sent.ok();
    let listener = std::mem::replace(listener, util::spawn_cmd("true", &[]));
    let got = listener.finish(util::WAIT);
    got.ok();
    assert_eq!(
        util::sha256(&got.stdout),
        util::sha256(data),
        "bytes differ\n{}\n{}",
        sent.dump(),
        got.dump()
    );
    (sent, got)
}

#[test]
fn openbsd_names_carry_bytes_and_say_nc_lines() {
    let names = Names::new();
    let data = util::random_bytes(1 << 20);
    for name in ["nc", "netcat", "nc.openbsd"] {
        let mut listener = names.spawn(name, &["-lv", "127.0.0.1", "0"]);
        let line = listener.wait_stderr("Listening on ");
        assert!(line.starts_with("Listening on 127.0.0.1 "), "{line}");
        let port = port_of(&line);
        let (sent, got) = round_trip(&names, &mut listener, (name, &["-vN"]), port, &data);
        assert_eq!(
            sent.stderr,
            format!("Connection to 127.0.0.1 {port} port [tcp/*] succeeded!\n"),
            "{}",
            sent.dump()
        );
        assert!(
            got.stderr.contains("Connection received on 127.0.0.1 "),
            "{}",
            got.dump()
        );
        // Without -v, nothing on stderr, as nc.
        let mut quiet = names.spawn(name, &["-l", "-p", "0"]);
        let port = listening_port(&quiet);
        let (sent, got) = round_trip(&names, &mut quiet, (name, &[]), port, b"hello\n");
        assert_eq!((sent.stderr.as_str(), got.stderr.as_str()), ("", ""));
    }
}

/// The port a listener that says nothing bound, from /proc/net/tcp: the
/// one TCP socket the process listens on.
fn listening_port(p: &Proc) -> u16 {
    let deadline = Instant::now() + util::WAIT;
    let fds = format!("/proc/{}/fd", p.pid());
    loop {
        let inodes: Vec<String> = std::fs::read_dir(&fds)
            .map(|d| {
                d.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
                    .filter_map(|l| {
                        let l = l.to_string_lossy().into_owned();
                        Some(
                            l.strip_prefix("socket:[")?
                                .trim_end_matches(']')
                                .to_string(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
        for row in table.lines().skip(1) {
            let cols: Vec<&str> = row.split_whitespace().collect();
            if cols.get(3) == Some(&"0A")
                && cols.get(9).is_some_and(|i| inodes.iter().any(|x| x == i))
            {
                let port = cols[1].rsplit(':').next().unwrap_or("0");
                return u16::from_str_radix(port, 16).unwrap();
            }
        }
        assert!(Instant::now() < deadline, "{} never listened", p.cmd);
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn ncat_carries_bytes_and_says_ncat_lines() {
    let names = Names::new();
    let data = util::random_bytes(1 << 20);
    let mut listener = names.spawn("ncat", &["-lv", "127.0.0.1", "0"]);
    let line = listener.wait_stderr("Ncat: Listening on ");
    assert!(line.starts_with("Ncat: Listening on 127.0.0.1:"), "{line}");
    let port = port_of(&line);
    let (sent, got) = round_trip(&names, &mut listener, ("ncat", &["-v"]), port, &data);
    assert_eq!(
        sent.stderr,
        format!("Ncat: Connected to 127.0.0.1:{port}.\n"),
        "{}",
        sent.dump()
    );
    let lines: Vec<&str> = got.stderr.lines().collect();
    assert_eq!(
        lines[1],
        "Ncat: Connection from 127.0.0.1.",
        "{}",
        got.dump()
    );
    assert!(
        lines[2].starts_with("Ncat: Connection from 127.0.0.1:"),
        "{}",
        got.dump()
    );
}

#[test]
fn traditional_listens_with_p_or_on_a_picked_port() {
    let names = Names::new();
    let data = util::random_bytes(256 << 10);
    // nc 1.10 without -p listens on a port the system picks.
    let mut listener = names.spawn("nc.traditional", &["-lv"]);
    let line = listener.wait_stderr("listening on ");
    assert!(line.starts_with("listening on [127.0.0.1] "), "{line}");
    let port = port_of(&line);
    let (sent, got) = round_trip(
        &names,
        &mut listener,
        ("nc.traditional", &["-v"]),
        port,
        &data,
    );
    assert_eq!(
        sent.stderr,
        format!("(UNKNOWN) [127.0.0.1] {port} (?) open\n"),
        "{}",
        sent.dump()
    );
    assert!(
        got.stderr
            .contains("connect to [127.0.0.1] from (UNKNOWN) [127.0.0.1] "),
        "{}",
        got.dump()
    );
    let mut listener = names.spawn("nc.traditional", &["-l", "-p", "0", "-v"]);
    let port = port_of(&listener.wait_stderr("listening on "));
    round_trip(&names, &mut listener, ("nc.traditional", &[]), port, &data);
}

#[test]
fn compat_flag_picks_the_personality_under_any_name() {
    let data = util::random_bytes(64 << 10);
    let names = Names::new();
    let mut listener = util::spawn(&["--compat", "ncat", "-lv", "127.0.0.1", "0"]);
    let port = port_of(&listener.wait_stderr("Ncat: Listening on "));
    let (sent, _) = round_trip(
        &names,
        &mut listener,
        ("nc", &["--compat=openbsd", "-v"]),
        port,
        &data,
    );
    assert!(
        sent.stderr.starts_with("Connection to 127.0.0.1 "),
        "{}",
        sent.dump()
    );
    let out = util::run(&["--compat", "gnu", "h", "1"], b"");
    out.code_is(2);
    assert_eq!(
        out.stderr,
        "netsmith: --compat takes ncat, openbsd or traditional, not \"gnu\"\n"
    );
    let out = util::run(&["-l", "0", "--compat", "ncat"], b"");
    out.code_is(2);
    assert!(
        out.stderr.contains("must be the first argument"),
        "{}",
        out.dump()
    );
    // As netsmith, the nc style of netsmith's own keeps its words.
    let mut plain = util::spawn(&["-l", "-p", "0"]);
    let port = plain.port();
    let (sent, _) = round_trip(&names, &mut plain, ("nc", &[]), port, &data);
    assert_eq!(sent.stderr, "");
}

/// Real nc.openbsd and ncat on the other side.
#[test]
fn personalities_talk_to_the_real_tools() {
    let names = Names::new();
    let data = util::random_bytes(1 << 20);
    // nc.openbsd sends to netsmith as nc.
    let nc = util::require("nc.openbsd");
    let mut listener = names.spawn("nc", &["-lv", "127.0.0.1", "0"]);
    let port = port_of(&listener.wait_stderr("Listening on "));
    listener.close_stdin();
    util::run_cmd(&nc, &["-N", "127.0.0.1", &port.to_string()], &data).ok();
    let got = listener.finish(util::WAIT);
    got.ok();
    assert_eq!(util::sha256(&got.stdout), util::sha256(&data));
    // netsmith as ncat sends to a real ncat.
    let ncat = util::require("ncat");
    let port = util::free_port().to_string();
    let mut real = util::spawn_cmd(&ncat, &["-l", "127.0.0.1", &port]);
    util::wait_tcp_listen(port.parse().unwrap());
    real.close_stdin();
    names.run("ncat", &["127.0.0.1", &port], &data).ok();
    let got = real.finish(util::WAIT);
    assert_eq!(
        util::sha256(&got.stdout),
        util::sha256(&data),
        "{}",
        got.dump()
    );
}

#[test]
fn unix_sockets_under_each_personality() {
    let names = Names::new();
    for (name, listen) in [
        ("nc", &["-lU"][..]),
        ("ncat", &["-lU"]),
        ("netcat", &["-l", "-U"]),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        let path_text = path.to_str().unwrap();
        let mut args = listen.to_vec();
        args.push(path_text);
        let mut listener = names.spawn(name, &args);
        util::wait_unix_listen(&path);
        listener.close_stdin();
        names.run(name, &["-U", path_text], b"over unix\n").ok();
        let got = listener.finish(util::WAIT);
        got.ok();
        assert_eq!(got.out(), "over unix\n", "{name}");
    }
}

/// A listener, and a port nothing listens on.
fn open_and_closed() -> (std::net::TcpListener, u16, u16) {
    let open = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = open.local_addr().unwrap().port();
    (open, port, util::free_port())
}

#[test]
fn zero_checks_in_each_tools_words() {
    let names = Names::new();
    let (_open, open, closed) = open_and_closed();
    let (open_s, closed_s) = (open.to_string(), closed.to_string());
    // As nc.openbsd: the very lines and status of the real one.
    let nc = util::require("nc.openbsd");
    for ports in [&[&open_s, &closed_s][..], &[&closed_s]] {
        let mut args = vec!["-zvw1", "127.0.0.1"];
        args.extend(ports.iter().map(|p| p.as_str()));
        let real = util::run_cmd(&nc, &args, b"");
        let ours = names.run("nc.openbsd", &args, b"");
        assert_eq!(
            (ours.code(), ours.stderr.as_str()),
            (real.code(), real.stderr.as_str()),
            "{}\n{}",
            ours.dump(),
            real.dump()
        );
    }
    let ours = names.run("ncat", &["-zv", "127.0.0.1", &open_s], b"");
    ours.code_is(0);
    assert_eq!(
        ours.stderr,
        format!("Ncat: Connected to 127.0.0.1:{open}.\n")
    );
    let ours = names.run("ncat", &["-zv", "127.0.0.1", &closed_s], b"");
    ours.code_is(1);
    assert_eq!(ours.stderr, "Ncat: Connection refused.\n");
    let ours = names.run(
        "nc.traditional",
        &["-zv", "127.0.0.1", &open_s, &closed_s],
        b"",
    );
    ours.code_is(0);
    assert_eq!(
        ours.stderr,
        format!(
            "(UNKNOWN) [127.0.0.1] {open} (?) open\n\
             (UNKNOWN) [127.0.0.1] {closed} (?) : Connection refused\n"
        )
    );
    // Without -v only the status answers.
    let ours = names.run("nc", &["-z", "127.0.0.1", &closed_s], b"");
    ours.code_is(1);
    assert_eq!(ours.stderr, "");
}

/// ssh's `ProxyCommand` idioms (`nc -X 5 -x PROXY %h %p`) and ncat's
/// `--proxy`, through real proxies: dante for SOCKS (it passes half-close
/// on, so an echo comes back whole), ncat's HTTP CONNECT proxy for
/// `-X connect` (it closes both ways at the client's EOF, so the client
/// reads no stdin: OpenBSD's -d).
#[test]
fn proxies_carry_bytes_under_each_personality() {
    let names = Names::new();
    let data = util::random_bytes(1 << 20);
    let (_echo, echo) = crate::proxy::echo();
    let (echo_host, echo_port) = echo.rsplit_once(':').unwrap();
    let (_dante, socks, _dir) = crate::proxy::dante();
    let socks = format!("127.0.0.1:{socks}");
    for (name, flags) in [
        ("nc", &["-X", "5", "-x", socks.as_str()][..]),
        ("netcat", &["-x", socks.as_str()]),
        ("nc.openbsd", &["-X4", "-x", socks.as_str()]),
        (
            "ncat",
            &["--proxy", socks.as_str(), "--proxy-type", "socks5"],
        ),
        ("ncat", &["--proxy", socks.as_str(), "--proxy-type=socks4"]),
    ] {
        let mut args = flags.to_vec();
        args.extend([echo_host, echo_port]);
        let out = names.run(name, &args, &data);
        out.ok();
        assert_eq!(
            util::sha256(&out.stdout),
            util::sha256(&data),
            "{name} {args:?}\n{}",
            out.dump()
        );
    }
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &data).unwrap();
    let (_down, down) = crate::proxy::one_way("down", file.path().to_str().unwrap());
    let (_http, http) = crate::proxy::ncat_http(None);
    let http = format!("127.0.0.1:{http}");
    let out = names.run(
        "nc",
        &[
            "-d",
            "-X",
            "connect",
            "-x",
            &http,
            "127.0.0.1",
            &down.to_string(),
        ],
        b"",
    );
    out.ok();
    assert_eq!(
        util::sha256(&out.stdout),
        util::sha256(&data),
        "{}",
        out.dump()
    );
    // A proxy protocol OpenBSD nc does not have is refused in its terms.
    let out = names.run("nc", &["-X", "6", "-x", &socks, "127.0.0.1", "1"], b"");
    out.code_is(2);
    assert_eq!(
        out.stderr,
        "netsmith: nc -X 6: the proxy protocol is 4 (SOCKS4), 5 (SOCKS5) or connect (HTTP)\n"
    );
}

#[test]
fn unsupported_flags_are_named_never_ignored() {
    let names = Names::new();
    for (name, args, says) in [
        (
            "nc",
            &["-i", "1", "h", "1"][..],
            "nc -i (interval between lines) is not supported: netsmith has no equivalent (netsmith's -i is an idle timeout)",
        ),
        (
            "nc",
            &["-b", "-u", "h", "1"],
            "nc -b (allow broadcast) is not supported: netsmith has no equivalent",
        ),
        ("nc", &["-k", "h", "1"], "nc -k (keep listening) needs -l"),
        (
            "nc",
            &["-Q", "h", "1"],
            "nc -Q is not an option of OpenBSD nc (as nc netsmith reads OpenBSD nc's options; its own: netsmith --help)",
        ),
        (
            "ncat",
            &["-d", "1", "h", "1"],
            "ncat -d (delay between reads and writes) is not supported: netsmith has no equivalent",
        ),
        (
            "ncat",
            &["-x", "f", "h", "1"],
            "ncat -x (hex dump to a file) is not supported: netsmith --hex dumps both directions to stderr (netsmith --hex HOST PORT 2>FILE)",
        ),
        (
            "ncat",
            &["-m", "2", "h", "1"],
            "ncat -m applies to a listener only: add -l (ncat too refuses it with connect)",
        ),
        (
            "nc.traditional",
            &["-k", "h", "1"],
            "nc.traditional -k (SO_KEEPALIVE) is not supported: netsmith has no equivalent (to keep listening, ncat's and OpenBSD's -k: netsmith listen -k)",
        ),
        (
            "nc.traditional",
            &["-l", "-p", "1", "h", "2"],
            "nc.traditional -l with HOST/PORT words (accept only that peer) is not supported: give -l -p PORT (netsmith listen --allow CIDR limits clients)",
        ),
    ] {
        let out = names.run(name, args, b"");
        out.code_is(2);
        assert_eq!(out.stderr, format!("netsmith: {says}\n"), "{}", out.dump());
    }
}

/// The letters the netcats disagree on, each as its personality reads it.
#[test]
fn conflicting_letters_follow_the_personality() {
    let names = Names::new();
    // -C: CRLF line endings for OpenBSD nc, ncat and nc.traditional alike.
    for name in ["nc", "ncat", "nc.traditional"] {
        let mut listener = util::spawn(&["listen", "127.0.0.1", "0"]);
        let port = listener.port();
        let (_, got) = round_trip_raw(&names, &mut listener, name, &["-C"], port, b"a\nb\n");
        assert_eq!(got.stdout, b"a\r\nb\r\n", "{name} -C");
    }
    // -d: OpenBSD nc reads no stdin (it only receives).
    let mut listener = util::spawn(&["listen", "--send", "from server", "127.0.0.1", "0"]);
    let port = listener.port().to_string();
    let client = names.run("nc", &["-d", "127.0.0.1", &port], b"never sent");
    client.ok();
    assert_eq!(client.out(), "from server");
    let got = listener.finish(util::WAIT);
    assert!(got.stdout.is_empty(), "{}", got.dump());
    // -i: ncat's idle timeout ends a silent connection (netsmith's -i,
    // exit 1 as ncat's); OpenBSD's line interval is refused (above).
    let mut silent = util::spawn(&["listen", "--recv-only", "127.0.0.1", "0"]);
    let port = silent.port().to_string();
    let client = names.spawn("ncat", &["-i", "300ms", "127.0.0.1", &port]);
    let started = Instant::now();
    // stdin stays open: only the idle timeout can end it.
    let out = client.wait_exit(util::WAIT);
    out.code_is(1);
    assert!(out.stderr.contains("idle for 300ms"), "{}", out.dump());
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(10),
        "{took:?}\n{}",
        out.dump()
    );
    drop(silent);
    // -q: OpenBSD's and nc.traditional's quit after stdin's EOF, though
    // the peer stays silent and open.
    for name in ["nc", "nc.traditional"] {
        let mut silent = util::spawn(&["listen", "--recv-only", "127.0.0.1", "0"]);
        let port = silent.port().to_string();
        let out = names.run(name, &["-q", "0", "127.0.0.1", &port], b"bye\n");
        out.ok();
        drop(silent);
    }
    // -k: keep listening for OpenBSD nc and ncat (two clients in turn).
    for name in ["nc", "ncat"] {
        // -vv: the tool's lines, and netsmith's own "disconnected".
        let mut listener = names.spawn(name, &["-lkvv", "127.0.0.1", "0"]);
        let line = listener.wait_stderr("Listening on ");
        let port = port_of(&line).to_string();
        listener.close_stdin();
        for text in ["one\n", "two\n"] {
            names.run(name, &["127.0.0.1", &port], text.as_bytes()).ok();
            listener.wait_stderr("disconnected");
        }
        let got = listener.kill();
        assert_eq!(got.out(), "one\ntwo\n", "{name} -k\n{}", got.dump());
    }
    // -c: TLS for OpenBSD nc (here -T noverify, the listener's
    // certificate being self-signed).
    let mut listener = names.spawn("nc", &["-lcv", "127.0.0.1", "0"]);
    let port = port_of(&listener.wait_stderr("Listening on "));
    let (_, got) = round_trip_raw(
        &names,
        &mut listener,
        "nc",
        &["-c", "-T", "noverify"],
        port,
        b"over tls\n",
    );
    assert_eq!(got.out(), "over tls\n");
}

/// [`round_trip`] without the hash: returns the client's and the
/// listener's runs.
fn round_trip_raw(
    names: &Names,
    listener: &mut Proc,
    name: &str,
    flags: &[&str],
    port: u16,
    data: &[u8],
) -> (Output, Output) {
    let port = port.to_string();
    let mut args = flags.to_vec();
    args.extend(["127.0.0.1", &port]);
    listener.close_stdin();
    let sent = names.run(name, &args, data);
    sent.ok();
    let got = std::mem::replace(listener, util::spawn_cmd("true", &[])).finish(util::WAIT);
    got.ok();
    (sent, got)
}

#[test]
fn ncat_listening_as_an_http_proxy_is_netsmith_proxy() {
    let names = Names::new();
    let mut proxy = names.spawn("ncat", &["-l", "--proxy-type", "http", "0"]);
    let port = port_of(&proxy.wait_stderr("listening on "));
    let (_echo, echo) = crate::proxy::echo();
    let (echo_host, echo_port) = echo.rsplit_once(':').unwrap();
    let data = util::random_bytes(1 << 20);
    let at = format!("127.0.0.1:{port}");
    // ncat's own HTTP client, and (on the same port) a SOCKS5 one.
    for kind in ["http", "socks5"] {
        let out = util::run_cmd(
            util::require("ncat"),
            &["--proxy", &at, "--proxy-type", kind, echo_host, echo_port],
            &data,
        );
        out.ok();
        assert_eq!(
            util::sha256(&out.stdout),
            util::sha256(&data),
            "{kind}\n{}",
            out.dump()
        );
    }
}
