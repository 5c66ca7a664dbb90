//! `netsmith sniff` on traffic the test makes itself, inside a network
//! namespace of its own (`unshare -n`, loopback up) so that nothing but
//! that traffic is seen: a TCP exchange, UDP datagrams and a ping (a raw
//! ICMP socket from Python), captured live several ways at once (JSON, a
//! filtered count, a pcap, a short snap length, tcpdump beside it), then
//! checked field by field against what the traffic was and against what
//! tshark reads from the pcap files.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use crate::util::{self, Output};

/// Makes the traffic and prints what it used: "tcp CLIENT SERVER",
/// "udp SRC DST", "icmp ID".
const TRAFFIC: &str = r#"
import os, socket, struct

srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen()
cli = socket.create_connection(srv.getsockname())
cport = cli.getsockname()[1]
conn, _ = srv.accept()
cli.sendall(b"hello"); assert conn.recv(5) == b"hello"
conn.sendall(b"world"); assert cli.recv(5) == b"world"
cli.close(); conn.recv(1); conn.close()
print("tcp", cport, srv.getsockname()[1])

rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); rx.bind(("127.0.0.1", 0))
tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); tx.bind(("127.0.0.1", 0))
for i in range(3):
    tx.sendto(b"dgram", rx.getsockname()); rx.recvfrom(100)
print("udp", tx.getsockname()[1], rx.getsockname()[1])

def csum(b):
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xffff); s += s >> 16
    return ~s & 0xffff
ident = os.getpid() & 0xffff
body = b"ping-from-test" * 4
hdr = struct.pack("!BBHHH", 8, 0, 0, ident, 1)
pkt = struct.pack("!BBHHH", 8, 0, csum(hdr + body), ident, 1) + body
icmp = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
icmp.sendto(pkt, ("127.0.0.1", 0))
icmp.settimeout(5)
while True:
    data, _ = icmp.recvfrom(2000)
    if data[20] == 0: break
print("icmp", ident)
"#;

/// Runs in the namespace: starts the captures, waits until each says it
/// is capturing, makes the traffic, then stops the open-ended ones with
/// SIGINT (as Ctrl-C would) and prints each exit status. `timeout
/// --foreground` bounds each capture without signalling it twice (plain
/// `timeout` passes SIGINT on and then sends it to its process group too,
/// and a second Ctrl-C means "stop now" to sniff).
const SCRIPT: &str = r#"
N=$1; D=$2; T=$3
ip link set lo up
timeout --foreground 30 "$N" sniff -i lo --json >"$D/all.json" 2>"$D/all.err" & A=$!
timeout --foreground 30 "$N" sniff -i lo -w "$D/cap.pcap" 2>"$D/w.err" & W=$!
timeout --foreground 30 "$N" sniff -c 3 udp >"$D/udp.txt" 2>"$D/udp.err" & U=$!
timeout --foreground 30 "$N" sniff -i lo -s 60 -w "$D/short.pcap" 2>"$D/short.err" & S=$!
timeout --foreground 30 tcpdump -n -i lo -U --immediate-mode -w "$D/tcpdump.pcap" 2>"$D/tcpdump.err" & P=$!
for f in all w udp short; do
  i=0; until grep -q "capturing on" "$D/$f.err"; do i=$((i+1)); [ $i -lt 200 ] || exit 9; sleep 0.05; done
done
i=0; until grep -q "listening on" "$D/tcpdump.err"; do i=$((i+1)); [ $i -lt 200 ] || exit 9; sleep 0.05; done
python3 -c "$T" >"$D/traffic.txt"
sleep 0.5
kill -INT $A $W $S $P
wait $A; echo "all=$?"; wait $W; echo "w=$?"; wait $U; echo "udp=$?"; wait $S; echo "short=$?"; wait $P; echo "tcpdump=$?"
"#;

fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap_or_default()
}

/// tshark's view of a pcap: one row of fields per frame.
fn tshark(file: &Path, fields: &[&str]) -> Vec<Vec<String>> {
    let mut args = vec![
        "-n",
        "-r",
        file.to_str().unwrap(),
        "-T",
        "fields",
        "-E",
        "separator=|",
    ];
    for f in fields {
        args.extend(["-e", f]);
    }
    let out = util::run_cmd("tshark", &args, b"");
    out.ok();
    out.out()
        .lines()
        .map(|l| l.split('|').map(str::to_string).collect())
        .collect()
}

/// The traffic's ports and ICMP identifier, as the script printed them.
fn traffic(dir: &Path) -> BTreeMap<String, Vec<u16>> {
    read(dir, "traffic.txt")
        .lines()
        .map(|l| {
            let mut f = l.split_whitespace();
            let kind = f.next().unwrap().to_string();
            (kind, f.map(|n| n.parse().unwrap()).collect())
        })
        .collect()
}

fn port(v: &Value, key: &str) -> u16 {
    v["transport"][key].as_u64().map_or(0, |p| p as u16)
}

/// What the loopback captures produced, with the traffic that made them.
struct Captured {
    dir: tempfile::TempDir,
    /// Every packet, from `sniff -i lo --json`.
    all: Vec<Value>,
    /// Client and server TCP ports, UDP sender and receiver, ICMP id.
    cport: u16,
    sport: u16,
    uport_tx: u16,
    uport_rx: u16,
    ident: u16,
    /// The run and the captures' stderr, for failure messages.
    context: String,
}

impl Captured {
    fn run() -> Captured {
        for tool in ["unshare", "python3", "tshark", "tcpdump", "timeout"] {
            util::require(tool);
        }
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let n = util::bin();
        let out: Output = util::run_cmd(
            "unshare",
            &[
                "-n",
                "sh",
                "-ec",
                SCRIPT,
                "sh",
                n.to_str().unwrap(),
                d.to_str().unwrap(),
                TRAFFIC,
            ],
            b"",
        );
        let context = format!(
            "{}\nall.err: {}\nw.err: {}\nudp.err: {}",
            out.dump(),
            read(d, "all.err"),
            read(d, "w.err"),
            read(d, "udp.err")
        );
        out.ok();
        for status in ["all=0", "w=0", "udp=0", "short=0"] {
            assert!(out.out().contains(status), "{status}\n{context}");
        }
        let t = traffic(d);
        Captured {
            all: json_lines(&read(d, "all.json")),
            cport: t["tcp"][0],
            sport: t["tcp"][1],
            uport_tx: t["udp"][0],
            uport_rx: t["udp"][1],
            ident: t["icmp"][0],
            context,
            dir,
        }
    }

    fn path(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }

    fn tcp(&self) -> Vec<&Value> {
        self.all
            .iter()
            .filter(|v| v["transport"]["proto"] == "tcp")
            .collect()
    }

    /// Every packet decoded right: the handshake, data, FINs, datagrams, ping.
    fn check_decoded(&self) {
        let (all, context) = (&self.all, &self.context);
        let (cport, sport, ident) = (self.cport, self.sport, self.ident);
        let (uport_tx, uport_rx) = (self.uport_tx, self.uport_rx);
        assert!(
            read(self.dir.path(), "all.err").contains(&format!("{} packets captured", all.len())),
            "{context}"
        );
        assert!(
            read(self.dir.path(), "all.err").contains("0 dropped by kernel"),
            "{context}"
        );
        let tcp: Vec<&Value> = all
            .iter()
            .filter(|v| v["transport"]["proto"] == "tcp")
            .collect();
        let flags: Vec<&str> = tcp
            .iter()
            .map(|v| v["transport"]["flags"].as_str().unwrap())
            .collect();
        assert_eq!(&flags[..3], ["S", "S.", "."], "handshake\n{context}");
        assert_eq!(
            (port(tcp[0], "src_port"), port(tcp[0], "dst_port")),
            (cport, sport)
        );
        assert_eq!(
            (port(tcp[1], "src_port"), port(tcp[1], "dst_port")),
            (sport, cport)
        );
        let data: Vec<(u16, u64)> = tcp
            .iter()
            .filter(|v| v["transport"]["length"].as_u64() > Some(0))
            .map(|v| {
                (
                    port(v, "src_port"),
                    v["transport"]["length"].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(data, [(cport, 5), (sport, 5)], "{context}");
        assert!(
            flags.iter().filter(|f| f.contains('F')).count() == 2,
            "{flags:?}"
        );
        assert_eq!(
            tcp[0]["transport"]["seq"].as_u64().unwrap() + 1,
            tcp[1]["transport"]["ack"].as_u64().unwrap(),
            "the SYN-ACK acknowledges the SYN"
        );
        for v in all {
            assert_eq!(v["interface"], "lo");
            assert_eq!(v["direction"], "In");
            assert_eq!(v["net"]["src"], "127.0.0.1");
        }
        let udp: Vec<&Value> = all
            .iter()
            .filter(|v| v["transport"]["proto"] == "udp")
            .collect();
        assert_eq!(udp.len(), 3, "{context}");
        for v in &udp {
            assert_eq!(
                (port(v, "src_port"), port(v, "dst_port")),
                (uport_tx, uport_rx)
            );
            assert_eq!(v["transport"]["length"], 5);
        }
        let icmp: Vec<&Value> = all
            .iter()
            .filter(|v| v["transport"]["proto"] == "icmp")
            .collect();
        let names: Vec<&str> = icmp
            .iter()
            .map(|v| v["transport"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["echo request", "echo reply"], "{context}");
        for v in &icmp {
            assert_eq!(v["transport"]["echo"]["id"], ident);
            assert_eq!(v["transport"]["echo"]["seq"], 1);
            assert_eq!(v["transport"]["length"], 8 + 56);
        }
        assert_eq!(
            tcp.len() + udp.len() + icmp.len(),
            all.len(),
            "nothing else on lo"
        );
    }

    /// The live filter and -c: exactly the three datagrams, as text.
    fn check_live_filter(&self) {
        let (uport_tx, uport_rx) = (self.uport_tx, self.uport_rx);
        let context = &self.context;
        let lines: Vec<String> = read(self.dir.path(), "udp.txt")
            .lines()
            .map(str::to_string)
            .collect();
        assert_eq!(lines.len(), 3, "{context}");
        // The TCP exchange and the ping came first; the kernel's pre-filter
        // turned them away, so user space saw the three datagrams alone.
        let err = read(self.dir.path(), "udp.err");
        assert!(
            err.contains("3 packets captured, 3 seen,"),
            "{err}\n{context}"
        );
        for l in &lines {
            assert!(
                l.contains(&format!(
                    " lo In  IP 127.0.0.1.{uport_tx} > 127.0.0.1.{uport_rx}: UDP, length 5"
                )),
                "{l}"
            );
        }
    }

    /// The pcap, read by tshark: same packets, same fields, same order.
    /// Returns tshark's rows.
    fn check_tshark(&self) -> Vec<Vec<String>> {
        let (all, context) = (&self.all, &self.context);
        let rows = tshark(
            &self.path("cap.pcap"),
            &[
                "frame.len",
                "ip.proto",
                "tcp.srcport",
                "tcp.flags.syn",
                "udp.srcport",
                "icmp.type",
                "frame.time_epoch",
            ],
        );
        assert_eq!(rows.len(), all.len(), "{context}");
        for (row, v) in rows.iter().zip(all.iter()) {
            assert_eq!(row[0], v["length"].to_string(), "{row:?} {v}");
            let proto = match v["transport"]["proto"].as_str().unwrap() {
                "tcp" => "6",
                "udp" => "17",
                _ => "1",
            };
            assert_eq!(row[1], proto, "{row:?} {v}");
            if proto == "6" {
                assert_eq!(row[2], port(v, "src_port").to_string());
                let syn = v["transport"]["flags"].as_str().unwrap().contains('S');
                assert_eq!(row[3] == "1" || row[3] == "True", syn, "{row:?} {v}");
            } else if proto == "17" {
                assert_eq!(row[4], port(v, "src_port").to_string());
            } else {
                assert_eq!(row[5], v["transport"]["type"].to_string(), "{row:?} {v}");
            }
        }

        rows
    }

    /// A short snap length: frames cut, their wire length kept.
    fn check_snaplen(&self) {
        let all = &self.all;
        let short = tshark(&self.path("short.pcap"), &["frame.len", "frame.cap_len"]);
        assert_eq!(short.len(), all.len());
        for (row, v) in short.iter().zip(all.iter()) {
            assert_eq!(row[0], v["length"].to_string());
            let cap: u64 = row[1].parse().unwrap();
            assert_eq!(cap, v["length"].as_u64().unwrap().min(60));
        }
    }

    /// -r reads our pcap, tcpdump's, and tshark's pcapng, with filters.
    fn check_read_back(&self, rows: &[Vec<String>]) {
        let (all, cport) = (&self.all, self.cport);
        let tcp = self.tcp();
        let pcapng = self.path("tshark.pcapng");
        util::run_cmd(
            "tshark",
            &[
                "-r",
                self.path("cap.pcap").to_str().unwrap(),
                "-w",
                pcapng.to_str().unwrap(),
            ],
            b"",
        )
        .ok();
        for file in ["cap.pcap", "tcpdump.pcap", "tshark.pcapng"] {
            let path = self.path(file);
            let path = path.to_str().unwrap();
            let back = util::run(&["sniff", "-r", path, "--json"], b"");
            back.ok();
            let back = json_lines(&back.out());
            assert_eq!(back.len(), all.len(), "{file}");
            for (b, a) in back.iter().zip(all.iter()) {
                assert_eq!(
                    (&b["net"], &b["transport"]),
                    (&a["net"], &a["transport"]),
                    "{file}"
                );
            }
            if file != "tshark.pcapng" {
                // Two sockets stamp a packet a microsecond apart at times, so
                // compare with tshark's reading of the same file.
                continue;
            }
            for (b, row) in back.iter().zip(rows) {
                let (secs, frac) = row[6].split_once('.').unwrap();
                let secs: u64 = secs.parse().unwrap();
                let want = format!("{:02}.{}Z", secs % 60, &frac[..6]);
                let time = b["time"].as_str().unwrap();
                assert!(time.ends_with(&want), "{file}: {time} vs tshark {}", row[6]);
            }
            let filtered = util::run(
                &[
                    "sniff",
                    "-r",
                    path,
                    &format!("tcp and src port {cport} and not port 9"),
                ],
                b"",
            );
            filtered.ok();
            let want = tcp.iter().filter(|v| port(v, "src_port") == cport).count();
            assert_eq!(
                filtered.out().lines().count(),
                want,
                "{file}\n{}",
                filtered.dump()
            );
            let icmp_only = util::run(
                &[
                    "sniff",
                    "-r",
                    path,
                    "icmp",
                    "or",
                    "(udp",
                    "and",
                    "dst",
                    "host",
                    "127.0.0.1)",
                ],
                b"",
            );
            assert_eq!(
                icmp_only.out().lines().count(),
                5,
                "{file}\n{}",
                icmp_only.dump()
            );
        }
    }

    /// -x: the hexdump follows its line, starting at the Ethernet header.
    fn check_hexdump(&self) {
        let hex = util::run(
            &[
                "sniff",
                "-r",
                self.path("cap.pcap").to_str().unwrap(),
                "-x",
                "-c",
                "1",
            ],
            b"",
        );
        hex.ok();
        let text = hex.out();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].contains("Flags [S]"), "{text}");
        assert!(
            lines[1].starts_with("  00000000  00 00 00 00 00 00 00 00  00 00 00 00 08 00 45"),
            "{text}"
        );
        assert!(hex.stderr.contains("1 packet captured"), "{}", hex.dump());
    }
}

#[test]
fn loopback_traffic_is_captured_decoded_filtered_and_written() {
    let c = Captured::run();
    c.check_decoded();
    c.check_live_filter();
    let rows = c.check_tshark();
    c.check_snaplen();
    c.check_read_back(&rows);
    c.check_hexdump();
}

#[test]
fn capturing_without_privilege_names_cap_net_raw() {
    util::require("setpriv");
    let n = util::bin();
    let out = util::run_cmd(
        "setpriv",
        &[
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
            n.to_str().unwrap(),
            "sniff",
            "-c",
            "1",
        ],
        b"",
    );
    out.code_is(2);
    assert!(out.stderr.contains("CAP_NET_RAW"), "{}", out.dump());
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.dump());
}

#[test]
fn arp_and_ipv6_cross_a_veth_pair() {
    for tool in ["unshare", "ip", "python3", "timeout"] {
        util::require(tool);
    }
    // A veth pair in a namespace of the test's own. The captures start
    // before v0 comes up, so they see the IPv6 neighbour discovery and
    // MLD that bringing it up sends; a datagram to 10.200.0.2 (no one
    // has it) then needs an ARP request out of v0.
    let script = r#"
N=$1; D=$2
ip link set lo up
ip link add v0 type veth peer name v1
ip addr add 10.200.0.1/24 dev v0
timeout --foreground 30 "$N" sniff -i v0 --json -c 1 arp >"$D/arp.json" 2>"$D/arp.err" & A=$!
timeout --foreground 30 "$N" sniff -i v0 -c 1 "icmp6 or (ip6 and udp)" >"$D/v6.txt" 2>"$D/v6.err" & B=$!
for f in arp v6; do
  i=0; until grep -q "capturing on" "$D/$f.err"; do i=$((i+1)); [ $i -lt 200 ] || exit 9; sleep 0.05; done
done
ip link set v1 up; ip link set v0 up
python3 -c '
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.sendto(b"x", ("10.200.0.2", 9))
' || true
wait $A; echo "arp=$?"
wait $B; echo "v6=$?"
"#;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let n = util::bin();
    let out = util::run_cmd(
        "unshare",
        &[
            "-n",
            "sh",
            "-ec",
            script,
            "sh",
            n.to_str().unwrap(),
            d.to_str().unwrap(),
        ],
        b"",
    );
    let context = format!(
        "{}\narp.err: {}\nv6: {}",
        out.dump(),
        read(d, "arp.err"),
        read(d, "v6.txt")
    );
    out.ok();
    assert!(out.out().contains("arp=0"), "{context}");
    let arp = json_lines(&read(d, "arp.json"));
    assert_eq!(arp.len(), 1, "{context}");
    assert_eq!(arp[0]["net"]["proto"], "arp");
    assert_eq!(arp[0]["net"]["operation"], "request");
    assert_eq!(arp[0]["net"]["sender_ip"], "10.200.0.1");
    assert_eq!(arp[0]["net"]["target_ip"], "10.200.0.2");
    assert_eq!(arp[0]["direction"], "Out");
    assert_eq!(arp[0]["ethernet"]["dst"], "ff:ff:ff:ff:ff:ff");
    // Bringing v0 up sends IPv6 neighbour discovery / MLD: ICMPv6 with a
    // hop-by-hop header (MLD reports) or a neighbour/router solicitation.
    assert!(out.out().contains("v6=0"), "{context}");
    let v6 = read(d, "v6.txt");
    assert!(v6.contains(" v0 ") && v6.contains(" IP6 "), "{context}");
    assert!(v6.contains("ICMP6, "), "{context}");
    if v6.contains("multicast listener report") {
        assert!(
            v6.contains("IP6 [hop-by-hop] "),
            "MLD carries router alert\n{context}"
        );
    }
}

#[test]
fn hardening_02_sniff_read_stdout_write_error_is_exit_1() {
    // A pcap file of 100 UDP packets, written here byte by byte.
    let mut frame = vec![0u8; 12];
    frame.extend_from_slice(&[0x08, 0x00]); // IPv4
    frame.extend_from_slice(&[
        0x45, 0, 0, 32, 0, 0, 0x40, 0, 64, 17, 0, 0, 127, 0, 0, 1, 127, 0, 0, 1,
    ]);
    frame.extend_from_slice(&[0x30, 0x39, 0x00, 0x07, 0, 12, 0, 0, b'p', b'i', b'n', b'g']);
    let mut pcap = Vec::new();
    pcap.extend_from_slice(&0xa1b2_c3d4_u32.to_le_bytes());
    pcap.extend_from_slice(&2u16.to_le_bytes());
    pcap.extend_from_slice(&4u16.to_le_bytes());
    for word in [0u32, 0, 65535, 1] {
        pcap.extend_from_slice(&word.to_le_bytes());
    }
    for i in 0..100u32 {
        let len = frame.len() as u32;
        for word in [1_700_000_000 + i, 0, len, len] {
            pcap.extend_from_slice(&word.to_le_bytes());
        }
        pcap.extend_from_slice(&frame);
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("udp.pcap");
    std::fs::write(&file, &pcap).unwrap();
    let path = file.to_str().unwrap();
    // The file reads (the test's own check), and fails only on stdout.
    let ok = util::run(&["sniff", "-r", path], b"");
    ok.ok();
    assert_eq!(ok.out().lines().count(), 100, "{}", ok.dump());
    let out = util::run_to_full(&["sniff", "-r", path], b"");
    util::assert_stdout_full(&out);
}

#[test]
fn hardening_13_a_filter_nested_20000_deep_is_refused_with_the_limit() {
    let deep = format!("{}tcp{}", "(".repeat(20_000), ")".repeat(20_000));
    let out = util::run(&["sniff", "-r", "/dev/null", &deep], b"");
    out.code_is(2);
    assert!(out.stderr.contains("at most 100"), "{}", out.dump());
    let nots = format!("{}tcp", "not ".repeat(20_000));
    let out = util::run(&["sniff", "-r", "/dev/null", &nots], b"");
    out.code_is(2);
    assert!(out.stderr.contains("at most 100"), "{}", out.dump());
}

/// A pcapng option: code, length, value, padding to 32 bits (little-endian).
fn ng_option(code: u16, value: &[u8]) -> Vec<u8> {
    let mut o = Vec::new();
    o.extend(code.to_le_bytes());
    o.extend((value.len() as u16).to_le_bytes());
    o.extend(value);
    o.resize(o.len().next_multiple_of(4), 0);
    o
}

/// A pcapng block of `block_type` around `body` (little-endian).
fn ng_block(block_type: u32, body: &[u8]) -> Vec<u8> {
    let len = (12 + body.len()) as u32;
    let mut b = Vec::new();
    b.extend(block_type.to_le_bytes());
    b.extend(len.to_le_bytes());
    b.extend(body);
    b.extend(len.to_le_bytes());
    b
}

/// A pcapng file with one UDP frame (127.0.0.1:5353 > 127.0.0.1:4242) and
/// the options pcap-file refused: custom options (2988, 2989, 19373),
/// unknown codes, an `if_tzone` of four bytes, a comment that is not
/// UTF-8, and option lists with no `opt_endofopt`.
fn pcapng_with_odd_options() -> Vec<u8> {
    let pen = 32473u32.to_le_bytes(); // the example enterprise number (RFC 5612)
    let mut shb = Vec::new();
    shb.extend(0x1A2B_3C4Du32.to_le_bytes());
    shb.extend(1u16.to_le_bytes());
    shb.extend(0u16.to_le_bytes());
    shb.extend((-1i64).to_le_bytes());
    shb.extend(ng_option(2988, &[&pen[..], b"custom text"].concat()));
    let mut idb = Vec::new();
    idb.extend(1u16.to_le_bytes()); // Ethernet
    idb.extend(0u16.to_le_bytes());
    idb.extend(65535u32.to_le_bytes());
    idb.extend(ng_option(9, &[9])); // if_tsresol: nanoseconds
    idb.extend(ng_option(10, &0u32.to_le_bytes())); // if_tzone, 4 bytes
    idb.extend(ng_option(2989, &[&pen[..], &[1, 2, 3]].concat()));
    idb.extend(ng_option(0x4242, b"???"));
    let frame: Vec<u8> = [
        &[0u8; 12][..],
        &[0x08, 0x00],
        &[
            0x45, 0, 0, 30, 0, 1, 0, 0, 64, 17, 0, 0, 127, 0, 0, 1, 127, 0, 0, 1,
        ],
        &5353u16.to_be_bytes(),
        &4242u16.to_be_bytes(),
        &[0, 10, 0, 0],
        b"hi",
    ]
    .concat();
    let ns: u64 = 1_700_000_000_123_456_789;
    let mut epb = Vec::new();
    epb.extend(0u32.to_le_bytes());
    epb.extend(((ns >> 32) as u32).to_le_bytes());
    epb.extend((ns as u32).to_le_bytes());
    epb.extend((frame.len() as u32).to_le_bytes());
    epb.extend((frame.len() as u32).to_le_bytes());
    epb.extend(&frame);
    epb.resize(epb.len().next_multiple_of(4), 0);
    epb.extend(ng_option(2, &1u32.to_le_bytes())); // epb_flags: inbound
    epb.extend(ng_option(1, &[0xff, 0xfe, b'x'])); // opt_comment, not UTF-8
    epb.extend(ng_option(19373, &[&pen[..], &[9, 9]].concat()));
    epb.extend(ng_option(0x5555, &[7; 5]));
    epb.extend(ng_option(0, &[])); // this one list does end
    [
        ng_block(0x0A0D_0D0A, &shb),
        ng_block(1, &idb),
        ng_block(0x0BAD, &[1, 2, 3, 4]), // a block type no reader knows
        ng_block(6, &epb),
    ]
    .concat()
}

#[test]
fn hardening_20_pcapng_custom_and_unknown_options_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("options.pcapng");
    std::fs::write(&file, pcapng_with_odd_options()).unwrap();
    // The file is valid pcapng: tshark reads the frame from it.
    let mut rows = tshark(&file, &["udp.srcport", "udp.dstport", "frame.time_epoch"]);
    // (tshark shows the unknown block as a record of its own, with no UDP.)
    rows.retain(|r| !r[0].is_empty());
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0][..2], ["5353", "4242"], "{rows:?}");
    assert!(rows[0][2].starts_with("1700000000.123456789"), "{rows:?}");
    let out = util::run(&["sniff", "-r", file.to_str().unwrap(), "--json"], b"");
    out.ok();
    let packets = json_lines(&out.out());
    assert_eq!(packets.len(), 1, "{}", out.dump());
    assert_eq!(port(&packets[0], "src_port"), 5353, "{}", out.dump());
    assert_eq!(port(&packets[0], "dst_port"), 4242, "{}", out.dump());
    let text = util::run(&["sniff", "-r", file.to_str().unwrap()], b"");
    text.ok();
    assert!(text.out().contains(".123456"), "{}", text.dump());
}

#[test]
fn dump_program_prints_the_kernel_prefilter_as_tcpdump_d_does() {
    let out = util::run(&["sniff", "-d", "-s", "96", "tcp", "port", "80"], b"");
    out.ok();
    let text = out.out();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "(000) ld       #hatype", "{}", out.dump());
    for (i, line) in lines.iter().enumerate() {
        assert!(line.starts_with(&format!("({i:03}) ")), "{line}");
    }
    for want in [
        "ldh      [12]",
        "ldb      [23]",
        "ldxb     4*([14]&0xf)",
        "ret      #96",
    ] {
        assert!(
            lines.iter().any(|l| l.contains(want)),
            "no {want:?}\n{}",
            out.dump()
        );
    }
    assert!(
        lines.last().unwrap().ends_with("ret      #0"),
        "{}",
        out.dump()
    );
    // A `not` leaves everything to user space: the program of no filter.
    let all = util::run(&["sniff", "-d"], b"");
    let not = util::run(&["sniff", "-d", "not", "tcp"], b"");
    assert_eq!(all.out(), not.out());
    assert!(all.out().lines().count() < lines.len(), "{}", all.dump());
    let bad = util::run(&["sniff", "-d", "-i", "nosuch0", "tcp"], b"");
    bad.code_is(2);
    assert!(
        bad.stderr.contains("no such interface \"nosuch0\""),
        "{}",
        bad.dump()
    );
}
