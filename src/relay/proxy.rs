//! `netsmith proxy [ADDR:]PORT`: a SOCKS4/4a, SOCKS5 and HTTP proxy on one
//! port, which is `relay tcp-listen:[ADDR:]PORT proxy:` with the proxy's
//! own `--proxy-auth` (what clients must present). Everything after the
//! handshake is relay's: the accept loop, `--allow`/`--deny`,
//! `--max-conns`, the idle timeout, splice, half-close, `--hex`.

use std::time::Duration;

use clap::Args;

use super::{DestinationArgs, RelayArgs};
use crate::cli::{FamilyArgs, LimitArgs};

/// Arguments of `netsmith proxy`.
#[derive(Debug, Args)]
pub struct ProxyCommandArgs {
    /// Where to listen: [ADDR:]PORT (127.0.0.1 unless an address is given;
    /// beyond loopback it needs --proxy-auth or --allow).
    #[arg(value_name = "[ADDR:]PORT")]
    pub listen: String,
    /// Clients must log in with USER:PASS (SOCKS5 username and password,
    /// HTTP Basic); SOCKS4 clients, which cannot, are then refused.
    #[arg(long, value_name = "USER:PASS")]
    pub proxy_auth: Option<String>,
    #[command(flatten)]
    pub destinations: DestinationArgs,
    #[command(flatten)]
    pub limits: LimitArgs,
    #[command(flatten)]
    pub family: FamilyArgs,
    /// Give up connecting to a client's target after DUR (and answer that
    /// it is unreachable).
    #[arg(short = 'w', long = "timeout", value_name = "DUR", value_parser = crate::cli::timeout, default_value = "10s")]
    pub timeout: Duration,
    /// Hexdump both directions of every connection (on stderr).
    #[arg(long)]
    pub hex: bool,
    /// Copy through user space even where splice(2) applies.
    #[arg(long)]
    pub no_splice: bool,
}

impl From<ProxyCommandArgs> for RelayArgs {
    fn from(a: ProxyCommandArgs) -> Self {
        RelayArgs {
            from: format!("tcp-listen:{}", a.listen),
            to: "proxy:".into(),
            limits: a.limits,
            family: a.family,
            tls: super::RelayTlsArgs::default(),
            timeout: a.timeout,
            hex: a.hex,
            log: None,
            no_splice: a.no_splice,
            proxy: crate::proxy::ProxyArgs::default(),
            destinations: a.destinations,
            server_credentials: a.proxy_auth,
        }
    }
}
