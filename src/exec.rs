//! Programs as the peer: `relay`'s `exec:`/`sh:` sides and `listen`/`connect`
//! `--exec`/`--sh-exec` start a program per connection through this module.
//!
//! A program runs with its stdin and stdout as the connection (pipes), its
//! stderr as ours, and no other descriptor of ours (every socket and pipe
//! this process opens is close-on-exec). It runs in a process group of its
//! own, ended with its connection ([`Group`]) and, when a command that
//! starts programs stops (Ctrl-C, SIGTERM, an error), with the command
//! ([`Programs`]): no program or grandchild outlives the connection it
//! served. Each sees ncat's environment ([`Env`]), so that ncat scripts
//! that read `NCAT_REMOTE_ADDR` keep working.
//!
//! [`session`] joins a program to a stream with the one end-of-stream
//! policy of [`crate::session`]: the peer's EOF closes the program's stdin,
//! the program's EOF on stdout half-closes the connection.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::ExitStatus;
use std::sync::Mutex;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::{AccessFlags, Pid, access};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result, printable};
use crate::net::Stream;

/// The shell that runs `sh:` and `--sh-exec` command lines.
pub const SHELL: &str = "/bin/sh";

/// What to run for each connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Program {
    /// A program and its arguments, run without a shell (`exec:`, `--exec`).
    Exec(Vec<String>),
    /// A command line run by `/bin/sh -c` (`sh:`, `--sh-exec`).
    Shell(String),
}

/// Why a command line cannot be split into a program and its arguments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SplitError {
    /// A `'` or `"` is not closed.
    Unbalanced,
    /// Nothing but blanks.
    Empty,
}

/// Splits `command` into arguments as a shell would (quotes, backslashes),
/// without running one: the one splitting of `exec:` and `--exec`.
pub fn split(command: &str) -> std::result::Result<Vec<String>, SplitError> {
    let argv = shell_words::split(command).map_err(|_| SplitError::Unbalanced)?;
    if argv.is_empty() {
        return Err(SplitError::Empty);
    }
    Ok(argv)
}

impl Program {
    /// The file that is run: the program, or the shell.
    pub fn name(&self) -> &str {
        match self {
            Program::Exec(argv) => argv.first().map_or("", String::as_str),
            Program::Shell(_) => SHELL,
        }
    }

    /// Checks that the program can be run ([`find_program`]), so that a
    /// missing one is refused at start (exit 2), not at every client.
    pub fn check(&self) -> Result<()> {
        find_program(self.name()).map(|_| ())
    }

    /// Starts the program with `env` added to this process's environment.
    pub fn start(&self, env: Option<&Env>) -> Result<Running> {
        let mut command = match self {
            Program::Exec(argv) => {
                let Some((program, rest)) = argv.split_first() else {
                    return Err(Error::usage("exec: needs a program to run"));
                };
                let mut command = Command::new(program);
                command.args(rest);
                command
            }
            Program::Shell(line) => {
                let mut command = Command::new(SHELL);
                command.arg("-c").arg(line);
                command
            }
        };
        if let Some(env) = env {
            command.envs(env.vars());
        }
        start(command, self.name())
    }
}

/// Who may now run what: the line a server that starts programs prints at
/// start, even on loopback (any local user can connect there).
/// `local` is the listening address, `spelled` the program as the user
/// wrote it (`exec:wc -c`, `--exec /bin/cat`).
pub fn warning(local: &str, program: &Program, spelled: &str) -> String {
    format!(
        "warning: every client of {} can run {} ({}), as this user",
        printable(local),
        printable(program.name()),
        printable(spelled)
    )
}

/// The environment a program gets for its connection: ncat's variables,
/// and the same as `NETSMITH_*`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Env {
    pub remote_addr: String,
    pub remote_port: String,
    pub local_addr: String,
    pub local_port: String,
    /// `TCP` or `UDP`, as ncat writes it.
    pub proto: &'static str,
}

impl Env {
    /// The environment of a program joined to `stream`. Addresses are
    /// shown canonically (an IPv4 client of a dual-stack listener as IPv4);
    /// a Unix socket's ends are `localhost` with an empty port, as ncat
    /// says them.
    pub fn of(stream: &Stream) -> Env {
        let peer = match stream.peer() {
            crate::net::Peer::Inet(addr) => Some(addr),
            crate::net::Peer::Unix(_) => None,
        };
        Env::from_addrs(peer, stream.local_addr(), "TCP")
    }

    /// The environment for a peer and local address (`None`: a Unix socket).
    pub fn from_addrs(
        peer: Option<SocketAddr>,
        local: Option<SocketAddr>,
        proto: &'static str,
    ) -> Env {
        let (remote_addr, remote_port) = parts(peer);
        let (local_addr, local_port) = parts(local);
        Env {
            remote_addr,
            remote_port,
            local_addr,
            local_port,
            proto,
        }
    }

    /// The variables, `NCAT_*` then `NETSMITH_*`.
    pub fn vars(&self) -> Vec<(String, String)> {
        let values = [
            ("REMOTE_ADDR", &self.remote_addr),
            ("REMOTE_PORT", &self.remote_port),
            ("LOCAL_ADDR", &self.local_addr),
            ("LOCAL_PORT", &self.local_port),
        ];
        let mut vars = Vec::with_capacity(10);
        for prefix in ["NCAT_", "NETSMITH_"] {
            for (name, value) in values {
                vars.push((format!("{prefix}{name}"), value.clone()));
            }
            vars.push((format!("{prefix}PROTO"), self.proto.to_string()));
        }
        vars
    }
}

/// An address and a port as two words, canonical; `localhost` and an
/// empty port for a Unix socket.
fn parts(addr: Option<SocketAddr>) -> (String, String) {
    match addr {
        Some(addr) => (
            addr.ip().to_canonical().to_string(),
            addr.port().to_string(),
        ),
        None => ("localhost".into(), String::new()),
    }
}

/// A started program: its stdout (read), its stdin (written), and the
/// process (to wait for). The two pipes are apart, so that each direction
/// of a connection uses one without a lock between them.
pub struct Running {
    pub stdout: ChildStdout,
    pub stdin: Stdin,
    pub process: Process,
}

/// A program's stdin; closing it is the half-close (so `wc -c` prints its
/// count when the client has sent everything). What is sent to a program
/// that has closed its stdin (or exited) is discarded, and counted, so
/// that its output still reaches the client.
pub struct Stdin {
    pipe: Option<ChildStdin>,
    /// Bytes discarded because the program no longer read its stdin.
    discarded: u64,
}

/// The program's process and its process group, ended when dropped.
pub struct Process {
    /// Ends the program and everything it started when dropped.
    _group: Group,
    child: Child,
}

impl Process {
    /// Waits for the program to exit.
    pub async fn wait(&mut self) -> io::Result<ExitStatus> {
        self.child.wait().await
    }
}

impl Running {
    /// The program as one stream (relay's `exec:` side).
    pub fn into_stream(self) -> RunningStream {
        RunningStream(self)
    }
}

/// A [`Running`] program read and written as one stream; dropping it ends
/// the program's group.
pub struct RunningStream(Running);

/// How long a program's process group has after SIGTERM before SIGKILL.
pub const GRACE: Duration = Duration::from_millis(500);

/// The process groups of programs still running, by their leader's pid,
/// so that a command that stops can end them all ([`end_all`]).
static GROUPS: Mutex<Vec<i32>> = Mutex::new(Vec::new());

/// A program's process group: the program and whatever it starts (a
/// shell's background jobs too). Dropped with its connection, however the
/// connection ended, it sends the group SIGTERM, and SIGKILL after
/// [`GRACE`] to whatever is left.
struct Group {
    pgid: i32,
}

impl Group {
    fn new(pgid: i32) -> Self {
        if let Ok(mut groups) = GROUPS.lock() {
            groups.push(pgid);
        }
        Group { pgid }
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        let pgid = self.pgid;
        if !signal_group(pgid, Signal::SIGTERM) {
            forget(pgid);
            return;
        }
        // A thread, not a task: it must not depend on the runtime, which
        // may be shutting down.
        let finish = move || {
            std::thread::sleep(GRACE);
            signal_group(pgid, Signal::SIGKILL);
            forget(pgid);
        };
        if std::thread::Builder::new()
            .name("end-program".into())
            .spawn(finish)
            .is_err()
        {
            signal_group(pgid, Signal::SIGKILL);
            forget(pgid);
        }
    }
}

/// Sends `signal` to process group `pgid`; `false` when no process is left in it.
fn signal_group(pgid: i32, signal: impl Into<Option<Signal>>) -> bool {
    !matches!(
        killpg(Pid::from_raw(pgid), signal.into()),
        Err(Errno::ESRCH)
    )
}

fn forget(pgid: i32) {
    if let Ok(mut groups) = GROUPS.lock() {
        groups.retain(|&g| g != pgid);
    }
}

/// Ends the process group of every program still running (the command is
/// stopping): SIGTERM, at most [`GRACE`] to exit, then SIGKILL.
pub fn end_all() {
    let groups = GROUPS
        .lock()
        .map(|mut g| std::mem::take(&mut *g))
        .unwrap_or_default();
    if groups.is_empty() {
        return;
    }
    tracing::info!("ending {} programs", groups.len());
    let mut left: Vec<i32> = groups
        .into_iter()
        .filter(|&g| signal_group(g, Signal::SIGTERM))
        .collect();
    let deadline = Instant::now() + GRACE;
    while !left.is_empty() && Instant::now() < deadline {
        // The leaders are our children: reaped here, or their zombies
        // would keep their groups in existence.
        for &g in &left {
            let _ = nix::sys::wait::waitpid(
                Pid::from_raw(g),
                Some(nix::sys::wait::WaitPidFlag::WNOHANG),
            );
        }
        left.retain(|&g| signal_group(g, None));
        std::thread::sleep(Duration::from_millis(10));
    }
    for g in left {
        signal_group(g, Signal::SIGKILL);
    }
}

/// Ends every program still running when dropped: held by a command that
/// starts programs, so that none outlives it (Ctrl-C, SIGTERM, an error).
pub struct Programs;

impl Drop for Programs {
    fn drop(&mut self) {
        end_all();
    }
}

/// Checks that `name` can be run as `exec` would run it: a path with a
/// slash as it is, a bare name found in `PATH`. Returns the file.
///
/// # Errors
///
/// [`Error::Local`] (exit 2) naming the program when there is no such file
/// or it is not executable.
pub fn find_program(name: &str) -> Result<PathBuf> {
    let fail = |reason: String| Error::Local {
        what: format!("cannot run {}", printable(name)),
        reason,
    };
    let runnable = |path: &Path| {
        std::fs::metadata(path).map(|m| m.is_file() && access(path, AccessFlags::X_OK).is_ok())
    };
    if name.contains('/') {
        return match runnable(Path::new(name)) {
            Ok(true) => Ok(PathBuf::from(name)),
            Ok(false) => Err(fail("not an executable file".into())),
            Err(e) => Err(fail(crate::error::describe_io(&e))),
        };
    }
    let search = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    let mut found_other = None;
    for dir in std::env::split_paths(&search) {
        // An empty entry is the current directory, as for execvp.
        let dir = if dir.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            dir
        };
        let path = dir.join(name);
        match runnable(&path) {
            Ok(true) => return Ok(path),
            Ok(false) => {
                found_other.get_or_insert(path);
            }
            Err(_) => {}
        }
    }
    Err(fail(match found_other {
        Some(path) => format!("{} is not an executable file", path.display()),
        None => format!("no such program in PATH ({})", search.to_string_lossy()),
    }))
}

/// Closes every descriptor above 2 that this process inherited without
/// close-on-exec (a shell's `3>file`, a job server's pipe), once: a
/// program must get only its stdin, stdout and stderr. Every descriptor
/// netsmith opens itself is close-on-exec already (std, tokio and
/// socket2 open them so), and is left alone; the flag is read from
/// /proc/self/fdinfo, which needs no unsafe code.
fn close_inherited() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
            return;
        };
        let fds: Vec<i32> = dir
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .filter(|&fd| fd > 2)
            .collect();
        for fd in fds {
            // The directory's own descriptor is closed by now: no file.
            let Ok(info) = std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}")) else {
                continue;
            };
            let flags = info
                .lines()
                .find_map(|l| l.strip_prefix("flags:"))
                .and_then(|f| u32::from_str_radix(f.trim(), 8).ok());
            if flags.is_some_and(|f| f & (libc::O_CLOEXEC as u32) == 0) {
                tracing::debug!("closing inherited descriptor {fd}");
                let _ = nix::unistd::close(fd);
            }
        }
    });
}

fn start(mut command: Command, program: &str) -> Result<Running> {
    close_inherited();
    let mut child = command
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|e| Error::Local {
            what: format!("cannot run {}", printable(program)),
            reason: crate::error::describe_io(&e),
        })?;
    // The leader's pid is the group's id; a child without one has exited.
    let group = child
        .id()
        .and_then(|pid| i32::try_from(pid).ok())
        .map(Group::new);
    let (Some(group), Some(stdin), Some(stdout)) = (group, child.stdin.take(), child.stdout.take())
    else {
        return Err(Error::Local {
            what: format!("cannot run {}", printable(program)),
            reason: "its stdin or stdout could not be piped".into(),
        });
    };
    Ok(Running {
        stdout,
        stdin: Stdin {
            pipe: Some(stdin),
            discarded: 0,
        },
        process: Process {
            _group: group,
            child,
        },
    })
}

impl AsyncWrite for Stdin {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let Some(stdin) = &mut this.pipe else {
            this.discarded += buf.len() as u64;
            return Poll::Ready(Ok(buf.len()));
        };
        match Pin::new(stdin).poll_write(cx, buf) {
            Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::BrokenPipe => {
                tracing::info!("the program closed its stdin; what it is sent is discarded");
                this.pipe = None;
                this.discarded += buf.len() as u64;
                Poll::Ready(Ok(buf.len()))
            }
            other => other,
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().pipe {
            Some(stdin) => Pin::new(stdin).poll_flush(cx),
            None => Poll::Ready(Ok(())),
        }
    }

    /// Closes the program's stdin: its end of input.
    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.discarded > 0 {
            tracing::info!(
                "{} bytes were discarded: the program had closed its stdin",
                this.discarded
            );
        }
        this.pipe = None;
        Poll::Ready(Ok(()))
    }
}

impl AsyncRead for RunningStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0.stdout).poll_read(cx, buf)
    }
}

impl AsyncWrite for RunningStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().0.stdin).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0.stdin).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0.stdin).poll_shutdown(cx)
    }
}

/// After the program has exited and its output has all been sent (and the
/// write side shut down), how long the peer has to close too. Meanwhile
/// what it sends is read and discarded: closing a socket with unread bytes
/// would reset it, and a reset can destroy the program's last output
/// before the peer has read it.
pub const LINGER_AFTER_EXIT: Duration = Duration::from_secs(1);

/// How a program's connection ended.
pub struct Outcome {
    /// The session's result: the peer's and the program's bytes all
    /// delivered, or why not.
    pub result: Result<()>,
    /// The program's exit status, if it exited by the end of the
    /// connection (or within [`GRACE`] after it); else it was ended.
    pub status: Option<ExitStatus>,
}

impl Outcome {
    /// The program's failure as an error: a status other than 0 says what
    /// went wrong on the program's side of the connection.
    pub fn program_failure(&self, program: &Program) -> Option<Error> {
        let status = self.status?;
        (!status.success()).then(|| Error::Program {
            program: printable(program.name()).into_owned(),
            status: describe_status(status),
        })
    }
}

impl Outcome {
    /// The outcome as one result for a command that served one connection:
    /// the connection's failure first (the program's failure is then said
    /// too, on stderr), else the program's.
    pub fn into_result(self, program: &Program) -> Result<()> {
        let failed = self.program_failure(program);
        match (self.result, failed) {
            (Err(e), Some(failed)) => {
                eprintln!("netsmith: {failed}");
                Err(e)
            }
            (Err(e), None) | (Ok(()), Some(e)) => Err(e),
            (Ok(()), None) => Ok(()),
        }
    }
}

/// "exited with status 3", "killed by signal 9 (SIGKILL)".
pub fn describe_status(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt as _;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(sig)) => match Signal::try_from(sig) {
            Ok(name) => format!("was killed by signal {sig} ({name})"),
            Err(_) => format!("was killed by signal {sig}"),
        },
        (None, None) => "ended".into(),
    }
}

/// Runs `program` for one connection, joined to `stream` by a session
/// with `opts` (see the module docs): the peer's EOF closes the program's
/// stdin; the program's EOF on stdout shuts down the write side. The
/// connection ends when the peer has closed and the program's output has
/// ended, or when the program has exited and its output has been sent
/// (then after at most [`LINGER_AFTER_EXIT`]). The program's group is
/// ended with the connection.
///
/// # Errors
///
/// The program cannot be started (exit 2).
pub async fn session(
    stream: Stream,
    peer: &str,
    program: &Program,
    opts: &crate::session::Options,
) -> Result<Outcome> {
    let env = Env::of(&stream);
    // A program's answers are sent as it writes them: round trips must
    // not wait for Nagle's delayed ACKs (relay does the same).
    match &stream {
        Stream::Tcp(s) => drop(s.set_nodelay(true)),
        Stream::Tls(s) => {
            if let Stream::Tcp(s) = &s.get_ref().0 {
                drop(s.set_nodelay(true));
            }
        }
        Stream::Unix(_) => {}
    }
    let Running {
        stdout,
        stdin,
        mut process,
    } = program.start(Some(&env))?;
    tracing::info!(
        "{peer}: started {} (pid {})",
        printable(program.name()),
        process.child.id().unwrap_or(0)
    );
    let output_ended = CancellationToken::new();
    let from_program = EofSignal {
        inner: stdout,
        ended: output_ended.clone(),
    };
    let opts = crate::session::Options {
        output_eof: true,
        input_pause: None,
        ..opts.clone()
    };
    let run = crate::session::run(stream, peer, Box::new(from_program), stdin, &opts);
    tokio::pin!(run);
    let mut status = None;
    let result = tokio::select! {
        r = &mut run => r,
        s = process.wait() => {
            status = s.ok();
            tracing::info!("{peer}: the program {}", status.map_or_else(|| "ended".into(), describe_status));
            tokio::select! {
                r = &mut run => r,
                () = async {
                    output_ended.cancelled().await;
                    tokio::time::sleep(LINGER_AFTER_EXIT).await;
                } => Ok(()),
            }
        }
    };
    if status.is_none() {
        // Its stdout has ended; its exit is a moment away (or it lingers,
        // and is ended with its group).
        status = tokio::time::timeout(GRACE, process.wait())
            .await
            .ok()
            .and_then(std::result::Result::ok);
    }
    Ok(Outcome { result, status })
}

/// The largest datagram a program's output is cut into: the most UDP
/// carries over IPv4.
const MAX_DATAGRAM: usize = 65_507;

/// Datagrams queued for one program's stdin before its sender's datagrams
/// are dropped (UDP may lose them; a stuck program must not stall the
/// others).
const DATAGRAM_QUEUE: usize = 64;

/// Runs `program` per sender of datagrams on `socket` (`listen -u --exec`,
/// as ncat does): each datagram from a sender goes to its program's stdin,
/// and each read of the program's stdout goes back to that sender as one
/// datagram. Without `keep_open` only the first sender is served (others
/// are ignored, as listen -u does) and the command ends with its program,
/// whose failure is then exit 1; with it, up to `max` senders have a
/// program at once, each ending when its program does, or after `idle`
/// (`-i`) without a datagram either way (UDP has no end of stream).
///
/// # Errors
///
/// The socket fails, or (without `keep_open`) the program cannot be
/// started or fails.
pub async fn datagrams(
    socket: crate::net::Datagram,
    program: &Program,
    keep_open: bool,
    max: usize,
    idle: Option<Duration>,
) -> Result<()> {
    use crate::net::Peer;
    use std::collections::HashMap;
    use std::sync::Arc;
    use tokio::sync::mpsc;

    let socket = Arc::new(socket);
    let local = socket.local_addr();
    let mut peers: HashMap<Peer, mpsc::Sender<bytes::Bytes>> = HashMap::new();
    let (ended_tx, mut ended_rx) = mpsc::unbounded_channel::<(Peer, Result<()>)>();
    let mut first: Option<Peer> = None;
    let mut buf = vec![0u8; MAX_DATAGRAM + 1];
    loop {
        let (n, peer) = tokio::select! {
            r = socket.recv_from(&mut buf) => match r {
                Ok(got) => got,
                // An ICMP error from an earlier reply: not this socket's end.
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => continue,
                Err(e) => return Err(Error::io("receive a datagram", &e)),
            },
            Some((peer, result)) = ended_rx.recv() => {
                peers.remove(&peer);
                if !keep_open {
                    return result;
                }
                match result {
                    Err(e @ Error::Program { .. }) => tracing::warn!("netsmith: {peer}: {e}"),
                    Err(e) => tracing::warn!("netsmith: {e}"),
                    Ok(()) => tracing::info!("{peer}: its program ended"),
                }
                continue;
            }
        };
        if let Some(tx) = peers.get(&peer) {
            if tx
                .try_send(bytes::Bytes::copy_from_slice(&buf[..n]))
                .is_err()
            {
                tracing::info!("{peer}: its program is not reading: a datagram dropped");
            }
            continue;
        }
        if !keep_open && first.as_ref().is_some_and(|f| *f != peer) {
            tracing::info!("ignoring a datagram from {peer}: talking with the first sender");
            continue;
        }
        if first.is_some() && !keep_open {
            continue; // the first sender's program has ended
        }
        if peers.len() >= max {
            tracing::warn!(
                "netsmith: {peer}: {max} programs run already (--max-conns); datagram dropped"
            );
            continue;
        }
        first.get_or_insert_with(|| peer.clone());
        let remote = match &peer {
            Peer::Inet(addr) => Some(*addr),
            Peer::Unix(_) => None,
        };
        let env = Env::from_addrs(remote, local, "UDP");
        let running = match program.start(Some(&env)) {
            Ok(running) => running,
            Err(e) if keep_open => {
                tracing::warn!("netsmith: {peer}: {e}");
                continue;
            }
            Err(e) => return Err(e),
        };
        tracing::info!("{peer}: started {}", printable(program.name()));
        let (tx, rx) = mpsc::channel(DATAGRAM_QUEUE);
        let _ = tx.try_send(bytes::Bytes::copy_from_slice(&buf[..n]));
        peers.insert(peer.clone(), tx);
        let (socket, ended, program) = (socket.clone(), ended_tx.clone(), program.clone());
        tokio::spawn(async move {
            let result = conversation(running, rx, &socket, &peer, &program, idle).await;
            let _ = ended.send((peer, result));
        });
    }
}

/// One sender's program: datagrams in to its stdin, each read of its
/// stdout out as a datagram, until its stdout ends; then its exit status.
async fn conversation(
    running: Running,
    mut datagrams: tokio::sync::mpsc::Receiver<bytes::Bytes>,
    socket: &crate::net::Datagram,
    peer: &crate::net::Peer,
    program: &Program,
    idle: Option<Duration>,
) -> Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let activity = crate::copy::Activity::default();
    let Running {
        mut stdout,
        mut stdin,
        mut process,
    } = running;
    let feed = async {
        while let Some(datagram) = datagrams.recv().await {
            activity.touch();
            if stdin.write_all(&datagram).await.is_err() {
                break;
            }
        }
        std::future::pending::<()>().await;
    };
    let answer = async {
        let mut buf = vec![0u8; MAX_DATAGRAM];
        loop {
            let n = stdout
                .read(&mut buf)
                .await
                .map_err(|e| Error::io(format!("read from {}", program.name()), &e))?;
            if n == 0 {
                return Ok(());
            }
            activity.touch();
            socket
                .send_to(&buf[..n], peer)
                .await
                .map_err(|e| Error::io(format!("send to {peer}"), &e))?;
        }
    };
    let result = tokio::select! {
        () = feed => Ok(()),
        r = answer => r,
        () = activity.idle_for(idle.unwrap_or_default()), if idle.is_some() => {
            Err(Error::Network {
                what: format!("conversation with {peer}"),
                reason: format!(
                    "idle for {}, its program ended (--idle-timeout)",
                    crate::duration::show(idle.unwrap_or_default())
                ),
            })
        }
    };
    result?;
    let status = tokio::time::timeout(GRACE, process.wait())
        .await
        .ok()
        .and_then(std::result::Result::ok);
    Outcome {
        result: Ok(()),
        status,
    }
    .into_result(program)
}

/// A reader that cancels `ended` when it reaches EOF.
struct EofSignal<R> {
    inner: R,
    ended: CancellationToken,
}

impl<R: AsyncRead + Unpin> AsyncRead for EofSignal<R> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let poll = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = poll
            && buf.filled().len() == before
            && buf.remaining() > 0
        {
            this.ended.cancel();
        }
        poll
    }
}

impl fmt::Display for Program {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Program::Exec(argv) => f.write_str(&shell_words::join(argv)),
            Program::Shell(line) => f.write_str(line),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_as_a_shell_would_without_one() {
        assert_eq!(
            split("printf '%s\\n' \"a b\"").unwrap(),
            ["printf", "%s\\n", "a b"]
        );
        assert_eq!(split("cat 'x"), Err(SplitError::Unbalanced));
        assert_eq!(split("  "), Err(SplitError::Empty));
    }

    #[test]
    fn environment_is_ncats_and_canonical() {
        let mapped: SocketAddr = "[::ffff:127.0.0.1]:4000".parse().unwrap();
        let local: SocketAddr = "[::]:7".parse().unwrap();
        let env = Env::from_addrs(Some(mapped), Some(local), "TCP");
        let vars = env.vars();
        let get = |k: &str| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("NCAT_REMOTE_ADDR"), Some("127.0.0.1"));
        assert_eq!(get("NETSMITH_REMOTE_PORT"), Some("4000"));
        assert_eq!(get("NCAT_LOCAL_ADDR"), Some("::"));
        assert_eq!(get("NETSMITH_PROTO"), Some("TCP"));
        let unix = Env::from_addrs(None, None, "TCP");
        assert_eq!(unix.remote_addr, "localhost");
        assert_eq!(unix.remote_port, "");
    }

    #[test]
    fn warning_names_address_program_and_spelling() {
        let w = warning(
            "127.0.0.1:7",
            &Program::Exec(vec!["wc".into(), "-c".into()]),
            "exec:wc -c",
        );
        assert_eq!(
            w,
            "warning: every client of 127.0.0.1:7 can run wc (exec:wc -c), as this user"
        );
    }
}
