//! Paths into the shared state: `robot.arm.angle`, `robot.joints[2]`,
//! `robot["odd.name"]`.
//!
//! A path is a top-level key followed by steps: `.name` enters an object
//! member, `[index]` an array element, `["any text"]` an object member whose
//! name is not a plain name (a JSON string literal, escapes allowed).
//! Plain names are non-empty and contain none of `.`, `[`, `]`, `"` or
//! whitespace. The top-level key is the Redis key of the document, and is
//! held to stricter rules (see [`Path::root`]). Paths print in this
//! canonical form, which is also what notifications carry and what names
//! binary values in Redis.

use std::fmt;
use std::str::FromStr;

use crate::layout::STATE_PREFIX;
use crate::{Error, Result};

/// One step into a document.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Segment {
    /// An object member.
    Key(String),
    /// An array element.
    Index(usize),
}

/// A parsed path: a top-level key and the steps into its document.
///
/// Syntax: a top-level key followed by steps: `.name` enters an object
/// member, `[index]` an array element (from 0), `["any text"]` an object
/// member whose name is not a plain name (a JSON string literal, escapes
/// allowed). Plain names are non-empty and contain none of `.`, `[`, `]`,
/// `"` or whitespace; the top-level key follows the rules of
/// [`Path::root`]. Examples:
/// `robot.arm.angle`, `robot.joints[2]`, `robot["odd.name"][0].x`.
///
/// Paths print in canonical form (quoted names only where needed), which
/// is what notifications carry and what names binary values in Redis.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Path {
    key: String,
    segments: Vec<Segment>,
}

impl Path {
    /// Parses `text` (see [`Path`] for the syntax).
    pub fn parse(text: &str) -> Result<Path> {
        Parser { text, at: 0 }.path()
    }

    /// The path of a whole document.
    ///
    /// A top-level key is 1 to [`MAX_KEY_LEN`] bytes of Unicode letters and
    /// digits and the characters `_ - : / @ + ~`, and does not start with
    /// `__state__:`, the store's own prefix. That leaves out, on purpose:
    /// glob metacharacters (`*`, `?`, `[`, `\`), which would make pattern
    /// subscriptions ambiguous; braces, which are Redis Cluster hash tags;
    /// `#`, `&`, quotes and whitespace, which need quoting in a shell;
    /// control and invisible characters, which cannot be typed back; and
    /// the path syntax's own `.`, `[`, `]`.
    pub fn root(key: &str) -> Result<Path> {
        if key.is_empty() || key.len() > MAX_KEY_LEN {
            return Err(invalid(
                &shorten(key),
                format!(
                    "a top-level key is 1 to {MAX_KEY_LEN} bytes long, this one is {}",
                    key.len()
                ),
            ));
        }
        if let Some(bad) = key.chars().find(|&c| !is_key_char(c)) {
            return Err(invalid(
                key,
                format!(
                    "a top-level key holds only letters, digits and `{KEY_PUNCTUATION}`, not {}",
                    describe_char(bad)
                ),
            ));
        }
        if key.starts_with(STATE_PREFIX) {
            return Err(invalid(
                key,
                format!("keys starting with `{STATE_PREFIX}` are the store's own"),
            ));
        }
        Ok(Path {
            key: key.to_owned(),
            segments: Vec::new(),
        })
    }

    /// The top-level key: the document this path is in.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The steps from the document's root to the value.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// This path with an object member appended.
    pub fn child(&self, name: impl Into<String>) -> Path {
        let mut path = self.clone();
        path.segments.push(Segment::Key(name.into()));
        path
    }

    /// This path with an array index appended.
    pub fn index(&self, index: usize) -> Path {
        let mut path = self.clone();
        path.segments.push(Segment::Index(index));
        path
    }

    /// The path of the first `len` steps.
    pub fn prefix(&self, len: usize) -> Path {
        Path {
            key: self.key.clone(),
            segments: self.segments[..len.min(self.segments.len())].to_vec(),
        }
    }

    /// True when `self` is `other` or lies inside it.
    pub fn starts_with(&self, other: &Path) -> bool {
        self.key == other.key && self.segments.starts_with(&other.segments)
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.key)?;
        for segment in &self.segments {
            match segment {
                Segment::Key(name) if is_plain(name) => write!(f, ".{name}")?,
                Segment::Key(name) => {
                    write!(f, "[{}]", serde_json::Value::String(name.clone()))?;
                }
                Segment::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

impl FromStr for Path {
    type Err = Error;

    fn from_str(text: &str) -> Result<Path> {
        Path::parse(text)
    }
}

/// Anything that names a path: a `&str` or `String` in path syntax, or a
/// [`Path`].
pub trait IntoPath {
    /// Parses or clones into a [`Path`].
    fn into_path(self) -> Result<Path>;
}

impl IntoPath for &str {
    fn into_path(self) -> Result<Path> {
        Path::parse(self)
    }
}

impl IntoPath for &String {
    fn into_path(self) -> Result<Path> {
        Path::parse(self)
    }
}

impl IntoPath for String {
    fn into_path(self) -> Result<Path> {
        Path::parse(&self)
    }
}

impl IntoPath for Path {
    fn into_path(self) -> Result<Path> {
        Ok(self)
    }
}

impl IntoPath for &Path {
    fn into_path(self) -> Result<Path> {
        Ok(self.clone())
    }
}

/// The longest top-level key, in bytes.
pub const MAX_KEY_LEN: usize = 256;

/// The characters besides letters and digits a top-level key may hold.
const KEY_PUNCTUATION: &str = "_-:/@+~";

fn is_key_char(c: char) -> bool {
    c.is_alphanumeric() || KEY_PUNCTUATION.contains(c)
}

/// A character as an error message shows it: itself when it is visible,
/// always with its code point.
fn describe_char(c: char) -> String {
    if c.is_control() || c.is_whitespace() || !(c.is_alphanumeric() || c.is_ascii_graphic()) {
        format!("U+{:04X}", c as u32)
    } else {
        format!("`{c}` (U+{:04X})", c as u32)
    }
}

/// The start of an over-long key, for an error message.
fn shorten(key: &str) -> String {
    match key.char_indices().nth(40) {
        Some((at, _)) => format!("{}…", &key[..at]),
        None => key.to_owned(),
    }
}

fn is_plain_char(c: char) -> bool {
    !matches!(c, '.' | '[' | ']' | '"') && !c.is_whitespace()
}

fn is_plain(name: &str) -> bool {
    !name.is_empty() && name.chars().all(is_plain_char)
}

fn invalid(path: &str, reason: impl Into<String>) -> Error {
    Error::InvalidPath {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

struct Parser<'a> {
    text: &'a str,
    at: usize,
}

impl Parser<'_> {
    fn path(mut self) -> Result<Path> {
        let key = self.name()?;
        let mut path = Path::root(key)?;
        while let Some(c) = self.peek() {
            match c {
                '.' => {
                    self.at += 1;
                    let name = self.name()?.to_owned();
                    path.segments.push(Segment::Key(name));
                }
                '[' => {
                    self.at += 1;
                    path.segments.push(self.bracket()?);
                }
                other => return Err(self.error(format!("expected `.` or `[`, found `{other}`"))),
            }
        }
        Ok(path)
    }

    fn peek(&self) -> Option<char> {
        self.text[self.at..].chars().next()
    }

    fn error(&self, reason: impl fmt::Display) -> Error {
        invalid(self.text, format!("{reason} at byte {}", self.at))
    }

    /// A plain name.
    fn name(&mut self) -> Result<&str> {
        let start = self.at;
        let rest = &self.text[start..];
        let len = rest.find(|c: char| !is_plain_char(c)).unwrap_or(rest.len());
        if len == 0 {
            return Err(self.error("expected a name"));
        }
        self.at += len;
        Ok(&self.text[start..start + len])
    }

    /// What follows a `[`: an index or a quoted name, then `]`.
    fn bracket(&mut self) -> Result<Segment> {
        let rest = &self.text[self.at..];
        let segment = if rest.starts_with('"') {
            // The shortest prefix that is a complete JSON string literal.
            let mut stream = serde_json::Deserializer::from_str(rest).into_iter::<String>();
            let name = match stream.next() {
                Some(Ok(name)) => name,
                _ => return Err(self.error("expected a JSON string after `[`")),
            };
            self.at += stream.byte_offset();
            Segment::Key(name)
        } else {
            let len = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
            let digits = &rest[..len];
            let index = digits
                .parse::<usize>()
                .map_err(|_| self.error("expected an array index (0, 1, …) or a quoted name after `[`"))?;
            if digits.len() > 1 && digits.starts_with('0') {
                return Err(self.error("an index has no leading zeros"));
            }
            self.at += len;
            Segment::Index(index)
        };
        if self.peek() != Some(']') {
            return Err(self.error("expected `]`"));
        }
        self.at += 1;
        Ok(segment)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_canonically() {
        for text in [
            "robot",
            "robot.arm.angle",
            "robot.joints[2]",
            "robot.joints[2].name",
            "robot[\"odd.name\"][0]",
            "robot.ünïcödé",
        ] {
            assert_eq!(Path::parse(text).unwrap().to_string(), text);
        }
        let path = Path::parse("robot[\"arm\"][10]").unwrap();
        assert_eq!(path.to_string(), "robot.arm[10]");
        assert_eq!(path.segments(), &[Segment::Key("arm".into()), Segment::Index(10)]);
    }

    #[test]
    fn rejects_bad_syntax() {
        for text in [
            "",
            ".robot",
            "robot.",
            "robot..arm",
            "robot[",
            "robot[]",
            "robot[-1]",
            "robot[01]",
            "robot[1",
            "robot[x]",
            "robot arm",
            "robot[\"x\"",
            "[0]",
        ] {
            let error = Path::parse(text).unwrap_err();
            assert!(error.is_invalid_path(), "{text}: {error}");
        }
    }

    #[test]
    fn top_level_keys_follow_the_key_rules() {
        for key in ["robot", "arm-2", "fleet:7/arm_left", "ops@lab+1~x", "ロボット", "n0"] {
            assert_eq!(Path::root(key).unwrap().key(), key);
            assert_eq!(Path::parse(&format!("{key}.x")).unwrap().key(), key);
        }
        let long = "k".repeat(MAX_KEY_LEN + 1);
        let refused = [
            "robot{x}",
            "{robot}",
            "ro*bot",
            "ro?bot",
            "ro\\bot",
            "robot#backup",
            "a&&&&b",
            "nul\0",
            "tab\tx",
            "zero\u{200b}width",
            "bell\u{7}",
            "quote'x",
            "dollar$x",
            "",
            &long,
            "__state__:layout",
        ];
        for key in refused {
            let error = Path::root(key).unwrap_err();
            assert!(error.is_invalid_path(), "{key:?}: {error}");
        }
        let error = Path::root("zero\u{200b}width").unwrap_err().to_string();
        assert!(error.contains("U+200B"), "{error}");
        let error = Path::root(&long).unwrap_err().to_string();
        assert!(error.contains("257") && error.len() < 200, "{error}");
        // Through the parser too: the key of a longer path obeys the same rules.
        assert!(Path::parse("robot*.x").unwrap_err().is_invalid_path());
        assert!(Path::parse("robot{a}[0]").unwrap_err().is_invalid_path());
    }
}
