//! Sharing documents with REEM programs: REEM 0.1.2 itself (Python, in a
//! virtualenv of its own) and our `State` in REEM's layout, on one Redis
//! server with the RedisJSON module. Each direction: REEM writes and we
//! read, we write and REEM reads, with nested values, numbers at their
//! limits, top-level values and numpy arrays of several types and shapes.

use std::io::BufRead;
use std::process::Output;
use std::time::Duration;

use redisrpc::Error;
use redisrpc::backend::{Memory, Redis};
use redisrpc::state::{Dtype, Event, Layout, NdArray, State, ValueType};
use redisrpc_testkit::{RedisCluster, RedisServer};
use serde_json::{Value, json};

/// Runs `reem_peer.py PORT args…` with REEM's Python.
fn reem(python: &str, redis: &RedisServer, args: &[&str]) -> Output {
    let output = redisrpc_testkit::reem::peer(python, redis.port(), args)
        .output()
        .expect("runs REEM's python");
    assert!(
        output.status.success(),
        "reem_peer.py {args:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

async fn reem_state(redis: &RedisServer) -> State {
    let backend = Redis::connect(&redis.url()).await.expect("connects");
    State::new(backend).with_layout(Layout::Reem)
}

/// An array as `reem_peer.py` prints one.
fn printed(dtype: &str, shape: &[usize], data: Value) -> Value {
    json!({"dtype": dtype, "shape": shape, "data": data})
}

#[tokio::test]
#[redisrpc_testkit::needs(redis, reem)]
async fn what_reem_writes_we_read() {
    let Some((redis, python)) = redisrpc_testkit::reem::start() else {
        return;
    };
    reem(&python, &redis, &["write", "robot"]);
    let state = reem_state(&redis).await;

    let arm: Value = state.get("robot.arm").await.unwrap();
    assert_eq!(
        arm,
        json!({"angle": 0.5, "name": "left", "joints": [1, 2, 3], "big": 1u64 << 62, "tiny": 0.1, "neg": i64::MIN})
    );
    assert_eq!(state.get::<u64>("robot.arm.big").await.unwrap(), 1 << 62);
    assert_eq!(state.get::<i64>("robot.arm.neg").await.unwrap(), i64::MIN);
    assert_eq!(state.get::<f64>("robot.arm.tiny").await.unwrap(), 0.1);
    assert_eq!(state.get::<u32>("robot.camera.fps").await.unwrap(), 30);
    assert_eq!(
        state.type_of("robot.camera.frame").await.unwrap(),
        ValueType::Binary("ndarray".into())
    );

    let frame = state.get_array("robot.camera.frame").await.unwrap();
    assert_eq!((frame.dtype(), frame.shape()), (Dtype::U8, &[2, 3, 4][..]));
    assert_eq!(frame.bytes(), (0..24).collect::<Vec<u8>>());
    let depth = state.get_array("robot.depth").await.unwrap();
    assert_eq!((depth.dtype(), depth.shape()), (Dtype::F32, &[5][..]));
    assert_eq!(depth.to_vec::<f32>().unwrap(), [0.0, 0.25, 0.5, 0.75, 1.0]);
    let pose = state.get_array("robot.pose").await.unwrap();
    assert_eq!((pose.dtype(), pose.shape()), (Dtype::F64, &[1, 2][..]));
    assert_eq!(pose.to_vec::<f64>().unwrap(), [1.5, 2.5]);

    // A top-level number, which REEM keeps wrapped.
    assert_eq!(state.get::<f64>("speed").await.unwrap(), 3.5);
}

#[tokio::test]
#[redisrpc_testkit::needs(redis, reem)]
async fn what_we_write_reem_reads() {
    let Some((redis, python)) = redisrpc_testkit::reem::start() else {
        return;
    };
    let state = reem_state(&redis).await;
    state
        .set(
            "bot",
            &json!({"arm": {"angle": 0.5, "joints": [1, 2]}, "name": "b", "big": u64::MAX >> 1}),
        )
        .await
        .unwrap();
    state.set("bot.arm.angle", &1.25).await.unwrap();
    state.set("bot.count", &0).await.unwrap();
    state.incr("bot.count", 2).await.unwrap();
    let frame = NdArray::from_elements(vec![2, 2, 3], &(0..12).collect::<Vec<u8>>()).unwrap();
    state.set_array("bot.camera.frame", &frame).await.unwrap();
    let depth = NdArray::from_elements(vec![3], &[0.5f32, 1.5, 2.5]).unwrap();
    state.set_array("bot.depth", &depth).await.unwrap();
    let grid = NdArray::from_elements(vec![2, 1], &[-1.0f64, 1e300]).unwrap();
    state.set_array("bot.grid", &grid).await.unwrap();
    // Replacing an array by a value, and deleting one, takes their hashes.
    state.set("bot.grid", &"gone").await.unwrap();
    state.delete("bot.depth").await.unwrap();

    let read = reem(&python, &redis, &["read", "bot"]);
    let read: Value = serde_json::from_slice(&read.stdout).expect("REEM's value as JSON");
    assert_eq!(
        read,
        json!({
            "arm": {"angle": 1.25, "joints": [1, 2]},
            "name": "b",
            "big": u64::MAX >> 1,
            "count": 2,
            "grid": "gone",
            "camera": {"frame": printed("uint8", &[2, 2, 3], json!((0..12).collect::<Vec<u8>>()))},
        })
    );
    assert_eq!(
        redis.cli(&["EXISTS", "bot.depth", "bot.grid"]).trim(),
        "0",
        "no array hash is left behind"
    );
}

#[tokio::test]
#[redisrpc_testkit::needs(redis, reem)]
async fn we_change_what_reem_wrote_and_reem_reads_it() {
    let Some((redis, python)) = redisrpc_testkit::reem::start() else {
        return;
    };
    reem(&python, &redis, &["write", "robot"]);
    let state = reem_state(&redis).await;
    state.set("robot.arm.angle", &0.75).await.unwrap();
    let frame = NdArray::from_elements(vec![2], &[7u8, 9]).unwrap();
    state.set_array("robot.camera.frame", &frame).await.unwrap();

    let read = reem(&python, &redis, &["read", "robot"]);
    let read: Value = serde_json::from_slice(&read.stdout).unwrap();
    assert_eq!(read["arm"]["angle"], json!(0.75));
    assert_eq!(read["arm"]["neg"], json!(i64::MIN));
    assert_eq!(
        read["camera"],
        json!({"fps": 30, "frame": printed("uint8", &[2], json!([7, 9]))})
    );
    assert_eq!(
        read["depth"],
        printed("float32", &[5], json!([0.0, 0.25, 0.5, 0.75, 1.0]))
    );
}

/// The blocking API, from a plain thread, in REEM's layout too.
#[test]
#[redisrpc_testkit::needs(redis, reem)]
fn a_plain_thread_shares_documents_with_reem() {
    let Some((redis, python)) = redisrpc_testkit::reem::start() else {
        return;
    };
    reem(&python, &redis, &["write", "robot"]);
    let backend = redisrpc::blocking::connect(&redis.url()).unwrap();
    let state = redisrpc::blocking::State::new(backend).with_layout(Layout::Reem);
    assert_eq!(state.get::<f64>("robot.arm.angle").unwrap(), 0.5);
    assert_eq!(state.get_array("robot.camera.frame").unwrap().shape(), [2, 3, 4]);
    state.set("robot.arm.angle", &0.25).unwrap();
    let read: Value = serde_json::from_slice(&reem(&python, &redis, &["read", "robot"]).stdout).unwrap();
    assert_eq!(read["arm"]["angle"], json!(0.25));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[redisrpc_testkit::needs(redis, reem)]
async fn what_reem_publishes_our_subscription_and_mirror_follow() {
    let Some((redis, python)) = redisrpc_testkit::reem::start() else {
        return;
    };
    let state = reem_state(&redis).await;
    let mut updates = state.subscribe("pub*").await.unwrap();
    let mut mirror = state.mirror("pub").await.unwrap();

    // `PublishSpace`: the whole value, `count` 1 to 5, then a new frame.
    let publisher = {
        let (python, redis_port) = (python.clone(), redis.port());
        tokio::task::spawn_blocking(move || {
            redisrpc_testkit::reem::peer(&python, redis_port, &["publish", "pub", "5"])
                .status()
                .expect("runs REEM's python")
        })
    };
    let mut seen = Vec::new();
    let followed = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(event) = updates.next().await {
            if let Event::Update(update) = event {
                let done = update.path.to_string() == "pub.frame";
                seen.push(update);
                if done {
                    break;
                }
            }
        }
    })
    .await;
    assert!(publisher.await.unwrap().success());
    assert!(followed.is_ok(), "the frame's publish never came; saw {seen:?}");
    assert_eq!(seen[0].path.to_string(), "pub", "the whole value first: {seen:?}");
    let counts: Vec<&Value> = seen
        .iter()
        .filter(|u| u.path.to_string() == "pub.count")
        .map(|u| &u.value)
        .collect();
    assert_eq!(counts.len(), 5, "one update per publish: {seen:?}");
    assert_eq!(counts.last(), Some(&&json!(5)));
    let frame = state.get_array("pub.frame").await.unwrap();
    assert_eq!(frame.bytes(), [0, 1, 2]);

    // The mirror read again on each notification.
    let synced = tokio::time::timeout(Duration::from_secs(10), async {
        while mirror.get::<u32>("pub.count").ok() != Some(5)
            || mirror.get_value("pub.frame").ok() != Some(state.get_value("pub.frame").await.unwrap())
        {
            mirror.changed().await.unwrap();
        }
    })
    .await;
    assert!(synced.is_ok(), "the mirror holds {:?}", mirror.get_value("pub"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[redisrpc_testkit::needs(redis, reem)]
async fn what_we_publish_reems_subscribers_follow() {
    let Some((redis, python)) = redisrpc_testkit::reem::start() else {
        return;
    };
    let state = reem_state(&redis).await;
    // A `CallbackSubscriber` and a `SilentSubscriber` of `bot`, until they
    // have seen four updates.
    let mut follower = redisrpc_testkit::reem::peer(&python, redis.port(), &["follow", "bot", "4"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("runs REEM's python");
    let mut lines = std::io::BufReader::new(follower.stdout.take().unwrap()).lines();
    let listening = tokio::task::spawn_blocking(move || {
        let first = lines.next().and_then(|line| line.ok());
        (first, lines)
    });
    let (first, lines) = listening.await.unwrap();
    assert_eq!(first.as_deref(), Some("listening"));

    // REEM's readers learn of a new array path from a notification on a
    // connection of their own, which a publish can overtake (between REEM
    // programs too): the frame is written once before it is published.
    let blank = NdArray::from_elements(vec![3], &[0u8; 3]).unwrap();
    state.set_array("bot.frame", &blank).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    for count in 1..=3 {
        state.publish("bot.count", &count).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let frame = NdArray::from_elements(vec![3], &[0u8, 1, 2]).unwrap();
    state.publish_array("bot.frame", &frame).await.unwrap();

    let report = tokio::task::spawn_blocking(move || {
        let report = lines.last().and_then(|line| line.ok());
        (report, follower.wait())
    });
    let (report, status) = tokio::time::timeout(Duration::from_secs(30), report)
        .await
        .unwrap()
        .unwrap();
    assert!(status.unwrap().success(), "REEM's subscribers did not see four updates");
    let report: Value = serde_json::from_str(&report.expect("a report")).unwrap();
    let paths: Vec<&str> = report["callback"]
        .as_array()
        .unwrap()
        .iter()
        .map(|seen| seen["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["bot.count", "bot.count", "bot.count", "bot.frame"]);
    let expected = json!({"count": 3, "frame": printed("uint8", &[3], json!([0, 1, 2]))});
    assert_eq!(report["callback"][3]["value"], expected);
    assert_eq!(report["silent"], expected);
}

#[tokio::test]
#[redisrpc_testkit::needs(redis, reem)]
async fn numbers_round_trip_exactly_through_redisjson() {
    let Some((redis, _python)) = redisrpc_testkit::reem::start() else {
        return;
    };
    let state = reem_state(&redis).await;
    let numbers = json!({
        "u64_max": u64::MAX, "i64_min": i64::MIN, "i64_max": i64::MAX,
        "tenth": 0.1, "huge": 1e300, "tiniest": 5e-324, "third": 1.0 / 3.0,
    });
    state.set("numbers", &numbers).await.unwrap();
    state.set("numbers.negative_zero", &-0.0f64).await.unwrap();
    // Read through a fresh store, so nothing comes from this one's cache.
    let fresh = reem_state(&redis).await;
    assert_eq!(fresh.get::<u64>("numbers.u64_max").await.unwrap(), u64::MAX);
    assert_eq!(fresh.get::<i64>("numbers.i64_min").await.unwrap(), i64::MIN);
    assert_eq!(fresh.get::<i64>("numbers.i64_max").await.unwrap(), i64::MAX);
    for name in ["tenth", "huge", "tiniest", "third"] {
        let read = fresh.get::<f64>(&format!("numbers.{name}")[..]).await.unwrap();
        assert_eq!(read.to_bits(), numbers[name].as_f64().unwrap().to_bits(), "{name}");
    }
    let zero = fresh.get::<f64>("numbers.negative_zero").await.unwrap();
    assert!(zero == 0.0 && zero.is_sign_negative());
    assert_eq!(fresh.incr("numbers.u64_max", -1).await.unwrap(), (u64::MAX - 1).into());
}

#[tokio::test]
#[redisrpc_testkit::needs(redis)]
async fn the_reem_layout_is_refused_where_it_is_not_offered() {
    let embedded = State::new(Memory::new()).with_layout(Layout::Reem);
    let refusal = embedded.get::<Value>("robot").await.unwrap_err();
    assert!(matches!(refusal, Error::Config(_)), "{refusal:?}");

    let Some(redis) = RedisServer::start() else { return };
    let without_module = reem_state(&redis).await;
    match without_module.set("robot.x", &1).await.unwrap_err() {
        Error::Config(why) => assert!(why.contains("RedisJSON"), "{why}"),
        other => panic!("not a configuration error: {other:?}"),
    }

    let Some(cluster) = tokio::task::spawn_blocking(RedisCluster::start).await.unwrap() else {
        return;
    };
    let backend = Redis::connect(&cluster.url()).await.unwrap();
    let on_a_cluster = State::new(backend).with_layout(Layout::Reem);
    match on_a_cluster.set("robot.x", &1).await.unwrap_err() {
        Error::Config(why) => assert!(why.contains("Cluster"), "{why}"),
        other => panic!("not a configuration error: {other:?}"),
    }
}
