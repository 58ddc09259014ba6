//! The bare protocol loop `bench --bare` puts beside the library's calls:
//! the same calls, made the plainest way the wire protocol allows, with
//! the redis crate alone.
//!
//! Each caller pushes its request and waits for its reply in one write, on
//! a connection of its own (as each of `redis-benchmark`'s clients has
//! one). The server pops up to [`BATCH`] requests at a time and pushes
//! their replies in one pipeline, an `RPUSH` and a `PEXPIRE` each. No
//! deadlines, no gathered waits, no scripts, no retries: what a call costs
//! when it is nothing but the protocol's four list operations, on this
//! machine. `redis-benchmark` measures one operation a request; a call is
//! two pushes and two pops across three processes.

use std::sync::Arc;

use anyhow::Context;
use redis::aio::MultiplexedConnection;
use serde::Deserialize;
use serde_json::json;

use crate::measure::{Run, spread};

/// The most requests the bare server pops at once.
pub const BATCH: usize = 64;

/// How long a bare reply queue lives (as the library's default).
const REPLY_TTL_MS: u64 = 60_000;

/// The parts of a request the bare server reads.
#[derive(Deserialize)]
struct Request<'a> {
    #[serde(borrow)]
    response_queue: &'a str,
    function_call: FunctionCall,
}

#[derive(Deserialize)]
struct FunctionCall {
    #[serde(default)]
    args: Vec<serde_json::Value>,
}

/// Serves `queue` on `url` as an echo of the first argument, until the
/// task is dropped or Redis fails.
pub async fn serve(url: &str, queue: &str) -> anyhow::Result<()> {
    let client = redis::Client::open(url)?;
    let mut pop = connect(&client).await?;
    let push = connect(&client).await?;
    loop {
        let popped: Option<(String, Vec<Vec<u8>>)> = redis::cmd("BLMPOP")
            .arg(1)
            .arg(1)
            .arg(queue)
            .arg("LEFT")
            .arg("COUNT")
            .arg(BATCH)
            .query_async(&mut pop)
            .await?;
        let Some((_, requests)) = popped else { continue };
        let mut replies = redis::pipe();
        for request in &requests {
            let request: Request<'_> = serde_json::from_slice(request).context("a bare request")?;
            let value = request.function_call.args.first().cloned().unwrap_or_default();
            let reply = serde_json::to_vec(&json!({ "return_value": value }))?;
            replies.cmd("RPUSH").arg(request.response_queue).arg(reply).ignore();
            replies
                .cmd("PEXPIRE")
                .arg(request.response_queue)
                .arg(REPLY_TTL_MS)
                .ignore();
        }
        // The next pop goes out while the replies are on their way.
        let mut push = push.clone();
        tokio::spawn(async move {
            if let Err(error) = replies.query_async::<()>(&mut push).await {
                eprintln!("bare server: cannot push replies: {error}");
            }
        });
    }
}

/// [`serve`] until this process's standard input closes, as the server
/// process of `bench --bare --server-process`.
pub async fn serve_until_stdin_closes(url: &str, queue: &str) -> anyhow::Result<()> {
    tokio::select! {
        served = serve(url, queue) => served,
        closed = crate::bench_server::stdin_closed() => closed,
    }
}

/// Makes `calls` calls of the bare server's echo on `queue`, `concurrency`
/// at a time, each caller on a connection of its own; each reply is
/// checked.
pub async fn call(url: &str, queue: &str, calls: usize, concurrency: usize) -> anyhow::Result<Run> {
    let client = redis::Client::open(url)?;
    let mut connections = Vec::with_capacity(concurrency);
    for _ in 0..concurrency.max(1) {
        connections.push(connect(&client).await?);
    }
    let connections: Arc<Vec<MultiplexedConnection>> = Arc::new(connections);
    let queue: Arc<str> = queue.into();
    // Reply queues unique to this run: its start, the caller, its call.
    let run = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    spread(calls, concurrency, move |task, n| {
        let mut conn = connections[task].clone();
        let queue = queue.clone();
        async move {
            let response_queue = format!("{queue}:rpc:{run:x}-{task}-{n}");
            let request = json!({
                "function_call": { "name": "add", "args": [2.5] },
                "response_queue": response_queue,
            });
            let (_, (_, reply)): (i64, (String, Vec<u8>)) = redis::pipe()
                .cmd("RPUSH")
                .arg(&*queue)
                .arg(serde_json::to_vec(&request)?)
                .cmd("BLPOP")
                .arg(&response_queue)
                .arg(30)
                .query_async(&mut conn)
                .await
                .context("a bare call")?;
            let reply: serde_json::Value = serde_json::from_slice(&reply)?;
            anyhow::ensure!(reply["return_value"] == 2.5, "unexpected bare reply {reply}");
            anyhow::Ok(())
        }
    })
    .await
}

/// A connection without the crate's response timeout, which would abandon
/// a blocking pop still waiting in Redis.
async fn connect(client: &redis::Client) -> redis::RedisResult<MultiplexedConnection> {
    let config = redis::AsyncConnectionConfig::new().set_response_timeout(None);
    client.get_multiplexed_async_connection_with_config(&config).await
}
