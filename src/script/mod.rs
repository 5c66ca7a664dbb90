//! `netsmith script FILE [ARG...]` (or `-e 'STEPS'`): a dialogue with a
//! server, a client or a program, one step at a time, as `expect`, ppp's
//! `chat` or a pwntools script would have it, and a thin layer over
//! [`crate::tube::Tube`].
//!
//! - [`parse`]: the language, checked whole before the first step runs.
//!
//! Exit status: 0 when every step succeeded; 1 when the network said no or
//! an `expect` failed, with one message naming the step's file and line,
//! what was expected and the last bytes received; 2 for a script that does
//! not parse (`file:line:column`).

pub mod parse;

use std::collections::HashMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Args;
use regex::bytes::Regex;
use serde_json::json;

use crate::copy::{DumpSink, HexDump, escape_bytes};
use crate::error::{Error, Result};
use crate::tube::{Direction, Tube, TubeError};
use parse::{Action, Piece, Step, Text, Want};

/// The bytes of a failed `expect`'s data shown in its message: the last
/// ones, which are what a reader needs to see why it did not match.
const SHOWN: usize = 256;

/// `netsmith script`.
#[derive(Debug, Args)]
#[command(after_help = "\
Steps, one per line (or separated by ;), # comments:
  connect 127.0.0.1 25 | connect tls://host:443 | connect unix:/path | connect udp://host:53
  listen 9000              wait for one client (prints \"listening on\"); listen udp://127.0.0.1:9000
  spawn bc -q              a program's stdin and stdout
  send \"QUIT\\r\\n\"          sendline \"HELO x\" (adds \\n, or \\r\\n after: set crlf on)
  sendfile PATH            a file's bytes
  expect \"220 \" | /^250 / | eof | line | bytes N   [timeout 2s] [capture NAME]
  sleep 500ms   set timeout 10s   set hex on   print \"got ${NAME}\"   close   interactive
Strings take \\r \\n \\t \\0 \\\\ \\\" \\$ \\xHH; ${1} is the first ARG.

Example:
  netsmith script -e 'connect 127.0.0.1 7; sendline hello; expect \"hello\\n\"'")]
pub struct ScriptArgs {
    /// The script file (`-` for stdin), then its arguments, ${1} and on in
    /// the script. With -e, every word is an argument.
    #[arg(
        value_name = "FILE ARG",
        required_unless_present = "steps",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub words: Vec<String>,
    /// The steps on the command line instead of a file.
    #[arg(short = 'e', long = "execute", value_name = "STEPS")]
    pub steps: Option<String>,
    /// Write the whole dialogue, both directions, timestamped, to FILE.
    #[arg(long, value_name = "FILE")]
    pub transcript: Option<PathBuf>,
    /// Hexdump the dialogue (to the transcript, or to stderr without one).
    #[arg(short = 'x', long)]
    pub hex: bool,
    /// One JSON object per step on stdout: step, line, elapsed, matched.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub tls: crate::tls::ClientArgs,
}

/// Runs a script to its end, or to its first failed step.
pub async fn run(args: ScriptArgs) -> Result<()> {
    let (name, text, script_args) = source(&args)?;
    let mut steps = parse::parse(&text, &name, script_args.len())?;
    let transcript = match &args.transcript {
        Some(path) => Some(Arc::new(Mutex::new(std::fs::File::create(path).map_err(
            |e| Error::Local {
                what: format!("create the transcript {}", path.display()),
                reason: crate::error::describe_io(&e),
            },
        )?))),
        None => None,
    };
    let mut run = Runner {
        name,
        args: script_args,
        tls: args.tls.clone(),
        tube: None,
        listener: None,
        vars: HashMap::new(),
        timeout: crate::tube::DEFAULT_TIMEOUT,
        crlf: false,
        hex: Arc::new(AtomicBool::new(args.hex)),
        transcript,
        json: args.json,
        started: Instant::now(),
    };
    for step in &mut steps {
        let begun = Instant::now();
        match run.step(step).await {
            Ok(matched) => run.report(step, begun, matched.as_deref(), None),
            Err(e) => {
                run.report(step, begun, None, Some(&e.to_string()));
                return Err(e);
            }
        }
    }
    Ok(())
}

/// The script's name for messages, its text, and its arguments.
fn source(args: &ScriptArgs) -> Result<(String, String, Vec<String>)> {
    if let Some(steps) = &args.steps {
        return Ok(("-e".into(), steps.clone(), args.words.clone()));
    }
    let (path, rest) = args
        .words
        .split_first()
        .ok_or_else(|| Error::usage("give a script FILE, or its steps with -e 'STEPS'"))?;
    let rest = rest.to_vec();
    if path == "-" {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
            .map_err(|e| Error::stdin(&e))?;
        return Ok(("-".into(), text, rest));
    }
    let text = std::fs::read_to_string(path).map_err(|e| Error::Local {
        what: format!("read the script {path}"),
        reason: crate::error::describe_io(&e),
    })?;
    Ok((path.clone(), text, rest))
}

struct Runner {
    name: String,
    args: Vec<String>,
    tls: crate::tls::ClientArgs,
    tube: Option<Tube>,
    /// A `listen` step's listener, kept until the next one (and its
    /// socket file with it).
    listener: Option<crate::tube::Listening>,
    vars: HashMap<String, Vec<u8>>,
    timeout: Duration,
    crlf: bool,
    hex: Arc<AtomicBool>,
    transcript: Option<Arc<Mutex<std::fs::File>>>,
    json: bool,
    started: Instant,
}

impl Runner {
    /// Runs one step; returns what an `expect` matched.
    async fn step(&mut self, step: &Step) -> Result<Option<Vec<u8>>> {
        match &step.action {
            Action::Connect(target) => {
                let target = self.utf8(step, target)?;
                let tube = Tube::connect_tls(&target, &self.tls)
                    .await
                    .map_err(|e| self.at(step, e))?;
                self.open(tube);
            }
            Action::Listen(at) => {
                let at = self.utf8(step, at)?;
                let mut listening =
                    crate::tube::Listening::bind(&at).map_err(|e| self.at(step, e))?;
                let shown = match (&listening, listening.local_addr()) {
                    (crate::tube::Listening::Udp(..), Some(a)) => format!("udp://{a}"),
                    (_, Some(a)) => a.to_string(),
                    (_, None) => at.clone(),
                };
                eprintln!("listening on {}", crate::error::printable(&shown));
                let tube = listening.accept().await.map_err(|e| self.at(step, e))?;
                self.listener = Some(listening);
                self.open(tube);
            }
            Action::Spawn(command) => {
                let command = self.utf8(step, command)?;
                let tube = Tube::spawn(&command).map_err(|e| self.at(step, e))?;
                self.open(tube);
            }
            Action::Send(text) => {
                let data = self.fill(text);
                self.send(step, &data).await?;
            }
            Action::SendLine(text) => {
                let mut data = self.fill(text);
                data.extend_from_slice(if self.crlf { b"\r\n" } else { b"\n" });
                self.send(step, &data).await?;
            }
            Action::SendFile(path) => {
                let path = self.utf8(step, path)?;
                let data = std::fs::read(&path).map_err(|e| Error::Local {
                    what: format!("{}:{}: read {path}", self.name, step.line),
                    reason: crate::error::describe_io(&e),
                })?;
                self.send(step, &data).await?;
            }
            Action::Expect {
                want,
                timeout,
                capture,
            } => {
                let matched = self
                    .expect(step, want, timeout.unwrap_or(self.timeout))
                    .await?;
                if let Some(name) = capture {
                    self.vars.insert(name.clone(), matched.1);
                }
                return Ok(Some(matched.0));
            }
            Action::Sleep(d) => tokio::time::sleep(*d).await,
            Action::Timeout(d) => self.timeout = *d,
            Action::Crlf(on) => self.crlf = *on,
            Action::Hex(on) => self.hex.store(*on, Ordering::Relaxed),
            Action::Print(text) => {
                let mut line = self.fill(text);
                line.push(b'\n');
                crate::stdio::print_bytes(&line);
            }
            Action::Close => {
                let tube = self.tube(step)?;
                tube.close().await.map_err(|e| self.io(step, &e))?;
            }
            Action::Interactive => {
                crate::stdio::Stdout::sync_global()
                    .await
                    .map_err(|e| Error::stdout(&e))?;
                let tube = self.tube.take().ok_or_else(|| self.no_tube(step))?;
                tube.interactive().await.map_err(|e| self.at(step, e))?;
            }
        }
        Ok(None)
    }

    /// Makes `tube` the one the next steps talk to, observed for the
    /// transcript and `--hex`.
    fn open(&mut self, mut tube: Tube) {
        tube.set_crlf(self.crlf);
        let hex = Arc::clone(&self.hex);
        let file = self.transcript.clone();
        let started = self.started;
        let sink = file.clone().map_or(DumpSink::Stderr, DumpSink::File);
        let mut sent = HexDump::new('>', None).timestamped(sink.clone());
        let mut received = HexDump::new('<', None).timestamped(sink);
        let text = file.is_some();
        tube.observe(Box::new(move |direction, data| {
            if hex.load(Ordering::Relaxed) {
                match direction {
                    Direction::Sent => sent.dump(data),
                    Direction::Received => received.dump(data),
                }
            } else if text && let Some(file) = &file {
                let arrow = if direction == Direction::Sent {
                    '>'
                } else {
                    '<'
                };
                let line = format!(
                    "{:.6} {arrow} \"{}\"\n",
                    started.elapsed().as_secs_f64(),
                    escape_bytes(data, Some(b'"'))
                );
                if let Ok(mut f) = file.lock() {
                    let _ = f.write_all(line.as_bytes());
                }
            }
        }));
        self.tube = Some(tube);
    }

    /// Waits for what `want` says; returns what was taken and what a
    /// `capture` keeps (a regex's first group if it has one, a line
    /// without its end, else the same).
    async fn expect(
        &mut self,
        step: &Step,
        want: &Want,
        timeout: Duration,
    ) -> Result<(Vec<u8>, Vec<u8>)> {
        let regex = match want {
            Want::Regex(_, Some(re)) => Some(re.clone()),
            Want::Regex(text, None) => {
                let source = self.fill(text);
                Some(Regex::new(&String::from_utf8_lossy(&source)).map_err(|e| {
                    Error::usage(format!(
                        "{}:{}: the regex /{}/ is invalid once filled in: {}",
                        self.name,
                        step.line,
                        String::from_utf8_lossy(&source),
                        e.to_string().lines().last().unwrap_or("").trim()
                    ))
                })?)
            }
            _ => None,
        };
        let literal = match want {
            Want::Literal(text) => Some(self.fill(text)),
            _ => None,
        };
        let name = self.name.clone();
        let tube = self.tube(step)?;
        tube.set_timeout(timeout);
        let got = match (want, &literal, &regex) {
            (Want::Literal(_), Some(lit), _) => tube.recv_until(lit).await.map(|t| (t.clone(), t)),
            (Want::Regex(..), _, Some(re)) => tube.recv_regex(re).await.map(|m| {
                let keep = m
                    .groups
                    .get(1)
                    .or_else(|| m.groups.first())
                    .cloned()
                    .flatten()
                    .unwrap_or_default();
                (m.taken, keep)
            }),
            (Want::Line, ..) => tube.recv_line().await.map(|l| {
                let keep = l.strip_suffix(b"\n").map_or_else(
                    || l.clone(),
                    |k| k.strip_suffix(b"\r").unwrap_or(k).to_vec(),
                );
                (l, keep)
            }),
            (Want::Bytes(n), ..) => tube.recv_exact(*n).await.map(|b| (b.clone(), b)),
            (Want::Eof, ..) => tube.recv_all().await.map(|b| (b.clone(), b)),
            _ => unreachable!("literal and regex are filled in above"),
        };
        got.map_err(|e| {
            let what = match (want, &literal, &regex) {
                (Want::Literal(_), Some(lit), _) => {
                    format!("\"{}\"", escape_bytes(lit, Some(b'"')))
                }
                (Want::Regex(..), _, Some(re)) => format!("/{}/", re.as_str()),
                (Want::Line, ..) => "a line".into(),
                (Want::Bytes(n), ..) => format!("{n} bytes"),
                _ => "the end of the stream".into(),
            };
            expect_failed(&name, step.line, &what, &e)
        })
    }

    async fn send(&mut self, step: &Step, data: &[u8]) -> Result<()> {
        let tube = self.tube(step)?;
        match tube.send(data).await {
            Ok(()) => Ok(()),
            Err(e) => Err(self.io(step, &e)),
        }
    }

    fn tube(&mut self, step: &Step) -> Result<&mut Tube> {
        let missing = self.no_tube(step);
        self.tube.as_mut().ok_or(missing)
    }

    fn no_tube(&self, step: &Step) -> Error {
        Error::Network {
            what: format!("{}:{}: {}", self.name, step.line, step.source),
            reason: "no connection: an interactive step handed it to the terminal".into(),
        }
    }

    /// `text` with its holes filled in.
    fn fill(&self, text: &Text) -> Vec<u8> {
        let mut out = Vec::new();
        for piece in &text.0 {
            match piece {
                Piece::Bytes(b) => out.extend_from_slice(b),
                Piece::Arg(i) => out.extend_from_slice(self.args[i - 1].as_bytes()),
                Piece::Var(name) => {
                    out.extend_from_slice(self.vars.get(name).map_or(&[][..], Vec::as_slice));
                }
            }
        }
        out
    }

    /// `text` filled in, as UTF-8 (an endpoint, a path, a command).
    fn utf8(&self, step: &Step, text: &Text) -> Result<String> {
        String::from_utf8(self.fill(text)).map_err(|_| {
            Error::usage(format!(
                "{}:{}: \"{}\" is not UTF-8 once filled in",
                self.name, step.line, step.source
            ))
        })
    }

    /// `e`, named by the step it happened in (its exit status kept).
    fn at(&self, step: &Step, e: Error) -> Error {
        let here = format!("{}:{}", self.name, step.line);
        match e {
            Error::Usage(m) => Error::Usage(format!("{here}: {m}")),
            Error::Network { what, reason } => Error::Network {
                what: format!("{here}: {what}"),
                reason,
            },
            Error::Local { what, reason } => Error::Local {
                what: format!("{here}: {what}"),
                reason,
            },
            Error::Resolve(m) => Error::Resolve(format!("{here}: {m}")),
            other => other,
        }
    }

    fn io(&self, step: &Step, e: &std::io::Error) -> Error {
        Error::io(format!("{}:{}: {}", self.name, step.line, step.source), e)
    }

    /// The `--json` line for a step.
    fn report(&self, step: &Step, begun: Instant, matched: Option<&[u8]>, error: Option<&str>) {
        if !self.json {
            return;
        }
        let mut obj = json!({
            "line": step.line,
            "step": step.keyword(),
            "source": step.source,
            "elapsed_ms": begun.elapsed().as_secs_f64() * 1000.0,
            "ok": error.is_none(),
        });
        if let Some(m) = matched {
            obj["matched"] = json!(escape_bytes(m, None));
        }
        if let Some(e) = error {
            obj["error"] = json!(e);
        }
        crate::stdio::print(&format!("{obj}\n"));
    }
}

/// A failed `expect`: the step, what it waited for, why, and the last
/// bytes received (escaped), which stay unread.
fn expect_failed(file: &str, line: usize, what: &str, e: &TubeError) -> Error {
    let partial = e.partial();
    let shown = &partial[partial.len().saturating_sub(SHOWN)..];
    let received = if partial.is_empty() {
        "nothing received".to_string()
    } else if shown.len() < partial.len() {
        format!(
            "received {} bytes, the last {}: \"{}\"",
            partial.len(),
            shown.len(),
            escape_bytes(shown, Some(b'"'))
        )
    } else {
        format!("received \"{}\"", escape_bytes(shown, Some(b'"')))
    };
    Error::Network {
        what: format!("{file}:{line}: expect {what}"),
        reason: format!("{e}; {received}"),
    }
}
