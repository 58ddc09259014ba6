//! The Redis server's clock, read through a learned offset.
//!
//! Deadlines travel between hosts whose clocks disagree; they agree on the
//! Redis server's. Asking `TIME` on every call would cost a round trip, so
//! the offset between it and the local clock is learned once, from the
//! midpoint of the `TIME` round trip, and refreshed in the background when
//! it is older than [`REFRESH_AFTER`]. A refresh that fails keeps the old
//! offset: clocks drift by milliseconds a day, not a minute.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::map_error;
use super::shared::Shared;
use crate::Result;

/// How old a learned offset may get before it is learned again.
const REFRESH_AFTER: Duration = Duration::from_secs(60);

/// The offset of the Redis server's clock to ours.
#[derive(Debug, Default)]
pub(super) struct Clock {
    learned: Mutex<Option<Learned>>,
    refreshing: AtomicBool,
}

#[derive(Debug, Clone, Copy)]
struct Learned {
    /// Redis time minus local time, in microseconds.
    offset_us: i64,
    at: Instant,
}

impl Clock {
    /// The time since the Unix epoch of the server that owns `slot` (the
    /// one server, the master, or the cluster node).
    pub(super) async fn now(self: &Arc<Self>, manager: &Shared, slot: u16) -> Result<Duration> {
        match self.known(manager, slot) {
            Some(now) => Ok(now),
            None => {
                let offset_us = self.learn(manager, slot).await?;
                Ok(shift(local_now_us(), offset_us))
            }
        }
    }

    /// The same time, once the offset is known (`None` before): read
    /// without waiting, and refreshed in the background when old.
    pub(super) fn known(self: &Arc<Self>, manager: &Shared, slot: u16) -> Option<Duration> {
        let learned = (*self.learned.lock().unwrap_or_else(PoisonError::into_inner))?;
        if learned.at.elapsed() > REFRESH_AFTER && !self.refreshing.swap(true, Ordering::SeqCst) {
            let (clock, manager) = (Arc::clone(self), manager.clone());
            tokio::spawn(async move {
                if let Err(error) = clock.learn(&manager, slot).await {
                    tracing::debug!(%error, "cannot refresh the Redis clock offset");
                }
                clock.refreshing.store(false, Ordering::SeqCst);
            });
        }
        Some(shift(local_now_us(), learned.offset_us))
    }

    /// Asks `TIME` and records the offset; returns it.
    async fn learn(&self, manager: &Shared, slot: u16) -> Result<i64> {
        let before = local_now_us();
        let time = manager.on_slot(&redis::cmd("TIME"), slot).await.map_err(map_error)?;
        let (seconds, micros): (i64, i64) =
            redis::from_redis_value(time).map_err(|e| crate::Error::Command { source: e.into() })?;
        let after = local_now_us();
        let redis_us = seconds.saturating_mul(1_000_000).saturating_add(micros);
        let midpoint = before / 2 + after / 2;
        let offset_us = redis_us.saturating_sub(midpoint);
        *self.learned.lock().unwrap_or_else(PoisonError::into_inner) = Some(Learned {
            offset_us,
            at: Instant::now(),
        });
        Ok(offset_us)
    }
}

fn local_now_us() -> i64 {
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    i64::try_from(since_epoch.as_micros()).unwrap_or(i64::MAX)
}

fn shift(local_us: i64, offset_us: i64) -> Duration {
    Duration::from_micros(local_us.saturating_add(offset_us).max(0).unsigned_abs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_offset_shifts_the_local_time_and_never_goes_before_the_epoch() {
        assert_eq!(shift(5_000_000, -2_000_000), Duration::from_secs(3));
        assert_eq!(shift(1_000, -5_000), Duration::ZERO);
    }
}
