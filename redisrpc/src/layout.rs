//! The one place that names what the project keeps in Redis: every key and
//! channel the client, the server and the shared state read or write is
//! built here, so the rules they follow (which names are ours, which keys
//! share a Redis Cluster hash slot) hold everywhere at once.
//!
//! # Layout 1
//!
//! | what | name | type |
//! | --- | --- | --- |
//! | a service's queue | `calc` (the queue's name, as every peer spells it) | list |
//! | a call's reply queue | `calc:rpc:<random>` (the protocol fixes the prefix) | list |
//! | calls of `calc` given up by their callers | channel `calc:rpc:cancel`, messages are reply queues | pub/sub |
//! | document `robot` | `robot` | hash (`json`, `version`) |
//! | binary value at `robot.camera.frame` | `__state__:{robot}.camera.frame`, with `#<hex>` appended when taken | hash |
//! | a binary value of `robot` being written | `__state__:{robot}:staged:<random>`, inside one transaction | hash |
//! | updates of `robot.arm` | channel `__state__:robot.arm` | pub/sub |
//! | the servers of `calc` | `__rpc__:{calc}:servers:calc`, a field per instance | hash |
//! | server `7f3a…` of `calc`, while it lives | `__rpc__:{calc}:server:calc:7f3a…`, expiring | hash |
//! | requests server `7f3a…` holds (at-least-once) | `__rpc__:{calc}:held:calc:7f3a…` | list |
//! | a request server `7f3a…` is taking | `__rpc__:{calc}:taking:calc:7f3a…` | list |
//! | how often each request of `calc` was delivered without an answer | `__rpc__:{calc}:deliveries:calc`, a field per request's SHA-1 | hash |
//! | the layout's version | `__state__:layout` | string, `1` |
//!
//! **Ownership is in the name.** A binary hash belongs to document `robot`
//! exactly when its key starts with `__state__:{robot}`. No document can be
//! named so (top-level keys may neither start with `__state__:` nor hold
//! braces), so neither another document's key nor another program's key can
//! pass for one of `robot`'s hashes, and `robot`'s binary values never land
//! on a key another program uses.
//!
//! **One slot per document.** Redis Cluster hashes only what stands between
//! the first `{` and the next `}`, so `robot` and every
//! `__state__:{robot}…` hash to the same slot: a document, its binary
//! values and its version (a field of the document's own hash) are always
//! written together by one script, on one node.
//!
//! **The layout has a version.** The store records [`LAYOUT_VERSION`] at
//! [`LAYOUT_KEY`] the first time it is used on a server, and refuses a
//! server that records another one, or that holds the unversioned layout of
//! earlier releases (binary values at their path's key and one global
//! version counter, [`LEGACY_CLOCK_KEY`]), rather than misread it.

/// The prefix of every key and channel of the shared state's own.
/// Top-level keys of documents may not start with it.
pub const STATE_PREFIX: &str = "__state__:";

/// The version of the layout this build reads and writes.
pub const LAYOUT_VERSION: u32 = 1;

/// Where a server records the layout its shared state is kept in.
pub const LAYOUT_KEY: &str = "__state__:layout";

/// The global version counter of the unversioned layout of earlier releases;
/// finding it (and no [`LAYOUT_KEY`]) means the server holds that layout.
pub const LEGACY_CLOCK_KEY: &str = "__state__:clock";

/// The infix between a queue's name and the random part of its reply
/// queues, fixed by the protocol.
const REPLY_INFIX: &str = ":rpc:";

/// What every reply queue of `queue` starts with: `<queue>:rpc:`.
pub fn reply_prefix(queue: &str) -> String {
    format!("{queue}{REPLY_INFIX}")
}

/// A reply queue of `queue`: `<queue>:rpc:{<what queue hashes>}<random>`.
/// The hash tag keeps it in the queue's cluster slot, so an at-least-once
/// server releases a request and pushes its reply in one script. (Peers
/// name theirs `<queue>:rpc:<random>`, which servers also take.)
pub fn reply_queue(queue: &str, random: &str) -> String {
    // Every call names one: built in one allocation.
    let hashed = hashed_part(queue);
    let mut name = String::with_capacity(queue.len() + REPLY_INFIX.len() + hashed.len() + 2 + random.len());
    for part in [queue, REPLY_INFIX, "{", hashed, "}", random] {
        name.push_str(part);
    }
    name
}

/// The pub/sub channel on which callers of `queue` announce the calls they
/// gave up (each message is the call's reply queue), so that a server
/// running one can stop it. Channels are not keys: this name cannot clash
/// with a reply queue.
pub fn cancel_channel(queue: &str) -> String {
    format!("{queue}{REPLY_INFIX}cancel")
}

/// The prefix of the keys servers keep about their queues and themselves.
pub const RPC_PREFIX: &str = "__rpc__:";

/// What Redis Cluster hashes of `key` to find its slot: the part between
/// the first `{` and the next `}` when that is not empty, else the whole
/// key.
pub fn hashed_part(key: &str) -> &str {
    if let Some(open) = key.find('{')
        && let Some(len) = key[open + 1..].find('}')
        && len > 0
    {
        return &key[open + 1..open + 1 + len];
    }
    key
}

/// `__rpc__:{<what queue hashes>}:<kind>:<queue>`: the servers' keys of
/// `queue` all hash to the queue's own slot, so that one script can move a
/// request between the queue and a server's held list. (A queue whose name
/// holds a `}` but no hash tag is the exception: its keys' slot differs.)
fn queue_key(queue: &str, kind: &str) -> String {
    format!("{RPC_PREFIX}{{{}}}:{kind}:{queue}", hashed_part(queue))
}

/// The registry of `queue`'s servers: a hash with a field per instance,
/// which the reaper reads to find servers that died.
pub fn servers(queue: &str) -> String {
    queue_key(queue, "servers")
}

/// The liveness record of server `instance` of `queue`: a hash that the
/// server rewrites about every second and that expires a few seconds
/// after it stops.
pub fn liveness(queue: &str, instance: &str) -> String {
    format!("{}:{instance}", queue_key(queue, "server"))
}

/// The requests at-least-once server `instance` of `queue` has taken and
/// not yet answered.
pub fn held(queue: &str, instance: &str) -> String {
    format!("{}:{instance}", queue_key(queue, "held"))
}

/// Where at-least-once server `instance` of `queue` takes a request to as
/// it arrives (`BLMOVE`), before the same round trip's script moves it to
/// the held list and counts it.
pub fn taking(queue: &str, instance: &str) -> String {
    format!("{}:{instance}", queue_key(queue, "taking"))
}

/// How often each request of `queue` was delivered without an answer (its
/// server died), by the SHA-1 of its bytes (so that the request itself is
/// never rewritten, and its caller can still withdraw it by its exact
/// bytes). A request delivered once has no field.
pub fn deliveries(queue: &str) -> String {
    queue_key(queue, "deliveries")
}

/// `text` with the glob characters of Redis patterns (`PSUBSCRIBE`,
/// `SCAN MATCH`) escaped, so that a pattern built on a name matches the
/// name literally.
pub fn glob_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// The key of the document `key` (a top-level key, see
/// [`Path`](crate::state::Path)): the key itself, so that any Redis client
/// finds it by its name.
pub fn document(key: &str) -> &str {
    key
}

/// The key of a binary value of document `doc`, at the path whose canonical
/// text after the top-level key is `rest` (`.camera.frame`, `[2]`, or empty
/// for the whole document), with `unique` appended when given.
pub fn binary(doc: &str, rest: &str, unique: Option<&str>) -> String {
    let mut key = binary_prefix(doc);
    key.push_str(rest);
    if let Some(unique) = unique {
        key.push('#');
        key.push_str(unique);
    }
    key
}

/// Where a binary hash of document `doc` is written before its commit
/// renames it into place, within one transaction: `unique` tells apart
/// concurrent commits.
pub fn staged(doc: &str, unique: &str) -> String {
    format!("{}:staged:{unique}", binary_prefix(doc))
}

/// Whether `key` is one of the binary hashes of document `doc`.
pub fn owns(doc: &str, key: &str) -> bool {
    key.strip_prefix(STATE_PREFIX)
        .and_then(|rest| rest.strip_prefix('{'))
        .and_then(|rest| rest.strip_prefix(doc))
        .is_some_and(|rest| rest.starts_with('}'))
}

fn binary_prefix(doc: &str) -> String {
    format!("{STATE_PREFIX}{{{doc}}}")
}

/// The pub/sub channel of the updates published at `path` (its canonical
/// text).
pub fn update_channel(path: &str) -> String {
    format!("{STATE_PREFIX}{path}")
}

/// The names of REEM's layout (see
/// [`Layout::Reem`](crate::state::Layout::Reem)): a document `K` is the
/// RedisJSON document `K`, its metadata `K&&&&metadata`, and each numpy
/// array the hash `K<path>` (`robot.camera.frame`).
pub mod reem {
    /// The key of `key`'s metadata document.
    pub fn metadata_key(key: &str) -> String {
        format!("{key}&&&&metadata")
    }

    /// The key of the array at `path` (REEM's `.a.b`) of document `key`.
    pub fn array_key(key: &str, path: &str) -> String {
        format!("{key}{path}")
    }

    /// Whether `hash` is the key of one of document `key`'s arrays.
    pub fn owns(key: &str, hash: &str) -> bool {
        hash.strip_prefix(key).is_some_and(|rest| rest.starts_with('.'))
    }

    /// The channel REEM publishes a change at `path` (the store's path text,
    /// `robot.pose.x`) on: `__pubspace@0__:robot.pose.x`.
    pub fn publish_channel(path: &str) -> String {
        format!("{PUBLISH_PREFIX}{path}")
    }

    /// What every channel of REEM's notifications starts with.
    pub const PUBLISH_PREFIX: &str = "__pubspace@0__:";

    /// The channel on which REEM's writers learn that `key`'s metadata changed.
    pub fn metadata_channel(key: &str) -> String {
        format!("__keyspace@0__:{}", metadata_key(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_owns_exactly_the_binary_keys_made_for_it() {
        let key = binary("robot", ".camera.frame", None);
        assert_eq!(key, "__state__:{robot}.camera.frame");
        assert!(owns("robot", &key));
        assert!(owns("robot", &binary("robot", "", Some("ab12"))));
        for other in ["robot2", "robo", "rob", "ro"] {
            assert!(!owns(other, &key), "{other}");
        }
        for foreign in [
            "robot",
            "robot.camera.frame",
            "robot#backup",
            "__state__:robot.x",
            "__state__:{robot",
        ] {
            assert!(!owns("robot", foreign), "{foreign}");
        }
    }

    fn hashed_part(key: &str) -> &str {
        super::hashed_part(key)
    }

    #[test]
    fn a_document_and_its_binary_values_share_a_cluster_slot() {
        for rest in [".camera.frame", "[2]", "", "[\"x}y\"]"] {
            assert_eq!(hashed_part(&binary("robot", rest, None)), "robot");
            assert_eq!(hashed_part(&binary("robot", rest, Some("ab12"))), "robot");
        }
        assert_eq!(hashed_part(document("robot")), "robot");
    }

    #[test]
    fn a_queue_and_its_servers_keys_share_a_cluster_slot() {
        for queue in ["calc", "{robots}.arm", "a:b"] {
            let slot = hashed_part(queue);
            for key in [
                servers(queue),
                liveness(queue, "i1"),
                held(queue, "i1"),
                taking(queue, "i1"),
                deliveries(queue),
            ] {
                assert_eq!(hashed_part(&key), slot, "{key}");
                assert!(!key.starts_with(&reply_prefix(queue)), "{key} is no reply queue");
            }
            assert_eq!(
                hashed_part(&reply_queue(queue, "X7")),
                slot,
                "a reply queue shares its queue's slot"
            );
        }
        assert_eq!(held("calc", "i1"), "__rpc__:{calc}:held:calc:i1");
    }

    #[test]
    fn escaped_names_match_only_themselves_as_patterns() {
        assert_eq!(glob_escape("calc:rpc:"), "calc:rpc:");
        assert_eq!(glob_escape(r"a*b?c[d]\e"), r"a\*b\?c\[d\]\\e");
    }

    #[test]
    fn names_follow_the_protocol() {
        assert_eq!(reply_queue("calc", "X7Y2US0A"), "calc:rpc:{calc}X7Y2US0A");
        assert_eq!(reply_queue("{robot}.arm", "X7"), "{robot}.arm:rpc:{robot}X7");
        assert_eq!(update_channel("robot.arm"), "__state__:robot.arm");
        assert_eq!(document("robot"), "robot");
    }
}
