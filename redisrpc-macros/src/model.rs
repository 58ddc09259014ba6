//! The service as the expansion sees it: only what was validated.

use proc_macro2::Span;
use syn::{Attribute, Ident, ItemTrait, Type, Visibility};

/// A validated `#[rpc]` trait.
pub(crate) struct Service {
    /// The trait as written, minus the attribute's own markers.
    pub(crate) item: ItemTrait,
    pub(crate) ident: Ident,
    pub(crate) vis: Visibility,
    pub(crate) docs: String,
    pub(crate) methods: Vec<Method>,
}

/// One method of the service.
pub(crate) struct Method {
    pub(crate) ident: Ident,
    /// The name on the wire: the method's name, or its `#[rpc(name = "...")]`.
    pub(crate) wire_name: String,
    pub(crate) docs: String,
    /// `#[doc]` attributes, carried over to the client's method.
    pub(crate) doc_attrs: Vec<Attribute>,
    pub(crate) is_async: bool,
    pub(crate) params: Vec<Param>,
    pub(crate) returns: Returns,
    /// Where the return type was written, for errors about it.
    pub(crate) returns_span: Span,
}

/// One parameter: a plain name and its type.
pub(crate) struct Param {
    pub(crate) ident: Ident,
    pub(crate) ty: Type,
}

/// What a method returns.
pub(crate) enum Returns {
    /// Nothing: `()` or no return type.
    Unit,
    /// A value sent back as JSON.
    Value(Box<Type>),
    /// A `Result`: the `Ok` type is sent back, the error's text becomes the
    /// exception. `error` is `None` for one-parameter aliases such as
    /// `anyhow::Result<T>`.
    Result { ok: Box<Type>, error: Option<Box<Type>> },
}

impl Method {
    /// The type a caller gets back on success.
    pub(crate) fn ok_type(&self) -> Option<&Type> {
        match &self.returns {
            Returns::Unit => None,
            Returns::Value(ty) | Returns::Result { ok: ty, .. } => Some(ty),
        }
    }
}
