//! Faults to rehearse recovery with: a service made slow, or made to crash
//! its whole process on a chosen argument (`calc-server --delay-ms`,
//! `--abort-on`). The at-least-once tests kill servers mid-call with them.

use std::time::Duration;

use async_trait::async_trait;
use redisrpc::describe::ServiceDescription;
use redisrpc::protocol::JsonText;
use redisrpc::service::{Args, CallError, Service};

/// `service`, slowed by `delay` before every call, and aborting the process
/// when a call's first argument is, as JSON text, `abort_on`.
pub struct Faulty<S> {
    service: S,
    delay: Duration,
    abort_on: Option<String>,
}

impl<S: Service> Faulty<S> {
    /// `service` with the faults given.
    pub fn new(service: S, delay: Duration, abort_on: Option<String>) -> Self {
        Faulty {
            service,
            delay,
            abort_on,
        }
    }
}

#[async_trait]
impl<S: Service> Service for Faulty<S> {
    async fn call(&self, method: &str, args: Args) -> Result<JsonText, CallError> {
        if self.abort_on.is_some() && args.positional().next() == self.abort_on.as_deref() {
            eprintln!("aborting on {method}({})", self.abort_on.as_deref().unwrap_or_default());
            std::process::abort();
        }
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        self.service.call(method, args).await
    }

    fn describe(&self) -> ServiceDescription {
        self.service.describe()
    }

    fn method_names(&self) -> Vec<String> {
        self.service.method_names()
    }
}
