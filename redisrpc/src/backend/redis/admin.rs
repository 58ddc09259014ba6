//! Commands of the application's own (an operator's tool, a migration)
//! through the backend's connections, so they reach the right server
//! whatever the deployment: [`Redis::connection`] routes as the backend
//! does, and [`Redis::scan`] visits every master of a cluster, where one
//! `SCAN` would see a single node's keys.

use redis::aio::ConnectionLike;
use redis::{Cmd, Pipeline, RedisFuture, Value};

use super::shared::Shared;
use super::topology::Kind;
use super::{Redis, map_error};
use crate::Result;

/// A connection for commands of one's own: to the one server, to the node
/// of each command's first key on a cluster, or to the current master
/// through Sentinel. Cheap to clone; clones share the backend's sockets.
/// Use it with `redis::AsyncCommands` or `redis::cmd(…).query_async`.
#[derive(Clone)]
pub struct RedisConnection(Shared);

impl ConnectionLike for RedisConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        self.0.req_packed_command(cmd)
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        self.0.req_packed_commands(pipeline, offset, count)
    }

    fn get_db(&self) -> i64 {
        self.0.get_db()
    }
}

impl Redis {
    /// A connection for commands of one's own, routed as the backend's
    /// own are (see [`RedisConnection`]).
    pub fn connection(&self) -> RedisConnection {
        RedisConnection(self.inner.manager.clone())
    }

    /// Every key matching the glob `pattern` (and of type `kind`, such as
    /// `"hash"`, when given), by `SCAN`, on every master of a cluster;
    /// sorted, each once.
    pub async fn scan(&self, pattern: &str, kind: Option<&str>) -> Result<Vec<String>> {
        let mut keys = Vec::new();
        match &self.inner.topology.kind {
            Kind::Cluster(_) => {
                for master in self.masters().await? {
                    let mut connection = self.inner.topology.control(&master).await.map_err(map_error)?;
                    keys.extend(scan_on(&mut connection, pattern, kind).await?);
                }
            }
            _ => keys = scan_on(&mut self.inner.manager.clone(), pattern, kind).await?,
        }
        keys.sort();
        keys.dedup();
        Ok(keys)
    }

    /// The cluster's masters that hold slots, as `host:port`, from
    /// `CLUSTER NODES`.
    pub(super) async fn masters(&self) -> Result<Vec<String>> {
        let listing: String = redis::cmd("CLUSTER")
            .arg("NODES")
            .query_async(&mut self.inner.manager.clone())
            .await
            .map_err(map_error)?;
        Ok(masters_in(&listing))
    }
}

/// The masters with slots in a `CLUSTER NODES` listing: `<id> <ip:port@bus>
/// <flags> <master> <ping> <pong> <epoch> <link> <slot> …`.
fn masters_in(listing: &str) -> Vec<String> {
    listing
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let flags = fields.get(2)?;
            let serving = flags.split(',').any(|flag| flag == "master") && !flags.contains("fail") && fields.len() > 8;
            let address = fields.get(1)?.split(['@', ',']).next()?;
            serving.then(|| address.to_owned())
        })
        .collect()
}

async fn scan_on(connection: &mut impl ConnectionLike, pattern: &str, kind: Option<&str>) -> Result<Vec<String>> {
    let mut keys = Vec::new();
    let mut cursor: u64 = 0;
    loop {
        let mut command = redis::cmd("SCAN");
        command.arg(cursor).arg("MATCH").arg(pattern).arg("COUNT").arg(1000);
        if let Some(kind) = kind {
            command.arg("TYPE").arg(kind);
        }
        let (next, batch): (u64, Vec<String>) = command.query_async(connection).await.map_err(map_error)?;
        keys.extend(batch);
        if next == 0 {
            return Ok(keys);
        }
        cursor = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masters_with_slots_are_read_from_cluster_nodes() {
        let listing = "\
a1 127.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-5460
b2 127.0.0.1:7001@17001 master - 0 0 2 connected 5461-10922 [5000->-a1]
c3 127.0.0.1:7002@17002 slave b2 0 0 2 connected
d4 127.0.0.1:7003@17003 master,fail - 0 0 3 disconnected 10923-16383
e5 127.0.0.1:7004@17004 master - 0 0 4 connected
";
        assert_eq!(masters_in(listing), ["127.0.0.1:7000", "127.0.0.1:7001"]);
    }
}
