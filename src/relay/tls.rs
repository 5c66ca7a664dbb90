//! The TLS flags of `relay`: one side may terminate TLS (`tls-listen:`, a
//! server) and the other originate it (`tls://`, a client), so relay takes
//! both [`crate::tls::ServerArgs`] and [`crate::tls::ClientArgs`] under names
//! that cannot clash: `--cert/--key` are the server's (as in `listen` and
//! `serve`), the client's certificate is `--client-cert/--client-key`, and
//! `--alpn` is offered by the client and accepted by the server alike (a
//! relay passes one protocol through). The flags are mapped onto those two
//! structs so that loading, verifying and pinning stay in [`crate::tls`].

use std::path::PathBuf;

use clap::Args;

use crate::error::{Error, Result};
use crate::tls::{Acceptor, ClientArgs, Connector, Pin, ServerArgs};

/// The TLS flags of `relay`.
#[derive(Debug, Args, Clone, Default)]
pub struct RelayTlsArgs {
    /// tls-listen: certificate chain (PEM); self-signed if not given.
    #[arg(long, value_name = "FILE", requires = "key")]
    pub cert: Option<PathBuf>,
    /// tls-listen: the private key of --cert (PEM).
    #[arg(long, value_name = "FILE", requires = "cert")]
    pub key: Option<PathBuf>,
    /// tls-listen: require client certificates issued by a CA in this PEM file.
    #[arg(long, value_name = "FILE")]
    pub client_ca: Option<PathBuf>,
    /// TLS TO: trust the CA certificates in this PEM file instead of the system's.
    #[arg(long, value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// TLS TO: the server name to send and verify (default: TO's host).
    #[arg(long, value_name = "NAME")]
    pub sni: Option<String>,
    /// TLS TO: trust only the certificate with this SHA-256 fingerprint.
    #[arg(long, value_name = "sha256:HEX", value_parser = crate::tls::parse_pin)]
    pub pin: Option<Pin>,
    /// TLS TO: do not verify TO's certificate (anyone on the path can read
    /// and change the traffic).
    #[arg(long, conflicts_with = "pin")]
    pub insecure: bool,
    /// TLS TO: client certificate chain (PEM), for a TO that asks for one.
    #[arg(long, value_name = "FILE", requires = "client_key")]
    pub client_cert: Option<PathBuf>,
    /// TLS TO: the private key of --client-cert (PEM).
    #[arg(long, value_name = "FILE", requires = "client_cert")]
    pub client_key: Option<PathBuf>,
    /// TLS application protocols, comma-separated: offered by a TLS TO,
    /// accepted by tls-listen: (preferred first).
    #[arg(long, value_name = "LIST")]
    pub alpn: Option<String>,
    /// TLS: take a TLS side's close without `close_notify` as the end of its
    /// data. Without this flag the relay ends that connection with an error
    /// (exit 1 for a one-shot relay): only `close_notify` proves the peer
    /// meant to end there, and anyone on the path can cut a stream with a
    /// forged FIN. For peers known to close that way.
    #[arg(long)]
    pub allow_truncation: bool,
}

impl RelayTlsArgs {
    /// The acceptor for a `tls-listen:` FROM (`listens`), bound to `host`;
    /// without one, a server flag is refused, naming it.
    pub fn acceptor(&self, listens: bool, host: &str, quiet: bool) -> Result<Option<Acceptor>> {
        if !listens {
            return unused(
                &[
                    (self.cert.is_some(), "--cert"),
                    (self.client_ca.is_some(), "--client-ca"),
                ],
                "a tls-listen:[ADDR:]PORT FROM",
            );
        }
        let server = ServerArgs {
            tls: true,
            cert: self.cert.clone(),
            key: self.key.clone(),
            client_ca: self.client_ca.clone(),
            alpn: self.alpn.clone(),
            allow_truncation: self.allow_truncation,
        };
        server.acceptor(&[host.to_string()], quiet)
    }

    /// The connector for a `tls://` TO (`connects`); without one, a client
    /// flag is refused, naming it.
    pub fn connector(&self, connects: bool) -> Result<Option<Connector>> {
        if !connects {
            return unused(
                &[
                    (self.ca.is_some(), "--ca"),
                    (self.sni.is_some(), "--sni"),
                    (self.pin.is_some(), "--pin"),
                    (self.insecure, "--insecure"),
                    (self.client_cert.is_some(), "--client-cert"),
                ],
                "a tls://HOST:PORT TO",
            );
        }
        let client = ClientArgs {
            tls: true,
            ca: self.ca.clone(),
            sni: self.sni.clone(),
            alpn: self.alpn.clone(),
            pin: self.pin,
            insecure: self.insecure,
            cert: self.client_cert.clone(),
            key: self.client_key.clone(),
            allow_truncation: self.allow_truncation,
        };
        client.connector(true)
    }

    /// `--alpn` or `--allow-truncation` given with no TLS side at all.
    pub fn check_alpn(&self, any_tls: bool) -> Result<()> {
        if any_tls {
            return Ok(());
        }
        unused::<()>(
            &[
                (self.alpn.is_some(), "--alpn"),
                (self.allow_truncation, "--allow-truncation"),
            ],
            "a tls-listen: FROM or a tls:// TO",
        )
        .map(|_| ())
    }
}

/// Refuses the first flag set that only `needs` uses.
fn unused<T>(flags: &[(bool, &str)], needs: &str) -> Result<Option<T>> {
    match flags.iter().find(|(set, _)| *set) {
        Some((_, flag)) => Err(Error::usage(format!(
            "{flag} is a TLS option of relay: it needs {needs}"
        ))),
        None => Ok(None),
    }
}
