//! Callers' replies awaited together on Redis: when several callers wait at
//! once, one connection waits for all their reply queues. These tests
//! check what that must not change (each caller gets its own reply, soon,
//! and a refusal or a broken connection reaches only those it concerns) and
//! what it is for (one connection, not one per caller). Each test runs its
//! own `redis-server`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use redisrpc::Error;
use redisrpc::backend::{Backend, Redis};
use redisrpc_testkit::{RedisCluster, RedisServer};
use tokio::task::JoinHandle;

/// Time for spawned callers to be waiting in Redis.
const SETTLE: Duration = Duration::from_millis(300);

async fn raw(url: &str) -> Result<redis::aio::MultiplexedConnection> {
    Ok(redis::Client::open(url)?.get_multiplexed_async_connection().await?)
}

/// The `CLIENT LIST` lines of connections blocked in `BLPOP` (not idle
/// after one).
async fn blocked_in_blpop(admin: &mut redis::aio::MultiplexedConnection) -> Result<Vec<String>> {
    let list: String = redis::cmd("CLIENT").arg("LIST").query_async(admin).await?;
    let blocked = |line: &str| {
        let flags = line.split_whitespace().find_map(|field| field.strip_prefix("flags="));
        line.contains(" cmd=blpop ") && flags.is_some_and(|flags| flags.contains('b'))
    };
    Ok(list.lines().filter(|line| blocked(line)).map(str::to_owned).collect())
}

fn reply_queue(name: &str) -> String {
    format!("calc:rpc:{name}")
}

/// A caller's wait for its reply, in a task of its own.
type Caller = JoinHandle<redisrpc::Result<Option<Vec<u8>>>>;

/// A caller waiting for the reply on `name`'s queue, for at most `timeout`.
fn caller(backend: &Arc<Redis>, name: &str, timeout: Duration) -> Caller {
    waiting_on(backend, reply_queue(name), timeout)
}

/// A caller waiting for the reply on `queue`, for at most `timeout`.
fn waiting_on(backend: &Arc<Redis>, queue: String, timeout: Duration) -> Caller {
    let backend = Arc::clone(backend);
    tokio::spawn(async move { backend.wait_reply(&queue, Some(timeout)).await })
}

async fn answered(caller: Caller) -> Result<redisrpc::Result<Option<Vec<u8>>>> {
    tokio::time::timeout(Duration::from_secs(10), caller)
        .await
        .context("a caller still waits after 10 s")?
        .context("a caller panicked")
}

/// Pushes `reply` onto `name`'s reply queue, as a server would.
async fn push_reply(admin: &mut redis::aio::MultiplexedConnection, name: &str, reply: &str) -> Result<()> {
    redis::cmd("RPUSH")
        .arg(reply_queue(name))
        .arg(reply)
        .exec_async(admin)
        .await?;
    Ok(())
}

/// Answers each caller with its own name, and checks that it got that.
async fn answer_each(admin: &mut redis::aio::MultiplexedConnection, callers: Vec<(&str, Caller)>) -> Result<()> {
    for (name, _) in &callers {
        push_reply(admin, name, name).await?;
    }
    each_got_its_own(callers).await
}

/// Checks that each caller got the reply its label names.
async fn each_got_its_own<S: AsRef<str>>(callers: Vec<(S, Caller)>) -> Result<()> {
    for (label, caller) in callers {
        let label = label.as_ref();
        let reply = answered(caller).await??;
        ensure!(reply.as_deref() == Some(label.as_bytes()), "{label} got {reply:?}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[redisrpc_testkit::needs(redis)]
async fn forty_waiting_callers_share_two_connections_and_each_gets_its_reply() -> Result<()> {
    let Some(server) = RedisServer::start() else {
        return Ok(());
    };
    let backend = Arc::new(Redis::connect(&server.url()).await?);
    let mut admin = raw(&server.url()).await?;
    let callers: Vec<_> = (0..40)
        .map(|i| caller(&backend, &i.to_string(), Duration::from_secs(20)))
        .collect();
    tokio::time::sleep(SETTLE).await;
    // The first caller pops alone; every other waits on one connection.
    let blocked = blocked_in_blpop(&mut admin).await?;
    ensure!(blocked.len() <= 2, "{} connections wait: {blocked:#?}", blocked.len());
    // All replies at once, last call first, as a server's batch would push them.
    let mut batch = redis::pipe();
    batch.atomic();
    for i in (0..40).rev() {
        batch.rpush(reply_queue(&i.to_string()), format!("reply {i}")).ignore();
    }
    batch.exec_async(&mut admin).await?;
    for (i, caller) in callers.into_iter().enumerate() {
        let reply = answered(caller).await??;
        ensure!(
            reply == Some(format!("reply {i}").into_bytes()),
            "caller {i} got {reply:?}"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[redisrpc_testkit::needs(redis)]
async fn a_caller_joining_a_wait_under_way_gets_its_reply_at_once() -> Result<()> {
    let Some(server) = RedisServer::start() else {
        return Ok(());
    };
    let backend = Arc::new(Redis::connect(&server.url()).await?);
    let mut admin = raw(&server.url()).await?;
    let alone = caller(&backend, "alone", Duration::from_secs(20));
    let first = caller(&backend, "first", Duration::from_secs(20));
    tokio::time::sleep(SETTLE).await;
    // The wait under way is on `first` only: it must take in the newcomer.
    let newcomer = caller(&backend, "newcomer", Duration::from_secs(20));
    tokio::time::sleep(SETTLE).await;
    let pushed = Instant::now();
    push_reply(&mut admin, "newcomer", "yours").await?;
    let reply = answered(newcomer).await??;
    let waited = pushed.elapsed();
    ensure!(reply.as_deref() == Some(&b"yours"[..]), "got {reply:?}");
    // A wait that was not cut short would have lasted its 5 s slice.
    ensure!(
        waited < Duration::from_millis(2500),
        "the reply came {waited:?} after its push"
    );
    answer_each(&mut admin, vec![("alone", alone), ("first", first)]).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[redisrpc_testkit::needs(redis)]
async fn a_reply_after_its_caller_timed_out_stays_as_the_server_pushed_it() -> Result<()> {
    let Some(server) = RedisServer::start() else {
        return Ok(());
    };
    let backend = Arc::new(Redis::connect(&server.url()).await?);
    let mut admin = raw(&server.url()).await?;
    let alone = caller(&backend, "alone", Duration::from_secs(20));
    let other = caller(&backend, "other", Duration::from_secs(20));
    let late = caller(&backend, "late", Duration::from_millis(300));
    ensure!(answered(late).await??.is_none(), "nothing came in time");
    tokio::time::sleep(SETTLE).await;
    // As a server pushes a reply: with an expiry. Taken by a wait for a
    // caller who left, it would come back without one.
    let queue = reply_queue("late");
    redis::pipe()
        .rpush(&queue, "late")
        .ignore()
        .pexpire(&queue, 60_000)
        .ignore()
        .exec_async(&mut admin)
        .await?;
    tokio::time::sleep(SETTLE).await;
    let length: usize = redis::cmd("LLEN").arg(&queue).query_async(&mut admin).await?;
    let ttl: i64 = redis::cmd("PTTL").arg(&queue).query_async(&mut admin).await?;
    ensure!(length == 1 && ttl > 0, "{length} replies, expiry {ttl} ms");
    answer_each(&mut admin, vec![("alone", alone), ("other", other)]).await?;
    Ok(())
}

/// Two replies on one queue (its request ran again) and one on another,
/// all at once: each caller gets its first, and the second is never left
/// behind without the expiry the server gave it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[redisrpc_testkit::needs(redis)]
async fn a_second_reply_is_never_left_without_its_expiry() -> Result<()> {
    let Some(server) = RedisServer::start() else {
        return Ok(());
    };
    let backend = Arc::new(Redis::connect(&server.url()).await?);
    let mut admin = raw(&server.url()).await?;
    let alone = caller(&backend, "alone", Duration::from_secs(20));
    let twice = caller(&backend, "twice", Duration::from_secs(20));
    let once = caller(&backend, "once", Duration::from_secs(20));
    tokio::time::sleep(SETTLE).await;
    let (twice_queue, once_queue) = (reply_queue("twice"), reply_queue("once"));
    redis::pipe()
        .atomic()
        .rpush(&twice_queue, "first")
        .ignore()
        .rpush(&twice_queue, "second")
        .ignore()
        .pexpire(&twice_queue, 60_000)
        .ignore()
        .rpush(&once_queue, "once")
        .ignore()
        .pexpire(&once_queue, 60_000)
        .ignore()
        .exec_async(&mut admin)
        .await?;
    let first = answered(twice).await??;
    ensure!(first.as_deref() == Some(&b"first"[..]), "got {first:?}");
    each_got_its_own(vec![("once", once)]).await?;
    tokio::time::sleep(SETTLE).await;
    let ttl: i64 = redis::cmd("PTTL").arg(&twice_queue).query_async(&mut admin).await?;
    // -2: gone; else it still expires.
    ensure!(ttl == -2 || ttl > 0, "the second reply's queue has expiry {ttl} ms");
    answer_each(&mut admin, vec![("alone", alone)]).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[redisrpc_testkit::needs(redis)]
async fn a_reply_queue_that_is_not_a_list_fails_only_its_caller() -> Result<()> {
    let Some(server) = RedisServer::start() else {
        return Ok(());
    };
    let backend = Arc::new(Redis::connect(&server.url()).await?);
    let mut admin = raw(&server.url()).await?;
    redis::cmd("SET")
        .arg(reply_queue("not-a-list"))
        .arg("x")
        .exec_async(&mut admin)
        .await?;
    let alone = caller(&backend, "alone", Duration::from_secs(20));
    let fine = caller(&backend, "fine", Duration::from_secs(20));
    tokio::time::sleep(SETTLE).await;
    let wrong = caller(&backend, "not-a-list", Duration::from_secs(20));
    let refused = answered(wrong).await?;
    ensure!(matches!(refused, Err(Error::Command { .. })), "got {refused:?}");
    answer_each(&mut admin, vec![("alone", alone), ("fine", fine)]).await?;
    Ok(())
}

/// A queue refused in the take that follows a wait (it turned into a
/// non-list meanwhile; on a cluster, a slot moving) costs no other caller
/// its reply: the take's `LPOP`s that worked are kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[redisrpc_testkit::needs(redis)]
async fn a_queue_refused_in_the_take_loses_no_other_reply() -> Result<()> {
    let Some(server) = RedisServer::start() else {
        return Ok(());
    };
    let backend = Arc::new(Redis::connect(&server.url()).await?);
    let mut admin = raw(&server.url()).await?;
    let alone = caller(&backend, "alone", Duration::from_secs(20));
    let names = ["a", "b", "turned"];
    let gathered: Vec<_> = names
        .iter()
        .map(|name| caller(&backend, name, Duration::from_secs(20)))
        .collect();
    tokio::time::sleep(SETTLE).await;
    // While the wait is under way, one queue becomes a string; then two
    // replies come at once: the wait returns one, the take the other.
    redis::cmd("SET")
        .arg(reply_queue("turned"))
        .arg("x")
        .exec_async(&mut admin)
        .await?;
    let mut both = redis::pipe();
    both.atomic()
        .rpush(reply_queue("a"), "a")
        .ignore()
        .rpush(reply_queue("b"), "b")
        .ignore();
    both.exec_async(&mut admin).await?;
    let mut gathered = names.iter().zip(gathered);
    for (name, caller) in gathered.by_ref().take(2) {
        let reply = answered(caller).await??;
        ensure!(reply.as_deref() == Some(name.as_bytes()), "{name} got {reply:?}");
    }
    for (name, caller) in gathered {
        let refused = answered(caller).await?;
        ensure!(matches!(refused, Err(Error::Command { .. })), "{name} got {refused:?}");
    }
    answer_each(&mut admin, vec![("alone", alone)]).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[redisrpc_testkit::needs(redis)]
async fn killed_wait_connections_end_no_wait_in_silence() -> Result<()> {
    let Some(server) = RedisServer::start() else {
        return Ok(());
    };
    let backend = Arc::new(Redis::connect(&server.url()).await?);
    let mut admin = raw(&server.url()).await?;
    let callers: Vec<_> = (0..4)
        .map(|i| caller(&backend, &i.to_string(), Duration::from_secs(20)))
        .collect();
    tokio::time::sleep(SETTLE).await;
    // Twice: the first kill may find connections fresh from the pool, which
    // are replaced silently (they may have died idle).
    for _ in 0..2 {
        for line in blocked_in_blpop(&mut admin).await? {
            let id = line
                .split_whitespace()
                .find_map(|field| field.strip_prefix("id="))
                .context("CLIENT LIST has ids")?;
            let _: redis::RedisResult<i64> = redis::cmd("CLIENT")
                .arg("KILL")
                .arg("ID")
                .arg(id)
                .query_async(&mut admin)
                .await;
        }
        tokio::time::sleep(SETTLE).await;
    }
    for i in 0..4 {
        push_reply(&mut admin, &i.to_string(), &i.to_string()).await?;
    }
    // Each caller learns its connection broke, or waits on a new one and
    // gets its reply; none hangs.
    for (i, caller) in callers.into_iter().enumerate() {
        match answered(caller).await? {
            Ok(Some(reply)) => ensure!(reply == i.to_string().into_bytes(), "caller {i} got {reply:?}"),
            Err(error) => ensure!(error.is_connection(), "caller {i}: {error}"),
            Ok(None) => anyhow::bail!("caller {i} timed out instead"),
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[redisrpc_testkit::needs(redis)]
async fn without_client_commands_callers_wait_alone_and_get_their_replies() -> Result<()> {
    let Some(server) = RedisServer::start() else {
        return Ok(());
    };
    let mut admin = raw(&server.url()).await?;
    redis::cmd("ACL")
        .arg(&["SETUSER", "caller", "on", ">pw", "~*", "+@all", "-client"])
        .exec_async(&mut admin)
        .await?;
    let url = format!("redis://caller:pw@127.0.0.1:{}", server.port());
    let backend = Arc::new(Redis::connect(&url).await?);
    let callers: Vec<_> = (0..6)
        .map(|i| caller(&backend, &i.to_string(), Duration::from_secs(20)))
        .collect();
    tokio::time::sleep(SETTLE).await;
    for i in (0..6).rev() {
        push_reply(&mut admin, &i.to_string(), &i.to_string()).await?;
    }
    for (i, caller) in callers.into_iter().enumerate() {
        let reply = answered(caller).await??;
        ensure!(reply == Some(i.to_string().into_bytes()), "caller {i} got {reply:?}");
    }
    Ok(())
}

/// A caller of `service` on a cluster waiting for the reply on its queue
/// number `n`, named as our clients name it (with the service's hash tag).
fn cluster_caller(backend: &Arc<Redis>, service: &str, n: usize) -> (String, Caller) {
    let queue = format!("{service}:rpc:{{{service}}}{n}");
    let caller = waiting_on(backend, queue.clone(), Duration::from_secs(30));
    (queue, caller)
}

/// Connections blocked in `BLPOP` on each node of `cluster`.
async fn blocked_per_node(cluster: &RedisCluster) -> Result<Vec<usize>> {
    let mut counts = Vec::new();
    for node in cluster.nodes() {
        counts.push(blocked_in_blpop(&mut raw(&node.url()).await?).await?.len());
    }
    Ok(counts)
}

/// Pushes each queue's name as its reply, through the backend (which finds
/// each queue's node), and checks that its caller got it.
async fn answer_on_cluster(backend: &Arc<Redis>, callers: Vec<(String, Caller)>) -> Result<()> {
    for (queue, _) in &callers {
        backend.rpush(queue, &[queue.as_bytes()]).await?;
    }
    each_got_its_own(callers).await
}

/// On a cluster one wait's keys must share a slot, so callers gather by
/// slot, each slot on a connection to its node. When the slot moves, the
/// wait under way is redirected (`MOVED`) and follows it: every caller gets
/// its reply, and the next wait goes to the new owner.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[redisrpc_testkit::needs(redis)]
async fn on_a_cluster_callers_gather_by_slot_and_follow_a_moved_slot() -> Result<()> {
    let Some(cluster) = RedisCluster::start() else {
        return Ok(());
    };
    let cluster = Arc::new(cluster);
    let backend = Arc::new(Redis::connect(&cluster.url()).await?);
    // Two services whose queues live on two different nodes.
    let owner = |service: &str| cluster.owner_of(cluster.slot_of(service));
    let candidates = ["calc", "arm", "camera", "gripper", "base", "lidar", "wrist", "head"];
    let first = candidates[0];
    let second = *candidates
        .iter()
        .find(|service| owner(service) != owner(first))
        .context("the services all hash to one node")?;

    let callers: Vec<_> = (0..20)
        .flat_map(|n| [cluster_caller(&backend, first, n), cluster_caller(&backend, second, n)])
        .collect();
    tokio::time::sleep(SETTLE).await;
    // Per service, the first caller pops alone and the others wait on one
    // connection: one wait per caller would be 40.
    let blocked = blocked_per_node(&cluster).await?;
    ensure!(
        blocked.iter().sum::<usize>() <= 4,
        "connections waiting per node: {blocked:?}"
    );
    answer_on_cluster(&backend, callers).await?;

    // The first service's slot moves while its callers wait.
    let callers: Vec<_> = (20..40).map(|n| cluster_caller(&backend, first, n)).collect();
    tokio::time::sleep(SETTLE).await;
    let slot = cluster.slot_of(first);
    let to = (owner(first) + 1) % cluster.nodes().len();
    let moving = Arc::clone(&cluster);
    tokio::task::spawn_blocking(move || moving.move_slot(slot, to)).await?;
    answer_on_cluster(&backend, callers).await?;

    // The next wait goes to the slot's new owner.
    let callers: Vec<_> = (40..60).map(|n| cluster_caller(&backend, first, n)).collect();
    tokio::time::sleep(SETTLE).await;
    let blocked = blocked_per_node(&cluster).await?;
    ensure!(
        blocked[to] >= 1 && blocked.iter().sum::<usize>() <= 2,
        "connections waiting per node after the move to node {to}: {blocked:?}"
    );
    answer_on_cluster(&backend, callers).await?;
    Ok(())
}
