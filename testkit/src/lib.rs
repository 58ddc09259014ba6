//! A private `redis-server` per test.
//!
//! The Redis backend and everything built on it are only trustworthy when
//! tested against a real Redis server, and tests that share one server
//! interfere with each other (keys, `CLIENT LIST`, passwords, databases).
//! [`RedisServer`] starts a throwaway server on a free port with its own
//! temporary directory, waits until it answers, and kills it when dropped.
//!
//! A test that needs a server is marked `#[needs(redis)]` ([`needs`]): when
//! no server binary was installed when the tests were built, it is ignored,
//! with the reason, and the test summary counts it, so a developer without
//! Redis can still run the rest of the suite and see what did not run. CI
//! sets `REDISRPC_REQUIRE_REDIS=1` to turn that into a failure instead.
//! Should a test start anyway without a binary (one installed or removed
//! since the build), [`RedisServer::start`] prints a loud `SKIPPED` line and
//! returns `None`.
//!
//! ```no_run
//! use redisrpc_testkit::RedisServer;
//!
//! let Some(server) = RedisServer::start() else { return };
//! let url = server.url(); // redis://127.0.0.1:PORT
//! ```
//!
//! Environment variables:
//!
//! - `REDISRPC_REDIS_SERVER`: the server binary to run (for example
//!   `valkey-server`); default `redis-server` from `PATH`.
//! - `REDISRPC_REQUIRE_REDIS=1`: panic instead of skipping when the binary is
//!   missing.
//!
//! [`peers`] does the same for the Python and Ruby interpreters the
//! cross-language tests run.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// Marks a test ignored when a tool it needs was missing when the tests
/// were built: `#[needs(redis)]`, `#[needs(redis, python)]` (see
/// `redisrpc-testkit-macros`).
pub use redisrpc_testkit_macros::needs;

mod cluster;
pub mod peers;
pub mod reem;
mod sentinel;

pub use cluster::{RedisCluster, SlotMove};
pub use sentinel::{MASTER_NAME, RedisSentinel};

/// How long a started server has to answer `PING` before we give up.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(10);
/// How many ports to try when the server fails to bind the one we picked
/// (another process may take a port between our probe and the server's bind).
const PORT_ATTEMPTS: usize = 5;
/// The placeholder in extra arguments that is replaced by the server's
/// temporary directory.
const DIR_PLACEHOLDER: &str = "{dir}";
/// The placeholder in extra arguments that is replaced by a free port,
/// picked afresh for each attempt to start the server (as its own port is):
/// a port that was taken by the time the server bound it is not tried again.
pub(crate) const FREE_PORT_PLACEHOLDER: &str = "{free-port}";

/// A running `redis-server` that lives as long as this value.
///
/// It listens on `127.0.0.1` on a port of its own, keeps nothing on disk
/// (`--save "" --appendonly no`), and logs to `redis.log` in its temporary
/// directory. Dropping it kills the process and removes the directory.
#[derive(Debug)]
pub struct RedisServer {
    child: Child,
    port: u16,
    dir: TempDir,
}

impl RedisServer {
    /// Starts a server with the default settings.
    ///
    /// Returns `None` (after printing a `SKIPPED` line to stderr) when the
    /// server binary is not installed, unless `REDISRPC_REQUIRE_REDIS=1`, in
    /// which case it panics. Panics, with the server log, when the server
    /// starts but does not answer within 10 seconds.
    pub fn start() -> Option<RedisServer> {
        RedisServer::start_with(&[])
    }

    /// Starts a server with extra command-line arguments, for example
    /// `&["--requirepass", "s3cret"]`.
    ///
    /// Every `{dir}` in an argument is replaced by the server's temporary
    /// directory (see [`RedisServer::dir`]), so a test can place a unix socket
    /// there: `&["--unixsocket", "{dir}/redis.sock", "--unixsocketperm", "700"]`.
    ///
    /// Missing binary and startup failure behave as in [`RedisServer::start`].
    pub fn start_with(args: &[&str]) -> Option<RedisServer> {
        RedisServer::start_configured(None, args)
    }

    /// Starts a server whose first argument is a configuration file with
    /// `config` in it (a sentinel needs one it can rewrite), then `args`.
    pub(crate) fn start_configured(config: Option<&str>, args: &[&str]) -> Option<RedisServer> {
        let binary = server_binary();
        let mut last_log = String::new();
        for _ in 0..PORT_ATTEMPTS {
            match try_start(&binary, config, args) {
                Attempt::Started(server) => return Some(server),
                Attempt::NotInstalled => {
                    skip_or_panic(&binary);
                    return None;
                }
                Attempt::PortTaken(log) => last_log = log,
            }
        }
        panic!("{binary} could not bind a free port in {PORT_ATTEMPTS} attempts; last server log:\n{last_log}");
    }

    /// The URL to connect to this server: `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The TCP port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's temporary directory (its working directory, log file,
    /// and a good place for a unix socket). Removed when the server is dropped.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Freezes the server (`SIGSTOP`), as a stalled host or a network
    /// partition would: connections stay open, nothing is answered. It
    /// resumes when the guard is dropped.
    pub fn freeze(&self) -> Frozen {
        Frozen::new(self.pid())
    }

    /// Runs `redis-cli` with `args` against this server and returns its
    /// output (`--raw`: values as they are, one per line). Panics when
    /// redis-cli fails, with what it printed.
    pub fn cli(&self, args: &[&str]) -> String {
        let output = Command::new("redis-cli")
            .args(["-p", &self.port.to_string(), "--raw"])
            .args(args)
            .output()
            .expect("redis-cli is installed beside redis-server (apt-get install redis-tools)");
        assert!(
            output.status.success(),
            "redis-cli {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).expect("redis-cli prints UTF-8")
    }

    /// Everything the server has logged so far, followed by anything it
    /// printed on stdout or stderr (where startup errors about bad arguments
    /// go). Empty strings when there is nothing to read.
    pub fn log(&self) -> String {
        read_logs(self.dir.path())
    }
}

/// Sends `signal` (`"STOP"`, `"CONT"`, `"KILL"` …) to process `pid`;
/// panics when `kill` fails.
pub fn signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .expect("kill is installed");
    assert!(status.success(), "kill -{signal} {pid} failed");
}

/// A process stopped with `SIGSTOP`, resumed (`SIGCONT`) when dropped, even
/// when the test panics.
#[derive(Debug)]
pub struct Frozen {
    pid: u32,
}

impl Frozen {
    /// Stops process `pid` until the guard is dropped.
    pub fn new(pid: u32) -> Frozen {
        signal(pid, "STOP");
        Frozen { pid }
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        // Errors mean the process is gone, which needs no resuming.
        let _ = Command::new("kill").arg("-CONT").arg(self.pid.to_string()).status();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        // Errors mean the process is already gone, which is what we want.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The outcome of one attempt to start a server.
enum Attempt {
    Started(RedisServer),
    NotInstalled,
    /// The server exited because the port was taken; carries its log.
    PortTaken(String),
}

fn server_binary() -> String {
    std::env::var("REDISRPC_REDIS_SERVER")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "redis-server".to_owned())
}

fn skip_or_panic(binary: &str) {
    let hint = format!(
        "{binary} not found; install it (apt-get install redis-server) or set REDISRPC_REDIS_SERVER to a server binary (e.g. valkey-server)"
    );
    if std::env::var("REDISRPC_REQUIRE_REDIS").as_deref() == Ok("1") {
        panic!("REDISRPC_REQUIRE_REDIS=1 but {hint}");
    }
    // libtest names each test's thread after the test.
    let current = thread::current();
    let test = current.name().unwrap_or("<unknown test>");
    eprintln!("SKIPPED {test}: {hint}");
}

/// Asks the OS for a free port. This is racy (someone else may take it
/// before the server binds it), which is why a bind failure is retried.
pub(crate) fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("cannot bind 127.0.0.1:0");
    listener
        .local_addr()
        .expect("cannot read the local address of a bound socket")
        .port()
}

/// An extra argument with its placeholders replaced: the directory, and a
/// port free now.
fn expand(arg: &str, dir: &str) -> String {
    if arg == FREE_PORT_PLACEHOLDER {
        return free_port().to_string();
    }
    arg.replace(DIR_PLACEHOLDER, dir)
}

fn try_start(binary: &str, config: Option<&str>, extra_args: &[&str]) -> Attempt {
    let dir = tempfile::Builder::new()
        .prefix("redisrpc-test-")
        .tempdir()
        .expect("cannot create a temporary directory for redis-server");
    let port = free_port();
    let log_file = dir.path().join("redis.log");
    let output = File::create(dir.path().join("output.log")).expect("cannot create the redis-server output file");
    let output_err = output
        .try_clone()
        .expect("cannot clone the redis-server output file handle");
    let dir_str = dir.path().to_str().expect("temporary directory path is not UTF-8");

    let mut command = Command::new(binary);
    if let Some(config) = config {
        let path = dir.path().join("server.conf");
        fs::write(&path, config).expect("cannot write the server's configuration file");
        command.arg(path);
    }
    command
        .arg("--port")
        .arg(port.to_string())
        .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .arg("--dir")
        .arg(dir.path())
        .arg("--logfile")
        .arg(&log_file)
        .args(extra_args.iter().map(|arg| expand(arg, dir_str)))
        .stdin(Stdio::null())
        .stdout(output)
        .stderr(output_err);

    let child = match command.spawn() {
        Ok(child) => child,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Attempt::NotInstalled,
        Err(e) => panic!("cannot run {binary}: {e}"),
    };
    let mut server = RedisServer { child, port, dir };

    let deadline = Instant::now() + STARTUP_TIMEOUT;
    loop {
        match server.child.try_wait() {
            Ok(Some(status)) => {
                let log = server.log();
                if log.contains("Address already in use") {
                    return Attempt::PortTaken(log);
                }
                panic!("{binary} exited during startup ({status}); its log:\n{log}");
            }
            Ok(None) => {}
            Err(e) => panic!("cannot check on {binary}: {e}"),
        }
        if answers_ping(port) {
            // The answer may have come from a server that already held the
            // port; ours would then be exiting with a bind error. Check again
            // after giving it a moment to fail.
            thread::sleep(Duration::from_millis(20));
            if let Ok(None) = server.child.try_wait() {
                return Attempt::Started(server);
            }
            continue;
        }
        if Instant::now() >= deadline {
            let log = server.log();
            panic!("{binary} on port {port} did not answer PING within {STARTUP_TIMEOUT:?}; its log:\n{log}");
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// True when something on `port` answers a raw RESP `PING` like a Redis
/// server that is ready: `+PONG`, or an error reply other than `-LOADING`
/// (`-NOAUTH` with `--requirepass` also proves the server is serving).
fn answers_ping(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(500)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
    if stream.write_all(b"*1\r\n$4\r\nPING\r\n").is_err() {
        return false;
    }
    let mut reply = [0u8; 64];
    let n = match stream.read(&mut reply) {
        Ok(n) if n > 0 => n,
        _ => return false,
    };
    let reply = &reply[..n];
    reply.starts_with(b"+PONG") || (reply.starts_with(b"-") && !reply.starts_with(b"-LOADING"))
}

fn read_logs(dir: &Path) -> String {
    let read = |path: PathBuf| fs::read_to_string(path).unwrap_or_default();
    let log = read(dir.join("redis.log"));
    let output = read(dir.join("output.log"));
    if output.is_empty() {
        log
    } else {
        format!("{log}\n--- stdout/stderr ---\n{output}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_answers_and_stops() {
        let Some(server) = RedisServer::start() else { return };
        let port = server.port();
        assert_eq!(server.url(), format!("redis://127.0.0.1:{port}"));
        assert!(answers_ping(port));
        assert!(server.dir().is_dir());
        assert!(server.log().contains("Ready to accept connections"), "{}", server.log());
        let dir = server.dir().to_owned();
        drop(server);
        assert!(!answers_ping(port));
        assert!(!dir.exists());
    }

    #[test]
    fn a_password_protected_server_counts_as_up() {
        let Some(server) = RedisServer::start_with(&["--requirepass", "s3cret"]) else {
            return;
        };
        assert!(answers_ping(server.port()));
    }

    #[test]
    fn dir_placeholder_is_replaced() {
        let Some(server) = RedisServer::start_with(&["--unixsocket", "{dir}/redis.sock"]) else {
            return;
        };
        assert!(server.dir().join("redis.sock").exists(), "{}", server.log());
    }

    #[test]
    fn a_bad_argument_panics_with_the_server_log() {
        if RedisServer::start().is_none() {
            return;
        }
        let panic = std::panic::catch_unwind(|| RedisServer::start_with(&["--no-such-option"]))
            .expect_err("started with a bad option");
        let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
        assert!(message.contains("no-such-option"), "{message}");
    }

    #[test]
    fn a_free_port_placeholder_is_a_port_free_at_each_attempt() {
        let port: u16 = expand(FREE_PORT_PLACEHOLDER, "/d").parse().expect("a port number");
        TcpListener::bind(("127.0.0.1", port)).expect("the port is free");
        assert_eq!(expand("{dir}/nodes.conf", "/d"), "/d/nodes.conf");
    }

    #[test]
    fn a_cluster_forms_and_moves_slots() {
        let Some(cluster) = RedisCluster::start() else { return };
        let slot = cluster.slot_of("calc");
        let owner = cluster.owner_of(slot);
        let node = &cluster.nodes()[owner];
        assert_eq!(node.cli(&["SET", "calc", "1"]).trim(), "OK");
        let to = (owner + 1) % 3;
        cluster.move_slot(slot, to);
        assert_eq!(cluster.owner_of(slot), to);
        assert_eq!(cluster.nodes()[to].cli(&["GET", "calc"]).trim(), "1");
        assert!(cluster.url().starts_with("redis+cluster://127.0.0.1:"));
    }

    /// Every node's view of every node's config epoch, by port.
    fn epochs(cluster: &RedisCluster) -> Vec<Vec<(u16, u64)>> {
        cluster
            .nodes()
            .iter()
            .map(|node| {
                let mut view: Vec<(u16, u64)> = node
                    .cli(&["CLUSTER", "NODES"])
                    .lines()
                    .map(|line| line.split_whitespace().collect::<Vec<_>>())
                    .filter(|fields| fields.len() >= 8)
                    .map(|fields| {
                        (
                            cluster::listed_port(fields[1]),
                            fields[6].parse().expect("a config epoch"),
                        )
                    })
                    .collect();
                view.sort();
                view
            })
            .collect()
    }

    /// A slot moved by hand keeps its keys only when its new owner's epoch
    /// beats every other: the cluster starts with an epoch per node that
    /// every node knows, and a move returns once all know the new owner's.
    #[test]
    fn a_cluster_agrees_on_distinct_epochs_before_and_after_a_move() {
        let Some(cluster) = RedisCluster::start() else { return };
        let views = epochs(&cluster);
        assert!(views.iter().all(|view| *view == views[0]), "{views:?}");
        let mut distinct: Vec<u64> = views[0].iter().map(|(_, epoch)| *epoch).collect();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), 3, "{views:?}");

        let slot = cluster.slot_of("calc");
        let to = (cluster.owner_of(slot) + 2) % 3;
        cluster.move_slot(slot, to);
        let views = epochs(&cluster);
        assert!(views.iter().all(|view| *view == views[0]), "{views:?}");
        let port = cluster.nodes()[to].port();
        let new_owner = views[0].iter().find(|(p, _)| *p == port).expect("the new owner").1;
        assert!(
            views[0].iter().all(|(p, epoch)| *p == port || *epoch < new_owner),
            "the new owner's epoch is the highest: {views:?}"
        );
    }

    #[test]
    fn a_sentinel_fails_over() {
        let Some(setup) = RedisSentinel::start() else { return };
        let before = setup.master().port();
        let after = setup.failover();
        assert_ne!(before, after);
        assert_eq!(setup.master().port(), after);
        assert!(setup.master().cli(&["ROLE"]).starts_with("master"));
        assert!(setup.replica().cli(&["ROLE"]).starts_with("slave"));
    }
}
