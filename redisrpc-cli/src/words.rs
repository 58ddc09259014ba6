//! Turning command-line words into call arguments and JSON values, as a
//! user types them: `5` is a number, `elbow` a string, `joint=elbow` a
//! named argument.

use serde_json::{Map, Value};

/// A word's value: JSON when it parses, otherwise the text itself (so the
/// string `"5"` is written `'"5"'`).
pub(crate) fn value(word: &str) -> Value {
    serde_json::from_str(word).unwrap_or_else(|_| Value::String(word.to_owned()))
}

/// Positional and named arguments from `words`: `name=value` is named when
/// `name` is an identifier (a letter or `_`, then letters, digits, `_`),
/// and positional otherwise (`x=1+1` with a space, `{"a":1}` …).
pub(crate) fn arguments(words: &[String]) -> (Vec<Value>, Map<String, Value>) {
    let mut positional = Vec::new();
    let mut named = Map::new();
    for word in words {
        match word.split_once('=') {
            Some((name, text)) if is_identifier(name) => {
                named.insert(name.to_owned(), value(text));
            }
            _ => positional.push(value(word)),
        }
    }
    (positional, named)
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A duration as people write it: `500ms`, `2s`, `1.5s`, `1m`.
pub(crate) fn duration(text: &str) -> Result<std::time::Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration (say 500ms, 2s or 1m)"))?;
    let seconds = match unit {
        "ms" => number / 1000.0,
        "s" | "" => number,
        "m" => number * 60.0,
        _ => return Err(format!("`{text}`: unknown unit `{unit}` (ms, s or m)")),
    };
    std::time::Duration::try_from_secs_f64(seconds).map_err(|e| format!("`{text}`: {e}"))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;

    use super::*;

    #[test]
    fn words_are_json_when_they_parse_and_text_otherwise() {
        let words: Vec<String> = [
            "5",
            "elbow",
            "\"5\"",
            "joint=elbow",
            "angle=0.5",
            "x y=1",
            "[1,2]",
            "tags=[\"a\"]",
        ]
        .iter()
        .map(|w| w.to_string())
        .collect();
        let (positional, named) = arguments(&words);
        assert_eq!(
            positional,
            [json!(5), json!("elbow"), json!("5"), json!("x y=1"), json!([1, 2])]
        );
        assert_eq!(
            Value::Object(named),
            json!({"joint": "elbow", "angle": 0.5, "tags": ["a"]})
        );
    }

    #[test]
    fn durations_read_as_written() {
        assert_eq!(duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(duration("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(duration("1m"), Ok(Duration::from_secs(60)));
        assert!(duration("soon").is_err());
        assert!(duration("5h").is_err());
    }
}
