//! One stream of chunks copied to many clients, each behind its own bounded
//! queue: stdin to every client of `listen -k`, and every client's bytes to
//! every other client of `listen --broker`/`--chat`.
//!
//! Each member of a [`Hub`] has a queue of [`CLIENT_QUEUE`] chunks, and a
//! chunk goes to every member present when it is sent (but never back to
//! the member it came from). A member that does not read slows its senders
//! down, for at most [`CLIENT_STALL`]: a member whose queue stays full that
//! long is dropped, and said on stderr, so that one client cannot stop the
//! others (or make memory grow); the others miss nothing. A member that
//! leaves is forgotten at the next chunk or join, so an idle hub does not
//! grow either.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::stdio::Chunks;

/// Chunks queued for one member before its senders wait for it.
pub const CLIENT_QUEUE: usize = 16;

/// How long a sender waits for a member whose queue is full before
/// dropping it: long enough for a live client on a slow path to take one
/// more chunk (the queue and the socket buffers hold over a megabyte),
/// short enough that the other clients are not kept waiting for long.
pub const CLIENT_STALL: Duration = Duration::from_secs(5);

/// Who may send into a hub: a member (its id), or the server itself
/// (stdin, announcements), whose chunks go to every member.
pub type From = Option<u64>;

/// The members of one server, shared by its connection tasks. Cloning
/// shares it.
#[derive(Clone)]
pub struct Hub {
    /// `None` once closed: members have had their queues ended, and later
    /// joiners get an empty one.
    members: Arc<Mutex<Option<Vec<Member>>>>,
    /// What this hub serves, for the drop message (`listen -k`, `--broker`).
    role: &'static str,
}

/// One member's queue, and the token that drops it.
#[derive(Clone)]
struct Member {
    id: u64,
    tx: mpsc::Sender<std::io::Result<Bytes>>,
    /// Cancelled when the member falls behind: its connection ends.
    dropped: CancellationToken,
    peer: String,
}

/// What a new member gets: the chunks sent to it, and the token cancelled
/// if it is dropped for falling behind.
pub struct Joined {
    pub chunks: Chunks,
    pub dropped: CancellationToken,
}

impl Hub {
    /// An empty hub; `role` names the mode in the message a dropped member
    /// gets on stderr.
    pub fn new(role: &'static str) -> Hub {
        Hub {
            members: Arc::new(Mutex::new(Some(Vec::new()))),
            role,
        }
    }

    /// Adds member `id` (at `peer`, for messages); also returns the other
    /// members still connected, in the order they joined (`--chat` names
    /// them). After [`Hub::close`] the new member's queue is empty and ended.
    pub fn join(&self, id: u64, peer: &str) -> (Joined, Vec<(u64, String)>) {
        let (tx, rx) = mpsc::channel(CLIENT_QUEUE);
        let dropped = CancellationToken::new();
        let mut others = Vec::new();
        if let Ok(mut guard) = self.members.lock()
            && let Some(list) = guard.as_mut()
        {
            list.retain(Member::live);
            others = list.iter().map(|m| (m.id, m.peer.clone())).collect();
            list.push(Member {
                id,
                tx,
                dropped: dropped.clone(),
                peer: peer.to_string(),
            });
        }
        (
            Joined {
                chunks: rx,
                dropped,
            },
            others,
        )
    }

    /// Removes member `id` (it left), so that nothing more is queued for it.
    pub fn leave(&self, id: u64) {
        if let Ok(mut guard) = self.members.lock()
            && let Some(list) = guard.as_mut()
        {
            list.retain(|m| m.id != id);
        }
    }

    /// Queues `bytes` for every member but `from`: at once where there is
    /// room, else waiting for room until [`CLIENT_STALL`] has passed (one
    /// deadline for all, so several stalled members cost one stall); a
    /// member still full then is dropped.
    pub async fn send(&self, from: From, bytes: &Bytes) {
        use tokio::sync::mpsc::error::TrySendError;
        let targets: Vec<Member> = self
            .members
            .lock()
            .map(|g| g.clone().unwrap_or_default())
            .unwrap_or_default();
        let mut full = Vec::new();
        for member in targets.iter().filter(|m| m.live() && Some(m.id) != from) {
            match member.tx.try_send(Ok(bytes.clone())) {
                Ok(()) | Err(TrySendError::Closed(_)) => {}
                Err(TrySendError::Full(item)) => full.push((member, item)),
            }
        }
        let deadline = tokio::time::Instant::now() + CLIENT_STALL;
        for (member, item) in full {
            if tokio::time::timeout_at(deadline, member.tx.send(item))
                .await
                .is_err()
            {
                tracing::warn!(
                    "netsmith: {}: dropped: its queue ({} chunks) stayed full for {} ({}); \
                     the other clients go on",
                    member.peer,
                    CLIENT_QUEUE,
                    crate::duration::show(CLIENT_STALL),
                    self.role
                );
                member.dropped.cancel();
            }
        }
        if let Ok(mut guard) = self.members.lock()
            && let Some(list) = guard.as_mut()
        {
            list.retain(Member::live);
        }
    }

    /// Sends every chunk of `chunks` (stdin) to every member, from `from`,
    /// until its end or first error; `frame` may turn each chunk into what
    /// is sent (nothing, to hold it back).
    pub async fn feed(
        &self,
        from: From,
        mut chunks: Chunks,
        mut frame: impl FnMut(Bytes) -> Option<Bytes>,
    ) {
        while let Some(Ok(chunk)) = chunks.recv().await {
            if let Some(bytes) = frame(chunk) {
                self.send(from, &bytes).await;
            }
        }
    }

    /// Ends every member's queue (their sessions see EOF: `listen -k` at
    /// stdin's end); later joiners get an ended queue at once.
    pub fn close(&self) {
        if let Ok(mut guard) = self.members.lock() {
            *guard = None;
        }
    }
}

impl Member {
    /// Still connected and not dropped.
    fn live(&self) -> bool {
        !self.tx.is_closed() && !self.dropped.is_cancelled()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn chunks_reach_every_member_but_the_sender() {
        let hub = Hub::new("test");
        let (mut a, none) = hub.join(1, "a");
        assert!(none.is_empty());
        let (mut b, others) = hub.join(2, "b");
        assert_eq!(others, [(1, "a".to_string())]);
        hub.send(Some(1), &Bytes::from_static(b"hi")).await;
        hub.send(None, &Bytes::from_static(b"all")).await;
        assert_eq!(&b.chunks.recv().await.unwrap().unwrap()[..], b"hi");
        assert_eq!(&b.chunks.recv().await.unwrap().unwrap()[..], b"all");
        assert_eq!(&a.chunks.recv().await.unwrap().unwrap()[..], b"all");
        hub.leave(2);
        hub.close();
        assert!(a.chunks.recv().await.is_none());
        assert!(!a.dropped.is_cancelled());
    }
}
