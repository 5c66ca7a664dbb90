//! The accept loop, written once for every server (`listen -k`, and later
//! `serve` and `relay`).
//!
//! A permit of a shared semaphore is taken for each accepted client, so at
//! most `max_conns` clients are served at once over every listener of a
//! server, and the rest wait in the kernel's backlog instead of costing a
//! descriptor each. An accept error never ends
//! the loop: running out of descriptors (EMFILE) backs off and retries, so
//! the clients already connected keep being served.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::acl::Acl;
use crate::error::describe_io;
use crate::net::{Accepted, Listener, Peer, Stream};

/// Descriptors a server keeps free for everything that is not a client
/// connection (its listeners, stdio, the runtime, a resolver).
const RESERVED_FDS: u64 = 64;

/// The fewest connections a server serves at once by default, however low
/// the descriptor limit.
const MIN_MAX_CONNS: u64 = 16;

/// The most connections a server serves at once: `given` (`--max-conns`),
/// or as many as the descriptor limit (raised to its hard limit here)
/// allows at `fds_per_conn` descriptors each, keeping [`RESERVED_FDS`]
/// spare. Also returns the limit, for the log line.
pub fn max_conns(given: Option<usize>, fds_per_conn: u64) -> (usize, u64) {
    let fd_limit = crate::net::raise_fd_limit();
    let budget = (fd_limit.saturating_sub(RESERVED_FDS) / fds_per_conn.max(1)).max(MIN_MAX_CONNS);
    (given.unwrap_or(budget as usize), fd_limit)
}

/// The first pause after a failed accept.
const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(10);
/// The longest pause between accept attempts while the failure lasts.
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Accepts clients until `stop` is cancelled. `handle` serves each: at once
/// (returning `None`, for a client that needs no waiting), or by returning
/// a future that runs on a task of `tracker` (so that a graceful stop can
/// wait for it). `limit` is shared by every listener of a server: one
/// permit per open connection.
pub async fn accept_loop<F, Fut>(
    listener: &Listener,
    limit: Arc<Semaphore>,
    tracker: &TaskTracker,
    stop: &CancellationToken,
    mut handle: F,
) where
    F: FnMut(Stream, Peer) -> Option<Fut>,
    Fut: Future<Output = ()> + Send + 'static,
{
    accept_unregistered(listener, limit, tracker, stop, |conn| {
        let peer = conn.peer().clone();
        match conn.into_stream() {
            Ok(stream) => handle(stream, peer),
            Err(e) => {
                tracing::warn!("{peer}: cannot watch the connection: {}", describe_io(&e));
                None
            }
        }
    })
    .await;
}

/// [`accept_loop`] for a server that may answer a client at once, before
/// (or without) registering its connection with the reactor: see
/// [`Accepted`].
pub async fn accept_unregistered<F, Fut>(
    listener: &Listener,
    limit: Arc<Semaphore>,
    tracker: &TaskTracker,
    stop: &CancellationToken,
    mut handle: F,
) where
    F: FnMut(Accepted) -> Option<Fut>,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut backoff = ACCEPT_BACKOFF_MIN;
    loop {
        let accepted = tokio::select! {
            r = listener.accept_unregistered() => r,
            () = stop.cancelled() => return,
        };
        match accepted {
            Ok(conn) => {
                backoff = ACCEPT_BACKOFF_MIN;
                // The permit is taken after accepting, so that a listener
                // with no client holds none: several listeners share the
                // limit. At the limit this listener waits here, holding
                // one accepted connection, and the rest queue in the backlog.
                if limit.available_permits() == 0 {
                    tracing::info!("connection limit reached (--max-conns): new clients wait");
                }
                let permit = tokio::select! {
                    p = limit.clone().acquire_owned() => match p {
                        Ok(p) => p,
                        Err(_) => return, // the semaphore is never closed
                    },
                    () = stop.cancelled() => return,
                };
                if let Some(task) = handle(conn) {
                    tracker.spawn(async move {
                        task.await;
                        drop(permit);
                    });
                }
            }
            Err(e) if is_transient(&e) => {
                tracing::debug!("accept: {}", describe_io(&e));
            }
            Err(e) => {
                tracing::warn!(
                    "accept failed: {}; retrying in {:?}",
                    describe_io(&e),
                    backoff
                );
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    () = stop.cancelled() => return,
                }
                backoff = (backoff * 2).min(ACCEPT_BACKOFF_MAX);
            }
        }
    }
}

/// Whether `--allow`/`--deny` admit `peer` (Unix peers always are). A
/// refused client's connection is set to end with a reset when dropped
/// (see [`crate::net::Accepted::refuse`]).
pub fn admitted(acl: &Acl, stream: &Stream, peer: &Peer) -> bool {
    let ok = match peer {
        Peer::Inet(addr) => acl.admits(addr.ip()),
        Peer::Unix(_) => true,
    };
    if !ok {
        tracing::info!("refused {peer}: not allowed");
        if let Some(reset) = stream.reset_handle() {
            reset.reset();
        }
    }
    ok
}

/// Accepts until `acl` admits a client, for a server of one client
/// (`listen` without `-k`, `relay` to stdio): a refused one is reset and
/// listening goes on, as ncat does.
pub async fn accept_admitted(listener: &Listener, acl: &Acl) -> crate::Result<(Stream, Peer)> {
    loop {
        let (stream, peer) = listener
            .accept()
            .await
            .map_err(|e| crate::Error::io("accept a connection", &e))?;
        if admitted(acl, &stream, &peer) {
            return Ok((stream, peer));
        }
    }
}

/// Errors about one client that went away before we accepted it; the next
/// accept can go ahead at once.
fn is_transient(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
            | std::io::ErrorKind::Interrupted
    )
}
