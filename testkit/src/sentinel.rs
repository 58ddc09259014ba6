//! A private Sentinel setup: a master, its replica, and one sentinel that
//! watches them under the name [`MASTER_NAME`], for the suites that must
//! hold through Sentinel as on one server, and for failovers.
//!
//! The sentinel is the same server binary in sentinel mode (`redis-server
//! CONFIG --sentinel`, or `valkey-server`), with a configuration file of its
//! own in its temporary directory, which it rewrites as it learns. It marks
//! a master down after 1 s without an answer.

use std::thread;
use std::time::{Duration, Instant};

use crate::RedisServer;

/// The name the sentinel knows the master by.
pub const MASTER_NAME: &str = "mymaster";

/// How long the replica and the sentinel have to be ready, and a failover
/// to complete.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// A master, a replica and a sentinel that live as long as this value.
#[derive(Debug)]
pub struct RedisSentinel {
    /// The two data servers; either may be the master after a failover.
    servers: [RedisServer; 2],
    sentinel: RedisServer,
}

impl RedisSentinel {
    /// Starts the master, the replica and the sentinel, and returns once
    /// the replica is in sync. (The sentinel learns of the replica within
    /// 10 s; [`failover`](Self::failover) waits for that.) Returns `None`
    /// (after a `SKIPPED` line) when the server binary is missing; panics,
    /// with the logs, when the setup is not ready within 30 s.
    pub fn start() -> Option<RedisSentinel> {
        // No delay before a replica's sync (the default waits 5 s for more
        // replicas to join it); either server may become the master.
        let quick_sync = ["--repl-diskless-sync-delay", "0"];
        let master = RedisServer::start_with(&quick_sync)?;
        let master_port = master.port().to_string();
        let replica =
            RedisServer::start_with(&["--replicaof", "127.0.0.1", &master_port, quick_sync[0], quick_sync[1]])?;
        let sentinel = RedisServer::start_configured(Some(""), &["--sentinel"])?;
        sentinel.cli(&["SENTINEL", "MONITOR", MASTER_NAME, "127.0.0.1", &master_port, "1"]);
        for (option, value) in [("down-after-milliseconds", "1000"), ("failover-timeout", "5000")] {
            sentinel.cli(&["SENTINEL", "SET", MASTER_NAME, option, value]);
        }
        let setup = RedisSentinel {
            servers: [master, replica],
            sentinel,
        };
        setup.wait_for("the replica to sync", |setup| {
            setup.servers[1]
                .cli(&["INFO", "replication"])
                .contains("master_link_status:up")
        });
        Some(setup)
    }

    /// `redis+sentinel://127.0.0.1:PORT/mymaster`.
    pub fn url(&self) -> String {
        format!("redis+sentinel://127.0.0.1:{}/{MASTER_NAME}", self.sentinel.port())
    }

    /// The data server that is the master now, as the sentinel says.
    pub fn master(&self) -> &RedisServer {
        let port = self.master_port();
        self.servers
            .iter()
            .find(|server| server.port() == port)
            .expect("the sentinel's master is one of ours")
    }

    /// The data server that is not the master now.
    pub fn replica(&self) -> &RedisServer {
        let port = self.master_port();
        self.servers
            .iter()
            .find(|server| server.port() != port)
            .expect("one server is not the master")
    }

    /// The sentinel itself.
    pub fn sentinel(&self) -> &RedisServer {
        &self.sentinel
    }

    /// The master's port, by `SENTINEL GET-MASTER-ADDR-BY-NAME`.
    pub fn master_port(&self) -> u16 {
        let address = self.sentinel.cli(&["SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER_NAME]);
        let port = address.lines().nth(1).expect("the sentinel answers host and port");
        port.trim().parse().expect("a port")
    }

    /// Makes the replica the master (`SENTINEL FAILOVER`) and returns once
    /// the sentinel names it, it answers as a master, and the old master
    /// has become its replica. Returns the new master's port.
    pub fn failover(&self) -> u16 {
        let old = self.master_port();
        self.request_failover();
        let new = self.wait_for_new_master(old);
        self.wait_for("the old master to follow the new one", |setup| {
            setup.replica().cli(&["ROLE"]).starts_with("slave")
        });
        new
    }

    /// Waits until the sentinel has promoted a server other than the one on
    /// `old` (after a `SENTINEL FAILOVER`, or once the master was killed),
    /// and it answers as a master; returns its port.
    pub fn wait_for_new_master(&self, old: u16) -> u16 {
        self.wait_for("a new master", |setup| {
            let port = setup.master_port();
            port != old
                && setup
                    .servers
                    .iter()
                    .find(|server| server.port() == port)
                    .is_some_and(|server| server.cli(&["ROLE"]).starts_with("master"))
        });
        self.master_port()
    }

    /// Asks the sentinel to fail over (`SENTINEL FAILOVER`) until it agrees:
    /// it refuses (`NOGOODSLAVE`) until it has heard from the replica
    /// itself. Returns at once; the failover takes a few seconds.
    pub fn request_failover(&self) {
        self.wait_until_the_sentinel_knows_the_replica();
        self.wait_for("the sentinel to start a failover", |setup| {
            setup.sentinel.cli(&["SENTINEL", "FAILOVER", MASTER_NAME]).trim() == "OK"
        });
    }

    /// Waits until the sentinel has found the replica (it asks the master
    /// every 10 s), without which it cannot fail over.
    pub fn wait_until_the_sentinel_knows_the_replica(&self) {
        self.wait_for("the sentinel to find the replica", |setup| {
            setup
                .sentinel
                .cli(&["SENTINEL", "REPLICAS", MASTER_NAME])
                .contains("127.0.0.1")
        });
    }

    fn wait_for(&self, what: &str, ready: impl Fn(&RedisSentinel) -> bool) {
        let deadline = Instant::now() + READY_TIMEOUT;
        while !ready(self) {
            if Instant::now() >= deadline {
                panic!(
                    "waited {READY_TIMEOUT:?} for {what}; the sentinel's log:\n{}\nthe servers' logs:\n{}\n---\n{}",
                    self.sentinel.log(),
                    self.servers[0].log(),
                    self.servers[1].log()
                );
            }
            thread::sleep(Duration::from_millis(50));
        }
    }
}
