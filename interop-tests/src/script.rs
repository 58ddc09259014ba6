//! Calls with the outcome each must have.
//!
//! Every cell of the matrix runs the same [`Step`]s, whichever client sends
//! them and whichever server answers, and [`check`] holds the outcomes to
//! the same expectations. Values are compared strictly: an integer is not a
//! float, and floats are compared bit for bit, so a peer that turns `5.0`
//! into `5` or rounds `0.1` fails.

use serde_json::{Map, Value, json};

/// One call of a script and what it must give.
#[derive(Debug, Clone)]
pub struct Step {
    /// The method to call.
    pub method: String,
    /// Positional arguments.
    pub args: Vec<Value>,
    /// Named arguments (only the Python client and ours can send them).
    pub kwargs: Map<String, Value>,
    /// What the call must give.
    pub expect: Expect,
}

/// What a step must give.
#[derive(Debug, Clone)]
pub enum Expect {
    /// This exact value (see the module docs for what "exact" means).
    Returns(Value),
    /// Any value: peers differ (the calculator's `clr` gives `null` or `0.0`).
    ReturnsAnything,
    /// A remote error whose text contains one of these (peers word their
    /// errors differently; the text is for humans).
    Fails(&'static [&'static str]),
}

impl Step {
    /// A call of `method` with positional `args`, which must return `value`.
    pub fn returns(method: &str, args: Vec<Value>, value: Value) -> Step {
        Step::new(method, args, Expect::Returns(value))
    }

    /// A call of `method` with positional `args` and an expectation.
    pub fn new(method: &str, args: Vec<Value>, expect: Expect) -> Step {
        Step {
            method: method.to_owned(),
            args,
            kwargs: Map::new(),
            expect,
        }
    }

    /// The same step with named arguments added.
    pub fn with_kwargs(mut self, kwargs: Value) -> Step {
        let Value::Object(kwargs) = kwargs else {
            panic!("named arguments must be a JSON object, not {kwargs}")
        };
        self.kwargs.extend(kwargs);
        self
    }

    /// The call as the peer clients read it on stdin.
    pub fn to_json(&self) -> Value {
        json!({"method": self.method, "args": self.args, "kwargs": self.kwargs})
    }

    /// A short description for failure messages (long arguments shortened).
    pub fn describe(&self) -> String {
        let mut text = format!("{}({}", self.method, Value::from(self.args.clone()));
        if !self.kwargs.is_empty() {
            text.push_str(&format!(", {}", Value::Object(self.kwargs.clone())));
        }
        text.push(')');
        shorten(&text)
    }
}

/// What a call gave, whichever client made it.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// The server returned this value.
    Returned(Value),
    /// The server answered with an exception.
    Remote {
        /// The exception text.
        message: String,
        /// The backtrace, when the server sent one (the Ruby server does).
        backtrace: Option<Vec<String>>,
    },
    /// No reply arrived in time.
    Timeout(String),
}

/// Checks every outcome against its step and panics listing all mismatches,
/// with `cell` (who talked to whom) in the message.
pub fn check(cell: &str, steps: &[Step], outcomes: &[Outcome]) {
    assert_eq!(
        steps.len(),
        outcomes.len(),
        "{cell}: {} steps but {} outcomes: {outcomes:?}",
        steps.len(),
        outcomes.len()
    );
    let failures: Vec<String> = steps
        .iter()
        .zip(outcomes)
        .enumerate()
        .filter_map(|(index, (step, outcome))| {
            mismatch(&step.expect, outcome).map(|why| format!("step {index}: {}: {why}", step.describe()))
        })
        .collect();
    assert!(failures.is_empty(), "{cell}:\n{}", failures.join("\n"));
}

fn mismatch(expect: &Expect, outcome: &Outcome) -> Option<String> {
    match (expect, outcome) {
        (Expect::Returns(want), Outcome::Returned(got)) if same(want, got) => None,
        (Expect::Returns(want), Outcome::Returned(got)) => Some(shorten(&format!("returned {got}, expected {want}"))),
        (Expect::ReturnsAnything, Outcome::Returned(_)) => None,
        (Expect::Fails(texts), Outcome::Remote { message, .. }) if texts.iter().any(|t| message.contains(t)) => None,
        (Expect::Fails(texts), Outcome::Remote { message, .. }) => {
            Some(format!("remote error {message:?} does not contain any of {texts:?}"))
        }
        (_, other) => Some(shorten(&format!("gave {other:?}, expected {expect:?}"))),
    }
}

/// Strict equality: integers and floats are different things, floats are
/// equal only when their bits are (so `-0.0` is not `0.0`), and integers
/// are compared exactly.
pub fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_f64(), y.as_f64()) {
            _ if x.is_f64() != y.is_f64() => false,
            (Some(x), Some(y)) if a.is_f64() => x.to_bits() == y.to_bits(),
            _ => x == y,
        },
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(key, x)| y.get(key).is_some_and(|y| same(x, y)))
        }
        _ => a == b,
    }
}

/// The first and last characters of a long text, so a 1 MiB argument does
/// not flood a failure message.
fn shorten(text: &str) -> String {
    const KEEP: usize = 300;
    if text.chars().count() <= 2 * KEEP {
        return text.to_owned();
    }
    let head: String = text.chars().take(KEEP).collect();
    let tail: String = text.chars().skip(text.chars().count() - KEEP).collect();
    format!("{head} … ({} characters) … {tail}", text.chars().count())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_tells_integers_from_floats_and_compares_float_bits() {
        assert!(same(&json!([1, 0.1, {"a": null}]), &json!([1, 0.1, {"a": null}])));
        assert!(!same(&json!(1), &json!(1.0)));
        assert!(!same(&json!(0.0), &json!(-0.0)));
        assert!(!same(&json!(0.1), &json!(f64::from_bits(0.1f64.to_bits() + 1))));
        assert!(!same(&json!(i64::MAX), &json!(i64::MAX - 1)));
        assert!(!same(&json!({"a": 1}), &json!({"a": 1, "b": 2})));
        assert!(!same(&json!([]), &json!({})));
    }

    #[test]
    fn check_accepts_matching_outcomes_and_lists_every_mismatch() {
        let steps = [
            Step::returns("val", vec![], json!(4.0)),
            Step::new("div", vec![json!(0)], Expect::Fails(&["by zero"])),
        ];
        let remote = |text: &str| Outcome::Remote {
            message: text.into(),
            backtrace: None,
        };
        check(
            "cell",
            &steps,
            &[Outcome::Returned(json!(4.0)), remote("float division by zero")],
        );
        let failed = std::panic::catch_unwind(|| {
            check("cell", &steps, &[Outcome::Returned(json!(4)), remote("oops")]);
        })
        .expect_err("mismatches fail");
        let message = failed.downcast_ref::<String>().cloned().unwrap_or_default();
        assert!(message.contains("step 0") && message.contains("step 1"), "{message}");
    }
}
