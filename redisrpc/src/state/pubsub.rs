//! Following published updates as a stream.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use futures::{Stream, StreamExt};
use serde::Deserialize;
use serde_json::Value;

use super::path::Path;
use super::store::State;
use crate::Result;
use crate::backend::{PubSubEvent, Subscription};
use crate::layout;

/// One published value.
#[derive(Debug, Clone, PartialEq)]
pub struct Update {
    /// The path it was published at.
    pub path: Path,
    /// The value published (binary values as their markers).
    pub value: Value,
    /// The document's version after the publish.
    pub version: u64,
    /// The document's version before it; when a reader's copy has another,
    /// it missed a write in between.
    pub base: u64,
}

/// What an [`Updates`] stream delivers.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A value was published on a matching path.
    Update(Update),
    /// The subscription lost its connection; it is reconnecting.
    Disconnected,
    /// The subscription is back after [`Event::Disconnected`] (or after
    /// falling too far behind). Updates published in between were missed:
    /// re-read what you need.
    Resubscribed,
}

/// The payload of a notification, as [`State::publish`] writes it.
#[derive(Deserialize)]
pub(crate) struct Payload {
    pub(crate) path: String,
    pub(crate) base: u64,
    pub(crate) value: Value,
    pub(crate) version: u64,
}

impl Payload {
    pub(crate) fn parse(payload: &[u8]) -> Option<Update> {
        let payload: Payload = serde_json::from_slice(payload).ok()?;
        Some(Update {
            path: Path::parse(&payload.path).ok()?,
            value: payload.value,
            version: payload.version,
            base: payload.base,
        })
    }
}

/// A live stream of updates matching a pattern (see [`State::subscribe`]).
/// Dropping it unsubscribes.
pub struct Updates {
    inner: Subscription,
    /// In REEM's layout a notification names only the path: the value is
    /// read from this store, by `reading`.
    rereads: Option<State>,
    reading: Option<BoxFuture<'static, Option<Update>>>,
}

impl std::fmt::Debug for Updates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Updates").finish_non_exhaustive()
    }
}

impl Updates {
    /// The next event; `None` only when the backend is gone.
    pub async fn next(&mut self) -> Option<Event> {
        StreamExt::next(self).await
    }
}

impl Stream for Updates {
    type Item = Event;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        loop {
            if let Some(reading) = self.reading.as_mut() {
                let update = std::task::ready!(reading.as_mut().poll(cx));
                self.reading = None;
                match update {
                    Some(update) => return Poll::Ready(Some(Event::Update(update))),
                    None => continue,
                }
            }
            let event = match self.inner.as_mut().poll_next(cx) {
                Poll::Ready(Some(event)) => event,
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            };
            let event = match event {
                PubSubEvent::Message { channel, .. } if self.rereads.is_some() => {
                    let state = self.rereads.clone().expect("checked above");
                    self.reading = Some(Box::pin(reread(state, channel)));
                    continue;
                }
                PubSubEvent::Message { channel, payload } => match Payload::parse(&payload) {
                    Some(update) => Event::Update(update),
                    None => {
                        // Someone else's message on our channel namespace.
                        tracing::warn!(channel, "ignoring a message that is not a state update");
                        continue;
                    }
                },
                PubSubEvent::Disconnected => Event::Disconnected,
                PubSubEvent::Resubscribed => Event::Resubscribed,
            };
            return Poll::Ready(Some(event));
        }
    }
}

/// The update a REEM notification on `channel` announces: the value now at
/// its path, with the document's version. `None` when the channel names no
/// path, or the value cannot be read (it was deleted since, or the read
/// failed, which is logged): REEM's notifications carry no value to fall
/// back on.
async fn reread(state: State, channel: String) -> Option<Update> {
    let text = channel.strip_prefix(layout::reem::PUBLISH_PREFIX)?;
    let path = Path::parse(text).ok()?;
    let (version, document) = match state.read(path.key()).await {
        Ok(read) => read,
        Err(error) => {
            tracing::warn!(%path, %error, "cannot read the value a REEM notification announced; skipping it");
            return None;
        }
    };
    let value = super::doc::get(&document, &path).ok()?.clone();
    Some(Update {
        path,
        value,
        version,
        // REEM's notifications carry no versions: a gap cannot be told.
        base: version,
    })
}

impl State {
    /// Follows the values published at paths matching `pattern`, a Redis
    /// glob over the path text: `robot.*` matches `robot.arm.angle` (not
    /// `robot` itself), `robot.joints\[*` every element of `robot.joints`,
    /// and a path without glob characters just that path. The subscription
    /// is active when this returns.
    ///
    /// In REEM's layout ([`Layout::Reem`](super::Layout::Reem)) it follows
    /// REEM's notifications, which carry no value: each update's value is
    /// read when its notification arrives, so it may be newer than the one
    /// published, and [`Update::base`] equals [`Update::version`].
    pub async fn subscribe(&self, pattern: &str) -> Result<Updates> {
        let reem = self.layout() == super::Layout::Reem;
        let channel = if reem {
            layout::reem::publish_channel(pattern)
        } else {
            layout::update_channel(pattern)
        };
        let inner = self.backend().subscribe(&[], &[channel]).await?;
        Ok(Updates {
            inner,
            rereads: reem.then(|| self.clone()),
            reading: None,
        })
    }
}
