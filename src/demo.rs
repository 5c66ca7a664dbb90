//! `netsmith demo`: every system of the seed tutorials, live on loopback.
//!
//! Each one runs with netsmith's own pieces (the service handlers of
//! `serve`, the dialer and binder of `net`, the datagram server of `listen
//! -u`) on free ports. Both sides print what the tutorial's Python prints,
//! and each exchange is checked; the demo exits 0 only if all were right.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncReadExt;

use crate::error::{Error, Result};
use crate::net::{Datagram, Listener, Peer, Stream, bind, dial};
use crate::serve::handlers::Ctx;
use crate::serve::proto::{BUILTIN_QUOTES, DaytimeFormat, Service};

/// `println!` that does not panic when stdout is closed (`demo | head`).
macro_rules! say {
    () => {
        crate::stdio::print("\n")
    };
    ($($arg:tt)*) => {
        crate::stdio::print(&format!("{}\n", format_args!($($arg)*)))
    };
}

const LOOPBACK: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 0);
/// Bound for every step, so a broken exchange fails instead of hanging.
const STEP: Duration = Duration::from_secs(5);
/// The 004 tutorial's receive timeout, shortened from 3 s to keep the demo quick.
const RECV_TIMEOUT: Duration = Duration::from_secs(1);

/// What one system printed, and whether it did what the tutorial shows.
struct Exchange {
    lines: Vec<String>,
    ok: bool,
}

impl Exchange {
    fn new() -> Self {
        Exchange {
            lines: Vec::new(),
            ok: false,
        }
    }

    fn server(&mut self, text: impl AsRef<str>) {
        self.lines.push(format!("  server | {}", text.as_ref()));
    }

    fn client(&mut self, text: impl AsRef<str>) {
        self.lines.push(format!("  client | {}", text.as_ref()));
    }
}

/// One tutorial system, run to its end.
type System = std::pin::Pin<Box<dyn Future<Output = Result<Exchange>> + Send>>;

/// Runs every system and prints both sides; an error if any went wrong.
pub async fn run() -> Result<()> {
    say!("netsmith demo: the socket tutorials' systems, live on 127.0.0.1\n");
    let systems: [(&str, System); 8] = [
        (
            "Greeting server and client (seed 001)",
            Box::pin(greeting()),
        ),
        ("TCP echo, \"Hello World\" (seed 003)", Box::pin(tcp_echo())),
        (
            "UDP echo, one-shot (seed 004, example 1)",
            Box::pin(udp_echo_once()),
        ),
        (
            "UDP echo, persistent (seed 004, example 2)",
            Box::pin(udp_echo_persistent()),
        ),
        (
            "Quote of the day, read 4 bytes at a time (seed 004)",
            Box::pin(qotd()),
        ),
        (
            "UDP receive with a timeout (seed 004)",
            Box::pin(udp_timeout()),
        ),
        (
            "Port scanner, this host's loopback only (seed 004)",
            Box::pin(port_scan()),
        ),
        (
            "This host's name and address: gethostname, gethostbyname",
            Box::pin(host_name()),
        ),
    ];
    let total = systems.len();
    let mut failed = Vec::new();
    for (i, (title, system)) in systems.into_iter().enumerate() {
        say!("{}. {title}", i + 1);
        let exchange = match tokio::time::timeout(STEP * 2, system).await {
            Ok(Ok(exchange)) => exchange,
            Ok(Err(e)) => Exchange {
                lines: vec![format!("  error  | {e}")],
                ok: false,
            },
            Err(_) => Exchange {
                lines: vec!["  error  | timed out".into()],
                ok: false,
            },
        };
        for line in &exchange.lines {
            say!("{line}");
        }
        say!("  {}\n", if exchange.ok { "ok" } else { "FAILED" });
        if !exchange.ok {
            failed.push(title);
        }
    }
    if failed.is_empty() {
        say!("{total} of {total} systems ran as the tutorials show them.");
        say!(
            "Next: `netsmith serve echo qotd` runs these services for real; `netsmith --help` lists the rest."
        );
        Ok(())
    } else {
        Err(Error::Network {
            what: format!("demo: {} of {total} systems failed", failed.len()),
            reason: failed.join("; "),
        })
    }
}

/// A service context as `serve` builds it.
fn service(svc: Service) -> Arc<Ctx> {
    let quotes = Arc::new(BUILTIN_QUOTES.iter().map(|q| (*q).to_string()).collect());
    Arc::new(Ctx::new(
        svc,
        quotes,
        Arc::from("Thank you for connecting"),
        DaytimeFormat::Ctime,
        STEP,
    ))
}

/// Python's repr of an address tuple, as the tutorials print it.
fn py_addr(peer: &Peer) -> String {
    match peer {
        Peer::Inet(a) => format!("('{}', {})", a.ip(), a.port()),
        Peer::Unix(_) => peer.to_string(),
    }
}

/// Python's repr of a bytes object (`b'...'`).
fn py_bytes(data: &[u8]) -> String {
    format!("b{}", py_quoted(data))
}

/// Python's repr of a str.
fn py_str(text: &str) -> String {
    py_quoted(text.as_bytes())
}

/// Bytes in single quotes, escaped as Python escapes them.
fn py_quoted(data: &[u8]) -> String {
    format!("'{}'", crate::copy::escape_bytes(data, Some(b'\'')))
}

/// Waits for a server task; a panic in it is a failed exchange.
async fn join<T>(task: tokio::task::JoinHandle<Result<T>>) -> Result<T> {
    task.await.map_err(|e| Error::Local {
        what: "demo server".into(),
        reason: e.to_string(),
    })?
}

/// A TCP listener on a free loopback port, and its address.
fn tcp_listener() -> Result<(Listener, SocketAddr)> {
    let listener = bind::tcp(LOOPBACK, 16)?;
    let addr = listener.local_addr().unwrap_or(LOOPBACK);
    Ok((listener, addr))
}

/// Accepts one client and serves it with `svc`'s handler, logging the
/// connection with `log` (the tutorial's words).
async fn serve_one(
    listener: Listener,
    svc: Service,
    log: impl Fn(&Peer) -> String,
) -> Result<String> {
    let (stream, peer) = listener
        .accept()
        .await
        .map_err(|e| Error::io("accept", &e))?;
    let line = log(&peer);
    service(svc).serve(stream, &peer, "tcp").await;
    Ok(line)
}

async fn connect(addr: SocketAddr) -> Result<Stream> {
    let what = addr.to_string();
    Ok(Stream::Tcp(dial::tcp(&what, &[addr], None, STEP).await?))
}

/// Seed 001: the server greets each client and closes; the client prints
/// what it receives.
async fn greeting() -> Result<Exchange> {
    let mut ex = Exchange::new();
    let (listener, addr) = tcp_listener()?;
    ex.server(format!("listening on {addr}"));
    let server = tokio::spawn(serve_one(listener, Service::Banner, |peer| {
        format!("Got a connection from {}", py_addr(peer))
    }));
    let mut client = connect(addr).await?;
    let mut msg = Vec::new();
    client
        .read_to_end(&mut msg)
        .await
        .map_err(|e| Error::io("receive", &e))?;
    drop(client);
    ex.server(join(server).await?);
    ex.client(String::from_utf8_lossy(&msg));
    ex.ok = msg == b"Thank you for connecting";
    Ok(ex)
}

/// Seed 003: the server echoes until the client closes; the client sends
/// "Hello World" and prints the reply.
async fn tcp_echo() -> Result<Exchange> {
    use tokio::io::AsyncWriteExt;
    let mut ex = Exchange::new();
    let (listener, addr) = tcp_listener()?;
    let server = tokio::spawn(serve_one(listener, Service::Echo, |peer| {
        format!("Connected by {}", py_addr(peer))
    }));
    let mut client = connect(addr).await?;
    client
        .write_all(b"Hello World")
        .await
        .map_err(|e| Error::io("send", &e))?;
    client
        .shutdown()
        .await
        .map_err(|e| Error::io("shut down", &e))?;
    let mut data = Vec::new();
    client
        .read_to_end(&mut data)
        .await
        .map_err(|e| Error::io("receive", &e))?;
    ex.server(join(server).await?);
    ex.client(format!("Received : {}", py_bytes(&data)));
    ex.ok = data == b"Hello World";
    Ok(ex)
}

/// A UDP echo server answering `count` datagrams with netsmith's echo, the
/// tutorial's prints on the way.
async fn udp_echo_server(socket: Datagram, count: usize, verbose: bool) -> Result<Vec<String>> {
    let ctx = service(Service::Echo);
    let mut lines = Vec::new();
    let mut buf = vec![0u8; 4096];
    if verbose {
        lines.push("receiving...".to_string());
    }
    for _ in 0..count {
        let (n, peer) = socket
            .recv_from(&mut buf)
            .await
            .map_err(|e| Error::io("recvfrom", &e))?;
        lines.push(format!(
            "received {} from {}",
            py_bytes(&buf[..n]),
            py_addr(&peer)
        ));
        if let Some(reply) = ctx.answer(&buf[..n]) {
            socket
                .send_to(&reply, &peer)
                .await
                .map_err(|e| Error::io("sendto", &e))?;
            if verbose {
                lines.push(format!("sent {}", py_bytes(&reply)));
            }
        }
    }
    Ok(lines)
}

fn udp_server_socket() -> Result<(Datagram, SocketAddr)> {
    let socket = bind::udp(LOOPBACK)?;
    let addr = socket.local_addr().unwrap_or(LOOPBACK);
    Ok((socket, addr))
}

/// Seed 004, example 1: one datagram, echoed once.
async fn udp_echo_once() -> Result<Exchange> {
    let mut ex = Exchange::new();
    let (socket, addr) = udp_server_socket()?;
    let server = tokio::spawn(udp_echo_server(socket, 1, true));
    let client = dial::udp(&addr.to_string(), &[addr], None).await?;
    client
        .send(b"Hello World")
        .await
        .map_err(|e| Error::io("sendto", &e))?;
    let mut buf = vec![0u8; 4096];
    let n = client
        .recv(&mut buf)
        .await
        .map_err(|e| Error::io("recvfrom", &e))?;
    // In the order they happen: the server waits, the client sends and
    // waits, the server receives and answers.
    let mut server_lines = join(server).await?.into_iter();
    ex.server(server_lines.next().unwrap_or_default());
    ex.client("sending...");
    ex.client("receiving...");
    for line in server_lines {
        ex.server(line);
    }
    ex.client(format!(
        "{} received from {}",
        py_bytes(&buf[..n]),
        py_addr(&Peer::Inet(addr))
    ));
    ex.ok = &buf[..n] == b"Hello World";
    Ok(ex)
}

/// Seed 004, example 2: the server stays up; the client sends what a user
/// types (three lines here).
async fn udp_echo_persistent() -> Result<Exchange> {
    let mut ex = Exchange::new();
    let typed = ["hello", "are you still there?", "bye"];
    let (socket, addr) = udp_server_socket()?;
    let server = tokio::spawn(udp_echo_server(socket, typed.len(), false));
    let mut ok = true;
    let mut buf = vec![0u8; 4096];
    let mut replies = Vec::new();
    for text in typed {
        let client = dial::udp(&addr.to_string(), &[addr], None).await?;
        client
            .send(text.as_bytes())
            .await
            .map_err(|e| Error::io("sendto", &e))?;
        let n = client
            .recv(&mut buf)
            .await
            .map_err(|e| Error::io("recvfrom", &e))?;
        ok &= &buf[..n] == text.as_bytes();
        replies.push((
            text,
            format!(
                "{} received from {}",
                py_bytes(&buf[..n]),
                py_addr(&Peer::Inet(addr))
            ),
        ));
    }
    let server_lines = join(server).await?;
    for ((typed, reply), server_line) in replies.into_iter().zip(server_lines) {
        ex.client(format!("Text to send: {typed}"));
        ex.server(server_line);
        ex.client(reply);
    }
    ex.ok = ok;
    Ok(ex)
}

/// Seed 004: the quote server sends one quote and closes; the client reads
/// 4 bytes at a time and shows the message grow.
async fn qotd() -> Result<Exchange> {
    let mut ex = Exchange::new();
    let (listener, addr) = tcp_listener()?;
    let server = tokio::spawn(serve_one(listener, Service::Qotd, |peer| {
        format!("sent a quote to {}", py_addr(peer))
    }));
    let mut client = connect(addr).await?;
    let mut msg = Vec::new();
    let mut chunk = [0u8; 4];
    let mut reads = 0;
    loop {
        let n = client
            .read(&mut chunk)
            .await
            .map_err(|e| Error::io("recv", &e))?;
        if n == 0 {
            break;
        }
        reads += 1;
        msg.extend_from_slice(&chunk[..n]);
        if reads <= 3 {
            ex.client(format!("bytearray({})", py_bytes(&msg)));
        }
    }
    drop(client);
    ex.client(format!("... {reads} reads of at most 4 bytes ..."));
    ex.client(format!("bytearray({})", py_bytes(&msg)));
    ex.server(join(server).await?);
    ex.ok = msg.as_slice() == BUILTIN_QUOTES[0].as_bytes() && reads >= msg.len() / 4;
    Ok(ex)
}

/// Seed 004, "sockets with exceptions": a receiver with a timeout that no
/// one sends to prints "No connection!"; netsmith's `listen -u --timeout`
/// is that receiver.
async fn udp_timeout() -> Result<Exchange> {
    let mut ex = Exchange::new();
    let (socket, addr) = udp_server_socket()?;
    ex.server(format!(
        "waiting {} for a datagram on {addr} (netsmith listen -u --timeout {0})",
        crate::duration::show(RECV_TIMEOUT)
    ));
    let opts = crate::datagram::ServerOptions {
        timeout: Some(RECV_TIMEOUT),
        name: addr.to_string(),
        ..Default::default()
    };
    let result = crate::datagram::server(&socket, None, &mut tokio::io::sink(), &opts).await;
    match result {
        Err(Error::Silence(msg)) => {
            ex.server(format!("No connection! ({msg})"));
            ex.ok = true;
        }
        other => ex.server(format!("expected a timeout, got {other:?}")),
    }
    Ok(ex)
}

/// The tutorials' `socket.gethostname()` and
/// `socket.gethostbyname(hostname)`, as `netsmith resolve --hostname` does
/// them. The address must be this host's: a socket is bound to it, which
/// fails (and the step with it) when the name resolves elsewhere or not at
/// all.
async fn host_name() -> Result<Exchange> {
    let mut ex = Exchange::new();
    let name = dns_lookup::get_hostname().map_err(|e| Error::io("gethostname", &e))?;
    ex.client(format!("socket.gethostname() -> {}", py_str(&name)));
    let resolve = crate::net::Resolve {
        family: crate::net::Family::V4,
        numeric: false,
    };
    // Not typed: even an all-numeric host name is a name to look up.
    let host = crate::endpoint::parse_host(&name)
        .unwrap_or_else(|_| crate::endpoint::Host::Name(name.clone()));
    let ip = match resolve.answer(&host).await {
        Ok(answer) => answer.addrs[0],
        Err(e) => {
            ex.client(format!(
                "socket.gethostbyname({}) failed: {e}",
                py_str(&name)
            ));
            return Ok(ex);
        }
    };
    ex.client(format!(
        "socket.gethostbyname({}) -> {}",
        py_str(&name),
        py_str(&ip.to_string())
    ));
    match bind::udp(SocketAddr::new(ip, 0)) {
        Ok(_) => {
            ex.client(format!("bound a socket to {ip}: an address of this host"));
            ex.ok = true;
        }
        Err(e) => ex.client(format!("{ip} is not an address of this host: {e}")),
    }
    Ok(ex)
}

/// Seed 004's port scanner (a `connect_ex` loop over ports), as `netsmith
/// scan`: every port of 127.0.0.1, with three listeners of the demo's own
/// to find and one port just closed, which must be found closed. Loopback
/// only, as the tutorial's warning asks.
async fn port_scan() -> Result<Exchange> {
    let mut ex = Exchange::new();
    let mut listeners = Vec::new();
    let mut ours = Vec::new();
    for _ in 0..3 {
        let (listener, addr) = tcp_listener()?;
        ours.push(addr.port());
        listeners.push(listener);
    }
    let closed = tcp_listener()?.1.port();
    ours.sort_unstable();
    ex.server(format!(
        "listening on 127.0.0.1 ports {ours:?}; port {closed} opened and closed again"
    ));
    let started = std::time::Instant::now();
    let outcomes = crate::scan::scan(&[LOOPBACK.ip()], (1..=65535).collect()).await?;
    let elapsed = started.elapsed();
    drop(listeners);
    let mut open: Vec<u16> = outcomes
        .iter()
        .filter(|o| o.state == crate::scan::State::Open)
        .map(|o| o.port)
        .collect();
    open.sort_unstable();
    let others: Vec<u16> = open.iter().copied().filter(|p| !ours.contains(p)).collect();
    let closed_found = outcomes
        .iter()
        .any(|o| o.port == closed && o.state == crate::scan::State::Closed);
    ex.client(format!(
        "netsmith scan 127.0.0.1 -p-: {} ports in {} ms",
        outcomes.len(),
        elapsed.as_millis()
    ));
    ex.client(format!(
        "open: {:?} (the demo's), {} other{} on this host{}",
        open.iter().filter(|p| ours.contains(p)).collect::<Vec<_>>(),
        others.len(),
        if others.len() == 1 { "" } else { "s" },
        if others.is_empty() {
            String::new()
        } else {
            format!(" {others:?}")
        }
    ));
    ex.client(format!(
        "port {closed}: {}",
        if closed_found {
            "closed"
        } else {
            "not found closed"
        }
    ));
    ex.client("never scan a network without its owner's written permission: beyond loopback, netsmith scan needs --authorized");
    ex.ok = outcomes.len() == 65535 && ours.iter().all(|p| open.contains(p)) && closed_found;
    Ok(ex)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_reprs() {
        assert_eq!(py_bytes(b"Hello World"), "b'Hello World'");
        assert_eq!(py_bytes(b"it's\n\x00"), "b'it\\'s\\n\\x00'");
        assert_eq!(
            py_addr(&Peer::Inet("127.0.0.1:5".parse().unwrap())),
            "('127.0.0.1', 5)"
        );
    }
}
