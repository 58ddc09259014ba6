//! A private Redis Cluster of three masters, for the suites that must hold
//! on a cluster as on one server.
//!
//! The nodes are [`RedisServer`]s started with `--cluster-enabled yes` and a
//! cluster bus port of their own (`--cluster-port`, so both ports are free
//! ones and no port needs 10000 added to it). The slots are split in three
//! (`CLUSTER ADDSLOTSRANGE`), each node gets a config epoch of its own
//! (`CLUSTER SET-CONFIG-EPOCH`), the nodes are introduced (`CLUSTER MEET`),
//! and [`RedisCluster::start`] returns once every node reports
//! `cluster_state:ok` and has its bus links up, and all three hold the same
//! view of who owns what, at which epoch. `redis-cli` drives it, so it works
//! the same on Valkey.
//!
//! The epochs matter to [`RedisCluster::move_slot`]. A node that takes a
//! slot by hand raises its epoch above the highest it knows, so that its
//! claim beats the old owner's. Nodes that meet with equal epochs settle
//! them among themselves, and until every node has heard the settled ones,
//! the new owner can raise its epoch too little: the old owner's claim then
//! wins, and the new owner deletes the keys it had taken, acknowledged
//! writes included. `redis-cli --cluster create` gives each node its epoch
//! before they meet for the same reason.

use std::thread;
use std::time::{Duration, Instant};

use crate::{FREE_PORT_PLACEHOLDER, RedisServer};

/// How long the three nodes have to agree on the cluster.
const FORM_TIMEOUT: Duration = Duration::from_secs(30);

/// Three cluster nodes that live as long as this value; each holds a third
/// of the slots and no replica.
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Starts three masters and forms the cluster. Returns `None` (after a
    /// `SKIPPED` line) when the server binary is missing, as
    /// [`RedisServer::start`] does; panics, with the nodes' logs, when the
    /// cluster does not form within 30 s.
    pub fn start() -> Option<RedisCluster> {
        let mut nodes = Vec::new();
        for _ in 0..3 {
            nodes.push(RedisServer::start_with(&[
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "{dir}/nodes.conf",
                "--cluster-port",
                FREE_PORT_PLACEHOLDER,
                "--cluster-node-timeout",
                "5000",
            ])?);
        }
        let cluster = RedisCluster { nodes };
        let ranges = [(0, 5460), (5461, 10922), (10923, 16383)];
        for (epoch, (node, (first, last))) in (1..).zip(cluster.nodes.iter().zip(ranges)) {
            node.cli(&["CLUSTER", "ADDSLOTSRANGE", &first.to_string(), &last.to_string()]);
            let set = node.cli(&["CLUSTER", "SET-CONFIG-EPOCH", &epoch.to_string()]);
            assert_eq!(set.trim(), "OK", "CLUSTER SET-CONFIG-EPOCH {epoch}");
        }
        for node in &cluster.nodes[1..] {
            let bus = node.cli(&["CONFIG", "GET", "cluster-port"]);
            let bus = bus.lines().nth(1).expect("CONFIG GET answers name and value");
            cluster.nodes[0].cli(&["CLUSTER", "MEET", "127.0.0.1", &node.port().to_string(), bus]);
        }
        cluster.wait_until_settled("forming the cluster");
        Some(cluster)
    }

    /// Waits until every node reports `cluster_state:ok`, knows the other
    /// two with its bus links to them up, and all three hold the same
    /// [`ownership`] view; panics, with the nodes' logs, after
    /// [`FORM_TIMEOUT`]. `what` names the wait in that panic.
    fn wait_until_settled(&self, what: &str) {
        let deadline = Instant::now() + FORM_TIMEOUT;
        loop {
            let views: Vec<Option<Vec<String>>> = self
                .nodes
                .iter()
                .map(|node| {
                    let info = node.cli(&["CLUSTER", "INFO"]);
                    let nodes = node.cli(&["CLUSTER", "NODES"]);
                    let ready =
                        info.contains("cluster_state:ok") && info.contains("cluster_known_nodes:3") && links_up(&nodes);
                    ready.then(|| ownership(&nodes))
                })
                .collect();
            if views.iter().all(|view| view.is_some() && *view == views[0]) {
                return;
            }
            if Instant::now() >= deadline {
                let logs: Vec<String> = self.nodes.iter().map(RedisServer::log).collect();
                panic!(
                    "{what}: the nodes did not agree within {FORM_TIMEOUT:?}; their views: {views:?}; their logs:\n{}",
                    logs.join("\n---\n")
                );
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// `redis+cluster://127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3`.
    pub fn url(&self) -> String {
        let seeds: Vec<String> = self.nodes.iter().map(|n| format!("127.0.0.1:{}", n.port())).collect();
        format!("redis+cluster://{}", seeds.join(","))
    }

    /// The nodes, in the order of their slots.
    pub fn nodes(&self) -> &[RedisServer] {
        &self.nodes
    }

    /// The slot of `key` (`CLUSTER KEYSLOT`).
    pub fn slot_of(&self, key: &str) -> u16 {
        let slot = self.nodes[0].cli(&["CLUSTER", "KEYSLOT", key]);
        slot.trim().parse().expect("CLUSTER KEYSLOT answers a number")
    }

    /// The index in [`nodes`](Self::nodes) of the node that owns `slot` now.
    pub fn owner_of(&self, slot: u16) -> usize {
        let listing = self.nodes[0].cli(&["CLUSTER", "NODES"]);
        for line in listing.lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let owns = fields.iter().skip(8).any(|range| {
                let mut bounds = range.split('-').map(|b| b.parse::<u16>());
                match (bounds.next(), bounds.next()) {
                    (Some(Ok(first)), Some(Ok(last))) => (first..=last).contains(&slot),
                    (Some(Ok(only)), None) => only == slot,
                    _ => false,
                }
            });
            if owns {
                let port = listed_port(fields[1]);
                return self
                    .nodes
                    .iter()
                    .position(|node| node.port() == port)
                    .expect("the owner is one of our nodes");
            }
        }
        panic!("no node owns slot {slot}:\n{listing}");
    }

    /// Moves `slot`, with its keys, to node `to`, as `redis-cli --cluster
    /// reshard` does: `SETSLOT … IMPORTING` and `MIGRATING`, `MIGRATE` the
    /// keys a batch at a time, then `SETSLOT … NODE` on every node. Clients
    /// see `ASK` while the keys move and `MOVED` after.
    pub fn move_slot(&self, slot: u16, to: usize) {
        if let Some(moving) = self.start_moving_slot(slot, to) {
            self.finish_moving_slot(moving);
        }
    }

    /// The first half of [`move_slot`](Self::move_slot): marks `slot`
    /// `IMPORTING` on `to` and `MIGRATING` on its owner, and leaves it so
    /// (every key not on the owner gets `ASK`) until
    /// [`finish_moving_slot`](Self::finish_moving_slot). `None` when `to`
    /// owns the slot already.
    pub fn start_moving_slot(&self, slot: u16, to: usize) -> Option<SlotMove> {
        let from = self.owner_of(slot);
        if from == to {
            return None;
        }
        let moving = SlotMove { slot, from, to };
        let slot = slot.to_string();
        self.nodes[to].cli(&["CLUSTER", "SETSLOT", &slot, "IMPORTING", &self.id_of(from)]);
        self.nodes[from].cli(&["CLUSTER", "SETSLOT", &slot, "MIGRATING", &self.id_of(to)]);
        Some(moving)
    }

    /// The second half of [`move_slot`](Self::move_slot): `MIGRATE`s the
    /// slot's keys still on the old owner, gives the slot to the new one on
    /// every node, and returns once all three agree on every node's slots
    /// and epoch, the new owner's raised one included.
    pub fn finish_moving_slot(&self, moving: SlotMove) {
        let SlotMove { slot, from, to } = moving;
        let (source, target) = (&self.nodes[from], &self.nodes[to]);
        let target_id = self.id_of(to);
        let slot = slot.to_string();
        loop {
            let keys = source.cli(&["CLUSTER", "GETKEYSINSLOT", &slot, "100"]);
            let keys: Vec<&str> = keys.lines().filter(|k| !k.is_empty()).collect();
            if keys.is_empty() {
                break;
            }
            let port = target.port().to_string();
            let mut migrate = vec!["MIGRATE", "127.0.0.1", &port, "", "0", "5000", "KEYS"];
            migrate.extend(keys);
            // A busy machine can time a batch out: the keys stay, and go in
            // the next batch.
            let reply = source.cli(&migrate);
            if reply.trim() != "OK" {
                eprintln!("MIGRATE of slot {slot} again after: {}", reply.trim());
                thread::sleep(Duration::from_millis(50));
            }
        }
        for node in [target, source].into_iter().chain(self.nodes.iter()) {
            node.cli(&["CLUSTER", "SETSLOT", &slot, "NODE", &target_id]);
        }
        self.wait_until_settled(&format!("moving slot {slot}"));
    }

    fn id_of(&self, index: usize) -> String {
        self.nodes[index].cli(&["CLUSTER", "MYID"]).trim().to_owned()
    }
}

/// A slot half way from one node to another: see
/// [`RedisCluster::start_moving_slot`].
#[derive(Debug)]
#[must_use = "the slot stays half moved until finish_moving_slot"]
pub struct SlotMove {
    slot: u16,
    from: usize,
    to: usize,
}

/// The port of a `CLUSTER NODES` address, `ip:port@bus[,hostname]`.
pub(crate) fn listed_port(address: &str) -> u16 {
    address
        .split(['@', ','])
        .next()
        .and_then(|addr| addr.rsplit(':').next())
        .and_then(|port| port.parse().ok())
        .expect("CLUSTER NODES lists ip:port@bus")
}

/// What a node's `CLUSTER NODES` says of every node's config epoch and
/// slots, one sorted line per node: the same on every node once the cluster
/// has settled.
fn ownership(nodes: &str) -> Vec<String> {
    let mut view: Vec<String> = nodes
        .lines()
        .map(|line| line.split_whitespace().collect::<Vec<&str>>())
        .filter(|fields| fields.len() >= 8)
        .map(|fields| {
            let (id, epoch, slots) = (fields[0], fields[6], &fields[8..]);
            format!("{id} {epoch} {}", slots.join(" "))
        })
        .collect();
    view.sort();
    view
}

/// Whether a node's `CLUSTER NODES` shows its bus link to every node up,
/// none of them still in handshake. A message published on one node reaches
/// subscribers on the others over those links: one a slow machine has not
/// opened yet would drop it.
fn links_up(nodes: &str) -> bool {
    let lines: Vec<Vec<&str>> = nodes
        .lines()
        .map(|line| line.split_whitespace().collect())
        .filter(|fields: &Vec<&str>| !fields.is_empty())
        .collect();
    lines.len() == 3
        && lines
            .iter()
            .all(|fields| fields.get(7) == Some(&"connected") && !fields[2].contains("handshake"))
}
