//! How a command ends when it fails: a message for stderr and the exit code
//! that tells scripts what happened.
//!
//! | code | meaning |
//! | --- | --- |
//! | 0 | ok |
//! | 1 | the remote method failed (its text goes to stderr) |
//! | 2 | bad usage (clap's own) |
//! | 3 | timed out |
//! | 4 | could not reach Redis, or lost the connection (the message says whether the call may still run) |
//! | 5 | not found: a missing path, or a server without `rpc.describe` |

use std::fmt;
use std::process::ExitCode;

/// A failed command.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) code: u8,
    pub(crate) message: String,
}

pub(crate) const REMOTE: u8 = 1;
pub(crate) const USAGE: u8 = 2;
pub(crate) const TIMEOUT: u8 = 3;
pub(crate) const CONNECTION: u8 = 4;
pub(crate) const NOT_FOUND: u8 = 5;

impl Failure {
    pub(crate) fn new(code: u8, message: impl Into<String>) -> Failure {
        Failure {
            code,
            message: message.into(),
        }
    }

    pub(crate) fn exit_code(&self) -> ExitCode {
        ExitCode::from(self.code)
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<redisrpc::Error> for Failure {
    fn from(error: redisrpc::Error) -> Failure {
        let code = if error.is_remote() {
            REMOTE
        } else if error.is_timeout() {
            TIMEOUT
        } else if error.is_connection() {
            CONNECTION
        } else if error.is_not_found() {
            NOT_FOUND
        } else {
            REMOTE
        };
        let message = match &error {
            redisrpc::Error::Remote { message, .. } => message.clone(),
            other => other.to_string(),
        };
        Failure::new(code, message)
    }
}

impl From<redis::RedisError> for Failure {
    fn from(error: redis::RedisError) -> Failure {
        Failure::new(CONNECTION, format!("Redis: {error}"))
    }
}

/// A result of a command.
pub(crate) type Outcome<T = ()> = Result<T, Failure>;
