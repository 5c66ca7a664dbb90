//! The copy loop: the one place bytes move from a reader to a writer.
//!
//! Every command that moves a stream (connect, listen, and later relay)
//! goes through [`pump`], so its buffer size, its LF-to-CRLF rule, its
//! hexdump and its idle accounting are written once. A pump never shuts
//! down its writer itself: when to half-close is the caller's policy
//! (see `session`).

use std::io::{self, Write as _};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

/// Bytes read per call: large enough that a 1 GiB transfer costs few
/// syscalls, small enough to stay in L2 cache.
pub const BUF_SIZE: usize = 64 * 1024;

/// Which side of a pump failed; the two mean different things to a user
/// (a reset peer versus a closed stdout).
#[derive(Debug)]
pub enum CopyError {
    Read(io::Error),
    Write(io::Error),
}

/// When bytes last moved, in either direction of a connection, for
/// `--idle-timeout`.
#[derive(Debug)]
pub struct Activity {
    start: Instant,
    last_ms: AtomicU64,
}

impl Default for Activity {
    fn default() -> Self {
        Activity {
            start: Instant::now(),
            last_ms: AtomicU64::new(0),
        }
    }
}

impl Activity {
    /// Records that bytes moved now.
    pub fn touch(&self) {
        let ms = self.start.elapsed().as_millis() as u64;
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    /// Completes once nothing has moved for `limit`.
    pub async fn idle_for(&self, limit: Duration) {
        loop {
            let last = self.start + Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
            let deadline = last + limit;
            if Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep_until(deadline).await;
        }
    }
}

/// What a pump does to the bytes besides moving them.
#[derive(Debug, Default)]
pub struct Tap {
    /// `--crlf`: turn each LF not already preceded by CR into CRLF.
    pub crlf: bool,
    /// `--hex`: dump what moves to stderr.
    pub hex: Option<HexDump>,
    /// Shared with the other direction, for `--idle-timeout`.
    pub activity: Option<Arc<Activity>>,
    /// The last byte seen was CR (a CRLF may straddle two reads).
    last_cr: bool,
}

impl Tap {
    /// A tap with the given conversions and accounting.
    pub fn new(crlf: bool, hex: Option<HexDump>, activity: Option<Arc<Activity>>) -> Self {
        Tap {
            crlf,
            hex,
            activity,
            last_cr: false,
        }
    }
}

/// Copies `reader` to `writer` until EOF; returns the bytes read.
pub async fn pump<R, W>(reader: &mut R, writer: &mut W, tap: &mut Tap) -> Result<u64, CopyError>
where
    R: AsyncRead + Unpin + ?Sized,
    W: AsyncWrite + Unpin + ?Sized,
{
    let mut buf = vec![0u8; BUF_SIZE];
    let mut converted = Vec::new();
    let mut total = 0u64;
    loop {
        let n = reader.read(&mut buf).await.map_err(CopyError::Read)?;
        if n == 0 {
            writer.flush().await.map_err(CopyError::Write)?;
            return Ok(total);
        }
        total += n as u64;
        if let Some(activity) = &tap.activity {
            activity.touch();
        }
        let data = if tap.crlf {
            tap.last_cr = lf_to_crlf(&buf[..n], tap.last_cr, &mut converted);
            &converted[..]
        } else {
            &buf[..n]
        };
        if let Some(hex) = &mut tap.hex {
            hex.dump(data);
        }
        write_all(writer, data, tap.activity.as_deref()).await?;
    }
}

/// `write_all`, recording progress on every partial write, so that a slow
/// but live peer never looks idle.
pub async fn write_all<W>(
    writer: &mut W,
    mut data: &[u8],
    activity: Option<&Activity>,
) -> Result<(), CopyError>
where
    W: AsyncWrite + Unpin + ?Sized,
{
    while !data.is_empty() {
        let n = writer.write(data).await.map_err(CopyError::Write)?;
        if n == 0 {
            return Err(CopyError::Write(io::ErrorKind::WriteZero.into()));
        }
        if let Some(activity) = activity {
            activity.touch();
        }
        data = &data[n..];
    }
    Ok(())
}

/// Appends `data` to `out` (cleared first) with bare LFs turned into CRLF;
/// returns whether `data` ended in CR, for the next call.
fn lf_to_crlf(data: &[u8], mut last_cr: bool, out: &mut Vec<u8>) -> bool {
    out.clear();
    out.reserve(data.len() + data.len() / 16);
    for &b in data {
        if b == b'\n' && !last_cr {
            out.push(b'\r');
        }
        out.push(b);
        last_cr = b == b'\r';
    }
    last_cr
}

/// A hexdump of one direction of a connection, as `hexdump -C` lays it
/// out, each line prefixed with the direction (`>` sent, `<` received) and
/// the peer when several are open.
#[derive(Debug)]
pub struct HexDump {
    /// `>` for bytes sent, `<` for bytes received.
    direction: char,
    /// Names the connection when more than one may be open (`listen -k`).
    label: Option<String>,
    /// Offset of the next byte in this direction.
    offset: u64,
}

impl HexDump {
    /// A dump of the sent (`'>'`) or received (`'<'`) direction.
    pub fn new(direction: char, label: Option<String>) -> Self {
        HexDump {
            direction,
            label,
            offset: 0,
        }
    }

    /// Writes `data` to stderr as hexdump lines.
    pub fn dump(&mut self, data: &[u8]) {
        let text = self.format(data);
        let _ = io::stderr().lock().write_all(text.as_bytes());
    }

    fn format(&mut self, data: &[u8]) -> String {
        use std::fmt::Write as _;
        let mut out = String::with_capacity(data.len() * 5);
        for line in data.chunks(16) {
            if let Some(label) = &self.label {
                let _ = write!(out, "[{label}] ");
            }
            let _ = write!(out, "{} {:08x}  ", self.direction, self.offset);
            for i in 0..16 {
                match line.get(i) {
                    Some(b) => {
                        let _ = write!(out, "{b:02x} ");
                    }
                    None => out.push_str("   "),
                }
                if i == 7 {
                    out.push(' ');
                }
            }
            out.push_str(" |");
            out.extend(line.iter().map(|&b| {
                if b.is_ascii_graphic() || b == b' ' {
                    b as char
                } else {
                    '.'
                }
            }));
            out.push_str("|\n");
            self.offset += line.len() as u64;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crlf_converts_bare_lf_only_even_across_reads() {
        let mut out = Vec::new();
        let cr = lf_to_crlf(b"a\nb\r\nc\r", false, &mut out);
        assert_eq!(out, b"a\r\nb\r\nc\r");
        assert!(cr);
        lf_to_crlf(b"\nd\n", cr, &mut out);
        assert_eq!(out, b"\nd\r\n");
    }

    #[test]
    fn hexdump_lines_carry_direction_offset_and_ascii() {
        let mut h = HexDump::new('>', None);
        let text = h.format(b"Hello, World!\n\x00\x01\x02");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "> 00000000  48 65 6c 6c 6f 2c 20 57  6f 72 6c 64 21 0a 00 01  |Hello, World!...|"
        );
        assert!(lines[1].starts_with("> 00000010  02 "), "{}", lines[1]);
        assert!(lines[1].ends_with("|.|"));
        let again = h.format(b"x");
        assert!(again.starts_with("> 00000011  78"), "{again}");
    }

    #[tokio::test]
    async fn pump_moves_everything_and_counts() {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let mut reader = &data[..];
        let mut out = Vec::new();
        let n = pump(&mut reader, &mut out, &mut Tap::default())
            .await
            .unwrap();
        assert_eq!(n, data.len() as u64);
        assert_eq!(out, data);
    }
}
