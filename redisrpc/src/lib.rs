//! redisrpc (crate map written when the modules settle)

pub mod backend;
mod client;
mod error;
pub mod protocol;
mod server;
pub mod service;

pub use client::{Call, Client};
pub use error::{BoxError, Error, Result};
pub use server::{Server, ServerHandle, ServerStats};
