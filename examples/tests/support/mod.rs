//! What the example tests share: a server binary as a child process, and
//! running binaries to the end, raw calls through `redis-cli`.

#![allow(dead_code)] // each test file uses part of it

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use redisrpc_testkit::RedisServer;
use serde_json::Value;

/// A server process (`calc-server`, `inventory-server`), killed on drop;
/// [`interrupt`](Self::interrupt) stops it with SIGINT as Ctrl-C would.
pub(crate) struct ServerProcess(Child);

impl ServerProcess {
    /// Starts the binary `program` serving `queue` on the Redis at `url`, and
    /// waits until it serves.
    pub(crate) fn start(program: &str, url: &str, queue: &str) -> ServerProcess {
        ServerProcess::start_with(program, url, queue, &[])
    }

    /// [`start`](Self::start) with more arguments.
    pub(crate) fn start_with(program: &str, url: &str, queue: &str, args: &[&str]) -> ServerProcess {
        let mut command = Command::new(program);
        command.args(["--redis", url, "--queue", queue]).args(args);
        ServerProcess::spawn(command, program)
    }

    /// Starts `command`, a server binary's command line (perhaps run by a
    /// wrapper such as `faketime`), and waits until it serves.
    pub(crate) fn spawn(mut command: Command, program: &str) -> ServerProcess {
        let mut child = command
            .env("RUST_LOG", "info")
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|error| panic!("{program} starts: {error}"));
        // Wait until it logs that it serves, so requests are not raced against startup.
        let mut log = BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        while log.read_line(&mut line).unwrap() > 0 && !line.contains("serving") {
            line.clear();
        }
        assert!(line.contains("serving"), "{program} did not start");
        std::thread::spawn(move || std::io::copy(&mut log, &mut std::io::stderr()));
        ServerProcess(child)
    }

    /// The process id.
    pub(crate) fn pid(&self) -> u32 {
        self.0.id()
    }

    /// Sends SIGINT and waits for a clean exit.
    pub(crate) fn interrupt(mut self) -> std::process::ExitStatus {
        let pid = self.0.id().to_string();
        assert!(Command::new("kill").args(["-INT", &pid]).status().unwrap().success());
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.0.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "the server ignored SIGINT");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs a binary to its end, echoing what it printed.
pub(crate) fn run(command: &mut Command) -> Output {
    let output = command.output().expect("the binary runs");
    eprintln!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Pushes `request` onto `queue` with redis-cli and pops the reply from `reply_queue`.
pub(crate) fn raw_call(server: &RedisServer, queue: &str, request: &str, reply_queue: &str) -> Value {
    server.cli(&["RPUSH", queue, request]);
    let popped = server.cli(&["BLPOP", reply_queue, "10"]);
    let mut lines = popped.lines();
    assert_eq!(lines.next(), Some(reply_queue), "no reply: {popped:?}");
    serde_json::from_str(lines.next().unwrap()).unwrap()
}
