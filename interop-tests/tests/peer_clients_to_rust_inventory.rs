//! The Python and Ruby clients against our inventory server: structs,
//! enums, `Option`, named parameters, and values that must survive a round
//! trip exactly.

use std::time::Duration;

use redisrpc_examples::inventory;
use redisrpc_interop_tests::{Peer, RustServer, Step, cases, check, redis_for};

const CALL_TIMEOUT: Duration = Duration::from_secs(10);

fn run_against_inventory(peer: Peer, steps: Vec<Step>) {
    let Some(redis) = redis_for(peer) else { return };
    let server = RustServer::start(&redis.url(), "inventory", inventory::service());
    let outcomes = peer.run(&redis.url(), "inventory", CALL_TIMEOUT, &steps);
    check(
        &format!("{} client -> our inventory server", peer.name()),
        &steps,
        &outcomes,
    );
    assert_eq!(server.stats().malformed, 0);
}

#[test]
#[redisrpc_testkit::needs(redis, python)]
fn python_client_inventory_with_named_arguments() {
    run_against_inventory(Peer::Python, cases::inventory(true));
}

#[test]
#[redisrpc_testkit::needs(redis, python)]
fn python_client_inventory_with_positional_arguments() {
    run_against_inventory(Peer::Python, cases::inventory(false));
}

#[test]
#[redisrpc_testkit::needs(redis, ruby)]
fn ruby_client_inventory() {
    run_against_inventory(Peer::Ruby, cases::inventory(false));
}

#[test]
#[redisrpc_testkit::needs(redis, python)]
fn python_client_values_round_trip_exactly() {
    run_against_inventory(Peer::Python, cases::echo());
}

#[test]
#[redisrpc_testkit::needs(redis, ruby)]
fn ruby_client_values_round_trip_exactly() {
    run_against_inventory(Peer::Ruby, cases::echo());
}

#[test]
#[redisrpc_testkit::needs(redis, php)]
fn php_client_inventory() {
    run_against_inventory(Peer::Php, cases::inventory(false));
}

#[test]
#[redisrpc_testkit::needs(redis, php)]
fn php_client_values_round_trip_exactly() {
    run_against_inventory(Peer::Php, cases::echo());
}
