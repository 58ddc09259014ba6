//! The blocking API from plain `std::thread`s, with no runtime of the
//! test's own, on the embedded backend and on Redis; and its refusal
//! inside an async runtime.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use redisrpc::backend::{IntoBackend, Memory, SharedBackend};
use redisrpc::blocking::{self, Client, Server, State};
use redisrpc::service::Methods;
use redisrpc::state::{Event, NdArray};
use redisrpc_testkit::RedisServer;
use serde_json::json;

/// `body` as two tests, `body::on_memory` and `body::on_redis`.
macro_rules! on_both_backends {
    ($body:ident) => {
        mod $body {
            #[test]
            fn on_memory() {
                super::on_memory(super::$body);
            }

            #[test]
            #[redisrpc_testkit::needs(redis)]
            fn on_redis() {
                super::on_redis(super::$body);
            }
        }
    };
}

/// Runs `body` on the embedded backend.
fn on_memory(body: fn(SharedBackend)) {
    body(Memory::new().into_backend());
}

/// Runs `body` on a private Redis, connected through the blocking API.
fn on_redis(body: fn(SharedBackend)) {
    let Some(redis) = RedisServer::start() else { return };
    body(blocking::connect(&redis.url()).expect("connects"));
}

fn counter() -> Methods<AtomicU64> {
    Methods::with_shared_state(Arc::new(AtomicU64::new(0))).method("add", &["n"], |total, (n,): (u64,)| async move {
        Ok::<_, Infallible>(total.fetch_add(n, Ordering::SeqCst) + n)
    })
}

/// A blocking server on one thread, blocking clients on four more.
fn calls_from_threads(backend: SharedBackend) {
    let server = Server::from(redisrpc::Server::new(backend.clone(), "count", counter()));
    let handle = server.handle();
    let serving = thread::spawn(move || server.run());
    let client = Client::new(backend.clone(), "count").with_timeout(Some(Duration::from_secs(10)));
    let callers: Vec<_> = (0..4)
        .map(|_| {
            let client = client.clone();
            thread::spawn(move || (0..50).map(|_| client.call::<u64>("add", (1,)).unwrap()).max().unwrap())
        })
        .collect();
    let highest = callers.into_iter().map(|caller| caller.join().unwrap()).max().unwrap();
    assert_eq!(highest, 200, "every call counted once");
    let sent: u64 = client.send(redisrpc::Call::new("add").arg(0)).unwrap();
    assert_eq!(sent, 200);
    handle.shutdown();
    let stats = serving.join().unwrap().unwrap();
    assert_eq!(stats.served, 201);

    // Nobody serves `nobody`: the call's own timeout holds.
    let started = Instant::now();
    let lonely = Client::new(backend, "nobody").with_timeout(Some(Duration::from_millis(200)));
    let error = lonely.call::<u64>("add", (1,)).unwrap_err();
    assert!(error.is_timeout(), "{error}");
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
}

on_both_backends!(calls_from_threads);

/// Every kind of state operation, blocking.
fn state_operations(backend: SharedBackend) {
    let state = State::new(backend);
    state.set("robot", &json!({"arm": {"angle": 0.5}, "log": []})).unwrap();
    assert_eq!(state.get::<f64>("robot.arm.angle").unwrap(), 0.5);
    assert!(state.exists("robot.arm").unwrap());
    assert_eq!(state.len("robot.arm").unwrap(), 1);
    assert_eq!(state.incr("robot.arm.angle", 1).unwrap().as_f64(), Some(1.5));
    assert_eq!(state.append("robot.log", &"started").unwrap(), 1);
    assert_eq!(state.extend("robot.log", ["a", "b"]).unwrap(), 3);
    let doubled: f64 = state
        .update("robot.arm.angle", |angle: &mut f64| *angle *= 2.0)
        .unwrap();
    assert_eq!(doubled, 3.0);
    let refused = state
        .try_update("robot.arm.angle", |_: &mut f64| Err::<(), _>("no"))
        .unwrap();
    assert_eq!(refused, Err("no"));
    let frame = NdArray::from_elements(vec![2, 2], &[1u8, 2, 3, 4]).unwrap();
    state.set_array("robot.frame", &frame).unwrap();
    assert_eq!(state.get_array("robot.frame").unwrap(), frame);
    state.publish("robot.arm.angle", &0.25).unwrap();
    assert_eq!(state.get_value("robot.arm").unwrap(), json!({"angle": 0.25}));
    assert!(state.delete("robot.log").unwrap());
    assert!(!state.exists("robot.log").unwrap());
}

on_both_backends!(state_operations);

/// A mirror waits with a timeout; updates iterate, and wait with one.
fn mirrors_and_updates(backend: SharedBackend) {
    let state = State::new(backend);
    state.publish("robot", &json!({"arm": {"seq": 0}})).unwrap();
    let mut mirror = state.mirror("robot.arm").unwrap();
    // Whatever the first copy brought, the mirror then goes quiet.
    while mirror.changed_timeout(Duration::from_millis(100)).unwrap() {}
    let mut updates = state.subscribe("robot.arm.*").unwrap();
    let publisher = {
        let state = state.clone();
        thread::spawn(move || {
            for seq in 1..=3 {
                state.publish("robot.arm.seq", &seq).unwrap();
            }
        })
    };
    let seen: Vec<u64> = updates
        .by_ref()
        .filter_map(|event| match event {
            Event::Update(update) => Some(update.value.as_u64().unwrap()),
            _ => None,
        })
        .take(3)
        .collect();
    assert_eq!(seen, [1, 2, 3]);
    publisher.join().unwrap();
    assert!(
        updates.next_timeout(Duration::from_millis(100)).unwrap().is_none(),
        "nothing more"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while mirror.get::<u64>("robot.arm.seq").unwrap() != 3 {
        assert!(Instant::now() < deadline, "the mirror follows");
        mirror.changed_timeout(Duration::from_secs(1)).unwrap();
    }
    assert!(mirror.is_in_sync());
}

on_both_backends!(mirrors_and_updates);

/// Inside an async runtime, each blocking operation refuses at once with a
/// message that says what to do, and nothing hangs.
#[tokio::test(flavor = "current_thread")]
async fn inside_a_runtime_blocking_calls_refuse_and_say_why() {
    let backend = Memory::new().into_backend();
    let says_why = |error: redisrpc::Error| {
        let text = error.to_string();
        assert!(
            text.contains("inside an async runtime") && text.contains("std::thread::spawn"),
            "{text}"
        );
    };
    says_why(Client::new(backend.clone(), "q").call::<u64>("add", (1,)).unwrap_err());
    says_why(State::new(backend.clone()).get::<u64>("robot").unwrap_err());
    says_why(blocking::connect("redis://127.0.0.1:1").unwrap_err());
    let server = Server::from(redisrpc::Server::new(backend.clone(), "q", counter()));
    says_why(server.run().unwrap_err());
    // From a thread of its own, as the message says, it works.
    let value = thread::spawn(move || {
        let state = State::new(backend);
        state.set("robot", &1).unwrap();
        state.get::<u64>("robot").unwrap()
    })
    .join()
    .unwrap();
    assert_eq!(value, 1);
}

/// A service for the blocking typed client: a lamp.
#[redisrpc::rpc]
trait Lamp {
    /// Switches it.
    fn switch(&self, on: bool);
    /// Whether it is on.
    fn is_on(&self) -> bool;
}

#[derive(Default)]
struct Bulb(std::sync::atomic::AtomicBool);

impl Lamp for Bulb {
    fn switch(&self, on: bool) {
        self.0.store(on, Ordering::SeqCst);
    }

    fn is_on(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// `#[rpc]`'s blocking client, from plain threads, methods with and
/// without a result.
fn typed_blocking_client(backend: SharedBackend) {
    let server = Server::from(redisrpc::Server::new(
        backend.clone(),
        "lamp",
        LampServer::new(Bulb::default()),
    ));
    let handle = server.handle();
    let serving = thread::spawn(move || server.run());
    let lamp = LampBlockingClient::new(backend, "lamp").with_timeout(Some(Duration::from_secs(10)));
    assert!(!lamp.is_on().unwrap());
    let switcher = {
        let lamp = lamp.clone();
        thread::spawn(move || lamp.switch(true))
    };
    switcher.join().unwrap().unwrap();
    assert!(lamp.is_on().unwrap());
    assert_eq!(lamp.client().queue(), "lamp");
    handle.shutdown();
    serving.join().unwrap().unwrap();
}

on_both_backends!(typed_blocking_client);

/// The number of connections `redis` has open.
fn connections(redis: &RedisServer) -> usize {
    redis.cli(&["CLIENT", "LIST"]).lines().count()
}

/// Waits up to 10 s for `condition`.
fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(Instant::now() < deadline, "{what} within 10 s");
        thread::sleep(Duration::from_millis(20));
    }
}

/// Each calling thread has two connections of its own, made at its first
/// call and closed when it ends: threads come and go without a leak.
#[test]
#[redisrpc_testkit::needs(redis)]
fn each_calling_thread_has_connections_of_its_own_until_it_ends() {
    let Some(redis) = RedisServer::start() else { return };
    let backend = blocking::connect(&redis.url()).unwrap();
    let server = Server::from(redisrpc::Server::new(backend.clone(), "count", counter()));
    let handle = server.handle();
    let serving = thread::spawn(move || server.run());
    let client = Client::new(backend, "count").with_timeout(Some(Duration::from_secs(10)));
    client.call::<u64>("add", (0,)).unwrap(); // the server is up, the test's thread connected
    let before = connections(&redis);

    let (done, all_done) = std::sync::mpsc::channel();
    let (finish, finished) = std::sync::mpsc::channel::<()>();
    let finished = Arc::new(std::sync::Mutex::new(finished));
    let callers: Vec<_> = (0..5)
        .map(|_| {
            let (client, done, finished) = (client.clone(), done.clone(), finished.clone());
            thread::spawn(move || {
                client.call::<u64>("add", (1,)).unwrap();
                done.send(()).unwrap();
                // Stay until told to end.
                let _ = finished.lock().unwrap().recv();
            })
        })
        .collect();
    for _ in 0..5 {
        all_done.recv().unwrap();
    }
    assert_eq!(connections(&redis), before + 10, "two for each thread that called");
    drop(finish);
    for caller in callers {
        caller.join().unwrap();
    }
    eventually("the threads' connections close", || connections(&redis) == before);

    // Twenty more threads, one after another, each calling once.
    for _ in 0..20 {
        let client = client.clone();
        thread::spawn(move || client.call::<u64>("add", (1,)).unwrap())
            .join()
            .unwrap();
    }
    eventually("no connection is left behind", || connections(&redis) == before);
    assert_eq!(client.call::<u64>("add", (0,)).unwrap(), 25);
    handle.shutdown();
    serving.join().unwrap().unwrap();
}

/// A thread's first call connects within the call's timeout, even to a
/// frozen Redis.
#[test]
#[redisrpc_testkit::needs(redis)]
fn a_first_call_to_a_frozen_redis_ends_within_its_timeout() {
    let Some(redis) = RedisServer::start() else { return };
    let backend = blocking::connect(&redis.url()).unwrap();
    let client = Client::new(backend, "calc").with_timeout(Some(Duration::from_millis(300)));
    let frozen = redis.freeze();
    let started = Instant::now();
    let error = thread::spawn(move || client.call::<u64>("add", (1,)).unwrap_err())
        .join()
        .unwrap();
    let took = started.elapsed();
    drop(frozen);
    assert!(error.is_timeout(), "{error}");
    assert_eq!(error.request_may_run(), Some(false), "never sent: {error}");
    assert!(took < Duration::from_secs(3), "ended after {took:?}");
}

/// What goes on after a call that timed out (its reply queue made to
/// expire, for a late reply nobody will read) goes on while the calling
/// thread makes no further call.
fn a_timed_out_call_is_cleaned_up_while_its_thread_is_idle(backend: SharedBackend) {
    let client = Client::new(backend.clone(), "slow").with_timeout(Some(Duration::from_millis(300)));
    let (returned, call_returned) = std::sync::mpsc::channel();
    let (finish, finished) = std::sync::mpsc::channel::<()>();
    let caller = thread::spawn(move || {
        returned.send(client.call::<u64>("add", (1,))).unwrap();
        let _ = finished.recv(); // idle, and alive, until the end
    });
    // A server that takes the request and answers late, as a peer may.
    let runtime = blocking::runtime();
    let request = runtime
        .block_on(backend.blpop("slow", Some(Duration::from_secs(5))))
        .unwrap()
        .expect("the request arrives");
    let request: serde_json::Value = serde_json::from_slice(&request).unwrap();
    let response_queue = request["response_queue"].as_str().unwrap().to_owned();
    let error = call_returned.recv().unwrap().unwrap_err();
    assert!(error.is_timeout(), "{error}");
    runtime
        .block_on(backend.rpush(&response_queue, &[br#"{"return_value": 1}"#]))
        .unwrap();
    eventually("the late reply is made to expire", || {
        matches!(
            runtime.block_on(backend.ttl(&response_queue)).unwrap(),
            redisrpc::backend::Ttl::Expires(_)
        )
    });
    drop(finish);
    caller.join().unwrap();
}

on_both_backends!(a_timed_out_call_is_cleaned_up_while_its_thread_is_idle);
