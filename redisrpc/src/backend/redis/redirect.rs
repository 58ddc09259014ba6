//! What a cluster's redirects need beyond what the `redis` crate's cluster
//! client does: `ASKING` in the same write as the command it is for, and
//! transactions that follow `ASK` and `MOVED`.
//!
//! ## `ASKING`
//!
//! While a slot moves, its old owner answers `ASK` for the keys it no
//! longer holds: this one command may run on the new owner, if `ASKING`
//! comes first on the same connection. The `redis` crate's cluster client
//! follows that by sending `ASKING` and then the command as two requests on
//! the node's connection, which every caller shares. Any caller's command
//! that reaches the node in between takes the one-time `ASKING`, and the
//! command comes back `MOVED` to the old owner, which says `ASK` again.
//! Under load nearly every redirected command loses that race until the
//! crate's retries or its time run out, and the caller gets the `ASK` (or
//! a timeout) as its error, though nothing is wrong.
//!
//! So `ASKING` is not sent on its own: it is remembered by the connection
//! handle the crate sends it on, which the crate uses for the command that
//! follows, and goes out with that command as one pipeline, which is
//! written at once. [`NodeConnection`] does that.
//!
//! ## Transactions
//!
//! A transaction whose commands were refused with `ASK` or `MOVED` comes
//! back from the crate as one `EXECABORT` error, which it does not follow:
//! [`transaction`] sends it again where the refusals point. Nothing of an
//! aborted transaction ran, so sending it again cannot run anything twice.

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster_async::{ClusterConnection, Connect};
use redis::cluster_routing::SingleNodeRoutingInfo;
use redis::{
    AsyncConnectionConfig, Cmd, ErrorKind, IntoConnectionInfo, Pipeline, RedisError, RedisFuture, RedisResult,
    ServerErrorKind, Value,
};

use super::topology::split_address;

/// How many redirects in a row a transaction follows: one, unless its slot
/// moves again while it is on its way.
const MAX_REDIRECTS: usize = 3;

/// One node's connection, as the cluster client holds it.
#[derive(Clone)]
pub(super) struct NodeConnection {
    conn: MultiplexedConnection,
    /// `ASKING` was sent on this handle: it goes before the next command.
    asking: bool,
}

impl Connect for NodeConnection {
    fn connect_with_config<'a, T>(info: T, config: AsyncConnectionConfig) -> RedisFuture<'a, Self>
    where
        T: IntoConnectionInfo + Send + 'a,
    {
        Box::pin(async move {
            let conn = MultiplexedConnection::connect_with_config(info, config).await?;
            Ok(NodeConnection { conn, asking: false })
        })
    }
}

impl ConnectionLike for NodeConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        if is_asking(cmd) {
            self.asking = true;
            return Box::pin(async { Ok(Value::Okay) });
        }
        if !std::mem::take(&mut self.asking) {
            return self.conn.req_packed_command(cmd);
        }
        Box::pin(async move {
            let mut asking = redis::pipe();
            asking.cmd("ASKING").add_command(cmd.clone());
            let mut replies = self.conn.req_packed_commands(&asking, 1, 1).await?;
            Ok(replies.pop().unwrap_or(Value::Nil))
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        if !std::mem::take(&mut self.asking) {
            return self.conn.req_packed_commands(pipeline, offset, count);
        }
        Box::pin(async move {
            if pipeline.is_transaction() {
                // One `ASKING` covers the whole transaction (the flag lasts
                // until `EXEC`); the replies are the original's, one later.
                let asking = asking_transaction(pipeline);
                self.conn.req_packed_commands(&asking, offset + 1, count).await
            } else {
                let asking = asking_each(pipeline);
                let all = self.conn.req_packed_commands(&asking, 0, asking.len()).await?;
                Ok(without_askings(all, offset, count))
            }
        })
    }

    fn get_db(&self) -> i64 {
        self.conn.get_db()
    }
}

/// The replies `offset..offset + count` of `pipeline`, a transaction that
/// the cluster aborted with `error`, from where its refusals point.
pub(super) async fn transaction(
    cluster: &mut ClusterConnection<NodeConnection>,
    pipeline: &Pipeline,
    offset: usize,
    count: usize,
    error: RedisError,
) -> RedisResult<Vec<Value>> {
    let mut error = error;
    for _ in 0..MAX_REDIRECTS {
        let replies = match refusals_point_to(&error) {
            Some((Redirect::Ask, node)) => {
                cluster
                    .route_pipeline(asking_transaction(pipeline), offset + 1, count, node)
                    .await
            }
            Some((Redirect::Moved, node)) => cluster.route_pipeline(pipeline.clone(), offset, count, node).await,
            None => return Err(error),
        };
        match replies {
            Err(again) => error = again,
            replies => return replies,
        }
    }
    Err(error)
}

enum Redirect {
    Ask,
    Moved,
}

/// Where the first redirect among the refusals that aborted a transaction
/// points.
fn refusals_point_to(error: &RedisError) -> Option<(Redirect, SingleNodeRoutingInfo)> {
    if error.kind() != ErrorKind::Server(ServerErrorKind::ExecAbort) {
        return None;
    }
    let refusals = error.clone().into_server_errors()?;
    refusals.iter().find_map(|(_, refusal)| {
        let redirect = match refusal.kind()? {
            ServerErrorKind::Ask => Redirect::Ask,
            ServerErrorKind::Moved => Redirect::Moved,
            _ => return None,
        };
        // `ASK <slot> <host:port>`: the details are what follows the code.
        let address = refusal.details()?.split_whitespace().nth(1)?;
        let (host, port) = split_address(address)?;
        let node = SingleNodeRoutingInfo::ByAddress {
            host: host.to_owned(),
            port,
        };
        Some((redirect, node))
    })
}

fn is_asking(cmd: &Cmd) -> bool {
    let mut args = cmd.args_iter();
    matches!(args.next(), Some(redis::Arg::Simple(name)) if name.eq_ignore_ascii_case(b"ASKING")) && args.len() == 0
}

/// `ASKING`, then `pipeline`'s transaction spelled out: `MULTI`, its
/// commands, `EXEC`.
fn asking_transaction(pipeline: &Pipeline) -> Pipeline {
    let mut asking = redis::pipe();
    asking.cmd("ASKING").cmd("MULTI");
    for cmd in pipeline.cmd_iter() {
        asking.add_command(cmd.clone());
    }
    asking.cmd("EXEC");
    asking
}

/// `pipeline` with `ASKING` before each of its commands: each is a query
/// of its own, and the flag lasts for one.
fn asking_each(pipeline: &Pipeline) -> Pipeline {
    let mut asking = redis::pipe();
    for cmd in pipeline.cmd_iter() {
        asking.cmd("ASKING").add_command(cmd.clone());
    }
    asking
}

/// The replies `offset..offset + count` of the original pipeline, from
/// those of [`asking_each`]'s.
fn without_askings(replies: Vec<Value>, offset: usize, count: usize) -> Vec<Value> {
    replies
        .into_iter()
        .skip(1)
        .step_by(2)
        .skip(offset)
        .take(count)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_asking_itself_is_held_back() {
        assert!(is_asking(&redis::cmd("ASKING")));
        assert!(is_asking(&redis::cmd("asking")));
        assert!(!is_asking(redis::cmd("RPUSH").arg("ASKING")));
        assert!(!is_asking(redis::cmd("ASKING").arg("x")));
    }

    #[test]
    fn a_plain_pipeline_gets_asking_before_each_command_and_its_replies_back() {
        let mut pipeline = redis::pipe();
        pipeline.cmd("RPUSH").arg("k").arg("a").cmd("LLEN").arg("k");
        let asking = asking_each(&pipeline);
        let names: Vec<Vec<u8>> = asking
            .cmd_iter()
            .map(|cmd| match cmd.args_iter().next() {
                Some(redis::Arg::Simple(name)) => name.to_vec(),
                _ => Vec::new(),
            })
            .collect();
        assert_eq!(names, [&b"ASKING"[..], b"RPUSH", b"ASKING", b"LLEN"]);
        let replies = vec![Value::Okay, Value::Int(1), Value::Okay, Value::Int(2)];
        assert_eq!(without_askings(replies.clone(), 0, 2), [Value::Int(1), Value::Int(2)]);
        assert_eq!(without_askings(replies, 1, 1), [Value::Int(2)]);
    }

    #[test]
    fn a_transaction_gets_one_asking_before_multi() {
        let mut pipeline = redis::pipe();
        pipeline
            .atomic()
            .cmd("DEL")
            .arg("k")
            .cmd("HSET")
            .arg("k")
            .arg("f")
            .arg("v");
        let asking = asking_transaction(&pipeline);
        assert_eq!(asking.len(), 5, "ASKING, MULTI, DEL, HSET, EXEC");
        assert!(!asking.is_transaction(), "spelled out, not wrapped again");
    }
}
