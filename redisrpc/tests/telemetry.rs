//! Spans, on every backend: a call is an `rpc.call` span on the client and
//! an `rpc.serve` span on the server, joined into one trace by the
//! request's `traceparent` member; calls a handler makes continue the
//! trace; a request without a usable trace context starts a new one.

mod common;

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use redisrpc::backend::SharedBackend;
use redisrpc::service::{CallContext, Methods};
use redisrpc::telemetry::TraceContext;
use redisrpc::{Client, Server};
use serde_json::{Value, json};

use common::spans::{self, closed};
use common::{start, stop};

/// A queue name no other test (or backend case) of this binary uses.
fn fresh_queue(what: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!("{what}{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// `add`, and `relay`, which asks the service on `next` to add.
fn service(next: Client) -> Methods<Client> {
    Methods::new(next)
        .method("add", &["a", "b"], |_, (a, b): (i64, i64)| async move {
            Ok::<_, Infallible>(a + b)
        })
        .method("relay", &["a", "b"], |next, (a, b): (i64, i64)| async move {
            next.call::<i64>("add", (a, b)).await.map_err(|error| error.to_string())
        })
        .method("trace_id", &[], |_, ()| async move {
            let trace = CallContext::current().and_then(|call| call.trace());
            Ok::<_, Infallible>(trace.map(|trace| trace.trace_id_hex()))
        })
}

common::backend_tests! {
    async fn a_call_is_one_trace_of_a_client_span_and_its_servers_child(backend: SharedBackend) {
        spans::install();
        let queue = fresh_queue("traced");
        let (handle, running) = start(Server::new(backend.clone(), &queue, service(Client::new(backend.clone(), "unused"))));
        let client = Client::new(backend.clone(), &queue).with_timeout(Some(Duration::from_secs(7)));
        assert_eq!(client.call::<i64>("add", (2, 3)).await.unwrap(), 5);
        let trace_id: Option<String> = client.call("trace_id", ()).await.unwrap();
        stop(handle, running).await;

        let calls = closed("rpc.call", &queue, 2).await;
        let serves = closed("rpc.serve", &queue, 2).await;
        let call = calls.iter().find(|span| span.field("rpc.method") == "add").unwrap();
        let serve = serves.iter().find(|span| span.field("rpc.method") == "add").unwrap();
        assert_eq!(serve.field("trace_id"), call.field("trace_id"), "one trace");
        assert_eq!(serve.field("parent_span_id"), call.field("span_id"), "the server's span is the caller's child");
        assert_ne!(serve.field("span_id"), call.field("span_id"));
        assert_eq!(serve.field("call_id"), call.field("call_id"));
        assert_eq!(call.field("call_id").len(), 32, "the reply queue's uuid");
        assert_eq!((call.field("outcome"), serve.field("outcome")), ("ok", "ok"));
        assert_eq!(call.field("timeout_ms"), "7000");
        assert_eq!(serve.field("delivery"), "1");
        assert_eq!((serve.field("otel.kind"), call.field("otel.kind")), ("server", "client"));
        assert_eq!(serve.field("otel.name"), format!("{queue}/add"));
        for field in ["duration_us", "queue_wait_us"] {
            let micros: u64 = serve.field(field).parse().unwrap();
            assert!(micros < 10_000_000, "{field}: {micros}");
        }
        // The handler sees its own place in the trace.
        let serve = serves.iter().find(|span| span.field("rpc.method") == "trace_id").unwrap();
        assert_eq!(trace_id.as_deref(), Some(serve.field("trace_id")));
    }

    async fn a_call_a_handler_makes_continues_its_callers_trace(backend: SharedBackend) {
        spans::install();
        let (front, back) = (fresh_queue("front"), fresh_queue("back"));
        let (front_handle, front_running) =
            start(Server::new(backend.clone(), &front, service(Client::new(backend.clone(), &back))));
        let (back_handle, back_running) =
            start(Server::new(backend.clone(), &back, service(Client::new(backend.clone(), "unused"))));
        let client = Client::new(backend.clone(), &front);
        assert_eq!(client.call::<i64>("relay", (4, 5)).await.unwrap(), 9);
        stop(front_handle, front_running).await;
        stop(back_handle, back_running).await;

        let outer_call = &closed("rpc.call", &front, 1).await[0];
        let outer_serve = &closed("rpc.serve", &front, 1).await[0];
        let inner_call = &closed("rpc.call", &back, 1).await[0];
        let inner_serve = &closed("rpc.serve", &back, 1).await[0];
        let trace = outer_call.field("trace_id");
        for span in [outer_serve, inner_call, inner_serve] {
            assert_eq!(span.field("trace_id"), trace, "{span:?}");
        }
        assert_eq!(outer_serve.field("parent_span_id"), outer_call.field("span_id"));
        assert_eq!(inner_call.field("parent_span_id"), outer_serve.field("span_id"));
        assert_eq!(inner_serve.field("parent_span_id"), inner_call.field("span_id"));
    }

    async fn the_traceparent_crosses_the_store_and_a_request_without_one_starts_a_trace(backend: SharedBackend) {
        spans::install();
        let queue = fresh_queue("wire");
        // No server yet: the request waits in the queue, as the store keeps it.
        let client = Client::new(backend.clone(), &queue);
        let call = tokio::spawn({
            let client = client.clone();
            async move { client.call::<i64>("add", (1, 1)).await }
        });
        let request = backend.blpop(&queue, Some(Duration::from_secs(10))).await.unwrap().expect("the request");
        let request: Value = serde_json::from_slice(&request).unwrap();
        let sent = TraceContext::parse(request["traceparent"].as_str().unwrap()).expect("a W3C trace context");
        assert!(sent.sampled);
        let now = backend.now(&queue).await.unwrap().as_millis() as u64;
        let sent_at = request["sent"].as_u64().expect("when it was sent");
        assert!(sent_at <= now && now - sent_at < 10_000, "sent {sent_at}, now {now}");
        let response_queue = request["response_queue"].as_str().unwrap();
        backend.rpush(response_queue, &[br#"{"return_value": 2}"#]).await.unwrap();
        assert_eq!(call.await.unwrap().unwrap(), 2);
        let span = &closed("rpc.call", &queue, 1).await[0];
        assert_eq!(span.field("trace_id"), sent.trace_id_hex());
        assert_eq!(span.field("span_id"), sent.span_id_hex());

        // A server given that context, a malformed one, and none.
        let (handle, running) = start(Server::new(backend.clone(), &queue, service(Client::new(backend.clone(), "unused"))));
        for (n, traceparent) in [json!(sent.to_string()), json!("00-nonsense"), json!(null)].into_iter().enumerate() {
            let response_queue = format!("{queue}:rpc:{n}");
            let request = json!({"function_call": {"name": "add", "args": [n, 1]},
                                 "response_queue": response_queue, "traceparent": traceparent});
            backend.rpush(&queue, &[request.to_string().as_bytes()]).await.unwrap();
            let reply = backend.blpop(&response_queue, Some(Duration::from_secs(10))).await.unwrap().expect("a reply");
            assert_eq!(serde_json::from_slice::<Value>(&reply).unwrap(), json!({"return_value": n + 1}));
        }
        stop(handle, running).await;
        let serves = closed("rpc.serve", &queue, 3).await;
        let with = |call_id: &str| serves.iter().find(|span| span.field("call_id") == call_id).unwrap();
        assert_eq!(with("0").field("trace_id"), sent.trace_id_hex());
        assert_eq!(with("0").field("parent_span_id"), sent.span_id_hex());
        for call_id in ["1", "2"] {
            let span = with(call_id);
            assert!(!span.fields.contains_key("parent_span_id"), "a new trace: {span:?}");
            assert_eq!(span.field("trace_id").len(), 32);
            assert_ne!(span.field("trace_id"), sent.trace_id_hex());
            assert!(!span.fields.contains_key("queue_wait_us"), "no `sent`, no wait measured");
        }
    }
}
