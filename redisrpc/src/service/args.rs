//! Binding a request's `args` and `kwargs` to a method's parameters.
//!
//! The arguments stay JSON text, as they came on the wire, until each is
//! decoded straight into its parameter's type: a request of five million
//! numbers becomes one `Vec<f64>`, never five million `serde_json::Value`s
//! first.

use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::{CallError, CallErrorKind};
use crate::protocol::JsonText;

/// The arguments of one call as they came on the wire: positional values
/// and named values, each still JSON text.
#[derive(Debug, Clone, Default)]
pub struct Args {
    positional: Vec<Box<RawValue>>,
    named: Vec<(String, Box<RawValue>)>,
}

impl Args {
    /// Arguments from their values.
    pub fn new(positional: Vec<Value>, named: Map<String, Value>) -> Self {
        let raw = |value: Value| serde_json::value::to_raw_value(&value).expect("a JSON value always encodes");
        Args {
            positional: positional.into_iter().map(raw).collect(),
            named: named.into_iter().map(|(name, value)| (name, raw(value))).collect(),
        }
    }

    pub(crate) fn from_raw(positional: Vec<Box<RawValue>>, named: Vec<(String, Box<RawValue>)>) -> Self {
        Args { positional, named }
    }

    /// The JSON text of each positional argument, in order.
    pub fn positional(&self) -> impl Iterator<Item = &str> {
        self.positional.iter().map(|raw| raw.get())
    }

    /// Each named argument's name and JSON text.
    pub fn named(&self) -> impl Iterator<Item = (&str, &str)> {
        self.named.iter().map(|(name, raw)| (name.as_str(), raw.get()))
    }

    /// The arguments as values.
    pub fn into_values(self) -> (Vec<Value>, Map<String, Value>) {
        let value = |raw: Box<RawValue>| serde_json::from_str(raw.get()).expect("received as valid JSON");
        (
            self.positional.into_iter().map(value).collect(),
            self.named.into_iter().map(|(name, raw)| (name, value(raw))).collect(),
        )
    }

    /// Matches the arguments to `params` as Python does: positional ones fill
    /// the first parameters in order, named ones fill the others by name.
    /// Returns one slot per parameter, `None` where no argument was given.
    /// Too many positional arguments, an unknown name, or a parameter given
    /// both ways is an error naming `method` and the parameter.
    pub fn bind(self, method: &str, params: &[&str]) -> Result<Vec<Option<JsonText>>, CallError> {
        let invalid = |message: String| CallError::new(CallErrorKind::InvalidArguments, message);
        if self.positional.len() > params.len() {
            return Err(invalid(format!(
                "{method}() takes {} argument{} ({}) but {} were given",
                params.len(),
                if params.len() == 1 { "" } else { "s" },
                params.join(", "),
                self.positional.len()
            )));
        }
        let mut slots: Vec<Option<JsonText>> = self
            .positional
            .into_iter()
            .map(|raw| Some(JsonText::from_raw(raw)))
            .collect();
        slots.resize_with(params.len(), || None);
        for (name, raw) in self.named {
            let Some(index) = params.iter().position(|p| *p == name) else {
                return Err(invalid(format!(
                    "{method}() got an unexpected named argument `{name}` (parameters: {})",
                    params.join(", ")
                )));
            };
            if slots[index].is_some() {
                return Err(invalid(format!("{method}() got two values for argument `{name}`")));
            }
            slots[index] = Some(JsonText::from_raw(raw));
        }
        Ok(slots)
    }

    /// Binds the arguments to `params` and decodes them as `T`, a tuple of
    /// parameter types (see [`FromArgs`]).
    pub fn parse<T: FromArgs>(self, method: &str, params: &[&str]) -> Result<T, CallError> {
        T::from_args(self, method, params)
    }
}

impl PartialEq for Args {
    fn eq(&self, other: &Self) -> bool {
        self.positional().eq(other.positional()) && self.named().eq(other.named())
    }
}

/// Decodes one bound parameter. A parameter nobody gave is decoded from
/// `null`, so `Option` parameters may be left out; other types report it
/// missing.
pub fn decode_param<T: DeserializeOwned>(method: &str, param: &str, slot: Option<JsonText>) -> Result<T, CallError> {
    let invalid = |message: String| CallError::new(CallErrorKind::InvalidArguments, message);
    // Named only in an error: reading it is work every call would pay.
    let expected = || crate::describe::readable_type(std::any::type_name::<T>());
    match slot {
        Some(text) => serde_json::from_str(text.as_str())
            .map_err(|e| invalid(format!("{method}(): argument `{param}` must be {}: {e}", expected()))),
        None => serde_json::from_value(Value::Null)
            .map_err(|_| invalid(format!("{method}() is missing argument `{param}` ({})", expected()))),
    }
}

/// Parameter lists a method can take: tuples of up to twelve serde types,
/// and [`Args`] itself for methods that read their arguments by hand.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be an RPC method's parameters",
    note = "parameters are a tuple of types implementing `serde::de::DeserializeOwned` (up to twelve), or `Args`"
)]
pub trait FromArgs: Sized {
    /// How many named parameters the type takes; `None` when any.
    const ARITY: Option<usize>;

    /// Decodes `args` bound to `params`.
    fn from_args(args: Args, method: &str, params: &[&str]) -> Result<Self, CallError>;

    /// The Rust types of the parameters, for the service's description;
    /// empty when unknown.
    fn param_types() -> Vec<&'static str> {
        Vec::new()
    }
}

impl FromArgs for Args {
    const ARITY: Option<usize> = None;

    fn from_args(args: Args, _: &str, _: &[&str]) -> Result<Self, CallError> {
        Ok(args)
    }
}

macro_rules! tuple_from_args {
    ($count:literal; $($name:ident),*) => {
        impl<$($name: DeserializeOwned),*> FromArgs for ($($name,)*) {
            const ARITY: Option<usize> = Some($count);

            #[allow(unused_variables, unused_mut, clippy::unused_unit)]
            fn from_args(args: Args, method: &str, params: &[&str]) -> Result<Self, CallError> {
                let mut slots = args.bind(method, params)?.into_iter();
                let mut names = params.iter();
                Ok(($(
                    decode_param::<$name>(method, names.next().copied().unwrap_or("?"), slots.next().flatten())?,
                )*))
            }

            fn param_types() -> Vec<&'static str> {
                vec![$(std::any::type_name::<$name>()),*]
            }
        }
    };
}

tuple_from_args!(0;);
tuple_from_args!(1; A);
tuple_from_args!(2; A, B);
tuple_from_args!(3; A, B, C);
tuple_from_args!(4; A, B, C, D);
tuple_from_args!(5; A, B, C, D, E);
tuple_from_args!(6; A, B, C, D, E, F);
tuple_from_args!(7; A, B, C, D, E, F, G);
tuple_from_args!(8; A, B, C, D, E, F, G, H);
tuple_from_args!(9; A, B, C, D, E, F, G, H, I);
tuple_from_args!(10; A, B, C, D, E, F, G, H, I, J);
tuple_from_args!(11; A, B, C, D, E, F, G, H, I, J, K);
tuple_from_args!(12; A, B, C, D, E, F, G, H, I, J, K, L);

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn args(positional: Value, named: Value) -> Args {
        let Value::Array(positional) = positional else { panic!() };
        let Value::Object(named) = named else { panic!() };
        Args::new(positional, named)
    }

    #[test]
    fn binds_positional_named_and_mixed_arguments() {
        let p: (f64, String) = args(json!([1.5, "x"]), json!({})).parse("f", &["a", "b"]).unwrap();
        assert_eq!(p, (1.5, "x".to_string()));
        let n: (f64, String) = args(json!([]), json!({"b": "y", "a": 2}))
            .parse("f", &["a", "b"])
            .unwrap();
        assert_eq!(n, (2.0, "y".to_string()));
        let m: (i64, u64) = args(json!([-3]), json!({"b": 18446744073709551615u64}))
            .parse("f", &["a", "b"])
            .unwrap();
        assert_eq!(m, (-3, u64::MAX));
    }

    #[test]
    fn optional_parameters_may_be_left_out() {
        let p: (i32, Option<String>) = args(json!([1]), json!({})).parse("f", &["a", "b"]).unwrap();
        assert_eq!(p, (1, None));
    }

    fn error<T: FromArgs + std::fmt::Debug>(positional: Value, named: Value) -> String {
        let err = args(positional, named).parse::<T>("add", &["a", "b"]).unwrap_err();
        assert_eq!(err.kind(), CallErrorKind::InvalidArguments);
        err.message().to_string()
    }

    #[test]
    fn argument_errors_name_the_method_and_parameter() {
        let missing = error::<(f64, f64)>(json!([1]), json!({}));
        assert!(
            missing.contains("add()") && missing.contains("missing argument `b`") && missing.contains("f64"),
            "{missing}"
        );
        let extra = error::<(f64, f64)>(json!([1, 2, 3]), json!({}));
        assert!(
            extra.contains("takes 2 arguments") && extra.contains("3 were given"),
            "{extra}"
        );
        let unknown = error::<(f64, f64)>(json!([1]), json!({"c": 2}));
        assert!(unknown.contains("unexpected named argument `c`"), "{unknown}");
        let twice = error::<(f64, f64)>(json!([1, 2]), json!({"a": 2}));
        assert!(twice.contains("two values for argument `a`"), "{twice}");
        let wrong = error::<(f64, f64)>(json!([1, "two"]), json!({}));
        assert!(
            wrong.contains("argument `b` must be f64") && wrong.contains("invalid type"),
            "{wrong}"
        );
    }
}
