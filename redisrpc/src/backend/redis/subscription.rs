//! The shared state's pub/sub on Redis: a connection per subscription, kept
//! by a task that resubscribes by itself after a drop, notices a silent
//! peer with a periodic `PING`, and never buffers without limit for a slow
//! subscriber. Each connection, and each reconnection, goes where the
//! topology says: the one server, the current master, or the next node of
//! a cluster (whose classic pub/sub reaches every node).

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use redis::Value;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, oneshot};

use super::map_error;
use super::topology::Topology;
use crate::backend::{PubSubEvent, Subscription};
use crate::backoff::Backoff;
use crate::{Error, Result};

/// How many pub/sub events may wait for a slow subscriber. The `redis`
/// crate reads the socket into an unbounded queue, so a slow reader never
/// makes Redis push back: when this buffer is full the forwarding task drops
/// the connection itself and reports the gap, as the embedded backend does
/// when a subscriber falls behind by as many.
const EVENT_BUFFER: usize = 4096;

/// Reconnection backoff of a subscription: from the first to the longest.
/// A connection must stay up this long (the longest) before the backoff
/// starts again from the first, so a server that accepts and then drops
/// connections is not retried in a tight loop.
const BACKOFF: Backoff = Backoff::new(Duration::from_millis(20), Duration::from_secs(1));

/// How a subscription's connection is made and watched.
#[derive(Debug, Clone, Copy)]
pub(super) struct Timing {
    /// How long connecting and subscribing may take.
    pub(super) connect_timeout: Duration,
    /// How often the connection is checked with a `PING`.
    pub(super) ping_interval: Duration,
    /// How long a `PING` may wait for its reply before the connection counts
    /// as dropped.
    pub(super) ping_timeout: Duration,
}

/// Subscribes on a pub/sub connection of its own, kept by a task that
/// reconnects and resubscribes until the [`Subscription`] is dropped.
pub(super) async fn subscribe(
    topology: Arc<Topology>,
    timing: Timing,
    channels: &[String],
    patterns: &[String],
) -> Result<Subscription> {
    let (events, receiver) = mpsc::channel(EVENT_BUFFER);
    let (ready, first) = oneshot::channel();
    let listener = Listener {
        topology,
        timing,
        channels: channels.to_vec(),
        patterns: patterns.to_vec(),
        events,
    };
    tokio::spawn(listener.run(ready));
    first.await.map_err(|_| Error::Connection {
        source: "the subscription task ended".into(),
    })??;
    Ok(Box::pin(futures::stream::unfold(receiver, |mut receiver| async move {
        let event = receiver.recv().await?;
        Some((event, receiver))
    })))
}

struct Listener {
    topology: Arc<Topology>,
    timing: Timing,
    channels: Vec<String>,
    patterns: Vec<String>,
    events: mpsc::Sender<PubSubEvent>,
}

/// Why [`Listener::forward`] stopped.
enum Stopped {
    /// The connection dropped, stopped answering, or the subscriber fell
    /// too far behind: reconnect.
    Dropped,
    /// The [`Subscription`] was dropped: stop.
    Unsubscribed,
}

impl Listener {
    /// Connects, reports the first outcome on `ready`, then forwards
    /// messages, reconnecting with backoff whenever the connection drops.
    async fn run(self, ready: oneshot::Sender<Result<()>>) {
        let mut ready = Some(ready);
        let mut backoff = BACKOFF;
        loop {
            match self.connect().await {
                Ok(pubsub) => {
                    match ready.take() {
                        Some(ready) => {
                            let _ = ready.send(Ok(()));
                        }
                        None => {
                            if self.events.send(PubSubEvent::Resubscribed).await.is_err() {
                                return;
                            }
                        }
                    }
                    let connected = Instant::now();
                    if let Stopped::Unsubscribed = self.forward(pubsub).await {
                        return;
                    }
                    tracing::debug!("pub/sub connection lost; resubscribing");
                    if self.events.send(PubSubEvent::Disconnected).await.is_err() {
                        return;
                    }
                    // Only a connection that stayed up a while earns a
                    // quick retry; one dropped at once waits longer each
                    // time, as a failed connect does.
                    if connected.elapsed() >= backoff.longest() {
                        backoff.reset();
                    }
                }
                Err(error) => {
                    if let Some(ready) = ready.take() {
                        let _ = ready.send(Err(error));
                        return;
                    }
                    tracing::debug!("resubscribing failed: {error}");
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(backoff.next_pause()) => {}
                _ = self.events.closed() => return,
            }
        }
    }

    async fn connect(&self) -> Result<redis::aio::PubSub> {
        let connect = async {
            let mut pubsub = self.topology.pubsub_client().get_async_pubsub().await?;
            if !self.channels.is_empty() {
                pubsub.subscribe(&self.channels).await?;
            }
            if !self.patterns.is_empty() {
                pubsub.psubscribe(&self.patterns).await?;
            }
            Ok(pubsub)
        };
        let timeout = self.timing.connect_timeout;
        match tokio::time::timeout(timeout, connect).await {
            Ok(result) => result.map_err(map_error),
            Err(_) => Err(Error::Connection {
                source: format!("subscribing took longer than {timeout:?}").into(),
            }),
        }
    }

    /// Forwards messages until the connection drops or the subscription is
    /// dropped.
    ///
    /// Never waits for the subscriber: the `redis` crate keeps reading the
    /// socket into an unbounded queue whatever we do, so waiting here would
    /// only move the growing backlog there. A full buffer drops the
    /// connection instead, and the subscriber learns of the gap.
    ///
    /// A connection whose peer vanished without closing it (a cut cable, a
    /// crashed host) delivers nothing and reports no error, so a `PING`
    /// every [`Timing::ping_interval`] must be answered within
    /// [`Timing::ping_timeout`]. The `redis` crate's own task reads the
    /// reply, whatever the subscriber's pace, so a slow subscriber is not
    /// mistaken for a dead connection.
    async fn forward(&self, pubsub: redis::aio::PubSub) -> Stopped {
        let (mut sink, mut messages) = pubsub.split();
        let timing = self.timing;
        let heartbeat = async move {
            loop {
                tokio::time::sleep(timing.ping_interval).await;
                match tokio::time::timeout(timing.ping_timeout, sink.ping::<Value>()).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(error)) => {
                        tracing::debug!("pub/sub PING failed: {error}");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!("pub/sub PING unanswered for {:?}", timing.ping_timeout);
                        return;
                    }
                }
            }
        };
        tokio::pin!(heartbeat);
        loop {
            tokio::select! {
                message = messages.next() => {
                    let Some(message) = message else { return Stopped::Dropped };
                    let event = PubSubEvent::Message {
                        channel: message.get_channel_name().to_owned(),
                        payload: message.get_payload_bytes().to_vec(),
                    };
                    match self.events.try_send(event) {
                        Ok(()) => {}
                        Err(TrySendError::Full(_)) => {
                            tracing::warn!(
                                "a subscriber fell {EVENT_BUFFER} messages behind; dropping its connection"
                            );
                            return Stopped::Dropped;
                        }
                        Err(TrySendError::Closed(_)) => return Stopped::Unsubscribed,
                    }
                }
                () = &mut heartbeat => return Stopped::Dropped,
                _ = self.events.closed() => return Stopped::Unsubscribed,
            }
        }
    }
}
