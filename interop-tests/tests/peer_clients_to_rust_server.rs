//! The Python, Ruby and PHP clients against our server.
//!
//! Each test starts a private Redis and our server in-process, then runs a
//! script through a peer client. The Python client leaves out empty `args`
//! and sends named arguments; the Ruby client always sends `args`; the
//! PHP client leaves it out too and never names one; our server must take
//! them all.

use std::time::Duration;

use redisrpc_examples::calc;
use redisrpc_interop_tests::{Outcome, Peer, RustServer, Step, cases, check, eventually, redis_for};
use serde_json::{Value, json};

const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Short enough to keep the suite fast, long enough for a loaded machine
/// to push the request before the wait ends.
const SHORT_TIMEOUT: Duration = Duration::from_millis(300);

fn calculator(peer: Peer, named: bool) {
    let Some(redis) = redis_for(peer) else { return };
    let server = RustServer::start(&redis.url(), "calc", calc::service());
    let steps = cases::calculator(named);
    let outcomes = peer.run(&redis.url(), "calc", CALL_TIMEOUT, &steps);
    check(&format!("{} client -> our calc server", peer.name()), &steps, &outcomes);
    let stats = server.stats();
    assert_eq!((stats.failed, stats.malformed), (2, 0), "{stats:?}");
}

#[test]
#[redisrpc_testkit::needs(redis, python)]
fn python_client_calculator_with_named_arguments() {
    calculator(Peer::Python, true);
}

#[test]
#[redisrpc_testkit::needs(redis, python)]
fn python_client_calculator_with_positional_arguments() {
    calculator(Peer::Python, false);
}

#[test]
#[redisrpc_testkit::needs(redis, ruby)]
fn ruby_client_calculator() {
    calculator(Peer::Ruby, false);
}

#[test]
#[redisrpc_testkit::needs(redis, php)]
fn php_client_calculator() {
    calculator(Peer::Php, false);
}

/// Peers' clients need nothing new to call an at-least-once server: their
/// requests are taken, held and answered like any other.
fn calculator_at_least_once(peer: Peer) {
    let Some(redis) = redis_for(peer) else { return };
    let server = RustServer::start_with(&redis.url(), "calc", calc::service(), redisrpc::Delivery::AtLeastOnce);
    let steps = cases::calculator(false);
    let outcomes = peer.run(&redis.url(), "calc", CALL_TIMEOUT, &steps);
    check(
        &format!("{} client -> our at-least-once calc server", peer.name()),
        &steps,
        &outcomes,
    );
    assert_eq!(server.stats().failed, 2);
}

#[test]
#[redisrpc_testkit::needs(redis, python)]
fn python_client_calculator_at_least_once() {
    calculator_at_least_once(Peer::Python);
}

#[test]
#[redisrpc_testkit::needs(redis, ruby)]
fn ruby_client_calculator_at_least_once() {
    calculator_at_least_once(Peer::Ruby);
}

#[test]
#[redisrpc_testkit::needs(redis, php)]
fn php_client_calculator_at_least_once() {
    calculator_at_least_once(Peer::Php);
}

/// The Python client, like the Python peer, leaves a timed-out request in
/// the queue. A server started later runs it and replies to a queue nobody
/// waits on; our server makes that reply expire.
#[test]
#[redisrpc_testkit::needs(redis, python)]
fn python_client_times_out_leaving_its_request_which_our_server_answers_later() {
    let Some(redis) = redis_for(Peer::Python) else { return };
    let outcomes = Peer::Python.run(
        &redis.url(),
        "calc",
        SHORT_TIMEOUT,
        &[Step::returns("val", vec![], json!(0.0))],
    );
    assert!(matches!(&outcomes[..], [Outcome::Timeout(_)]), "{outcomes:?}");

    let queued = redis.cli(&["LRANGE", "calc", "0", "-1"]);
    let request: Value = serde_json::from_str(queued.trim()).expect("the request is left in the queue");
    assert_eq!(
        request["function_call"],
        json!({"name": "val"}),
        "no empty `args`: {request}"
    );
    let reply_queue = request["response_queue"].as_str().expect("a response queue").to_owned();
    let suffix = reply_queue.strip_prefix("calc:rpc:").expect("`calc:rpc:` prefix");
    assert!(
        suffix.len() == 8 && suffix.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()),
        "8 × [A-Z0-9]: {reply_queue}"
    );

    let _server = RustServer::start(&redis.url(), "calc", calc::service());
    eventually("our server answered the stale request", || {
        redis.cli(&["LLEN", &reply_queue]).trim() == "1"
    });
    let ttl: i64 = redis.cli(&["TTL", &reply_queue]).trim().parse().unwrap();
    assert!(ttl > 0, "the unclaimed reply expires (TTL {ttl})");
}

/// The Ruby client, like the Ruby peer, removes its timed-out request.
#[test]
#[redisrpc_testkit::needs(redis, ruby)]
fn ruby_client_times_out_and_withdraws_its_request() {
    let Some(redis) = redis_for(Peer::Ruby) else { return };
    let outcomes = Peer::Ruby.run(
        &redis.url(),
        "calc",
        SHORT_TIMEOUT,
        &[Step::returns("val", vec![], json!(0.0))],
    );
    assert!(matches!(&outcomes[..], [Outcome::Timeout(_)]), "{outcomes:?}");
    assert_eq!(redis.cli(&["LLEN", "calc"]).trim(), "0", "the request was withdrawn");
    let stats = redis.cli(&["INFO", "commandstats"]);
    for command in ["rpush", "lrem"] {
        assert!(
            stats.contains(&format!("cmdstat_{command}:calls=1,")),
            "one {command}: {stats}"
        );
    }
}

/// What the peers' requests look like on the wire, taken off the queue by
/// hand: the habits our server is tested against are really there.
fn request_taken_by_hand(peer: Peer, step: Step) -> Option<Value> {
    let redis = redis_for(peer)?;
    let url = redis.url();
    let client = std::thread::spawn(move || peer.run(&url, "calc", CALL_TIMEOUT, &[step]));
    let popped = redis.cli(&["BLPOP", "calc", "10"]);
    let request: Value = serde_json::from_str(popped.lines().nth(1).expect("a request")).expect("JSON");
    let reply_queue = request["response_queue"].as_str().expect("a response queue");
    let suffix = reply_queue.strip_prefix("calc:rpc:").expect("`calc:rpc:` prefix");
    assert!(
        suffix.len() == 8 && suffix.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()),
        "8 × [A-Z0-9]: {reply_queue}"
    );
    redis.cli(&["RPUSH", reply_queue, r#"{"return_value": 1.5, "extra": "ignored"}"#]);
    let outcomes = client.join().expect("the client thread");
    assert!(
        matches!(&outcomes[..], [Outcome::Returned(value)] if *value == json!(1.5)),
        "{outcomes:?}"
    );
    Some(request["function_call"].clone())
}

#[test]
#[redisrpc_testkit::needs(redis, ruby)]
fn ruby_client_always_sends_args() {
    let Some(call) = request_taken_by_hand(Peer::Ruby, Step::returns("val", vec![], json!(1.5))) else {
        return;
    };
    assert_eq!(call, json!({"name": "val", "args": []}));
}

#[test]
#[redisrpc_testkit::needs(redis, python)]
fn python_client_sends_args_only_when_given_and_kwargs() {
    let step = Step::returns("add", vec![], json!(1.5)).with_kwargs(json!({"number": 1.5}));
    let Some(call) = request_taken_by_hand(Peer::Python, step) else {
        return;
    };
    assert_eq!(call, json!({"name": "add", "kwargs": {"number": 1.5}}));
}
