//! The blocking shared state: [`State`], its [`Mirror`]s and
//! [`Updates`], each operation of [`crate::state`] waited for on the
//! calling thread.

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Number, Value};

use super::{inside_a_runtime, runtime, wait};
use crate::backend::{IntoBackend, SharedBackend};
use crate::state::{Event, IntoPath, Marshaller, NdArray, Operand, Path, ValueType};
use crate::{Error, Result};

/// The shared state, for plain threads; see [`crate::state::State`], whose
/// operations these are. Cheap to clone; clones share the backend and the
/// cache of documents this process wrote.
#[derive(Clone, Debug)]
pub struct State {
    inner: crate::state::State,
}

impl State {
    /// The shared state on `backend`.
    pub fn new(backend: impl IntoBackend) -> State {
        State {
            inner: crate::state::State::new(backend),
        }
    }

    /// The same store, with its documents kept in `layout`; see
    /// [`crate::state::State::with_layout`].
    pub fn with_layout(self, layout: crate::state::Layout) -> State {
        State {
            inner: self.inner.with_layout(layout),
        }
    }

    /// The backend underneath.
    pub fn backend(&self) -> &SharedBackend {
        self.inner.backend()
    }

    /// The async state underneath.
    pub fn as_async(&self) -> &crate::state::State {
        &self.inner
    }

    /// See [`crate::state::State::get`].
    pub fn get<T: DeserializeOwned>(&self, path: impl IntoPath) -> Result<T> {
        wait("State::get", self.inner.get(path))
    }

    /// See [`crate::state::State::get_value`].
    pub fn get_value(&self, path: impl IntoPath) -> Result<Value> {
        wait("State::get_value", self.inner.get_value(path))
    }

    /// See [`crate::state::State::exists`].
    pub fn exists(&self, path: impl IntoPath) -> Result<bool> {
        wait("State::exists", self.inner.exists(path))
    }

    /// See [`crate::state::State::type_of`].
    pub fn type_of(&self, path: impl IntoPath) -> Result<ValueType> {
        wait("State::type_of", self.inner.type_of(path))
    }

    /// See [`crate::state::State::len`].
    pub fn len(&self, path: impl IntoPath) -> Result<usize> {
        wait("State::len", self.inner.len(path))
    }

    /// See [`crate::state::State::set`].
    pub fn set<T: Serialize + ?Sized>(&self, path: impl IntoPath, value: &T) -> Result<()> {
        wait("State::set", self.inner.set(path, value))
    }

    /// See [`crate::state::State::publish`].
    pub fn publish<T: Serialize + ?Sized>(&self, path: impl IntoPath, value: &T) -> Result<()> {
        wait("State::publish", self.inner.publish(path, value))
    }

    /// See [`crate::state::State::delete`].
    pub fn delete(&self, path: impl IntoPath) -> Result<bool> {
        wait("State::delete", self.inner.delete(path))
    }

    /// See [`crate::state::State::incr`].
    pub fn incr(&self, path: impl IntoPath, by: impl Into<Operand>) -> Result<Number> {
        wait("State::incr", self.inner.incr(path, by))
    }

    /// See [`crate::state::State::decr`].
    pub fn decr(&self, path: impl IntoPath, by: impl Into<Operand>) -> Result<Number> {
        wait("State::decr", self.inner.decr(path, by))
    }

    /// See [`crate::state::State::mul`].
    pub fn mul(&self, path: impl IntoPath, by: impl Into<Operand>) -> Result<Number> {
        wait("State::mul", self.inner.mul(path, by))
    }

    /// See [`crate::state::State::div`].
    pub fn div(&self, path: impl IntoPath, by: impl Into<Operand>) -> Result<Number> {
        wait("State::div", self.inner.div(path, by))
    }

    /// See [`crate::state::State::append`].
    pub fn append<T: Serialize + ?Sized>(&self, path: impl IntoPath, item: &T) -> Result<usize> {
        wait("State::append", self.inner.append(path, item))
    }

    /// See [`crate::state::State::extend`].
    pub fn extend<T: Serialize>(&self, path: impl IntoPath, items: impl IntoIterator<Item = T>) -> Result<usize> {
        wait("State::extend", self.inner.extend(path, items))
    }

    /// See [`crate::state::State::update`].
    pub fn update<T, F>(&self, path: impl IntoPath, f: F) -> Result<T>
    where
        T: DeserializeOwned + Serialize,
        F: FnMut(&mut T),
    {
        wait("State::update", self.inner.update(path, f))
    }

    /// See [`crate::state::State::try_update`].
    pub fn try_update<T, E, F>(&self, path: impl IntoPath, f: F) -> Result<std::result::Result<T, E>>
    where
        T: DeserializeOwned + Serialize,
        F: FnMut(&mut T) -> std::result::Result<(), E>,
    {
        wait("State::try_update", self.inner.try_update(path, f))
    }

    /// See [`crate::state::State::set_binary`].
    pub fn set_binary<M: Marshaller>(&self, path: impl IntoPath, marshaller: &M, value: &M::Value) -> Result<()> {
        wait("State::set_binary", self.inner.set_binary(path, marshaller, value))
    }

    /// See [`crate::state::State::publish_binary`].
    pub fn publish_binary<M: Marshaller>(&self, path: impl IntoPath, marshaller: &M, value: &M::Value) -> Result<()> {
        wait(
            "State::publish_binary",
            self.inner.publish_binary(path, marshaller, value),
        )
    }

    /// See [`crate::state::State::get_binary`].
    pub fn get_binary<M: Marshaller>(&self, path: impl IntoPath, marshaller: &M) -> Result<M::Value> {
        wait("State::get_binary", self.inner.get_binary(path, marshaller))
    }

    /// See [`crate::state::State::set_array`].
    pub fn set_array(&self, path: impl IntoPath, array: &NdArray) -> Result<()> {
        wait("State::set_array", self.inner.set_array(path, array))
    }

    /// See [`crate::state::State::publish_array`].
    pub fn publish_array(&self, path: impl IntoPath, array: &NdArray) -> Result<()> {
        wait("State::publish_array", self.inner.publish_array(path, array))
    }

    /// See [`crate::state::State::get_array`].
    pub fn get_array(&self, path: impl IntoPath) -> Result<NdArray> {
        wait("State::get_array", self.inner.get_array(path))
    }

    /// A local copy of the value at `path`, kept up to date; see
    /// [`crate::state::State::mirror`].
    pub fn mirror(&self, path: impl IntoPath) -> Result<Mirror> {
        let inner = wait("State::mirror", self.inner.mirror(path))?;
        Ok(Mirror { inner })
    }

    /// The updates published at paths matching `pattern`; see
    /// [`crate::state::State::subscribe`].
    pub fn subscribe(&self, pattern: &str) -> Result<Updates> {
        let inner = wait("State::subscribe", self.inner.subscribe(pattern))?;
        Ok(Updates { inner })
    }
}

/// A local copy of a value in the shared state, for plain threads: reads
/// are local and never wait; [`changed_timeout`](Self::changed_timeout)
/// waits for the next change. See [`crate::state::Mirror`].
#[derive(Debug)]
pub struct Mirror {
    inner: crate::state::Mirror,
}

impl Mirror {
    /// The mirrored path.
    pub fn path(&self) -> &Path {
        self.inner.path()
    }

    /// Whether the copy follows the store now.
    pub fn is_in_sync(&self) -> bool {
        self.inner.is_in_sync()
    }

    /// The version of the document the copy was taken from.
    pub fn version(&self) -> u64 {
        self.inner.version()
    }

    /// The value at `path` (the mirrored path or inside it), from the copy.
    pub fn get_value(&self, path: impl IntoPath) -> Result<Value> {
        self.inner.get_value(path)
    }

    /// The value at `path` (the mirrored path or inside it) as `T`, from
    /// the copy.
    pub fn get<T: DeserializeOwned>(&self, path: impl IntoPath) -> Result<T> {
        self.inner.get(path)
    }

    /// Waits up to `timeout` for the copy to change: `true` when it did
    /// (at once if it changed since the last wait), `false` when the time
    /// ran out. Fails as [`crate::state::Mirror::changed`] does.
    pub fn changed_timeout(&mut self, timeout: Duration) -> Result<bool> {
        let changed = self.inner.changed();
        wait("Mirror::changed_timeout", async move {
            match tokio::time::timeout(timeout, changed).await {
                Ok(result) => result.map(|()| true),
                Err(_) => Ok(false),
            }
        })
    }

    /// Waits for the copy to change, however long it takes.
    pub fn changed(&mut self) -> Result<()> {
        wait("Mirror::changed", self.inner.changed())
    }
}

/// The updates of a subscription, for plain threads: an [`Iterator`] that
/// blocks for the next event and ends when the backend is gone, and
/// [`next_timeout`](Self::next_timeout) to wait a bounded time.
#[derive(Debug)]
pub struct Updates {
    inner: crate::state::Updates,
}

impl Updates {
    /// The next event, waiting at most `timeout`: `None` when the time ran
    /// out. Fails when the subscription has ended (its backend is gone).
    pub fn next_timeout(&mut self, timeout: Duration) -> Result<Option<Event>> {
        let next = self.inner.next();
        wait("Updates::next_timeout", async move {
            match tokio::time::timeout(timeout, next).await {
                Ok(Some(event)) => Ok(Some(event)),
                Ok(None) => Err(Error::Connection {
                    source: "the subscription ended: its backend is gone".into(),
                }),
                Err(_) => Ok(None),
            }
        })
    }
}

impl Iterator for Updates {
    type Item = Event;

    /// The next event, however long it takes; `None` once the backend is
    /// gone.
    ///
    /// # Panics
    ///
    /// Inside an async runtime, with the message of
    /// [`Error::Config`] that the other blocking
    /// methods return (an iterator has no error to return).
    fn next(&mut self) -> Option<Event> {
        if tokio::runtime::Handle::try_current().is_ok() {
            panic!("{}", inside_a_runtime("Updates::next"));
        }
        runtime().block_on(self.inner.next())
    }
}
