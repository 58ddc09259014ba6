//! Which servers are alive: every server keeps a liveness record in Redis,
//! and at-least-once servers return the held requests of servers whose
//! record expired (the reaper).
//!
//! A record is a hash (see [`layout::liveness`](crate::layout::liveness))
//! rewritten every [`BEAT_EVERY`] and expiring [`RECORD_TTL`] after the last
//! beat, beside an entry in the queue's registry
//! ([`layout::servers`](crate::layout::servers)). A server whose entry
//! remains after its record expired is dead. The `redisrpc` command lists
//! services from the same records.
//!
//! A server cut off from Redis for longer than [`RECORD_TTL`] is taken for
//! dead too: its requests then run elsewhere, and may run twice.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::metrics::Metrics;
use super::{Delivery, ServerHandle, ServerStats};
use crate::backend::{HeldKeys, SharedBackend};

/// How often a server rewrites its record.
pub(super) const BEAT_EVERY: Duration = Duration::from_secs(1);

/// How long a record outlives its last beat.
pub(super) const RECORD_TTL: Duration = Duration::from_secs(3);

/// How often an at-least-once server looks for dead servers.
const REAP_EVERY: Duration = Duration::from_secs(1);

/// How long leaving may take when Redis does not answer.
const LEAVE_WITHIN: Duration = Duration::from_secs(1);

/// What a server says about itself.
pub(super) struct Record {
    keys: HeldKeys,
    delivery: Delivery,
    concurrency: usize,
    host: String,
    pid: u32,
    started_ms: u128,
}

impl Record {
    pub(super) fn new(keys: &HeldKeys, delivery: Delivery, concurrency: usize) -> Record {
        Record {
            keys: keys.clone(),
            delivery,
            concurrency,
            host: host_name(),
            pid: std::process::id(),
            started_ms: unix_ms(),
        }
    }

    /// The record's fields, as text.
    fn fields(&self, stats: ServerStats) -> Vec<(&'static str, String)> {
        vec![
            ("queue", self.keys.queue.clone()),
            ("instance", self.keys.instance.clone()),
            ("host", self.host.clone()),
            ("pid", self.pid.to_string()),
            ("started_ms", self.started_ms.to_string()),
            ("version", env!("CARGO_PKG_VERSION").to_owned()),
            ("delivery", self.delivery.name().to_owned()),
            ("concurrency", self.concurrency.to_string()),
            ("in_flight", stats.in_flight.to_string()),
            ("served", stats.served.to_string()),
            ("failed", stats.failed.to_string()),
            ("malformed", stats.malformed.to_string()),
            ("refused", stats.refused.to_string()),
            ("expired", stats.expired.to_string()),
            ("cancelled", stats.cancelled.to_string()),
            ("redelivered", stats.redelivered.to_string()),
            ("poisoned", stats.poisoned.to_string()),
        ]
    }
}

/// Rewrites the record every [`BEAT_EVERY`], until aborted.
pub(super) async fn beat(backend: SharedBackend, record: Record, handle: ServerHandle, metrics: Arc<Metrics>) {
    let mut failing = false;
    loop {
        let mut fields = record.fields(handle.stats());
        fields.push(("methods", metrics.to_json()));
        let fields: Vec<(&str, &[u8])> = fields.iter().map(|(name, value)| (*name, value.as_bytes())).collect();
        // The record first: a registry entry without one reads as dead.
        let written = match backend.hash_replace(&record.keys.liveness, &fields, RECORD_TTL).await {
            Ok(()) => backend.hash_set(&record.keys.servers, &record.keys.instance, b"").await,
            Err(error) => Err(error),
        };
        match written {
            Ok(()) => failing = false,
            Err(error) if !failing => {
                failing = true;
                tracing::warn!(queue = %record.keys.queue, %error, "cannot write this server's liveness record");
            }
            Err(_) => {}
        }
        tokio::time::sleep(BEAT_EVERY).await;
    }
}

/// Returns the held requests of the queue's dead servers to the queue,
/// every [`REAP_EVERY`], until aborted. Several reapers may run at once:
/// each return is one atomic step that first checks the record is gone.
pub(super) async fn reap(backend: SharedBackend, own: HeldKeys) {
    loop {
        tokio::time::sleep(REAP_EVERY).await;
        let Ok(servers) = backend.hash_get_all(&own.servers).await else {
            continue;
        };
        for (instance, _) in servers {
            if instance == own.instance {
                continue;
            }
            let dead = HeldKeys::new(&own.queue, &instance);
            match backend.requeue_held(&dead, true).await {
                Ok(Some(0)) | Ok(None) => {}
                Ok(Some(returned)) => {
                    tracing::warn!(queue = %own.queue, %instance, returned, "returned the requests of a server that died");
                }
                Err(error) => tracing::debug!(queue = %own.queue, %error, "cannot reap"),
            }
        }
    }
}

/// Leaves cleanly: anything still held goes back to the head of the queue,
/// the registry forgets the server, and its record is deleted.
pub(super) async fn leave(backend: &SharedBackend, keys: &HeldKeys) {
    let left = async {
        backend.requeue_held(keys, false).await?;
        backend.del(&keys.liveness).await
    };
    match tokio::time::timeout(LEAVE_WITHIN, left).await {
        Ok(Ok(_)) => {}
        Ok(Err(error)) => tracing::warn!(queue = %keys.queue, %error, "cannot remove this server's records"),
        Err(_) => {
            tracing::warn!(queue = %keys.queue, "Redis did not answer; this server's records expire by themselves")
        }
    }
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}

fn unix_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis()
}
