//! The documents as this process last wrote them: where a write starts
//! from, to save the read that would otherwise begin it.

use std::num::NonZeroUsize;
use std::sync::{Mutex, MutexGuard, PoisonError};

use lru::LruCache;

use super::doc::Doc;

/// How many documents a [`State`](super::State) remembers as it wrote them;
/// past that, the least recently used is forgotten.
const CACHED_DOCUMENTS: NonZeroUsize = NonZeroUsize::new(1024).unwrap();

/// The documents as this process last wrote them, with their versions: the
/// likely current state, from which a write can start without a read.
/// Never used to answer a read.
pub(crate) struct Cache {
    /// A plain mutex: held to copy one entry in or out, never across an await.
    documents: Mutex<LruCache<String, (u64, Doc)>>,
}

impl Default for Cache {
    fn default() -> Self {
        Cache {
            documents: Mutex::new(LruCache::new(CACHED_DOCUMENTS)),
        }
    }
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache").field("documents", &self.lock().len()).finish()
    }
}

impl Cache {
    fn lock(&self) -> MutexGuard<'_, LruCache<String, (u64, Doc)>> {
        self.documents.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn get(&self, key: &str) -> Option<(u64, Doc)> {
        self.lock().get(key).cloned()
    }

    /// Remembers `document` at `version`, unless a clone already remembers
    /// a later version (tasks of one `State` may finish out of order).
    pub(crate) fn put(&self, key: &str, version: u64, document: Doc) {
        let mut documents = self.lock();
        if documents.peek(key).is_some_and(|(known, _)| *known > version) {
            return;
        }
        documents.put(key.to_owned(), (version, document));
    }

    pub(crate) fn forget(&self, key: &str) {
        self.lock().pop(key);
    }
}
