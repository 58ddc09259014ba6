//! The inventory server and a client in one process, on the embedded
//! backend: rich types through `#[rpc]`, no Redis needed.
//!
//! ```text
//! cargo run -p redisrpc-examples --bin inventory
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, ensure};
use redisrpc::backend::Memory;
use redisrpc::{Call, Server};
use redisrpc_examples::cli;
use redisrpc_examples::inventory::{self, InventoryClient, Part, PartKind};
use serde_json::json;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    cli::init_logging();
    let backend = Memory::new();
    let server = Server::new(backend.clone(), "inventory", inventory::service());
    let handle = server.handle();
    let serving = tokio::spawn(server.run());

    let client = InventoryClient::new(backend, "inventory").with_timeout(Some(Duration::from_secs(5)));
    let outcome = tour(&client).await;

    handle.shutdown();
    serving.await??;
    outcome?;
    println!("inventory: all checks passed");
    Ok(())
}

/// Calls every method, printing what comes back.
async fn tour(inventory: &InventoryClient) -> anyhow::Result<()> {
    let motor = inventory
        .add(
            "Handgelenk-Motor ü".into(),
            PartKind::Motor,
            4,
            0.35,
            vec!["arm".into()],
            None,
        )
        .await?;
    println!("add     -> {motor:?}");

    // The same method with named arguments, as a Python caller would send them.
    let camera: Part = inventory
        .client()
        .send(
            Call::new("add")
                .kwarg("name", "カメラ")
                .kwarg("kind", json!({"camera": {"width": 640, "height": 480}}))
                .kwarg("count", i64::MAX)
                .kwarg("weight_kg", 0.1)
                .kwarg("tags", Vec::<String>::new()),
        )
        .await?;
    println!("add(..) -> {camera:?}");
    ensure!(
        camera.count == i64::MAX && camera.supplier.is_none(),
        "unexpected {camera:?}"
    );

    let mut gripper = camera.clone();
    gripper.name = "gripper".into();
    gripper.kind = PartKind::Gripper;
    gripper.attributes = BTreeMap::from([("fingers".into(), json!(3)), ("soft".into(), json!(true))]);
    let stored = inventory.put(gripper.clone()).await?;
    ensure!(stored == gripper, "put returned {stored:?}");

    let cameras = inventory
        .list(Some(PartKind::Camera {
            width: 640,
            height: 480,
        }))
        .await?;
    println!("list    -> {} camera(s)", cameras.len());
    ensure!(cameras == [camera.clone()], "list(camera) returned {cameras:?}");
    let counts = inventory.counts().await?;
    println!("counts  -> {counts:?}");
    ensure!(
        inventory.get("nothing".into()).await?.is_none(),
        "get of a missing part"
    );

    let error = inventory.remove("nothing".into()).await.unwrap_err();
    println!("remove  -> remote error: {}", error.remote_message().unwrap_or(""));
    ensure!(
        error.remote_message() == Some("no part named `nothing`"),
        "remove: {error}"
    );
    let removed = inventory.remove("gripper".into()).await.context("remove")?;
    ensure!(removed == gripper, "remove returned {removed:?}");

    let value = json!({"empty list": [], "empty object": {}, "null": null, "u64": u64::MAX, "min": i64::MIN});
    let echoed = inventory.echo(value.clone()).await?;
    println!("echo    -> {echoed}");
    ensure!(echoed == value, "echo changed {value} into {echoed}");
    Ok(())
}
