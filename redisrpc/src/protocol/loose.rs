//! A tolerant JSON reader for the one non-standard habit of the peers.
//!
//! The Python and Ruby peers write non-finite floats as the bare tokens
//! `Infinity`, `-Infinity` and `NaN`, which is not JSON, so `serde_json`
//! rejects such a message. This reader accepts exactly that extension and
//! nothing more: it is only tried after the strict parser failed, so ordinary
//! messages never pay for it. Strings and numbers are handed to `serde_json`,
//! so escapes, surrogate pairs and float rounding behave exactly as in the
//! strict path, and integers keep their exact `i64`/`u64` value.

use std::collections::BTreeMap;

use serde_value::Value;

/// Parses `text` as JSON extended with `Infinity`, `-Infinity` and `NaN`.
pub(crate) fn parse(text: &str) -> Result<Value, String> {
    let mut parser = Parser { text, pos: 0 };
    let value = parser.value(0)?;
    parser.skip_whitespace();
    if parser.pos != text.len() {
        return Err(parser.error("trailing characters"));
    }
    Ok(value)
}

/// Deeper nesting than this is refused rather than risking the stack.
const MAX_DEPTH: usize = 128;

struct Parser<'a> {
    text: &'a str,
    pos: usize,
}

impl Parser<'_> {
    fn error(&self, what: &str) -> String {
        format!("{what} at byte {}", self.pos)
    }

    fn rest(&self) -> &[u8] {
        &self.text.as_bytes()[self.pos..]
    }

    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.rest().first() {
            self.pos += 1;
        }
    }

    fn eat(&mut self, token: &str) -> bool {
        if self.rest().starts_with(token.as_bytes()) {
            self.pos += token.len();
            true
        } else {
            false
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value, String> {
        if depth > MAX_DEPTH {
            return Err(self.error("nesting too deep"));
        }
        self.skip_whitespace();
        let Some(&first) = self.rest().first() else {
            return Err(self.error("unexpected end"));
        };
        match first {
            b'{' => self.object(depth),
            b'[' => self.array(depth),
            b'"' => self.string().map(Value::String),
            _ if self.eat("null") => Ok(Value::Unit),
            _ if self.eat("true") => Ok(Value::Bool(true)),
            _ if self.eat("false") => Ok(Value::Bool(false)),
            _ if self.eat("NaN") => Ok(Value::F64(f64::NAN)),
            _ if self.eat("Infinity") => Ok(Value::F64(f64::INFINITY)),
            _ if self.eat("-Infinity") => Ok(Value::F64(f64::NEG_INFINITY)),
            b'-' | b'0'..=b'9' => self.number(),
            _ => Err(self.error("unexpected character")),
        }
    }

    fn object(&mut self, depth: usize) -> Result<Value, String> {
        self.pos += 1;
        let mut map = BTreeMap::new();
        self.skip_whitespace();
        if self.eat("}") {
            return Ok(Value::Map(map));
        }
        loop {
            self.skip_whitespace();
            if self.rest().first() != Some(&b'"') {
                return Err(self.error("expected a string key"));
            }
            let key = self.string()?;
            self.skip_whitespace();
            if !self.eat(":") {
                return Err(self.error("expected `:`"));
            }
            let value = self.value(depth + 1)?;
            map.insert(Value::String(key), value);
            self.skip_whitespace();
            if self.eat("}") {
                return Ok(Value::Map(map));
            }
            if !self.eat(",") {
                return Err(self.error("expected `,` or `}`"));
            }
        }
    }

    fn array(&mut self, depth: usize) -> Result<Value, String> {
        self.pos += 1;
        let mut items = Vec::new();
        self.skip_whitespace();
        if self.eat("]") {
            return Ok(Value::Seq(items));
        }
        loop {
            items.push(self.value(depth + 1)?);
            self.skip_whitespace();
            if self.eat("]") {
                return Ok(Value::Seq(items));
            }
            if !self.eat(",") {
                return Err(self.error("expected `,` or `]`"));
            }
        }
    }

    /// Finds the extent of the string literal at `pos` and lets serde_json
    /// decode it, escapes and all.
    fn string(&mut self) -> Result<String, String> {
        let bytes = self.text.as_bytes();
        let start = self.pos;
        let mut end = start + 1;
        loop {
            match bytes.get(end) {
                None => return Err(self.error("unterminated string")),
                Some(b'\\') => end += 2,
                Some(b'"') => break,
                Some(_) => end += 1,
            }
        }
        self.pos = end + 1;
        serde_json::from_str(&self.text[start..=end]).map_err(|e| format!("bad string at byte {start}: {e}"))
    }

    fn number(&mut self) -> Result<Value, String> {
        let start = self.pos;
        while let Some(b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9') = self.rest().first() {
            self.pos += 1;
        }
        let literal = &self.text[start..self.pos];
        let number: serde_json::Number =
            serde_json::from_str(literal).map_err(|e| format!("bad number at byte {start}: {e}"))?;
        Ok(if let Some(n) = number.as_u64() {
            Value::U64(n)
        } else if let Some(n) = number.as_i64() {
            Value::I64(n)
        } else {
            Value::F64(number.as_f64().unwrap_or(f64::NAN))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_non_finite_tokens_anywhere_a_number_may_stand() {
        let value = parse(r#"{"a": [Infinity, -Infinity, NaN], "b": -1.5}"#).unwrap();
        let Value::Map(map) = value else { panic!("not a map") };
        let Value::Seq(items) = &map[&Value::String("a".into())] else {
            panic!("not a seq")
        };
        assert_eq!(items[0], Value::F64(f64::INFINITY));
        assert_eq!(items[1], Value::F64(f64::NEG_INFINITY));
        assert!(matches!(items[2], Value::F64(x) if x.is_nan()));
        assert_eq!(map[&Value::String("b".into())], Value::F64(-1.5));
    }

    #[test]
    fn keeps_integers_exact_and_strings_untouched() {
        let value = parse(r#"[18446744073709551615, -9223372036854775808, "Infinity \"NaN\" é\u00e9"]"#).unwrap();
        assert_eq!(
            value,
            Value::Seq(vec![
                Value::U64(u64::MAX),
                Value::I64(i64::MIN),
                Value::String("Infinity \"NaN\" éé".into()),
            ])
        );
    }

    #[test]
    fn rejects_what_is_not_json_or_the_extension() {
        for bad in ["", "[1,", "{\"a\" 1}", "Inf", "[1] 2", "'x'", "{1: 2}", "\"open"] {
            assert!(parse(bad).is_err(), "accepted {bad:?}");
        }
        let deep = "[".repeat(MAX_DEPTH + 2);
        assert!(parse(&deep).is_err());
    }
}
