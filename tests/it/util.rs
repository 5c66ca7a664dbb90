//! Test harness: run the real binary (and real peers) as a user would,
//! with every wait bounded and a full dump of the command, status, stdout
//! and stderr when something goes wrong.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The netsmith binary under test.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_netsmith"))
}

/// The default bound for any one wait in a test.
pub const WAIT: Duration = Duration::from_secs(20);

/// A finished process.
#[derive(Debug)]
pub struct Output {
    pub cmd: String,
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Output {
    /// The exit code (None if killed by a signal).
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// stdout as text.
    pub fn out(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// Asserts exit status 0.
    #[track_caller]
    pub fn ok(&self) -> &Self {
        assert!(self.status.success(), "expected success\n{}", self.dump());
        self
    }

    /// Asserts a given exit code.
    #[track_caller]
    pub fn code_is(&self, code: i32) -> &Self {
        assert_eq!(self.code(), Some(code), "wrong exit code\n{}", self.dump());
        self
    }

    /// Everything about the run, for failure messages.
    pub fn dump(&self) -> String {
        let out = String::from_utf8_lossy(&self.stdout);
        let out: String = out.chars().take(2000).collect();
        format!(
            "command: {}\nstatus: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.cmd, self.status, out, self.stderr
        )
    }
}

/// A running process, killed when dropped.
pub struct Proc {
    pub cmd: String,
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Option<std::thread::JoinHandle<Vec<u8>>>,
    stderr_lines: mpsc::Receiver<String>,
    stderr_all: Arc<Mutex<String>>,
    stderr_thread: Option<std::thread::JoinHandle<()>>,
}

/// Starts `program` with `args`, all three streams piped.
pub fn spawn_cmd(program: impl Into<PathBuf>, args: &[&str]) -> Proc {
    let program = program.into();
    let mut cmd = Command::new(&program);
    cmd.args(args);
    spawn_command(cmd, format!("{} {}", program.display(), args.join(" ")))
}

/// Starts netsmith with `args`.
pub fn spawn(args: &[&str]) -> Proc {
    spawn_cmd(bin(), args)
}

/// Starts a prepared command, all three streams piped.
pub fn spawn_command(mut cmd: Command, display: String) -> Proc {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {display}: {e}"));
    let stdin = child.stdin.take();
    let mut out = child.stdout.take().expect("piped stdout");
    let stdout = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = out.read_to_end(&mut buf);
        buf
    });
    let err = child.stderr.take().expect("piped stderr");
    let (tx, rx) = mpsc::channel();
    let all = Arc::new(Mutex::new(String::new()));
    let all2 = all.clone();
    let stderr_thread = std::thread::spawn(move || {
        for line in BufReader::new(err).lines() {
            let Ok(line) = line else { break };
            let mut all = all2.lock().unwrap();
            all.push_str(&line);
            all.push('\n');
            drop(all);
            let _ = tx.send(line);
        }
    });
    Proc {
        cmd: display,
        child,
        stdin,
        stdout: Some(stdout),
        stderr_lines: rx,
        stderr_all: all,
        stderr_thread: Some(stderr_thread),
    }
}

impl Proc {
    /// Waits for a stderr line containing `needle`; returns the line.
    #[track_caller]
    pub fn wait_stderr(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stderr_lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(mpsc::RecvTimeoutError::Timeout | mpsc::RecvTimeoutError::Disconnected) => {
                    panic!(
                        "no stderr line containing {needle:?} within {WAIT:?}\ncommand: {}\nstderr so far:\n{}",
                        self.cmd,
                        self.stderr_all.lock().unwrap()
                    )
                }
            }
        }
    }

    /// Waits for netsmith's "listening on ADDR" line; returns ADDR.
    #[track_caller]
    pub fn listening(&mut self) -> String {
        let line = self.wait_stderr("listening on ");
        line.split("listening on ")
            .nth(1)
            .unwrap_or_default()
            .trim()
            .to_string()
    }

    /// Waits for the "listening on" line and returns its port.
    #[track_caller]
    pub fn port(&mut self) -> u16 {
        let addr = self.listening();
        addr.rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in {addr:?}"))
    }

    /// Writes to the process's stdin.
    pub fn write(&mut self, data: &[u8]) {
        self.stdin
            .as_mut()
            .expect("stdin still open")
            .write_all(data)
            .expect("write to child stdin");
    }

    /// Closes the process's stdin (EOF).
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Takes the stdin pipe, e.g. to feed it from another thread.
    pub fn take_stdin(&mut self) -> ChildStdin {
        self.stdin.take().expect("stdin still open")
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal by name (e.g. "INT").
    #[track_caller]
    pub fn signal(&self, sig: &str) {
        use std::str::FromStr;
        let signal = nix::sys::signal::Signal::from_str(&format!("SIG{sig}"))
            .unwrap_or_else(|_| panic!("no signal {sig}"));
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).unwrap());
        nix::sys::signal::kill(pid, signal).unwrap_or_else(|e| panic!("kill -{sig}: {e}"));
        // A stopped process is one the kernel has stopped, not one that
        // was told to stop: wait for it (and for a continued one to run),
        // so that what the test does next happens to a stopped process.
        let stopped = |pid: u32| {
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
                stat.rsplit_once(") ")
                    .is_some_and(|(_, rest)| rest.starts_with('T'))
            })
        };
        let want = match sig {
            "STOP" => true,
            "CONT" => false,
            _ => return,
        };
        let deadline = Instant::now() + WAIT;
        while stopped(self.child.id()) != want {
            assert!(
                Instant::now() < deadline,
                "{} not {} within {WAIT:?}",
                self.cmd,
                if want { "stopped" } else { "running" }
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Closes stdin, then waits for the process to exit within `timeout`;
    /// kills it and fails the test if it does not.
    #[track_caller]
    pub fn finish(mut self, timeout: Duration) -> Output {
        self.stdin = None;
        self.wait_exit(timeout)
    }

    /// Waits for the process to exit within `timeout`, leaving stdin as it
    /// is; kills it and fails the test if it does not exit.
    #[track_caller]
    pub fn wait_exit(mut self, timeout: Duration) -> Output {
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                let stderr = self.stderr_all.lock().unwrap().clone();
                panic!(
                    "{} did not exit within {timeout:?}\nstderr:\n{stderr}",
                    self.cmd
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let stdout = self
            .stdout
            .take()
            .map(|h| h.join().unwrap_or_default())
            .unwrap_or_default();
        if let Some(h) = self.stderr_thread.take() {
            let _ = h.join();
        }
        let stderr = self.stderr_all.lock().unwrap().clone();
        Output {
            cmd: self.cmd.clone(),
            status,
            stdout,
            stderr,
        }
    }

    /// Sends Ctrl-C (SIGINT) and waits for the process to exit, as a user
    /// stops a server; returns what it wrote.
    #[track_caller]
    pub fn interrupt(self) -> Output {
        self.signal("INT");
        self.wait_exit(WAIT)
    }

    /// Kills the process and returns what it wrote.
    pub fn kill(mut self) -> Output {
        let _ = self.child.kill();
        self.finish(WAIT)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs netsmith to completion with `stdin` as input.
#[track_caller]
pub fn run(args: &[&str], stdin: &[u8]) -> Output {
    run_cmd(bin(), args, stdin)
}

/// Runs any program to completion with `stdin` as input, within [`WAIT`].
#[track_caller]
pub fn run_cmd(program: impl Into<PathBuf>, args: &[&str], stdin: &[u8]) -> Output {
    let mut p = spawn_cmd(program, args);
    let mut pipe = p.take_stdin();
    let data = stdin.to_vec();
    let feeder = std::thread::spawn(move || {
        let _ = pipe.write_all(&data);
    });
    let out = p.finish(WAIT);
    let _ = feeder.join();
    out
}

/// `n` random bytes, from the kernel (about 40 times faster than a
/// userspace generator in the unoptimized test build).
pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut v))
        .expect("read /dev/urandom");
    v
}

/// Hex SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    use std::fmt::Write as _;
    Sha256::digest(data)
        .iter()
        .fold(String::new(), |mut hex, b| {
            let _ = write!(hex, "{b:02x}");
            hex
        })
}

/// The path of a peer program. A missing peer fails the test: the test
/// command installs them, and CI must not pass by skipping.
#[track_caller]
pub fn require(tool: &str) -> PathBuf {
    let out = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .expect("sh");
    let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(
        !path.is_empty(),
        "{tool} is not installed: run scripts/test.sh, which installs the test peers"
    );
    PathBuf::from(path)
}

/// A free TCP port on 127.0.0.1 for peers that cannot report the port they
/// bound (ncat, socat). The port is released just before use; the kernel
/// does not hand it out again that soon.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Polls until some line of one of the /proc/net `tables` satisfies
/// `matches` (split into columns). Reading the kernel's socket tables, not
/// connecting, means no probe uses up a one-shot peer's accept.
#[track_caller]
fn wait_proc_net(tables: &[&str], what: &str, matches: impl Fn(&[&str]) -> bool) {
    let deadline = Instant::now() + WAIT;
    loop {
        let found = tables.iter().any(|t| {
            std::fs::read_to_string(t)
                .unwrap_or_default()
                .lines()
                .any(|l| {
                    let cols: Vec<&str> = l.split_whitespace().collect();
                    matches(&cols)
                })
        });
        if found {
            return;
        }
        assert!(Instant::now() < deadline, "{what} not seen after {WAIT:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits until a TCP socket listens on `port` (any address).
#[track_caller]
pub fn wait_tcp_listen(port: u16) {
    let want = format!(":{port:04X}");
    // Columns: sl local_address rem_address st; st 0A is LISTEN.
    wait_proc_net(
        &["/proc/net/tcp", "/proc/net/tcp6"],
        &format!("a TCP listener on port {port}"),
        |c| c.len() > 3 && c[1].ends_with(&want) && c[3] == "0A",
    );
}

/// Waits until a UDP socket is bound to `port`.
#[track_caller]
pub fn wait_udp_bound(port: u16) {
    let want = format!(":{port:04X}");
    wait_proc_net(
        &["/proc/net/udp", "/proc/net/udp6"],
        &format!("a UDP socket on port {port}"),
        |c| c.len() > 1 && c[1].ends_with(&want),
    );
}

/// Waits until a Unix stream socket listens at `path`.
#[track_caller]
pub fn wait_unix_listen(path: &std::path::Path) {
    let want = path.to_string_lossy().into_owned();
    // Flags 00010000 is __SO_ACCEPTCON: the socket is listening.
    wait_proc_net(&["/proc/net/unix"], &format!("a listener on {want}"), |c| {
        c.len() >= 8 && c[3] == "00010000" && c[7] == want
    });
}

/// The sockets `netsmith serve` announced: (service, transport) to the
/// address as printed, less its `udp://` or `unix:` prefix.
pub type Listening = std::collections::HashMap<(String, String), String>;

impl Proc {
    /// Waits for `n` `netsmith serve` lines "listening on ADDR
    /// (SERVICE/TRANSPORT)"; returns each socket's address by service and
    /// transport ("tcp", "udp", "unix").
    #[track_caller]
    pub fn listening_services(&mut self, n: usize) -> Listening {
        let mut found = Listening::new();
        while found.len() < n {
            let line = self.wait_stderr("listening on ");
            let rest = line.split("listening on ").nth(1).unwrap_or_default();
            let parsed = rest.strip_suffix(')').and_then(|r| r.rsplit_once(" ("));
            let Some((addr, label)) = parsed else {
                panic!("unexpected line {line:?} from {}", self.cmd)
            };
            let Some((service, transport)) = label.split_once('/') else {
                panic!("no SERVICE/TRANSPORT in {line:?} from {}", self.cmd)
            };
            let addr = addr
                .strip_prefix("udp://")
                .or_else(|| addr.strip_prefix("unix:"))
                .unwrap_or(addr);
            let key = (service.to_string(), transport.to_string());
            let again = found.insert(key, addr.to_string());
            assert!(again.is_none(), "{line:?} announced twice by {}", self.cmd);
        }
        found
    }
}

/// Sends `before`, one urgent byte (`MSG_OOB`, as a telnet Synch does),
/// then `after` to the echoing `addr`, half-closes, and returns everything
/// that comes back until EOF. An echo that reads normally drops the urgent
/// byte, so `before` then `after` is the right answer.
pub fn echo_across_urgent_mark(addr: &str, before: &[u8], after: &[u8]) -> Vec<u8> {
    let stream = std::net::TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let mut writer = stream.try_clone().unwrap();
    let (before, after) = (before.to_vec(), after.to_vec());
    let sender = std::thread::spawn(move || {
        writer.write_all(&before).expect("send");
        socket2::SockRef::from(&writer)
            .send_out_of_band(b"U")
            .expect("send urgent");
        writer.write_all(&after).expect("send");
        writer
            .shutdown(std::net::Shutdown::Write)
            .expect("half-close");
    });
    let mut back = Vec::new();
    let read = (&stream).read_to_end(&mut back);
    sender.join().expect("sender thread");
    read.unwrap_or_else(|e| panic!("read after {} bytes: {e}", back.len()));
    back
}

/// Issue 17 item 5: each `--allow`/`--deny` rule form, and whether it
/// matches the IPv4 client `127.0.0.1` (on any listener) and the IPv6 client
/// `::1` (on a dual-stack one).
pub const RULE_FORMS: &[(&str, bool, bool)] = &[
    ("127.0.0.1", true, false),
    ("127.0.0.0/8", true, false),
    ("::ffff:127.0.0.1", true, false),
    ("::ffff:127.0.0.0/104", true, false),
    ("::/0", true, true),
    ("0.0.0.0/0", true, false),
];

/// Runs every rule form of [`RULE_FORMS`] as `--deny` and as `--allow`
/// through a server that `start(bind, flag, rule)` starts on `bind`
/// (`127.0.0.1`, then `::`) and whose echoing port it returns, and checks what
/// `netsmith connect -4 127.0.0.1` (and `-6 ::1` on `::`) gets back: "hi"
/// when admitted, nothing when refused. Returns what went wrong.
pub fn check_rule_forms(start: impl Fn(&str, &str, &str) -> (Proc, u16)) -> Vec<String> {
    let mut failures = Vec::new();
    for &(rule, hits_v4, hits_v6) in RULE_FORMS {
        for flag in ["--deny", "--allow"] {
            for bind in ["127.0.0.1", "::"] {
                let (server, port) = start(bind, flag, rule);
                let port = port.to_string();
                let mut clients = vec![("-4", "127.0.0.1", hits_v4)];
                if bind == "::" {
                    clients.push(("-6", "::1", hits_v6));
                }
                for (family, client, hit) in clients {
                    let admitted = hit == (flag == "--allow");
                    let out = run(&["connect", family, client, &port], b"hi\n");
                    let got = out.out();
                    // A refused client is reset, so that it cannot take
                    // the server's close for its bytes having arrived.
                    let right = if admitted {
                        got == "hi\n" && out.code() == Some(0)
                    } else {
                        got.is_empty()
                            && out.code() == Some(1)
                            && out.stderr.contains("connection reset")
                    };
                    if !right {
                        let want = if admitted { "served" } else { "refused" };
                        failures.push(format!(
                            "bind {bind} {flag} {rule}: client {client} should be {want}\n{}",
                            out.dump()
                        ));
                    }
                }
                drop(server);
            }
        }
    }
    failures
}

/// The arguments of `sh` that run netsmith with `args` and its stdout on
/// /dev/full, where every write fails with ENOSPC (as on a full disk).
fn to_full(bin: &std::path::Path, args: &[&str]) -> Vec<String> {
    let mut all: Vec<String> = ["-c", "exec \"$@\" >/dev/full", "sh"]
        .map(String::from)
        .to_vec();
    all.push(bin.to_string_lossy().into_owned());
    all.extend(args.iter().map(ToString::to_string));
    all
}

/// Starts netsmith with `args` and its stdout on /dev/full.
pub fn spawn_to_full(args: &[&str]) -> Proc {
    let all = to_full(&bin(), args);
    spawn_cmd("sh", &all.iter().map(String::as_str).collect::<Vec<_>>())
}

/// Runs netsmith with `args` and its stdout on /dev/full, `stdin` as input.
#[track_caller]
pub fn run_to_full(args: &[&str], stdin: &[u8]) -> Output {
    let all = to_full(&bin(), args);
    run_cmd(
        "sh",
        &all.iter().map(String::as_str).collect::<Vec<_>>(),
        stdin,
    )
}

/// Asserts what a failed stdout must give: exit 1 and the errno's words.
#[track_caller]
pub fn assert_stdout_full(out: &Output) {
    out.code_is(1);
    assert!(
        out.stderr
            .contains("netsmith: write to stdout: no space left on device"),
        "no stdout error\n{}",
        out.dump()
    );
}
