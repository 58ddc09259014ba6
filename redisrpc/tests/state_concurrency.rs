//! Concurrent writers of one document lose nothing, on both backends.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use redisrpc::backend::SharedBackend;
use redisrpc::state::State;
use serde_json::json;

const TASKS: usize = 8;
const INCREMENTS: usize = 1_000;

common::backend_tests! {
    async fn eight_tasks_of_a_thousand_increments_give_the_exact_total(backend: SharedBackend) -> anyhow::Result<()> {
        let state = State::new(backend);
        state.set("counter", &json!({"n": 0, "f": 0.0})).await?;
        let tasks: Vec<_> = (0..TASKS)
            .map(|_| {
                let state = state.clone();
                tokio::spawn(async move {
                    for _ in 0..INCREMENTS {
                        state.incr("counter.n", 1).await?;
                        state.incr("counter.f", 0.5).await?;
                    }
                    anyhow::Ok(())
                })
            })
            .collect();
        for task in tasks {
            task.await??;
        }
        assert_eq!(state.get::<u64>("counter.n").await?, (TASKS * INCREMENTS) as u64);
        assert_eq!(state.get::<f64>("counter.f").await?, (TASKS * INCREMENTS) as f64 * 0.5);
        Ok(())
    }

    async fn writers_on_sibling_paths_both_survive(backend: SharedBackend) -> anyhow::Result<()> {
        let state = State::new(backend);
        let writers: Vec<_> = (0..TASKS)
            .map(|task| {
                let state = state.clone();
                tokio::spawn(async move {
                    for i in 0..100 {
                        state.set(format!("robot.joint{task}.angle"), &i).await?;
                        state.append(format!("robot.log{}", task % 2), &[task, i]).await.or_else(|e| {
                            // The log array may not exist yet: create it, then go on.
                            if e.is_not_found() { Ok(0) } else { Err(e) }
                        })?;
                    }
                    anyhow::Ok(())
                })
            })
            .collect();
        // Create the two logs while the writers run.
        state.set("robot.log0", &json!([])).await?;
        state.set("robot.log1", &json!([])).await?;
        for writer in writers {
            writer.await??;
        }
        for task in 0..TASKS {
            assert_eq!(state.get::<i32>(format!("robot.joint{task}.angle")).await?, 99, "joint{task}");
        }
        let logged = state.len("robot.log0").await? + state.len("robot.log1").await?;
        assert!(logged > 0 && logged <= TASKS * 100, "{logged}");
        // Each log holds each writer's entries in order.
        for log in ["robot.log0", "robot.log1"] {
            let entries: Vec<(usize, i32)> = state.get(log).await?;
            for task in 0..TASKS {
                let mine: Vec<i32> = entries.iter().filter(|(t, _)| *t == task).map(|(_, i)| *i).collect();
                assert!(mine.windows(2).all(|w| w[0] < w[1]), "{log} {task}: {mine:?}");
            }
        }
        Ok(())
    }

    async fn update_retries_on_conflict_and_loses_nothing(backend: SharedBackend) -> anyhow::Result<()> {
        let state = State::new(backend);
        state.set("robot.pose", &json!({"x": 0, "history": []})).await?;
        let calls = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..TASKS)
            .map(|task| {
                let (state, calls) = (state.clone(), calls.clone());
                tokio::spawn(async move {
                    for _ in 0..50 {
                        state
                            .update("robot.pose", |pose: &mut serde_json::Value| {
                                calls.fetch_add(1, Ordering::Relaxed);
                                pose["x"] = json!(pose["x"].as_i64().unwrap() + 1);
                                pose["history"].as_array_mut().unwrap().push(json!(task));
                            })
                            .await?;
                        tokio::task::yield_now().await;
                    }
                    anyhow::Ok(())
                })
            })
            .collect();
        for task in tasks {
            task.await??;
        }
        assert_eq!(state.get::<i64>("robot.pose.x").await?, (TASKS * 50) as i64);
        assert_eq!(state.len("robot.pose.history").await?, TASKS * 50);
        let calls = calls.load(Ordering::Relaxed);
        eprintln!("{calls} closure calls for {} updates", TASKS * 50);
        assert!(calls >= TASKS * 50);
        Ok(())
    }

    async fn a_store_whose_last_write_is_stale_still_writes_correctly(backend: SharedBackend) -> anyhow::Result<()> {
        // Two stores on one backend, as two processes: each starts its
        // writes from the document as it last wrote it.
        let (a, b) = (State::new(backend.clone()), State::new(backend));
        a.set("robot", &json!({"x": 1})).await?;
        b.set("robot.list", &json!([])).await?;
        // `a` last saw no `list`; the append must still find it.
        assert_eq!(a.append("robot.list", &1).await?, 1);
        b.delete("robot").await?;
        a.set("robot.y", &2).await?;
        assert_eq!(b.get_value("robot").await?, json!({"y": 2}));
        b.set("robot.y", &"text").await?;
        // On `a`'s copy `y` is a number; on the store it is not.
        assert!(a.incr("robot.y", 1).await.unwrap_err().is_wrong_type());
        assert_eq!(b.get_value("robot").await?, json!({"y": "text"}));
        // Writing what `a`'s copy already holds still writes.
        a.set("robot.z", &1).await?;
        b.set("robot.z", &2).await?;
        a.set("robot.z", &1).await?;
        assert_eq!(b.get::<i32>("robot.z").await?, 1);
        // A refusal judged on `a`'s stale copy is judged again on the store's.
        a.set("robot.limit", &100).await?;
        b.set("robot.limit", &1).await?;
        let raised = a
            .try_update("robot.limit", |limit: &mut i64| {
                if *limit > 10 {
                    return Err("too high");
                }
                *limit += 1;
                Ok(())
            })
            .await?;
        assert_eq!(raised, Ok(2));
        Ok(())
    }

    async fn update_recomputes_after_a_conflicting_write(backend: SharedBackend) -> anyhow::Result<()> {
        // Two stores on one backend, as two processes.
        let (a, b) = (State::new(backend.clone()), State::new(backend));
        a.set("robot", &json!({"x": 1, "y": 0})).await?;
        let mut calls = 0;
        let x = a
            .update("robot.x", |x: &mut i64| {
                calls += 1;
                if calls == 1 {
                    // Another process writes a sibling between this attempt's
                    // read and its commit.
                    let handle = tokio::runtime::Handle::current();
                    tokio::task::block_in_place(|| handle.block_on(b.set("robot.y", &5))).unwrap();
                }
                *x += 10;
            })
            .await?;
        assert_eq!(calls, 2, "the conflict made the closure run again on the current document");
        assert_eq!(x, 11);
        assert_eq!(a.get_value("robot").await?, json!({"x": 11, "y": 5}));
        Ok(())
    }
}
