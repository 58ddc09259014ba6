//! Every per-method metric, recorded through the `metrics` facade (the
//! `metrics-util` debugging recorder here), and the same figures in the
//! server's liveness record. One test: the recorder is the process's.

mod common;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::time::Duration;

use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use redisrpc::backend::{HeldKeys, SharedBackend};
use redisrpc::service::Methods;
use redisrpc::{Call, Cancellation, Client, Delivery, Error, Server, layout};
use serde_json::{Value, json};

use common::{memory_backend, start, stop};

fn service() -> Methods<()> {
    Methods::new(())
        .method("add", &["a", "b"], |_, (a, b): (i64, i64)| async move {
            Ok::<_, Infallible>(a + b)
        })
        .method("fail", &[], |_, ()| async move { Err::<(), _>("no") })
        .method("panic", &[], |_, ()| async move {
            if true {
                panic!("boom");
            }
            Ok::<_, Infallible>(())
        })
        .method("hold", &[], |_, ()| async move {
            tokio::time::sleep(Duration::from_secs(60)).await;
            Ok::<_, Infallible>(())
        })
}

/// Each metric of `queue`, by name and then by its other labels.
type Figures = BTreeMap<String, BTreeMap<String, DebugValue>>;

fn figures(snapshot: metrics_util::debugging::Snapshot, queue: &str) -> Figures {
    let mut figures = Figures::new();
    for (key, _, _, value) in snapshot.into_vec() {
        let key = key.key();
        if !key
            .labels()
            .any(|label| label.key() == "queue" && label.value() == queue)
        {
            continue;
        }
        let others: Vec<String> = key
            .labels()
            .filter(|label| label.key() != "queue")
            .map(|label| format!("{}={}", label.key(), label.value()))
            .collect();
        figures
            .entry(key.name().to_owned())
            .or_default()
            .insert(others.join(","), value);
    }
    figures
}

fn counter(figures: &Figures, name: &str, labels: &str) -> u64 {
    match figures.get(name).and_then(|values| values.get(labels)) {
        Some(DebugValue::Counter(count)) => *count,
        other => panic!("{name}{{{labels}}} is {other:?}; all: {figures:?}"),
    }
}

fn histogram(figures: &Figures, name: &str, labels: &str) -> Vec<f64> {
    match figures.get(name).and_then(|values| values.get(labels)) {
        Some(DebugValue::Histogram(values)) => values.iter().map(|value| value.into_inner()).collect(),
        other => panic!("{name}{{{labels}}} is {other:?}; all: {figures:?}"),
    }
}

/// A server that took every request waiting on `queue` and died.
async fn dead_server_takes_all(backend: &SharedBackend, queue: &str) {
    let keys = HeldKeys::new(queue, "ghost");
    backend.hash_set(&keys.servers, "ghost", b"").await.unwrap();
    let taken = backend
        .take_held(&keys, 10, Some(Duration::from_secs(5)))
        .await
        .unwrap();
    assert_eq!(taken.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_goes_through_the_facade_and_into_the_liveness_record() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder.install().expect("the only recorder of this process");
    let backend = memory_backend();
    let queue = "metered";

    // A request whose server died, run again by the real server below.
    let client = Client::new(backend.clone(), queue);
    let redelivered = tokio::spawn({
        let client = client.clone();
        async move { client.call::<i64>("add", (20, 22)).await }
    });
    while backend.llen(queue).await.unwrap() == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    dead_server_takes_all(&backend, queue).await;

    let server = Server::new(backend.clone(), queue, service())
        .with_cancellation(Cancellation::Drop)
        .with_delivery(Delivery::AtLeastOnce);
    let (handle, running) = start(server);
    assert_eq!(redelivered.await.unwrap().unwrap(), 42);
    for n in 0..3 {
        assert_eq!(client.call::<i64>("add", (n, 1)).await.unwrap(), n + 1);
    }
    assert!(matches!(client.call::<()>("fail", ()).await, Err(Error::Remote { .. })));
    assert!(matches!(
        client.call::<()>("panic", ()).await,
        Err(Error::Remote { .. })
    ));
    assert!(matches!(
        client.call::<()>("nothing", ()).await,
        Err(Error::Remote { .. })
    ));
    assert!(matches!(
        client.call::<i64>("add", ("x", 1)).await,
        Err(Error::Remote { .. })
    ));
    // Given up by its caller while it runs: dropped (Cancellation::Drop).
    let held = client
        .send::<()>(Call::new("hold").with_timeout(Some(Duration::from_millis(300))))
        .await;
    assert!(matches!(held, Err(Error::Timeout { .. })), "{held:?}");
    // Past its deadline before any server takes it.
    let now = backend.now(queue).await.unwrap().as_millis() as u64;
    let late = json!({"function_call": {"name": "add", "args": [1, 1]}, "response_queue": format!("{queue}:rpc:late"),
                      "deadline": now - 1, "sent": now - 5_000});
    backend.rpush(queue, &[late.to_string().as_bytes()]).await.unwrap();

    let servers = backend.hash_get_all(&layout::servers(queue)).await.unwrap();
    let instance = servers.iter().find(|(name, _)| name != "ghost").unwrap().0.clone();
    let mut record = Value::Null;
    for _ in 0..100 {
        let fields = backend.hash_get_all(&layout::liveness(queue, &instance)).await.unwrap();
        if let Some((_, methods)) = fields.iter().find(|(name, _)| name == "methods") {
            record = serde_json::from_slice(methods).unwrap();
            if record["add"]["expired"] == json!(1) && record["hold"]["cancelled"] == json!(1) {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let figures = figures(snapshotter.snapshot(), queue);
    stop(handle, running).await;

    // Through the facade.
    assert_eq!(
        counter(&figures, "redisrpc_calls_total", "method=add"),
        5,
        "4 that ran + 1 refused argument"
    );
    assert_eq!(counter(&figures, "redisrpc_redelivered_total", "method=add"), 1);
    assert_eq!(counter(&figures, "redisrpc_expired_total", "method=add"), 1);
    assert_eq!(counter(&figures, "redisrpc_cancelled_total", "method=hold"), 1);
    for (method, kind) in [
        ("fail", "failed"),
        ("panic", "panicked"),
        ("(unknown)", "unknown_method"),
        ("add", "invalid_arguments"),
    ] {
        assert_eq!(
            counter(
                &figures,
                "redisrpc_errors_total",
                &format!("method={method},kind={kind}")
            ),
            1
        );
    }
    let durations = histogram(&figures, "redisrpc_call_duration_seconds", "method=add");
    assert_eq!(durations.len(), 5);
    assert!(
        durations.iter().all(|&seconds| (0.0..10.0).contains(&seconds)),
        "{durations:?}"
    );
    let waits = histogram(&figures, "redisrpc_queue_wait_seconds", "method=add");
    assert_eq!(
        waits.len(),
        6,
        "every request sent with its time, the late one too: {waits:?}"
    );
    assert!(
        waits.iter().any(|&seconds| seconds >= 5.0),
        "the late one waited 5 s: {waits:?}"
    );

    // The same figures in the liveness record, for `redisrpc stats`.
    let add = &record["add"];
    assert_eq!(
        (add["calls"].clone(), add["errors"].clone()),
        (json!(5), json!(1)),
        "{record}"
    );
    assert_eq!(add["errors_by_kind"], json!({"invalid_arguments": 1}));
    assert_eq!(
        (add["expired"].clone(), add["redelivered"].clone()),
        (json!(1), json!(1))
    );
    let counted = |buckets: &Value| {
        buckets
            .as_object()
            .unwrap()
            .values()
            .map(|n| n.as_u64().unwrap())
            .sum::<u64>()
    };
    assert_eq!((counted(&add["buckets"]), counted(&add["wait_buckets"])), (5, 6));
    assert_eq!(record["hold"]["cancelled"], json!(1));
    assert_eq!(record["panic"]["errors_by_kind"], json!({"panicked": 1}));
}
