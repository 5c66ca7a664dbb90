//! What a relay moves bytes between: a socket ([`Stream`], which the
//! splice path needs to see as such), or anything else that reads and
//! writes (a program's stdin and stdout, this process's stdio, and any
//! later wrapped stream such as TLS) behind one boxed type.

use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::{AccessFlags, Pid, access};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use crate::error::{Error, Result};
use crate::net::Stream;
use crate::stdio;

/// A two-way byte stream that is not a plain socket.
pub trait Duplex: AsyncRead + AsyncWrite + Unpin + Send {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Duplex for T {}

/// One side of a relayed connection.
pub enum Io {
    /// A TCP or Unix socket.
    Net(Stream),
    /// A program, stdio, or any other stream.
    Boxed(Box<dyn Duplex>),
}

impl Io {
    /// The stream as one boxed type, for the copy loop.
    pub fn boxed(self) -> Box<dyn Duplex> {
        match self {
            Io::Net(stream) => Box::new(stream),
            Io::Boxed(stream) => stream,
        }
    }
}

/// A program started for one connection: its stdout is read, its stdin
/// written, and closing its stdin is the half-close (so `wc -c` prints its
/// count when the client has sent everything). What is sent to a program
/// that has closed its stdin (or exited) is discarded, so that its output
/// still reaches the client; its stderr stays ours. The program runs in a
/// process group of its own, ended with the connection (see [`Group`]).
struct Program {
    /// Ends the program and everything it started when dropped.
    _group: Group,
    /// Held so that the program is reaped once it exits.
    _child: Child,
    stdin: Option<ChildStdin>,
    stdout: ChildStdout,
}

/// How long a program's process group has after SIGTERM before SIGKILL.
pub const GRACE: Duration = Duration::from_millis(500);

/// The process groups of programs still running, by their leader's pid,
/// so that a relay that stops can end them all ([`end_all`]).
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

/// Ends the process group of every program still running (the relay is
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

/// Ends every program still running when dropped: held by a relay that
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
        what: format!("cannot run {name}"),
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

/// Starts `argv` (`exec:`) with its stdin and stdout as the stream.
pub fn exec(argv: &[String]) -> Result<Io> {
    let Some((program, rest)) = argv.split_first() else {
        return Err(Error::usage("exec: needs a program to run"));
    };
    let mut command = Command::new(program);
    command.args(rest);
    start(command, program)
}

/// Starts `/bin/sh -c COMMAND` (`sh:`) with its stdin and stdout as the stream.
pub fn shell(line: &str) -> Result<Io> {
    let mut command = Command::new("/bin/sh");
    command.arg("-c").arg(line);
    start(command, "/bin/sh")
}

fn start(mut command: Command, program: &str) -> Result<Io> {
    let mut child = command
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|e| Error::Local {
            what: format!("cannot run {program}"),
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
            what: format!("cannot run {program}"),
            reason: "its stdin or stdout could not be piped".into(),
        });
    };
    Ok(Io::Boxed(Box::new(Program {
        _group: group,
        _child: child,
        stdin: Some(stdin),
        stdout,
    })))
}

impl AsyncRead for Program {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stdout).poll_read(cx, buf)
    }
}

impl AsyncWrite for Program {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let Some(stdin) = &mut this.stdin else {
            return Poll::Ready(Ok(buf.len()));
        };
        match Pin::new(stdin).poll_write(cx, buf) {
            Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::BrokenPipe => {
                tracing::debug!("the program closed its stdin; what it is sent is discarded");
                this.stdin = None;
                Poll::Ready(Ok(buf.len()))
            }
            other => other,
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().stdin {
            Some(stdin) => Pin::new(stdin).poll_flush(cx),
            None => Poll::Ready(Ok(())),
        }
    }

    /// Closes the program's stdin: its end of input.
    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().stdin = None;
        Poll::Ready(Ok(()))
    }
}

/// This process's stdin and stdout as one stream (`stdio`, `-`).
pub fn stdio() -> Io {
    let input = stdio::reader(stdio::stdin_chunks());
    Io::Boxed(Box::new(tokio::io::join(input, stdio::Stdout::get())))
}
