//! The optional request members only our own peers send (`deadline`,
//! `sent`, `traceparent`), read leniently: anything but the expected shape
//! reads as absent, never as an error, because a peer that happens to send
//! a member of the same name must not lose its call. They are read in
//! place, without building a `serde_json::Value` of them, since every
//! request of ours carries them.

use std::fmt;

use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::ser::{Error as _, Serialize, Serializer};

use crate::telemetry::{TRACEPARENT_LEN, TraceContext};

/// Milliseconds: a non-negative integer, or else none.
pub(super) fn millis<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    deserializer.deserialize_any(Lenient {
        number: Some,
        text: |_| None,
    })
}

/// A well-formed W3C trace context, or else none.
pub(super) fn traceparent<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<TraceContext>, D::Error> {
    deserializer.deserialize_any(Lenient {
        number: |_| None,
        text: TraceContext::parse,
    })
}

/// A trace context as the `traceparent` text it is sent as.
pub(super) struct Traceparent(pub(super) [u8; TRACEPARENT_LEN]);

impl Serialize for Traceparent {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(std::str::from_utf8(&self.0).map_err(S::Error::custom)?)
    }
}

/// Reads any JSON value as an `Option<T>`: a non-negative integer through
/// `number`, a string through `text`, anything else as `None`.
struct Lenient<T> {
    number: fn(u64) -> Option<T>,
    text: fn(&str) -> Option<T>,
}

impl<'de, T> Visitor<'de> for Lenient<T> {
    type Value = Option<T>;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("any JSON value")
    }

    fn visit_u64<E>(self, value: u64) -> Result<Self::Value, E> {
        Ok((self.number)(value))
    }

    fn visit_i64<E>(self, value: i64) -> Result<Self::Value, E> {
        Ok(u64::try_from(value).ok().and_then(self.number))
    }

    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_str<E>(self, value: &str) -> Result<Self::Value, E> {
        Ok((self.text)(value))
    }

    fn visit_bytes<E>(self, _: &[u8]) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(None)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(None)
    }
}
