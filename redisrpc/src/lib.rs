//! RPC and shared state for robots and other distributed systems whose
//! processes share a Redis server.
//!
//! redisrpc speaks the RedisRPC protocol: JSON requests pushed onto a Redis
//! list (the service queue), JSON replies pushed onto a fresh per-call list
//! the caller waits on. Python, Ruby and PHP programs that speak it can call
//! Rust services and be called by Rust clients. The same code runs on a real
//! Redis server or on an embedded in-process store that needs no server.
//!
//! # A service and a client
//!
//! ```
//! use std::convert::Infallible;
//! use std::time::Duration;
//!
//! use redisrpc::backend::Memory;
//! use redisrpc::service::Methods;
//! use redisrpc::{Call, Client, Server};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> redisrpc::Result<()> {
//! // The embedded backend; `redisrpc::backend::Redis::connect("redis://…")` for a real server.
//! let backend = Memory::new();
//!
//! // A service: named methods over a shared state. Parameters are named so
//! // callers may pass arguments by position or by name.
//! let service = Methods::new(())
//!     .method("hypot", &["x", "y"], |_, (x, y): (f64, f64)| async move {
//!         Ok::<_, Infallible>(x.hypot(y))
//!     })
//!     .method("joint", &["index"], |_, (index,): (usize,)| async move {
//!         ["shoulder", "elbow", "wrist"].get(index).copied().ok_or(format!("no joint {index}"))
//!     });
//! let server = Server::new(backend.clone(), "arm", service);
//! let handle = server.handle();
//! tokio::spawn(server.run());
//!
//! // A client of the `arm` queue.
//! let arm = Client::new(backend, "arm").with_timeout(Some(Duration::from_secs(5)));
//! let h: f64 = arm.call("hypot", (3, 4)).await?;
//! assert_eq!(h, 5.0);
//! let h: f64 = arm.send(Call::new("hypot").arg(6).kwarg("y", 8)).await?;
//! assert_eq!(h, 10.0);
//!
//! // A method's error arrives as a remote error carrying its text.
//! let error = arm.call::<String>("joint", (7,)).await.unwrap_err();
//! assert_eq!(error.remote_message(), Some("no joint 7"));
//!
//! handle.shutdown();
//! # Ok(()) }
//! ```
//!
//! # Map of the crate
//!
//! * [`protocol`]: the wire format; requests and replies, encoded and decoded,
//!   tolerant of every peer's habits.
//! * [`backend`]: the store the framework runs on: the [`Backend`](backend::Backend)
//!   trait, the [`Redis`](backend::Redis) and embedded [`Memory`](backend::Memory)
//!   implementations.
//! * [`Client`] and [`Call`] (`client.rs`): calling a service, with timeouts
//!   and withdrawal of requests nobody took.
//! * [`service`]: what a server serves; [`Methods`](service::Methods) builds
//!   a service from closures, [`Args`](service::Args) binds arguments.
//! * [`Server`] (`server.rs`): serving a queue with bounded concurrency,
//!   graceful shutdown, and robustness against anything a client can push.
//! * [`state`]: shared state beside RPC: nested JSON documents addressed by
//!   paths, binary arrays in numpy's layout, publish/subscribe with live
//!   mirrors.
//! * [`Error`] (`error.rs`): the one error type.

pub mod backend;
mod client;
mod error;
pub mod protocol;
mod server;
pub mod service;
pub mod state;

pub use client::{Call, Client};
pub use error::{BoxError, Error, Result};
pub use server::{Server, ServerHandle, ServerStats};

/// The README's code blocks, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;
