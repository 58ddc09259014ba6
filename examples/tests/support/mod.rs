//! What the example tests share: a `calc-server` child process.

#![allow(dead_code)] // each test file uses part of it

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `calc-server` process, stopped with SIGINT (as Ctrl-C would) on drop.
pub(crate) struct CalcServer(Child);

impl CalcServer {
    pub(crate) fn start(url: &str, queue: &str) -> CalcServer {
        let mut child = Command::new(env!("CARGO_BIN_EXE_calc-server"))
            .args(["--redis", url, "--queue", queue])
            .env("RUST_LOG", "info")
            .stderr(Stdio::piped())
            .spawn()
            .expect("calc-server starts");
        // Wait until it logs that it serves, so requests are not raced against startup.
        let mut log = BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        while log.read_line(&mut line).unwrap() > 0 && !line.contains("serving") {
            line.clear();
        }
        assert!(line.contains("serving"), "calc-server did not start");
        std::thread::spawn(move || std::io::copy(&mut log, &mut std::io::stderr()));
        CalcServer(child)
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
            assert!(Instant::now() < deadline, "calc-server ignored SIGINT");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for CalcServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
