//! The shared state's document operations, on both backends: every
//! operation, exact round trips, and errors that change nothing.

mod common;

use std::future::Future;

use redisrpc::backend::SharedBackend;
use redisrpc::state::{State, ValueType};
use serde::{Deserialize, Serialize};
use serde_json::{Number, json};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Pose {
    x: f64,
    y: f64,
    theta: f64,
}

/// Runs `operation`, asserts that it fails with an error of the kind `is`
/// checks, and that the document `key` is the same after as before.
async fn fails_and_changes_nothing<T: std::fmt::Debug>(
    state: &State,
    key: &str,
    operation: impl Future<Output = redisrpc::Result<T>>,
    is: fn(&redisrpc::Error) -> bool,
) {
    let before = state.backend().doc_get(key).await.unwrap();
    let error = operation.await.expect_err("the operation must fail");
    assert!(is(&error), "unexpected error: {error}");
    assert_eq!(state.backend().doc_get(key).await.unwrap(), before, "after: {error}");
}

common::backend_tests! {
    async fn get_set_typed_and_as_json(backend: SharedBackend) -> anyhow::Result<()> {
        let state = State::new(backend);
        let pose = Pose { x: 1.0, y: -2.5, theta: 0.1 };
        state.set("robot.pose", &pose).await?;
        assert_eq!(state.get::<Pose>("robot.pose").await?, pose);
        assert_eq!(state.get_value("robot").await?, json!({"pose": {"x": 1.0, "y": -2.5, "theta": 0.1}}));
        assert_eq!(state.get::<f64>("robot.pose.theta").await?, 0.1);

        // Missing parents are created as objects.
        state.set("robot.arm.wrist.angle", &0.5).await?;
        assert_eq!(state.get_value("robot.arm").await?, json!({"wrist": {"angle": 0.5}}));
        // Setting a top-level key replaces the document.
        state.set("config", &json!([1, "two"])).await?;
        assert_eq!(state.get_value("config[1]").await?, json!("two"));
        state.set("config[0]", &json!({"a": null})).await?;
        assert_eq!(state.get_value("config").await?, json!([{"a": null}, "two"]));
        // A quoted member name.
        state.set("robot[\"odd.name\"]", &3).await?;
        assert_eq!(state.get::<i32>("robot[\"odd.name\"]").await?, 3);
        Ok(())
    }

    async fn exactness_of_numbers_text_and_empty_containers(backend: SharedBackend) -> anyhow::Result<()> {
        let state = State::new(backend);
        let floats = [0.1, 1e-300, -0.0, 5e-324, f64::MAX, f64::MIN_POSITIVE, 1.0 / 3.0, -1e300];
        state.set("exact.floats", &floats).await?;
        let back: Vec<f64> = state.get("exact.floats").await?;
        let bits = |v: &[f64]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&back), bits(&floats));

        state.set("exact.ints", &(i64::MIN, i64::MAX, u64::MAX, 0u64)).await?;
        let ints: (i64, i64, u64, u64) = state.get("exact.ints").await?;
        assert_eq!(ints, (i64::MIN, i64::MAX, u64::MAX, 0));
        assert_eq!(state.type_of("exact.ints[2]").await?, ValueType::Integer);
        assert_eq!(state.type_of("exact.floats[2]").await?, ValueType::Float);

        state.set("exact.empty", &json!({"array": [], "object": {}, "nested": [[], {}]})).await?;
        assert_eq!(state.get_value("exact.empty").await?, json!({"array": [], "object": {}, "nested": [[], {}]}));
        assert_eq!(state.type_of("exact.empty.array").await?, ValueType::Array);
        assert_eq!(state.type_of("exact.empty.object").await?, ValueType::Object);

        let text = "Grüße, 世界 🤖 \u{0} \"quoted\" \\ \n";
        state.set("exact.text", &text).await?;
        assert_eq!(state.get::<String>("exact.text").await?, text);
        state.set("exact.ünïcødé", &1).await?;
        assert_eq!(state.get::<i32>("exact.ünïcødé").await?, 1);

        // Increments keep integers exact at the edges of their range.
        state.set("exact.big", &(u64::MAX - 1)).await?;
        assert_eq!(state.incr("exact.big", 1).await?, Number::from(u64::MAX));
        state.set("exact.small", &(i64::MIN + 1)).await?;
        assert_eq!(state.decr("exact.small", 1).await?, Number::from(i64::MIN));
        Ok(())
    }

    async fn delete_exists_type_and_len(backend: SharedBackend) -> anyhow::Result<()> {
        let state = State::new(backend);
        state.set("robot", &json!({"joints": [1, 2, 3], "name": "ärm", "flags": {"a": true}, "n": null})).await?;
        assert!(state.exists("robot.joints[2]").await?);
        assert!(!state.exists("robot.joints[3]").await?);
        assert!(!state.exists("robot.legs").await?);
        assert!(!state.exists("nobody").await?);
        assert_eq!(state.len("robot.joints").await?, 3);
        assert_eq!(state.len("robot.name").await?, 3);
        assert_eq!(state.len("robot.flags").await?, 1);
        assert_eq!(state.type_of("robot.flags.a").await?, ValueType::Boolean);
        assert_eq!(state.type_of("robot.n").await?, ValueType::Null);
        assert_eq!(state.type_of("robot.name").await?, ValueType::String);

        assert!(state.delete("robot.joints[0]").await?);
        assert_eq!(state.get_value("robot.joints").await?, json!([2, 3]));
        assert!(state.delete("robot.flags.a").await?);
        assert_eq!(state.get_value("robot.flags").await?, json!({}));
        assert!(!state.delete("robot.flags.a").await?);
        assert!(state.delete("robot").await?);
        assert!(!state.exists("robot").await?);
        assert!(!state.delete("robot").await?);
        // A document is an ordinary key: `DEL` removes it on both backends.
        state.set("gone", &1).await?;
        assert!(state.backend().del("gone").await?);
        assert!(!state.exists("gone").await?);
        Ok(())
    }

    async fn arithmetic_and_append(backend: SharedBackend) -> anyhow::Result<()> {
        let state = State::new(backend);
        state.set("c", &json!({"n": 10, "f": 1.5, "list": []})).await?;
        assert_eq!(state.incr("c.n", 5).await?, Number::from(15));
        assert_eq!(state.decr("c.n", 20).await?, Number::from(-5));
        assert_eq!(state.mul("c.n", -4).await?, Number::from(20));
        assert_eq!(state.div("c.n", 8).await?.as_f64(), Some(2.5));
        assert_eq!(state.type_of("c.n").await?, ValueType::Float);
        assert_eq!(state.incr("c.f", 0.25).await?.as_f64(), Some(1.75));
        assert_eq!(state.mul("c.f", 2).await?.as_f64(), Some(3.5));
        assert_eq!(state.get_value("c.f").await?, json!(3.5));

        assert_eq!(state.append("c.list", &1).await?, 1);
        assert_eq!(state.extend("c.list", [json!("two"), json!([3])]).await?, 3);
        assert_eq!(state.extend("c.list", Vec::<i32>::new()).await?, 3);
        assert_eq!(state.get_value("c.list").await?, json!([1, "two", [3]]));
        Ok(())
    }

    async fn errors_are_clear_and_change_nothing(backend: SharedBackend) -> anyhow::Result<()> {
        let state = State::new(backend);
        state.set("r", &json!({"name": "arm", "joints": [1, 2], "max": u64::MAX, "zero": 0})).await?;
        let wrong = redisrpc::Error::is_wrong_type;
        let missing = redisrpc::Error::is_not_found;
        fails_and_changes_nothing(&state, "r", state.incr("r.name", 1), wrong).await;
        fails_and_changes_nothing(&state, "r", state.set("r.joints[2]", &0), missing).await;
        fails_and_changes_nothing(&state, "r", state.set("r.joints.x", &0), wrong).await;
        fails_and_changes_nothing(&state, "r", state.set("r.name.first", &0), wrong).await;
        fails_and_changes_nothing(&state, "r", state.set("r.legs[0]", &0), missing).await;
        fails_and_changes_nothing(&state, "r", state.append("r.name", &0), wrong).await;
        fails_and_changes_nothing(&state, "r", state.len("r.max"), wrong).await;
        fails_and_changes_nothing(&state, "r", state.get::<i32>("r.joints[9]"), missing).await;
        fails_and_changes_nothing(&state, "r", state.incr("r.absent", 1), missing).await;
        let arithmetic = |e: &redisrpc::Error| matches!(e, redisrpc::Error::Arithmetic { .. });
        fails_and_changes_nothing(&state, "r", state.incr("r.max", 1), arithmetic).await;
        fails_and_changes_nothing(&state, "r", state.div("r.joints[0]", 0), arithmetic).await;
        fails_and_changes_nothing(&state, "r", state.set("r.nan", &f64::NAN), redisrpc::Error::is_encode).await;
        let decode = |e: &redisrpc::Error| matches!(e, redisrpc::Error::Deserialize { .. });
        fails_and_changes_nothing(&state, "r", state.get::<String>("r.max"), decode).await;
        let invalid = redisrpc::Error::is_invalid_path;
        fails_and_changes_nothing(&state, "r", state.set("r..x", &0), invalid).await;
        fails_and_changes_nothing(&state, "r", state.get_value("r[x]"), invalid).await;

        let error = state.get_value("nobody.x").await.unwrap_err();
        assert!(error.is_not_found());
        assert!(error.to_string().contains("`nobody` does not exist"), "{error}");
        let error = state.set("r.joints[5]", &0).await.unwrap_err();
        assert!(error.to_string().contains("past the end of `r.joints`, which has 2 elements"), "{error}");
        let error = state.incr("r.name", 1).await.unwrap_err();
        assert_eq!(error.to_string(), "wrong type at `r.name`: expected number, found string");
        Ok(())
    }

    async fn update_reads_changes_and_writes_back_a_typed_subtree(backend: SharedBackend) -> anyhow::Result<()> {
        let state = State::new(backend);
        state.set("robot.pose", &Pose { x: 0.0, y: 0.0, theta: 0.0 }).await?;
        let pose = state.update("robot.pose", |pose: &mut Pose| pose.x += 1.5).await?;
        assert_eq!(pose.x, 1.5);
        assert_eq!(state.get::<Pose>("robot.pose").await?, pose);
        // A subtree that does not convert is an error and writes nothing.
        let error = state.update("robot", |_: &mut Vec<i32>| unreachable!()).await.unwrap_err();
        assert!(matches!(error, redisrpc::Error::Deserialize { .. }), "{error}");
        assert!(state.update("robot.nothing", |_: &mut i32| {}).await.unwrap_err().is_not_found());
        assert_eq!(state.get::<Pose>("robot.pose").await?, pose);

        // A closure that refuses writes nothing.
        let version = state.backend().doc_get("robot").await?.unwrap().version;
        let refused = state
            .try_update("robot.pose", |pose: &mut Pose| {
                pose.x = 100.0;
                if pose.x > 10.0 { Err("out of reach") } else { Ok(()) }
            })
            .await?;
        assert_eq!(refused.unwrap_err(), "out of reach");
        assert_eq!(state.get::<Pose>("robot.pose").await?, pose);
        assert_eq!(state.backend().doc_get("robot").await?.unwrap().version, version);
        let moved = state.try_update("robot.pose", |pose: &mut Pose| {
            pose.y = 2.0;
            Ok::<_, String>(())
        });
        assert_eq!(moved.await?.unwrap().y, 2.0);
        assert_eq!(state.get::<f64>("robot.pose.y").await?, 2.0);
        Ok(())
    }

    async fn writing_minus_zero_over_zero_is_a_change(backend: SharedBackend) -> anyhow::Result<()> {
        let state = State::new(backend);
        let bits = |value: f64| value.to_bits();
        state.set("r.x", &0.0).await?;
        state.set("r.x", &-0.0).await?;
        assert_eq!(bits(state.get::<f64>("r.x").await?), bits(-0.0));
        state.update("r.x", |x: &mut f64| *x = 0.0).await?;
        assert_eq!(bits(state.get::<f64>("r.x").await?), bits(0.0));
        state.update("r", |r: &mut serde_json::Value| r["x"] = json!(-0.0)).await?;
        assert_eq!(bits(state.get::<f64>("r.x").await?), bits(-0.0));
        // Integer 0 and float 0.0 differ too.
        state.set("r.x", &0).await?;
        assert_eq!(state.type_of("r.x").await?, ValueType::Integer);
        Ok(())
    }

    async fn the_store_s_own_keys_are_not_documents(backend: SharedBackend) {
        let state = State::new(backend);
        for path in ["__state__:clock", "__state__:clock.x", "__state__:robot"] {
            let error = state.set(path, &1).await.unwrap_err();
            assert!(error.is_invalid_path() && error.to_string().contains("the store's own"), "{path}: {error}");
        }
        state.set("robot.x", &1).await.unwrap();
        assert_eq!(state.incr("robot.x", 1).await.unwrap(), 2.into());
    }
}

/// A hash another program keeps at a top-level key (a REEM array, say) is
/// neither read as an absent document nor replaced by a write.
#[tokio::test]
#[redisrpc_testkit::needs(redis)]
async fn another_program_s_hash_is_not_taken_for_a_document() {
    let Some((server, backend)) = common::redis_backend().await else {
        return;
    };
    let redis = redisrpc::backend::Redis::connect(&server.url()).await.unwrap();
    let state = State::new(backend);
    let mut admin = common::admin(&server).await;
    let () = ::redis::cmd("HSET")
        .arg("camera")
        .arg("arr")
        .arg(&[1u8, 2, 3][..])
        .arg("dtype")
        .arg("uint8")
        .query_async(&mut admin)
        .await
        .unwrap();
    assert!(state.get_value("camera").await.unwrap_err().is_wrong_type());
    assert!(state.set("camera.exposure", &1).await.unwrap_err().is_wrong_type());
    // A writer whose copy of a document lets it skip the read meets the
    // script's refusal when another program has put a hash there since.
    let writer = State::new(redis);
    writer.set("lens", &json!({"zoom": 1})).await.unwrap();
    let () = ::redis::pipe()
        .cmd("DEL")
        .arg("lens")
        .ignore()
        .cmd("HSET")
        .arg("lens")
        .arg("dtype")
        .arg("uint8")
        .ignore()
        .query_async(&mut admin)
        .await
        .unwrap();
    let error = writer.set("lens.zoom", &2).await.unwrap_err();
    assert!(
        error.is_wrong_type() && error.to_string().contains("without a `json` field"),
        "{error}"
    );
    let fields: Vec<(String, Vec<u8>)> = ::redis::cmd("HGETALL")
        .arg("camera")
        .query_async(&mut admin)
        .await
        .unwrap();
    assert_eq!(fields.len(), 2, "the hash is untouched: {fields:?}");
}
