//! Regression tests of the shared state's integrity: what a document owns,
//! which top-level keys are legal, and how the store meets keys it did not
//! write. Each module-level test names the bug it guards against.

mod common;

use redisrpc::backend::SharedBackend;
use redisrpc::state::{NdArray, State};
use serde_json::{Value, json};

/// Writes a hash at `key` as another program would, without a document.
async fn foreign_hash(backend: &SharedBackend, key: &str, fields: &[(&str, &[u8])]) {
    for (field, value) in fields {
        backend.hash_set(key, field, value).await.unwrap();
    }
}

fn marker(key: &str) -> Value {
    json!({"$binary": {"label": "ndarray", "key": key}})
}

/// A valid numpy-layout hash of one byte.
const ONE_BYTE: [(&str, &[u8]); 3] = [("arr", &[7]), ("dtype", b"uint8"), ("shape", b"(1,)")];

common::backend_tests! {
    /// A marker naming another document's key, another program's hash
    /// (even one named like `robot#…`), or another document's binary value
    /// must not take it along when the value is deleted or replaced.
    async fn deleting_a_value_never_deletes_data_the_document_does_not_own(backend: SharedBackend) -> anyhow::Result<()> {
        let state = State::new(backend.clone());
        state.set("robot-backup", &json!({"secret": 42})).await?;
        foreign_hash(&backend, "robot#backup", &ONE_BYTE).await;
        foreign_hash(&backend, "robot.m", &ONE_BYTE).await;
        let frame = NdArray::from_elements(vec![2], &[1u8, 2]).unwrap();
        state.set_array("robot2.frame", &frame).await?;
        let others = state.get_value("robot2.frame").await?;
        state
            .set("robot", &json!({"m": marker("robot#backup"), "n": marker("robot-backup"), "o": others, "p": marker("robot.m")}))
            .await?;

        assert!(state.delete("robot.m").await?);
        assert!(state.delete("robot.n").await?);
        state.set("robot", &json!({"replaced": true})).await?;
        assert!(state.delete("robot").await?);

        assert_eq!(state.get_value("robot-backup").await?, json!({"secret": 42}));
        assert_eq!(backend.hash_get_all("robot#backup").await?.len(), 3, "another program's hash is gone");
        assert_eq!(backend.hash_get_all("robot.m").await?.len(), 3, "another program's hash is gone");
        assert_eq!(state.get_array("robot2.frame").await?, frame);
        Ok(())
    }

    /// A hand-written or copied marker must not make `get_binary` read a
    /// hash its document does not own: another program's, another
    /// document's JSON, or another document's array.
    async fn binary_reads_reach_only_the_document_s_own_hashes(backend: SharedBackend) -> anyhow::Result<()> {
        let state = State::new(backend.clone());
        foreign_hash(&backend, "camera-raw", &ONE_BYTE).await;
        state.set("robot-backup", &json!({"secret": 42})).await?;
        let frame = NdArray::from_elements(vec![1], &[9u8]).unwrap();
        state.set_array("robot2.frame", &frame).await?;
        let copied = state.get_value("robot2.frame").await?;
        for (name, value) in [("raw", marker("camera-raw")), ("doc", marker("robot-backup")), ("copied", copied)] {
            state.set(format!("robot.{name}"), &value).await?;
            let error = state.get_array(format!("robot.{name}")).await.unwrap_err();
            assert!(error.to_string().contains("not a binary value of document `robot`"), "{name}: {error}");
        }
        // Its own arrays, and a copy of one inside it, read as ever.
        state.set_array("robot.own", &frame).await?;
        let own = state.get_value("robot.own").await?;
        state.set("robot.copy", &own).await?;
        assert_eq!(state.get_array("robot.copy").await?, frame);
        Ok(())
    }

    /// Keys with glob characters, braces, `#`, control or invisible
    /// characters, or over the length limit were accepted as documents.
    async fn top_level_keys_outside_the_rules_are_refused_and_nothing_is_written(backend: SharedBackend) {
        let state = State::new(backend.clone());
        let long = "k".repeat(redisrpc::state::MAX_KEY_LEN + 1);
        let keys = ["robot{x}", "ro*bot", "ro?bot", "ro\\bot", "robot#backup", "nul\0", "zero\u{200b}width", &long];
        for key in keys {
            for path in [key.to_owned(), format!("{key}.x")] {
                let error = state.set(path.as_str(), &1).await.unwrap_err();
                assert!(error.is_invalid_path(), "{path:?}: {error}");
            }
            assert_eq!(backend.doc_get(key).await.unwrap(), None, "{key:?} was written");
        }
        state.set(&"k".repeat(redisrpc::state::MAX_KEY_LEN), &1).await.unwrap();
    }

    /// Versions are per document now: one deleted and created again still
    /// never repeats a version, so a copy from before cannot pass the
    /// compare-and-set.
    async fn a_document_created_again_gets_a_later_version(backend: SharedBackend) -> anyhow::Result<()> {
        let state = State::new(backend.clone());
        let stale = State::new(backend.clone());
        state.set("v", &json!({"n": 1})).await?;
        stale.set("v.n", &2).await?;
        let before = backend.doc_get("v").await?.unwrap().version;
        assert!(state.delete("v").await?);
        state.set("v", &json!({"n": 10})).await?;
        let after = backend.doc_get("v").await?.unwrap().version;
        assert!(after > before, "{after} after {before}");
        // `stale` remembers `v` at `before`: its write must land on the new document.
        stale.set("v.m", &3).await?;
        assert_eq!(state.get_value("v").await?, json!({"n": 10, "m": 3}));
        Ok(())
    }
}

/// Binary values lived at their path's key, so `set_array("robot2.frame")`
/// replaced another program's string key `robot2.frame` with a hash.
#[tokio::test]
#[redisrpc_testkit::needs(redis)]
async fn set_array_leaves_another_program_s_key_alone() {
    let Some((server, backend)) = common::redis_backend().await else {
        return;
    };
    let mut admin = common::admin(&server).await;
    let () = ::redis::cmd("SET")
        .arg("robot2.frame")
        .arg("theirs")
        .query_async(&mut admin)
        .await
        .unwrap();
    let state = State::new(backend);
    let frame = NdArray::from_elements(vec![3], &[1u8, 2, 3]).unwrap();
    state.set_array("robot2.frame", &frame).await.unwrap();
    assert_eq!(state.get_array("robot2.frame").await.unwrap(), frame);
    let theirs: String = ::redis::cmd("GET")
        .arg("robot2.frame")
        .query_async(&mut admin)
        .await
        .unwrap();
    assert_eq!(theirs, "theirs");
}

/// A document read from a key of another type (a string, a list) is a
/// typed `WrongType`, as on the embedded backend, not a bare command error.
#[tokio::test]
#[redisrpc_testkit::needs(redis)]
async fn a_key_of_another_type_reads_as_wrong_type() {
    let Some((server, backend)) = common::redis_backend().await else {
        return;
    };
    let mut admin = common::admin(&server).await;
    let () = ::redis::pipe()
        .cmd("SET")
        .arg("s")
        .arg("x")
        .ignore()
        .cmd("RPUSH")
        .arg("l")
        .arg("x")
        .ignore()
        .query_async(&mut admin)
        .await
        .unwrap();
    let state = State::new(backend);
    for (key, found) in [("s", "a Redis string"), ("l", "a Redis list")] {
        let error = state.get_value(key).await.unwrap_err();
        assert!(
            error.is_wrong_type() && error.to_string().contains(found),
            "{key}: {error}"
        );
        let error = state.set(format!("{key}.x").as_str(), &1).await.unwrap_err();
        assert!(error.is_wrong_type(), "{key}: {error}");
    }
    let kept: String = ::redis::cmd("GET").arg("s").query_async(&mut admin).await.unwrap();
    assert_eq!(kept, "x");
}

/// Documents created and deleted by another program while we read: a read
/// is one atomic step, so it sees the document or its absence, never a
/// half (which read as `WrongType` when it took two commands).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[redisrpc_testkit::needs(redis)]
async fn a_read_racing_creation_and_deletion_sees_one_or_the_other() {
    let Some((server, backend)) = common::redis_backend().await else {
        return;
    };
    let state = State::new(backend);
    let mut admin = common::admin(&server).await;
    let churn = tokio::spawn(async move {
        for _ in 0..3_000 {
            let () = ::redis::pipe()
                .cmd("HSET")
                .arg("racy")
                .arg("json")
                .arg("{}")
                .ignore()
                .cmd("DEL")
                .arg("racy")
                .ignore()
                .query_async(&mut admin)
                .await
                .unwrap();
        }
    });
    let mut reads = 0;
    while !churn.is_finished() && reads < 20_000 {
        match state.get_value("racy").await {
            Ok(_) => {}
            Err(error) => assert!(error.is_not_found(), "{error}"),
        }
        reads += 1;
    }
    churn.await.unwrap();
}
