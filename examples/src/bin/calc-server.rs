//! The calculator service over Redis, until Ctrl-C.
//!
//! ```text
//! cargo run -p redisrpc-examples --bin calc-server -- --redis redis://127.0.0.1:6379 --queue calc
//! cargo run -p redisrpc-examples --bin calc-server -- --delivery at-least-once --journal calls.log
//! cargo run -p redisrpc-examples --bin calc-server -- --metrics-addr 127.0.0.1:9464 \
//!     --otlp-endpoint http://127.0.0.1:4318/v1/traces
//! ```

use std::time::Duration;

use clap::Parser;
use redisrpc::backend::Redis;
use redisrpc::{Delivery, Server};
use redisrpc_examples::faults::Faulty;
use redisrpc_examples::journal::Journaled;
use redisrpc_examples::observe::Observe;
use redisrpc_examples::{calc, cli};

/// Serves the calculator on a Redis queue.
#[derive(Parser)]
struct Options {
    #[command(flatten)]
    target: cli::Target,
    #[command(flatten)]
    observe: Observe,
    /// How many calls may run at once.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Append a line to this file for every call started: method and arguments.
    #[arg(long, value_name = "FILE")]
    journal: Option<std::path::PathBuf>,
    /// What becomes of the calls of a server that dies: `at-most-once`
    /// (lost) or `at-least-once` (run again elsewhere).
    #[arg(long, default_value = "at-most-once", value_name = "MODE")]
    delivery: Delivery,
    /// At least once: deliveries without an answer before a call is refused.
    #[arg(long, default_value_t = redisrpc::DEFAULT_MAX_DELIVERIES, value_name = "N")]
    max_deliveries: u64,
    /// Fault drill: wait this long before running each call.
    #[arg(long, default_value_t = 0, value_name = "MS")]
    delay_ms: u64,
    /// Fault drill: abort the process when a call's first argument is this JSON.
    #[arg(long, value_name = "JSON")]
    abort_on: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let options = Options::parse();
    let _observing = options.observe.start("calc-server").await?;
    let backend = Redis::connect(&options.target.redis).await?;
    let service = Faulty::new(
        calc::service(),
        Duration::from_millis(options.delay_ms),
        options.abort_on.clone(),
    );
    let server = match &options.journal {
        Some(path) => Server::new(backend, options.target.queue, Journaled::new(service, path)?),
        None => Server::new(backend, options.target.queue, service),
    };
    let stats = server
        .with_concurrency(options.concurrency)
        .with_delivery(options.delivery)
        .with_max_deliveries(options.max_deliveries)
        .run_until_ctrl_c()
        .await?;
    eprintln!("calc-server stopped: {stats:?}");
    Ok(())
}
