//! REEM's layout, translated to and from the documents the store works on.
//!
//! REEM (the Python middleware, PyPI `reem`) keeps a top-level key `K` as:
//!
//! - **`K`:** a RedisJSON document, the value without its numpy arrays
//!   (they are cut out, with no marker). A value that is not an object or
//!   a list is kept wrapped, as `{"%%%%ROOT%%%%": value}`;
//! - **`K&&&&metadata`:** a RedisJSON document naming where the arrays
//!   were: `{"special_paths": {".camera.frame": "default_numpy_handler"},
//!   "required_labels": ["default_numpy_handler"]}`;
//! - **`K.camera.frame`:** each array's hash (`arr`, `dtype`, `shape`,
//!   `strides`), which is how this crate's [`NdArray`](super::NdArray)s are
//!   stored in either layout.
//!
//! The store itself works on one JSON document per key with a marker where
//! each binary value is (see [`binary`](super::binary)). Reading puts the
//! markers back where the metadata says; writing cuts them out again and
//! writes the metadata. The rest of the store (paths, atomic updates, the
//! arrays' hashes) is the same in both layouts.
//!
//! REEM finds arrays only among an object's members, so a binary value
//! inside a list cannot be written in this layout, and a binary value stays
//! at its own path (`K.camera.frame`): one copied to another path must be
//! written anew.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::binary::{Fields, Marker, NDARRAY_LABEL};
use super::doc::Doc;
use super::path::Path;
use crate::backend::{ReemCommit, ReemDoc};
use crate::layout::reem::{array_key, owns, publish_channel};
use crate::{Error, Result};

/// REEM's label for numpy arrays, in the metadata.
pub(crate) const NUMPY_HANDLER: &str = "default_numpy_handler";

/// The member that wraps a top-level value that is not a container.
const ROOT_WRAPPER: &str = "%%%%ROOT%%%%";

/// The document of `key` as the store sees it, from REEM's JSON text and
/// metadata text (`None` when there is none).
pub(crate) fn document(key: &str, json: &[u8], metadata: Option<&[u8]>) -> Result<Value> {
    let unreadable = |what: &str, error: serde_json::Error| Error::Command {
        source: format!("REEM's {what} of `{key}` is not JSON: {error}").into(),
    };
    let mut document: Value = serde_json::from_slice(json).map_err(|e| unreadable("document", e))?;
    if let Value::Object(map) = &mut document
        && map.len() == 1
        && let Some(inner) = map.remove(ROOT_WRAPPER)
    {
        document = inner;
    }
    let Some(metadata) = metadata.filter(|m| !m.is_empty()) else {
        return Ok(document);
    };
    let metadata: Value = serde_json::from_slice(metadata).map_err(|e| unreadable("metadata", e))?;
    let Some(special) = metadata.get("special_paths").and_then(Value::as_object) else {
        return Ok(document);
    };
    for (path, label) in special {
        let label = match label.as_str() {
            Some(NUMPY_HANDLER) => NDARRAY_LABEL,
            Some(other) => other,
            None => continue,
        };
        let marker = Marker {
            label: label.to_owned(),
            key: array_key(key, path),
        };
        insert(&mut document, path, marker.to_value());
    }
    Ok(document)
}

/// Puts `value` at REEM path `path` (`.a.b`) of `document`, making the
/// objects on the way.
fn insert(document: &mut Value, path: &str, value: Value) {
    let mut at = document;
    let mut names = path.split('.').skip(1).peekable();
    while let Some(name) = names.next() {
        if !at.is_object() {
            *at = Value::Object(Map::new());
        }
        let map = at.as_object_mut().expect("made an object above");
        if names.peek().is_none() {
            map.insert(name.to_owned(), value);
            return;
        }
        at = map.entry(name.to_owned()).or_insert_with(|| Value::Object(Map::new()));
    }
}

/// A document as REEM keeps it.
#[derive(Debug, PartialEq)]
pub(crate) struct Stored {
    /// The JSON text of `K`.
    pub(crate) json: Vec<u8>,
    /// The special paths, REEM's `.a.b`, sorted.
    pub(crate) arrays: Vec<String>,
}

impl Stored {
    /// The metadata document's text.
    pub(crate) fn metadata(&self) -> Vec<u8> {
        let special: Map<String, Value> = self
            .arrays
            .iter()
            .map(|path| (path.clone(), Value::from(NUMPY_HANDLER)))
            .collect();
        let metadata = json!({"special_paths": special, "required_labels": [NUMPY_HANDLER]});
        serde_json::to_vec(&metadata).expect("a JSON value always encodes")
    }
}

/// The store's document of `key` as REEM keeps it: its markers cut out and
/// listed, and a value that is not a container wrapped.
pub(crate) fn stored(key: &str, document: &Value) -> Result<Stored> {
    let mut arrays = Vec::new();
    let json = match document {
        Value::Object(_) | Value::Array(_) => cut_markers(key, document, &mut String::new(), &mut arrays, false)?,
        other => json!({ ROOT_WRAPPER: other }),
    };
    arrays.sort();
    Ok(Stored {
        json: serde_json::to_vec(&json).expect("a JSON value always encodes"),
        arrays,
    })
}

/// `value` (at REEM path `path`, inside a list if `in_list`) without its
/// markers, which go to `arrays`.
fn cut_markers(key: &str, value: &Value, path: &mut String, arrays: &mut Vec<String>, in_list: bool) -> Result<Value> {
    match value {
        Value::Object(map) => {
            let mut kept = Map::new();
            for (name, item) in map {
                let len = path.len();
                path.push('.');
                path.push_str(name);
                if let Some(marker) = Marker::of(item) {
                    if in_list {
                        return Err(refused(key, path, "REEM's layout has no binary values inside lists"));
                    }
                    let expected = array_key(key, path);
                    if marker.label != NDARRAY_LABEL || marker.key != expected {
                        return Err(refused(
                            key,
                            path,
                            "REEM's layout keeps only numpy arrays, each in the hash of its own path",
                        ));
                    }
                    arrays.push(path.clone());
                } else {
                    kept.insert(name.clone(), cut_markers(key, item, path, arrays, in_list)?);
                }
                path.truncate(len);
            }
            Ok(Value::Object(kept))
        }
        Value::Array(items) => {
            let mut kept = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                if Marker::of(item).is_some() {
                    return Err(refused(key, path, "REEM's layout has no binary values inside lists"));
                }
                kept.push(cut_markers(key, item, path, arrays, true)?);
                path.truncate(len);
            }
            Ok(Value::Array(kept))
        }
        other => Ok(other.clone()),
    }
}

/// A document as read in REEM's layout, with its version (0 when absent).
pub(crate) fn read(key: &str, stored: Option<ReemDoc>) -> Result<(u64, Doc)> {
    match stored {
        None => Ok((0, None)),
        Some(stored) => Ok((
            stored.version,
            Some(document(key, &stored.json, stored.metadata.as_deref())?),
        )),
    }
}

/// The commit, in REEM's layout, of a change of `key` from `old` (of
/// `version`) to `new`, with the hashes the change wrote, publishing at
/// `publish` if given.
pub(crate) fn commit(
    key: &str,
    version: u64,
    old: &Doc,
    new: &Doc,
    hashes: Vec<(String, Arc<Fields>)>,
    publish: Option<&Path>,
) -> Result<ReemCommit> {
    let old_arrays = match old {
        // What REEM's metadata named; a stored document always translates
        // back (it was read from this layout), but be lenient if not.
        Some(old) => stored(key, old).map(|stored| stored.arrays).unwrap_or_default(),
        None => Vec::new(),
    };
    let new = new.as_ref().map(|new| stored(key, new)).transpose()?;
    let new_arrays = new.as_ref().map(|new| new.arrays.clone()).unwrap_or_default();
    let delete = old_arrays
        .iter()
        .filter(|path| !new_arrays.contains(path))
        .map(|path| array_key(key, path))
        .filter(|hash| owns(key, hash))
        .collect();
    let metadata = (old_arrays != new_arrays).then(|| {
        Stored {
            json: Vec::new(),
            arrays: new_arrays,
        }
        .metadata()
    });
    Ok(ReemCommit {
        key: key.to_owned(),
        expected: version,
        json: new.map(|new| new.json),
        metadata,
        delete,
        hashes,
        publish: publish.map(|path| publish_channel(&path.to_string())),
    })
}

fn refused(key: &str, path: &str, why: &str) -> Error {
    Error::Binary {
        path: format!("{key}{path}"),
        reason: why.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn marker(key: &str) -> Value {
        Marker {
            label: NDARRAY_LABEL.to_owned(),
            key: key.to_owned(),
        }
        .to_value()
    }

    #[test]
    fn arrays_come_back_as_markers_where_the_metadata_says() {
        let metadata = br#"{"special_paths":{".camera.frame":"default_numpy_handler"},"required_labels":["default_numpy_handler"]}"#;
        let document = document("robot", br#"{"camera":{"fps":30},"arm":1}"#, Some(metadata)).unwrap();
        assert_eq!(
            document,
            json!({"camera": {"fps": 30, "frame": marker("robot.camera.frame")}, "arm": 1})
        );
    }

    #[test]
    fn a_wrapped_value_is_unwrapped_and_wrapped_again() {
        assert_eq!(document("speed", br#"{"%%%%ROOT%%%%":3.5}"#, None).unwrap(), json!(3.5));
        let stored = stored("speed", &json!(3.5)).unwrap();
        assert_eq!(stored.json, br#"{"%%%%ROOT%%%%":3.5}"#);
    }

    #[test]
    fn writing_cuts_the_markers_out_and_lists_them() {
        let doc = json!({"camera": {"fps": 30, "frame": marker("robot.camera.frame")}, "depth": marker("robot.depth")});
        let stored = stored("robot", &doc).unwrap();
        assert_eq!(
            serde_json::from_slice::<Value>(&stored.json).unwrap(),
            json!({"camera": {"fps": 30}})
        );
        assert_eq!(stored.arrays, [".camera.frame", ".depth"]);
        let metadata: Value = serde_json::from_slice(&stored.metadata()).unwrap();
        assert_eq!(
            metadata["special_paths"],
            json!({".camera.frame": "default_numpy_handler", ".depth": "default_numpy_handler"})
        );
        let back = document("robot", &stored.json, Some(&stored.metadata())).unwrap();
        assert_eq!(back, doc);
    }

    #[test]
    fn what_reem_cannot_hold_is_refused() {
        let in_a_list = json!({"frames": [marker("robot.frames[0]")]});
        assert!(matches!(stored("robot", &in_a_list), Err(Error::Binary { .. })));
        let below_a_list = json!({"cams": [{"frame": marker("robot.cams[0].frame")}]});
        assert!(matches!(stored("robot", &below_a_list), Err(Error::Binary { .. })));
        let moved = json!({"copy": marker("robot.camera.frame")});
        assert!(matches!(stored("robot", &moved), Err(Error::Binary { .. })));
    }

    #[test]
    fn a_commit_deletes_the_arrays_gone_and_rewrites_the_metadata_only_when_they_change() {
        let old = Some(json!({"a": marker("robot.a"), "b": marker("robot.b"), "n": 1}));
        let new = Some(json!({"a": marker("robot.a"), "n": 2}));
        let dropped_b = commit("robot", 7, &old, &new, Vec::new(), None).unwrap();
        assert_eq!(dropped_b.expected, 7);
        assert_eq!(dropped_b.delete, ["robot.b"]);
        let metadata: Value = serde_json::from_slice(&dropped_b.metadata.unwrap()).unwrap();
        assert_eq!(metadata["special_paths"], json!({".a": "default_numpy_handler"}));
        let same_arrays = commit_of(&new, &Some(json!({"a": marker("robot.a"), "n": 3})));
        assert!(same_arrays.metadata.is_none() && same_arrays.delete.is_empty());
        let deleted = commit_of(&new, &None);
        assert!(deleted.json.is_none());
        assert_eq!(deleted.delete, ["robot.a"]);
        let path = Path::parse("robot.n").unwrap();
        let published = commit("robot", 1, &new, &new, Vec::new(), Some(&path)).unwrap();
        assert_eq!(published.publish.as_deref(), Some("__pubspace@0__:robot.n"));
    }

    fn commit_of(old: &Doc, new: &Doc) -> ReemCommit {
        commit("robot", 1, old, new, Vec::new(), None).unwrap()
    }

    #[test]
    fn a_document_owns_the_arrays_under_its_name() {
        assert!(owns("robot", "robot.camera.frame"));
        assert!(!owns("robot", "robotic.frame"));
        assert!(!owns("robot", "robot"));
        assert_eq!(publish_channel("robot.pose.x"), "__pubspace@0__:robot.pose.x");
        assert_eq!(
            crate::layout::reem::metadata_channel("robot"),
            "__keyspace@0__:robot&&&&metadata"
        );
    }
}
