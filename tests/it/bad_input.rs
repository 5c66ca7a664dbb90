//! Every malformed input a user can type gets one line on stderr naming the
//! bad value and what would be right, exit status 2, and no panic; local
//! refusals (a port in use, a missing directory) too.

use crate::util::run;

/// (arguments, exit code, words the message must contain)
const CASES: &[(&[&str], i32, &[&str])] = &[
    (
        &["connect", "127.0.0.1", "65536"],
        2,
        &["\"65536\"", "1-65535"],
    ),
    (
        &["connect", "127.0.0.1", "12ab"],
        2,
        &["\"12ab\"", "service name"],
    ),
    (&["connect", "127.0.0.1", "0"], 2, &["\"0\"", "1-65535"]),
    (
        &["connect", "127.0.0.1:99999999999"],
        2,
        &["\"99999999999\""],
    ),
    (&["connect", "127.0.0.1:-1"], 2, &["\"-1\""]),
    (
        &["connect", "127.0.0.1", "nosuchservice"],
        2,
        &["\"nosuchservice\"", "/etc/services"],
    ),
    (&["connect", "[::1:80"], 2, &["unterminated", "[::1]:PORT"]),
    (&["connect", "[::1", "80"], 2, &["unterminated"]),
    (&["connect", "[::1]80"], 2, &["missing port"]),
    (&["connect", ":80"], 2, &["empty host"]),
    (&["connect", "", "80"], 2, &["empty host"]),
    (&["connect", "::1:80"], 2, &["ambiguous", "brackets"]),
    (&["connect", "[::zz]:80"], 2, &["invalid IPv6", "[::zz]"]),
    (&["connect", "bad host", "80"], 2, &["\"bad host\""]),
    (&["connect", "localhost"], 2, &["missing port", "HOST:PORT"]),
    (
        &["connect", "ftp://127.0.0.1:1"],
        2,
        &["unknown scheme", "ftp://"],
    ),
    (&["listen", "tls://127.0.0.1:0"], 2, &["tls://", "--tls"]),
    (
        &["connect", "--ca", "ca.pem", "127.0.0.1", "1"],
        2,
        &["--ca", "--tls"],
    ),
    (
        &["connect", "--pin", "sha256:12", "tls://127.0.0.1:1"],
        2,
        &["\"sha256:12\"", "64 hex digits"],
    ),
    (
        &["connect", "--alpn", "h2,,x", "tls://127.0.0.1:1"],
        2,
        &["\"h2,,x\"", "commas"],
    ),
    (&["connect", "-u", "tls://127.0.0.1:1"], 2, &["TLS", "-u"]),
    (
        &[
            "connect",
            "--ca",
            "/nonexistent-netsmith.pem",
            "tls://127.0.0.1:1",
        ],
        2,
        &["/nonexistent-netsmith.pem", "no such file"],
    ),
    (
        &[
            "listen",
            "--tls",
            "--cert",
            "/nonexistent-netsmith.pem",
            "--key",
            "/nonexistent-netsmith.key",
            "0",
        ],
        2,
        &["/nonexistent-netsmith.pem", "no such file"],
    ),
    (
        &["listen", "--cert", "c", "--key", "k", "0"],
        2,
        &["--cert", "--tls"],
    ),
    (
        &["serve", "--tls", "--udp", "echo=0"],
        2,
        &["--udp", "--tls"],
    ),
    (&["connect", "unix:"], 2, &["empty path"]),
    (
        &["connect", "unix:/nonexistent-netsmith-dir/s"],
        2,
        &["no such socket file", "/nonexistent-netsmith-dir/s"],
    ),
    (
        &["connect", "-w", "abc", "127.0.0.1", "80"],
        2,
        &["\"abc\"", "250ms"],
    ),
    (
        &["connect", "--timeout=-1", "127.0.0.1", "80"],
        2,
        &["\"-1\""],
    ),
    (&["connect", "-i", "5x", "127.0.0.1", "80"], 2, &["\"5x\""]),
    (
        &["connect", "-u", "tcp://127.0.0.1:1"],
        2,
        &["names TCP", "-u"],
    ),
    (&["connect", "-4", "::1", "80"], 2, &["::1", "-4"]),
    (
        &["connect", "-6", "127.0.0.1", "80"],
        2,
        &["127.0.0.1", "-6"],
    ),
    (
        &["connect", "-n", "localhost", "80"],
        2,
        &["\"localhost\"", "-n"],
    ),
    (
        &["connect", "-s", "nohost", "127.0.0.1", "80"],
        2,
        &["\"nohost\""],
    ),
    (
        &["connect", "-U", "/tmp/x", "-s", "127.0.0.1", "--send", "x"],
        2,
        &["-s", "Unix"],
    ),
    (&["connect"], 2, &["TARGET"]),
    (&["connect", "--bogus-flag", "h", "1"], 2, &["--bogus-flag"]),
    (
        &["connect", "127.0.0.1", "1", "2"],
        2,
        &["unexpected argument"],
    ),
    (&["listen", "65536"], 2, &["\"65536\""]),
    (&["listen", "127.0.0.1"], 2, &["\"127.0.0.1\"", "port"]),
    (&["listen"], 2, &["missing port", "-p PORT"]),
    (
        &["listen", "127.0.0.1", "1", "2"],
        2,
        &["unexpected value '2'"],
    ),
    (&["listen", "-4", "::1", "0"], 2, &["::1", "-4"]),
    (
        &["listen", "--max-conns", "0", "0"],
        2,
        &["--max-conns", "0"],
    ),
    (
        &["listen", "-U", "/nonexistent-netsmith-dir/s"],
        2,
        &["/nonexistent-netsmith-dir", "does not exist"],
    ),
    // Binding a documentation address (RFC 5737) fails locally; nothing is sent.
    (
        &["listen", "192.0.2.1", "0"],
        2,
        &["192.0.2.1", "not available"],
    ),
    (
        &["listen", "-U", "/tmp/x", "7"],
        2,
        &["--unix PATH takes no address"],
    ),
    (&["frobnicate"], 2, &["frobnicate"]),
    (&["connect", "[]:80"], 2, &["empty host", "\"[]\""]),
    (
        &["connect", "-q", "9999999999999999999", "127.0.0.1", "80"],
        2,
        &["too long", "9999999999999999999"],
    ),
    (
        &["serve", "-i", "0", "echo=0"],
        2,
        &["\"0\"", "more than 0"],
    ),
    (&["serve", "ftp"], 2, &["\"ftp\"", "echo"]),
    // scan. -n: were the address ever taken for a name, no lookup leaves.
    (
        &["scan", "-n", "300.1.2.3"],
        2,
        &["invalid address", "\"300.1.2.3\"", "octet 300"],
    ),
    (
        &["scan", "127.0.0.9-3"],
        2,
        &["\"127.0.0.9-3\"", "ends before it starts"],
    ),
    (
        &["scan", "127.0.0.0/33"],
        2,
        &["\"127.0.0.0/33\"", "longer than 32 bits"],
    ),
    (&["scan", "::1/129"], 2, &["\"::1/129\"", "128 bits"]),
    (
        &["scan", "127.0.0.1-::1"],
        2,
        &["\"127.0.0.1-::1\"", "both ends"],
    ),
    (
        &["scan", "127.0.0.1", "-p", "100-22"],
        2,
        &["\"100-22\"", "ends before it starts"],
    ),
    (
        &["scan", "127.0.0.1", "-p", "22,,80"],
        2,
        &["\"22,,80\"", "empty item"],
    ),
    (&["scan", "127.0.0.1", "-p", "0"], 2, &["\"0\"", "1-65535"]),
    (
        &["scan", "127.0.0.1", "-p", "65536"],
        2,
        &["\"65536\"", "1-65535"],
    ),
    (
        &["scan", "127.0.0.1", "-p", "nosuchservice"],
        2,
        &["\"nosuchservice\"", "/etc/services"],
    ),
    (
        &["scan", "127.0.0.1", "--shard", "0/3"],
        2,
        &["\"0/3\"", "1 <= K <= N"],
    ),
    (
        &["scan", "127.0.0.1", "--shard", "4/3"],
        2,
        &["\"4/3\"", "1 <= K <= N"],
    ),
    (&["scan", "127.0.0.1", "--shard", "1/0"], 2, &["\"1/0\""]),
    (
        &["scan", "127.0.0.1", "--top-ports", "0"],
        2,
        &["--top-ports 0", "-p-"],
    ),
    (&["scan", "127.0.0.1", "--rate", "0"], 2, &["'0'", "--rate"]),
    (
        &["scan", "127.0.0.1", "--timeout", "0"],
        2,
        &["\"0\"", "more than 0"],
    ),
    (
        &["scan", "127.0.0.1", "--retries", "256"],
        2,
        &["'256'", "--retries"],
    ),
    (&["scan", "-n", "localhost"], 2, &["\"localhost\"", "-n"]),
    (&["scan", "-6", "127.0.0.1"], 2, &["127.0.0.1", "-6"]),
    (&["scan", "-4", "::1"], 2, &["::1", "-4"]),
    (&["scan"], 2, &["no targets", "-iL"]),
    (
        &["scan", "-iL", "/nonexistent-netsmith-dir/targets"],
        2,
        &["/nonexistent-netsmith-dir/targets", "no such file"],
    ),
    (
        &["scan", "127.0.0.1", "-p", "22", "--top-ports", "5"],
        2,
        &["--top-ports", "--ports"],
    ),
    // resolve: checked before any lookup.
    (&["resolve", "bad name"], 2, &["\"bad name\""]),
    (&["resolve", "-x", "localhost"], 2, &["\"localhost\"", "-x"]),
    (
        &["resolve", "--service", "443/sctp"],
        2,
        &["\"sctp\"", "tcp or udp"],
    ),
    (
        &["resolve", "--service", "70000"],
        2,
        &["\"70000\"", "1-65535"],
    ),
    (
        &["resolve", "-6", "<broadcast>"],
        2,
        &["<broadcast>", "IPv4 only"],
    ),
    (&["resolve"], 2, &["required"]),
    // ping: checked before any socket is opened.
    (&["ping", "-c", "0", "127.0.0.1"], 2, &["'0'", "--count"]),
    (
        &["ping", "-i", "fast", "127.0.0.1"],
        2,
        &["\"fast\"", "250ms"],
    ),
    (
        &["ping", "-W", "0", "127.0.0.1"],
        2,
        &["\"0\"", "more than 0"],
    ),
    (
        &["ping", "-s", "65508", "127.0.0.1"],
        2,
        &["'65508'", "--size"],
    ),
    (
        &["ping", "--tcp", "0", "127.0.0.1"],
        2,
        &["\"0\"", "1-65535"],
    ),
    (&["ping", "bad host"], 2, &["\"bad host\""]),
    (&["ping", "-4", "::1"], 2, &["::1", "-4"]),
    // Outside loopback without --authorized. 0.0.0.0 and :: are the only
    // such addresses safe here: were the check ever lost, Linux would
    // deliver their probes to this host, never to a network.
    (
        &["scan", "0.0.0.0", "-p", "1"],
        2,
        &["refusing to scan 0.0.0.0", "--authorized"],
    ),
    (
        &["scan", "::", "-p", "1"],
        2,
        &["refusing to scan ::", "--authorized"],
    ),
    (
        &["sniff", "-r", "/dev/null", "tcp", "and"],
        2,
        &["bad filter \"tcp and\"", "position 8", "found the end"],
    ),
    (
        &["sniff", "-r", "/dev/null", "port", "http2x"],
        2,
        &["\"http2x\"", "position 6", "0 to 65535"],
    ),
    (
        &["sniff", "-r", "/dev/null", "host", "localhost"],
        2,
        &["\"localhost\"", "numeric IPv4 or IPv6"],
    ),
    (
        &["sniff", "-r", "/dev/null", "(tcp", "or", "udp"],
        2,
        &["position 12", "')'"],
    ),
    (
        &["sniff", "-r", "/nonexistent-netsmith-dir/c.pcap"],
        2,
        &["/nonexistent-netsmith-dir/c.pcap", "no such file"],
    ),
    (
        &["sniff", "-r", "/etc/services"],
        2,
        &["/etc/services", "not a readable pcap"],
    ),
    (
        &["sniff", "--snaplen", "0"],
        2,
        &["'0'", "--snaplen", "1..=262144"],
    ),
    (
        &["sniff", "-r", "/dev/null"],
        2,
        &["/dev/null", "too short for a pcap file header"],
    ),
    (
        &["sniff", "-i", "nosuchif0", "-c", "1"],
        2,
        &["\"nosuchif0\"", "lo"],
    ),
    (
        &["relay", "tcp-listen:70000", "127.0.0.1:1"],
        2,
        &["\"70000\"", "1-65535"],
    ),
    (&["relay", "tcp-listen:0", "exec:"], 2, &["empty command"]),
    (
        &["relay", "tcp-listen:0", "exec:'cat"],
        2,
        &["unbalanced quotes"],
    ),
    (
        &["relay", "sctp-listen:1", "127.0.0.1:1"],
        2,
        &["\"sctp-listen:\"", "tcp-listen:"],
    ),
    (
        &["relay", "127.0.0.1:1", "tcp-listen:0"],
        2,
        &["\"tcp-listen:127.0.0.1:0\"", "FROM"],
    ),
    (
        &["relay", "udp-listen:0", "127.0.0.1:1"],
        2,
        &["udp-listen:", "udp://"],
    ),
    (&["relay", "-", "stdio"], 2, &["both stdio"]),
    (
        &[
            "relay",
            "--log",
            "/nonexistent-netsmith-dir/log",
            "tcp-listen:0",
            "127.0.0.1:1",
        ],
        2,
        &["/nonexistent-netsmith-dir/log"],
    ),
    (
        &["relay", "stdio", "exec:/nonexistent-netsmith-program"],
        2,
        &["cannot run /nonexistent-netsmith-program"],
    ),
    (
        &[
            "relay",
            "--cert",
            "/nonexistent-netsmith.pem",
            "--key",
            "/nonexistent-netsmith.key",
            "tls-listen:0",
            "127.0.0.1:1",
        ],
        2,
        &["--cert /nonexistent-netsmith.pem"],
    ),
    (
        &["relay", "--insecure", "tcp-listen:0", "127.0.0.1:1"],
        2,
        &["--insecure", "tls://HOST:PORT"],
    ),
    (
        &[
            "relay",
            "--cert",
            "c.pem",
            "--key",
            "k.pem",
            "tcp-listen:0",
            "tls://localhost:1",
        ],
        2,
        &["--cert", "tls-listen:"],
    ),
    (
        &["relay", "tcp-listen:0", "tls://unix:/s"],
        2,
        &["\"tls://unix:/s\"", "tls://HOST:PORT"],
    ),
    (
        &["listen", "0", "8080"],
        2,
        &["\"0\"", "write it in full, 0.0.0.0"],
    ),
    (
        &["listen", "0.0", "8080"],
        2,
        &["\"0.0\"", "write it in full, 0.0.0.0"],
    ),
    (&["listen", "-s", "0", "8080"], 2, &["\"0\"", "0.0.0.0"]),
    (
        &["relay", "tcp-listen:0:8080", "-"],
        2,
        &["\"0\"", "0.0.0.0"],
    ),
    (
        &["relay", "udp-listen:0.0:8080", "udp://127.0.0.1:9"],
        2,
        &["\"0.0\"", "0.0.0.0"],
    ),
    (&["serve", "echo", "--bind", "0"], 2, &["\"0\"", "0.0.0.0"]),
    (&["connect", "127.1", "80"], 2, &["\"127.1\"", "127.0.0.1"]),
    (
        &["connect", "-s", "0", "127.0.0.1", "1"],
        2,
        &["\"0\"", "0.0.0.0"],
    ),
    (&["connect", "0x7f.1:80"], 2, &["\"0x7f.1\"", "127.0.0.1"]),
    (&["connect", "1.2.3.4.5", "80"], 2, &["\"1.2.3.4.5\"", "4"]),
    (
        &["connect", "999.0.0.1:80"],
        2,
        &["\"999.0.0.1\"", "octet 999"],
    ),
    (
        &["connect", "-u", "300.1.1.1", "53"],
        2,
        &["\"300.1.1.1\"", "octet 300"],
    ),
    (
        &["listen", "300.1.1.1", "0"],
        2,
        &["\"300.1.1.1\"", "octet 300"],
    ),
    (
        &["relay", "tcp-listen:0", "999.0.0.1:80"],
        2,
        &["\"999.0.0.1\"", "octet 999"],
    ),
    (
        &["scan", "300.1.1.1", "-p", "1"],
        2,
        &["\"300.1.1.1\"", "octet 300"],
    ),
    (
        &["scan", "1.2.3.4.5", "-p", "1"],
        2,
        &["\"1.2.3.4.5\"", "4"],
    ),
    (
        &["ping", "-c", "1", "999.0.0.1"],
        2,
        &["\"999.0.0.1\"", "octet 999"],
    ),
    (
        &["ping", "--tcp", "80", "1.2.3.4.5"],
        2,
        &["\"1.2.3.4.5\"", "4"],
    ),
    (
        &["resolve", "300.1.1.1"],
        2,
        &["\"300.1.1.1\"", "octet 300"],
    ),
    (&["resolve", "-x", "1.2.3.4.5"], 2, &["\"1.2.3.4.5\"", "4"]),
    (
        &["bench", "echo", "999.0.0.1:7"],
        2,
        &["\"999.0.0.1\"", "octet 999"],
    ),
    (
        &["bench", "echo", "127.0.0.1:9", "-i", "0s"],
        2,
        &["--interval", "\"0s\" must be more than 0"],
    ),
    (
        &["bench", "echo", "127.0.0.1:9", "--threads", "100000"],
        2,
        &["--threads", "100000", "1..=1024"],
    ),
    (
        &["connect", "-U", "/etc/passwd"],
        2,
        &["unix:/etc/passwd", "not a socket (a regular file)"],
    ),
    (
        &[
            "sniff",
            "-r",
            "/dev/null",
            "not not not not not not not not not not not not not not not not not not not not not not not not not not not not not not not not not not not not not not not not not not not not not not not not not not not not not not not not not not not not not not not not not not not not not not not not not not not not not not not not not not not not not not not not not not not not not not not not not not not not not tcp",
        ],
        2,
        &["at most 100"],
    ),
    // nc -z port checks (issue 13).
    (&["-z", "127.0.0.1"], 2, &["missing port", "HOST PORT"]),
    (&["-zv", "127.0.0.1", "99999"], 2, &["\"99999\"", "1-65535"]),
    (
        &["-z", "127.0.0.1", "22", "nosuchservice"],
        2,
        &["\"nosuchservice\"", "/etc/services"],
    ),
    (
        &["-z", "127.0.0.1", "9-8"],
        2,
        &["\"9-8\"", "lower port first"],
    ),
    (
        &["-z", "127.0.0.1", "22,,80"],
        2,
        &["\"22,,80\"", "empty item"],
    ),
    (
        &["-zv", "10.0.0.1", "22"],
        2,
        &["refusing to scan 10.0.0.1", "--authorized"],
    ),
    (&["-zn", "localhost", "22"], 2, &["\"localhost\"", "-n"]),
    (
        &["-z", "127.0.0.1", "22", "--send", "x"],
        2,
        &["--zero-io", "--send"],
    ),
    (
        &["connect", "--authorized", "127.0.0.1", "22"],
        2,
        &["--zero-io"],
    ),
    (
        &["connect", "--proxy", "ftp://h:1", "127.0.0.1", "1"],
        2,
        &["\"ftp\"", "socks5://", "http://"],
    ),
    (
        &[
            "connect",
            "-u",
            "--proxy",
            "socks5://127.0.0.1:1",
            "127.0.0.1",
            "1",
        ],
        2,
        &["carries TCP", "-u"],
    ),
    (
        &["connect", "--proxy-auth", "u:p", "127.0.0.1", "1"],
        2,
        &["--proxy-auth", "--proxy URL"],
    ),
    (
        &[
            "connect",
            "--proxy",
            "socks5://127.0.0.1:1",
            "--proxy-auth",
            "nocolon",
            "h",
            "1",
        ],
        2,
        &["--proxy-auth", "USER:PASS"],
    ),
    (
        &[
            "connect",
            "--proxy",
            "socks5://h:1",
            "--proxy-type",
            "http",
            "h",
            "1",
        ],
        2,
        &["--proxy-type", "socks5://"],
    ),
    (
        &[
            "connect",
            "--proxy-dns",
            "none",
            "--proxy",
            "socks5h://127.0.0.1:1",
            "localhost",
            "1",
        ],
        2,
        &["--proxy-dns none", "\"localhost\""],
    ),
    (
        &[
            "relay",
            "--proxy",
            "socks5://127.0.0.1:1",
            "udp-listen:0",
            "udp://127.0.0.1:1",
        ],
        2,
        &["carries TCP", "tcp://"],
    ),
    (
        &["proxy", "0.0.0.0:0"],
        2,
        &[
            "refusing to run an open proxy on 0.0.0.0",
            "--proxy-auth",
            "--allow",
        ],
    ),
    (
        &["proxy", "0", "--to-allow", "10.0.0.0/33"],
        2,
        &["\"10.0.0.0/33\"", "CIDR:PORTS"],
    ),
    (
        &["relay", "--to-deny", "22", "tcp-listen:0", "127.0.0.1:1"],
        2,
        &["--to-deny", "proxy:"],
    ),
    (
        &["-z", "--proxy", "socks5://127.0.0.1:1", "127.0.0.1", "22"],
        2,
        &["--zero-io", "--proxy"],
    ),
    (
        &["listen", "-u", "--peers", "all", "--exec", "cat", "0"],
        2,
        &["--peers", "--exec", "own program"],
    ),
    (
        &["connect", "--sh-exec", "cat", "udp://127.0.0.1:9"],
        2,
        &["--exec", "drop -u", "listen -u --exec"],
    ),
    (
        &["listen", "--exec", "cat", "-c", "cat", "0"],
        2,
        &["--exec", "--sh-exec"],
    ),
    (
        &["listen", "--exec", "cat", "--send", "x", "0"],
        2,
        &["--send", "--exec"],
    ),
    (&["listen", "--exec", "", "0"], 2, &["empty --exec"]),
    (
        &["connect", "-e", "cat 'x", "127.0.0.1", "9"],
        2,
        &["unbalanced quotes", "cat 'x"],
    ),
    (
        &["-z", "127.0.0.1", "22", "-e", "cat"],
        2,
        &["--zero-io", "--exec"],
    ),
    (
        &["listen", "--broker", "--exec", "cat", "0"],
        2,
        &["--exec", "--broker", "give one"],
    ),
];

#[test]
fn bad_inputs_exit_2_with_a_message_naming_the_value() {
    assert!(CASES.len() >= 25);
    let mut failures = Vec::new();
    for (args, code, words) in CASES {
        let out = run(args, b"");
        let mut problems = Vec::new();
        if out.code() != Some(*code) {
            problems.push(format!("exit {:?}, expected {code}", out.code()));
        }
        for word in *words {
            if !out.stderr.contains(word) {
                problems.push(format!("stderr lacks {word:?}"));
            }
        }
        if out.stderr.contains("panicked") {
            problems.push("panicked".into());
        }
        if !out.stdout.is_empty() {
            problems.push("wrote to stdout".into());
        }
        // One line, prefixed with the program name.
        if out.stderr.lines().count() != 1 || !out.stderr.starts_with("netsmith: ") {
            problems.push("not one line starting with \"netsmith: \"".into());
        }
        if !problems.is_empty() {
            failures.push(format!("{args:?}: {}\n{}", problems.join(", "), out.dump()));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n\n")
    );
}

#[test]
fn port_in_use_is_a_local_refusal() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let out = run(&["listen", "127.0.0.1", &port], b"");
    out.code_is(2);
    assert!(out.stderr.contains("already in use"), "{}", out.dump());
    assert!(out.stderr.contains(&port), "{}", out.dump());
}

#[test]
fn unix_listen_refuses_to_replace_a_regular_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("precious");
    std::fs::write(&file, "data").unwrap();
    let out = run(&["listen", "-U", file.to_str().unwrap()], b"");
    out.code_is(2);
    assert!(out.stderr.contains("not a socket"), "{}", out.dump());
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "data");
}

#[test]
fn help_lists_only_working_commands_and_exit_codes() {
    let out = run(&["--help"], b"");
    out.ok();
    let text = out.out();
    for word in [
        "connect",
        "listen",
        "serve",
        "scan",
        "bench",
        "sniff",
        "demo",
        "relay",
        "resolve",
        "ping",
        "Exit status",
        "130",
    ] {
        assert!(text.contains(word), "--help lacks {word}\n{text}");
    }
}

#[test]
fn hardening_13_a_tiny_descriptor_limit_is_named_not_a_panic() {
    let prlimit = crate::util::require("prlimit");
    let bin = crate::util::bin();
    for args in [
        &["resolve", "localhost"][..],
        &["connect", "127.0.0.1", "9"],
        &["listen", "127.0.0.1", "0"],
        &["serve", "echo=0", "--tcp"],
        &["sniff", "-r", "/dev/null"],
        &["bench", "echo", "127.0.0.1:9"],
    ] {
        let mut full = vec!["--nofile=6", bin.to_str().unwrap()];
        full.extend_from_slice(args);
        let out = crate::util::run_cmd(&prlimit, &full, b"");
        out.code_is(2);
        assert!(out.stderr.contains("descriptor limit 6"), "{}", out.dump());
        assert!(out.stderr.contains("ulimit -n"), "{}", out.dump());
        assert_eq!(out.stderr.lines().count(), 1, "{}", out.dump());
    }
}

#[test]
fn hardening_18_no_command_says_netsmith_once_and_lists_the_commands() {
    let out = run(&[], b"");
    out.code_is(2);
    assert!(!out.stderr.contains("netsmith: netsmith"), "{}", out.dump());
    assert!(out.stderr.contains("connect, listen"), "{}", out.dump());
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.dump());
    let out = run(&["bench"], b"");
    out.code_is(2);
    assert!(
        out.stderr.contains("echo, stream, connect, udp"),
        "{}",
        out.dump()
    );
}

#[test]
fn hardening_18_control_characters_from_input_are_escaped() {
    for args in [
        &["connect", "a\u{1b}[31mb\u{7}c", "80"][..],
        &["connect", "127.0.0.1", "8\r0"],
        &["scan", "bad\u{1b}]0;title\u{7}host", "-p", "80"],
    ] {
        let out = run(args, b"");
        out.code_is(2);
        assert!(
            !out.stderr.chars().any(|c| c.is_control() && c != '\n'),
            "{}",
            out.dump()
        );
        assert!(
            out.stderr.contains("\\u{1b}") || out.stderr.contains("\\r"),
            "{}",
            out.dump()
        );
    }
}
