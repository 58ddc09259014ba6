//! Refusing values that JSON cannot carry, before they are encoded.
//!
//! `serde_json` writes a non-finite float (`inf`, `-inf`, `NaN`) as `null`
//! without complaint, so a handler returning `f64::INFINITY` would reach the
//! caller as a silent `null`. Before a value is encoded, [`check`] walks it
//! with a serializer that does nothing but look at every float, and reports
//! the first non-finite one. The walk allocates nothing.

use std::fmt;

use serde::ser::{self, Serialize};

/// Fails when `value` holds a non-finite float, or when its `Serialize`
/// implementation itself fails.
pub(crate) fn check<T: Serialize + ?Sized>(value: &T) -> Result<(), NotRepresentable> {
    value.serialize(FiniteCheck)
}

/// Why a value cannot be encoded as JSON.
#[derive(Debug)]
pub(crate) struct NotRepresentable(pub(crate) String);

impl fmt::Display for NotRepresentable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for NotRepresentable {}

impl ser::Error for NotRepresentable {
    fn custom<M: fmt::Display>(msg: M) -> Self {
        NotRepresentable(msg.to_string())
    }
}

#[derive(Clone, Copy)]
struct FiniteCheck;

type Checked = Result<(), NotRepresentable>;

fn float(value: f64) -> Checked {
    if value.is_finite() {
        Ok(())
    } else {
        Err(NotRepresentable(format!(
            "the float {value} is not finite, and JSON has no way to write it"
        )))
    }
}

impl ser::Serializer for FiniteCheck {
    type Ok = ();
    type Error = NotRepresentable;
    type SerializeSeq = Self;
    type SerializeTuple = Self;
    type SerializeTupleStruct = Self;
    type SerializeTupleVariant = Self;
    type SerializeMap = Self;
    type SerializeStruct = Self;
    type SerializeStructVariant = Self;

    fn serialize_f32(self, v: f32) -> Checked {
        float(f64::from(v))
    }
    fn serialize_f64(self, v: f64) -> Checked {
        float(v)
    }
    fn serialize_bool(self, _: bool) -> Checked {
        Ok(())
    }
    fn serialize_i8(self, _: i8) -> Checked {
        Ok(())
    }
    fn serialize_i16(self, _: i16) -> Checked {
        Ok(())
    }
    fn serialize_i32(self, _: i32) -> Checked {
        Ok(())
    }
    fn serialize_i64(self, _: i64) -> Checked {
        Ok(())
    }
    fn serialize_i128(self, _: i128) -> Checked {
        Ok(())
    }
    fn serialize_u8(self, _: u8) -> Checked {
        Ok(())
    }
    fn serialize_u16(self, _: u16) -> Checked {
        Ok(())
    }
    fn serialize_u32(self, _: u32) -> Checked {
        Ok(())
    }
    fn serialize_u64(self, _: u64) -> Checked {
        Ok(())
    }
    fn serialize_u128(self, _: u128) -> Checked {
        Ok(())
    }
    fn serialize_char(self, _: char) -> Checked {
        Ok(())
    }
    fn serialize_str(self, _: &str) -> Checked {
        Ok(())
    }
    fn serialize_bytes(self, _: &[u8]) -> Checked {
        Ok(())
    }
    fn serialize_none(self) -> Checked {
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Checked {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Checked {
        Ok(())
    }
    fn serialize_unit_struct(self, _: &'static str) -> Checked {
        Ok(())
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, _: &'static str) -> Checked {
        Ok(())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _: &'static str, value: &T) -> Checked {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        value: &T,
    ) -> Checked {
        value.serialize(self)
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self, NotRepresentable> {
        Ok(self)
    }
    fn serialize_tuple(self, _: usize) -> Result<Self, NotRepresentable> {
        Ok(self)
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Self, NotRepresentable> {
        Ok(self)
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self, NotRepresentable> {
        Ok(self)
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self, NotRepresentable> {
        Ok(self)
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self, NotRepresentable> {
        Ok(self)
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self, NotRepresentable> {
        Ok(self)
    }
}

/// The compound serializers only pass each element on to the check.
macro_rules! check_elements {
    ($($trait:ident :: $method:ident ($($name:ty)?)),* $(,)?) => {$(
        impl ser::$trait for FiniteCheck {
            type Ok = ();
            type Error = NotRepresentable;
            fn $method<T: Serialize + ?Sized>(&mut self, $(_: $name,)? value: &T) -> Checked {
                value.serialize(*self)
            }
            fn end(self) -> Checked {
                Ok(())
            }
        }
    )*};
}

check_elements!(
    SerializeSeq::serialize_element(),
    SerializeTuple::serialize_element(),
    SerializeTupleStruct::serialize_field(),
    SerializeTupleVariant::serialize_field(),
    SerializeStruct::serialize_field(&'static str),
    SerializeStructVariant::serialize_field(&'static str),
);

impl ser::SerializeMap for FiniteCheck {
    type Ok = ();
    type Error = NotRepresentable;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Checked {
        key.serialize(*self)
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Checked {
        value.serialize(*self)
    }
    fn end(self) -> Checked {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn finds_non_finite_floats_however_deep() {
        assert!(check(&f64::INFINITY).is_err());
        assert!(check(&f32::NAN).is_err());
        assert!(check(&vec![Some((1, f64::NEG_INFINITY))]).is_err());
        let map: BTreeMap<String, Vec<f64>> = [("a".to_string(), vec![0.0, f64::NAN])].into();
        assert!(check(&map).is_err());
    }

    #[test]
    fn accepts_everything_else() {
        assert!(check(&(1.5, -0.0, f64::MAX, f64::MIN_POSITIVE, "x", None::<f64>, ())).is_ok());
        assert!(check(&serde_json::json!({"a": [1, 2.5, null]})).is_ok());
    }
}
