//! Binary values beside a document: n-dimensional arrays in numpy's layout,
//! and the [`Marshaller`] trait for other binary types.
//!
//! Large numeric data (camera frames, point clouds) would be slow and big
//! as JSON. A binary value is stored in a Redis hash of its own, and the
//! document holds a small marker in its place:
//!
//! ```json
//! {"$binary": {"label": "ndarray", "key": "__state__:{robot}.camera.frame"}}
//! ```
//!
//! `key` is the hash's Redis key (made from the value's path when it was
//! written, see [`layout::binary`](crate::layout::binary); a different one
//! if that name was taken) and `label` names the marshaller that wrote it.
//! The hash is written, replaced and deleted atomically with the document:
//! setting or deleting any path that contained a marker deletes the hash
//! too. An object whose only member is `$binary` is therefore reserved for
//! markers. Only hashes the document owns ([`layout::owns`](crate::layout::owns))
//! are read or deleted through its markers: a marker copied from another
//! document, or written by hand, can reach no other data.
//!
//! [`NdArray`] is stored by [`NdArrayMarshaller`] as the REEM Python library
//! stores numpy arrays: fields `arr` (the raw little-endian bytes, C order),
//! `dtype` (`uint8`, `int32`, `int64`, `float32`, `float64`) and `shape`
//! (numpy's printed tuple, `(480, 640, 3)`, `(5,)`, `()`). In Python:
//! `h = r.hgetall(key); numpy.frombuffer(h[b"arr"], h[b"dtype"].decode()).reshape(shape)`.

pub use bytes::Bytes;
use serde_json::{Value, json};

use super::path::Segment;
use crate::BoxError;

/// The label of [`NdArrayMarshaller`]'s values.
pub(crate) const NDARRAY_LABEL: &str = "ndarray";

/// The member that marks a binary value in a document.
const MARKER: &str = "$binary";

/// Hash fields: `(name, bytes)`.
pub type Fields = crate::backend::HashFields;

/// How a binary type is stored in a Redis hash.
///
/// The store writes the hash (and deletes it when the value is replaced or
/// deleted) atomically with the document, so a marshaller only converts
/// between its value and the hash's fields. Its [`label`](Marshaller::label)
/// is recorded in the document's marker, so readers know how to decode the
/// hash, and reading with a marshaller of another label is an error.
pub trait Marshaller: Send + Sync {
    /// The Rust type it stores.
    type Value;

    /// A name unique to this encoding, recorded beside every value.
    fn label(&self) -> &str;

    /// The hash fields that store `value`. An error's text becomes the
    /// reason of the [`Error::Binary`](crate::Error::Binary) the store returns.
    fn write(&self, value: &Self::Value) -> Result<Fields, BoxError>;

    /// Rebuilds a value from the fields [`write`](Marshaller::write) made.
    fn read(&self, fields: Fields) -> Result<Self::Value, BoxError>;
}

/// Why an [`NdArray`], or the hash it was stored in, is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ArrayError {
    /// The product of the shape's dimensions does not fit a `usize`.
    #[error("the shape's element count overflows")]
    ShapeOverflow,
    /// The bytes are not the shape's element count times the element size.
    #[error("shape {} of {} needs {count} × {} bytes, got {got}", shape_text(shape), dtype.name(), dtype.size())]
    SizeMismatch {
        /// The element type.
        dtype: Dtype,
        /// The shape.
        shape: Vec<usize>,
        /// The shape's element count.
        count: usize,
        /// How many bytes there are.
        got: usize,
    },
    /// The elements were asked for as another type than the array holds.
    #[error("the array holds {}, not {}", holds.name(), wanted.name())]
    WrongElementType {
        /// The array's element type.
        holds: Dtype,
        /// The type asked for.
        wanted: Dtype,
    },
    /// The stored hash lacks a field.
    #[error("the hash has no `{0}` field")]
    MissingField(&'static str),
    /// A stored field that should be text is not UTF-8.
    #[error("the `{0}` field is not text")]
    FieldNotText(&'static str),
    /// The stored element type is not one [`Dtype`] names.
    #[error("unsupported dtype `{0}` (supported: uint8, int32, int64, float32, float64)")]
    UnsupportedDtype(String),
    /// The stored shape is not a tuple of sizes as numpy prints it.
    #[error("cannot read the shape `{0}`")]
    UnreadableShape(String),
}

/// Where a binary value lives, as its marker in the document says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Marker {
    pub(crate) label: String,
    pub(crate) key: String,
}

impl Marker {
    /// The marker `value` is, if it is one.
    pub(crate) fn of(value: &Value) -> Option<Marker> {
        let map = value.as_object().filter(|map| map.len() == 1)?;
        let inner = map.get(MARKER)?.as_object()?;
        Some(Marker {
            label: inner.get("label")?.as_str()?.to_owned(),
            key: inner.get("key")?.as_str()?.to_owned(),
        })
    }

    pub(crate) fn to_value(&self) -> Value {
        json!({ MARKER: { "label": self.label, "key": self.key } })
    }

    /// Collects the keys of the markers in `value` but in the subtree at
    /// `skip` (the steps from `value` to it).
    pub(crate) fn collect_outside(value: &Value, skip: &[Segment], keys: &mut Vec<String>) {
        let Some((step, deeper)) = skip.split_first() else {
            return;
        };
        if let Some(marker) = Marker::of(value) {
            keys.push(marker.key);
            return;
        }
        let mut visit = |on_path: bool, item: &Value| {
            if on_path {
                Marker::collect_outside(item, deeper, keys);
            } else {
                Marker::collect(item, keys);
            }
        };
        match value {
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    visit(*step == Segment::Index(i), item);
                }
            }
            Value::Object(map) => {
                for (name, item) in map {
                    visit(matches!(step, Segment::Key(k) if k == name), item);
                }
            }
            _ => {}
        }
    }

    /// Every marker's key in `value`, depth first.
    pub(crate) fn collect(value: &Value, keys: &mut Vec<String>) {
        if let Some(marker) = Marker::of(value) {
            keys.push(marker.key);
            return;
        }
        match value {
            Value::Array(items) => items.iter().for_each(|item| Marker::collect(item, keys)),
            Value::Object(map) => map.values().for_each(|item| Marker::collect(item, keys)),
            _ => {}
        }
    }
}

/// The element types of an [`NdArray`], named as numpy names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dtype {
    /// `uint8`.
    U8,
    /// `int32`.
    I32,
    /// `int64`.
    I64,
    /// `float32`.
    F32,
    /// `float64`.
    F64,
}

impl Dtype {
    /// numpy's name: `uint8`, `int32`, `int64`, `float32`, `float64`.
    pub fn name(self) -> &'static str {
        match self {
            Dtype::U8 => "uint8",
            Dtype::I32 => "int32",
            Dtype::I64 => "int64",
            Dtype::F32 => "float32",
            Dtype::F64 => "float64",
        }
    }

    /// The bytes of one element.
    pub fn size(self) -> usize {
        match self {
            Dtype::U8 => 1,
            Dtype::I32 | Dtype::F32 => 4,
            Dtype::I64 | Dtype::F64 => 8,
        }
    }

    /// Parses numpy's name (`float32`) or little-endian type string (`<f4`).
    pub fn parse(name: &str) -> Option<Dtype> {
        Some(match name {
            "uint8" | "|u1" | "u1" => Dtype::U8,
            "int32" | "<i4" | "i4" => Dtype::I32,
            "int64" | "<i8" | "i8" => Dtype::I64,
            "float32" | "<f4" | "f4" => Dtype::F32,
            "float64" | "<f8" | "f8" => Dtype::F64,
            _ => return None,
        })
    }
}

/// A Rust element type of an [`NdArray`]: `u8`, `i32`, `i64`, `f32`, `f64`.
pub trait Element: Copy + Send + Sync + 'static {
    /// Its [`Dtype`].
    const DTYPE: Dtype;
    /// Appends its little-endian bytes.
    fn put(self, out: &mut Vec<u8>);
    /// Reads it from exactly `DTYPE.size()` little-endian bytes.
    fn take(bytes: &[u8]) -> Self;
}

macro_rules! element {
    ($($ty:ty => $dtype:ident),*) => {$(
        impl Element for $ty {
            const DTYPE: Dtype = Dtype::$dtype;
            fn put(self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
            fn take(bytes: &[u8]) -> Self {
                <$ty>::from_le_bytes(bytes.try_into().expect("one element's bytes"))
            }
        }
    )*};
}

element!(u8 => U8, i32 => I32, i64 => I64, f32 => F32, f64 => F64);

/// An n-dimensional array: element type, shape, and its elements as raw
/// little-endian bytes in C (row-major) order, as numpy holds them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NdArray {
    dtype: Dtype,
    shape: Vec<usize>,
    /// Shared with the hash fields it is written as, so that writing an
    /// array does not copy it.
    bytes: Bytes,
}

impl NdArray {
    /// An array from raw little-endian bytes (a `Vec<u8>` or a
    /// [`Bytes`]); fails when their length is not the shape's element count
    /// times the element size.
    pub fn from_bytes(dtype: Dtype, shape: Vec<usize>, bytes: impl Into<Bytes>) -> Result<NdArray, ArrayError> {
        let bytes = bytes.into();
        let count = shape
            .iter()
            .try_fold(1usize, |n, &d| n.checked_mul(d))
            .ok_or(ArrayError::ShapeOverflow)?;
        if count.checked_mul(dtype.size()) != Some(bytes.len()) {
            return Err(ArrayError::SizeMismatch {
                dtype,
                shape,
                count,
                got: bytes.len(),
            });
        }
        Ok(NdArray { dtype, shape, bytes })
    }

    /// An array of `elements` with `shape`; fails when the counts differ.
    pub fn from_elements<T: Element>(shape: Vec<usize>, elements: &[T]) -> Result<NdArray, ArrayError> {
        let mut bytes = Vec::with_capacity(elements.len() * T::DTYPE.size());
        for element in elements {
            element.put(&mut bytes);
        }
        NdArray::from_bytes(T::DTYPE, shape, bytes)
    }

    /// The element type.
    pub fn dtype(&self) -> Dtype {
        self.dtype
    }

    /// The length of each dimension.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The raw little-endian bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The raw bytes, without copying unless they are shared (with a clone
    /// of the array).
    pub fn into_bytes(self) -> Vec<u8> {
        Vec::from(self.bytes)
    }

    /// The elements, in C order; fails when `T` is not the array's type.
    pub fn to_vec<T: Element>(&self) -> Result<Vec<T>, ArrayError> {
        if T::DTYPE != self.dtype {
            return Err(ArrayError::WrongElementType {
                holds: self.dtype,
                wanted: T::DTYPE,
            });
        }
        Ok(self.bytes.chunks_exact(self.dtype.size()).map(T::take).collect())
    }
}

/// numpy's printed shape: `()`, `(5,)`, `(480, 640, 3)`.
fn shape_text(shape: &[usize]) -> String {
    match shape {
        [one] => format!("({one},)"),
        _ => format!(
            "({})",
            shape.iter().map(usize::to_string).collect::<Vec<_>>().join(", ")
        ),
    }
}

fn parse_shape(text: &str) -> Option<Vec<usize>> {
    let inner = text.trim().strip_prefix('(')?.strip_suffix(')')?;
    inner
        .split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
        // Python 2 printed long integers with an `L`.
        .map(|part| part.trim_end_matches('L').parse().ok())
        .collect()
}

/// Stores an [`NdArray`] in REEM's numpy layout (label `ndarray`; see the
/// [module docs](self)).
#[derive(Debug, Clone, Copy, Default)]
pub struct NdArrayMarshaller;

impl Marshaller for NdArrayMarshaller {
    type Value = NdArray;

    fn label(&self) -> &str {
        NDARRAY_LABEL
    }

    fn write(&self, array: &NdArray) -> Result<Fields, BoxError> {
        Ok(vec![
            ("arr".into(), array.bytes.clone()),
            ("dtype".into(), Bytes::from_static(array.dtype.name().as_bytes())),
            ("shape".into(), Bytes::from(shape_text(&array.shape))),
        ])
    }

    fn read(&self, fields: Fields) -> Result<NdArray, BoxError> {
        Ok(read_array(fields)?)
    }
}

fn read_array(fields: Fields) -> Result<NdArray, ArrayError> {
    let (mut arr, mut dtype, mut shape) = (None, None, None);
    for (name, value) in fields {
        match name.as_str() {
            "arr" => arr = Some(value),
            "dtype" => dtype = Some(value),
            "shape" => shape = Some(value),
            _ => {}
        }
    }
    let text = |field: Option<Bytes>, name: &'static str| {
        String::from_utf8(field.ok_or(ArrayError::MissingField(name))?.to_vec())
            .map_err(|_| ArrayError::FieldNotText(name))
    };
    let dtype_name = text(dtype, "dtype")?;
    let dtype = Dtype::parse(&dtype_name).ok_or(ArrayError::UnsupportedDtype(dtype_name))?;
    let shape_field = text(shape, "shape")?;
    let shape = parse_shape(&shape_field).ok_or(ArrayError::UnreadableShape(shape_field))?;
    let arr = arr.ok_or(ArrayError::MissingField("arr"))?;
    NdArray::from_bytes(dtype, shape, arr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_print_and_parse_as_numpy() {
        for (shape, text) in [(vec![], "()"), (vec![5], "(5,)"), (vec![480, 640, 3], "(480, 640, 3)")] {
            assert_eq!(shape_text(&shape), text);
            assert_eq!(parse_shape(text), Some(shape));
        }
        assert_eq!(parse_shape("(2L, 3L)"), Some(vec![2, 3]));
        assert_eq!(parse_shape("2, 3"), None);
    }

    #[test]
    fn arrays_check_their_size_and_type() {
        let array = NdArray::from_elements(vec![2, 2], &[1.5f32, -0.0, 3.0, 4.0]).unwrap();
        assert_eq!(array.bytes().len(), 16);
        assert_eq!(array.to_vec::<f32>().unwrap()[1].to_bits(), (-0.0f32).to_bits());
        assert!(array.to_vec::<f64>().is_err());
        assert!(NdArray::from_elements(vec![3], &[1u8, 2]).is_err());
        let fields = NdArrayMarshaller.write(&array).unwrap();
        assert_eq!(NdArrayMarshaller.read(fields).unwrap(), array);
    }
}
