//! No call runs after its caller gave up, with the server a real process:
//! frozen with `SIGSTOP` past its callers' deadlines, or started only after
//! a storm of `CLIENT KILL`s left requests behind. `calc-server --journal`
//! records every call it starts, which is what the tests count.

mod support;

use std::path::Path;
use std::time::Duration;

use redisrpc::backend::{IntoBackend, Redis, SharedBackend};
use redisrpc::{Client, Error};
use redisrpc_testkit::{Frozen, RedisServer};
use support::ServerProcess;

const CALC_SERVER: &str = env!("CARGO_BIN_EXE_calc-server");

fn journal(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

async fn connect(redis: &RedisServer) -> SharedBackend {
    Redis::connect(&redis.url()).await.unwrap().into_backend()
}

/// Polls `condition` for up to 10 s.
async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    for _ in 0..1000 {
        if condition() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting until {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[redisrpc_testkit::needs(redis)]
async fn a_server_frozen_past_its_callers_deadlines_starts_none_of_their_calls() {
    let Some(redis) = RedisServer::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let journal_path = dir.path().join("journal");
    let server = ServerProcess::start_with(
        CALC_SERVER,
        &redis.url(),
        "calc",
        &["--journal", journal_path.to_str().unwrap(), "--concurrency", "4"],
    );
    let client = Client::new(connect(&redis).await, "calc").with_timeout(Some(Duration::from_secs(1)));
    client.call::<f64>("add", (1,)).await.unwrap();

    let frozen = Frozen::new(server.pid());
    let calls: Vec<_> = (0..12)
        .map(|i| {
            let client = client.clone();
            tokio::spawn(async move { client.call::<f64>("add", (100 + i,)).await })
        })
        .collect();
    let mut taken = 0;
    for call in calls {
        let error = call.await.unwrap().unwrap_err();
        assert!(error.is_timeout(), "{error}");
        taken += usize::from(error.request_may_run() == Some(true));
    }
    assert!(taken > 0, "the frozen server had taken requests");
    drop(frozen);

    client.call::<f64>("add", (1000,)).await.unwrap();
    assert_eq!(journal(&journal_path), ["add\t[1]", "add\t[1000]"]);
    assert_eq!(redis.cli(&["LLEN", "calc"]).trim(), "0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[redisrpc_testkit::needs(redis)]
async fn calls_cut_by_connection_kills_never_run_once_their_deadline_passed() {
    let Some(redis) = RedisServer::start() else { return };
    let mut admin = redis::Client::open(redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    // The callers may not `LREM`, so none of their requests is withdrawn:
    // only the deadline stands between them and a late run.
    let _: () = redis::cmd("ACL")
        .arg(&["SETUSER", "caller", "on", ">pw", "~*", "&*", "+@all", "-lrem"])
        .query_async(&mut admin)
        .await
        .unwrap();
    let url = format!("redis://caller:pw@127.0.0.1:{}", redis.port());
    let backend = Redis::connect(&url).await.unwrap().into_backend();
    let client = Client::new(backend, "calc").with_timeout(Some(Duration::from_secs(1)));

    // No server runs; callers keep calling while their connections are killed.
    let until = tokio::time::Instant::now() + Duration::from_secs(2);
    let callers: Vec<_> = (0..16)
        .map(|i| {
            let client = client.clone();
            tokio::spawn(async move {
                let mut interrupted = 0;
                let mut n = 0;
                while tokio::time::Instant::now() < until {
                    n += 1;
                    match client.call::<f64>("add", (i * 10_000 + n,)).await {
                        Err(Error::Interrupted { .. }) => interrupted += 1,
                        Err(error) => assert!(error.is_timeout() || error.is_connection(), "{error}"),
                        Ok(value) => panic!("no server runs, yet a reply came: {value}"),
                    }
                }
                interrupted
            })
        })
        .collect();
    while tokio::time::Instant::now() < until {
        let _: redis::RedisResult<i64> = redis::cmd("CLIENT")
            .arg(&["KILL", "TYPE", "normal", "SKIPME", "yes"])
            .query_async(&mut admin)
            .await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut interrupted = 0;
    for caller in callers {
        interrupted += caller.await.unwrap();
    }
    assert!(interrupted > 0, "the kills interrupted calls");
    // Every deadline has passed; the requests are still queued.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let left: usize = redis.cli(&["LLEN", "calc"]).trim().parse().unwrap();
    eprintln!("{interrupted} calls interrupted, {left} requests left in the queue");
    assert!(left > 0, "requests were left behind");

    let dir = tempfile::tempdir().unwrap();
    let journal_path = dir.path().join("journal");
    let _server = ServerProcess::start_with(
        CALC_SERVER,
        &redis.url(),
        "calc",
        &["--journal", journal_path.to_str().unwrap()],
    );
    eventually("the server drains the queue", || {
        redis.cli(&["LLEN", "calc"]).trim() == "0"
    })
    .await;
    let fresh = Client::new(connect(&redis).await, "calc");
    fresh.call::<f64>("add", (1,)).await.unwrap();
    assert_eq!(journal(&journal_path), ["add\t[1]"], "only the fresh call ran");
}

/// `calc-server` with its wall clock `offset` (`+1h`) off, through
/// libfaketime (Debian's `faketime`) preloaded into the server itself, so
/// the process killed on drop is the server. Timers keep the true
/// monotonic clock.
fn skewed_server(redis: &RedisServer, offset: &str, journal: &Path) -> ServerProcess {
    let mut command = std::process::Command::new(CALC_SERVER);
    command
        .env("LD_PRELOAD", libfaketime())
        .env("FAKETIME", offset)
        .env("FAKETIME_DONT_FAKE_MONOTONIC", "1")
        .args([
            "--redis",
            &redis.url(),
            "--queue",
            "calc",
            "--journal",
            journal.to_str().unwrap(),
        ]);
    ServerProcess::spawn(command, "calc-server with a skewed clock")
}

/// Where Debian keeps libfaketime: `/usr/lib/<arch>/faketime/`.
fn libfaketime() -> std::path::PathBuf {
    std::fs::read_dir("/usr/lib")
        .unwrap()
        .filter_map(Result::ok)
        .map(|dir| dir.path().join("faketime/libfaketime.so.1"))
        .find(|path| path.exists())
        .expect("libfaketime is installed with faketime")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[redisrpc_testkit::needs(redis, faketime)]
async fn deadlines_hold_between_hosts_whose_clocks_are_an_hour_apart() {
    let Some(redis) = RedisServer::start() else { return };
    let backend = connect(&redis).await;
    let client = Client::new(backend.clone(), "calc").with_timeout(Some(Duration::from_secs(5)));
    let dir = tempfile::tempdir().unwrap();

    // A server an hour ahead would think every request an hour late.
    let ahead = dir.path().join("ahead");
    let server = skewed_server(&redis, "+1h", &ahead);
    assert_eq!(client.call::<f64>("add", (2,)).await.unwrap(), 2.0);
    drop(server);
    assert_eq!(journal(&ahead), ["add\t[2]"]);

    // A server an hour behind would run a request long past its deadline.
    let behind = dir.path().join("behind");
    let _server = skewed_server(&redis, "-1h", &behind);
    let redis_now = backend.now("calc").await.unwrap().as_millis() as u64;
    let late = format!(
        r#"{{"function_call":{{"name":"add","args":[100]}},"response_queue":"calc:rpc:LATE","deadline":{}}}"#,
        redis_now - 1_000
    );
    redis.cli(&["RPUSH", "calc", &late]);
    assert_eq!(client.call::<f64>("add", (3,)).await.unwrap(), 3.0);
    assert_eq!(journal(&behind), ["add\t[3]"], "the late request did not run");
}
