//! The Redis backend over TLS: a private certificate authority, mutual TLS
//! with client certificates, and a clean error for an untrusted server.
//! Certificates are made with `openssl` for each test.

use std::net::TcpListener;
use std::time::Duration;

use anyhow::Result;
use redisrpc::backend::{Backend, Redis, RedisOptions};
use redisrpc_testkit::RedisServer;

/// A private certificate authority, a server certificate for `localhost`
/// and a client certificate, made with `openssl` in a temporary directory.
struct Certificates {
    dir: tempfile::TempDir,
}

impl Certificates {
    /// `None` (after a SKIPPED line) when `openssl` is missing, unless
    /// `REDISRPC_REQUIRE_REDIS=1` asks for every Redis test to run.
    fn make() -> Option<Certificates> {
        let dir = tempfile::tempdir().unwrap();
        let openssl = |args: &[&str]| {
            std::process::Command::new("openssl")
                .args(args)
                .current_dir(dir.path())
                .output()
        };
        let sans = "subjectAltName=DNS:localhost,IP:127.0.0.1";
        std::fs::write(dir.path().join("server.ext"), sans).unwrap();
        // Any extension makes a version 3 certificate, which rustls requires.
        std::fs::write(dir.path().join("client.ext"), "extendedKeyUsage=clientAuth").unwrap();
        let steps: [&[&str]; 5] = [
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "1",
                "-subj",
                "/CN=redisrpc test CA",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
            ],
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-subj",
                "/CN=localhost",
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
            ],
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "1",
                "-extfile",
                "server.ext",
                "-out",
                "server.pem",
            ],
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-subj",
                "/CN=robot",
                "-keyout",
                "client.key",
                "-out",
                "client.csr",
            ],
            &[
                "x509",
                "-req",
                "-in",
                "client.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "1",
                "-extfile",
                "client.ext",
                "-out",
                "client.pem",
            ],
        ];
        for step in steps {
            match openssl(step) {
                Ok(out) if out.status.success() => {}
                outcome => {
                    assert!(
                        std::env::var("REDISRPC_REQUIRE_REDIS").as_deref() != Ok("1"),
                        "openssl is needed for the TLS tests (apt-get install openssl): {outcome:?}"
                    );
                    eprintln!("SKIPPED TLS test: cannot make certificates with openssl: {outcome:?}");
                    return None;
                }
            }
        }
        Some(Certificates { dir })
    }

    fn path(&self, name: &str) -> String {
        self.dir
            .path()
            .join(name)
            .to_str()
            .expect("a UTF-8 temp path")
            .to_owned()
    }

    fn read(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.dir.path().join(name)).unwrap()
    }

    /// Starts a server that speaks TLS only, with this CA's server certificate.
    fn start_server(&self, authenticate_clients: bool) -> Option<(RedisServer, String)> {
        let tls_port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
            .to_string();
        let (cert, key, ca) = (self.path("server.pem"), self.path("server.key"), self.path("ca.pem"));
        let auth = if authenticate_clients { "yes" } else { "no" };
        let server = RedisServer::start_with(&[
            "--tls-port",
            &tls_port,
            "--tls-cert-file",
            &cert,
            "--tls-key-file",
            &key,
            "--tls-ca-cert-file",
            &ca,
            "--tls-auth-clients",
            auth,
        ])?;
        Some((server, format!("rediss://localhost:{tls_port}")))
    }
}

/// Certificates and a TLS-only server using them, with its `rediss://` URL;
/// `None` when a test must skip (see [`Certificates::make`]).
fn tls_server(authenticate_clients: bool) -> Option<(Certificates, RedisServer, String)> {
    let certificates = Certificates::make()?;
    let (server, url) = certificates.start_server(authenticate_clients)?;
    Some((certificates, server, url))
}

#[redisrpc_testkit::needs(redis, openssl)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_url_fails_cleanly_on_an_untrusted_certificate() -> Result<()> {
    // The server's CA is not among the public roots: the handshake must fail
    // with an error, never a panic (rustls needs a crypto provider, which the
    // backend installs).
    let Some((_certificates, _server, url)) = tls_server(false) else {
        return Ok(());
    };
    let err = Redis::connect(&url)
        .await
        .expect_err("trusted a certificate of an unknown CA");
    assert!(err.is_connection(), "{err:?}");
    Ok(())
}

#[redisrpc_testkit::needs(redis, openssl)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_a_private_ca_carries_pushes_and_blocking_pops() -> Result<()> {
    let Some((certificates, _server, url)) = tls_server(false) else {
        return Ok(());
    };
    let options = RedisOptions::default().with_tls_root_certificate(certificates.read("ca.pem"));
    let backend = Redis::connect_with(&url, options).await?;
    let waiting = tokio::spawn({
        let backend = backend.clone();
        async move { backend.blpop("tls", Some(Duration::from_secs(10))).await }
    });
    backend.rpush("tls", &[b"over TLS"]).await?;
    assert_eq!(waiting.await??, Some(b"over TLS".to_vec()));
    Ok(())
}

#[redisrpc_testkit::needs(redis, openssl)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_needs_the_client_certificate() -> Result<()> {
    let Some((certificates, _server, url)) = tls_server(true) else {
        return Ok(());
    };
    let trusting = RedisOptions::default().with_tls_root_certificate(certificates.read("ca.pem"));
    let err = Redis::connect_with(&url, trusting.clone())
        .await
        .expect_err("connected without a client certificate");
    assert!(err.is_connection(), "{err:?}");

    let identified =
        trusting.with_tls_client_identity(certificates.read("client.pem"), certificates.read("client.key"));
    let backend = Redis::connect_with(&url, identified).await?;
    backend.rpush("mtls", &[b"identified"]).await?;
    assert_eq!(
        backend.blpop("mtls", Some(Duration::from_secs(5))).await?,
        Some(b"identified".to_vec())
    );
    Ok(())
}
