//! What a relay moves bytes between: a socket ([`Stream`], which the
//! splice path needs to see as such), or anything else that reads and
//! writes (a program's stdin and stdout, this process's stdio, and any
//! later wrapped stream such as TLS) behind one boxed type.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

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
/// still reaches the client; the program is killed if the connection ends
/// while it still runs; its stderr stays ours.
struct Program {
    /// Held so that the program is killed (and reaped) with the connection.
    _child: Child,
    stdin: Option<ChildStdin>,
    stdout: ChildStdout,
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
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| Error::Local {
            what: format!("cannot run {program}"),
            reason: crate::error::describe_io(&e),
        })?;
    let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
        return Err(Error::Local {
            what: format!("cannot run {program}"),
            reason: "its stdin or stdout could not be piped".into(),
        });
    };
    Ok(Io::Boxed(Box::new(Program {
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
