//! A server's replies, pushed in batches.
//!
//! A call that has its answer hands the reply over and is done. If no push
//! is under way, that call pushes the reply itself, together with every
//! reply handed over meanwhile, and goes on pushing what arrives while it
//! waits for the store, until nothing is left (group commit). Under load
//! one push carries every reply that ended during the previous push's round
//! trip: one write and, on Redis, one script run for many calls
//! ([`Backend::rpush_expire_each`](crate::backend::Backend::rpush_expire_each)).
//! A lone call pushes its reply at once, as before. The embedded backend
//! answers in place, so there each reply is pushed as it comes, and a call
//! that finishes at its first poll costs the serving loop no task at all.
//!
//! A push that takes far longer than a round trip (it went to a master
//! that died, and waits on its connection) does not hold up the replies
//! after it: after [`STALLED_AFTER`] the next reply pushes again itself,
//! through the connection as it is by then.
//!
//! A push that fails because the connection broke is tried again, with
//! pauses (see [`REPLY_ATTEMPTS`]): the caller is waiting for it, and a
//! reply pushed twice is harmless (the caller takes one; the other expires
//! with its queue).

use std::sync::atomic::Ordering;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::request::Context;
use crate::backend::{HeldReply, Taken};
use crate::backoff::Backoff;
use crate::protocol::{JsonText, Reply};
use crate::service::CallError;

/// How often a reply push is tried when the connection keeps breaking,
/// pausing by [`REPLY_BACKOFF`] in between: 20, 80, 320 ms.
const REPLY_ATTEMPTS: u32 = 4;

const REPLY_BACKOFF: Backoff = Backoff::new(Duration::from_millis(20), Duration::from_millis(320)).with_factor(4);

/// How long a push under way holds up the replies handed over after it,
/// at most; far longer than a round trip.
pub(super) const STALLED_AFTER: Duration = Duration::from_millis(50);

/// A reply on its way to its queue.
pub(super) struct Outgoing {
    response_queue: String,
    reply: Vec<u8>,
    /// At least once: the request the reply releases (empty otherwise).
    taken: Taken,
    /// Whether the reply is a return value (else an exception).
    returned: bool,
}

/// The replies handed over and not yet pushed.
#[derive(Default)]
pub(super) struct Replies {
    waiting: Mutex<Waiting>,
}

#[derive(Default)]
struct Waiting {
    replies: Vec<Outgoing>,
    /// Since when the batch under way has been on its way, if one is: the
    /// call pushing it takes what is handed over meanwhile.
    pushing: Option<Instant>,
}

impl Replies {
    /// Hands `reply` over; true when the caller is to push it (and what
    /// comes meanwhile): no push is under way, or the one under way has
    /// stalled (see [`STALLED_AFTER`]).
    fn hand_over(&self, reply: Outgoing) -> bool {
        let mut waiting = self.waiting();
        waiting.replies.push(reply);
        match waiting.pushing {
            Some(since) if since.elapsed() < STALLED_AFTER => false,
            _ => {
                waiting.pushing = Some(Instant::now());
                true
            }
        }
    }

    /// Every reply handed over since the last batch; `None` when there is
    /// none, and then the push is over.
    fn next_batch(&self) -> Option<Vec<Outgoing>> {
        let mut waiting = self.waiting();
        if waiting.replies.is_empty() {
            waiting.pushing = None;
            return None;
        }
        waiting.pushing = Some(Instant::now());
        Some(std::mem::take(&mut waiting.replies))
    }

    fn waiting(&self) -> std::sync::MutexGuard<'_, Waiting> {
        // Every critical section is a push or a swap: nothing is left half done.
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Context {
    /// Answers a call on `response_queue` with `outcome`; in at-least-once
    /// mode the push releases `taken`.
    pub(super) async fn reply(&self, response_queue: String, outcome: Result<JsonText, CallError>, taken: Taken) {
        let reply = match &outcome {
            Ok(value) => Reply::encode_json_return(value),
            Err(error) => {
                tracing::debug!(queue = %self.queue, %error, "call failed");
                Reply::encode_exception(error.message())
            }
        };
        let outgoing = Outgoing {
            response_queue,
            reply,
            taken: if self.held.is_some() { taken } else { Taken::default() },
            returned: outcome.is_ok(),
        };
        if self.backend.answers_in_place() {
            // Nothing to wait for, so nothing to gather.
            return self.push(vec![outgoing]).await;
        }
        if self.replies.hand_over(outgoing) {
            while let Some(batch) = self.replies.next_batch() {
                self.push(batch).await;
            }
        }
    }

    /// Pushes a batch of replies, trying again those whose push failed
    /// because the connection broke, and counts each one's fate.
    async fn push(&self, mut batch: Vec<Outgoing>) {
        let mut pause = REPLY_BACKOFF;
        for attempts_left in (0..REPLY_ATTEMPTS).rev() {
            let outcomes = match (&self.held, &batch[..]) {
                // A lone reply (always, on the embedded backend) goes by
                // itself, without a batch's lists.
                (None, [reply]) => vec![
                    self.backend
                        .rpush_expire(&reply.response_queue, &reply.reply, self.reply_ttl)
                        .await,
                ],
                (None, _) => {
                    let pushes: Vec<(&str, &[u8])> = batch
                        .iter()
                        .map(|reply| (reply.response_queue.as_str(), reply.reply.as_slice()))
                        .collect();
                    self.backend.rpush_expire_each(&pushes, self.reply_ttl).await
                }
                (Some(keys), _) => {
                    let released: Vec<(&Taken, HeldReply<'_>)> = batch
                        .iter()
                        .map(|reply| {
                            let held = HeldReply {
                                queue: &reply.response_queue,
                                reply: &reply.reply,
                                ttl: self.reply_ttl,
                            };
                            (&reply.taken, held)
                        })
                        .collect();
                    self.backend.release_held_each(keys, &released).await
                }
            };
            let mut again = Vec::new();
            for (reply, pushed) in batch.into_iter().zip(outcomes) {
                match pushed {
                    Ok(()) => {
                        let counter = if reply.returned {
                            &self.stats.served
                        } else {
                            &self.stats.failed
                        };
                        counter.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(error) if error.is_connection() && attempts_left > 0 => {
                        tracing::warn!(queue = %self.queue, response_queue = %reply.response_queue, %error, "retrying a reply push");
                        again.push(reply);
                    }
                    Err(error) => {
                        self.stats.reply_errors.fetch_add(1, Ordering::Relaxed);
                        tracing::error!(queue = %self.queue, response_queue = %reply.response_queue, %error, "cannot push the reply");
                        if !error.is_connection() {
                            // Refused for good (the key is no list): answered
                            // as well as it can be.
                            self.release_unanswered(&reply.taken).await;
                        }
                    }
                }
            }
            if again.is_empty() {
                return;
            }
            tokio::time::sleep(pause.next_pause()).await;
            batch = again;
        }
    }

    /// In at-least-once mode, releases a request nobody is to be answered
    /// for, so that it is not run again.
    pub(super) async fn release_unanswered(&self, taken: &Taken) {
        let Some(keys) = &self.held else { return };
        let mut pause = REPLY_BACKOFF;
        for attempts_left in (0..REPLY_ATTEMPTS).rev() {
            match self.backend.release_held(keys, taken, None).await {
                Err(error) if error.is_connection() && attempts_left > 0 => {
                    tokio::time::sleep(pause.next_pause()).await;
                }
                Err(error) => {
                    tracing::error!(queue = %self.queue, %error, "cannot release a request; it may run again");
                    return;
                }
                Ok(()) => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outgoing(queue: &str) -> Outgoing {
        Outgoing {
            response_queue: queue.to_owned(),
            reply: Vec::new(),
            taken: Taken::default(),
            returned: true,
        }
    }

    fn queues(batch: Option<Vec<Outgoing>>) -> Vec<String> {
        batch
            .unwrap_or_default()
            .into_iter()
            .map(|reply| reply.response_queue)
            .collect()
    }

    #[test]
    fn the_first_reply_pushes_and_takes_those_handed_over_meanwhile() {
        let replies = Replies::default();
        assert!(replies.hand_over(outgoing("a")), "no push under way: this one pushes");
        assert_eq!(queues(replies.next_batch()), ["a"]);
        // While "a" is on its way, others are handed over and left to it.
        assert!(!replies.hand_over(outgoing("b")));
        assert!(!replies.hand_over(outgoing("c")));
        assert_eq!(queues(replies.next_batch()), ["b", "c"]);
        assert!(replies.next_batch().is_none(), "nothing left: the push is over");
        assert!(replies.hand_over(outgoing("d")), "the next reply pushes again");
    }

    #[test]
    fn a_stalled_push_holds_up_the_replies_after_it_no_longer() {
        let replies = Replies::default();
        assert!(replies.hand_over(outgoing("a")));
        assert_eq!(queues(replies.next_batch()), ["a"]);
        // "a" went to a master that died and waits on its connection.
        std::thread::sleep(STALLED_AFTER + Duration::from_millis(10));
        assert!(replies.hand_over(outgoing("b")), "the next reply pushes itself");
        assert!(!replies.hand_over(outgoing("c")), "and holds up those after it");
        assert_eq!(queues(replies.next_batch()), ["b", "c"]);
    }
}
