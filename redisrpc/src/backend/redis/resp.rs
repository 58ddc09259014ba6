//! Reading RESP2 replies out of a buffer, for the direct connections of
//! `direct.rs`: as the redis crate's parser would read them, into its
//! `Value`, but in place and without a parser state between reads. A
//! reply that is not all there yet says how many bytes it needs at least,
//! so that a large one is read whole before it is parsed again.

use redis::{ErrorKind, RedisError, RedisResult, Value};

/// What [`parse`] found at the start of a buffer.
#[derive(Debug, PartialEq)]
pub(super) enum Parsed {
    /// A whole reply, and how many bytes it took.
    Value(Value, usize),
    /// Not a whole reply yet: the buffer must hold at least this many bytes.
    Needs(usize),
}

/// The deepest nesting of arrays read (replies of pops nest two deep).
const MAX_DEPTH: usize = 16;

/// The longest bulk string read: Redis's own limit (`proto-max-bulk-len`)
/// at its largest setting.
const MAX_BULK: usize = u32::MAX as usize;

/// Parses the reply at the start of `buffer`.
pub(super) fn parse(buffer: &[u8]) -> RedisResult<Parsed> {
    parse_at(buffer, 0, 0)
}

fn parse_at(buffer: &[u8], start: usize, depth: usize) -> RedisResult<Parsed> {
    if depth > MAX_DEPTH {
        return Err(malformed("arrays nested too deep"));
    }
    let Some(line_end) = find_line_end(buffer, start + 1) else {
        // At least one more byte, and at least a whole empty line.
        return Ok(Parsed::Needs((buffer.len() - start).max(2) + 1));
    };
    let kind = buffer[start];
    let line = &buffer[start + 1..line_end];
    let after_line = line_end + 2;
    let value = match kind {
        b'+' => {
            let text = std::str::from_utf8(line).map_err(|_| malformed("a simple string that is not UTF-8"))?;
            if text == "OK" {
                Value::Okay
            } else {
                Value::SimpleString(text.to_owned())
            }
        }
        b':' => Value::Int(integer(line)?),
        b'-' => {
            // The crate knows every error's kind (MOVED, ASK, NOPERM …).
            let value = redis::parse_redis_value(&buffer[start..after_line])?;
            return Ok(Parsed::Value(value, after_line - start));
        }
        b'$' => {
            let length = integer(line)?;
            if length < 0 {
                Value::Nil
            } else {
                let length = usize::try_from(length)
                    .ok()
                    .filter(|&length| length <= MAX_BULK)
                    .ok_or_else(|| malformed("a bulk string longer than Redis sends"))?;
                let end = after_line + length;
                if buffer.len() < end + 2 {
                    return Ok(Parsed::Needs(end + 2 - start));
                }
                if &buffer[end..end + 2] != b"\r\n" {
                    return Err(malformed("a bulk string without its line end"));
                }
                return Ok(Parsed::Value(
                    Value::BulkString(buffer[after_line..end].to_vec()),
                    end + 2 - start,
                ));
            }
        }
        b'*' => {
            let count = integer(line)?;
            if count < 0 {
                Value::Nil
            } else {
                let count = usize::try_from(count).map_err(|_| malformed("an array too long"))?;
                let mut items = Vec::with_capacity(count.min(1024));
                let mut at = after_line;
                for _ in 0..count {
                    match parse_at(buffer, at, depth + 1)? {
                        Parsed::Value(item, length) => {
                            items.push(item);
                            at += length;
                        }
                        Parsed::Needs(length) => return Ok(Parsed::Needs(at + length - start)),
                    }
                }
                return Ok(Parsed::Value(Value::Array(items), at - start));
            }
        }
        other => return Err(malformed(&format!("a reply starting with byte {other:#04x}"))),
    };
    Ok(Parsed::Value(value, after_line - start))
}

/// Where the `\r\n` that ends the line starting at `from` begins.
fn find_line_end(buffer: &[u8], from: usize) -> Option<usize> {
    let rest = buffer.get(from..)?;
    let at = rest.windows(2).position(|pair| pair == b"\r\n")?;
    Some(from + at)
}

fn integer(line: &[u8]) -> RedisResult<i64> {
    std::str::from_utf8(line)
        .ok()
        .and_then(|text| text.parse().ok())
        .ok_or_else(|| malformed("a number that is not one"))
}

fn malformed(what: &str) -> RedisError {
    RedisError::from((ErrorKind::Parse, "malformed reply from Redis", what.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every reply a pop's connection meets, parsed as the crate parses it.
    #[test]
    fn replies_parse_as_the_crate_parses_them() {
        let replies: &[&[u8]] = &[
            b"+OK\r\n",
            b"+QUEUED\r\n",
            b":42\r\n",
            b":-7\r\n",
            b"$5\r\nhello\r\n",
            b"$0\r\n\r\n",
            b"$-1\r\n",
            b"*-1\r\n",
            b"*0\r\n",
            b"$8\r\nab\r\ncd\r\n\r\n",
            b"*2\r\n$4\r\ncalc\r\n$7\r\nrequest\r\n",
            b"*2\r\n$4\r\ncalc\r\n*3\r\n$1\r\na\r\n$0\r\n\r\n$1\r\nc\r\n",
            b"*3\r\n:1\r\n$5\r\nWRONG\r\n*1\r\n$-1\r\n",
            b"-MOVED 3999 127.0.0.1:6381\r\n",
            b"-ASK 3999 127.0.0.1:6381\r\n",
            b"-NOPERM this user has no permissions to run the 'client|id' command\r\n",
            b"-UNBLOCKED client unblocked via CLIENT UNBLOCK\r\n",
            b"*2\r\n:1\r\n-ERR inside an array\r\n",
        ];
        for reply in replies {
            let expected = redis::parse_redis_value(reply).unwrap();
            assert_eq!(
                parse(reply).unwrap(),
                Parsed::Value(expected, reply.len()),
                "{}",
                String::from_utf8_lossy(reply)
            );
        }
    }

    #[test]
    fn a_reply_cut_anywhere_says_what_it_needs_and_nothing_more() {
        let reply: &[u8] = b"*2\r\n$4\r\ncalc\r\n*2\r\n$11\r\nhello world\r\n:5\r\n";
        for cut in 0..reply.len() {
            match parse(&reply[..cut]).unwrap() {
                Parsed::Needs(at_least) => {
                    assert!(
                        at_least > cut && at_least <= reply.len(),
                        "cut at {cut}: needs {at_least}"
                    );
                }
                other => panic!("cut at {cut}: {other:?}"),
            }
        }
        assert!(matches!(parse(reply).unwrap(), Parsed::Value(_, length) if length == reply.len()));
        // A large bulk string says its whole length at once.
        assert_eq!(parse(b"$1000000\r\nab").unwrap(), Parsed::Needs(1_000_000 + 12));
    }

    #[test]
    fn what_follows_a_reply_is_left_alone() {
        assert_eq!(parse(b":1\r\n:2\r\n").unwrap(), Parsed::Value(Value::Int(1), 4));
    }

    #[test]
    fn garbage_is_an_error() {
        for garbage in [&b"?what\r\n"[..], b":x\r\n", b"$3\r\nabcde\r\n", b"*x\r\n"] {
            assert!(parse(garbage).is_err(), "{}", String::from_utf8_lossy(garbage));
        }
    }
}
