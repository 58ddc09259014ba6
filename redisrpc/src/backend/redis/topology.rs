//! Which server each connection goes to: the one server, the cluster node
//! that owns a key's slot, or the master the sentinels name now.
//!
//! The shared connection routes itself (the cluster client follows `MOVED`
//! and `ASK`; see `shared.rs` for Sentinel). What this module routes is
//! what the backend connects by hand:
//!
//! - **dedicated connections for blocking pops,** which must wait on the
//!   node that owns the queue. In a cluster the owner of a slot is learned
//!   from the `MOVED` replies of pops sent elsewhere (a pop starts at any
//!   node and is redirected at most a few times), so no slot map is read
//!   or kept up to date: the cluster itself says where a key went;
//! - **control connections,** one per node, for what must reach the node
//!   of a given connection: `CLIENT UNBLOCK` of a cancelled pop, and `TIME`
//!   for that node's clock;
//! - **pub/sub connections:** classic pub/sub reaches every node of a
//!   cluster, so a subscription may use any node, and moves to the next
//!   when its node fails.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, ConnectionAddr, ConnectionInfo, RedisError, RedisResult, ServerErrorKind};

use super::sentinel::Follower;
use super::slot;
use super::{RedisOptions, connect_error, tcp_settings};
use crate::Result;

/// A server, by its `host:port`, and a client that connects to it.
#[derive(Clone)]
pub(super) struct Node {
    pub(super) id: String,
    pub(super) client: Client,
}

/// Makes clients for nodes learned at run time (from `MOVED`, from the
/// sentinels) with the settings of the URL: credentials, database, TLS.
#[derive(Clone)]
pub(super) struct NodeFactory {
    template: ConnectionInfo,
    options: RedisOptions,
}

impl NodeFactory {
    pub(super) fn new(template: ConnectionInfo, options: RedisOptions) -> NodeFactory {
        NodeFactory { template, options }
    }

    /// A client for the node at `host:port`, over TLS when the template is.
    pub(super) fn node(&self, host: &str, port: u16) -> Result<Node> {
        let addr = match self.template.addr() {
            ConnectionAddr::TcpTls { insecure, .. } => ConnectionAddr::TcpTls {
                host: host.to_owned(),
                port,
                insecure: *insecure,
                tls_params: None,
            },
            _ => ConnectionAddr::Tcp(host.to_owned(), port),
        };
        let info = self.template.clone().set_addr(addr).set_tcp_settings(tcp_settings());
        let client = super::client_for(info, &self.options).map_err(connect_error)?;
        Ok(Node {
            id: format!("{host}:{port}"),
            client,
        })
    }

    /// [`node`](Self::node) from `host:port`.
    pub(super) fn node_at(&self, id: &str) -> Result<Node> {
        let (host, port) =
            split_address(id).ok_or_else(|| crate::Error::Config(format!("a node address without a port: {id}")))?;
        self.node(host, port)
    }

    pub(super) fn options(&self) -> &RedisOptions {
        &self.options
    }
}

/// `host:port` (the host may be an IPv6 address with colons of its own).
pub(super) fn split_address(address: &str) -> Option<(&str, u16)> {
    let (host, port) = address.rsplit_once(':')?;
    Some((host.trim_start_matches('[').trim_end_matches(']'), port.parse().ok()?))
}

/// Where a blocking pop was told to go instead.
pub(super) enum Redirect {
    /// The slot lives on this node now: remembered, and the pop goes there.
    Moved(String),
    /// The key is being moved to this node: this one pop goes there, after
    /// `ASKING`.
    Ask(String),
}

/// The `MOVED` or `ASK` in `error`, which may be a pipeline's (the pop of a
/// take is pipelined with its script), where the crate keeps no address.
pub(super) fn redirect_of(error: &RedisError) -> Option<Redirect> {
    let kind = match error.kind() {
        redis::ErrorKind::Server(ServerErrorKind::Moved) => "MOVED",
        redis::ErrorKind::Server(ServerErrorKind::Ask) => "ASK",
        _ => return None,
    };
    let address = match error.redirect_node() {
        Some((address, _slot)) => address.to_owned(),
        // A pipeline's error reads `Pipeline failures: [(Index 0, error:
        // Moved: 6132 127.0.0.1:7001), …]`.
        None => {
            let text = error.to_string();
            let at = text.to_ascii_uppercase().find(kind)? + kind.len();
            let after = text[at..].trim_start_matches([':', ' ']);
            let address = after.split_whitespace().nth(1)?;
            address.trim_end_matches([')', ',', ']']).to_owned()
        }
    };
    Some(if kind == "MOVED" {
        Redirect::Moved(address)
    } else {
        Redirect::Ask(address)
    })
}

/// Whether `error` says the node is no longer the master, or no longer
/// there: then the sentinels are asked again.
pub(super) fn means_master_moved(error: &RedisError) -> bool {
    matches!(error.kind(), redis::ErrorKind::Server(ServerErrorKind::ReadOnly))
        || error.code() == Some("UNBLOCKED")
        || error.code() == Some("MASTERDOWN")
        || error.is_io_error()
        || error.is_connection_dropped()
        || error.is_connection_refusal()
}

pub(super) enum Kind {
    Single(Node),
    Cluster(Cluster),
    Sentinel(Arc<Follower>),
}

/// What a cluster's backend knows of it.
pub(super) struct Cluster {
    /// The nodes given in the URL.
    seeds: Vec<Node>,
    /// The owner of each slot a pop was redirected for.
    owners: Mutex<HashMap<u16, String>>,
    /// Nodes by id, as learned.
    nodes: Mutex<HashMap<String, Node>>,
    /// Which node the next subscription tries first.
    next_seed: AtomicUsize,
}

impl Cluster {
    pub(super) fn new(seeds: Vec<Node>) -> Cluster {
        let nodes = seeds.iter().map(|node| (node.id.clone(), node.clone())).collect();
        Cluster {
            seeds,
            owners: Mutex::default(),
            nodes: Mutex::new(nodes),
            next_seed: AtomicUsize::new(0),
        }
    }
}

/// The servers of one backend, and how to reach each.
pub(super) struct Topology {
    pub(super) kind: Kind,
    pub(super) factory: NodeFactory,
    /// `CLIENT UNBLOCK` and `TIME` connections, by node, for clusters and
    /// sentinels (one server uses the shared connection).
    controls: tokio::sync::Mutex<HashMap<String, MultiplexedConnection>>,
}

impl Topology {
    pub(super) fn new(kind: Kind, factory: NodeFactory) -> Topology {
        Topology {
            kind,
            factory,
            controls: tokio::sync::Mutex::default(),
        }
    }

    pub(super) fn is_cluster(&self) -> bool {
        matches!(self.kind, Kind::Cluster(_))
    }

    /// The node a blocking pop of `key` should wait on.
    pub(super) async fn node_for(&self, key: &str) -> Result<Node> {
        match &self.kind {
            Kind::Single(node) => Ok(node.clone()),
            Kind::Sentinel(follower) => Ok(follower.master().node.clone()),
            Kind::Cluster(cluster) => {
                let owner = lock(&cluster.owners).get(&slot::of(key)).cloned();
                match owner {
                    Some(id) => self.cluster_node(cluster, &id),
                    None => Ok(cluster.seeds[0].clone()),
                }
            }
        }
    }

    /// The node at `id`, made once.
    pub(super) fn node_by_id(&self, id: &str) -> Result<Node> {
        match &self.kind {
            Kind::Cluster(cluster) => self.cluster_node(cluster, id),
            _ => self.factory.node_at(id),
        }
    }

    fn cluster_node(&self, cluster: &Cluster, id: &str) -> Result<Node> {
        if let Some(node) = lock(&cluster.nodes).get(id) {
            return Ok(node.clone());
        }
        let node = self.factory.node_at(id)?;
        lock(&cluster.nodes).insert(id.to_owned(), node.clone());
        Ok(node)
    }

    /// Remembers that `key`'s slot lives on node `id` (a `MOVED` said so).
    pub(super) fn moved(&self, key: &str, id: &str) {
        if let Kind::Cluster(cluster) = &self.kind {
            lock(&cluster.owners).insert(slot::of(key), id.to_owned());
        }
    }

    /// Reports that `error` came from node `id`: when it means the master
    /// moved, the sentinels are asked again (in the background: the caller
    /// reports its error and retries as it would after any).
    pub(super) fn failed(&self, id: &str, error: &RedisError) {
        if let Kind::Sentinel(follower) = &self.kind
            && means_master_moved(error)
        {
            follower.look_again(id);
        }
    }

    /// A client for a new subscription: any node of a cluster (the next
    /// one known each time, so a subscription leaves a failed node), the
    /// master otherwise.
    pub(super) fn pubsub_client(&self) -> Client {
        match &self.kind {
            Kind::Single(node) => node.client.clone(),
            Kind::Sentinel(follower) => follower.master().node.client.clone(),
            Kind::Cluster(cluster) => {
                // Every node known, seeds and nodes learned since, in turn.
                let nodes = lock(&cluster.nodes);
                let mut ids: Vec<&String> = nodes.keys().collect();
                ids.sort();
                let next = cluster.next_seed.fetch_add(1, Ordering::Relaxed);
                match ids.get(next % ids.len().max(1)) {
                    Some(id) => nodes[*id].client.clone(),
                    None => cluster.seeds[0].client.clone(),
                }
            }
        }
    }

    /// A connection to node `id` for short commands, made once and kept.
    pub(super) async fn control(&self, id: &str) -> RedisResult<MultiplexedConnection> {
        let mut controls = self.controls.lock().await;
        if let Some(connection) = controls.get(id) {
            return Ok(connection.clone());
        }
        let node = self
            .node_by_id(id)
            .map_err(|e| RedisError::from(std::io::Error::other(e.to_string())))?;
        let options = self.factory.options();
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(options.connect_timeout))
            .set_response_timeout(options.command_timeout.or(Some(options.connect_timeout)));
        let connection = node
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        controls.insert(id.to_owned(), connection.clone());
        Ok(connection)
    }

    /// Forgets node `id`'s control connection after it failed.
    pub(super) async fn drop_control(&self, id: &str) {
        self.controls.lock().await.remove(id);
    }

    /// How long establishing a connection may take.
    pub(super) fn connect_timeout(&self) -> Duration {
        self.factory.options().connect_timeout
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_split_at_their_last_colon() {
        assert_eq!(split_address("127.0.0.1:7000"), Some(("127.0.0.1", 7000)));
        assert_eq!(split_address("[::1]:7000"), Some(("::1", 7000)));
        assert_eq!(split_address("nowhere"), None);
    }
}
