//! A client and a server over Redis survive their connections being killed
//! (a Redis restart, a proxy timeout, `CLIENT KILL` by an operator): the
//! server goes on serving, and calls work again without rebuilding anything.

mod common;

use std::convert::Infallible;
use std::time::{Duration, Instant};

use redisrpc::backend::Redis;
use redisrpc::service::Methods;
use redisrpc::{Client, Server};
use redisrpc_testkit::RedisServer;

/// Calls until one succeeds, for at most 10 s; returns how many failed first.
async fn call_until_it_works(client: &Client) -> usize {
    let started = Instant::now();
    let mut failures = 0;
    loop {
        match client.call::<i64>("double", (21,)).await {
            Ok(value) => {
                assert_eq!(value, 42);
                return failures;
            }
            Err(error) => {
                assert!(error.is_connection() || error.is_timeout(), "unexpected error: {error}");
                failures += 1;
                eprintln!("call failed after {:?}: {error}", started.elapsed());
                assert!(
                    started.elapsed() < Duration::from_secs(10),
                    "still failing after 10 s: {error}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[redisrpc_testkit::needs(redis)]
async fn client_and_server_recover_from_killed_connections() {
    let Some(redis) = RedisServer::start() else { return };
    let service = Methods::new(()).method(
        "double",
        &["x"],
        |_, (x,): (i64,)| async move { Ok::<_, Infallible>(x * 2) },
    );
    let server = Server::new(Redis::connect(&redis.url()).await.unwrap(), "recover", service);
    let handle = server.handle();
    let running = tokio::spawn(server.run());
    let client =
        Client::new(Redis::connect(&redis.url()).await.unwrap(), "recover").with_timeout(Some(Duration::from_secs(2)));
    assert_eq!(call_until_it_works(&client).await, 0);

    let mut admin = common::admin(&redis).await;
    for round in 0..3 {
        let killed = common::kill_clients(&mut admin, "normal").await;
        assert!(killed >= 2, "round {round}: killed only {killed} connections");
        // The first call after the kill may fail with a connection error
        // (the client's shared connection finds out it is dead by using it);
        // the next works, and no call times out for a reply the server lost.
        let failures = call_until_it_works(&client).await;
        assert!(failures <= 1, "round {round}: {failures} failed calls before recovery");
    }
    assert!(!running.is_finished(), "the server is still serving");
    handle.shutdown();
    let stats = tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(stats.served >= 4, "{stats:?}");
}
