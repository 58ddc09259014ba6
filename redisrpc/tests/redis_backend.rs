//! Behaviour specific to the Redis backend: blocking pops on dedicated
//! connections, cancel safety against a real server, URL forms, and error
//! mapping. Each test runs its own `redis-server` (see `redisrpc-testkit`).
//! The behaviour both backends share is in `backend_conformance.rs`.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use redisrpc::Error;
use redisrpc::backend::{Backend, Redis, RedisOptions, Ttl};
use redisrpc_testkit::RedisServer;

/// A connection of our own, outside the backend under test.
async fn raw(url: &str) -> Result<redis::aio::MultiplexedConnection> {
    Ok(redis::Client::open(url)?.get_multiplexed_async_connection().await?)
}

async fn client_count(conn: &mut redis::aio::MultiplexedConnection) -> Result<usize> {
    let list: String = redis::cmd("CLIENT").arg("LIST").query_async(conn).await?;
    Ok(list.lines().count())
}

/// Pops from `key` until an element arrives or 3 s pass. A cancelled pop
/// puts its element back asynchronously, so it may take a moment to show.
async fn lpop_eventually(backend: &Redis, key: &str) -> Result<Option<Vec<u8>>> {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        if let Some(value) = backend.lpop(key).await? {
            return Ok(Some(value));
        }
        if Instant::now() > deadline {
            return Ok(None);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Starts a `blpop` and drops it after `after`, while it is still waiting.
async fn cancelled_blpop(backend: &Redis, key: &str, timeout: Option<Duration>, after: Duration) {
    let outcome = tokio::time::timeout(after, backend.blpop(key, timeout)).await;
    assert!(outcome.is_err(), "the pop should still be waiting: {outcome:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[redisrpc_testkit::needs(redis)]
async fn the_clock_is_known_without_waiting_only_once_learned() -> Result<()> {
    let Some(server) = RedisServer::start() else {
        return Ok(());
    };
    let backend = Redis::connect(&server.url()).await?;
    ensure!(
        backend.now_known("q").is_none(),
        "the offset to Redis's clock takes a TIME to learn"
    );
    let learned = backend.now("q").await?;
    let known = backend.now_known("q").context("the clock is known once read")?;
    ensure!(
        known.abs_diff(learned) < Duration::from_millis(500),
        "{known:?} against {learned:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[redisrpc_testkit::needs(redis)]
async fn idle_blpop_outlives_the_crates_default_response_timeout() -> Result<()> {
    let Some(server) = RedisServer::start() else {
        return Ok(());
    };
    let backend = Redis::connect(&server.url()).await?;

    let waiter = {
        let backend = backend.clone();
        tokio::spawn(async move { backend.blpop("q", None).await })
    };
    // Well past the redis crate's 500 ms default response timeout.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    ensure!(!waiter.is_finished(), "the pop gave up: {:?}", waiter.await);
    backend.rpush("q", &[b"late"]).await?;

    let popped = tokio::time::timeout(Duration::from_secs(5), waiter).await???;
    assert_eq!(popped.as_deref(), Some(&b"late"[..]));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[redisrpc_testkit::needs(redis)]
async fn blpop_with_a_timeout_returns_none_when_nothing_arrives() -> Result<()> {
    let Some(server) = RedisServer::start() else {
        return Ok(());
    };
    let backend = Redis::connect(&server.url()).await?;

    let start = Instant::now();
    assert_eq!(backend.blpop("empty", Some(Duration::from_millis(700))).await?, None);
    let waited = start.elapsed();
    assert!(waited >= Duration::from_millis(650), "returned early: {waited:?}");
    assert!(waited < Duration::from_secs(3), "returned late: {waited:?}");

    // A zero timeout does not wait (BLPOP 0 would wait forever).
    let start = Instant::now();
    assert_eq!(backend.blpop("empty", Some(Duration::ZERO)).await?, None);
    assert!(start.elapsed() < Duration::from_millis(500));
    backend.rpush("full", &[b"x"]).await?;
    assert_eq!(
        backend.blpop("full", Some(Duration::ZERO)).await?.as_deref(),
        Some(&b"x"[..])
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[redisrpc_testkit::needs(redis)]
async fn dropped_blpop_loses_nothing_and_reuses_its_connection() -> Result<()> {
    let Some(server) = RedisServer::start() else {
        return Ok(());
    };
    let backend = Redis::connect(&server.url()).await?;
    let mut admin = raw(&server.url()).await?;

    // One cancelled pop, then a push: the element stays in the list.
    cancelled_blpop(&backend, "q", None, Duration::from_millis(200)).await;
    backend.rpush("q", &[b"first"]).await?;
    assert_eq!(lpop_eventually(&backend, "q").await?.as_deref(), Some(&b"first"[..]));

    let clients_before = client_count(&mut admin).await?;
    // Push right after each cancel, racing the cleanup: whether the orphaned
    // pop is unblocked first or takes the element (and puts it back), the
    // next pop must receive it.
    for i in 0..30 {
        let value = format!("m{i}");
        cancelled_blpop(&backend, "q", None, Duration::from_millis(20)).await;
        backend.rpush("q", &[value.as_bytes()]).await?;
        let popped = backend.blpop("q", Some(Duration::from_secs(3))).await?;
        assert_eq!(popped.as_deref(), Some(value.as_bytes()), "cycle {i}");
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(backend.llen("q").await?, 0);

    // Cleanups return connections to the pool: the cycles above needed at
    // most a couple of dedicated connections, not one each.
    let clients_after = client_count(&mut admin).await?;
    assert!(
        clients_after <= clients_before + 3,
        "connections grew from {clients_before} to {clients_after}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[redisrpc_testkit::needs(redis)]
async fn dropped_blpop_with_a_timeout_loses_nothing() -> Result<()> {
    let Some(server) = RedisServer::start() else {
        return Ok(());
    };
    let backend = Redis::connect(&server.url()).await?;

    cancelled_blpop(&backend, "q", Some(Duration::from_secs(30)), Duration::from_millis(100)).await;
    backend.rpush("q", &[b"kept"]).await?;
    assert_eq!(lpop_eventually(&backend, "q").await?.as_deref(), Some(&b"kept"[..]));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[redisrpc_testkit::needs(redis)]
async fn concurrent_blpops_do_not_block_each_other_or_other_commands() -> Result<()> {
    let Some(server) = RedisServer::start() else {
        return Ok(());
    };
    let backend = Redis::connect(&server.url()).await?;

    let waiters: Vec<_> = (0..50)
        .map(|i| {
            let backend = backend.clone();
            tokio::spawn(async move { backend.blpop(&format!("key{i}"), Some(Duration::from_secs(20))).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Non-blocking commands are not queued behind the waiting pops.
    let start = Instant::now();
    for _ in 0..20 {
        backend.rpush("other", &[b"v"]).await?;
        backend.llen("other").await?;
    }
    ensure!(
        start.elapsed() < Duration::from_secs(1),
        "commands stalled: {:?}",
        start.elapsed()
    );

    // Serve the pops in reverse order: each returns as soon as its own key
    // gets an element, whatever the others are doing.
    let start = Instant::now();
    for i in (0..50).rev() {
        backend.rpush(&format!("key{i}"), &[format!("v{i}").as_bytes()]).await?;
    }
    for (i, waiter) in waiters.into_iter().enumerate() {
        let popped = tokio::time::timeout(Duration::from_secs(5), waiter).await???;
        assert_eq!(popped, Some(format!("v{i}").into_bytes()));
    }
    ensure!(
        start.elapsed() < Duration::from_secs(5),
        "pops were slow: {:?}",
        start.elapsed()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[redisrpc_testkit::needs(redis)]
async fn a_dead_idle_connection_is_replaced_transparently() -> Result<()> {
    let Some(server) = RedisServer::start() else {
        return Ok(());
    };
    let backend = Redis::connect(&server.url()).await?;
    let mut admin = raw(&server.url()).await?;

    // Kill every other client, the pooled BLPOP connection included.
    redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("normal")
        .arg("SKIPME")
        .arg("yes")
        .exec_async(&mut admin)
        .await?;
    tokio::time::sleep(Duration::from_millis(200)).await;

    assert_eq!(backend.blpop("q", Some(Duration::from_millis(200))).await?, None);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[redisrpc_testkit::needs(redis)]
async fn password_in_the_url() -> Result<()> {
    let Some(server) = RedisServer::start_with(&["--requirepass", "s3cret"]) else {
        return Ok(());
    };
    let port = server.port();

    let backend = Redis::connect(&format!("redis://:s3cret@127.0.0.1:{port}")).await?;
    backend.rpush("q", &[b"v"]).await?;
    assert_eq!(
        backend.blpop("q", Some(Duration::from_secs(1))).await?.as_deref(),
        Some(&b"v"[..])
    );

    for url in [
        format!("redis://127.0.0.1:{port}"),
        format!("redis://:wrong@127.0.0.1:{port}"),
    ] {
        let err = Redis::connect(&url).await.expect_err("connected without the password");
        assert!(err.is_connection(), "{url}: {err:?}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[redisrpc_testkit::needs(redis)]
async fn acl_user_in_the_url() -> Result<()> {
    let Some(server) = RedisServer::start() else {
        return Ok(());
    };
    let mut admin = raw(&server.url()).await?;
    redis::cmd("ACL")
        .arg(&["SETUSER", "app", "on", ">apppw", "~*", "&*", "+@all"])
        .exec_async(&mut admin)
        .await?;

    let backend = Redis::connect(&format!("redis://app:apppw@127.0.0.1:{}", server.port())).await?;
    backend.rpush("q", &[b"v"]).await?;
    assert_eq!(
        backend.blpop("q", Some(Duration::from_secs(1))).await?.as_deref(),
        Some(&b"v"[..])
    );
    let whoami: String = redis::cmd("CLIENT").arg("LIST").query_async(&mut admin).await?;
    assert!(whoami.contains("user=app"), "{whoami}");

    let err = Redis::connect(&format!("redis://app:nope@127.0.0.1:{}", server.port()))
        .await
        .expect_err("connected with a wrong password");
    assert!(err.is_connection(), "{err:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[redisrpc_testkit::needs(redis)]
async fn acl_user_without_client_commands_still_loses_nothing() -> Result<()> {
    let Some(server) = RedisServer::start() else {
        return Ok(());
    };
    let mut admin = raw(&server.url()).await?;
    // May not run CLIENT (ID, UNBLOCK): a cancelled pop cannot be cut short
    // and must still hand back what it takes.
    redis::cmd("ACL")
        .arg(&["SETUSER", "worker", "on", ">pw", "~*", "+@all", "-client"])
        .exec_async(&mut admin)
        .await?;

    let backend = Redis::connect(&format!("redis://worker:pw@127.0.0.1:{}", server.port())).await?;
    cancelled_blpop(&backend, "q", None, Duration::from_millis(100)).await;
    backend.rpush("q", &[b"kept"]).await?;
    assert_eq!(lpop_eventually(&backend, "q").await?.as_deref(), Some(&b"kept"[..]));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[redisrpc_testkit::needs(redis)]
async fn db_number_in_the_url_isolates() -> Result<()> {
    let Some(server) = RedisServer::start() else {
        return Ok(());
    };
    let db0 = Redis::connect(&format!("{}/0", server.url())).await?;
    let db3 = Redis::connect(&format!("{}/3", server.url())).await?;

    db3.rpush("q", &[b"in3"]).await?;
    assert_eq!(db0.llen("q").await?, 0);
    assert_eq!(db3.llen("q").await?, 1);
    // The dedicated BLPOP connections select the database too.
    assert_eq!(db0.blpop("q", Some(Duration::from_millis(200))).await?, None);
    assert_eq!(
        db3.blpop("q", Some(Duration::from_secs(1))).await?.as_deref(),
        Some(&b"in3"[..])
    );

    let mut raw3 = raw(&format!("{}/3", server.url())).await?;
    let _: () = redis::cmd("SET").arg("k").arg("v").query_async(&mut raw3).await?;
    assert!(db3.del("k").await?);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[redisrpc_testkit::needs(redis)]
async fn unix_socket_urls() -> Result<()> {
    let Some(server) = RedisServer::start_with(&["--unixsocket", "{dir}/redis.sock", "--unixsocketperm", "700"]) else {
        return Ok(());
    };
    let socket = server.dir().join("redis.sock");
    let socket = socket.to_str().context("socket path is not UTF-8")?;

    for url in [format!("unix://{socket}"), format!("redis+unix://{socket}")] {
        let backend = Redis::connect(&url).await.with_context(|| url.clone())?;
        backend.rpush("q", &[b"v"]).await?;
        assert_eq!(
            backend.blpop("q", Some(Duration::from_secs(1))).await?.as_deref(),
            Some(&b"v"[..])
        );
    }

    let db2 = Redis::connect(&format!("unix://{socket}?db=2")).await?;
    db2.rpush("q2", &[b"v"]).await?;
    let db0 = Redis::connect(&server.url()).await?;
    assert_eq!(db0.llen("q2").await?, 0);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_urls_are_config_errors() {
    for url in [
        "",
        "not a url",
        "http://127.0.0.1:6379",
        "redis://127.0.0.1:6379/notadb",
        "redis://0.0.0.0:6379",
    ] {
        match Redis::connect(url).await {
            Err(Error::Config(_)) => {}
            other => panic!("{url:?}: expected Error::Config, got {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_server_is_a_connection_error_quickly() {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let start = Instant::now();
    let err = Redis::connect(&format!("redis://127.0.0.1:{port}"))
        .await
        .expect_err("connected to a closed port");
    assert!(err.is_connection(), "{err:?}");
    assert!(start.elapsed() < Duration::from_secs(2), "took {:?}", start.elapsed());

    let err = Redis::connect("unix:///nonexistent/redis.sock")
        .await
        .expect_err("connected to a missing socket");
    assert!(err.is_connection(), "{err:?}");

    for url in [
        format!("redis+cluster://127.0.0.1:{port}"),
        format!("redis+sentinel://127.0.0.1:{port}/mymaster"),
    ] {
        let start = Instant::now();
        let err = Redis::connect(&url).await.expect_err("connected to a closed port");
        assert!(err.is_connection(), "{url}: {err:?}");
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "{url} took {:?}",
            start.elapsed()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_timeout_bounds_a_silent_server() {
    // Accepts TCP connections but never answers the handshake.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let options = RedisOptions::default().with_connect_timeout(Duration::from_millis(300));
    let start = Instant::now();
    let err = Redis::connect_with(&format!("redis://:pw@127.0.0.1:{port}"), options)
        .await
        .expect_err("connected to a silent server");
    assert!(err.is_connection(), "{err:?}");
    assert!(start.elapsed() < Duration::from_secs(3), "took {:?}", start.elapsed());
    drop(listener);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[redisrpc_testkit::needs(redis)]
async fn wrong_type_is_a_command_error() -> Result<()> {
    let Some(server) = RedisServer::start() else {
        return Ok(());
    };
    let backend = Redis::connect(&server.url()).await?;
    let mut admin = raw(&server.url()).await?;
    let _: () = redis::cmd("SET")
        .arg("s")
        .arg("a string")
        .query_async(&mut admin)
        .await?;

    let errors = [
        backend.rpush("s", &[b"v"]).await.map(drop),
        backend.rpush_expire("s", b"v", Duration::from_secs(5)).await,
        backend.lpop("s").await.map(drop),
        backend.blpop("s", Some(Duration::from_secs(1))).await.map(drop),
        backend.blpop("s", None).await.map(drop),
        backend.llen("s").await.map(drop),
        backend.lrem("s", 0, b"v").await.map(drop),
    ];
    for (i, result) in errors.into_iter().enumerate() {
        match result {
            Err(Error::Command { source }) => {
                assert!(source.to_string().contains("WRONGTYPE"), "{i}: {source}")
            }
            other => panic!("operation {i}: expected Error::Command, got {other:?}"),
        }
    }
    // The backend keeps working after refused commands.
    backend.rpush("q", &[b"v"]).await?;
    assert_eq!(backend.blpop("q", None).await?.as_deref(), Some(&b"v"[..]));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[redisrpc_testkit::needs(redis)]
async fn rpush_expire_sets_a_millisecond_ttl() -> Result<()> {
    let Some(server) = RedisServer::start() else {
        return Ok(());
    };
    let backend = Redis::connect(&server.url()).await?;

    backend.rpush_expire("reply", b"v", Duration::from_millis(1500)).await?;
    match backend.ttl("reply").await? {
        Ttl::Expires(left) => assert!(
            left > Duration::from_millis(1000) && left <= Duration::from_millis(1500),
            "{left:?}"
        ),
        other => panic!("expected an expiry, got {other:?}"),
    }
    assert_eq!(backend.ttl("missing").await?, Ttl::Missing);
    tokio::time::sleep(Duration::from_millis(1700)).await;
    assert_eq!(backend.llen("reply").await?, 0);
    Ok(())
}
