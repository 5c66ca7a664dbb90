//! The classic BPF program the kernel runs on each packet before it reaches
//! the capture ring: packets it turns away cost no copy and no ring space.
//!
//! The program is a pre-filter. The user-space filter ([`super::filter`])
//! still decides every packet the program lets through, so the program
//! needs one property only: it never turns away a packet the user-space
//! filter would keep. Every test here lets a packet through whenever it
//! cannot be sure (an unknown ether type, a VLAN tag, an IPv6 extension
//! header, a packet too short to read, a `not`), and turns it away only on
//! fields the decoder reads the same way. A program that grows past what
//! the kernel takes is left out: the user-space filter alone is exact.
//!
//! `sniff -d` prints the program, as `tcpdump -d` does.

use std::fmt::Write as _;
use std::net::IpAddr;

use super::filter::{Dir, Filter, Proto};

// Instruction codes (`<linux/filter.h>`): class | size | mode or op | source.
const LD_W_ABS: u16 = 0x20;
const LD_H_ABS: u16 = 0x28;
const LD_B_ABS: u16 = 0x30;
const LD_W_LEN: u16 = 0x80;
const LD_H_IND: u16 = 0x48;
const LDX_B_MSH: u16 = 0xb1;
const ALU_ADD_K: u16 = 0x04;
const ALU_AND_K: u16 = 0x54;
const TAX: u16 = 0x07;
const TXA: u16 = 0x87;
const JA: u16 = 0x05;
const JEQ_K: u16 = 0x15;
const JGE_K: u16 = 0x35;
const JGE_X: u16 = 0x3d;
const RET_K: u16 = 0x06;

/// Ancillary data the kernel offers at negative offsets (`SKF_AD_*`).
const SKF_AD_OFF: u32 = 0xffff_f000;
const SKF_AD_PKTTYPE: u32 = SKF_AD_OFF + 4;
const SKF_AD_IFINDEX: u32 = SKF_AD_OFF + 8;
const SKF_AD_HATYPE: u32 = SKF_AD_OFF + 28;

/// `ARPHRD_*` link types whose frames begin with an Ethernet header.
pub const ARPHRD_ETHER: u16 = 1;
pub const ARPHRD_LOOPBACK: u16 = 772;
/// `PACKET_OUTGOING`: a packet this host sends.
pub const PACKET_OUTGOING: u8 = 4;

/// The kernel's limit on a program's length (`BPF_MAXINSNS`).
const MAX_INSNS: usize = 4096;

const ETH_IPV4: u16 = 0x0800;
const ETH_IPV6: u16 = 0x86dd;
const ETH_ARP: u16 = 0x0806;
/// 802.1Q, 802.1ad and the older Q-in-Q tag: the decoder looks past them.
const ETH_VLAN: [u16; 3] = [0x8100, 0x88a8, 0x9100];
/// Where IPv4's protocol byte and IPv6's next header lie in the frame.
const IPV4_PROTO: u32 = 14 + 9;
const IPV6_NEXT: u32 = 14 + 6;
/// Protocol numbers the decoder takes as the transport directly (so a
/// packet carrying one is not carrying another).
const TRANSPORTS: [u8; 4] = [1, 6, 17, 58];

/// One instruction, as the kernel's `struct sock_filter` has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

/// The program in the form `setsockopt(SO_ATTACH_FILTER)` takes.
pub fn sock_filters(program: &[Insn]) -> Vec<socket2::SockFilter> {
    program
        .iter()
        .map(|i| socket2::SockFilter::new(i.code, i.jt, i.jf, i.k))
        .collect()
}

/// A jump's target: the next instruction or a label.
#[derive(Debug, Clone, Copy)]
enum To {
    Next,
    Label(usize),
}

/// Instructions with symbolic jump targets, resolved in [`Asm::finish`].
#[derive(Debug, Default)]
struct Asm {
    code: Vec<(u16, To, To, u32)>,
    labels: Vec<Option<usize>>,
}

impl Asm {
    fn label(&mut self) -> usize {
        self.labels.push(None);
        self.labels.len() - 1
    }

    fn place(&mut self, label: usize) {
        self.labels[label] = Some(self.code.len());
    }

    fn op(&mut self, code: u16, k: u32) {
        self.code.push((code, To::Next, To::Next, k));
    }

    fn jump(&mut self, code: u16, k: u32, jt: To, jf: To) {
        self.code.push((code, jt, jf, k));
    }

    fn goto(&mut self, label: usize) {
        self.code.push((JA, To::Label(label), To::Next, 0));
    }

    /// The program, or `None` if it is too long for the kernel or a
    /// conditional jump is too far for its 8-bit offset.
    fn finish(self) -> Option<Vec<Insn>> {
        if self.code.len() > MAX_INSNS {
            return None;
        }
        let offset = |at: usize, to: To| -> Option<usize> {
            match to {
                To::Next => Some(0),
                To::Label(l) => self.labels[l]?.checked_sub(at + 1),
            }
        };
        let mut out = Vec::with_capacity(self.code.len());
        for (at, &(code, jt, jf, k)) in self.code.iter().enumerate() {
            out.push(if code == JA {
                let k = u32::try_from(offset(at, jt)?).ok()?;
                Insn {
                    code,
                    jt: 0,
                    jf: 0,
                    k,
                }
            } else {
                let jt = u8::try_from(offset(at, jt)?).ok()?;
                let jf = u8::try_from(offset(at, jf)?).ok()?;
                Insn { code, jt, jf, k }
            });
        }
        Some(out)
    }
}

/// The whole program: with `-i`, only that interface's packets; never
/// loopback's outgoing copies (lo shows each packet leaving and arriving;
/// tcpdump shows it once); then the user's filter as a pre-filter. A packet
/// let through is cut to `snaplen` (the program's return value).
pub fn program(only: Option<usize>, filter: &Filter, snaplen: u32) -> Vec<Insn> {
    assemble(only, Some(filter), snaplen)
        .or_else(|| assemble(only, None, snaplen))
        .unwrap_or_default()
}

fn assemble(only: Option<usize>, filter: Option<&Filter>, snaplen: u32) -> Option<Vec<Insn>> {
    let mut a = Asm::default();
    let (keep, drop) = (a.label(), a.label());
    if let Some(index) = only {
        a.op(LD_W_ABS, SKF_AD_IFINDEX);
        a.jump(JEQ_K, u32::try_from(index).ok()?, To::Next, To::Label(drop));
    }
    let (user, not_loopback) = (a.label(), a.label());
    a.op(LD_W_ABS, SKF_AD_HATYPE);
    a.jump(
        JEQ_K,
        u32::from(ARPHRD_LOOPBACK),
        To::Next,
        To::Label(not_loopback),
    );
    a.op(LD_W_ABS, SKF_AD_PKTTYPE);
    a.jump(
        JEQ_K,
        u32::from(PACKET_OUTGOING),
        To::Label(drop),
        To::Label(user),
    );
    // Frames that do not begin with an Ethernet header are the user-space
    // filter's alone.
    a.place(not_loopback);
    a.jump(
        JEQ_K,
        u32::from(ARPHRD_ETHER),
        To::Label(user),
        To::Label(keep),
    );
    a.place(user);
    if let Some(filter) = filter {
        compile(&mut a, filter, keep, drop);
    }
    a.place(keep);
    a.op(RET_K, snaplen);
    a.place(drop);
    a.op(RET_K, 0);
    a.finish()
}

/// Emits `filter`: on to `t` when the packet may match, to `f` when it
/// cannot. Each primitive jumps only within itself and leaves through
/// `ja`, whose offset has 32 bits, so no conditional jump is ever far.
fn compile(a: &mut Asm, filter: &Filter, t: usize, f: usize) {
    match filter {
        Filter::And(first, then) => {
            let next = a.label();
            compile(a, first, next, f);
            a.place(next);
            compile(a, then, t, f);
        }
        Filter::Or(first, then) => {
            let next = a.label();
            compile(a, first, t, next);
            a.place(next);
            compile(a, then, t, f);
        }
        // What a `not` turns away is what its operand surely keeps, which a
        // pre-filter does not know: everything goes on to user space.
        Filter::All | Filter::Not(_) => a.goto(t),
        leaf => {
            let (yes, no) = (a.label(), a.label());
            primitive(a, leaf, yes, no);
            a.place(yes);
            a.goto(t);
            a.place(no);
            a.goto(f);
        }
    }
}

/// Loads the ether type and sends each kind of frame to its label; a VLAN
/// tag, an ether type the decoder may know (such as `MACsec`) or a frame too
/// short goes to `unsure`.
fn dispatch(a: &mut Asm, unsure: usize, to: &[(u16, usize)]) {
    need(a, 14, unsure);
    a.op(LD_H_ABS, 12);
    for &(ether_type, label) in to {
        a.jump(JEQ_K, u32::from(ether_type), To::Label(label), To::Next);
    }
    a.goto(unsure);
}

/// Goes to `unsure` unless the frame has at least `len` bytes: a load
/// beyond the end would end the program and turn the packet away.
fn need(a: &mut Asm, len: u32, unsure: usize) {
    a.op(LD_W_LEN, 0);
    a.jump(JGE_K, len, To::Next, To::Label(unsure));
}

/// Emits one primitive: to `yes` if the packet may match, `no` if not.
fn primitive(a: &mut Asm, leaf: &Filter, yes: usize, no: usize) {
    match *leaf {
        Filter::Proto(Proto::Ip) => ether_is(a, ETH_IPV4, yes, no),
        Filter::Proto(Proto::Ip6) => ether_is(a, ETH_IPV6, yes, no),
        Filter::Proto(Proto::Arp) => ether_is(a, ETH_ARP, yes, no),
        Filter::Proto(p) => {
            let number = match p {
                Proto::Tcp => 6,
                Proto::Udp => 17,
                Proto::Icmp => 1,
                _ => 58,
            };
            let (v4, v6) = (a.label(), a.label());
            dispatch(a, yes, &[(ETH_IPV4, v4), (ETH_IPV6, v6), (ETH_ARP, no)]);
            for (label, at) in [(v4, IPV4_PROTO), (v6, IPV6_NEXT)] {
                a.place(label);
                transport_is(a, at, &[number], (yes, no, yes));
            }
        }
        Filter::Host(dir, IpAddr::V4(addr)) => {
            let v4 = a.label();
            dispatch(a, yes, &[(ETH_IPV4, v4), (ETH_IPV6, no)]);
            a.place(v4);
            need(a, 34, yes);
            words_are(a, dir, (26, 30), &[(u32::from(addr), u32::MAX)], yes, no);
        }
        Filter::Host(dir, IpAddr::V6(addr)) => {
            let v6 = a.label();
            dispatch(a, yes, &[(ETH_IPV6, v6), (ETH_IPV4, no)]);
            a.place(v6);
            need(a, 54, yes);
            let words = addr.to_bits().to_be_bytes();
            let words: Vec<(u32, u32)> = words
                .chunks(4)
                .map(|w| (u32::from_be_bytes([w[0], w[1], w[2], w[3]]), u32::MAX))
                .collect();
            words_are(a, dir, (22, 38), &words, yes, no);
        }
        Filter::Net(dir, ipnet::IpNet::V4(net)) => {
            let v4 = a.label();
            dispatch(a, yes, &[(ETH_IPV4, v4), (ETH_IPV6, no)]);
            a.place(v4);
            need(a, 34, yes);
            let mask = u32::from(net.netmask());
            words_are(
                a,
                dir,
                (26, 30),
                &[(u32::from(net.network()), mask)],
                yes,
                no,
            );
        }
        Filter::Net(_, ipnet::IpNet::V6(_)) => {
            dispatch(a, yes, &[(ETH_IPV4, no)]);
        }
        Filter::Port(dir, port) => {
            let (v4, v6, v4_ports) = (a.label(), a.label(), a.label());
            dispatch(a, yes, &[(ETH_IPV4, v4), (ETH_IPV6, v6), (ETH_ARP, no)]);
            // IPv4: the ports follow a header of IHL words.
            a.place(v4);
            transport_is(a, IPV4_PROTO, &[6, 17], (v4_ports, no, yes));
            a.place(v4_ports);
            a.op(LDX_B_MSH, 14);
            a.op(TXA, 0);
            a.op(ALU_ADD_K, 14 + 4);
            a.op(TAX, 0);
            a.op(LD_W_LEN, 0);
            a.jump(JGE_X, 0, To::Next, To::Label(yes));
            a.op(LDX_B_MSH, 14);
            ports_are(a, LD_H_IND, 14, dir, port, yes, no);
            // IPv6: after the fixed header, unless an extension header
            // comes first (then `transport_is` says unsure).
            let v6_ports = a.label();
            a.place(v6);
            transport_is(a, IPV6_NEXT, &[6, 17], (v6_ports, no, yes));
            a.place(v6_ports);
            need(a, 14 + 40 + 4, yes);
            ports_are(a, LD_H_ABS, 14 + 40, dir, port, yes, no);
        }
        Filter::All | Filter::Not(_) | Filter::And(..) | Filter::Or(..) => a.goto(yes),
    }
}

/// `ip`, `ip6`, `arp`: the ether type (past a VLAN tag, unsure).
fn ether_is(a: &mut Asm, ether_type: u16, yes: usize, no: usize) {
    need(a, 14, yes);
    a.op(LD_H_ABS, 12);
    a.jump(JEQ_K, u32::from(ether_type), To::Label(yes), To::Next);
    for vlan in ETH_VLAN {
        a.jump(JEQ_K, u32::from(vlan), To::Label(yes), To::Next);
    }
    a.goto(no);
}

/// The protocol byte at `at` is one of `numbers` (to `hit`), another
/// transport the decoder takes directly (to `no`), or anything else, such
/// as an IPv6 extension header, or the frame is too short (to `unsure`).
fn transport_is(a: &mut Asm, at: u32, numbers: &[u8], (hit, no, unsure): (usize, usize, usize)) {
    need(a, at + 1, unsure);
    a.op(LD_B_ABS, at);
    for &n in numbers {
        a.jump(JEQ_K, u32::from(n), To::Label(hit), To::Next);
    }
    for n in TRANSPORTS.iter().filter(|n| !numbers.contains(n)) {
        a.jump(JEQ_K, u32::from(*n), To::Label(no), To::Next);
    }
    a.goto(unsure);
}

/// The source (at `at.0`) or destination (at `at.1`) address, as 32-bit
/// words each under its mask, equals `words`.
fn words_are(a: &mut Asm, dir: Dir, at: (u32, u32), words: &[(u32, u32)], yes: usize, no: usize) {
    let starts: &[u32] = match dir {
        Dir::Src => &[at.0],
        Dir::Dst => &[at.1],
        Dir::Either => &[at.0, at.1],
    };
    for (i, &start) in starts.iter().enumerate() {
        let miss = if i + 1 == starts.len() { no } else { a.label() };
        for (w, &(value, mask)) in words.iter().enumerate() {
            a.op(LD_W_ABS, start + 4 * w as u32);
            if mask != u32::MAX {
                a.op(ALU_AND_K, mask);
            }
            let last = w + 1 == words.len();
            let hit = if last { To::Label(yes) } else { To::Next };
            a.jump(JEQ_K, value & mask, hit, To::Label(miss));
        }
        if miss != no {
            a.place(miss);
        }
    }
}

/// The source port (at `at`) or destination port (`at + 2`) is `port`;
/// `load` is an absolute or an X-indexed halfword load.
fn ports_are(a: &mut Asm, load: u16, at: u32, dir: Dir, port: u16, yes: usize, no: usize) {
    let offsets: &[u32] = match dir {
        Dir::Src => &[at],
        Dir::Dst => &[at + 2],
        Dir::Either => &[at, at + 2],
    };
    for &off in offsets {
        a.op(load, off);
        a.jump(JEQ_K, u32::from(port), To::Label(yes), To::Next);
    }
    a.goto(no);
}

/// The program as `tcpdump -d` prints one: a line per instruction.
pub fn listing(program: &[Insn]) -> String {
    let mut out = String::new();
    for (at, &Insn { code, jt, jf, k }) in program.iter().enumerate() {
        let (jt, jf) = (at + 1 + usize::from(jt), at + 1 + usize::from(jf));
        let text = match code {
            LD_W_ABS => match k {
                SKF_AD_PKTTYPE => "ld       #pktype".to_string(),
                SKF_AD_IFINDEX => "ld       #ifidx".to_string(),
                SKF_AD_HATYPE => "ld       #hatype".to_string(),
                _ => format!("ld       [{k}]"),
            },
            LD_H_ABS => format!("ldh      [{k}]"),
            LD_B_ABS => format!("ldb      [{k}]"),
            LD_W_LEN => "ld       #pktlen".to_string(),
            LD_H_IND => format!("ldh      [x + {k}]"),
            LDX_B_MSH => format!("ldxb     4*([{k}]&0xf)"),
            ALU_ADD_K => format!("add      #{k}"),
            ALU_AND_K => format!("and      #{k:#x}"),
            TAX => "tax".to_string(),
            TXA => "txa".to_string(),
            JA => format!("ja       {}", at + 1 + k as usize),
            JEQ_K => format!("{:<26}jt {jt}\tjf {jf}", format!("jeq      #{k:#x}")),
            JGE_K => format!("{:<26}jt {jt}\tjf {jf}", format!("jge      #{k:#x}")),
            JGE_X => format!("{:<26}jt {jt}\tjf {jf}", "jge      x"),
            RET_K => format!("ret      #{k}"),
            other => format!("code {other:#x} k {k}"),
        };
        let _ = writeln!(out, "({at:03}) {text}");
    }
    out
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use crate::sniff::decode::{LinkType, decode};
    use crate::sniff::filter;

    /// Runs a classic BPF program as the kernel does, on an Ethernet frame
    /// of a loopback interface arriving (`ifindex` 1): the returned length,
    /// 0 for "turned away" (also when a load falls outside the frame).
    pub fn run(program: &[Insn], frame: &[u8], pkttype: u8) -> u32 {
        let (mut acc, mut x, mut pc) = (0u32, 0u32, 0usize);
        let load = |at: u32, size: usize| -> Option<u32> {
            match at {
                SKF_AD_PKTTYPE => Some(u32::from(pkttype)),
                SKF_AD_IFINDEX => Some(1),
                SKF_AD_HATYPE => Some(u32::from(ARPHRD_LOOPBACK)),
                _ => {
                    let at = at as usize;
                    let b = frame.get(at..at.checked_add(size)?)?;
                    Some(b.iter().fold(0u32, |v, &byte| v << 8 | u32::from(byte)))
                }
            }
        };
        loop {
            let Insn { code, jt, jf, k } = program[pc];
            pc += 1;
            let jump = |cond: bool| usize::from(if cond { jt } else { jf });
            match code {
                LD_W_ABS => match load(k, 4) {
                    Some(v) => acc = v,
                    None => return 0,
                },
                LD_H_ABS => match load(k, 2) {
                    Some(v) => acc = v,
                    None => return 0,
                },
                LD_B_ABS => match load(k, 1) {
                    Some(v) => acc = v,
                    None => return 0,
                },
                LD_H_IND => match load(x.wrapping_add(k), 2) {
                    Some(v) => acc = v,
                    None => return 0,
                },
                LD_W_LEN => acc = frame.len() as u32,
                LDX_B_MSH => match load(k, 1) {
                    Some(v) => x = 4 * (v & 0xf),
                    None => return 0,
                },
                ALU_ADD_K => acc = acc.wrapping_add(k),
                ALU_AND_K => acc &= k,
                TAX => x = acc,
                TXA => acc = x,
                JA => pc += k as usize,
                JEQ_K => pc += jump(acc == k),
                JGE_K => pc += jump(acc >= k),
                JGE_X => pc += jump(acc >= x),
                RET_K => return k,
                other => panic!("instruction {other:#x} not emitted by this compiler"),
            }
        }
    }

    const FILTERS: &[&str] = &[
        "",
        "tcp",
        "udp",
        "icmp",
        "icmp6",
        "arp",
        "ip",
        "ip6",
        "port 80",
        "tcp port 80",
        "udp port 53",
        "src port 80",
        "dst port 53",
        "port 12345",
        "host 10.0.0.1",
        "src host 10.0.0.1",
        "dst host 10.0.0.2",
        "host 192.168.1.1",
        "host ::1",
        "host 2001:db8::1",
        "src host 2001:db8::2",
        "net 10.0.0.0/8",
        "src net 10.0.0.0/24",
        "dst net 192.168.0.0/16",
        "net 2001:db8::/32",
        "not tcp",
        "tcp and not port 22",
        "udp or arp",
        "tcp and (port 80 or port 443)",
        "(host 10.0.0.1 or host ::1) and tcp",
        "icmp or icmp6 or arp",
        "ip and not udp",
    ];

    /// Frames of every kind the filter names, between the addresses and
    /// ports the filters above name and others.
    fn whole_frames() -> Vec<Vec<u8>> {
        use crate::sniff::decode::tests as d;
        use etherparse::PacketBuilder;
        let mac = ([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);
        let v4 = [
            [10, 0, 0, 1],
            [10, 0, 0, 2],
            [192, 168, 1, 1],
            [203, 0, 113, 9],
        ];
        let mut v6 = [[0u8; 16]; 3];
        v6[0][..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
        v6[0][15] = 1;
        v6[1] = v6[0];
        v6[1][15] = 2;
        v6[2][15] = 1; // ::1
        let mut out = vec![
            d::tcp_syn(),
            d::udp6_hop_by_hop(),
            d::icmp_echo(),
            d::arp_request(),
        ];
        for (s, d) in [(0, 1), (1, 0), (2, 3), (3, 2)] {
            for (sp, dp) in [(80, 40000), (40000, 443), (53, 53), (22, 12345)] {
                let base = PacketBuilder::ethernet2(mac.0, mac.1).ipv4(v4[s], v4[d], 64);
                let mut f = Vec::new();
                base.tcp(sp, dp, 1, 1000).write(&mut f, b"hi").unwrap();
                out.push(f);
                let base = PacketBuilder::ethernet2(mac.0, mac.1).ipv4(v4[s], v4[d], 64);
                let mut f = Vec::new();
                base.udp(sp, dp).write(&mut f, b"hi").unwrap();
                out.push(f);
            }
            let base = PacketBuilder::ethernet2(mac.0, mac.1).ipv4(v4[s], v4[d], 64);
            let mut f = Vec::new();
            base.icmpv4_echo_request(1, 1)
                .write(&mut f, b"ping")
                .unwrap();
            out.push(f);
        }
        for (s, d) in [(0, 1), (1, 0), (2, 2), (0, 2)] {
            for (sp, dp) in [(80, 40000), (40000, 443), (53, 53)] {
                let base = PacketBuilder::ethernet2(mac.0, mac.1).ipv6(v6[s], v6[d], 64);
                let mut f = Vec::new();
                base.tcp(sp, dp, 1, 1000).write(&mut f, b"hi").unwrap();
                out.push(f);
                let base = PacketBuilder::ethernet2(mac.0, mac.1).ipv6(v6[s], v6[d], 64);
                let mut f = Vec::new();
                base.udp(sp, dp).write(&mut f, b"hi").unwrap();
                out.push(f);
            }
            let base = PacketBuilder::ethernet2(mac.0, mac.1).ipv6(v6[s], v6[d], 64);
            let mut f = Vec::new();
            base.icmpv6_echo_request(1, 1)
                .write(&mut f, b"ping")
                .unwrap();
            out.push(f);
        }
        // IPv4 with 4 bytes of options (IHL 6): the ports move.
        let mut f = Vec::new();
        PacketBuilder::ethernet2(mac.0, mac.1)
            .ipv4(v4[0], v4[1], 64)
            .tcp(80, 40000, 1, 1000)
            .write(&mut f, b"hi")
            .unwrap();
        f[14] = 0x46;
        let total = u16::from_be_bytes([f[16], f[17]]) + 4;
        f[16..18].copy_from_slice(&total.to_be_bytes());
        f.splice(34..34, [1, 1, 1, 0]);
        out.push(f);
        out
    }

    /// Every frame above, each also cut short at every length, and with
    /// a VLAN tag.
    fn frames() -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for frame in whole_frames() {
            for cut in 0..=frame.len() {
                out.push(frame[..cut].to_vec());
            }
            if frame.len() >= 14 {
                let mut tagged = frame[..12].to_vec();
                tagged.extend([0x81, 0x00, 0x00, 0x05]);
                tagged.extend(&frame[12..]);
                out.push(tagged);
            }
        }
        out
    }

    #[test]
    fn the_program_never_turns_away_a_packet_the_filter_keeps() {
        let frames = frames();
        assert!(frames.len() > 100, "{} frames", frames.len());
        let mut turned_away = 0;
        for text in FILTERS {
            let f = filter::parse(text).unwrap();
            let program = program(None, &f, 65535);
            for frame in &frames {
                let kept = f.matches(&decode(LinkType::Ethernet, frame));
                let passed = run(&program, frame, 0) != 0;
                assert!(
                    passed || !kept,
                    "{text:?} turned away a packet it keeps: {frame:02x?}\n{}",
                    listing(&program)
                );
                turned_away += usize::from(!passed);
            }
        }
        // It is a filter, not a pass-through.
        assert!(turned_away > frames.len(), "only {turned_away} turned away");
    }

    #[test]
    fn primitives_turn_away_what_they_cannot_match() {
        let frames = whole_frames();
        for text in ["tcp", "udp", "arp", "port 80", "host 203.0.113.9", "ip6"] {
            let f = filter::parse(text).unwrap();
            let program = program(None, &f, 65535);
            let away = frames
                .iter()
                .filter(|fr| !f.matches(&decode(LinkType::Ethernet, fr)))
                .filter(|fr| run(&program, fr, 0) == 0)
                .count();
            assert!(away > 0, "{text:?} turned nothing away");
        }
    }

    #[test]
    fn loopback_outgoing_copies_are_turned_away_and_snaplen_is_returned() {
        let frame = &whole_frames()[0];
        let p = program(None, &Filter::All, 96);
        assert_eq!(run(&p, frame, PACKET_OUTGOING), 0);
        assert_eq!(run(&p, frame, 0), 96);
    }

    #[test]
    fn a_filter_too_long_for_the_kernel_falls_back_to_the_base_program() {
        let text = vec!["port 1"; 600].join(" or ");
        let f = filter::parse(&text).unwrap();
        let p = program(Some(3), &f, 100);
        assert_eq!(p, assemble(Some(3), None, 100).unwrap());
    }

    #[test]
    fn the_listing_reads_like_tcpdump_d() {
        let f = filter::parse("tcp").unwrap();
        let text = listing(&program(None, &f, 262_144));
        assert!(text.starts_with("(000) ld       #hatype\n"), "{text}");
        assert!(text.contains("ldh      [12]"), "{text}");
        assert!(text.contains("ldb      [23]"), "{text}");
        assert!(text.contains("ret      #262144"), "{text}");
        assert!(text.trim_end().ends_with("ret      #0"), "{text}");
    }
}
