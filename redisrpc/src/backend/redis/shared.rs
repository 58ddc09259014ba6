//! The shared connection for non-blocking commands, whatever the servers
//! are: one server's auto-reconnecting `ConnectionManager`, the cluster
//! client (which routes each command to the node of its first key and
//! follows `MOVED` and `ASK`, over the node connections of `redirect.rs`),
//! or the master a [`Follower`] follows. A transaction the cluster aborted
//! with redirects is sent again where they point.
//!
//! It is a `ConnectionLike` like each of them, so the code that sends
//! commands, scripts and pipelines does not know which it talks to.

use std::sync::Arc;

use redis::aio::{ConnectionLike, ConnectionManager};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
use redis::{Cmd, Pipeline, RedisFuture, RedisResult, Value};

use super::redirect::{self, NodeConnection};
use super::sentinel::Follower;

#[derive(Clone)]
pub(super) enum Shared {
    Single(ConnectionManager),
    Cluster(ClusterConnection<NodeConnection>),
    Sentinel(Arc<Follower>),
}

impl Shared {
    /// Runs a command that names no key (`TIME`) on the node that owns
    /// `slot` in a cluster, or on the one server.
    pub(super) async fn on_slot(&self, cmd: &Cmd, slot: u16) -> RedisResult<Value> {
        match self {
            Shared::Cluster(cluster) => {
                let route =
                    RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(Route::new(slot, SlotAddr::Master)));
                cluster.clone().route_command(cmd.clone(), route).await
            }
            other => cmd.query_async(&mut other.clone()).await,
        }
    }
}

impl ConnectionLike for Shared {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Shared::Single(manager) => manager.req_packed_command(cmd),
            Shared::Cluster(cluster) => cluster.req_packed_command(cmd),
            Shared::Sentinel(follower) => {
                let follower = Arc::clone(follower);
                Box::pin(async move {
                    follower
                        .run(|mut manager| Box::pin(async move { manager.req_packed_command(cmd).await }))
                        .await
                })
            }
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Shared::Single(manager) => manager.req_packed_commands(pipeline, offset, count),
            Shared::Cluster(cluster) => Box::pin(async move {
                match cluster.req_packed_commands(pipeline, offset, count).await {
                    Err(error) if pipeline.is_transaction() => {
                        redirect::transaction(cluster, pipeline, offset, count, error).await
                    }
                    replies => replies,
                }
            }),
            Shared::Sentinel(follower) => {
                let follower = Arc::clone(follower);
                Box::pin(async move {
                    follower
                        .run(|mut manager| {
                            Box::pin(async move { manager.req_packed_commands(pipeline, offset, count).await })
                        })
                        .await
                })
            }
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Shared::Single(manager) => manager.get_db(),
            Shared::Cluster(cluster) => cluster.get_db(),
            Shared::Sentinel(follower) => follower.master().manager.get_db(),
        }
    }
}
