//! The layout version: a server records the layout its shared state is in,
//! and a process meeting one it does not know refuses instead of misreading
//! it (see `redisrpc::layout`).

mod common;

use redisrpc::state::State;
use serde_json::json;

async fn get(admin: &mut ::redis::aio::MultiplexedConnection, key: &str) -> Option<String> {
    ::redis::cmd("GET").arg(key).query_async(admin).await.unwrap()
}

#[tokio::test]
#[redisrpc_testkit::needs(redis)]
async fn a_fresh_server_records_the_layout_at_first_use() {
    let Some((server, backend)) = common::redis_backend().await else {
        return;
    };
    let mut admin = common::admin(&server).await;
    assert_eq!(get(&mut admin, redisrpc::layout::LAYOUT_KEY).await, None);
    let state = State::new(backend);
    assert!(state.get_value("robot").await.unwrap_err().is_not_found());
    assert_eq!(get(&mut admin, "__state__:layout").await.as_deref(), Some("1"));
    state.set("robot", &json!({"x": 1})).await.unwrap();
    assert_eq!(state.get_value("robot.x").await.unwrap(), json!(1));
}

#[tokio::test]
#[redisrpc_testkit::needs(redis)]
async fn another_layout_is_refused_and_left_alone() {
    let Some((server, backend)) = common::redis_backend().await else {
        return;
    };
    let mut admin = common::admin(&server).await;
    let () = ::redis::pipe()
        .cmd("SET")
        .arg("__state__:layout")
        .arg("7")
        .ignore()
        .cmd("HSET")
        .arg("robot")
        .arg("json")
        .arg(r#"{"x":1}"#)
        .ignore()
        .query_async(&mut admin)
        .await
        .unwrap();
    let state = State::new(backend);
    for error in [
        state.get_value("robot").await.unwrap_err(),
        state.set("robot.x", &2).await.unwrap_err(),
    ] {
        assert!(error.is_unknown_layout(), "{error}");
        assert!(error.to_string().contains("layout 7"), "{error}");
    }
    assert_eq!(get(&mut admin, "__state__:layout").await.as_deref(), Some("7"));
    let json: String = ::redis::cmd("HGET")
        .arg("robot")
        .arg("json")
        .query_async(&mut admin)
        .await
        .unwrap();
    assert_eq!(json, r#"{"x":1}"#);
}

/// Earlier releases kept one global counter, `__state__:clock`, and binary
/// values at their path's key; their data is refused, not misread.
#[tokio::test]
#[redisrpc_testkit::needs(redis)]
async fn the_unversioned_layout_of_earlier_releases_is_refused() {
    let Some((server, backend)) = common::redis_backend().await else {
        return;
    };
    let mut admin = common::admin(&server).await;
    let () = ::redis::cmd("SET")
        .arg("__state__:clock")
        .arg("41")
        .query_async(&mut admin)
        .await
        .unwrap();
    let error = State::new(backend).set("robot", &1).await.unwrap_err();
    assert!(
        error.is_unknown_layout() && error.to_string().contains("layout 0"),
        "{error}"
    );
    assert_eq!(
        get(&mut admin, "__state__:layout").await,
        None,
        "the legacy store was marked as ours"
    );
}
