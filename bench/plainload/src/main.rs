//! A second load generator for `bench/serve.sh`, independent of netsmith:
//! the standard library's blocking sockets and one OS thread per task, no
//! async runtime, no code or crate of netsmith's. It exists so that a
//! serve figure does not depend on who measures it.
//!
//! ```text
//! plainload echo    ADDR [-c 50] [-s 64] [-d 4]   round trips: per connection a
//!                                                  writer thread and a reader thread
//! plainload stream  ADDR [-d 4]                    one connection, 1 MiB writes, the
//!                                                  echo read by another thread
//! plainload connect ADDR [-c 10] [-d 4]            connect, read to EOF, close
//! ```
//!
//! Every byte that comes back is checked against what was sent. The
//! result is one JSON object on stdout with the keys `netsmith bench
//! --json` uses, so the same report reads both.

use std::collections::BTreeMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

const STREAM_WRITE: usize = 1 << 20;
/// The stream's bytes: a pattern whose period is no power of two, so a
/// chunk lost, repeated or reordered shows.
const PERIOD: usize = 65_521;

#[derive(Default)]
struct Totals {
    ops: AtomicU64,
    sent: AtomicU64,
    received: AtomicU64,
    errors: Mutex<BTreeMap<&'static str, u64>>,
    latencies_us: Mutex<Vec<u32>>,
}

impl Totals {
    fn error(&self, kind: &'static str) {
        *self.errors.lock().unwrap().entry(kind).or_default() += 1;
    }
}

fn kind(e: &std::io::Error) -> &'static str {
    match e.kind() {
        ErrorKind::ConnectionRefused => "refused",
        ErrorKind::ConnectionReset | ErrorKind::BrokenPipe => "reset",
        ErrorKind::TimedOut | ErrorKind::WouldBlock => "timeout",
        ErrorKind::UnexpectedEof => "eof",
        _ => "other",
    }
}

struct Args {
    mode: String,
    addr: SocketAddr,
    conns: usize,
    size: usize,
    secs: f64,
}

fn parse() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let mode = it
        .next()
        .ok_or("usage: plainload echo|stream|connect ADDR [-c N] [-s BYTES] [-d SECS]")?;
    let addr = it.next().ok_or("give the server's ADDR:PORT")?;
    let addr = addr
        .parse()
        .map_err(|_| format!("\"{addr}\": not an IP:PORT"))?;
    let mut a = Args {
        conns: if mode == "echo" { 50 } else { 10 },
        size: 64,
        secs: 4.0,
        mode,
        addr,
    };
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        let bad = |_| format!("{flag} {value}: not a number");
        match flag.as_str() {
            "-c" => a.conns = value.parse().map_err(bad)?,
            "-s" => a.size = value.parse().map_err(bad)?,
            "-d" => {
                a.secs = value
                    .parse()
                    .map_err(|_| format!("{flag} {value}: not a number"))?
            }
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    if !["echo", "stream", "connect"].contains(&a.mode.as_str()) {
        return Err(format!(
            "\"{}\": the modes are echo, stream and connect",
            a.mode
        ));
    }
    Ok(a)
}

/// One echo connection: the writer sends a request when the reader has
/// seen the answer to the last one (it hands over through a channel).
fn echo_conn(a: &Args, t: &Totals, stop: &AtomicBool, measuring: &AtomicBool) {
    let stream = match TcpStream::connect(a.addr) {
        Ok(s) => s,
        Err(e) => return t.error(kind(&e)),
    };
    let _ = stream.set_nodelay(true);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut reader = stream.try_clone().expect("clone a socket");
    let (go, next) = mpsc::sync_channel::<(u8, Instant)>(1);
    let (done, answered) = mpsc::sync_channel::<bool>(1);
    let size = a.size;
    thread::scope(|s| {
        s.spawn(move || {
            let mut buf = vec![0u8; size];
            for (byte, started) in next {
                let ok = match reader.read_exact(&mut buf) {
                    Err(e) => {
                        t.error(kind(&e));
                        false
                    }
                    Ok(()) if buf.iter().any(|&b| b != byte) => {
                        t.error("mismatch");
                        false
                    }
                    Ok(()) => true,
                };
                if ok && measuring.load(Ordering::Relaxed) {
                    t.ops.fetch_add(1, Ordering::Relaxed);
                    t.received.fetch_add(size as u64, Ordering::Relaxed);
                    let us = started.elapsed().as_micros().min(u32::MAX as u128) as u32;
                    t.latencies_us.lock().unwrap().push(us);
                }
                if done.send(ok).is_err() || !ok {
                    return;
                }
            }
        });
        let mut writer = &stream;
        let mut request = vec![0u8; size];
        let mut n = 0u8;
        while !stop.load(Ordering::Relaxed) {
            n = n.wrapping_add(1);
            request.fill(n);
            let started = Instant::now();
            if let Err(e) = writer.write_all(&request) {
                t.error(kind(&e));
                break;
            }
            if measuring.load(Ordering::Relaxed) {
                t.sent.fetch_add(size as u64, Ordering::Relaxed);
            }
            if go.send((n, started)).is_err() || !answered.recv().unwrap_or(false) {
                break;
            }
        }
        drop(go);
    });
}

/// The pattern from offset 0 for one period and one write more, so the
/// bytes at any offset are one slice of it: no per-byte work to send or
/// to check.
fn pattern() -> Vec<u8> {
    (0..PERIOD + STREAM_WRITE)
        .map(|i| (i % PERIOD % 251) as u8)
        .collect()
}

fn at(pattern: &[u8], offset: u64, n: usize) -> &[u8] {
    let start = (offset % PERIOD as u64) as usize;
    &pattern[start..start + n]
}

/// One bulk connection both ways: a writer thread of 1 MiB writes, and a
/// reader that checks every byte coming back against the pattern.
fn stream_conn(a: &Args, t: &Totals, stop: &AtomicBool, measuring: &AtomicBool) {
    let stream = match TcpStream::connect(a.addr) {
        Ok(s) => s,
        Err(e) => return t.error(kind(&e)),
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut reader = stream.try_clone().expect("clone a socket");
    let pattern = pattern();
    let pattern = &pattern;
    let stream = &stream;
    thread::scope(|s| {
        s.spawn(move || {
            let mut writer = stream;
            let mut offset = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let chunk = at(pattern, offset, STREAM_WRITE);
                if let Err(e) = writer.write_all(chunk) {
                    return t.error(kind(&e));
                }
                offset += chunk.len() as u64;
                if measuring.load(Ordering::Relaxed) {
                    t.sent.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                }
            }
            let _ = stream.shutdown(Shutdown::Write);
        });
        let mut buf = vec![0u8; STREAM_WRITE];
        let mut offset = 0u64;
        loop {
            match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if buf[..n] != *at(pattern, offset, n) {
                        t.error("mismatch");
                        break;
                    }
                    offset += n as u64;
                    if measuring.load(Ordering::Relaxed) && !stop.load(Ordering::Relaxed) {
                        t.received.fetch_add(n as u64, Ordering::Relaxed);
                    }
                }
                Err(e) => {
                    t.error(kind(&e));
                    break;
                }
            }
        }
    });
}

/// Connections one after another: connect, read to EOF, close.
fn connect_loop(a: &Args, t: &Totals, stop: &AtomicBool, measuring: &AtomicBool) {
    let mut buf = [0u8; 4096];
    while !stop.load(Ordering::Relaxed) {
        let started = Instant::now();
        let mut s = match TcpStream::connect(a.addr) {
            Ok(s) => s,
            Err(e) => {
                t.error(kind(&e));
                continue;
            }
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
        let mut got = 0u64;
        let result = loop {
            match s.read(&mut buf) {
                Ok(0) => break Ok(()),
                Ok(n) => got += n as u64,
                Err(e) => break Err(e),
            }
        };
        match result {
            Ok(()) if got > 0 => {
                if measuring.load(Ordering::Relaxed) {
                    t.ops.fetch_add(1, Ordering::Relaxed);
                    t.received.fetch_add(got, Ordering::Relaxed);
                    let us = started.elapsed().as_micros().min(u32::MAX as u128) as u32;
                    t.latencies_us.lock().unwrap().push(us);
                }
            }
            Ok(()) => t.error("eof"),
            Err(e) => t.error(kind(&e)),
        }
    }
}

fn main() {
    let a = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("plainload: {e}");
            std::process::exit(2);
        }
    };
    let t = Arc::new(Totals::default());
    let stop = Arc::new(AtomicBool::new(false));
    // The first half second is not measured: connections are opened then.
    let measuring = Arc::new(AtomicBool::new(false));
    let workers = if a.mode == "stream" { 1 } else { a.conns };
    let a = Arc::new(a);
    let handles: Vec<_> = (0..workers)
        .map(|_| {
            let (a, t, stop, m) = (a.clone(), t.clone(), stop.clone(), measuring.clone());
            thread::spawn(move || match a.mode.as_str() {
                "echo" => echo_conn(&a, &t, &stop, &m),
                "stream" => stream_conn(&a, &t, &stop, &m),
                _ => connect_loop(&a, &t, &stop, &m),
            })
        })
        .collect();
    thread::sleep(Duration::from_millis(500));
    measuring.store(true, Ordering::Relaxed);
    let started = Instant::now();
    thread::sleep(Duration::from_secs_f64(a.secs));
    stop.store(true, Ordering::Relaxed);
    let secs = started.elapsed().as_secs_f64();
    measuring.store(false, Ordering::Relaxed);
    for h in handles {
        let _ = h.join();
    }
    let ops = t.ops.load(Ordering::Relaxed);
    let (sent, received) = (
        t.sent.load(Ordering::Relaxed),
        t.received.load(Ordering::Relaxed),
    );
    let mut lat = std::mem::take(&mut *t.latencies_us.lock().unwrap());
    lat.sort_unstable();
    let pct = |q: f64| {
        lat.get(((lat.len() as f64 * q) as usize).min(lat.len().saturating_sub(1)))
            .map_or(0.0, |&us| f64::from(us) / 1000.0)
    };
    let errors: Vec<String> = t
        .errors
        .lock()
        .unwrap()
        .iter()
        .map(|(k, n)| format!("\"{k}\": {n}"))
        .collect();
    println!(
        "{{\"type\": \"result\", \"generator\": \"plainload\", \"workload\": \"{}\", \"duration_s\": {secs:.3}, \
         \"requests\": {ops}, \"requests_per_s\": {:.3}, \"bytes_sent\": {sent}, \"bytes_received\": {received}, \
         \"mb_per_s_sent\": {:.3}, \"mb_per_s_received\": {:.3}, \"errors\": {{{}}}, \
         \"latency\": {{\"count\": {}, \"p50_ms\": {:.3}, \"p99_ms\": {:.3}}}}}",
        a.mode,
        ops as f64 / secs,
        sent as f64 / secs / 1e6,
        received as f64 / secs / 1e6,
        errors.join(", "),
        lat.len(),
        pct(0.5),
        pct(0.99),
    );
}
