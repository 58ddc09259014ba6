//! Options shared by the example binaries.

use clap::Args;

/// Where the service lives.
#[derive(Debug, Clone, Args)]
pub struct Target {
    /// Redis URL: `redis://[user:password@]host[:port][/db]`, `rediss://` for TLS, `unix:///path`.
    #[arg(
        long = "redis",
        value_name = "URL",
        env = "REDISRPC_URL",
        default_value = "redis://127.0.0.1:6379"
    )]
    pub redis: String,
    /// The service queue.
    #[arg(long, value_name = "NAME", default_value = "calc")]
    pub queue: String,
}

/// Logs to stderr, at `info` unless `RUST_LOG` says otherwise.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .init();
}
