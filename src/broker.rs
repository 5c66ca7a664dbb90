//! `listen --broker` and `listen --chat` (ncat's): a hub that copies every
//! client's bytes to every other client.
//!
//! As ncat does: many clients at once (`-k` is implied); what one client
//! sends goes to every other client, never back to itself; the server's
//! stdin goes to every client; nothing that clients send is written to
//! stdout (ncat's broker prints none of it either); stdin's EOF leaves the
//! clients connected; a client's EOF is its leaving. Every client has a
//! bounded queue in a [`Hub`]: one that stops reading is dropped after
//! [`crate::fanout::CLIENT_STALL`] and said on stderr, and the others go
//! on; one that vanishes mid-stream costs the others nothing.
//!
//! `--chat` adds ncat's chat: each client is named `<userN>` and what it
//! sends is relayed line by line, each line prefixed with its name; stdin
//! speaks as `<user0>`; joins and leaves are announced in ncat's words
//! ([`joined`], [`left`]). Two things differ, both for safety:
//!
//! - N counts clients from 1 and is never reused (ncat's N is the client's
//!   descriptor, which the next client takes over when one leaves, so a
//!   name could change hands mid-conversation).
//! - Control characters are escaped ([`escape_line`]) so that one client
//!   cannot drive another's terminal: ncat escapes them too (as `\ooo`)
//!   but lets a lone CR through, which can overwrite a line's `<userN>`
//!   prefix; netsmith escapes a CR that does not end a line, and also C1
//!   controls (U+0080 to U+009F, among them the 8-bit CSI) and bytes that
//!   are not UTF-8, while text in any script passes as it is (ncat escapes
//!   every byte above 127, so "héllo" arrives as `h\303\251llo`). Lines are
//!   framed whole (ncat prefixes each read, so a line that arrives in two
//!   pieces carries the name twice); a line longer than [`MAX_LINE`] is cut
//!   into lines of that length.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::AsyncReadExt;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::acl::Acl;
use crate::copy::{self, Activity, HexDump, Tap};
use crate::fanout::Hub;
use crate::net::{Listener, Peer, Stream};
use crate::stdio;
use crate::tls::Acceptor;

/// Which of ncat's two hubs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `--broker`: bytes as they are.
    Broker,
    /// `--chat`: named lines, announcements, control characters escaped.
    Chat,
}

/// The longest chat line relayed whole; a longer one is cut into lines of
/// this length, so that a client sending no newline cannot make its line
/// (and memory) grow without end.
pub const MAX_LINE: usize = 8192;

/// Bytes read from a client at once.
const READ_SIZE: usize = 64 * 1024;

/// How the hub serves its clients.
pub struct Options {
    pub mode: Mode,
    /// `--allow`/`--deny` and their files.
    pub acl: Acl,
    /// Clients served at once; more wait in the backlog.
    pub max_conns: usize,
    /// `-i`: a client idle this long (nothing either way) is closed.
    pub idle: Option<Duration>,
    /// `--hex`: dump what each client sends and is sent on stderr.
    pub hex: bool,
    /// Whether stdin is read (not with `--recv-only`).
    pub reads_stdin: bool,
    /// `--tls`: a handshake on each client first.
    pub tls: Option<Acceptor>,
}

/// Serves clients on `listener` until the process ends.
pub async fn serve(listener: &Listener, opts: Options) {
    let hub = Hub::new(match opts.mode {
        Mode::Broker => "--broker",
        Mode::Chat => "--chat",
    });
    if opts.reads_stdin {
        let (hub, mode) = (hub.clone(), opts.mode);
        tokio::spawn(async move {
            let mut lines = Lines::new(0);
            hub.feed(None, stdio::stdin_chunks(), |chunk| match mode {
                Mode::Broker => Some(chunk),
                Mode::Chat => lines.push(&chunk),
            })
            .await;
            if let Some(rest) = lines.finish() {
                hub.send(None, &rest).await;
            }
            // The clients stay: stdin was one voice among them.
        });
    }
    let opts = Arc::new(opts);
    let limit = Arc::new(Semaphore::new(opts.max_conns));
    let next_id = AtomicU64::new(1);
    let (tracker, forever) = (TaskTracker::new(), CancellationToken::new());
    crate::server::accept_loop(listener, limit, &tracker, &forever, |stream, peer| {
        if !crate::server::admitted(&opts.acl, &stream, &peer) {
            return None;
        }
        let id = next_id.fetch_add(1, Ordering::Relaxed);
        Some(client(hub.clone(), opts.clone(), stream, peer, id))
    })
    .await;
}

/// One client: its queue to its socket, its socket to the others, until
/// it leaves, is dropped or idles out.
async fn client(hub: Hub, opts: Arc<Options>, stream: Stream, peer: Peer, id: u64) {
    let shown = peer.to_string();
    tracing::info!("connection from {shown}");
    let stream = match &opts.tls {
        Some(acceptor) => match acceptor.accept(stream, &shown).await {
            Ok(stream) => stream,
            Err(e) => return tracing::warn!("{e}"),
        },
        None => stream,
    };
    let (joined, others) = hub.join(id, &shown);
    let chat = opts.mode == Mode::Chat;
    if chat {
        let line = joined_line(&address(&peer), id, &others);
        hub.send(None, &Bytes::from(line)).await;
    }
    let activity = Arc::new(Activity::default());
    let label = opts.hex.then(|| shown.clone());
    let (mut from_client, mut to_client) = tokio::io::split(stream);
    let writer = async {
        let hex = label.clone().map(|l| HexDump::new('>', Some(l)));
        let mut tap = Tap::new(false, hex, Some(activity.clone()));
        copy::pump(&mut stdio::reader(joined.chunks), &mut to_client, &mut tap).await
    };
    let reader = async {
        let mut hex = label.clone().map(|l| HexDump::new('<', Some(l)));
        let mut lines = Lines::new(id);
        let mut buf = BytesMut::with_capacity(READ_SIZE);
        loop {
            buf.reserve(READ_SIZE);
            match from_client.read_buf(&mut buf).await {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => return Err(e),
            }
            activity.touch();
            let chunk = buf.split().freeze();
            if let Some(hex) = &mut hex {
                hex.dump(&chunk);
            }
            let out = if chat {
                lines.push(&chunk)
            } else {
                Some(chunk)
            };
            if let Some(out) = out {
                hub.send(Some(id), &out).await;
            }
        }
        if let Some(rest) = lines.finish() {
            hub.send(Some(id), &rest).await;
        }
        Ok(())
    };
    let idle = async {
        match opts.idle {
            Some(limit) => activity.idle_for(limit).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        r = reader => match r {
            Ok(()) => tracing::info!("{shown} disconnected"),
            Err(e) => tracing::info!("{shown} left: {}", crate::error::describe_io(&e)),
        },
        r = writer => if let Err(e) = r {
            tracing::info!("{shown} left: {}", copy_failure(&e));
        },
        () = joined.dropped.cancelled() => {}
        () = idle => tracing::info!("{shown}: closed after {} idle", crate::duration::show(opts.idle.unwrap_or_default())),
    }
    hub.leave(id);
    if chat {
        hub.send(None, &Bytes::from(left(id))).await;
    }
}

/// The cause of a failed copy to a client, for the log.
fn copy_failure(e: &copy::CopyError) -> String {
    match e {
        copy::CopyError::Read(e) | copy::CopyError::Write(e) => crate::error::describe_io(e),
    }
}

/// A client's address as `--chat` shows it: the IP (IPv4 as such, even
/// through a dual-stack listener), or the Unix socket's name.
fn address(peer: &Peer) -> String {
    match peer {
        Peer::Inet(addr) => addr.ip().to_canonical().to_string(),
        Peer::Unix(_) => peer.to_string(),
    }
}

/// ncat's announcement of a join, sent to every client (the new one
/// included): who joined, and who was there already (`others`: ids and
/// peers, as [`Hub::join`] gives them).
pub fn joined_line(addr: &str, id: u64, others: &[(u64, String)]) -> String {
    let list = if others.is_empty() {
        "nobody".to_string()
    } else {
        others
            .iter()
            .map(|(n, peer)| {
                let ip = peer
                    .parse::<SocketAddr>()
                    .map_or_else(|_| peer.clone(), |a| a.ip().to_canonical().to_string());
                format!("{ip} as <user{n}>")
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "<announce> {addr} is connected as <user{id}>.\n<announce> already connected: {list}.\n"
    )
}

/// ncat's announcement of a leave, sent to the clients that stay.
pub fn left(id: u64) -> String {
    format!("<announce> <user{id}> is disconnected.\n")
}

/// One chat voice's bytes cut into lines, each escaped and prefixed with
/// its `<userN>` name.
pub struct Lines {
    prefix: Vec<u8>,
    /// A line begun, not yet ended.
    partial: Vec<u8>,
}

impl Lines {
    /// The lines of user `id` (0 is stdin).
    pub fn new(id: u64) -> Lines {
        Lines {
            prefix: format!("<user{id}> ").into_bytes(),
            partial: Vec::new(),
        }
    }

    /// The lines that `data` completes, framed; `None` if none is complete.
    pub fn push(&mut self, mut data: &[u8]) -> Option<Bytes> {
        let mut out = Vec::new();
        while !data.is_empty() {
            let room = MAX_LINE - self.partial.len();
            let take = match data.iter().take(room).position(|&b| b == b'\n') {
                Some(at) => at + 1,
                None => data.len().min(room),
            };
            self.partial.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.partial.ends_with(b"\n") || self.partial.len() == MAX_LINE {
                self.frame(&mut out);
            }
        }
        (!out.is_empty()).then(|| Bytes::from(out))
    }

    /// The line left unfinished at the end (with a newline added).
    pub fn finish(&mut self) -> Option<Bytes> {
        let mut out = Vec::new();
        if !self.partial.is_empty() {
            self.frame(&mut out);
        }
        (!out.is_empty()).then(|| Bytes::from(out))
    }

    fn frame(&mut self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.prefix);
        escape_line(&self.partial, out);
        self.partial.clear();
    }
}

/// Appends `line` to `out` with its control characters escaped as ncat
/// writes them (`\033`, octal, one per byte) so that it cannot drive a
/// terminal: printable text of any script and tabs pass; the line's end
/// (LF or CRLF) is kept, and added when missing; every other C0 control,
/// DEL, a CR not ending the line, C1 controls (U+0080 to U+009F) and bytes
/// that are not UTF-8 are escaped.
pub fn escape_line(line: &[u8], out: &mut Vec<u8>) {
    use std::io::Write as _;
    let (body, end): (&[u8], &[u8]) = if let Some(body) = line.strip_suffix(b"\r\n") {
        (body, b"\r\n")
    } else if let Some(body) = line.strip_suffix(b"\n") {
        (body, b"\n")
    } else {
        (line, b"\n")
    };
    let octal = |bytes: &[u8], out: &mut Vec<u8>| {
        for b in bytes {
            let _ = write!(out, "\\{b:03o}");
        }
    };
    for chunk in body.utf8_chunks() {
        for c in chunk.valid().chars() {
            let mut utf8 = [0; 4];
            let bytes = c.encode_utf8(&mut utf8).as_bytes();
            if c == '\t' || !c.is_control() {
                out.extend_from_slice(bytes);
            } else {
                octal(bytes, out);
            }
        }
        octal(chunk.invalid(), out);
    }
    out.extend_from_slice(end);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn escaped(line: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        escape_line(line, &mut out);
        out
    }

    #[test]
    fn control_characters_are_escaped_as_ncat_does_and_more() {
        // As ncat: ESC and BEL in octal, CRLF kept.
        assert_eq!(escaped(b"\x1b[31mred\x07\r\n"), b"\\033[31mred\\007\r\n");
        // Beyond ncat: a CR that would overwrite the name, C1 CSI, bad UTF-8.
        assert_eq!(escaped(b"hi\r<user9> me\n"), b"hi\\015<user9> me\n");
        assert_eq!(escaped("a\u{9b}2J\n".as_bytes()), b"a\\302\\2332J\n");
        assert_eq!(escaped(b"\xff\xfe\x00\x7f\n"), b"\\377\\376\\000\\177\n");
        // Text of any script, tabs and backslashes pass; a missing end is added.
        assert_eq!(
            escaped("h\u{e9}llo\tw\\n".as_bytes()),
            "h\u{e9}llo\tw\\n\n".as_bytes()
        );
    }

    #[test]
    fn lines_are_framed_whole_and_long_ones_cut() {
        let mut lines = Lines::new(4);
        assert_eq!(lines.push(b"par"), None);
        assert_eq!(
            lines.push(b"tial\nnext\r\nrest").unwrap(),
            &b"<user4> partial\n<user4> next\r\n"[..]
        );
        assert_eq!(lines.finish().unwrap(), &b"<user4> rest\n"[..]);
        assert_eq!(lines.finish(), None);
        let long = vec![b'x'; MAX_LINE + 3];
        let out = lines.push(&long).unwrap();
        assert_eq!(out.len(), "<user4> ".len() + MAX_LINE + 1);
        assert_eq!(lines.finish().unwrap(), &b"<user4> xxx\n"[..]);
    }

    #[test]
    fn announcements_read_as_ncat_writes_them() {
        assert_eq!(
            joined_line("127.0.0.1", 1, &[]),
            "<announce> 127.0.0.1 is connected as <user1>.\n<announce> already connected: nobody.\n"
        );
        let others = [
            (1, "127.0.0.1:40000".to_string()),
            (2, "[::ffff:127.0.0.2]:40001".to_string()),
        ];
        assert_eq!(
            joined_line("::1", 3, &others),
            "<announce> ::1 is connected as <user3>.\n<announce> already connected: \
             127.0.0.1 as <user1>, 127.0.0.2 as <user2>.\n"
        );
        assert_eq!(left(2), "<announce> <user2> is disconnected.\n");
    }
}
