//! A live local copy of a document or subtree, current with every publish.
//!
//! The mirror subscribes first and reads the document second, so no publish
//! falls between the two. Each notification carries the document's version
//! before and after the publish: the mirror applies it when the version
//! before is the one it holds, ignores it when it already holds a later
//! version, and otherwise (a write it did not see, such as a plain `set` or
//! a publish to another part of the document) reads the document again.
//! When the subscription drops, the mirror refuses reads until it has
//! resubscribed and read again.
//!
//! In REEM's layout a notification carries neither value nor version, so
//! every one makes the mirror read again; a write it was not told of (a
//! plain set) goes unseen until the next notification.

use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::doc::{self, Doc};
use super::path::{IntoPath, Path, Segment};
use super::pubsub::Payload;
use super::store::{self, State};
use crate::backend::{PubSubEvent, Subscription};
use crate::backoff::Backoff;
use crate::layout;
use crate::{Error, Result};

/// How long a mirror waits between failed reads while resynchronising.
const RETRY: Backoff = Backoff::new(Duration::from_millis(20), Duration::from_secs(1));

/// A live local copy of the value at a path (see [`State::mirror`]).
///
/// Reads are local: no round trip. They fail with [`Error::OutOfSync`]
/// while the mirror cannot vouch for its copy. Dropping the mirror stops
/// following.
#[derive(Debug)]
pub struct Mirror {
    shared: Arc<Shared>,
    changes: watch::Receiver<u64>,
    task: JoinHandle<()>,
}

#[derive(Debug)]
struct Shared {
    path: Path,
    /// A plain lock: held only to copy in or out, never across an await.
    local: RwLock<Local>,
}

/// The follow task's hold on the copy, and the only sender of changes: when
/// the task ends (its subscription ended, it panicked, or it was aborted)
/// this is dropped, which marks the copy out of sync and closes the channel,
/// so [`Mirror::changed`] fails instead of waiting for ever.
struct Writer {
    shared: Arc<Shared>,
    /// Bumped on every change of the copy, for [`Mirror::changed`].
    changes: watch::Sender<u64>,
}

#[derive(Debug)]
struct Local {
    /// The mirrored value; `None` when nothing is at the path.
    value: Option<Value>,
    /// The document version the value is from.
    version: u64,
    /// `Err(reason)` while not in sync.
    sync: Result<(), String>,
}

impl State {
    /// A live mirror of the value at `path` (a whole document or any
    /// subtree), following every publish to it, to its ancestors, or to its
    /// descendants. Returns once the mirror holds the current value.
    pub async fn mirror(&self, path: impl IntoPath) -> Result<Mirror> {
        let path = path.into_path()?;
        let (channels, patterns) = match self.layout() {
            super::Layout::Native => channels(&path),
            super::Layout::Reem => channels_named(&path, layout::reem::publish_channel),
        };
        let subscription = self.backend().subscribe(&channels, &patterns).await?;
        Mirror::start(self, path, subscription).await
    }
}

impl Mirror {
    /// Reads the value at `path` and follows `subscription`, which must be
    /// active already so that no publish falls between the two.
    async fn start(state: &State, path: Path, subscription: Subscription) -> Result<Mirror> {
        let (value, version) = read(state, &path).await?;
        let (changes, receiver) = watch::channel(0);
        let shared = Arc::new(Shared {
            path,
            local: RwLock::new(Local {
                value,
                version,
                sync: Ok(()),
            }),
        });
        let writer = Writer {
            shared: shared.clone(),
            changes,
        };
        let task = tokio::spawn(follow(state.clone(), writer, subscription));
        Ok(Mirror {
            shared,
            changes: receiver,
            task,
        })
    }
}

/// The channels that carry updates of `path`: those of its ancestors and
/// itself exactly, and patterns for its descendants.
pub(crate) fn channels(path: &Path) -> (Vec<String>, Vec<String>) {
    channels_named(path, layout::update_channel)
}

/// [`channels`], in a layout whose channel of a path is `channel(path)`.
/// REEM's notifications carry no value: each makes the mirror read again.
fn channels_named(path: &Path, channel: fn(&str) -> String) -> (Vec<String>, Vec<String>) {
    let exact = (0..=path.segments().len())
        .map(|len| channel(&path.prefix(len).to_string()))
        .collect();
    let base = layout::glob_escape(&channel(&path.to_string()));
    (exact, vec![format!("{base}.*"), format!("{base}\\[*")])
}

/// The value at `path` now, with its document's version.
async fn read(state: &State, path: &Path) -> Result<(Option<Value>, u64)> {
    let (version, document) = state.read(path.key()).await?;
    let value = doc::get(&document, path).ok().cloned();
    Ok((value, version))
}

async fn follow(state: State, writer: Writer, mut subscription: Subscription) {
    use futures::StreamExt;
    while let Some(event) = subscription.next().await {
        match event {
            PubSubEvent::Message { payload, .. } => {
                let applied = Payload::parse(&payload)
                    .is_some_and(|update| writer.apply(&update.path, update.base, update.version, update.value));
                if !applied {
                    resync(&state, &writer).await;
                }
            }
            PubSubEvent::Disconnected => writer.lose_sync("the subscription lost its connection; reconnecting"),
            PubSubEvent::Resubscribed => resync(&state, &writer).await,
        }
    }
    // The backend is gone; dropping `writer` says so.
}

/// Reads the value again until that works.
async fn resync(state: &State, writer: &Writer) {
    let mut wait = RETRY;
    loop {
        match read(state, &writer.shared.path).await {
            Ok((value, version)) => {
                writer.update(|local| {
                    *local = Local {
                        value,
                        version,
                        sync: Ok(()),
                    }
                });
                return;
            }
            Err(error) => {
                writer.lose_sync(&format!("cannot read the document: {error}"));
                tokio::time::sleep(wait.next_pause()).await;
            }
        }
    }
}

impl Writer {
    fn update(&self, f: impl FnOnce(&mut Local)) {
        f(&mut self.shared.local.write().unwrap_or_else(PoisonError::into_inner));
        self.changes.send_modify(|n| *n += 1);
    }

    fn lose_sync(&self, reason: &str) {
        self.update(|local| local.sync = Err(reason.to_owned()));
    }

    /// Applies a published update; false when the mirror must read again
    /// (it missed a write, or the update does not fit its copy).
    fn apply(&self, path: &Path, base: u64, version: u64, value: Value) -> bool {
        let mirrored = &self.shared.path;
        let mut local = self.shared.local.write().unwrap_or_else(PoisonError::into_inner);
        if local.sync.is_err() {
            return false;
        }
        if version <= local.version {
            return true; // Already in the copy (read after it was published).
        }
        if base != local.version {
            return false;
        }
        let applied = if path.starts_with(mirrored) {
            // At or below the mirrored path: set it within the copy.
            let relative =
                Path::root(mirrored.key()).map(|root| relative(&root, &path.segments()[mirrored.segments().len()..]));
            let mut copy: Doc = local.value.clone();
            match relative {
                Ok(relative) if doc::set(&mut copy, &relative, value).is_ok() => {
                    local.value = copy;
                    true
                }
                _ => false,
            }
        } else {
            // An ancestor was replaced: take our part of it.
            local.value = doc::get_within(&value, path, mirrored).ok().cloned();
            true
        };
        if applied {
            local.version = version;
            drop(local);
            self.changes.send_modify(|n| *n += 1);
        }
        applied
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        let reason = if std::thread::panicking() {
            "the mirror stopped: its task panicked"
        } else {
            "the mirror stopped: the backend is gone"
        };
        self.lose_sync(reason);
        // Then the sender goes, which wakes every waiter with an error.
    }
}

fn relative(root: &Path, segments: &[Segment]) -> Path {
    segments.iter().fold(root.clone(), |path, segment| match segment {
        Segment::Key(name) => path.child(name.clone()),
        Segment::Index(index) => path.index(*index),
    })
}

impl Mirror {
    /// The mirrored path.
    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// True while the copy is current (as of the last notification).
    pub fn is_in_sync(&self) -> bool {
        self.local().sync.is_ok()
    }

    /// The document version the copy is from (0: the document is absent).
    pub fn version(&self) -> u64 {
        self.local().version
    }

    fn local(&self) -> std::sync::RwLockReadGuard<'_, Local> {
        self.shared.local.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// The value at `path`, which must be the mirrored path or inside it,
    /// as JSON; from the local copy.
    pub fn get_value(&self, path: impl IntoPath) -> Result<Value> {
        let path = path.into_path()?;
        if !path.starts_with(&self.shared.path) {
            return Err(Error::InvalidPath {
                path: path.to_string(),
                reason: format!("outside the mirrored `{}`", self.shared.path),
            });
        }
        let local = self.local();
        if let Err(reason) = &local.sync {
            return Err(Error::OutOfSync {
                path: self.shared.path.to_string(),
                reason: reason.clone(),
            });
        }
        let Some(value) = &local.value else {
            return Err(Error::NotFound {
                path: path.to_string(),
                reason: format!("nothing is at the mirrored `{}`", self.shared.path),
            });
        };
        doc::get_within(value, &self.shared.path, &path).cloned()
    }

    /// The value at `path` (the mirrored path or inside it) as `T`.
    pub fn get<T: DeserializeOwned>(&self, path: impl IntoPath) -> Result<T> {
        let path = path.into_path()?;
        let value = self.get_value(&path)?;
        store::convert(&path, value)
    }

    /// Waits until the copy changes (a new value, or a change of its sync
    /// state). Returns at once if it changed since the last call. Fails with
    /// [`Error::OutOfSync`] once the mirror has stopped following for good
    /// (its backend is gone, or its task failed); its reads fail the same.
    pub async fn changed(&mut self) -> Result<()> {
        self.changes.changed().await.map_err(|_| Error::OutOfSync {
            path: self.shared.path.to_string(),
            reason: "the mirror stopped".into(),
        })
    }
}

impl Drop for Mirror {
    fn drop(&mut self) {
        // The task holds the subscription; ending it unsubscribes.
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    //! The follow task ending is not something the backends let a test
    //! cause, so these hand the mirror a subscription that ends or panics.

    use futures::StreamExt;

    use super::*;
    use crate::backend::Memory;

    const WAIT: Duration = Duration::from_secs(10);

    async fn mirror_on(subscription: Subscription) -> Mirror {
        let state = State::new(Memory::new());
        state.set("robot.arm", &1).await.unwrap();
        let mirror = Mirror::start(&state, Path::parse("robot.arm").unwrap(), subscription)
            .await
            .unwrap();
        assert_eq!(mirror.get::<i64>("robot.arm").unwrap(), 1);
        mirror
    }

    /// Waits, bounded, until `changed` fails, then checks reads fail too.
    async fn stops(mut mirror: Mirror) {
        let error = tokio::time::timeout(WAIT, async {
            loop {
                if let Err(error) = mirror.changed().await {
                    return error;
                }
            }
        })
        .await
        .expect("changed() fails within 10 s once the mirror stopped");
        assert!(error.is_out_of_sync(), "{error}");
        assert!(!mirror.is_in_sync());
        let error = mirror.get_value("robot.arm").unwrap_err();
        assert!(error.is_out_of_sync(), "{error}");
    }

    #[tokio::test]
    async fn a_mirror_whose_subscription_ends_says_so() {
        stops(mirror_on(Box::pin(futures::stream::empty())).await).await;
    }

    #[tokio::test]
    async fn a_mirror_whose_task_panics_says_so() {
        let subscription = futures::stream::once(async { panic!("a bug in the follow task") });
        stops(mirror_on(subscription.boxed()).await).await;
    }
}
