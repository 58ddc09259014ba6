//! The `redisrpc` binary as a user runs it, against a private Redis with
//! our calculator and inventory servers (in this test's process, on a
//! runtime of their own), and against the Python and Ruby peers' servers.

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use redisrpc::backend::{IntoBackend, Redis};
use redisrpc::state::State;
use redisrpc::{Delivery, Server, ServerHandle};
use redisrpc_examples::{calc, inventory, robot};
use redisrpc_interop_tests::{Peer, redis_for};
use redisrpc_testkit::{RedisCluster, RedisServer};
use serde_json::{Value, json};

/// Where the command and the servers connect: one server, or a cluster.
trait Target {
    fn url(&self) -> String;
}

impl Target for RedisServer {
    fn url(&self) -> String {
        RedisServer::url(self)
    }
}

impl Target for RedisCluster {
    fn url(&self) -> String {
        RedisCluster::url(self)
    }
}

/// Our servers of `calc` and `inventory` (at least once), on a runtime
/// that lives as long as this value.
struct Servers {
    runtime: tokio::runtime::Runtime,
    handles: Vec<ServerHandle>,
}

impl Servers {
    fn start(redis: &impl Target) -> Servers {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let url = redis.url();
        let handles = runtime.block_on(async {
            let backend = Redis::connect(&url).await.unwrap().into_backend();
            let servers = [
                Server::new(backend.clone(), "calc", calc::service()),
                Server::new(backend.clone(), "inventory", inventory::service()).with_delivery(Delivery::AtLeastOnce),
            ];
            servers
                .into_iter()
                .map(|server| {
                    let handle = server.handle();
                    tokio::spawn(server.run());
                    handle
                })
                .collect()
        });
        // Let the first liveness records be written.
        std::thread::sleep(Duration::from_millis(300));
        Servers { runtime, handles }
    }
}

impl Drop for Servers {
    fn drop(&mut self) {
        for handle in &self.handles {
            handle.shutdown();
        }
        self.runtime
            .block_on(async { tokio::time::sleep(Duration::from_millis(200)).await });
    }
}

/// Runs `redisrpc` with `args` against `redis`, feeding `stdin`.
fn redisrpc_with(redis: &impl Target, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_redisrpc"))
        .args(args)
        .env("REDISRPC_URL", redis.url())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("redisrpc runs");
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    eprintln!(
        "redisrpc {args:?} -> {:?}\n{}{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn redisrpc(redis: &impl Target, args: &[&str]) -> Output {
    redisrpc_with(redis, args, "")
}

/// The command's stdout, which it must have printed with exit code 0.
fn ok(redis: &impl Target, args: &[&str]) -> String {
    let output = redisrpc(redis, args);
    assert_eq!(output.status.code(), Some(0), "redisrpc {args:?}");
    String::from_utf8(output.stdout).unwrap()
}

fn json_of(text: &str) -> Value {
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

fn code_and_stderr(output: &Output) -> (Option<i32>, String) {
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
#[redisrpc_testkit::needs(redis)]
fn call_takes_positional_named_and_data_arguments_and_prints_json() {
    let Some(redis) = RedisServer::start() else { return };
    let _servers = Servers::start(&redis);
    assert_eq!(json_of(&ok(&redis, &["call", "calc", "add", "5"])), json!(5.0));
    assert_eq!(json_of(&ok(&redis, &["call", "calc", "mul", "number=4"])), json!(20.0));
    let added = json_of(&ok(
        &redis,
        &[
            "--json",
            "call",
            "inventory",
            "add",
            "gear",
            "motor",
            "3",
            "0.25",
            "[\"arm\"]",
        ],
    ));
    assert_eq!(
        (added["name"].clone(), added["kind"].clone(), added["count"].clone()),
        (json!("gear"), json!("motor"), json!(3))
    );
    // A word that is not JSON is a string; a quoted number is one too.
    let echoed = json_of(&ok(&redis, &["call", "inventory", "echo", "elbow joint"]));
    assert_eq!(echoed, json!("elbow joint"));
    assert_eq!(
        json_of(&ok(&redis, &["call", "inventory", "echo", "\"5\""])),
        json!("5")
    );
    assert_eq!(
        json_of(&ok(&redis, &["call", "inventory", "echo", "value=[1, {\"a\": null}]"])),
        json!([1, {"a": null}])
    );
    // -d, inline, from a file and from stdin.
    let data = r#"{"args": ["eye", {"camera": {"width": 640, "height": 480}}], "kwargs": {"count": 1, "weight_kg": 0.1, "tags": []}}"#;
    let added = json_of(&ok(&redis, &["call", "inventory", "add", "-d", data]));
    assert_eq!(added["kind"], json!({"camera": {"width": 640, "height": 480}}));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("args.json");
    std::fs::write(&file, r#"{"args": ["eye"]}"#).unwrap();
    let got = json_of(&ok(
        &redis,
        &["call", "inventory", "get", "-d", &format!("@{}", file.display())],
    ));
    assert_eq!(got["name"], json!("eye"));
    let stdin = redisrpc_with(
        &redis,
        &["call", "inventory", "get", "-d", "@-"],
        r#"{"args": ["gear"]}"#,
    );
    assert_eq!(json_of(&String::from_utf8_lossy(&stdin.stdout))["name"], json!("gear"));
}

#[test]
#[redisrpc_testkit::needs(redis)]
fn every_exit_code_says_what_happened() {
    let Some(redis) = RedisServer::start() else { return };
    let _servers = Servers::start(&redis);
    let (code, stderr) = code_and_stderr(&redisrpc(&redis, &["call", "calc", "div", "0"]));
    assert_eq!(code, Some(1), "the remote method failed");
    assert!(stderr.contains("float division by zero"), "{stderr}");
    let (code, _) = code_and_stderr(&redisrpc(&redis, &["call", "calc"]));
    assert_eq!(code, Some(2), "bad usage");
    let (code, _) = code_and_stderr(&redisrpc(&redis, &["call", "calc", "add", "-d", "[1]"]));
    assert_eq!(code, Some(2), "bad -d");
    let (code, stderr) = code_and_stderr(&redisrpc(&redis, &["--timeout", "300ms", "call", "nobody", "ping"]));
    assert_eq!(code, Some(3), "timed out");
    assert!(stderr.contains("request withdrawn"), "{stderr}");
    let (code, _) = code_and_stderr(&redisrpc(
        &redis,
        &["--redis", "redis://127.0.0.1:1", "call", "calc", "val"],
    ));
    assert_eq!(code, Some(4), "Redis unreachable");
    let (code, _) = code_and_stderr(&redisrpc(&redis, &["state", "get", "robot.nothing"]));
    assert_eq!(code, Some(5), "not found");
    let (code, stderr) = code_and_stderr(&redisrpc(&redis, &["describe", "calc", "pow"]));
    assert_eq!(code, Some(5), "no such method");
    assert!(stderr.contains("has no method `pow`"), "{stderr}");
}

#[test]
#[redisrpc_testkit::needs(redis)]
fn call_checks_arguments_against_the_description_before_sending() {
    let Some(redis) = RedisServer::start() else { return };
    let _servers = Servers::start(&redis);
    let refused = |args: &[&str], wanted: &str| {
        let (code, stderr) = code_and_stderr(&redisrpc(&redis, args));
        assert_eq!(code, Some(2), "refused before sending: {args:?}");
        assert!(
            stderr.contains(wanted) && stderr.contains("the call was not sent"),
            "{stderr}"
        );
    };
    let wrong_kind = ["call", "inventory", "add", "gear", "robot", "3", "0.2", "[]"];
    refused(
        &wrong_kind,
        "argument `kind`: `robot` is not a PartKind; it is one of: motor | sensor",
    );
    let wide = r#"{"args": ["eye", {"camera": {"width": "wide", "height": 480}}, 1, 0.1, []]}"#;
    refused(
        &["call", "inventory", "add", "-d", wide],
        "argument `kind.camera.width`: wants u32, got \"wide\"",
    );
    refused(
        &["call", "inventory", "add", "gear", "motor", "count=many"],
        "argument `count`: wants i64",
    );
    refused(
        &["call", "inventory", "add", "gear", "motor"],
        "add() is missing argument `count` (i64)",
    );
    refused(
        &["call", "calc", "add", "1", "2"],
        "add() takes 1 argument (number) but 2 were given",
    );
    refused(
        &["call", "inventory", "get", "nmae=gear"],
        "get() has no parameter `nmae`",
    );
    // A member the type does not have is refused, though serde would drop
    // it and the server add the part: the part is not there.
    let deep = r#"{"args": ["deep", {"camera": {"width": 1, "height": 2, "depth": 3}}, 1, 0.1, []]}"#;
    refused(
        &["call", "inventory", "add", "-d", deep],
        "argument `kind.camera`: camera has no field `depth` (its fields: width, height)",
    );
    assert_eq!(json_of(&ok(&redis, &["call", "inventory", "get", "deep"])), json!(null));
    // --no-check sends it, and the server refuses it itself.
    let mut unchecked = vec!["call", "--no-check"];
    unchecked.extend(&wrong_kind[1..]);
    let (code, stderr) = code_and_stderr(&redisrpc(&redis, &unchecked));
    assert_eq!(code, Some(1), "the server's refusal");
    assert!(stderr.contains("unknown variant `robot`"), "{stderr}");
    // A method the description does not have is not found.
    let (code, stderr) = code_and_stderr(&redisrpc(&redis, &["call", "calc", "pow", "2"]));
    assert_eq!(code, Some(5), "no such method");
    assert!(stderr.contains("`calc` has no method `pow` (it has: "), "{stderr}");
    // Values the shapes allow go through, named or not, with or without Options.
    let data = r#"{"args": ["eye"], "kwargs": {"kind": {"camera": {"width": 64, "height": 48}}, "count": 1, "weight_kg": 1, "tags": ["x"], "supplier": null}}"#;
    assert_eq!(
        json_of(&ok(&redis, &["call", "inventory", "add", "-d", data]))["kind"]["camera"]["width"],
        json!(64)
    );
}

#[test]
#[redisrpc_testkit::needs(redis)]
fn describe_services_and_inspect_show_what_runs() {
    let Some(redis) = RedisServer::start() else { return };
    let _servers = Servers::start(&redis);
    let described = ok(&redis, &["describe", "calc"]);
    assert!(described.contains("service Calculator on `calc`"), "{described}");
    assert!(described.contains("add(number: f64) -> f64"), "{described}");
    assert!(
        described.contains("div(number: f64) -> f64 (fails with DivisionByZero)"),
        "{described}"
    );
    let one = json_of(&ok(&redis, &["--json", "describe", "inventory", "add"]));
    assert_eq!(one["methods"][0]["name"], json!("add"));
    assert_eq!(one["methods"][0]["params"][0]["name"], json!("name"));
    // What a type holds, not only its name.
    assert_eq!(one["methods"][0]["params"][1]["shape"], json!({"TYPENAME": "PartKind"}));
    assert_eq!(one["methods"][0]["params"][4]["shape"], json!({"SEQ": "STR"}));
    let inventory = ok(&redis, &["describe", "inventory"]);
    assert!(
        inventory.contains("PartKind = motor | sensor | gripper | camera { width: u32, height: u32 }"),
        "{inventory}"
    );

    // A queue with a waiting request and no server.
    redis.cli(&[
        "RPUSH",
        "orphans",
        r#"{"function_call":{"name":"x"},"response_queue":"orphans:rpc:1"}"#,
    ]);
    let table = ok(&redis, &["services"]);
    assert!(table.lines().next().unwrap().starts_with("QUEUE"), "{table}");
    let services = json_of(&ok(&redis, &["--json", "services"]));
    let find = |queue: &str| {
        services
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["queue"] == json!(queue))
            .cloned()
    };
    let calc = find("calc").expect("calc is listed");
    assert_eq!(
        (calc["servers"].clone(), calc["delivery"].clone()),
        (json!(1), json!(["at-most-once"]))
    );
    assert_eq!(find("inventory").unwrap()["delivery"], json!(["at-least-once"]));
    assert_eq!(
        (
            find("orphans").unwrap()["servers"].clone(),
            find("orphans").unwrap()["waiting"].clone()
        ),
        (json!(0), json!(1))
    );

    let inspected = json_of(&ok(&redis, &["--json", "inspect", "orphans"]));
    assert_eq!(
        (inspected["waiting"].clone(), inspected["oldest"]["method"].clone()),
        (json!(1), json!("x"))
    );
    let inventory = json_of(&ok(&redis, &["--json", "inspect", "inventory"]));
    let server = &inventory["servers"][0];
    assert_eq!(
        (server["alive"].clone(), server["record"]["delivery"].clone()),
        (json!(true), json!("at-least-once"))
    );
    assert!(ok(&redis, &["inspect", "calc"]).contains("at-most-once"));
}

#[test]
#[redisrpc_testkit::needs(redis)]
fn state_commands_read_write_and_follow_the_shared_state() {
    let Some(redis) = RedisServer::start() else { return };
    ok(
        &redis,
        &["state", "set", "robot.arm", r#"{"angle": 0.5, "joint": "elbow"}"#],
    );
    assert_eq!(json_of(&ok(&redis, &["state", "get", "robot.arm.angle"])), json!(0.5));
    ok(&redis, &["state", "publish", "robot.arm.joint", "wrist"]);
    assert_eq!(
        json_of(&ok(&redis, &["--json", "state", "get", "robot"])),
        json!({"arm": {"angle": 0.5, "joint": "wrist"}})
    );
    assert_eq!(json_of(&ok(&redis, &["--json", "state", "ls"])), json!(["robot"]));
    ok(&redis, &["state", "delete", "robot.arm.joint"]);
    assert_eq!(
        redisrpc(&redis, &["state", "get", "robot.arm.joint"]).status.code(),
        Some(5)
    );

    // A camera frame shows as what it is.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let state = runtime.block_on(async { State::new(Redis::connect(&redis.url()).await.unwrap()) });
    let frame = redisrpc::state::NdArray::from_elements(vec![4, 6, 3], &[7u8; 72]).unwrap();
    runtime.block_on(state.set_array("robot.camera", &frame)).unwrap();
    assert_eq!(
        ok(&redis, &["state", "get", "robot.camera"]).trim(),
        "ndarray uint8 (4, 6, 3)"
    );
    let bytes = redisrpc(&redis, &["state", "get", "robot.camera", "--bytes"]);
    assert_eq!(bytes.stdout, vec![7u8; 72]);

    // `watch` and `hz` follow the robot-state example's publisher at 50 Hz.
    let publishing = runtime.spawn({
        let state = state.clone();
        async move { robot::publish(&state, 50.0, Some(Duration::from_secs(4))).await }
    });
    std::thread::sleep(Duration::from_millis(200));
    let watched = ok(&redis, &["--json", "state", "watch", "robot.*", "--count", "3"]);
    let lines: Vec<Value> = watched.lines().map(json_of).collect();
    assert_eq!(lines.len(), 3, "{watched}");
    assert!(
        lines
            .iter()
            .all(|line| line["path"] == json!("robot.arm") && line["value"]["seq"].is_u64()),
        "{watched}"
    );
    let rates = ok(&redis, &["--json", "state", "hz", "robot.arm", "--for", "2s"]);
    let last = json_of(rates.lines().last().unwrap());
    let rate = last["rate_hz"].as_f64().unwrap();
    assert!((25.0..=75.0).contains(&rate), "{rate} Hz for 50 Hz: {rates}");
    runtime.block_on(publishing).unwrap().unwrap();
}

#[test]
#[redisrpc_testkit::needs(redis, reem)]
fn state_commands_share_documents_with_reem_programs() {
    let Some((redis, python)) = redisrpc_testkit::reem::start() else {
        return;
    };
    let reem = |args: &[&str]| {
        let output = redisrpc_testkit::reem::peer(&python, redis.port(), args)
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8(output.stdout).unwrap()
    };
    reem(&["write", "robot"]);
    fn reem_state<'a>(args: &[&'a str]) -> Vec<&'a str> {
        [&["state", "--layout", "reem"][..], args].concat()
    }
    assert_eq!(
        json_of(&ok(&redis, &reem_state(&["get", "robot.arm.angle"]))),
        json!(0.5)
    );
    assert_eq!(
        ok(&redis, &reem_state(&["get", "robot.camera.frame"])).trim(),
        "ndarray uint8 (2, 3, 4)"
    );
    ok(&redis, &reem_state(&["set", "robot.arm.angle", "0.75"]));
    assert_eq!(json_of(&reem(&["read", "robot"]))["arm"]["angle"], json!(0.75));
    assert_eq!(
        json_of(&ok(&redis, &["--json", "state", "--layout", "reem", "ls"])),
        json!(["robot", "speed"])
    );
    // The store's own layout does not take REEM's documents for its own.
    assert_ne!(
        redisrpc(&redis, &["state", "get", "robot.arm.angle"]).status.code(),
        Some(0)
    );
}

#[test]
#[redisrpc_testkit::needs(redis, python, ruby)]
fn call_and_describe_against_the_peers_servers() {
    for peer in [Peer::Python, Peer::Ruby] {
        let Some(redis) = redis_for(peer) else { return };
        let _server = peer.serve(&redis.url(), "calc", "calc");
        assert_eq!(json_of(&ok(&redis, &["call", "calc", "add", "2"])), json!(2.0));
        let (code, stderr) = code_and_stderr(&redisrpc(&redis, &["describe", "calc"]));
        assert_eq!(code, Some(5), "{} has no rpc.describe", peer.name());
        assert!(stderr.contains("does not describe itself"), "{stderr}");
    }
}

#[test]
#[redisrpc_testkit::needs(redis)]
fn stats_merges_the_figures_of_every_server() {
    let Some(redis) = RedisServer::start() else { return };
    // Two servers of `calc`: the service's figures are their sum.
    let _one = Servers::start(&redis);
    let _two = Servers::start(&redis);
    for n in 0..20 {
        ok(&redis, &["call", "calc", "add", &n.to_string()]);
    }
    assert_eq!(redisrpc(&redis, &["call", "calc", "div", "0"]).status.code(), Some(1));
    // The servers rewrite their records every second.
    std::thread::sleep(Duration::from_millis(1_500));
    let totals = json_of(&ok(&redis, &["--json", "stats", "calc"]));
    let method = |name: &str| {
        totals
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["method"] == json!(name))
            .cloned()
            .unwrap()
    };
    assert_eq!(method("add")["calls"], json!(20));
    assert_eq!(
        (method("div")["calls"].clone(), method("div")["errors"].clone()),
        (json!(1), json!(1))
    );
    assert!(method("add")["p99_us"].as_f64().unwrap() > 0.0);
    assert_eq!(method("div")["errors_by_kind"], json!({"failed": 1}));
    assert!(
        method("add")["queue_wait_p99_us"].as_f64().unwrap() > 0.0,
        "calls say when they were sent"
    );
    assert_eq!(
        (method("add")["expired"].clone(), method("add")["redelivered"].clone()),
        (json!(0), json!(0))
    );
    let table = ok(&redis, &["stats", "calc"]);
    assert!(table.starts_with("METHOD") && table.contains("add"), "{table}");
    assert!(table.contains("WAIT P99") && table.contains("EXPIRED"), "{table}");
    assert!(table.contains("errors by kind: div: 1 failed"), "{table}");

    // Watching: the calls of one interval, as rates.
    let calling = std::thread::spawn({
        let url = redis.url();
        move || {
            let runtime = tokio::runtime::Runtime::new().unwrap();
            runtime.block_on(async {
                let client = redisrpc::Client::new(Redis::connect(&url).await.unwrap(), "calc");
                for _ in 0..200 {
                    client.call::<f64>("val", ()).await.unwrap();
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            });
        }
    });
    let watched = ok(
        &redis,
        &[
            "--json",
            "stats",
            "calc",
            "--watch",
            "--interval",
            "1500ms",
            "--count",
            "1",
        ],
    );
    calling.join().unwrap();
    let interval = json_of(watched.lines().last().unwrap());
    let val = interval
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["method"] == json!("val"))
        .cloned()
        .unwrap();
    let rate = val["calls_per_second"].as_f64().unwrap();
    assert!(rate > 5.0, "{rate} calls/s of val: {watched}");
}

#[test]
#[redisrpc_testkit::needs(redis)]
fn the_command_works_on_a_cluster() {
    let Some(cluster) = RedisCluster::start() else { return };
    let _servers = Servers::start(&cluster);
    assert_eq!(json_of(&ok(&cluster, &["call", "calc", "add", "5"])), json!(5.0));
    let services = json_of(&ok(&cluster, &["--json", "services"]));
    let queues: Vec<&Value> = services.as_array().unwrap().iter().map(|s| &s["queue"]).collect();
    assert_eq!(queues, [&json!("calc"), &json!("inventory")], "{services}");
    let inspected = json_of(&ok(&cluster, &["--json", "inspect", "inventory"]));
    assert_eq!(inspected["servers"][0]["alive"], json!(true), "{inspected}");
    // Documents on every node are listed.
    for document in ["robot", "arm", "camera", "gripper"] {
        ok(&cluster, &["state", "set", &format!("{document}.on"), "true"]);
    }
    assert_eq!(
        json_of(&ok(&cluster, &["--json", "state", "ls"])),
        json!(["arm", "camera", "gripper", "robot"])
    );
    let slots: std::collections::BTreeSet<usize> = ["robot", "arm", "camera", "gripper"]
        .iter()
        .map(|document| cluster.owner_of(cluster.slot_of(document)))
        .collect();
    assert!(slots.len() > 1, "the documents live on more than one node");
    let stats = json_of(&ok(&cluster, &["--json", "stats", "calc"]));
    assert!(stats.is_array(), "{stats}");
}

#[test]
#[redisrpc_testkit::needs(redis)]
fn acl_prints_lines_redis_cli_applies() {
    let Some(redis) = RedisServer::start() else { return };
    let line = ok(
        &redis,
        &["acl", "client", "calc", "--user", "calc-client", "--password", "pw"],
    );
    let applied = Command::new("redis-cli")
        .args(["-p", &redis.port().to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut cli| {
            cli.stdin.take().unwrap().write_all(line.as_bytes())?;
            cli.wait_with_output()
        })
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&applied.stdout).trim(), "OK", "{line}");
    let dry_run = |args: &[&str]| {
        let mut command = vec!["ACL", "DRYRUN", "calc-client"];
        command.extend(args);
        redis.cli(&command).trim().to_owned()
    };
    assert_eq!(dry_run(&["RPUSH", "calc", "request"]), "OK");
    assert_eq!(dry_run(&["BLPOP", "calc:rpc:{calc}mine", "1"]), "OK");
    assert!(dry_run(&["RPUSH", "calc:rpc:{calc}theirs", "forged"]).contains("no permissions"));
    assert!(dry_run(&["LPOP", "calc"]).contains("no permissions"));
    // A random password when none is given; a role without its name is bad usage.
    let generated = redisrpc(&redis, &["acl", "operator", "--user", "ops"]);
    assert!(String::from_utf8_lossy(&generated.stderr).contains("a new password for `ops`"));
    let (code, stderr) = code_and_stderr(&redisrpc(&redis, &["acl", "server", "--user", "x"]));
    assert_eq!(code, Some(2), "{stderr}");
    let (code, stderr) = code_and_stderr(&redisrpc(&redis, &["acl", "state-writer", "robot.arm", "--user", "x"]));
    assert_eq!(code, Some(2), "{stderr}");
}
