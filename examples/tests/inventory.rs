//! The inventory example as a user runs it: embedded, and `inventory-server`
//! called by raw requests over a private Redis, as a peer in another
//! language would call it.

mod support;

use std::process::Command;

use redisrpc_testkit::RedisServer;
use serde_json::json;
use support::{ServerProcess, raw_call, run};

#[test]
fn the_embedded_inventory_passes_its_checks() {
    let output = run(&mut Command::new(env!("CARGO_BIN_EXE_inventory")));
    assert!(output.status.success());
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(stdout.contains("inventory: all checks passed"), "{stdout}");
}

#[test]
#[redisrpc_testkit::needs(redis)]
fn inventory_server_answers_peers_with_rich_values() {
    let Some(redis) = RedisServer::start() else { return };
    let server = ServerProcess::start(env!("CARGO_BIN_EXE_inventory-server"), &redis.url(), "inventory");
    let call = |n: u32, request: &str| {
        let reply_queue = format!("inventory:rpc:CLI{n:05}");
        let request = request.replace("REPLY", &reply_queue);
        raw_call(&redis, "inventory", &request, &reply_queue)
    };

    let added = call(
        1,
        r#"{"function_call": {"name": "add", "args": ["Greifer ü", "gripper"],
            "kwargs": {"count": 9223372036854775807, "weight_kg": 0.1, "tags": [], "supplier": "ACME"}},
            "response_queue": "REPLY"}"#,
    );
    let part = json!({"name": "Greifer ü", "kind": "gripper", "count": i64::MAX, "weight_kg": 0.1,
                      "tags": [], "supplier": "ACME", "attributes": {}});
    assert_eq!(added, json!({ "return_value": part }));
    let listed = call(
        2,
        r#"{"function_call": {"name": "list", "args": ["gripper"]}, "response_queue": "REPLY"}"#,
    );
    assert_eq!(listed, json!({ "return_value": [part] }));
    let negative = call(
        3,
        r#"{"function_call": {"name": "add", "args": ["x", "motor", -1, 1.0, []]}, "response_queue": "REPLY"}"#,
    );
    assert_eq!(negative, json!({"exception": "count must not be negative"}));
    let bad_kind = call(
        4,
        r#"{"function_call": {"name": "add", "args": ["x", "laser", 1, 1.0, []]}, "response_queue": "REPLY"}"#,
    );
    let message = bad_kind["exception"].as_str().unwrap();
    assert!(
        message.contains("add(): argument `kind` must be") && message.contains("laser"),
        "{message}"
    );

    let described = call(
        5,
        r#"{"function_call": {"name": "rpc.describe"}, "response_queue": "REPLY"}"#,
    );
    let described = &described["return_value"];
    assert_eq!(described["name"], "Inventory");
    let add = &described["methods"][0];
    assert_eq!(add["name"], "add");
    let params: Vec<_> = add["params"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].clone())
        .collect();
    assert_eq!(params, ["name", "kind", "count", "weight_kg", "tags", "supplier"]);
    assert_eq!(add["error"], "InventoryError");

    let status = server.interrupt();
    assert!(status.success(), "inventory-server exits cleanly on SIGINT: {status}");
}
