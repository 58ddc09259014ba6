//! RPC and shared state for robots and other distributed systems whose
//! processes share a Redis server.
//!
//! redisrpc speaks the RedisRPC protocol: JSON requests pushed onto a Redis
//! list (the service queue), JSON replies pushed onto a fresh per-call list
//! the caller waits on. Python, Ruby and PHP programs that speak it can call
//! Rust services and be called by Rust clients. The same code runs on a real
//! Redis server or on an embedded in-process store that needs no server.
//!
//! # Tutorial
//!
//! Declare the service as a trait and mark it `#[redisrpc::rpc]`:
//!
//! ```
//! # use std::sync::Mutex;
//! # use std::time::Duration;
//! # use redisrpc::{Call, Server};
//! # use redisrpc::backend::Memory;
//! /// A robot arm.
//! #[redisrpc::rpc]
//! pub trait Arm {
//!     /// Moves `joint` to `angle` radians and returns where it ended up.
//!     async fn move_joint(&self, joint: String, angle: f64) -> Result<f64, String>;
//!     /// Every joint's angle, in the order of `joints`.
//!     fn angles(&self, joints: Vec<String>) -> Vec<Option<f64>>;
//! }
//! #
//! # struct SimulatedArm { angles: Mutex<std::collections::HashMap<String, f64>> }
//! #
//! # impl Arm for SimulatedArm {
//! #     async fn move_joint(&self, joint: String, angle: f64) -> Result<f64, String> {
//! #         if !["shoulder", "elbow", "wrist"].contains(&joint.as_str()) {
//! #             return Err(format!("no joint called {joint}"));
//! #         }
//! #         self.angles.lock().unwrap().insert(joint, angle.clamp(-3.0, 3.0));
//! #         Ok(angle.clamp(-3.0, 3.0))
//! #     }
//! #     fn angles(&self, joints: Vec<String>) -> Vec<Option<f64>> {
//! #         let angles = self.angles.lock().unwrap();
//! #         joints.iter().map(|joint| angles.get(joint).copied()).collect()
//! #     }
//! # }
//! #
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> redisrpc::Result<()> {
//! # let backend = Memory::new();
//! # let server = Server::new(backend.clone(), "arm", ArmServer::new(SimulatedArm { angles: Mutex::default() }));
//! # let handle = server.handle();
//! # tokio::spawn(server.run());
//! # let arm = ArmClient::new(backend, "arm").with_timeout(Some(Duration::from_secs(5)));
//! # assert_eq!(arm.move_joint("elbow".into(), 0.5).await?, 0.5);
//! # assert_eq!(arm.angles(vec!["elbow".into(), "wrist".into()]).await?, [Some(0.5), None]);
//! # handle.shutdown();
//! # Ok(()) }
//! ```
//!
//! Implement it as usual. Calls run concurrently, so methods take `&self`
//! and keep their state behind a lock:
//!
//! ```
//! # use std::collections::HashMap;
//! # use std::sync::Mutex;
//! # #[redisrpc::rpc]
//! # pub trait Arm {
//! #     async fn move_joint(&self, joint: String, angle: f64) -> Result<f64, String>;
//! #     fn angles(&self, joints: Vec<String>) -> Vec<Option<f64>>;
//! # }
//! #[derive(Default)]
//! struct SimulatedArm {
//!     angles: Mutex<HashMap<String, f64>>,
//! }
//!
//! impl Arm for SimulatedArm {
//!     async fn move_joint(&self, joint: String, angle: f64) -> Result<f64, String> {
//!         if !["shoulder", "elbow", "wrist"].contains(&joint.as_str()) {
//!             return Err(format!("no joint called {joint}"));
//!         }
//!         let reached = angle.clamp(-3.0, 3.0);
//!         self.angles.lock().unwrap().insert(joint, reached);
//!         Ok(reached)
//!     }
//!
//!     fn angles(&self, joints: Vec<String>) -> Vec<Option<f64>> {
//!         let angles = self.angles.lock().unwrap();
//!         joints.iter().map(|joint| angles.get(joint).copied()).collect()
//!     }
//! }
//! ```
//!
//! Serve it on a queue, and call it through the generated typed client, or
//! by name with the dynamic [`Client`], as a Python, Ruby or PHP program
//! would:
//!
//! ```
//! # use std::collections::HashMap;
//! # use std::sync::Mutex;
//! # #[redisrpc::rpc]
//! # pub trait Arm {
//! #     async fn move_joint(&self, joint: String, angle: f64) -> Result<f64, String>;
//! #     fn angles(&self, joints: Vec<String>) -> Vec<Option<f64>>;
//! # }
//! # #[derive(Default)]
//! # struct SimulatedArm { angles: Mutex<HashMap<String, f64>> }
//! # impl Arm for SimulatedArm {
//! #     async fn move_joint(&self, joint: String, angle: f64) -> Result<f64, String> {
//! #         if !["shoulder", "elbow", "wrist"].contains(&joint.as_str()) {
//! #             return Err(format!("no joint called {joint}"));
//! #         }
//! #         let reached = angle.clamp(-3.0, 3.0);
//! #         self.angles.lock().unwrap().insert(joint, reached);
//! #         Ok(reached)
//! #     }
//! #     fn angles(&self, joints: Vec<String>) -> Vec<Option<f64>> {
//! #         let angles = self.angles.lock().unwrap();
//! #         joints.iter().map(|joint| angles.get(joint).copied()).collect()
//! #     }
//! # }
//! use std::time::Duration;
//!
//! use redisrpc::backend::Memory;
//! use redisrpc::describe::{DESCRIBE_METHOD, ServiceDescription};
//! use redisrpc::{Call, Server};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> redisrpc::Result<()> {
//! // The embedded backend; `redisrpc::backend::Redis::connect("redis://…").await?` for a real server.
//! let backend = Memory::new();
//!
//! let server = Server::new(backend.clone(), "arm", ArmServer::new(SimulatedArm::default()));
//! let handle = server.handle();
//! tokio::spawn(server.run());
//!
//! // The typed client: same methods, each returning a `redisrpc::Result`.
//! let arm = ArmClient::new(backend, "arm").with_timeout(Some(Duration::from_secs(5)));
//! assert_eq!(arm.move_joint("elbow".into(), 0.5).await?, 0.5);
//! assert_eq!(arm.angles(vec!["elbow".into(), "wrist".into()]).await?, [Some(0.5), None]);
//!
//! // A method's `Err` arrives as a remote error carrying its text.
//! let error = arm.move_joint("tail".into(), 1.0).await.unwrap_err();
//! assert_eq!(error.remote_message(), Some("no joint called tail"));
//!
//! // By name, with named arguments, as Python's `arm.call('move_joint', joint='wrist', angle=9)`.
//! let call = Call::new("move_joint").kwarg("joint", "wrist").kwarg("angle", 9);
//! let reached: f64 = arm.client().send(call).await?;
//! assert_eq!(reached, 3.0);
//!
//! // Every server describes what it serves.
//! let described: ServiceDescription = arm.client().call(DESCRIBE_METHOD, ()).await?;
//! assert_eq!(described.method("move_joint").unwrap().params[1].name, "angle");
//!
//! handle.shutdown();
//! # Ok(()) }
//! ```
//!
//! [`rpc`] lists what the attribute accepts and generates.
//!
//! # Without the attribute
//!
//! [`Methods`](service::Methods) builds a service from closures at run time,
//! and [`Client::call`] calls any method of any peer by name:
//!
//! ```
//! use std::convert::Infallible;
//! use std::time::Duration;
//!
//! use redisrpc::backend::Memory;
//! use redisrpc::service::Methods;
//! use redisrpc::{Client, Server};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> redisrpc::Result<()> {
//! let backend = Memory::new();
//! let service = Methods::new(()).method("hypot", &["x", "y"], |_, (x, y): (f64, f64)| async move {
//!     Ok::<_, Infallible>(x.hypot(y))
//! });
//! let server = Server::new(backend.clone(), "geometry", service);
//! let handle = server.handle();
//! tokio::spawn(server.run());
//!
//! let geometry = Client::new(backend, "geometry").with_timeout(Some(Duration::from_secs(5)));
//! let h: f64 = geometry.call("hypot", (3, 4)).await?;
//! assert_eq!(h, 5.0);
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
//! * [`rpc`]: the attribute that turns a trait into a typed client and a
//!   server adapter (crate `redisrpc-macros`).
//! * [`service`]: what a server serves; [`Methods`](service::Methods) builds
//!   a service from closures, [`Args`](service::Args) binds arguments.
//! * [`describe`]: services' descriptions, answered to `rpc.describe` and
//!   registered by `#[rpc]`.
//! * [`Server`] (`server/`): serving a queue with bounded concurrency,
//!   graceful shutdown, robustness against anything a client can push, and
//!   replies of calls that end together pushed together.
//! * [`state`]: shared state beside RPC: nested JSON documents addressed by
//!   paths, binary arrays in numpy's layout, publish/subscribe with live
//!   mirrors.
//! * [`layout`]: the names of everything kept in Redis (queues, reply
//!   queues, documents, binary values, channels), made in one place.
//! * [`Error`] (`error.rs`): the one error type.

pub mod acl;
pub mod backend;
mod backoff;
pub mod blocking;
mod client;
pub mod describe;
mod error;
pub mod layout;
pub mod protocol;
mod server;
pub mod service;
pub mod state;
pub mod telemetry;
mod throttle;

pub use client::{Call, Client, DEFAULT_TIMEOUT, TIMEOUT_MARGIN};
pub use error::{BoxError, Error, Result};
#[doc = include_str!("rpc_attribute.md")]
pub use redisrpc_macros::rpc;
/// The per-method figures servers put in their liveness records.
pub use server::metrics;
pub use server::{
    Cancellation, DEFAULT_MAX_DELIVERIES, DEFAULT_MAX_REQUEST_SIZE, Delivery, Server, ServerHandle, ServerStats,
};

/// What code generated by `#[rpc]` uses, so that it needs no dependency of
/// its own. Not public API: it follows the versions of the crates inside.
#[doc(hidden)]
pub mod __private {
    pub use inventory;

    pub use crate::describe::Shapes;
}

/// The README's code blocks, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;
