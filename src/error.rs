//! One error type for the whole crate, and the one place where an error
//! becomes an exit status.
//!
//! DESIGN.md's contract: 0 success; 1 the network said no (refused,
//! unreachable, reset, timed out, no reply, no such host); 2 the input was
//! wrong or the local system refused (a malformed address, a port that cannot
//! be bound, a missing file or privilege); 130 interrupted. Every variant
//! below names what failed and carries the value the user typed, so that
//! `main` prints one line a user can act on.

use std::io;

/// Exit status codes, as documented in README and `--help`.
pub mod exit {
    /// The command did what it was asked.
    pub const SUCCESS: u8 = 0;
    /// The network said no: refused, unreachable, reset, timed out, no reply, no such host;
    /// or data was lost or truncated (unsent input, a failed stdout, TLS without `close_notify`).
    pub const NETWORK: u8 = 1;
    /// The input was wrong, or the local system refused (bind, privilege, file).
    pub const USAGE: u8 = 2;
    /// Interrupted by Ctrl-C or SIGTERM (128 + SIGINT).
    pub const INTERRUPTED: u8 = 130;
}

/// Shorthand for results whose error is [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can make a netsmith command fail.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A value on the command line is malformed; the message names it and
    /// says what would be right.
    #[error("{0}")]
    Usage(String),

    /// The local system refused to set up a socket we were asked to open:
    /// bind failures, a missing directory, a path that is not a socket.
    #[error("{what}: {reason}")]
    Local { what: String, reason: String },

    /// A name did not resolve.
    #[error("{0}")]
    Resolve(String),

    /// A network operation failed in a way the peer or the path decided:
    /// refused, reset, unreachable, timed out; or data was lost on the way
    /// (input not sent, stdout not written).
    #[error("{what}: {reason}")]
    Network { what: String, reason: String },

    /// A wait ended with nothing heard ("no reply from ...", "no datagram
    /// within ...").
    #[error("{0}")]
    Silence(String),

    /// The network said no, and the command has already said how on
    /// stderr (`connect -z`'s lines, or nc's silence without -v): exit 1,
    /// with nothing more printed.
    #[error("{0}")]
    Reported(String),

    /// The program joined to a connection (`--exec`, `--sh-exec`) failed:
    /// it is the peer, and its failure is the peer's answer (exit 1).
    #[error("the program {program} {status}")]
    Program { program: String, status: String },

    /// The user interrupted the command.
    #[error("interrupted")]
    Interrupted,
}

impl Error {
    /// The exit status this error maps to: the only place that decides it.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) | Error::Local { .. } => exit::USAGE,
            Error::Resolve(_)
            | Error::Network { .. }
            | Error::Silence(_)
            | Error::Reported(_)
            | Error::Program { .. } => exit::NETWORK,
            Error::Interrupted => exit::INTERRUPTED,
        }
    }

    /// A malformed command-line value.
    pub fn usage(msg: impl Into<String>) -> Self {
        Error::Usage(msg.into())
    }

    /// Classifies an I/O error from a network operation on `what` (for
    /// example "connect to 127.0.0.1:80"). Errors that mean the local system
    /// refused (a bad address, a missing privilege, no such file) become
    /// [`Error::Local`] with exit 2; everything the peer or the path decided
    /// becomes [`Error::Network`] with exit 1.
    pub fn io(what: impl Into<String>, err: &io::Error) -> Self {
        let what = what.into();
        let reason = describe_io(err);
        if is_local(err) {
            Error::Local { what, reason }
        } else {
            Error::Network { what, reason }
        }
    }

    /// Reading stdin failed: the local system's doing (exit 2).
    pub fn stdin(err: &io::Error) -> Self {
        Error::Local {
            what: "read stdin".into(),
            reason: describe_io(err),
        }
    }

    /// Writing stdout failed other than by its reader leaving (a full
    /// disk): what did not reach it is lost, exit 1, as a transfer cut short.
    pub fn stdout(err: &io::Error) -> Self {
        Error::Network {
            what: "write to stdout".into(),
            reason: describe_io(err),
        }
    }

    /// A bind or listen that failed: always a local refusal (exit 2), with
    /// advice for the cases users hit most.
    pub fn bind(what: impl Into<String>, err: &io::Error, port: Option<u16>) -> Self {
        let reason = match err.kind() {
            io::ErrorKind::PermissionDenied if port.is_some_and(|p| p < 1024) => {
                "permission denied: ports below 1024 need root or CAP_NET_BIND_SERVICE; \
                 pick a port above 1023"
                    .to_string()
            }
            io::ErrorKind::AddrInUse => {
                "address already in use: another process is listening there; \
                 pick another port, or 0 for a free one"
                    .to_string()
            }
            io::ErrorKind::AddrNotAvailable => {
                "address not available: no interface of this host has that address".to_string()
            }
            _ => describe_io(err),
        };
        Error::Local {
            what: what.into(),
            reason,
        }
    }
}

/// Errors that are the local system's refusal rather than the network's answer.
fn is_local(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::PermissionDenied
            | io::ErrorKind::AddrInUse
            | io::ErrorKind::AddrNotAvailable
            | io::ErrorKind::NotFound
            | io::ErrorKind::InvalidInput
            | io::ErrorKind::Unsupported
            | io::ErrorKind::ReadOnlyFilesystem
            | io::ErrorKind::NotADirectory
    ) || matches!(
        err.raw_os_error(),
        Some(code) if code == EMFILE || code == ENFILE || code == EAFNOSUPPORT
    )
}

/// `EMFILE`, `ENFILE` and `EAFNOSUPPORT` on Linux; `std` has no `ErrorKind` for them.
const EMFILE: i32 = 24;
const ENFILE: i32 = 23;
const EAFNOSUPPORT: i32 = 97;

/// A short lowercase phrase for an I/O error, in the words users know from
/// nc and ping ("connection refused", "no route to host"), without the
/// "(os error 111)" suffix that `std` adds.
pub fn describe_io(err: &io::Error) -> String {
    use io::ErrorKind as K;
    let phrase = match err.kind() {
        K::ConnectionRefused => "connection refused",
        K::ConnectionReset => "connection reset by peer",
        K::ConnectionAborted => "connection aborted",
        K::BrokenPipe => "connection closed by peer while sending (broken pipe)",
        K::TimedOut => "timed out",
        K::HostUnreachable => "no route to host",
        K::NetworkUnreachable => "network unreachable",
        K::NetworkDown => "network down",
        K::PermissionDenied => "permission denied",
        K::AddrInUse => "address already in use",
        K::AddrNotAvailable => "address not available",
        K::NotFound => "no such file or directory",
        K::NotADirectory => "a component of the path is not a directory",
        K::UnexpectedEof if crate::tls::is_truncation(err) => {
            "closed without TLS close_notify: what arrived may be truncated \
             (--allow-truncation accepts it)"
        }
        _ => {
            return match err.raw_os_error() {
                Some(EMFILE) => "too many open files (the descriptor limit is reached)".into(),
                Some(EAFNOSUPPORT) => "address family not supported on this host".into(),
                _ => strip_os_suffix(&err.to_string()).to_lowercase(),
            };
        }
    };
    phrase.to_string()
}

/// A message as it may reach a terminal: control characters that came
/// from input (an escape sequence in a host name, a CR in a port) are
/// shown escaped (`\u{1b}`, `\r`), so that an error line cannot move the
/// cursor, recolour the terminal or hide its own text. The one place
/// where messages for stderr are made safe.
pub fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// `std` formats OS errors as "Message (os error N)"; the number helps no one.
fn strip_os_suffix(text: &str) -> &str {
    match text.find(" (os error") {
        Some(pos) => &text[..pos],
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_design() {
        assert_eq!(Error::usage("x").exit_code(), 2);
        let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
        assert_eq!(Error::io("connect to x", &refused).exit_code(), 1);
        let denied = io::Error::from(io::ErrorKind::PermissionDenied);
        assert_eq!(Error::io("bind x", &denied).exit_code(), 2);
        assert_eq!(Error::Interrupted.exit_code(), 130);
    }

    #[test]
    fn messages_have_no_os_error_suffix() {
        let err = io::Error::from_raw_os_error(111);
        assert_eq!(describe_io(&err), "connection refused");
        let err = io::Error::from_raw_os_error(EMFILE);
        assert!(describe_io(&err).contains("too many open files"));
    }

    #[test]
    fn hardening_18_control_characters_are_escaped() {
        assert_eq!(printable("plain \"x\""), "plain \"x\"");
        assert_eq!(
            printable("a\u{1b}[31mb\x07c\r\n"),
            "a\\u{1b}[31mb\\u{7}c\\r\\n"
        );
        assert_eq!(printable("é\u{9b}"), "é\\u{9b}");
    }

    #[test]
    fn privileged_port_advice() {
        let denied = io::Error::from(io::ErrorKind::PermissionDenied);
        let msg = Error::bind("cannot listen on 0.0.0.0:80", &denied, Some(80)).to_string();
        assert!(msg.contains("above 1023"), "{msg}");
    }
}
