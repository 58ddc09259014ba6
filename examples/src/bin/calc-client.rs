//! Checks a calculator server, ours or any RedisRPC peer's, over Redis:
//! clr, add 5, sub 3, mul 4, div 2, val == 4, and an unknown method must be
//! a remote error. Exits non-zero on any failure.
//!
//! ```text
//! cargo run -p redisrpc-examples --bin calc-client -- --redis redis://127.0.0.1:6379 --queue calc
//! ```

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use redisrpc::backend::Redis;
use redisrpc_examples::calc::{self, CalculatorClient};
use redisrpc_examples::cli;

/// Runs the calculator check against a server.
#[derive(Parser)]
struct Options {
    #[command(flatten)]
    target: cli::Target,
    /// Seconds to wait for each reply.
    #[arg(long, default_value_t = 5.0)]
    timeout: f64,
}

#[tokio::main]
async fn main() -> ExitCode {
    let options = Options::parse();
    let outcome = async {
        let backend = Redis::connect(&options.target.redis).await?;
        let client = CalculatorClient::new(backend, options.target.queue.clone())
            .with_timeout(Some(Duration::from_secs_f64(options.timeout)));
        calc::check_calculator(&client).await
    }
    .await;
    match outcome {
        Ok(()) => {
            println!("calc-client: all checks passed");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("calc-client: FAILED: {error:#}");
            ExitCode::FAILURE
        }
    }
}
