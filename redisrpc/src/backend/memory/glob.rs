//! Redis's glob matching of channel patterns (`PSUBSCRIBE`), so the embedded
//! backend delivers exactly the messages Redis would.

/// True when `text` matches `pattern`: `*` any run, `?` any one character,
/// `[abc]`, `[a-z]` and `[^…]` classes, `\x` the character `x` itself.
/// Matches characters, as Redis matches bytes; the two agree on ASCII
/// patterns, which is what channel patterns are in practice.
pub(super) fn matches(pattern: &str, text: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let text: Vec<char> = text.chars().collect();
    match_from(&pattern, &text)
}

fn match_from(mut pattern: &[char], mut text: &[char]) -> bool {
    while let Some(&p) = pattern.first() {
        match p {
            '*' => {
                while pattern.first() == Some(&'*') {
                    pattern = &pattern[1..];
                }
                if pattern.is_empty() {
                    return true;
                }
                return (0..=text.len()).any(|skip| match_from(pattern, &text[skip..]));
            }
            '?' => {
                if text.is_empty() {
                    return false;
                }
                pattern = &pattern[1..];
                text = &text[1..];
            }
            '[' => {
                let Some(&c) = text.first() else { return false };
                let (matched, rest) = class(&pattern[1..], c);
                if !matched {
                    return false;
                }
                pattern = rest;
                text = &text[1..];
            }
            _ => {
                let (literal, rest) = if p == '\\' && pattern.len() > 1 {
                    (pattern[1], &pattern[2..])
                } else {
                    (p, &pattern[1..])
                };
                if text.first() != Some(&literal) {
                    return false;
                }
                pattern = rest;
                text = &text[1..];
            }
        }
    }
    text.is_empty()
}

/// Matches `c` against the class starting after its `[`; returns whether it
/// matched and the pattern after the closing `]`.
fn class(mut pattern: &[char], c: char) -> (bool, &[char]) {
    let negate = pattern.first() == Some(&'^');
    if negate {
        pattern = &pattern[1..];
    }
    let mut matched = false;
    loop {
        match pattern {
            [] => break,
            [']', rest @ ..] => {
                pattern = rest;
                break;
            }
            ['\\', x, rest @ ..] => {
                matched |= *x == c;
                pattern = rest;
            }
            [a, '-', b, rest @ ..] if *b != ']' => {
                let (low, high) = if a <= b { (*a, *b) } else { (*b, *a) };
                matched |= (low..=high).contains(&c);
                pattern = rest;
            }
            [x, rest @ ..] => {
                matched |= *x == c;
                pattern = rest;
            }
        }
    }
    (matched != negate, pattern)
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
    }
}
