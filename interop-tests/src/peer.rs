//! The Python, Ruby and PHP peers as child processes.
//!
//! A peer is an interpreter (`python3`, `ruby`, `php`) with its Redis library and
//! the peer script beside this crate. When the interpreter or its library is
//! missing, [`Peer::available`] prints a loud `SKIPPED` line saying what to
//! install and the test returns early, so a developer without them can run
//! the rest of the suite; with `REDISRPC_REQUIRE_PEERS=1` (CI) it panics.
//!
//! Every wait on a child is bounded, and children are killed on drop, so a
//! broken peer fails a test instead of hanging it.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use redisrpc_testkit::peers;
use serde_json::Value;

use crate::script::{Outcome, Step};

/// How long a peer server has to say `ready`, and a peer client to finish
/// its script, before the test fails.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(20);
const CLIENT_TIMEOUT: Duration = Duration::from_secs(60);

/// A RedisRPC peer in another language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    /// `python/peer.py`, with the `redis` package from PyPI.
    Python,
    /// `ruby/peer.rb`, with the `redis` gem (Debian's `ruby-redis`).
    Ruby,
    /// `php/peer.php`, with Predis (Debian's `php-cli` and `php-predis`).
    Php,
}

impl Peer {
    /// The peer's name, for messages: `Python`, `Ruby` or `PHP`.
    pub fn name(self) -> &'static str {
        match self {
            Peer::Python => "Python",
            Peer::Ruby => "Ruby",
            Peer::Php => "PHP",
        }
    }

    /// The interpreter (see [`redisrpc_testkit::peers`]).
    fn interpreter(self) -> String {
        match self {
            Peer::Python => peers::python(),
            Peer::Ruby => peers::ruby(),
            Peer::Php => peers::php(),
        }
    }

    /// The peer's command-line script.
    pub fn script(self) -> PathBuf {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        match self {
            Peer::Python => dir.join("python/peer.py"),
            Peer::Ruby => dir.join("ruby/peer.rb"),
            Peer::Php => dir.join("php/peer.php"),
        }
    }

    fn install_hint(self) -> &'static str {
        match self {
            Peer::Python => {
                "python3 with the `redis` package; install with: apt-get install python3-pip && pip install redis"
            }
            Peer::Ruby => "ruby with the `redis` gem; install with: apt-get install ruby ruby-redis",
            Peer::Php => "php with Predis; install with: apt-get install php-cli php-predis",
        }
    }

    /// Whether the interpreter runs and loads its Redis library. Probed
    /// once per test process.
    fn probe(self) -> &'static Result<(), String> {
        static PYTHON: OnceLock<Result<(), String>> = OnceLock::new();
        static RUBY: OnceLock<Result<(), String>> = OnceLock::new();
        static PHP: OnceLock<Result<(), String>> = OnceLock::new();
        let (cell, flag, code) = match self {
            Peer::Python => (&PYTHON, "-c", "import redis, json"),
            Peer::Ruby => (&RUBY, "-e", "require 'redis'; require 'json'"),
            Peer::Php => (&PHP, "-r", "require 'Predis/autoload.php'; json_encode([]);"),
        };
        cell.get_or_init(|| peers::probe(&self.interpreter(), flag, code))
    }

    /// True when the peer can run. Otherwise prints
    /// `SKIPPED <test>: … install with: …` and returns false, or panics when
    /// `REDISRPC_REQUIRE_PEERS=1`.
    pub fn available(self) -> bool {
        let Err(problem) = self.probe() else { return true };
        peers::skip_without(&format!(
            "the {} peer: {} ({problem})",
            self.name(),
            self.install_hint()
        ));
        false
    }

    /// The interpreter running the peer script with `args`.
    pub fn command(self, args: &[&str]) -> Command {
        let mut command = Command::new(self.interpreter());
        command.arg(self.script()).args(args);
        command
    }

    /// Starts the peer's server of `service` (`calc` or `inventory`) on
    /// `queue`, and waits until it serves.
    pub fn serve(self, url: &str, service: &str, queue: &str) -> PeerServer {
        let mut child = self
            .command(&["serve", service, "--url", url, "--queue", queue])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start the {} server: {error}", self.name()));
        let name = format!("{} {service} server", self.name());
        forward_lines(child.stderr.take().expect("stderr is piped"), name.clone());
        let (ready, is_ready) = mpsc::channel();
        let stdout = child.stdout.take().expect("stdout is piped");
        thread::spawn(move || wait_for_ready(stdout, ready));
        let server = PeerServer { child, name };
        // The peer empties its queue when it starts, so nothing may be pushed before this.
        match is_ready.recv_timeout(STARTUP_TIMEOUT) {
            Ok(true) => server,
            _ => panic!(
                "the {} exited or did not print `ready` within {STARTUP_TIMEOUT:?}",
                server.name
            ),
        }
    }

    /// Runs the peer's client over `steps` against `queue`, with a timeout
    /// of `timeout` per call, and returns one outcome per step.
    pub fn run(self, url: &str, queue: &str, timeout: Duration, steps: &[Step]) -> Vec<Outcome> {
        if self != Peer::Python {
            let named = steps.iter().find(|step| !step.kwargs.is_empty());
            assert!(
                named.is_none(),
                "the {} client cannot send named arguments: {named:?}",
                self.name()
            );
        }
        let calls = Value::from(steps.iter().map(Step::to_json).collect::<Vec<_>>());
        let seconds = timeout.as_secs_f64().to_string();
        let command = self.command(&["call", "--url", url, "--queue", queue, "--timeout", &seconds]);
        let stdout = run_to_end(command, calls.to_string(), self.name());
        stdout
            .lines()
            .map(|line| parse_outcome(line).unwrap_or_else(|| panic!("the {} client printed {line:?}", self.name())))
            .collect()
    }
}

/// A peer server process; killed when dropped.
#[derive(Debug)]
pub struct PeerServer {
    child: Child,
    name: String,
}

impl PeerServer {
    /// Panics if the server has exited (a peer server crashes on what it
    /// cannot handle, so a test checks it is still up after its calls).
    pub fn assert_running(&mut self) {
        let status = self.child.try_wait().expect("cannot check on the peer server");
        assert!(status.is_none(), "the {} exited: {status:?}", self.name);
    }
}

impl Drop for PeerServer {
    fn drop(&mut self) {
        // Errors mean it is already gone, which is what we want.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_for_ready(stdout: ChildStdout, ready: mpsc::Sender<bool>) {
    let mut lines = BufReader::new(stdout).lines();
    let said_ready = lines.any(|line| line.is_ok_and(|line| line.trim() == "ready"));
    let _ = ready.send(said_ready);
    // Keep draining so the peer never blocks on a full pipe.
    lines.for_each(drop);
}

/// Copies a child's lines to the test's stderr, prefixed with `name`. The
/// thread inherits the test's output capture, so this shows up with a failure.
fn forward_lines(from: impl Read + Send + 'static, name: String) {
    thread::spawn(move || {
        for line in BufReader::new(from).lines().map_while(Result::ok) {
            eprintln!("[{name}] {line}");
        }
    });
}

/// Runs `command` with `input` on stdin until it exits (bounded), and
/// returns its stdout; panics with its stderr when it fails.
fn run_to_end(mut command: Command, input: String, peer: &str) -> String {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("cannot start the {peer} client: {error}"));
    let mut stdin = child.stdin.take().expect("stdin is piped");
    // Separate threads for each pipe: a 1 MiB script fills a pipe, and so may the answers.
    let writer = thread::spawn(move || stdin.write_all(input.as_bytes()));
    let read_all = |mut from: Box<dyn Read + Send>| {
        thread::spawn(move || {
            let mut text = String::new();
            from.read_to_string(&mut text).map(|_| text)
        })
    };
    let stdout = read_all(Box::new(child.stdout.take().expect("stdout is piped")));
    let stderr = read_all(Box::new(child.stderr.take().expect("stderr is piped")));
    let deadline = Instant::now() + CLIENT_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("cannot check on the peer client") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the {peer} client did not finish within {CLIENT_TIMEOUT:?}");
        }
        thread::sleep(Duration::from_millis(10));
    };
    let written = writer.join().expect("stdin writer");
    let stdout = stdout.join().expect("stdout reader").expect("the client prints UTF-8");
    let stderr = stderr.join().expect("stderr reader").unwrap_or_default();
    assert!(
        status.success(),
        "the {peer} client failed ({status}):\n{stderr}\nstdout:\n{stdout}"
    );
    written.expect("the script is written to the client");
    if !stderr.is_empty() {
        eprintln!("[{peer} client] {stderr}");
    }
    stdout
}

/// One line of a peer client's output: `{"return_value": …}` or
/// `{"error": "remote" | "timeout", "message": …, "backtrace": […]}`.
fn parse_outcome(line: &str) -> Option<Outcome> {
    let mut value: Value = serde_json::from_str(line).ok()?;
    if let Some(returned) = value.get_mut("return_value") {
        return Some(Outcome::Returned(returned.take()));
    }
    let message = value.get("message")?.as_str()?.to_owned();
    match value.get("error")?.as_str()? {
        "remote" => Some(Outcome::Remote {
            message,
            backtrace: serde_json::from_value(value["backtrace"].take()).ok(),
        }),
        "timeout" => Some(Outcome::Timeout(message)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_client_lines_parse_into_outcomes() {
        let returned = parse_outcome(r#"{"return_value": [1, 2.5]}"#);
        assert!(matches!(returned, Some(Outcome::Returned(value)) if value == serde_json::json!([1, 2.5])));
        let remote = parse_outcome(r#"{"error": "remote", "message": "boom", "backtrace": ["a.rb:1"]}"#);
        assert!(
            matches!(remote, Some(Outcome::Remote { message, backtrace: Some(frames) }) if message == "boom" && frames == ["a.rb:1"])
        );
        let remote = parse_outcome(r#"{"error": "remote", "message": "boom"}"#);
        assert!(matches!(remote, Some(Outcome::Remote { backtrace: None, .. })));
        assert!(matches!(
            parse_outcome(r#"{"error": "timeout", "message": "late"}"#),
            Some(Outcome::Timeout(_))
        ));
        assert!(parse_outcome(r#"{"error": "other", "message": "?"}"#).is_none());
        assert!(parse_outcome("Traceback (most recent call last):").is_none());
    }
}
