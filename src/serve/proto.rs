//! The classic services' bytes, as pure functions: no sockets here, so every
//! RFC detail is unit-tested below.
//!
//! Where the RFCs leave a choice open, inetd's built-in services decide, so
//! that old clients see what they always saw.
//!
//! # References
//! RFC 862 (echo), 863 (discard), 864 (chargen), 865 (qotd), 867 (daytime),
//! 868 (time).

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The services `serve` offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Service {
    Echo,
    Discard,
    Chargen,
    Qotd,
    Daytime,
    Time,
    Banner,
}

impl Service {
    /// Every service, in the order of their well-known ports.
    pub const ALL: [Service; 7] = [
        Service::Echo,
        Service::Discard,
        Service::Daytime,
        Service::Qotd,
        Service::Chargen,
        Service::Time,
        Service::Banner,
    ];

    /// Whether the service answers once and closes (qotd, daytime, time,
    /// banner) rather than keeping a stream (echo, discard, chargen).
    pub fn is_one_shot(self) -> bool {
        !matches!(self, Service::Echo | Service::Discard | Service::Chargen)
    }

    /// The name users type.
    pub fn name(self) -> &'static str {
        match self {
            Service::Echo => "echo",
            Service::Discard => "discard",
            Service::Chargen => "chargen",
            Service::Qotd => "qotd",
            Service::Daytime => "daytime",
            Service::Time => "time",
            Service::Banner => "banner",
        }
    }

    /// The well-known port (banner: the 001 tutorial's 9999).
    pub fn port(self) -> u16 {
        match self {
            Service::Echo => 7,
            Service::Discard => 9,
            Service::Daytime => 13,
            Service::Qotd => 17,
            Service::Chargen => 19,
            Service::Time => 37,
            Service::Banner => 9999,
        }
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Service {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Service::ALL
            .into_iter()
            .find(|svc| svc.name() == s)
            .ok_or_else(|| {
                format!(
                    "unknown service \"{s}\": choose from echo, discard, chargen, qotd, daytime, time, banner"
                )
            })
    }
}

/// Source ports of these services. A datagram from one of them is dropped:
/// two echo or chargen servers would otherwise answer each other forever.
pub const LOOP_PORTS: [u16; 6] = [7, 9, 13, 17, 19, 37];

/// The printable ASCII characters chargen rotates through, from the space.
const RING: usize = 95;
/// Characters per chargen line, before CRLF.
const LINE: usize = 72;
/// Bytes per chargen line with CRLF.
pub const CHARGEN_LINE: usize = LINE + 2;

/// Chargen line `n` (RFC 864): 72 characters of the printable ring starting
/// `n` characters further than line 0, then CRLF.
pub fn chargen_line(n: usize) -> [u8; CHARGEN_LINE] {
    let mut line = [0u8; CHARGEN_LINE];
    for (i, b) in line[..LINE].iter_mut().enumerate() {
        *b = b' ' + ((n + i) % RING) as u8;
    }
    line[LINE] = b'\r';
    line[LINE + 1] = b'\n';
    line
}

/// One full period of chargen's stream (95 lines): a TCP connection writes
/// it over and over, so each write is large and nothing is computed per line.
pub fn chargen_period() -> Vec<u8> {
    (0..RING).flat_map(chargen_line).collect()
}

/// Seconds from 1900-01-01 to 1970-01-01 (RFC 868).
const EPOCH_1900: u64 = 2_208_988_800;

/// RFC 868 time: seconds since 1900-01-01 00:00 UTC, big-endian, in 32
/// bits. It wraps on 2036-02-07 06:28:16 UTC, as inetd's does.
pub fn rfc868(now: SystemTime) -> [u8; 4] {
    let unix = now
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs();
    ((unix + EPOCH_1900) as u32).to_be_bytes()
}

/// How daytime writes the time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DaytimeFormat {
    /// `ctime(3)`'s form in UTC, as inetd sends it: `Sat Nov 21 11:10:36 2026`.
    #[default]
    Ctime,
    /// RFC 3339 in UTC: `2026-11-21T11:10:36Z`.
    Rfc3339,
}

impl FromStr for DaytimeFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "ctime" => Ok(DaytimeFormat::Ctime),
            "rfc3339" => Ok(DaytimeFormat::Rfc3339),
            _ => Err(format!(
                "invalid daytime format \"{s}\": use ctime or rfc3339"
            )),
        }
    }
}

/// RFC 867 daytime: the date and time as one readable line, ending in CRLF.
pub fn daytime(now: SystemTime, format: DaytimeFormat) -> String {
    let secs = now
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs();
    let days = secs / 86_400;
    let (h, m, s) = (secs % 86_400 / 3600, secs % 3600 / 60, secs % 60);
    let (year, month, day) = civil_from_days(i64::try_from(days).unwrap_or(i64::MAX));
    match format {
        DaytimeFormat::Ctime => {
            const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
            const MONTHS: [&str; 12] = [
                "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
            ];
            let weekday = WEEKDAYS[(days % 7) as usize];
            let month = MONTHS[(month - 1) as usize];
            format!("{weekday} {month} {day:2} {h:02}:{m:02}:{s:02} {year}\r\n")
        }
        DaytimeFormat::Rfc3339 => {
            format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}Z\r\n")
        }
    }
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian
/// calendar (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// RFC 865 asks for quotes under 512 characters.
pub const MAX_QUOTE: usize = 511;

/// The quotes served when no `--quotes` file is given: the 004 tutorial's,
/// and a few more in the same spirit.
pub const BUILTIN_QUOTES: &[&str] = &[
    "Object oriented programs are offered as alternatives to correct ones.",
    "Be conservative in what you do, be liberal in what you accept from others.",
    "The network is reliable. (The first fallacy of distributed computing.)",
    "There are two hard problems in computer science: cache invalidation, naming things, and off-by-one errors.",
    "Never perform a port scan unless you have written permission from the network owners.",
];

/// Parses a fortune file: quotes separated by lines holding only `%`.
/// Each quote is returned with a trailing newline. A quote of 512
/// characters or more is an error naming the line it starts on.
pub fn parse_quotes(text: &str) -> Result<Vec<String>, String> {
    let mut quotes = Vec::new();
    let mut current = String::new();
    let mut start_line = 1;
    let mut finish = |quote: &mut String, start: usize| -> Result<(), String> {
        let trimmed = quote.trim_end_matches('\n');
        if !trimmed.trim().is_empty() {
            let with_newline = format!("{trimmed}\n");
            let chars = with_newline.chars().count();
            if chars > MAX_QUOTE {
                return Err(format!(
                    "the quote starting on line {start} has {chars} characters; RFC 865 allows under 512"
                ));
            }
            quotes.push(with_newline);
        }
        quote.clear();
        Ok(())
    };
    for (i, line) in text.lines().enumerate() {
        if line.trim_end() == "%" {
            finish(&mut current, start_line)?;
            start_line = i + 2;
        } else {
            current.push_str(line);
            current.push('\n');
        }
    }
    finish(&mut current, start_line)?;
    if quotes.is_empty() {
        return Err("the file holds no quote".into());
    }
    Ok(quotes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chargen_lines_rotate_through_the_printable_ring() {
        let first = chargen_line(0);
        let expected: Vec<u8> = (0x20u8..0x20 + 72).chain(*b"\r\n").collect();
        assert_eq!(&first[..], &expected[..]);
        assert_eq!(&first[..6], b" !\"#$%");
        assert_eq!(&first[64..74], b"`abcdefg\r\n");
        assert_eq!(&chargen_line(1)[..3], b"!\"#");
        assert_eq!(chargen_line(95), chargen_line(0));
        assert_eq!(chargen_line(94)[0], b'~');
        assert_eq!(chargen_line(94)[1], b' ');
        assert_eq!(chargen_period().len(), 95 * 74);
    }

    #[test]
    fn rfc868_counts_from_1900_and_wraps_in_2036() {
        let t = UNIX_EPOCH + Duration::from_secs(0);
        assert_eq!(rfc868(t), (2_208_988_800u32).to_be_bytes());
        // 2036-02-07 06:28:16 UTC is 2^32 seconds after 1900: it wraps to 0.
        let wrap = UNIX_EPOCH + Duration::from_secs((1u64 << 32) - 2_208_988_800);
        assert_eq!(rfc868(wrap), [0, 0, 0, 0]);
    }

    #[test]
    fn daytime_formats() {
        let t = UNIX_EPOCH + Duration::from_secs(1_795_259_436); // 2026-11-21 11:10:36 UTC
        assert_eq!(
            daytime(t, DaytimeFormat::Ctime),
            "Sat Nov 21 11:10:36 2026\r\n"
        );
        assert_eq!(
            daytime(t, DaytimeFormat::Rfc3339),
            "2026-11-21T11:10:36Z\r\n"
        );
        let t = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(
            daytime(t, DaytimeFormat::Ctime),
            "Tue Feb 29 00:00:00 2000\r\n"
        );
        assert_eq!(
            daytime(UNIX_EPOCH, DaytimeFormat::Ctime),
            "Thu Jan  1 00:00:00 1970\r\n"
        );
    }

    #[test]
    fn fortune_files() {
        let q = parse_quotes("one\n%\ntwo\nlines\n%\n\n%\nthree").unwrap();
        assert_eq!(q, vec!["one\n", "two\nlines\n", "three\n"]);
        let long = format!("ok\n%\n{}\n", "x".repeat(600));
        let err = parse_quotes(&long).unwrap_err();
        assert!(err.contains("line 3") && err.contains("601"), "{err}");
        assert!(parse_quotes("%\n%\n").is_err());
        assert!(BUILTIN_QUOTES.iter().all(|q| q.len() < MAX_QUOTE));
    }

    #[test]
    fn service_names() {
        assert_eq!("chargen".parse::<Service>(), Ok(Service::Chargen));
        assert!("ftp".parse::<Service>().unwrap_err().contains("\"ftp\""));
    }
}
