//! The harness of the interop tests: redisrpc against Python and Ruby
//! RedisRPC peers over a real, private Redis.
//!
//! Users run our services next to Python and Ruby programs that speak
//! RedisRPC, so the only convincing test is a real conversation with such
//! programs. The peers live beside this crate (`python/`, `ruby/`), written
//! from the protocol with the original peers' wire habits; the tests in
//! `tests/` run each cell of the matrix: our client against the Python and
//! Ruby servers, the Python and Ruby clients against our server.
//!
//! * [`peer`]: finding an interpreter with its Redis library (or skipping
//!   loudly), running a peer server as a child process, and running a peer
//!   client over a script of calls.
//! * [`rust_side`]: our server in-process on its own runtime, our client,
//!   and running a script through our client.
//! * [`script`]: calls with the outcome each must have, shared by every
//!   cell so each client and server is held to the same cases.
//! * [`cases`]: the scripts themselves: the calculator, the inventory, and
//!   values that must round-trip exactly.
//! * [`eventually`]: waiting for what the queues show from outside
//!   (read with [`RedisServer::cli`]).

pub mod cases;
pub mod peer;
pub mod rust_side;
pub mod script;

use std::thread;
use std::time::{Duration, Instant};

use redisrpc_testkit::RedisServer;

pub use peer::{Peer, PeerServer};
pub use rust_side::{RustServer, rust_client};
pub use script::{Expect, Outcome, Step, check};

/// Starts a private Redis for a test that needs `peer`, or returns `None`
/// after printing why the test is skipped (the peer or redis-server is not
/// installed). See [`Peer::available`] and [`RedisServer::start`].
pub fn redis_for(peer: Peer) -> Option<RedisServer> {
    if !peer.available() {
        return None;
    }
    RedisServer::start()
}

/// Polls `condition` every few milliseconds until it holds; panics naming
/// `what` after 10 seconds.
pub fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        thread::sleep(Duration::from_millis(5));
    }
}
