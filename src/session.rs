//! A session: one stream connection joined to an input and an output, with
//! netsmith's one end-of-stream policy, the same for `connect` and
//! `listen`, TCP and Unix:
//!
//! | event | what happens |
//! |---|---|
//! | EOF on input | the socket's write side is shut down (half-close) and reading goes on |
//! | EOF from the peer | what arrived is written out; input that is still flowing is sent on (the peer may only have half-closed) until it ends or pauses for 200 ms; then the session ends, even if input is still open |
//! | `--no-shutdown` | at input EOF the write side is left open; the session still ends when the peer closes |
//! | `-q DUR` | the session ends DUR after input EOF, even if the peer has not closed |
//! | `-i DUR` | the session ends with an error after DUR with no byte in either direction |
//! | `--recv-only` | input is never read and the write side is never shut down |
//! | `--send-only` | what arrives is discarded; the session still ends when the peer closes |
//!
//! Ending only when the peer closes is what makes a request over a
//! half-closed connection work (the answer comes after our FIN). TCP cannot
//! tell a peer that half-closed from one that closed, so at the peer's EOF
//! the input is drained while it flows: a transfer in both directions loses
//! nothing, an idle terminal does not keep the session open, and a peer
//! that closed for good refuses the rest, which is reported as an error.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

use crate::copy::{self, Activity, CopyError, Feed, HexDump, Tap};
use crate::error::{Error, Result};
use crate::net::Stream;

/// After the peer's EOF, how long input may pause before the session stops
/// waiting for more of it. Long enough for any pipe that is still moving
/// data, short enough that an idle terminal ends the session at once.
pub const DRAIN_PAUSE: Duration = Duration::from_millis(200);

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
    let (mut sock_rd, mut sock_wr) = tokio::io::split(stream);
    let activity = Arc::new(Activity::default());
    let label = opts.label_hex.then(|| peer.to_string());
    let feed = Arc::new(Feed::default());
    let mut up_tap = Tap::new(
        opts.crlf,
        opts.hex.then(|| HexDump::new('>', label.clone())),
        Some(activity.clone()),
    )
    .feeding(feed.clone());
    let mut down_tap = Tap::new(
        false,
        opts.hex.then(|| HexDump::new('<', label)),
        Some(activity.clone()),
    );

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
    let down = async {
        if opts.recv {
            copy::pump(&mut sock_rd, &mut output, &mut down_tap).await
        } else {
            copy::pump(&mut sock_rd, &mut tokio::io::sink(), &mut down_tap).await
        }
    };
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
                    Err(CopyError::Write(e)) => {
                        return Err(Error::stdout(&e));
                    }
                    // TLS without close_notify: said, not fatal (see crate::tls).
                    Err(CopyError::Read(e)) if crate::tls::is_truncation(&e) => {
                        tracing::warn!(
                            "{peer} closed without TLS close_notify: what arrived may be truncated"
                        );
                    }
                    Err(CopyError::Read(e)) => return Err(Error::io(format!("connection with {peer}"), &e)),
                }
                if up_result.is_none() && opts.send {
                    up_result = drain(up.as_mut(), &feed).await;
                }
                return match up_result {
                    Some(Err(CopyError::Write(e))) => Err(Error::io(format!("send to {peer}"), &e)),
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

/// After the peer's EOF, lets `up` go on while input still flows (the peer
/// may only have half-closed); returns its result, or `None` once input has
/// paused for [`DRAIN_PAUSE`]. A write blocked on a slow peer is not a pause.
async fn drain<F: std::future::Future>(
    mut up: std::pin::Pin<&mut F>,
    feed: &Feed,
) -> Option<F::Output> {
    loop {
        tokio::select! {
            r = &mut up => return Some(r),
            () = tokio::time::sleep(DRAIN_PAUSE) => {
                if feed.quiet_for(DRAIN_PAUSE) {
                    tracing::info!("stdin idle after the peer closed, ending");
                    return None;
                }
            }
        }
    }
}
