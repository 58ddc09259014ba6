//! Finding a request's `response_queue` without parsing the rest of it.
//!
//! A request the decoder refuses still deserves a reply whenever it names
//! where to send one: valid JSON that serde_json will not take (a number
//! beyond `f64`, nesting deeper than its limit, a lone surrogate such as
//! Python's `json.dumps('\ud800')` writes), or a request over the size
//! limit. This scanner walks the top-level object once, in constant stack
//! and without allocating anything but the queue's name, skipping every
//! other member's value whatever it holds.

/// The string value of the top-level member `response_queue` of the JSON
/// object in `bytes`, if it has one that is valid text.
pub(crate) fn response_queue(bytes: &[u8]) -> Option<String> {
    let mut scanner = Scanner { bytes, at: 0 };
    scanner.skip_whitespace();
    scanner.expect(b'{')?;
    loop {
        scanner.skip_whitespace();
        if scanner.peek()? == b'}' {
            return None;
        }
        let key = scanner.string()?;
        scanner.skip_whitespace();
        scanner.expect(b':')?;
        scanner.skip_whitespace();
        if key.as_deref() == Some("response_queue") {
            return if scanner.peek()? == b'"' {
                scanner.string()?
            } else {
                None
            };
        }
        scanner.skip_value()?;
        scanner.skip_whitespace();
        match scanner.next()? {
            b',' => {}
            _ => return None,
        }
    }
}

struct Scanner<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Scanner<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let byte = self.peek()?;
        self.at += 1;
        Some(byte)
    }

    fn expect(&mut self, byte: u8) -> Option<()> {
        (self.next()? == byte).then_some(())
    }

    fn skip_whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    /// A string, decoded: `Some(None)` when it is well formed but not valid
    /// text (a lone surrogate), `None` when it is not a string at all.
    fn string(&mut self) -> Option<Option<String>> {
        self.expect(b'"')?;
        let start = self.at;
        let mut plain = true;
        loop {
            match self.next()? {
                b'"' => break,
                b'\\' => {
                    plain = false;
                    self.next()?;
                }
                _ => {}
            }
        }
        let raw = &self.bytes[start..self.at - 1];
        if plain {
            return Some(std::str::from_utf8(raw).ok().map(str::to_owned));
        }
        // Escapes are rare in a queue name: let serde_json decode them.
        let quoted = &self.bytes[start - 1..self.at];
        Some(serde_json::from_slice::<String>(quoted).ok())
    }

    /// Skips one value of any depth, counting brackets rather than
    /// recursing.
    fn skip_value(&mut self) -> Option<()> {
        let mut depth = 0usize;
        loop {
            match self.peek()? {
                b'"' => {
                    self.string()?;
                }
                b'{' | b'[' => {
                    depth += 1;
                    self.at += 1;
                }
                b'}' | b']' if depth > 0 => {
                    depth -= 1;
                    self.at += 1;
                }
                // The end of a scalar at the top level.
                b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r' if depth == 0 => return Some(()),
                _ => self.at += 1,
            }
            if depth == 0 && matches!(self.bytes.get(self.at.wrapping_sub(1)), Some(b'}' | b']' | b'"')) {
                return Some(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(text: &str) -> Option<String> {
        response_queue(text.as_bytes())
    }

    #[test]
    fn finds_the_queue_past_anything_serde_json_refuses() {
        let queue = Some("calc:rpc:1".to_string());
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let big = "9".repeat(400);
        for args in [
            "[1e400]",
            "[-1e400]",
            &big,
            &deep,
            r#"["\ud800"]"#,
            r#"{"a": [1, {"b": "]}"}]}"#,
            "null",
            "-0.5e3",
        ] {
            let text =
                format!(r#"{{"function_call": {{"name": "f", "args": {args}}}, "response_queue": "calc:rpc:1"}}"#);
            assert_eq!(found(&text), queue, "{text:.80}");
        }
        assert_eq!(found(r#" { "response_queue" : "calc:rpc:1" , "x": 1}"#), queue);
        assert_eq!(found(r#"{"response_queue": "calc:rpc:\u0031"}"#), queue);
    }

    #[test]
    fn finds_nothing_where_there_is_no_usable_queue() {
        for text in [
            "",
            "[1]",
            r#"{"function_call": {}}"#,
            r#"{"response_queue": 5}"#,
            r#"{"response_queue": "\ud800"}"#,
            r#"{"nested": {"response_queue": "calc:rpc:1"}}"#,
            r#"{"a": "unterminated"#,
        ] {
            assert_eq!(found(text), None, "{text}");
        }
    }
}
