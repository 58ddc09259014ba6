//! A subscriber whose Redis connection is killed (`CLIENT KILL`) tells its
//! user, resubscribes by itself, and its mirror refuses to serve its copy
//! until it has read the document again, which then includes what was
//! published while it was away.

mod common;

use std::time::{Duration, Instant};

use redisrpc::backend::{Redis, RedisOptions};
use redisrpc::state::{Event, NdArray, State, Updates};
use redisrpc_testkit::RedisServer;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(10);

async fn next(updates: &mut Updates) -> Option<Event> {
    tokio::time::timeout(WAIT, updates.next())
        .await
        .expect("an event within 10 s")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[redisrpc_testkit::needs(redis)]
async fn subscribers_recover_from_killed_connections() {
    let Some(server) = RedisServer::start() else { return };
    let state = State::new(Redis::connect(&server.url()).await.unwrap());
    state.set("robot.arm.angle", &0.0).await.unwrap();
    let mut mirror = state.mirror("robot").await.unwrap();
    let mut updates = state.subscribe("robot.*").await.unwrap();
    let mut admin = common::admin(&server).await;

    for round in 1..=3 {
        // Kill the pub/sub connections and hold every client for a moment,
        // so the subscribers cannot be back before we look.
        let (killed, ()): (i64, ()) = redis::pipe()
            .atomic()
            .cmd("CLIENT")
            .arg("KILL")
            .arg("TYPE")
            .arg("pubsub")
            .cmd("CLIENT")
            .arg("PAUSE")
            .arg(700)
            .arg("ALL")
            .query_async(&mut admin)
            .await
            .unwrap();
        assert_eq!(killed, 2, "round {round}: the mirror's and the stream's connections");

        // The mirror refuses to serve what may be stale.
        let started = Instant::now();
        while mirror.is_in_sync() {
            assert!(started.elapsed() < WAIT, "round {round}: the mirror never noticed");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let error = mirror.get_value("robot.arm.angle").unwrap_err();
        assert!(error.is_out_of_sync(), "{error}");

        // Published while the subscribers are away: delivered to neither,
        // but the mirror reads it when it is back.
        state.publish("robot.arm.angle", &(round as f64)).await.unwrap();
        tokio::time::timeout(WAIT, async {
            while mirror.get::<f64>("robot.arm.angle").ok() != Some(round as f64) {
                mirror.changed().await.unwrap();
            }
        })
        .await
        .unwrap_or_else(|_| panic!("round {round}: the mirror did not recover"));
        assert!(mirror.is_in_sync());

        // The stream says what happened, then delivers again.
        assert_eq!(next(&mut updates).await, Some(Event::Disconnected));
        assert_eq!(next(&mut updates).await, Some(Event::Resubscribed));
        state.publish("robot.arm.speed", &round).await.unwrap();
        loop {
            match next(&mut updates).await {
                Some(Event::Update(update)) if update.path.to_string() == "robot.arm.speed" => {
                    assert_eq!(update.value, json!(round));
                    break;
                }
                // The publish made during the pause may arrive, if the
                // stream was back first.
                Some(Event::Update(update)) => assert_eq!(update.path.to_string(), "robot.arm.angle"),
                other => panic!("round {round}: {other:?}"),
            }
        }
        // The mirror follows live updates again.
        state.publish("robot.arm.angle", &(round as f64 + 0.5)).await.unwrap();
        tokio::time::timeout(WAIT, async {
            while mirror.get::<f64>("robot.arm.angle").ok() != Some(round as f64 + 0.5) {
                mirror.changed().await.unwrap();
            }
        })
        .await
        .unwrap();
        match next(&mut updates).await {
            Some(Event::Update(update)) => assert_eq!(update.value, json!(round as f64 + 0.5)),
            other => panic!("round {round}: {other:?}"),
        }
    }
}

/// A subscription dropped again and again, each time right after it is
/// back, waits longer before each reconnection (20, 40, 80, 160, 320 ms)
/// instead of reconnecting, and making every mirror re-read its document,
/// in a tight loop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[redisrpc_testkit::needs(redis)]
async fn a_subscriber_dropped_again_and_again_backs_off() {
    let Some(server) = RedisServer::start() else { return };
    let state = State::new(Redis::connect(&server.url()).await.unwrap());
    let mut updates = state.subscribe("robot.*").await.unwrap();
    let mut admin = common::admin(&server).await;

    let started = Instant::now();
    for round in 1..=5 {
        let killed = common::kill_clients(&mut admin, "pubsub").await;
        assert_eq!(killed, 1, "round {round}");
        assert_eq!(next(&mut updates).await, Some(Event::Disconnected), "round {round}");
        assert_eq!(next(&mut updates).await, Some(Event::Resubscribed), "round {round}");
    }
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(620), "five reconnections in {took:?}");
}

/// A pub/sub connection that stops answering (the server is paused; a
/// vanished peer looks the same) is noticed by its `PING` within the ping
/// interval and the command timeout, not after minutes of TCP keepalive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[redisrpc_testkit::needs(redis)]
async fn a_subscriber_notices_a_server_that_stops_answering() {
    let Some(server) = RedisServer::start() else { return };
    let options = RedisOptions::default()
        .with_subscription_ping_interval(Duration::from_millis(100))
        .with_command_timeout(Some(Duration::from_millis(300)));
    let state = State::new(Redis::connect_with(&server.url(), options).await.unwrap());
    let mut updates = state.subscribe("robot.*").await.unwrap();
    let mut admin = common::admin(&server).await;

    let pause = Duration::from_secs(3);
    let () = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(pause.as_millis() as u64)
        .arg("ALL")
        .query_async(&mut admin)
        .await
        .unwrap();
    // Bounded by the pause: after it the server answers again, and without
    // the PING nothing would ever be noticed.
    let event = tokio::time::timeout(pause - Duration::from_millis(500), updates.next())
        .await
        .expect("noticed while the server is paused");
    assert_eq!(event, Some(Event::Disconnected));
    // Back once the pause is over, and delivering.
    assert_eq!(next(&mut updates).await, Some(Event::Resubscribed));
    state.publish("robot.arm.angle", &1.5).await.unwrap();
    match next(&mut updates).await {
        Some(Event::Update(update)) => assert_eq!(update.value, json!(1.5)),
        other => panic!("{other:?}"),
    }
}

/// Writes go on after the shared connection is killed and after Redis
/// forgets the commit script (as after a restart, or `SCRIPT FLUSH`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[redisrpc_testkit::needs(redis)]
async fn writes_recover_from_killed_connections_and_flushed_scripts() {
    let Some(server) = RedisServer::start() else { return };
    let state = State::new(Redis::connect(&server.url()).await.unwrap());
    state.set("robot.n", &0).await.unwrap();
    let mut admin = common::admin(&server).await;

    let () = redis::cmd("SCRIPT").arg("FLUSH").query_async(&mut admin).await.unwrap();
    assert_eq!(state.incr("robot.n", 1).await.unwrap(), 1.into());

    let killed = common::kill_clients(&mut admin, "normal").await;
    assert!(killed >= 1);
    // The first command may find the connection dead; the next works.
    let mut failures = 0;
    let n = loop {
        match state.incr("robot.n", 1).await {
            Ok(n) => break n,
            Err(e) => {
                assert!(e.is_connection(), "{e}");
                failures += 1;
                assert!(failures <= 3, "still failing: {e}");
            }
        }
    };
    // A failed increment may or may not have been applied; none was doubled.
    assert!(n == 2.into() || n == 3.into(), "{n}");
    assert_eq!(state.get::<i64>("robot.n").await.unwrap(), n.as_i64().unwrap());
}

/// Binary values are staged beside the commit script: a write goes through
/// after Redis forgot the script, and no write, applied, lost to a
/// concurrent one or refused, leaves a staged hash behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[redisrpc_testkit::needs(redis)]
async fn binary_writes_survive_a_flushed_script_and_leave_nothing_staged() {
    let Some(server) = RedisServer::start() else { return };
    let state = State::new(Redis::connect(&server.url()).await.unwrap());
    let frame = |seed: u8| NdArray::from_elements(vec![64, 64], &vec![seed; 64 * 64]).unwrap();
    state.set_array("robot.camera.frame", &frame(1)).await.unwrap();
    let mut admin = common::admin(&server).await;

    let () = redis::cmd("SCRIPT").arg("FLUSH").query_async(&mut admin).await.unwrap();
    state.set_array("robot.camera.frame", &frame(2)).await.unwrap();
    assert_eq!(state.get_array("robot.camera.frame").await.unwrap(), frame(2));

    // Writers racing on one document: most tries lose a compare-and-set.
    let writers: Vec<_> = (0..4u8)
        .map(|writer| {
            let state = state.clone();
            tokio::spawn(async move {
                for round in 0..20u8 {
                    let path = format!("robot.camera.w{writer}");
                    state
                        .set_array(path.as_str(), &frame(writer * 20 + round))
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.unwrap();
    }
    for writer in 0..4u8 {
        let path = format!("robot.camera.w{writer}");
        assert_eq!(state.get_array(path.as_str()).await.unwrap(), frame(writer * 20 + 19));
    }
    // Refused: `rover` is another program's string.
    let () = redis::cmd("SET")
        .arg("rover")
        .arg("x")
        .query_async(&mut admin)
        .await
        .unwrap();
    assert!(state.set_array("rover.frame", &frame(3)).await.is_err());

    let staged: Vec<String> = redis::cmd("KEYS")
        .arg("__state__:*:staged:*")
        .query_async(&mut admin)
        .await
        .unwrap();
    assert!(staged.is_empty(), "left behind: {staged:?}");
}
