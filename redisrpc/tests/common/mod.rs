//! Shared support for the integration tests: run one test body on every
//! backend.
//!
//! Declare the module, then wrap the bodies in [`backend_tests!`]:
//!
//! ```ignore
//! mod common;
//!
//! use redisrpc::backend::SharedBackend;
//!
//! common::backend_tests! {
//!     /// Doc comments and other attributes are kept.
//!     async fn pushes_and_pops(backend: SharedBackend) {
//!         backend.rpush("k", &[b"v"]).await.unwrap();
//!     }
//!
//!     // A body may also return a `Result` and use `?`; an `Err` fails the test.
//!     async fn with_question_marks(backend: SharedBackend) -> anyhow::Result<()> {
//!         backend.rpush("k", &[b"v"]).await?;
//!         Ok(())
//!     }
//! }
//! ```
//!
//! Each body becomes four tests, `memory::<name>`, `redis::<name>`,
//! `cluster::<name>` and `sentinel::<name>`, each on a multi-threaded runtime
//! with two workers. The memory case runs on a fresh
//! [`Memory`](redisrpc::backend::Memory) store. The redis case starts a
//! private `redis-server` (see [`redisrpc_testkit::RedisServer`]) that lives
//! until the body returns; the cluster case a private three-master cluster
//! ([`redisrpc_testkit::RedisCluster`]), reached by a `redis+cluster://` URL;
//! the sentinel case a master, its replica and a sentinel
//! ([`redisrpc_testkit::RedisSentinel`]), reached by a `redis+sentinel://`
//! URL. They are ignored, and counted so in the summary, when no
//! `redis-server` was installed when the tests were built. Filter with
//! `cargo test memory::`, `redis::`, `cluster::` or `sentinel::`.
//!
//! Tests that need more than one backend handle, or the server itself (to
//! connect twice, restart it, read its log), call [`memory_backend`] and
//! [`redis_backend`] directly.

// Each test binary uses its own part of this module.
#![allow(dead_code, unused_macros, unused_imports)]

use std::fmt::Debug;

pub(crate) mod spans;

use redisrpc::backend::{IntoBackend, Memory, Redis, SharedBackend};
use redisrpc::{Server, ServerHandle, ServerStats};
use redisrpc_testkit::RedisServer;
use tokio::task::JoinHandle;

/// Runs `server` on a task of its own; returns its handle and the task.
pub(crate) fn start(server: Server) -> (ServerHandle, JoinHandle<redisrpc::Result<ServerStats>>) {
    let handle = server.handle();
    (handle, tokio::spawn(server.run()))
}

/// Shuts a server started by [`start`] down and returns its counters;
/// fails the test if it takes more than 10 s.
pub(crate) async fn stop(handle: ServerHandle, running: JoinHandle<redisrpc::Result<ServerStats>>) -> ServerStats {
    handle.shutdown();
    tokio::time::timeout(std::time::Duration::from_secs(10), running)
        .await
        .expect("the server stops within 10 s")
        .expect("the server task does not panic")
        .expect("the server returns its stats")
}

/// A fresh in-process store.
pub(crate) fn memory_backend() -> SharedBackend {
    Memory::new().into_backend()
}

/// A private Redis server and a backend connected to it; `None` (the testkit
/// has printed a SKIPPED line) when `redis-server` is not installed. Keep the
/// server alive as long as the backend is used.
pub(crate) async fn redis_backend() -> Option<(RedisServer, SharedBackend)> {
    let server = RedisServer::start()?;
    let backend = Redis::connect(&server.url())
        .await
        .unwrap_or_else(|err| panic!("cannot connect to {}: {err}\n{}", server.url(), server.log()))
        .into_backend();
    Some((server, backend))
}

/// A private three-master cluster and a backend connected to it through a
/// `redis+cluster://` URL; `None` when `redis-server` is not installed.
pub(crate) async fn cluster_backend() -> Option<(redisrpc_testkit::RedisCluster, SharedBackend)> {
    let cluster = redisrpc_testkit::RedisCluster::start()?;
    let backend = Redis::connect(&cluster.url())
        .await
        .unwrap_or_else(|err| panic!("cannot connect to {}: {err}", cluster.url()))
        .into_backend();
    Some((cluster, backend))
}

/// A private master, replica and sentinel, and a backend connected through
/// a `redis+sentinel://` URL; `None` when `redis-server` is not installed.
pub(crate) async fn sentinel_backend() -> Option<(redisrpc_testkit::RedisSentinel, SharedBackend)> {
    let setup = redisrpc_testkit::RedisSentinel::start()?;
    let backend = Redis::connect(&setup.url())
        .await
        .unwrap_or_else(|err| panic!("cannot connect to {}: {err}", setup.url()))
        .into_backend();
    Some((setup, backend))
}

/// A connection of the test's own to `server`, for the commands an operator
/// or another program would send (`CLIENT KILL`, `FLUSHALL`, `HSET` …).
pub(crate) async fn admin(server: &RedisServer) -> ::redis::aio::MultiplexedConnection {
    ::redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap_or_else(|err| panic!("cannot connect to {}: {err}", server.url()))
}

/// Kills every client connection of `kind` (`normal`, `pubsub`) but
/// `admin`'s own, as an operator or a restart would; returns how many.
pub(crate) async fn kill_clients(admin: &mut ::redis::aio::MultiplexedConnection, kind: &str) -> i64 {
    ::redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg(kind)
        .arg("SKIPME")
        .arg("yes")
        .query_async(admin)
        .await
        .unwrap()
}

/// What a test body may return: nothing, or a `Result` whose `Err` fails the
/// test.
pub(crate) trait Outcome {
    /// Panics on failure.
    fn check(self);
}

impl Outcome for () {
    fn check(self) {}
}

impl<E: Debug> Outcome for Result<(), E> {
    fn check(self) {
        if let Err(err) = self {
            panic!("test body failed: {err:?}");
        }
    }
}

/// Turns each `async fn name(backend: SharedBackend) [-> R] { body }` into
/// the tests `memory::name` and `redis::name`. See the module docs.
macro_rules! backend_tests {
    ($(
        $(#[$attr:meta])*
        async fn $name:ident($backend:ident : $backend_ty:ty $(,)?) $(-> $ret:ty)? $body:block
    )*) => {
        $(
            $(#[$attr])*
            async fn $name($backend: $backend_ty) $(-> $ret)? $body
        )*

        mod memory {
            $(
                #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let backend = $crate::common::memory_backend();
                    $crate::common::Outcome::check(super::$name(backend).await);
                }
            )*
        }

        mod redis {
            $(
                #[::redisrpc_testkit::needs(redis)]
                #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some((server, backend)) = $crate::common::redis_backend().await else {
                        return;
                    };
                    $crate::common::Outcome::check(super::$name(backend).await);
                    drop(server);
                }
            )*
        }

        mod cluster {
            $(
                #[::redisrpc_testkit::needs(redis)]
                #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some((cluster, backend)) = $crate::common::cluster_backend().await else {
                        return;
                    };
                    $crate::common::Outcome::check(super::$name(backend).await);
                    drop(cluster);
                }
            )*
        }

        mod sentinel {
            $(
                #[::redisrpc_testkit::needs(redis)]
                #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some((setup, backend)) = $crate::common::sentinel_backend().await else {
                        return;
                    };
                    $crate::common::Outcome::check(super::$name(backend).await);
                    drop(setup);
                }
            )*
        }
    };
}

pub(crate) use backend_tests;
