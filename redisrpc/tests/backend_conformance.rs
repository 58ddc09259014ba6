//! The backend conformance suite: every behaviour the client and server rely
//! on, checked on both backends with the same test body (`memory::<name>`
//! and `redis::<name>`).
//!
//! Timing assertions use real, short sleeps (they must hold against a real
//! server) with generous upper bounds, and every wait that could hang is
//! bounded so that a broken backend fails instead of stalling the suite.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use redisrpc::backend::{HeldKeys, HeldReply, SharedBackend, Taken, Ttl};

/// The SHA-1 of a request, in hex: its field in the delivery counts.
fn redisrpc_digest(request: &[u8]) -> String {
    let mut child = std::process::Command::new("sha1sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("sha1sum is part of coreutils");
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), request).unwrap();
    let output = child.wait_with_output().unwrap();
    String::from_utf8(output.stdout)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

/// Bounds a wait that should complete, so a broken backend fails the test.
async fn bounded<F: Future>(what: &str, future: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(10), future)
        .await
        .unwrap_or_else(|_| panic!("{what} did not complete within 10 s"))
}

/// Pops everything from `key`, head first.
async fn drain(backend: &SharedBackend, key: &str) -> Vec<Vec<u8>> {
    let mut values = Vec::new();
    while let Some(value) = backend.lpop(key).await.unwrap() {
        values.push(value);
    }
    values
}

fn strings(values: &[&str]) -> Vec<Vec<u8>> {
    values.iter().map(|v| v.as_bytes().to_vec()).collect()
}

/// Waits until `key` holds `len` elements, for at most 2 s (a backend may put
/// back the element of an abandoned pop asynchronously).
async fn wait_for_len(backend: &SharedBackend, key: &str, len: usize) {
    let start = Instant::now();
    loop {
        let now = backend.llen(key).await.unwrap();
        if now == len {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "`{key}` holds {now} elements, expected {len}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A caller waiting (up to 10 s) for its reply on `queue`, in a task.
fn waiting_for_reply(backend: &SharedBackend, queue: &str) -> tokio::task::JoinHandle<Option<Vec<u8>>> {
    let backend = backend.clone();
    let queue = queue.to_owned();
    tokio::spawn(async move { backend.wait_reply(&queue, Some(Duration::from_secs(10))).await.unwrap() })
}

/// Time for a spawned `blpop` to be waiting on the store.
const SETTLE: Duration = Duration::from_millis(150);

/// Drops `pop`, a pop waiting on the empty `key`, then checks that values
/// pushed afterwards all arrive, in order, exactly once: an element handed
/// to the abandoned pop must have been put back.
async fn abandon_then_check_nothing_is_lost<T: std::fmt::Debug>(
    backend: &SharedBackend,
    key: &str,
    pop: impl Future<Output = T>,
) {
    tokio::select! {
        popped = pop => panic!("popped {popped:?} from an empty list"),
        () = tokio::time::sleep(Duration::from_millis(200)) => {}
    }
    backend.rpush(key, &[b"first", b"second"]).await.unwrap();
    backend.rpush(key, &[b"third"]).await.unwrap();
    wait_for_len(backend, key, 3).await;
    assert_eq!(drain(backend, key).await, strings(&["first", "second", "third"]));
    tokio::time::sleep(SETTLE).await;
    assert_eq!(backend.llen(key).await.unwrap(), 0, "a value came back twice");
}

common::backend_tests! {
    /// Pushes made at once, to queues in many slots (pushes made while one
    /// is on its way go out together): each lands once, in its task's
    /// order, and each is told its own length.
    async fn pushes_made_at_once_to_many_queues_each_land_once(backend: SharedBackend) {
        const TASKS: usize = 8;
        const EACH: usize = 40;
        let tasks: Vec<_> = (0..TASKS)
            .map(|task| {
                let backend = backend.clone();
                tokio::spawn(async move {
                    let mut lengths = Vec::new();
                    for i in 0..EACH {
                        let queue = format!("conformance:many:{}", (task + i) % TASKS);
                        let value = format!("{task}:{i}");
                        lengths.push((queue.clone(), backend.rpush(&queue, &[value.as_bytes()]).await.unwrap()));
                    }
                    lengths
                })
            })
            .collect();
        let mut lengths: BTreeSet<(String, usize)> = BTreeSet::new();
        for task in tasks {
            for told in bounded("a task's pushes", task).await.unwrap() {
                assert!(lengths.insert(told.clone()), "two pushes were told {told:?}");
            }
        }
        assert_eq!(lengths.len(), TASKS * EACH);
        for n in 0..TASKS {
            let queue = format!("conformance:many:{n}");
            let values = drain(&backend, &queue).await;
            assert_eq!(values.len(), EACH, "{queue}");
            // Each task's pushes keep their order within a queue.
            let mut last: Vec<Option<usize>> = vec![None; TASKS];
            for value in values {
                let value = String::from_utf8(value).unwrap();
                let (task, i) = value.split_once(':').unwrap();
                let (task, i): (usize, usize) = (task.parse().unwrap(), i.parse().unwrap());
                assert!(last[task].is_none_or(|before| before < i), "{queue}: {value} after {:?}", last[task]);
                last[task] = Some(i);
            }
        }
    }

    async fn rpush_returns_lengths_and_lpop_is_fifo(backend: SharedBackend) {
        let key = "conformance:fifo";
        assert_eq!(backend.rpush(key, &[b"a"]).await.unwrap(), 1);
        assert_eq!(backend.rpush(key, &[b"b", b"c"]).await.unwrap(), 3);
        assert_eq!(backend.lpop(key).await.unwrap(), Some(b"a".to_vec()));
        assert_eq!(backend.rpush(key, &[b"d"]).await.unwrap(), 3);
        assert_eq!(drain(&backend, key).await, strings(&["b", "c", "d"]));
    }

    async fn lpush_puts_a_value_at_the_head_or_hands_it_to_a_waiting_pop(backend: SharedBackend) {
        backend.rpush("q", &[b"a", b"b"]).await.unwrap();
        assert_eq!(backend.lpush("q", b"urgent").await.unwrap(), 3);
        assert_eq!(drain(&backend, "q").await, strings(&["urgent", "a", "b"]));
        let waiting = {
            let backend = backend.clone();
            tokio::spawn(async move { backend.blpop("empty", Some(Duration::from_secs(10))).await })
        };
        tokio::time::sleep(SETTLE).await;
        assert_eq!(backend.lpush("empty", b"now").await.unwrap(), 1);
        let popped = bounded("the waiting pop", waiting).await.unwrap().unwrap();
        assert_eq!(popped.as_deref(), Some(&b"now"[..]));
        assert_eq!(backend.llen("empty").await.unwrap(), 0);
    }

    async fn publish_reaches_the_subscribers_of_the_channel_only(backend: SharedBackend) {
        use futures::StreamExt;
        let mut subscription = backend.subscribe(&["calls".to_string()], &[]).await.unwrap();
        backend.publish("other", b"no").await.unwrap();
        backend.publish("calls", b"yes").await.unwrap();
        let event = bounded("the message", subscription.next()).await;
        match event {
            Some(redisrpc::backend::PubSubEvent::Message { channel, payload }) => {
                assert_eq!((channel.as_str(), payload.as_slice()), ("calls", &b"yes"[..]));
            }
            other => panic!("expected the message, got {other:?}"),
        }
    }

    async fn the_store_clock_agrees_with_this_host(backend: SharedBackend) {
        // Redis runs on this host here, so both clocks are the same clock.
        let local = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
        let store = backend.now("q").await.unwrap();
        let apart = store.abs_diff(local);
        assert!(apart < Duration::from_millis(500), "{apart:?} apart");
        let later = backend.now("q").await.unwrap();
        assert!(later >= store - Duration::from_millis(1), "the clock does not step back");
        // Once read, the clock can be read without waiting, and it is the
        // same clock.
        let known = backend.now_known("q").expect("the clock is known once read");
        assert!(known >= later - Duration::from_millis(1), "the clock does not step back");
        let after = backend.now("q").await.unwrap();
        assert!(after >= known - Duration::from_millis(1), "the clock does not step back");
        assert!(after.abs_diff(known) < Duration::from_millis(500));
    }

    async fn held_requests_move_atomically_and_leave_with_their_reply(backend: SharedBackend) {
        let keys = HeldKeys::new("work", "server-a");
        backend.rpush("work", &[b"r1", b"r2", b"r3"]).await.unwrap();
        let taken = backend.take_held(&keys, 2, Some(Duration::from_secs(5))).await.unwrap();
        let delivered: Vec<_> = taken.iter().map(|t| (t.request.clone(), t.delivery)).collect();
        assert_eq!(delivered, [(b"r1".to_vec(), 1), (b"r2".to_vec(), 1)]);
        assert_eq!(backend.llen("work").await.unwrap(), 1);
        assert_eq!(backend.llen(&keys.held).await.unwrap(), 2);
        assert!(backend.hash_get_all(&keys.deliveries).await.unwrap().is_empty(), "a first delivery is not counted");
        let reply = HeldReply { queue: "work:rpc:1", reply: b"done", ttl: Duration::from_secs(30) };
        backend.release_held(&keys, &taken[0], Some(reply)).await.unwrap();
        assert_eq!(drain(&backend, &keys.held).await, strings(&["r2"]));
        assert_eq!(drain(&backend, "work:rpc:1").await, strings(&["done"]));

        // Nothing waiting: the take times out with nothing, or returns at once.
        backend.lpop("work").await.unwrap();
        assert!(backend.take_held(&keys, 4, Some(Duration::from_millis(100))).await.unwrap().is_empty());
        assert!(backend.take_held(&keys, 4, Some(Duration::ZERO)).await.unwrap().is_empty());
    }

    async fn a_take_of_more_than_lua_unpacks_at_once_holds_them_all_in_order(backend: SharedBackend) {
        let keys = HeldKeys::new("work", "server-a");
        let requests: Vec<String> = (0..9000).map(|i| format!("r{i}")).collect();
        let refs: Vec<&[u8]> = requests.iter().map(|r| r.as_bytes()).collect();
        backend.rpush("work", &refs).await.unwrap();
        backend.rpush("work", &[b"left"]).await.unwrap();
        let taken = backend.take_held(&keys, 9000, Some(Duration::from_secs(5))).await.unwrap();
        assert_eq!(taken.len(), 9000);
        assert!(taken.iter().zip(&refs).all(|(t, r)| t.request == *r && t.delivery == 1));
        assert_eq!(drain(&backend, &keys.held).await, refs.iter().map(|r| r.to_vec()).collect::<Vec<_>>());
        assert_eq!(drain(&backend, "work").await, strings(&["left"]));
    }

    async fn a_dead_servers_requests_go_back_to_the_head_and_count_again(backend: SharedBackend) {
        let dead = HeldKeys::new("work", "dead");
        backend.hash_set(&dead.servers, "dead", b"").await.unwrap();
        backend.rpush("work", &[b"r1", b"r2", b"later"]).await.unwrap();
        backend.take_held(&dead, 2, Some(Duration::from_secs(5))).await.unwrap();
        // Alive: nothing moves.
        backend.hash_replace(&dead.liveness, &[("pid", b"1")], Duration::from_secs(30)).await.unwrap();
        assert_eq!(backend.requeue_held(&dead, true).await.unwrap(), None);
        assert!(backend.del(&dead.liveness).await.unwrap());
        assert_eq!(backend.requeue_held(&dead, true).await.unwrap(), Some(2));
        assert_eq!(drain(&backend, "work").await, strings(&["r1", "r2", "later"]));
        backend.rpush("work", &[b"r1", b"r2", b"later"]).await.unwrap();
        assert!(backend.hash_get_all(&dead.servers).await.unwrap().is_empty(), "deregistered");
        let counted: BTreeSet<_> = backend.hash_get_all(&dead.deliveries).await.unwrap().into_iter().map(|(name, _)| name).collect();
        assert_eq!(counted, BTreeSet::from([redisrpc_digest(b"r1"), redisrpc_digest(b"r2")]));

        // Taken again: the second delivery, and the third after another death.
        let other = HeldKeys::new("work", "other");
        let again = backend.take_held(&other, 1, Some(Duration::from_secs(5))).await.unwrap();
        assert_eq!((again[0].request.as_slice(), again[0].delivery), (&b"r1"[..], 2), "counted beside the request, not in it");
        assert_eq!(backend.requeue_held(&other, false).await.unwrap(), Some(1));
        let third = HeldKeys::new("work", "third");
        let again = backend.take_held(&third, 2, Some(Duration::from_secs(5))).await.unwrap();
        let delivered: Vec<_> = again.iter().map(|t| (t.request.clone(), t.delivery)).collect();
        assert_eq!(delivered, [(b"r1".to_vec(), 3), (b"r2".to_vec(), 2)]);

        // Released, a request's count goes with it.
        backend.release_held(&third, &again[0], None).await.unwrap();
        let counted: Vec<_> = backend.hash_get_all(&dead.deliveries).await.unwrap().into_iter().map(|(name, _)| name).collect();
        assert_eq!(counted, [redisrpc_digest(b"r2")], "r1's count went with it");
        let reply = HeldReply { queue: "work:rpc:2", reply: b"done", ttl: Duration::from_secs(30) };
        backend.release_held(&third, &again[1], Some(reply)).await.unwrap();
        assert!(backend.hash_get_all(&dead.deliveries).await.unwrap().is_empty());
        assert_eq!(drain(&backend, &third.held).await, Vec::<Vec<u8>>::new());
        assert_eq!(drain(&backend, "work").await, strings(&["later"]));
    }

    async fn concurrent_reapers_return_each_request_once(backend: SharedBackend) {
        let dead = HeldKeys::new("work", "dead");
        let requests: Vec<String> = (0..50).map(|i| format!("r{i}")).collect();
        let refs: Vec<&[u8]> = requests.iter().map(|r| r.as_bytes()).collect();
        backend.rpush("work", &refs).await.unwrap();
        assert_eq!(backend.take_held(&dead, 50, Some(Duration::from_secs(5))).await.unwrap().len(), 50);
        let reapers: Vec<_> = (0..8)
            .map(|_| {
                let (backend, dead) = (backend.clone(), dead.clone());
                tokio::spawn(async move { backend.requeue_held(&dead, true).await.unwrap().unwrap_or(0) })
            })
            .collect();
        let mut moved = 0;
        for reaper in reapers {
            moved += bounded("a reaper", reaper).await.unwrap();
        }
        assert_eq!(moved, 50);
        let back = drain(&backend, "work").await;
        assert_eq!(back, refs.iter().map(|r| r.to_vec()).collect::<Vec<_>>(), "each once, in order");
    }

    async fn an_abandoned_take_leaves_its_request_held_or_queued(backend: SharedBackend) {
        let keys = HeldKeys::new("work", "a");
        for round in 0..20 {
            let take = {
                let (backend, keys) = (backend.clone(), keys.clone());
                tokio::spawn(async move { backend.take_held(&keys, 1, None).await })
            };
            tokio::time::sleep(Duration::from_millis(if round % 2 == 0 { 0 } else { 20 })).await;
            backend.rpush("work", &[format!("r{round}").as_bytes()]).await.unwrap();
            take.abort();
            let _ = take.await;
        }
        backend.settle().await;
        let mut seen = drain(&backend, "work").await;
        seen.extend(drain(&backend, &keys.held).await);
        seen.sort();
        let mut expected: Vec<Vec<u8>> = (0..20).map(|i| format!("r{i}").into_bytes()).collect();
        expected.sort();
        assert_eq!(seen, expected);
    }

    async fn lpop_on_a_missing_key_is_none(backend: SharedBackend) {
        assert_eq!(backend.lpop("conformance:lpop-missing").await.unwrap(), None);
    }

    async fn blpop_returns_at_once_when_the_list_is_not_empty(backend: SharedBackend) {
        let key = "conformance:blpop-ready";
        backend.rpush(key, &[b"a", b"b"]).await.unwrap();
        let start = Instant::now();
        let popped = bounded("blpop", backend.blpop(key, None)).await.unwrap();
        assert_eq!(popped, Some(b"a".to_vec()));
        let popped = bounded("blpop", backend.blpop(key, Some(Duration::from_secs(5))))
            .await
            .unwrap();
        assert_eq!(popped, Some(b"b".to_vec()));
        assert!(start.elapsed() < Duration::from_secs(1), "took {:?}", start.elapsed());
    }

    async fn blpop_is_woken_by_an_rpush_from_another_task(backend: SharedBackend) {
        let key = "conformance:blpop-wake";
        let waiting = tokio::spawn({
            let backend = backend.clone();
            async move {
                let start = Instant::now();
                let popped = backend.blpop(key, Some(Duration::from_secs(10))).await.unwrap();
                (popped, start.elapsed())
            }
        });
        tokio::time::sleep(SETTLE).await;
        assert_eq!(backend.rpush(key, &[b"wake up"]).await.unwrap(), 1);
        let (popped, waited) = bounded("woken blpop", waiting).await.unwrap();
        assert_eq!(popped, Some(b"wake up".to_vec()));
        assert!(waited < Duration::from_secs(3), "woken only after {waited:?}");
        assert_eq!(backend.llen(key).await.unwrap(), 0, "the pushed value was consumed");
    }

    async fn rpush_to_a_waiting_pop_counts_the_served_value(backend: SharedBackend) {
        let key = "conformance:rpush-served";
        let waiting = tokio::spawn({
            let backend = backend.clone();
            async move { backend.blpop(key, Some(Duration::from_secs(10))).await.unwrap() }
        });
        tokio::time::sleep(SETTLE).await;
        // As in Redis, the length includes the value the waiting pop takes.
        assert_eq!(backend.rpush(key, &[b"a", b"b"]).await.unwrap(), 2);
        assert_eq!(bounded("blpop", waiting).await.unwrap(), Some(b"a".to_vec()));
        assert_eq!(drain(&backend, key).await, strings(&["b"]));
    }

    async fn blpop_times_out_with_none(backend: SharedBackend) {
        let key = "conformance:blpop-timeout";
        let start = Instant::now();
        let popped = bounded("blpop", backend.blpop(key, Some(Duration::from_millis(300))))
            .await
            .unwrap();
        let waited = start.elapsed();
        assert_eq!(popped, None);
        assert!(waited >= Duration::from_millis(250), "gave up after {waited:?}");
        assert!(waited < Duration::from_secs(3), "gave up only after {waited:?}");
        // The abandoned wait does not swallow a later push.
        assert_eq!(backend.rpush(key, &[b"v"]).await.unwrap(), 1);
        assert_eq!(backend.lpop(key).await.unwrap(), Some(b"v".to_vec()));
    }

    async fn wait_reply_hands_each_caller_its_own_reply(backend: SharedBackend) {
        let queue = |i: usize| format!("conformance:rpc:each-{i}");
        let callers: Vec<_> = (0..30).map(|i| waiting_for_reply(&backend, &queue(i))).collect();
        tokio::time::sleep(SETTLE).await;
        // Replies arrive in another order than the calls were made.
        for i in (0..30).rev() {
            backend.rpush(&queue(i), &[format!("reply {i}").as_bytes()]).await.unwrap();
        }
        for (i, caller) in callers.into_iter().enumerate() {
            let reply = bounded("wait_reply", caller).await.unwrap();
            assert_eq!(reply, Some(format!("reply {i}").into_bytes()));
        }
        for i in 0..30 {
            assert_eq!(backend.llen(&queue(i)).await.unwrap(), 0, "reply {i} was taken once");
        }
    }

    async fn wait_reply_times_out_with_none_and_leaves_a_late_reply(backend: SharedBackend) {
        // Another caller waits meanwhile: the wait that times out is not alone.
        let other = waiting_for_reply(&backend, "conformance:rpc:other");
        tokio::time::sleep(SETTLE).await;
        let key = "conformance:rpc:late";
        let start = Instant::now();
        let reply = bounded("wait_reply", backend.wait_reply(key, Some(Duration::from_millis(300))))
            .await
            .unwrap();
        let waited = start.elapsed();
        assert_eq!(reply, None);
        assert!(waited >= Duration::from_millis(250), "gave up after {waited:?}");
        assert!(waited < Duration::from_secs(3), "gave up only after {waited:?}");
        backend.rpush(key, &[b"late"]).await.unwrap();
        wait_for_len(&backend, key, 1).await;
        assert_eq!(backend.lpop(key).await.unwrap(), Some(b"late".to_vec()));
        backend.rpush("conformance:rpc:other", &[b"its own"]).await.unwrap();
        assert_eq!(bounded("the other caller", other).await.unwrap(), Some(b"its own".to_vec()));
    }

    async fn abandoned_wait_reply_loses_nothing(backend: SharedBackend) {
        let other = waiting_for_reply(&backend, "conformance:rpc:keeps");
        tokio::time::sleep(SETTLE).await;
        let key = "conformance:rpc:abandoned";
        abandon_then_check_nothing_is_lost(&backend, key, backend.wait_reply(key, None)).await;
        backend.rpush("conformance:rpc:keeps", &[b"kept"]).await.unwrap();
        assert_eq!(bounded("the other caller", other).await.unwrap(), Some(b"kept".to_vec()));
    }

    async fn blpop_with_a_zero_timeout_does_not_block(backend: SharedBackend) {
        let key = "conformance:blpop-zero";
        let start = Instant::now();
        let popped = bounded("blpop", backend.blpop(key, Some(Duration::ZERO))).await.unwrap();
        assert_eq!(popped, None);
        assert!(start.elapsed() < Duration::from_secs(1), "blocked for {:?}", start.elapsed());
        backend.rpush(key, &[b"v"]).await.unwrap();
        let popped = bounded("blpop", backend.blpop(key, Some(Duration::ZERO))).await.unwrap();
        assert_eq!(popped, Some(b"v".to_vec()));
        assert_eq!(backend.llen(key).await.unwrap(), 0);
    }

    async fn waiters_are_served_in_the_order_they_started_waiting(backend: SharedBackend) {
        let key = "conformance:waiter-order";
        let mut waiters = Vec::new();
        for _ in 0..3 {
            waiters.push(tokio::spawn({
                let backend = backend.clone();
                async move { backend.blpop(key, Some(Duration::from_secs(10))).await.unwrap() }
            }));
            tokio::time::sleep(SETTLE).await;
        }
        assert_eq!(backend.rpush(key, &[b"first", b"second"]).await.unwrap(), 2);
        assert_eq!(backend.rpush(key, &[b"third"]).await.unwrap(), 1);
        let mut served = Vec::new();
        for waiter in waiters {
            served.push(bounded("blpop", waiter).await.unwrap().unwrap());
        }
        assert_eq!(served, strings(&["first", "second", "third"]));
        assert_eq!(backend.llen(key).await.unwrap(), 0);
    }

    async fn concurrent_producers_and_consumers_deliver_every_value_exactly_once(
        backend: SharedBackend,
    ) {
        const PRODUCERS: usize = 8;
        const CONSUMERS: usize = 8;
        const PER_PRODUCER: usize = 200;
        const TOTAL: usize = PRODUCERS * PER_PRODUCER;
        let key = "conformance:many";
        let received = Arc::new(AtomicUsize::new(0));

        let consumers: Vec<_> = (0..CONSUMERS)
            .map(|_| {
                let backend = backend.clone();
                let received = received.clone();
                tokio::spawn(async move {
                    let mut got = Vec::new();
                    while received.load(Ordering::SeqCst) < TOTAL {
                        let popped = backend.blpop(key, Some(Duration::from_millis(200))).await;
                        if let Some(value) = popped.unwrap() {
                            got.push(value);
                            received.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                    got
                })
            })
            .collect();
        let producers: Vec<_> = (0..PRODUCERS)
            .map(|p| {
                let backend = backend.clone();
                tokio::spawn(async move {
                    for i in 0..PER_PRODUCER {
                        let value = format!("{p}:{i}");
                        backend.rpush(key, &[value.as_bytes()]).await.unwrap();
                    }
                })
            })
            .collect();

        tokio::time::timeout(Duration::from_secs(60), async {
            for producer in producers {
                producer.await.unwrap();
            }
            let mut all = Vec::new();
            for consumer in consumers {
                let got = consumer.await.unwrap();
                // Each producer's values reach each consumer in push order.
                for p in 0..PRODUCERS {
                    let prefix = format!("{p}:");
                    let seq: Vec<usize> = got
                        .iter()
                        .filter_map(|v| std::str::from_utf8(v).unwrap().strip_prefix(&prefix))
                        .map(|i| i.parse().unwrap())
                        .collect();
                    assert!(seq.is_sorted(), "producer {p}'s values out of order: {seq:?}");
                }
                all.extend(got);
            }
            assert_eq!(all.len(), TOTAL, "values lost or duplicated");
            let distinct: BTreeSet<_> = all.into_iter().collect();
            let expected: BTreeSet<_> = (0..PRODUCERS)
                .flat_map(|p| (0..PER_PRODUCER).map(move |i| format!("{p}:{i}").into_bytes()))
                .collect();
            assert_eq!(distinct, expected);
        })
        .await
        .expect("producers and consumers did not finish within 60 s");
        assert_eq!(backend.llen(key).await.unwrap(), 0);
    }

    async fn a_blpop_dropped_by_a_timeout_loses_nothing(backend: SharedBackend) {
        let key = "conformance:dropped-timeout";
        let abandoned =
            tokio::time::timeout(Duration::from_millis(200), backend.blpop(key, None)).await;
        assert!(abandoned.is_err(), "nothing was there to pop");
        assert_eq!(backend.rpush(key, &[b"kept"]).await.unwrap(), 1);
        wait_for_len(&backend, key, 1).await;
        assert_eq!(backend.lpop(key).await.unwrap(), Some(b"kept".to_vec()));
        tokio::time::sleep(SETTLE).await;
        assert_eq!(backend.llen(key).await.unwrap(), 0, "the value came back twice");
    }

    async fn a_blpop_dropped_by_select_loses_nothing_and_keeps_order(backend: SharedBackend) {
        let key = "conformance:dropped-select";
        abandon_then_check_nothing_is_lost(&backend, key, backend.blpop(key, None)).await;
    }

    async fn settle_waits_until_abandoned_pops_gave_back_what_they_took(backend: SharedBackend) {
        for round in 0..20 {
            let key = format!("conformance:settle:{round}");
            let value = round.to_string();
            // The push races the abandonment; whichever wins, after `settle`
            // the value is in the list, without any polling.
            tokio::select! {
                biased;
                () = async {
                    tokio::time::sleep(Duration::from_millis(round % 3)).await;
                    backend.rpush(&key, &[value.as_bytes()]).await.unwrap();
                    tokio::task::yield_now().await;
                } => {}
                popped = backend.blpop_many(&key, 4, None) => {
                    assert_eq!(popped.unwrap(), vec![value.as_bytes().to_vec()]);
                    continue;
                }
            }
            backend.settle().await;
            assert_eq!(backend.llen(&key).await.unwrap(), 1, "round {round}: the value is not back yet");
        }
    }

    async fn blpop_many_takes_up_to_max_from_the_head_in_order(backend: SharedBackend) {
        let key = "conformance:many";
        backend.rpush(key, &[b"1", b"2", b"3", b"4", b"5"]).await.unwrap();
        assert_eq!(backend.blpop_many(key, 3, None).await.unwrap(), strings(&["1", "2", "3"]));
        assert_eq!(backend.blpop_many(key, 10, Some(Duration::ZERO)).await.unwrap(), strings(&["4", "5"]));
        assert_eq!(backend.llen(key).await.unwrap(), 0);
        let started = Instant::now();
        assert!(backend.blpop_many(key, 4, Some(Duration::from_millis(150))).await.unwrap().is_empty());
        assert!(started.elapsed() >= Duration::from_millis(120), "returned after {:?}", started.elapsed());
        assert!(backend.blpop_many(key, 4, Some(Duration::ZERO)).await.unwrap().is_empty());
    }

    async fn blpop_many_waits_for_a_push_and_leaves_the_rest(backend: SharedBackend) {
        let key = "conformance:many-wait";
        let waiting = tokio::spawn({
            let backend = backend.clone();
            async move { backend.blpop_many(key, 10, Some(Duration::from_secs(10))).await.unwrap() }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        backend.rpush(key, &[b"a", b"b", b"c"]).await.unwrap();
        let mut taken = bounded("blpop_many", waiting).await.unwrap();
        // At least one element, the head; how many more a woken pop takes is
        // up to the backend. Together with what is left, nothing is missing.
        assert_eq!(taken.first().map(Vec::as_slice), Some(&b"a"[..]));
        taken.extend(drain(&backend, key).await);
        assert_eq!(taken, strings(&["a", "b", "c"]));
    }

    async fn a_dropped_blpop_many_loses_nothing_and_keeps_order(backend: SharedBackend) {
        let key = "conformance:many-dropped";
        abandon_then_check_nothing_is_lost(&backend, key, backend.blpop_many(key, 8, None)).await;
    }

    async fn dropped_blpops_racing_pushes_lose_and_duplicate_nothing(backend: SharedBackend) {
        const ROUNDS: u64 = 80;
        let key = "conformance:dropped-race";
        let mut popped = Vec::new();
        for round in 0..ROUNDS {
            // Start each round on an empty list, so that the pop waits.
            popped.extend(drain(&backend, key).await);
            let value = round.to_string();
            let pop = backend.blpop(key, None);
            let mut push = std::pin::pin!(async {
                tokio::time::sleep(Duration::from_millis(round % 4)).await;
                backend.rpush(key, &[value.as_bytes()]).await.unwrap();
            });
            if round % 2 == 0 {
                // The push completes, and the pop it may just have served is
                // dropped.
                tokio::select! {
                    biased;
                    () = &mut push => {}
                    value = pop => {
                        popped.push(value.unwrap().expect("blpop without timeout returned None"));
                        push.await;
                    }
                }
            } else {
                // The pop's timeout races the push.
                let pop = tokio::time::timeout(Duration::from_millis(round % 7), pop);
                let (value, ()) = tokio::join!(pop, push);
                if let Ok(value) = value {
                    popped.push(value.unwrap().expect("blpop without timeout returned None"));
                }
            }
        }
        // Whatever the abandoned pops got is back in the list (perhaps after
        // a moment): collect it until the list stays empty.
        while let Some(value) = backend.blpop(key, Some(Duration::from_millis(500))).await.unwrap() {
            popped.push(value);
        }
        let mut rounds: Vec<u64> = popped
            .iter()
            .map(|v| std::str::from_utf8(v).unwrap().parse().unwrap())
            .collect();
        rounds.sort_unstable();
        assert_eq!(rounds, (0..ROUNDS).collect::<Vec<_>>(), "values lost or duplicated");
    }

    async fn lrem_follows_the_count_semantics(backend: SharedBackend) {
        let key = "conformance:lrem";
        let fill = || async {
            backend.rpush(key, &[b"a", b"b", b"a", b"c", b"a", b"b", b"a"]).await.unwrap();
        };

        fill().await;
        assert_eq!(backend.lrem(key, 2, b"a").await.unwrap(), 2, "first two from the head");
        assert_eq!(drain(&backend, key).await, strings(&["b", "c", "a", "b", "a"]));

        fill().await;
        assert_eq!(backend.lrem(key, -3, b"a").await.unwrap(), 3, "last three from the tail");
        assert_eq!(drain(&backend, key).await, strings(&["a", "b", "c", "b"]));

        fill().await;
        assert_eq!(backend.lrem(key, 0, b"a").await.unwrap(), 4, "all");
        assert_eq!(drain(&backend, key).await, strings(&["b", "c", "b"]));

        fill().await;
        assert_eq!(backend.lrem(key, 10, b"b").await.unwrap(), 2, "fewer than count");
        assert_eq!(backend.lrem(key, -10, b"c").await.unwrap(), 1);
        assert_eq!(backend.lrem(key, 0, b"zz").await.unwrap(), 0, "no match");
        assert_eq!(drain(&backend, key).await, strings(&["a", "a", "a", "a"]));

        assert_eq!(backend.lrem("conformance:lrem-missing", 0, b"a").await.unwrap(), 0);

        backend.rpush(key, &[b"x", b"x"]).await.unwrap();
        assert_eq!(backend.lrem(key, 0, b"x").await.unwrap(), 2);
        assert_eq!(backend.ttl(key).await.unwrap(), Ttl::Missing, "emptied list is gone");
    }

    async fn llen_counts_the_elements(backend: SharedBackend) {
        let key = "conformance:llen";
        assert_eq!(backend.llen(key).await.unwrap(), 0, "missing key");
        backend.rpush(key, &[b"a", b"b", b"c"]).await.unwrap();
        assert_eq!(backend.llen(key).await.unwrap(), 3);
        backend.lpop(key).await.unwrap();
        assert_eq!(backend.llen(key).await.unwrap(), 2);
    }

    async fn expire_and_ttl_report_what_was_set(backend: SharedBackend) {
        let key = "conformance:ttl";
        assert_eq!(backend.ttl(key).await.unwrap(), Ttl::Missing);
        assert!(!backend.expire(key, Duration::from_secs(10)).await.unwrap(), "missing key");
        assert_eq!(backend.ttl(key).await.unwrap(), Ttl::Missing, "expire created nothing");

        backend.rpush(key, &[b"v"]).await.unwrap();
        assert_eq!(backend.ttl(key).await.unwrap(), Ttl::Persistent);
        assert!(backend.expire(key, Duration::from_secs(10)).await.unwrap());
        match backend.ttl(key).await.unwrap() {
            Ttl::Expires(left) => {
                assert!(left <= Duration::from_secs(10), "{left:?} left");
                assert!(left > Duration::from_secs(8), "only {left:?} left");
            }
            other => panic!("expected an expiry, got {other:?}"),
        }

        // A later expire replaces the deadline.
        assert!(backend.expire(key, Duration::from_secs(100)).await.unwrap());
        match backend.ttl(key).await.unwrap() {
            Ttl::Expires(left) => assert!(left > Duration::from_secs(90), "only {left:?} left"),
            other => panic!("expected an expiry, got {other:?}"),
        }
    }

    async fn a_key_is_gone_after_its_expiry(backend: SharedBackend) {
        let key = "conformance:expiry";
        backend.rpush(key, &[b"a", b"b"]).await.unwrap();
        assert!(backend.expire(key, Duration::from_millis(150)).await.unwrap());
        assert_eq!(backend.llen(key).await.unwrap(), 2, "not expired yet");
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(backend.llen(key).await.unwrap(), 0);
        assert_eq!(backend.ttl(key).await.unwrap(), Ttl::Missing);
        assert_eq!(backend.lpop(key).await.unwrap(), None);
        assert!(!backend.del(key).await.unwrap());
        // A new list under the same name starts without the old expiry.
        assert_eq!(backend.rpush(key, &[b"c"]).await.unwrap(), 1);
        assert_eq!(backend.ttl(key).await.unwrap(), Ttl::Persistent);
    }

    async fn rpush_expire_appends_and_sets_the_expiry(backend: SharedBackend) {
        let key = "conformance:rpush-expire";
        backend.rpush_expire(key, b"a", Duration::from_secs(10)).await.unwrap();
        assert!(matches!(backend.ttl(key).await.unwrap(), Ttl::Expires(left) if left <= Duration::from_secs(10)));
        backend.rpush_expire(key, b"b", Duration::from_secs(100)).await.unwrap();
        assert!(
            matches!(backend.ttl(key).await.unwrap(), Ttl::Expires(left) if left > Duration::from_secs(90)),
            "the second push sets the new expiry"
        );
        // A plain push keeps the expiry, as in Redis.
        backend.rpush(key, &[b"c"]).await.unwrap();
        assert!(matches!(backend.ttl(key).await.unwrap(), Ttl::Expires(_)));
        assert_eq!(drain(&backend, key).await, strings(&["a", "b", "c"]));

        let short = "conformance:rpush-expire-short";
        backend.rpush(short, &[b"old"]).await.unwrap();
        backend.rpush_expire(short, b"new", Duration::from_millis(150)).await.unwrap();
        assert_eq!(backend.llen(short).await.unwrap(), 2);
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(backend.ttl(short).await.unwrap(), Ttl::Missing, "the whole list expired");
    }

    async fn rpush_expire_serves_a_waiting_pop(backend: SharedBackend) {
        let key = "conformance:rpush-expire-wake";
        let waiting = tokio::spawn({
            let backend = backend.clone();
            async move { backend.blpop(key, Some(Duration::from_secs(10))).await.unwrap() }
        });
        tokio::time::sleep(SETTLE).await;
        backend.rpush_expire(key, b"reply", Duration::from_secs(10)).await.unwrap();
        assert_eq!(bounded("blpop", waiting).await.unwrap(), Some(b"reply".to_vec()));
        assert_eq!(backend.ttl(key).await.unwrap(), Ttl::Missing, "served, nothing left");
    }

    /// A server's batch of replies: each pushed with its expiry, in order
    /// per queue, on queues of any slot; a refused one fails alone.
    async fn rpush_expire_each_pushes_every_reply_and_refuses_alone(backend: SharedBackend) -> anyhow::Result<()> {
        backend.hash_set("taken", "f", b"v").await?;
        // Queues in many slots (a peer names them without our hash tag),
        // and one that already holds a reply.
        let queues: Vec<String> = (0..40).map(|i| format!("calc:rpc:{i}")).collect();
        backend.rpush("calc:rpc:7", &[b"earlier"]).await?;
        let mut pushes: Vec<(&str, &[u8])> = queues.iter().map(|queue| (queue.as_str(), queue.as_bytes())).collect();
        pushes.insert(3, ("taken", b"refused"));
        pushes.push(("calc:rpc:7", b"again"));
        let outcomes = backend.rpush_expire_each(&pushes, Duration::from_secs(30)).await;
        assert_eq!(outcomes.len(), pushes.len());
        for (i, outcome) in outcomes.into_iter().enumerate() {
            if i == 3 {
                assert_wrongtype(outcome);
            } else {
                outcome.unwrap_or_else(|error| panic!("push {i}: {error}"));
            }
        }
        for queue in &queues {
            assert!(matches!(backend.ttl(queue).await?, Ttl::Expires(left) if left <= Duration::from_secs(30)), "{queue}");
        }
        assert_eq!(drain(&backend, "calc:rpc:7").await, strings(&["earlier", "calc:rpc:7", "again"]));
        assert_eq!(drain(&backend, "calc:rpc:21").await, strings(&["calc:rpc:21"]));
        assert_eq!(backend.ttl("taken").await?, Ttl::Persistent, "a refused push sets no expiry");
        assert_eq!(backend.hash_get_all("taken").await?.len(), 1);
        assert!(backend.rpush_expire_each(&[], Duration::from_secs(1)).await.is_empty());
        Ok(())
    }

    /// At least once, a batch: each request leaves the held list with its
    /// reply, and its delivery count if it had one; one whose reply queue
    /// refuses stays held and counted, the others go.
    async fn release_held_each_releases_every_request_with_its_reply(backend: SharedBackend) -> anyhow::Result<()> {
        let keys = HeldKeys::new("work", "server-a");
        let requests: Vec<String> = (0..6).map(|i| format!("r{i}")).collect();
        let refs: Vec<&[u8]> = requests.iter().map(|r| r.as_bytes()).collect();
        backend.rpush("work", &refs).await?;
        // Half were delivered before, to a server that died.
        let dead = HeldKeys::new("work", "dead");
        assert_eq!(backend.take_held(&dead, 3, Some(Duration::from_secs(5))).await?.len(), 3);
        assert_eq!(backend.requeue_held(&dead, false).await?, Some(3));
        let taken = backend.take_held(&keys, 6, Some(Duration::from_secs(5))).await?;
        assert_eq!(taken.iter().map(|t| t.delivery).collect::<Vec<_>>(), [2, 2, 2, 1, 1, 1]);
        backend.hash_set("work:rpc:{work}taken", "f", b"v").await?;
        // Reply queues with our hash tag (the held list's slot) and
        // without (a peer's, anywhere on a cluster), and a refusing one.
        let queues = ["work:rpc:{work}a", "work:rpc:b", "work:rpc:{work}taken", "work:rpc:c", "work:rpc:{work}d", "work:rpc:e"];
        let ttl = Duration::from_secs(30);
        let released: Vec<(&Taken, HeldReply<'_>)> = taken
            .iter()
            .zip(queues)
            .map(|(taken, queue)| (taken, HeldReply { queue, reply: queue.as_bytes(), ttl }))
            .collect();
        let outcomes = backend.release_held_each(&keys, &released).await;
        assert_eq!(outcomes.len(), 6);
        for (i, outcome) in outcomes.into_iter().enumerate() {
            if i == 2 {
                assert_wrongtype(outcome);
            } else {
                outcome.unwrap_or_else(|error| panic!("release {i}: {error}"));
            }
        }
        assert_eq!(drain(&backend, &keys.held).await, strings(&["r2"]), "the refused one stays held");
        let counted: Vec<_> = backend.hash_get_all(&keys.deliveries).await?.into_iter().map(|(name, _)| name).collect();
        assert_eq!(counted, [redisrpc_digest(b"r2")]);
        for queue in queues.iter().filter(|queue| !queue.ends_with("taken")) {
            assert!(matches!(backend.ttl(queue).await?, Ttl::Expires(_)), "{queue}");
            assert_eq!(drain(&backend, queue).await, strings(&[queue]));
        }
        Ok(())
    }

    async fn del_reports_whether_the_key_existed(backend: SharedBackend) {
        let key = "conformance:del";
        assert!(!backend.del(key).await.unwrap());
        backend.rpush(key, &[b"a", b"b"]).await.unwrap();
        assert!(backend.del(key).await.unwrap());
        assert_eq!(backend.ttl(key).await.unwrap(), Ttl::Missing);
        assert_eq!(backend.llen(key).await.unwrap(), 0);
        assert!(!backend.del(key).await.unwrap());

        backend.rpush_expire(key, b"a", Duration::from_secs(10)).await.unwrap();
        assert!(backend.del(key).await.unwrap(), "a key with an expiry");
        assert_eq!(backend.ttl(key).await.unwrap(), Ttl::Missing);
    }

    async fn an_emptied_list_disappears(backend: SharedBackend) {
        let key = "conformance:emptied";
        backend.rpush(key, &[b"a", b"b"]).await.unwrap();
        assert!(backend.expire(key, Duration::from_secs(10)).await.unwrap());
        backend.lpop(key).await.unwrap();
        bounded("blpop", backend.blpop(key, None)).await.unwrap();
        assert_eq!(backend.llen(key).await.unwrap(), 0);
        assert_eq!(backend.ttl(key).await.unwrap(), Ttl::Missing);
        assert!(!backend.expire(key, Duration::from_secs(10)).await.unwrap());
        assert!(!backend.del(key).await.unwrap());
        // Pushing again creates a new key, without the old expiry.
        backend.rpush(key, &[b"c"]).await.unwrap();
        assert_eq!(backend.ttl(key).await.unwrap(), Ttl::Persistent);
    }

    async fn binary_values_round_trip(backend: SharedBackend) {
        let key = "conformance:binary";
        let all_bytes: Vec<u8> = (0..=255).collect();
        let mut values: Vec<Vec<u8>> = vec![all_bytes.clone(), Vec::new()];
        values.extend((0..=255u8).map(|b| vec![b]));
        values.push(b"\r\n$3\r\nnot a command\r\n".to_vec());
        values.push("ünïcødé".as_bytes().to_vec());
        let refs: Vec<&[u8]> = values.iter().map(Vec::as_slice).collect();
        assert_eq!(backend.rpush(key, &refs).await.unwrap(), values.len());
        assert_eq!(backend.lrem(key, 0, &all_bytes).await.unwrap(), 1);
        backend.rpush_expire(key, &all_bytes, Duration::from_secs(10)).await.unwrap();
        let popped = bounded("blpop", backend.blpop(key, None)).await.unwrap();
        assert_eq!(popped, Some(Vec::new()), "the empty value");
        let mut expected = values[2..].to_vec();
        expected.push(all_bytes);
        assert_eq!(drain(&backend, key).await, expected);
    }

    /// Lists and documents share one keyspace on both backends, with
    /// Redis's type rules: the embedded backend kept them apart, so a
    /// queue and a document named alike coexisted there.
    async fn lists_and_documents_share_one_keyspace(backend: SharedBackend) -> anyhow::Result<()> {
        let state = redisrpc::state::State::new(backend.clone());
        backend.rpush("arm", &[b"request"]).await?;
        let error = backend.doc_get("arm").await.unwrap_err();
        assert!(error.is_wrong_type() && error.to_string().contains("a Redis list"), "{error}");
        assert!(state.set("arm.x", &1).await.unwrap_err().is_wrong_type());
        assert!(state.set("arm", &1).await.unwrap_err().is_wrong_type());
        assert_wrongtype(backend.hash_get_all("arm").await.map(drop));
        assert_eq!(drain(&backend, "arm").await, strings(&["request"]));

        state.set("doc", &serde_json::json!({"x": 1})).await?;
        let one_second = Some(Duration::from_secs(1));
        assert_wrongtype(backend.rpush("doc", &[b"v"]).await.map(drop));
        assert_wrongtype(backend.rpush_expire("doc", b"v", Duration::from_secs(5)).await);
        assert_wrongtype(backend.lpop("doc").await.map(drop));
        assert_wrongtype(bounded("blpop", backend.blpop("doc", one_second)).await.map(drop));
        assert_wrongtype(bounded("blpop_many", backend.blpop_many("doc", 8, one_second)).await.map(drop));
        assert_wrongtype(backend.llen("doc").await.map(drop));
        assert_wrongtype(backend.lrem("doc", 0, b"v").await.map(drop));
        // The document is untouched, and is a hash like any other.
        assert_eq!(state.get_value("doc").await?, serde_json::json!({"x": 1}));
        let fields: BTreeSet<String> = backend.hash_get_all("doc").await?.into_iter().map(|(f, _)| f).collect();
        assert_eq!(fields, BTreeSet::from(["json".to_owned(), "version".to_owned()]));
        // Key operations work on any type.
        assert_eq!(backend.ttl("doc").await?, Ttl::Persistent);
        assert!(backend.expire("doc", Duration::from_secs(60)).await?);
        assert!(matches!(backend.ttl("doc").await?, Ttl::Expires(_)));
        assert!(backend.del("doc").await?);
        assert_eq!(backend.doc_get("doc").await?, None);
        Ok(())
    }

    /// Patterns reach the embedded matcher from `State::subscribe`; the
    /// shape of CVE-2022-36021 hung it.
    async fn a_pattern_with_many_stars_is_matched_without_hanging(backend: SharedBackend) -> anyhow::Result<()> {
        let pattern = format!("{}b", "*a".repeat(30));
        let mut subscription = backend.subscribe(&[], &[pattern]).await?;
        for channel in ["a".repeat(60), format!("{}b", "a".repeat(60))] {
            let notification = redisrpc::backend::Notification { channel, head: b"v".to_vec(), tail: Vec::new() };
            let commit = redisrpc::backend::Commit { key: "glob".into(), publish: Some(notification), ..Default::default() };
            backend.doc_commit(&commit).await?;
            backend.del("glob").await?;
        }
        use futures::StreamExt;
        match bounded("the matching message", subscription.next()).await {
            Some(redisrpc::backend::PubSubEvent::Message { channel, .. }) => assert!(channel.ends_with('b'), "{channel}"),
            other => panic!("{other:?}"),
        }
        Ok(())
    }
}

/// Asserts Redis's `WRONGTYPE` refusal, as a command error.
fn assert_wrongtype(result: redisrpc::Result<()>) {
    match result {
        Err(redisrpc::Error::Command { source }) => assert!(source.to_string().contains("WRONGTYPE"), "{source}"),
        other => panic!("expected WRONGTYPE, got {other:?}"),
    }
}
