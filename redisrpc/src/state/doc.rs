//! Operations on one document held as a [`serde_json::Value`].
//!
//! Every store operation reads a document, applies one of these functions
//! to a copy and writes the copy back atomically, only when the function
//! succeeded: a failed operation changes nothing (a function may have
//! changed the copy before failing, which is then thrown away).

use serde_json::{Map, Value};

use super::binary::Marker;
use super::path::{Path, Segment};
use crate::{Error, Result};

/// A document as read: `None` when its key does not exist.
pub(crate) type Doc = Option<Value>;

/// Whether two documents are the same to the last bit: unlike `==`, which
/// takes `-0.0` for `0.0`, floats compare by their bits, so writing `-0.0`
/// over `0.0` is a change.
pub(crate) fn identical(a: &Doc, b: &Doc) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => identical_values(a, b),
        (None, None) => true,
        _ => false,
    }
}

fn identical_values(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) if x.is_f64() && y.is_f64() => {
            x.as_f64().map(f64::to_bits) == y.as_f64().map(f64::to_bits)
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| identical_values(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(name, x)| y.get(name).is_some_and(|y| identical_values(x, y)))
        }
        _ => a == b,
    }
}

/// The kind of value at a path, as [`State::type_of`](super::State::type_of)
/// reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueType {
    /// `null`.
    Null,
    /// `true` or `false`.
    Boolean,
    /// A number without fraction or exponent that fits `i64` or `u64`.
    Integer,
    /// Any other number.
    Float,
    /// A string.
    String,
    /// An array.
    Array,
    /// An object.
    Object,
    /// A binary value stored beside the document, with its marshaller's label.
    Binary(String),
}

impl ValueType {
    /// The type of `value`.
    pub fn of(value: &Value) -> ValueType {
        match value {
            Value::Null => ValueType::Null,
            Value::Bool(_) => ValueType::Boolean,
            Value::Number(n) if n.is_i64() || n.is_u64() => ValueType::Integer,
            Value::Number(_) => ValueType::Float,
            Value::String(_) => ValueType::String,
            Value::Array(_) => ValueType::Array,
            Value::Object(_) => match Marker::of(value) {
                Some(marker) => ValueType::Binary(marker.label),
                None => ValueType::Object,
            },
        }
    }

    /// A short name for messages: `integer`, `binary value (ndarray)`, ….
    pub fn name(&self) -> String {
        match self {
            ValueType::Null => "null".into(),
            ValueType::Boolean => "boolean".into(),
            ValueType::Integer => "integer".into(),
            ValueType::Float => "float".into(),
            ValueType::String => "string".into(),
            ValueType::Array => "array".into(),
            ValueType::Object => "object".into(),
            ValueType::Binary(label) => format!("binary value ({label})"),
        }
    }
}

pub(crate) fn wrong_type(path: &Path, expected: &str, found: &Value) -> Error {
    Error::WrongType {
        path: path.to_string(),
        expected: expected.to_owned(),
        found: ValueType::of(found).name(),
    }
}

fn not_found(path: &Path, upto: usize) -> Error {
    let missing = path.prefix(upto + 1);
    let reason = if upto == 0 && path.segments().is_empty() {
        String::new()
    } else {
        format!("`{missing}` does not exist")
    };
    Error::NotFound {
        path: path.to_string(),
        reason,
    }
}

fn missing_key(path: &Path) -> Error {
    Error::NotFound {
        path: path.to_string(),
        reason: format!("the key `{}` does not exist", path.key()),
    }
}

/// One step down from `value`, or why not.
fn step<'a>(value: &'a Value, segment: &Segment, path: &Path, depth: usize) -> Result<&'a Value> {
    let found = match (value, segment) {
        (Value::Object(map), Segment::Key(name)) if Marker::of(value).is_none() => map.get(name),
        (Value::Array(items), Segment::Index(index)) => items.get(*index),
        (_, Segment::Key(_)) => return Err(wrong_type(&path.prefix(depth), "object", value)),
        (_, Segment::Index(_)) => return Err(wrong_type(&path.prefix(depth), "array", value)),
    };
    found.ok_or_else(|| not_found(path, depth))
}

/// The value at `path` in `doc`.
pub(crate) fn get<'a>(doc: &'a Doc, path: &Path) -> Result<&'a Value> {
    let mut value = doc.as_ref().ok_or_else(|| missing_key(path))?;
    for (depth, segment) in path.segments().iter().enumerate() {
        value = step(value, segment, path, depth)?;
    }
    Ok(value)
}

/// The value at `path` within `value`, which is the value at `base`; for
/// reading a subtree held apart from its document (a mirror).
pub(crate) fn get_within<'a>(value: &'a Value, base: &Path, path: &Path) -> Result<&'a Value> {
    let mut value = value;
    let start = base.segments().len();
    for (depth, segment) in path.segments().iter().enumerate().skip(start) {
        value = step(value, segment, path, depth)?;
    }
    Ok(value)
}

/// The value at `path`, for changing it in place.
pub(crate) fn get_mut<'a>(doc: &'a mut Doc, path: &Path) -> Result<&'a mut Value> {
    // Checked read-only first, so the errors come from one place.
    get(doc, path)?;
    let mut value = doc.as_mut().expect("checked above");
    for segment in path.segments() {
        value = match (value, segment) {
            (Value::Object(map), Segment::Key(name)) => map.get_mut(name).expect("checked above"),
            (Value::Array(items), Segment::Index(index)) => &mut items[*index],
            _ => unreachable!("checked above"),
        };
    }
    Ok(value)
}

/// Sets the value at `path`, creating missing objects on the way for
/// member steps. Indexes must be inside their arrays.
pub(crate) fn set(doc: &mut Doc, path: &Path, new: Value) -> Result<()> {
    let Some((last, parents)) = path.segments().split_last() else {
        *doc = Some(new);
        return Ok(());
    };
    let mut value = doc.get_or_insert_with(|| Value::Object(Map::new()));
    for (depth, segment) in parents.iter().enumerate() {
        check_container(value, segment, path, depth)?;
        value = match (value, segment) {
            (Value::Object(map), Segment::Key(name)) => {
                let next_is_name = matches!(path.segments()[depth + 1], Segment::Key(_));
                if !map.contains_key(name) && !next_is_name {
                    return Err(not_found(path, depth));
                }
                map.entry(name.clone()).or_insert_with(|| Value::Object(Map::new()))
            }
            (Value::Array(items), Segment::Index(index)) => {
                let len = items.len();
                items.get_mut(*index).ok_or_else(|| past_end(path, depth, len))?
            }
            _ => unreachable!("checked by check_container"),
        };
    }
    let depth = parents.len();
    check_container(value, last, path, depth)?;
    match (value, last) {
        (Value::Object(map), Segment::Key(name)) => {
            map.insert(name.clone(), new);
        }
        (Value::Array(items), Segment::Index(index)) => {
            let len = items.len();
            *items.get_mut(*index).ok_or_else(|| past_end(path, depth, len))? = new;
        }
        _ => unreachable!("checked by check_container"),
    }
    Ok(())
}

fn check_container(value: &Value, segment: &Segment, path: &Path, depth: usize) -> Result<()> {
    match (value, segment) {
        (Value::Object(_), Segment::Key(_)) if Marker::of(value).is_none() => Ok(()),
        (Value::Array(_), Segment::Index(_)) => Ok(()),
        (_, Segment::Key(_)) => Err(wrong_type(&path.prefix(depth), "object", value)),
        (_, Segment::Index(_)) => Err(wrong_type(&path.prefix(depth), "array", value)),
    }
}

fn past_end(path: &Path, depth: usize, len: usize) -> Error {
    Error::NotFound {
        path: path.to_string(),
        reason: format!(
            "`{}` is past the end of `{}`, which has {len} elements",
            path.prefix(depth + 1),
            path.prefix(depth)
        ),
    }
}

/// Removes the value at `path`: a member from its object, an element from
/// its array (later elements move down), or the whole document. Returns
/// the removed value.
pub(crate) fn delete(doc: &mut Doc, path: &Path) -> Result<Value> {
    let Some((last, _)) = path.segments().split_last() else {
        return doc.take().ok_or_else(|| missing_key(path));
    };
    get(doc, path)?;
    let parent = get_mut(doc, &path.prefix(path.segments().len() - 1))?;
    Ok(match (parent, last) {
        (Value::Object(map), Segment::Key(name)) => map.remove(name).expect("checked above"),
        (Value::Array(items), Segment::Index(index)) => items.remove(*index),
        _ => unreachable!("checked above"),
    })
}

/// The length of the array, object or string at `path` (a string's in
/// Unicode scalar values).
pub(crate) fn len(doc: &Doc, path: &Path) -> Result<usize> {
    let value = get(doc, path)?;
    match value {
        Value::Array(items) => Ok(items.len()),
        Value::Object(map) if Marker::of(value).is_none() => Ok(map.len()),
        Value::String(text) => Ok(text.chars().count()),
        other => Err(wrong_type(path, "array, object or string", other)),
    }
}

/// Appends `items` to the array at `path`; returns its new length.
pub(crate) fn append(doc: &mut Doc, path: &Path, items: Vec<Value>) -> Result<usize> {
    match get_mut(doc, path)? {
        Value::Array(array) => {
            array.extend(items);
            Ok(array.len())
        }
        other => Err(wrong_type(path, "array", other)),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn p(text: &str) -> Path {
        Path::parse(text).unwrap()
    }

    #[test]
    fn set_creates_missing_objects_but_not_arrays() {
        let mut doc = None;
        set(&mut doc, &p("robot.arm.angle"), json!(1.5)).unwrap();
        assert_eq!(doc, Some(json!({"arm": {"angle": 1.5}})));
        set(&mut doc, &p("robot.joints"), json!([1, 2])).unwrap();
        set(&mut doc, &p("robot.joints[1]"), json!(5)).unwrap();
        assert_eq!(get(&doc, &p("robot.joints")).unwrap(), &json!([1, 5]));
        let before = doc.clone();
        assert!(
            set(&mut doc, &p("robot.joints[2]"), json!(0))
                .unwrap_err()
                .is_not_found()
        );
        assert!(set(&mut doc, &p("robot.legs[0]"), json!(0)).unwrap_err().is_not_found());
        assert!(
            set(&mut doc, &p("robot.arm.angle.x"), json!(0))
                .unwrap_err()
                .is_wrong_type()
        );
        assert!(set(&mut doc, &p("robot.arm[0]"), json!(0)).unwrap_err().is_wrong_type());
        assert_eq!(doc, before);
    }

    #[test]
    fn delete_len_append() {
        let mut doc = Some(json!({"a": [1, 2, 3], "s": "héllo", "o": {}}));
        assert_eq!(delete(&mut doc, &p("k.a[0]")).unwrap(), json!(1));
        assert_eq!(len(&doc, &p("k.a")).unwrap(), 2);
        assert_eq!(len(&doc, &p("k.s")).unwrap(), 5);
        assert_eq!(len(&doc, &p("k.o")).unwrap(), 0);
        assert_eq!(append(&mut doc, &p("k.a"), vec![json!(4), json!(5)]).unwrap(), 4);
        assert!(append(&mut doc, &p("k.s"), vec![json!(4)]).unwrap_err().is_wrong_type());
        assert!(delete(&mut doc, &p("k.zz")).unwrap_err().is_not_found());
        assert_eq!(
            delete(&mut doc, &p("k")).unwrap(),
            json!({"a": [2, 3, 4, 5], "s": "héllo", "o": {}})
        );
        assert!(get(&doc, &p("k")).unwrap_err().is_not_found());
    }
}
