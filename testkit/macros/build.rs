//! Finds, when the tests are built, which of the tools they need are
//! missing, and hands the list to the macro as `REDISRPC_TESTKIT_MISSING`.
//!
//! Under `REDISRPC_REQUIRE_REDIS=1` (Redis, `openssl`, `faketime`) or
//! `REDISRPC_REQUIRE_PEERS=1` (the Python, Ruby and PHP peers) nothing of that
//! kind counts as missing, so those tests run and fail loudly without it,
//! as CI wants. The result is recomputed when one of the variables changes
//! or a directory on `PATH` does (a tool was installed).

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    for variable in [
        "PATH",
        "REDISRPC_REDIS_SERVER",
        "REDISRPC_PYTHON",
        "REDISRPC_RUBY",
        "REDISRPC_PHP",
        "REDISRPC_REJSON",
        "REDISRPC_REEM_PYTHON",
        "REDISRPC_REQUIRE_REDIS",
        "REDISRPC_REQUIRE_PEERS",
    ] {
        println!("cargo:rerun-if-env-changed={variable}");
    }
    for dir in path_dirs() {
        if dir.is_dir() {
            println!("cargo:rerun-if-changed={}", dir.display());
        }
    }
    println!("cargo:rerun-if-changed=build.rs");

    let required = |variable: &str| std::env::var(variable).as_deref() == Ok("1");
    let (redis, peers) = (required("REDISRPC_REQUIRE_REDIS"), required("REDISRPC_REQUIRE_PEERS"));
    let python = env_or("REDISRPC_PYTHON", "python3");
    let ruby = env_or("REDISRPC_RUBY", "ruby");
    let php = env_or("REDISRPC_PHP", "php");
    let reem_python = env_or("REDISRPC_REEM_PYTHON", "");
    let rejson = env_or("REDISRPC_REJSON", "");
    let checks: [(&str, bool, Check<'_>); 8] = [
        (
            "redis",
            redis,
            Box::new(|| on_path(&env_or("REDISRPC_REDIS_SERVER", "redis-server"))),
        ),
        ("openssl", redis, Box::new(|| on_path("openssl"))),
        ("faketime", redis, Box::new(|| on_path("faketime"))),
        ("python", peers, Box::new(|| runs(&python, "-c", "import redis, json"))),
        ("numpy", peers, Box::new(|| runs(&python, "-c", "import redis, numpy"))),
        (
            "ruby",
            peers,
            Box::new(|| runs(&ruby, "-e", "require 'redis'; require 'json'")),
        ),
        ("php", peers, Box::new(|| runs(&php, "-r", PHP_PROBE))),
        (
            "reem",
            peers,
            Box::new(|| Path::new(&rejson).is_file() && runs(&reem_python, "-c", "import reem, numpy")),
        ),
    ];
    let missing: Vec<&str> = checks
        .iter()
        .filter(|(_, required, found)| !required && !found())
        .map(|(name, _, _)| *name)
        .collect();
    println!("cargo:rustc-env=REDISRPC_TESTKIT_MISSING={}", missing.join(","));
}

/// Loads Predis, which the PHP peer needs, and JSON.
const PHP_PROBE: &str = "require 'Predis/autoload.php'; json_encode([]);";

/// Finds whether a tool is there.
type Check<'a> = Box<dyn Fn() -> bool + 'a>;

fn env_or(variable: &str, default: &str) -> String {
    std::env::var(variable)
        .ok()
        .filter(|value| !value.is_empty())
        .unwrap_or_else(|| default.to_owned())
}

fn path_dirs() -> Vec<PathBuf> {
    std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect())
        .unwrap_or_default()
}

/// Whether `program` is a file, or a file in a directory on `PATH`.
fn on_path(program: &str) -> bool {
    if program.contains('/') {
        return Path::new(program).is_file();
    }
    path_dirs().iter().any(|dir| dir.join(program).is_file())
}

/// Whether `interpreter flag code` runs and succeeds.
fn runs(interpreter: &str, flag: &str, code: &str) -> bool {
    Command::new(interpreter)
        .args([flag, code])
        .output()
        .is_ok_and(|output| output.status.success())
}
