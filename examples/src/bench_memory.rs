//! The memory suite of `bench`: how much a server's memory peaks while it
//! decodes one big request, beside the same request decoded through a tree
//! of `serde_json::Value`s (how arguments used to be decoded), in one run.
//!
//! The peak is the process's resident high-water mark (`VmHWM`), reset
//! before each measurement through `/proc/self/clear_refs`, so it needs
//! Linux.

use std::convert::Infallible;
use std::time::Duration;

use anyhow::{Context, ensure};
use redisrpc::backend::{IntoBackend, Memory};
use redisrpc::service::Methods;
use redisrpc::{Client, Server};
use serde_json::{Value, json};

/// The figures of one run, as one JSON object.
pub async fn run(numbers: usize) -> anyhow::Result<Value> {
    let request = request(numbers);
    let size_mb = request.len() as f64 / 1e6;
    println!("request:                     {size_mb:.1} MB, {numbers} numbers");

    let baseline = reset_peak()?;
    let mut decoded: Value = serde_json::from_slice(&request)?;
    let numbers_back: Vec<f64> = serde_json::from_value(decoded["function_call"]["args"][0].take())?;
    let through_values = peak()?.saturating_sub(baseline);
    drop(numbers_back);
    drop(decoded);
    println!(
        "through Value trees:         peak +{:.0} MB ({:.1}x the request)",
        through_values as f64 / 1e6,
        through_values as f64 / request.len() as f64
    );

    let backend = Memory::new().into_backend();
    let service = Methods::new(()).method("sum", &["numbers"], |_, (numbers,): (Vec<f64>,)| async move {
        Ok::<_, Infallible>(numbers.iter().sum::<f64>())
    });
    let server = Server::new(backend.clone(), "sum", service);
    let handle = server.handle();
    let serving = tokio::spawn(server.run());
    // Warm the server up so that its own allocations are not counted.
    let client = Client::new(backend.clone(), "sum");
    client.call::<f64>("sum", (vec![1.0],)).await?;

    let baseline = reset_peak()?;
    backend.rpush("sum", &[&request]).await?;
    drop(request);
    let reply = backend
        .blpop("sum:rpc:memory", Some(Duration::from_secs(60)))
        .await?
        .context("no reply")?;
    let through_server = peak()?.saturating_sub(baseline);
    let reply: Value = serde_json::from_slice(&reply)?;
    ensure!(reply["return_value"].is_number(), "unexpected reply {reply}");
    println!(
        "our server, decode and bind: peak +{:.0} MB ({:.1}x the request)",
        through_server as f64 / 1e6,
        through_server as f64 / (size_mb * 1e6)
    );
    handle.shutdown();
    serving.await??;
    Ok(json!({
        "request_mb": (size_mb * 10.0).round() / 10.0,
        "value_tree_peak_mb": (through_values as f64 / 1e5).round() / 10.0,
        "server_peak_mb": (through_server as f64 / 1e5).round() / 10.0,
    }))
}

/// A request for `sum` of `numbers` numbers, as a peer would send it.
fn request(numbers: usize) -> Vec<u8> {
    // One digit each, as a sensor's readings often are: 2 bytes a number.
    let list: Vec<u8> = (0..numbers).map(|i| (i % 10) as u8).collect();
    serde_json::to_vec(&json!({
        "function_call": {"name": "sum", "args": [list]},
        "response_queue": "sum:rpc:memory",
    }))
    .expect("a request encodes")
}

/// Resets the resident high-water mark; returns the resident size now.
fn reset_peak() -> anyhow::Result<u64> {
    std::fs::write("/proc/self/clear_refs", "5").context("resetting the peak needs Linux")?;
    status_bytes("VmRSS:")
}

/// The resident high-water mark since the last reset.
fn peak() -> anyhow::Result<u64> {
    status_bytes("VmHWM:")
}

fn status_bytes(field: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let line = status
        .lines()
        .find(|line| line.starts_with(field))
        .with_context(|| format!("no {field} in /proc/self/status"))?;
    let kb: u64 = line[field.len()..].trim().trim_end_matches("kB").trim().parse()?;
    Ok(kb * 1024)
}
