//! numpy arrays cross between Python and Rust through the shared state's
//! Redis layout: Python writes with redis-py as the REEM library does and
//! we read; we write and Python reads with `numpy.frombuffer`.
//!
//! Needs `python3` with the `redis` and `numpy` packages. Without them it
//! prints SKIPPED and passes, unless `REDISRPC_REQUIRE_PEERS=1` (CI), which
//! makes it fail instead.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use redisrpc::backend::Redis;
use redisrpc::state::{Dtype, NdArray, State};
use redisrpc_testkit::{RedisServer, peers};
use serde_json::{Value, json};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/numpy_interop.py");

/// True when Python can import redis and numpy; otherwise skips loudly or,
/// when peers are required, fails.
fn python_ready() -> bool {
    let Err(problem) = peers::probe(&peers::python(), "-c", "import redis, numpy") else {
        return true;
    };
    peers::skip_without(&format!(
        "python3 with the `redis` and `numpy` packages ({problem}); install with: \
         apt-get install python3-pip && pip install redis numpy"
    ));
    false
}

fn python(mode: &str, url: &str, stdin: &str) -> String {
    let mut child = Command::new(peers::python())
        .args([SCRIPT, mode, url])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "python {mode} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// The elements of `array` as JSON numbers, as numpy's `tolist` gives them.
fn values(array: &NdArray) -> Vec<Value> {
    match array.dtype() {
        Dtype::U8 => array.to_vec::<u8>().unwrap().into_iter().map(Value::from).collect(),
        Dtype::I32 => array.to_vec::<i32>().unwrap().into_iter().map(Value::from).collect(),
        Dtype::I64 => array.to_vec::<i64>().unwrap().into_iter().map(Value::from).collect(),
        // f32 → f64 is exact, and Python's float is an f64.
        Dtype::F32 => array
            .to_vec::<f32>()
            .unwrap()
            .into_iter()
            .map(|f| json!(f as f64))
            .collect(),
        Dtype::F64 => array.to_vec::<f64>().unwrap().into_iter().map(Value::from).collect(),
    }
}

#[tokio::test]
#[redisrpc_testkit::needs(redis, numpy)]
async fn python_writes_numpy_arrays_and_we_read_them() {
    if !python_ready() {
        return;
    }
    let Some(server) = RedisServer::start() else { return };
    let state = State::new(Redis::connect(&server.url()).await.unwrap());
    let written: Value = serde_json::from_str(&python("write", &server.url(), "")).unwrap();

    assert_eq!(state.get::<String>("py.name").await.unwrap(), "from Python ✓");
    assert_eq!(state.get::<u64>("py.count").await.unwrap(), u64::MAX);
    assert_eq!(state.get_value("py.empty").await.unwrap(), json!({"a": [], "o": {}}));
    let written = written.as_object().unwrap();
    assert_eq!(written.len(), 6);
    for (name, expected) in written {
        let array = state.get_array(format!("py.{name}")).await.unwrap();
        assert_eq!(array.dtype().name(), expected["dtype"], "{name}");
        assert_eq!(json!(array.shape()), expected["shape"], "{name}");
        let want: Vec<Value> = expected["values"].as_array().unwrap().clone();
        let got = values(&array);
        // Compare floats bit for bit (JSON equality would make -0.0 == 0.0).
        let bits = |v: &[Value]| {
            v.iter()
                .map(|x| x.as_f64().map(f64::to_bits).ok_or(x.to_string()))
                .collect::<Vec<_>>()
        };
        assert_eq!(bits(&got), bits(&want), "{name}");
    }
    // A document written without a version still reads, and takes writes.
    let mut admin = common::admin(&server).await;
    let () = redis::cmd("HSET")
        .arg("bare")
        .arg("json")
        .arg(r#"{"a":[1]}"#)
        .query_async(&mut admin)
        .await
        .unwrap();
    assert_eq!(state.append("bare.a", &2).await.unwrap(), 2);
    assert_eq!(state.get_value("bare").await.unwrap(), json!({"a": [1, 2]}));
    // Our writes keep working on a document Python wrote.
    state.incr("py.frames_seen", 1).await.unwrap_err();
    state.set("py.frames_seen", &1).await.unwrap();
    state.delete("py.frame").await.unwrap();
    assert!(
        state
            .backend()
            .hash_get_all("__state__:{py}.frame")
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
#[redisrpc_testkit::needs(redis, numpy)]
async fn we_write_numpy_arrays_and_python_reads_them() {
    if !python_ready() {
        return;
    }
    let Some(server) = RedisServer::start() else { return };
    let state = State::new(Redis::connect(&server.url()).await.unwrap());
    let frame: Vec<u8> = (0..480 * 640 * 3).map(|i| (i * 7 % 256) as u8).collect();
    let arrays = [
        ("frame", NdArray::from_elements(vec![480, 640, 3], &frame).unwrap()),
        (
            "ticks",
            NdArray::from_elements(vec![2, 2], &[i32::MIN, -1, 0, i32::MAX]).unwrap(),
        ),
        (
            "stamps",
            NdArray::from_elements(vec![3], &[i64::MIN, 0, i64::MAX]).unwrap(),
        ),
        (
            "cloud",
            NdArray::from_elements(vec![1, 3], &[0.1f32, -0.0, f32::MAX]).unwrap(),
        ),
        (
            "history",
            NdArray::from_elements(vec![4], &[0.1f64, -0.0, 1e-300, 5e-324]).unwrap(),
        ),
        ("scalar", NdArray::from_elements(vec![], &[2.5f64]).unwrap()),
    ];
    state
        .set("rs", &json!({"text": "from Rust ✓", "big": u64::MAX, "arrays": {}}))
        .await
        .unwrap();
    let mut expected = serde_json::Map::new();
    for (name, array) in &arrays {
        state.set_array(format!("rs.arrays.{name}"), array).await.unwrap();
        expected.insert(
            name.to_string(),
            json!({"dtype": array.dtype().name(), "shape": array.shape(), "values": values(array)}),
        );
    }
    let out = python("check", &server.url(), &Value::Object(expected).to_string());
    assert!(out.contains("checked 6 arrays"), "{out}");
}
