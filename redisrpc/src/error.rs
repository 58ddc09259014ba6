//! The one error type of the crate.
//!
//! Callers match on [`Error`]'s variants or use its `is_*` queries; they never
//! need to parse message text. Every variant says what went wrong and keeps
//! the underlying cause as its `source()` where there is one.

use std::time::Duration;

/// A boxed cause, as kept by the variants that wrap another library's error.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong in a call, a server or a backend operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No reply arrived within the call's timeout.
    ///
    /// `request_withdrawn` is true when the request was still waiting in the
    /// service queue and the client removed it, so no server will ever run it.
    /// When false, a server had already taken the request: it may still run,
    /// and its late reply is discarded (it expires in Redis by itself).
    #[error("call to `{method}` on `{queue}` timed out after {timeout:?}{}", if *request_withdrawn { " (request withdrawn, it will not run)" } else { " (a server had taken it; it may still run)" })]
    Timeout {
        /// The service queue the request was pushed to.
        queue: String,
        /// The method that was called.
        method: String,
        /// The timeout that elapsed.
        timeout: Duration,
        /// Whether the request was removed from the queue before any server took it.
        request_withdrawn: bool,
    },

    /// The connection to the backend failed while a call was under way,
    /// after its request may have been pushed.
    ///
    /// As for [`Error::Timeout`], `request_withdrawn` says whether the client
    /// then removed the request before any server took it, so it will never
    /// run. When false it may run, but never on a redisrpc server after its
    /// deadline: a caller that retries once the call's timeout has passed
    /// does not run it twice there.
    #[error("call to `{method}` on `{queue}` interrupted: {source}{}", if *request_withdrawn { " (request withdrawn, it will not run)" } else { " (it may still run until its deadline)" })]
    Interrupted {
        /// The service queue the request was pushed to.
        queue: String,
        /// The method that was called.
        method: String,
        /// Whether the request was removed from the queue before any server took it.
        request_withdrawn: bool,
        /// The connection failure.
        #[source]
        source: BoxError,
    },

    /// The server ran the call and answered with an exception.
    ///
    /// `message` is the peer's text, for humans; `backtrace` is present when
    /// the peer sent one (the Ruby server does).
    #[error("remote error: {message}")]
    Remote {
        /// The exception text from the reply.
        message: String,
        /// The remote backtrace, when the server sent one.
        backtrace: Option<Vec<String>>,
    },

    /// A reply arrived but is not a RedisRPC reply: not JSON, not an object,
    /// or with neither `return_value` nor `exception`.
    #[error("malformed reply: {reason}: {excerpt}")]
    MalformedReply {
        /// What is wrong with the reply.
        reason: String,
        /// The start of the reply as received, for diagnosis.
        excerpt: String,
    },

    /// A well-formed reply's value does not have the type the caller asked for.
    #[error("cannot decode the reply of `{method}` as {expected}: {source}")]
    Decode {
        /// The method that was called.
        method: String,
        /// The Rust type the caller asked for.
        expected: &'static str,
        /// The decoder's complaint.
        #[source]
        source: BoxError,
    },

    /// Arguments or a value could not be encoded as JSON (for example a map
    /// with non-string keys, or a non-finite float, which JSON cannot carry).
    #[error("cannot encode {what} as JSON: {reason}")]
    Encode {
        /// What was being encoded.
        what: String,
        /// Why it could not be.
        reason: String,
    },

    /// The backend could not be reached, or the connection to it broke.
    #[error("connection to the backend failed: {source}")]
    Connection {
        /// The underlying failure.
        #[source]
        source: BoxError,
    },

    /// The backend refused a command (for example `WRONGTYPE`: the key holds
    /// a value of another type than the command works on).
    #[error("backend refused the command: {source}")]
    Command {
        /// The backend's error.
        #[source]
        source: BoxError,
    },

    /// A connection URL or another setting is invalid.
    #[error("invalid configuration: {0}")]
    Config(String),

    /// A shared-state path is not valid path syntax (see [`crate::state`]).
    #[error("invalid path `{path}`: {reason}")]
    InvalidPath {
        /// The path as given.
        path: String,
        /// What is wrong with it.
        reason: String,
    },

    /// The shared state has no value at this path: the top-level key does
    /// not exist, an object has no such member, or an index is past the end
    /// of an array.
    #[error("no value at `{path}`{}", if reason.is_empty() { String::new() } else { format!(": {reason}") })]
    NotFound {
        /// The path asked for.
        path: String,
        /// Which part is missing, when more can be said than the path.
        reason: String,
    },

    /// The value at a path has another type than the operation works on
    /// (incrementing a string, indexing into a number, taking the length of
    /// a boolean, reading plain JSON as a binary array …).
    #[error("wrong type at `{path}`: expected {expected}, found {found}")]
    WrongType {
        /// Where the value is.
        path: String,
        /// What the operation needed.
        expected: String,
        /// What is there.
        found: String,
    },

    /// Arithmetic on a stored number failed: an integer overflowed, a
    /// division by zero, or a result JSON cannot hold (infinite or NaN).
    #[error("arithmetic on `{path}` failed: {reason}")]
    Arithmetic {
        /// Where the number is.
        path: String,
        /// What went wrong.
        reason: String,
    },

    /// A stored value could not be converted to the type asked for.
    #[error("cannot read `{path}` as {expected}: {source}")]
    Deserialize {
        /// Where the value is.
        path: String,
        /// The Rust type asked for.
        expected: &'static str,
        /// The decoder's complaint.
        #[source]
        source: BoxError,
    },

    /// A binary value (an array beside a document) is missing or cannot be
    /// decoded: an unknown dtype, a shape that does not fit its bytes, a
    /// marshaller for another label.
    #[error("binary value at `{path}`: {reason}")]
    Binary {
        /// Where the value is.
        path: String,
        /// What is wrong.
        reason: String,
    },

    /// A live mirror is not in sync with the store (its subscription is
    /// reconnecting, or it could not read the document), so it refuses to
    /// serve what could be stale.
    #[error("the mirror of `{path}` is not in sync with the store: {reason}")]
    OutOfSync {
        /// The mirrored path.
        path: String,
        /// Why it is not in sync.
        reason: String,
    },

    /// The server keeps its shared state in a layout this build does not
    /// know (see [`crate::layout`]): written by another version of the
    /// project. Nothing is read or written, rather than misread.
    #[error(
        "the server's shared state is in layout {found}; this build reads and writes only layout {}",
        crate::layout::LAYOUT_VERSION
    )]
    UnknownLayout {
        /// The layout the server records.
        found: String,
    },

    /// A read-modify-write kept conflicting with concurrent writers and gave
    /// up after this many attempts.
    #[error("gave up updating `{path}` after {attempts} conflicting attempts")]
    Contention {
        /// The path being updated.
        path: String,
        /// How many attempts were made.
        attempts: usize,
    },
}

impl Error {
    /// True when the call timed out waiting for its reply.
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::Timeout { .. })
    }

    /// True when the server ran the call and replied with an exception.
    pub fn is_remote(&self) -> bool {
        matches!(self, Error::Remote { .. })
    }

    /// True when the backend could not be reached or the connection broke,
    /// including during a call ([`Error::Interrupted`]).
    pub fn is_connection(&self) -> bool {
        matches!(self, Error::Connection { .. } | Error::Interrupted { .. })
    }

    /// True when a call's connection failed after its request may have
    /// been pushed ([`Error::Interrupted`]).
    pub fn is_interrupted(&self) -> bool {
        matches!(self, Error::Interrupted { .. })
    }

    /// For a call that timed out or was interrupted: whether its request
    /// may still run (it was not withdrawn). `None` for other errors.
    pub fn request_may_run(&self) -> Option<bool> {
        match self {
            Error::Timeout { request_withdrawn, .. } | Error::Interrupted { request_withdrawn, .. } => {
                Some(!request_withdrawn)
            }
            _ => None,
        }
    }

    /// True when a reply arrived that is not a valid RedisRPC reply.
    pub fn is_malformed_reply(&self) -> bool {
        matches!(self, Error::MalformedReply { .. })
    }

    /// True when the reply could not be decoded as the requested type.
    pub fn is_decode(&self) -> bool {
        matches!(self, Error::Decode { .. })
    }

    /// True when something could not be encoded as JSON.
    pub fn is_encode(&self) -> bool {
        matches!(self, Error::Encode { .. })
    }

    /// True when the backend refused a command (such as `WRONGTYPE`).
    pub fn is_command(&self) -> bool {
        matches!(self, Error::Command { .. })
    }

    /// True when a connection URL or another setting is invalid.
    pub fn is_config(&self) -> bool {
        matches!(self, Error::Config(_))
    }

    /// True when arithmetic on a stored number failed.
    pub fn is_arithmetic(&self) -> bool {
        matches!(self, Error::Arithmetic { .. })
    }

    /// True when a stored value could not be converted to the type asked for.
    pub fn is_deserialize(&self) -> bool {
        matches!(self, Error::Deserialize { .. })
    }

    /// True when a binary value is missing or cannot be decoded.
    pub fn is_binary(&self) -> bool {
        matches!(self, Error::Binary { .. })
    }

    /// True when a read-modify-write gave up after conflicting writers.
    pub fn is_contention(&self) -> bool {
        matches!(self, Error::Contention { .. })
    }

    /// True when a shared-state path has no value.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::NotFound { .. })
    }

    /// True when a shared-state value has another type than the operation needs.
    pub fn is_wrong_type(&self) -> bool {
        matches!(self, Error::WrongType { .. })
    }

    /// True when a shared-state path is not valid syntax.
    pub fn is_invalid_path(&self) -> bool {
        matches!(self, Error::InvalidPath { .. })
    }

    /// True when the server's shared state is in a layout this build does
    /// not know.
    pub fn is_unknown_layout(&self) -> bool {
        matches!(self, Error::UnknownLayout { .. })
    }

    /// True when a live mirror refused to serve possibly stale state.
    pub fn is_out_of_sync(&self) -> bool {
        matches!(self, Error::OutOfSync { .. })
    }

    /// The exception text of a [`Error::Remote`] error.
    pub fn remote_message(&self) -> Option<&str> {
        match self {
            Error::Remote { message, .. } => Some(message),
            _ => None,
        }
    }

    /// The remote backtrace of a [`Error::Remote`] error, when the peer sent one.
    pub fn remote_backtrace(&self) -> Option<&[String]> {
        match self {
            Error::Remote { backtrace, .. } => backtrace.as_deref(),
            _ => None,
        }
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
