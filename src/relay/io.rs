//! What a relay moves bytes between: a socket ([`Stream`], which the
//! splice path needs to see as such), or anything else that reads and
//! writes (a program's stdin and stdout, this process's stdio, and any
//! later wrapped stream such as TLS) behind one boxed type.
//!
//! Programs are started by [`crate::exec`], which `listen --exec` and
//! `connect --exec` share.

use crate::error::Result;
use crate::exec::{Env, Program};
use crate::net::Stream;
use crate::stdio;

pub use crate::net::Duplex;

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

/// Starts `program` (`exec:`, `sh:`) with its stdin and stdout as the
/// stream; it runs in a process group of its own, ended with the stream.
/// What is sent to a program that has closed its stdin is discarded, so
/// that its output still reaches the client; its stderr stays ours. A
/// program serving a client sees ncat's variables (`env`).
pub fn program(program: &Program, env: Option<&Env>) -> Result<Io> {
    Ok(Io::Boxed(Box::new(program.start(env)?.into_stream())))
}

/// This process's stdin and stdout as one stream (`stdio`, `-`).
pub fn stdio() -> Io {
    let input = stdio::reader(stdio::stdin_chunks());
    Io::Boxed(Box::new(tokio::io::join(input, stdio::Stdout::get())))
}
