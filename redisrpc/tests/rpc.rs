//! Client and server together, on both backends: what a caller sees for
//! every kind of call, and that the server survives everything a client can
//! push. Peers' wire habits are reproduced by pushing and popping raw JSON.

mod common;

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use redisrpc::backend::{SharedBackend, Ttl};
use redisrpc::protocol::Request;
use redisrpc::service::Methods;
use redisrpc::{Call, Client, Error, Server, ServerHandle, ServerStats};
use serde_json::{Value, json};
use tokio::sync::{Barrier, Notify};
use tokio::task::JoinHandle;

use common::{start, stop};

/// Shared state of the test service, for the handlers that coordinate.
#[derive(Default)]
struct Probe {
    running: AtomicUsize,
    most_running: AtomicUsize,
    gate: Notify,
    at_gate: AtomicUsize,
    barrier: std::sync::OnceLock<Barrier>,
}

fn test_service(probe: Arc<Probe>) -> Methods<Probe> {
    Methods::with_shared_state(probe)
        .method("echo", &["value"], |_, (value,): (Value,)| async move {
            Ok::<_, Infallible>(value)
        })
        .method("sub", &["a", "b"], |_, (a, b): (i64, i64)| async move {
            Ok::<_, Infallible>(a - b)
        })
        .method(
            "greet",
            &["name", "punctuation"],
            |_, (name, punctuation): (String, Option<String>)| async move {
                Ok::<_, Infallible>(format!("hello, {name}{}", punctuation.unwrap_or_default()))
            },
        )
        .method("fail", &["message"], |_, (message,): (String,)| async move {
            Err::<(), _>(message)
        })
        .method("explode", &[], |_, ()| async move {
            if true {
                panic!("boom at the handler");
            }
            Ok::<_, Infallible>(())
        })
        .method(
            "explode_early",
            &[],
            |_, ()| -> std::future::Ready<Result<(), Infallible>> { panic!("boom before the future") },
        )
        .method("infinite", &[], |_, ()| async move {
            Ok::<_, Infallible>(vec![1.0, f64::INFINITY])
        })
        .method("sleep", &["ms"], |_, (ms,): (u64,)| async move {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok::<_, Infallible>(ms)
        })
        .method("wait_for_gate", &[], |probe, ()| async move {
            probe.at_gate.fetch_add(1, Ordering::SeqCst);
            probe.gate.notified().await;
            Ok::<_, Infallible>("released")
        })
        .method("meet", &[], |probe, ()| async move {
            let now = probe.running.fetch_add(1, Ordering::SeqCst) + 1;
            probe.most_running.fetch_max(now, Ordering::SeqCst);
            probe.barrier.get().expect("the test sets the barrier").wait().await;
            probe.running.fetch_sub(1, Ordering::SeqCst);
            Ok::<_, Infallible>(())
        })
        .method("count_running", &[], |probe, ()| async move {
            let now = probe.running.fetch_add(1, Ordering::SeqCst) + 1;
            probe.most_running.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(20)).await;
            probe.running.fetch_sub(1, Ordering::SeqCst);
            Ok::<_, Infallible>(())
        })
}

fn serve(
    backend: &SharedBackend,
    queue: &str,
) -> (Arc<Probe>, ServerHandle, JoinHandle<redisrpc::Result<ServerStats>>) {
    let probe = Arc::new(Probe::default());
    let (handle, running) = start(Server::new(backend.clone(), queue, test_service(probe.clone())));
    (probe, handle, running)
}

fn client(backend: &SharedBackend, queue: &str) -> Client {
    Client::new(backend.clone(), queue).with_timeout(Some(Duration::from_secs(10)))
}

/// Pushes a raw request as a peer would and waits for the raw reply.
async fn raw_call(backend: &SharedBackend, queue: &str, request: &str, response_queue: &str) -> Value {
    backend.rpush(queue, &[request.as_bytes()]).await.unwrap();
    let reply = backend
        .blpop(response_queue, Some(Duration::from_secs(10)))
        .await
        .unwrap()
        .expect("a reply");
    serde_json::from_slice(&reply).unwrap()
}

fn remote_message(result: Result<impl std::fmt::Debug, Error>) -> String {
    match result {
        Err(Error::Remote { message, .. }) => message,
        other => panic!("expected a remote error, got {other:?}"),
    }
}

common::backend_tests! {
    async fn positional_named_and_mixed_arguments(backend: SharedBackend) {
        let (_, handle, running) = serve(&backend, "args");
        let c = client(&backend, "args");
        assert_eq!(c.call::<i64>("sub", (10, 3)).await.unwrap(), 7);
        assert_eq!(c.send::<i64>(Call::new("sub").kwarg("b", 3).kwarg("a", 10)).await.unwrap(), 7);
        assert_eq!(c.send::<i64>(Call::new("sub").arg(10).kwarg("b", 3)).await.unwrap(), 7);
        assert_eq!(c.call::<i64>("sub", json!({"a": 1, "b": 2})).await.unwrap(), -1);
        assert_eq!(c.call::<String>("greet", ("Zoë",)).await.unwrap(), "hello, Zoë");
        assert_eq!(c.send::<String>(Call::new("greet").arg("Zoë").kwarg("punctuation", "!")).await.unwrap(), "hello, Zoë!");
        stop(handle, running).await;
    }

    async fn values_round_trip_exactly(backend: SharedBackend) {
        let (_, handle, running) = serve(&backend, "echo");
        let c = client(&backend, "echo");
        for value in [
            json!(i64::MIN), json!(i64::MAX), json!(u64::MAX), json!(0.1), json!(1e-300), json!(-0.0),
            json!(9007199254740993_f64), json!("Grüße, 世界 🚀"), json!([]), json!({}), json!(null),
            json!({"nested": {"list": [1, [2, {"deep": true}]], "empty": {}}}),
        ] {
            let back: Value = c.call("echo", (value.clone(),)).await.unwrap();
            assert_eq!(back, value);
            if let Some(x) = value.as_f64() {
                assert_eq!(back.as_f64().unwrap().to_bits(), x.to_bits(), "{value}");
            }
        }
        let big = "x".repeat(1 << 20);
        assert_eq!(c.call::<String>("echo", (big.clone(),)).await.unwrap(), big);
        stop(handle, running).await;
    }

    async fn argument_errors_are_remote_errors_naming_the_problem(backend: SharedBackend) {
        let (_, handle, running) = serve(&backend, "bad-args");
        let c = client(&backend, "bad-args");
        let unknown = remote_message(c.call::<Value>("nope", ()).await);
        assert!(unknown.contains("unknown method `nope`") && unknown.contains("echo"), "{unknown}");
        let missing = remote_message(c.call::<i64>("sub", (1,)).await);
        assert!(missing.contains("sub()") && missing.contains("missing argument `b`"), "{missing}");
        let extra = remote_message(c.call::<i64>("sub", (1, 2, 3)).await);
        assert!(extra.contains("takes 2 arguments") && extra.contains("3 were given"), "{extra}");
        let mistyped = remote_message(c.call::<i64>("sub", (1, "two")).await);
        assert!(mistyped.contains("argument `b` must be i64"), "{mistyped}");
        let unexpected = remote_message(c.send::<i64>(Call::new("sub").arg(1).kwarg("c", 2)).await);
        assert!(unexpected.contains("unexpected named argument `c`"), "{unexpected}");
        assert_eq!(c.call::<i64>("sub", (5, 2)).await.unwrap(), 3, "the server keeps serving");
        let stats = stop(handle, running).await;
        assert_eq!((stats.served, stats.failed), (1, 5));
    }

    async fn handler_errors_and_panics_become_remote_errors(backend: SharedBackend) {
        let (_, handle, running) = serve(&backend, "failing");
        let c = client(&backend, "failing");
        assert_eq!(remote_message(c.call::<()>("fail", ("the arm is stuck",)).await), "the arm is stuck");
        let panicked = remote_message(c.call::<()>("explode", ()).await);
        assert!(panicked.contains("explode() panicked: boom at the handler"), "{panicked}");
        let early = remote_message(c.call::<()>("explode_early", ()).await);
        assert!(early.contains("explode_early() panicked: boom before the future"), "{early}");
        assert_eq!(c.call::<String>("echo", ("still here",)).await.unwrap(), "still here");
        stop(handle, running).await;
    }

    async fn a_result_json_cannot_carry_is_an_exception_not_null(backend: SharedBackend) {
        let (_, handle, running) = serve(&backend, "inf");
        let reply = raw_call(&backend, "inf", r#"{"function_call":{"name":"infinite"},"response_queue":"inf:rpc:1"}"#, "inf:rpc:1").await;
        let text = reply["exception"].as_str().expect("an exception reply");
        assert!(text.contains("infinite()") && text.contains("not finite"), "{text}");
        assert!(reply.get("return_value").is_none());
        stop(handle, running).await;
    }

    async fn garbage_is_dropped_counted_and_survived(backend: SharedBackend) {
        let (_, handle, running) = serve(&backend, "garbage");
        for junk in [&b"not json"[..], b"", b"[1,2,3]", b"{\"function_call\":{\"name\":\"echo\"}}", b"\xff\x00\xfe", b"{\"response_queue\":1}"] {
            backend.rpush("garbage", &[junk]).await.unwrap();
        }
        let c = client(&backend, "garbage");
        assert_eq!(c.call::<i64>("echo", (42,)).await.unwrap(), 42);
        let stats = stop(handle, running).await;
        assert_eq!(stats.malformed, 6);
        assert_eq!(stats.served, 1);
    }

    async fn mangled_requests_are_all_accounted_for_and_survived(backend: SharedBackend) {
        const MANGLED: u64 = 400;
        let (_, handle, running) = serve(&backend, "mangled");
        let valid = br#"{"function_call":{"name":"sub","args":[7],"kwargs":{"b":2}},"response_queue":"mangled:rpc:0"}"#;
        let mut random = 0x2545_f491_4f6c_dd1d_u64;
        for _ in 0..MANGLED {
            let mut message = valid.to_vec();
            // Flip, drop or duplicate a few bytes, or cut the message short.
            for _ in 0..1 + xorshift(&mut random) % 4 {
                let at = (xorshift(&mut random) % message.len() as u64) as usize;
                match xorshift(&mut random) % 4 {
                    0 => message[at] ^= 1 << (xorshift(&mut random) % 8),
                    1 => drop(message.remove(at)),
                    2 => message.insert(at, message[at]),
                    _ => message.truncate(at.max(1)),
                }
            }
            backend.rpush("mangled", &[&message]).await.unwrap();
        }
        let c = client(&backend, "mangled");
        assert_eq!(c.call::<i64>("sub", (7, 2)).await.unwrap(), 5, "the server still serves");
        let stats = stop(handle, running).await;
        let accounted = stats.served + stats.failed + stats.malformed + stats.refused + stats.reply_errors;
        assert_eq!(accounted, MANGLED + 1, "every message is answered, dropped or refused: {stats:?}");
        assert_eq!(stats.reply_errors, 0);
    }

    async fn an_unusable_call_with_a_response_queue_gets_an_exception(backend: SharedBackend) {
        let (_, handle, running) = serve(&backend, "badcall");
        for (request, needle) in [
            (r#"{"response_queue":"badcall:rpc:a"}"#, "function_call"),
            (r#"{"function_call":{"args":[1]},"response_queue":"badcall:rpc:a"}"#, "name"),
            (r#"{"function_call":{"name":"echo","args":{"x":1}},"response_queue":"badcall:rpc:a"}"#, "malformed"),
            (r#"{"function_call":{"name":"echo","args":[NaN]},"response_queue":"badcall:rpc:a"}"#, "non-finite"),
        ] {
            let reply = raw_call(&backend, "badcall", request, "badcall:rpc:a").await;
            let text = reply["exception"].as_str().unwrap_or_else(|| panic!("{request}: {reply}"));
            assert!(text.contains(needle), "{request}: {text}");
        }
        stop(handle, running).await;
    }

    async fn replies_only_go_to_the_queues_own_reply_keys(backend: SharedBackend) {
        let (_, handle, running) = serve(&backend, "guarded");
        for target in ["victim", "guarded", "guarded:rpc:", "other:rpc:x", "guarded:rpcx"] {
            let request = json!({"function_call": {"name": "echo", "args": [1]}, "response_queue": target}).to_string();
            backend.rpush("guarded", &[request.as_bytes()]).await.unwrap();
        }
        let c = client(&backend, "guarded");
        assert_eq!(c.call::<i64>("echo", (7,)).await.unwrap(), 7);
        let stats = stop(handle, running).await;
        assert_eq!(stats.refused, 5);
        for key in ["victim", "guarded:rpc:", "other:rpc:x", "guarded:rpcx"] {
            assert_eq!(backend.ttl(key).await.unwrap(), Ttl::Missing, "{key} was written");
        }
        assert_eq!(backend.llen("guarded").await.unwrap(), 0);
    }

    async fn reply_queues_expire(backend: SharedBackend) {
        let probe = Arc::new(Probe::default());
        let server = Server::new(backend.clone(), "ttl", test_service(probe)).with_reply_ttl(Duration::from_secs(30));
        let (handle, running) = start(server);
        let request = r#"{"function_call":{"name":"echo","args":[1]},"response_queue":"ttl:rpc:abandoned"}"#;
        backend.rpush("ttl", &[request.as_bytes()]).await.unwrap();
        // Nobody collects the reply; wait until it is there.
        let mut ttl = Ttl::Missing;
        for _ in 0..200 {
            ttl = backend.ttl("ttl:rpc:abandoned").await.unwrap();
            if ttl != Ttl::Missing {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        match ttl {
            Ttl::Expires(left) => assert!(left <= Duration::from_secs(30) && left > Duration::from_secs(20), "{left:?}"),
            other => panic!("the reply queue has no expiry: {other:?}"),
        }
        stop(handle, running).await;
    }

    async fn the_queue_is_kept_at_start_unless_asked(backend: SharedBackend) {
        let request = |id: &str| format!(r#"{{"function_call":{{"name":"echo","args":["{id}"]}},"response_queue":"keep:rpc:{id}"}}"#);
        backend.rpush("keep", &[request("early").as_bytes()]).await.unwrap();
        let (_, handle, running) = serve(&backend, "keep");
        let reply = backend.blpop("keep:rpc:early", Some(Duration::from_secs(10))).await.unwrap();
        assert_eq!(serde_json::from_slice::<Value>(&reply.expect("the early request is served")).unwrap(), json!({"return_value": "early"}));
        stop(handle, running).await;

        backend.rpush("keep", &[request("stale").as_bytes()]).await.unwrap();
        let server = Server::new(backend.clone(), "keep", test_service(Arc::default())).with_clear_queue_on_start(true);
        let (handle, running) = start(server);
        // The server deletes the queue as it starts; call only after that,
        // or the deletion could take this call's request too.
        for _ in 0..500 {
            if backend.llen("keep").await.unwrap() == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(client(&backend, "keep").call::<i64>("echo", (1,)).await.unwrap(), 1);
        assert_eq!(backend.lpop("keep:rpc:stale").await.unwrap(), None, "the stale request was deleted, not served");
        stop(handle, running).await;
    }

    async fn a_call_nobody_serves_times_out_and_withdraws_its_request(backend: SharedBackend) {
        let c = Client::new(backend.clone(), "nobody").with_timeout(Some(Duration::from_millis(200)));
        let error = c.call::<Value>("echo", (1,)).await.unwrap_err();
        assert!(error.is_timeout(), "{error}");
        assert!(matches!(error, Error::Timeout { request_withdrawn: true, .. }), "{error:?}");
        assert_eq!(backend.llen("nobody").await.unwrap(), 0, "the request is not left queued");
        let error = c.send::<Value>(Call::new("echo").arg(1).with_timeout(Some(Duration::from_millis(50)))).await.unwrap_err();
        assert!(matches!(error, Error::Timeout { timeout, .. } if timeout == Duration::from_millis(50)), "{error:?}");
    }

    async fn an_abandoned_call_withdraws_its_request(backend: SharedBackend) {
        let c = Client::new(backend.clone(), "abandoned");
        let gave_up = tokio::time::timeout(Duration::from_millis(100), c.call::<Value>("echo", (1,))).await;
        assert!(gave_up.is_err(), "nobody serves, so the call cannot have completed");
        for _ in 0..200 {
            if backend.llen("abandoned").await.unwrap() == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the abandoned call's request is still queued");
    }

    async fn a_call_a_server_took_reports_it_may_still_run(backend: SharedBackend) {
        let (probe, handle, running) = serve(&backend, "taken");
        let c = client(&backend, "taken");
        let error = c.send::<Value>(Call::new("wait_for_gate").with_timeout(Some(Duration::from_millis(300)))).await.unwrap_err();
        assert!(matches!(error, Error::Timeout { request_withdrawn: false, .. }), "{error:?}");
        probe.gate.notify_one();
        stop(handle, running).await;
    }

    async fn long_waits_are_not_cut_short(backend: SharedBackend) {
        let (_, handle, running) = serve(&backend, "patient");
        // Idle for longer than any client library's response timeout.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let c = Client::new(backend.clone(), "patient").with_timeout(Some(Duration::from_secs(30)));
        assert_eq!(c.call::<i64>("echo", (1,)).await.unwrap(), 1);
        assert_eq!(c.call::<u64>("sleep", (1500,)).await.unwrap(), 1500);
        let forever = Client::new(backend.clone(), "patient");
        assert_eq!(forever.call::<u64>("sleep", (700,)).await.unwrap(), 700);
        stop(handle, running).await;
    }

    async fn calls_from_one_client_run_concurrently(backend: SharedBackend) {
        const CALLS: usize = 16;
        let (probe, handle, running) = serve(&backend, "together");
        probe.barrier.set(Barrier::new(CALLS)).ok();
        let c = client(&backend, "together");
        // Every call waits at a barrier until all of them run: this only
        // completes if no call queues behind another.
        let calls: Vec<_> = (0..CALLS).map(|_| { let c = c.clone(); tokio::spawn(async move { c.call::<()>("meet", ()).await }) }).collect();
        for call in calls {
            call.await.unwrap().unwrap();
        }
        assert_eq!(probe.most_running.load(Ordering::SeqCst), CALLS);
        stop(handle, running).await;
    }

    async fn the_concurrency_limit_holds(backend: SharedBackend) {
        let probe = Arc::new(Probe::default());
        let (handle, running) = start(Server::new(backend.clone(), "limited", test_service(probe.clone())).with_concurrency(3));
        let c = client(&backend, "limited");
        let calls: Vec<_> = (0..20).map(|_| { let c = c.clone(); tokio::spawn(async move { c.call::<()>("count_running", ()).await }) }).collect();
        for call in calls {
            call.await.unwrap().unwrap();
        }
        let most = probe.most_running.load(Ordering::SeqCst);
        assert!((1..=3).contains(&most), "{most} calls ran at once");
        stop(handle, running).await;
    }

    async fn servers_sharing_a_queue_share_its_load(backend: SharedBackend) {
        // Each server runs one call at a time, and each call waits until two
        // run at once: only two servers working together can answer.
        let probe = Arc::new(Probe::default());
        probe.barrier.set(Barrier::new(2)).ok();
        let (a, a_running) = start(Server::new(backend.clone(), "shared", test_service(probe.clone())).with_concurrency(1));
        let (b, b_running) = start(Server::new(backend.clone(), "shared", test_service(probe.clone())).with_concurrency(1));
        let c = client(&backend, "shared");
        let (x, y) = tokio::join!(c.call::<()>("meet", ()), c.call::<()>("meet", ()));
        x.unwrap();
        y.unwrap();
        let (a, b) = (stop(a, a_running).await, stop(b, b_running).await);
        assert_eq!((a.served, b.served), (1, 1));
    }

    async fn shutdown_finishes_calls_in_flight_and_takes_no_more(backend: SharedBackend) {
        let (probe, handle, running) = serve(&backend, "closing");
        let c = client(&backend, "closing");
        let in_flight = tokio::spawn({ let c = c.clone(); async move { c.call::<String>("wait_for_gate", ()).await } });
        while probe.at_gate.load(Ordering::SeqCst) == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        handle.shutdown();
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!running.is_finished(), "the server waits for the call in flight");
        probe.gate.notify_one();
        assert_eq!(in_flight.await.unwrap().unwrap(), "released");
        let stats = stop(handle, running).await;
        assert_eq!(stats.served, 1);

        let late = Client::new(backend.clone(), "closing").with_timeout(Some(Duration::from_millis(200)));
        assert!(late.call::<Value>("echo", (1,)).await.unwrap_err().is_timeout(), "a stopped server takes nothing");
    }

    async fn peer_habits_on_the_wire(backend: SharedBackend) {
        let (_, handle, running) = serve(&backend, "wire");
        // Python: no args member when empty, kwargs when given.
        let python = raw_call(&backend, "wire", r#"{"function_call": {"name": "sub", "args": [10], "kwargs": {"b": 4}}, "response_queue": "wire:rpc:PY7Y2US0"}"#, "wire:rpc:PY7Y2US0").await;
        assert_eq!(python, json!({"return_value": 6}));
        // Ruby: args always present, [] when empty.
        let ruby = raw_call(&backend, "wire", r#"{"function_call":{"name":"greet","args":["Ruby"]},"response_queue":"wire:rpc:0RB19XYQ"}"#, "wire:rpc:0RB19XYQ").await;
        assert_eq!(ruby, json!({"return_value": "hello, Ruby"}));
        // PHP: args left out; unknown members ignored.
        let php = raw_call(&backend, "wire", r#"{"function_call":{"name":"echo","kwargs":{"value":null}},"response_queue":"wire:rpc:aZ09bY18","x":1}"#, "wire:rpc:aZ09bY18").await;
        assert_eq!(php, json!({"return_value": null}));
        let unknown = raw_call(&backend, "wire", r#"{"function_call":{"name":"launch"},"response_queue":"wire:rpc:u"}"#, "wire:rpc:u").await;
        assert!(unknown["exception"].as_str().unwrap().contains("unknown method `launch`"));
        stop(handle, running).await;
    }

    async fn what_peer_servers_reply_reaches_the_caller(backend: SharedBackend) {
        let peer = |reply: &'static str| {
            let backend = backend.clone();
            tokio::spawn(async move {
                let message = backend.blpop("peer", Some(Duration::from_secs(10))).await.unwrap().expect("a request");
                let request = Request::decode(&message).unwrap();
                backend.rpush(&request.response_queue, &[reply.as_bytes()]).await.unwrap();
            })
        };
        let c = client(&backend, "peer");
        peer(r#"{"exception":"divided by 0","backtrace":["calc.rb:12:in `div'","redisrpc.rb:40:in `run'"]}"#);
        let error = c.call::<f64>("div", (0,)).await.unwrap_err();
        assert_eq!(error.remote_message(), Some("divided by 0"));
        assert_eq!(error.remote_backtrace().unwrap(), ["calc.rb:12:in `div'", "redisrpc.rb:40:in `run'"]);

        peer(r#"{"return_value": Infinity}"#);
        assert_eq!(c.call::<f64>("div", (0,)).await.unwrap(), f64::INFINITY);
        peer(r#"{"return_value": [NaN, -Infinity]}"#);
        let values: Vec<f64> = c.call("x", ()).await.unwrap();
        assert!(values[0].is_nan() && values[1] == f64::NEG_INFINITY);

        peer(r#"{"result": 1}"#);
        assert!(c.call::<f64>("x", ()).await.unwrap_err().is_malformed_reply());
        peer("<html>");
        assert!(c.call::<f64>("x", ()).await.unwrap_err().is_malformed_reply());
        peer(r#"{"return_value": "four"}"#);
        assert!(c.call::<f64>("x", ()).await.unwrap_err().is_decode());
    }

    async fn arguments_json_cannot_carry_are_refused_before_sending(backend: SharedBackend) {
        let c = client(&backend, "unsent");
        let error = c.call::<Value>("echo", (f64::NAN,)).await.unwrap_err();
        assert!(error.is_encode(), "{error}");
        let error = c.call::<Value>("echo", 5).await.unwrap_err();
        assert!(error.is_encode() && error.to_string().contains("one-element tuple"), "{error}");
        assert_eq!(backend.llen("unsent").await.unwrap(), 0, "nothing was pushed");
    }
}

/// Calls that end together have their replies pushed together: one script
/// run in Redis for many replies, not one each (see the server's
/// `replies.rs`). Each call waits at a barrier, so all 32 end at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[redisrpc_testkit::needs(redis)]
async fn replies_of_calls_that_end_together_go_out_together() {
    const CALLS: usize = 32;
    let Some((server, backend)) = common::redis_backend().await else {
        return;
    };
    let (probe, handle, running) = serve(&backend, "together");
    probe.barrier.set(Barrier::new(CALLS)).ok();
    let c = client(&backend, "together");
    let mut admin = common::admin(&server).await;
    let scripts_run = |info: String| -> u64 {
        info.lines()
            .filter(|line| line.starts_with("cmdstat_evalsha:") || line.starts_with("cmdstat_eval:"))
            .filter_map(|line| line.split("calls=").nth(1)?.split(',').next()?.parse::<u64>().ok())
            .sum()
    };
    let info = |admin: &mut ::redis::aio::MultiplexedConnection| {
        let mut admin = admin.clone();
        async move {
            ::redis::cmd("INFO")
                .arg("commandstats")
                .query_async::<String>(&mut admin)
                .await
                .unwrap()
        }
    };
    let before = scripts_run(info(&mut admin).await);
    let calls: Vec<_> = (0..CALLS)
        .map(|_| {
            let c = c.clone();
            tokio::spawn(async move { c.call::<()>("meet", ()).await })
        })
        .collect();
    for call in calls {
        call.await.unwrap().unwrap();
    }
    let stats = stop(handle, running).await;
    assert_eq!(stats.served, CALLS as u64);
    let runs = scripts_run(info(&mut admin).await) - before;
    assert!(runs <= CALLS as u64 / 4, "{runs} script runs for {CALLS} replies");
}

/// A small deterministic pseudo-random sequence, so failures reproduce.
fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}
