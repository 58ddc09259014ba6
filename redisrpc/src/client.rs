//! Calling methods of a remote service.
//!
//! A [`Client`] is bound to one service queue. Each call pushes a request
//! naming a fresh reply queue `<queue>:rpc:<uuid>` and waits on that queue
//! for the single reply. The wait starts at the same moment as the push, so
//! a call costs one round trip to the store plus the server's work, and
//! calls from many tasks run side by side: each waits on its own queue.
//!
//! When the timeout elapses the client removes its request from the service
//! queue if no server has taken it yet (as the Ruby peer does), so a call
//! that timed out either will not run at all or was already running; the
//! [`Error::Timeout`] says which. A call whose future is dropped before it
//! completes withdraws its request the same way.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use uuid::Uuid;

use crate::backend::{IntoBackend, SharedBackend};
use crate::protocol::{self, FunctionCall, Reply, Request};
use crate::{Error, Result};

/// A client of one service; cheap to clone and safe to share between tasks.
///
/// ```
/// # async fn demo() -> redisrpc::Result<()> {
/// use redisrpc::{Call, Client, backend::Memory};
/// # let backend = Memory::new();
/// let calc = Client::new(backend, "calc").with_timeout(Some(std::time::Duration::from_secs(5)));
/// # if false {
/// let sum: f64 = calc.call("add", (5,)).await?;
/// let value: serde_json::Value = calc.send(Call::new("add").arg(5).kwarg("b", 2)).await?;
/// # }
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Client {
    backend: SharedBackend,
    queue: Arc<str>,
    timeout: Option<Duration>,
}

impl Client {
    /// A client calling the service that listens on `queue`. Calls wait for
    /// their reply forever until a timeout is set with [`Client::with_timeout`].
    pub fn new(backend: impl IntoBackend, queue: impl Into<String>) -> Self {
        Client {
            backend: backend.into_backend(),
            queue: queue.into().into(),
            timeout: None,
        }
    }

    /// The same client with another default timeout for its calls
    /// (`None`: wait forever). [`Call::with_timeout`] overrides it per call.
    pub fn with_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.timeout = timeout;
        self
    }

    /// The service queue this client calls.
    pub fn queue(&self) -> &str {
        &self.queue
    }

    /// The backend this client runs on.
    pub fn backend(&self) -> &SharedBackend {
        &self.backend
    }

    /// Calls `method` and decodes its result as `T`.
    ///
    /// `args` are the arguments: a tuple or a `Vec` for positional ones
    /// (`(5, "x")`), a struct or map for named ones, `()` for none. To pass
    /// a single list argument, wrap it in a tuple: `(vec![1, 2],)`.
    pub async fn call<T: DeserializeOwned>(&self, method: &str, args: impl Serialize) -> Result<T> {
        self.send(Call::new(method).with_args(args)).await
    }

    /// Sends a call and waits for it to succeed, whatever value it returns.
    /// For methods without a result, which peers answer differently (`null`,
    /// Ruby's `0.0`, ...).
    pub async fn send_ignoring_result(&self, call: Call) -> Result<()> {
        self.send::<serde::de::IgnoredAny>(call).await.map(drop)
    }

    /// Sends a call built with [`Call`] and decodes its result as `T`
    /// (`serde_json::Value` to take whatever comes).
    ///
    /// The Python and Ruby peers may reply with non-finite floats; they
    /// decode into `f64` fields as infinity or NaN. A `serde_json::Value`
    /// cannot hold them and shows them as `null`: ask for a typed result to
    /// receive them.
    pub async fn send<T: DeserializeOwned>(&self, call: Call) -> Result<T> {
        if let Some(error) = call.error {
            return Err(error);
        }
        let timeout = call.timeout.unwrap_or(self.timeout);
        let response_queue = crate::layout::reply_queue(&self.queue, &Uuid::new_v4().simple().to_string());
        let request = Request::new(call.call, response_queue);
        match self.round_trip(&request, timeout).await? {
            Reply::Return(value) => value.decode().map_err(|source| Error::Decode {
                method: request.call.name,
                expected: std::any::type_name::<T>(),
                source,
            }),
            Reply::Exception { message, backtrace } => Err(Error::Remote { message, backtrace }),
        }
    }

    async fn round_trip(&self, request: &Request, timeout: Option<Duration>) -> Result<Reply> {
        let encoded = request.encode();
        let mut in_flight = InFlight {
            client: self,
            request: &encoded,
            response_queue: &request.response_queue,
            settled: false,
        };
        let outcome = self
            .exchange(&encoded, &request.response_queue, &request.call.name, timeout)
            .await;
        in_flight.settled = true;
        outcome
    }

    async fn exchange(
        &self,
        request: &[u8],
        response_queue: &str,
        method: &str,
        timeout: Option<Duration>,
    ) -> Result<Reply> {
        // Start waiting for the reply while the request is pushed: the wait
        // is in place before any server can answer, and the push costs no
        // extra round trip. If the push fails, the wait is dropped, which
        // backends guarantee loses nothing.
        let pushed = [request];
        let (_, reply) = tokio::try_join!(
            self.backend.rpush(&self.queue, &pushed),
            self.backend.blpop(response_queue, timeout),
        )?;
        if let Some(reply) = reply {
            return Reply::decode(&reply);
        }
        let request_withdrawn = self.backend.lrem(&self.queue, 1, request).await? > 0;
        if !request_withdrawn {
            // A server took the request; its reply may have landed since the wait ended.
            if let Some(late) = self.backend.lpop(response_queue).await? {
                return Reply::decode(&late);
            }
        }
        Err(Error::Timeout {
            queue: self.queue.to_string(),
            method: method.to_string(),
            timeout: timeout.unwrap_or_default(),
            request_withdrawn,
        })
    }
}

/// How long after an abandoned call its reply queue is given an expiry
/// (long enough for the backend to have put back a reply the abandoned wait
/// had taken), and that expiry.
const ABANDONED_REPLY_GRACE: Duration = Duration::from_secs(1);
const ABANDONED_REPLY_TTL: Duration = Duration::from_secs(10);

/// A call whose caller may stop waiting: when its future is dropped before
/// the call settled (the caller's own timeout, a `select!`), the request is
/// withdrawn if no server has taken it yet, as on a timeout, and a reply that
/// arrives anyway is made to expire.
struct InFlight<'a> {
    client: &'a Client,
    request: &'a [u8],
    response_queue: &'a str,
    settled: bool,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        // Outside a runtime nothing can be sent; the reply still expires if
        // a server sends one.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let backend = self.client.backend.clone();
        let queue = self.client.queue.clone();
        let request = self.request.to_vec();
        let response_queue = self.response_queue.to_string();
        runtime.spawn(async move {
            if let Err(error) = backend.lrem(&queue, 1, &request).await {
                tracing::warn!(%queue, %error, "cannot withdraw the request of an abandoned call");
            }
            tokio::time::sleep(ABANDONED_REPLY_GRACE).await;
            let _ = backend.expire(&response_queue, ABANDONED_REPLY_TTL).await;
        });
    }
}

/// One call under construction: a method, its arguments, and optionally its
/// own timeout. Encoding errors are kept and reported when it is sent.
#[derive(Debug)]
pub struct Call {
    call: FunctionCall,
    timeout: Option<Option<Duration>>,
    error: Option<Error>,
}

impl Call {
    /// A call of `method` with no arguments yet.
    pub fn new(method: impl Into<String>) -> Self {
        Call {
            call: FunctionCall {
                name: method.into(),
                ..FunctionCall::default()
            },
            timeout: None,
            error: None,
        }
    }

    /// Adds a positional argument.
    pub fn arg(mut self, value: impl Serialize) -> Self {
        if let Some(value) = self.encode("a positional argument", &value) {
            self.call.args.push(value);
        }
        self
    }

    /// Adds a named argument.
    pub fn kwarg(mut self, name: impl Into<String>, value: impl Serialize) -> Self {
        let name = name.into();
        if let Some(value) = self.encode(&format!("argument `{name}`"), &value) {
            self.call.kwargs.insert(name, value);
        }
        self
    }

    /// Adds the arguments `args` serializes to: an array gives positional
    /// arguments, an object named ones, `null` (from `()`) none.
    pub fn with_args(mut self, args: impl Serialize) -> Self {
        match self.encode("the arguments", &args) {
            Some(Value::Array(values)) => self.call.args.extend(values),
            Some(Value::Object(named)) => self.call.kwargs.extend(named),
            Some(Value::Null) | None => {}
            Some(other) => {
                self.error.get_or_insert(Error::Encode {
                    what: "the arguments".into(),
                    reason: format!(
                        "they must be a tuple, a Vec, a struct or a map, not the single value {other}; \
                         write a single argument as a one-element tuple `(value,)`"
                    ),
                });
            }
        }
        self
    }

    /// Sets this call's timeout (`None`: wait forever), overriding the client's.
    pub fn with_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The method, positional and named arguments as they will be sent.
    pub fn function_call(&self) -> &FunctionCall {
        &self.call
    }

    fn encode(&mut self, what: &str, value: &impl Serialize) -> Option<Value> {
        match protocol::to_json_value(value) {
            Ok(value) => Some(value),
            Err(reason) => {
                self.error.get_or_insert(Error::Encode {
                    what: what.to_string(),
                    reason,
                });
                None
            }
        }
    }
}

impl From<FunctionCall> for Call {
    fn from(call: FunctionCall) -> Self {
        Call {
            call,
            timeout: None,
            error: None,
        }
    }
}

/// A client is shared between tasks and threads by cloning.
const _: () = {
    const fn shareable<T: Clone + Send + Sync + 'static>() {}
    shareable::<Client>();
};
