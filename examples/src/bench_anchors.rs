//! What `bench`'s RPC figures are held against, measured in the same run:
//! the machine is shared and noisy, so a figure means something only beside
//! its anchor.
//!
//! - **Sequential calls** against two `PING` round trips: a call is at best
//!   one round trip for the request and the reply's wait, and one for the
//!   server's pop and reply.
//! - **Calls in flight** against `redis-benchmark -t rpush` with as many
//!   connections, Redis's own figure for the cheapest command a call
//!   makes.

use std::process::Command;
use std::time::Instant;

use redisrpc::backend::RedisConnection;

use crate::measure::Latencies;

/// `samples` `PING`s one after another; their latencies.
pub async fn pings(conn: &mut RedisConnection, samples: usize) -> redis::RedisResult<Latencies> {
    let mut latencies = Latencies::default();
    for _ in 0..samples {
        let started = Instant::now();
        redis::cmd("PING").query_async::<()>(conn).await?;
        latencies.record(started.elapsed());
    }
    Ok(latencies)
}

/// `redis-benchmark -t rpush` at `url` with `clients` connections and
/// `requests` requests in all: its requests per second. `None` when the URL
/// is not one server over TCP or `redis-benchmark` is not installed
/// (Debian's `redis-tools`); the error when it fails.
pub fn redis_benchmark_rpush(url: &str, clients: usize, requests: usize) -> Option<anyhow::Result<f64>> {
    let info = redis::IntoConnectionInfo::into_connection_info(url).ok()?;
    let redis::ConnectionAddr::Tcp(host, port) = info.addr() else {
        return None;
    };
    let mut command = Command::new("redis-benchmark");
    command
        .args(["-h", host, "-p", &port.to_string()])
        .args(["-c", &clients.to_string(), "-n", &requests.to_string()])
        .args(["-t", "rpush", "--csv"]);
    let settings = info.redis_settings();
    if let Some(user) = settings.username() {
        command.args(["--user", user]);
    }
    if let Some(password) = settings.password() {
        command.args(["-a", password, "--no-auth-warning"]);
    }
    let output = match command.output() {
        Ok(output) => output,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => return Some(Err(e.into())),
    };
    Some(parse_csv(&String::from_utf8_lossy(&output.stdout)).ok_or_else(|| {
        anyhow::anyhow!(
            "redis-benchmark printed no RPUSH rate: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    }))
}

/// The rate of the `"RPUSH","75757.58",…` line of `redis-benchmark --csv`.
fn parse_csv(csv: &str) -> Option<f64> {
    csv.lines()
        .find_map(|line| line.strip_prefix("\"RPUSH\",\""))
        .and_then(|rest| rest.split('"').next())
        .and_then(|rate| rate.parse().ok())
}
