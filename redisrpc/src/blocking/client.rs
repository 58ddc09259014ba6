//! The blocking [`Client`]: [`crate::Client`]'s calls, made and waited
//! for on the calling thread (see `here`).

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::here;
use crate::backend::{IntoBackend, SharedBackend};
use crate::{Call, Result};

/// A client of the servers of one queue, for plain threads; see
/// [`crate::Client`], whose options, timeouts and deadlines it keeps.
/// Cheap to clone; clones share the backend.
#[derive(Clone, Debug)]
pub struct Client {
    inner: crate::Client,
}

impl Client {
    /// A client of the servers popping `queue` on `backend`, with
    /// [`crate::DEFAULT_TIMEOUT`].
    pub fn new(backend: impl IntoBackend, queue: impl Into<String>) -> Self {
        Client {
            inner: crate::Client::new(backend, queue),
        }
    }

    /// The same client with calls timing out after `timeout` (`None`: wait
    /// forever, and send no deadline).
    pub fn with_timeout(self, timeout: Option<Duration>) -> Self {
        Client {
            inner: self.inner.with_timeout(timeout),
        }
    }

    /// The timeout of calls.
    pub fn timeout(&self) -> Option<Duration> {
        self.inner.timeout()
    }

    /// The queue the calls go to.
    pub fn queue(&self) -> &str {
        self.inner.queue()
    }

    /// The backend the calls go through.
    pub fn backend(&self) -> &SharedBackend {
        self.inner.backend()
    }

    /// The async client underneath.
    pub fn as_async(&self) -> &crate::Client {
        &self.inner
    }

    /// Calls `method` with `args` and decodes its result as `T`; see
    /// [`crate::Client::call`].
    pub fn call<T: DeserializeOwned>(&self, method: &str, args: impl Serialize) -> Result<T> {
        here::send(
            "Client::call",
            &self.inner,
            Call::new(method).with_args(args),
            |client, call| async move { client.send(call).await },
        )
    }

    /// Sends a call built with [`Call`] and decodes its result as `T`; see
    /// [`crate::Client::send`].
    pub fn send<T: DeserializeOwned>(&self, call: Call) -> Result<T> {
        here::send("Client::send", &self.inner, call, |client, call| async move {
            client.send(call).await
        })
    }

    /// Sends a call and waits for it to succeed, whatever value it returns;
    /// see [`crate::Client::send_ignoring_result`].
    pub fn send_ignoring_result(&self, call: Call) -> Result<()> {
        here::send(
            "Client::send_ignoring_result",
            &self.inner,
            call,
            |client, call| async move { client.send_ignoring_result(call).await },
        )
    }
}

impl From<crate::Client> for Client {
    fn from(inner: crate::Client) -> Self {
        Client { inner }
    }
}
