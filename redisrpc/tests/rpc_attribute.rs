//! `#[rpc]` services end to end, on both backends: the typed client against
//! the generated server, and what a caller in another language sees when it
//! calls the same server by name with positional and named arguments.

mod common;

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use redisrpc::backend::SharedBackend;
use redisrpc::describe::{self, DESCRIBE_METHOD, ServiceDescription};
use redisrpc::{Call, Error, Server, ServerHandle};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::Barrier;

/// A joint's target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Target {
    /// The joint's name.
    pub joint: String,
    /// The angle to reach, in radians.
    pub angle: f64,
}

/// How a move ends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The arm got there.
    Reached,
    /// The arm stopped short, and why.
    Blocked {
        /// What stopped it.
        reason: String,
    },
}

/// A robot arm, the test service.
#[redisrpc::rpc]
pub trait Arm {
    /// Moves one joint.
    ///
    /// Fails when the angle is out of range.
    async fn move_joint(&self, joint: String, angle: f64, speed: Option<f64>) -> Result<Outcome, String>;
    /// Moves several joints at once and returns how many moved.
    async fn move_all(&self, targets: Vec<Target>) -> usize;
    /// The joints' angles by name.
    fn angles(&self) -> BTreeMap<String, f64>;
    /// Stops the arm.
    async fn stop(&self);
    /// Subtracts, with a wire name in a peer's style.
    #[rpc(name = "subtractValues")]
    fn subtract(&self, minuend: i64, subtrahend: i64) -> i64;
    /// Panics, as a bug in a handler would.
    async fn malfunction(&self) -> u8;
    /// Waits until `parties` calls are waiting together, proving they run
    /// at the same time.
    async fn rendezvous(&self, parties: usize) -> usize;
}

#[derive(Default)]
struct FakeArm {
    angles: Mutex<BTreeMap<String, f64>>,
    stops: AtomicUsize,
    barrier: std::sync::OnceLock<Barrier>,
}

impl Arm for FakeArm {
    async fn move_joint(&self, joint: String, angle: f64, speed: Option<f64>) -> Result<Outcome, String> {
        if !(-3.2..=3.2).contains(&angle) {
            return Err(format!("angle {angle} is out of range for {joint}"));
        }
        if speed == Some(0.0) {
            return Ok(Outcome::Blocked {
                reason: "speed is zero".into(),
            });
        }
        self.angles.lock().unwrap().insert(joint, angle);
        Ok(Outcome::Reached)
    }

    async fn move_all(&self, targets: Vec<Target>) -> usize {
        let mut angles = self.angles.lock().unwrap();
        for target in &targets {
            angles.insert(target.joint.clone(), target.angle);
        }
        targets.len()
    }

    fn angles(&self) -> BTreeMap<String, f64> {
        self.angles.lock().unwrap().clone()
    }

    async fn stop(&self) {
        self.stops.fetch_add(1, Ordering::SeqCst);
    }

    fn subtract(&self, minuend: i64, subtrahend: i64) -> i64 {
        minuend - subtrahend
    }

    async fn malfunction(&self) -> u8 {
        panic!("gearbox jammed")
    }

    async fn rendezvous(&self, parties: usize) -> usize {
        self.barrier.get_or_init(|| Barrier::new(parties)).wait().await;
        parties
    }
}

/// Serves a fresh arm on `queue` and returns a typed client of it.
fn serve(backend: &SharedBackend, queue: &str) -> (ArmClient, ServerHandle) {
    let server = Server::new(backend.clone(), queue, ArmServer::new(FakeArm::default()));
    let handle = server.handle();
    tokio::spawn(server.run());
    let client = ArmClient::new(backend.clone(), queue).with_timeout(Some(Duration::from_secs(10)));
    (client, handle)
}

/// The exception text of a call that must fail remotely.
async fn remote_error(arm: &ArmClient, call: Call) -> String {
    match arm.client().send::<Value>(call).await {
        Err(Error::Remote { message, .. }) => message,
        other => panic!("expected a remote error, got {other:?}"),
    }
}

common::backend_tests! {
    async fn the_typed_client_calls_every_method_shape(backend: SharedBackend) {
        let (arm, handle) = serve(&backend, "arm");
        assert_eq!(arm.move_joint("elbow".into(), 1.25, None).await.unwrap(), Outcome::Reached);
        assert_eq!(
            arm.move_joint("wrist".into(), 0.5, Some(0.0)).await.unwrap(),
            Outcome::Blocked { reason: "speed is zero".into() }
        );
        let targets = vec![
            Target { joint: "shoulder".into(), angle: -0.1 },
            Target { joint: "Handgelenk ü".into(), angle: 1e-300 },
        ];
        assert_eq!(arm.move_all(targets).await.unwrap(), 2);
        let angles = arm.angles().await.unwrap();
        assert_eq!(
            angles,
            BTreeMap::from([("Handgelenk ü".into(), 1e-300), ("elbow".into(), 1.25), ("shoulder".into(), -0.1)])
        );
        arm.stop().await.unwrap();
        assert_eq!(arm.subtract(i64::MIN + 1, 1).await.unwrap(), i64::MIN);
        handle.shutdown();
    }

    async fn callers_by_name_pass_positional_named_and_mixed_arguments(backend: SharedBackend) {
        let (arm, handle) = serve(&backend, "arm");
        let by_name = |call: Call| arm.client().send::<Value>(call);
        let positional = by_name(Call::new("move_joint").arg("elbow").arg(1.0).arg(2.0)).await.unwrap();
        assert_eq!(positional, json!("reached"));
        let named = Call::new("move_joint").kwarg("angle", 0.25).kwarg("joint", "wrist");
        assert_eq!(by_name(named).await.unwrap(), json!("reached"));
        let mixed = Call::new("move_joint").arg("shoulder").kwarg("speed", 0.0).kwarg("angle", 0.5);
        assert_eq!(by_name(mixed).await.unwrap(), json!({"blocked": {"reason": "speed is zero"}}));
        let wire_name = Call::new("subtractValues").kwarg("subtrahend", 2).arg(10);
        assert_eq!(by_name(wire_name).await.unwrap(), json!(8));
        let structs = Call::new("move_all").arg(json!([{"joint": "elbow", "angle": 3}]));
        assert_eq!(by_name(structs).await.unwrap(), json!(1));
        assert_eq!(arm.angles().await.unwrap()["elbow"], 3.0);
        handle.shutdown();
    }

    async fn every_argument_error_names_the_method_and_the_parameter(backend: SharedBackend) {
        let (arm, handle) = serve(&backend, "arm");
        let missing = remote_error(&arm, Call::new("move_joint").arg("elbow")).await;
        assert!(missing.contains("move_joint() is missing argument `angle` (f64)"), "{missing}");
        let extra = remote_error(&arm, Call::new("subtractValues").arg(1).arg(2).arg(3)).await;
        assert!(extra.contains("subtractValues() takes 2 arguments (minuend, subtrahend) but 3 were given"), "{extra}");
        let mistyped = remote_error(&arm, Call::new("move_joint").arg("elbow").arg("far")).await;
        assert!(mistyped.contains("move_joint(): argument `angle` must be f64"), "{mistyped}");
        let unknown_name = remote_error(&arm, Call::new("move_joint").arg("elbow").kwarg("angel", 1)).await;
        assert!(unknown_name.contains("move_joint() got an unexpected named argument `angel`"), "{unknown_name}");
        let twice = remote_error(&arm, Call::new("move_joint").arg("elbow").kwarg("joint", "wrist")).await;
        assert!(twice.contains("move_joint() got two values for argument `joint`"), "{twice}");
        let bad_struct = remote_error(&arm, Call::new("move_all").arg(json!([{"joint": "elbow"}]))).await;
        assert!(bad_struct.contains("move_all(): argument `targets` must be") && bad_struct.contains("angle"), "{bad_struct}");
        let unknown_method = remote_error(&arm, Call::new("subtract").arg(1).arg(2)).await;
        assert!(unknown_method.contains("unknown method `subtract`") && unknown_method.contains("subtractValues"), "{unknown_method}");
        // The server answered each with an exception and still serves.
        assert_eq!(arm.subtract(3, 2).await.unwrap(), 1);
        handle.shutdown();
    }

    async fn errors_and_panics_arrive_as_remote_errors(backend: SharedBackend) {
        let (arm, handle) = serve(&backend, "arm");
        let error = arm.move_joint("elbow".into(), 9.0, None).await.unwrap_err();
        assert_eq!(error.remote_message(), Some("angle 9 is out of range for elbow"));
        let panic = arm.malfunction().await.unwrap_err();
        let message = panic.remote_message().expect("a remote error");
        assert!(message.contains("malfunction() panicked") && message.contains("gearbox jammed"), "{message}");
        assert_eq!(arm.move_joint("elbow".into(), 1.0, None).await.unwrap(), Outcome::Reached);
        handle.shutdown();
    }

    async fn every_server_describes_its_service(backend: SharedBackend) {
        let (arm, handle) = serve(&backend, "arm");
        let described: ServiceDescription = arm.client().call(DESCRIBE_METHOD, ()).await.unwrap();
        // The constant, with the shapes the server traced.
        let mut without_shapes = described.clone();
        without_shapes.types = None;
        for method in without_shapes.methods.to_mut() {
            method.returns_shape = None;
            for param in method.params.to_mut() {
                param.shape = None;
            }
        }
        assert_eq!(without_shapes, ArmClient::DESCRIPTION);
        let types = described.types.as_ref().expect("the server sends the types' shapes");
        assert_eq!(types["Target"], serde_json::json!({"STRUCT": [{"joint": "STR"}, {"angle": "F64"}]}));
        assert_eq!(types["Outcome"]["ENUM"]["1"], serde_json::json!({"blocked": {"STRUCT": [{"reason": "STR"}]}}));
        let move_all = described.method("move_all").unwrap();
        assert_eq!(move_all.params[0].shape, Some(serde_json::json!({"SEQ": {"TYPENAME": "Target"}})));
        assert_eq!(move_all.returns_shape, Some(serde_json::json!("U64")));
        let move_joint = described.method("move_joint").unwrap();
        assert_eq!(move_joint.docs, "Moves one joint.\n\nFails when the angle is out of range.");
        let params: Vec<_> = move_joint.params.iter().map(|p| (&*p.name, &*p.rust_type)).collect();
        assert_eq!(params, [("joint", "String"), ("angle", "f64"), ("speed", "Option<f64>")]);
        assert_eq!((&*move_joint.returns, move_joint.error.as_deref()), ("Outcome", Some("String")));
        assert_eq!(described.method("stop").unwrap().returns, "()");
        assert_eq!(described.method("move_all").unwrap().params[0].rust_type, "Vec<Target>");
        assert!(described.method("subtractValues").is_some() && described.method("subtract").is_none());
        // As a Python caller reads it: plain JSON.
        let raw: Value = arm.client().call(DESCRIBE_METHOD, ()).await.unwrap();
        assert_eq!(raw["name"], "Arm");
        assert_eq!(
            raw["methods"][0]["params"][2],
            json!({"name": "speed", "rust_type": "Option<f64>", "shape": {"OPTION": "F64"}})
        );
        handle.shutdown();
    }

    async fn one_client_makes_many_calls_at_once(backend: SharedBackend) {
        let (arm, handle) = serve(&backend, "arm");
        const PARTIES: usize = 16;
        // Each call returns only once all sixteen are running on the server.
        let calls = (0..PARTIES).map(|_| arm.rendezvous(PARTIES));
        let results = futures::future::join_all(calls).await;
        assert!(results.iter().all(|result| matches!(result, Ok(PARTIES))), "{results:?}");
        handle.shutdown();
    }
}

#[test]
fn generated_services_register_their_description() {
    let registered = describe::registered_services();
    assert!(
        registered.iter().any(|service| **service == ArmClient::DESCRIPTION),
        "{registered:?}"
    );
    assert_eq!(describe::registered_service("Arm"), Some(&ArmClient::DESCRIPTION));
    assert_eq!(describe::registered_service("Leg"), None);
}
