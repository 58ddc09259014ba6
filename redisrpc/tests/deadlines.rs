//! Deadlines, on both backends: a request carries its caller's deadline, a
//! server never starts one past it, a handler sees it, a caller that gives
//! up can have the running call cancelled, and urgent calls overtake the
//! queue. Also every valid-JSON request gets a reply, big ones included.

mod common;

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redisrpc::backend::{IntoBackend, SharedBackend};
use redisrpc::service::{CallContext, Methods};
use redisrpc::{Call, Cancellation, Client, DEFAULT_TIMEOUT, Server};
use serde_json::{Value, json};
use tokio::sync::Notify;

use common::{start, stop};

/// What the test service records.
#[derive(Default)]
struct Record {
    /// Calls started, by method, in order.
    started: Mutex<Vec<String>>,
    /// Set when a `hold` handler's future was dropped before it finished.
    dropped: AtomicBool,
    /// Set when a `hold` handler saw its call given up (it then finishes
    /// half a second later, long after its caller stopped waiting).
    saw_cancel: AtomicBool,
    release: Notify,
    holding: AtomicUsize,
}

/// Sets `dropped` unless defused: proof that a handler's future was dropped.
struct DropFlag(Arc<Record>, bool);

impl Drop for DropFlag {
    fn drop(&mut self) {
        if !self.1 {
            self.0.dropped.store(true, Ordering::SeqCst);
        }
    }
}

fn service(record: Arc<Record>) -> Methods<Record> {
    Methods::with_shared_state(record)
        .method("note", &["label"], |record, (label,): (String,)| async move {
            record.started.lock().unwrap().push(label);
            Ok::<_, Infallible>(())
        })
        .method("echo", &["value"], |_, (value,): (Value,)| async move {
            Ok::<_, Infallible>(value)
        })
        .method("remaining_ms", &[], |_, ()| async move {
            let context = CallContext::current().expect("a server runs every call in a context");
            Ok::<_, Infallible>(context.remaining().map(|left| left.as_millis() as u64))
        })
        .method("hold", &[], |record, ()| async move {
            record.holding.fetch_add(1, Ordering::SeqCst);
            let mut flag = DropFlag(record.clone(), false);
            let context = CallContext::current().unwrap();
            tokio::select! {
                () = record.release.notified() => {}
                () = context.cancelled() => {
                    record.saw_cancel.store(true, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
            flag.1 = true;
            Ok::<_, Infallible>("finished")
        })
}

/// Pushes `request` and waits up to `wait` for the reply on `response_queue`.
async fn raw_call(
    backend: &SharedBackend,
    queue: &str,
    request: &str,
    response_queue: &str,
    wait: Duration,
) -> Option<Value> {
    backend.rpush(queue, &[request.as_bytes()]).await.unwrap();
    let reply = backend.blpop(response_queue, Some(wait)).await.unwrap()?;
    Some(serde_json::from_slice(&reply).unwrap())
}

/// Polls `condition` for up to 10 s.
async fn eventually(what: &str, condition: impl Fn() -> bool) {
    for _ in 0..1000 {
        if condition() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting until {what}");
}

#[test]
fn clients_time_out_by_default() {
    let client = Client::new(redisrpc::backend::Memory::new(), "q");
    assert_eq!(client.timeout(), Some(DEFAULT_TIMEOUT));
    assert_eq!(DEFAULT_TIMEOUT, Duration::from_secs(10));
}

common::backend_tests! {
    async fn a_request_past_its_deadline_is_never_started(backend: SharedBackend) {
        let record = Arc::new(Record::default());
        let (handle, running) = start(Server::new(backend.clone(), "late", service(record.clone())));
        let now = backend.now("late").await.unwrap().as_millis() as u64;
        let past = format!(r#"{{"function_call":{{"name":"note","args":["past"]}},"response_queue":"late:rpc:1","deadline":{}}}"#, now - 1);
        let future = format!(r#"{{"function_call":{{"name":"note","args":["future"]}},"response_queue":"late:rpc:2","deadline":{}}}"#, now + 60_000);
        assert_eq!(raw_call(&backend, "late", &past, "late:rpc:1", Duration::from_millis(500)).await, None, "no reply");
        assert_eq!(raw_call(&backend, "late", &future, "late:rpc:2", Duration::from_secs(10)).await, Some(json!({"return_value": null})));
        assert_eq!(*record.started.lock().unwrap(), ["future"]);
        let stats = stop(handle, running).await;
        assert_eq!((stats.expired, stats.served), (1, 1));
    }

    async fn a_handler_sees_the_deadline_its_caller_sent(backend: SharedBackend) {
        let (handle, running) = start(Server::new(backend.clone(), "dl", service(Arc::default())));
        let client = Client::new(backend.clone(), "dl").with_timeout(Some(Duration::from_secs(3)));
        let left: Option<u64> = client.call("remaining_ms", ()).await.unwrap();
        let left = left.expect("the request carried a deadline");
        assert!((1_000..=3_000).contains(&left), "{left} ms left of 3 s");
        let forever: Option<u64> = client.send(Call::new("remaining_ms").with_timeout(None)).await.unwrap();
        assert_eq!(forever, None, "no timeout, no deadline");
        // A peer's member of that name that is no deadline changes nothing.
        let odd = r#"{"function_call":{"name":"remaining_ms"},"response_queue":"dl:rpc:x","deadline":"soon"}"#;
        assert_eq!(raw_call(&backend, "dl", odd, "dl:rpc:x", Duration::from_secs(10)).await, Some(json!({"return_value": null})));
        stop(handle, running).await;
    }

    async fn an_urgent_call_is_taken_before_those_waiting(backend: SharedBackend) {
        let record = Arc::new(Record::default());
        let server = Server::new(backend.clone(), "urgent", service(record.clone())).with_concurrency(1);
        let (handle, running) = start(server);
        let client = Client::new(backend.clone(), "urgent");
        // Occupy the only slot, then queue a backlog behind it.
        let busy = tokio::spawn({
            let client = client.clone();
            async move { client.call::<String>("hold", ()).await }
        });
        eventually("the server holds a call", || record.holding.load(Ordering::SeqCst) == 1).await;
        let mut calls = Vec::new();
        for label in ["first", "second", "third"] {
            let client = client.clone();
            calls.push(tokio::spawn(async move { client.call::<()>("note", (label,)).await }));
            eventually("the call is queued", || true).await;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let stop_call = Call::new("note").arg("stop").with_urgent(true);
        let urgent = tokio::spawn({
            let client = client.clone();
            async move { client.send_ignoring_result(stop_call).await }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        record.release.notify_one();
        busy.await.unwrap().unwrap();
        urgent.await.unwrap().unwrap();
        for call in calls {
            call.await.unwrap().unwrap();
        }
        assert_eq!(*record.started.lock().unwrap(), ["stop", "first", "second", "third"]);
        stop(handle, running).await;
    }

    async fn a_call_given_up_is_dropped_by_a_cancelling_server(backend: SharedBackend) {
        let record = Arc::new(Record::default());
        let server = Server::new(backend.clone(), "cancel", service(record.clone())).with_cancellation(Cancellation::Drop);
        let (handle, running) = start(server);
        let client = Client::new(backend.clone(), "cancel").with_timeout(Some(Duration::from_secs(30)));
        // The caller gives up long before its deadline, by dropping the call.
        let call = client.call::<String>("hold", ());
        let gave_up = tokio::select! {
            _ = call => false,
            () = eventually("the server runs the call", || record.holding.load(Ordering::SeqCst) == 1) => true,
        };
        assert!(gave_up);
        eventually("the handler's future is dropped", || record.dropped.load(Ordering::SeqCst)).await;
        assert!(!record.saw_cancel.load(Ordering::SeqCst), "dropped, not left to finish");
        let stats = stop(handle, running).await;
        assert_eq!((stats.cancelled, stats.served), (1, 0));
    }

    async fn a_call_past_its_deadline_runs_on_but_sees_it_was_given_up(backend: SharedBackend) {
        let record = Arc::new(Record::default());
        let (handle, running) = start(Server::new(backend.clone(), "finish", service(record.clone())));
        let client = Client::new(backend.clone(), "finish").with_timeout(Some(Duration::from_millis(300)));
        let error = client.call::<String>("hold", ()).await.unwrap_err();
        assert_eq!(error.request_may_run(), Some(true), "{error}");
        eventually("the handler sees the deadline pass", || record.saw_cancel.load(Ordering::SeqCst)).await;
        assert!(!record.dropped.load(Ordering::SeqCst), "run to completion is the default");
        let stats = stop(handle, running).await;
        assert_eq!((stats.cancelled, stats.served), (0, 1));
    }

    async fn every_valid_json_request_that_names_its_queue_gets_a_reply(backend: SharedBackend) {
        let (handle, running) = start(Server::new(backend.clone(), "edge", service(Arc::default())));
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        let huge = "1".repeat(400);
        let cases = [
            ("[1e400]".to_string(), "out of range"),
            ("[-1e400]".to_string(), "out of range"),
            (format!("[{huge}]"), "out of range"),
            (format!("[{deep}]"), "recursion limit"),
            (r#"["\ud800"]"#.to_string(), "escape"),
        ];
        for (i, (args, problem)) in cases.iter().enumerate() {
            let queue = format!("edge:rpc:{i}");
            let request = format!(r#"{{"function_call":{{"name":"echo","args":{args}}},"response_queue":"{queue}"}}"#);
            let reply = raw_call(&backend, "edge", &request, &queue, Duration::from_secs(10)).await;
            let text = reply.as_ref().and_then(|reply| reply["exception"].as_str()).unwrap_or_else(|| panic!("no exception for {args:.40}: {reply:?}"));
            assert!(text.contains(problem), "{args:.40}: {text}");
        }
        let stats = stop(handle, running).await;
        assert_eq!(stats.failed, 5);
    }

    async fn a_request_over_the_size_limit_is_answered_not_decoded(backend: SharedBackend) {
        let server = Server::new(backend.clone(), "big", service(Arc::default())).with_max_request_size(1_000);
        let (handle, running) = start(server);
        let client = Client::new(backend.clone(), "big");
        let error = client.call::<()>("note", ("x".repeat(2_000),)).await.unwrap_err();
        let message = error.remote_message().unwrap_or_default().to_string();
        assert!(message.contains("over this server's limit of 1000 bytes"), "{error}");
        client.call::<()>("note", ("small",)).await.unwrap();
        stop(handle, running).await;
    }

    async fn a_typed_client_takes_a_timeout_for_one_call(backend: SharedBackend) {
        let (handle, running) = start(Server::new(backend.clone(), "arm", ArmServer::new(SlowArm)));
        let arm = ArmClient::new(backend.clone(), "arm");
        let error = arm.with_timeout(Some(Duration::from_millis(100))).pause(2_000).await.unwrap_err();
        assert!(error.is_timeout(), "{error}");
        assert_eq!(arm.client().timeout(), Some(DEFAULT_TIMEOUT), "the client itself keeps its timeout");
        assert_eq!(arm.pause(10).await.unwrap(), 10);
        stop(handle, running).await;
    }
}

/// A service declared with `#[rpc]`, for the typed client's timeouts.
#[redisrpc::rpc]
trait Arm {
    /// Sleeps `ms` milliseconds.
    async fn pause(&self, ms: u64) -> u64;
}

struct SlowArm;

impl Arm for SlowArm {
    async fn pause(&self, ms: u64) -> u64 {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        ms
    }
}

/// A log sink for the warnings a server writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// On one thread, so the server's tasks log to this test's subscriber.
#[tokio::test(flavor = "current_thread")]
async fn a_flood_of_malformed_messages_is_counted_exactly_and_logged_sparingly() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _default = tracing::subscriber::set_default(subscriber);
    let backend = redisrpc::backend::Memory::new().into_backend();
    let (handle, running) = start(Server::new(backend.clone(), "flood", service(Arc::default())));
    for i in 0..2_000 {
        backend
            .rpush("flood", &[format!("not json {i}").as_bytes()])
            .await
            .unwrap();
    }
    eventually("the server took them all", || handle.stats().malformed == 2_000).await;
    let stats = stop(handle, running).await;
    assert_eq!(stats.malformed, 2_000);
    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let warnings = log
        .lines()
        .filter(|line| line.contains("dropped a message that is not a request"))
        .count();
    assert!(
        (1..=5).contains(&warnings),
        "{warnings} warnings for 2,000 messages:\n{log}"
    );
}
