//! Redis's glob matching of channel patterns (`PSUBSCRIBE`), so the embedded
//! backend delivers exactly the messages Redis would.
//!
//! Patterns come from callers (`State::subscribe` passes its argument on),
//! so matching must stay cheap whatever the pattern: a naive backtracking
//! matcher takes exponential time on `*a*a*a*a…b`, the shape of Redis's own
//! CVE-2022-36021. This one compiles the pattern into single-byte tokens and
//! stars, and on a mismatch only ever resumes after the latest star, which
//! bounds it by the product of the two lengths.

/// True when `text` matches `pattern`: `*` any run, `?` any one byte,
/// `[abc]`, `[a-z]` and `[^…]` classes, `\x` the byte `x` itself. Matches
/// bytes, as Redis does, so `?` is one byte of a multi-byte character.
pub(super) fn matches(pattern: &str, text: &str) -> bool {
    let tokens = compile(pattern.as_bytes());
    let text = text.as_bytes();
    let (mut t, mut p) = (0, 0);
    // The token after the latest star, and the text position that star's
    // run ends at so far.
    let mut resume: Option<(usize, usize)> = None;
    while t < text.len() {
        match tokens.get(p) {
            Some(Token::Star) => {
                p += 1;
                resume = Some((p, t));
                continue;
            }
            Some(Token::One(one)) if one.matches(text[t]) => {
                p += 1;
                t += 1;
                continue;
            }
            _ => {}
        }
        // A mismatch: let the latest star swallow one more byte. Earlier
        // stars need never grow: whatever they could absorb, it can.
        let Some((after_star, run_end)) = resume else {
            return false;
        };
        p = after_star;
        t = run_end + 1;
        resume = Some((after_star, t));
    }
    tokens[p..].iter().all(|token| matches!(token, Token::Star))
}

enum Token {
    Star,
    One(Byte),
}

/// What one byte of text must be.
enum Byte {
    Any,
    Literal(u8),
    Class { negate: bool, items: Vec<(u8, u8)> },
}

impl Byte {
    fn matches(&self, c: u8) -> bool {
        match self {
            Byte::Any => true,
            Byte::Literal(literal) => *literal == c,
            Byte::Class { negate, items } => items.iter().any(|&(low, high)| (low..=high).contains(&c)) != *negate,
        }
    }
}

fn compile(mut pattern: &[u8]) -> Vec<Token> {
    let mut tokens = Vec::new();
    while let Some((&p, rest)) = pattern.split_first() {
        pattern = rest;
        let token = match p {
            b'*' => {
                if matches!(tokens.last(), Some(Token::Star)) {
                    continue;
                }
                Token::Star
            }
            b'?' => Token::One(Byte::Any),
            b'[' => {
                let (class, rest) = class(pattern);
                pattern = rest;
                Token::One(class)
            }
            b'\\' if !pattern.is_empty() => {
                let literal = pattern[0];
                pattern = &pattern[1..];
                Token::One(Byte::Literal(literal))
            }
            literal => Token::One(Byte::Literal(literal)),
        };
        tokens.push(token);
    }
    tokens
}

/// The class starting after its `[`, and the pattern after its closing `]`
/// (an unclosed class runs to the end of the pattern, as in Redis).
fn class(mut pattern: &[u8]) -> (Byte, &[u8]) {
    let negate = pattern.first() == Some(&b'^');
    if negate {
        pattern = &pattern[1..];
    }
    let mut items = Vec::new();
    loop {
        match pattern {
            [] => break,
            [b']', rest @ ..] => {
                pattern = rest;
                break;
            }
            [b'\\', x, rest @ ..] => {
                items.push((*x, *x));
                pattern = rest;
            }
            [a, b'-', b, rest @ ..] if *b != b']' => {
                items.push(((*a).min(*b), (*a).max(*b)));
                pattern = rest;
            }
            [x, rest @ ..] => {
                items.push((*x, *x));
                pattern = rest;
            }
        }
    }
    (Byte::Class { negate, items }, pattern)
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn globs_match_as_in_redis() {
        assert!(matches("robot.*", "robot.arm.angle"));
        assert!(!matches("robot.*", "robot"));
        assert!(!matches("robot.*", "robots.x"));
        assert!(matches("robot.j?ints", "robot.joints"));
        assert!(matches("robot.joints\\[*", "robot.joints[2]"));
        assert!(!matches("robot.joints[2]", "robot.joints[2]"));
        assert!(matches("robot.joints[0-3]", "robot.joints2"));
        assert!(matches("a[^b]c", "axc"));
        assert!(!matches("a[^b]c", "abc"));
        assert!(matches("*", ""));
        assert!(matches("a*b*c", "aXXbYYc"));
        assert!(!matches("a*b*c", "aXXbYY"));
        assert!(matches("*a*", "bab"));
        assert!(matches("a*", "a"));
        assert!(!matches("a*b", "a"));
        assert!(matches("**x", "x"));
        assert!(matches("x\\*", "x*"));
        assert!(!matches("x\\*", "xy"));
        assert!(matches("[a-c]*[x-z]", "bqqqy"));
        assert!(!matches("ab[", "ab"), "an unclosed class still takes a byte");
    }

    /// `?` is one byte, as Redis matches bytes: `é` is two.
    #[test]
    fn matches_bytes_as_redis_does() {
        assert!(matches("caf??", "café"));
        assert!(!matches("caf?", "café"));
        assert!(matches("caf*", "café"));
    }

    /// The shape of CVE-2022-36021: exponential for a backtracking matcher,
    /// a few microseconds here. Its answers are checked too, so a matcher
    /// that is fast because it gives up would fail.
    #[test]
    fn many_stars_take_polynomial_time() {
        let pattern = format!("{}b", "*a".repeat(40));
        let text = "a".repeat(200);
        let start = std::time::Instant::now();
        assert!(!matches(&pattern, &text));
        assert!(matches(&pattern, &format!("{text}b")));
        assert!(!matches(&format!("{}b", "*a".repeat(201)), &format!("{text}b")));
        assert!(
            start.elapsed() < std::time::Duration::from_secs(5),
            "took {:?}",
            start.elapsed()
        );
    }
}
