//! Telemetry turned off for the process: calls still work, their requests
//! carry no trace context, and no span or facade metric is made. A binary
//! of its own: the switch is the process's.

mod common;

use std::convert::Infallible;
use std::time::Duration;

use metrics_util::debugging::DebuggingRecorder;
use redisrpc::service::Methods;
use redisrpc::{Client, Server};
use serde_json::Value;

use common::{memory_backend, spans, start, stop};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_telemetry_off_requests_carry_no_context_and_nothing_is_recorded() {
    spans::install();
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder.install().unwrap();
    redisrpc::telemetry::set_enabled(false);
    assert!(!redisrpc::telemetry::enabled());
    let backend = memory_backend();

    // On the wire: the request as a peer's client would send it, plus its deadline.
    let client = Client::new(backend.clone(), "quiet");
    let call = tokio::spawn({
        let client = client.clone();
        async move { client.call::<i64>("add", (1, 2)).await }
    });
    let request = backend
        .blpop("quiet", Some(Duration::from_secs(10)))
        .await
        .unwrap()
        .unwrap();
    let request: Value = serde_json::from_slice(&request).unwrap();
    let mut members: Vec<&str> = request.as_object().unwrap().keys().map(String::as_str).collect();
    members.sort();
    assert_eq!(members, ["deadline", "function_call", "response_queue"]);
    backend
        .rpush(
            request["response_queue"].as_str().unwrap(),
            &[br#"{"return_value": 3}"#],
        )
        .await
        .unwrap();
    assert_eq!(call.await.unwrap().unwrap(), 3);

    let service = Methods::new(()).method("add", &["a", "b"], |_, (a, b): (i64, i64)| async move {
        Ok::<_, Infallible>(a + b)
    });
    let (handle, running) = start(Server::new(backend.clone(), "quiet", service));
    assert_eq!(client.call::<i64>("add", (2, 2)).await.unwrap(), 4);
    stop(handle, running).await;

    let snapshot = snapshotter.snapshot().into_vec();
    assert!(snapshot.is_empty(), "nothing through the facade: {snapshot:?}");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let spans = spans::all_closed();
    assert!(
        spans.iter().all(|span| !span.name.starts_with("rpc.")),
        "no call spans: {spans:?}"
    );
}
