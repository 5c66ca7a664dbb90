//! The UDP relay: `udp-listen:` to `udp://`. Each client address gets a
//! session with its own upstream socket, connected to the target, so the
//! target's replies on that socket can only be for that client and go back
//! to it. A session ends after `--idle-timeout` without a datagram either
//! way; `--max-conns` bounds how many are open at once.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use crate::copy::{Activity, HexDump};
use crate::endpoint::Endpoint;
use crate::error::{Error, Result, describe_io};
use crate::net::{Datagram, Peer, dial};

use super::RelayConfig;

/// The largest datagram UDP carries.
const MAX_DATAGRAM: usize = 65_536;

/// One client's session.
struct Session {
    /// Connected to the target: replies come back on it.
    upstream: Datagram,
    /// When a datagram last went either way, for expiry.
    activity: Activity,
    /// `--hex` of the client's datagrams (the replies' dump is the reply task's).
    dump: Option<Mutex<HexDump>>,
    /// `#N CLIENT`, for logs.
    label: String,
}

/// The open sessions by client address.
type Table = Arc<Mutex<HashMap<SocketAddr, Arc<Session>>>>;

/// Relays datagrams received on `socket` to `target` until the command is
/// dropped. Failures concern one client and are logged, never fatal.
pub async fn serve(
    socket: Datagram,
    target: Endpoint,
    cfg: Arc<RelayConfig>,
    max: usize,
) -> Result<()> {
    let socket = Arc::new(socket);
    let table: Table = Arc::default();
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut next_id = 0u64;
    loop {
        let (n, peer) = match socket.recv_from(&mut buf).await {
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
        let existing = table.lock().ok().and_then(|t| t.get(&from).cloned());
        let session = if let Some(session) = existing {
            session
        } else {
            if table.lock().map_or(0, |t| t.len()) >= max {
                tracing::info!("--max-conns sessions open: datagram from {from} dropped");
                continue;
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
        session.activity.touch();
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
    let session = Arc::new(Session {
        upstream,
        activity: Activity::default(),
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
    loop {
        tokio::select! {
            r = session.upstream.recv(&mut buf) => match r {
                Ok(n) => {
                    session.activity.touch();
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
            () = session.activity.idle_for(idle) => break,
        }
    }
    if let Ok(mut t) = table.lock() {
        t.remove(&from);
    }
    tracing::info!(
        "{}: idle for {}, session closed",
        session.label,
        crate::duration::show(idle)
    );
}
