//! Following the master that the sentinels name, through failovers.
//!
//! The `redis` crate looks a master up once; its connections then stay with
//! that server, which after a failover is dead or a replica answering
//! `READONLY`. A [`Follower`] asks the sentinels again when a command says
//! the master moved (`READONLY`, `UNBLOCKED`, a lost connection) and, in
//! case nothing is sent for a while, once a second in the background. When
//! the answer is a new server, confirmed by its own `ROLE`, the shared
//! connection is replaced; dedicated and pub/sub connections pick the new
//! master up as they reconnect.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock, Weak};
use std::time::Duration;

use futures::future::BoxFuture;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncConnectionConfig, Client, ConnectionInfo, RedisError, RedisResult, ServerErrorKind, Value};

use super::topology::{Node, NodeFactory, means_master_moved};
use super::{connect_error, tcp_settings};
use crate::{Error, Result};

/// How often the sentinels are asked while nothing fails.
const WATCH_INTERVAL: Duration = Duration::from_secs(1);

/// How long a command refused with `READONLY` (so not run) waits for the
/// sentinels to name a new master, asking every [`LOOK_AGAIN_AFTER`], before
/// the refusal is reported. A failover takes a few seconds.
const FOLLOW_PATIENCE: Duration = Duration::from_secs(10);
const LOOK_AGAIN_AFTER: Duration = Duration::from_millis(100);

/// The master now, and the shared connection to it.
#[derive(Clone)]
pub(super) struct Master {
    pub(super) node: Node,
    pub(super) manager: ConnectionManager,
    /// Counts the masters followed, so a caller can tell whether the
    /// master changed since it looked.
    pub(super) generation: u64,
}

pub(super) struct Follower {
    sentinels: Vec<ConnectionInfo>,
    master_name: String,
    factory: NodeFactory,
    /// Shared, so that reading it per command costs a reference count.
    current: RwLock<Arc<Master>>,
    /// One lookup at a time.
    looking: AtomicBool,
    following: tokio::sync::Mutex<()>,
}

impl Follower {
    /// Finds the master and connects to it; watches the sentinels from then
    /// on, for as long as the follower lives.
    pub(super) async fn connect(
        sentinels: Vec<ConnectionInfo>,
        master_name: String,
        factory: NodeFactory,
    ) -> Result<Arc<Follower>> {
        let node = lookup(&sentinels, &master_name, &factory).await?;
        let manager = manager_for(&node, &factory).await?;
        let follower = Arc::new(Follower {
            sentinels,
            master_name,
            factory,
            current: RwLock::new(Arc::new(Master {
                node,
                manager,
                generation: 0,
            })),
            looking: AtomicBool::new(false),
            following: tokio::sync::Mutex::new(()),
        });
        tokio::spawn(watch(Arc::downgrade(&follower)));
        Ok(follower)
    }

    pub(super) fn master(&self) -> Arc<Master> {
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Asks the sentinels again, in the background, when `failed` (a
    /// node's `host:port`) is still the master we know.
    pub(super) fn look_again(self: &Arc<Self>, failed: &str) {
        if self.master().node.id != failed || self.looking.swap(true, Ordering::SeqCst) {
            return;
        }
        let follower = Arc::clone(self);
        tokio::spawn(async move {
            if let Err(error) = follower.follow().await {
                tracing::debug!(%error, "the sentinels named no reachable master yet");
            }
            follower.looking.store(false, Ordering::SeqCst);
        });
    }

    /// Moves to the master the sentinels name, when it is another server.
    async fn follow(&self) -> Result<()> {
        let _one_at_a_time = self.following.lock().await;
        let node = lookup(&self.sentinels, &self.master_name, &self.factory).await?;
        let known = self.master();
        if node.id == known.node.id {
            return Ok(());
        }
        let manager = manager_for(&node, &self.factory).await?;
        tracing::info!(from = %known.node.id, to = %node.id, master = %self.master_name, "following the new master");
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(Master {
            node,
            manager,
            generation: known.generation + 1,
        });
        Ok(())
    }

    /// Runs a command or a pipeline (`send`) on the master; when the
    /// server refuses it as no longer the master (`READONLY`), follows the
    /// new one and runs it there. Other failures are reported as they are
    /// (a lost connection may have run the command), and make the sentinels
    /// be asked again.
    pub(super) async fn run<'a, T>(
        self: &Arc<Self>,
        send: impl Fn(ConnectionManager) -> BoxFuture<'a, RedisResult<T>>,
    ) -> RedisResult<T> {
        let mut master = self.master();
        let patience = tokio::time::Instant::now() + FOLLOW_PATIENCE;
        loop {
            match send(master.manager.clone()).await {
                // Refused, so it did not run: safe to send again, once the
                // sentinels name the new master (they may still be
                // promoting it).
                Err(error) if matches!(error.kind(), redis::ErrorKind::Server(ServerErrorKind::ReadOnly)) => {
                    if let Err(lookup) = self.follow().await {
                        tracing::debug!(error = %lookup, "the sentinels named no reachable master yet");
                    }
                    let now = self.master();
                    if now.generation == master.generation {
                        if tokio::time::Instant::now() >= patience {
                            return Err(error);
                        }
                        tokio::time::sleep(LOOK_AGAIN_AFTER).await;
                    }
                    master = now;
                }
                Err(error) => {
                    if means_master_moved(&error) {
                        self.look_again(&master.node.id);
                    }
                    return Err(error);
                }
                Ok(value) => return Ok(value),
            }
        }
    }
}

/// Asks the sentinels every [`WATCH_INTERVAL`] until the follower is gone.
async fn watch(follower: Weak<Follower>) {
    loop {
        tokio::time::sleep(WATCH_INTERVAL).await;
        let Some(follower) = follower.upgrade() else { return };
        if let Err(error) = follower.follow().await {
            tracing::debug!(%error, "cannot ask the sentinels for the master");
        }
    }
}

/// The master the first answering sentinel names, once that server
/// confirms it is a master.
async fn lookup(sentinels: &[ConnectionInfo], master_name: &str, factory: &NodeFactory) -> Result<Node> {
    let options = factory.options();
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(options.connect_timeout))
        .set_response_timeout(Some(options.connect_timeout));
    let mut reasons = Vec::new();
    for sentinel in sentinels {
        let asked = async {
            let client = Client::open(sentinel.clone().set_tcp_settings(tcp_settings()))?;
            let mut connection = client.get_multiplexed_async_connection_with_config(&config).await?;
            redis::cmd("SENTINEL")
                .arg("GET-MASTER-ADDR-BY-NAME")
                .arg(master_name)
                .query_async::<Option<(String, u16)>>(&mut connection)
                .await
        };
        let (host, port) = match asked.await {
            Ok(Some(address)) => address,
            Ok(None) => {
                reasons.push(format!("{}: no master named `{master_name}`", sentinel.addr()));
                continue;
            }
            Err(error) => {
                reasons.push(format!("{}: {error}", sentinel.addr()));
                continue;
            }
        };
        let node = factory.node(&host, port)?;
        let role = async {
            let mut connection = node
                .client
                .get_multiplexed_async_connection_with_config(&config)
                .await?;
            let role: Vec<Value> = redis::cmd("ROLE").query_async(&mut connection).await?;
            Ok::<_, RedisError>(matches!(role.first(), Some(Value::BulkString(role)) if role == b"master"))
        };
        match role.await {
            Ok(true) => return Ok(node),
            Ok(false) => reasons.push(format!("{}: {} is not a master (yet)", sentinel.addr(), node.id)),
            Err(error) => reasons.push(format!("{}: {}: {error}", sentinel.addr(), node.id)),
        }
    }
    Err(Error::Connection {
        source: format!(
            "no sentinel named a reachable master `{master_name}`: {}",
            reasons.join("; ")
        )
        .into(),
    })
}

async fn manager_for(node: &Node, factory: &NodeFactory) -> Result<ConnectionManager> {
    let options = factory.options();
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(options.connect_timeout))
        .set_response_timeout(options.command_timeout);
    ConnectionManager::new_with_config(node.client.clone(), config)
        .await
        .map_err(connect_error)
}
