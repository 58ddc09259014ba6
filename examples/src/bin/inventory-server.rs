//! The inventory service over Redis, until Ctrl-C.
//!
//! ```text
//! cargo run -p redisrpc-examples --bin inventory-server -- --redis redis://127.0.0.1:6379 --queue inventory
//! ```

use clap::Parser;
use redisrpc::backend::Redis;
use redisrpc::{Delivery, Server};
use redisrpc_examples::{cli, inventory};

/// Serves the parts inventory on a Redis queue.
#[derive(Parser)]
struct Options {
    /// The Redis server's URL.
    #[arg(
        long,
        value_name = "URL",
        env = "REDISRPC_URL",
        default_value = "redis://127.0.0.1:6379"
    )]
    redis: String,
    /// The queue to serve.
    #[arg(long, default_value = "inventory")]
    queue: String,
    /// What becomes of the calls of a server that dies: `at-most-once`
    /// (lost) or `at-least-once` (run again elsewhere).
    #[arg(long, default_value = "at-most-once", value_name = "MODE")]
    delivery: Delivery,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    cli::init_logging();
    let options = Options::parse();
    let backend = Redis::connect(&options.redis).await?;
    let stats = Server::new(backend, options.queue, inventory::service())
        .with_delivery(options.delivery)
        .run_until_ctrl_c()
        .await?;
    eprintln!("inventory-server stopped: {stats:?}");
    Ok(())
}
