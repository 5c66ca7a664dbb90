//! pcap files: `-w` writes classic pcap (`LINKTYPE_ETHERNET`, microsecond
//! timestamps: the format every version of tcpdump, tshark and Wireshark
//! reads), `-r` reads classic pcap in either byte order and resolution and
//! pcapng (what tshark and dumpcap write by default).
//!
//! Classic pcap is written and read here: a 24-byte file header and a
//! 16-byte record header per frame. The pcap-file crate (2.0) was tried
//! for it and rejects every record whose wire length exceeds the snap
//! length, which is every frame a short `-s` cut, on both read and write.
//! pcapng is read here too ([`PcapNg`]): pcap-file 2.0 refused files that
//! tshark and tcpdump read (custom or unknown options, option lists with
//! no end marker, an `if_tzone` of the spec's four bytes) and took every
//! timestamp as nanoseconds whatever the interface's `if_tsresol` said.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read as _, Seek as _, SeekFrom, Write as _};
use std::path::Path;
use std::time::{Duration, SystemTime};

use super::decode::LinkType;
use crate::{Error, Result};

/// One frame read from a file.
#[derive(Debug)]
pub struct Record {
    pub time: SystemTime,
    pub link: Option<LinkType>,
    pub wire_len: usize,
    pub data: Vec<u8>,
}

/// The link types the decoder knows, from pcap's `LINKTYPE_*` numbers.
fn link_type(linktype: u32) -> Option<LinkType> {
    match linktype {
        1 => Some(LinkType::Ethernet),
        101 | 228 | 229 => Some(LinkType::RawIp),
        113 => Some(LinkType::LinuxSll),
        _ => None,
    }
}

fn bad_file(path: &Path, e: &impl std::fmt::Display) -> Error {
    Error::Local {
        what: format!("read {}", path.display()),
        reason: format!("not a readable pcap or pcapng file: {e}"),
    }
}

/// Classic pcap's magic number, microsecond timestamps.
const MAGIC_MICROS: u32 = 0xa1b2_c3d4;
/// Classic pcap's magic number, nanosecond timestamps.
const MAGIC_NANOS: u32 = 0xa1b2_3c4d;
/// The largest frame a record may hold: more means a damaged file, and
/// reading it would only allocate.
const MAX_RECORD: u32 = 1 << 20;

/// A classic pcap file being read.
pub struct Classic {
    file: BufReader<File>,
    big_endian: bool,
    /// Nanoseconds per unit of the records' fraction field.
    frac_ns: u32,
    link: Option<LinkType>,
}

impl Classic {
    fn u32(&self, b: [u8; 4]) -> u32 {
        if self.big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }
    }
}

/// The frames of a pcap or pcapng file, in order.
pub enum Reader {
    Pcap(Classic),
    PcapNg(PcapNg),
}

impl Reader {
    /// Opens `path`, telling the formats apart by their magic number.
    pub fn open(path: &Path) -> Result<Self> {
        let mut file = File::open(path)
            .map(BufReader::new)
            .map_err(|e| Error::io(format!("open {}", path.display()), &e))?;
        let mut header = [0u8; 24];
        file.read_exact(&mut header).map_err(|e| {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                bad_file(path, &"too short for a pcap file header (24 bytes)")
            } else {
                bad_file(path, &e)
            }
        })?;
        if header[..4] == SHB_TYPE.to_le_bytes() {
            file.seek(SeekFrom::Start(0))
                .map_err(|e| bad_file(path, &e))?;
            return Ok(Reader::PcapNg(PcapNg {
                file,
                big_endian: false,
                interfaces: Vec::new(),
            }));
        }
        let magic = [header[0], header[1], header[2], header[3]];
        let (big_endian, frac_ns) = match (u32::from_le_bytes(magic), u32::from_be_bytes(magic)) {
            (MAGIC_MICROS, _) => (false, 1000),
            (MAGIC_NANOS, _) => (false, 1),
            (_, MAGIC_MICROS) => (true, 1000),
            (_, MAGIC_NANOS) => (true, 1),
            _ => return Err(bad_file(path, &"unknown magic number")),
        };
        let mut c = Classic {
            file,
            big_endian,
            frac_ns,
            link: None,
        };
        // The link type is the low 16 bits of the last header field.
        let linktype = c.u32([header[20], header[21], header[22], header[23]]) & 0xffff;
        c.link = link_type(linktype);
        Ok(Reader::Pcap(c))
    }

    /// The next frame, `None` at the end; a damaged file is an error.
    pub fn next_record(&mut self, path: &Path) -> Result<Option<Record>> {
        match self {
            Reader::Pcap(c) => {
                let mut h = [0u8; 16];
                match c.file.read_exact(&mut h) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
                    Err(e) => return Err(bad_file(path, &e)),
                }
                let field = |i: usize| c.u32([h[i], h[i + 1], h[i + 2], h[i + 3]]);
                let (secs, frac, incl, orig) = (field(0), field(4), field(8), field(12));
                if incl > MAX_RECORD {
                    return Err(bad_file(path, &format!("a record claims {incl} bytes")));
                }
                let mut data = vec![0u8; incl as usize];
                c.file
                    .read_exact(&mut data)
                    .map_err(|e| bad_file(path, &e))?;
                let time = SystemTime::UNIX_EPOCH
                    + Duration::from_secs(u64::from(secs))
                    + Duration::from_nanos(u64::from(frac) * u64::from(c.frac_ns));
                Ok(Some(Record {
                    time,
                    link: c.link,
                    wire_len: orig.max(incl) as usize,
                    data,
                }))
            }
            Reader::PcapNg(ng) => ng.next_record().map_err(|e| bad_file(path, &e)),
        }
    }
}

/// pcapng's Section Header Block type, the same in either byte order.
const SHB_TYPE: u32 = 0x0A0D_0D0A;
/// The byte-order magic inside a Section Header Block.
const BYTE_ORDER_MAGIC: u32 = 0x1A2B_3C4D;
/// Interface Description, Enhanced Packet, Simple Packet and the
/// obsolete Packet Block.
const IDB_TYPE: u32 = 1;
const OPB_TYPE: u32 = 2;
const SPB_TYPE: u32 = 3;
const EPB_TYPE: u32 = 6;
/// `if_tsresol`, the one option the reader needs.
const IF_TSRESOL: u16 = 9;

/// A pcapng file being read (draft-ietf-opsawg-pcapng). Only what the
/// frames need is read: each section's byte order, each interface's link
/// type and timestamp resolution, and the packet blocks. Every other
/// block, and every option but `if_tsresol`, is skipped by its length, as
/// the spec requires of a reader: custom options (2988, 2989, 19372,
/// 19373), options this reader does not know, strings that are not UTF-8,
/// and option lists without `opt_endofopt` all read as tshark reads them.
/// (pcap-file 2.0, used before, refused files with any of these.)
pub struct PcapNg {
    file: BufReader<File>,
    /// The current section's byte order.
    big_endian: bool,
    /// Link type and nanoseconds per timestamp unit, by interface id.
    /// Each interface's link type and timestamp units per second.
    interfaces: Vec<(Option<LinkType>, u128)>,
}

impl PcapNg {
    fn u16(&self, b: &[u8], at: usize) -> u16 {
        let b = [b[at], b[at + 1]];
        if self.big_endian {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        }
    }

    fn u32(&self, b: &[u8], at: usize) -> u32 {
        let b = [b[at], b[at + 1], b[at + 2], b[at + 3]];
        if self.big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }
    }

    /// The next block's type and body (between the two length fields);
    /// `None` at the end of the file.
    fn next_block(&mut self) -> std::result::Result<Option<(u32, Vec<u8>)>, String> {
        let mut head = [0u8; 8];
        match self.file.read_exact(&mut head[..4]) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(e.to_string()),
        }
        self.file
            .read_exact(&mut head[4..])
            .map_err(|_| "a block is cut short".to_string())?;
        let raw_type = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
        if raw_type == SHB_TYPE {
            // A new section says its own byte order.
            let mut magic = [0u8; 4];
            self.file
                .read_exact(&mut magic)
                .map_err(|_| "a section header is cut short".to_string())?;
            self.big_endian = match u32::from_le_bytes(magic) {
                BYTE_ORDER_MAGIC => false,
                m if m.swap_bytes() == BYTE_ORDER_MAGIC => true,
                _ => return Err("a section header has no byte-order magic".into()),
            };
            self.interfaces.clear();
            let len = self.u32(&head, 4);
            let body = self.body(len, 4)?;
            return Ok(Some((SHB_TYPE, body)));
        }
        let block_type = self.u32(&head, 0);
        let len = self.u32(&head, 4);
        Ok(Some((block_type, self.body(len, 0)?)))
    }

    /// Reads the rest of a block of total length `len` whose first
    /// `already` body bytes were read; checks the trailing length.
    fn body(&mut self, len: u32, already: usize) -> std::result::Result<Vec<u8>, String> {
        if len < 12 + already as u32 || !len.is_multiple_of(4) || len > MAX_RECORD + 4096 {
            return Err(format!("a block claims a length of {len} bytes"));
        }
        let mut rest = vec![0u8; len as usize - 8 - already];
        self.file
            .read_exact(&mut rest)
            .map_err(|_| "a block is cut short".to_string())?;
        let trailer = self.u32(&rest, rest.len() - 4);
        if trailer != len {
            return Err(format!(
                "a block's trailing length ({trailer}) differs from its leading one ({len})"
            ));
        }
        rest.truncate(rest.len() - 4);
        Ok(rest)
    }

    /// `if_tsresol` among an interface's options, if present; anything
    /// else (or a damaged option list) is passed over.
    fn tsresol(&self, mut options: &[u8]) -> Option<u8> {
        while options.len() >= 4 {
            let (code, len) = (self.u16(options, 0), usize::from(self.u16(options, 2)));
            if code == 0 {
                break;
            }
            let value = options.get(4..4 + len)?;
            if code == IF_TSRESOL && len == 1 {
                return Some(value[0]);
            }
            options = options
                .get(4 + len.next_multiple_of(4)..)
                .unwrap_or_default();
        }
        None
    }

    /// A packet's frame: `captured` bytes of `body` from `at`.
    fn frame(body: &[u8], at: usize, captured: u32) -> std::result::Result<Vec<u8>, String> {
        body.get(at..at + captured as usize)
            .map(<[u8]>::to_vec)
            .ok_or_else(|| format!("a packet claims {captured} bytes, more than its block holds"))
    }

    fn next_record(&mut self) -> std::result::Result<Option<Record>, String> {
        loop {
            let Some((block_type, body)) = self.next_block()? else {
                return Ok(None);
            };
            match block_type {
                IDB_TYPE if body.len() >= 8 => {
                    let link = link_type(u32::from(self.u16(&body, 0)));
                    let per_second = self.tsresol(&body[8..]).map_or(1_000_000, units_per_second);
                    self.interfaces.push((link, per_second));
                }
                EPB_TYPE | OPB_TYPE if body.len() >= 20 => {
                    let interface = if block_type == EPB_TYPE {
                        self.u32(&body, 0)
                    } else {
                        u32::from(self.u16(&body, 0))
                    };
                    let (link, per_second) = self
                        .interfaces
                        .get(interface as usize)
                        .copied()
                        .unwrap_or((None, 1_000_000));
                    let units = u64::from(self.u32(&body, 4)) << 32 | u64::from(self.u32(&body, 8));
                    let nanos = timestamp_ns(units, per_second);
                    let captured = self.u32(&body, 12);
                    return Ok(Some(Record {
                        time: SystemTime::UNIX_EPOCH
                            + Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX)),
                        link,
                        wire_len: self.u32(&body, 16).max(captured) as usize,
                        data: Self::frame(&body, 20, captured)?,
                    }));
                }
                SPB_TYPE if body.len() >= 4 => {
                    let link = self.interfaces.first().and_then(|i| i.0);
                    let wire_len = self.u32(&body, 0);
                    let captured = wire_len.min(body.len() as u32 - 4);
                    return Ok(Some(Record {
                        time: SystemTime::UNIX_EPOCH,
                        link,
                        wire_len: wire_len as usize,
                        data: Self::frame(&body, 4, captured)?,
                    }));
                }
                IDB_TYPE | EPB_TYPE | OPB_TYPE | SPB_TYPE => {
                    return Err(format!("a block of type {block_type} is too short"));
                }
                _ => {}
            }
        }
    }
}

/// Timestamp units per second for a pcapng `if_tsresol` value: a power
/// of ten (high bit clear) or of two (high bit set). Kept as a count, not
/// as nanoseconds per unit, which is no whole number for units finer than
/// a nanosecond or for powers of two.
fn units_per_second(resol: u8) -> u128 {
    let exp = u32::from(resol & 0x7f);
    let base: u128 = if resol & 0x80 == 0 { 10 } else { 2 };
    base.checked_pow(exp).unwrap_or(u128::MAX)
}

/// A timestamp of `units` at `per_second` units per second, in nanoseconds.
fn timestamp_ns(units: u64, per_second: u128) -> u128 {
    let units = u128::from(units);
    let per_second = per_second.max(1);
    // Whole seconds first, so that neither product can overflow.
    units / per_second * 1_000_000_000 + units % per_second * 1_000_000_000 / per_second
}

/// A classic pcap file being written.
pub struct Writer {
    file: BufWriter<File>,
    path: String,
}

impl Writer {
    /// Creates (or truncates) `path` with a pcap header for Ethernet frames.
    pub fn create(path: &Path, snaplen: usize) -> Result<Self> {
        let file = File::create(path).map_err(|e| Error::Local {
            what: format!("create {}", path.display()),
            reason: crate::error::describe_io(&e),
        })?;
        let mut w = Writer {
            file: BufWriter::new(file),
            path: path.display().to_string(),
        };
        let mut header = Vec::with_capacity(24);
        header.extend(MAGIC_MICROS.to_ne_bytes());
        header.extend(2u16.to_ne_bytes()); // version 2.4
        header.extend(4u16.to_ne_bytes());
        header.extend([0u8; 8]); // time zone offset and accuracy: always 0
        header.extend(u32::try_from(snaplen).unwrap_or(u32::MAX).to_ne_bytes());
        header.extend(LINKTYPE_ETHERNET.to_ne_bytes());
        w.put(&header)?;
        Ok(w)
    }

    /// Appends one frame.
    pub fn write(&mut self, time: SystemTime, wire_len: usize, data: &[u8]) -> Result<()> {
        let ts = time
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        let mut h = [0u8; 16];
        // pcap's seconds field is 32 bits (unsigned, good until 2106).
        h[..4].copy_from_slice(
            &u32::try_from(ts.as_secs())
                .unwrap_or(u32::MAX)
                .to_ne_bytes(),
        );
        h[4..8].copy_from_slice(&ts.subsec_micros().to_ne_bytes());
        h[8..12].copy_from_slice(&u32::try_from(data.len()).unwrap_or(u32::MAX).to_ne_bytes());
        h[12..].copy_from_slice(&u32::try_from(wire_len).unwrap_or(u32::MAX).to_ne_bytes());
        self.put(&h)?;
        self.put(data)
    }

    fn put(&mut self, bytes: &[u8]) -> Result<()> {
        self.file.write_all(bytes).map_err(|e| Error::Local {
            what: format!("write {}", self.path),
            reason: crate::error::describe_io(&e),
        })
    }

    /// Pushes the buffered frames to the file and closes it.
    pub fn finish(mut self) -> Result<()> {
        self.file.flush().map_err(|e| Error::Local {
            what: format!("write {}", self.path),
            reason: crate::error::describe_io(&e),
        })
    }
}

/// pcap's link type for Ethernet II frames.
const LINKTYPE_ETHERNET: u32 = 1;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_units() {
        let ns = |units, resol| timestamp_ns(units, units_per_second(resol));
        // Microseconds (the default), nanoseconds, milliseconds.
        assert_eq!(ns(1_500_000, 6), 1_500_000_000);
        assert_eq!(ns(7, 9), 7);
        assert_eq!(ns(3, 3), 3_000_000);
        // Picoseconds: finer than a nanosecond, not one per unit.
        assert_eq!(ns(1_700_000_000_123_456_789, 12), 1_700_000_000_123_456);
        // 2^-10 s and 2^-30 s units: exact, not rounded per unit.
        assert_eq!(ns(1024 * 5 + 512, 0x8a), 5_500_000_000);
        assert_eq!(ns(1 << 30, 0x9e), 1_000_000_000);
        assert_eq!(ns(1_700_000_000u64 << 30, 0x9e), 1_700_000_000_000_000_000);
        // Absurd resolutions do not overflow.
        assert_eq!(ns(u64::MAX, 0x7f), 0);
        assert_eq!(ns(u64::MAX, 0), u128::from(u64::MAX) * 1_000_000_000);
    }

    #[test]
    fn hardening_20_damaged_pcapng_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.pcapng");
        let shb = |len: u32, trailer: u32| {
            let mut b = Vec::new();
            b.extend(0x0A0D_0D0Au32.to_le_bytes());
            b.extend(len.to_le_bytes());
            b.extend(0x1A2B_3C4Du32.to_be_bytes()); // a big-endian section
            b.extend([0u8; 12]);
            b.extend(trailer.to_le_bytes());
            b
        };
        for (bytes, want) in [
            (shb(28, 28), "claims a length"),
            (shb(28u32.swap_bytes(), 0), "differs"),
            (
                shb(28u32.swap_bytes(), 28u32.swap_bytes())[..20].to_vec(),
                "cut short",
            ),
        ] {
            let mut bytes = bytes;
            bytes.resize(bytes.len().max(24), 0);
            std::fs::write(&path, &bytes).unwrap();
            let mut r = Reader::open(&path).unwrap();
            let mut outcome = Ok(None);
            for _ in 0..4 {
                outcome = r.next_record(&path);
                if outcome.is_err() {
                    break;
                }
            }
            let err = outcome.unwrap_err().to_string();
            assert!(err.contains(want), "{want}: {err}");
        }
    }

    #[test]
    fn written_frames_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.pcap");
        let mut w = Writer::create(&path, 100).unwrap();
        let t = SystemTime::UNIX_EPOCH + Duration::from_micros(1_700_000_000_123_456);
        w.write(t, 300, &[1, 2, 3]).unwrap();
        w.finish().unwrap();
        let mut r = Reader::open(&path).unwrap();
        let rec = r.next_record(&path).unwrap().unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 24 + 16 + 3);
        assert_eq!((rec.time, rec.wire_len, rec.data), (t, 300, vec![1, 2, 3]));
        assert_eq!(rec.link, Some(LinkType::Ethernet));
        assert!(r.next_record(&path).unwrap().is_none());
    }
}
