//! What operators see of a server: `calc-server --metrics-addr` answering
//! Prometheus and `/healthz` over HTTP, `--otlp-endpoint` sending spans to
//! a collector, and, in one process, a call's two spans exported through
//! OpenTelemetry as one trace.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use opentelemetry::trace::{SpanKind, TraceId};
use opentelemetry_sdk::trace::InMemorySpanExporter;
use redisrpc::backend::{IntoBackend, Memory, Redis, SharedBackend};
use redisrpc::{Client, Server};
use redisrpc_testkit::RedisServer;
use support::{ServerProcess, run};
use tracing_subscriber::layer::SubscriberExt;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// `GET path` on 127.0.0.1:`port`: the status code and the body.
fn get(port: u16, path: &str) -> std::io::Result<(u16, String)> {
    let mut connection = TcpStream::connect(("127.0.0.1", port))?;
    connection.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(connection, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")?;
    let mut response = String::new();
    connection.read_to_string(&mut response)?;
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let body = response.split_once("\r\n\r\n").map_or("", |(_, body)| body).to_owned();
    Ok((status, body))
}

#[test]
#[redisrpc_testkit::needs(redis)]
fn calc_server_serves_prometheus_metrics_and_a_health_check() {
    let Some(redis) = RedisServer::start() else { return };
    let port = free_port();
    let address = format!("127.0.0.1:{port}");
    let server = ServerProcess::start_with(
        env!("CARGO_BIN_EXE_calc-server"),
        &redis.url(),
        "calc",
        &["--metrics-addr", &address],
    );
    let output = run(Command::new(env!("CARGO_BIN_EXE_calc-client")).args(["--redis", &redis.url()]));
    assert!(output.status.success(), "calc-client failed");

    assert_eq!(get(port, "/healthz").unwrap(), (200, "ok\n".to_owned()));
    let (status, metrics) = get(port, "/metrics").unwrap();
    assert_eq!(status, 200);
    let sample = |line_start: &str| -> f64 {
        let line = metrics
            .lines()
            .find(|line| line.starts_with(line_start))
            .unwrap_or_else(|| panic!("no `{line_start}` in:\n{metrics}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    // calc-client's checks, the last a call of a method the calculator lacks.
    assert_eq!(
        sample(r#"redisrpc_calls_total{queue="calc",method="add"}"#),
        1.0,
        "{metrics}"
    );
    assert_eq!(
        sample(r#"redisrpc_errors_total{queue="calc",method="(unknown)",kind="unknown_method"}"#),
        1.0
    );
    assert!(sample(r#"redisrpc_call_duration_seconds_count{queue="calc",method="add"}"#) >= 1.0);
    assert!(sample(r#"redisrpc_queue_wait_seconds_count{queue="calc",method="add"}"#) >= 1.0);
    assert!(metrics.contains("# HELP redisrpc_calls_total"), "described: {metrics}");
    assert_eq!(get(port, "/nothing").unwrap().0, 404);
    assert!(server.interrupt().success());
}

/// Answers one HTTP POST with 200 and returns its path and body.
fn collect_one_post(listener: &TcpListener) -> (String, Vec<u8>) {
    let (connection, _) = listener.accept().unwrap();
    connection.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut reader = BufReader::new(connection.try_clone().unwrap());
    let mut request_line = String::new();
    reader.read_line(&mut request_line).unwrap();
    let mut length = 0;
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).unwrap();
        if header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap();
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    let mut connection = connection;
    connection
        .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\nContent-Length: 0\r\n\r\n")
        .unwrap();
    let path = request_line.split(' ').nth(1).unwrap_or_default().to_owned();
    (path, body)
}

#[test]
#[redisrpc_testkit::needs(redis)]
fn calc_server_sends_its_spans_to_an_otlp_collector() {
    let Some(redis) = RedisServer::start() else { return };
    let collector = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}/v1/traces", collector.local_addr().unwrap());
    let server = ServerProcess::start_with(
        env!("CARGO_BIN_EXE_calc-server"),
        &redis.url(),
        "calc",
        &["--otlp-endpoint", &endpoint],
    );
    let output = run(Command::new(env!("CARGO_BIN_EXE_calc-client")).args(["--redis", &redis.url()]));
    assert!(output.status.success(), "calc-client failed");
    let started = Instant::now();
    // Ctrl-C: the server stops, and sends the spans it still buffers.
    let stopping = std::thread::spawn(move || server.interrupt());
    let (path, body) = collect_one_post(&collector);
    assert!(stopping.join().unwrap().success());
    assert_eq!(path, "/v1/traces");
    let text = String::from_utf8_lossy(&body);
    assert!(text.contains("calc/add") && text.contains("calc-server"), "{text:?}");
    assert!(started.elapsed() < Duration::from_secs(20));
}

/// One call on `backend`, with every span exported to memory: two spans of
/// one trace, the server's the child of the client's.
async fn one_call_is_one_trace_of_two_spans(backend: SharedBackend) {
    let exporter = InMemorySpanExporter::default();
    let (layer, export) = redisrpc::telemetry::otlp::layer_exporting_to(exporter.clone(), "test");
    let _subscriber = tracing::subscriber::set_default(tracing_subscriber::registry().with(layer));
    let queue = "otel";
    let server = Server::new(backend.clone(), queue, redisrpc_examples::calc::service());
    let handle = server.handle();
    let running = tokio::spawn(server.run());
    let client = Client::new(backend, queue);
    assert_eq!(client.call::<f64>("add", (2.5,)).await.unwrap(), 2.5);
    handle.shutdown();
    running.await.unwrap().unwrap();
    export.flush().unwrap();

    let spans = exporter.get_finished_spans().unwrap();
    let calls: Vec<_> = spans.iter().filter(|span| span.name == "otel/add").collect();
    assert_eq!(calls.len(), 2, "{spans:#?}");
    let client_span = calls.iter().find(|span| span.span_kind == SpanKind::Client).unwrap();
    let server_span = calls.iter().find(|span| span.span_kind == SpanKind::Server).unwrap();
    let trace_id = client_span.span_context.trace_id();
    assert_ne!(trace_id, TraceId::INVALID);
    assert_eq!(server_span.span_context.trace_id(), trace_id, "one trace");
    assert_eq!(
        server_span.parent_span_id,
        client_span.span_context.span_id(),
        "the right parent"
    );
    assert!(server_span.parent_span_is_remote, "its parent came with the request");
    let attribute = |name: &str| {
        server_span
            .attributes
            .iter()
            .find(|kv| kv.key.as_str() == name)
            .map(|kv| kv.value.to_string())
    };
    assert_eq!(attribute("rpc.method").as_deref(), Some("add"));
    assert_eq!(attribute("outcome").as_deref(), Some("ok"));
    assert_eq!(
        attribute("trace_id"),
        Some(format!("{trace_id}")),
        "the log's ids are OpenTelemetry's"
    );
}

#[tokio::test]
async fn through_opentelemetry_one_call_is_one_trace_of_two_spans_embedded() {
    one_call_is_one_trace_of_two_spans(Memory::new().into_backend()).await;
}

#[tokio::test]
#[redisrpc_testkit::needs(redis)]
async fn through_opentelemetry_one_call_is_one_trace_of_two_spans_over_redis() {
    let Some(redis) = RedisServer::start() else { return };
    one_call_is_one_trace_of_two_spans(Redis::connect(&redis.url()).await.unwrap().into_backend()).await;
}
