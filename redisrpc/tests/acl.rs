//! Each role's ACL user ([`redisrpc::acl`]) does its part, and is refused
//! what its role does not allow: a server, a client, a state writer and a
//! mirror, on one server and on a cluster (whose nodes each get the users).

mod common;

use std::convert::Infallible;
use std::time::Duration;

use redisrpc::acl::{self, Role};
use redisrpc::backend::{HeldKeys, IntoBackend, Redis, SharedBackend};
use redisrpc::service::Methods;
use redisrpc::state::{NdArray, State};
use redisrpc::{Client, Delivery, Server};
use redisrpc_testkit::{RedisCluster, RedisServer};
use serde_json::json;

use common::{start, stop};

const PASSWORD: &str = "s3cret-for-tests";

/// The roles under test, by user name.
fn roles() -> Vec<(&'static str, Role)> {
    let document = || "robot".to_owned();
    vec![
        ("calc-server", Role::Server("calc".into())),
        ("calc-client", Role::Client("calc".into())),
        (
            "robot-writer",
            Role::StateWriter {
                document: document(),
                mirrors: vec![],
            },
        ),
        (
            "robot-reader",
            Role::StateReader {
                document: document(),
                mirrors: vec!["robot.arm".into()],
            },
        ),
    ]
}

/// Creates every role's user on `node`.
fn create_users(node: &RedisServer) {
    for (user, role) in roles() {
        let rules = acl::rules(&role).unwrap();
        let password = format!(">{PASSWORD}");
        let mut command = vec!["ACL", "SETUSER", user, "reset", "on", &password];
        command.extend(rules.iter().map(String::as_str));
        assert_eq!(node.cli(&command).trim(), "OK", "ACL SETUSER {user}");
    }
}

/// The backend of `user` at `url` (`{user}` and `{password}` are filled in).
async fn connect(url: &str, user: &str) -> SharedBackend {
    let url = url.replace("{user}", user).replace("{password}", PASSWORD);
    Redis::connect(&url)
        .await
        .unwrap_or_else(|error| panic!("{user} connects: {error}"))
        .into_backend()
}

fn counter() -> Methods<()> {
    Methods::new(()).method("add", &["a", "b"], |_, (a, b): (i64, i64)| async move {
        Ok::<_, Infallible>(a + b)
    })
}

/// Asserts that `result` is Redis's refusal.
fn refused<T: std::fmt::Debug>(what: &str, result: redisrpc::Result<T>) {
    match result {
        Err(error) => {
            // Refused directly (NOPERM), or inside a script.
            let text = error.to_string();
            let refusal = ["NOPERM", "no permissions", "can't run this command"];
            assert!(refusal.iter().any(|r| text.contains(r)), "{what}: {error}");
        }
        Ok(value) => panic!("{what} was allowed: {value:?}"),
    }
}

/// The roles' work, and their refusals, at `url`.
async fn every_role_does_its_part_and_nothing_else(url: &str) {
    let server_backend = connect(url, "calc-server").await;
    // A server returns a dead server's requests, counting their delivery,
    // and reads and clears the count as it runs one again (before this
    // test's server starts, so that it is not the one that takes it).
    let ghost = HeldKeys::new("calc", "ghost");
    server_backend.rpush("calc", &[b"not a request"]).await.unwrap();
    let taken = server_backend
        .take_held(&ghost, 1, Some(Duration::from_secs(5)))
        .await
        .unwrap();
    assert_eq!(taken.len(), 1);
    assert_eq!(server_backend.requeue_held(&ghost, false).await.unwrap(), Some(1));
    let again = HeldKeys::new("calc", "again");
    let taken = server_backend
        .take_held(&again, 1, Some(Duration::from_secs(5)))
        .await
        .unwrap();
    assert_eq!(taken[0].delivery, 2);
    server_backend.release_held(&again, &taken[0], None).await.unwrap();
    assert!(server_backend.hash_get_all(&again.deliveries).await.unwrap().is_empty());

    let server = Server::new(server_backend.clone(), "calc", counter()).with_delivery(Delivery::AtLeastOnce);
    let (handle, running) = start(server);
    let client_backend = connect(url, "calc-client").await;
    let client = Client::new(client_backend.clone(), "calc").with_timeout(Some(Duration::from_secs(10)));
    assert_eq!(client.call::<i64>("add", (2, 3)).await.unwrap(), 5);

    // A client cannot forge a reply, take a request, or use another queue.
    refused(
        "a client pushing a reply",
        client_backend.rpush("calc:rpc:{calc}someone", &[b"{}"]).await,
    );
    refused("a client taking a request", client_backend.lpop("calc").await);
    refused(
        "a client of another queue",
        client_backend.rpush("other", &[b"{}"]).await,
    );
    refused(
        "a client reading the state",
        State::new(client_backend.clone()).get_value("robot").await,
    );
    // A server cannot read the replies, nor the state.
    refused(
        "a server reading a reply",
        server_backend.lpop("calc:rpc:{calc}someone").await,
    );
    refused(
        "a server reading the state",
        State::new(server_backend.clone()).get_value("robot").await,
    );

    // A writer writes its document; a reader mirrors it, and writes nothing.
    let writer_backend = connect(url, "robot-writer").await;
    let writer = State::new(writer_backend.clone());
    writer.set("robot", &json!({"arm": {"angle": 0.0}})).await.unwrap();
    let reader = State::new(connect(url, "robot-reader").await);
    let mut arm = reader.mirror("robot.arm").await.unwrap();
    writer.publish("robot.arm.angle", &1.5).await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), async {
        while arm.get::<f64>("robot.arm.angle").ok() != Some(1.5) {
            arm.changed().await.unwrap();
        }
    })
    .await
    .expect("the mirror follows the writer");
    assert_eq!(reader.get::<f64>("robot.arm.angle").await.unwrap(), 1.5);
    let frame = NdArray::from_elements(vec![2, 3], &[1u8, 2, 3, 4, 5, 6]).unwrap();
    writer.set_array("robot.camera.frame", &frame).await.unwrap();
    assert_eq!(reader.get_array("robot.camera.frame").await.unwrap(), frame);
    refused("a reader writing", reader.set("robot.arm.angle", &2.0).await);
    refused("a reader publishing", reader.publish("robot.arm.angle", &2.0).await);
    refused("a reader of another document", reader.get_value("rover").await);
    refused("a writer of another document", writer.set("rover", &1).await);
    refused("a writer taking requests", writer_backend.lpop("calc").await);

    stop(handle, running).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[redisrpc_testkit::needs(redis)]
async fn roles_on_one_server() {
    let Some(redis) = RedisServer::start() else { return };
    create_users(&redis);
    let url = format!("redis://{{user}}:{{password}}@127.0.0.1:{}", redis.port());
    every_role_does_its_part_and_nothing_else(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[redisrpc_testkit::needs(redis)]
async fn roles_on_a_cluster() {
    let Some(cluster) = tokio::task::spawn_blocking(RedisCluster::start).await.unwrap() else {
        return;
    };
    for node in cluster.nodes() {
        create_users(node);
    }
    let seeds: Vec<String> = cluster
        .nodes()
        .iter()
        .map(|n| format!("127.0.0.1:{}", n.port()))
        .collect();
    let url = format!("redis+cluster://{{user}}:{{password}}@{}", seeds.join(","));
    every_role_does_its_part_and_nothing_else(&url).await;
}
