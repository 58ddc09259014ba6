//! The RedisRPC wire format: requests and replies, encoded and decoded.
//!
//! A request is `{"function_call": {"name", "args", "kwargs"}, "response_queue"}`
//! and a reply is `{"return_value": …}` or `{"exception": "…"}` (see the
//! README's protocol section). Decoding is tolerant of everything the
//! Python, Ruby and PHP peers send: `args` missing, `[]` or `null`; `kwargs`
//! missing or `null`; unknown members; Ruby's `backtrace`; Python's bare
//! `Infinity`/`NaN` tokens in replies. Encoding writes what the Python client
//! writes: empty `args` and `kwargs` are left out.
//!
//! This module only converts between bytes and values; it does no I/O.

mod finite;
mod lenient;
mod loose;
mod scan;

use std::collections::BTreeMap;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::service::Args;
use crate::telemetry::TraceContext;
use crate::{Error, Result};

/// The members of a request that name the call.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FunctionCall {
    /// The method's name on the wire.
    pub name: String,
    /// Positional arguments.
    pub args: Vec<Value>,
    /// Named arguments.
    pub kwargs: Map<String, Value>,
}

/// A request as it travels on the service queue.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The method and its arguments.
    pub call: FunctionCall,
    /// The list the reply is to be pushed to: `<queue>:rpc:<random>`.
    pub response_queue: String,
    /// When the caller stops waiting, as time since the Unix epoch by the
    /// store's clock (see [`Backend::now`](crate::backend::Backend::now)).
    /// On the wire, the optional member `"deadline"`: whole milliseconds.
    /// Peers' servers ignore it; ours never start a request past it.
    pub deadline: Option<Duration>,
    /// When the caller sent it, by the same clock and in the same form as
    /// `deadline` (the optional member `"sent"`): how servers tell the time
    /// it waited in the queue. Peers ignore it.
    pub sent: Option<Duration>,
    /// The caller's W3C trace context (the optional member
    /// `"traceparent"`, see [`TraceContext`]): the server's span joins the
    /// caller's trace. Peers ignore it.
    pub traceparent: Option<TraceContext>,
}

/// The wire shape of a request, borrowed for encoding.
#[derive(Serialize)]
struct WireRequest<'a> {
    function_call: WireCall<'a>,
    response_queue: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    deadline: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sent: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    traceparent: Option<lenient::Traceparent>,
}

#[derive(Serialize)]
struct WireCall<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "<[Value]>::is_empty")]
    args: &'a [Value],
    #[serde(skip_serializing_if = "Map::is_empty")]
    kwargs: &'a Map<String, Value>,
}

/// The wire shape of a request, owned for decoding. Unknown members are ignored.
#[derive(Deserialize)]
struct IncomingRequest {
    function_call: IncomingCall,
    response_queue: String,
    /// Anything but a non-negative integer reads as no deadline: a peer
    /// that happens to send a member of that name must not lose its call.
    #[serde(default, deserialize_with = "lenient::millis")]
    deadline: Option<u64>,
    #[serde(default, deserialize_with = "lenient::millis")]
    sent: Option<u64>,
    /// Likewise, anything but a well-formed trace context reads as none,
    /// and starts a new trace.
    #[serde(default, deserialize_with = "lenient::traceparent")]
    traceparent: Option<TraceContext>,
}

/// The arguments stay JSON text until each is decoded as its parameter's
/// type: decoding a request takes about twice its size, not the many times
/// a tree of `serde_json::Value`s would.
#[derive(Deserialize)]
struct IncomingCall {
    name: String,
    #[serde(default, deserialize_with = "null_as_default")]
    args: Vec<Box<RawValue>>,
    #[serde(default, deserialize_with = "null_as_default")]
    kwargs: BTreeMap<String, Box<RawValue>>,
}

/// A request as a server reads it: the arguments are kept as JSON text
/// ([`Args`]) until they are bound to a method's parameters.
#[derive(Debug, Clone)]
pub struct Incoming {
    /// The method's name.
    pub method: String,
    /// Its arguments.
    pub args: Args,
    /// The list the reply is to be pushed to.
    pub response_queue: String,
    /// The caller's deadline (see [`Request::deadline`]).
    pub deadline: Option<Duration>,
    /// When the caller sent it (see [`Request::sent`]).
    pub sent: Option<Duration>,
    /// The caller's trace context (see [`Request::traceparent`]).
    pub traceparent: Option<TraceContext>,
}

impl Incoming {
    /// Reads a request, accepting every variant the peers send.
    pub fn decode(bytes: &[u8]) -> Result<Incoming, RequestError> {
        match from_object::<IncomingRequest>(bytes) {
            Ok(IncomingRequest {
                function_call: call,
                response_queue,
                deadline,
                sent,
                traceparent,
            }) => Ok(Incoming {
                method: call.name,
                args: Args::from_raw(call.args, call.kwargs.into_iter().collect()),
                response_queue,
                deadline: deadline.map(Duration::from_millis),
                sent: sent.map(Duration::from_millis),
                traceparent,
            }),
            Err(strict) => Err(Request::diagnose(bytes, strict)),
        }
    }
}

/// Whole milliseconds, as `deadline` and `sent` travel.
fn millis(time: Duration) -> u64 {
    u64::try_from(time.as_millis()).unwrap_or(u64::MAX)
}

/// Decodes a message that must be a JSON object. (Serde's derived decoders
/// would also take an array of the members, which no peer sends.)
fn from_object<T: DeserializeOwned>(bytes: &[u8]) -> serde_json::Result<T> {
    let value: T = serde_json::from_slice(bytes)?;
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => Ok(value),
        _ => Err(serde::de::Error::custom("a message must be a JSON object")),
    }
}

fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// Why a message taken from a service queue is not a usable request.
#[derive(Debug, Clone, PartialEq)]
pub enum RequestError {
    /// Not a request at all: not JSON, or no `response_queue` to answer on.
    /// Nothing can be replied; the message is dropped.
    Undecodable(String),
    /// It names a response queue, but its `function_call` is unusable. The
    /// sender can be told so with an exception reply.
    BadCall {
        /// Where the sender waits for its reply.
        response_queue: String,
        /// What is wrong with the call.
        reason: String,
    },
}

/// The response queue a request names, found without decoding the rest
/// of it: how a server answers a request it will not decode (one over its
/// size limit).
pub fn find_response_queue(bytes: &[u8]) -> Option<String> {
    scan::response_queue(bytes)
}

impl Request {
    /// A request for `call`, to be answered on `response_queue`.
    pub fn new(call: FunctionCall, response_queue: impl Into<String>) -> Self {
        Request {
            call,
            response_queue: response_queue.into(),
            deadline: None,
            sent: None,
            traceparent: None,
        }
    }

    /// The same request with a deadline (see [`Request::deadline`]).
    pub fn with_deadline(mut self, deadline: Option<Duration>) -> Self {
        self.deadline = deadline;
        self
    }

    /// The same request with the time it is sent (see [`Request::sent`]).
    pub fn with_sent(mut self, sent: Option<Duration>) -> Self {
        self.sent = sent;
        self
    }

    /// The same request with a trace context (see [`Request::traceparent`]).
    pub fn with_traceparent(mut self, traceparent: Option<TraceContext>) -> Self {
        self.traceparent = traceparent;
        self
    }

    /// The JSON text of the request, with empty `args`/`kwargs` left out.
    pub fn encode(&self) -> Vec<u8> {
        let wire = WireRequest {
            function_call: WireCall {
                name: &self.call.name,
                args: &self.call.args,
                kwargs: &self.call.kwargs,
            },
            response_queue: &self.response_queue,
            deadline: self.deadline.map(millis),
            sent: self.sent.map(millis),
            traceparent: self.traceparent.map(|context| lenient::Traceparent(context.encode())),
        };
        // Room for a call of a few small arguments with every optional
        // member, written without growing.
        let mut encoded = Vec::with_capacity(256);
        // Serializing `Value`s and strings into memory cannot fail.
        serde_json::to_writer(&mut encoded, &wire).expect("a request always encodes");
        encoded
    }

    /// Reads a request, accepting every variant the peers send.
    pub fn decode(bytes: &[u8]) -> Result<Request, RequestError> {
        let incoming = Incoming::decode(bytes)?;
        let (args, kwargs) = incoming.args.into_values();
        Ok(Request {
            call: FunctionCall {
                name: incoming.method,
                args,
                kwargs,
            },
            response_queue: incoming.response_queue,
            deadline: incoming.deadline,
            sent: incoming.sent,
            traceparent: incoming.traceparent,
        })
    }

    /// Works out, on the slow path, why a message failed to decode and
    /// whether its sender can still be answered.
    fn diagnose(bytes: &[u8], strict: serde_json::Error) -> RequestError {
        let undecodable = || RequestError::Undecodable(format!("not a RedisRPC request: {strict}"));
        let Ok(text) = std::str::from_utf8(bytes) else {
            return RequestError::Undecodable("not UTF-8 text".into());
        };
        let document = match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(document)) => document,
            Ok(_) => return undecodable(),
            // Valid but for bare `Infinity`/`NaN` tokens: answer that they
            // cannot be accepted, rather than leaving the caller to time out.
            Err(_) if matches!(loose::parse(text), Ok(serde_value::Value::Map(_))) => {
                return match scan::response_queue(bytes) {
                    Some(response_queue) => RequestError::BadCall {
                        response_queue,
                        reason: "the arguments hold a non-finite float (Infinity or NaN), which JSON cannot carry"
                            .into(),
                    },
                    None => undecodable(),
                };
            }
            // Valid JSON past serde_json's limits (a number beyond `f64`,
            // deep nesting, a lone surrogate), or not JSON at all: answer
            // if the request says where.
            Err(_) => {
                return match scan::response_queue(bytes) {
                    Some(response_queue) => RequestError::BadCall {
                        response_queue,
                        reason: format!("cannot read the request: {strict}"),
                    },
                    None => undecodable(),
                };
            }
        };
        let Some(Value::String(response_queue)) = document.get("response_queue") else {
            return RequestError::Undecodable("no string `response_queue` member".into());
        };
        let reason = match document.get("function_call") {
            Some(Value::Object(call)) => match call.get("name") {
                Some(Value::String(_)) => format!("malformed `function_call`: {strict}"),
                _ => "`function_call` has no string `name`".to_string(),
            },
            _ => "the request has no `function_call` object".to_string(),
        };
        RequestError::BadCall {
            response_queue: response_queue.clone(),
            reason,
        }
    }
}

/// A decoded reply.
#[derive(Debug)]
pub enum Reply {
    /// The call succeeded with this value.
    Return(ReturnValue),
    /// The call failed on the server.
    Exception {
        /// The exception text.
        message: String,
        /// The remote backtrace, when the server sent one.
        backtrace: Option<Vec<String>>,
    },
}

/// A successful reply's value, kept as received until the caller says which
/// type it wants, so it is parsed once, straight into that type.
#[derive(Debug)]
pub struct ReturnValue(Repr);

#[derive(Debug)]
enum Repr {
    /// Standard JSON text.
    Json(Box<RawValue>),
    /// A value that held the peers' non-finite tokens.
    Loose(serde_value::Value),
}

impl ReturnValue {
    /// Decodes the value as `T`. Non-finite floats sent by the Python or Ruby
    /// peers decode to the matching `f64` values.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, crate::BoxError> {
        match &self.0 {
            Repr::Json(raw) => Ok(serde_json::from_str(raw.get())?),
            Repr::Loose(value) => Ok(T::deserialize(value.clone())?),
        }
    }

    /// The JSON text of the value as received.
    pub fn raw(&self) -> Option<&str> {
        match &self.0 {
            Repr::Json(raw) => Some(raw.get()),
            Repr::Loose(_) => None,
        }
    }
}

#[derive(Deserialize)]
struct IncomingReply {
    #[serde(default)]
    exception: Option<Value>,
    #[serde(default)]
    backtrace: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    return_value: Option<Box<RawValue>>,
}

/// `"return_value": null` is a value (a method with no result), not an absence.
fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Box<RawValue>>, D::Error> {
    Box::<RawValue>::deserialize(deserializer).map(Some)
}

fn malformed(reason: impl Into<String>, bytes: &[u8]) -> Error {
    const EXCERPT: usize = 200;
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(EXCERPT)]);
    let more = if bytes.len() > EXCERPT { "…" } else { "" };
    Error::MalformedReply {
        reason: reason.into(),
        excerpt: format!("{text}{more}"),
    }
}

fn exception_text(value: Value) -> String {
    match value {
        Value::String(text) => text,
        other => other.to_string(),
    }
}

fn backtrace_lines(value: Option<Value>) -> Option<Vec<String>> {
    match value? {
        Value::Array(lines) => Some(lines.into_iter().map(exception_text).collect()),
        Value::Null => None,
        other => Some(vec![exception_text(other)]),
    }
}

impl Reply {
    /// Reads a reply. A non-null `exception` makes it a remote error; one
    /// with neither `exception` nor `return_value` is malformed.
    pub fn decode(bytes: &[u8]) -> Result<Reply> {
        let incoming = match from_object::<IncomingReply>(bytes) {
            Ok(incoming) => incoming,
            Err(strict) => return Self::decode_loose(bytes, strict),
        };
        match (incoming.exception, incoming.return_value) {
            (Some(exception), _) if !exception.is_null() => Ok(Reply::Exception {
                message: exception_text(exception),
                backtrace: backtrace_lines(incoming.backtrace),
            }),
            (_, Some(raw)) => Ok(Reply::Return(ReturnValue(Repr::Json(raw)))),
            _ => Err(malformed("neither `return_value` nor `exception`", bytes)),
        }
    }

    /// The slow path for replies that are not standard JSON: the peers' bare
    /// non-finite float tokens.
    fn decode_loose(bytes: &[u8], strict: serde_json::Error) -> Result<Reply> {
        use serde_value::Value as Loose;
        let parsed = std::str::from_utf8(bytes).ok().and_then(|text| loose::parse(text).ok());
        let Some(Loose::Map(mut map)) = parsed else {
            return Err(malformed(format!("not a JSON object ({strict})"), bytes));
        };
        let mut take = |name: &str| map.remove(&Loose::String(name.into()));
        match (take("exception"), take("return_value")) {
            (Some(exception), _) if exception != Loose::Unit => Ok(Reply::Exception {
                message: match exception {
                    Loose::String(text) => text,
                    other => format!("{other:?}"),
                },
                backtrace: None,
            }),
            (_, Some(value)) => Ok(Reply::Return(ReturnValue(Repr::Loose(value)))),
            _ => Err(malformed("neither `return_value` nor `exception`", bytes)),
        }
    }

    /// Encodes a successful reply carrying `value`. Fails when `value` cannot
    /// be written as JSON, for instance a non-finite float, which would
    /// otherwise become a silent `null`.
    pub fn encode_return<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>> {
        Ok(Self::encode_json_return(&JsonText::encode(value)?))
    }

    /// Encodes a successful reply around an already encoded value.
    pub fn encode_json_return(value: &JsonText) -> Vec<u8> {
        // The value is one valid JSON text already: it goes in as it is.
        const OPEN: &[u8] = br#"{"return_value":"#;
        let value = value.as_str().as_bytes();
        let mut reply = Vec::with_capacity(OPEN.len() + value.len() + 1);
        reply.extend_from_slice(OPEN);
        reply.extend_from_slice(value);
        reply.push(b'}');
        reply
    }

    /// Encodes an exception reply with `message`.
    pub fn encode_exception(message: &str) -> Vec<u8> {
        #[derive(Serialize)]
        struct WireException<'a> {
            exception: &'a str,
        }
        serde_json::to_vec(&WireException { exception: message }).expect("a string always encodes")
    }
}

/// One JSON value as text: what a method returns, checked to be
/// representable and ready to be sent as a reply's `return_value`, or an
/// argument as received, waiting to be decoded as its parameter's type.
#[derive(Clone)]
pub struct JsonText(String);

impl JsonText {
    /// Encodes `value`, refusing what JSON cannot represent (non-finite
    /// floats, maps with non-string keys) rather than writing `null`.
    pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<JsonText> {
        let refuse = |reason: String| Error::Encode {
            what: std::any::type_name::<T>().to_string(),
            reason,
        };
        finite::check(value).map_err(|e| refuse(e.to_string()))?;
        // Kept as written: serde_json writes one valid JSON value.
        serde_json::to_string(value)
            .map(JsonText)
            .map_err(|e| refuse(e.to_string()))
    }

    /// The JSON text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Text already known to be one valid JSON value (a received argument).
    pub(crate) fn from_raw(raw: Box<RawValue>) -> JsonText {
        JsonText(Box::<str>::from(raw).into())
    }
}

impl std::fmt::Debug for JsonText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Display for JsonText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Converts `value` to a JSON value, refusing what JSON cannot represent
/// rather than turning it into `null` as `serde_json::to_value` would.
pub(crate) fn to_json_value<T: Serialize + ?Sized>(value: &T) -> Result<Value, String> {
    finite::check(value).map_err(|e| e.to_string())?;
    serde_json::to_value(value).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests;
