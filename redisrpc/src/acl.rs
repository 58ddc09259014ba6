//! Least-privilege Redis ACL rules for each part a process plays: the
//! commands, keys and channels its connections use, and nothing else.
//!
//! A robot's Redis is often reachable from its whole network. Giving every
//! process the default user lets any of them read the state, take other
//! services' requests or answer other callers' calls. [`rules`] gives the
//! rules of an `ACL SETUSER` line for a [`Role`], built from the layout's
//! own names ([`crate::layout`]), so they follow it when it changes.
//!
//! How the rules keep roles apart (Redis ≥ 7, whose selectors give
//! different commands to different key patterns):
//!
//! - A **client** of `calc` may push and withdraw requests (`%W~calc`: it
//!   cannot read the queue), publish cancel notices, and only pop or expire
//!   reply queues (`calc:rpc:*`): it cannot push into one, so it cannot
//!   forge another caller's reply. What ACLs cannot express is "only its
//!   own" reply queue: any client of `calc` may pop a reply queue whose
//!   name it knows, and it has no way to learn one (a random UUID), since
//!   it cannot read the queue, list keys or hear cancel notices.
//! - A **server** may only push and expire reply queues, never read them;
//!   its scripts declare them, which Redis allows because every command a
//!   script runs is checked again.
//! - **State readers** read one document (and its binary values) and hear
//!   its updates; **writers** also commit to it. Pattern subscriptions
//!   must be granted literally: the mirrors' patterns of the document, and
//!   of each extra path given, are listed.
//! - The **operator** (the `redisrpc` command) reads everything, calls any
//!   service and writes any document: its write rules cover every key.
//!
//! Every role may `PING`, and gets what clusters and Sentinel need
//! (`CLUSTER SLOTS`/`NODES`, `ASKING`, `ROLE`). Servers may `CLIENT ID` and
//! `CLIENT UNBLOCK` (both or neither: with neither, blocking pops wait in
//! 250 ms slices); other roles may not, since `CLIENT UNBLOCK` reaches any
//! connection. Add `+select` for a database other than 0.

use crate::layout;
use crate::state::Path;

/// The part a process plays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// A server of this queue, in either delivery mode.
    Server(String),
    /// A client of this queue.
    Client(String),
    /// Reads this document, and mirrors it and the extra paths given.
    StateReader {
        /// The document (a top-level key: `robot`).
        document: String,
        /// Paths inside it that are mirrored on their own (`robot.arm`).
        mirrors: Vec<String>,
    },
    /// Reads and writes this document.
    StateWriter {
        /// The document (a top-level key: `robot`).
        document: String,
        /// Paths inside it that are mirrored on their own (`robot.arm`).
        mirrors: Vec<String>,
    },
    /// What the `redisrpc` command needs: everything, read and write.
    Operator,
}

/// What every role's connections send: `PING`, and what a cluster's and
/// Sentinel's clients ask.
const EVERY_ROLE: &[&str] = &["-@all", "+ping", "+role", "+asking", "+cluster|slots", "+cluster|nodes"];

/// The rules of `role`, as `ACL SETUSER` takes them after the user's name
/// and password. Fails for a document name that is not a top-level key,
/// or a mirrored path that is not in the document.
pub fn rules(role: &Role) -> crate::Result<Vec<String>> {
    let mut rules: Vec<String> = EVERY_ROLE.iter().map(|rule| (*rule).to_owned()).collect();
    let mut add = |more: &[&str]| rules.extend(more.iter().map(|rule| (*rule).to_owned()));
    match role {
        Role::Server(queue) => {
            let names = QueueNames::of(queue);
            add(&[
                "+client|id",
                "+client|unblock",
                "+time",
                "+blpop",
                "+blmpop",
                "+blmove",
                "+lpush",
                "+del",
                "+lmove",
                // A take moves a batch of requests from the queue at once.
                "+lrange",
                "+ltrim",
                "+rpush",
                // Delivery counts: read by a take, counted by a requeue.
                "+hget",
                "+hincrby",
                "+lrem",
                "+hdel",
                "+hset",
                "+hmset",
                "+hgetall",
                "+exists",
                "+pexpire",
                "+multi",
                "+exec",
                "+eval",
                "+evalsha",
                "+script|load",
                "+subscribe",
            ]);
            let QueueNames {
                queue,
                replies,
                cancel,
                servers,
                liveness,
                held,
                taking,
                deliveries,
            } = names;
            add(&[
                &format!("~{queue}"),
                &format!("~{servers}"),
                &format!("~{liveness}"),
                &format!("~{held}"),
                &format!("~{taking}"),
                &format!("~{deliveries}"),
                &format!("&{cancel}"),
                // Replies: pushed and expired, never read.
                &format!("(%W~{replies} +rpush +pexpire)"),
                // The scripts that push a reply declare its queue.
                &format!("(~{replies} ~{held} ~{deliveries} +evalsha)"),
            ]);
        }
        Role::Client(queue) => {
            let QueueNames {
                queue, replies, cancel, ..
            } = QueueNames::of(queue);
            add(&[
                "+time",
                "+rpush",
                "+lpush",
                "+lrem",
                &format!("%W~{queue}"),
                "+publish",
                &format!("&{cancel}"),
                &format!("(~{replies} +blpop +lpop +pexpire)"),
            ]);
        }
        Role::StateReader { document, mirrors } | Role::StateWriter { document, mirrors } => {
            let writes = matches!(role, Role::StateWriter { .. });
            let names = DocumentNames::of(document, mirrors)?;
            add(&[
                "+get",
                "+exists",
                &format!("%R~{}", layout::glob_escape(layout::LAYOUT_KEY)),
                &format!("%R~{}", layout::glob_escape(layout::LEGACY_CLOCK_KEY)),
                "+type",
                "+hmget",
                "+hgetall",
                "+script|load",
                "+subscribe",
                "+psubscribe",
            ]);
            let channels: Vec<String> = names.channels.iter().map(|c| format!("&{c}")).collect();
            add(&channels.iter().map(String::as_str).collect::<Vec<_>>());
            if writes {
                add(&[
                    "+hset",
                    "+del",
                    "+time",
                    "+evalsha",
                    "+publish",
                    // Binary values are staged beside the commit script,
                    // which renames them into place (see `layout::staged`).
                    "+multi",
                    "+exec",
                    "+pexpire",
                    "+rename",
                    "+persist",
                    &format!("~{}", names.document),
                    &format!("~{}", names.binaries),
                    // Only the first writer of a fresh server records the layout.
                    &format!("(~{} +set)", layout::glob_escape(layout::LAYOUT_KEY)),
                ]);
            } else {
                add(&[
                    &format!("%R~{}", names.document),
                    &format!("%R~{}", names.binaries),
                    // The read script declares the document; it runs no write.
                    &format!("(~{} +evalsha)", names.document),
                ]);
            }
        }
        Role::Operator => add(&[
            "+time",
            "+script|load",
            "+scan",
            "+llen",
            "+lindex",
            "+hkeys",
            "+hgetall",
            "+hget",
            "+hexists",
            "+exists",
            "+type",
            "+hmget",
            "+get",
            "%R~*",
            "+subscribe",
            "+psubscribe",
            "allchannels",
            "(~* +evalsha)",
            "(%W~* +rpush +lpush +lrem +hset +del +publish)",
            &format!(
                "(~{}* +blpop +lpop +pexpire)",
                layout::glob_escape(&layout::reply_prefix("*"))
            ),
            &format!("(~{} +set)", layout::glob_escape(layout::LAYOUT_KEY)),
        ]),
    }
    Ok(rules)
}

/// The key and channel patterns of one queue.
struct QueueNames {
    queue: String,
    replies: String,
    cancel: String,
    servers: String,
    liveness: String,
    held: String,
    taking: String,
    deliveries: String,
}

impl QueueNames {
    fn of(queue: &str) -> QueueNames {
        let exact = |name: String| layout::glob_escape(&name);
        let any = |prefix: String| format!("{}*", layout::glob_escape(&prefix));
        QueueNames {
            queue: exact(queue.to_owned()),
            replies: any(layout::reply_prefix(queue)),
            cancel: exact(layout::cancel_channel(queue)),
            servers: exact(layout::servers(queue)),
            liveness: any(layout::liveness(queue, "")),
            held: any(layout::held(queue, "")),
            taking: any(layout::taking(queue, "")),
            deliveries: exact(layout::deliveries(queue)),
        }
    }
}

/// The key and channel patterns of one document.
struct DocumentNames {
    document: String,
    binaries: String,
    /// Its update channels, and the patterns its mirrors subscribe to,
    /// exactly as they send them.
    channels: Vec<String>,
}

impl DocumentNames {
    fn of(document: &str, mirrors: &[String]) -> crate::Result<DocumentNames> {
        let root = Path::parse(document)?;
        if !root.segments().is_empty() {
            return Err(crate::Error::InvalidPath {
                path: document.to_owned(),
                reason: "a path inside a document, not a document".to_owned(),
            });
        }
        let key = root.key().to_owned();
        let mut channels = Vec::new();
        let base = layout::glob_escape(&layout::update_channel(&key));
        // Every update of the document is published on a channel under it.
        channels.extend([base.clone(), format!("{base}.*"), format!("{base}\\[*")]);
        for mirrored in mirrors {
            let path = Path::parse(mirrored)?;
            if path.key() != key {
                return Err(crate::Error::InvalidPath {
                    path: mirrored.clone(),
                    reason: format!("not in the document `{document}`"),
                });
            }
            let (_, patterns) = crate::state::mirror_channels(&path);
            channels.extend(patterns);
        }
        channels.dedup();
        Ok(DocumentNames {
            document: layout::glob_escape(layout::document(&key)),
            binaries: format!("{}*", layout::glob_escape(&layout::binary(&key, "", None))),
            channels,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn has(rules: &[String], rule: &str) -> bool {
        rules.iter().any(|r| r == rule)
    }

    #[test]
    fn a_client_pushes_requests_and_only_pops_replies() {
        let rules = rules(&Role::Client("calc".into())).unwrap();
        assert!(has(&rules, "%W~calc"));
        assert!(has(&rules, "(~calc:rpc:* +blpop +lpop +pexpire)"));
        assert!(has(&rules, "&calc:rpc:cancel"));
        assert!(!rules.iter().any(|r| r.contains("client|unblock")));
    }

    #[test]
    fn a_servers_keys_follow_the_layout_and_are_escaped() {
        let rules = rules(&Role::Server("lab*arm".into())).unwrap();
        assert!(has(&rules, r"~lab\*arm"), "{rules:?}");
        assert!(has(&rules, r"~__rpc__:{lab\*arm}:held:lab\*arm:*"), "{rules:?}");
        assert!(has(&rules, r"(%W~lab\*arm:rpc:* +rpush +pexpire)"), "{rules:?}");
    }

    #[test]
    fn readers_get_the_mirrors_patterns_literally() {
        let role = Role::StateReader {
            document: "robot".into(),
            mirrors: vec!["robot.arm".into()],
        };
        let rules = rules(&role).unwrap();
        for channel in [
            "&__state__:robot",
            "&__state__:robot.*",
            r"&__state__:robot\[*",
            "&__state__:robot.arm.*",
            r"&__state__:robot.arm\[*",
        ] {
            assert!(has(&rules, channel), "{channel} in {rules:?}");
        }
        assert!(has(&rules, "%R~robot") && has(&rules, "%R~__state__:{robot}*"));
        assert!(!has(&rules, "+hset"));
        let not_in_it = Role::StateReader {
            document: "robot".into(),
            mirrors: vec!["rover.arm".into()],
        };
        assert!(super::rules(&not_in_it).is_err());
        let not_a_document = Role::StateWriter {
            document: "robot.arm".into(),
            mirrors: vec![],
        };
        assert!(super::rules(&not_a_document).is_err());
    }
}
