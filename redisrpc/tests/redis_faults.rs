//! Calls whose fate the caller controls, against a real Redis that
//! misbehaves: frozen with `SIGSTOP` under load, and with an ACL user that
//! may not interrupt a blocking pop. Bounds carry slack for two busy cores.

use std::convert::Infallible;
use std::time::{Duration, Instant};

use anyhow::Result;
use redisrpc::backend::{IntoBackend, Redis};
use redisrpc::service::Methods;
use redisrpc::{Client, Server, TIMEOUT_MARGIN};
use redisrpc_testkit::RedisServer;

/// Slack on every bound, for a loaded machine.
const SLACK: Duration = Duration::from_secs(1);

fn echo() -> Methods<()> {
    Methods::new(()).method("echo", &["x"], |_, (x,): (u64,)| async move { Ok::<_, Infallible>(x) })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[redisrpc_testkit::needs(redis)]
async fn calls_end_within_their_timeout_while_redis_is_frozen() -> Result<()> {
    let Some(redis) = RedisServer::start() else {
        return Ok(());
    };
    let backend = Redis::connect(&redis.url()).await?.into_backend();
    let server = Server::new(backend.clone(), "calc", echo());
    let handle = server.handle();
    let serving = tokio::spawn(server.run());
    let timeout = Duration::from_secs(1);
    let client = Client::new(backend.clone(), "calc").with_timeout(Some(timeout));
    client.call::<u64>("echo", (0,)).await?;

    // Callers keep calling for the whole freeze, 4 s, and a little after.
    let until = Instant::now() + Duration::from_secs(6);
    let callers: Vec<_> = (0..8)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move {
                let mut longest = Duration::ZERO;
                let mut outcomes = (0, 0);
                while Instant::now() < until {
                    let started = Instant::now();
                    match client.call::<u64>("echo", (1,)).await {
                        Ok(_) => outcomes.0 += 1,
                        Err(error) => {
                            assert!(error.is_timeout() || error.is_connection(), "{error}");
                            outcomes.1 += 1;
                        }
                    }
                    longest = longest.max(started.elapsed());
                }
                (longest, outcomes)
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let frozen = redis.freeze();
    tokio::time::sleep(Duration::from_secs(4)).await;
    drop(frozen);

    let (mut longest, mut succeeded, mut failed) = (Duration::ZERO, 0, 0);
    for caller in callers {
        let (caller_longest, (ok, errors)) = caller.await?;
        longest = longest.max(caller_longest);
        succeeded += ok;
        failed += errors;
    }
    assert!(failed > 0, "the freeze made calls fail");
    assert!(succeeded > 0, "calls succeed before and after it");
    assert!(
        longest <= timeout + TIMEOUT_MARGIN + SLACK,
        "a call took {longest:?} with a {timeout:?} timeout"
    );
    // Redis is back: calls work again.
    client.call::<u64>("echo", (2,)).await?;
    handle.shutdown();
    serving.await??;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[redisrpc_testkit::needs(redis)]
async fn a_server_whose_user_may_not_run_client_shuts_down_within_a_second() -> Result<()> {
    let Some(redis) = RedisServer::start() else {
        return Ok(());
    };
    let mut admin = redis::Client::open(redis.url())?
        .get_multiplexed_async_connection()
        .await?;
    redis::cmd("ACL")
        .arg(&["SETUSER", "worker", "on", ">pw", "~*", "&*", "+@all", "-client"])
        .exec_async(&mut admin)
        .await?;
    let backend = Redis::connect(&format!("redis://worker:pw@127.0.0.1:{}", redis.port())).await?;
    let server = Server::new(backend.clone(), "calc", echo());
    let handle = server.handle();
    let serving = tokio::spawn(server.run());
    let client = Client::new(backend, "calc");
    assert_eq!(client.call::<u64>("echo", (7,)).await?, 7);
    // Idle: the server waits in a pop nobody may interrupt.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let asked = Instant::now();
    handle.shutdown();
    tokio::time::timeout(Duration::from_secs(10), serving).await???;
    let took = asked.elapsed();
    assert!(took < Duration::from_secs(1), "shutdown took {took:?}");
    // What arrives after the shutdown waits for the next server.
    redis.cli(&["RPUSH", "calc", "later"]);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(redis.cli(&["LRANGE", "calc", "0", "-1"]).trim(), "later");
    Ok(())
}
