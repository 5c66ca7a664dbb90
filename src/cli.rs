//! The command line: the top-level parser, the flag groups several commands
//! share, and the nc-style spellings (`netsmith -l -p 8080`,
//! `netsmith -u host 53`) rewritten to their commands.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Arg, ArgAction, Args, CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::net::{Family, Resolve};
use crate::session;

const AFTER_HELP: &str = "\
Exit status: 0 success; 1 the network said no (refused, unreachable, reset, timed out,
no reply, no such host); 2 bad input or a local refusal (malformed address, port that
cannot be bound, missing file or privilege); 130 interrupted.

nc style also works: `netsmith -l -p 8080` listens, `netsmith HOST PORT` connects,
`netsmith -zv HOST 22 8000-8010` checks which ports answer. Run as nc, netcat,
nc.openbsd, ncat or nc.traditional (a link), or with `--compat ncat|openbsd|traditional`
first, netsmith reads that tool's command line.";

/// netsmith: talk to ports, run small servers, on TCP, UDP and Unix sockets.
#[derive(Debug, Parser)]
#[command(name = "netsmith", version, after_help = AFTER_HELP, propagate_version = true)]
pub struct Cli {
    /// Say more on stderr: -v connections and state changes, -vv debug, -vvv trace.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,

    /// Say less: errors only, no "listening on" line. Before or after the
    /// command, except that after `connect`/`listen` `-q DUR` is nc's
    /// quit-after-EOF and after `ping` its summary-only flag.
    #[arg(short = 'q', long)]
    pub quiet: bool,

    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Connect to a port: stdin to the socket, the socket to stdout.
    Connect(crate::connect::ConnectArgs),
    /// Wait for a client and pipe it to stdin/stdout (-k: many clients).
    Listen(crate::listen::ListenArgs),
    /// Run the classic services: echo, discard, chargen, qotd, daytime, time, banner.
    Serve(crate::serve::ServeArgs),
    /// Find open ports: a TCP connect scan (-u: UDP probes), loopback unless --authorized.
    Scan(crate::scan::ScanArgs),
    /// Load-test a server: echo round trips, streams, connection rate, UDP.
    Bench(crate::bench::BenchArgs),
    /// Capture packets (`AF_PACKET`) and print them like tcpdump, or write a pcap.
    Sniff(crate::sniff::SniffArgs),
    /// Names to addresses and back, this host's name, service names and ports.
    Resolve(crate::resolve::ResolveArgs),
    /// ICMP echo (raw or unprivileged ICMP socket), or a TCP connect ping (--tcp).
    Ping(crate::ping::PingArgs),
    /// Run every system of the socket tutorials live on loopback, both sides shown.
    Demo,
    /// Forward between two endpoints: TCP, UDP, Unix sockets, TLS, stdio, programs.
    Relay(crate::relay::RelayArgs),
    /// Be a SOCKS4/4a, SOCKS5 and HTTP CONNECT proxy on one port (loopback unless told).
    Proxy(crate::relay::ProxyCommandArgs),
    /// Script a dialogue: connect, send, expect a reply, one step at a time.
    Script(crate::script::ScriptArgs),
}

impl Command {
    /// Worker threads for a command that should use several cores (a
    /// server, a load generator); `None` for a single-threaded command.
    pub fn worker_threads(&self) -> Option<usize> {
        match self {
            Command::Serve(_) | Command::Proxy(_) => Some(crate::runtime::cores()),
            Command::Bench(args) => Some(crate::bench::threads(args)),
            // Each client's program is a process of its own: several
            // threads keep many of them fed at once.
            Command::Listen(args) if args.keep_open && args.exec.given() => {
                Some(crate::runtime::cores())
            }
            Command::Relay(args) if args.serves_many() => Some(crate::runtime::cores()),
            _ => None,
        }
    }
}

/// `-4`, `-6`, `-n`.
#[derive(Debug, Args, Clone, Copy)]
pub struct FamilyArgs {
    /// Use IPv4 only.
    #[arg(short = '4', conflicts_with = "ipv6")]
    pub ipv4: bool,
    /// Use IPv6 only.
    #[arg(short = '6')]
    pub ipv6: bool,
    /// Numeric addresses only: never look up a name.
    #[arg(short = 'n', long = "numeric")]
    pub numeric: bool,
}

impl FamilyArgs {
    /// The resolution rules these flags ask for.
    pub fn resolve(self) -> Resolve {
        let family = match (self.ipv4, self.ipv6) {
            (true, _) => Family::V4,
            (_, true) => Family::V6,
            _ => Family::Any,
        };
        Resolve {
            family,
            numeric: self.numeric,
        }
    }
}

/// The stream-session flags shared by `connect` and `listen`.
#[derive(Debug, Args, Clone)]
pub struct SessionArgs {
    /// Quit this long after EOF on stdin, even if the peer has not closed (nc -q).
    #[arg(short = 'q', value_name = "DUR", value_parser = duration)]
    pub quit_after_eof: Option<Duration>,
    /// Shut down the write side at EOF on stdin: the default, accepted for OpenBSD nc.
    #[arg(short = 'N')]
    pub shutdown: bool,
    /// Leave the write side open at EOF on stdin.
    #[arg(long, conflicts_with = "shutdown")]
    pub no_shutdown: bool,
    /// Send TEXT instead of reading stdin (then half-close as at stdin EOF).
    #[arg(long, value_name = "TEXT", conflicts_with = "recv_only")]
    pub send: Option<String>,
    /// Only receive: never read stdin, never shut down the write side.
    #[arg(long, conflicts_with = "send_only")]
    pub recv_only: bool,
    /// Only send: discard what arrives (still waits for the peer to close).
    #[arg(long)]
    pub send_only: bool,
    /// Send LF as CRLF (for line protocols such as SMTP or HTTP).
    #[arg(short = 'C', long)]
    pub crlf: bool,
    /// Close a connection after this long with no data either way.
    #[arg(short = 'i', long = "idle-timeout", value_name = "DUR", value_parser = timeout)]
    pub idle_timeout: Option<Duration>,
    /// Hexdump both directions on stderr (`>` sent, `<` received).
    #[arg(long)]
    pub hex: bool,
}

impl SessionArgs {
    /// The session policy these flags ask for.
    pub fn options(&self) -> session::Options {
        session::Options {
            send: !self.recv_only,
            recv: !self.send_only,
            shutdown_on_eof: !self.no_shutdown,
            quit_after_eof: self.quit_after_eof,
            idle: self.idle_timeout,
            crlf: self.crlf,
            hex: self.hex,
            ..session::Options::default()
        }
    }

    /// Whether stdin is read at all.
    pub fn reads_stdin(&self) -> bool {
        !self.recv_only && self.send.is_none()
    }
}

/// A program as the peer (`connect` and `listen`): `--exec`/`-e` and
/// `--sh-exec`/`-c`, as ncat spells them.
#[derive(Debug, Args, Clone)]
pub struct ExecArgs {
    /// Run PROG with its stdin and stdout as the connection, one per client
    /// (split into arguments as a shell would, but without one; ncat -e).
    /// It sees ncat's environment variables (the remote and local address
    /// and port, the protocol); its stderr is netsmith's.
    #[arg(
        short = 'e',
        long = "exec",
        value_name = "PROG",
        conflicts_with_all = ["sh_exec", "send", "recv_only", "send_only"]
    )]
    pub exec: Option<String>,
    /// Run CMD through /bin/sh -c, as --exec runs PROG (ncat -c).
    #[arg(
        short = 'c',
        long = "sh-exec",
        value_name = "CMD",
        conflicts_with_all = ["send", "recv_only", "send_only"]
    )]
    pub sh_exec: Option<String>,
}

impl ExecArgs {
    /// Whether a program was asked for.
    pub fn given(&self) -> bool {
        self.exec.is_some() || self.sh_exec.is_some()
    }

    /// The program asked for, checked to be runnable (a missing one is
    /// exit 2 before anything is bound), and how the user spelled it (for
    /// the warning a listener prints).
    pub fn program(&self) -> crate::Result<Option<(crate::exec::Program, String)>> {
        use crate::exec::{Program, SplitError, split};
        let program = match (&self.exec, &self.sh_exec) {
            (Some(line), _) => match split(line) {
                Ok(argv) => (Program::Exec(argv), format!("--exec {line}")),
                Err(SplitError::Unbalanced) => {
                    return Err(crate::Error::usage(format!(
                        "unbalanced quotes in --exec \"{line}\": close every ' and \" \
                         (or use --sh-exec for a shell command line)"
                    )));
                }
                Err(SplitError::Empty) => {
                    return Err(crate::Error::usage(
                        "empty --exec: give a program, for example --exec /bin/cat",
                    ));
                }
            },
            (None, Some(line)) if line.trim().is_empty() => {
                return Err(crate::Error::usage(
                    "empty --sh-exec: give a command line, for example --sh-exec 'date; cat'",
                ));
            }
            (None, Some(line)) => (Program::Shell(line.clone()), format!("--sh-exec {line}")),
            (None, None) => return Ok(None),
        };
        program.0.check()?;
        Ok(Some(program))
    }
}

/// The refusal of `connect --exec` over datagrams, naming what works.
pub fn exec_needs_stream() -> crate::Error {
    crate::Error::usage(
        "connect --exec and --sh-exec join a program to a stream: TCP (the default), --tls \
         or a Unix stream socket; drop -u (or udp://, unixgram:). listen -u --exec runs a \
         program per sender",
    )
}

/// Who a server serves and how many at once, ncat's access flags, declared
/// once for every server (`listen`, `serve`, `relay`).
#[derive(Debug, Args, Clone)]
pub struct AccessArgs {
    /// Most connections served at once (default: as many as the descriptor
    /// limit allows, keeping 64 spare); others wait in the backlog.
    #[arg(short = 'm', long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_conns: Option<u32>,
    /// Serve only clients in this block (repeatable).
    #[arg(long, value_name = "CIDR", value_parser = crate::acl::parse_cidr)]
    pub allow: Vec<ipnet::IpNet>,
    /// Refuse clients in this block (repeatable; wins over --allow).
    #[arg(long, value_name = "CIDR", value_parser = crate::acl::parse_cidr)]
    pub deny: Vec<ipnet::IpNet>,
    /// As --allow, for each address or CIDR block listed in FILE (one a
    /// line, # comments).
    #[arg(long, value_name = "FILE")]
    pub allowfile: Vec<PathBuf>,
    /// As --deny, for each address or CIDR block listed in FILE (one a
    /// line, # comments).
    #[arg(long, value_name = "FILE")]
    pub denyfile: Vec<PathBuf>,
}

impl AccessArgs {
    /// The `--allow`/`--deny` lists, with the files' rules added.
    ///
    /// # Errors
    ///
    /// A file that cannot be read, or a line in it that is not an address
    /// or CIDR block (exit 2, naming the file and line).
    pub fn acl(&self) -> crate::Result<crate::acl::Acl> {
        let (mut allow, mut deny) = (self.allow.clone(), self.deny.clone());
        for path in &self.allowfile {
            allow.extend(crate::acl::read_rules("--allowfile", path)?);
        }
        for path in &self.denyfile {
            deny.extend(crate::acl::read_rules("--denyfile", path)?);
        }
        Ok(crate::acl::Acl::new(allow, deny))
    }

    /// Whether any rule was given (an empty `--allowfile` counts: it
    /// allows nobody).
    pub fn filters(&self) -> bool {
        !(self.allow.is_empty()
            && self.deny.is_empty()
            && self.allowfile.is_empty()
            && self.denyfile.is_empty())
    }
}

/// The limits every long-running server takes (`serve`, `relay`): the
/// access flags and an idle timeout.
#[derive(Debug, Args, Clone)]
pub struct LimitArgs {
    #[command(flatten)]
    pub access: AccessArgs,
    /// Close a connection after this long without progress either way.
    #[arg(short = 'i', long, value_name = "DUR", value_parser = timeout, default_value = "2m")]
    pub idle_timeout: Duration,
}

/// clap value parser for durations (`250ms`, `2s`, bare seconds).
pub fn duration(text: &str) -> Result<Duration, String> {
    crate::duration::parse(text)
}

/// clap value parser for timeouts, which must be more than zero.
pub fn timeout(text: &str) -> Result<Duration, String> {
    crate::duration::parse_positive(text)
}

const COMMANDS: &[&str] = &[
    "connect", "listen", "serve", "relay", "scan", "bench", "sniff", "resolve", "ping", "demo",
    "proxy", "script", "help",
];

/// The commands whose own `-q` means something else: nc's quit-after-EOF
/// (`connect`, `listen`) and ping's summary-only output.
const OWN_Q: &[&str] = &["connect", "listen", "ping"];

/// The id of `-q`/`--quiet` given after a command.
const QUIET_AFTER: &str = "quiet_after_command";

impl Cli {
    /// Parses a command line as typed: the nc style rewritten
    /// ([`nc_style`]), and `-q`/`--quiet` accepted after every command that
    /// has no `-q` of its own, as `-v` is (`netsmith serve echo=7 -q`).
    pub fn parse_line(args: Vec<OsString>) -> Result<Cli, clap::Error> {
        let mut cmd = Cli::command_line();
        let mut matches = cmd.try_get_matches_from_mut(nc_style(args))?;
        let after = matches
            .subcommand()
            .is_some_and(|(_, m)| matches!(m.try_get_one::<bool>(QUIET_AFTER), Ok(Some(true))));
        let mut cli = Cli::from_arg_matches_mut(&mut matches).map_err(|e| e.format(&mut cmd))?;
        cli.quiet |= after;
        Ok(cli)
    }

    /// The parser [`Cli::parse_line`] uses: the derived one, with `-q` added
    /// to the commands that lack one.
    fn command_line() -> clap::Command {
        let mut cmd = Cli::command();
        for name in COMMANDS
            .iter()
            .filter(|c| !OWN_Q.contains(c) && **c != "help")
        {
            cmd = cmd.mut_subcommand(name, |sub| {
                sub.arg(
                    Arg::new(QUIET_AFTER)
                        .short('q')
                        .long("quiet")
                        .action(ArgAction::SetTrue)
                        .help("Say less: errors only, no \"listening on\" line (as before the command)"),
                )
            });
        }
        cmd
    }
}

/// A rendered clap error as one line: its first line without "error: ",
/// and the names a "not provided:" line lists below it.
pub fn one_line(rendered: &str) -> String {
    let mut lines = rendered.lines().map(str::trim).filter(|l| !l.is_empty());
    let first = lines.next().unwrap_or_default();
    let message = first.strip_prefix("error: ").unwrap_or(first);
    // "the following required arguments were not provided:" names them below.
    if message.ends_with(':') {
        let names: Vec<&str> = lines.take_while(|l| !l.starts_with("Usage:")).collect();
        return format!("{} {}", message, names.join(", "));
    }
    message.to_string()
}

/// Rewrites nc-style command lines: with no command named, `-l` (alone or in
/// a cluster such as `-lvp`) means `listen`, anything else `connect`.
pub fn nc_style(args: Vec<OsString>) -> Vec<OsString> {
    // nmap's two-letter single-dash flag, which clap cannot spell.
    let args: Vec<OsString> = args
        .into_iter()
        .map(|a| {
            if a == "-iL" {
                OsString::from("--input-list")
            } else {
                a
            }
        })
        .collect();
    let named = args
        .iter()
        .skip(1)
        .any(|a| a.to_str().is_some_and(|s| COMMANDS.contains(&s)));
    let top_level_only = args.len() <= 2
        && args.get(1).and_then(|a| a.to_str()).is_none_or(|s| {
            matches!(s, "-h" | "--help" | "-V" | "--version") || !s.starts_with('-')
        });
    if named || top_level_only {
        return args;
    }
    let listen = args.iter().skip(1).any(|a| {
        a.to_str().is_some_and(|s| {
            matches!(s, "--listen" | "--broker" | "--chat")
                || (s.starts_with('-')
                    && !s.starts_with("--")
                    && s[1..].chars().all(|c| c.is_ascii_alphanumeric())
                    && s.contains('l'))
        })
    });
    let mut out = Vec::with_capacity(args.len() + 1);
    let mut iter = args.into_iter();
    out.extend(iter.next());
    out.push(OsString::from(if listen { "listen" } else { "connect" }));
    out.extend(iter);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
        Cli::command_line().debug_assert();
    }

    #[test]
    fn nc_style_lines_become_commands() {
        assert_eq!(
            nc_style(os(&["n", "-l", "-p", "80"])),
            os(&["n", "listen", "-l", "-p", "80"])
        );
        assert_eq!(
            nc_style(os(&["n", "-lvp", "80"])),
            os(&["n", "listen", "-lvp", "80"])
        );
        assert_eq!(
            nc_style(os(&["n", "-u", "h", "53"])),
            os(&["n", "connect", "-u", "h", "53"])
        );
        assert_eq!(
            nc_style(os(&["n", "h", "80"])),
            os(&["n", "connect", "h", "80"])
        );
        assert_eq!(
            nc_style(os(&["n", "-v", "connect", "h:1"])),
            os(&["n", "-v", "connect", "h:1"])
        );
        assert_eq!(nc_style(os(&["n", "--help"])), os(&["n", "--help"]));
        assert_eq!(
            nc_style(os(&["n", "scan", "-iL", "f"])),
            os(&["n", "scan", "--input-list", "f"])
        );
        assert_eq!(nc_style(os(&["n", "bogus"])), os(&["n", "bogus"]));
        // ncat's --broker and --chat imply -l.
        assert_eq!(
            nc_style(os(&["n", "--broker", "9000"])),
            os(&["n", "listen", "--broker", "9000"])
        );
        assert_eq!(
            nc_style(os(&["n", "-l", "--chat", "9000"])),
            os(&["n", "listen", "-l", "--chat", "9000"])
        );
    }

    #[test]
    fn quiet_and_verbose_after_any_command() {
        let cli = Cli::parse_line(os(&["n", "serve", "echo=7", "-q"])).unwrap();
        assert!(cli.quiet);
        let cli = Cli::parse_line(os(&["n", "scan", "127.0.0.1", "--quiet", "-v"])).unwrap();
        assert!(cli.quiet);
        assert_eq!(cli.verbose, 1);
        for line in [
            &["n", "demo", "-q"][..],
            &["n", "resolve", "-q", "localhost"],
        ] {
            assert!(Cli::parse_line(os(line)).unwrap().quiet, "{line:?}");
        }
        let cli = Cli::parse_line(os(&["n", "serve", "echo=7"])).unwrap();
        assert!(!cli.quiet);
        // connect, listen and ping keep their own -q.
        let cli = Cli::parse_line(os(&["n", "-l", "-p", "1", "-q", "1"])).unwrap();
        assert!(!cli.quiet);
        let cli = Cli::parse_line(os(&["n", "ping", "-q", "::1"])).unwrap();
        assert!(!cli.quiet);
        assert!(Cli::parse_line(os(&["n", "connect", "h", "1", "--quiet"])).is_err());
    }

    #[test]
    fn quit_after_eof_and_quiet_do_not_clash() {
        let cli = Cli::try_parse_from(["n", "-q", "connect", "-q", "2", "h", "1"]).unwrap();
        assert!(cli.quiet);
        let Command::Connect(args) = cli.command else {
            panic!("connect expected")
        };
        assert_eq!(args.session.quit_after_eof, Some(Duration::from_secs(2)));
    }
}
