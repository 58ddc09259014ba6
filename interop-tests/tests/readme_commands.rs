//! The README's "Talking to Python, Ruby and PHP" commands, one call per process
//! against our calculator server, as a user types them.

use std::process::Output;

use redisrpc_examples::calc;
use redisrpc_interop_tests::{Peer, RustServer, redis_for};

fn run(peer: Peer, url: &str, args: &[&str]) -> Output {
    let mut command = peer.command(&["call", "--url", url, "--queue", "calc"]);
    let output = command.args(args).output().expect("the peer runs");
    eprintln!("{} {args:?}: {}", peer.name(), String::from_utf8_lossy(&output.stderr));
    output
}

fn stdout_of(peer: Peer, url: &str, args: &[&str]) -> String {
    let output = run(peer, url, args);
    assert!(output.status.success(), "{} {args:?} failed", peer.name());
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

#[test]
#[redisrpc_testkit::needs(redis, python, ruby, php)]
fn python_ruby_and_php_one_call_commands() {
    if !Peer::Ruby.available() || !Peer::Php.available() {
        return;
    }
    let Some(redis) = redis_for(Peer::Python) else { return };
    let url = redis.url();
    let _server = RustServer::start(&url, "calc", calc::service());

    assert_eq!(stdout_of(Peer::Python, &url, &["add", "5"]), "5.0");
    assert_eq!(stdout_of(Peer::Python, &url, &["mul", "number=4"]), "20.0");
    assert_eq!(stdout_of(Peer::Ruby, &url, &["sub", "3"]), "17.0");
    assert_eq!(
        stdout_of(Peer::Ruby, &url, &["add", "-17"]),
        "0.0",
        "a negative number is an argument"
    );

    for peer in [Peer::Python, Peer::Ruby] {
        let output = run(peer, &url, &["div", "0"]);
        assert!(!output.status.success(), "{} div 0 succeeded", peer.name());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("remote error: float division by zero"), "{stderr}");
    }
    assert_eq!(stdout_of(Peer::Php, &url, &["add", "20"]), "20.0");
}
