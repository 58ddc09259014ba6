//! The read-compute-commit loop behind every write of [`State`].
//!
//! A write is an `edit` of the whole document, computed in Rust and
//! committed with a compare-and-set on the document's version. One attempt
//! goes through three steps, each a function here:
//!
//! 1. **Where to start** ([`Base`]): the document as this process last
//!    wrote it, when cached, which saves a read; otherwise the stored one.
//! 2. **What the edit does** ([`Outcome`]): fails, changes nothing, or
//!    gives a new document. A failure or a no-op judged on a cached copy is
//!    only final once it recurs on the stored document.
//! 3. **The commit** ([`commit`]): the new document, the binary hashes to
//!    write and delete with it, and the notification to publish.
//!
//! A conflict brings the stored document along, and the edit runs again on
//! it. Past [`PATIENT_ATTEMPTS`] conflicts in a row it pauses between
//! attempts, and past [`MAX_ATTEMPTS`] it gives up.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::binary::{Fields, Marker};
use super::doc::{self, Doc};
use super::path::Path;
use super::reem;
use super::store::{Layout, State, parse};
use crate::backend::{Commit, CommitOutcome, Notification};
use crate::{Error, Result, layout};

/// How often a write is recomputed after conflicts before it gives up
/// ([`Error::Contention`]). Each conflict means another writer succeeded, so
/// this is only reached under a storm of writers on one document.
const MAX_ATTEMPTS: usize = 1_000;

/// How many conflicts in a row a write retries at once, before it pauses
/// between attempts (see [`conflict_pause`]).
const PATIENT_ATTEMPTS: usize = 32;

/// A document change: what the caller gets back, and the binary hashes to
/// write with it.
pub(crate) type Edit<R> = (R, Vec<(String, Arc<Fields>)>);

/// The document an attempt starts from.
struct Base {
    version: u64,
    document: Doc,
    /// Taken from the cache, so possibly stale.
    cached: bool,
}

/// Whether a commit was applied: the new version, or else the document as
/// it is now (with its version), to compute the change again from.
enum Committed {
    Yes(u64),
    No(u64, Doc),
}

/// What an edit did to its copy of the base document.
enum Outcome<R> {
    /// The edit refused (a wrong type, a missing path …).
    Failed(Error),
    /// Nothing to write: the operation took effect when it read.
    Unchanged(R),
    /// A new document to commit.
    Changed(R, Doc, Vec<(String, Arc<Fields>)>),
}

impl<R> Outcome<R> {
    /// Runs `edit` on a copy of `base`. A publish always writes, since its
    /// notification must go out even when the value is the same.
    fn of(base: &Base, publish: Option<&Path>, edit: &mut impl FnMut(&mut Doc) -> Result<Edit<R>>) -> Outcome<R> {
        let mut new = base.document.clone();
        match edit(&mut new) {
            Err(error) => Outcome::Failed(error),
            Ok((result, hashes)) if hashes.is_empty() && publish.is_none() && doc::identical(&new, &base.document) => {
                Outcome::Unchanged(result)
            }
            Ok((result, hashes)) => Outcome::Changed(result, new, hashes),
        }
    }

    /// Whether the outcome can stand only once seen on the stored document.
    fn needs_confirming(&self) -> bool {
        !matches!(self, Outcome::Changed(..))
    }
}

impl State {
    /// Applies `edit` to the document of `path` atomically, publishing at
    /// `publish` if given. `edit` may run several times, once per attempt,
    /// on a fresh copy of the document; when it fails, nothing is written.
    pub(crate) async fn change<R>(
        &self,
        path: &Path,
        publish: Option<&Path>,
        mut edit: impl FnMut(&mut Doc) -> Result<Edit<R>>,
    ) -> Result<R> {
        let key = path.key();
        let mut base = self.base(key).await?;
        for attempt in 0..MAX_ATTEMPTS {
            let outcome = Outcome::of(&base, publish, &mut edit);
            if base.cached && outcome.needs_confirming() {
                base = self.stored_base(key).await?;
                continue;
            }
            let (result, new, hashes) = match outcome {
                Outcome::Failed(error) => return Err(error),
                Outcome::Unchanged(result) => return Ok(result),
                Outcome::Changed(result, new, hashes) => (result, new, hashes),
            };
            match self.commit(key, &base, &new, hashes, publish).await {
                Ok(Committed::Yes(version)) => {
                    self.cache.put(key, version, new);
                    return Ok(result);
                }
                Ok(Committed::No(version, document)) => {
                    base = Base {
                        version,
                        document,
                        cached: false,
                    };
                    if attempt >= PATIENT_ATTEMPTS {
                        // A writer whose every try is shorter than ours (one
                        // that starts from its cache, on another thread) can
                        // win each race for as long as it keeps writing:
                        // wait that storm out rather than spend every
                        // attempt in it.
                        tokio::time::sleep(conflict_pause(attempt - PATIENT_ATTEMPTS)).await;
                    }
                }
                Err(error) => {
                    // Whether it was applied is unknown.
                    self.cache.forget(key);
                    return Err(error);
                }
            }
        }
        Err(Error::Contention {
            path: path.to_string(),
            attempts: MAX_ATTEMPTS,
        })
    }

    /// Commits the change of `key` from `base` to `new`, in the store's
    /// layout.
    async fn commit(
        &self,
        key: &str,
        base: &Base,
        new: &Doc,
        hashes: Vec<(String, Arc<Fields>)>,
        publish: Option<&Path>,
    ) -> Result<Committed> {
        match self.layout() {
            Layout::Native => {
                let commit = commit(key, base.version, &base.document, new, hashes, publish)?;
                match self.backend().doc_commit(&commit).await? {
                    CommitOutcome::Committed(version) => Ok(Committed::Yes(version)),
                    CommitOutcome::Conflict(now) => parse(key, now).map(|(v, d)| Committed::No(v, d)),
                }
            }
            Layout::Reem => {
                let commit = reem::commit(key, base.version, &base.document, new, hashes, publish)?;
                match self.backend().reem_commit(&commit).await? {
                    CommitOutcome::Committed(version) => Ok(Committed::Yes(version)),
                    CommitOutcome::Conflict(now) => reem::read(key, now).map(|(v, d)| Committed::No(v, d)),
                }
            }
        }
    }

    /// The cached document of `key`, or else the stored one.
    async fn base(&self, key: &str) -> Result<Base> {
        match self.cache.get(key) {
            Some((version, document)) => Ok(Base {
                version,
                document,
                cached: true,
            }),
            None => self.stored_base(key).await,
        }
    }

    async fn stored_base(&self, key: &str) -> Result<Base> {
        let (version, document) = self.read(key).await?;
        Ok(Base {
            version,
            document,
            cached: false,
        })
    }
}

/// A random pause of up to 20 µs × 2^`n`, at most about 80 ms, before the
/// `n`-th attempt past [`PATIENT_ATTEMPTS`]: long enough, over the attempts
/// left, to outlast a storm of writers on a slow store (a busy cluster).
fn conflict_pause(n: usize) -> Duration {
    use std::hash::BuildHasher;
    let ceiling = 20u64 << n.min(12);
    // A randomly keyed hasher is random enough for jitter.
    let random = std::collections::hash_map::RandomState::new().hash_one(n);
    Duration::from_micros(random % ceiling)
}

/// The commit of a change from `old` to `new`.
fn commit(
    key: &str,
    version: u64,
    old: &Doc,
    new: &Doc,
    hashes: Vec<(String, Arc<Fields>)>,
    publish: Option<&Path>,
) -> Result<Commit> {
    let (mut before, mut after) = (Vec::new(), Vec::new());
    if let Some(old) = old {
        Marker::collect(old, &mut before);
    }
    if let Some(new) = new {
        Marker::collect(new, &mut after);
    }
    // Only hashes this document owns are deleted with it: a marker copied
    // in from another document (or written by hand) must not take that
    // document's data, or any other key, with it.
    before.retain(|k| !after.contains(k) && layout::owns(key, k));
    let json = new
        .as_ref()
        .map(|value| serde_json::to_vec(value).expect("a JSON value always encodes"));
    let publish = publish
        .map(|path| Ok(notification(path, version, doc::get(new, path)?)))
        .transpose()?;
    Ok(Commit {
        key: key.to_owned(),
        expected: version,
        json,
        delete: before,
        hashes,
        publish,
    })
}

/// The notification of a publish at `path`: the payload is
/// `{"path":…,"base":…,"value":…,"version":…}` (see the module docs).
fn notification(path: &Path, base: u64, value: &Value) -> Notification {
    let mut head = br#"{"path":"#.to_vec();
    serde_json::to_writer(&mut head, &path.to_string()).expect("a string always encodes");
    head.extend_from_slice(format!(r#","base":{base},"value":"#).as_bytes());
    serde_json::to_writer(&mut head, value).expect("a JSON value always encodes");
    head.extend_from_slice(br#","version":"#);
    Notification {
        channel: layout::update_channel(&path.to_string()),
        head,
        tail: b"}".to_vec(),
    }
}
