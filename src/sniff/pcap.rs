//! pcap files: `-w` writes classic pcap (`LINKTYPE_ETHERNET`, microsecond
//! timestamps: the format every version of tcpdump, tshark and Wireshark
//! reads), `-r` reads classic pcap in either byte order and resolution and
//! pcapng (what tshark and dumpcap write by default).
//!
//! Classic pcap is written and read here: a 24-byte file header and a
//! 16-byte record header per frame. The pcap-file crate (2.0) was tried
//! for it and rejects every record whose wire length exceeds the snap
//! length, which is every frame a short `-s` cut, on both read and write.
//! pcapng is read with pcap-file (blocks, options, per-interface link
//! types), correcting its timestamps: it takes the raw count as
//! nanoseconds whatever the interface's `if_tsresol` says.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read as _, Seek as _, SeekFrom, Write as _};
use std::path::Path;
use std::time::{Duration, SystemTime};

use pcap_file::DataLink;
use pcap_file::pcapng::{Block, PcapNgReader};

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

fn link_type(d: DataLink) -> Option<LinkType> {
    match d {
        DataLink::ETHERNET => Some(LinkType::Ethernet),
        DataLink::RAW | DataLink::IPV4 | DataLink::IPV6 => Some(LinkType::RawIp),
        DataLink::LINUX_SLL => Some(LinkType::LinuxSll),
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
    PcapNg {
        reader: PcapNgReader<BufReader<File>>,
        /// Link type and nanoseconds per timestamp unit, by interface id.
        interfaces: Vec<(Option<LinkType>, u64)>,
    },
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
        if header[..4] == [0x0a, 0x0d, 0x0d, 0x0a] {
            file.seek(SeekFrom::Start(0))
                .map_err(|e| bad_file(path, &e))?;
            let reader = PcapNgReader::new(file).map_err(|e| bad_file(path, &e))?;
            return Ok(Reader::PcapNg {
                reader,
                interfaces: Vec::new(),
            });
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
        c.link = link_type(DataLink::from(linktype));
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
            Reader::PcapNg { reader, interfaces } => loop {
                let block = match reader.next_block() {
                    None => return Ok(None),
                    Some(Err(e)) => return Err(bad_file(path, &e)),
                    Some(Ok(b)) => b,
                };
                match block {
                    Block::InterfaceDescription(idb) => {
                        let mut unit_ns = 1000;
                        for opt in &idb.options {
                            if let pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionOption::IfTsResol(r) = opt {
                                unit_ns = ts_unit_ns(*r);
                            }
                        }
                        interfaces.push((link_type(idb.linktype), unit_ns));
                    }
                    Block::EnhancedPacket(epb) => {
                        let (link, unit_ns) = interfaces
                            .get(epb.interface_id as usize)
                            .copied()
                            .unwrap_or((None, 1000));
                        // pcap-file read the raw count as nanoseconds.
                        let raw = u64::try_from(epb.timestamp.as_nanos()).unwrap_or(u64::MAX);
                        let nanos = u128::from(raw) * u128::from(unit_ns);
                        let time = SystemTime::UNIX_EPOCH
                            + Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX));
                        return Ok(Some(Record {
                            time,
                            link,
                            wire_len: epb.original_len as usize,
                            data: epb.data.into_owned(),
                        }));
                    }
                    Block::SimplePacket(spb) => {
                        let link = interfaces.first().and_then(|i| i.0);
                        return Ok(Some(Record {
                            time: SystemTime::UNIX_EPOCH,
                            link,
                            wire_len: spb.original_len as usize,
                            data: spb.data.into_owned(),
                        }));
                    }
                    _ => {}
                }
            },
        }
    }
}

/// Nanoseconds per timestamp unit for a pcapng `if_tsresol` value: a
/// power of ten (high bit clear) or of two (high bit set); units finer
/// than a nanosecond count as one.
fn ts_unit_ns(resol: u8) -> u64 {
    let exp = u32::from(resol & 0x7f);
    if resol & 0x80 == 0 {
        10u64.checked_pow(9u32.saturating_sub(exp)).unwrap_or(1)
    } else {
        // 2^-exp seconds; rounded to whole nanoseconds.
        const SECOND_NS: u64 = 1_000_000_000;
        (SECOND_NS >> exp.min(63)).max(1)
    }
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
        assert_eq!(ts_unit_ns(6), 1000);
        assert_eq!(ts_unit_ns(9), 1);
        assert_eq!(ts_unit_ns(3), 1_000_000);
        assert_eq!(ts_unit_ns(12), 1);
        assert_eq!(ts_unit_ns(0x8a), 976_562);
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
