//! Our client against the Python, Ruby and PHP servers.
//!
//! Each test starts a private Redis and one peer server, then runs a script
//! through our client. The Python server writes exceptions as Python
//! `repr`s and non-finite floats as bare `Infinity`; the Ruby server always
//! receives `args`, adds a `backtrace` and expires its reply queues after a
//! second: our client must take all of that.

use std::time::Duration;

use redisrpc::{Call, Error};
use redisrpc_examples::calc::{CalculatorClient, check_calculator};
use redisrpc_examples::inventory::{InventoryClient, PartKind};
use redisrpc_interop_tests::{Peer, Step, cases, check, eventually, redis_for, rust_client, rust_side};
use redisrpc_testkit::RedisServer;

/// Runs `steps` with our client against `peer`'s server of `service`.
async fn run_against(peer: Peer, service: &str, steps: Vec<Step>) {
    let Some(redis) = redis_for(peer) else { return };
    let mut server = peer.serve(&redis.url(), service, service);
    let client = rust_client(&redis.url(), service).await;
    let outcomes = rust_side::run(&client, &steps).await;
    check(
        &format!("our client -> {} {service} server", peer.name()),
        &steps,
        &outcomes,
    );
    server.assert_running();
}

#[tokio::test]
#[redisrpc_testkit::needs(redis, python)]
async fn python_server_calculator() {
    run_against(Peer::Python, "calc", cases::calculator(true)).await;
}

#[tokio::test]
#[redisrpc_testkit::needs(redis, ruby)]
async fn ruby_server_calculator() {
    // The Ruby server ignores named arguments, as the Ruby peer does.
    run_against(Peer::Ruby, "calc", cases::calculator(false)).await;
}

#[tokio::test]
#[redisrpc_testkit::needs(redis, python)]
async fn python_server_inventory() {
    run_against(Peer::Python, "inventory", cases::inventory(true)).await;
}

#[tokio::test]
#[redisrpc_testkit::needs(redis, ruby)]
async fn ruby_server_inventory() {
    run_against(Peer::Ruby, "inventory", cases::inventory(false)).await;
}

#[tokio::test]
#[redisrpc_testkit::needs(redis, python)]
async fn python_server_echoes_values_exactly() {
    run_against(Peer::Python, "inventory", cases::echo()).await;
}

#[tokio::test]
#[redisrpc_testkit::needs(redis, ruby)]
async fn ruby_server_echoes_values_exactly() {
    run_against(Peer::Ruby, "inventory", cases::echo()).await;
}

#[tokio::test]
#[redisrpc_testkit::needs(redis, php)]
async fn php_server_calculator() {
    // The PHP server takes positional arguments only, as the PHP peer does.
    run_against(Peer::Php, "calc", cases::calculator(false)).await;
}

#[tokio::test]
#[redisrpc_testkit::needs(redis, php)]
async fn php_server_inventory() {
    run_against(Peer::Php, "inventory", cases::inventory(false)).await;
}

#[tokio::test]
#[redisrpc_testkit::needs(redis, php)]
async fn php_server_echoes_values_exactly() {
    run_against(Peer::Php, "inventory", cases::echo()).await;
}

/// Every request our client sends carries `deadline`, `sent` and
/// `traceparent` members; each peer's server ignores them and answers as it
/// always did.
async fn deadline_member_is_ignored(peer: Peer) {
    let Some(redis) = redis_for(peer) else { return };
    let mut server = peer.serve(&redis.url(), "calc", "calc");
    let request = r#"{"function_call": {"name": "add", "args": [2]}, "response_queue": "calc:rpc:DEADLINE", "deadline": 1,
        "sent": 1, "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}"#;
    redis.cli(&["RPUSH", "calc", request]);
    let popped = redis.cli(&["BLPOP", "calc:rpc:DEADLINE", "10"]);
    let reply: serde_json::Value = serde_json::from_str(popped.lines().nth(1).expect("a reply")).unwrap();
    assert_eq!(reply["return_value"], serde_json::json!(2.0), "{reply}");
    // Our client's own requests, with all three members, are answered too.
    let calc = rust_client(&redis.url(), "calc").await;
    assert_eq!(calc.call::<f64>("add", (3,)).await.expect("add"), 5.0);
    server.assert_running();
}

#[tokio::test]
#[redisrpc_testkit::needs(redis, python)]
async fn python_server_ignores_the_deadline_member() {
    deadline_member_is_ignored(Peer::Python).await;
}

#[tokio::test]
#[redisrpc_testkit::needs(redis, ruby)]
async fn ruby_server_ignores_the_deadline_member() {
    deadline_member_is_ignored(Peer::Ruby).await;
}

#[tokio::test]
#[redisrpc_testkit::needs(redis, php)]
async fn php_server_ignores_the_deadline_member() {
    deadline_member_is_ignored(Peer::Php).await;
}

/// The examples' own check through the typed client, as `calc-client`
/// runs it against any server.
async fn examples_check(peer: Peer) {
    let Some(redis) = redis_for(peer) else { return };
    let _server = peer.serve(&redis.url(), "calc", "calc");
    let client = CalculatorClient::from_client(rust_client(&redis.url(), "calc").await);
    check_calculator(&client).await.expect("calc-client's checks pass");
}

#[tokio::test]
#[redisrpc_testkit::needs(redis, python)]
async fn python_server_passes_calc_client_checks() {
    examples_check(Peer::Python).await;
}

#[tokio::test]
#[redisrpc_testkit::needs(redis, ruby)]
async fn ruby_server_passes_calc_client_checks() {
    examples_check(Peer::Ruby).await;
}

/// The typed inventory client: Rust structs, enums and `Option`s against
/// a peer's plain dictionaries.
async fn typed_inventory(peer: Peer) {
    let Some(redis) = redis_for(peer) else { return };
    let mut server = peer.serve(&redis.url(), "inventory", "inventory");
    let inventory = InventoryClient::from_client(rust_client(&redis.url(), "inventory").await);
    let camera = PartKind::Camera {
        width: 1920,
        height: 1080,
    };
    let added = inventory
        .add("eye".into(), camera.clone(), i64::MAX, 0.1, vec!["vision".into()], None)
        .await
        .expect("add");
    assert_eq!(
        (added.kind.clone(), added.count, added.supplier.clone()),
        (camera.clone(), i64::MAX, None)
    );
    assert!(added.attributes.is_empty());
    let motor = inventory
        .add(
            "wrist motor ü".into(),
            PartKind::Motor,
            2,
            0.35,
            vec![],
            Some("ACME".into()),
        )
        .await
        .expect("add");
    assert_eq!(inventory.get("eye".into()).await.expect("get"), Some(added.clone()));
    assert_eq!(inventory.get("none".into()).await.expect("get"), None);
    assert_eq!(
        inventory.list(None).await.expect("list"),
        vec![added.clone(), motor.clone()]
    );
    assert_eq!(inventory.list(Some(camera)).await.expect("list"), vec![added]);
    assert_eq!(inventory.list(Some(PartKind::Gripper)).await.expect("list"), vec![]);
    let counts = inventory.counts().await.expect("counts");
    assert_eq!(
        counts.into_iter().collect::<Vec<_>>(),
        [("eye".into(), i64::MAX), ("wrist motor ü".into(), 2)]
    );
    assert_eq!(inventory.remove("wrist motor ü".into()).await.expect("remove"), motor);
    let error = inventory
        .remove("wrist motor ü".into())
        .await
        .expect_err("already removed");
    assert!(
        error
            .remote_message()
            .is_some_and(|text| text.contains("no part named `wrist motor ü`")),
        "{error:?}"
    );
    let error = inventory
        .add("bad".into(), PartKind::Sensor, -1, 1.0, vec![], None)
        .await
        .expect_err("negative count");
    assert!(
        error
            .remote_message()
            .is_some_and(|text| text.contains("count must not be negative")),
        "{error:?}"
    );
    server.assert_running();
}

#[tokio::test]
#[redisrpc_testkit::needs(redis, python)]
async fn python_server_typed_inventory_client() {
    typed_inventory(Peer::Python).await;
}

#[tokio::test]
#[redisrpc_testkit::needs(redis, ruby)]
async fn ruby_server_typed_inventory_client() {
    typed_inventory(Peer::Ruby).await;
}

#[tokio::test]
#[redisrpc_testkit::needs(redis, php)]
async fn php_server_typed_inventory_client() {
    typed_inventory(Peer::Php).await;
}

#[tokio::test]
#[redisrpc_testkit::needs(redis, php)]
async fn php_server_passes_calc_client_checks() {
    examples_check(Peer::Php).await;
}

/// Both peers write overflowing floats as the bare tokens `Infinity`,
/// `-Infinity` and `NaN`; they reach a typed result as those `f64` values.
async fn non_finite_results(peer: Peer) {
    let Some(redis) = redis_for(peer) else { return };
    let mut server = peer.serve(&redis.url(), "calc", "calc");
    let calc = rust_client(&redis.url(), "calc").await;
    let _: serde_json::Value = calc.call("clr", ()).await.expect("clr");
    assert_eq!(calc.call::<f64>("add", (1e308,)).await.expect("add"), 1e308);
    assert_eq!(calc.call::<f64>("mul", (10,)).await.expect("mul"), f64::INFINITY);
    assert_eq!(calc.call::<f64>("mul", (-1,)).await.expect("mul"), f64::NEG_INFINITY);
    assert!(calc.call::<f64>("mul", (0,)).await.expect("mul").is_nan());
    // A dynamic value cannot hold them; it is not an error either.
    let _: serde_json::Value = calc.call("val", ()).await.expect("val as a JSON value");
    server.assert_running();
}

#[tokio::test]
#[redisrpc_testkit::needs(redis, python)]
async fn python_server_infinity_reaches_us_as_f64_infinity() {
    non_finite_results(Peer::Python).await;
}

#[tokio::test]
#[redisrpc_testkit::needs(redis, ruby)]
async fn ruby_server_infinity_reaches_us_as_f64_infinity() {
    non_finite_results(Peer::Ruby).await;
}

#[tokio::test]
#[redisrpc_testkit::needs(redis, ruby)]
async fn ruby_server_backtrace_reaches_our_error() {
    let Some(redis) = redis_for(Peer::Ruby) else { return };
    let _server = Peer::Ruby.serve(&redis.url(), "calc", "calc");
    let calc = rust_client(&redis.url(), "calc").await;
    let error = calc.call::<f64>("div", (0,)).await.expect_err("division by zero fails");
    assert_eq!(error.remote_message(), Some("divided by 0"), "{error:?}");
    let backtrace = error.remote_backtrace().expect("the Ruby server sends a backtrace");
    assert!(
        backtrace
            .first()
            .is_some_and(|frame| frame.contains("services.rb") && frame.contains("div")),
        "the backtrace starts in the calculator's `div`: {backtrace:?}"
    );
}

#[tokio::test]
#[redisrpc_testkit::needs(redis, python)]
async fn python_server_exception_is_the_python_repr() {
    let Some(redis) = redis_for(Peer::Python) else { return };
    let _server = Peer::Python.serve(&redis.url(), "calc", "calc");
    let calc = rust_client(&redis.url(), "calc").await;
    let error = calc.call::<f64>("div", (0,)).await.expect_err("division by zero fails");
    assert_eq!(
        error.remote_message(),
        Some("ZeroDivisionError('float division by zero')"),
        "{error:?}"
    );
    assert_eq!(error.remote_backtrace(), None);
}

#[tokio::test]
#[redisrpc_testkit::needs(redis)]
async fn our_client_times_out_and_withdraws_when_no_server_runs() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let calc = rust_client(&redis.url(), "calc").await;
    let call = Call::new("val").with_timeout(Some(Duration::from_millis(300)));
    let error = calc.send::<f64>(call).await.expect_err("nobody serves `calc`");
    assert!(
        matches!(
            error,
            Error::Timeout {
                request_withdrawn: true,
                ..
            }
        ),
        "{error:?}"
    );
    assert_eq!(redis.cli(&["LLEN", "calc"]).trim(), "0");
}

/// The Ruby server's replies expire after a second (`MULTI; RPUSH; EXPIRE 1`):
/// a client must be waiting when the reply comes, as ours is.
#[test]
#[redisrpc_testkit::needs(redis, ruby)]
fn ruby_server_replies_expire_after_a_second() {
    let Some(redis) = redis_for(Peer::Ruby) else { return };
    let _server = Peer::Ruby.serve(&redis.url(), "calc", "calc");
    let request = r#"{"function_call": {"name": "val"}, "response_queue": "calc:rpc:NOBODY00"}"#;
    redis.cli(&["RPUSH", "calc", request]);
    eventually("the reply arrived", || {
        redis.cli(&["EXISTS", "calc:rpc:NOBODY00"]).trim() == "1"
    });
    let ttl: i64 = redis.cli(&["PTTL", "calc:rpc:NOBODY00"]).trim().parse().unwrap();
    assert!((1..=1000).contains(&ttl), "PTTL {ttl}");
}

/// Regression: redis-py gives up a read after 5 s unless told otherwise,
/// which would crash an idle Python server in its `BLPOP`.
#[tokio::test]
#[redisrpc_testkit::needs(redis, python)]
async fn python_server_still_serves_after_idling_longer_than_redis_py_read_timeout() {
    let Some(redis) = redis_for(Peer::Python) else { return };
    let mut server = Peer::Python.serve(&redis.url(), "calc", "calc");
    tokio::time::sleep(Duration::from_secs(6)).await;
    server.assert_running();
    let calc = rust_client(&redis.url(), "calc").await;
    assert_eq!(calc.call::<f64>("add", (2,)).await.expect("add"), 2.0);
}
