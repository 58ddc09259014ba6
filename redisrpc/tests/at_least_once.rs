//! At-least-once delivery on both backends, with a dead server played by
//! the test: it takes requests onto its held list the way a server does
//! and then never answers, as a server killed at that moment would not.
//! (The same with real processes and `kill -9` is in the examples' tests.)

mod common;

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redisrpc::backend::{HeldKeys, SharedBackend};
use redisrpc::service::{CallContext, Methods};
use redisrpc::{Call, Client, Delivery, Server, layout};

use common::{start, stop};

/// The attempts each call ran with, by argument.
type Runs = Arc<Mutex<Vec<(u64, u64)>>>;

fn service(runs: Runs) -> Methods<Mutex<Vec<(u64, u64)>>> {
    Methods::with_shared_state(runs).method("run", &["n"], |runs, (n,): (u64,)| async move {
        let attempt = CallContext::current().map_or(0, |context| context.attempt());
        runs.lock().unwrap().push((n, attempt));
        Ok::<_, Infallible>(n)
    })
}

/// A server that took the requests waiting on `queue` and died: registered,
/// with no liveness record.
async fn dead_server_takes(backend: &SharedBackend, queue: &str, instance: &str, count: usize) {
    let keys = HeldKeys::new(queue, instance);
    backend.hash_set(&keys.servers, instance, b"").await.unwrap();
    let mut taken = 0;
    for _ in 0..100 {
        taken += backend
            .take_held(&keys, count - taken, Some(Duration::from_millis(100)))
            .await
            .unwrap()
            .len();
        if taken == count {
            return;
        }
    }
    panic!("took {taken} of {count} requests");
}

/// Polls `condition` for up to 10 s.
async fn eventually(what: &str, mut condition: impl AsyncFnMut() -> bool) {
    for _ in 0..1000 {
        if condition().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting until {what}");
}

common::backend_tests! {
    async fn an_answered_call_leaves_nothing_held_and_the_server_leaves_no_trace(backend: SharedBackend) {
        let runs = Runs::default();
        let server = Server::new(backend.clone(), "work", service(runs.clone())).with_delivery(Delivery::AtLeastOnce);
        let (handle, running) = start(server);
        let client = Client::new(backend.clone(), "work");
        for n in 0..20 {
            assert_eq!(client.call::<u64>("run", (n,)).await.unwrap(), n);
        }
        assert!(runs.lock().unwrap().iter().all(|&(_, attempt)| attempt == 1));
        let servers = backend.hash_get_all(&layout::servers("work")).await.unwrap();
        assert_eq!(servers.len(), 1, "registered");
        let instance = &servers[0].0;
        let record = backend.hash_get_all(&layout::liveness("work", instance)).await.unwrap();
        let field = |name: &str| record.iter().find(|(n, _)| n == name).map(|(_, v)| String::from_utf8_lossy(v).into_owned());
        assert_eq!(field("delivery").as_deref(), Some("at-least-once"));
        assert_eq!(field("queue").as_deref(), Some("work"));
        assert_eq!(field("pid"), Some(std::process::id().to_string()));
        assert_eq!(backend.llen(&layout::held("work", instance)).await.unwrap(), 0);
        assert!(backend.hash_get_all(&layout::deliveries("work")).await.unwrap().is_empty());
        let stats = stop(handle, running).await;
        assert_eq!((stats.served, stats.redelivered), (20, 0));
        assert!(backend.hash_get_all(&layout::servers("work")).await.unwrap().is_empty(), "deregistered");
        assert!(!backend.exists(&layout::liveness("work", instance)).await.unwrap(), "record deleted");
    }

    async fn a_dead_servers_requests_run_again_on_a_live_one(backend: SharedBackend) {
        let client = Client::new(backend.clone(), "work").with_timeout(Some(Duration::from_secs(20)));
        let calls: Vec<_> = (0..5)
            .map(|n| {
                let client = client.clone();
                tokio::spawn(async move { client.call::<u64>("run", (n,)).await })
            })
            .collect();
        eventually("the calls are queued", async || backend.llen("work").await.unwrap() == 5).await;
        dead_server_takes(&backend, "work", "ghost", 5).await;

        let runs = Runs::default();
        let server = Server::new(backend.clone(), "work", service(runs.clone())).with_delivery(Delivery::AtLeastOnce);
        let (handle, running) = start(server);
        for (n, call) in calls.into_iter().enumerate() {
            assert_eq!(call.await.unwrap().unwrap(), n as u64);
        }
        let mut ran = runs.lock().unwrap().clone();
        ran.sort();
        assert_eq!(ran, (0..5).map(|n| (n, 2)).collect::<Vec<_>>(), "each once more, as its second delivery");
        let stats = stop(handle, running).await;
        assert_eq!(stats.redelivered, 5);
    }

    async fn a_request_delivered_too_often_is_answered_with_an_exception(backend: SharedBackend) {
        let client = Client::new(backend.clone(), "work").with_timeout(Some(Duration::from_secs(20)));
        let call = tokio::spawn({
            let client = client.clone();
            async move { client.call::<u64>("run", (7,)).await }
        });
        // Two servers die running it.
        for ghost in ["ghost-1", "ghost-2"] {
            eventually("the request is queued", async || backend.llen("work").await.unwrap() == 1).await;
            dead_server_takes(&backend, "work", ghost, 1).await;
            backend.requeue_held(&HeldKeys::new("work", ghost), true).await.unwrap();
        }
        let runs = Runs::default();
        let server = Server::new(backend.clone(), "work", service(runs.clone()))
            .with_delivery(Delivery::AtLeastOnce)
            .with_max_deliveries(2);
        let (handle, running) = start(server);
        let error = call.await.unwrap().unwrap_err();
        let message = error.remote_message().unwrap_or_default().to_string();
        assert!(message.contains("run() was delivered 2 times without an answer"), "{error}");
        assert!(runs.lock().unwrap().is_empty(), "not run a third time");
        let stats = stop(handle, running).await;
        assert_eq!(stats.poisoned, 1);
        assert!(backend.hash_get_all(&layout::deliveries("work")).await.unwrap().is_empty());
    }

    async fn an_expired_request_of_a_dead_server_is_dropped_not_run(backend: SharedBackend) {
        let client = Client::new(backend.clone(), "work");
        let call = Call::new("run").arg(1).with_timeout(Some(Duration::from_millis(300)));
        let calling = tokio::spawn({
            let client = client.clone();
            async move { client.send::<u64>(call).await }
        });
        eventually("the request is queued", async || backend.llen("work").await.unwrap() == 1).await;
        dead_server_takes(&backend, "work", "ghost", 1).await;
        assert!(calling.await.unwrap().unwrap_err().is_timeout());
        let runs = Runs::default();
        let server = Server::new(backend.clone(), "work", service(runs.clone())).with_delivery(Delivery::AtLeastOnce);
        let (handle, running) = start(server);
        eventually("the server dropped it", async || handle.stats().expired == 1).await;
        assert!(runs.lock().unwrap().is_empty());
        assert_eq!(backend.llen(&layout::held("work", "ghost")).await.unwrap(), 0);
        stop(handle, running).await;
        assert!(backend.hash_get_all(&layout::deliveries("work")).await.unwrap().is_empty(), "released");
    }

    async fn servers_of_both_modes_share_a_queue(backend: SharedBackend) {
        let runs = Runs::default();
        let (a, a_running) = start(Server::new(backend.clone(), "mixed", service(runs.clone())).with_delivery(Delivery::AtLeastOnce));
        let (b, b_running) = start(Server::new(backend.clone(), "mixed", service(runs.clone())));
        let client = Client::new(backend.clone(), "mixed");
        let calls: Vec<_> = (0..40)
            .map(|n| {
                let client = client.clone();
                tokio::spawn(async move { client.call::<u64>("run", (n,)).await })
            })
            .collect();
        for call in calls {
            call.await.unwrap().unwrap();
        }
        assert_eq!(runs.lock().unwrap().len(), 40);
        let (a, b) = (stop(a, a_running).await, stop(b, b_running).await);
        assert_eq!(a.served + b.served, 40);
    }
}
