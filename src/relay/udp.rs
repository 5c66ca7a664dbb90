//! The UDP relay: `udp-listen:` to `udp://`. Each client address gets a
//! session with its own upstream socket, connected to the target, so the
//! target's replies on that socket can only be for that client and go back
//! to it. A session ends after `--idle-timeout` without a datagram either
//! way; `--max-conns` bounds how many are open at once, and when all are in
//! use a new client takes the place of the least recently active one (said
//! on stderr), so that a burst from many addresses cannot lock clients out.
//! Datagrams the kernel drops on the relay's sockets (a full receive queue)
//! are counted and said too.

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::copy::{Activity, HexDump};
use crate::datagram::Receiver;
use crate::endpoint::Endpoint;
use crate::error::{Error, Result, describe_io};
use crate::net::{Datagram, Peer, dial};

use super::RelayConfig;

/// The largest datagram UDP carries.
const MAX_DATAGRAM: usize = 65_536;

/// How often at most the same warning (sessions evicted, datagrams
/// dropped by the kernel) is repeated.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// One client's session.
struct Session {
    /// Connected to the target: replies come back on it.
    upstream: Datagram,
    /// When a datagram last went either way, for expiry.
    activity: Activity,
    /// The same, in milliseconds since the table's epoch, for eviction.
    last_ms: AtomicU64,
    /// Cancelled when the session is evicted for a new client.
    closed: CancellationToken,
    /// `--hex` of the client's datagrams (the replies' dump is the reply task's).
    dump: Option<Mutex<HexDump>>,
    /// `#N CLIENT`, for logs.
    label: String,
}

impl Session {
    /// Records a datagram either way.
    fn touch(&self, epoch: Instant) {
        self.activity.touch();
        self.last_ms.store(millis(epoch), Ordering::Relaxed);
    }
}

/// Milliseconds since `epoch`.
fn millis(epoch: Instant) -> u64 {
    u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// The open sessions, and the order in which to evict them.
struct Sessions {
    /// The zero of every session's `last_ms`.
    epoch: Instant,
    /// By client address: the session, and its key in `order`.
    by_client: HashMap<SocketAddr, (Arc<Session>, u64)>,
    /// (last active, client), oldest first. A key may be older than the
    /// session's real last activity (replies and datagrams do not re-file
    /// it): eviction re-files such a session and looks again.
    order: BTreeSet<(u64, SocketAddr)>,
}

impl Sessions {
    fn insert(&mut self, from: SocketAddr, session: Arc<Session>) {
        let key = session.last_ms.load(Ordering::Relaxed);
        if let Some((_, old)) = self.by_client.insert(from, (session, key)) {
            self.order.remove(&(old, from));
        }
        self.order.insert((key, from));
    }

    /// Removes `from`'s session if it is still `session`.
    fn remove(&mut self, from: SocketAddr, session: &Arc<Session>) {
        if let Some((current, key)) = self.by_client.get(&from)
            && Arc::ptr_eq(current, session)
        {
            self.order.remove(&(*key, from));
            self.by_client.remove(&from);
        }
    }

    /// Takes out the least recently active session.
    fn evict(&mut self) -> Option<(SocketAddr, Arc<Session>)> {
        while let Some((key, from)) = self.order.pop_first() {
            let Some((session, filed)) = self.by_client.get_mut(&from) else {
                continue;
            };
            let last = session.last_ms.load(Ordering::Relaxed);
            if last > key {
                *filed = last;
                self.order.insert((last, from));
                continue;
            }
            return self.by_client.remove(&from).map(|(s, _)| (from, s));
        }
        None
    }
}

/// The open sessions, shared with their reply tasks.
type Table = Arc<Mutex<Sessions>>;

/// Relays datagrams received on `socket` to `target` until the command is
/// dropped. Failures concern one client and are logged, never fatal.
pub async fn serve(
    socket: Datagram,
    target: Endpoint,
    cfg: Arc<RelayConfig>,
    max: usize,
) -> Result<()> {
    let socket = Arc::new(socket);
    let table: Table = Arc::new(Mutex::new(Sessions {
        epoch: Instant::now(),
        by_client: HashMap::new(),
        order: BTreeSet::new(),
    }));
    let epoch = table.lock().map_or_else(|_| Instant::now(), |t| t.epoch);
    let mut receiver = Receiver::new(&socket);
    let mut warned_drops = Warned::default();
    let mut warned_full = Warned::default();
    let mut evicted = 0u64;
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut next_id = 0u64;
    loop {
        let got = receiver.recv_from(&mut buf).await;
        if warned_drops.changed(receiver.dropped()) {
            tracing::warn!(
                "udp: the kernel dropped {} datagrams from clients so far (the relay's \
                 receive queue was full)",
                receiver.dropped()
            );
        }
        let (n, peer) = match got {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!("udp receive: {}", describe_io(&e));
                continue;
            }
        };
        let Peer::Inet(from) = peer else { continue };
        if !cfg.acl.admits(from.ip()) {
            tracing::info!("refused {from}: not allowed");
            continue;
        }
        let existing = table
            .lock()
            .ok()
            .and_then(|t| t.by_client.get(&from).map(|(s, _)| s.clone()));
        let session = if let Some(session) = existing {
            session
        } else {
            let full = table.lock().map_or(0, |t| t.by_client.len()) >= max;
            if full && let Some((old, session)) = table.lock().ok().and_then(|mut t| t.evict()) {
                session.closed.cancel();
                evicted += 1;
                tracing::info!(
                    "{}: evicted for {from}, the least recently active of {max} sessions",
                    session.label
                );
                if warned_full.changed(evicted) {
                    tracing::warn!(
                        "udp: all {max} sessions in use (--max-conns): the least recently \
                         active make way for new clients ({evicted} evicted so far; the last \
                         was {old})"
                    );
                }
            }
            next_id += 1;
            match open(from, next_id, &socket, &table, &target, &cfg).await {
                Ok(session) => session,
                Err(e) => {
                    tracing::warn!("#{next_id} {from}: {e}; datagram dropped");
                    continue;
                }
            }
        };
        session.touch(epoch);
        if let Some(dump) = &session.dump
            && let Ok(mut dump) = dump.lock()
        {
            dump.dump(&buf[..n]);
        }
        if let Err(e) = session.upstream.send(&buf[..n]).await {
            tracing::info!("{}: send to {target}: {}", session.label, describe_io(&e));
        }
    }
}

/// Opens the session of a new client and starts its reply task.
async fn open(
    from: SocketAddr,
    id: u64,
    socket: &Arc<Datagram>,
    table: &Table,
    target: &Endpoint,
    cfg: &Arc<RelayConfig>,
) -> Result<Arc<Session>> {
    let Endpoint::Inet { host, port, .. } = target else {
        return Err(Error::usage(format!("{target} is not a UDP endpoint")));
    };
    let addrs = cfg.resolve.addrs(host, *port).await?;
    let upstream = dial::udp(&target.to_string(), &addrs, None).await?;
    let label = format!("#{id} {from}");
    let dump = |direction| {
        cfg.hex
            .as_ref()
            .map(|sink| HexDump::new(direction, Some(label.clone())).timestamped(sink.clone()))
    };
    let epoch = table.lock().map_or_else(|_| Instant::now(), |t| t.epoch);
    let session = Arc::new(Session {
        upstream,
        activity: Activity::default(),
        last_ms: AtomicU64::new(millis(epoch)),
        closed: CancellationToken::new(),
        dump: dump('>').map(Mutex::new),
        label: label.clone(),
    });
    if let Ok(mut t) = table.lock() {
        t.insert(from, session.clone());
    }
    tracing::info!("{label}: new session to {target}");
    tokio::spawn(replies(
        session.clone(),
        from,
        socket.clone(),
        table.clone(),
        cfg.idle,
        dump('<'),
    ));
    Ok(session)
}

/// Sends the target's replies back to the client until the session has
/// been idle for `idle`, then closes it.
async fn replies(
    session: Arc<Session>,
    from: SocketAddr,
    socket: Arc<Datagram>,
    table: Table,
    idle: std::time::Duration,
    mut dump: Option<HexDump>,
) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let epoch = table.lock().map_or_else(|_| Instant::now(), |t| t.epoch);
    let mut receiver = Receiver::new(&session.upstream);
    let mut warned = Warned::default();
    let evicted = loop {
        tokio::select! {
            r = receiver.recv(&mut buf) => match r {
                Ok(n) => {
                    session.touch(epoch);
                    if warned.changed(receiver.dropped()) {
                        tracing::warn!(
                            "{}: the kernel dropped {} replies so far (the receive queue was full)",
                            session.label,
                            receiver.dropped()
                        );
                    }
                    if let Some(dump) = &mut dump {
                        dump.dump(&buf[..n]);
                    }
                    if let Err(e) = socket.send_to(&buf[..n], &Peer::Inet(from)).await {
                        tracing::debug!("{}: reply: {}", session.label, describe_io(&e));
                    }
                }
                // An ICMP error for an earlier datagram (the target's port
                // is closed): the session goes on, as the client may retry.
                Err(e) => tracing::info!("{}: {}", session.label, describe_io(&e)),
            },
            () = session.activity.idle_for(idle) => break false,
            () = session.closed.cancelled() => break true,
        }
    };
    if let Ok(mut t) = table.lock() {
        t.remove(from, &session);
    }
    if !evicted {
        tracing::info!(
            "{}: idle for {}, session closed",
            session.label,
            crate::duration::show(idle)
        );
    }
}

/// A warning about a growing count, said when the count has grown and not
/// more often than [`WARN_EVERY`].
#[derive(Default)]
struct Warned {
    said: u64,
    at: Option<Instant>,
}

impl Warned {
    /// Whether to say `count` now.
    fn changed(&mut self, count: u64) -> bool {
        if count <= self.said || self.at.is_some_and(|at| at.elapsed() < WARN_EVERY) {
            return false;
        }
        self.said = count;
        self.at = Some(Instant::now());
        true
    }
}
