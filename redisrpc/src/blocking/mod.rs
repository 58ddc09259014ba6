//! The API for plain threads: a robot's 100 Hz control loop, a script, a
//! test, with no async runtime of their own.
//!
//! Each type mirrors its async twin and takes the same options:
//! [`Client`], [`State`] (with [`Mirror`] and [`Updates`]) and [`Server`].
//! `#[rpc]` also generates a blocking typed client, `<Trait>BlockingClient`.
//!
//! ```
//! use redisrpc::backend::Memory;
//! use redisrpc::blocking::{Client, State};
//!
//! # fn main() -> redisrpc::Result<()> {
//! let backend = Memory::new();
//! let state = State::new(backend.clone());
//! state.set("robot.arm.angle", &0.5)?;
//! assert_eq!(state.get::<f64>("robot.arm.angle")?, 0.5);
//! # Ok(())
//! # }
//! ```
//!
//! # How it works
//!
//! A [`Client`]'s call runs on the calling thread, through connections of
//! that thread's own, so that nothing else is woken while it waits: a
//! blocking call costs what the same call costs from async code (the
//! README has the figures). Each thread that calls gets a single-threaded
//! runtime and, on Redis, two connections per server, made at its first
//! call and closed when the thread ends.
//!
//! Everything else ([`State`], [`Mirror`], [`Updates`], [`Server`], and
//! what must go on after a call, such as telling the servers it was given
//! up) runs on one process-wide Tokio runtime of two worker threads,
//! started on first use ([`runtime`]): a blocking method waits on the
//! calling thread (`block_on`) while the workers drive the connections,
//! timers and the tasks a server spawns, so mirrors stay current between
//! calls and any number of threads may wait at once. Redis backends for
//! blocking use are made on that runtime: [`connect`].
//!
//! # Inside an async runtime
//!
//! A blocking method called where a Tokio runtime is current (an `async
//! fn`, a Tokio worker, `spawn_blocking`) would stall that runtime's
//! thread, and with it every task that thread was to run, possibly the
//! very task the call waits for (a backend connected there keeps its
//! connections on that runtime). It returns
//! [`Error::Config`] at once instead, saying so: use
//! the async API there, or run the blocking code on a thread of its own
//! (`std::thread::spawn`).

mod client;
mod here;
mod server;
mod state;

use std::future::Future;
use std::sync::OnceLock;

pub use self::client::Client;
pub use self::server::Server;
pub use self::state::{Mirror, State, Updates};
use crate::backend::{IntoBackend, Redis, RedisOptions, SharedBackend};
use crate::{Error, Result};

/// The runtime that blocking calls run on: two worker threads, named
/// `redisrpc-blocking`, started on first use and kept for the life of the
/// process.
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("redisrpc-blocking")
            .enable_all()
            .build()
            .expect("the blocking API's runtime starts (it needs two threads and an I/O driver)")
    })
}

/// Runs `future` to its end on the calling thread, with [`runtime`]
/// driving everything it waits on. `what` names the operation for the
/// error it returns when called inside an async runtime (see the module
/// docs).
pub(crate) fn wait<T>(what: &str, future: impl Future<Output = Result<T>>) -> Result<T> {
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(inside_a_runtime(what));
    }
    runtime().block_on(future)
}

pub(crate) fn inside_a_runtime(what: &str) -> Error {
    Error::Config(format!(
        "redisrpc::blocking: `{what}` was called from inside an async runtime, whose thread it would stall; \
         use the async API there, or call it from a thread of its own (std::thread::spawn)"
    ))
}

/// Connects to the Redis at `url` (any URL [`Redis::connect`] takes) for
/// blocking use: the backend's connections live on [`runtime`].
pub fn connect(url: &str) -> Result<SharedBackend> {
    connect_with(url, RedisOptions::default())
}

/// [`connect`] with options.
pub fn connect_with(url: &str, options: RedisOptions) -> Result<SharedBackend> {
    wait("connect", async {
        Ok(Redis::connect_with(url, options).await?.into_backend())
    })
}
