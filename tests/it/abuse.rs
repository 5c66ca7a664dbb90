//! The adversarial review of issue 17, replayed as a table: each row is a
//! command a careful attacker or a careless script typed, with the exit
//! status and the words netsmith owes them. The multi-process scenarios
//! (a pause in stdin, a stalled `listen -k` client, a relay's grandchildren,
//! a flood of UDP sources) have regression tests of their own, named
//! `hardening_NN_...`, in the module they belong to; this table holds the
//! one-command cases, so that a new spelling of an old mistake is one row.

use std::io::Read as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::{WAIT, bin, spawn};

/// Where the command's stdout goes.
#[derive(Clone, Copy, Debug)]
enum Out {
    /// A pipe the test reads.
    Pipe,
    /// `/dev/full`: every write fails with ENOSPC, as a full disk does.
    Full,
}

/// One adversarial command.
struct Case {
    /// The item of issue 17 the row replays.
    item: u8,
    /// `netsmith serve` arguments for a server to start first; the port of
    /// the first service it announces replaces `{port}` in `args`.
    server: &'static [&'static str],
    /// A program the command runs under (`prlimit --nofile=6`).
    wrap: &'static [&'static str],
    /// netsmith's arguments.
    args: &'static [&'static str],
    /// What stdin carries (then EOF).
    stdin: &'static [u8],
    stdout: Out,
    /// The exit statuses owed (two where a race the test cannot see
    /// decides between them, as a denied client's reset or EOF).
    code: &'static [i32],
    /// Words stderr must contain.
    says: &'static [&'static str],
    /// Words neither stream may contain.
    never: &'static [&'static str],
}

const DEFAULT: Case = Case {
    item: 0,
    server: &[],
    wrap: &[],
    args: &[],
    stdin: b"",
    stdout: Out::Pipe,
    code: &[2],
    says: &[],
    never: &[],
};

const CASES: &[Case] = &[
    // 2. Only EPIPE is a quiet exit; a full disk is an error, in every
    // command that writes results.
    Case {
        item: 2,
        server: &["qotd=0", "--tcp"],
        args: &["connect", "127.0.0.1", "{port}"],
        stdout: Out::Full,
        code: &[1],
        says: &["write to stdout", "no space left on device"],
        ..DEFAULT
    },
    Case {
        item: 2,
        server: &["echo=0", "--tcp"],
        args: &["scan", "127.0.0.1", "-p", "{port}", "--json"],
        stdout: Out::Full,
        code: &[1],
        says: &["write to stdout", "no space left on device"],
        ..DEFAULT
    },
    Case {
        item: 2,
        args: &["resolve", "localhost"],
        stdout: Out::Full,
        code: &[1],
        says: &["write to stdout", "no space left on device"],
        ..DEFAULT
    },
    // 5. A rule in IPv6 form covers an IPv4 client of a dual-stack listener.
    Case {
        item: 5,
        server: &["echo=0", "--tcp", "--bind", "::", "--deny", "::/0"],
        args: &["connect", "-4", "127.0.0.1", "{port}"],
        stdin: b"xyzzy-denied\n",
        code: &[0, 1],
        never: &["xyzzy-denied"],
        ..DEFAULT
    },
    Case {
        item: 5,
        server: &[
            "echo=0",
            "--tcp",
            "--bind",
            "::",
            "--deny",
            "::ffff:127.0.0.1",
        ],
        args: &["connect", "-4", "127.0.0.1", "{port}"],
        stdin: b"xyzzy-denied\n",
        code: &[0, 1],
        never: &["xyzzy-denied"],
        ..DEFAULT
    },
    // 11. What cannot fit is refused before anything is allocated.
    Case {
        item: 11,
        server: &["echo=0", "--tcp"],
        args: &["bench", "echo", "127.0.0.1:{port}", "-c", "99999999"],
        says: &["99999999"],
        ..DEFAULT
    },
    Case {
        item: 11,
        server: &["echo=0", "--tcp"],
        args: &[
            "bench",
            "echo",
            "127.0.0.1:{port}",
            "-s",
            "16777216",
            "--pipeline",
            "4096",
        ],
        says: &["4096"],
        ..DEFAULT
    },
    // 13. No panics: a zero interval, a descriptor limit of six.
    Case {
        item: 13,
        server: &["echo=0", "--tcp"],
        args: &["bench", "echo", "127.0.0.1:{port}", "-i", "0s"],
        says: &["\"0s\""],
        ..DEFAULT
    },
    Case {
        item: 13,
        wrap: &["prlimit", "--nofile=6"],
        args: &["connect", "127.0.0.1", "1"],
        says: &["descriptor"],
        ..DEFAULT
    },
    Case {
        item: 13,
        wrap: &["prlimit", "--nofile=6"],
        args: &["serve", "echo=0"],
        says: &["descriptor"],
        ..DEFAULT
    },
    // 15. Shorthand addresses are refused, not taken for "every interface".
    Case {
        item: 15,
        args: &["listen", "0", "0"],
        says: &["\"0\"", "0.0.0.0"],
        ..DEFAULT
    },
    Case {
        item: 15,
        args: &["listen", "0.0", "0"],
        says: &["\"0.0\"", "0.0.0.0"],
        ..DEFAULT
    },
    Case {
        item: 15,
        args: &["relay", "tcp-listen:0:0", "127.0.0.1:1"],
        says: &["\"0\"", "0.0.0.0"],
        ..DEFAULT
    },
    Case {
        item: 15,
        args: &["serve", "echo=0", "--bind", "127.1"],
        says: &["\"127.1\""],
        ..DEFAULT
    },
    // 16. An all-numeric dotted name is a malformed address, never a name.
    Case {
        item: 16,
        args: &["connect", "1.2.3.4.5", "80"],
        says: &["1.2.3.4.5"],
        ..DEFAULT
    },
    Case {
        item: 16,
        args: &["connect", "999.0.0.1", "80"],
        says: &["999"],
        ..DEFAULT
    },
    Case {
        item: 16,
        args: &["ping", "-c", "1", "300.1.1.1"],
        says: &["300"],
        ..DEFAULT
    },
    Case {
        item: 16,
        args: &["resolve", "300.1.1.1"],
        says: &["300"],
        ..DEFAULT
    },
    Case {
        item: 16,
        args: &["scan", "999.0.0.1", "-p", "80"],
        says: &["999"],
        ..DEFAULT
    },
    // 17. A program that cannot run is refused at start.
    Case {
        item: 17,
        args: &["relay", "tcp-listen:0", "exec:/nonexistent-netsmith"],
        says: &["/nonexistent-netsmith"],
        never: &["listening on"],
        ..DEFAULT
    },
    // 18. Messages a user can act on.
    Case {
        item: 18,
        args: &[],
        never: &["netsmith: netsmith:"],
        ..DEFAULT
    },
    Case {
        item: 18,
        args: &["connect", "-U", "/etc/hostname"],
        says: &["/etc/hostname", "not a socket"],
        never: &["connection refused"],
        ..DEFAULT
    },
    Case {
        item: 18,
        args: &["connect", "bad\x1b[2Jhost", "80"],
        says: &["\\u{1b}"],
        never: &["\x1b"],
        ..DEFAULT
    },
    // Help that does not reach stdout is not a success either.
    Case {
        item: 2,
        args: &["--help"],
        stdout: Out::Full,
        code: &[1],
        says: &["write to stdout: no space left on device"],
        ..DEFAULT
    },
    // A socket path's control characters are escaped in "listening on".
    Case {
        item: 18,
        args: &[
            "listen",
            "-w",
            "50ms",
            "--unix",
            "/tmp/netsmith-abuse-\x1b[2J.sock",
        ],
        code: &[1],
        says: &["listening on unix:/tmp/netsmith-abuse-\\u{1b}[2J.sock"],
        never: &["\x1b"],
        ..DEFAULT
    },
];

#[test]
fn adversarial_cases_get_their_exit_status_and_words() {
    let mut failures = Vec::new();
    for case in CASES {
        if let Some(problem) = check(case) {
            failures.push(format!("item {}: {problem}", case.item));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n\n"));
}

/// Runs one row; says what went wrong, if anything.
fn check(case: &Case) -> Option<String> {
    let server = (!case.server.is_empty()).then(|| {
        let mut args = vec!["serve"];
        args.extend_from_slice(case.server);
        let mut p = spawn(&args);
        let addr = p
            .listening_services(1)
            .into_values()
            .next()
            .unwrap_or_default();
        let port: u16 = addr
            .rsplit(':')
            .next()
            .and_then(|port| port.parse().ok())
            .unwrap_or_else(|| panic!("no port in {addr:?}"));
        (p, port)
    });
    let args: Vec<String> = case
        .args
        .iter()
        .map(|a| match &server {
            Some((_, port)) => a.replace("{port}", &port.to_string()),
            None => (*a).to_string(),
        })
        .collect();
    let (code, stdout, stderr) = run(case, &args);
    let shown = format!(
        "netsmith {}\nexit {code:?}\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}",
        args.join(" ")
    );
    let mut problems = Vec::new();
    if !code.is_some_and(|c| case.code.contains(&c)) {
        problems.push(format!("exit {code:?}, expected one of {:?}", case.code));
    }
    for word in case.says {
        if !stderr.contains(word) {
            problems.push(format!("stderr lacks {word:?}"));
        }
    }
    for word in case.never {
        if stdout.contains(word) || stderr.contains(word) {
            problems.push(format!("output has {word:?}"));
        }
    }
    if stderr.contains("panicked") {
        problems.push("panicked".into());
    }
    (!problems.is_empty()).then(|| format!("{}\n{shown}", problems.join("; ")))
}

/// Runs netsmith (under the row's wrapper) with stdout where the row says,
/// within [`WAIT`]; returns the exit code, stdout and stderr.
fn run(case: &Case, args: &[String]) -> (Option<i32>, String, String) {
    let mut cmd = match case.wrap.split_first() {
        Some((program, wrap_args)) => {
            let mut cmd = Command::new(program);
            cmd.args(wrap_args).arg(bin());
            cmd
        }
        None => Command::new(bin()),
    };
    cmd.args(args).stdin(Stdio::piped()).stderr(Stdio::piped());
    match case.stdout {
        Out::Pipe => cmd.stdout(Stdio::piped()),
        Out::Full => cmd.stdout(
            std::fs::OpenOptions::new()
                .write(true)
                .open("/dev/full")
                .expect("/dev/full"),
        ),
    };
    let mut child = cmd.spawn().expect("start netsmith");
    let mut stdin = child.stdin.take().expect("piped stdin");
    let data = case.stdin.to_vec();
    let feeder = std::thread::spawn(move || {
        use std::io::Write as _;
        let _ = stdin.write_all(&data);
    });
    let readers = [
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
    ]
    .map(|stream| {
        std::thread::spawn(move || {
            let mut text = Vec::new();
            if let Some(mut s) = stream {
                let _ = s.read_to_end(&mut text);
            }
            String::from_utf8_lossy(&text).into_owned()
        })
    });
    let deadline = Instant::now() + WAIT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            break child.wait().expect("wait");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let _ = feeder.join();
    let [out, err] = readers.map(|r| r.join().unwrap_or_default());
    (status.code(), out, err)
}
