//! Warnings a client can provoke, at most one a second per kind.
//!
//! A server logs each malformed or refused message, and each request that
//! expired before it could start. A client pushing 200,000 bad messages
//! must not write 31 MB of log: the counters ([`ServerStats`](crate::ServerStats))
//! keep the exact numbers, and the log keeps one line a second saying how
//! many were left out since the last.

use std::sync::Mutex;
use std::sync::PoisonError;
use std::time::{Duration, Instant};

/// How often one kind of warning is written.
const EVERY: Duration = Duration::from_secs(1);

/// One kind of warning's limit.
#[derive(Debug, Default)]
pub(crate) struct Throttle {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    last: Option<Instant>,
    suppressed: u64,
}

impl Throttle {
    /// Whether to log now; if so, how many were left out since the last one.
    pub(crate) fn admit(&self) -> Option<u64> {
        self.admit_at(Instant::now())
    }

    fn admit_at(&self, now: Instant) -> Option<u64> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        match state.last {
            Some(last) if now.duration_since(last) < EVERY => {
                state.suppressed += 1;
                None
            }
            _ => {
                state.last = Some(now);
                Some(std::mem::take(&mut state.suppressed))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_warning_a_second_passes_and_counts_the_rest() {
        let throttle = Throttle::default();
        let start = Instant::now();
        assert_eq!(throttle.admit_at(start), Some(0));
        for i in 1..=1000 {
            assert_eq!(throttle.admit_at(start + Duration::from_micros(i)), None);
        }
        assert_eq!(throttle.admit_at(start + EVERY), Some(1000));
        assert_eq!(throttle.admit_at(start + EVERY + Duration::from_millis(1)), None);
    }
}
