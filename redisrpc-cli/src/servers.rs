//! `services` and `inspect`, read straight from Redis: the servers'
//! liveness records and registries (see `redisrpc::layout`), and the
//! queues themselves. Servers of other RedisRPC implementations keep no
//! records; their queues show only as queues with waiting requests.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::AsyncCommands;
use redisrpc::backend::{Redis, RedisConnection};
use redisrpc::layout;
use serde_json::{Value, json};

use crate::Options;
use crate::failure::Outcome;

/// One live server, from its liveness record.
type Record = BTreeMap<String, String>;

/// `redisrpc services`.
pub(crate) async fn services(options: &Options) -> Outcome {
    let backend = options.backend().await?;
    let mut redis = backend.connection();
    let live = live_servers(&backend).await?;
    let mut unserved = Vec::new();
    for queue in backend.scan("*", Some("list")).await? {
        if is_ours(&queue) || live.contains_key(&queue) {
            continue;
        }
        let waiting: usize = redis.llen(&queue).await?;
        if waiting > 0 {
            unserved.push((queue, waiting));
        }
    }
    let mut rows = Vec::new();
    for (queue, servers) in &live {
        let waiting: usize = redis.llen(queue).await?;
        let sum = |field: &str| {
            servers
                .iter()
                .filter_map(|s| s.get(field)?.parse::<u64>().ok())
                .sum::<u64>()
        };
        let mut hosts: Vec<&str> = servers
            .iter()
            .filter_map(|s| s.get("host").map(String::as_str))
            .collect();
        hosts.dedup();
        let mut modes: Vec<&str> = servers
            .iter()
            .filter_map(|s| s.get("delivery").map(String::as_str))
            .collect();
        modes.sort();
        modes.dedup();
        rows.push(json!({
            "queue": queue, "servers": servers.len(), "hosts": hosts, "delivery": modes,
            "in_flight": sum("in_flight"), "served": sum("served"), "failed": sum("failed"), "waiting": waiting,
        }));
    }
    for (queue, waiting) in &unserved {
        rows.push(json!({"queue": queue, "servers": 0, "waiting": waiting}));
    }
    if options.json {
        println!("{}", Value::Array(rows));
        return Ok(());
    }
    let mut table = vec![
        [
            "QUEUE",
            "SERVERS",
            "HOSTS",
            "DELIVERY",
            "IN FLIGHT",
            "SERVED",
            "FAILED",
            "WAITING",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for row in &rows {
        let text = |name: &str| match &row[name] {
            Value::Array(items) => items.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(","),
            Value::String(text) => text.clone(),
            Value::Null => "-".to_owned(),
            other => other.to_string(),
        };
        table.push(
            [
                "queue",
                "servers",
                "hosts",
                "delivery",
                "in_flight",
                "served",
                "failed",
                "waiting",
            ]
            .map(text)
            .to_vec(),
        );
    }
    print_table(&table);
    if !unserved.is_empty() {
        println!("\nQueues with 0 servers have waiting requests but no server with a liveness record:");
        println!("no server runs, or only servers of other RedisRPC implementations, which keep none.");
    }
    Ok(())
}

/// `redisrpc inspect QUEUE`.
pub(crate) async fn inspect(options: &Options, queue: &str) -> Outcome {
    let backend = options.backend().await?;
    let mut redis = backend.connection();
    let waiting: usize = redis.llen(queue).await?;
    let oldest: Option<Vec<u8>> = redis.lindex(queue, 0).await?;
    let oldest = oldest.map(|request| describe_request(&request));
    let instances: Vec<String> = redis.hkeys(layout::servers(queue)).await?;
    let mut servers = Vec::new();
    for instance in &instances {
        let record: Record = redis.hgetall(layout::liveness(queue, instance)).await?;
        let held: usize = redis.llen(layout::held(queue, instance)).await?;
        let taking: usize = redis.llen(layout::taking(queue, instance)).await?;
        let alive = !record.is_empty();
        servers.push(json!({"instance": instance, "alive": alive, "held": held + taking, "record": record}));
    }
    let reply_queues = backend
        .scan(
            &format!("{}*", layout::glob_escape(&layout::reply_prefix(queue))),
            Some("list"),
        )
        .await?;
    let report = json!({
        "queue": queue, "waiting": waiting, "oldest": oldest,
        "reply_queues_waiting": reply_queues.len(), "servers": servers,
    });
    if options.json {
        println!("{report}");
        return Ok(());
    }
    println!("queue `{queue}`: {waiting} waiting");
    if let Some(oldest) = report["oldest"].as_object() {
        println!(
            "  oldest: {}",
            oldest.get("summary").and_then(Value::as_str).unwrap_or("?")
        );
    }
    println!("  replies waiting to be collected: {}", reply_queues.len());
    if servers.is_empty() {
        println!("  no server with a liveness record");
    }
    for server in &servers {
        let record = &server["record"];
        let field = |name: &str| record.get(name).and_then(Value::as_str).unwrap_or("?").to_owned();
        if server["alive"] == json!(true) {
            println!(
                "  server {} on {} (pid {}), {}, {} in flight of {}, {} held; served {}, failed {}, expired {}, redelivered {}",
                field("instance"),
                field("host"),
                field("pid"),
                field("delivery"),
                field("in_flight"),
                field("concurrency"),
                server["held"],
                field("served"),
                field("failed"),
                field("expired"),
                field("redelivered"),
            );
        } else {
            println!(
                "  server {} is dead (no liveness record), {} held until a live server returns them",
                server["instance"].as_str().unwrap_or("?"),
                server["held"]
            );
        }
    }
    Ok(())
}

/// Whether `queue` has a server with a liveness record, which means a
/// redisrpc server that answers `rpc.describe`.
pub(crate) async fn any_alive(redis: &mut RedisConnection, queue: &str) -> Outcome<bool> {
    let instances: Vec<String> = redis.hkeys(layout::servers(queue)).await?;
    for instance in instances {
        let alive: bool = redis.exists(layout::liveness(queue, &instance)).await?;
        if alive {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Every live server's record, by queue.
async fn live_servers(backend: &Redis) -> Outcome<BTreeMap<String, Vec<Record>>> {
    let mut redis = backend.connection();
    let mut live: BTreeMap<String, Vec<Record>> = BTreeMap::new();
    for registry in backend
        .scan(&format!("{}*:servers:*", layout::RPC_PREFIX), Some("hash"))
        .await?
    {
        let Some((_, queue)) = registry.split_once(":servers:") else {
            continue;
        };
        if layout::servers(queue) != registry {
            continue;
        }
        let instances: Vec<String> = redis.hkeys(&registry).await?;
        for instance in instances {
            let record: Record = redis.hgetall(layout::liveness(queue, &instance)).await?;
            if !record.is_empty() {
                live.entry(queue.to_owned()).or_default().push(record);
            }
        }
    }
    Ok(live)
}

/// Keys of the project's own, which are no service queues.
fn is_ours(key: &str) -> bool {
    key.starts_with(layout::RPC_PREFIX) || key.starts_with(layout::STATE_PREFIX) || key.contains(":rpc:")
}

/// What a waiting request says about itself.
fn describe_request(request: &[u8]) -> Value {
    let Ok(Value::Object(request)) = serde_json::from_slice::<Value>(request) else {
        return json!({"summary": "not a RedisRPC request"});
    };
    let method = request
        .get("function_call")
        .and_then(|call| call.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("?")
        .to_owned();
    let deadline = request.get("deadline").and_then(Value::as_u64);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64;
    let summary = match deadline {
        Some(deadline) if deadline > now => {
            format!(
                "{method}(), its caller waits {:.1} s more",
                Duration::from_millis(deadline - now).as_secs_f64()
            )
        }
        Some(deadline) => format!(
            "{method}(), its caller gave up {:.1} s ago",
            Duration::from_millis(now - deadline).as_secs_f64()
        ),
        None => format!("{method}(), no deadline"),
    };
    json!({"method": method, "deadline_ms": deadline, "summary": summary})
}

/// Prints rows as columns aligned on the widest cell.
pub(crate) fn print_table(rows: &[Vec<String>]) {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|i| {
            rows.iter()
                .filter_map(|row| row.get(i))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        println!("{}", cells.join("  ").trim_end());
    }
}
