//! Versions only ever increase on Redis, even when the version counter is
//! lost with everything else (`FLUSHALL`, or a restart without
//! persistence), so that nothing computed from a document as it was before
//! can be taken for current after.

mod common;

use std::time::Duration;

use redisrpc::backend::Redis;
use redisrpc::state::State;
use redisrpc_testkit::RedisServer;
use serde_json::json;

async fn flushall(server: &RedisServer) {
    let mut admin = common::admin(server).await;
    let () = redis::cmd("FLUSHALL").query_async(&mut admin).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[redisrpc_testkit::needs(redis)]
async fn a_copy_from_before_a_flush_is_never_taken_for_current() {
    let Some(server) = RedisServer::start() else { return };
    let a = State::new(Redis::connect(&server.url()).await.unwrap());
    let b = State::new(Redis::connect(&server.url()).await.unwrap());
    a.set("robot", &json!({"x": 1})).await.unwrap();
    a.set("robot.x", &2).await.unwrap();
    flushall(&server).await;
    // Another process writes the document anew, as often as `a` had.
    b.set("robot", &json!({"y": 1})).await.unwrap();
    b.set("robot.y", &2).await.unwrap();
    // `a` starts from its copy of before; it must not write over `y`.
    a.set("robot.z", &3).await.unwrap();
    assert_eq!(b.get_value("robot").await.unwrap(), json!({"y": 2, "z": 3}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[redisrpc_testkit::needs(redis)]
async fn a_mirror_follows_a_document_written_anew_after_a_flush() {
    let Some(server) = RedisServer::start() else { return };
    let state = State::new(Redis::connect(&server.url()).await.unwrap());
    for n in 0..5 {
        state.publish("robot.n", &n).await.unwrap();
    }
    let mut mirror = state.mirror("robot").await.unwrap();
    flushall(&server).await;
    state.publish("robot", &json!({"n": 100})).await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), async {
        while mirror.get::<i32>("robot.n").ok() != Some(100) {
            mirror.changed().await.unwrap();
        }
    })
    .await
    .expect("the mirror shows the document written after the flush");
    assert!(mirror.is_in_sync());
}
