//! `robot-state` runs embedded in one process, and over Redis (one server,
//! or a cluster) as a publisher and a subscriber in two.

use std::process::{Command, Output};

use redisrpc_testkit::{RedisCluster, RedisServer};

fn robot_state(args: &[&str]) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_robot-state"))
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("robot-state starts")
}

fn success(output: Output, what: &str) -> String {
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        output.status.success(),
        "{what} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// The sequence numbers of the poses printed.
fn seqs(stdout: &str) -> Vec<u64> {
    stdout
        .lines()
        .filter_map(|line| line.strip_prefix("seq ")?.split_whitespace().next()?.parse().ok())
        .collect()
}

#[test]
fn runs_embedded_in_one_process() {
    let stdout = success(
        robot_state(&["embedded", "--seconds", "1"]).wait_with_output().unwrap(),
        "embedded",
    );
    let seqs = seqs(&stdout);
    assert!(seqs.len() >= 5, "{stdout}");
    assert!(seqs.windows(2).all(|w| w[0] <= w[1]), "{stdout}");
    assert!(stdout.contains("tip ("), "{stdout}");
}

#[test]
#[redisrpc_testkit::needs(redis)]
fn runs_over_redis_in_two_processes() {
    let Some(redis) = RedisServer::start() else { return };
    publish_and_follow(&redis.url());
}

#[test]
#[redisrpc_testkit::needs(redis)]
fn runs_over_a_cluster_in_two_processes() {
    let Some(cluster) = RedisCluster::start() else { return };
    publish_and_follow(&cluster.url());
}

/// `robot-state publish` and `subscribe` at `url`: the subscriber sees the
/// arm move.
fn publish_and_follow(url: &str) {
    let publisher = robot_state(&["publish", "--redis", url, "--seconds", "3"]);
    let subscriber = robot_state(&["subscribe", "--redis", url, "--seconds", "2"]);
    let stdout = success(subscriber.wait_with_output().unwrap(), "subscribe");
    let published = success(publisher.wait_with_output().unwrap(), "publish");
    assert!(published.contains("published"), "{published}");
    let seqs = seqs(&stdout);
    assert!(seqs.len() >= 5, "{stdout}");
    assert!(
        seqs.windows(2).all(|w| w[0] <= w[1]) && seqs.last() > seqs.first(),
        "{stdout}"
    );
}

/// `publish --layout reem` shares the arm with REEM programs: REEM's own
/// `CallbackSubscriber` and `SilentSubscriber` (Python, REEM 0.1.2) follow
/// it on a Redis with the RedisJSON module.
#[test]
#[redisrpc_testkit::needs(redis, reem)]
fn a_reem_subscriber_follows_the_arm_published_in_reems_layout() {
    use std::io::BufRead;
    let Some((redis, python)) = redisrpc_testkit::reem::start() else {
        return;
    };
    let mut follower = redisrpc_testkit::reem::peer(&python, redis.port(), &["follow", "robot", "20"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("REEM's python runs");
    let mut lines = std::io::BufReader::new(follower.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().and_then(Result::ok).as_deref(), Some("listening"));

    let url = redis.url();
    let publisher = robot_state(&[
        "publish",
        "--layout",
        "reem",
        "--redis",
        &url,
        "--seconds",
        "2",
        "--rate",
        "50",
    ]);
    let published = success(publisher.wait_with_output().unwrap(), "publish --layout reem");
    assert!(published.starts_with("published "), "{published}");

    let report = lines.last().and_then(Result::ok).expect("REEM's subscribers report");
    assert!(
        follower.wait().unwrap().success(),
        "REEM's subscribers saw fewer than 20 updates"
    );
    let report: serde_json::Value = serde_json::from_str(&report).unwrap();
    let seen = report["callback"].as_array().unwrap();
    assert!(seen.iter().all(|update| update["path"] == "robot.arm"), "{seen:?}");
    let arm = &report["silent"]["arm"];
    assert!(arm["seq"].as_u64().unwrap() >= 20, "{arm}");
    assert_eq!(arm["joints"].as_array().map(Vec::len), Some(2), "{arm}");
}
