//! `netsmith sniff`: capture packets with an `AF_PACKET` socket and print one
//! line per packet as tcpdump does, or JSON, or write them to a pcap file.
//!
//! - [`capture`]: the socket; interface, direction, timestamps, drops.
//! - [`decode`]: bytes to layers, a pure function (unit-tested, fuzzed).
//! - [`filter`]: the tcpdump-like filter language, evaluated in user space.
//! - [`pcap`]: `-w` and `-r`.
//!
//! Try it: `sudo netsmith sniff -i lo tcp port 8080`, or without privilege
//! `netsmith sniff -r capture.pcap`.

mod bpf;
pub mod capture;
pub mod decode;
pub mod filter;
pub mod pcap;
mod ring;

use std::fmt::Write as _;
use std::io::{self, IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use clap::Args;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use decode::{LinkType, Net, Packet, Transport};
use filter::Filter;

use crate::{Error, Result};

/// tcpdump's default snap length: whole packets, even with offloads.
const DEFAULT_SNAPLEN: u32 = 262_144;

/// How often buffered output reaches a piped stdout while packets trickle in.
const FLUSH_EVERY: Duration = Duration::from_millis(100);

const FILTER_HELP: &str = "\
Filter (a subset of tcpdump's): tcp, udp, icmp, icmp6, arp, ip, ip6;
host ADDR, src host ADDR, dst host ADDR (numeric IPv4/IPv6); port N, src port N,
dst port N (number or service name); net CIDR, src net CIDR, dst net CIDR;
joined by and (&&), or (||), not (!) and parentheses. \"tcp port 80\" means
\"tcp and port 80\". The kernel turns away packets the filter surely does not
keep (a classic BPF program compiled from it; -d prints it); user space
decides the rest after decoding.

Capturing needs root or CAP_NET_RAW; -r needs neither. Ctrl-C stops and prints
how many packets were captured and how many the kernel dropped (exit 0).";

/// `netsmith sniff` flags.
#[derive(Debug, Args)]
#[command(after_help = FILTER_HELP)]
pub struct SniffArgs {
    /// Capture on this interface only (default: every interface, "any").
    #[arg(short = 'i', long = "interface", value_name = "IFACE")]
    pub interface: Option<String>,
    /// Stop after this many packets that pass the filter.
    #[arg(short = 'c', long = "count", value_name = "N")]
    pub count: Option<u64>,
    /// Write packets to a pcap file instead of printing them.
    #[arg(short = 'w', long = "write", value_name = "FILE")]
    pub write: Option<PathBuf>,
    /// Read packets from a pcap or pcapng file instead of capturing.
    #[arg(short = 'r', long = "read", value_name = "FILE", conflicts_with_all = ["interface", "write"])]
    pub read: Option<PathBuf>,
    /// With -w, also print each packet.
    #[arg(long)]
    pub print: bool,
    /// Add a hexdump of each packet (as captured).
    #[arg(short = 'x', long = "hex")]
    pub hex: bool,
    /// Show the link-level header (Ethernet addresses).
    #[arg(short = 'e')]
    pub link: bool,
    /// One JSON object per packet.
    #[arg(long)]
    pub json: bool,
    /// Print the BPF program the kernel would run (as tcpdump -d) and exit.
    #[arg(short = 'd', long = "dump-program", conflicts_with_all = ["read", "write", "count"])]
    pub dump_program: bool,
    /// Keep at most this many bytes of each packet (1-262144).
    #[arg(short = 's', long, value_name = "BYTES", default_value_t = DEFAULT_SNAPLEN,
          value_parser = clap::value_parser!(u32).range(1..=262_144))]
    pub snaplen: u32,
    /// The filter, as trailing words (`tcp and port 80`).
    #[arg(
        value_name = "FILTER",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub filter: Vec<String>,
}

/// What a run saw, printed on stderr at the end as tcpdump does.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    /// Frames read from the socket or the file.
    pub seen: u64,
    /// Frames that passed the filter (printed or written).
    pub captured: u64,
    /// Frames the kernel dropped because we did not read fast enough.
    pub dropped: u64,
    /// Frames not written to a pcap because their link is not Ethernet.
    pub skipped: u64,
}

/// Runs `sniff` until the count is reached, the file ends, or `stop` is
/// cancelled (Ctrl-C); then prints the totals on stderr.
pub async fn run(args: SniffArgs, quiet: bool, stop: CancellationToken) -> Result<()> {
    let text = args.filter.join(" ");
    let filter =
        filter::parse(&text).map_err(|e| Error::usage(format!("bad filter \"{text}\" {e}")))?;
    if args.dump_program {
        let only = capture::interface_index(args.interface.as_deref())?;
        let program = bpf::program(only, &filter, args.snaplen);
        // A stdout failure is kept for the exit status (see `stdio`).
        crate::stdio::print(&bpf::listing(&program));
        return Ok(());
    }
    let totals = tokio::task::spawn_blocking(move || Session::new(args, filter, quiet)?.run(&stop))
        .await
        .map_err(|e| Error::Local {
            what: "sniff".into(),
            reason: e.to_string(),
        })??;
    if !quiet {
        let plural = |n: u64, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
        let mut line = format!(
            "{} captured, {} seen, {} dropped by kernel",
            plural(totals.captured, "packet"),
            totals.seen,
            totals.dropped
        );
        if totals.skipped > 0 {
            let _ = write!(
                line,
                ", {} not written (not Ethernet; a pcap file holds one link type)",
                totals.skipped
            );
        }
        eprintln!("{line}");
    }
    Ok(())
}

/// The state of one run: where frames come from and where they go.
struct Session {
    args: SniffArgs,
    filter: Filter,
    out: io::BufWriter<io::Stdout>,
    /// Flush stdout after every packet (it is a terminal).
    line_buffered: bool,
    pcap: Option<pcap::Writer>,
    /// Print a line per packet (not with -w unless --print).
    print: bool,
    bar: Option<indicatif::ProgressBar>,
    totals: Totals,
    /// Writing stdout failed: its reader left (`| head`, stop quietly) or
    /// another error (kept in [`crate::stdio::failure`] for the exit status).
    closed: bool,
    /// `-q`: no "capturing on" line, no progress.
    quiet: bool,
}

/// One frame, from either source.
struct Seen<'a> {
    time: SystemTime,
    /// Interface and direction: known for a live capture only.
    via: Option<(&'a str, capture::Direction)>,
    link: Option<LinkType>,
    wire_len: usize,
    data: &'a [u8],
}

impl Session {
    fn new(args: SniffArgs, filter: Filter, quiet: bool) -> Result<Self> {
        let pcap = match &args.write {
            Some(path) => Some(pcap::Writer::create(path, args.snaplen as usize)?),
            None => None,
        };
        let print = pcap.is_none() || args.print;
        let stdout = io::stdout();
        let bar = (!print && !quiet && io::stderr().is_terminal()).then(|| {
            let bar = indicatif::ProgressBar::with_draw_target(
                None,
                indicatif::ProgressDrawTarget::stderr_with_hz(4),
            );
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{spinner} {human_pos} packets written {msg}",
            ) {
                bar.set_style(style);
            }
            bar
        });
        Ok(Session {
            line_buffered: stdout.is_terminal(),
            out: io::BufWriter::with_capacity(64 * 1024, stdout),
            args,
            filter,
            pcap,
            print,
            bar,
            totals: Totals::default(),
            closed: false,
            quiet,
        })
    }

    fn done(&self) -> bool {
        self.closed || self.args.count.is_some_and(|n| self.totals.captured >= n)
    }

    fn run(mut self, stop: &CancellationToken) -> Result<Totals> {
        if let Some(path) = self.args.read.clone() {
            self.read_file(&path, stop)?;
        } else {
            self.capture(stop)?;
        }
        if let Err(e) = self.out.flush() {
            crate::stdio::record(&e);
        }
        if let Some(w) = self.pcap.take() {
            w.finish()?;
        }
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        Ok(self.totals)
    }

    fn read_file(&mut self, path: &Path, stop: &CancellationToken) -> Result<()> {
        let mut reader = pcap::Reader::open(path)?;
        while !self.done() && !stop.is_cancelled() {
            let Some(rec) = reader.next_record(path)? else {
                break;
            };
            self.frame(&Seen {
                time: rec.time,
                via: None,
                link: rec.link,
                wire_len: rec.wire_len,
                data: &rec.data,
            })?;
        }
        Ok(())
    }

    fn capture(&mut self, stop: &CancellationToken) -> Result<()> {
        let mut cap = capture::Capture::open(
            self.args.interface.as_deref(),
            self.args.snaplen as usize,
            &self.filter,
        )?;
        if !self.quiet {
            // Said once the socket is open, so a script can wait for it
            // before it makes the traffic to be captured.
            eprintln!(
                "capturing on {}, snap length {} bytes",
                self.args.interface.as_deref().unwrap_or("every interface"),
                self.args.snaplen
            );
        }
        let mut last_flush = std::time::Instant::now();
        while !self.done() && !stop.is_cancelled() {
            let frame = cap.next_frame()?;
            if let Some(f) = frame {
                let seen = Seen {
                    time: f.time,
                    via: Some((f.interface, f.direction)),
                    link: f.link,
                    wire_len: f.wire_len,
                    data: f.data,
                };
                self.frame(&seen)?;
            }
            self.totals.dropped = cap.drops();
            if last_flush.elapsed() >= FLUSH_EVERY {
                last_flush = std::time::Instant::now();
                if let Err(e) = self.out.flush() {
                    crate::stdio::record(&e);
                    self.closed = true;
                }
                if let Some(bar) = &self.bar {
                    bar.set_position(self.totals.captured);
                    bar.set_message(format!("({} dropped by kernel)", self.totals.dropped));
                }
            }
        }
        self.totals.dropped = cap.update_drops();
        Ok(())
    }

    fn frame(&mut self, f: &Seen<'_>) -> Result<()> {
        self.totals.seen += 1;
        // Writing a pcap without a filter or printing needs no decoding.
        let packet = if self.print || self.filter != Filter::All {
            Some(match f.link {
                Some(link) => decode::decode(link, f.data),
                None => Packet {
                    stopped: Some("link type not decoded".into()),
                    ..Packet::default()
                },
            })
        } else {
            None
        };
        if let Some(p) = &packet
            && !self.filter.matches(p)
        {
            return Ok(());
        }
        self.totals.captured += 1;
        if let Some(w) = &mut self.pcap {
            if f.link == Some(LinkType::Ethernet) {
                w.write(f.time, f.wire_len, f.data)?;
            } else {
                self.totals.skipped += 1;
            }
        }
        if let (true, Some(p)) = (self.print, &packet) {
            let text = if self.args.json {
                json_line(f, p, self.args.hex)
            } else {
                text_line(f, p, self.args.link, self.args.hex)
            };
            let written = self.out.write_all(text.as_bytes()).and_then(|()| {
                if self.line_buffered {
                    self.out.flush()
                } else {
                    Ok(())
                }
            });
            // EPIPE (`| head`) stops quietly; any other error fails the
            // command at exit (see `crate::run`).
            if let Err(e) = written {
                crate::stdio::record(&e);
                self.closed = true;
            }
        }
        Ok(())
    }
}

/// `HH:MM:SS.micros` of the day, in UTC.
fn clock(t: SystemTime) -> String {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() % 86_400;
    format!(
        "{:02}:{:02}:{:02}.{:06}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        d.subsec_micros()
    )
}

/// `t` cut (not rounded) to whole microseconds, as a pcap record keeps it,
/// so that a packet read back from `-w`'s file shows the time it had live.
fn whole_micros(t: SystemTime) -> SystemTime {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    SystemTime::UNIX_EPOCH + Duration::new(d.as_secs(), d.subsec_micros() * 1000)
}

/// One tcpdump-style line (and its hexdump with `-x`).
fn text_line(f: &Seen<'_>, p: &Packet, link: bool, hex: bool) -> String {
    let mut s = clock(f.time);
    if let Some((iface, dir)) = f.via {
        let _ = write!(s, " {iface} {:<3}", dir.label());
    }
    s.push(' ');
    if link && let Some(eth) = &p.ethernet {
        let _ = write!(
            s,
            "{} > {}, ethertype 0x{:04x}, length {}: ",
            eth.src, eth.dst, eth.ether_type, f.wire_len
        );
    }
    layers(&mut s, p, f.wire_len);
    if let Some(why) = &p.stopped {
        let _ = write!(s, " [|{why}]");
    }
    s.push('\n');
    if hex {
        s.push_str(&crate::copy::HexDump::new(' ', None).format(f.data));
    }
    s
}

/// The network and transport layers in tcpdump's words.
fn layers(s: &mut String, p: &Packet, wire_len: usize) {
    let (src, dst) = match &p.net {
        Some(Net::Ipv4 { src, dst, .. }) => {
            s.push_str("IP ");
            (src.to_string(), dst.to_string())
        }
        Some(Net::Ipv6 {
            src,
            dst,
            extensions,
            ..
        }) => {
            s.push_str("IP6 ");
            if !extensions.is_empty() {
                let _ = write!(s, "[{}] ", extensions.join(", "));
            }
            (src.to_string(), dst.to_string())
        }
        Some(Net::Arp {
            operation,
            sender_ip,
            target_ip,
            sender_mac,
        }) => {
            let ip = |a: &Option<std::net::Ipv4Addr>| a.map_or("?".into(), |a| a.to_string());
            let _ = match operation.as_str() {
                "request" => write!(
                    s,
                    "ARP, Request who-has {} tell {}",
                    ip(target_ip),
                    ip(sender_ip)
                ),
                "reply" => write!(s, "ARP, Reply {} is-at {sender_mac}", ip(sender_ip)),
                op => write!(s, "ARP, operation {op}"),
            };
            let _ = write!(s, ", length {wire_len}");
            return;
        }
        None => {
            let _ = write!(s, "length {wire_len}");
            return;
        }
    };
    let _ = match &p.transport {
        Some(Transport::Tcp {
            src_port,
            dst_port,
            flags,
            seq,
            ack,
            window,
            length,
        }) => {
            let _ = write!(
                s,
                "{src}.{src_port} > {dst}.{dst_port}: Flags [{flags}], seq {seq}"
            );
            if flags.contains('.') {
                let _ = write!(s, ", ack {ack}");
            }
            write!(s, ", win {window}, length {length}")
        }
        Some(Transport::Udp {
            src_port,
            dst_port,
            length,
        }) => write!(
            s,
            "{src}.{src_port} > {dst}.{dst_port}: UDP, length {length}"
        ),
        Some(Transport::Icmp(icmp) | Transport::Icmp6(icmp)) => {
            let proto = if matches!(p.transport, Some(Transport::Icmp(_))) {
                "ICMP"
            } else {
                "ICMP6,"
            };
            let _ = write!(s, "{src} > {dst}: {proto} {}", icmp.name);
            if let Some(e) = icmp.echo {
                let _ = write!(s, ", id {}, seq {}", e.id, e.seq);
            }
            write!(s, ", length {}", icmp.length)
        }
        Some(Transport::Other { number, length }) => {
            write!(s, "{src} > {dst}: ip-proto-{number}, length {length}")
        }
        None => write!(s, "{src} > {dst}"),
    };
}

/// One JSON object per packet.
#[derive(Serialize)]
struct JsonLine<'a> {
    time: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    interface: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    direction: Option<&'a str>,
    /// Length on the wire.
    length: usize,
    /// Bytes kept (at most the snap length).
    captured: usize,
    #[serde(flatten)]
    packet: &'a Packet,
    /// The captured bytes in hex, with `-x`.
    #[serde(skip_serializing_if = "Option::is_none")]
    hex: Option<String>,
}

fn json_line(f: &Seen<'_>, p: &Packet, hex: bool) -> String {
    let line = JsonLine {
        time: humantime::format_rfc3339_micros(whole_micros(f.time)).to_string(),
        interface: f.via.map(|v| v.0),
        direction: f.via.map(|v| v.1.label()),
        length: f.wire_len,
        captured: f.data.len(),
        packet: p,
        hex: hex.then(|| {
            f.data.iter().fold(String::new(), |mut s, b| {
                let _ = write!(s, "{b:02x}");
                s
            })
        }),
    };
    let mut s = serde_json::to_string(&line).unwrap_or_default();
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::decode::tests as frames;
    use super::*;

    fn seen(data: &[u8]) -> Seen<'_> {
        Seen {
            time: SystemTime::UNIX_EPOCH + Duration::from_micros(3_723_000_042),
            via: Some(("lo", capture::Direction::In)),
            link: Some(LinkType::Ethernet),
            wire_len: data.len(),
            data,
        }
    }

    #[test]
    fn lines_read_like_tcpdump() {
        let syn = frames::tcp_syn();
        let p = decode::decode(LinkType::Ethernet, &syn);
        assert_eq!(
            text_line(&seen(&syn), &p, false, false),
            "01:02:03.000042 lo In  IP 127.0.0.1.40000 > 127.0.0.1.80: Flags [S], seq 1000, win 65495, length 0\n"
        );
        let icmp = frames::icmp_echo();
        let p = decode::decode(LinkType::Ethernet, &icmp);
        assert!(
            text_line(&seen(&icmp), &p, false, false)
                .contains("IP 127.0.0.1 > 127.0.0.2: ICMP echo request, id 7, seq 3, length 12")
        );
        let arp = frames::arp_request();
        let p = decode::decode(LinkType::Ethernet, &arp);
        let line = text_line(&seen(&arp), &p, true, true);
        assert!(
            line.contains("ARP, Request who-has 10.0.0.2 tell 10.0.0.1, length 42"),
            "{line}"
        );
        assert!(
            line.contains("02:00:00:00:00:01 > ff:ff:ff:ff:ff:ff, ethertype 0x0806"),
            "{line}"
        );
        assert!(
            line.contains("  00000000  ff ff ff ff ff ff 02 00"),
            "{line}"
        );
        let udp6 = frames::udp6_hop_by_hop();
        let p = decode::decode(LinkType::Ethernet, &udp6);
        assert!(
            text_line(&seen(&udp6), &p, false, false)
                .contains("IP6 [hop-by-hop] ::1.5000 > ::1.53: UDP, length 3")
        );
        let p = decode::decode(LinkType::Ethernet, &syn[..40]);
        assert!(text_line(&seen(&syn[..40]), &p, false, false).contains(" [|"));
    }

    #[test]
    fn json_lines_carry_every_layer() {
        let syn = frames::tcp_syn();
        let p = decode::decode(LinkType::Ethernet, &syn);
        let v: serde_json::Value = serde_json::from_str(&json_line(&seen(&syn), &p, true)).unwrap();
        assert_eq!(v["interface"], "lo");
        assert_eq!(v["net"]["proto"], "ipv4");
        assert_eq!(v["transport"]["proto"], "tcp");
        assert_eq!(v["transport"]["flags"], "S");
        assert_eq!(v["transport"]["dst_port"], 80);
        assert_eq!(v["length"], 54);
        assert!(v["hex"].as_str().unwrap().starts_with("000000"));
    }
}
