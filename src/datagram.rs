//! Datagram sessions (`connect -u`, `listen -u`, and the Unix datagram
//! forms): each chunk of input is one datagram, each datagram received is
//! written out as it came.
//!
//! The client keeps listening after its input ends (`--wait`), so that
//! `printf q | netsmith connect -u HOST PORT` shows the answer, which nc and
//! ncat do not; `--timeout` turns silence into an error, the tutorial's
//! "No connection!" case.

use std::time::Duration;

use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

use crate::copy::HexDump;
use crate::duration::show;
use crate::error::{Error, Result};
use crate::net::{Datagram, Peer};
use crate::stdio::Chunks;

/// The largest UDP payload over IPv4 (65,535 - 20 - 8); longer input
/// chunks are split.
pub const MAX_DATAGRAM: usize = 65_507;

/// How a datagram client waits for replies.
#[derive(Clone, Copy, Debug)]
pub struct ClientWait {
    /// After input ends, keep receiving until this long passes without a
    /// datagram (`--wait`).
    pub linger: Duration,
    /// Fail if a datagram sent gets no reply within this long (`--timeout`).
    pub reply_timeout: Option<Duration>,
}

/// Sends each input chunk as one datagram on a connected socket and writes
/// every datagram received to `output`.
pub async fn client<O>(
    socket: &Datagram,
    target: &str,
    mut input: Option<Chunks>,
    output: &mut O,
    wait: ClientWait,
    hex: bool,
) -> Result<()>
where
    O: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; 65_536];
    let mut hex_out = hex.then(|| HexDump::new('>', None));
    let mut hex_in = hex.then(|| HexDump::new('<', None));
    // The first datagram sent since the last reply, if it is still unanswered.
    let mut unanswered: Option<Instant> = None;
    let mut last_event = Instant::now();
    loop {
        let deadline = match (unanswered, wait.reply_timeout, input.is_some()) {
            (Some(sent), Some(limit), _) => Some((sent + limit, true)),
            (_, _, false) => Some((last_event + wait.linger, false)),
            _ => None,
        };
        tokio::select! {
            chunk = recv_chunk(&mut input), if input.is_some() => match chunk {
                Some(Ok(bytes)) => {
                    for piece in bytes.chunks(MAX_DATAGRAM) {
                        if let Some(h) = &mut hex_out { h.dump(piece); }
                        socket.send(piece).await.map_err(|e| refused_or(target, &e))?;
                    }
                    unanswered.get_or_insert_with(Instant::now);
                }
                Some(Err(e)) => return Err(Error::stdin(&e)),
                None => {
                    tracing::info!("stdin EOF, waiting up to {} for replies", show(wait.linger));
                    input = None;
                    last_event = Instant::now();
                }
            },
            r = socket.recv(&mut buf) => {
                let n = r.map_err(|e| refused_or(target, &e))?;
                if let Some(h) = &mut hex_in { h.dump(&buf[..n]); }
                if !write_out(output, &buf[..n]).await? {
                    return Ok(());
                }
                unanswered = None;
                last_event = Instant::now();
            }
            () = crate::duration::sleep_until(deadline.map(|d| d.0)), if deadline.is_some() => {
                if deadline.is_some_and(|d| d.1) {
                    let limit = wait.reply_timeout.unwrap_or_default();
                    return Err(Error::Silence(format!("no reply from {target} within {}", show(limit))));
                }
                return Ok(());
            }
        }
    }
}

/// Receives datagrams from any sender and writes them to `output`; input
/// chunks go to the most recent sender. With `timeout`, ends after that long
/// without a datagram: an error if none ever came.
pub async fn server<O>(
    socket: &Datagram,
    mut input: Option<Chunks>,
    output: &mut O,
    timeout: Option<Duration>,
    hex: bool,
) -> Result<()>
where
    O: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; 65_536];
    let mut last: Option<Peer> = None;
    let mut received_any = false;
    let mut last_event = Instant::now();
    loop {
        let deadline = timeout.map(|t| last_event + t);
        tokio::select! {
            r = socket.recv_from(&mut buf) => match r {
                Ok((n, peer)) => {
                    if last.as_ref() != Some(&peer) {
                        tracing::info!("datagram from {peer}");
                    }
                    if hex {
                        HexDump::new('<', Some(peer.to_string())).dump(&buf[..n]);
                    }
                    if !write_out(output, &buf[..n]).await? {
                        return Ok(());
                    }
                    last = Some(peer);
                    received_any = true;
                    last_event = Instant::now();
                }
                // An ICMP error for an earlier reply must not stop the server.
                Err(e) => tracing::warn!("receive failed: {}", crate::error::describe_io(&e)),
            },
            chunk = recv_chunk(&mut input), if input.is_some() && last.is_some() => match chunk {
                Some(Ok(bytes)) => {
                    if let Some(peer) = &last {
                        for piece in bytes.chunks(MAX_DATAGRAM) {
                            if hex {
                                HexDump::new('>', Some(peer.to_string())).dump(piece);
                            }
                            if let Err(e) = socket.send_to(piece, peer).await {
                                tracing::warn!("send to {peer} failed: {}", crate::error::describe_io(&e));
                            }
                        }
                    }
                }
                Some(Err(e)) => return Err(Error::stdin(&e)),
                None => input = None,
            },
            () = crate::duration::sleep_until(deadline), if deadline.is_some() => {
                if received_any {
                    tracing::info!("no datagram for {}, ending", show(timeout.unwrap_or_default()));
                    return Ok(());
                }
                return Err(Error::Silence(format!("no datagram within {}", show(timeout.unwrap_or_default()))));
            }
        }
    }
}

async fn recv_chunk(input: &mut Option<Chunks>) -> Option<std::io::Result<bytes::Bytes>> {
    match input {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// Writes one datagram to the output; `false` when stdout has been closed
/// (`| head`), which ends the session quietly.
async fn write_out<O: AsyncWrite + Unpin>(output: &mut O, data: &[u8]) -> Result<bool> {
    match output.write_all(data).await {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(Error::stdout(&e)),
    }
}

/// A refused datagram means an ICMP port unreachable came back.
fn refused_or(target: &str, err: &std::io::Error) -> Error {
    if err.kind() == std::io::ErrorKind::ConnectionRefused {
        return Error::Network {
            what: format!("send to {target}"),
            reason: "connection refused (port unreachable: nothing listens there)".into(),
        };
    }
    Error::io(format!("send to {target}"), err)
}
