//! The script language: one step per line (or `;` between steps), `#`
//! comments, strings in double quotes with `\r \n \t \0 \\ \" \$ \xHH`
//! escapes, `/regex/`, `${1}` for the script's arguments and `${NAME}` for
//! what an earlier `expect ... capture NAME` kept. Everything that can be
//! checked before the first byte is sent is checked here, with the file,
//! line and column of the fault.

use std::time::Duration;

use regex::bytes::Regex;

use crate::error::{Error, Result};

/// Text with the holes `${1}` and `${NAME}` filled in when the step runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text(pub Vec<Piece>);

impl Text {
    /// Pieces with neighbouring bytes made one.
    fn merged(pieces: Vec<Piece>) -> Text {
        let mut out: Vec<Piece> = Vec::with_capacity(pieces.len());
        for piece in pieces {
            match (out.last_mut(), piece) {
                (Some(Piece::Bytes(a)), Piece::Bytes(b)) => a.extend(b),
                (_, piece) => out.push(piece),
            }
        }
        Text(out)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Bytes(Vec<u8>),
    /// `${1}`: the script's first argument.
    Arg(usize),
    /// `${NAME}`: a capture.
    Var(String),
}

/// What an `expect` waits for.
#[derive(Debug, Clone)]
pub enum Want {
    Literal(Text),
    /// The pattern, with `${...}` holes filled in before it is compiled
    /// (a pattern without holes is compiled here, once).
    Regex(Text, Option<Regex>),
    Eof,
    Line,
    Bytes(usize),
}

#[derive(Debug, Clone)]
pub enum Action {
    /// One endpoint of netsmith's grammar (`HOST PORT` is made `HOST:PORT`).
    Connect(Text),
    Listen(Text),
    Spawn(Text),
    Send(Text),
    SendLine(Text),
    SendFile(Text),
    Expect {
        want: Want,
        timeout: Option<Duration>,
        capture: Option<String>,
    },
    Sleep(Duration),
    Timeout(Duration),
    Crlf(bool),
    Hex(bool),
    Print(Text),
    Close,
    Interactive,
}

/// One step, with where it came from.
#[derive(Debug, Clone)]
pub struct Step {
    pub line: usize,
    /// The step as written, for messages.
    pub source: String,
    pub action: Action,
}

impl Step {
    /// The step's keyword, for `--json`.
    pub fn keyword(&self) -> &'static str {
        match self.action {
            Action::Connect(_) => "connect",
            Action::Listen(_) => "listen",
            Action::Spawn(_) => "spawn",
            Action::Send(_) => "send",
            Action::SendLine(_) => "sendline",
            Action::SendFile(_) => "sendfile",
            Action::Expect { .. } => "expect",
            Action::Sleep(_) => "sleep",
            Action::Timeout(_) | Action::Crlf(_) | Action::Hex(_) => "set",
            Action::Print(_) => "print",
            Action::Close => "close",
            Action::Interactive => "interactive",
        }
    }
}

/// A token of a step, with its column (1-based, in bytes).
#[derive(Debug, Clone)]
enum Token {
    Word(String, usize),
    Quoted(Text, usize),
    Regex(String, usize),
}

impl Token {
    fn col(&self) -> usize {
        match self {
            Token::Word(_, c) | Token::Quoted(_, c) | Token::Regex(_, c) => *c,
        }
    }
}

/// Parses `text` (named `file` in messages) for a script given `args`
/// arguments.
pub fn parse(text: &str, file: &str, args: usize) -> Result<Vec<Step>> {
    let mut p = Parser {
        file,
        args,
        captures: Vec::new(),
        connected: false,
        steps: Vec::new(),
    };
    for (i, line) in text.lines().enumerate() {
        p.line(i + 1, line)?;
    }
    Ok(p.steps)
}

struct Parser<'a> {
    file: &'a str,
    args: usize,
    /// Names captured by the steps so far.
    captures: Vec<String>,
    /// Whether a step so far opens a connection.
    connected: bool,
    steps: Vec<Step>,
}

impl Parser<'_> {
    fn fail(&self, line: usize, col: usize, message: impl std::fmt::Display) -> Error {
        Error::usage(format!("{}:{line}:{col}: {message}", self.file))
    }

    /// One line: its steps, split at `;` outside quotes and regexes.
    fn line(&mut self, n: usize, line: &str) -> Result<()> {
        let mut start = 0;
        let bytes = line.as_bytes();
        let mut i = 0;
        let mut quoted = false;
        let mut in_regex = false;
        while i < bytes.len() {
            let b = bytes[i];
            if quoted || in_regex {
                if b == b'\\' {
                    i += 2;
                    continue;
                }
                if (quoted && b == b'"') || (in_regex && b == b'/') {
                    quoted = false;
                    in_regex = false;
                }
            } else if b == b'"' {
                quoted = true;
            } else if b == b'/'
                && starts_token(bytes, i)
                && line[start..i].trim_start().starts_with("expect")
            {
                in_regex = true;
            } else if b == b'#' && starts_token(bytes, i) {
                break;
            } else if b == b';' {
                self.step(n, start, &line[start..i])?;
                start = i + 1;
            }
            i += 1;
        }
        let end = if i < bytes.len() { i } else { bytes.len() };
        self.step(n, start, &line[start..end.max(start)])
    }

    /// One step, at byte offset `at` of its line.
    fn step(&mut self, n: usize, at: usize, text: &str) -> Result<()> {
        let lead = text.len() - text.trim_start().len();
        let text = text.trim();
        if text.is_empty() {
            return Ok(());
        }
        let col0 = at + lead + 1;
        let (keyword, rest) = text
            .split_once(char::is_whitespace)
            .map_or((text, ""), |(k, r)| (k, r));
        let rest_at = col0 + text.len() - rest.trim_start().len();
        let rest = rest.trim_start();
        let needs_connection = !matches!(
            keyword,
            "connect" | "listen" | "spawn" | "sleep" | "set" | "print"
        );
        if needs_connection && !self.connected {
            return Err(self.fail(
                n,
                col0,
                format!("\"{keyword}\" before any connect, listen or spawn step: open a connection first"),
            ));
        }
        let action = if keyword == "spawn" {
            if rest.is_empty() {
                return Err(self.fail(n, rest_at, "spawn needs a command, such as: spawn bc -q"));
            }
            let text = if rest.starts_with('"') {
                self.one_text(n, rest_at, rest, "spawn")?
            } else {
                self.holes(n, rest_at, rest.as_bytes())?
            };
            self.connected = true;
            Action::Spawn(text)
        } else {
            let tokens = self.tokens(n, rest_at, rest, keyword == "expect")?;
            self.action(n, col0, keyword, &tokens)?
        };
        if let Action::Expect {
            capture: Some(name),
            ..
        } = &action
        {
            self.captures.push(name.clone());
        }
        self.steps.push(Step {
            line: n,
            source: text.to_string(),
            action,
        });
        Ok(())
    }

    fn action(&mut self, n: usize, col: usize, keyword: &str, t: &[Token]) -> Result<Action> {
        let end = t.last().map_or(col + keyword.len(), Token::col);
        Ok(match keyword {
            "connect" => {
                let target = match t {
                    [one] => self.text(n, one)?,
                    [host, port] => {
                        let (host, port) = (self.text(n, host)?, self.text(n, port)?);
                        let mut pieces = Vec::new();
                        let literal_v6 =
                            matches!(&host.0[..], [Piece::Bytes(b)] if b.contains(&b':'));
                        if literal_v6 {
                            pieces.push(Piece::Bytes(b"[".to_vec()));
                        }
                        pieces.extend(host.0);
                        pieces.push(Piece::Bytes(if literal_v6 {
                            b"]:".to_vec()
                        } else {
                            b":".to_vec()
                        }));
                        pieces.extend(port.0);
                        Text::merged(pieces)
                    }
                    _ => {
                        return Err(self.fail(
                            n,
                            end,
                            "connect takes an endpoint (127.0.0.1:25, tls://host:443, unix:/path) or HOST PORT",
                        ));
                    }
                };
                self.connected = true;
                Action::Connect(target)
            }
            "listen" => {
                let [at] = t else {
                    return Err(self.fail(
                        n,
                        end,
                        "listen takes one endpoint: PORT, ADDR:PORT or unix:PATH",
                    ));
                };
                self.connected = true;
                Action::Listen(self.text(n, at)?)
            }
            "send" | "sendline" | "sendfile" | "print" => self.words(n, end, keyword, t)?,
            "expect" => self.expect(n, end, t)?,
            "sleep" => match t {
                [d] => Action::Sleep(self.duration(n, d)?),
                _ => return Err(self.fail(n, end, "sleep takes a duration, such as: sleep 500ms")),
            },
            "set" => self.set(n, end, t)?,
            "close" | "interactive" => {
                if let Some(extra) = t.first() {
                    return Err(self.fail(n, extra.col(), format!("{keyword} takes nothing more")));
                }
                if keyword == "close" {
                    Action::Close
                } else {
                    Action::Interactive
                }
            }
            other => {
                return Err(self.fail(
                    n,
                    col,
                    format!(
                        "unknown step \"{other}\": the steps are connect, listen, spawn, send, \
                         sendline, sendfile, expect, sleep, set, print, close and interactive"
                    ),
                ));
            }
        })
    }

    /// `send`, `sendline`, `sendfile` and `print`: their words as one text.
    fn words(&self, n: usize, end: usize, keyword: &str, t: &[Token]) -> Result<Action> {
        if t.is_empty() && keyword != "print" {
            return Err(self.fail(
                n,
                end,
                format!("{keyword} needs what to send, such as: {keyword} \"QUIT\\r\\n\""),
            ));
        }
        let mut pieces = Vec::new();
        for (i, token) in t.iter().enumerate() {
            if i > 0 {
                pieces.push(Piece::Bytes(b" ".to_vec()));
            }
            pieces.extend(self.text(n, token)?.0);
        }
        let text = Text::merged(pieces);
        Ok(match keyword {
            "send" => Action::Send(text),
            "sendline" => Action::SendLine(text),
            "sendfile" => Action::SendFile(text),
            _ => Action::Print(text),
        })
    }

    /// `set timeout D`, `set crlf on|off`, `set hex on|off`.
    fn set(&self, n: usize, end: usize, t: &[Token]) -> Result<Action> {
        Ok(match t {
            [Token::Word(what, _), value] if what == "timeout" => {
                Action::Timeout(self.duration(n, value)?)
            }
            [Token::Word(what, _), Token::Word(v, c)] if what == "crlf" || what == "hex" => {
                let on = match v.as_str() {
                    "on" => true,
                    "off" => false,
                    _ => return Err(self.fail(n, *c, format!("\"{v}\": write on or off"))),
                };
                if what == "crlf" {
                    Action::Crlf(on)
                } else {
                    Action::Hex(on)
                }
            }
            _ => {
                return Err(self.fail(
                    n,
                    t.first().map_or(end, Token::col),
                    "set takes: timeout DURATION, crlf on|off, or hex on|off",
                ));
            }
        })
    }

    /// `expect WHAT [timeout D] [capture NAME]`.
    fn expect(&mut self, n: usize, end: usize, t: &[Token]) -> Result<Action> {
        let Some(first) = t.first() else {
            return Err(self.fail(
                n,
                end,
                "expect needs what to wait for: \"TEXT\", /REGEX/, eof, line or bytes N",
            ));
        };
        let mut rest = &t[1..];
        let want = match first {
            Token::Quoted(text, _) => Want::Literal(self.checked(n, first.col(), text.clone())?),
            Token::Regex(source, col) => {
                let text = self.holes(n, col + 1, source.as_bytes())?;
                let compiled = match &text.0[..] {
                    [Piece::Bytes(b)] => Some(self.regex(n, *col, &String::from_utf8_lossy(b))?),
                    [] => Some(self.regex(n, *col, "")?),
                    _ => None,
                };
                Want::Regex(text, compiled)
            }
            Token::Word(w, _) if w == "eof" => Want::Eof,
            Token::Word(w, _) if w == "line" => Want::Line,
            Token::Word(w, _) if w == "bytes" => {
                let Some(Token::Word(count, c)) = rest.first() else {
                    return Err(self.fail(
                        n,
                        end,
                        "expect bytes needs a count, such as: expect bytes 512",
                    ));
                };
                let count = count
                    .parse()
                    .map_err(|_| self.fail(n, *c, format!("\"{count}\" is not a byte count")))?;
                rest = &rest[1..];
                Want::Bytes(count)
            }
            Token::Word(w, _) => Want::Literal(self.holes(n, first.col(), w.as_bytes())?),
        };
        let (mut timeout, mut capture) = (None, None);
        while let Some(word) = rest.first() {
            match (word, rest.get(1)) {
                (Token::Word(k, _), Some(d)) if k == "timeout" => {
                    timeout = Some(self.duration(n, d)?);
                }
                (Token::Word(k, _), Some(Token::Word(name, c))) if k == "capture" => {
                    if !name
                        .chars()
                        .all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
                        || name.starts_with(|ch: char| ch.is_ascii_digit())
                    {
                        return Err(self.fail(
                            n,
                            *c,
                            format!("\"{name}\" is not a name: use letters, digits and _"),
                        ));
                    }
                    capture = Some(name.clone());
                }
                _ => {
                    return Err(self.fail(
                        n,
                        word.col(),
                        "after what to expect come only: timeout DURATION, capture NAME",
                    ));
                }
            }
            rest = &rest[2..];
        }
        Ok(Action::Expect {
            want,
            timeout,
            capture,
        })
    }

    fn regex(&self, n: usize, col: usize, source: &str) -> Result<Regex> {
        Regex::new(source).map_err(|e| {
            let why = e.to_string();
            let last = why.lines().last().unwrap_or("invalid").trim().to_string();
            self.fail(n, col, format!("invalid regex /{source}/: {last}"))
        })
    }

    fn duration(&self, n: usize, token: &Token) -> Result<Duration> {
        let Token::Word(w, c) = token else {
            return Err(self.fail(
                n,
                token.col(),
                "a duration is a bare word, such as 2s or 500ms",
            ));
        };
        crate::duration::parse(w).map_err(|why| self.fail(n, *c, why))
    }

    /// A token as text.
    fn text(&self, n: usize, token: &Token) -> Result<Text> {
        match token {
            Token::Quoted(text, c) => self.checked(n, *c, text.clone()),
            Token::Word(w, c) => self.holes(n, *c, w.as_bytes()),
            Token::Regex(_, c) => Err(self.fail(n, *c, "a /regex/ is only for expect")),
        }
    }

    /// The one quoted string that `rest` must be.
    fn one_text(&self, n: usize, col: usize, rest: &str, keyword: &str) -> Result<Text> {
        let tokens = self.tokens(n, col, rest, false)?;
        match &tokens[..] {
            [one @ Token::Quoted(..)] => self.text(n, one),
            _ => Err(self.fail(
                n,
                col,
                format!("{keyword} takes one quoted string, or words"),
            )),
        }
    }

    /// Checks that every hole names an argument or an earlier capture.
    fn checked(&self, n: usize, col: usize, text: Text) -> Result<Text> {
        for piece in &text.0 {
            match piece {
                Piece::Arg(i) if *i == 0 || *i > self.args => {
                    return Err(self.fail(
                        n,
                        col,
                        format!(
                            "${{{i}}}: the script was given {} argument{} (they are ${{1}} and on)",
                            self.args,
                            if self.args == 1 { "" } else { "s" }
                        ),
                    ));
                }
                Piece::Var(name) if !self.captures.contains(name) => {
                    return Err(self.fail(
                        n,
                        col,
                        format!("${{{name}}} was not captured by an earlier step (expect ... capture {name})"),
                    ));
                }
                _ => {}
            }
        }
        Ok(text)
    }

    /// The `${...}` hole at `bytes[at]` (`${1}` an argument, `${NAME}` a
    /// capture), and the index after its `}`; `col` is `bytes[0]`'s column.
    fn hole(&self, n: usize, col: usize, bytes: &[u8], at: usize) -> Result<(Piece, usize)> {
        let close = bytes[at..]
            .iter()
            .position(|&b| b == b'}')
            .ok_or_else(|| self.fail(n, col + at, "\"${\" without its \"}\""))?;
        let name = String::from_utf8_lossy(&bytes[at + 2..at + close]).into_owned();
        let piece = match name.parse::<usize>() {
            Ok(k) => Piece::Arg(k),
            Err(_) => Piece::Var(name),
        };
        Ok((piece, at + close + 1))
    }

    /// Raw bytes with `${...}` holes (no escapes: a bare word, a regex).
    fn holes(&self, n: usize, col: usize, raw: &[u8]) -> Result<Text> {
        let mut pieces = Vec::new();
        let mut lit = Vec::new();
        let mut i = 0;
        while i < raw.len() {
            if raw[i] == b'$' && raw.get(i + 1) == Some(&b'{') {
                if !lit.is_empty() {
                    pieces.push(Piece::Bytes(std::mem::take(&mut lit)));
                }
                let (hole, next) = self.hole(n, col, raw, i)?;
                pieces.push(hole);
                i = next;
            } else {
                lit.push(raw[i]);
                i += 1;
            }
        }
        if !lit.is_empty() {
            pieces.push(Piece::Bytes(lit));
        }
        self.checked(n, col, Text(pieces))
    }

    /// Splits `rest` (at column `col`) into tokens.
    fn tokens(&self, ln: usize, col: usize, rest: &str, regex_first: bool) -> Result<Vec<Token>> {
        let bytes = rest.as_bytes();
        let mut out = Vec::new();
        let mut pos = 0;
        while pos < bytes.len() {
            if bytes[pos].is_ascii_whitespace() {
                pos += 1;
                continue;
            }
            let at = col + pos;
            if bytes[pos] == b'"' {
                let (text, next) = self.quoted(ln, col, bytes, pos)?;
                out.push(Token::Quoted(text, at));
                pos = next;
            } else if bytes[pos] == b'/' && regex_first && out.is_empty() {
                let mut end = pos + 1;
                let mut source = Vec::new();
                loop {
                    match bytes.get(end) {
                        None => return Err(self.fail(ln, at, "a /regex/ without its closing /")),
                        Some(b'\\') if bytes.get(end + 1) == Some(&b'/') => {
                            source.push(b'/');
                            end += 2;
                        }
                        Some(b'/') => break,
                        Some(&c) => {
                            source.push(c);
                            end += 1;
                        }
                    }
                }
                out.push(Token::Regex(
                    String::from_utf8_lossy(&source).into_owned(),
                    at,
                ));
                pos = end + 1;
            } else {
                let start = pos;
                while pos < bytes.len() && !bytes[pos].is_ascii_whitespace() {
                    pos += 1;
                }
                out.push(Token::Word(rest[start..pos].to_string(), at));
            }
            if pos < bytes.len() && !bytes[pos].is_ascii_whitespace() {
                return Err(self.fail(
                    ln,
                    col + pos,
                    "put a space between a string and what follows",
                ));
            }
        }
        Ok(out)
    }

    /// A double-quoted string starting at `bytes[open]`; returns it and the index
    /// after its closing quote.
    fn quoted(&self, ln: usize, col: usize, bytes: &[u8], open: usize) -> Result<(Text, usize)> {
        let mut pieces = Vec::new();
        let mut lit = Vec::new();
        let mut pos = open + 1;
        loop {
            let Some(&ch) = bytes.get(pos) else {
                return Err(self.fail(ln, col + open, "a string without its closing \""));
            };
            match ch {
                b'"' => break,
                b'\\' => {
                    let Some(&esc) = bytes.get(pos + 1) else {
                        return Err(self.fail(ln, col + pos, "a \\ at the end of the line"));
                    };
                    pos += 2;
                    lit.push(match esc {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'0' => 0,
                        b'\\' | b'"' | b'$' | b'/' => esc,
                        b'x' => {
                            let hex = bytes.get(pos..pos + 2).and_then(|h| std::str::from_utf8(h).ok());
                            let value = hex.and_then(|h| u8::from_str_radix(h, 16).ok()).ok_or_else(|| {
                                self.fail(ln, col + pos - 2, "\\x takes two hex digits, such as \\x1b")
                            })?;
                            pos += 2;
                            value
                        }
                        other => {
                            return Err(self.fail(
                                ln,
                                col + pos - 2,
                                format!(
                                    "unknown escape \\{}: use \\r \\n \\t \\0 \\\\ \\\" \\$ or \\xHH",
                                    char::from(other)
                                ),
                            ));
                        }
                    });
                }
                b'$' if bytes.get(pos + 1) == Some(&b'{') => {
                    if !lit.is_empty() {
                        pieces.push(Piece::Bytes(std::mem::take(&mut lit)));
                    }
                    let (hole, next) = self.hole(ln, col, bytes, pos)?;
                    pieces.push(hole);
                    pos = next;
                }
                _ => {
                    lit.push(ch);
                    pos += 1;
                }
            }
        }
        if !lit.is_empty() {
            pieces.push(Piece::Bytes(lit));
        }
        Ok((self.checked(ln, col + open, Text(pieces))?, pos + 1))
    }
}

/// Whether position `i` starts a token (line start or after whitespace).
fn starts_token(b: &[u8], i: usize) -> bool {
    i == 0 || b[i - 1].is_ascii_whitespace()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str, args: usize) -> Vec<Step> {
        parse(text, "t.ns", args).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn bad(text: &str) -> String {
        parse(text, "t.ns", 1).unwrap_err().to_string()
    }

    fn bytes(t: &Text) -> Vec<u8> {
        match &t.0[..] {
            [Piece::Bytes(b)] => b.clone(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_issue_example_parses_step_by_step() {
        let steps = ok(
            "connect 127.0.0.1 25           # or listen, spawn PROG\n\
             expect \"220 \"\n\
             sendline \"HELO netsmith\"\n\
             expect /^250 / timeout 2s\n\
             send \"QUIT\\r\\n\"\n\
             expect eof\n",
            0,
        );
        assert_eq!(steps.len(), 6);
        let Action::Connect(t) = &steps[0].action else {
            panic!()
        };
        assert_eq!(bytes(t), b"127.0.0.1:25");
        let Action::Expect {
            want: Want::Literal(t),
            ..
        } = &steps[1].action
        else {
            panic!()
        };
        assert_eq!(bytes(t), b"220 ");
        let Action::Expect {
            want: Want::Regex(_, Some(re)),
            timeout,
            ..
        } = &steps[3].action
        else {
            panic!()
        };
        assert!(re.is_match(b"250 ok"));
        assert_eq!(*timeout, Some(Duration::from_secs(2)));
        let Action::Send(t) = &steps[4].action else {
            panic!()
        };
        assert_eq!(bytes(t), b"QUIT\r\n");
        assert!(matches!(
            steps[5].action,
            Action::Expect {
                want: Want::Eof,
                ..
            }
        ));
        assert_eq!(steps[3].line, 4);
    }

    #[test]
    fn escapes_holes_semicolons_and_ipv6() {
        let steps = ok(
            "connect ::1 ${1}; send \"a\\x41\\t\\\"${1}\\$\" ; expect line capture L; print ${L}",
            1,
        );
        let Action::Connect(t) = &steps[0].action else {
            panic!()
        };
        assert_eq!(t.0, vec![Piece::Bytes(b"[::1]:".to_vec()), Piece::Arg(1)]);
        let Action::Send(t) = &steps[1].action else {
            panic!()
        };
        assert_eq!(
            t.0,
            vec![
                Piece::Bytes(b"aA\t\"".to_vec()),
                Piece::Arg(1),
                Piece::Bytes(b"$".to_vec())
            ]
        );
        let Action::Print(t) = &steps[3].action else {
            panic!()
        };
        assert_eq!(t.0, vec![Piece::Var("L".into())]);
        // A ';' in a string or a regex is not a separator.
        let steps = ok("connect h:1\nsend \"a;b\"; expect /x;y/", 0);
        assert_eq!(steps.len(), 3);
    }

    #[test]
    fn faults_name_file_line_and_column() {
        for (text, want) in [
            (
                "connect h:1\nfrobnicate 1",
                "t.ns:2:1: unknown step \"frobnicate\"",
            ),
            ("send \"x\"", "t.ns:1:1: \"send\" before any connect"),
            (
                "connect h:1\nsend \"abc",
                "t.ns:2:6: a string without its closing \"",
            ),
            ("connect h:1\nexpect /a(/", "t.ns:2:8: invalid regex /a(/"),
            (
                "connect h:1\nexpect \"x\" timeout soon",
                "t.ns:2:20: invalid duration",
            ),
            ("connect h:1\nsend \"\\q\"", "t.ns:2:7: unknown escape \\q"),
            (
                "connect h:1\nsend \"\\xZZ\"",
                "t.ns:2:7: \\x takes two hex digits",
            ),
            (
                "connect h:1\nsend \"${2}\"",
                "t.ns:2:6: ${2}: the script was given 1 argument",
            ),
            (
                "connect h:1\nprint ${NAME}",
                "t.ns:2:7: ${NAME} was not captured",
            ),
            (
                "connect h:1\nexpect",
                "t.ns:2:7: expect needs what to wait for",
            ),
            (
                "connect h:1\nset crlf maybe",
                "t.ns:2:10: \"maybe\": write on or off",
            ),
            (
                "connect h:1\nexpect bytes many",
                "t.ns:2:14: \"many\" is not a byte count",
            ),
        ] {
            let got = bad(text);
            assert!(got.starts_with(want), "{text:?}\n got: {got}\nwant: {want}");
        }
    }

    #[test]
    fn comments_blank_lines_and_spawn_take_the_rest_of_the_line() {
        let steps = ok(
            "# a dialogue\n\n  spawn bc -q   # the calculator\nsendline 1+2\nexpect \"3\\n\"",
            0,
        );
        assert_eq!(steps.len(), 3);
        let Action::Spawn(t) = &steps[0].action else {
            panic!()
        };
        assert_eq!(bytes(t), b"bc -q");
        assert_eq!(steps[0].line, 3);
    }
}
