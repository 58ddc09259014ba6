//! W3C trace context: the `traceparent` text a request carries, so that the
//! server's span joins the caller's trace.
//!
//! The text is `00-<trace id: 32 hex>-<parent span id: 16 hex>-<flags: 2 hex>`
//! (<https://www.w3.org/TR/trace-context/#traceparent-header>). Anything else
//! reads as no context: the server then starts a new trace, as it does for a
//! request without one.

use std::fmt;

/// Where a span sits in a trace: its trace's id, its own id, and whether the
/// trace is sampled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceContext {
    /// The trace's id, never zero.
    pub trace_id: u128,
    /// The span's id, never zero.
    pub span_id: u64,
    /// Whether the trace's first span chose to record it (flag `01`).
    pub sampled: bool,
}

impl TraceContext {
    /// The first span of a new, sampled trace.
    pub fn new_root() -> Self {
        TraceContext {
            trace_id: nonzero(|| uuid::Uuid::new_v4().as_u128()),
            span_id: new_span_id(),
            sampled: true,
        }
    }

    /// A span of the same trace, below this one.
    pub fn child(&self) -> Self {
        TraceContext {
            span_id: new_span_id(),
            ..*self
        }
    }

    /// Reads a `traceparent` text; `None` for anything malformed, an unknown
    /// version `ff`, or an all-zero id.
    pub fn parse(text: &str) -> Option<Self> {
        let bytes = text.as_bytes();
        // Version 00 is exactly 55 characters; later versions may append
        // `-…` members, which this reader skips, as the standard asks.
        let well_formed = bytes.len() >= 55
            && bytes[2] == b'-'
            && bytes[35] == b'-'
            && bytes[52] == b'-'
            && (bytes.len() == 55 || (bytes[55] == b'-' && &bytes[..2] != b"00"));
        if !well_formed {
            return None;
        }
        let version = hex_field(&bytes[..2])?;
        let trace_id = hex_field(&bytes[3..35])?;
        let span_id = u64::try_from(hex_field(&bytes[36..52])?).ok()?;
        let flags = hex_field(&bytes[53..55])?;
        if version == 0xff || trace_id == 0 || span_id == 0 {
            return None;
        }
        Some(TraceContext {
            trace_id,
            span_id,
            sampled: flags & 1 == 1,
        })
    }

    /// The `traceparent` text, version 00, made without allocating.
    pub(crate) fn encode(&self) -> [u8; TRACEPARENT_LEN] {
        let mut text = *b"00-00000000000000000000000000000000-0000000000000000-00";
        write_hex(&mut text[3..35], self.trace_id);
        write_hex(&mut text[36..52], u128::from(self.span_id));
        write_hex(&mut text[53..55], u128::from(self.sampled));
        text
    }

    /// The trace id as 32 lowercase hex digits, as tracing back ends show it.
    pub fn trace_id_hex(&self) -> String {
        format!("{:032x}", self.trace_id)
    }

    /// The span id as 16 lowercase hex digits.
    pub fn span_id_hex(&self) -> String {
        format!("{:016x}", self.span_id)
    }
}

/// The `traceparent` text, version 00.
impl fmt::Display for TraceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(std::str::from_utf8(&self.encode()).map_err(|_| fmt::Error)?)
    }
}

/// The length of a version 00 `traceparent`.
pub(crate) const TRACEPARENT_LEN: usize = 55;

/// A lowercase (or, leniently, uppercase) hex number of the field's width.
fn hex_field(field: &[u8]) -> Option<u128> {
    // Up to 16 digits at a time in a u64: shifting a u128 per digit costs
    // more than the whole rest of reading a request.
    let (high, low) = field.split_at(field.len().saturating_sub(16));
    Some(u128::from(hex_u64(high)?) << 64 | u128::from(hex_u64(low)?))
}

/// Up to 16 hex digits.
fn hex_u64(digits: &[u8]) -> Option<u64> {
    const INVALID: u8 = 0xff;
    const VALUES: [u8; 256] = {
        let mut values = [INVALID; 256];
        let mut i = 0;
        while i < 10 {
            values[b'0' as usize + i] = i as u8;
            i += 1;
        }
        let mut i = 0;
        while i < 6 {
            values[b'a' as usize + i] = 10 + i as u8;
            values[b'A' as usize + i] = 10 + i as u8;
            i += 1;
        }
        values
    };
    let mut number = 0u64;
    for &digit in digits {
        let value = VALUES[usize::from(digit)];
        if value == INVALID {
            return None;
        }
        number = number << 4 | u64::from(value);
    }
    Some(number)
}

/// Writes `number`'s low digits into `out`, in lowercase hex, zero-padded.
fn write_hex(out: &mut [u8], mut number: u128) {
    for digit in out.iter_mut().rev() {
        *digit = b"0123456789abcdef"[(number & 0xf) as usize];
        number >>= 4;
    }
}

fn new_span_id() -> u64 {
    nonzero(|| uuid::Uuid::new_v4().as_u64_pair().0)
}

/// A random id that is not zero, which the standard reserves.
fn nonzero<T: Default + PartialEq>(random: impl Fn() -> T) -> T {
    loop {
        let id = random();
        if id != T::default() {
            return id;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_traceparent_reads_back_as_written() {
        let text = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let context = TraceContext::parse(text).unwrap();
        assert_eq!(context.trace_id, 0x4bf92f3577b34da6a3ce929d0e0e4736);
        assert_eq!(context.span_id, 0x00f067aa0ba902b7);
        assert!(context.sampled);
        assert_eq!(context.to_string(), text);
        assert!(!TraceContext::parse(&text.replace("-01", "-00")).unwrap().sampled);
    }

    #[test]
    fn malformed_or_zero_contexts_read_as_none() {
        for text in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e473x-00f067aa0ba902b7-01",
            "00-+bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            assert_eq!(TraceContext::parse(text), None, "{text:?}");
        }
        // A later version may append members.
        let later = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-comes";
        assert!(TraceContext::parse(later).is_some());
    }

    #[test]
    fn a_child_keeps_the_trace_and_takes_a_new_span_id() {
        let root = TraceContext::new_root();
        let child = root.child();
        assert_eq!(child.trace_id, root.trace_id);
        assert_ne!(child.span_id, root.span_id);
        assert_ne!(TraceContext::new_root().trace_id, root.trace_id);
        assert_eq!(TraceContext::parse(&child.to_string()), Some(child));
    }
}
