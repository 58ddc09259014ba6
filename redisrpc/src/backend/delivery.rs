//! The primitives of at-least-once delivery: requests that move from a
//! queue to a server's held list in one atomic step, leave it only with
//! their reply, and go back to the queue when their server died.
//!
//! Each request's deliveries are counted beside it, in a hash keyed by the
//! SHA-1 of its bytes, never by rewriting it: a caller withdraws its
//! request with `LREM` of the exact bytes it pushed, and must still find
//! them. Only deliveries that ended unanswered are counted, as a dead
//! server's requests go back to the queue; a take reads the count, and a
//! release clears it. So a first delivery, by far the most common, costs
//! nothing to count and leaves nothing to clear.

use std::time::Duration;

use crate::layout;

/// The keys of one server's held requests (see [`layout`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldKeys {
    /// The service queue.
    pub queue: String,
    /// The server's held list.
    pub held: String,
    /// Where the server's blocking take puts a request first (see
    /// [`layout::taking`]).
    pub taking: String,
    /// The queue's delivery counts.
    pub deliveries: String,
    /// The server's liveness record.
    pub liveness: String,
    /// The queue's registry of servers.
    pub servers: String,
    /// The server's instance id, its field in the registry.
    pub instance: String,
}

impl HeldKeys {
    /// The keys of server `instance` of `queue`.
    pub fn new(queue: &str, instance: &str) -> HeldKeys {
        HeldKeys {
            queue: queue.to_owned(),
            held: layout::held(queue, instance),
            taking: layout::taking(queue, instance),
            deliveries: layout::deliveries(queue),
            liveness: layout::liveness(queue, instance),
            servers: layout::servers(queue),
            instance: instance.to_owned(),
        }
    }
}

/// A request taken onto a held list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Taken {
    /// The request's bytes, as pushed.
    pub request: Vec<u8>,
    /// How many times it has been delivered, this one included (1 the
    /// first time).
    pub delivery: u64,
}

impl Taken {
    /// The field of its count in the delivery counts, if it has one: only
    /// a request delivered before does.
    pub(crate) fn counted_as(&self) -> Option<String> {
        (self.delivery > 1).then(|| digest(&self.request))
    }
}

/// A reply pushed as its request is released.
#[derive(Debug, Clone, Copy)]
pub struct HeldReply<'a> {
    /// The reply queue.
    pub queue: &'a str,
    /// The reply.
    pub reply: &'a [u8],
    /// The reply queue's expiry.
    pub ttl: Duration,
}

/// The field of a request in the delivery counts: the SHA-1 of its bytes,
/// in hex, as Redis's `redis.sha1hex` writes it.
pub(crate) fn digest(request: &[u8]) -> String {
    sha1_smol::Sha1::from(request).digest().to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn digests_are_sha1_in_lower_case_hex() {
        assert_eq!(super::digest(b"abc"), "a9993e364706816aba3e25717850c26c9cd0d89d");
    }
}
