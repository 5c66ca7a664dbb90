//! TLS: netsmith against itself, OpenSSL (`s_server`, `s_client`) and
//! `ncat --ssl`, in both roles, 64 MiB of random bytes checked by SHA-256;
//! certificates refused for the right reason (unknown issuer, wrong name,
//! expired, wrong pin); a pinned self-signed certificate accepted; client
//! certificates; `serve --tls echo`.
//!
//! The certificates are made here with rcgen: a CA, a server certificate for
//! localhost and 127.0.0.1 signed by it, an expired one, and a client one.
//!
//! End-of-stream behaviour of the peers:
//!
//! - `openssl s_server` quits the connection as soon as it receives
//!   `close_notify`, with its own data unsent, and (with `-no_ign_eof`) at
//!   its stdin's EOF with the client's data unread: it cannot half-close,
//!   so each direction is a run of its own (`-quiet` alone ignores stdin's
//!   EOF, for the run where it receives).
//! - `openssl s_client -quiet` ignores its stdin's EOF (so it receives to
//!   the end); `-no_ign_eof -nocommands` sends `close_notify` at stdin EOF.
//! - `ncat --ssl` half-closes with a plain FIN and never sends
//!   `close_notify`: netsmith exits 1 (what arrived may be truncated)
//!   unless given `--allow-truncation`, as the ncat runs are. As a server (`-l`) it quits at its client's EOF, as in
//!   interop.rs, so the netsmith client there runs with `--no-shutdown`.

use std::sync::Arc;

use crate::interop::{self, Cmd, Ready, SIZE, assert_ok, assert_received, both_ways};
use crate::util::{self, WAIT};

/// The certificates and keys of a test, as PEM files in a temporary directory.
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn new() -> Pki {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "netsmith test CA");
        let ca_key = KeyPair::generate().unwrap();
        write("ca.pem", &ca_params.self_signed(&ca_key).unwrap().pem());
        let issuer = Issuer::new(ca_params, ca_key);
        let leaf = |name: &str, sans: &[&str], expired: bool| {
            let sans: Vec<String> = sans.iter().map(ToString::to_string).collect();
            let mut params = CertificateParams::new(sans).unwrap();
            if expired {
                params.not_before = rcgen::date_time_ymd(2020, 1, 1);
                params.not_after = rcgen::date_time_ymd(2021, 1, 1);
            }
            let key = KeyPair::generate().unwrap();
            write(
                &format!("{name}.pem"),
                &params.signed_by(&key, &issuer).unwrap().pem(),
            );
            write(&format!("{name}.key"), &key.serialize_pem());
        };
        leaf("server", &["localhost", "127.0.0.1"], false);
        leaf("expired", &["localhost", "127.0.0.1"], true);
        leaf("client", &["client.test"], false);
        Pki { dir }
    }

    /// The path of one of the files, as a string for a command line.
    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_str().unwrap().to_string()
    }
}

fn openssl(args: &[&str]) -> Cmd {
    interop::cmd(util::require("openssl"), args)
}

/// `listen --tls` with the test's server certificate, or `name`'s.
fn tls_listener(pki: &Pki, name: &str, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = ["listen", "--tls", "--cert"]
        .iter()
        .map(ToString::to_string)
        .collect();
    args.extend([
        pki.path(&format!("{name}.pem")),
        "--key".into(),
        pki.path(&format!("{name}.key")),
    ]);
    args.extend(extra.iter().map(ToString::to_string));
    args.extend(["127.0.0.1".into(), "0".into()]);
    args
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

// netsmith <-> netsmith

#[test]
fn netsmith_to_netsmith_verified_both_ways() {
    let pki = Pki::new();
    let ca = pki.path("ca.pem");
    let server = interop::netsmith(&strs(&tls_listener(&pki, "server", &[])));
    both_ways(
        &server,
        Ready::Announced,
        |p| interop::netsmith(&["connect", "--ca", &ca, &format!("tls://localhost:{p}")]),
        SIZE,
    );
}

/// Starts a `listen --tls` with a self-signed certificate; returns it, its
/// port and the `--pin` value it printed.
fn self_signed_listener(extra: &[&str]) -> (util::Proc, u16, String) {
    let mut args = vec!["listen", "--tls"];
    args.extend_from_slice(extra);
    args.extend(["127.0.0.1", "0"]);
    let mut srv = util::spawn(&args);
    let line = srv.wait_stderr("--pin ");
    let pin = line.split("--pin ").nth(1).unwrap().trim().to_string();
    assert!(pin.starts_with("sha256:") && pin.len() == 71, "{line}");
    let port = srv.port();
    (srv, port, pin)
}

#[test]
fn pinned_self_signed_certificate_is_accepted() {
    let (srv, port, pin) = self_signed_listener(&["--send", "from server"]);
    let out = util::run(
        &[
            "connect",
            "--pin",
            &pin,
            "--send",
            "from client",
            &format!("tls://127.0.0.1:{port}"),
        ],
        b"",
    );
    out.ok();
    assert_eq!(out.out(), "from server");
    let srv = srv.finish(WAIT);
    srv.ok();
    assert_eq!(srv.out(), "from client");
}

#[test]
fn wrong_pin_is_refused() {
    let (_srv, port, pin) = self_signed_listener(&[]);
    let other = format!("sha256:{}", "0".repeat(64));
    let out = util::run(
        &[
            "connect",
            "--pin",
            &other,
            &format!("tls://127.0.0.1:{port}"),
        ],
        b"",
    );
    out.code_is(1);
    assert!(
        out.stderr.contains("does not match --pin") && out.stderr.contains(&pin),
        "{}",
        out.dump()
    );
}

#[test]
fn self_signed_certificate_is_refused_without_a_pin() {
    let (_srv, port, _) = self_signed_listener(&[]);
    let out = util::run(&["connect", &format!("tls://localhost:{port}")], b"");
    out.code_is(1);
    assert!(out.stderr.contains("unknown issuer"), "{}", out.dump());
}

/// Connects to a `listen --tls` serving `name`'s certificate with `args`;
/// returns the client's output.
fn refused(name: &str, args: &[&str]) -> util::Output {
    let pki = Pki::new();
    let mut srv = util::spawn(&strs(&tls_listener(&pki, name, &[])));
    let port = srv.port();
    let ca = pki.path("ca.pem");
    let mut line = vec!["connect", "--ca", &ca];
    line.extend_from_slice(args);
    let target = format!("tls://localhost:{port}");
    line.push(&target);
    util::run(&line, b"hello")
}

#[test]
fn unknown_issuer_is_refused() {
    let pki = Pki::new();
    let mut srv = util::spawn(&strs(&tls_listener(&pki, "server", &[])));
    let port = srv.port();
    // No --ca: the system roots do not know the test CA.
    let out = util::run(&["connect", &format!("tls://localhost:{port}")], b"");
    out.code_is(1);
    assert!(out.stderr.contains("unknown issuer"), "{}", out.dump());
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.dump());
}

#[test]
fn wrong_name_is_refused() {
    let out = refused("server", &["--sni", "other.example"]);
    out.code_is(1);
    assert!(
        out.stderr.contains("wrong name") && out.stderr.contains("other.example"),
        "{}",
        out.dump()
    );
}

#[test]
fn expired_certificate_is_refused() {
    let out = refused("expired", &[]);
    out.code_is(1);
    assert!(out.stderr.contains("certificate expired"), "{}", out.dump());
}

#[test]
fn insecure_says_so_and_connects() {
    let (srv, port, _) = self_signed_listener(&["--send", "ok"]);
    let out = util::run(
        &[
            "connect",
            "--insecure",
            "--recv-only",
            &format!("tls://127.0.0.1:{port}"),
        ],
        b"",
    );
    out.ok();
    assert_eq!(out.out(), "ok");
    assert!(out.stderr.contains("NOT verified"), "{}", out.dump());
    drop(srv);
}

#[test]
fn client_certificates_are_required_with_client_ca() {
    let pki = Pki::new();
    let client_ca = pki.path("ca.pem");
    let mut srv = util::spawn(&strs(&tls_listener(
        &pki,
        "server",
        &["-k", "--send", "hi", "--client-ca", &client_ca],
    )));
    let port = srv.port();
    let target = format!("tls://localhost:{port}");
    let ca = pki.path("ca.pem");
    let without = util::run(&["connect", "--ca", &ca, "--recv-only", &target], b"");
    without.code_is(1);
    assert!(without.stderr.contains("certificate"), "{}", without.dump());
    let (cert, key) = (pki.path("client.pem"), pki.path("client.key"));
    let with = util::run(
        &[
            "connect",
            "--ca",
            &ca,
            "--cert",
            &cert,
            "--key",
            &key,
            "--recv-only",
            &target,
        ],
        b"",
    );
    with.ok();
    assert_eq!(with.out(), "hi");
}

// OpenSSL

#[test]
fn openssl_server_to_netsmith_client() {
    let pki = Pki::new();
    let port = util::free_port();
    let data = util::random_bytes(SIZE);
    // s_server's terminal mode stalls at random after 16 KiB of its stdin
    // (s_client as the client sees it too): its -WWW mode serves the
    // bytes from a file instead, after an HTTP header.
    std::fs::write(pki.dir.path().join("data"), &data).unwrap();
    let script = format!(
        "cd '{}' && exec openssl s_server -quiet -WWW -naccept 1 -accept 127.0.0.1:{port} \
         -cert server.pem -key server.key",
        pki.dir.path().display()
    );
    util::require("openssl");
    let srv = util::spawn_cmd("sh", &["-c", &script]);
    util::wait_tcp_listen(port);
    let ca = pki.path("ca.pem");
    let mut cli = util::spawn(&[
        "connect",
        "--ca",
        &ca,
        "--no-shutdown",
        "--send",
        "GET /data HTTP/1.0\r\n\r\n",
        &format!("tls://localhost:{port}"),
    ])
    .finish(WAIT);
    let srv = srv.wait_exit(WAIT);
    assert_ok(&cli);
    let header = b"HTTP/1.0 200 ok\r\nContent-type: text/plain\r\n\r\n";
    assert!(cli.stdout.starts_with(header), "{}", cli.stderr);
    cli.stdout.drain(..header.len());
    assert_received(&cli, &data, &srv);
    assert!(!cli.stderr.contains("close_notify"), "{}", cli.stderr);
}

#[test]
fn netsmith_client_to_openssl_server() {
    let pki = Pki::new();
    let port = util::free_port();
    let (cert, key) = (pki.path("server.pem"), pki.path("server.key"));
    let accept = format!("127.0.0.1:{port}");
    // Stdin stays open: at its EOF s_server would close at once.
    let srv = util::spawn_cmd(
        util::require("openssl"),
        &[
            "s_server", "-quiet", "-naccept", "1", "-accept", &accept, "-cert", &cert, "-key", &key,
        ],
    );
    util::wait_tcp_listen(port);
    let ca = pki.path("ca.pem");
    let client = interop::netsmith(&["connect", "--ca", &ca, &format!("tls://localhost:{port}")]);
    let data = Arc::new(util::random_bytes(SIZE));
    let (cli, feeder) = interop::start(&client, &data);
    let cli = cli.finish(WAIT);
    let _ = feeder.join();
    // s_server ends its connection at our close_notify, and with -naccept 1, itself.
    let srv = srv.wait_exit(WAIT);
    assert_ok(&cli);
    assert_received(&srv, &data, &cli);
}

#[test]
fn openssl_client_to_netsmith_server() {
    let pki = Pki::new();
    let server = interop::netsmith(&strs(&tls_listener(&pki, "server", &["--recv-only"])));
    let data = Arc::new(util::random_bytes(SIZE));
    let (mut srv, srv_feeder) = interop::start(&server, &Arc::new(Vec::new()));
    let port = srv.port();
    let ca = pki.path("ca.pem");
    let connect = format!("localhost:{port}");
    let client = openssl(&[
        "s_client",
        "-quiet",
        "-no_ign_eof",
        "-nocommands",
        "-verify_return_error",
        "-CAfile",
        &ca,
        "-connect",
        &connect,
    ]);
    let (cli, feeder) = interop::start(&client, &data);
    let cli = cli.finish(WAIT);
    let _ = feeder.join();
    let srv = srv.finish(WAIT);
    let _ = srv_feeder.join();
    assert_ok(&cli);
    assert_ok(&srv);
    assert_received(&srv, &data, &cli);
}

#[test]
fn netsmith_server_to_openssl_client() {
    let pki = Pki::new();
    let server = interop::netsmith(&strs(&tls_listener(&pki, "server", &[])));
    let data = Arc::new(util::random_bytes(SIZE));
    let (mut srv, feeder) = interop::start(&server, &data);
    let port = srv.port();
    let ca = pki.path("ca.pem");
    let connect = format!("localhost:{port}");
    // -quiet ignores stdin's EOF: s_client reads until our close_notify.
    let cli = util::spawn_cmd(
        util::require("openssl"),
        &[
            "s_client",
            "-quiet",
            "-verify_return_error",
            "-CAfile",
            &ca,
            "-connect",
            &connect,
        ],
    )
    .finish(WAIT);
    let _ = feeder.join();
    let srv = srv.finish(WAIT);
    assert_ok(&cli);
    assert_ok(&srv);
    assert_received(&cli, &data, &srv);
}

// ncat --ssl

#[test]
fn ncat_ssl_server_netsmith_client_both_ways() {
    let pki = Pki::new();
    let port = util::free_port();
    let (cert, key) = (pki.path("server.pem"), pki.path("server.key"));
    let server = interop::ncat(&[
        "--ssl",
        "--ssl-cert",
        &cert,
        "--ssl-key",
        &key,
        "-l",
        "127.0.0.1",
        &port.to_string(),
    ]);
    let ca = pki.path("ca.pem");
    // ncat -l quits at its client's EOF with its own data unsent: the
    // client never half-closes, and ends when ncat, done, closes.
    both_ways(
        &server,
        Ready::Tcp(port),
        |p| {
            // ncat closes without close_notify: the peer --allow-truncation is for.
            interop::netsmith(&[
                "connect",
                "--no-shutdown",
                "--allow-truncation",
                "--ca",
                &ca,
                &format!("tls://localhost:{p}"),
            ])
        },
        SIZE,
    );
}

#[test]
fn netsmith_server_ncat_ssl_client_both_ways() {
    let pki = Pki::new();
    // ncat closes without close_notify: the peer --allow-truncation is for.
    let server = interop::netsmith(&strs(&tls_listener(
        &pki,
        "server",
        &["--allow-truncation"],
    )));
    let ca = pki.path("ca.pem");
    both_ways(
        &server,
        Ready::Announced,
        |p| {
            interop::ncat(&[
                "--ssl",
                "--ssl-verify",
                "--ssl-trustfile",
                &ca,
                "localhost",
                &p.to_string(),
            ])
        },
        SIZE,
    );
}

// serve --tls

#[test]
fn serve_tls_echo() {
    let mut srv = util::spawn(&["serve", "--tls", "echo=0"]);
    let line = srv.wait_stderr("--pin ");
    let pin = line.split("--pin ").nth(1).unwrap().trim().to_string();
    let addr = srv.listening_services(1)[&("echo".into(), "tls".into())].clone();
    let data = util::random_bytes(4 << 20);
    let out = util::run(&["connect", "--pin", &pin, &format!("tls://{addr}")], &data);
    out.code_is(0);
    assert_eq!(
        util::sha256(&out.stdout),
        util::sha256(&data),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("close_notify"), "{}", out.stderr);
    let totals = srv.interrupt();
    totals.ok();
}

/// `listen --tls EXTRA` with an `ncat --ssl` client that, once both sides
/// have sent everything, closes without `close_notify`; returns listen's
/// output and what it was sent.
fn ncat_client_cuts(pki: &Pki, extra: &[&str]) -> (util::Output, Vec<u8>) {
    let mut srv = util::spawn(&strs(&tls_listener(pki, "server", extra)));
    let port = srv.port().to_string();
    let ca = pki.path("ca.pem");
    let sent = util::random_bytes(64 << 10);
    let mut cli = util::spawn_cmd(
        util::require("ncat"),
        &[
            "--ssl",
            "--ssl-verify",
            "--ssl-trustfile",
            &ca,
            "localhost",
            &port,
        ],
    );
    cli.write(&sent);
    cli.close_stdin();
    srv.write(b"bye");
    let srv = srv.finish(WAIT);
    let _ = cli.finish(WAIT);
    (srv, sent)
}

#[test]
fn hardening_03_tls_close_without_close_notify_is_exit_1_unless_allowed() {
    let pki = Pki::new();
    let (out, sent) = ncat_client_cuts(&pki, &[]);
    out.code_is(1);
    assert!(
        out.stderr.contains("close_notify") && out.stderr.contains("--allow-truncation"),
        "{}",
        out.dump()
    );
    assert_eq!(
        out.stdout, sent,
        "what arrived before the cut is still written"
    );
    let (out, sent) = ncat_client_cuts(&pki, &["--allow-truncation"]);
    out.ok();
    assert!(out.stderr.contains("close_notify"), "{}", out.dump());
    assert_eq!(out.stdout, sent);
}

/// A self-signed certificate and its key for `sans`, as PEM files `name`
/// in `dir`; `ca` makes it a CA certificate.
fn self_signed_pair(
    dir: &std::path::Path,
    name: &str,
    sans: &[&str],
    ca: bool,
) -> (String, String) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let sans: Vec<String> = sans.iter().map(ToString::to_string).collect();
    let mut params = CertificateParams::new(sans).unwrap();
    if ca {
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    }
    let key = KeyPair::generate().unwrap();
    let (cert_path, key_path) = (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.key")),
    );
    std::fs::write(&cert_path, params.self_signed(&key).unwrap().pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    let text = |p: std::path::PathBuf| p.to_str().unwrap().to_string();
    (text(cert_path), text(key_path))
}

/// `listen --tls` with `cert` and `key` on a free loopback port.
fn listen_with<'a>(cert: &'a str, key: &'a str) -> [&'a str; 8] {
    [
        "listen",
        "--tls",
        "--cert",
        cert,
        "--key",
        key,
        "127.0.0.1",
        "0",
    ]
}

#[test]
fn hardening_18_a_ca_certificate_as_the_servers_is_said_in_words() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed_pair(dir.path(), "ca", &["localhost"], true);
    let mut srv = util::spawn(&listen_with(&cert, &key));
    let port = srv.port();
    let out = util::run(
        &["connect", "--ca", &cert, &format!("tls://localhost:{port}")],
        b"",
    );
    out.code_is(1);
    assert!(out.stderr.contains("is a CA certificate"), "{}", out.dump());
    assert!(!out.stderr.contains("CaUsedAsEndEntity"), "{}", out.dump());
}

#[test]
fn hardening_18_a_version_1_certificate_is_said_in_words() {
    let dir = tempfile::tempdir().unwrap();
    let path = |n: &str| dir.path().join(n).to_str().unwrap().to_string();
    let (key, csr, cert) = (path("v1.key"), path("v1.csr"), path("v1.pem"));
    let openssl = util::require("openssl");
    util::run_cmd(
        &openssl,
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &key,
            "-subj",
            "/CN=localhost",
            "-out",
            &csr,
        ],
        b"",
    )
    .ok();
    // `x509 -req` with no extensions makes an X.509 version 1 certificate.
    util::run_cmd(
        &openssl,
        &["x509", "-req", "-in", &csr, "-signkey", &key, "-out", &cert],
        b"",
    )
    .ok();
    let out = util::run(&listen_with(&cert, &key), b"");
    out.code_is(2);
    assert!(out.stderr.contains("not X.509 version 3"), "{}", out.dump());
    assert!(
        !out.stderr.contains("UnsupportedCertVersion"),
        "{}",
        out.dump()
    );
}

#[test]
fn hardening_18_a_server_refusing_a_client_certificate_advises_client_ca() {
    let pki = Pki::new();
    let client_ca = pki.path("ca.pem");
    let mut srv = util::spawn(&strs(&tls_listener(
        &pki,
        "server",
        &["--client-ca", &client_ca],
    )));
    let port = srv.port();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed_pair(dir.path(), "stranger", &["client.test"], false);
    let ca = pki.path("ca.pem");
    let target = format!("tls://localhost:{port}");
    let _ = util::run(
        &[
            "connect", "--ca", &ca, "--cert", &cert, "--key", &key, &target,
        ],
        b"",
    );
    let line = srv.wait_stderr("unknown issuer");
    assert!(line.contains("--client-ca FILE"), "{line}");
    assert!(
        !line.contains("--ca FILE") && !line.contains("--pin"),
        "{line}"
    );
}

#[test]
fn hardening_18_pin_takes_what_openssl_prints() {
    let pki = Pki::new();
    let printed = std::process::Command::new(util::require("openssl"))
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
        .arg(pki.path("server.pem"))
        .output()
        .unwrap();
    let printed = String::from_utf8(printed.stdout).unwrap();
    let printed = printed.trim();
    assert!(printed.starts_with("sha256 Fingerprint="), "{printed}");
    // As printed, and lowercase without the prefix.
    let bare = printed.split('=').nth(1).unwrap().to_lowercase();
    for pin in [printed, bare.as_str()] {
        let mut srv = util::spawn(&strs(&tls_listener(&pki, "server", &["--send", "pinned"])));
        let target = format!("tls://127.0.0.1:{}", srv.port());
        let out = util::run(&["connect", "--pin", pin, "--recv-only", &target], b"");
        out.ok();
        assert_eq!(out.out(), "pinned");
    }
}
