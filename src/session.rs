//! A session: one stream connection joined to an input and an output, with
//! netsmith's one end-of-stream policy, the same for `connect` and
//! `listen`, TCP and Unix:
//!
//! | event | what happens |
//! |---|---|
//! | EOF on input | the socket's write side is shut down (half-close) and reading goes on |
//! | EOF from the peer | what arrived is written out; input is sent on to its EOF (the peer may only have half-closed); only a terminal on stdin ends the session once it pauses for 200 ms |
//! | a send that fails, or a reset before stdin's EOF | the session ends with an error that says that input was not sent, and at least how many bytes |
//! | `--no-shutdown` | at input EOF the write side is left open; the session still ends when the peer closes |
//! | `-q DUR` | the session ends DUR after input EOF, even if the peer has not closed |
//! | `-i DUR` | the session ends with an error after DUR with no byte in either direction |
//! | `--recv-only` | input is never read and the write side is never shut down |
//! | `--send-only` | what arrives is discarded; the session still ends when the peer closes |
//!
//! Ending only when the peer closes is what makes a request over a
//! half-closed connection work (the answer comes after our FIN). TCP cannot
//! tell a peer that half-closed from one that closed, so at the peer's EOF
//! a pipe or file on stdin is sent to its end, however long it pauses (it
//! is data still coming): a transfer in both directions loses nothing, and
//! a peer that closed for good refuses the rest, which is reported as an
//! error (exit 1, with the count of bytes not sent). A terminal is the one
//! input that ends at a pause: an idle keyboard does not keep the session
//! open, and what was not typed was not lost.
//!
//! `--allow-truncation` is the one way a TLS peer's close without
//! `close_notify` ends a session well (see [`Options::allow_truncation`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

use crate::copy::{self, Activity, CopyError, Feed, HexDump, Tap};
use crate::error::{Error, Result};
use crate::net::Stream;

/// After the peer's EOF, how long a terminal on stdin may pause before the
/// session stops waiting for more of it: short enough that an idle terminal
/// ends the session at once. A pipe or a file is never cut at a pause.
pub const DRAIN_PAUSE: Duration = Duration::from_millis(200);

/// The input pause that ends a session after the peer's EOF: [`DRAIN_PAUSE`]
/// when stdin is a terminal (someone typing), none for a pipe, a file or
/// /dev/null, which are sent to their EOF.
pub fn stdin_pause() -> Option<Duration> {
    use std::io::IsTerminal as _;
    std::io::stdin().is_terminal().then_some(DRAIN_PAUSE)
}

/// Where a session's outgoing bytes come from.
pub type Input = Box<dyn AsyncRead + Unpin + Send>;

/// The end-of-stream policy and taps of a session (see the module docs).
#[derive(Clone, Debug)]
pub struct Options {
    /// Read input and send it (false with `--recv-only`).
    pub send: bool,
    /// Write what arrives to the output (false with `--send-only`).
    pub recv: bool,
    /// Shut down the write side at input EOF (false with `--no-shutdown`).
    pub shutdown_on_eof: bool,
    /// `-q`: end this long after input EOF.
    pub quit_after_eof: Option<Duration>,
    /// `-i`: end after this long without traffic.
    pub idle: Option<Duration>,
    /// `--crlf`: send LF as CRLF.
    pub crlf: bool,
    /// `--hex`: dump both directions to stderr.
    pub hex: bool,
    /// Prefix hexdump lines with the peer (several sessions at once).
    pub label_hex: bool,
    /// After the peer's EOF, input that pauses this long is taken as ended
    /// (a terminal: [`stdin_pause`]); `None` sends input to its EOF.
    pub input_pause: Option<Duration>,
    /// `--allow-truncation`: a TLS peer that closes without `close_notify`
    /// ends the session as a clean close would, with a warning; by default
    /// that is an error (exit 1), since an attacker on the path can cut a
    /// TLS stream with a forged FIN and the cut looks like a clean end.
    pub allow_truncation: bool,
    /// At the peer's EOF, shut the output down too: the output is a
    /// program's stdin (`--exec`), whose end of input is the half-close.
    pub output_eof: bool,
    /// Let the receiving side's reads grow while the peer streams (see
    /// [`Tap::growing`]): on for a process's one session, off for
    /// `listen -k`'s many, which would hold a megabyte per client.
    pub grow_reads: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            send: true,
            recv: true,
            shutdown_on_eof: true,
            quit_after_eof: None,
            idle: None,
            crlf: false,
            hex: false,
            label_hex: false,
            input_pause: stdin_pause(),
            allow_truncation: false,
            output_eof: false,
            grow_reads: true,
        }
    }
}

/// Runs a session until the peer closes (or `-q`/`-i` ends it).
/// `peer` names the other end in messages.
///
/// # Errors
/// A reset or failed send is [`Error::Network`]; an idle timeout too; a
/// failing stdin is [`Error::Local`]. A closed stdout ends the session
/// quietly, as a pipe into `head` expects.
pub async fn run<O>(
    stream: Stream,
    peer: &str,
    mut input: Input,
    mut output: O,
    opts: &Options,
) -> Result<()>
where
    O: AsyncWrite + Unpin + Send,
{
    let (sock_rd, mut sock_wr) = tokio::io::split(stream);
    // TLS without close_notify is an error (exit 1) unless accepted.
    let mut sock_rd = crate::tls::TruncationAsEof::new(sock_rd, opts.allow_truncation, peer);
    let activity = Arc::new(Activity::default());
    let label = opts.label_hex.then(|| peer.to_string());
    let feed = Arc::new(Feed::default());
    // Input bytes read, and bytes fully written to the socket: the
    // difference is what a failed send did not send.
    let (taken, given) = (AtomicU64::new(0), AtomicU64::new(0));
    let unsent = || {
        taken
            .load(Ordering::Relaxed)
            .saturating_sub(given.load(Ordering::Relaxed))
    };
    let mut up_tap = Tap::new(
        opts.crlf,
        opts.hex.then(|| HexDump::new('>', label.clone())),
        Some(activity.clone()),
    )
    .feeding(feed.clone())
    .counting(&taken, &given);
    let mut down_tap = Tap::new(
        false,
        opts.hex.then(|| HexDump::new('<', label)),
        Some(activity.clone()),
    );
    if opts.grow_reads {
        down_tap = down_tap.growing();
    }

    let up = async {
        if !opts.send {
            return std::future::pending().await;
        }
        let sent = copy::pump(&mut input, &mut sock_wr, &mut up_tap).await?;
        if opts.shutdown_on_eof {
            sock_wr.shutdown().await.map_err(CopyError::Write)?;
            tracing::info!("stdin EOF after {sent} bytes, write side shut down");
        } else {
            tracing::info!("stdin EOF after {sent} bytes, write side left open (--no-shutdown)");
        }
        Ok(sent)
    };
    let down = receive(&mut sock_rd, &mut output, &mut down_tap, opts);
    tokio::pin!(up, down);

    let mut up_result: Option<std::result::Result<u64, CopyError>> = None;
    let mut quit_at: Option<Instant> = None;
    loop {
        tokio::select! {
            r = &mut up, if up_result.is_none() => {
                match &r {
                    Ok(_) => quit_at = opts.quit_after_eof.map(|q| Instant::now() + q),
                    // stdin failing is ours to report at once; a failed send
                    // is reported after reading what the peer still says.
                    Err(CopyError::Read(e)) => {
                        return Err(Error::stdin(e));
                    }
                    Err(CopyError::Write(e)) => tracing::debug!("send to {peer} failed: {e}"),
                }
                up_result = Some(r);
            }
            r = &mut down => {
                match r {
                    Ok(n) => tracing::info!("peer closed after {n} bytes"),
                    Err(CopyError::Write(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                        tracing::info!("stdout closed, ending");
                        return Ok(());
                    }
                    Err(CopyError::Write(e)) => return Err(Error::stdout(&e)),
                    Err(CopyError::Read(e)) => {
                        let left = input_left(up_result.as_ref(), opts.send).then(unsent);
                        return Err(with_unsent(Error::io(format!("connection with {peer}"), &e), left));
                    }
                }
                if up_result.is_none() && opts.send {
                    up_result = match opts.input_pause {
                        Some(pause) => drain(up.as_mut(), &feed, pause).await,
                        None => Some(up.as_mut().await),
                    };
                }
                return match up_result {
                    Some(Err(CopyError::Write(e))) => Err(not_sent(peer, &e, unsent())),
                    Some(Err(CopyError::Read(e))) => Err(Error::stdin(&e)),
                    _ => Ok(()),
                };
            }
            () = crate::duration::sleep_until(quit_at), if quit_at.is_some() => {
                tracing::info!("quitting: -q time after stdin EOF is up");
                return Ok(());
            }
            () = activity.idle_for(opts.idle.unwrap_or_default()), if opts.idle.is_some() => {
                return Err(Error::Network {
                    what: format!("connection with {peer}"),
                    reason: format!(
                        "idle for {}, closed (--idle-timeout)",
                        crate::duration::show(opts.idle.unwrap_or_default())
                    ),
                });
            }
        }
    }
}

/// Copies what arrives to `output` (or nowhere, with `--send-only`) until
/// the peer's EOF, which is passed on to `output` when `output_eof` asks.
async fn receive<R, O>(
    from: &mut R,
    output: &mut O,
    tap: &mut Tap<'_>,
    opts: &Options,
) -> std::result::Result<u64, CopyError>
where
    R: AsyncRead + Unpin,
    O: AsyncWrite + Unpin,
{
    if !opts.recv {
        return copy::pump(from, &mut tokio::io::sink(), tap).await;
    }
    let n = copy::pump(from, output, tap).await?;
    if opts.output_eof {
        output.shutdown().await.map_err(CopyError::Write)?;
    }
    Ok(n)
}

/// A send that failed, with what it left unsent.
fn not_sent(peer: &str, err: &std::io::Error, unsent: u64) -> Error {
    with_unsent(Error::io(format!("send to {peer}"), err), Some(unsent))
}

/// Whether input was still to be sent when the connection failed: stdin
/// not at its end yet, or a send already failed.
fn input_left(up: Option<&std::result::Result<u64, CopyError>>, send: bool) -> bool {
    match up {
        None => send,
        Some(r) => matches!(r, Err(CopyError::Write(_))),
    }
}

/// Adds to a network failure that input was left unsent (`Some`):
/// `read_unsent` bytes read from it but not written, and whatever of it
/// was not read yet (not counted: stdin is not read to its end after the
/// failure).
fn with_unsent(err: Error, read_unsent: Option<u64>) -> Error {
    let Some(read_unsent) = read_unsent else {
        return err;
    };
    match err {
        Error::Network { what, reason } => Error::Network {
            what,
            reason: if read_unsent > 0 {
                format!("{reason}: at least {read_unsent} bytes of input not sent")
            } else {
                format!("{reason}: the rest of the input not sent")
            },
        },
        other => other,
    }
}

/// After the peer's EOF, lets `up` go on while input still flows (the peer
/// may only have half-closed); returns its result, or `None` once input has
/// paused for `pause` (a terminal). A write blocked on a slow peer is not a
/// pause.
async fn drain<F: std::future::Future>(
    mut up: std::pin::Pin<&mut F>,
    feed: &Feed,
    pause: Duration,
) -> Option<F::Output> {
    loop {
        tokio::select! {
            r = &mut up => return Some(r),
            () = tokio::time::sleep(pause) => {
                if feed.quiet_for(pause) {
                    tracing::info!("stdin idle after the peer closed, ending");
                    return None;
                }
            }
        }
    }
}
