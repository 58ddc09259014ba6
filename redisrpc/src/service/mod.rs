//! What a server serves: a [`Service`] turns a method name and arguments
//! into a result.
//!
//! The server knows nothing about any particular service; it decodes a
//! request, hands the call to its `Service`, and encodes what comes back.
//! [`Methods`] builds a service from closures over a shared state; the
//! `#[rpc]` attribute generates one from a trait. [`Args`] and [`FromArgs`]
//! bind the wire's positional and named arguments to parameters the way
//! Python does, and name the parameter whenever one is missing, extra or of
//! the wrong type. Every service describes itself ([`Service::describe`]),
//! which is what the server answers to
//! [`rpc.describe`](crate::describe::DESCRIBE_METHOD).

mod args;
mod context;
mod methods;

use std::fmt;

use async_trait::async_trait;

use crate::describe::ServiceDescription;
use crate::protocol::JsonText;

pub use self::args::{Args, FromArgs, decode_param};
pub use self::context::CallContext;
pub use self::methods::{IntoReturn, Methods};

/// A set of methods a server can run.
///
/// Like [`Backend`](crate::backend::Backend), it is an `#[async_trait]`
/// trait, so that a server can hold any service behind one pointer;
/// implement it with `#[async_trait::async_trait]` on the `impl` (or write
/// the boxed future out, as `#[rpc]` does).
#[async_trait]
pub trait Service: Send + Sync + 'static {
    /// Runs `method` with `args`. The result is the JSON text of the return
    /// value, already checked to be representable (see [`JsonText::encode`]).
    async fn call(&self, method: &str, args: Args) -> Result<JsonText, CallError>;

    /// What the service offers: its name and its methods with their
    /// parameters. The server answers
    /// [`rpc.describe`](crate::describe::DESCRIBE_METHOD) with it.
    fn describe(&self) -> ServiceDescription;

    /// The names of the methods, for error messages.
    fn method_names(&self) -> Vec<String> {
        self.describe()
            .methods
            .iter()
            .map(|method| method.name.to_string())
            .collect()
    }
}

/// Why a call failed on the server. Its text becomes the `exception` member
/// of the reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallError {
    kind: CallErrorKind,
    message: String,
}

/// The kinds of [`CallError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CallErrorKind {
    /// The service has no method of that name.
    UnknownMethod,
    /// An argument is missing, extra, or of the wrong type.
    InvalidArguments,
    /// The method ran and returned an error.
    Failed,
    /// The method panicked.
    Panicked,
    /// The request itself was unusable (e.g. no method name).
    BadRequest,
    /// The method's result cannot be written as JSON.
    Unrepresentable,
}

impl CallError {
    /// An error of `kind` with the exception text `message`.
    pub fn new(kind: CallErrorKind, message: impl Into<String>) -> Self {
        CallError {
            kind,
            message: message.into(),
        }
    }

    /// The method ran and failed with `error`; its text is sent to the caller.
    pub fn failed(error: impl fmt::Display) -> Self {
        Self::new(CallErrorKind::Failed, error.to_string())
    }

    /// No method `method` exists; `known` lists the ones that do.
    pub fn unknown_method(method: &str, known: &[String]) -> Self {
        let mut known = known.to_vec();
        known.sort();
        Self::new(
            CallErrorKind::UnknownMethod,
            format!("unknown method `{method}` (this service has: {})", known.join(", ")),
        )
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> CallErrorKind {
        self.kind
    }

    /// The exception text sent to the caller.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CallError {}
