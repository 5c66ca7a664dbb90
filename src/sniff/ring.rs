//! The capture's receive ring: `PACKET_RX_RING` with `TPACKET_V3`, as
//! libpcap (and so tcpdump) uses it.
//!
//! With one `recvmsg` per packet, each packet costs a system call, a copy
//! and a wake-up. With the ring, the kernel writes packets into blocks of
//! memory that it shares with us, and hands a block over when it is full
//! or when [`RETIRE`] has passed; we read the packets in place and hand the
//! block back. Under load that is one wake-up per block of hundreds of
//! packets, and no copy.
//!
//! This is the crate's only `unsafe` code. It is kept to what cannot be
//! done otherwise: two `setsockopt` calls whose structures nix does not
//! know, the `mmap` of the ring, the view of a block that the kernel has
//! handed over, and the atomic status word through which the hand-over
//! happens. Reading packets out of a block is safe code over a byte slice
//! ([`Cursor`]), every offset the kernel wrote checked against the block's
//! length, and unit-tested with blocks made by hand.
#![allow(unsafe_code)]

use std::mem::{offset_of, size_of};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// One block of the ring. A packet never spans blocks, so a block must
/// hold the largest frame (64 KiB on loopback) with its headers.
const BLOCK_SIZE: usize = 1 << 20;
/// Blocks in the ring: 8 MiB in all, the queue the socket had before.
const BLOCKS: usize = 8;
/// How long the kernel fills a block before handing it over anyway, so a
/// trickle of packets is still seen (and printed) within this time.
pub const RETIRE: Duration = Duration::from_millis(50);
/// `tp_frame_size`: V3 packs packets at their own length, but the kernel
/// still checks the request's frame geometry.
const FRAME_SIZE: usize = 2048;

/// Where the fields the reader needs lie, from the kernel's own layouts.
const STATUS_AT: usize =
    offset_of!(libc::tpacket_block_desc, hdr) + offset_of!(libc::tpacket_hdr_v1, block_status);
const NUM_PKTS_AT: usize =
    offset_of!(libc::tpacket_block_desc, hdr) + offset_of!(libc::tpacket_hdr_v1, num_pkts);
const FIRST_AT: usize = offset_of!(libc::tpacket_block_desc, hdr)
    + offset_of!(libc::tpacket_hdr_v1, offset_to_first_pkt);
/// The `sockaddr_ll` after each packet's header (`TPACKET_ALIGN`ed).
const SLL_AT: usize = libc::TPACKET3_HDRLEN - size_of::<libc::sockaddr_ll>();

/// One packet as the kernel put it in a block; `data` is its place in
/// the block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    pub sec: u32,
    pub nsec: u32,
    /// The packet's length on the wire.
    pub wire_len: usize,
    pub ifindex: usize,
    pub hatype: u16,
    pub pkttype: u8,
    /// Where the bytes kept (the snap length, or less) lie in the block.
    pub data: std::ops::Range<usize>,
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(
        b.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(
        b.get(at..at.checked_add(2)?)?.try_into().ok()?,
    ))
}

/// Where the reading of a block handed over to us stands: safe code over
/// the block's bytes.
#[derive(Debug, Clone, Copy)]
pub struct Cursor {
    /// The next packet's offset, and how many packets are left.
    next: usize,
    left: u32,
}

impl Cursor {
    /// At the first packet, from the block's descriptor.
    pub fn first(block: &[u8]) -> Self {
        Cursor {
            left: u32_at(block, NUM_PKTS_AT).unwrap_or(0),
            next: u32_at(block, FIRST_AT).unwrap_or(0) as usize,
        }
    }

    /// The next packet, or `None` when the block is done. A header whose
    /// offsets point outside the block ends the block: nothing is read
    /// beyond it.
    pub fn step(&mut self, b: &[u8]) -> Option<Meta> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let at = self.next;
        let field = |off: usize| u32_at(b, at.checked_add(off)?);
        let parsed = (|| {
            let next_offset = field(offset_of!(libc::tpacket3_hdr, tp_next_offset))? as usize;
            let sll = at.checked_add(SLL_AT)?;
            let mac = u16_at(b, at.checked_add(offset_of!(libc::tpacket3_hdr, tp_mac))?)?;
            let snaplen = field(offset_of!(libc::tpacket3_hdr, tp_snaplen))? as usize;
            let start = at.checked_add(usize::from(mac))?;
            let end = start.checked_add(snaplen).filter(|&e| e <= b.len())?;
            let meta = Meta {
                sec: field(offset_of!(libc::tpacket3_hdr, tp_sec))?,
                nsec: field(offset_of!(libc::tpacket3_hdr, tp_nsec))?,
                wire_len: field(offset_of!(libc::tpacket3_hdr, tp_len))? as usize,
                ifindex: u32_at(
                    b,
                    sll.checked_add(offset_of!(libc::sockaddr_ll, sll_ifindex))?,
                )? as usize,
                hatype: u16_at(
                    b,
                    sll.checked_add(offset_of!(libc::sockaddr_ll, sll_hatype))?,
                )?,
                pkttype: *b.get(sll.checked_add(offset_of!(libc::sockaddr_ll, sll_pkttype))?)?,
                data: start..end,
            };
            Some((meta, next_offset))
        })();
        let Some((meta, next_offset)) = parsed else {
            self.left = 0;
            return None;
        };
        if next_offset == 0 {
            self.left = 0;
        }
        self.next = at.saturating_add(next_offset);
        Some(meta)
    }
}

/// The mapped ring of a packet socket.
pub struct Ring {
    map: NonNull<u8>,
    len: usize,
    /// The block the kernel hands over next (blocks go round in order).
    current: usize,
    /// The packets left in the current block, if we hold it.
    held: Option<Cursor>,
}

impl std::fmt::Debug for Ring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ring")
            .field("len", &self.len)
            .field("current", &self.current)
            .field("held", &self.held)
            .finish_non_exhaustive()
    }
}

/// `setsockopt(fd, SOL_PACKET, name, value)` for a plain-data value.
fn set_packet_option<T>(fd: &OwnedFd, name: libc::c_int, value: &T) -> std::io::Result<()> {
    // SAFETY: `value` is a live, initialised `T` of `size_of::<T>()`
    // bytes, and the kernel only reads it during the call.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_PACKET,
            name,
            std::ptr::from_ref(value).cast(),
            size_of::<T>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

impl Ring {
    /// Switches `fd` (a fresh `AF_PACKET` socket) to `TPACKET_V3` and maps
    /// its receive ring.
    pub fn new(fd: &OwnedFd) -> std::io::Result<Self> {
        let version = libc::tpacket_versions::TPACKET_V3 as libc::c_int;
        set_packet_option(fd, libc::PACKET_VERSION, &version)?;
        let req = libc::tpacket_req3 {
            tp_block_size: BLOCK_SIZE as u32,
            tp_block_nr: BLOCKS as u32,
            tp_frame_size: FRAME_SIZE as u32,
            tp_frame_nr: (BLOCK_SIZE * BLOCKS / FRAME_SIZE) as u32,
            tp_retire_blk_tov: RETIRE.as_millis() as u32,
            tp_sizeof_priv: 0,
            tp_feature_req_word: 0,
        };
        set_packet_option(fd, libc::PACKET_RX_RING, &req)?;
        let len = BLOCK_SIZE * BLOCKS;
        // SAFETY: a new shared mapping of the socket's ring, at an address
        // the kernel picks: it aliases no Rust object. It is unmapped in
        // `drop` (the pages stay valid until then, whenever the socket
        // closes).
        let map = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_fd().as_raw_fd(),
                0,
            )
        };
        if map == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        let map = NonNull::new(map.cast::<u8>()).ok_or_else(std::io::Error::last_os_error)?;
        Ok(Ring {
            map,
            len,
            current: 0,
            held: None,
        })
    }

    /// The status word of block `i`, which the kernel and we hand the
    /// block over through.
    fn status(&self, i: usize) -> &AtomicU32 {
        debug_assert!(i < BLOCKS);
        // SAFETY: the word lies inside the mapping (block `i` of `BLOCKS`,
        // at an offset below the block's size), is 4-byte aligned (blocks
        // are page-aligned and the offset is a multiple of 4), and is only
        // ever accessed atomically, by us and by the kernel.
        unsafe { AtomicU32::from_ptr(self.map.as_ptr().add(i * BLOCK_SIZE + STATUS_AT).cast()) }
    }

    /// Block `i` as bytes, once the kernel has handed it over.
    fn block(&self, i: usize) -> &[u8] {
        // SAFETY: in the mapping (block `i` of `BLOCKS`). The kernel wrote
        // the block before it set the status word to `TP_STATUS_USER`,
        // which we read with Acquire ordering, and it does not touch the
        // block again until we set the word back to `TP_STATUS_KERNEL` in
        // `release`, which takes `&mut self` and so cannot happen while
        // this borrow lives.
        unsafe { std::slice::from_raw_parts(self.map.as_ptr().add(i * BLOCK_SIZE), BLOCK_SIZE) }
    }

    /// Hands the current block back to the kernel and moves to the next.
    fn release(&mut self) {
        self.status(self.current)
            .store(libc::TP_STATUS_KERNEL, Ordering::Release);
        self.current = (self.current + 1) % BLOCKS;
        self.held = None;
    }

    /// Whether a block is ours to read (held, or handed over): if not, wait.
    pub fn ready(&self) -> bool {
        self.held.is_some()
            || self.status(self.current).load(Ordering::Acquire) & libc::TP_STATUS_USER != 0
    }

    /// The next packet the kernel has handed over that `keep` wants, with
    /// its bytes, or `None` if there is none yet (then wait with `poll` on
    /// the socket). The test is taken here, on the packet's metadata, so
    /// that a packet passed over never holds a borrow of the ring.
    pub fn next_packet(&mut self, keep: impl Fn(&Meta) -> bool) -> Option<(Meta, &[u8])> {
        loop {
            let mut cursor = if let Some(cursor) = self.held {
                cursor
            } else {
                let status = self.status(self.current).load(Ordering::Acquire);
                if status & libc::TP_STATUS_USER == 0 {
                    return None;
                }
                Cursor::first(self.block(self.current))
            };
            match cursor.step(self.block(self.current)) {
                Some(meta) if !keep(&meta) => self.held = Some(cursor),
                Some(meta) => {
                    // The block stays ours until a later call, which needs
                    // `&mut self` and so ends this borrow first.
                    self.held = Some(cursor);
                    let data = &self.block(self.current)[meta.data.clone()];
                    return Some((meta, data));
                }
                None => self.release(),
            }
        }
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, of `len` bytes; no borrow of
        // it can outlive `self`.
        unsafe {
            libc::munmap(self.map.as_ptr().cast(), self.len);
        }
    }
}

/// The kernel's count of packets dropped (no free block) since the last
/// call: `PACKET_STATISTICS` resets as it reads.
pub fn take_drops(fd: &OwnedFd) -> u64 {
    let mut stats = libc::tpacket_stats_v3 {
        tp_packets: 0,
        tp_drops: 0,
        tp_freeze_q_cnt: 0,
    };
    let mut len = size_of::<libc::tpacket_stats_v3>() as libc::socklen_t;
    // SAFETY: `stats` is a writable `tpacket_stats_v3` of `len` bytes, the
    // layout the kernel fills for a TPACKET_V3 socket.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_PACKET,
            libc::PACKET_STATISTICS,
            std::ptr::from_mut(&mut stats).cast(),
            &raw mut len,
        )
    };
    if rc == 0 {
        u64::from(stats.tp_drops)
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A block as the kernel lays it out, with `packets` (data, next
    /// offset override) written at 64-byte steps from offset 64.
    fn block(packets: &[(&[u8], Option<u32>)]) -> Vec<u8> {
        let mut b = vec![0u8; 4096];
        b[NUM_PKTS_AT..NUM_PKTS_AT + 4].copy_from_slice(&(packets.len() as u32).to_ne_bytes());
        b[FIRST_AT..FIRST_AT + 4].copy_from_slice(&64u32.to_ne_bytes());
        let mut at = 64;
        for (i, (data, next)) in packets.iter().enumerate() {
            let put = |b: &mut Vec<u8>, off: usize, v: &[u8]| {
                b[at + off..at + off + v.len()].copy_from_slice(v);
            };
            let mac = libc::TPACKET3_HDRLEN as u16;
            let step = (usize::from(mac) + data.len()).div_ceil(16) * 16;
            let last = i + 1 == packets.len();
            let next = next.unwrap_or(if last { 0 } else { step as u32 });
            put(
                &mut b,
                offset_of!(libc::tpacket3_hdr, tp_next_offset),
                &next.to_ne_bytes(),
            );
            put(
                &mut b,
                offset_of!(libc::tpacket3_hdr, tp_sec),
                &(i as u32 + 1).to_ne_bytes(),
            );
            put(
                &mut b,
                offset_of!(libc::tpacket3_hdr, tp_nsec),
                &7u32.to_ne_bytes(),
            );
            let snap = data.len() as u32;
            put(
                &mut b,
                offset_of!(libc::tpacket3_hdr, tp_snaplen),
                &snap.to_ne_bytes(),
            );
            put(
                &mut b,
                offset_of!(libc::tpacket3_hdr, tp_len),
                &(snap + 100).to_ne_bytes(),
            );
            put(
                &mut b,
                offset_of!(libc::tpacket3_hdr, tp_mac),
                &mac.to_ne_bytes(),
            );
            let sll = SLL_AT;
            put(
                &mut b,
                sll + offset_of!(libc::sockaddr_ll, sll_ifindex),
                &1i32.to_ne_bytes(),
            );
            put(
                &mut b,
                sll + offset_of!(libc::sockaddr_ll, sll_hatype),
                &772u16.to_ne_bytes(),
            );
            put(
                &mut b,
                sll + offset_of!(libc::sockaddr_ll, sll_pkttype),
                &[4],
            );
            put(&mut b, usize::from(mac), data);
            at += step;
        }
        b
    }

    #[test]
    fn packets_are_read_in_order_with_their_fields() {
        let b = block(&[(b"first", None), (b"second packet", None), (b"3", None)]);
        let mut blk = Cursor::first(&b);
        let p = blk.step(&b).unwrap();
        assert_eq!(&b[p.data.clone()], b"first");
        assert_eq!(
            p,
            Meta {
                sec: 1,
                nsec: 7,
                wire_len: 105,
                ifindex: 1,
                hatype: 772,
                pkttype: 4,
                data: p.data.clone(),
            }
        );
        let p = blk.step(&b).unwrap();
        assert_eq!(&b[p.data], b"second packet");
        let last = blk.step(&b).unwrap();
        assert_eq!((last.sec, &b[last.data]), (3, &b"3"[..]));
        assert_eq!(blk.step(&b), None);
    }

    #[test]
    fn offsets_outside_the_block_end_it_without_reading_beyond() {
        // A next offset past the end: the second packet is not read.
        let b = block(&[(b"one", Some(1 << 30)), (b"two", None)]);
        let mut blk = Cursor::first(&b);
        let p = blk.step(&b).unwrap();
        assert_eq!(&b[p.data], b"one");
        assert_eq!(blk.step(&b), None);
        // A snap length past the end.
        let mut b = block(&[(b"x", None)]);
        let at = 64 + offset_of!(libc::tpacket3_hdr, tp_snaplen);
        b[at..at + 4].copy_from_slice(&u32::MAX.to_ne_bytes());
        assert_eq!(Cursor::first(&b).step(&b), None);
        // A first offset past the end, and more packets claimed than fit.
        let mut b = block(&[(b"x", None)]);
        b[FIRST_AT..FIRST_AT + 4].copy_from_slice(&u32::MAX.to_ne_bytes());
        b[NUM_PKTS_AT..NUM_PKTS_AT + 4].copy_from_slice(&u32::MAX.to_ne_bytes());
        assert_eq!(Cursor::first(&b).step(&b), None);
        // A block too short for its own descriptor.
        assert_eq!(Cursor::first(&[0u8; 3]).step(&[0u8; 3]), None);
    }

    #[test]
    fn a_zero_next_offset_ends_the_block_whatever_the_count() {
        let mut b = block(&[(b"a", Some(0)), (b"b", None)]);
        b[NUM_PKTS_AT..NUM_PKTS_AT + 4].copy_from_slice(&5u32.to_ne_bytes());
        let mut blk = Cursor::first(&b);
        let p = blk.step(&b).unwrap();
        assert_eq!(&b[p.data], b"a");
        assert_eq!(blk.step(&b), None);
    }
}
