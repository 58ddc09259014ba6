//! A [`Service`] built from closures over a shared state.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::Arc;

use futures::future::{self, BoxFuture, FutureExt};
use serde::Serialize;
use serde_json::value::RawValue;

use super::{Args, CallError, CallErrorKind, FromArgs, Service};
use crate::describe::readable_type;
use crate::describe::{MethodDescription, ParamDescription, ServiceDescription};

type Handler<S> = Box<dyn Fn(Arc<S>, Args) -> BoxFuture<'static, Result<Box<RawValue>, CallError>> + Send + Sync>;

/// A service made of named handlers that share one state `S`.
///
/// ```
/// use std::convert::Infallible;
/// use std::sync::Mutex;
/// use redisrpc::service::Methods;
///
/// #[derive(Default)]
/// struct Counter(Mutex<i64>);
///
/// let service = Methods::new(Counter::default())
///     .method("add", &["amount"], |counter, (amount,): (i64,)| async move {
///         let mut total = counter.0.lock().unwrap();
///         *total += amount;
///         Ok::<_, Infallible>(*total)
///     })
///     .method("get", &[], |counter, ()| async move { Ok::<_, Infallible>(*counter.0.lock().unwrap()) });
/// ```
pub struct Methods<S> {
    state: Arc<S>,
    handlers: HashMap<String, Handler<S>>,
    description: ServiceDescription,
}

impl<S: Send + Sync + 'static> Methods<S> {
    /// A service with no methods yet, around `state`.
    pub fn new(state: S) -> Self {
        Self::with_shared_state(Arc::new(state))
    }

    /// A service around a state that is also shared elsewhere.
    pub fn with_shared_state(state: Arc<S>) -> Self {
        let type_name = std::any::type_name::<S>();
        let name = type_name.rsplit("::").next().unwrap_or(type_name);
        Methods {
            state,
            handlers: HashMap::new(),
            description: ServiceDescription {
                name: Cow::Owned(name.to_string()),
                docs: Cow::Borrowed(""),
                methods: Cow::Owned(Vec::new()),
            },
        }
    }

    /// Names the service in its [description](Service::describe); the
    /// default is the state type's name.
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.description.name = Cow::Owned(name.into());
        self
    }

    /// Adds the method `name` with parameters `params`, run by `handler`.
    ///
    /// The handler receives the state and its arguments decoded as `A`: a
    /// tuple with one serde type per parameter (callers may pass them by
    /// position or by name), or [`Args`] to read them by hand. It returns a
    /// future whose output is a `Result<T, E>`: `T` is sent back as JSON,
    /// `E`'s text as the exception.
    ///
    /// # Panics
    ///
    /// When `params` does not have one name per element of the tuple `A`:
    /// that is a mistake in the program, not in a request.
    pub fn method<A, F, Fut>(mut self, name: &str, params: &'static [&'static str], handler: F) -> Self
    where
        A: FromArgs + 'static,
        F: Fn(Arc<S>, A) -> Fut + Send + Sync + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: IntoReturn,
    {
        if let Some(arity) = A::ARITY {
            assert_eq!(
                arity,
                params.len(),
                "method `{name}`: {} parameter names for {arity} parameters",
                params.len()
            );
        }
        // Shared with each call's future, which names the method in errors.
        let method: Arc<str> = name.into();
        let erased: Handler<S> = Box::new(move |state, args| match A::from_args(args, &method, params) {
            Ok(args) => {
                let running = handler(state, args);
                let method = Arc::clone(&method);
                async move { running.await.into_return().map_err(|e| e.for_method(&method)) }.boxed()
            }
            Err(error) => future::ready(Err(error)).boxed(),
        });
        let types = A::param_types();
        let params = params.iter().enumerate().map(|(index, param)| ParamDescription {
            name: Cow::Borrowed(param),
            rust_type: Cow::Owned(readable_type(types.get(index).copied().unwrap_or(""))),
        });
        let described = MethodDescription {
            name: Cow::Owned(name.to_string()),
            docs: Cow::Borrowed(""),
            params: params.collect(),
            returns: Cow::Owned(readable_type(<Fut::Output as IntoReturn>::value_type())),
            error: None,
        };
        let methods = self.description.methods.to_mut();
        methods.retain(|method| method.name != name);
        methods.push(described);
        self.handlers.insert(name.to_string(), erased);
        self
    }
}

impl<S: Send + Sync + 'static> Service for Methods<S> {
    fn call<'a>(&'a self, method: &'a str, args: Args) -> BoxFuture<'a, Result<Box<RawValue>, CallError>> {
        match self.handlers.get(method) {
            Some(handler) => handler(self.state.clone(), args),
            None => future::ready(Err(CallError::unknown_method(method, &self.method_names()))).boxed(),
        }
    }

    fn describe(&self) -> ServiceDescription {
        self.description.clone()
    }

    fn method_names(&self) -> Vec<String> {
        self.handlers.keys().cloned().collect()
    }
}

impl<S> fmt::Debug for Methods<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Methods")
            .field("methods", &self.handlers.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// What a handler may return: a `Result` whose value is sent as JSON and
/// whose error's text becomes the exception.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be the result of an RPC method",
    note = "a method returns `Result<T, E>` where `T: serde::Serialize` is sent back and `E: std::fmt::Display` becomes the exception text"
)]
pub trait IntoReturn {
    /// The JSON of the value, or the error for the caller.
    fn into_return(self) -> Result<Box<RawValue>, CallError>;

    /// The Rust type of the value, for the service's description.
    fn value_type() -> &'static str;
}

impl<T: Serialize, E: fmt::Display> IntoReturn for Result<T, E> {
    fn value_type() -> &'static str {
        std::any::type_name::<T>()
    }

    fn into_return(self) -> Result<Box<RawValue>, CallError> {
        let value = self.map_err(CallError::failed)?;
        crate::protocol::encode_value(&value).map_err(|e| CallError::new(CallErrorKind::Unrepresentable, e.to_string()))
    }
}

impl CallError {
    /// Prefixes the text of an unrepresentable result with the method that
    /// produced it; other errors already say what they need.
    fn for_method(self, method: &str) -> Self {
        match self.kind {
            CallErrorKind::Unrepresentable => Self::new(
                self.kind,
                format!("{method}() returned a value that cannot be sent: {}", self.message),
            ),
            _ => self,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use super::*;

    #[test]
    fn a_methods_service_describes_its_methods_and_parameters() {
        let service = Methods::new(())
            .named("geometry")
            .method("hypot", &["x", "y"], |_, (x, y): (f64, f64)| async move {
                Ok::<_, Infallible>(x.hypot(y))
            })
            .method("name", &[], |_, ()| async move { Ok::<_, Infallible>("plane") })
            .method("name", &["lang"], |_, (_lang,): (String,)| async move {
                Ok::<_, Infallible>("Ebene")
            });
        let description = service.describe();
        assert_eq!(description.name, "geometry");
        let names: Vec<_> = description.methods.iter().map(|m| &*m.name).collect();
        assert_eq!(names, ["hypot", "name"], "declaration order; a redefinition replaces");
        let hypot = description.method("hypot").unwrap();
        let params: Vec<_> = hypot.params.iter().map(|p| (&*p.name, &*p.rust_type)).collect();
        assert_eq!(params, [("x", "f64"), ("y", "f64")]);
        assert_eq!(hypot.returns, "f64");
        assert_eq!(description.method("name").unwrap().params[0].name, "lang");
        let mut names = service.method_names();
        names.sort();
        assert_eq!(names, ["hypot", "name"]);
    }
}
