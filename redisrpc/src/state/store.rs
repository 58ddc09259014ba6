//! [`State`]: the store's operations, each an atomic read-modify-write.
//!
//! Every write reads the document with its version, computes the new
//! document in Rust, and commits it with a compare-and-set that applies only
//! if the version is unchanged. On a conflict the backend returns the
//! current document and the change is computed again, so writers of
//! different paths of one document never undo each other's writes, and
//! numbers never pass through a lossy decoder. A write that finds the
//! document as this process last wrote it needs one round trip; otherwise
//! two, plus one per conflict. The loop itself is in `change.rs`.

use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Number, Value};

use super::binary::{Marker, Marshaller, NdArray, NdArrayMarshaller};
use super::cache::Cache;
use super::doc::{self, Doc, ValueType};
use super::number::{self, Op, Operand};
use super::path::{IntoPath, Path};
use super::reem;
use crate::backend::{IntoBackend, SharedBackend, StoredDoc};
use crate::{Error, Result, layout};

/// How often a binary read is retried when the value was replaced between
/// reading its marker and reading its hash.
const BINARY_READ_ATTEMPTS: usize = 10;

/// A shared store of nested JSON documents, binary arrays, and live
/// updates, on any backend. Cheap to clone; clones share the backend.
///
/// See the [module docs](super) for the path syntax, the layout in Redis and
/// the guarantees.
#[derive(Clone, Debug)]
pub struct State {
    backend: SharedBackend,
    layout: Layout,
    /// The documents as this process last wrote them, shared by clones.
    pub(super) cache: Arc<Cache>,
}

/// How the store keeps its documents in Redis.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Layout {
    /// This crate's own: each document a hash with its JSON and a version,
    /// on every backend (see the [module docs](super)).
    #[default]
    Native,
    /// REEM's (the Python middleware's), to share documents with REEM
    /// programs: a RedisJSON document per top-level key, its metadata
    /// beside it, and numpy arrays in hashes named by their paths. Only a
    /// single Redis server (or a Sentinel-managed master) with the
    /// RedisJSON module offers it; elsewhere every operation is refused
    /// with [`Error::Config`]. Binary values must be numpy arrays
    /// ([`NdArray`]) among an object's members, not inside lists.
    Reem,
}

impl std::str::FromStr for Layout {
    type Err = Error;

    /// `native` or `reem`, as command lines spell them.
    fn from_str(name: &str) -> Result<Layout> {
        match name {
            "native" => Ok(Layout::Native),
            "reem" => Ok(Layout::Reem),
            other => Err(Error::Config(format!("unknown layout `{other}`: `native` or `reem`"))),
        }
    }
}

impl std::fmt::Display for Layout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Layout::Native => "native",
            Layout::Reem => "reem",
        })
    }
}

impl State {
    /// A store on `backend` (a `Memory`, a `Redis`, or a `SharedBackend`),
    /// in this crate's own layout.
    pub fn new(backend: impl IntoBackend) -> State {
        State {
            backend: backend.into_backend(),
            layout: Layout::Native,
            cache: Arc::default(),
        }
    }

    /// The same store's backend, with its documents kept in `layout`.
    pub fn with_layout(self, layout: Layout) -> State {
        State {
            backend: self.backend,
            layout,
            // A version means something else in each layout.
            cache: Arc::default(),
        }
    }

    /// The backend it runs on.
    pub fn backend(&self) -> &SharedBackend {
        &self.backend
    }

    /// The layout its documents are kept in.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// Reads a document with its version (0 when absent).
    pub(crate) async fn read(&self, key: &str) -> Result<(u64, Doc)> {
        match self.layout {
            Layout::Native => parse(key, self.backend.doc_get(key).await?),
            Layout::Reem => reem::read(key, self.backend.reem_get(key).await?),
        }
    }

    /// Whether `hash` is one of the binary values of document `key`.
    pub(super) fn owns(&self, key: &str, hash: &str) -> bool {
        match self.layout {
            Layout::Native => layout::owns(key, hash),
            Layout::Reem => layout::reem::owns(key, hash),
        }
    }

    /// The value at `path`, converted to `T`.
    pub async fn get<T: DeserializeOwned>(&self, path: impl IntoPath) -> Result<T> {
        let path = path.into_path()?;
        let value = self.get_value(&path).await?;
        convert(&path, value)
    }

    /// The value at `path` as JSON. Binary values appear as their markers.
    pub async fn get_value(&self, path: impl IntoPath) -> Result<Value> {
        let path = path.into_path()?;
        let (_, document) = self.read(path.key()).await?;
        doc::get(&document, &path).cloned()
    }

    /// True when there is a value at `path`.
    pub async fn exists(&self, path: impl IntoPath) -> Result<bool> {
        let path = path.into_path()?;
        let (_, document) = self.read(path.key()).await?;
        match doc::get(&document, &path) {
            Ok(_) => Ok(true),
            Err(Error::NotFound { .. }) => Ok(false),
            Err(error) => Err(error),
        }
    }

    /// The type of the value at `path`.
    pub async fn type_of(&self, path: impl IntoPath) -> Result<ValueType> {
        Ok(ValueType::of(&self.get_value(path).await?))
    }

    /// The number of elements of the array, members of the object, or
    /// characters (Unicode scalar values) of the string at `path`.
    pub async fn len(&self, path: impl IntoPath) -> Result<usize> {
        let path = path.into_path()?;
        let (_, document) = self.read(path.key()).await?;
        doc::len(&document, &path)
    }

    /// Sets the value at `path`, creating missing parent objects. Setting a
    /// top-level key replaces its whole document.
    pub async fn set<T: Serialize + ?Sized>(&self, path: impl IntoPath, value: &T) -> Result<()> {
        self.write(path.into_path()?, to_json(value)?, false).await
    }

    /// Sets the value at `path` as [`State::set`] does and notifies the
    /// subscribers of `path` (see [`State::subscribe`], [`State::mirror`]).
    pub async fn publish<T: Serialize + ?Sized>(&self, path: impl IntoPath, value: &T) -> Result<()> {
        self.write(path.into_path()?, to_json(value)?, true).await
    }

    async fn write(&self, path: Path, value: Value, publish: bool) -> Result<()> {
        let publish = publish.then_some(&path);
        self.change(&path, publish, |document| {
            doc::set(document, &path, value.clone())?;
            Ok(((), Vec::new()))
        })
        .await
    }

    /// Deletes the value at `path` (a whole document for a top-level key);
    /// false when there was none. Later elements of an array move down.
    pub async fn delete(&self, path: impl IntoPath) -> Result<bool> {
        let path = path.into_path()?;
        let result = self
            .change(&path, None, |document| {
                doc::delete(document, &path)?;
                Ok(((), Vec::new()))
            })
            .await;
        match result {
            Ok(()) => Ok(true),
            Err(Error::NotFound { .. }) => Ok(false),
            Err(error) => Err(error),
        }
    }

    /// Adds `by` to the number at `path`; returns the new value. Integers
    /// stay exact integers; see [`Operand`].
    pub async fn incr(&self, path: impl IntoPath, by: impl Into<Operand>) -> Result<Number> {
        self.arithmetic(path.into_path()?, Op::Add, by.into()).await
    }

    /// Subtracts `by` from the number at `path`; returns the new value.
    pub async fn decr(&self, path: impl IntoPath, by: impl Into<Operand>) -> Result<Number> {
        self.arithmetic(path.into_path()?, Op::Sub, by.into()).await
    }

    /// Multiplies the number at `path` by `by`; returns the new value.
    pub async fn mul(&self, path: impl IntoPath, by: impl Into<Operand>) -> Result<Number> {
        self.arithmetic(path.into_path()?, Op::Mul, by.into()).await
    }

    /// Divides the number at `path` by `by`; returns the new value. An
    /// integer divided exactly stays an integer, otherwise the result is a
    /// float; dividing by zero is an error.
    pub async fn div(&self, path: impl IntoPath, by: impl Into<Operand>) -> Result<Number> {
        self.arithmetic(path.into_path()?, Op::Div, by.into()).await
    }

    async fn arithmetic(&self, path: Path, op: Op, operand: Operand) -> Result<Number> {
        self.change(&path, None, |document| {
            let value = doc::get_mut(document, &path)?;
            let Value::Number(current) = value else {
                return Err(doc::wrong_type(&path, "number", value));
            };
            let result = number::apply(current, op, operand).map_err(|reason| Error::Arithmetic {
                path: path.to_string(),
                reason,
            })?;
            *value = Value::Number(result.clone());
            Ok((result, Vec::new()))
        })
        .await
    }

    /// Appends `item` to the array at `path`; returns its new length.
    pub async fn append<T: Serialize + ?Sized>(&self, path: impl IntoPath, item: &T) -> Result<usize> {
        self.append_values(path.into_path()?, vec![to_json(item)?]).await
    }

    /// Appends every item to the array at `path`, in one atomic step;
    /// returns its new length.
    pub async fn extend<T: Serialize>(&self, path: impl IntoPath, items: impl IntoIterator<Item = T>) -> Result<usize> {
        let items = items.into_iter().map(|item| to_json(&item)).collect::<Result<_>>()?;
        self.append_values(path.into_path()?, items).await
    }

    async fn append_values(&self, path: Path, items: Vec<Value>) -> Result<usize> {
        self.change(&path, None, |document| {
            Ok((doc::append(document, &path, items.clone())?, Vec::new()))
        })
        .await
    }

    /// Reads the value at `path` as `T`, lets `f` change it, and writes it
    /// back, atomically: if another writer changed the document meanwhile,
    /// it reads again and calls `f` again (so `f` may run more than once and
    /// should only compute). Returns the value written. Nothing is written
    /// when reading or converting fails.
    pub async fn update<T, F>(&self, path: impl IntoPath, mut f: F) -> Result<T>
    where
        T: DeserializeOwned + Serialize,
        F: FnMut(&mut T),
    {
        let updated = self.try_update(path, |value: &mut T| {
            f(value);
            Ok::<(), std::convert::Infallible>(())
        });
        updated.await.map(|Ok(value)| value)
    }

    /// Like [`State::update`], but `f` may refuse: when it returns `Err`,
    /// nothing is written and its error comes back as the inner `Err`. The
    /// outer `Result` carries the store's own errors.
    pub async fn try_update<T, E, F>(&self, path: impl IntoPath, mut f: F) -> Result<Result<T, E>>
    where
        T: DeserializeOwned + Serialize,
        F: FnMut(&mut T) -> std::result::Result<(), E>,
    {
        let path = path.into_path()?;
        self.change(&path, None, |document| {
            let mut value: T = convert(&path, doc::get(document, &path)?.clone())?;
            if let Err(refused) = f(&mut value) {
                // The document is untouched, so nothing is committed.
                return Ok((Err(refused), Vec::new()));
            }
            doc::set(document, &path, to_json(&value)?)?;
            Ok((Ok(value), Vec::new()))
        })
        .await
    }

    /// Stores `value` with `marshaller` in a Redis hash beside the document,
    /// and a marker at `path` (see [`binary`](super::binary)).
    pub async fn set_binary<M: Marshaller>(&self, path: impl IntoPath, marshaller: &M, value: &M::Value) -> Result<()> {
        self.write_binary(path.into_path()?, marshaller, value, false).await
    }

    /// [`State::set_binary`], and notifies the subscribers of `path`; they
    /// receive the marker.
    pub async fn publish_binary<M: Marshaller>(
        &self,
        path: impl IntoPath,
        marshaller: &M,
        value: &M::Value,
    ) -> Result<()> {
        self.write_binary(path.into_path()?, marshaller, value, true).await
    }

    async fn write_binary<M: Marshaller>(
        &self,
        path: Path,
        marshaller: &M,
        value: &M::Value,
        publish: bool,
    ) -> Result<()> {
        let fields = Arc::new(marshaller.write(value).map_err(|reason| Error::Binary {
            path: path.to_string(),
            reason: reason.to_string(),
        })?);
        let label = marshaller.label().to_owned();
        let unique = uuid::Uuid::new_v4().simple().to_string();
        let layout = self.layout;
        self.change(&path, publish.then_some(&path), |document| {
            let key = binary_key(layout, document, &path, &unique);
            let marker = Marker {
                label: label.clone(),
                key: key.clone(),
            };
            doc::set(document, &path, marker.to_value())?;
            Ok(((), vec![(key, Arc::clone(&fields))]))
        })
        .await
    }

    /// Reads the binary value at `path` with `marshaller`.
    pub async fn get_binary<M: Marshaller>(&self, path: impl IntoPath, marshaller: &M) -> Result<M::Value> {
        let path = path.into_path()?;
        let binary_error = |reason: String| Error::Binary {
            path: path.to_string(),
            reason,
        };
        for _ in 0..BINARY_READ_ATTEMPTS {
            let value = self.get_value(&path).await?;
            let expected = format!("binary value ({})", marshaller.label());
            let marker = Marker::of(&value).ok_or_else(|| doc::wrong_type(&path, &expected, &value))?;
            if marker.label != marshaller.label() {
                return Err(doc::wrong_type(&path, &expected, &value));
            }
            if !self.owns(path.key(), &marker.key) {
                // A marker copied from elsewhere or written by hand: reading
                // it would hand out any hash, another document's included.
                return Err(binary_error(format!(
                    "its marker names `{}`, which is not a binary value of document `{}`",
                    marker.key,
                    path.key()
                )));
            }
            let fields = self.backend.hash_get_all(&marker.key).await?;
            // Empty: replaced or deleted since the marker was read; read again.
            if !fields.is_empty() {
                return marshaller
                    .read(fields)
                    .map_err(|reason| binary_error(reason.to_string()));
            }
        }
        Err(binary_error(
            "its hash keeps disappearing under concurrent writes".into(),
        ))
    }

    /// Stores an n-dimensional array at `path` in numpy's layout.
    pub async fn set_array(&self, path: impl IntoPath, array: &NdArray) -> Result<()> {
        self.set_binary(path, &NdArrayMarshaller, array).await
    }

    /// [`State::set_array`], and notifies the subscribers of `path`.
    pub async fn publish_array(&self, path: impl IntoPath, array: &NdArray) -> Result<()> {
        self.publish_binary(path, &NdArrayMarshaller, array).await
    }

    /// The n-dimensional array at `path`.
    pub async fn get_array(&self, path: impl IntoPath) -> Result<NdArray> {
        self.get_binary(path, &NdArrayMarshaller).await
    }
}

/// Parses a stored document.
pub(crate) fn parse(key: &str, stored: Option<StoredDoc>) -> Result<(u64, Doc)> {
    let Some(stored) = stored else { return Ok((0, None)) };
    let value = serde_json::from_slice(&stored.json).map_err(|e| Error::Deserialize {
        path: key.to_owned(),
        expected: "a JSON document",
        source: e.into(),
    })?;
    Ok((stored.version, Some(value)))
}

/// `value`, read at `path`, as `T`.
pub(crate) fn convert<T: DeserializeOwned>(path: &Path, value: Value) -> Result<T> {
    serde_json::from_value(value).map_err(|e| Error::Deserialize {
        path: path.to_string(),
        expected: std::any::type_name::<T>(),
        source: e.into(),
    })
}

fn to_json<T: Serialize + ?Sized>(value: &T) -> Result<Value> {
    crate::protocol::to_json_value(value).map_err(|reason| Error::Encode {
        what: std::any::type_name::<T>().to_owned(),
        reason,
    })
}

/// The Redis key for a binary value at `path`: the path's own (see
/// [`layout::binary`]), unless another marker of the document already uses
/// it (after array elements moved), then that with `unique` appended. In
/// REEM's layout always the path's own.
fn binary_key(layout: Layout, document: &Doc, path: &Path, unique: &str) -> String {
    let rest = &path.to_string()[path.key().len()..];
    if layout == Layout::Reem {
        return layout::reem::array_key(path.key(), rest);
    }
    let natural = layout::binary(path.key(), rest, None);
    let mut others = Vec::new();
    if let Some(root) = document {
        // The value being replaced gives its key up.
        Marker::collect_outside(root, path.segments(), &mut others);
    }
    if others.contains(&natural) {
        layout::binary(path.key(), rest, Some(unique))
    } else {
        natural
    }
}
