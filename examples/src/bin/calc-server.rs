//! The calculator service over Redis, until Ctrl-C.
//!
//! ```text
//! cargo run -p redisrpc-examples --bin calc-server -- --redis redis://127.0.0.1:6379 --queue calc
//! ```

use clap::Parser;
use redisrpc::backend::Redis;
use redisrpc::{Delivery, Server};
use redisrpc_examples::journal::Journaled;
use redisrpc_examples::{calc, cli};

/// Serves the calculator on a Redis queue.
#[derive(Parser)]
struct Options {
    #[command(flatten)]
    target: cli::Target,
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
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    cli::init_logging();
    let options = Options::parse();
    let backend = Redis::connect(&options.target.redis).await?;
    let server = match &options.journal {
        Some(path) => Server::new(backend, options.target.queue, Journaled::new(calc::service(), path)?),
        None => Server::new(backend, options.target.queue, calc::service()),
    };
    let stats = server.with_concurrency(options.concurrency).run_until_ctrl_c().await?;
    eprintln!("calc-server stopped: {stats:?}");
    Ok(())
}
