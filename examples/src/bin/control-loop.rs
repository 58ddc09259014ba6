//! A robot's control loop on a plain thread, at a fixed rate, with no
//! async runtime in its source: each tick reads a mirror of the arm's
//! state and calls the arm service (see `redisrpc_examples::arm`).
//!
//! ```text
//! cargo run -p redisrpc-examples --bin control-loop                        # embedded, 5 s at 100 Hz
//! cargo run -p redisrpc-examples --bin control-loop -- --redis redis://127.0.0.1:6379 --seconds 10
//! ```
//!
//! It serves the arm itself, on another thread, with the blocking server,
//! and simulates the joint on a third. Its last line reports the achieved
//! loop rate and the latency of the arm calls.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use redisrpc::backend::{IntoBackend, Memory, SharedBackend};
use redisrpc::blocking;
use redisrpc_examples::arm::{self, ArmBlockingClient, ArmServer, ArmState, Joint};

/// Runs a control loop against a simulated arm.
#[derive(Parser)]
struct Options {
    /// A Redis URL; without it, everything runs on the embedded backend.
    #[arg(long, value_name = "URL", env = "REDISRPC_URL")]
    redis: Option<String>,
    /// How long the loop runs.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// The loop's rate, in ticks per second (the simulator publishes at the
    /// same rate).
    #[arg(long, default_value_t = 100.0)]
    hz: f64,
}

fn main() -> anyhow::Result<()> {
    let options = Options::parse();
    anyhow::ensure!(
        options.hz > 0.0 && options.seconds > 0.0,
        "--hz and --seconds must be positive"
    );
    let backend: SharedBackend = match &options.redis {
        Some(url) => blocking::connect(url).with_context(|| format!("connecting to {url}"))?,
        None => Memory::new().into_backend(),
    };
    let period = Duration::from_secs_f64(1.0 / options.hz);

    // The arm service, served on a thread of its own.
    let joint = Arc::new(Joint::default());
    let service = ArmServer::new(Arc::clone(&joint));
    let server = blocking::Server::from(redisrpc::Server::new(backend.clone(), "arm", service));
    let handle = server.handle();
    let serving = thread::spawn(move || server.run());

    // The simulated joint, publishing its state every period.
    let state = blocking::State::new(backend.clone());
    state.publish("robot.arm", &ArmState::default())?;
    let stop = Arc::new(AtomicBool::new(false));
    let simulating = {
        let (state, stop) = (state.clone(), Arc::clone(&stop));
        thread::spawn(move || arm::simulate(&joint, &state, period, &stop))
    };

    // The control loop, on this thread.
    let mirror = state.mirror("robot.arm")?;
    let client = ArmBlockingClient::new(backend, "arm").with_timeout(Some(Duration::from_secs(1)));
    let report = arm::control_loop(&client, &mirror, period, Duration::from_secs_f64(options.seconds));

    stop.store(true, Ordering::SeqCst);
    handle.shutdown();
    simulating.join().expect("the simulator does not panic")?;
    let stats = serving.join().expect("the server does not panic")?;
    let report = report?;
    println!(
        "{} ticks, {} late; the arm served {} calls; worst distance from the setpoint {:.4} rad",
        report.ticks, report.late_ticks, stats.served, report.worst_error
    );
    println!(
        "control loop: {:.1} Hz (target {:.1} Hz), call latency p50 {:.1} µs, p99 {:.1} µs",
        report.rate_hz,
        options.hz,
        report.calls.percentile_us(0.50),
        report.calls.percentile_us(0.99)
    );
    Ok(())
}
