//! `netsmith resolve`: names to addresses and back, this host's name, and
//! service names to ports and back, through the system resolver
//! (`getaddrinfo`/`getnameinfo`, so /etc/hosts and nsswitch are honoured)
//! and `/etc/services`, as `getent`, `host` and Python's `gethostbyname`
//! users know them.
//!
//! The tutorials' special address forms are answered, not looked up: `''`
//! (Python's spelling of `INADDR_ANY`), `0.0.0.0` and `::` mean "every
//! local interface", and `<broadcast>` is 255.255.255.255.
//!
//! Every argument is checked before the first lookup (a malformed one is
//! exit 2 and nothing is looked up); a lookup that finds nothing is named on
//! stderr and the others still run; the exit status is then 1.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use clap::{ArgGroup, Args};
use serde_json::{Value, json};

use crate::cli::FamilyArgs;
use crate::endpoint::{self, Host, PortZero};
use crate::error::{Error, Result};
use crate::net::{self, Family, Resolve};
use crate::services::{self, Proto};

/// `netsmith resolve`.
#[derive(Debug, Args)]
#[command(group(
    ArgGroup::new("query")
        .required(true)
        .multiple(true)
        .args(["names", "reverse", "hostname", "service"])
))]
pub struct ResolveArgs {
    /// Names to look up: every address and the canonical name. '' means
    /// any address (0.0.0.0), <broadcast> means 255.255.255.255.
    #[arg(value_name = "NAME")]
    pub names: Vec<String>,
    /// The name of an address (reverse lookup, PTR through getnameinfo).
    #[arg(short = 'x', long = "reverse", value_name = "ADDR")]
    pub reverse: Vec<String>,
    /// This host's name (gethostname) and its addresses.
    #[arg(long)]
    pub hostname: bool,
    /// A service to its ports (http, http/tcp) or a port to its service
    /// name (443/tcp, 53).
    #[arg(long, value_name = "SERVICE")]
    pub service: Vec<String>,
    #[command(flatten)]
    pub family: FamilyArgs,
    /// One JSON object per answer, one per line.
    #[arg(long)]
    pub json: bool,
}

/// One question, checked and ready to ask.
#[derive(Debug, PartialEq, Eq)]
enum Query {
    /// A name or address literal to resolve.
    Name { typed: String, host: Host },
    /// One of the tutorials' special forms, answered without a lookup.
    Special {
        typed: String,
        ip: IpAddr,
        meaning: Special,
    },
    /// An address whose name is wanted.
    Reverse(IpAddr),
    /// This host's name, then its addresses.
    Hostname,
    /// A service name to its ports.
    ServiceName { name: String, proto: Option<Proto> },
    /// A port to its service name.
    ServicePort { port: u16, proto: Option<Proto> },
}

/// What a special address form means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Special {
    Any,
    Broadcast,
}

impl Special {
    fn key(self) -> &'static str {
        match self {
            Special::Any => "any",
            Special::Broadcast => "broadcast",
        }
    }

    fn explain(self) -> &'static str {
        match self {
            Special::Any => {
                "the any address (INADDR_ANY): a server bound to it listens on every local interface"
            }
            Special::Broadcast => {
                "the limited broadcast address (INADDR_BROADCAST): every host on the local network; sending to it needs SO_BROADCAST"
            }
        }
    }
}

/// One answer: a readable line and its JSON object.
struct Answer {
    text: String,
    json: Value,
}

/// Checks every argument into queries, in the order: names, reverse
/// lookups, this host, services.
fn plan(args: &ResolveArgs) -> Result<Vec<Query>> {
    let family = args.family.resolve().family;
    let mut queries = Vec::new();
    for typed in &args.names {
        queries.push(name_query(typed, family)?);
    }
    for typed in &args.reverse {
        let ip = match endpoint::parse_host(typed)? {
            Host::Ip(ip) => ip,
            Host::Name(_) => {
                return Err(Error::usage(format!(
                    "invalid address \"{typed}\" for -x: give an IPv4 or IPv6 address such as 127.0.0.1 or ::1"
                )));
            }
        };
        queries.push(Query::Reverse(ip));
    }
    if args.hostname {
        queries.push(Query::Hostname);
    }
    for typed in &args.service {
        queries.push(service_query(typed)?);
    }
    Ok(queries)
}

/// A name as typed: a special form, an address literal or a name.
fn name_query(typed: &str, family: Family) -> Result<Query> {
    let special = |ip: IpAddr, meaning| Query::Special {
        typed: typed.to_string(),
        ip,
        meaning,
    };
    match typed {
        "" if family == Family::V6 => Ok(special(Ipv6Addr::UNSPECIFIED.into(), Special::Any)),
        "" => Ok(special(Ipv4Addr::UNSPECIFIED.into(), Special::Any)),
        "<broadcast>" if family == Family::V6 => Err(Error::usage(
            "\"<broadcast>\" is IPv4 only (IPv6 has no broadcast; use a multicast group such as ff02::1)",
        )),
        "<broadcast>" => Ok(special(Ipv4Addr::BROADCAST.into(), Special::Broadcast)),
        _ => {
            let host = endpoint::parse_host(typed)?;
            Ok(match host {
                Host::Ip(ip) if ip.is_unspecified() => special(ip, Special::Any),
                Host::Ip(IpAddr::V4(ip)) if ip.is_broadcast() => {
                    special(ip.into(), Special::Broadcast)
                }
                host => Query::Name {
                    typed: typed.to_string(),
                    host,
                },
            })
        }
    }
}

/// `http`, `http/tcp`, `443`, `443/tcp`.
fn service_query(typed: &str) -> Result<Query> {
    let (what, proto) = match typed.split_once('/') {
        None => (typed, None),
        Some((what, "tcp")) => (what, Some(Proto::Tcp)),
        Some((what, "udp")) => (what, Some(Proto::Udp)),
        Some((_, other)) => {
            return Err(Error::usage(format!(
                "invalid protocol \"{other}\" in --service \"{typed}\": use tcp or udp (443/tcp, http/udp)"
            )));
        }
    };
    if !what.is_empty() && what.bytes().all(|b| b.is_ascii_digit()) {
        let port = endpoint::parse_port(what, Proto::Tcp, PortZero::Refused)?;
        return Ok(Query::ServicePort { port, proto });
    }
    if !endpoint::is_service_name(what) {
        return Err(Error::usage(format!(
            "invalid --service \"{typed}\": give a service name (http, http/tcp) or a port (443, 443/tcp)"
        )));
    }
    Ok(Query::ServiceName {
        name: what.to_ascii_lowercase(),
        proto,
    })
}

/// The protocols a service query covers.
fn protos(proto: Option<Proto>) -> Vec<Proto> {
    proto.map_or_else(|| vec![Proto::Tcp, Proto::Udp], |p| vec![p])
}

fn family_key(ip: IpAddr) -> &'static str {
    if ip.is_ipv4() { "ipv4" } else { "ipv6" }
}

/// The addresses of `host` (and its canonical name, when it differs).
async fn addresses(resolve: &Resolve, typed: &str, host: &Host) -> Result<Vec<Answer>> {
    let found = resolve.answer(host).await?;
    let canonical = found
        .canonical
        .filter(|c| !c.eq_ignore_ascii_case(typed.trim_end_matches('.')));
    let mut answers = Vec::new();
    if let Some(canonical) = &canonical {
        answers.push(Answer {
            text: format!("{typed} is an alias for {canonical}"),
            json: Value::Null,
        });
    }
    for ip in found.addrs {
        let six = if ip.is_ipv6() { "IPv6 " } else { "" };
        answers.push(Answer {
            text: format!("{typed} has {six}address {ip}"),
            json: json!({
                "query": typed,
                "address": ip,
                "family": family_key(ip),
                "canonical": canonical.as_deref().unwrap_or(typed),
            }),
        });
    }
    Ok(answers)
}

/// Answers one query.
async fn answer(resolve: &Resolve, query: &Query) -> Result<Vec<Answer>> {
    match query {
        Query::Name { typed, host } => addresses(resolve, typed, host).await,
        Query::Special { typed, ip, meaning } => {
            let shown = if typed.is_empty() { "''" } else { typed };
            Ok(vec![Answer {
                text: if typed == &ip.to_string() {
                    format!("{shown} is {}", meaning.explain())
                } else {
                    format!("{shown} means {ip}, {}", meaning.explain())
                },
                json: json!({
                    "query": typed,
                    "address": ip,
                    "family": family_key(*ip),
                    "special": meaning.key(),
                }),
            }])
        }
        Query::Reverse(ip) => {
            let name = net::lookup_addr(*ip).await?;
            Ok(vec![Answer {
                text: format!("{ip} has name {name}"),
                json: json!({ "query": ip.to_string(), "address": ip, "name": name }),
            }])
        }
        Query::Hostname => {
            let name = dns_lookup::get_hostname().map_err(|e| Error::io("gethostname", &e))?;
            let mut answers = vec![Answer {
                text: format!("this host is {name}"),
                json: json!({ "hostname": name }),
            }];
            // This host's name as the system has it, not typed: even an
            // all-numeric one is a name to look up.
            let host = endpoint::parse_host(&name).unwrap_or_else(|_| Host::Name(name.clone()));
            answers.extend(addresses(resolve, &name, &host).await?);
            Ok(answers)
        }
        Query::ServiceName { name, proto } => {
            let answers: Vec<Answer> = protos(*proto)
                .into_iter()
                .filter_map(|p| services::port_of(name, p).map(|port| (p, port)))
                .map(|(p, port)| Answer {
                    text: format!("{name} is port {port}/{p}"),
                    json: json!({ "query": name, "service": name, "port": port, "proto": p.to_string() }),
                })
                .collect();
            if answers.is_empty() {
                let of = proto.map(|p| format!(" for {p}")).unwrap_or_default();
                return Err(Error::Resolve(format!(
                    "no such service \"{name}\"{of} in /etc/services"
                )));
            }
            Ok(answers)
        }
        Query::ServicePort { port, proto } => {
            let answers: Vec<Answer> = protos(*proto)
                .into_iter()
                .filter_map(|p| services::name_of(*port, p).map(|name| (p, name)))
                .map(|(p, name)| Answer {
                    text: format!("{port}/{p} is service {name}"),
                    json: json!({ "query": format!("{port}/{p}"), "service": name, "port": port, "proto": p.to_string() }),
                })
                .collect();
            if answers.is_empty() {
                let of = proto.map(|p| format!("/{p}")).unwrap_or_default();
                return Err(Error::Resolve(format!(
                    "no service name for port {port}{of} in /etc/services"
                )));
            }
            Ok(answers)
        }
    }
}

/// Runs `resolve`: every query in turn; a failed one is named on stderr
/// and the rest still run; the last failure is the command's error.
pub async fn run(args: ResolveArgs) -> Result<()> {
    let queries = plan(&args)?;
    let resolve = args.family.resolve();
    let mut failure = None;
    for query in &queries {
        match answer(&resolve, query).await {
            Ok(answers) => {
                let mut out = String::new();
                for a in answers {
                    if !args.json {
                        let _ = writeln!(out, "{}", a.text);
                    } else if !a.json.is_null() {
                        let _ = writeln!(out, "{}", a.json);
                    }
                }
                crate::stdio::print(&out);
            }
            Err(err) => {
                if let Some(earlier) = failure.replace(err) {
                    eprintln!(
                        "netsmith: {}",
                        crate::error::printable(&earlier.to_string())
                    );
                }
            }
        }
    }
    failure.map_or(Ok(()), Err)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(typed: &str) -> Result<Query> {
        name_query(typed, Family::Any)
    }

    #[test]
    fn special_forms_are_answered_not_looked_up() {
        let any = |ip: IpAddr| Query::Special {
            typed: String::new(),
            ip,
            meaning: Special::Any,
        };
        assert_eq!(name("").unwrap(), any(Ipv4Addr::UNSPECIFIED.into()));
        assert_eq!(
            name_query("", Family::V6).unwrap(),
            any(Ipv6Addr::UNSPECIFIED.into())
        );
        assert!(matches!(
            name("<broadcast>").unwrap(),
            Query::Special { meaning: Special::Broadcast, ip, .. } if ip == IpAddr::from(Ipv4Addr::BROADCAST)
        ));
        assert!(matches!(
            name("0.0.0.0").unwrap(),
            Query::Special {
                meaning: Special::Any,
                ..
            }
        ));
        assert!(name_query("<broadcast>", Family::V6).is_err());
        assert!(matches!(name("localhost").unwrap(), Query::Name { .. }));
        assert!(name("bad name").is_err());
        assert!(name("<other>").is_err());
    }

    #[test]
    fn services_both_ways() {
        assert_eq!(
            service_query("http").unwrap(),
            Query::ServiceName {
                name: "http".into(),
                proto: None
            }
        );
        assert_eq!(
            service_query("443/tcp").unwrap(),
            Query::ServicePort {
                port: 443,
                proto: Some(Proto::Tcp)
            }
        );
        assert_eq!(
            service_query("53").unwrap(),
            Query::ServicePort {
                port: 53,
                proto: None
            }
        );
        for bad in ["443/sctp", "70000", "0", "/tcp", "h ttp", "-x"] {
            let err = service_query(bad).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{bad}: {err}");
        }
    }
}
