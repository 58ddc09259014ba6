//! A journal of the calls a server starts: one line per call, written
//! before the method runs, for operators auditing what a robot was told to
//! do (and for the fault tests, which count what ran).
//!
//! It wraps any [`Service`], so the server in front of it decides what
//! starts, deadlines included, and the journal records exactly that.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::{Mutex, PoisonError};

use async_trait::async_trait;
use redisrpc::describe::ServiceDescription;
use redisrpc::protocol::JsonText;
use redisrpc::service::{Args, CallError, Service};

/// `service`, with a line appended to a file for every call it starts:
/// the method's name, a tab, and the positional arguments as JSON.
pub struct Journaled<S> {
    service: S,
    file: Mutex<File>,
}

impl<S: Service> Journaled<S> {
    /// Journals the calls of `service` to the end of the file at `path`.
    pub fn new(service: S, path: &Path) -> std::io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Journaled {
            service,
            file: Mutex::new(file),
        })
    }
}

#[async_trait]
impl<S: Service> Service for Journaled<S> {
    async fn call(&self, method: &str, args: Args) -> Result<JsonText, CallError> {
        let line = format!("{method}\t[{}]\n", args.positional().collect::<Vec<_>>().join(","));
        let written = self
            .file
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .write_all(line.as_bytes());
        if let Err(error) = written {
            // A call that cannot be journaled does not run.
            return Err(CallError::failed(format!("cannot write the journal: {error}")));
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
