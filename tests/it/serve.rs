//! `netsmith serve` with std sockets as clients: each service's exact bytes
//! over TCP, UDP and Unix sockets (RFC 862-868 and the 001 greeting), the
//! seed tutorials' own Python clients, the same checks against Debian's
//! inetutils-inetd as the reference, the limits (connections, idle time,
//! `--allow`/`--deny`, UDP loop and rate protection, a small descriptor
//! limit), bad input, and the totals printed after Ctrl-C.
//!
//! Every server binds port 0 and the tests read the ports from its
//! "listening on" lines. Every wait is bounded; the only sleeps are reads
//! that prove nothing arrives, at most [`SILENCE`] long, and the pauses of
//! polls that wait for a state.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, UdpSocket};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use tempfile::TempDir;

use crate::seeds::{self, Program};
use crate::util::{self, Output, Proc, WAIT};

/// How long a test listens to prove that nothing arrives.
const SILENCE: Duration = Duration::from_millis(300);

/// Seconds from 1900-01-01 to 1970-01-01 (RFC 868).
const EPOCH_1900: u64 = 2_208_988_800;

/// banner's default text: the 001 tutorial's greeting.
const GREETING: &str = "Thank you for connecting";

/// The fields of each `--json` totals line.
const TOTALS_FIELDS: [&str; 10] = [
    "service",
    "connections",
    "datagrams",
    "bytes_in",
    "bytes_out",
    "errors",
    "denied",
    "udp_dropped_loop",
    "udp_dropped_rate",
    "udp_dropped_kernel",
];

/// A check's outcome: `Err` says what was wrong.
type Check<T = ()> = Result<T, String>;

macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+));
        }
    };
}

// The server under test

/// A running `netsmith serve` and the sockets it announced.
struct Server {
    proc: Proc,
    addrs: util::Listening,
}

impl Server {
    /// Starts `netsmith serve ARGS` and waits for its `sockets` "listening
    /// on" lines.
    fn start(args: &[&str], sockets: usize) -> Server {
        let mut command = vec!["serve"];
        command.extend_from_slice(args);
        Server::announced(util::spawn(&command), sockets)
    }

    /// Waits for `proc`'s `sockets` "listening on" lines.
    fn announced(mut proc: Proc, sockets: usize) -> Server {
        let addrs = proc.listening_services(sockets);
        Server { proc, addrs }
    }

    fn addr(&self, service: &str, transport: &str) -> &str {
        self.addrs
            .get(&(service.to_string(), transport.to_string()))
            .unwrap_or_else(|| {
                panic!(
                    "no {service}/{transport} among {:?} ({})",
                    self.addrs, self.proc.cmd
                )
            })
    }

    fn tcp(&self, service: &str) -> SocketAddr {
        self.addr(service, "tcp").parse().expect("a socket address")
    }

    fn udp(&self, service: &str) -> SocketAddr {
        self.addr(service, "udp").parse().expect("a socket address")
    }

    fn unix(&self, service: &str) -> PathBuf {
        PathBuf::from(self.addr(service, "unix"))
    }

    /// Ctrl-C, as a user stops it: it must exit 0. Returns what it wrote.
    #[track_caller]
    fn stop(self) -> Output {
        let out = self.proc.interrupt();
        out.ok();
        assert!(!out.stderr.contains("panicked"), "{}", out.dump());
        out
    }
}

/// The `--json` totals, by service; each line must have every field.
#[track_caller]
fn totals(out: &Output) -> HashMap<String, Value> {
    let mut by_service = HashMap::new();
    for line in out.out().lines() {
        let v: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}\n{}", out.dump()));
        for field in TOTALS_FIELDS {
            assert!(v.get(field).is_some(), "{line:?} lacks {field}");
        }
        let service = v["service"].as_str().expect("service is a string");
        by_service.insert(service.to_string(), v);
    }
    by_service
}

/// One counter of the totals.
#[track_caller]
fn count(totals: &HashMap<String, Value>, service: &str, field: &str) -> u64 {
    totals
        .get(service)
        .and_then(|v| v[field].as_u64())
        .unwrap_or_else(|| panic!("no {service}.{field} in {totals:?}"))
}

// Clients

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

fn try_connect(addr: SocketAddr) -> Check<TcpStream> {
    let s = TcpStream::connect_timeout(&addr, WAIT).map_err(|e| format!("connect {addr}: {e}"))?;
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.set_write_timeout(Some(WAIT)).unwrap();
    Ok(s)
}

#[track_caller]
fn connect(addr: SocketAddr) -> TcpStream {
    try_connect(addr).unwrap_or_else(|e| panic!("{e}"))
}

/// A TCP client bound to `source` (another loopback address) first.
fn connect_from(source: &str, addr: SocketAddr) -> TcpStream {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    let from: SocketAddr = format!("{source}:0").parse().unwrap();
    s.bind(&from.into()).unwrap();
    s.connect_timeout(&addr.into(), WAIT)
        .unwrap_or_else(|e| panic!("connect {addr} from {source}: {e}"));
    let s = TcpStream::from(s);
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.set_write_timeout(Some(WAIT)).unwrap();
    s
}

/// A UDP socket bound to `addr` (e.g. "127.0.0.1:0"), reads bounded by [`WAIT`].
fn udp_socket(addr: &str) -> UdpSocket {
    let s = UdpSocket::bind(addr).unwrap_or_else(|e| panic!("bind udp {addr}: {e}"));
    s.set_read_timeout(Some(WAIT)).unwrap();
    s
}

/// One datagram's reply, from `sock`; it must come from `server`.
fn udp_recv(sock: &UdpSocket, server: SocketAddr) -> Check<Vec<u8>> {
    let mut buf = vec![0u8; 65_536];
    let (n, from) = sock
        .recv_from(&mut buf)
        .map_err(|e| format!("no reply from udp://{server}: {e}"))?;
    ensure!(from == server, "reply from {from}, not {server}");
    buf.truncate(n);
    Ok(buf)
}

/// Sends `payload` to `server` from a fresh socket; returns the reply.
fn udp_ask(server: SocketAddr, payload: &[u8]) -> Check<Vec<u8>> {
    let sock = udp_socket("127.0.0.1:0");
    sock.send_to(payload, server)
        .map_err(|e| format!("send to udp://{server}: {e}"))?;
    udp_recv(&sock, server)
}

/// Proves that nothing arrives on `sock` for [`SILENCE`].
fn udp_silent(sock: &UdpSocket) -> Check {
    sock.set_read_timeout(Some(SILENCE)).unwrap();
    let mut buf = vec![0u8; 65_536];
    let got = sock.recv_from(&mut buf);
    sock.set_read_timeout(Some(WAIT)).unwrap();
    match got {
        Err(e) if is_timeout(&e) => Ok(()),
        Ok((n, from)) => Err(format!(
            "a {n}-byte datagram from {from}: {:?}",
            show(&buf[..n])
        )),
        Err(e) => Err(format!("receive: {e}")),
    }
}

/// What a one-shot service (qotd, daytime, time, banner) sends over TCP
/// before it closes.
fn tcp_reply(addr: SocketAddr) -> Check<Vec<u8>> {
    let mut s = try_connect(addr)?;
    let mut got = Vec::new();
    s.read_to_end(&mut got)
        .map_err(|e| format!("read from {addr} after {} bytes: {e}", got.len()))?;
    Ok(got)
}

/// A stream socket both halves of which a test can use.
trait Duplex: Read + Write + Send + Sized + 'static {
    fn dup(&self) -> io::Result<Self>;
    fn close_write(&self) -> io::Result<()>;
}

impl Duplex for TcpStream {
    fn dup(&self) -> io::Result<Self> {
        self.try_clone()
    }
    fn close_write(&self) -> io::Result<()> {
        self.shutdown(Shutdown::Write)
    }
}

impl Duplex for UnixStream {
    fn dup(&self) -> io::Result<Self> {
        self.try_clone()
    }
    fn close_write(&self) -> io::Result<()> {
        self.shutdown(Shutdown::Write)
    }
}

/// Sends `data` from a thread and then half-closes, while reading until
/// EOF; returns what came back.
fn send_and_read_back<S: Duplex>(mut s: S, data: Arc<Vec<u8>>) -> Check<Vec<u8>> {
    let mut w = s.dup().map_err(|e| e.to_string())?;
    let writer = std::thread::spawn(move || {
        w.write_all(&data)?;
        w.close_write()
    });
    let mut got = Vec::new();
    let read = s.read_to_end(&mut got);
    let wrote = writer.join().expect("writer thread");
    read.map_err(|e| format!("read after {} bytes: {e}", got.len()))?;
    wrote.map_err(|e| format!("write: {e}"))?;
    Ok(got)
}

/// Bytes for a failure message: text with escapes, cut at 200 characters.
fn show(bytes: &[u8]) -> String {
    let text = bytes.escape_ascii().to_string();
    if text.len() > 200 {
        format!("{}... ({} bytes)", &text[..200], bytes.len())
    } else {
        text
    }
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

// Each service's bytes, computed here from the RFCs

/// Chargen line `n` (RFC 864): 72 characters of the 95 printable ASCII
/// characters from the space on, starting `n` characters further than line
/// 0, then CRLF.
fn chargen_line(n: usize) -> Vec<u8> {
    let mut line: Vec<u8> = (0..72).map(|i| b' ' + ((n + i) % 95) as u8).collect();
    line.extend_from_slice(b"\r\n");
    line
}

/// Which chargen line (0-94) `line` is.
fn chargen_index(line: &[u8]) -> Option<usize> {
    (0..95).find(|&n| chargen_line(n) == line)
}

/// Lines `0..count` of a chargen stream.
fn chargen_stream(count: usize) -> Vec<u8> {
    (0..count).flat_map(chargen_line).collect()
}

/// The first chargen line where `got` differs from `want`, for messages.
fn first_difference(got: &[u8], want: &[u8]) -> String {
    let line = got
        .iter()
        .zip(want)
        .position(|(a, b)| a != b)
        .unwrap_or(got.len().min(want.len()))
        / 74;
    let at = |b: &[u8]| {
        show(
            b.get(line * 74..(line * 74 + 74).min(b.len()))
                .unwrap_or_default(),
        )
    };
    format!("line {line} is {}, expected {}", at(got), at(want))
}

/// Days since 1970-01-01 of a date in the Gregorian calendar (Howard
/// Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn number(text: &str, what: &str, range: std::ops::RangeInclusive<i64>) -> Check<i64> {
    let n: i64 = text
        .parse()
        .map_err(|_| format!("{what} {text:?} is not a number"))?;
    ensure!(range.contains(&n), "{what} {n} is out of range");
    Ok(n)
}

/// Seconds since 1970 from "hh:mm:ss" on the given day.
fn clock(days: i64, hms: &str) -> Check<u64> {
    let parts: Vec<&str> = hms.split(':').collect();
    ensure!(
        parts.len() == 3 && parts.iter().all(|p| p.len() == 2),
        "{hms:?} is not hh:mm:ss"
    );
    let h = number(parts[0], "hour", 0..=23)?;
    let m = number(parts[1], "minute", 0..=59)?;
    let s = number(parts[2], "second", 0..=60)?;
    Ok((days * 86_400 + h * 3600 + m * 60 + s) as u64)
}

/// Checks daytime's ctime form in UTC with CRLF, `Sat Nov 21 11:10:36
/// 2026\r\n` (day of month padded with a space), weekday included; returns
/// the time it gives, in seconds since 1970.
fn parse_ctime(reply: &[u8]) -> Check<u64> {
    const WEEKDAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let text = std::str::from_utf8(reply).map_err(|_| format!("not text: {}", show(reply)))?;
    let bad = || format!("{text:?} is not ctime's \"Www Mmm dd hh:mm:ss yyyy\\r\\n\"");
    let line = text.strip_suffix("\r\n").ok_or_else(bad)?;
    ensure!(line.len() == 24 && line.is_ascii(), "{}", bad());
    let b = line.as_bytes();
    ensure!(
        b[3] == b' ' && b[7] == b' ' && b[10] == b' ' && b[19] == b' ',
        "{}",
        bad()
    );
    let weekday = WEEKDAYS
        .iter()
        .position(|w| *w == &line[0..3])
        .ok_or_else(bad)?;
    let month = (1..)
        .zip(MONTHS)
        .find_map(|(n, m)| (m == &line[4..7]).then_some(n))
        .ok_or_else(bad)?;
    // %2d: " 1" to "31".
    ensure!(b[8] == b' ' || b[8].is_ascii_digit(), "{}", bad());
    let day = number(line[8..10].trim_start(), "day", 1..=31)?;
    ensure!(day >= 10 || b[8] == b' ', "{}", bad());
    let year = number(&line[20..24], "year", 1970..=9999)?;
    let days = days_from_civil(year, month, day);
    let real_weekday = (days + 4).rem_euclid(7) as usize; // 1970-01-01 was a Thursday
    ensure!(
        weekday == real_weekday,
        "{text:?}: that day is a {}",
        WEEKDAYS[real_weekday]
    );
    clock(days, &line[11..19])
}

/// Checks daytime's RFC 3339 form in UTC with CRLF, `2026-11-21T11:10:36Z\r\n`;
/// returns the time it gives.
fn parse_rfc3339(reply: &[u8]) -> Check<u64> {
    let text = std::str::from_utf8(reply).map_err(|_| format!("not text: {}", show(reply)))?;
    let bad = || format!("{text:?} is not \"yyyy-mm-ddThh:mm:ssZ\\r\\n\"");
    let line = text.strip_suffix("\r\n").ok_or_else(bad)?;
    ensure!(line.len() == 20 && line.is_ascii(), "{}", bad());
    let b = line.as_bytes();
    ensure!(
        b[4] == b'-' && b[7] == b'-' && b[10] == b'T' && b[19] == b'Z',
        "{}",
        bad()
    );
    let year = number(&line[0..4], "year", 1970..=9999)?;
    let month = number(&line[5..7], "month", 1..=12)?;
    let day = number(&line[8..10], "day", 1..=31)?;
    clock(days_from_civil(year, month, day), &line[11..19])
}

/// A daytime answer must be within 5 s of now.
fn check_daytime(reply: &[u8], parse: fn(&[u8]) -> Check<u64>) -> Check<u64> {
    let t = parse(reply)?;
    let now = now_unix();
    let off = if t >= now {
        format!("{} s after", t - now)
    } else {
        format!("{} s before", now - t)
    };
    ensure!(t.abs_diff(now) <= 5, "{} is {off} now (UTC)", show(reply));
    Ok(t)
}

/// How far apart two RFC 868 times are, across the 2036 wrap.
fn apart(a: u32, b: u32) -> u32 {
    a.wrapping_sub(b).min(b.wrapping_sub(a))
}

/// A time answer: 4 bytes, big-endian seconds since 1900 (wrapping in
/// 2036), within 5 s of now; returns the value.
fn check_time(reply: &[u8]) -> Check<u32> {
    let bytes: [u8; 4] = reply
        .try_into()
        .map_err(|_| format!("{} bytes, not 4: {}", reply.len(), show(reply)))?;
    let got = u32::from_be_bytes(bytes);
    let want = (now_unix() + EPOCH_1900) as u32;
    ensure!(
        apart(got, want) <= 5,
        "{got} is {} s from now ({want} seconds since 1900)",
        apart(got, want)
    );
    Ok(got)
}

// The checks run against both netsmith and inetd

/// echo over TCP: `data` comes back whole, also after the client's
/// half-close, then EOF.
fn check_echo_tcp(addr: SocketAddr, data: &[u8]) -> Check {
    let got = send_and_read_back(try_connect(addr)?, Arc::new(data.to_vec()))?;
    ensure!(
        got == data,
        "sent {} bytes, got back {}: {}",
        data.len(),
        got.len(),
        show(&got)
    );
    Ok(())
}

/// echo over UDP: the datagram comes back as it was.
fn check_echo_udp(addr: SocketAddr, data: &[u8]) -> Check {
    let got = udp_ask(addr, data)?;
    ensure!(
        got == data,
        "sent a {}-byte datagram, got {}: {}",
        data.len(),
        got.len(),
        show(&got)
    );
    Ok(())
}

/// discard over TCP: nothing comes back while 1 MiB goes in, then EOF once
/// the client half-closes.
fn check_discard_tcp(addr: SocketAddr) -> Check {
    let mut s = try_connect(addr)?;
    let mut w = s.try_clone().map_err(|e| e.to_string())?;
    let writer = std::thread::spawn(move || w.write_all(&vec![b'x'; 1 << 20]).map(|()| w));
    s.set_read_timeout(Some(SILENCE)).unwrap();
    let mut buf = [0u8; 4096];
    let heard = s.read(&mut buf);
    let w = writer
        .join()
        .expect("writer thread")
        .map_err(|e| format!("sending 1 MiB: {e}"))?;
    match heard {
        Err(e) if is_timeout(&e) => {}
        Ok(0) => return Err("closed while the client was sending".into()),
        Ok(n) => return Err(format!("answered {}", show(&buf[..n]))),
        Err(e) => return Err(format!("read: {e}")),
    }
    w.shutdown(Shutdown::Write).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(WAIT)).unwrap();
    match s.read(&mut buf) {
        Ok(0) => Ok(()),
        Ok(n) => Err(format!("answered {} after the half-close", show(&buf[..n]))),
        Err(e) => Err(format!("no EOF after the half-close: {e}")),
    }
}

/// discard over UDP: no reply.
fn check_discard_udp(addr: SocketAddr) -> Check {
    let sock = udp_socket("127.0.0.1:0");
    sock.send_to(&[b'x'; 1000], addr)
        .map_err(|e| e.to_string())?;
    udp_silent(&sock)
}

/// chargen over TCP: the first `lines` lines are the RFC's, from line 0;
/// returns them.
fn check_chargen_tcp(addr: SocketAddr, lines: usize) -> Check<Vec<u8>> {
    let mut s = try_connect(addr)?;
    let mut got = vec![0u8; lines * 74];
    s.read_exact(&mut got)
        .map_err(|e| format!("reading {lines} lines: {e}"))?;
    let want = chargen_stream(lines);
    ensure!(got == want, "{}", first_difference(&got, &want));
    Ok(got)
}

/// chargen over UDP: each datagram gets one 74-byte line, each the line
/// after the one before; returns them.
fn check_chargen_udp(addr: SocketAddr, datagrams: usize) -> Check<Vec<Vec<u8>>> {
    let sock = udp_socket("127.0.0.1:0");
    let mut replies: Vec<Vec<u8>> = Vec::new();
    for _ in 0..datagrams {
        sock.send_to(b"\r\n", addr).map_err(|e| e.to_string())?;
        let got = udp_recv(&sock, addr)?;
        let Some(n) = chargen_index(&got) else {
            return Err(format!("{} is not a chargen line", show(&got)));
        };
        if let Some(before) = replies.last() {
            ensure!(
                chargen_line(n + 94) == *before,
                "{} does not follow {}",
                show(&got),
                show(before)
            );
        }
        replies.push(got);
    }
    Ok(replies)
}

/// A time answer as it is.
fn as_sent(_who: &str, reply: Vec<u8>) -> Vec<u8> {
    reply
}

/// inetutils-inetd 2.4's time service writes a C `long` holding the RFC 868
/// value (`write(s, &result, sizeof result)`): on 64-bit Linux 8 bytes, the
/// 4 the RFC asks for and then 4 zero bytes. An answer of exactly that form
/// is checked as its first 4 bytes (and the deviation is printed); any other
/// is checked as it is.
fn inetd_time(who: &str, reply: Vec<u8>) -> Vec<u8> {
    if reply.len() == 8 && reply[4..] == [0; 4] {
        eprintln!(
            "{who} time: 8 bytes {} (RFC 868: 4); checking the first 4",
            show(&reply)
        );
        reply[..4].to_vec()
    } else {
        reply
    }
}

/// Runs `check` and records its failure, naming `what`.
fn record<T>(failures: &mut Vec<String>, what: &str, result: Check<T>) -> Option<T> {
    result
        .map_err(|e| failures.push(format!("{what}: {e}")))
        .ok()
}

/// What a server answered in [`check_classic_services`], for comparing two.
#[derive(Debug, Default)]
struct Answers {
    chargen_tcp: Option<Vec<u8>>,
    chargen_udp: Option<Vec<Vec<u8>>>,
    daytime: Vec<u64>,
    time: Vec<u32>,
}

/// The checks of echo, discard, chargen, daytime (ctime) and time, over TCP
/// and UDP, against one server: `tcp`/`udp` give a service's addresses.
/// Failures are added to `failures`, prefixed with `who`.
fn check_classic_services(
    who: &str,
    tcp: &dyn Fn(&str) -> SocketAddr,
    udp: &dyn Fn(&str) -> SocketAddr,
    time_bytes: fn(&str, Vec<u8>) -> Vec<u8>,
    failures: &mut Vec<String>,
) -> Answers {
    let mut a = Answers::default();
    let mut data = b"Hello World\r\n".to_vec();
    data.extend(util::random_bytes(100_000));
    let what = |s: &str| format!("{who} {s}");
    record(
        failures,
        &what("echo/tcp"),
        check_echo_tcp(tcp("echo"), &data),
    );
    record(
        failures,
        &what("echo/udp"),
        check_echo_udp(udp("echo"), &data[..1000]),
    );
    record(
        failures,
        &what("discard/tcp"),
        check_discard_tcp(tcp("discard")),
    );
    record(
        failures,
        &what("discard/udp"),
        check_discard_udp(udp("discard")),
    );
    a.chargen_tcp = record(
        failures,
        &what("chargen/tcp"),
        check_chargen_tcp(tcp("chargen"), 3),
    );
    a.chargen_udp = record(
        failures,
        &what("chargen/udp"),
        check_chargen_udp(udp("chargen"), 3),
    );
    let daytime_tcp = tcp_reply(tcp("daytime")).and_then(|r| check_daytime(&r, parse_ctime));
    let daytime_udp = udp_ask(udp("daytime"), b"\n").and_then(|r| check_daytime(&r, parse_ctime));
    a.daytime
        .extend(record(failures, &what("daytime/tcp"), daytime_tcp));
    a.daytime
        .extend(record(failures, &what("daytime/udp"), daytime_udp));
    let time_tcp = tcp_reply(tcp("time")).and_then(|r| check_time(&time_bytes(who, r)));
    let time_udp = udp_ask(udp("time"), b"\n").and_then(|r| check_time(&time_bytes(who, r)));
    a.time.extend(record(failures, &what("time/tcp"), time_tcp));
    a.time.extend(record(failures, &what("time/udp"), time_udp));
    a
}

// 1. Each service's bytes, per transport

#[test]
fn echo_tcp_returns_everything_after_the_clients_half_close() {
    let server = Server::start(&["echo=0", "--tcp"], 1);
    let mut data = b"Hello World\r\n\0\xff".to_vec();
    data.extend(util::random_bytes(1 << 20));
    check_echo_tcp(server.tcp("echo"), &data).unwrap();
    // Nothing sent at all: EOF straight back.
    check_echo_tcp(server.tcp("echo"), b"").unwrap();
    server.stop();
}

/// CPU time (user + system) of process `pid` so far, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat.rsplit(") ").next().unwrap().split(' ').collect();
    // utime and stime are fields 14 and 15; 3 is the first after ") ".
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

#[test]
fn echo_tcp_a_lone_dialogue_is_answered_and_its_idle_connection_costs_no_cpu() {
    // A lone connection looks for its next request for a moment after
    // each answer (LOOK); it must never keep looking once the client is
    // quiet.
    let server = Server::start(&["echo=0", "--tcp"], 1);
    let mut c = connect(server.tcp("echo"));
    let mut line = [0u8; 12];
    for i in 0..500u32 {
        let ask = format!("line {i:06}\n");
        c.write_all(ask.as_bytes()).unwrap();
        c.read_exact(&mut line).unwrap();
        assert_eq!(&line[..], ask.as_bytes());
    }
    let pid = server.proc.pid();
    let before = cpu_ticks(pid);
    // The measurement window, not a wait for anything.
    std::thread::sleep(Duration::from_secs(1));
    let idle = cpu_ticks(pid) - before;
    assert!(
        idle <= 10,
        "the server used {idle} ticks of CPU in 1 s with one idle connection"
    );
    drop(c);
    server.stop();
}

#[test]
fn echo_tcp_round_trips_of_16_kib_have_no_delayed_ack_stall() {
    let server = Server::start(&["echo=0", "--tcp"], 1);
    let mut s = connect(server.tcp("echo"));
    // The client sends at once: any stall is the server's.
    s.set_nodelay(true).unwrap();
    let mut times = Vec::new();
    let mut back = vec![0u8; 16 * 1024];
    for i in 0..50u8 {
        let msg = vec![i; 16 * 1024];
        let t0 = Instant::now();
        s.write_all(&msg).unwrap();
        s.read_exact(&mut back).unwrap();
        times.push(t0.elapsed());
        assert!(back == msg, "round trip {i} came back altered");
    }
    let max = times.iter().max().unwrap();
    assert!(
        *max < Duration::from_millis(30),
        "slowest of 50 round trips of 16 KiB took {max:?} (a 40 ms delayed-ACK stall?): {times:?}"
    );
    drop(s);
    server.stop();
}

#[test]
fn echo_tcp_streams_64_mib_back_while_the_client_sends() {
    let server = Server::start(&["echo=0", "--tcp", "--json"], 1);
    let data = Arc::new(util::random_bytes(64 << 20));
    let got = send_and_read_back(connect(server.tcp("echo")), data.clone()).unwrap();
    assert_eq!(got.len(), data.len());
    assert_eq!(util::sha256(&got), util::sha256(&data));
    let out = server.stop();
    let t = totals(&out);
    assert_eq!(count(&t, "echo", "bytes_in"), 64 << 20, "{}", out.dump());
    assert_eq!(count(&t, "echo", "bytes_out"), 64 << 20, "{}", out.dump());
}

#[test]
fn echo_udp_returns_each_datagram_whole_up_to_65507_bytes() {
    let server = Server::start(&["echo=0", "--udp"], 1);
    let addr = server.udp("echo");
    for size in [1, 11, 1472, 8193, 65_507] {
        check_echo_udp(addr, &util::random_bytes(size))
            .unwrap_or_else(|e| panic!("{size} bytes: {e}"));
    }
    // An empty datagram gets an empty one back.
    check_echo_udp(addr, b"").unwrap();
    server.stop();
}

#[test]
fn echo_udp_answers_a_queued_burst_each_datagram_to_its_sender_in_order() {
    // A stopped server lets datagrams queue; resumed, it takes them from
    // the socket in batches and must still answer each one to its sender.
    let server = Server::start(&["echo=0", "--udp", "--udp-rate", "0", "--json"], 1);
    let echo = server.udp("echo");
    let clients: Vec<UdpSocket> = (0..8).map(|_| udp_socket("127.0.0.1:0")).collect();
    let mut sent: Vec<Vec<Vec<u8>>> = vec![Vec::new(); clients.len()];
    server.proc.signal("STOP");
    // 96 datagrams of at most 512 bytes: well inside the default receive
    // buffer, so that the kernel drops none while the server is stopped.
    for round in 0..12u8 {
        for (i, client) in clients.iter().enumerate() {
            let mut payload = vec![i as u8, round];
            payload.extend(util::random_bytes((usize::from(round) * 41 + i * 13) % 510));
            client.send_to(&payload, echo).unwrap();
            sent[i].push(payload);
        }
    }
    server.proc.signal("CONT");
    for (i, client) in clients.iter().enumerate() {
        for (round, want) in sent[i].iter().enumerate() {
            let got = udp_recv(client, echo).unwrap_or_else(|e| panic!("client {i}, {round}: {e}"));
            assert!(
                got == *want,
                "client {i}, datagram {round}: got {}",
                show(&got)
            );
        }
    }
    let bytes: usize = sent.iter().flatten().map(Vec::len).sum();
    let out = server.stop();
    let t = totals(&out);
    assert_eq!(count(&t, "echo", "datagrams"), 96, "{}", out.dump());
    assert_eq!(
        count(&t, "echo", "bytes_in"),
        bytes as u64,
        "{}",
        out.dump()
    );
    assert_eq!(
        count(&t, "echo", "bytes_out"),
        bytes as u64,
        "{}",
        out.dump()
    );
}

#[test]
fn hardening_04_serve_totals_count_the_datagrams_the_kernel_dropped() {
    // 64 datagrams of 60,000 bytes while the server is stopped: more than
    // its receive queue holds. Every one is either answered or counted as
    // dropped by the kernel; the totals once said 0 dropped.
    let server = Server::start(&["echo=0", "--udp", "--udp-rate", "0", "--json"], 1);
    let echo = server.udp("echo");
    let client = udp_socket("127.0.0.1:0");
    server.proc.signal("STOP");
    let sent = 64;
    for i in 0..sent {
        client.send_to(&vec![i as u8; 60_000], echo).unwrap();
    }
    server.proc.signal("CONT");
    // A marker from another socket, sent until it is answered: once it is,
    // the server has read everything queued before it.
    let marker = udp_socket("127.0.0.1:0");
    let mut markers = 0;
    loop {
        markers += 1;
        assert!(markers <= 100, "the marker was never answered");
        marker.send_to(b"marker", echo).unwrap();
        marker
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let mut buf = [0u8; 16];
        if marker.recv(&mut buf).is_ok_and(|n| &buf[..n] == b"marker") {
            break;
        }
    }
    let out = server.stop();
    let t = totals(&out);
    let dropped = count(&t, "echo", "udp_dropped_kernel");
    assert!(dropped > 0, "{}", out.dump());
    assert_eq!(
        count(&t, "echo", "datagrams") + dropped,
        sent + markers,
        "{}",
        out.dump()
    );
}

#[test]
fn echo_tcp_streams_across_an_urgent_byte_as_a_plain_read_does() {
    // 4 MiB makes the connection a stream (spliced); splice(2) alone would
    // stop at the urgent mark for ever and lose what follows it.
    let server = Server::start(&["echo=0", "--tcp", "--json"], 1);
    let before = util::random_bytes(4 << 20);
    let addr = server.tcp("echo").to_string();
    let back = util::echo_across_urgent_mark(&addr, &before, b"after the urgent byte");
    assert_eq!(
        back.len(),
        before.len() + 21,
        "{}",
        show(&back[back.len().saturating_sub(40)..])
    );
    assert!(
        back[..before.len()] == before[..],
        "the stream before the mark differs"
    );
    assert_eq!(&back[before.len()..], b"after the urgent byte");
    let out = server.stop();
    let t = totals(&out);
    assert_eq!(
        count(&t, "echo", "bytes_in"),
        (4 << 20) + 21,
        "{}",
        out.dump()
    );
    assert_eq!(
        count(&t, "echo", "bytes_out"),
        (4 << 20) + 21,
        "{}",
        out.dump()
    );
}

#[test]
fn discard_never_answers_over_tcp_or_udp() {
    let server = Server::start(&["discard=0", "--json"], 2);
    check_discard_tcp(server.tcp("discard")).unwrap();
    check_discard_udp(server.udp("discard")).unwrap();
    let out = server.stop();
    let t = totals(&out);
    assert_eq!(count(&t, "discard", "bytes_in"), (1 << 20) + 1000);
    assert_eq!(count(&t, "discard", "bytes_out"), 0);
}

#[test]
fn chargen_tcp_sends_the_rfc_lines_from_line_0_on_each_connection() {
    let server = Server::start(&["chargen=0", "--tcp"], 1);
    // Two full periods of the ring and a bit: line 95 is line 0 again.
    let first = check_chargen_tcp(server.tcp("chargen"), 200).unwrap();
    assert!(first.starts_with(
        b" !\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefg\r\n!\"#"
    ));
    assert_eq!(first[95 * 74..96 * 74], first[..74]);
    // The next connection starts over.
    check_chargen_tcp(server.tcp("chargen"), 3).unwrap();
    server.stop();
}

#[test]
fn chargen_udp_sends_one_line_per_datagram() {
    let server = Server::start(&["chargen=0", "--udp"], 1);
    let lines = check_chargen_udp(server.udp("chargen"), 5).unwrap();
    assert!(lines.iter().all(|l| l.len() == 74));
    // Another client goes on with the rotation.
    let more = check_chargen_udp(server.udp("chargen"), 1).unwrap();
    let last = chargen_index(&lines[4]).unwrap();
    assert_eq!(more[0], chargen_line(last + 1), "{}", show(&more[0]));
    server.stop();
}

#[test]
fn qotd_sends_a_quote_under_512_bytes_over_tcp_and_udp() {
    let server = Server::start(&["qotd=0"], 2);
    let tcp = tcp_reply(server.tcp("qotd")).unwrap();
    let udp = udp_ask(server.udp("qotd"), b"\n").unwrap();
    for quote in [&tcp, &udp] {
        assert!(!quote.is_empty() && quote.len() < 512, "{}", show(quote));
        let text = std::str::from_utf8(quote).unwrap();
        assert!(!text.trim().is_empty(), "{text:?}");
    }
    server.stop();
}

/// A one-shot service closes at once for a client that sent nothing, and
/// lingers for one that sent a request: either way the whole answer
/// arrives, and a client that sent nothing gets a clean end of stream. A
/// request that reaches the server only after it answered and closed (the
/// client wrote late) is refused by the kernel with a reset, as with
/// inetd; that reset comes after the answer and its FIN, so it can end the
/// client's read only once the whole answer is in.
#[test]
fn one_shot_answers_end_cleanly_whether_or_not_the_client_spoke() {
    let server = Server::start(&["banner=0", "--text", "hello there"], 1);
    let addr = server.tcp("banner");
    for request in [&b""[..], b"GET / HTTP/1.0\r\n\r\n", b"x"] {
        for _ in 0..20 {
            let mut s = connect(addr);
            if !request.is_empty() {
                s.write_all(request).unwrap();
            }
            let mut got = Vec::new();
            let mut buf = [0u8; 64];
            let end = loop {
                match s.read(&mut buf) {
                    Ok(0) => break None,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                    Err(e) => break Some(e),
                }
            };
            assert_eq!(got, b"hello there", "request {request:?}: {}", show(&got));
            if let Some(e) = end {
                assert!(
                    !request.is_empty()
                        && matches!(
                            e.kind(),
                            std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
                        ),
                    "request {request:?}: read after the answer: {e}"
                );
            }
        }
    }
    server.stop();
}

/// A one-shot answer leaves in the segment that carries the FIN: one
/// exchange is 6 TCP segments (SYN, SYN-ACK, ACK, answer+FIN, the client's
/// FIN+ACK, the last ACK), not 8. Counted with the kernel's own counter in a
/// network namespace of the test's own, where nothing else sends.
#[test]
fn one_shot_answer_rides_with_the_fin() {
    util::require("unshare");
    let script = format!(
        r#"set -e
ip link set lo up
N='{}'
"$N" serve daytime=0 --tcp 2>"$T/err" &
for i in $(seq 100); do grep -q listening "$T/err" && break; sleep 0.05; done
addr=$(grep -o '127.0.0.1:[0-9]*' "$T/err")
segs() {{ awk '/^Tcp:/ {{ getline; print $12 }}' /proc/net/snmp; }}
before=$(segs)
"$N" connect "$addr" --recv-only
sleep 0.2
echo "segments $(( $(segs) - before ))"
kill -TERM %1; wait"#,
        util::bin().display()
    );
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new("unshare");
    cmd.args(["-n", "bash", "-c", &script]).env("T", dir.path());
    let out = util::spawn_command(cmd, "unshare -n bash (segment count)".into()).finish(WAIT);
    out.ok();
    let text = out.out();
    // ctime's form: "Sat Nov 21 13:53:11 2026".
    let answer = text.lines().next().unwrap_or_default();
    assert_eq!(answer.len(), 24, "no daytime answer: {}", out.dump());
    assert!(text.contains("segments 6\n"), "{}", out.dump());
}

#[test]
fn qotd_rotates_through_a_quotes_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("quotes");
    std::fs::write(&file, "one\n%\ntwo\nlines\n%\nthree\n").unwrap();
    let server = Server::start(&["qotd=0", "--tcp", "--quotes", file.to_str().unwrap()], 1);
    let got: Vec<Vec<u8>> = (0..4)
        .map(|_| tcp_reply(server.tcp("qotd")).unwrap())
        .collect();
    let want: [&[u8]; 4] = [b"one\n", b"two\nlines\n", b"three\n", b"one\n"];
    assert_eq!(got, want.map(<[u8]>::to_vec));
    server.stop();
}

#[test]
fn daytime_sends_ctime_in_utc_with_crlf() {
    let server = Server::start(&["daytime=0"], 2);
    let tcp = tcp_reply(server.tcp("daytime")).unwrap();
    check_daytime(&tcp, parse_ctime).unwrap();
    let udp = udp_ask(server.udp("daytime"), b"what time is it?").unwrap();
    check_daytime(&udp, parse_ctime).unwrap();
    server.stop();
}

#[test]
fn daytime_sends_rfc3339_when_asked() {
    let server = Server::start(&["daytime=0", "--daytime-format", "rfc3339"], 2);
    let tcp = tcp_reply(server.tcp("daytime")).unwrap();
    check_daytime(&tcp, parse_rfc3339).unwrap();
    let udp = udp_ask(server.udp("daytime"), b"").unwrap();
    check_daytime(&udp, parse_rfc3339).unwrap();
    server.stop();
}

#[test]
fn time_sends_4_bytes_of_seconds_since_1900() {
    let server = Server::start(&["time=0"], 2);
    check_time(&tcp_reply(server.tcp("time")).unwrap()).unwrap();
    check_time(&udp_ask(server.udp("time"), b"").unwrap()).unwrap();
    server.stop();
}

#[test]
fn banner_sends_the_greeting_or_text() {
    let server = Server::start(&["banner=0"], 2);
    assert_eq!(
        tcp_reply(server.tcp("banner")).unwrap(),
        GREETING.as_bytes()
    );
    assert_eq!(
        udp_ask(server.udp("banner"), b"hi").unwrap(),
        GREETING.as_bytes()
    );
    server.stop();
    let server = Server::start(&["banner=0", "--text", "Welcome, friend\r\n"], 2);
    assert_eq!(
        tcp_reply(server.tcp("banner")).unwrap(),
        b"Welcome, friend\r\n"
    );
    assert_eq!(
        udp_ask(server.udp("banner"), b"").unwrap(),
        b"Welcome, friend\r\n"
    );
    server.stop();
}

#[test]
fn unix_sockets_serve_and_are_removed_on_ctrl_c() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let server = Server::start(&["--unix", d, "echo", "chargen", "time"], 3);
    let echo = server.unix("echo");
    assert_eq!(echo, dir.path().join("echo.sock"));
    let connect_unix = |path: &Path| {
        let s = UnixStream::connect(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        s.set_read_timeout(Some(WAIT)).unwrap();
        s.set_write_timeout(Some(WAIT)).unwrap();
        s
    };
    let data = Arc::new(util::random_bytes(1 << 20));
    let got = send_and_read_back(connect_unix(&echo), data.clone()).unwrap();
    assert!(
        got == *data,
        "sent 1 MiB, got back {} different bytes",
        got.len()
    );
    let mut chargen = connect_unix(&server.unix("chargen"));
    let mut lines = vec![0u8; 3 * 74];
    chargen.read_exact(&mut lines).unwrap();
    assert_eq!(lines, chargen_stream(3), "{}", show(&lines));
    drop(chargen);
    let mut time = Vec::new();
    connect_unix(&server.unix("time"))
        .read_to_end(&mut time)
        .unwrap();
    check_time(&time).unwrap();
    let out = server.stop();
    // Unix only: no TCP or UDP socket was announced.
    assert_eq!(
        out.stderr.matches("listening on ").count(),
        3,
        "{}",
        out.dump()
    );
    for name in ["echo.sock", "chargen.sock", "time.sock"] {
        assert!(!dir.path().join(name).exists(), "{name} left behind");
    }
    // The totals table: a header, then a row per service.
    let table = out.out();
    assert!(
        table.lines().next().is_some_and(|h| h.contains("service")),
        "{}",
        out.dump()
    );
    for service in ["echo", "chargen", "time"] {
        assert!(
            table.lines().any(|l| l.starts_with(service)),
            "no {service} row\n{}",
            out.dump()
        );
    }
}

#[test]
fn unix_with_tcp_serves_both_and_no_udp() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        &["--unix", dir.path().to_str().unwrap(), "--tcp", "echo=0"],
        2,
    );
    check_echo_tcp(server.tcp("echo"), b"over tcp").unwrap();
    let s = UnixStream::connect(server.unix("echo")).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    assert_eq!(
        send_and_read_back(s, Arc::new(b"over unix".to_vec())).unwrap(),
        b"over unix"
    );
    let out = server.stop();
    assert!(!out.stderr.contains("/udp)"), "{}", out.dump());
}

/// Each transport flag adds its transport: `--tcp --udp --unix DIR` serves
/// all three (once `--tcp` and `--udp` excluded each other).
#[test]
fn tcp_udp_and_unix_flags_add_up() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        &[
            "--unix",
            dir.path().to_str().unwrap(),
            "--tcp",
            "--udp",
            "echo=0",
        ],
        3,
    );
    check_echo_tcp(server.tcp("echo"), b"over tcp").unwrap();
    assert_eq!(
        udp_ask(server.udp("echo"), b"over udp").unwrap(),
        b"over udp"
    );
    let s = UnixStream::connect(server.unix("echo")).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    assert_eq!(
        send_and_read_back(s, Arc::new(b"over unix".to_vec())).unwrap(),
        b"over unix"
    );
    server.stop();
}

#[test]
fn port_and_bind_options() {
    let server = Server::start(&["echo", "--port", "0", "--tcp", "--bind", "127.0.0.2"], 1);
    let addr = server.tcp("echo");
    assert_eq!(addr.ip().to_string(), "127.0.0.2");
    assert_ne!(addr.port(), 0);
    check_echo_tcp(addr, b"bound where asked").unwrap();
    server.stop();
}

#[test]
fn ctrl_c_stops_accepting_and_lets_open_connections_finish() {
    let server = Server::start(&["echo=0", "--tcp", "--json"], 1);
    let addr = server.tcp("echo");
    let mut open = connect(addr);
    open.write_all(b"before").unwrap();
    let mut buf = [0u8; 6];
    open.read_exact(&mut buf).unwrap();
    server.proc.signal("INT");
    // New clients are refused once it stops accepting.
    let deadline = Instant::now() + WAIT;
    loop {
        match TcpStream::connect(addr) {
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => break,
            // A connect that meets the listener while it closes is reset:
            // not accepted, not yet refused; try again.
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => panic!("connect after Ctrl-C: {e}"),
            Ok(_) => {
                assert!(
                    Instant::now() < deadline,
                    "still accepting {WAIT:?} after Ctrl-C"
                );
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
    // The open connection is still served, and its end ends the server,
    // well before the 5 s grace period.
    open.write_all(b"after").unwrap();
    let mut buf = [0u8; 5];
    open.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"after");
    open.shutdown(Shutdown::Write).unwrap();
    assert_eq!(open.read(&mut buf).unwrap(), 0);
    let t0 = Instant::now();
    let out = server.proc.wait_exit(WAIT);
    out.ok();
    assert!(
        t0.elapsed() < Duration::from_secs(3),
        "exit took {:?}",
        t0.elapsed()
    );
    let t = totals(&out);
    assert_eq!(count(&t, "echo", "bytes_in"), 11, "{}", out.dump());
}

/// A script that starts `netsmith serve time=0 --json` (argv[1]) argv[2]
/// times, reads its two "listening on" lines and Ctrl-Cs it at once
/// (Python's `send_signal`: no `kill` process in between); prints each
/// run's exit status, followed by "/no-totals" when it printed none.
const CTRL_C_AT_ONCE: &str = r#"
import signal, subprocess, sys
results = []
for _ in range(int(sys.argv[2])):
    p = subprocess.Popen([sys.argv[1], "serve", "time=0", "--json"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    for _ in range(2):
        line = p.stderr.readline()
        assert b"listening on" in line, line
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=5)
    totals = b'"service":"time"' in out
    results.append(str(p.returncode) if totals else f"{p.returncode}/no-totals")
print(" ".join(results))
"#;

/// A script starts the server, waits for its "listening on" lines and
/// stops it at once: that Ctrl-C too is a graceful stop.
#[test]
fn ctrl_c_right_after_the_listening_lines_stops_gracefully() {
    let bin = util::bin();
    let python = util::require("python3");
    let out = util::run_cmd(
        python,
        &["-c", CTRL_C_AT_ONCE, bin.to_str().unwrap(), "20"],
        b"",
    );
    out.ok();
    let results = out.out();
    let bad = results.split_whitespace().filter(|r| *r != "0").count();
    assert!(
        bad == 0 && results.split_whitespace().count() == 20,
        "of 20 servers Ctrl-C'd right after their \"listening on\" lines, {bad} did not exit 0 \
         with their totals (-2: killed by SIGINT): {results}"
    );
}

#[test]
fn grace_period_bounds_the_wait_for_a_client_that_stays_and_sigterm_stops_too() {
    let server = Server::start(&["echo=0", "--tcp", "--grace", "300ms"], 1);
    let mut idle = connect(server.tcp("echo"));
    idle.write_all(b"x").unwrap();
    let mut b = [0u8; 1];
    idle.read_exact(&mut b).unwrap();
    let t0 = Instant::now();
    server.proc.signal("TERM");
    let out = server.proc.wait_exit(WAIT);
    out.ok();
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_secs(3),
        "stopping with an open connection and --grace 300ms took {took:?}\n{}",
        out.dump()
    );
    assert!(out.out().contains("echo"), "no totals\n{}", out.dump());
    // The connection was closed.
    match idle.read(&mut b) {
        Ok(0) => {}
        Err(e) if !is_timeout(&e) => {}
        other => panic!("the client's connection was not closed: {other:?}"),
    }
}

// 2. The seed tutorials' clients against serve

#[test]
fn seed_003_echo_client_gets_hello_world_from_serve_echo() {
    let server = Server::start(&["echo=0", "--tcp"], 1);
    let port = format!("PORT = {}", server.tcp("echo").port());
    let client = Program::new(
        "echo_client.py",
        seeds::ECHO_CLIENT,
        &[("PORT = 65432", &port)],
    )
    .run(b"");
    client.ok();
    assert_eq!(
        client.out(),
        "Received : b'Hello World'\n",
        "{}",
        client.dump()
    );
    server.stop();
}

#[test]
fn seed_004_qotd_client_reads_serve_qotd_4_bytes_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("quotes");
    std::fs::write(&file, format!("{}\n", seeds::QUOTE)).unwrap();
    let server = Server::start(&["qotd=0", "--tcp", "--quotes", file.to_str().unwrap()], 1);
    let target = format!("('127.0.0.1',{})", server.tcp("qotd").port());
    let edits = [("('127.0.0.1',12345)", target.as_str())];
    let client = Program::new("qotd_client.py", seeds::QOTD_CLIENT, &edits).run(b"");
    client.ok();
    let out = client.out();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.first(), Some(&"bytearray(b'')"), "{}", client.dump());
    let whole = format!("bytearray(b'{}\\n')", seeds::QUOTE);
    assert_eq!(lines.last(), Some(&whole.as_str()), "{}", client.dump());
    // One line per 4-byte chunk, and the whole message.
    assert_eq!(
        lines.len(),
        (seeds::QUOTE.len() + 1).div_ceil(4) + 1,
        "{}",
        client.dump()
    );
    server.stop();
}

#[test]
fn seed_004_udp_echo_client_gets_hello_world_from_serve_echo() {
    let server = Server::start(&["echo=0", "--udp"], 1);
    let port = server.udp("echo").port();
    let target = format!("('127.0.0.1',{port})");
    let edits = [("('127.0.0.1',12345)", target.as_str())];
    let client = Program::new("udp_echo_client.py", seeds::UDP_ECHO_CLIENT, &edits).run(b"");
    client.ok();
    let want =
        format!("sending...\nreceiving...\nb'Hello World' received from ('127.0.0.1', {port})\n");
    assert_eq!(client.out(), want, "{}", client.dump());
    server.stop();
}

#[test]
fn seed_001_greeting_client_is_thanked_by_serve_banner() {
    let server = Server::start(&["banner=0", "--tcp"], 1);
    let port = format!("port = {}", server.tcp("banner").port());
    let edits = [
        ("socket.gethostname()", "'127.0.0.1'"),
        ("port = 9999", port.as_str()),
    ];
    let client = Program::new("greeting_client.py", seeds::GREETING_CLIENT, &edits).run(b"");
    client.ok();
    assert_eq!(client.out(), format!("{GREETING}\n"), "{}", client.dump());
    server.stop();
}

// 3. Beside the reference: inetutils-inetd's built-in services

/// Debian's inetutils-inetd in the foreground, running its internal
/// services on 127.0.0.1. Its configuration names services, not ports, and
/// its internal services go by their /etc/services names, so it runs in a
/// private mount namespace where /etc/services is a file of ours that gives
/// each service a free port.
struct Inetd {
    _proc: Proc,
    ports: HashMap<String, u16>,
    _dir: TempDir,
}

/// A port free for both TCP and UDP on 127.0.0.1, released for the caller.
fn free_tcp_udp_port() -> u16 {
    for _ in 0..100 {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = tcp.local_addr().unwrap().port();
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no port free for both TCP and UDP");
}

impl Inetd {
    fn start(services: &[&str]) -> Inetd {
        let inetd = util::require("inetutils-inetd");
        let unshare = util::require("unshare");
        let dir = tempfile::tempdir().unwrap();
        let (mut etc_services, mut conf) = (String::new(), String::new());
        let mut ports = HashMap::new();
        for svc in services {
            let port = free_tcp_udp_port();
            let _ = writeln!(etc_services, "{svc}\t{port}/tcp\n{svc}\t{port}/udp");
            let _ = writeln!(
                conf,
                "127.0.0.1:{svc} stream tcp nowait root internal\n\
                 127.0.0.1:{svc} dgram udp wait root internal"
            );
            ports.insert((*svc).to_string(), port);
        }
        let path = |name: &str| {
            dir.path()
                .join(name)
                .to_str()
                .expect("utf-8 path")
                .to_string()
        };
        std::fs::write(path("services"), etc_services).unwrap();
        std::fs::write(path("inetd.conf"), conf).unwrap();
        let script =
            r#"mount --bind "$1" /etc/services && exec "$2" -d --rate=10000 --pidfile="$3" "$4""#;
        let args = [
            "-m".to_string(),
            "sh".into(),
            "-c".into(),
            script.into(),
            "sh".into(),
            path("services"),
            inetd.to_str().unwrap().into(),
            path("inetd.pid"),
            path("inetd.conf"),
        ];
        let mut cmd = Command::new(&unshare);
        // Its daytime is ctime(3) in local time: make that UTC, as netsmith's.
        cmd.args(&args).env("TZ", "UTC");
        let proc = util::spawn_command(cmd, format!("{} {}", unshare.display(), args.join(" ")));
        for port in ports.values() {
            util::wait_tcp_listen(*port);
            util::wait_udp_bound(*port);
        }
        Inetd {
            _proc: proc,
            ports,
            _dir: dir,
        }
    }

    fn addr(&self, service: &str) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.ports[service]))
    }
}

#[test]
fn serve_and_inetd_pass_the_same_checks_with_the_same_bytes() {
    let services = ["echo", "discard", "daytime", "chargen", "time"];
    let inetd = Inetd::start(&services);
    let args: Vec<String> = services.iter().map(|s| format!("{s}=0")).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = Server::start(&args, 10);
    let mut failures = Vec::new();
    let theirs = check_classic_services(
        "inetd",
        &|s| inetd.addr(s),
        &|s| inetd.addr(s),
        inetd_time,
        &mut failures,
    );
    let ours = check_classic_services(
        "netsmith",
        &|s| server.tcp(s),
        &|s| server.udp(s),
        as_sent,
        &mut failures,
    );
    if let (Some(a), Some(b)) = (&theirs.chargen_tcp, &ours.chargen_tcp)
        && a != b
    {
        failures.push(format!(
            "chargen/tcp differs: netsmith {}",
            first_difference(b, a)
        ));
    }
    if let (Some(a), Some(b)) = (&theirs.chargen_udp, &ours.chargen_udp)
        && a != b
    {
        failures.push(format!(
            "chargen/udp differs: inetd {:?}, netsmith {:?}",
            a.iter().map(|l| show(l)).collect::<Vec<_>>(),
            b.iter().map(|l| show(l)).collect::<Vec<_>>()
        ));
    }
    for (&a, &b) in theirs.daytime.iter().zip(&ours.daytime) {
        if a.abs_diff(b) > 5 {
            failures.push(format!(
                "daytime: inetd says {a}, netsmith {b} (seconds since 1970)"
            ));
        }
    }
    for (&a, &b) in theirs.time.iter().zip(&ours.time) {
        if apart(a, b) > 5 {
            failures.push(format!("time: inetd says {a}, netsmith {b}"));
        }
    }
    server.stop();
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

// 4. Limits

#[test]
fn max_conns_makes_the_third_client_wait_for_a_free_slot() {
    let server = Server::start(&["echo=0", "--tcp", "--max-conns", "2"], 1);
    let addr = server.tcp("echo");
    let mut first = connect(addr);
    let mut second = connect(addr);
    for (s, msg) in [(&mut first, b"one"), (&mut second, b"two")] {
        s.write_all(msg).unwrap();
        let mut b = [0u8; 3];
        s.read_exact(&mut b).unwrap();
        assert_eq!(&b, msg);
    }
    let mut third = connect(addr);
    third.write_all(b"three").unwrap();
    third.set_read_timeout(Some(SILENCE)).unwrap();
    let mut b = [0u8; 5];
    match third.read(&mut b) {
        Err(e) if is_timeout(&e) => {}
        other => panic!("the third client was served at once: {other:?}"),
    }
    drop(first);
    third.set_read_timeout(Some(WAIT)).unwrap();
    third.read_exact(&mut b).unwrap();
    assert_eq!(&b, b"three");
    drop((second, third));
    server.stop();
}

#[test]
fn idle_timeout_closes_a_silent_echo_client() {
    let server = Server::start(&["echo=0", "--tcp", "-i", "300ms"], 1);
    let mut s = connect(server.tcp("echo"));
    let t0 = Instant::now();
    let mut b = [0u8; 16];
    let got = s.read(&mut b);
    let took = t0.elapsed();
    assert!(
        matches!(got, Ok(0)),
        "expected EOF, got {got:?} after {took:?}"
    );
    // The upper bound is loose: on a loaded 2-core machine the timer fires
    // late, but a server that never closed would stall this forever.
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_secs(5),
        "closed after {took:?} with --idle-timeout 300ms"
    );
    server.stop();
}

/// The state (the hex `st` column of /proc/net/tcp) of the IPv4 TCP socket
/// from `local` to `remote`, if there is one.
fn tcp_state(local: SocketAddr, remote: SocketAddr) -> Option<String> {
    let hex = |a: SocketAddr| match a {
        SocketAddr::V4(v4) => format!(
            "{:08X}:{:04X}",
            u32::from_ne_bytes(v4.ip().octets()),
            a.port()
        ),
        SocketAddr::V6(_) => unreachable!("IPv4 only"),
    };
    let (local, remote) = (hex(local), hex(remote));
    std::fs::read_to_string("/proc/net/tcp")
        .ok()?
        .lines()
        .find_map(|l| {
            let c: Vec<&str> = l.split_whitespace().collect();
            (c.len() > 3 && c[1] == local && c[2] == remote).then(|| c[3].to_string())
        })
}

/// Connects to chargen at `addr` and never reads, running `meanwhile`
/// until the server closes its end (leaves ESTABLISHED, 01); returns how
/// long that took and everything the client then reads to EOF, which must
/// be a chargen stream from line 0.
fn stall_chargen_until_closed(
    addr: SocketAddr,
    mut meanwhile: impl FnMut(),
) -> (Duration, Vec<u8>) {
    let mut stalled = connect(addr);
    let t0 = Instant::now();
    let client = stalled.local_addr().unwrap();
    let took = loop {
        if tcp_state(addr, client).as_deref() != Some("01") {
            break t0.elapsed();
        }
        assert!(
            t0.elapsed() < WAIT,
            "the chargen connection is still open after {WAIT:?}"
        );
        meanwhile();
    };
    // What was in flight, then EOF: finitely much, so the server had stopped.
    let cap = 64 << 20;
    let mut rest = Vec::new();
    (&mut stalled).take(cap).read_to_end(&mut rest).unwrap();
    assert!(
        rest.len() < cap as usize,
        "chargen kept sending after the idle timeout"
    );
    let want = chargen_stream(rest.len() / 74 + 1);
    assert!(
        rest[..] == want[..rest.len()],
        "not a chargen stream: {}",
        first_difference(&rest, &want)
    );
    (took, rest)
}

#[test]
fn idle_timeout_closes_a_chargen_client_that_never_reads_and_others_go_on() {
    let server = Server::start(&["chargen=0", "echo=0", "--tcp", "-i", "300ms"], 2);
    // Echo round trips go on, fast, while the chargen client is stalled.
    // The echo client connects at its first round trip, so that a slow
    // start of the stall cannot idle it out first.
    let echo_addr = server.tcp("echo");
    let mut echo: Option<TcpStream> = None;
    let mut round_trips = 0;
    let (took, _) = stall_chargen_until_closed(server.tcp("chargen"), || {
        let echo = echo.get_or_insert_with(|| {
            let s = connect(echo_addr);
            s.set_nodelay(true).unwrap();
            s
        });
        let r0 = Instant::now();
        echo.write_all(b"ping").unwrap();
        let mut b = [0u8; 4];
        echo.read_exact(&mut b).unwrap();
        assert_eq!(&b, b"ping");
        assert!(
            r0.elapsed() < Duration::from_millis(100),
            "echo took {:?}",
            r0.elapsed()
        );
        round_trips += 1;
    });
    assert!(round_trips > 0);
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_millis(1500),
        "the server closed the stalled chargen client after {took:?} with --idle-timeout 300ms"
    );
    drop(echo);
    server.stop();
}

#[test]
fn totals_count_every_byte_chargen_sent() {
    let server = Server::start(&["chargen=0", "--tcp", "-i", "300ms", "--json"], 1);
    let (_, received) = stall_chargen_until_closed(server.tcp("chargen"), || {
        std::thread::sleep(Duration::from_millis(5));
    });
    let out = server.stop();
    // Everything it wrote reached the client, which read nothing before.
    assert_eq!(
        count(&totals(&out), "chargen", "bytes_out"),
        received.len() as u64,
        "chargen's bytes_out is not what the client received\n{}",
        out.dump()
    );
}

#[test]
fn allow_serves_only_its_block() {
    let server = Server::start(&["echo=0", "--allow", "127.0.0.2/32", "--json"], 2);
    let (tcp, udp) = (server.tcp("echo"), server.udp("echo"));
    // From 127.0.0.1: closed without data.
    assert_reset(tcp, "a client outside --allow");
    let sock = udp_socket("127.0.0.1:0");
    sock.send_to(b"from .1", udp).unwrap();
    udp_silent(&sock).unwrap();
    // From 127.0.0.2: served.
    let got = send_and_read_back(
        connect_from("127.0.0.2", tcp),
        Arc::new(b"from .2".to_vec()),
    )
    .unwrap();
    assert_eq!(got, b"from .2");
    let sock = udp_socket("127.0.0.2:0");
    sock.send_to(b"from .2", udp).unwrap();
    assert_eq!(udp_recv(&sock, udp).unwrap(), b"from .2");
    let out = server.stop();
    let t = totals(&out);
    assert_eq!(count(&t, "echo", "denied"), 2, "{}", out.dump());
    assert_eq!(count(&t, "echo", "connections"), 1, "{}", out.dump());
    assert_eq!(count(&t, "echo", "datagrams"), 1, "{}", out.dump());
}

#[test]
fn deny_refuses_its_block_and_wins_over_allow() {
    let server = Server::start(
        &[
            "echo=0",
            "--tcp",
            "--allow",
            "127.0.0.0/8",
            "--deny",
            "127.0.0.1/32",
            "--json",
        ],
        1,
    );
    let tcp = server.tcp("echo");
    assert_reset(tcp, "a denied client");
    let got = send_and_read_back(connect_from("127.0.0.2", tcp), Arc::new(b"ok".to_vec())).unwrap();
    assert_eq!(got, b"ok");
    let out = server.stop();
    let t = totals(&out);
    assert_eq!(count(&t, "echo", "denied"), 1, "{}", out.dump());
    assert_eq!(count(&t, "echo", "connections"), 1, "{}", out.dump());
}

#[test]
fn udp_from_a_service_port_is_dropped_and_counted() {
    let server = Server::start(&["echo=0", "chargen=0", "--udp", "--json"], 2);
    let (echo, chargen) = (server.udp("echo"), server.udp("chargen"));
    // As if another echo server were talking to this one: from port 7, or
    // if that is taken another of the services' ports.
    let service_ports = [7, 9, 13, 17, 19, 37];
    let peer = service_ports
        .iter()
        .find_map(|p| UdpSocket::bind(("127.0.0.1", *p)).ok())
        .unwrap_or_else(|| panic!("ports {service_ports:?} are all taken"));
    peer.set_read_timeout(Some(WAIT)).unwrap();
    peer.send_to(b"ping-pong", echo).unwrap();
    peer.send_to(b"ping-pong", chargen).unwrap();
    udp_silent(&peer).unwrap();
    // Another source is answered.
    assert_eq!(udp_ask(echo, b"fine").unwrap(), b"fine");
    let out = server.stop();
    let t = totals(&out);
    assert_eq!(count(&t, "echo", "udp_dropped_loop"), 1, "{}", out.dump());
    assert_eq!(
        count(&t, "chargen", "udp_dropped_loop"),
        1,
        "{}",
        out.dump()
    );
    assert_eq!(count(&t, "echo", "datagrams"), 1, "{}", out.dump());
    assert_eq!(count(&t, "chargen", "bytes_out"), 0, "{}", out.dump());
}

#[test]
fn udp_rate_limits_replies_per_source() {
    let server = Server::start(&["echo=0", "--udp", "--udp-rate", "5", "--json"], 1);
    let addr = server.udp("echo");
    let sock = udp_socket("127.0.0.1:0");
    let t0 = Instant::now();
    for i in 0..50u8 {
        sock.send_to(&[i], addr).unwrap();
    }
    let sent_in = t0.elapsed();
    let mut replies = 0;
    sock.set_read_timeout(Some(SILENCE)).unwrap();
    let mut buf = [0u8; 16];
    while sock.recv_from(&mut buf).is_ok() {
        replies += 1;
    }
    // A burst of 5, and 5 a second after it.
    let most = 5 + (sent_in.as_secs_f64() * 5.0).ceil() as usize + 1;
    assert!(
        (4..=most).contains(&replies),
        "{replies} replies to 50 datagrams sent in {sent_in:?}"
    );
    let out = server.stop();
    let t = totals(&out);
    let dropped = count(&t, "echo", "udp_dropped_rate");
    assert!(dropped > 0, "{}", out.dump());
    assert_eq!(
        count(&t, "echo", "datagrams") + dropped,
        50,
        "{}",
        out.dump()
    );
    assert_eq!(
        count(&t, "echo", "datagrams"),
        replies as u64,
        "{}",
        out.dump()
    );
}

#[test]
fn keeps_serving_60_clients_under_a_descriptor_limit_of_32() {
    let script = r#"ulimit -n 32 && exec "$0" serve echo=0 --tcp"#;
    let bin = util::bin();
    let proc = util::spawn_cmd("sh", &["-c", script, bin.to_str().unwrap()]);
    let server = Server::announced(proc, 1);
    let addr = server.tcp("echo");
    let mut clients: Vec<TcpStream> = (0..60).map(|_| connect(addr)).collect();
    for c in &mut clients {
        c.write_all(b"hi").unwrap();
    }
    let mut b = [0u8; 2];
    clients[0].read_exact(&mut b).unwrap();
    assert_eq!(&b, b"hi");
    drop(clients);
    let got = send_and_read_back(connect(addr), Arc::new(b"still here".to_vec())).unwrap();
    assert_eq!(got, b"still here");
    server.stop();
}

// 5. Privilege and bad input

#[test]
fn binding_port_7_as_nobody_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let setpriv = util::require("setpriv");
    // A copy nobody can run, wherever the tree is.
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let bin = dir.path().join("netsmith");
    std::fs::copy(util::bin(), &bin).unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let args = [
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        bin.to_str().unwrap(),
        "serve",
        "echo",
    ];
    let out = util::run_cmd(setpriv, &args, b"");
    out.code_is(2);
    assert!(out.stderr.contains("above 1023"), "{}", out.dump());
    assert!(out.stderr.contains(":7"), "{}", out.dump());
}

#[test]
fn bad_input_exits_2_with_one_line_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let quotes = dir.path().join("long-quotes");
    std::fs::write(
        &quotes,
        format!("short\n%\n{}\n%\nshort again\n", "x".repeat(600)),
    )
    .unwrap();
    let quotes = quotes.to_str().unwrap();
    let cases: [(&[&str], &[&str]); 4] = [
        (&["serve", "ftp"], &["\"ftp\""]),
        (&["serve", "echo", "qotd", "--port", "5"], &["--port"]),
        (&["serve", "qotd", "--quotes", quotes], &["line 3", quotes]),
        (
            &["serve", "--allow", "10.0.0.0/33", "echo"],
            &["10.0.0.0/33"],
        ),
    ];
    let mut failures = Vec::new();
    for (args, words) in cases {
        let out = util::run(args, b"");
        let mut problems = Vec::new();
        if out.code() != Some(2) {
            problems.push(format!("exit {:?}", out.code()));
        }
        problems.extend(
            words
                .iter()
                .filter(|w| !out.stderr.contains(*w))
                .map(|w| format!("stderr lacks {w:?}")),
        );
        if out.stderr.lines().count() != 1 {
            problems.push("not one line on stderr".into());
        }
        if !out.stdout.is_empty() || out.stderr.contains("listening on") {
            problems.push("served".into());
        }
        if !problems.is_empty() {
            failures.push(format!("{args:?}: {}\n{}", problems.join(", "), out.dump()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

// 6. Totals

#[test]
fn json_totals_count_what_the_clients_sent_and_v_logs_connections() {
    let mut server = Server::start(&["-v", "echo=0", "time=0", "--json"], 4);
    let tcp = server.tcp("echo");
    let mut sent = 0;
    for size in [10, 1000, 100_000] {
        let data = util::random_bytes(size);
        let s = connect(tcp);
        let port = s.local_addr().unwrap().port();
        assert_eq!(send_and_read_back(s, Arc::new(data.clone())).unwrap(), data);
        sent += size;
        let line = format!("connection from 127.0.0.1:{port} (echo/tcp)");
        server.proc.wait_stderr(&line);
    }
    for size in [1, 500] {
        check_echo_udp(server.udp("echo"), &vec![b'u'; size]).unwrap();
        sent += size;
    }
    let out = server.stop();
    let t = totals(&out);
    assert_eq!(t.len(), 2, "one line per service\n{}", out.dump());
    assert_eq!(count(&t, "echo", "connections"), 3, "{}", out.dump());
    assert_eq!(count(&t, "echo", "datagrams"), 2, "{}", out.dump());
    assert_eq!(count(&t, "echo", "bytes_in"), sent as u64, "{}", out.dump());
    assert_eq!(
        count(&t, "echo", "bytes_out"),
        sent as u64,
        "{}",
        out.dump()
    );
    assert_eq!(count(&t, "echo", "errors"), 0, "{}", out.dump());
    for field in &TOTALS_FIELDS[1..] {
        assert_eq!(count(&t, "time", field), 0, "time.{field}\n{}", out.dump());
    }
}

/// Regression: each listener once held a permit while waiting to accept, so
/// `--max-conns 1` with two services starved one of them.
#[test]
fn max_conns_is_shared_by_all_services_without_starving_any() {
    let mut server = util::spawn(&["serve", "echo=0", "qotd=0", "--tcp", "--max-conns", "1"]);
    let found = server.listening_services(2);
    let qotd = found[&("qotd".to_string(), "tcp".to_string())].clone();
    let out = util::run(&["connect", "-w", "5s", &qotd], b"");
    out.ok();
    assert!(!out.stdout.is_empty(), "{}", out.dump());
    server.interrupt().ok();
}

#[test]
fn hardening_05_rule_forms_match_ipv4_clients_on_ipv4_and_dual_stack_listeners() {
    let failures = util::check_rule_forms(|bind, flag, rule| {
        let server = Server::start(&["echo=0", "--tcp", "--bind", bind, flag, rule], 1);
        let port = server.tcp("echo").port();
        (server.proc, port)
    });
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn hardening_02_serve_totals_stdout_write_error_is_exit_1() {
    let mut p = util::spawn_to_full(&["serve", "echo=0", "--tcp"]);
    p.wait_stderr("listening on");
    let out = p.interrupt();
    util::assert_stdout_full(&out);
}

#[test]
fn hardening_03_serve_refuses_allow_truncation_it_would_not_use() {
    let out = util::run(&["serve", "--tls", "--allow-truncation", "echo=0"], b"");
    out.code_is(2);
    assert!(
        out.stderr
            .contains("--allow-truncation is for listen and connect"),
        "{}",
        out.dump()
    );
}

/// The resident memory of process `pid`, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS in /proc/PID/status")
}

/// Server-side sockets on `port` (IPv4) with bytes still in their receive
/// queue, from /proc/net/tcp; `None` while fewer than `n` are established.
fn unread_on(port: u16, n: usize) -> Option<usize> {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    let mut established = 0;
    let mut unread = 0;
    for line in table.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        let local_port = f[1]
            .rsplit(':')
            .next()
            .and_then(|p| u16::from_str_radix(p, 16).ok());
        if local_port != Some(port) || f[3] != "01" {
            continue;
        }
        established += 1;
        let rx = f[4]
            .split(':')
            .nth(1)
            .and_then(|q| u64::from_str_radix(q, 16).ok());
        if rx != Some(0) {
            unread += 1;
        }
    }
    (established >= n).then_some(unread)
}

#[test]
fn hardening_12_idle_discard_connections_hold_no_buffer() {
    const CONNS: usize = 500;
    let mut server = util::spawn(&[
        "serve",
        "discard=0",
        "--tcp",
        "--bind",
        "127.0.0.1",
        "--json",
    ]);
    let addr: SocketAddr = server.listening_services(1)[&("discard".into(), "tcp".into())]
        .parse()
        .unwrap();
    let before = rss_kib(server.pid());
    // Each client sends a byte, so that every connection has read once
    // (the old handler held its 64 KiB buffer from its first read on).
    let clients: Vec<TcpStream> = (0..CONNS)
        .map(|_| {
            let mut c = connect(addr);
            c.write_all(b"x").unwrap();
            c
        })
        .collect();
    let deadline = Instant::now() + WAIT;
    while unread_on(addr.port(), CONNS) != Some(0) {
        assert!(
            Instant::now() < deadline,
            "the server did not read every byte"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let per_conn = rss_kib(server.pid()).saturating_sub(before) * 1024 / CONNS as u64;
    drop(clients);
    let out = server.interrupt();
    out.ok();
    assert_eq!(count(&totals(&out), "discard", "bytes_in"), CONNS as u64);
    assert!(
        per_conn < 16 * 1024,
        "{per_conn} bytes of memory per idle discard connection"
    );
}

/// A client the access rules refuse is reset: at once (the reset may even
/// beat the end of `connect`), never with a clean close it could take for
/// success.
#[track_caller]
fn assert_reset(addr: SocketAddr, who: &str) {
    let mut stream = match TcpStream::connect_timeout(&addr, util::WAIT) {
        Ok(s) => s,
        Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return,
        Err(e) => panic!("{who}: connect {addr}: {e}"),
    };
    stream.set_read_timeout(Some(util::WAIT)).unwrap();
    let mut b = [0u8; 16];
    match stream.read(&mut b) {
        Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {}
        other => panic!("{who} got {other:?}, not a reset"),
    }
}
