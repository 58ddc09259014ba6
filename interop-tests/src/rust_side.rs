//! Our side of a conversation: the server in-process, the client.
//!
//! Our server runs inside the test process, on a runtime of its own, so a
//! plain synchronous test can drive a peer client as a child process while
//! the server answers; nothing needs to be built or found on disk but the
//! test itself.

use std::time::Duration;

use redisrpc::backend::Redis;
use redisrpc::service::Service;
use redisrpc::{Call, Client, Delivery, Error, Server, ServerHandle};
use serde_json::Value;
use tokio::runtime::Runtime;

use crate::script::{Outcome, Step};

/// How long our client waits for a reply before the step counts as timed out.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Our [`Server`] of a service, running on its own runtime until dropped.
pub struct RustServer {
    runtime: Option<Runtime>,
    handle: ServerHandle,
}

impl RustServer {
    /// Serves `service` on `queue` of the Redis at `url`. Requests pushed
    /// before it takes its first one wait in the queue, so no readiness
    /// wait is needed.
    pub fn start(url: &str, queue: &str, service: impl Service) -> RustServer {
        RustServer::start_with(url, queue, service, Delivery::AtMostOnce)
    }

    /// [`start`](Self::start), in the delivery mode given.
    pub fn start_with(url: &str, queue: &str, service: impl Service, delivery: Delivery) -> RustServer {
        // One worker is plenty for a test and leaves the cores to the peers.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime for the server");
        let backend = runtime
            .block_on(Redis::connect(url))
            .expect("our server connects to Redis");
        let server = Server::new(backend, queue, service).with_delivery(delivery);
        let handle = server.handle();
        runtime.spawn(async move {
            if let Err(error) = server.run().await {
                eprintln!("our server stopped with an error: {error}");
            }
        });
        RustServer {
            runtime: Some(runtime),
            handle,
        }
    }

    /// The server's counters so far.
    pub fn stats(&self) -> redisrpc::ServerStats {
        self.handle.stats()
    }
}

impl Drop for RustServer {
    fn drop(&mut self) {
        self.handle.shutdown();
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_timeout(Duration::from_secs(2));
        }
    }
}

/// Our client of `queue` on the Redis at `url`, waiting [`CALL_TIMEOUT`]
/// per call.
pub async fn rust_client(url: &str, queue: &str) -> Client {
    let backend = Redis::connect(url).await.expect("our client connects to Redis");
    Client::new(backend, queue).with_timeout(Some(CALL_TIMEOUT))
}

/// Runs `steps` through our client, one after the other.
pub async fn run(client: &Client, steps: &[Step]) -> Vec<Outcome> {
    let mut outcomes = Vec::with_capacity(steps.len());
    for step in steps {
        let mut call = Call::new(&step.method);
        for arg in &step.args {
            call = call.arg(arg);
        }
        for (name, value) in &step.kwargs {
            call = call.kwarg(name, value);
        }
        outcomes.push(match client.send::<Value>(call).await {
            Ok(value) => Outcome::Returned(value),
            Err(Error::Remote { message, backtrace }) => Outcome::Remote { message, backtrace },
            Err(error) if error.is_timeout() => Outcome::Timeout(error.to_string()),
            Err(error) => panic!("{}: {error}", step.describe()),
        });
    }
    outcomes
}
