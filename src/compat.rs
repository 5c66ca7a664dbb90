//! Personalities: netsmith run as `nc`, `netcat`, `nc.openbsd`, `ncat` or
//! `nc.traditional` (a symlink or hard link; argv[0]'s file name decides),
//! or with `--compat ncat|openbsd|traditional` as the first argument, reads
//! that tool's command line.
//!
//! A personality is a translation, argv to argv: its grammar (getopt, with
//! clustered letters and ncat's long options) is read here and rewritten
//! into netsmith's own `connect`/`listen` line, which the one clap parser
//! then reads, so that every behaviour stays in one place. Where the
//! netcats give one letter different meanings (`-c`, `-d`, `-e`, `-i`,
//! `-k`, `-q`), the personality decides. A flag a personality has but
//! netsmith cannot honour is refused (exit 2) in one line that names it
//! and says what netsmith offers instead, never ignored.
//!
//! The personality also chooses the words of the `-v` lines a script may
//! parse ("Connection to HOST PORT port [tcp/*] succeeded!", "Ncat:
//! Connected to ..."): see [`tell`].
//!
//! ```text
//! ln -s "$(command -v netsmith)" ~/bin/nc
//! nc -lv 8000            # Listening on 127.0.0.1 8000
//! ncat -lk 9000 -e /bin/cat
//! netsmith --compat traditional -l -p 9000
//! ```

use std::ffi::{OsStr, OsString};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::OnceLock;

use crate::error::{Error, Result};
use crate::services::{self, Proto};

/// Whose command line netsmith reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Personality {
    /// netsmith's own, with its nc style (`netsmith -l -p 8080`).
    Netsmith,
    /// OpenBSD nc, as Debian ships it (`nc`, `netcat`, `nc.openbsd`).
    OpenBsd,
    /// Nmap's ncat.
    Ncat,
    /// Hobbit's nc 1.10 with Debian's patches (`nc.traditional`).
    Traditional,
}

impl Personality {
    /// The personality of a program name (argv[0], its file name only).
    pub fn of_program(argv0: &OsStr) -> Personality {
        let name = Path::new(argv0).file_name().unwrap_or(argv0);
        match name.to_str() {
            Some("nc" | "netcat" | "nc.openbsd") => Personality::OpenBsd,
            Some("ncat") => Personality::Ncat,
            Some("nc.traditional") => Personality::Traditional,
            _ => Personality::Netsmith,
        }
    }

    /// The personality `--compat NAME` names.
    fn of_compat(name: &str) -> Option<Personality> {
        match name {
            "openbsd" => Some(Personality::OpenBsd),
            "ncat" => Some(Personality::Ncat),
            "traditional" => Some(Personality::Traditional),
            _ => None,
        }
    }

    /// The name the tool goes by, when `--compat` chose it.
    fn program(self) -> &'static str {
        match self {
            Personality::Netsmith => "netsmith",
            Personality::OpenBsd | Personality::Traditional => "nc",
            Personality::Ncat => "ncat",
        }
    }

    /// The tool's name in messages.
    fn tool(self) -> &'static str {
        match self {
            Personality::Netsmith => "netsmith",
            Personality::OpenBsd => "OpenBSD nc",
            Personality::Ncat => "ncat",
            Personality::Traditional => "traditional nc",
        }
    }
}

/// A command line read in its personality and rewritten as netsmith's.
#[derive(Debug, PartialEq, Eq)]
pub struct Line {
    pub personality: Personality,
    /// The program's name as the personality's messages give it (`nc`).
    pub program: String,
    /// netsmith's own command line, for [`crate::cli::Cli::parse_line`].
    pub args: Vec<OsString>,
}

impl Line {
    /// The verbosity of netsmith's own log for `-v` given `verbose` times:
    /// under a personality the first `-v` asks for the tool's lines only
    /// ([`tell`]), and netsmith's own info lines need one more.
    pub fn log_verbosity(&self, verbose: u8) -> u8 {
        match self.personality {
            Personality::Netsmith => verbose,
            _ => verbose.saturating_sub(1),
        }
    }
}

/// Reads `args` (argv[0] first) in the personality of the program name or
/// of a leading `--compat NAME`, and rewrites it as netsmith's command
/// line. As `netsmith` the line is returned as it is.
///
/// # Errors
///
/// [`Error::Usage`] (exit 2) for a bad `--compat`, an option the tool
/// does not have, one netsmith does not support, or a missing value.
pub fn translate(mut args: Vec<OsString>) -> Result<Line> {
    let argv0 = args.first().cloned().unwrap_or_else(|| "netsmith".into());
    let mut personality = Personality::of_program(&argv0);
    let mut program = Path::new(&argv0)
        .file_name()
        .unwrap_or(&argv0)
        .to_string_lossy()
        .into_owned();
    if let Some(name) = compat_flag(&mut args)? {
        personality = Personality::of_compat(&name).ok_or_else(|| {
            Error::usage(format!(
                "--compat takes ncat, openbsd or traditional, not \"{name}\""
            ))
        })?;
        program = personality.program().to_string();
    }
    let tool = Tool {
        personality,
        program: program.clone(),
    };
    let rest = args.get(1..).unwrap_or_default();
    let netsmith = match personality {
        Personality::Netsmith => return netsmith(args, program),
        Personality::OpenBsd => openbsd(&tool, getopt(&tool, &OPENBSD, rest)?)?,
        Personality::Ncat => ncat(&tool, getopt(&tool, &NCAT, rest)?)?,
        Personality::Traditional => traditional(&tool, getopt(&tool, &TRADITIONAL, rest)?)?,
    };
    let mut out = vec![argv0];
    out.extend(netsmith);
    Ok(Line {
        personality,
        program,
        args: out,
    })
}

/// netsmith's own line, as it is, but for a `--compat` too late to count.
fn netsmith(args: Vec<OsString>, program: String) -> Result<Line> {
    let late = args.iter().skip(1).find_map(|a| {
        a.to_str()
            .filter(|s| *s == "--compat" || s.starts_with("--compat="))
    });
    if let Some(late) = late {
        return Err(Error::usage(format!(
            "{late} must be the first argument: netsmith --compat ncat|openbsd|traditional ..."
        )));
    }
    Ok(Line {
        personality: Personality::Netsmith,
        program,
        args,
    })
}

/// Takes a leading `--compat NAME` (or `--compat=NAME`) out of `args`.
fn compat_flag(args: &mut Vec<OsString>) -> Result<Option<String>> {
    let Some(first) = args.get(1).and_then(|a| a.to_str()) else {
        return Ok(None);
    };
    if let Some(name) = first.strip_prefix("--compat=") {
        let name = name.to_string();
        args.remove(1);
        return Ok(Some(name));
    }
    if first != "--compat" {
        return Ok(None);
    }
    let Some(name) = args.get(2).map(|a| a.to_string_lossy().into_owned()) else {
        return Err(Error::usage(
            "--compat needs a personality: ncat, openbsd or traditional",
        ));
    };
    args.drain(1..3);
    Ok(Some(name))
}

/// The tool being impersonated, for its grammar and its messages.
struct Tool {
    personality: Personality,
    /// As invoked (`nc`, `nc.openbsd`).
    program: String,
}

/// A getopt grammar.
struct Spec {
    /// Single letters that take no value.
    flags: &'static str,
    /// Single letters that take a value (`-w 5`, `-w5`).
    valued: &'static str,
    /// Long options (ncat): the name, whether it takes a value, and the
    /// letter it spells, if any.
    long: &'static [(&'static str, bool, Option<char>)],
}

/// OpenBSD nc's letters: Debian's (`-C` is CRLF, `-q`), and OpenBSD's TLS
/// letters that do not clash with them (`-c`, `-e`, `-H`, `-K`, `-o`, `-R`).
const OPENBSD: Spec = Spec {
    flags: "46bCcDdFhklNnrStUuvZz",
    valued: "eHIiKMmOoPpqRsTVWwXx",
    // netsmith's own messages say "see --help".
    long: &[("help", false, Some('h'))],
};

/// Debian's nc.traditional 1.10-47.
const TRADITIONAL: Spec = Spec {
    flags: "bChklnrtuvz",
    valued: "ceGgioqpsTw",
    long: &[("help", false, Some('h'))],
};

/// ncat 7.9x.
const NCAT: Spec = Spec {
    flags: "46UCkhlntuvz",
    valued: "cdeGgimopswx",
    long: &[
        ("unixsock", false, Some('U')),
        ("vsock", false, None),
        ("crlf", false, Some('C')),
        ("sh-exec", true, Some('c')),
        ("exec", true, Some('e')),
        ("lua-exec", true, None),
        ("max-conns", true, Some('m')),
        ("help", false, Some('h')),
        ("delay", true, Some('d')),
        ("output", true, Some('o')),
        ("hex-dump", true, Some('x')),
        ("idle-timeout", true, Some('i')),
        ("source-port", true, Some('p')),
        ("source", true, Some('s')),
        ("listen", false, Some('l')),
        ("keep-open", false, Some('k')),
        ("nodns", false, Some('n')),
        ("telnet", false, Some('t')),
        ("udp", false, Some('u')),
        ("sctp", false, None),
        ("verbose", false, Some('v')),
        ("wait", true, Some('w')),
        ("append-output", false, None),
        ("send-only", false, None),
        ("recv-only", false, None),
        ("no-shutdown", false, None),
        ("allow", true, None),
        ("allowfile", true, None),
        ("deny", true, None),
        ("denyfile", true, None),
        ("broker", false, None),
        ("chat", false, None),
        ("proxy", true, None),
        ("proxy-type", true, None),
        ("proxy-auth", true, None),
        ("proxy-dns", true, None),
        ("ssl", false, None),
        ("ssl-cert", true, None),
        ("ssl-key", true, None),
        ("ssl-verify", false, None),
        ("ssl-trustfile", true, None),
        ("ssl-ciphers", true, None),
        ("ssl-servername", true, None),
        ("ssl-alpn", true, None),
        ("version", false, None),
    ],
};

impl Tool {
    /// The refusal of an option the tool has and netsmith does not honour:
    /// what it does, and what netsmith offers instead (or that it has none).
    fn unsupported(&self, opt: &Opt, meaning: &str, instead: &str) -> Error {
        Error::usage(format!(
            "{} {} ({meaning}) is not supported: {instead}",
            self.program, opt.name
        ))
    }

    fn no_equivalent(&self, opt: &Opt, meaning: &str) -> Error {
        self.unsupported(opt, meaning, "netsmith has no equivalent")
    }

    /// An option the tool itself refuses in this line: `why` follows its
    /// name ("cannot be used with -l").
    fn conflict(&self, opt: &Opt, why: &str) -> Error {
        Error::usage(format!("{} {} {why}", self.program, opt.name))
    }
}

/// One option as typed: its name as the user spelled it (`-w`,
/// `--idle-timeout`), the letter or long name it stands for, and its value.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Opt {
    name: String,
    /// The letter (`w`) or, for a long option without one, the long name.
    key: String,
    value: Option<OsString>,
}

impl Opt {
    fn value(&self) -> OsString {
        self.value.clone().unwrap_or_default()
    }

    fn is(&self, key: &str) -> bool {
        self.key == key
    }
}

/// A command line split by getopt's rules: options (clustered letters,
/// values attached or apart, `--long[=VALUE]`), and the other words, which
/// may come between options as GNU getopt permutes them; `--` ends the
/// options.
#[derive(Debug, Default)]
struct Parsed {
    opts: Vec<Opt>,
    words: Vec<OsString>,
}

impl Parsed {
    fn has(&self, key: &str) -> bool {
        self.opts.iter().any(|o| o.is(key))
    }

    fn count(&self, key: &str) -> usize {
        self.opts.iter().filter(|o| o.is(key)).count()
    }
}

fn getopt(tool: &Tool, spec: &Spec, args: &[OsString]) -> Result<Parsed> {
    let mut parsed = Parsed::default();
    let mut iter = args.iter();
    let missing = |name: &str| {
        Error::usage(format!(
            "{} {name} needs a value (see netsmith --help)",
            tool.program
        ))
    };
    while let Some(arg) = iter.next() {
        let text = arg.to_string_lossy();
        if text == "--" {
            parsed.words.extend(iter.by_ref().cloned());
            break;
        }
        if let Some(long) = text.strip_prefix("--") {
            let (name, attached) = match long.split_once('=') {
                Some((n, v)) => (n, Some(OsString::from(v))),
                None => (long, None),
            };
            let Some(&(_, valued, letter)) = spec.long.iter().find(|(n, _, _)| *n == name) else {
                if name == "compat" {
                    return Err(Error::usage(
                        "--compat must be the first argument: netsmith --compat ncat|openbsd|traditional ...",
                    ));
                }
                return Err(unknown(tool, &format!("--{name}")));
            };
            let value = match (valued, attached) {
                (true, Some(v)) => Some(v),
                (true, None) => Some(iter.next().cloned().ok_or_else(|| missing(&text))?),
                (false, Some(_)) => {
                    return Err(Error::usage(format!(
                        "{} --{name} takes no value",
                        tool.program
                    )));
                }
                (false, None) => None,
            };
            parsed.opts.push(Opt {
                name: format!("--{name}"),
                key: letter.map_or_else(|| name.to_string(), String::from),
                value,
            });
            continue;
        }
        let Some(cluster) = text.strip_prefix('-').filter(|c| !c.is_empty()) else {
            parsed.words.push(arg.clone());
            continue;
        };
        for (at, letter) in cluster.char_indices() {
            let name = format!("-{letter}");
            if spec.flags.contains(letter) {
                parsed.opts.push(Opt {
                    name,
                    key: letter.to_string(),
                    value: None,
                });
                continue;
            }
            if !spec.valued.contains(letter) {
                return Err(unknown(tool, &name));
            }
            let rest = &cluster[at + letter.len_utf8()..];
            let value = if rest.is_empty() {
                iter.next().cloned().ok_or_else(|| missing(&name))?
            } else {
                OsString::from(rest)
            };
            parsed.opts.push(Opt {
                name,
                key: letter.to_string(),
                value: Some(value),
            });
            break;
        }
    }
    Ok(parsed)
}

fn unknown(tool: &Tool, name: &str) -> Error {
    Error::usage(format!(
        "{} {name} is not an option of {} (as {} netsmith reads {}'s options; its own: netsmith --help)",
        tool.program,
        tool.personality.tool(),
        tool.program,
        tool.personality.tool()
    ))
}

/// netsmith's line being built: the verbosity, the command, its flags and
/// its positional words.
struct Out {
    verbose: usize,
    listen: bool,
    flags: Vec<OsString>,
    words: Vec<OsString>,
    /// `-h`: netsmith's help of the command instead.
    help: bool,
}

impl Out {
    fn new(listen: bool, verbose: usize) -> Out {
        Out {
            verbose,
            listen,
            flags: Vec::new(),
            words: Vec::new(),
            help: false,
        }
    }

    fn flag(&mut self, flag: &str) {
        let flag = OsString::from(flag);
        if !self.flags.contains(&flag) {
            self.flags.push(flag);
        }
    }

    fn value(&mut self, flag: &str, value: impl Into<OsString>) {
        self.flags.push(flag.into());
        self.flags.push(value.into());
    }

    /// [`Out::finish`], refusing a client line without a target, in the
    /// tool's terms rather than netsmith's.
    fn finish_checked(self, tool: &Tool) -> Result<Vec<OsString>> {
        if !self.listen && !self.help && self.words.is_empty() {
            return Err(Error::usage(format!(
                "{} needs HOST PORT to connect, or -l to listen ({} -h for more)",
                tool.program, tool.program
            )));
        }
        Ok(self.finish())
    }

    fn finish(self) -> Vec<OsString> {
        let command = if self.listen { "listen" } else { "connect" };
        if self.help {
            return vec![command.into(), "--help".into()];
        }
        let mut out: Vec<OsString> = vec!["-v".into(); self.verbose];
        out.push(command.into());
        out.extend(self.flags);
        if !self.words.is_empty() {
            out.push("--".into());
            out.extend(self.words);
        }
        out
    }
}

/// `-U`: the one word is the socket's path.
fn unix_path(tool: &Tool, out: &mut Out, words: Vec<OsString>) -> Result<()> {
    let [path] = <[OsString; 1]>::try_from(words).map_err(|_| {
        Error::usage(format!(
            "{} -U takes one word, the socket's PATH",
            tool.program
        ))
    })?;
    out.value("-U", path);
    Ok(())
}

/// A seconds count of nc's `-q`: negative means wait forever, nc's default.
fn forever(value: &OsStr) -> bool {
    value.to_str().is_some_and(|v| v.starts_with('-'))
}

/// OpenBSD nc (Debian's netcat-openbsd 1.2xx, plus OpenBSD's TLS letters).
fn openbsd(tool: &Tool, p: Parsed) -> Result<Vec<OsString>> {
    let listen = p.has("l");
    let udp = p.has("u") && !p.has("U");
    let zero = p.has("z");
    let mut out = Out::new(listen, p.count("v"));
    for o in &p.opts {
        match o.key.as_str() {
            "4" | "6" | "n" | "u" | "C" | "N" => out.flag(&o.name),
            // -x and -X: see openbsd_proxy.
            "v" | "l" | "U" | "x" | "X" => {}
            "h" => out.help = true,
            "k" if !listen => return Err(tool.conflict(o, "(keep listening) needs -l")),
            "k" => out.flag("-k"),
            "z" if listen => return Err(tool.conflict(o, "cannot be used with -l")),
            "z" => out.flag("-z"),
            "d" => out.flag("--recv-only"),
            // Connections that cannot be made or are idle time out; a
            // listener waits for its client for ever.
            "w" if zero => out.value("-w", o.value()),
            "w" if listen => out.value("-i", o.value()),
            // A UDP client's idle time is how long it waits for replies.
            "w" if udp => out.value("--wait", o.value()),
            "w" => {
                out.value("-w", o.value());
                out.value("-i", o.value());
            }
            "q" if forever(&o.value()) => {}
            "q" => out.value("-q", o.value()),
            "s" => out.value("-s", o.value()),
            "p" => out.value("-p", o.value()),
            "c" => out.flag("--tls"),
            "e" => out.value("--sni", o.value()),
            "R" => out.value("--ca", o.value()),
            "H" => out.value("--pin", o.value()),
            "T" if o.value() == "noverify" => out.flag("--insecure"),
            "T" => return Err(tool.no_equivalent(o, "TOS / traffic class")),
            "K" => {
                return Err(tool.unsupported(
                    o,
                    "TLS client key",
                    "-C is CRLF here; use netsmith connect --tls --cert FILE --key FILE",
                ));
            }
            "i" => {
                return Err(tool.unsupported(
                    o,
                    "interval between lines",
                    "netsmith has no equivalent (netsmith's -i is an idle timeout)",
                ));
            }
            "P" => {
                return Err(tool.unsupported(
                    o,
                    "proxy user, password asked at the terminal",
                    "give both to netsmith: netsmith connect --proxy URL --proxy-auth USER:PASS HOST PORT",
                ));
            }
            "b" => return Err(tool.no_equivalent(o, "allow broadcast")),
            "D" => return Err(tool.no_equivalent(o, "socket debugging")),
            "F" => return Err(tool.no_equivalent(o, "pass the socket to stdout")),
            "I" => return Err(tool.no_equivalent(o, "TCP receive buffer size")),
            "O" => return Err(tool.no_equivalent(o, "TCP send buffer size")),
            "M" => return Err(tool.no_equivalent(o, "outgoing TTL")),
            "m" => return Err(tool.no_equivalent(o, "minimum incoming TTL")),
            "o" => return Err(tool.no_equivalent(o, "OCSP staple file")),
            "r" => return Err(tool.no_equivalent(o, "random ports")),
            "S" => return Err(tool.no_equivalent(o, "TCP MD5 signatures")),
            "t" => return Err(tool.no_equivalent(o, "telnet negotiation")),
            "V" => return Err(tool.no_equivalent(o, "routing table")),
            "W" => return Err(tool.no_equivalent(o, "receive limit")),
            "Z" => return Err(tool.no_equivalent(o, "DCCP")),
            _ => return Err(unknown(tool, &o.name)),
        }
    }
    openbsd_proxy(tool, &p, &mut out)?;
    if p.has("U") {
        unix_path(tool, &mut out, p.words)?;
        return Ok(out.finish());
    }
    if listen && p.has("p") && (p.words.len() > 1 || p.words.first().is_some_and(|w| is_number(w)))
    {
        return Err(Error::usage(format!(
            "{} -l: give the port once, as -l PORT, -l ADDR PORT or -l -p PORT",
            tool.program
        )));
    }
    out.words = p.words;
    out.finish_checked(tool)
}

/// OpenBSD's `-x ADDR[:PORT]` and `-X 4|5|connect` (SOCKS5 by default),
/// as netsmith's `--proxy` and `--proxy-type`: SOCKS5 is `socks5h`, since
/// OpenBSD nc hands the proxy the target's name; a port left out is the
/// protocol's (1080, 3128), as in nc.
fn openbsd_proxy(tool: &Tool, p: &Parsed, out: &mut Out) -> Result<()> {
    let last = |key: &str| p.opts.iter().rev().find(|o| o.is(key));
    let (Some(x), protocol) = (last("x"), last("X")) else {
        return match last("X") {
            Some(o) => Err(tool.conflict(o, "(proxy protocol) needs -x ADDR[:PORT]")),
            None => Ok(()),
        };
    };
    if p.has("l") {
        return Err(tool.conflict(x, "(proxy) cannot be used with -l"));
    }
    let kind = match protocol.map(|o| o.value().to_string_lossy().into_owned()) {
        None => "socks5h",
        Some(v) if v == "5" => "socks5h",
        Some(v) if v == "4" => "socks4",
        Some(v) if v == "connect" => "http",
        Some(v) => {
            return Err(Error::usage(format!(
                "{} -X {v}: the proxy protocol is 4 (SOCKS4), 5 (SOCKS5) or connect (HTTP)",
                tool.program
            )));
        }
    };
    out.value("--proxy", x.value());
    out.value("--proxy-type", kind);
    Ok(())
}

/// Debian's nc.traditional (Hobbit's nc 1.10): `-l -p PORT`, `-e`, `-c`,
/// `-k` is `SO_KEEPALIVE`.
fn traditional(tool: &Tool, p: Parsed) -> Result<Vec<OsString>> {
    let listen = p.has("l");
    let udp = p.has("u");
    let mut out = Out::new(listen, p.count("v"));
    let mut quit = None;
    for o in &p.opts {
        match o.key.as_str() {
            "n" | "u" | "C" => out.flag(&o.name),
            "v" | "l" => {}
            "h" => out.help = true,
            "z" if listen => return Err(tool.conflict(o, "cannot be used with -l")),
            "z" => out.flag("-z"),
            "e" => out.value("--exec", o.value()),
            "c" => out.value("--sh-exec", o.value()),
            // Connects, and the last reads after stdin's EOF, time out.
            "w" if listen => out.value("-w", o.value()),
            // A UDP client's last reads are its wait for replies.
            "w" if udp && !p.has("z") => out.value("--wait", o.value()),
            "w" => {
                out.value("-w", o.value());
                quit = quit.or(Some(o.value()));
            }
            "q" if forever(&o.value()) => quit = Some(OsString::new()),
            "q" => quit = Some(o.value()),
            "s" => out.value("-s", o.value()),
            "p" => out.value("-p", o.value()),
            "k" => {
                return Err(tool.unsupported(
                    o,
                    "SO_KEEPALIVE",
                    "netsmith has no equivalent (to keep listening, ncat's and OpenBSD's -k: netsmith listen -k)",
                ));
            }
            "i" => {
                return Err(tool.unsupported(
                    o,
                    "interval between lines",
                    "netsmith has no equivalent (netsmith's -i is an idle timeout)",
                ));
            }
            "o" => {
                return Err(tool.unsupported(
                    o,
                    "hex dump to a file",
                    "netsmith --hex dumps both directions to stderr (netsmith --hex HOST PORT 2>FILE)",
                ));
            }
            "b" => return Err(tool.no_equivalent(o, "allow broadcast")),
            "g" | "G" => return Err(tool.no_equivalent(o, "source routing")),
            "r" => return Err(tool.no_equivalent(o, "random ports")),
            "T" => return Err(tool.no_equivalent(o, "type of service")),
            "t" => return Err(tool.no_equivalent(o, "telnet negotiation")),
            _ => return Err(unknown(tool, &o.name)),
        }
    }
    if let Some(q) = quit.filter(|q| !q.is_empty()) {
        out.value("-q", q);
    }
    if listen {
        if !p.words.is_empty() {
            return Err(Error::usage(format!(
                "{} -l with HOST/PORT words (accept only that peer) is not supported: \
                 give -l -p PORT (netsmith listen --allow CIDR limits clients)",
                tool.program
            )));
        }
        // Without -p, nc 1.10 listens on a port the system picks.
        if !p.has("p") {
            out.words.push("0".into());
        }
    } else {
        out.words = p.words;
    }
    out.finish_checked(tool)
}

/// ncat's default port, for a listener given none and a client given only
/// a host.
const NCAT_PORT: &str = "31337";

/// Nmap's ncat.
fn ncat(tool: &Tool, p: Parsed) -> Result<Vec<OsString>> {
    // --broker and --chat listen, with or without -l.
    let listen = p.has("l") || p.has("broker") || p.has("chat");
    if listen && p.has("proxy-type") {
        return ncat_proxy_server(tool, p);
    }
    let mut out = Out::new(listen, p.count("v"));
    let listener_only = |o: &Opt| {
        (!listen).then(|| {
            tool.conflict(
                o,
                "applies to a listener only: add -l (ncat too refuses it with connect)",
            )
        })
    };
    for o in &p.opts {
        match o.key.as_str() {
            "4" | "6" | "n" | "u" | "C" => out.flag(&format!("-{}", o.key)),
            "v" | "l" | "U" => {}
            "h" => out.help = true,
            "version" => return Ok(vec!["--version".into()]),
            "k" if !listen => return Err(tool.conflict(o, "(keep listening) needs -l")),
            "k" => out.flag("-k"),
            "z" if listen => return Err(tool.conflict(o, "cannot be used with -l")),
            "z" => out.flag("-z"),
            "c" => out.value("--sh-exec", o.value()),
            "e" => out.value("--exec", o.value()),
            "m" => match listener_only(o) {
                Some(e) => return Err(e),
                None => out.value("--max-conns", o.value()),
            },
            "allow" | "deny" | "allowfile" | "denyfile" => match listener_only(o) {
                Some(e) => return Err(e),
                None => out.value(&format!("--{}", o.key), o.value()),
            },
            "broker" | "chat" | "send-only" | "recv-only" | "no-shutdown" => out.flag(&o.name),
            "i" => out.value("-i", o.value()),
            // A connect timeout: a listener and a UDP client (which has
            // no connect to wait for) take no notice of it, as ncat's.
            "w" if listen || p.has("u") => {}
            "w" => out.value("-w", o.value()),
            "s" => out.value("-s", o.value()),
            "p" => out.value("-p", o.value()),
            key if key.starts_with("ssl") => ncat_tls(tool, o, listen, &mut out)?,
            "proxy" | "proxy-type" | "proxy-auth" | "proxy-dns" if listen => {
                return Err(tool.conflict(o, "(proxy) cannot be used with -l"));
            }
            "proxy" | "proxy-type" | "proxy-auth" | "proxy-dns" => {
                out.value(&o.name, o.value());
            }
            _ => return Err(ncat_refusal(tool, o)),
        }
    }
    let (port_flag, zero) = (p.has("p"), p.has("z"));
    if p.has("U") {
        unix_path(tool, &mut out, p.words)?;
        return Ok(out.finish());
    }
    let mut words = p.words;
    match (listen, words.len()) {
        // ncat -l: every address, port 31337; netsmith keeps its loopback default.
        (true, 0) if !port_flag => words.push(NCAT_PORT.into()),
        // ncat -l WORD: a port if it is a number, else an address.
        (true, 1) if !port_flag && !is_number(&words[0]) => words.push(NCAT_PORT.into()),
        (false, 1) if !zero => words.push(NCAT_PORT.into()),
        _ => {}
    }
    out.words = words;
    out.finish_checked(tool)
}

/// `ncat -l --proxy-type http [ADDR] [PORT]`: ncat's HTTP proxy, which
/// is `netsmith proxy [ADDR:]PORT` (that also speaks SOCKS on the port).
fn ncat_proxy_server(tool: &Tool, p: Parsed) -> Result<Vec<OsString>> {
    let mut out: Vec<OsString> = vec!["-v".into(); p.count("v")];
    out.push("proxy".into());
    for o in &p.opts {
        match o.key.as_str() {
            "l" | "v" | "k" | "p" => {}
            "4" | "6" | "n" => out.push(format!("-{}", o.key).into()),
            "proxy-type" if o.value() == "http" => {}
            "proxy-type" => {
                return Err(tool.conflict(
                    o,
                    "with -l serves http only in ncat; netsmith proxy serves http, socks4 \
                     and socks5 on one port (give --proxy-type http)",
                ));
            }
            "proxy-auth" => out.extend(["--proxy-auth".into(), o.value()]),
            "m" => out.extend(["--max-conns".into(), o.value()]),
            "allow" | "deny" | "allowfile" | "denyfile" => {
                out.extend([format!("--{}", o.key).into(), o.value()]);
            }
            "i" => out.extend(["--idle-timeout".into(), o.value()]),
            "w" => out.extend(["-w".into(), o.value()]),
            _ => {
                return Err(tool.conflict(
                    o,
                    "does not apply to a proxy (-l --proxy-type http is netsmith proxy)",
                ));
            }
        }
    }
    let port = p.opts.iter().rev().find(|o| o.is("p")).map(Opt::value);
    let mut words = p.words.into_iter();
    let (addr, port) = match (words.next(), words.next(), port) {
        (Some(a), Some(b), None) => (Some(a), b),
        (Some(w), None, None) if is_number(&w) => (None, w),
        (Some(a), None, Some(p)) => (Some(a), p),
        (None, None, Some(p)) => (None, p),
        (Some(a), None, None) => (Some(a), NCAT_PORT.into()),
        (None, None, None) => (None, NCAT_PORT.into()),
        _ => {
            return Err(Error::usage(format!(
                "{} -l --proxy-type http takes [ADDR] [PORT]",
                tool.program
            )));
        }
    };
    let mut listen = OsString::new();
    if let Some(addr) = addr {
        let bracket = addr.to_str().is_some_and(|a| a.contains(':'));
        listen.push(if bracket { "[" } else { "" });
        listen.push(&addr);
        listen.push(if bracket { "]:" } else { ":" });
    }
    listen.push(&port);
    out.extend(["--".into(), listen]);
    Ok(out)
}

/// ncat's `--ssl*` options, as netsmith's TLS flags; each implies `--ssl`,
/// as in ncat.
fn ncat_tls(tool: &Tool, o: &Opt, listen: bool, out: &mut Out) -> Result<()> {
    let client_ca = || {
        tool.unsupported(
            o,
            "verify clients",
            "use netsmith listen --tls --client-ca FILE",
        )
    };
    out.flag("--tls");
    match o.key.as_str() {
        "ssl-verify" | "ssl-trustfile" if listen => return Err(client_ca()),
        // netsmith verifies the server's certificate whenever it speaks
        // TLS (its --insecure or --pin say otherwise).
        "ssl" | "ssl-verify" => {}
        "ssl-cert" => out.value("--cert", o.value()),
        "ssl-key" => out.value("--key", o.value()),
        "ssl-trustfile" => out.value("--ca", o.value()),
        "ssl-servername" => out.value("--sni", o.value()),
        "ssl-alpn" => out.value("--alpn", o.value()),
        "ssl-ciphers" => {
            return Err(tool.unsupported(
                o,
                "cipher list",
                "netsmith uses rustls' default cipher suites and has no equivalent",
            ));
        }
        _ => return Err(unknown(tool, &o.name)),
    }
    Ok(())
}

/// The refusal of an ncat option netsmith does not honour.
fn ncat_refusal(tool: &Tool, o: &Opt) -> Error {
    match o.key.as_str() {
        "d" => tool.no_equivalent(o, "delay between reads and writes"),
        "o" | "append-output" => tool.no_equivalent(o, "session log file"),
        "x" => tool.unsupported(
            o,
            "hex dump to a file",
            "netsmith --hex dumps both directions to stderr (netsmith --hex HOST PORT 2>FILE)",
        ),
        "lua-exec" => tool.unsupported(
            o,
            "Lua script",
            "netsmith runs no Lua; run the interpreter with -e or -c instead",
        ),
        "g" | "G" => tool.no_equivalent(o, "source routing"),
        "t" => tool.no_equivalent(o, "telnet negotiation"),
        "sctp" => tool.no_equivalent(o, "SCTP"),
        "vsock" => tool.no_equivalent(o, "vsock"),
        _ => unknown(tool, &o.name),
    }
}

fn is_number(word: &OsStr) -> bool {
    word.to_str()
        .is_some_and(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_digit()))
}

/// How this process speaks on stderr: the personality, the program name
/// its messages carry, and whether `-v` asked for the connection lines.
#[derive(Debug)]
struct Voice {
    personality: Personality,
    program: String,
    verbose: bool,
}

static VOICE: OnceLock<Voice> = OnceLock::new();

/// Sets the words of the `-v` lines for the rest of the process: those of
/// `line`'s personality, told when `verbose` (`-v` and not `-q`).
pub fn speak(line: &Line, verbose: bool) {
    let _ = VOICE.set(Voice {
        personality: line.personality,
        program: line.program.clone(),
        verbose,
    });
}

/// The voice of a personality, or `None` as netsmith.
fn voice() -> Option<&'static Voice> {
    VOICE
        .get()
        .filter(|v| v.personality != Personality::Netsmith)
}

/// What a connection's life says on stderr.
#[derive(Debug)]
pub enum Event<'a> {
    /// A listener is bound: its address (`None` for a Unix socket) and name.
    Listening {
        addr: Option<SocketAddr>,
        name: &'a str,
    },
    /// A client connected: the host as typed, the port, the peer's address.
    Connected {
        host: &'a str,
        port: u16,
        proto: Proto,
        peer: &'a str,
    },
    /// A listener accepted a client.
    Accepted {
        local: Option<SocketAddr>,
        peer: &'a crate::net::Peer,
    },
}

/// Tells `event` in the personality's words (with `-v` only, as the tools
/// do), and says whether it did: `false` as netsmith, whose own words the
/// caller then uses.
pub fn tell(event: &Event<'_>) -> bool {
    let Some(voice) = voice() else {
        return false;
    };
    if voice.verbose {
        for line in voice.lines(event) {
            eprintln!("{}", crate::error::printable(&line));
        }
    }
    true
}

impl Voice {
    fn lines(&self, event: &Event<'_>) -> Vec<String> {
        use crate::net::Peer;
        use Personality::{Ncat, Netsmith, OpenBsd, Traditional};
        match (self.personality, event) {
            // A UDP socket is "bound", not listening, in OpenBSD's words.
            (
                OpenBsd,
                Event::Listening {
                    addr: Some(a),
                    name,
                },
            ) => {
                let verb = if name.starts_with("udp://") {
                    "Bound"
                } else {
                    "Listening"
                };
                vec![format!("{verb} on {} {}", a.ip(), a.port())]
            }
            (Ncat, Event::Listening { addr, name }) => match addr {
                Some(a) => vec![format!("Ncat: Listening on {a}")],
                None => vec![format!("Ncat: Listening on {name}")],
            },
            (Traditional, Event::Listening { addr: Some(a), .. }) => {
                vec![format!("listening on [{}] {} ...", a.ip(), a.port())]
            }
            (_, Event::Listening { name, .. }) => vec![format!("Listening on {name}")],
            (
                OpenBsd,
                Event::Connected {
                    host, port, proto, ..
                },
            ) => vec![format!(
                "Connection to {host} {port} port [{proto}/{}] succeeded!",
                services::name_of(*port, *proto).unwrap_or("*")
            )],
            (Ncat, Event::Connected { peer, .. }) => vec![format!("Ncat: Connected to {peer}.")],
            (
                Traditional,
                Event::Connected {
                    host,
                    port,
                    proto,
                    peer,
                },
            ) => {
                let ip = peer
                    .parse::<SocketAddr>()
                    .map_or_else(|_| (*peer).to_string(), |a| a.ip().to_string());
                vec![format!(
                    "{} [{ip}] {port} ({}) open",
                    traditional_name(host),
                    services::name_of(*port, *proto).unwrap_or("?")
                )]
            }
            (OpenBsd, Event::Accepted { peer, .. }) => match peer {
                Peer::Inet(a) => vec![format!("Connection received on {} {}", a.ip(), a.port())],
                Peer::Unix(_) => vec!["Connection received on unix socket".into()],
            },
            (Ncat, Event::Accepted { peer, .. }) => match peer {
                Peer::Inet(a) => vec![
                    format!("Ncat: Connection from {}.", a.ip()),
                    format!("Ncat: Connection from {a}."),
                ],
                Peer::Unix(_) => vec!["Ncat: Connection from a client.".into()],
            },
            (Traditional, Event::Accepted { local, peer }) => {
                let local = local.map_or_else(|| "any".into(), |a| a.ip().to_string());
                vec![format!(
                    "connect to [{local}] from (UNKNOWN) {}",
                    bracketed(peer)
                )]
            }
            (Netsmith, _) => Vec::new(),
        }
    }
}

/// nc 1.10's `[IP] PORT` of a peer.
fn bracketed(peer: &crate::net::Peer) -> String {
    match peer {
        crate::net::Peer::Inet(a) => format!("[{}] {}", a.ip(), a.port()),
        other @ crate::net::Peer::Unix(_) => other.to_string(),
    }
}

/// nc 1.10 names a host by its reverse lookup, which netsmith does not
/// make: a name as typed, an address as "(UNKNOWN)", as under its -n.
fn traditional_name(host: &str) -> &str {
    if host.parse::<std::net::IpAddr>().is_ok() {
        "(UNKNOWN)"
    } else {
        host
    }
}

/// One port's line of `-z -v` in the personality's words; `None` as
/// netsmith, whose line the caller writes. `host` is as typed, `reason`
/// the failure's words ("Connection refused").
pub fn zero_line(
    host: &str,
    ip: std::net::IpAddr,
    port: u16,
    proto: Proto,
    service: Option<&str>,
    failure: Option<&str>,
) -> Option<String> {
    let voice = voice()?;
    Some(match (voice.personality, failure) {
        (Personality::Ncat, None) => format!("Ncat: Connected to {}.", SocketAddr::new(ip, port)),
        (Personality::Ncat, Some(reason)) => format!("Ncat: {reason}."),
        (Personality::Traditional, failure) => {
            let tail = failure.map_or_else(|| "open".to_string(), |r| format!(": {r}"));
            format!(
                "{} [{ip}] {port} ({}) {tail}",
                traditional_name(host),
                service.unwrap_or("?")
            )
        }
        // OpenBSD's words are netsmith's -z words, under the program's name.
        (_, None) => return None,
        (_, Some(reason)) => format!(
            "{}: connect to {host} port {port} ({proto}) failed: {reason}",
            voice.program
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    /// `args` run as `program`, as netsmith's line without argv[0].
    fn as_prog(program: &str, args: &[&str]) -> Result<Vec<String>> {
        let mut line = vec![program];
        line.extend(args);
        let t = translate(os(&line))?;
        Ok(t.args[1..]
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect())
    }

    #[track_caller]
    fn same(program: &str, args: &[&str], want: &[&str]) {
        let got = as_prog(program, args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
        assert_eq!(got, want, "{program} {args:?}");
        if !got.contains(&"--help".into()) {
            let mut full = vec!["netsmith".to_string()];
            full.extend(got);
            crate::cli::Cli::parse_line(full.iter().map(OsString::from).collect())
                .unwrap_or_else(|e| panic!("{program} {args:?} -> {full:?}: {e}"));
        }
    }

    #[track_caller]
    fn refused(program: &str, args: &[&str], words: &[&str]) {
        let err = as_prog(program, args).expect_err("refused");
        assert_eq!(err.exit_code(), crate::error::exit::USAGE);
        let text = err.to_string();
        assert!(!text.contains('\n'), "{text}");
        for w in words {
            assert!(text.contains(w), "{program} {args:?}: {text:?} lacks {w:?}");
        }
    }

    #[test]
    fn program_names_choose_the_personality() {
        for (name, p) in [
            ("nc", Personality::OpenBsd),
            ("/usr/bin/netcat", Personality::OpenBsd),
            ("./nc.openbsd", Personality::OpenBsd),
            ("ncat", Personality::Ncat),
            ("/tmp/x/nc.traditional", Personality::Traditional),
            ("netsmith", Personality::Netsmith),
            ("/usr/local/bin/netsmith", Personality::Netsmith),
            ("ncx", Personality::Netsmith),
        ] {
            assert_eq!(Personality::of_program(OsStr::new(name)), p, "{name}");
        }
    }

    #[test]
    fn netsmith_lines_pass_unchanged() {
        for line in [
            &["netsmith", "-l", "-p", "80"][..],
            &["netsmith", "-zv", "127.0.0.1", "22"],
            &["netsmith", "connect", "-e", "x"],
        ] {
            let t = translate(os(line)).unwrap();
            assert_eq!(t.args, os(line));
            assert_eq!(t.personality, Personality::Netsmith);
        }
        refused(
            "netsmith",
            &["-l", "1", "--compat", "ncat"],
            &["first argument"],
        );
    }

    #[test]
    fn compat_flag_picks_a_personality() {
        let t = translate(os(&["netsmith", "--compat", "ncat", "-lk", "9000"])).unwrap();
        assert_eq!(t.personality, Personality::Ncat);
        assert_eq!(t.program, "ncat");
        assert_eq!(t.args, os(&["netsmith", "listen", "-k", "--", "9000"]));
        let t = translate(os(&["netsmith", "--compat=traditional", "-l", "-p", "9"])).unwrap();
        assert_eq!(t.args, os(&["netsmith", "listen", "-p", "9"]));
        assert_eq!(t.program, "nc");
        // --compat wins over the program name too.
        let t = translate(os(&["nc", "--compat", "ncat", "-e", "cat", "h"])).unwrap();
        assert_eq!(t.personality, Personality::Ncat);
        refused(
            "netsmith",
            &["--compat", "gnu"],
            &["--compat", "gnu", "openbsd"],
        );
        refused("netsmith", &["--compat"], &["--compat needs"]);
    }

    #[test]
    fn openbsd_everyday_lines() {
        same(
            "nc",
            &["127.0.0.1", "8000"],
            &["connect", "--", "127.0.0.1", "8000"],
        );
        same("nc", &["-l", "8000"], &["listen", "--", "8000"]);
        same("nc", &["-l", "-p", "8000"], &["listen", "-p", "8000"]);
        same("nc", &["-lvp", "8000"], &["-v", "listen", "-p", "8000"]);
        same("nc", &["-lvvp8000"], &["-v", "-v", "listen", "-p", "8000"]);
        same("nc", &["-lk", "8000"], &["listen", "-k", "--", "8000"]);
        same("nc", &["8000", "-l"], &["listen", "--", "8000"]);
        same(
            "nc",
            &["-l", "127.0.0.1", "8000"],
            &["listen", "--", "127.0.0.1", "8000"],
        );
        same(
            "nc",
            &["-l", "-s", "::1", "-p", "80"],
            &["listen", "-s", "::1", "-p", "80"],
        );
        same("nc", &["-ul", "8000"], &["listen", "-u", "--", "8000"]);
        same(
            "nc",
            &["-u", "h", "53"],
            &["connect", "-u", "--", "h", "53"],
        );
        same(
            "nc",
            &["-4n", "h", "1"],
            &["connect", "-4", "-n", "--", "h", "1"],
        );
        same(
            "nc",
            &["-6", "::1", "1"],
            &["connect", "-6", "--", "::1", "1"],
        );
        same("netcat", &["-U", "/tmp/s"], &["connect", "-U", "/tmp/s"]);
        same("nc", &["-lU", "/tmp/s"], &["listen", "-U", "/tmp/s"]);
        same("nc", &["-uU", "/tmp/s"], &["connect", "-u", "-U", "/tmp/s"]);
        same("nc", &["-N", "h", "1"], &["connect", "-N", "--", "h", "1"]);
        same(
            "nc",
            &["-C", "h", "25"],
            &["connect", "-C", "--", "h", "25"],
        );
        same(
            "nc",
            &["-d", "h", "1"],
            &["connect", "--recv-only", "--", "h", "1"],
        );
        same(
            "nc",
            &["-s", "127.0.0.2", "-p", "5000", "h", "1"],
            &["connect", "-s", "127.0.0.2", "-p", "5000", "--", "h", "1"],
        );
        same(
            "nc",
            &["-q", "1", "h", "1"],
            &["connect", "-q", "1", "--", "h", "1"],
        );
        same("nc", &["-q", "-1", "h", "1"], &["connect", "--", "h", "1"]);
        same("nc", &["--", "h", "1"], &["connect", "--", "h", "1"]);
    }

    #[test]
    fn openbsd_wait_times_out_connects_and_idle_connections() {
        same(
            "nc",
            &["-w", "3", "h", "1"],
            &["connect", "-w", "3", "-i", "3", "--", "h", "1"],
        );
        same("nc", &["-w3", "-l", "1"], &["listen", "-i", "3", "--", "1"]);
        same(
            "nc",
            &["-uw1", "h", "53"],
            &["connect", "-u", "--wait", "1", "--", "h", "53"],
        );
        same(
            "nc",
            &["-zvw1", "127.0.0.1", "20-30"],
            &["-v", "connect", "-z", "-w", "1", "--", "127.0.0.1", "20-30"],
        );
        same(
            "nc",
            &["-zu", "127.0.0.1", "53", "123"],
            &["connect", "-z", "-u", "--", "127.0.0.1", "53", "123"],
        );
    }

    #[test]
    fn openbsd_tls_letters() {
        same(
            "nc",
            &["-c", "h", "443"],
            &["connect", "--tls", "--", "h", "443"],
        );
        same(
            "nc",
            &["-c", "-e", "name", "-R", "/ca.pem", "h", "443"],
            &[
                "connect", "--tls", "--sni", "name", "--ca", "/ca.pem", "--", "h", "443",
            ],
        );
        let pin = format!("SHA256:{}", "ab".repeat(32));
        same(
            "nc",
            &["-c", "-H", &pin, "h", "443"],
            &["connect", "--tls", "--pin", &pin, "--", "h", "443"],
        );
        same(
            "nc",
            &["-c", "-T", "noverify", "h", "443"],
            &["connect", "--tls", "--insecure", "--", "h", "443"],
        );
        same("nc", &["-lc", "443"], &["listen", "--tls", "--", "443"]);
        refused(
            "nc",
            &["-c", "-K", "k.pem", "h", "1"],
            &["nc -K", "--cert FILE --key FILE"],
        );
    }

    #[test]
    fn proxies_become_netsmith_proxy_flags() {
        // ssh's ProxyCommand idioms.
        same(
            "nc",
            &["-X", "5", "-x", "127.0.0.1:1080", "h", "22"],
            &[
                "connect",
                "--proxy",
                "127.0.0.1:1080",
                "--proxy-type",
                "socks5h",
                "--",
                "h",
                "22",
            ],
        );
        same(
            "nc",
            &["-x", "127.0.0.1", "h", "22"],
            &[
                "connect",
                "--proxy",
                "127.0.0.1",
                "--proxy-type",
                "socks5h",
                "--",
                "h",
                "22",
            ],
        );
        same(
            "nc",
            &["-X4", "-x[::1]:1080", "h", "22"],
            &[
                "connect",
                "--proxy",
                "[::1]:1080",
                "--proxy-type",
                "socks4",
                "--",
                "h",
                "22",
            ],
        );
        same(
            "netcat",
            &["-X", "connect", "-x", "127.0.0.1:3128", "h", "22"],
            &[
                "connect",
                "--proxy",
                "127.0.0.1:3128",
                "--proxy-type",
                "http",
                "--",
                "h",
                "22",
            ],
        );
        same(
            "ncat",
            &[
                "--proxy",
                "127.0.0.1:1080",
                "--proxy-type=socks5",
                "--proxy-auth",
                "u:p",
                "--proxy-dns",
                "remote",
                "h",
                "22",
            ],
            &[
                "connect",
                "--proxy",
                "127.0.0.1:1080",
                "--proxy-type",
                "socks5",
                "--proxy-auth",
                "u:p",
                "--proxy-dns",
                "remote",
                "--",
                "h",
                "22",
            ],
        );
        same(
            "ncat",
            &["--proxy", "127.0.0.1:3128", "h", "22"],
            &["connect", "--proxy", "127.0.0.1:3128", "--", "h", "22"],
        );
    }

    #[test]
    fn openbsd_refusals_name_the_flag() {
        for (args, words) in [
            (
                &["-Pme", "-x", "p", "h", "22"][..],
                &["nc -P (proxy user", "--proxy-auth USER:PASS"][..],
            ),
            (
                &["-X", "5", "h", "22"],
                &["nc -X (proxy protocol) needs -x"],
            ),
            (
                &["-X", "6", "-x", "p", "h", "22"],
                &["nc -X 6: the proxy protocol is 4"],
            ),
            (
                &["-l", "-x", "p", "1"],
                &["nc -x (proxy) cannot be used with -l"],
            ),
            (
                &["-i", "1", "h", "1"],
                &["nc -i (interval between lines)", "idle timeout"],
            ),
            (
                &["-b", "-u", "h", "1"],
                &["nc -b (allow broadcast)", "no equivalent"],
            ),
            (&["-k", "h", "1"], &["nc -k (keep listening) needs -l"]),
            (&["-lz", "1"], &["nc -z cannot be used with -l"]),
            (&["-T", "lowdelay", "h", "1"], &["nc -T"]),
            (&["-Z", "h", "1"], &["DCCP"]),
            (&["-Q", "h", "1"], &["-Q is not an option of OpenBSD nc"]),
            (
                &["--proxy", "h"],
                &["--proxy is not an option of OpenBSD nc"],
            ),
            (&["-w"], &["nc -w needs a value"]),
            (&["-U", "a", "b"], &["-U takes one word"]),
            (&["-l", "-p", "9000", "9001"], &["give the port once"]),
            (&["-v"], &["nc needs HOST PORT to connect, or -l to listen"]),
        ] {
            refused("nc", args, words);
        }
        for letter in ["D", "F", "r", "S", "t"] {
            refused(
                "nc",
                &[&format!("-{letter}"), "h", "1"],
                &[&format!("nc -{letter} (")],
            );
        }
        for letter in ["I", "O", "M", "m", "o", "V", "W"] {
            refused(
                "nc",
                &[&format!("-{letter}"), "1", "h", "1"],
                &[&format!("nc -{letter} (")],
            );
        }
    }

    #[test]
    fn ncat_everyday_lines() {
        same("ncat", &["h", "80"], &["connect", "--", "h", "80"]);
        same("ncat", &["h"], &["connect", "--", "h", "31337"]);
        same("ncat", &["-l"], &["listen", "--", "31337"]);
        same("ncat", &["-l", "9000"], &["listen", "--", "9000"]);
        same("ncat", &["-l", "::1"], &["listen", "--", "::1", "31337"]);
        same(
            "ncat",
            &["-l", "::1", "9000"],
            &["listen", "--", "::1", "9000"],
        );
        same("ncat", &["-l", "-p", "9000"], &["listen", "-p", "9000"]);
        same(
            "ncat",
            &["--listen", "--source-port=9000"],
            &["listen", "-p", "9000"],
        );
        same(
            "ncat",
            &["-lkv", "9000"],
            &["-v", "listen", "-k", "--", "9000"],
        );
        same(
            "ncat",
            &["--keep-open", "-l", "9000"],
            &["listen", "-k", "--", "9000"],
        );
        same("ncat", &["-lu", "9000"], &["listen", "-u", "--", "9000"]);
        same(
            "ncat",
            &["--udp", "h", "53"],
            &["connect", "-u", "--", "h", "53"],
        );
        same(
            "ncat",
            &["-4", "--nodns", "h", "1"],
            &["connect", "-4", "-n", "--", "h", "1"],
        );
        same("ncat", &["-U", "/tmp/s"], &["connect", "-U", "/tmp/s"]);
        same("ncat", &["-lU", "/tmp/s"], &["listen", "-U", "/tmp/s"]);
        same(
            "ncat",
            &["--unixsock", "-l", "/tmp/s"],
            &["listen", "-U", "/tmp/s"],
        );
    }

    #[test]
    fn ncat_session_flags() {
        same(
            "ncat",
            &["-C", "h", "25"],
            &["connect", "-C", "--", "h", "25"],
        );
        same(
            "ncat",
            &["--crlf", "h", "25"],
            &["connect", "-C", "--", "h", "25"],
        );
        same(
            "ncat",
            &["-w", "2", "h", "1"],
            &["connect", "-w", "2", "--", "h", "1"],
        );
        same(
            "ncat",
            &["--wait", "500ms", "h", "1"],
            &["connect", "-w", "500ms", "--", "h", "1"],
        );
        // ncat takes no notice of -w in listen mode.
        same("ncat", &["-l", "-w", "2", "1"], &["listen", "--", "1"]);
        same(
            "ncat",
            &["-u", "-w", "2", "h", "1"],
            &["connect", "-u", "--", "h", "1"],
        );
        same(
            "ncat",
            &["-i", "5s", "h", "1"],
            &["connect", "-i", "5s", "--", "h", "1"],
        );
        same(
            "ncat",
            &["-l", "--idle-timeout", "1m", "1"],
            &["listen", "-i", "1m", "--", "1"],
        );
        same(
            "ncat",
            &["-s", "127.0.0.2", "h", "1"],
            &["connect", "-s", "127.0.0.2", "--", "h", "1"],
        );
        same(
            "ncat",
            &["-l", "-s", "127.0.0.2", "-p", "1"],
            &["listen", "-s", "127.0.0.2", "-p", "1"],
        );
        same(
            "ncat",
            &["-p", "5000", "h", "1"],
            &["connect", "-p", "5000", "--", "h", "1"],
        );
        same(
            "ncat",
            &["-zv", "h", "22"],
            &["-v", "connect", "-z", "--", "h", "22"],
        );
        same(
            "ncat",
            &["--send-only", "h", "1"],
            &["connect", "--send-only", "--", "h", "1"],
        );
        same(
            "ncat",
            &["--recv-only", "h", "1"],
            &["connect", "--recv-only", "--", "h", "1"],
        );
        same(
            "ncat",
            &["--no-shutdown", "h", "1"],
            &["connect", "--no-shutdown", "--", "h", "1"],
        );
        same(
            "ncat",
            &["-lk", "-m", "5", "1"],
            &["listen", "-k", "--max-conns", "5", "--", "1"],
        );
        same(
            "ncat",
            &["-lk", "--max-conns=5", "1"],
            &["listen", "-k", "--max-conns", "5", "--", "1"],
        );
    }

    #[test]
    fn ncat_http_proxy_server_is_netsmith_proxy() {
        same(
            "ncat",
            &["-l", "--proxy-type", "http", "8080"],
            &["proxy", "--", "8080"],
        );
        same(
            "ncat",
            &[
                "-lv",
                "--proxy-type=http",
                "--proxy-auth",
                "u:p",
                "::1",
                "8080",
                "-m",
                "5",
            ],
            &[
                "-v",
                "proxy",
                "--proxy-auth",
                "u:p",
                "--max-conns",
                "5",
                "--",
                "[::1]:8080",
            ],
        );
        same(
            "ncat",
            &[
                "-l",
                "-p",
                "3128",
                "--proxy-type",
                "http",
                "--allow",
                "10.0.0.0/8",
            ],
            &["proxy", "--allow", "10.0.0.0/8", "--", "3128"],
        );
        same(
            "ncat",
            &["-l", "--proxy-type", "http"],
            &["proxy", "--", "31337"],
        );
        refused(
            "ncat",
            &["-l", "--proxy-type", "socks4", "8080"],
            &["ncat --proxy-type", "http only", "netsmith proxy"],
        );
        refused(
            "ncat",
            &["-l", "--proxy-type", "http", "--exec", "cat", "8080"],
            &["ncat --exec", "does not apply to a proxy"],
        );
    }

    #[test]
    fn ncat_exec_broker_and_access_become_netsmith_spellings() {
        same(
            "ncat",
            &["-lk", "9000", "-e", "/bin/cat"],
            &["listen", "-k", "--exec", "/bin/cat", "--", "9000"],
        );
        same(
            "ncat",
            &["-l", "9000", "--exec", "/bin/cat -u"],
            &["listen", "--exec", "/bin/cat -u", "--", "9000"],
        );
        same(
            "ncat",
            &["-lk", "9000", "-c", "echo hi"],
            &["listen", "-k", "--sh-exec", "echo hi", "--", "9000"],
        );
        same(
            "ncat",
            &["--sh-exec=cat", "h", "1"],
            &["connect", "--sh-exec", "cat", "--", "h", "1"],
        );
        same(
            "ncat",
            &["-e", "/bin/cat", "h", "1"],
            &["connect", "--exec", "/bin/cat", "--", "h", "1"],
        );
        same(
            "ncat",
            &["-l", "--broker", "9000"],
            &["listen", "--broker", "--", "9000"],
        );
        same(
            "ncat",
            &["--broker", "9000"],
            &["listen", "--broker", "--", "9000"],
        );
        same(
            "ncat",
            &["--chat", "9000"],
            &["listen", "--chat", "--", "9000"],
        );
        same(
            "ncat",
            &["-l", "--allow", "127.0.0.1", "--deny=10.0.0.0/8", "9000"],
            &[
                "listen",
                "--allow",
                "127.0.0.1",
                "--deny",
                "10.0.0.0/8",
                "--",
                "9000",
            ],
        );
        same(
            "ncat",
            &["-l", "--allowfile", "a.txt", "--denyfile", "d.txt", "9000"],
            &[
                "listen",
                "--allowfile",
                "a.txt",
                "--denyfile",
                "d.txt",
                "--",
                "9000",
            ],
        );
        same(
            "ncat",
            &[
                "-lk",
                "-m",
                "3",
                "--allow",
                "127.0.0.0/8",
                "-e",
                "/bin/cat",
                "9000",
            ],
            &[
                "listen",
                "-k",
                "--max-conns",
                "3",
                "--allow",
                "127.0.0.0/8",
                "--exec",
                "/bin/cat",
                "--",
                "9000",
            ],
        );
    }

    #[test]
    fn ncat_ssl_becomes_tls() {
        same(
            "ncat",
            &["--ssl", "h", "443"],
            &["connect", "--tls", "--", "h", "443"],
        );
        same(
            "ncat",
            &["--ssl-verify", "h", "443"],
            &["connect", "--tls", "--", "h", "443"],
        );
        same(
            "ncat",
            &[
                "--ssl",
                "--ssl-verify",
                "--ssl-trustfile",
                "ca.pem",
                "--ssl-servername",
                "n",
                "--ssl-alpn",
                "h2",
                "h",
                "443",
            ],
            &[
                "connect", "--tls", "--ca", "ca.pem", "--sni", "n", "--alpn", "h2", "--", "h",
                "443",
            ],
        );
        same(
            "ncat",
            &[
                "-l",
                "--ssl",
                "--ssl-cert",
                "c.pem",
                "--ssl-key",
                "k.pem",
                "443",
            ],
            &[
                "listen", "--tls", "--cert", "c.pem", "--key", "k.pem", "--", "443",
            ],
        );
        same(
            "ncat",
            &["-l", "--ssl", "443"],
            &["listen", "--tls", "--", "443"],
        );
        refused(
            "ncat",
            &["--ssl-ciphers", "ALL", "h", "1"],
            &["ncat --ssl-ciphers (cipher list)"],
        );
        refused("ncat", &["-l", "--ssl-verify", "1"], &["--client-ca FILE"]);
    }

    #[test]
    fn ncat_refusals_name_the_flag() {
        for (args, words) in [
            (
                &["-l", "--proxy", "127.0.0.1:1080", "1"][..],
                &["ncat --proxy (proxy) cannot be used with -l"][..],
            ),
            (
                &["-d", "1", "h", "1"],
                &["ncat -d (delay between reads and writes)", "no equivalent"],
            ),
            (&["--delay", "1", "h", "1"], &["ncat --delay ("]),
            (
                &["-x", "dump", "h", "1"],
                &["ncat -x (hex dump to a file)", "--hex"],
            ),
            (&["-o", "log", "h", "1"], &["ncat -o (session log file)"]),
            (&["--append-output", "h", "1"], &["--append-output"]),
            (&["--lua-exec", "x.lua", "h", "1"], &["Lua", "-e or -c"]),
            (&["-t", "h", "1"], &["telnet"]),
            (&["-g", "a", "h", "1"], &["source routing"]),
            (&["--sctp", "h", "1"], &["SCTP"]),
            (&["--vsock", "h", "1"], &["vsock"]),
            (
                &["-m", "3", "h", "1"],
                &["ncat -m applies to a listener only: add -l"],
            ),
            (
                &["--allow", "127.0.0.1", "h", "1"],
                &["ncat --allow", "add -l"],
            ),
            (
                &["--denyfile", "f", "h", "1"],
                &["ncat --denyfile", "add -l"],
            ),
            (&["-lz", "1"], &["cannot be used with -l"]),
            (&["-k", "h", "1"], &["ncat -k (keep listening) needs -l"]),
            (&[], &["ncat needs HOST PORT"]),
            (&["-X", "5", "h", "1"], &["-X is not an option of ncat"]),
            (
                &["--bogus", "h", "1"],
                &["--bogus is not an option of ncat"],
            ),
            (&["--ssl=yes", "h", "1"], &["--ssl takes no value"]),
        ] {
            refused("ncat", args, words);
        }
    }

    #[test]
    fn traditional_everyday_lines() {
        let t = "nc.traditional";
        same(t, &["h", "80"], &["connect", "--", "h", "80"]);
        same(t, &["-l", "-p", "9000"], &["listen", "-p", "9000"]);
        same(t, &["-lvp", "9000"], &["-v", "listen", "-p", "9000"]);
        // Without -p, nc 1.10 listens on a port the system picks.
        same(t, &["-l"], &["listen", "--", "0"]);
        same(
            t,
            &["-l", "-s", "127.0.0.2", "-p", "9"],
            &["listen", "-s", "127.0.0.2", "-p", "9"],
        );
        same(t, &["-u", "h", "53"], &["connect", "-u", "--", "h", "53"]);
        same(
            t,
            &["-n", "-C", "h", "25"],
            &["connect", "-n", "-C", "--", "h", "25"],
        );
        same(
            t,
            &["-q", "2", "h", "1"],
            &["connect", "-q", "2", "--", "h", "1"],
        );
        same(t, &["-q", "-1", "h", "1"], &["connect", "--", "h", "1"]);
        // -w: the connect's timeout and, without -q, the last reads'.
        same(
            t,
            &["-w", "3", "h", "1"],
            &["connect", "-w", "3", "-q", "3", "--", "h", "1"],
        );
        same(
            t,
            &["-w", "3", "-q", "1", "h", "1"],
            &["connect", "-w", "3", "-q", "1", "--", "h", "1"],
        );
        same(
            t,
            &["-l", "-w", "3", "-p", "1"],
            &["listen", "-w", "3", "-p", "1"],
        );
        same(
            t,
            &["-zv", "h", "20-30"],
            &["-v", "connect", "-z", "--", "h", "20-30"],
        );
        same(
            t,
            &["-s", "127.0.0.2", "-p", "5000", "h", "1"],
            &["connect", "-s", "127.0.0.2", "-p", "5000", "--", "h", "1"],
        );
        same(
            t,
            &["-l", "-p", "9000", "-e", "/bin/cat"],
            &["listen", "-p", "9000", "--exec", "/bin/cat"],
        );
        same(
            t,
            &["-l", "-p", "9000", "-c", "echo hi"],
            &["listen", "-p", "9000", "--sh-exec", "echo hi"],
        );
        same(
            t,
            &["-e", "/bin/cat", "h", "1"],
            &["connect", "--exec", "/bin/cat", "--", "h", "1"],
        );
    }

    #[test]
    fn traditional_refusals_name_the_flag() {
        let t = "nc.traditional";
        for (args, words) in [
            (
                &["-k", "h", "1"][..],
                &["nc.traditional -k (SO_KEEPALIVE)", "netsmith listen -k"][..],
            ),
            (&["-i", "1", "h", "1"], &["-i (interval between lines)"]),
            (
                &["-o", "f", "h", "1"],
                &["-o (hex dump to a file)", "--hex"],
            ),
            (&["-b", "h", "1"], &["broadcast"]),
            (&["-g", "gw", "h", "1"], &["source routing"]),
            (&["-r", "h", "1"], &["random ports"]),
            (&["-T", "8", "h", "1"], &["type of service"]),
            (&["-t", "h", "1"], &["telnet"]),
            (
                &["-l", "-p", "1", "h", "2"],
                &["accept only that peer", "-l -p PORT"],
            ),
            (&["-lz", "-p", "1"], &["cannot be used with -l"]),
            (
                &["-x", "p", "h", "1"],
                &["-x is not an option of traditional nc"],
            ),
            (
                &["-4", "h", "1"],
                &["-4 is not an option of traditional nc"],
            ),
        ] {
            refused(t, args, words);
        }
    }

    #[test]
    fn help_and_version() {
        assert_eq!(as_prog("nc", &["-h"]).unwrap(), ["connect", "--help"]);
        assert_eq!(as_prog("nc", &["-lh"]).unwrap(), ["listen", "--help"]);
        assert_eq!(as_prog("nc", &["--help"]).unwrap(), ["connect", "--help"]);
        assert_eq!(
            as_prog("nc.traditional", &["--help"]).unwrap(),
            ["connect", "--help"]
        );
        assert_eq!(as_prog("ncat", &["--help"]).unwrap(), ["connect", "--help"]);
        assert_eq!(as_prog("ncat", &["--version"]).unwrap(), ["--version"]);
    }

    #[test]
    fn non_utf8_words_pass_through() {
        use std::os::unix::ffi::OsStrExt;
        let path = OsStr::from_bytes(b"/tmp/\xff");
        let t = translate(vec!["nc".into(), "-U".into(), path.into()]).unwrap();
        assert_eq!(t.args[3], path);
    }
}
