//! Publishing, update streams with patterns, and live mirrors, on both
//! backends.

mod common;

use std::time::Duration;

use redisrpc::backend::SharedBackend;
use redisrpc::state::{Event, Mirror, NdArray, State, Update, Updates};
use serde_json::{Value, json};

/// Every wait is bounded: a missing update fails the test instead of hanging.
const WAIT: Duration = Duration::from_secs(10);

async fn next_update(updates: &mut Updates) -> Update {
    match tokio::time::timeout(WAIT, updates.next())
        .await
        .expect("an update within 10 s")
    {
        Some(Event::Update(update)) => update,
        other => panic!("expected an update, got {other:?}"),
    }
}

/// Waits until the mirror shows `expected` at `path`.
async fn mirror_shows(mirror: &mut Mirror, path: &str, expected: Value) {
    let result = tokio::time::timeout(WAIT, async {
        while mirror.get_value(path).ok() != Some(expected.clone()) {
            mirror.changed().await.unwrap();
        }
    })
    .await;
    assert!(
        result.is_ok(),
        "mirror shows {:?} at {path}, not {expected}",
        mirror.get_value(path)
    );
}

common::backend_tests! {
    async fn updates_follow_patterns_in_order(backend: SharedBackend) -> anyhow::Result<()> {
        let state = State::new(backend);
        let mut robot = state.subscribe("robot.*").await?;
        let mut joints = state.subscribe("robot.joints\\[*").await?;
        let mut exact = state.subscribe("robot").await?;

        state.publish("robot", &json!({"joints": [0, 0]})).await?;
        state.publish("other.x", &1).await?; // matches none
        state.set("robot.quiet", &1).await?; // plain writes do not notify
        state.publish("robot.arm.angle", &0.5).await?;
        state.publish("robot.joints[1]", &2.5).await?;

        let update = next_update(&mut exact).await;
        assert_eq!((update.path.to_string(), update.value), ("robot".into(), json!({"joints": [0, 0]})));
        let first = next_update(&mut robot).await;
        assert_eq!((first.path.to_string(), first.value), ("robot.arm.angle".into(), json!(0.5)));
        let second = next_update(&mut robot).await;
        assert_eq!((second.path.to_string(), second.value), ("robot.joints[1]".into(), json!(2.5)));
        assert!(second.version > first.version);
        assert_eq!(second.base, first.version);
        let update = next_update(&mut joints).await;
        assert_eq!(update.path.to_string(), "robot.joints[1]");

        // Many updates arrive all, in order, with their exact values.
        for i in 0..500u64 {
            state.publish("robot.count", &(u64::MAX - i)).await?;
        }
        for i in 0..500u64 {
            let update = next_update(&mut robot).await;
            assert_eq!(update.value, json!(u64::MAX - i));
        }
        Ok(())
    }

    async fn a_mirror_follows_a_document(backend: SharedBackend) -> anyhow::Result<()> {
        let state = State::new(backend);
        state.set("robot", &json!({"arm": {"angle": 0.0}, "joints": [1, 2]})).await?;
        let mut mirror = state.mirror("robot").await?;
        assert!(mirror.is_in_sync());
        assert_eq!(mirror.get::<f64>("robot.arm.angle")?, 0.0);

        state.publish("robot.arm.angle", &0.1).await?;
        mirror_shows(&mut mirror, "robot.arm.angle", json!(0.1)).await;
        state.publish("robot.joints[1]", &-0.0).await?;
        mirror_shows(&mut mirror, "robot.joints", json!([1, -0.0])).await;
        assert_eq!(mirror.get::<f64>("robot.joints[1]")?.to_bits(), (-0.0f64).to_bits());
        // A plain write is picked up at the next publish, which finds the gap.
        state.set("robot.mode", &"manual").await?;
        state.publish("robot.arm.angle", &0.2).await?;
        mirror_shows(&mut mirror, "robot.arm.angle", json!(0.2)).await;
        assert_eq!(mirror.get::<String>("robot.mode")?, "manual");
        // A binary value arrives as its marker.
        state.publish_array("robot.frame", &NdArray::from_elements(vec![1], &[1u8]).unwrap()).await?;
        mirror_shows(&mut mirror, "robot.frame", json!({"$binary": {"label": "ndarray", "key": "__state__:{robot}.frame"}})).await;
        // Replacing the whole document.
        state.publish("robot", &json!({"new": true})).await?;
        mirror_shows(&mut mirror, "robot", json!({"new": true})).await;
        assert_eq!(mirror.version(), state.backend().doc_get("robot").await?.unwrap().version);

        assert!(mirror.get_value("other.x").unwrap_err().is_invalid_path());
        assert!(mirror.get_value("robot.arm").unwrap_err().is_not_found());
        Ok(())
    }

    async fn a_mirror_of_a_subtree_sees_ancestors_and_descendants(backend: SharedBackend) -> anyhow::Result<()> {
        let state = State::new(backend);
        let mut arm = state.mirror("robot.arm").await?;
        assert!(arm.get_value("robot.arm").unwrap_err().is_not_found());
        state.publish("robot.arm", &json!({"angle": 1})).await?;
        mirror_shows(&mut arm, "robot.arm", json!({"angle": 1})).await;
        state.publish("robot.arm.angle", &2).await?;
        mirror_shows(&mut arm, "robot.arm.angle", json!(2)).await;
        state.publish("robot.leg", &7).await?; // a sibling: not ours
        state.publish("robot", &json!({"arm": {"angle": 3}, "leg": 8})).await?;
        mirror_shows(&mut arm, "robot.arm", json!({"angle": 3})).await;
        state.publish("robot.arm.angle", &4).await?; // after a version it did not see
        mirror_shows(&mut arm, "robot.arm.angle", json!(4)).await;
        assert!(arm.get_value("robot.leg").unwrap_err().is_invalid_path());
        state.publish("robot", &json!({"leg": 9})).await?;
        tokio::time::timeout(WAIT, async {
            while !arm.get_value("robot.arm").is_err_and(|e| e.is_not_found()) {
                arm.changed().await.unwrap();
            }
        })
        .await?;
        Ok(())
    }

    /// A subscriber that falls too far behind is told, as after a lost
    /// connection: the embedded backend keeps the last 4,096 notifications,
    /// and the Redis backend buffers as many before it drops the connection
    /// (its client library would otherwise buffer without limit). A mirror
    /// of the same document ends on the latest state.
    async fn a_subscriber_that_falls_behind_is_told(backend: SharedBackend) -> anyhow::Result<()> {
        const PUBLISHED: i64 = 10_000;
        let state = State::new(backend);
        let mut mirror = state.mirror("lag").await?;
        let mut updates = state.subscribe("lag.*").await?;
        for i in 0..PUBLISHED {
            state.publish("lag.n", &i).await?;
        }
        // Updates from before the gap may come first, in order.
        let mut last = -1;
        loop {
            match tokio::time::timeout(WAIT, updates.next()).await.expect("told within 10 s") {
                Some(Event::Update(update)) => {
                    let n = update.value.as_i64().unwrap();
                    assert!(n > last, "{n} after {last}");
                    last = n;
                }
                Some(Event::Disconnected) => break,
                other => panic!("expected an update or Disconnected, got {other:?}"),
            }
        }
        assert!(last < PUBLISHED - 1, "told of a gap after everything arrived");
        assert_eq!(tokio::time::timeout(WAIT, updates.next()).await?, Some(Event::Resubscribed));
        state.publish("lag.n", &PUBLISHED).await?;
        loop {
            match tokio::time::timeout(WAIT, updates.next()).await? {
                Some(Event::Update(update)) => {
                    let n = update.value.as_i64().unwrap();
                    assert!(n > last, "{n} after {last}");
                    if n == PUBLISHED {
                        break;
                    }
                    last = n;
                }
                // Still behind when the last one came: told again.
                Some(Event::Disconnected) => {
                    assert_eq!(tokio::time::timeout(WAIT, updates.next()).await?, Some(Event::Resubscribed));
                }
                other => panic!("expected an update or Disconnected, got {other:?}"),
            }
        }
        mirror_shows(&mut mirror, "lag.n", json!(PUBLISHED)).await;
        assert!(mirror.is_in_sync());
        Ok(())
    }
}

/// A mirror that falls behind re-reads the document and shows the latest
/// state. On a single-threaded runtime its task cannot run while the
/// embedded backend publishes (which never yields), so it surely falls
/// behind.
#[tokio::test(flavor = "current_thread")]
async fn a_mirror_that_falls_behind_shows_the_latest_state() {
    let state = State::new(common::memory_backend());
    let mut mirror = state.mirror("lag").await.unwrap();
    for i in 0..5_000 {
        state.publish("lag.n", &i).await.unwrap();
    }
    assert_eq!(
        mirror.version(),
        0,
        "the mirror's task ran meanwhile: it did not fall behind"
    );
    mirror_shows(&mut mirror, "lag", json!({"n": 4_999})).await;
    assert!(mirror.is_in_sync());
    assert_eq!(
        mirror.version(),
        state.backend().doc_get("lag").await.unwrap().unwrap().version
    );
}
