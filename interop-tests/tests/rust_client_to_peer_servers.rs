//! Our client against the Python and Ruby servers.
//!
//! Each test starts a private Redis and one peer server, then runs a script
//! through our client. The Python server writes exceptions as Python
//! `repr`s and non-finite floats as bare `Infinity`; the Ruby server always
//! receives `args`, adds a `backtrace` and expires its reply queues after a
//! second: our client must take all of that.

use redisrpc_examples::calc::check_calculator;
use redisrpc_interop_tests::{Outcome, Peer, cases, check, redis_for, rust_client, rust_side};

/// Runs `steps` with our client against `peer`'s server of `service`.
async fn run_against(peer: Peer, service: &str, steps: Vec<redisrpc_interop_tests::Step>) {
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
async fn python_server_calculator() {
    run_against(Peer::Python, "calc", cases::calculator(true)).await;
}

#[tokio::test]
async fn ruby_server_calculator() {
    // The Ruby server ignores named arguments, as the Ruby peer does.
    run_against(Peer::Ruby, "calc", cases::calculator(false)).await;
}

#[tokio::test]
async fn python_server_inventory() {
    run_against(Peer::Python, "inventory", cases::inventory(true)).await;
}

#[tokio::test]
async fn ruby_server_inventory() {
    run_against(Peer::Ruby, "inventory", cases::inventory(false)).await;
}

#[tokio::test]
async fn python_server_echoes_values_exactly() {
    run_against(Peer::Python, "inventory", cases::echo()).await;
}

#[tokio::test]
async fn ruby_server_echoes_values_exactly() {
    run_against(Peer::Ruby, "inventory", cases::echo()).await;
}

/// The examples' own check, as `calc-client` runs it against any server.
async fn examples_check(peer: Peer) {
    let Some(redis) = redis_for(peer) else { return };
    let _server = peer.serve(&redis.url(), "calc", "calc");
    let client = rust_client(&redis.url(), "calc").await;
    check_calculator(&client).await.expect("calc-client's checks pass");
}

#[tokio::test]
async fn python_server_passes_calc_client_checks() {
    examples_check(Peer::Python).await;
}

#[tokio::test]
async fn ruby_server_passes_calc_client_checks() {
    examples_check(Peer::Ruby).await;
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
async fn python_server_infinity_reaches_us_as_f64_infinity() {
    non_finite_results(Peer::Python).await;
}

#[tokio::test]
async fn ruby_server_infinity_reaches_us_as_f64_infinity() {
    non_finite_results(Peer::Ruby).await;
}

#[tokio::test]
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
async fn python_server_exception_is_the_python_repr() {
    let Some(redis) = redis_for(Peer::Python) else { return };
    let _server = Peer::Python.serve(&redis.url(), "calc", "calc");
    let calc = rust_client(&redis.url(), "calc").await;
    let outcomes = rust_side::run(
        &calc,
        &[redisrpc_interop_tests::Step::returns("div", vec![0.into()], 0.into())],
    )
    .await;
    let [Outcome::Remote { message, backtrace }] = &outcomes[..] else {
        panic!("division by zero gave {outcomes:?}")
    };
    assert_eq!(message, "ZeroDivisionError('float division by zero')");
    assert_eq!(backtrace, &None);
}
