//! The workers of each workload. A worker runs until the run stops, keeps
//! its own histograms (no lock per request), and returns them.

use std::sync::Arc;
use std::time::Duration;

use hdrhistogram::Histogram;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UdpSocket;
use tokio::task::JoinSet;
use tokio::time::{Instant, timeout};

use super::{ErrorKind, Run, Target, Workload, histogram, record};

/// `stream`: bytes read (and checked) at once, per connection.
pub const STREAM_CHUNK: usize = 256 * 1024;

/// `connect`: the buffer each worker reads answers into.
pub const CONNECT_BUFFER: usize = 64 * 1024;

/// `udp`: the buffer each client receives replies into (the largest datagram).
pub const UDP_BUFFER: usize = 65_536;

/// What a worker measured.
pub struct Measured {
    /// Request latency (echo, udp), or whole-connection time (connect).
    pub latency: Histogram<u64>,
    /// `connect`: time to establish the connection.
    pub connect: Option<Histogram<u64>>,
    /// `connect`: time from connecting to the first byte of the answer.
    pub first_byte: Option<Histogram<u64>>,
}

impl Measured {
    fn latency(latency: Histogram<u64>) -> Self {
        Measured {
            latency,
            connect: None,
            first_byte: None,
        }
    }
}

/// Starts the workers of `workload`.
pub fn start(workload: &Workload, target: &Target, run: &Arc<Run>) -> JoinSet<Measured> {
    let mut set = JoinSet::new();
    match workload {
        Workload::Echo(a) => {
            for _ in 0..a.connections {
                set.spawn(echo(
                    target.clone(),
                    run.clone(),
                    a.size as usize,
                    a.pipeline as usize,
                ));
            }
        }
        Workload::Stream(a) => {
            for i in 0..a.parallel {
                set.spawn(stream(
                    target.clone(),
                    run.clone(),
                    a.send_only,
                    u64::from(i),
                ));
            }
        }
        Workload::Connect(a) => {
            let request = a.send.clone().map(String::into_bytes).map(Arc::new);
            for _ in 0..a.connections {
                set.spawn(connect(target.clone(), run.clone(), request.clone()));
            }
        }
        Workload::Udp(a) => {
            for _ in 0..a.clients {
                set.spawn(udp(target.clone(), run.clone(), a.size as usize));
            }
        }
    }
    set
}

/// Fills `buf` with the bytes of message `seq`: cheap to make, and
/// different for every message and position, so a reordered, truncated or
/// corrupted answer cannot match.
fn pattern(seq: u64, buf: &mut [u8]) {
    let mut x = seq.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    for chunk in buf.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
}

/// Echo: `pipeline` messages written, then read back and compared; each
/// message's latency runs from its write to the last of its bytes.
async fn echo(target: Target, run: Arc<Run>, size: usize, pipeline: usize) -> Measured {
    let mut hist = histogram();
    let mut out = vec![0u8; size * pipeline];
    let mut back = vec![0u8; size];
    let mut seq: u64 = 0;
    'connection: while !run.stop.is_cancelled() {
        let mut conn = match run_or_stop(&run, target.connect(run.timeout)).await {
            None => break,
            Some(Ok(c)) => c,
            Some(Err(kind)) => {
                run.error(kind);
                pause_after_error(&run).await;
                continue;
            }
        };
        loop {
            let mut batch = 0;
            while batch < pipeline && run.claim() {
                pattern(
                    seq + batch as u64,
                    &mut out[batch * size..(batch + 1) * size],
                );
                batch += 1;
            }
            if batch == 0 {
                break 'connection;
            }
            let started = Instant::now();
            let exchange = async {
                conn.write_all(&out[..batch * size])
                    .await
                    .map_err(|e| ErrorKind::of_io(&e))?;
                for m in 0..batch {
                    read_full(&mut conn, &mut back).await?;
                    if back[..] != out[m * size..(m + 1) * size] {
                        return Err(ErrorKind::Mismatch);
                    }
                    // An exchange that ends after the stop is finished (so
                    // the connection closes with nothing unread, and the
                    // server sees a clean close, not a reset) but not counted.
                    if !run.stop.is_cancelled() {
                        record(&run, &mut hist, started);
                        run.done(size as u64, size as u64);
                    }
                }
                Ok(())
            };
            match timeout(run.timeout, exchange).await {
                Ok(Ok(())) => seq += batch as u64,
                Ok(Err(kind)) => {
                    run.error(kind);
                    continue 'connection;
                }
                Err(_) => {
                    run.error(ErrorKind::Timeout);
                    continue 'connection;
                }
            }
        }
    }
    Measured::latency(hist)
}

/// Reads exactly `buf.len()` bytes; EOF before that is an error.
async fn read_full(conn: &mut crate::net::Stream, buf: &mut [u8]) -> Result<(), ErrorKind> {
    let mut got = 0;
    while got < buf.len() {
        match conn.read(&mut buf[got..]).await {
            Ok(0) => return Err(ErrorKind::Eof),
            Ok(n) => got += n,
            Err(e) => return Err(ErrorKind::of_io(&e)),
        }
    }
    Ok(())
}

/// The bytes a stream sends: a 1 MiB ring of the pattern, repeated, so the
/// reader can check every byte it gets back against its offset.
fn ring() -> &'static [u8] {
    static RING: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    RING.get_or_init(|| {
        let mut ring = vec![0u8; 1 << 20];
        pattern(0x5EED, &mut ring);
        ring
    })
}

/// Stream: send the ring over and over, read back and compare; at the end
/// half-close and read the rest.
async fn stream(target: Target, run: Arc<Run>, send_only: bool, id: u64) -> Measured {
    const CHUNK: usize = STREAM_CHUNK;
    let hist = histogram();
    let conn = match run_or_stop(&run, target.connect(run.timeout)).await {
        Some(Ok(c)) => c,
        Some(Err(kind)) => {
            run.error(kind);
            return Measured::latency(hist);
        }
        None => return Measured::latency(hist),
    };
    let ring = ring();
    let (mut rd, mut wr) = tokio::io::split(conn);
    // Start each connection at its own place in the ring.
    let start = (id as usize * 4099) % ring.len();
    let writer = async {
        let mut pos = start;
        while !run.stop.is_cancelled() {
            let end = (pos + CHUNK).min(ring.len());
            let write = tokio::select! {
                r = wr.write(&ring[pos..end]) => r,
                () = run.stop.cancelled() => break,
            };
            match write {
                Ok(n) => {
                    run.moved(n as u64, 0);
                    pos = (pos + n) % ring.len();
                }
                Err(e) => return Err(ErrorKind::of_io(&e)),
            }
        }
        wr.shutdown().await.map_err(|e| ErrorKind::of_io(&e))
    };
    let reader = async {
        let mut buf = vec![0u8; CHUNK];
        let mut pos = start;
        loop {
            let n = match timeout(run.timeout, rd.read(&mut buf)).await {
                Ok(Ok(0)) => return Ok(()),
                Ok(Ok(n)) => n,
                Ok(Err(e)) => return Err(ErrorKind::of_io(&e)),
                Err(_) => return Err(ErrorKind::Timeout),
            };
            if !send_only {
                let mut checked = 0;
                while checked < n {
                    let take = (n - checked).min(ring.len() - pos);
                    if buf[checked..checked + take] != ring[pos..pos + take] {
                        return Err(ErrorKind::Mismatch);
                    }
                    checked += take;
                    pos = (pos + take) % ring.len();
                }
            }
            run.moved(0, n as u64);
        }
    };
    let (w, r) = tokio::join!(writer, reader);
    for result in [w, r] {
        if let Err(kind) = result {
            run.error(kind);
        }
    }
    Measured::latency(hist)
}

/// Connect: one connection after another; connect time, time to first
/// byte, and the whole exchange.
async fn connect(target: Target, run: Arc<Run>, request: Option<Arc<Vec<u8>>>) -> Measured {
    let (mut total, mut connect_h, mut first_h) = (histogram(), histogram(), histogram());
    let mut buf = vec![0u8; CONNECT_BUFFER];
    while run.claim() {
        let started = Instant::now();
        let exchange = async {
            let mut conn = target.connect(run.timeout).await?;
            record(&run, &mut connect_h, started);
            let mut sent = 0;
            if let Some(req) = &request {
                conn.write_all(req)
                    .await
                    .map_err(|e| ErrorKind::of_io(&e))?;
                conn.shutdown().await.map_err(|e| ErrorKind::of_io(&e))?;
                sent = req.len();
            }
            let mut received = 0;
            loop {
                match conn.read(&mut buf).await {
                    Ok(0) => break,
                    Ok(n) => {
                        if received == 0 {
                            record(&run, &mut first_h, started);
                        }
                        received += n;
                    }
                    Err(e) => return Err(ErrorKind::of_io(&e)),
                }
            }
            Ok((sent, received))
        };
        match run_or_stop(&run, timeout(run.timeout, exchange)).await {
            None => break,
            Some(Ok(Ok((sent, received)))) => {
                record(&run, &mut total, started);
                run.done(sent as u64, received as u64);
            }
            Some(Ok(Err(kind))) => {
                run.error(kind);
                pause_after_error(&run).await;
            }
            Some(Err(_)) => run.error(ErrorKind::Timeout),
        }
    }
    Measured {
        latency: total,
        connect: Some(connect_h),
        first_byte: Some(first_h),
    }
}

/// UDP: one datagram in flight per client; a reply that does not come
/// within the timeout is lost.
async fn udp(target: Target, run: Arc<Run>, size: usize) -> Measured {
    let mut hist = histogram();
    let Target::Tcp(addr) = target else {
        return Measured::latency(hist);
    };
    let local: std::net::SocketAddr = if addr.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        ([0u16; 8], 0).into()
    };
    let socket = match UdpSocket::bind(local).await {
        Ok(s) => s,
        Err(e) => {
            run.error(ErrorKind::of_io(&e));
            return Measured::latency(hist);
        }
    };
    if let Err(e) = socket.connect(addr).await {
        run.error(ErrorKind::of_io(&e));
        return Measured::latency(hist);
    }
    let mut out = vec![0u8; size];
    let mut back = vec![0u8; UDP_BUFFER];
    let mut seq = 0u64;
    while run.claim() {
        seq += 1;
        pattern(seq, &mut out);
        let started = Instant::now();
        let exchange = async {
            socket.send(&out).await.map_err(|e| ErrorKind::of_io(&e))?;
            loop {
                let n = socket
                    .recv(&mut back)
                    .await
                    .map_err(|e| ErrorKind::of_io(&e))?;
                // A late answer to an earlier (lost) datagram is skipped.
                if back[..n] == out[..] {
                    return Ok(n);
                }
            }
        };
        match run_or_stop(&run, timeout(run.timeout, exchange)).await {
            None => break,
            Some(Ok(Ok(n))) => {
                record(&run, &mut hist, started);
                run.done(size as u64, n as u64);
            }
            Some(Ok(Err(kind))) => {
                run.error(kind);
                pause_after_error(&run).await;
            }
            Some(Err(_)) => run.error(ErrorKind::Timeout),
        }
    }
    Measured::latency(hist)
}

/// Runs `fut` unless the run stops first (`None`).
async fn run_or_stop<F: std::future::Future>(run: &Run, fut: F) -> Option<F::Output> {
    tokio::select! {
        r = fut => Some(r),
        () = run.stop.cancelled() => None,
    }
}

/// After a failed connection, a short pause so a refusing server is not
/// hammered in a tight loop (and the error count stays meaningful).
async fn pause_after_error(run: &Run) {
    let _ = run_or_stop(run, tokio::time::sleep(Duration::from_millis(10))).await;
}
