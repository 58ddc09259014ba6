//! At-least-once delivery with real processes: `calc-server --delivery
//! at-least-once` killed with `kill -9` mid-call. Each server journals the
//! calls it starts (`--journal`), which is what the tests count; a delay
//! (`--delay-ms`) keeps calls in flight at the kill.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use redisrpc::Client;
use redisrpc::backend::{IntoBackend, Redis};
use redisrpc_testkit::{RedisServer, signal};
use support::ServerProcess;

const CALC_SERVER: &str = env!("CARGO_BIN_EXE_calc-server");
/// Long enough for a dead server's record to expire (3 s) and be reaped.
const TIMEOUT: Duration = Duration::from_secs(30);

/// An at-least-once calc-server journaling to `journal`.
fn server(redis: &RedisServer, journal: &Path, extra: &[&str]) -> ServerProcess {
    let mut args = vec!["--delivery", "at-least-once", "--journal", journal.to_str().unwrap()];
    args.extend_from_slice(extra);
    ServerProcess::start_with(CALC_SERVER, &redis.url(), "calc", &args)
}

/// The arguments of the `add` calls in `journal`, in order.
fn started(journal: &Path) -> Vec<u64> {
    std::fs::read_to_string(journal)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.strip_prefix("add\t["))
        .filter_map(|rest| rest.strip_suffix(']'))
        .map(|n| n.parse().unwrap())
        .collect()
}

async fn client(redis: &RedisServer) -> Client {
    let backend = Redis::connect(&redis.url()).await.unwrap().into_backend();
    Client::new(backend, "calc").with_timeout(Some(TIMEOUT))
}

/// Calls `add(n)` for each `n` at once; every one must succeed.
fn call_all(client: &Client, numbers: std::ops::Range<u64>) -> tokio::task::JoinSet<u64> {
    let mut calls = tokio::task::JoinSet::new();
    for n in numbers {
        let client = client.clone();
        calls.spawn(async move {
            client
                .call::<f64>("add", (n,))
                .await
                .unwrap_or_else(|error| panic!("add({n}): {error}"));
            n
        });
    }
    calls
}

/// Polls `condition` for up to 20 s.
async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    for _ in 0..2000 {
        if condition() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting until {what}");
}

fn journals(dir: &Path, names: &[&str]) -> Vec<PathBuf> {
    names.iter().map(|name| dir.join(name)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[redisrpc_testkit::needs(redis)]
async fn two_servers_one_killed_every_call_is_answered() {
    let Some(redis) = RedisServer::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let [a_log, b_log] = <[PathBuf; 2]>::try_from(journals(dir.path(), &["a", "b"])).unwrap();
    let a = server(&redis, &a_log, &["--delay-ms", "500", "--concurrency", "32"]);
    let _b = server(&redis, &b_log, &["--delay-ms", "500", "--concurrency", "32"]);
    let client = client(&redis).await;
    let mut calls = call_all(&client, 0..64);
    eventually("server a runs calls", || started(&a_log).len() >= 8).await;
    signal(a.pid(), "KILL");
    let in_flight_at_kill = started(&a_log).len();
    let mut answered = Vec::new();
    while let Some(n) = calls.join_next().await {
        answered.push(n.unwrap());
    }
    answered.sort();
    assert_eq!(answered, (0..64).collect::<Vec<_>>(), "every call answered ok");
    let mut runs: BTreeMap<u64, usize> = BTreeMap::new();
    for n in started(&a_log).into_iter().chain(started(&b_log)) {
        *runs.entry(n).or_default() += 1;
    }
    let duplicates = runs.values().filter(|&&count| count > 1).count();
    eprintln!(
        "{in_flight_at_kill} calls started on the killed server; {duplicates} of them started again on the other"
    );
    assert!(
        duplicates <= in_flight_at_kill,
        "{duplicates} duplicates, {in_flight_at_kill} in flight"
    );
    assert!(runs.values().all(|&count| count <= 2), "{runs:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[redisrpc_testkit::needs(redis)]
async fn the_only_server_killed_and_restarted_answers_every_call() {
    let Some(redis) = RedisServer::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let [first, second] = <[PathBuf; 2]>::try_from(journals(dir.path(), &["first", "second"])).unwrap();
    let server_1 = server(&redis, &first, &["--delay-ms", "500"]);
    let client = client(&redis).await;
    let mut calls = call_all(&client, 0..16);
    eventually("the server runs calls", || started(&first).len() == 16).await;
    signal(server_1.pid(), "KILL");
    drop(server_1);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let _server_2 = server(&redis, &second, &["--delay-ms", "500"]);
    let mut answered = 0;
    while let Some(n) = calls.join_next().await {
        n.unwrap();
        answered += 1;
    }
    assert_eq!(answered, 16);
    let mut rerun = started(&second);
    rerun.sort();
    assert_eq!(
        rerun,
        (0..16).collect::<Vec<_>>(),
        "the restarted server ran what the first held"
    );
}

/// BullMQ's stalled-job test: exactly the calls running on the killed
/// server run again, on the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[redisrpc_testkit::needs(redis)]
async fn exactly_the_calls_running_on_a_killed_server_run_again() {
    let Some(redis) = RedisServer::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let [a_log, b_log] = <[PathBuf; 2]>::try_from(journals(dir.path(), &["a", "b"])).unwrap();
    let a = server(&redis, &a_log, &["--delay-ms", "60000", "--concurrency", "4"]);
    let client = client(&redis).await;
    let mut calls = call_all(&client, 0..4);
    eventually("four calls run", || started(&a_log).len() == 4).await;
    signal(a.pid(), "KILL");
    let _b = server(&redis, &b_log, &[]);
    while let Some(n) = calls.join_next().await {
        n.unwrap();
    }
    let mut again = started(&b_log);
    again.sort();
    let mut first = started(&a_log);
    first.sort();
    assert_eq!(again, first, "the same four, once each");
    assert_eq!(again, [0, 1, 2, 3]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[redisrpc_testkit::needs(redis)]
async fn a_request_that_kills_its_servers_is_answered_after_two_deliveries() {
    let Some(redis) = RedisServer::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let logs = journals(dir.path(), &["a", "b", "c"]);
    let drill = ["--abort-on", "666", "--max-deliveries", "2"];
    let servers: Vec<_> = logs.iter().map(|log| server(&redis, log, &drill)).collect();
    let client = client(&redis).await;
    let error = client.call::<f64>("add", (666,)).await.unwrap_err();
    let message = error.remote_message().unwrap_or_default().to_string();
    assert!(
        message.contains("add() was delivered 2 times without an answer"),
        "{error}"
    );
    let attempts: usize = logs.iter().map(|log| started(log).len()).sum();
    assert_eq!(attempts, 2, "two servers died running it, the third refused it");
    // The survivor still serves.
    assert_eq!(client.call::<f64>("add", (1,)).await.unwrap(), 1.0);
    drop(servers);
}
