//! The calculator server and client in one process, on the embedded backend:
//! no Redis needed.
//!
//! ```text
//! cargo run -p redisrpc-examples --bin calculator
//! ```

use redisrpc::Server;
use redisrpc::backend::Memory;
use redisrpc_examples::calc::{self, CalculatorClient};
use redisrpc_examples::cli;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    cli::init_logging();
    let backend = Memory::new();
    let server = Server::new(backend.clone(), "calc", calc::service());
    let handle = server.handle();
    let serving = tokio::spawn(server.run());

    let client = CalculatorClient::new(backend, "calc").with_timeout(Some(std::time::Duration::from_secs(5)));
    let outcome = calc::check_calculator(&client).await;

    handle.shutdown();
    serving.await??;
    outcome?;
    println!("calculator: all checks passed");
    Ok(())
}
