//! UDP for `serve`: each socket is answered by a thread of its own that
//! blocks in the kernel's receive, the way inetd's single loop does.
//!
//! Why not a tokio task: under load the task costs an `epoll_wait`, a
//! receive that finds the queue empty, and a wake-up that often lands on
//! the other worker thread, for every datagram or two. A thread that
//! blocks in `recvmmsg` is woken by the sender's own softirq and takes
//! every queued datagram in one call, then answers them in one `sendmmsg`.
//!
//! The socket is not a reflector: no answers to the classic services' own
//! ports or this server's (two echo servers would bounce a datagram
//! forever), to denied sources, or beyond `--udp-rate` per source.

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::{IoSlice, IoSliceMut};
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::socket::{
    ControlMessage, MsgFlags, MultiHeaders, SockaddrStorage, recvmmsg, sendmmsg,
};
use tokio_util::sync::CancellationToken;

use super::handlers::Ctx;
use super::proto::LOOP_PORTS;
use super::stats::Stats;
use crate::acl::Acl;

/// What decides whether a datagram is answered.
pub struct Policy {
    pub acl: Acl,
    /// Replies per second per source (0: no limit).
    pub rate: u32,
    /// Ports of this server's own UDP sockets.
    pub own_ports: Arc<[u16]>,
}

/// How long a blocked receive waits before it looks at the stop flag again,
/// in case the shutdown that should wake it does not.
const STOP_POLL: Duration = Duration::from_millis(500);

/// Answers datagrams on `socket` until `stop`, from a blocking thread.
pub async fn serve(socket: UdpSocket, ctx: Arc<Ctx>, policy: Policy, stop: CancellationToken) {
    let socket = Arc::new(socket);
    let stopping = Arc::new(AtomicBool::new(false));
    let worker = {
        let (socket, stopping) = (socket.clone(), stopping.clone());
        tokio::task::spawn_blocking(move || {
            answer(&socket, &ctx, &policy, &stopping);
            ctx
        })
    };
    stop.cancelled().await;
    stopping.store(true, Ordering::Release);
    // Linux wakes a blocked receive on a UDP socket that is shut down, even
    // an unconnected one (which reports ENOTCONN but shuts down anyway).
    let _ = socket2::SockRef::from(&*socket).shutdown(std::net::Shutdown::Read);
    match worker.await {
        // What the kernel dropped while the server ran (its receive queue
        // was full): counted, so the totals say that not all was answered.
        Ok(ctx) => {
            let drops = crate::datagram::kernel_drops(&*socket).unwrap_or(0);
            Stats::add(&ctx.stats.dropped_kernel, drops);
            if drops > 0 {
                tracing::warn!(
                    "{}/udp: the kernel dropped {drops} datagrams (the receive queue was full)",
                    ctx.service
                );
            }
        }
        Err(e) => tracing::warn!("udp: the receive thread failed: {e}"),
    }
}

/// Datagrams taken from the socket per `recvmmsg`.
const BATCH: usize = 32;

/// The largest datagram, with room to spare: nothing is truncated.
const BUF_LEN: usize = 65_536;

/// How long the loop polls without blocking after its last datagram.
///
/// A thread that sleeps in `recvmmsg` must be woken by the sender, and on a
/// virtual machine that wake-up (an interrupt to an idle CPU) costs more
/// than the request. Polling for a moment after each batch, yielding the
/// CPU between polls, keeps a busy socket's thread awake: with 16 clients
/// on 2 cores it raised UDP echo by 5 to 10% (`bench/serve.sh`). An idle
/// server still sleeps, after spending at most this long per datagram.
const SPIN: Duration = Duration::from_micros(30);

/// The receive loop: every queued datagram in one `recvmmsg`, their
/// answers in one `sendmmsg`, and a short poll before sleeping again.
fn answer(socket: &UdpSocket, ctx: &Ctx, policy: &Policy, stopping: &AtomicBool) {
    if let Err(e) = socket
        .set_nonblocking(false)
        .and_then(|()| socket.set_read_timeout(Some(STOP_POLL)))
    {
        tracing::warn!("{}/udp: cannot make the socket blocking: {e}", ctx.service);
        return;
    }
    let fd = socket.as_raw_fd();
    // One allocation, so that it is mapped fresh and its untouched pages
    // cost no memory: a small datagram uses one page of its slot.
    let mut space = vec![0u8; BATCH * BUF_LEN];
    let mut received = MultiHeaders::<SockaddrStorage>::preallocate(BATCH, None);
    let mut sending = MultiHeaders::<SockaddrStorage>::preallocate(BATCH, None);
    // Each slot's length and sender, in slot order (so the i-th is in the
    // i-th buffer).
    let mut got: Vec<(usize, Option<SockaddrStorage>)> = Vec::with_capacity(BATCH);
    let mut limiter = RateLimit::new(policy.rate);
    let mut busy = Instant::now();
    while !stopping.load(Ordering::Acquire) {
        got.clear();
        let spinning = busy.elapsed() < SPIN;
        let flags = if spinning {
            MsgFlags::MSG_DONTWAIT
        } else {
            MsgFlags::MSG_WAITFORONE
        };
        {
            let mut bufs = space.chunks_mut(BUF_LEN);
            let mut slots: [[IoSliceMut<'_>; 1]; BATCH] = std::array::from_fn(|_| {
                [IoSliceMut::new(bufs.next().expect("one buffer per slot"))]
            });
            let results = recvmmsg(fd, &mut received, slots.iter_mut(), flags, None);
            // The shutdown that wakes us at the stop returns an empty
            // "datagram" whose address is stale: it must not be answered.
            if stopping.load(Ordering::Acquire) {
                break;
            }
            match results {
                Ok(results) => got.extend(results.map(|r| (r.bytes, r.address))),
                Err(Errno::EAGAIN) if spinning => {
                    std::thread::yield_now();
                    continue;
                }
                Err(Errno::EAGAIN | Errno::EINTR) => continue,
                Err(e) => {
                    // Nothing this socket expects (an unconnected UDP socket
                    // is not told of ICMP errors): logged, and it goes on.
                    tracing::debug!("{}/udp receive: {}", ctx.service, e.desc());
                    continue;
                }
            }
        }
        // One clock reading per batch, for the poll and the rate limit.
        busy = Instant::now();
        let mut replies: Vec<(Cow<'_, [u8]>, SockaddrStorage)> = Vec::with_capacity(got.len());
        for (buf, &(n, addr)) in space.chunks(BUF_LEN).zip(&got) {
            let Some((addr, from)) = addr.and_then(|a| Some((a, socket_addr(&a)?))) else {
                continue;
            };
            if admit(ctx, policy, &mut limiter, from, busy, n)
                && let Some(reply) = ctx.answer(&buf[..n])
            {
                replies.push((reply, addr));
            }
        }
        send_all(fd, &mut sending, &replies, ctx);
    }
}

/// Sends every reply, in as few `sendmmsg` calls as the kernel allows: a
/// reply that fails is counted and skipped, and the rest still go.
fn send_all(
    fd: RawFd,
    headers: &mut MultiHeaders<SockaddrStorage>,
    replies: &[(Cow<'_, [u8]>, SockaddrStorage)],
    ctx: &Ctx,
) {
    let mut next = 0;
    while next < replies.len() {
        let rest = &replies[next..];
        let slices: Vec<[IoSlice<'_>; 1]> = rest.iter().map(|(r, _)| [IoSlice::new(r)]).collect();
        let addrs: Vec<Option<SockaddrStorage>> = rest.iter().map(|&(_, a)| Some(a)).collect();
        let no_control: [ControlMessage<'_>; 0] = [];
        // Never blocking: a reply the socket's buffer cannot take now is
        // dropped and counted, as the network may drop any datagram, and
        // the thread stays free to stop.
        match sendmmsg(
            fd,
            headers,
            &slices,
            &addrs,
            no_control,
            MsgFlags::MSG_DONTWAIT,
        ) {
            Ok(sent) => {
                let mut count = 0;
                for r in sent {
                    Stats::add(&ctx.stats.bytes_out, r.bytes as u64);
                    count += 1;
                }
                next += count.max(1);
            }
            Err(e) => {
                let to = socket_addr(&rest[0].1).map_or_else(String::new, |a| a.to_string());
                Stats::add(&ctx.stats.errors, 1);
                tracing::debug!("{}/udp reply to {to}: {}", ctx.service, e.desc());
                next += 1;
            }
        }
    }
}

/// The sender's address as std has it (`None` for a family UDP never has).
fn socket_addr(addr: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = addr.as_sockaddr_in() {
        Some(SocketAddr::V4((*v4).into()))
    } else {
        addr.as_sockaddr_in6()
            .map(|v6| SocketAddr::V6((*v6).into()))
    }
}

/// Whether the datagram of `n` bytes from `from`, received at `now`, gets
/// an answer; counts it either way.
fn admit(
    ctx: &Ctx,
    policy: &Policy,
    limiter: &mut RateLimit,
    from: SocketAddr,
    now: Instant,
    n: usize,
) -> bool {
    if LOOP_PORTS.contains(&from.port()) || policy.own_ports.contains(&from.port()) {
        Stats::add(&ctx.stats.dropped_loop, 1);
        return false;
    }
    if !policy.acl.admits(from.ip()) {
        Stats::add(&ctx.stats.denied, 1);
        return false;
    }
    if !limiter.admit(from.ip(), now) {
        Stats::add(&ctx.stats.dropped_rate, 1);
        return false;
    }
    Stats::add(&ctx.stats.datagrams, 1);
    Stats::add(&ctx.stats.bytes_in, n as u64);
    true
}

/// A token bucket per source address: `rate` replies per second, with a
/// burst of as many. The table is bounded; when full, sources idle for a
/// second are forgotten.
struct RateLimit {
    rate: f64,
    buckets: HashMap<IpAddr, (f64, Instant)>,
    /// When the table was last swept of idle sources.
    swept: Instant,
}

/// Sources tracked at once by the UDP rate limit.
const RATE_TABLE_MAX: usize = 65_536;

impl RateLimit {
    fn new(rate: u32) -> Self {
        RateLimit {
            rate: f64::from(rate),
            buckets: HashMap::new(),
            swept: Instant::now(),
        }
    }

    fn admit(&mut self, ip: IpAddr, now: Instant) -> bool {
        if self.rate == 0.0 {
            return true;
        }
        if self.buckets.len() >= RATE_TABLE_MAX && !self.buckets.contains_key(&ip) {
            // Sweep at most once a second: a flood of new (spoofed) sources
            // must not cost a full pass over the table per datagram.
            if now.duration_since(self.swept) >= Duration::from_secs(1) {
                self.swept = now;
                self.buckets
                    .retain(|_, (_, seen)| now.duration_since(*seen) < Duration::from_secs(1));
            }
            if self.buckets.len() >= RATE_TABLE_MAX {
                return false;
            }
        }
        let (tokens, seen) = self.buckets.entry(ip).or_insert((self.rate, now));
        let refill = now.duration_since(*seen).as_secs_f64() * self.rate;
        *tokens = (*tokens + refill).min(self.rate);
        *seen = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limit_allows_a_burst_then_the_rate() {
        let mut r = RateLimit::new(10);
        let t0 = Instant::now();
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        assert_eq!((0..20).filter(|_| r.admit(ip, t0)).count(), 10);
        assert!(r.admit(ip, t0 + Duration::from_millis(100)));
        assert!(!r.admit(ip, t0 + Duration::from_millis(100)));
        let other: IpAddr = "127.0.0.2".parse().unwrap();
        assert!(
            r.admit(other, t0),
            "one source's drops do not touch another's"
        );
        assert!(RateLimit::new(0).admit(ip, t0));
    }
}
