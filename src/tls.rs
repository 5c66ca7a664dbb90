//! TLS for every stream command, with rustls (ring provider: it builds with
//! a C compiler alone, where aws-lc-rs needs cmake and nasm).
//!
//! Two values are built once from the command line and used per
//! connection: a [`Connector`] (client) and an [`Acceptor`] (server). Each
//! turns a plain [`Stream`] into a [`Stream::Tls`], which goes wherever a
//! plain stream goes: the session and its copy loop, the services, a relay.
//!
//! Secure by default: the client verifies the server's certificate and name
//! against the system roots (or `--ca FILE`); `--pin sha256:HEX` trusts
//! exactly one certificate instead (a self-signed one included), and
//! `--insecure` trusts anything, said loudly. A server with no `--cert`
//! makes a self-signed certificate at start and prints its fingerprint in
//! the form `--pin` takes.
//!
//! Closing: at input EOF the session shuts the stream down, which for TLS
//! sends `close_notify` and then the TCP FIN: TLS 1.3 lets the other side go
//! on sending, so this is TLS's half-close, and reading goes on. A peer
//! that closes the TCP connection without `close_notify` may have been cut
//! off by anyone on the path: `connect` and `listen`, whose output is the
//! data, say so on stderr (a warning, exit status unchanged: ncat --ssl
//! never sends `close_notify`, and a protocol that must know delimits its
//! own messages); the services, which answer whatever came, treat it as a
//! plain close.

use std::fmt;
use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig};
use sha2::{Digest, Sha256};

use crate::endpoint::Host;
use crate::error::{Error, Result};
use crate::net::Stream;

/// A TLS session over any stream socket.
pub type TlsStream = tokio_rustls::TlsStream<Stream>;

/// How long a server waits for a client's handshake: a client that
/// connects and says nothing must not hold a connection slot for long.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The client's TLS flags (`connect`).
#[derive(Debug, Args, Clone, Default)]
pub struct ClientArgs {
    /// Speak TLS (as does a tls://HOST:PORT target).
    #[arg(long)]
    pub tls: bool,
    /// TLS: trust the CA certificates in this PEM file instead of the system's.
    #[arg(long, value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// TLS: the server name to send and verify (default: the target's host).
    #[arg(long, value_name = "NAME")]
    pub sni: Option<String>,
    /// TLS: application protocols to offer, comma-separated (h2,http/1.1).
    #[arg(long, value_name = "LIST")]
    pub alpn: Option<String>,
    /// TLS: trust only the certificate with this SHA-256 fingerprint
    /// (self-signed ones too), as printed by `listen --tls`.
    #[arg(long, value_name = "sha256:HEX", value_parser = parse_pin)]
    pub pin: Option<Pin>,
    /// TLS: do not verify the server's certificate (anyone on the path can
    /// read and change the traffic).
    #[arg(long, conflicts_with = "pin")]
    pub insecure: bool,
    /// TLS: client certificate chain (PEM), for servers that ask for one.
    #[arg(long, value_name = "FILE", requires = "key")]
    pub cert: Option<PathBuf>,
    /// TLS: the private key of --cert (PEM).
    #[arg(long, value_name = "FILE", requires = "cert")]
    pub key: Option<PathBuf>,
    /// TLS: take a peer's close without `close_notify` as the end of the
    /// data (a warning, exit 0). Without this flag it is an error (exit 1):
    /// only `close_notify` proves the peer meant to end there, and anyone on
    /// the path can cut a stream with a forged FIN. For peers known to
    /// close that way.
    #[arg(long)]
    pub allow_truncation: bool,
}

/// The server's TLS flags (`listen`, `serve`).
#[derive(Debug, Args, Clone, Default)]
pub struct ServerArgs {
    /// Speak TLS (with a self-signed certificate unless --cert is given).
    #[arg(long)]
    pub tls: bool,
    /// TLS: certificate chain (PEM).
    #[arg(long, value_name = "FILE", requires = "key")]
    pub cert: Option<PathBuf>,
    /// TLS: the private key of --cert (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, value_name = "FILE", requires = "cert")]
    pub key: Option<PathBuf>,
    /// TLS: require client certificates issued by a CA in this PEM file.
    #[arg(long, value_name = "FILE")]
    pub client_ca: Option<PathBuf>,
    /// TLS: application protocols to accept, comma-separated, preferred first.
    #[arg(long, value_name = "LIST")]
    pub alpn: Option<String>,
    /// TLS: take a peer's close without `close_notify` as the end of the
    /// data (a warning, exit 0). Without this flag it is an error (exit 1):
    /// only `close_notify` proves the peer meant to end there, and anyone on
    /// the path can cut a stream with a forged FIN. For peers known to
    /// close that way.
    #[arg(long)]
    pub allow_truncation: bool,
}

impl ClientArgs {
    /// Whether any TLS-only flag was given (they need `--tls` or `tls://`).
    fn any_set(&self) -> Option<&'static str> {
        [
            (self.ca.is_some(), "--ca"),
            (self.sni.is_some(), "--sni"),
            (self.alpn.is_some(), "--alpn"),
            (self.pin.is_some(), "--pin"),
            (self.insecure, "--insecure"),
            (self.cert.is_some(), "--cert"),
            (self.allow_truncation, "--allow-truncation"),
        ]
        .into_iter()
        .find_map(|(set, flag)| set.then_some(flag))
    }

    /// The connector these flags ask for; `None` without TLS. `tls` is
    /// whether the target asked for TLS (`tls://`).
    pub fn connector(&self, tls: bool) -> Result<Option<Connector>> {
        if !(self.tls || tls) {
            return match self.any_set() {
                Some(flag) => Err(Error::usage(format!(
                    "{flag} is a TLS option: add --tls or use a tls://HOST:PORT target"
                ))),
                None => Ok(None),
            };
        }
        Connector::new(self).map(Some)
    }
}

impl ServerArgs {
    /// The acceptor these flags ask for; `None` without TLS. `names` are
    /// added to a self-signed certificate's names (the bound address).
    pub fn acceptor(&self, names: &[String], quiet: bool) -> Result<Option<Acceptor>> {
        if !self.tls {
            let flag = [
                (self.cert.is_some(), "--cert"),
                (self.client_ca.is_some(), "--client-ca"),
                (self.alpn.is_some(), "--alpn"),
                (self.allow_truncation, "--allow-truncation"),
            ]
            .into_iter()
            .find_map(|(set, flag)| set.then_some(flag));
            return match flag {
                Some(flag) => Err(Error::usage(format!("{flag} is a TLS option: add --tls"))),
                None => Ok(None),
            };
        }
        Acceptor::new(self, names, quiet).map(Some)
    }
}

/// A certificate's SHA-256 fingerprint, for `--pin`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Pin([u8; 32]);

impl Pin {
    /// The fingerprint of a DER certificate.
    pub fn of(cert: &[u8]) -> Pin {
        Pin(Sha256::digest(cert).into())
    }
}

impl fmt::Display for Pin {
    /// `sha256:` and 64 lowercase hex digits: what `--pin` takes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("sha256:")?;
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Parses `sha256:HEX` (64 hex digits in either case; colons between pairs
/// allowed), or the line `openssl x509 -noout -fingerprint -sha256` prints
/// (`sha256 Fingerprint=AB:CD:...`), or the bare hex.
pub fn parse_pin(text: &str) -> Result<Pin, String> {
    let bad = || {
        format!(
            "invalid pin \"{text}\": expected sha256: and 64 hex digits, as printed by \
             `netsmith listen --tls` or `openssl x509 -noout -fingerprint -sha256`"
        )
    };
    // `sha256:HEX`, openssl's `sha256 Fingerprint=HEX` (`SHA256` in older
    // versions), or the bare hex.
    let trimmed = text.trim();
    let hex = ["sha256:", "sha256 fingerprint="]
        .iter()
        .find_map(|prefix| {
            trimmed
                .get(..prefix.len())
                .filter(|p| p.eq_ignore_ascii_case(prefix))
                .map(|_| &trimmed[prefix.len()..])
        })
        .unwrap_or(trimmed);
    let digits: Vec<u8> = hex.bytes().filter(|&b| b != b':').collect();
    if digits.len() != 64 {
        return Err(bad());
    }
    let mut out = [0u8; 32];
    for (byte, pair) in out.iter_mut().zip(digits.chunks(2)) {
        let pair = std::str::from_utf8(pair).map_err(|_| bad())?;
        *byte = u8::from_str_radix(pair, 16).map_err(|_| bad())?;
    }
    Ok(Pin(out))
}

/// Splits `--alpn h2,http/1.1` into protocol names.
fn alpn_list(list: Option<&str>) -> Result<Vec<Vec<u8>>> {
    let Some(list) = list else {
        return Ok(Vec::new());
    };
    let names: Vec<Vec<u8>> = list
        .split(',')
        .map(|p| p.trim().as_bytes().to_vec())
        .collect();
    if names.iter().any(|n| n.is_empty() || n.len() > 255) {
        return Err(Error::usage(format!(
            "invalid --alpn \"{list}\": give protocol names separated by commas, such as h2,http/1.1"
        )));
    }
    Ok(names)
}

/// The one crypto provider.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A file the user named that could not be used: a local problem (exit 2).
fn file_error(flag: &str, path: &Path, why: impl fmt::Display) -> Error {
    Error::Local {
        what: format!("{flag} {}", path.display()),
        reason: why.to_string(),
    }
}

/// Every certificate of a PEM file.
fn load_certs(flag: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(Iterator::collect::<std::result::Result<Vec<_>, _>>)
        .map_err(|e| file_error(flag, path, pem_error(&e)))?;
    if certs.is_empty() {
        return Err(file_error(
            flag,
            path,
            "no certificate in it (expected PEM: -----BEGIN CERTIFICATE-----)",
        ));
    }
    Ok(certs)
}

/// The private key of a PEM file.
fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => file_error(
            "--key",
            path,
            "no private key in it (expected PEM: -----BEGIN PRIVATE KEY-----)",
        ),
        e => file_error("--key", path, pem_error(&e)),
    })
}

fn pem_error(e: &rustls::pki_types::pem::Error) -> String {
    match e {
        rustls::pki_types::pem::Error::Io(io) => crate::error::describe_io(io),
        other => format!("not valid PEM: {other}"),
    }
}

/// Why a key and a certificate chain could not be paired.
fn key_mismatch(e: &rustls::Error) -> String {
    match e {
        rustls::Error::InconsistentKeys(_) => {
            "this key does not belong to --cert's certificate".into()
        }
        other => format!(
            "unusable with --cert: {}",
            describe_rustls(other, Role::Own)
        ),
    }
}

/// A root store from a PEM file of CA certificates.
fn roots_from(flag: &str, path: &Path) -> Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    for cert in load_certs(flag, path)? {
        roots
            .add(cert)
            .map_err(|e| file_error(flag, path, format!("not a usable CA certificate: {e}")))?;
    }
    Ok(roots)
}

/// The system's trusted roots (Debian: ca-certificates, /etc/ssl/certs;
/// `SSL_CERT_FILE` and `SSL_CERT_DIR` are honoured).
fn system_roots() -> Result<RootCertStore> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        return Err(Error::Local {
            what: "TLS".into(),
            reason: "no trusted root certificates found on this system (install \
                     ca-certificates), give --ca FILE, or --pin the server's certificate"
                .into(),
        });
    }
    Ok(roots)
}

/// Makes TLS client connections, built once from the flags.
#[derive(Clone)]
pub struct Connector {
    inner: tokio_rustls::TlsConnector,
    /// `--sni`: the name sent and verified instead of the target's host.
    sni: Option<ServerName<'static>>,
}

impl fmt::Debug for Connector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connector")
            .field("sni", &self.sni)
            .finish_non_exhaustive()
    }
}

impl Connector {
    /// A connector for `args`: loads the roots, the client certificate, and
    /// warns on stderr about `--insecure`.
    pub fn new(args: &ClientArgs) -> Result<Connector> {
        let provider = provider();
        let algorithms = provider.signature_verification_algorithms;
        let verifier: Arc<dyn ServerCertVerifier> = if let Some(pin) = args.pin {
            Arc::new(Trust {
                pin: Some(pin),
                algorithms,
            })
        } else if args.insecure {
            eprintln!(
                "netsmith: WARNING: --insecure: the server's certificate is NOT verified; \
                 anyone on the path can read and change this connection"
            );
            Arc::new(Trust {
                pin: None,
                algorithms,
            })
        } else {
            let roots = match &args.ca {
                Some(path) => roots_from("--ca", path)?,
                None => system_roots()?,
            };
            rustls::client::WebPkiServerVerifier::builder_with_provider(
                Arc::new(roots),
                provider.clone(),
            )
            .build()
            .map_err(|e| Error::usage(format!("--ca: {e}")))?
        };
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::usage(format!("TLS: {e}")))?
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let mut config = match (&args.cert, &args.key) {
            (Some(cert), Some(key)) => builder
                .with_client_auth_cert(load_certs("--cert", cert)?, load_key(key)?)
                .map_err(|e| file_error("--key", key, key_mismatch(&e)))?,
            _ => builder.with_no_client_auth(),
        };
        config.alpn_protocols = alpn_list(args.alpn.as_deref())?;
        let sni = args
            .sni
            .as_deref()
            .map(|name| {
                ServerName::try_from(name.to_string()).map_err(|_| {
                    Error::usage(format!(
                        "invalid --sni \"{name}\": give a DNS name such as example.com or an IP address"
                    ))
                })
            })
            .transpose()?;
        Ok(Connector {
            inner: tokio_rustls::TlsConnector::from(Arc::new(config)),
            sni,
        })
    }

    /// Runs the client handshake over `stream`, connected to `host`
    /// (`peer` names it in messages).
    ///
    /// # Errors
    /// A refused certificate or failed handshake is [`Error::Network`]
    /// (exit 1) with the reason in plain words.
    pub async fn connect(&self, host: &Host, stream: Stream, peer: &str) -> Result<Stream> {
        let name = match (&self.sni, host) {
            (Some(name), _) => name.clone(),
            (None, Host::Ip(ip)) => ServerName::IpAddress((*ip).into()),
            (None, Host::Name(name)) => ServerName::try_from(name.clone()).map_err(|_| {
                Error::usage(format!("\"{name}\" is not a name a certificate can carry"))
            })?,
        };
        let tls = self
            .inner
            .connect(name, stream)
            .await
            .map_err(|e| handshake_error(peer, &e, Role::Client))?;
        let tls = TlsStream::from(tls);
        describe_session(&tls, peer);
        Ok(Stream::Tls(Box::new(tls)))
    }
}

/// Accepts TLS clients, built once from the flags.
#[derive(Clone)]
pub struct Acceptor {
    inner: tokio_rustls::TlsAcceptor,
}

impl fmt::Debug for Acceptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Acceptor")
    }
}

impl Acceptor {
    /// An acceptor for `args`. Without `--cert`, makes a self-signed
    /// certificate for localhost, 127.0.0.1, `::1` and `names`, and prints
    /// its fingerprint on stderr (unless `quiet`).
    pub fn new(args: &ServerArgs, names: &[String], quiet: bool) -> Result<Acceptor> {
        let provider = provider();
        let (chain, key) = if let (Some(cert), Some(key)) = (&args.cert, &args.key) {
            (load_certs("--cert", cert)?, load_key(key)?)
        } else {
            let (chain, key, names) = self_signed(names)?;
            if !quiet {
                eprintln!(
                    "TLS certificate: self-signed for {}; clients pin it with --pin {}",
                    names.join(", "),
                    Pin::of(&chain[0])
                );
            }
            (chain, key)
        };
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::usage(format!("TLS: {e}")))?;
        let builder = match &args.client_ca {
            Some(path) => {
                let roots = Arc::new(roots_from("--client-ca", path)?);
                let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider)
                    .build()
                    .map_err(|e| file_error("--client-ca", path, e))?;
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        };
        let mut config = builder.with_single_cert(chain, key).map_err(|e| {
            file_error(
                "--key",
                args.key.as_deref().unwrap_or(Path::new("")),
                key_mismatch(&e),
            )
        })?;
        config.alpn_protocols = alpn_list(args.alpn.as_deref())?;
        Ok(Acceptor {
            inner: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
        })
    }

    /// Runs the server handshake over an accepted `stream`, within
    /// [`HANDSHAKE_TIMEOUT`].
    pub async fn accept(&self, stream: Stream, peer: &str) -> Result<Stream> {
        let tls = tokio::time::timeout(HANDSHAKE_TIMEOUT, self.inner.accept(stream))
            .await
            .map_err(|_| Error::Network {
                what: format!("TLS handshake with {peer}"),
                reason: format!(
                    "no handshake within {}",
                    crate::duration::show(HANDSHAKE_TIMEOUT)
                ),
            })?
            .map_err(|e| handshake_error(peer, &e, Role::Server))?;
        let tls = TlsStream::from(tls);
        describe_session(&tls, peer);
        Ok(Stream::Tls(Box::new(tls)))
    }
}

/// A self-signed certificate for the loopback names and `extra`; returns
/// the chain, the key and the names it is for.
fn self_signed(
    extra: &[String],
) -> Result<(
    Vec<CertificateDer<'static>>,
    PrivateKeyDer<'static>,
    Vec<String>,
)> {
    let mut names: Vec<String> = ["localhost", "127.0.0.1", "::1"]
        .into_iter()
        .map(String::from)
        .collect();
    for name in extra {
        // An IPv6 host prints in brackets; the certificate wants the address.
        let name = &name
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let unspecified = name.parse::<IpAddr>().is_ok_and(|ip| ip.is_unspecified());
        if !unspecified && !names.contains(name) {
            names.push(name.clone());
        }
    }
    let made = rcgen::generate_simple_self_signed(names.clone()).map_err(|e| Error::Local {
        what: "make a self-signed certificate".into(),
        reason: e.to_string(),
    })?;
    let key = PrivatePkcs8KeyDer::from(made.signing_key.serialize_der());
    Ok((vec![made.cert.der().clone()], key.into(), names))
}

/// Logs what a handshake settled (version, ALPN, the peer's certificate).
fn describe_session(tls: &TlsStream, peer: &str) {
    let (_, state) = tls.get_ref();
    let version = match state.protocol_version() {
        Some(rustls::ProtocolVersion::TLSv1_3) => "TLS 1.3".to_string(),
        Some(rustls::ProtocolVersion::TLSv1_2) => "TLS 1.2".to_string(),
        other => format!("{other:?}"),
    };
    let alpn = state
        .alpn_protocol()
        .map(|p| format!(", ALPN {}", String::from_utf8_lossy(p)))
        .unwrap_or_default();
    let cert = state
        .peer_certificates()
        .and_then(<[_]>::first)
        .map(|c| format!(", certificate {}", Pin::of(c)))
        .unwrap_or_default();
    tracing::info!("TLS with {peer}: {version}{alpn}{cert}");
}

/// Which end of the handshake we are: the advice for a refused
/// certificate differs (a client trusts servers through `--ca`/`--pin`, a
/// server trusts clients through `--client-ca`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Client,
    Server,
    /// Checking our own `--cert`.
    Own,
}

/// A handshake failure in plain words, as a network error (exit 1).
fn handshake_error(peer: &str, err: &io::Error, role: Role) -> Error {
    let reason = match err
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>())
    {
        Some(e) => describe_rustls(e, role),
        None if err.kind() == io::ErrorKind::UnexpectedEof => {
            "the peer closed the connection during the handshake (does it speak TLS? \
             did it refuse our certificate?)"
                .into()
        }
        None => crate::error::describe_io(err),
    };
    Error::Network {
        what: format!("TLS handshake with {peer}"),
        reason,
    }
}

/// rustls's errors in the words a user knows.
fn describe_rustls(err: &rustls::Error, role: Role) -> String {
    use rustls::Error as E;
    match err {
        E::InvalidCertificate(e) => describe_certificate(e, role),
        E::AlertReceived(alert) => format!(
            "the peer refused the handshake ({} alert){}",
            words(&format!("{alert:?}")),
            match alert {
                rustls::AlertDescription::CertificateRequired =>
                    ": it wants a client certificate (--cert and --key)",
                rustls::AlertDescription::UnknownCA | rustls::AlertDescription::BadCertificate =>
                    ": it does not trust our certificate",
                rustls::AlertDescription::NoApplicationProtocol => ": no --alpn protocol in common",
                _ => "",
            }
        ),
        E::NoCertificatesPresented => {
            "the peer sent no certificate (--client-ca requires one)".into()
        }
        E::InvalidMessage(_) => "the peer does not speak TLS (or sent a malformed message)".into(),
        E::PeerIncompatible(e) => format!(
            "no TLS version or cipher in common ({})",
            words(&format!("{e:?}"))
        ),
        E::NoApplicationProtocol => "no --alpn protocol in common".into(),
        other => other.to_string(),
    }
}

/// A certificate refusal: expired, wrong name, unknown issuer, ...
fn describe_certificate(err: &CertificateError, role: Role) -> String {
    use CertificateError as C;
    let trust = match role {
        Role::Client => "give --ca FILE, or --pin its fingerprint",
        Role::Server => "--client-ca FILE must hold the CA that issued the client's certificate",
        Role::Own => "--cert must be a certificate issued for this host",
    };
    match err {
        C::Expired => "certificate expired".into(),
        C::ExpiredContext { time, not_after } => format!(
            "certificate expired ({} ago, at {})",
            humantime::format_duration(Duration::from_secs(
                time.as_secs().saturating_sub(not_after.as_secs())
            )),
            humantime::format_rfc3339_seconds(to_system(*not_after))
        ),
        C::NotValidYet => "certificate not valid yet".into(),
        C::NotValidYetContext { not_before, .. } => format!(
            "certificate not valid yet (from {})",
            humantime::format_rfc3339_seconds(to_system(*not_before))
        ),
        C::NotValidForName => "wrong name: the certificate is for another name".into(),
        C::NotValidForNameContext {
            expected,
            presented,
        } => format!(
            "wrong name: the certificate is not valid for {}{} (--sni NAME checks another name)",
            expected.to_str(),
            if presented.is_empty() {
                String::new()
            } else {
                let names: Vec<&str> = presented.iter().map(|p| san_text(p)).collect();
                format!(", only for {}", names.join(", "))
            }
        ),
        C::UnknownIssuer => {
            format!("unknown issuer: the certificate is not signed by a trusted CA ({trust})")
        }
        C::BadSignature => "bad signature on the certificate".into(),
        C::Revoked => "certificate revoked".into(),
        C::InvalidPurpose | C::InvalidPurposeContext { .. } => {
            "certificate not meant for this use (extended key usage)".into()
        }
        C::Other(other) => describe_webpki(&other.to_string()),
        other => format!("certificate refused: {}", words(&format!("{other:?}"))),
    }
}

/// The certificate checker's refusals, which reach us only as their
/// Debug text (`CaUsedAsEndEntity`): the common ones explained, the rest
/// in words ("unsupported critical extension"), never the raw name.
fn describe_webpki(text: &str) -> String {
    let name: String = text
        .chars()
        .take_while(char::is_ascii_alphanumeric)
        .collect();
    let head = text.split(['(', '{']).next().unwrap_or_default();
    if !name.starts_with(|c: char| c.is_ascii_uppercase()) || head.trim_end().contains(' ') {
        // Words already (our own verifier's, such as a --pin mismatch).
        return text.to_string();
    }
    match name.as_str() {
        // The advice to give --ca would be wrong: that CA may be the
        // very certificate presented.
        "CaUsedAsEndEntity" => "the certificate presented is a CA certificate, not one a CA \
                                issued for the peer (the peer must present its own \
                                certificate; --pin trusts exactly the one presented)"
            .into(),
        "EndEntityUsedAsCa" => "a certificate in the chain that signed the peer's is not a CA \
                                certificate (basic constraints)"
            .into(),
        "UnsupportedCertVersion" => "the certificate is not X.509 version 3, the only one \
                                     TLS verification accepts (reissue it as v3)"
            .into(),
        "BadDer" | "BadDerTime" | "TrailingData" => {
            "the certificate is malformed (bad DER encoding)".into()
        }
        _ => format!("certificate refused: {}", words(&name)),
    }
}

/// A Rust identifier as lowercase words: `UnsupportedCertVersion` ->
/// "unsupported cert version"; only its leading identifier (no fields).
fn words(debug: &str) -> String {
    let mut out = String::new();
    for c in debug.chars().take_while(char::is_ascii_alphanumeric) {
        if c.is_ascii_uppercase() && !out.is_empty() {
            out.push(' ');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// rustls presents a name as `DnsName("x")` or `IpAddress(1.2.3.4)`: the x.
fn san_text(presented: &str) -> &str {
    presented
        .strip_prefix("DnsName(\"")
        .and_then(|p| p.strip_suffix("\")"))
        .or_else(|| {
            presented
                .strip_prefix("IpAddress(")
                .and_then(|p| p.strip_suffix(')'))
        })
        .unwrap_or(presented)
}

fn to_system(t: UnixTime) -> std::time::SystemTime {
    std::time::UNIX_EPOCH + Duration::from_secs(t.as_secs())
}

/// Whether an I/O error is a TLS peer's close without `close_notify`.
pub fn is_truncation(err: &io::Error) -> bool {
    err.kind() == io::ErrorKind::UnexpectedEof && err.to_string().contains("close_notify")
}

/// A reader that, when `allow` is set (`--allow-truncation`), takes a TLS
/// peer's close without `close_notify` as its EOF, with a warning naming
/// `peer`; otherwise it passes everything through, that close being an
/// error.
pub struct TruncationAsEof<R> {
    inner: R,
    allow: bool,
    peer: String,
}

impl<R> TruncationAsEof<R> {
    /// Wraps `inner`, read from `peer`.
    pub fn new(inner: R, allow: bool, peer: impl Into<String>) -> Self {
        TruncationAsEof {
            inner,
            allow,
            peer: peer.into(),
        }
    }
}

impl<R: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for TruncationAsEof<R> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        match std::pin::Pin::new(&mut self.inner).poll_read(cx, buf) {
            std::task::Poll::Ready(Err(e)) if self.allow && is_truncation(&e) => {
                tracing::warn!(
                    "{} closed without TLS close_notify: what arrived may be truncated \
                     (accepted: --allow-truncation)",
                    self.peer
                );
                std::task::Poll::Ready(Ok(()))
            }
            other => other,
        }
    }
}

/// The verifier for `--pin` (exactly one certificate, whatever its issuer
/// and names) and `--insecure` (any certificate). Both still check the
/// handshake's signatures, so the peer holds the certificate's key.
#[derive(Debug)]
struct Trust {
    /// `None`: `--insecure`.
    pin: Option<Pin>,
    algorithms: WebPkiSupportedAlgorithms,
}

/// A certificate whose fingerprint is not the pinned one.
#[derive(Debug)]
struct PinMismatch {
    seen: Pin,
}

impl fmt::Display for PinMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "certificate does not match --pin: the server's is {}",
            self.seen
        )
    }
}

impl std::error::Error for PinMismatch {}

impl ServerCertVerifier for Trust {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        let seen = Pin::of(end_entity);
        match self.pin {
            Some(pin) if pin != seen => Err(rustls::Error::InvalidCertificate(
                CertificateError::Other(rustls::OtherError(Arc::new(PinMismatch { seen }))),
            )),
            _ => Ok(ServerCertVerified::assertion()),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_parse_in_both_spellings() {
        let hex = "ab".repeat(32);
        let pin = parse_pin(&format!("sha256:{hex}")).unwrap();
        assert_eq!(pin.to_string(), format!("sha256:{hex}"));
        let colons = vec!["AB"; 32].join(":");
        assert_eq!(parse_pin(&format!("SHA256:{colons}")).unwrap(), pin);
        for bad in [
            "",
            "sha256:",
            "md5:ab",
            &format!("sha256:{}", "zz".repeat(32)),
            "sha256:abc",
        ] {
            assert!(parse_pin(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn alpn_lists() {
        assert_eq!(
            alpn_list(Some("h2,http/1.1")).unwrap(),
            vec![b"h2".to_vec(), b"http/1.1".to_vec()]
        );
        assert!(alpn_list(Some("h2,,x")).is_err());
        assert!(alpn_list(None).unwrap().is_empty());
    }

    #[test]
    fn hardening_18_webpki_names_become_words() {
        let ca = describe_webpki("CaUsedAsEndEntity");
        assert!(
            ca.contains("is a CA certificate") && !ca.contains("--ca") && ca.contains("--pin"),
            "{ca}"
        );
        let v1 = describe_webpki("UnsupportedCertVersion");
        assert!(v1.contains("not X.509 version 3"), "{v1}");
        assert_eq!(
            describe_webpki("UnsupportedCriticalExtension"),
            "certificate refused: unsupported critical extension"
        );
        let ctx = describe_webpki("UnsupportedSignatureAlgorithmContext(X { a: [1] })");
        assert_eq!(
            ctx,
            "certificate refused: unsupported signature algorithm context"
        );
        let ours = "certificate does not match --pin: the server's is sha256:ab";
        assert_eq!(describe_webpki(ours), ours);
    }

    #[test]
    fn hardening_18_pins_in_openssl_form_and_bare() {
        let hex = "AB".repeat(32);
        let colons: Vec<String> = (0..32).map(|_| "AB".to_string()).collect();
        let want = parse_pin(&format!("sha256:{hex}")).unwrap();
        for text in [
            format!("sha256 Fingerprint={}", colons.join(":")),
            format!("SHA256 Fingerprint={}", colons.join(":")),
            format!("  {}\n", colons.join(":").to_lowercase()),
            hex.clone(),
        ] {
            assert_eq!(
                parse_pin(&text).unwrap().to_string(),
                want.to_string(),
                "{text}"
            );
        }
        assert!(parse_pin("sha1 Fingerprint=AB:CD").is_err());
    }

    #[test]
    fn certificate_errors_in_plain_words() {
        assert!(describe_certificate(&CertificateError::Expired, Role::Client).contains("expired"));
        assert!(
            describe_certificate(&CertificateError::UnknownIssuer, Role::Client)
                .contains("unknown issuer")
        );
        let wrong = CertificateError::NotValidForNameContext {
            expected: ServerName::try_from("example.com").unwrap(),
            presented: vec![
                "DnsName(\"localhost\")".into(),
                "IpAddress(127.0.0.1)".into(),
            ],
        };
        let text = describe_certificate(&wrong, Role::Client);
        assert!(text.starts_with("wrong name"), "{text}");
        assert!(text.contains("only for localhost, 127.0.0.1 "), "{text}");
    }

    #[test]
    fn self_signed_names_skip_the_wildcard_address() {
        let (_, _, names) =
            self_signed(&["0.0.0.0".into(), "127.0.0.2".into(), "[::1]".into()]).unwrap();
        assert_eq!(names, ["localhost", "127.0.0.1", "::1", "127.0.0.2"]);
    }
}
