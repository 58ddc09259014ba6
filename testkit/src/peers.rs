//! Interpreters the cross-language tests need beside Redis: `python3`,
//! `ruby` and `php` with their Redis libraries.
//!
//! As with `redis-server`, a missing one makes a test print a loud
//! `SKIPPED` line saying what to install and return early, so a developer
//! without it can run the rest of the suite; CI sets
//! `REDISRPC_REQUIRE_PEERS=1` to make it a failure instead.
//!
//! Environment variables:
//!
//! - `REDISRPC_PYTHON`, `REDISRPC_RUBY`, `REDISRPC_PHP`: the interpreters
//!   to run; default `python3`, `ruby` and `php` from `PATH`.
//! - `REDISRPC_REQUIRE_PEERS=1`: panic instead of skipping when one is
//!   missing or lacks a library.

use std::process::Command;
use std::thread;

/// The Python interpreter: `$REDISRPC_PYTHON`, or `python3`.
pub fn python() -> String {
    interpreter("REDISRPC_PYTHON", "python3")
}

/// The Ruby interpreter: `$REDISRPC_RUBY`, or `ruby`.
pub fn ruby() -> String {
    interpreter("REDISRPC_RUBY", "ruby")
}

/// The PHP interpreter: `$REDISRPC_PHP`, or `php`.
pub fn php() -> String {
    interpreter("REDISRPC_PHP", "php")
}

fn interpreter(variable: &str, default: &str) -> String {
    std::env::var(variable)
        .ok()
        .filter(|value| !value.is_empty())
        .unwrap_or_else(|| default.to_owned())
}

/// Runs `interpreter flag code` (e.g. `python3 -c "import redis"`) and says
/// why it failed, if it did.
pub fn probe(interpreter: &str, flag: &str, code: &str) -> Result<(), String> {
    match Command::new(interpreter).args([flag, code]).output() {
        Ok(output) if output.status.success() => Ok(()),
        Ok(output) => Err(format!(
            "`{interpreter} {flag} \"{code}\"` failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        )),
        Err(error) => Err(format!("cannot run `{interpreter}`: {error}")),
    }
}

/// Reports that the current test cannot run without `needs` (what is
/// missing, why, and how to install it): panics when
/// `REDISRPC_REQUIRE_PEERS=1`, otherwise prints `SKIPPED <test>: …` so the
/// caller can return.
pub fn skip_without(needs: &str) {
    if std::env::var("REDISRPC_REQUIRE_PEERS").as_deref() == Ok("1") {
        panic!("REDISRPC_REQUIRE_PEERS=1 but this test needs {needs}");
    }
    // libtest names each test's thread after the test.
    let current = thread::current();
    eprintln!("SKIPPED {}: needs {needs}", current.name().unwrap_or("<unknown test>"));
}
