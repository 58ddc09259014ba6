//! Calling methods of a remote service.
//!
//! A [`Client`] is bound to one service queue. Each call pushes a request
//! naming a fresh reply queue `<queue>:rpc:<uuid>` and waits on that queue
//! for the single reply. The wait starts at the same moment as the push, so
//! a call costs one round trip to the store plus the server's work, and
//! calls from many tasks run side by side: each waits on its own queue.
//!
//! **Timeouts hold.** Every call has a timeout ([`DEFAULT_TIMEOUT`], 10 s,
//! unless set), and its request carries the matching deadline, by the
//! store's clock (the member `"deadline"`, see the README's protocol
//! section), so that our servers never start it after the caller gave up.
//! Local timers end the call within its timeout plus [`TIMEOUT_MARGIN`]
//! whatever the store does: Redis frozen, unreachable or restarting.
//!
//! When the timeout elapses the client removes its request from the service
//! queue if no server has taken it yet (as the Ruby peer does), so a call
//! that timed out either will not run at all or was already running; the
//! [`Error::Timeout`] says which, as [`Error::Interrupted`] does when the
//! connection broke during the call. A call whose future is dropped before
//! it completes withdraws its request the same way. A request that was
//! taken is announced as given up, so a server running it can stop it (see
//! [`Server::with_cancellation`](crate::Server::with_cancellation)).

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tracing::Instrument;
use uuid::Uuid;

use crate::backend::{IntoBackend, SharedBackend};
use crate::protocol::{self, FunctionCall, Reply, Request};
use crate::telemetry::ClientSpan;
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
    /// Where the work that outlives a call runs; `None`: on the runtime of
    /// the call, through `backend`.
    afterwards: Option<Afterwards>,
}

/// Where the work that outlives a call (withdrawing a request whose caller
/// left, telling the servers it was given up) runs, when the call's own
/// runtime stops at its end: the blocking API's calls run on their
/// thread's runtime, which nothing drives between calls.
#[derive(Clone, Debug)]
pub(crate) struct Afterwards {
    pub(crate) runtime: tokio::runtime::Handle,
    pub(crate) backend: SharedBackend,
}

impl Client {
    /// A client calling the service that listens on `queue`. Calls time out
    /// after [`DEFAULT_TIMEOUT`] (10 s) unless told otherwise with
    /// [`Client::with_timeout`] or [`Call::with_timeout`].
    pub fn new(backend: impl IntoBackend, queue: impl Into<String>) -> Self {
        Client {
            backend: backend.into_backend(),
            queue: queue.into().into(),
            timeout: Some(DEFAULT_TIMEOUT),
            afterwards: None,
        }
    }

    /// The same client calling through `backend` (the same store), with the
    /// work that outlives a call done elsewhere.
    pub(crate) fn through(&self, backend: SharedBackend, afterwards: Afterwards) -> Client {
        Client {
            backend,
            queue: Arc::clone(&self.queue),
            timeout: self.timeout,
            afterwards: Some(afterwards),
        }
    }

    /// The same client with another default timeout for its calls
    /// (`None`: wait forever, and send no deadline). [`Call::with_timeout`]
    /// overrides it per call.
    pub fn with_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.timeout = timeout;
        self
    }

    /// The timeout of this client's calls (`None`: they wait forever).
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout
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
        let timeout = call.timeout_with(self);
        let method = call.call.name.clone();
        let span = ClientSpan::start(&self.queue, &method, timeout);
        let pending = Pending {
            client: self,
            call: call.call,
            urgent: call.urgent,
            method: &method,
            span: &span,
        };
        let called = async {
            let reply = match timeout {
                Some(timeout) => pending.within(timeout).await?,
                None => pending.unbounded().await?,
            };
            match reply {
                Reply::Return(value) => value.decode().map_err(|source| Error::Decode {
                    method: method.clone(),
                    expected: std::any::type_name::<T>(),
                    source,
                }),
                Reply::Exception { message, backtrace } => Err(Error::Remote { message, backtrace }),
            }
        };
        let result = called.instrument(span.span.clone()).await;
        span.finish(&result);
        result
    }

    pub(crate) fn timeout_error(&self, method: &str, timeout: Duration, request_withdrawn: bool) -> Error {
        Error::Timeout {
            queue: self.queue.to_string(),
            method: method.to_string(),
            timeout,
            request_withdrawn,
        }
    }
}

/// The default timeout of a call: a dead server makes its callers fail
/// after this long rather than hang.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long past its timeout a call may take to end. The wait for the reply
/// is cut by a local timer 150 ms after the timeout (Redis normally ends it
/// on time), then withdrawing the request may take up to 300 ms: whatever
/// Redis does (frozen, unreachable, restarting), a call ends within its
/// timeout plus this margin.
pub const TIMEOUT_MARGIN: Duration = Duration::from_millis(500);

/// The two parts of [`TIMEOUT_MARGIN`].
const REPLY_GRACE: Duration = Duration::from_millis(150);
const WITHDRAW_BUDGET: Duration = Duration::from_millis(300);
const _: () = assert!(REPLY_GRACE.as_millis() + WITHDRAW_BUDGET.as_millis() <= TIMEOUT_MARGIN.as_millis());

/// How long after an abandoned call its reply queue is given an expiry
/// (long enough for the backend to have put back a reply the abandoned wait
/// had taken), and that expiry.
const ABANDONED_REPLY_GRACE: Duration = Duration::from_secs(1);
const ABANDONED_REPLY_TTL: Duration = Duration::from_secs(10);

/// One call on its way: the request is made once the deadline is known.
struct Pending<'a> {
    client: &'a Client,
    call: FunctionCall,
    urgent: bool,
    method: &'a str,
    span: &'a ClientSpan,
}

impl Pending<'_> {
    /// The call with a timeout: its request carries the deadline, and
    /// local timers bound every step (see [`TIMEOUT_MARGIN`]).
    async fn within(mut self, timeout: Duration) -> Result<Reply> {
        let client = self.client;
        let started = tokio::time::Instant::now();
        let local_end = started + timeout + REPLY_GRACE;
        // The store's clock is known after the first call; learning it counts
        // against the timeout like everything else.
        let now = match client.backend.now_known(&client.queue) {
            Some(now) => now,
            None => match tokio::time::timeout_at(local_end, client.backend.now(&client.queue)).await {
                Ok(now) => now?,
                Err(_) => return Err(client.timeout_error(self.method, timeout, true)),
            },
        };
        // What is left of the timeout bounds both the deadline and the wait
        // (read once: the clock is not free, and the two then agree).
        let wait = timeout.saturating_sub(started.elapsed());
        let deadline = now + wait;
        let (encoded, response_queue) = self.request(Some(deadline), Some(now));
        let mut in_flight = InFlight::new(client, &encoded, &response_queue);
        let exchange = self.exchange(&encoded, &response_queue, Some(wait));
        // A store that answers in place bounds the wait exactly itself.
        let exchanged = if client.backend.answers_in_place() {
            Ok(exchange.await)
        } else {
            tokio::time::timeout_at(local_end, exchange).await
        };
        let outcome = match exchanged {
            Ok(Ok(Some(reply))) => Ok(Reply::decode(&reply)),
            Ok(Ok(None)) | Err(_) => match in_flight.withdraw().await {
                Withdrawal::Late(reply) => Ok(Reply::decode(&reply)),
                Withdrawal::Withdrawn => Err(client.timeout_error(self.method, timeout, true)),
                Withdrawal::Kept => Err(client.timeout_error(self.method, timeout, false)),
            },
            Ok(Err(error)) if error.is_connection() => match in_flight.withdraw().await {
                Withdrawal::Late(reply) => Ok(Reply::decode(&reply)),
                withdrawal => Err(self.interrupted(error, matches!(withdrawal, Withdrawal::Withdrawn))),
            },
            Ok(Err(error)) => Err(error),
        };
        in_flight.settled = true;
        outcome?
    }

    /// The call without a timeout: no deadline, and the wait lasts as long
    /// as it takes.
    async fn unbounded(mut self) -> Result<Reply> {
        let (encoded, response_queue) = self.request(None, None);
        let mut in_flight = InFlight::new(self.client, &encoded, &response_queue);
        let outcome = match self.exchange(&encoded, &response_queue, None).await {
            Ok(Some(reply)) => Reply::decode(&reply),
            // A wait without a timeout ends with a reply; should a backend
            // end one anyway, the call ends as a timeout would.
            Ok(None) => match in_flight.withdraw().await {
                Withdrawal::Late(reply) => Reply::decode(&reply),
                withdrawal => Err(self.client.timeout_error(
                    self.method,
                    Duration::MAX,
                    matches!(withdrawal, Withdrawal::Withdrawn),
                )),
            },
            Err(error) if error.is_connection() => match in_flight.withdraw().await {
                Withdrawal::Late(reply) => Reply::decode(&reply),
                withdrawal => Err(self.interrupted(error, matches!(withdrawal, Withdrawal::Withdrawn))),
            },
            Err(error) => Err(error),
        };
        in_flight.settled = true;
        outcome
    }

    /// The request, made once; the call's arguments move into it. `sent`
    /// is the store's time now, when it was read for the deadline.
    fn request(&mut self, deadline: Option<Duration>, sent: Option<Duration>) -> (Vec<u8>, String) {
        let queue = &self.client.queue;
        let mut random = Uuid::encode_buffer();
        let random = Uuid::new_v4().simple().encode_lower(&mut random);
        let response_queue = crate::layout::reply_queue(queue, random);
        self.span.record_call_id(&response_queue);
        let request = Request::new(std::mem::take(&mut self.call), response_queue)
            .with_deadline(deadline)
            .with_sent(sent.filter(|_| crate::telemetry::enabled()))
            .with_traceparent(self.span.context);
        (request.encode(), request.response_queue)
    }

    /// Pushes the request and waits for the reply (`None`: Redis ended the
    /// wait at `wait`).
    async fn exchange(&self, request: &[u8], response_queue: &str, wait: Option<Duration>) -> Result<Option<Vec<u8>>> {
        let backend = &self.client.backend;
        let queue = &*self.client.queue;
        // Start waiting for the reply while the request is pushed: the wait
        // is in place before any server can answer, and the push costs no
        // extra round trip. If the push fails, the wait is dropped, which
        // backends guarantee loses nothing.
        let push = async {
            if self.urgent {
                backend.lpush(queue, request).await
            } else {
                backend.rpush(queue, &[request]).await
            }
        };
        let pop = async {
            // The push goes first: it is what the call waits on. Over a
            // connection it is handed to the connection's writer, which
            // then writes it before the wait's own write is made here.
            if !backend.answers_in_place() {
                tokio::task::yield_now().await;
            }
            backend.wait_reply(response_queue, wait).await
        };
        let (_, reply) = tokio::try_join!(push, pop)?;
        Ok(reply)
    }

    fn interrupted(&self, error: Error, request_withdrawn: bool) -> Error {
        let source: crate::BoxError = match error {
            Error::Connection { source } => source,
            other => Box::new(other),
        };
        Error::Interrupted {
            queue: self.client.queue.to_string(),
            method: self.method.to_string(),
            request_withdrawn,
            source,
        }
    }
}

/// What became of a request the caller stopped waiting for.
enum Withdrawal {
    /// Removed from the queue before any server took it: it will not run.
    Withdrawn,
    /// A server had taken it, and its reply arrived after all.
    Late(Vec<u8>),
    /// A server had taken it, or the store could not be asked in time: it
    /// may run (never past its deadline on our servers).
    Kept,
}

/// A call whose caller may stop waiting. Withdrawn explicitly on a timeout
/// or a connection error; when its future is dropped before the call
/// settled (the caller's own timeout, a `select!`), withdrawn in the
/// background. A request that could not be withdrawn is announced as given
/// up (see [`layout::cancel_channel`](crate::layout::cancel_channel)), and
/// its reply queue is made to expire.
struct InFlight<'a> {
    client: &'a Client,
    request: &'a [u8],
    response_queue: &'a str,
    settled: bool,
}

impl<'a> InFlight<'a> {
    fn new(client: &'a Client, request: &'a [u8], response_queue: &'a str) -> Self {
        InFlight {
            client,
            request,
            response_queue,
            settled: false,
        }
    }

    /// Withdraws the request, within [`WITHDRAW_BUDGET`].
    async fn withdraw(&mut self) -> Withdrawal {
        let backend = &self.client.backend;
        let queue = &*self.client.queue;
        let attempt = async {
            if backend.lrem(queue, 1, self.request).await? > 0 {
                return Ok(Withdrawal::Withdrawn);
            }
            // A server took the request; its reply may have landed since the wait ended.
            Ok::<_, Error>(match backend.lpop(self.response_queue).await? {
                Some(reply) => Withdrawal::Late(reply),
                None => Withdrawal::Kept,
            })
        };
        let withdrawal = match tokio::time::timeout(WITHDRAW_BUDGET, attempt).await {
            Ok(Ok(withdrawal)) => withdrawal,
            Ok(Err(error)) => {
                tracing::debug!(%queue, %error, "cannot withdraw a request");
                Withdrawal::Kept
            }
            Err(_) => Withdrawal::Kept,
        };
        if matches!(withdrawal, Withdrawal::Kept) {
            // Perhaps still queued (the store did not answer in time): try
            // again in the background, and else tell the servers.
            self.announce_given_up(true);
        }
        withdrawal
    }

    /// In the background: withdraws the request if `withdraw` (else it is
    /// known to be taken), tells the servers it was given up if it could not
    /// be, and makes a late reply expire.
    fn announce_given_up(&mut self, withdraw: bool) {
        self.settled = true;
        let (runtime, backend) = match &self.client.afterwards {
            Some(afterwards) => (afterwards.runtime.clone(), afterwards.backend.clone()),
            None => match tokio::runtime::Handle::try_current() {
                Ok(runtime) => (runtime, self.client.backend.clone()),
                // Outside a runtime nothing can be sent; the reply still
                // expires if a server sends one.
                Err(_) => return,
            },
        };
        let queue = self.client.queue.clone();
        let request = self.request.to_vec();
        let response_queue = self.response_queue.to_string();
        runtime.spawn(async move {
            let withdrawn = withdraw && matches!(backend.lrem(&queue, 1, &request).await, Ok(1..));
            if !withdrawn {
                let channel = crate::layout::cancel_channel(&queue);
                if let Err(error) = backend.publish(&channel, response_queue.as_bytes()).await {
                    tracing::debug!(%queue, %error, "cannot tell the servers a call was given up");
                }
            }
            tokio::time::sleep(ABANDONED_REPLY_GRACE).await;
            let _ = backend.expire(&response_queue, ABANDONED_REPLY_TTL).await;
        });
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if !self.settled {
            self.announce_given_up(true);
        }
    }
}

/// One call under construction: a method, its arguments, and optionally its
/// own timeout. Encoding errors are kept and reported when it is sent.
#[derive(Debug)]
pub struct Call {
    call: FunctionCall,
    timeout: Option<Option<Duration>>,
    urgent: bool,
    error: Option<Error>,
}

impl Call {
    /// The method called.
    pub(crate) fn method(&self) -> &str {
        &self.call.name
    }

    /// The timeout this call has when sent by `client`.
    pub(crate) fn timeout_with(&self, client: &Client) -> Option<Duration> {
        self.timeout.unwrap_or(client.timeout)
    }

    /// Sets the call's timeout in place ([`Call::with_timeout`]).
    pub(crate) fn set_timeout(&mut self, timeout: Option<Duration>) {
        self.timeout = Some(timeout);
    }

    /// A call of `method` with no arguments yet.
    pub fn new(method: impl Into<String>) -> Self {
        Call {
            call: FunctionCall {
                name: method.into(),
                ..FunctionCall::default()
            },
            timeout: None,
            urgent: false,
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

    /// Sets this call's timeout (`None`: wait forever, and send no
    /// deadline), overriding the client's.
    pub fn with_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Makes the call urgent (or not): its request is pushed to the head of
    /// the queue (`LPUSH`), so a server takes it before every request
    /// already waiting, as an emergency stop behind a backlog of motion
    /// commands must be. Every peer's server pops from the head, so this
    /// works with them too. Urgent calls pushed at once are taken newest
    /// first.
    pub fn with_urgent(mut self, urgent: bool) -> Self {
        self.urgent = urgent;
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
            urgent: false,
            error: None,
        }
    }
}

/// A client is shared between tasks and threads by cloning.
const _: () = {
    const fn shareable<T: Clone + Send + Sync + 'static>() {}
    shareable::<Client>();
};
