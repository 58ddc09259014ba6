//! What a server shows its operators (`calc-server --metrics-addr`,
//! `--otlp-endpoint`): the log, its spans exported over OTLP, and its
//! metrics in the Prometheus text format beside a `/healthz` for process
//! supervisors.
//!
//! The metrics endpoint is a few lines of HTTP/1.1 on a Tokio listener:
//! `GET /metrics` and `GET /healthz`, one request per connection. It needs
//! nothing more, and keeps an HTTP server's dependencies out of the
//! examples.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use redisrpc::telemetry::otlp;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// The operators' options.
#[derive(Debug, Clone, Args)]
pub struct Observe {
    /// Serve the metrics (Prometheus text at `/metrics`) and `/healthz` on
    /// this address, e.g. `127.0.0.1:9464`.
    #[arg(long, value_name = "ADDR")]
    pub metrics_addr: Option<SocketAddr>,
    /// Export spans over OTLP/HTTP to this URL, e.g.
    /// `http://127.0.0.1:4318/v1/traces`.
    #[arg(long, value_name = "URL")]
    pub otlp_endpoint: Option<String>,
}

/// What keeps running behind [`Observe::start`]: dropping it sends the
/// spans still buffered.
pub struct Observing {
    _export: Option<otlp::Export>,
}

impl Observe {
    /// Logs to stderr (at `info` unless `RUST_LOG` says otherwise), exports
    /// spans and serves metrics as the options say. Call it before serving:
    /// a server binds its metrics to the recorder there is then.
    pub async fn start(&self, service_name: &str) -> anyhow::Result<Observing> {
        let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
        let log = tracing_subscriber::fmt::layer()
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_writer(std::io::stderr);
        let (spans, export) = match &self.otlp_endpoint {
            Some(endpoint) => {
                let (layer, export) = otlp::layer(endpoint, service_name)?;
                (Some(layer), Some(export))
            }
            None => (None, None),
        };
        tracing_subscriber::registry().with(filter).with(log).with(spans).init();
        if let Some(address) = self.metrics_addr {
            let metrics = PrometheusBuilder::new().install_recorder()?;
            let listener = TcpListener::bind(address).await?;
            tracing::info!(address = %listener.local_addr()?, "metrics at /metrics, health at /healthz");
            tokio::spawn(serve_metrics(listener, metrics));
        }
        Ok(Observing { _export: export })
    }
}

async fn serve_metrics(listener: TcpListener, metrics: PrometheusHandle) {
    loop {
        match listener.accept().await {
            Ok((connection, _)) => {
                let metrics = metrics.clone();
                tokio::spawn(async move {
                    // A client that says nothing is let go.
                    let answered = tokio::time::timeout(Duration::from_secs(5), answer(connection, &metrics)).await;
                    if let Ok(Err(error)) = answered {
                        tracing::debug!(%error, "a metrics request failed");
                    }
                });
            }
            Err(error) => {
                tracing::warn!(%error, "cannot accept a metrics connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Reads one request's head and answers it.
async fn answer(mut connection: TcpStream, metrics: &PrometheusHandle) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut chunk = [0; 1024];
    while !head.windows(4).any(|window| window == b"\r\n\r\n") {
        let read = connection.read(&mut chunk).await?;
        if read == 0 || head.len() > 16 * 1024 {
            return Ok(());
        }
        head.extend_from_slice(&chunk[..read]);
    }
    let request_line = head.split(|&byte| byte == b'\r').next().unwrap_or_default();
    let mut words = request_line.split(|&byte| byte == b' ');
    let (method, path) = (words.next().unwrap_or_default(), words.next().unwrap_or_default());
    let (status, content_type, body) = match (method, path) {
        (b"GET", b"/metrics") => ("200 OK", "text/plain; version=0.0.4", metrics.render()),
        (b"GET", b"/healthz") => ("200 OK", "text/plain", "ok\n".to_owned()),
        (b"GET", _) => (
            "404 Not Found",
            "text/plain",
            "not found: try /metrics or /healthz\n".to_owned(),
        ),
        _ => ("405 Method Not Allowed", "text/plain", "only GET\n".to_owned()),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    connection.write_all(response.as_bytes()).await?;
    connection.shutdown().await
}
