//! Checks a trait can be served and called over RPC, and builds its
//! [`model`](crate::model). Every problem found becomes an error at the
//! token it concerns, saying what to write instead; all of them are
//! reported at once.

use std::collections::HashMap;

use proc_macro2::Span;
use quote::ToTokens;
use syn::spanned::Spanned;
use syn::{FnArg, GenericArgument, ItemTrait, Pat, PathArguments, ReturnType, TraitItem, TraitItemFn, Type};

use crate::expand::CLIENT_METHODS;
use crate::model::{Method, Param, Returns, Service};
use crate::parse;
use crate::reserved::{DESCRIBE_METHOD, RESERVED_PREFIX};

/// The most parameters a method may take (the server binds them as a tuple).
const MAX_PARAMS: usize = 12;

/// Errors collected while checking, reported together.
#[derive(Default)]
struct Errors {
    combined: Option<syn::Error>,
    count: usize,
}

impl Errors {
    /// An error spanning `tokens`, so the whole offending part is underlined.
    fn push(&mut self, tokens: impl ToTokens, message: impl std::fmt::Display) {
        self.add(syn::Error::new_spanned(tokens, message));
    }

    /// An error at one span, for names read from string literals.
    fn push_at(&mut self, span: Span, message: impl std::fmt::Display) {
        self.add(syn::Error::new(span, message));
    }

    fn add(&mut self, error: syn::Error) {
        self.count += 1;
        match &mut self.combined {
            Some(errors) => errors.combine(error),
            None => self.combined = Some(error),
        }
    }
}

/// Validates `item` and returns its model, or every error found.
pub(crate) fn service(item: &ItemTrait) -> Result<Service, syn::Error> {
    let mut errors = Errors::default();
    if !item.generics.params.is_empty() || item.generics.where_clause.is_some() {
        errors.push(
            &item.generics,
            "an `#[rpc]` trait cannot be generic: callers in any language name its methods and send JSON, \
             so every parameter and return type must be concrete",
        );
    }
    if let Some(unsafety) = &item.unsafety {
        errors.push(unsafety, "an `#[rpc]` trait cannot be `unsafe`: remove `unsafe`");
    }
    let mut methods = Vec::new();
    for entry in &item.items {
        match entry {
            TraitItem::Fn(function) => {
                if let Some(method) = method(function, &mut errors) {
                    methods.push(method);
                }
            }
            other => errors.push(
                other,
                "an `#[rpc]` trait can only contain methods: move associated types, constants and macros \
                 to another trait",
            ),
        }
    }
    let mut seen: HashMap<&str, &Method> = HashMap::new();
    for method in &methods {
        if let Some(first) = seen.insert(&method.wire_name, method) {
            errors.push(
                &method.ident,
                format!(
                    "two methods have the wire name `{}` (`{}` and `{}`); give one another name with \
                     `#[rpc(name = \"...\")]`",
                    method.wire_name, first.ident, method.ident
                ),
            );
        }
    }
    if let Some(error) = errors.combined {
        return Err(error);
    }
    let mut item = item.clone();
    parse::strip_method_attributes(&mut item);
    Ok(Service {
        ident: item.ident.clone(),
        vis: item.vis.clone(),
        docs: parse::docs(&item.attrs),
        methods,
        item,
    })
}

/// Validates one method; `None` when it has errors (already recorded).
fn method(function: &TraitItemFn, errors: &mut Errors) -> Option<Method> {
    let errors_before = errors.count;
    let sig = &function.sig;
    let ident = &sig.ident;
    if let Some(constness) = &sig.constness {
        errors.push(constness, "an `#[rpc]` method cannot be `const`: remove `const`");
    }
    if let Some(unsafety) = &sig.unsafety {
        errors.push(unsafety, "an `#[rpc]` method cannot be `unsafe`: remove `unsafe`");
    }
    if let Some(abi) = &sig.abi {
        errors.push(abi, "an `#[rpc]` method cannot have an ABI: remove `extern`");
    }
    if let Some(variadic) = &sig.variadic {
        errors.push(variadic, "an `#[rpc]` method cannot be variadic");
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        errors.push(
            &sig.generics,
            format!(
                "`{ident}` cannot be generic: its arguments arrive as JSON and must decode into one concrete type; \
                 use concrete types (an enum, or `serde_json::Value`, for several shapes)"
            ),
        );
    }
    if sig.asyncness.is_some()
        && let Some(body) = &function.default
    {
        errors.push(
            body,
            format!("`async fn {ident}` cannot have a default body in an `#[rpc]` trait: write the body in each impl"),
        );
    }
    receiver(function, errors);
    let params = params(function, errors);
    let returns = returns(&sig.output, errors);
    let options = match parse::method_options(&function.attrs) {
        Ok(options) => options,
        Err(error) => {
            errors.add(error);
            Default::default()
        }
    };
    let (wire_name, name_span) = options.name.unwrap_or_else(|| (ident.to_string(), ident.span()));
    if wire_name.is_empty() {
        errors.push_at(name_span, "the wire name cannot be empty");
    } else if wire_name.starts_with(RESERVED_PREFIX) {
        errors.push_at(
            name_span,
            format!(
                "the wire name `{wire_name}` is reserved: names starting with `{RESERVED_PREFIX}` belong to the \
                 framework (every server answers `{DESCRIBE_METHOD}` itself); choose another name"
            ),
        );
    }
    if CLIENT_METHODS.contains(&ident.to_string().as_str()) {
        errors.push(
            ident,
            format!(
                "a method cannot be called `{ident}`: the generated client has its own `{ident}` method; rename \
                 it and keep `{ident}` on the wire with `#[rpc(name = \"{ident}\")]`"
            ),
        );
    }
    let (params, returns) = (params?, returns?);
    if errors.count > errors_before {
        return None;
    }
    Some(Method {
        ident: ident.clone(),
        wire_name,
        docs: parse::docs(&function.attrs),
        doc_attrs: parse::doc_attributes(&function.attrs).cloned().collect(),
        is_async: sig.asyncness.is_some(),
        params,
        returns,
        returns_span: sig.output.span(),
    })
}

/// Checks the method takes `&self`.
fn receiver(function: &TraitItemFn, errors: &mut Errors) {
    let sig = &function.sig;
    let ident = &sig.ident;
    let Some(receiver) = sig.receiver() else {
        errors.push(
            ident,
            format!("`{ident}` needs a `&self` parameter: a service's methods run on the value the server serves"),
        );
        return;
    };
    let problem = if receiver.colon_token.is_some() {
        Some("a typed `self`")
    } else if receiver.reference.is_none() {
        Some("`self` by value")
    } else if receiver.mutability.is_some() {
        Some("`&mut self`")
    } else {
        None
    };
    if let Some(problem) = problem {
        errors.push(
            receiver,
            format!(
                "`{ident}` takes {problem}; take `&self` instead: the server runs calls concurrently on one \
                 shared value, so keep mutable state behind a `Mutex` or an atomic"
            ),
        );
    }
}

/// The method's parameters after `&self`, each a plain name and an owned type.
fn params(function: &TraitItemFn, errors: &mut Errors) -> Option<Vec<Param>> {
    let ident = &function.sig.ident;
    let mut params = Vec::new();
    let mut ok = true;
    for input in &function.sig.inputs {
        let FnArg::Typed(typed) = input else { continue };
        let name = match &*typed.pat {
            Pat::Ident(pat) if pat.by_ref.is_none() && pat.subpat.is_none() => Some(pat.ident.clone()),
            _ => None,
        };
        let Some(name) = name else {
            errors.push(
                &typed.pat,
                "a parameter of an `#[rpc]` method must be a plain name, not a pattern: the name is what \
                 callers use to pass it as a named argument",
            );
            ok = false;
            continue;
        };
        if let Some(borrowed) = borrowed_part(&typed.ty) {
            errors.push(
                borrowed,
                format!(
                    "parameter `{name}` cannot borrow: arguments are decoded from JSON into owned values; \
                     take an owned type (`String` for `&str`, `Vec<T>` for `&[T]`)"
                ),
            );
            ok = false;
        } else if let Some(opaque) = impl_trait_part(&typed.ty) {
            errors.push(
                opaque,
                format!("parameter `{name}` cannot be `impl Trait`: arguments arrive as JSON and need a concrete type"),
            );
            ok = false;
        }
        params.push(Param {
            ident: name,
            ty: (*typed.ty).clone(),
        });
    }
    if params.len() > MAX_PARAMS {
        errors.push(
            &function.sig.inputs,
            format!(
                "`{ident}` has {} parameters, more than the {MAX_PARAMS} an `#[rpc]` method may take; gather \
                 some into a struct",
                params.len()
            ),
        );
        ok = false;
    }
    ok.then_some(params)
}

/// What the method returns; `None` (with an error recorded) for types that
/// cannot be sent back.
fn returns(output: &ReturnType, errors: &mut Errors) -> Option<Returns> {
    let ReturnType::Type(_, ty) = output else {
        return Some(Returns::Unit);
    };
    if let Some(borrowed) = borrowed_part(ty) {
        errors.push(
            borrowed,
            "an `#[rpc]` method cannot return a borrowed value: the result is sent as JSON; return an owned type",
        );
        return None;
    }
    if let Some(opaque) = impl_trait_part(ty) {
        errors.push(
            opaque,
            "an `#[rpc]` method cannot return `impl Trait`: write `async fn` and return the value's concrete type",
        );
        return None;
    }
    if matches!(&**ty, Type::Tuple(tuple) if tuple.elems.is_empty()) {
        return Some(Returns::Unit);
    }
    Some(match result_arguments(ty) {
        Some((ok, error)) => Returns::Result {
            ok: Box::new(ok),
            error: error.map(Box::new),
        },
        None => Returns::Value(ty.clone()),
    })
}

/// For a type whose last path segment is `Result`, its `Ok` type and, when
/// written, its error type.
fn result_arguments(ty: &Type) -> Option<(Type, Option<Type>)> {
    let Type::Path(path) = ty else { return None };
    let last = path.path.segments.last()?;
    if last.ident != "Result" {
        return None;
    }
    let PathArguments::AngleBracketed(arguments) = &last.arguments else {
        return None;
    };
    let mut types = arguments.args.iter().filter_map(|argument| match argument {
        GenericArgument::Type(ty) => Some(ty.clone()),
        _ => None,
    });
    let ok = types.next()?;
    Some((ok, types.next()))
}

/// The part of `ty` that borrows (`&T`, or a reference inside it), if any.
fn borrowed_part(ty: &Type) -> Option<&Type> {
    find_in_type(ty, &|ty| matches!(ty, Type::Reference(_)))
}

/// The part of `ty` that is `impl Trait`, if any.
fn impl_trait_part(ty: &Type) -> Option<&Type> {
    find_in_type(ty, &|ty| matches!(ty, Type::ImplTrait(_)))
}

/// The first part of `ty` (itself included) matching `found`.
fn find_in_type<'t>(ty: &'t Type, found: &dyn Fn(&Type) -> bool) -> Option<&'t Type> {
    if found(ty) {
        return Some(ty);
    }
    match ty {
        Type::Array(array) => find_in_type(&array.elem, found),
        Type::Slice(slice) => find_in_type(&slice.elem, found),
        Type::Paren(paren) => find_in_type(&paren.elem, found),
        Type::Group(group) => find_in_type(&group.elem, found),
        Type::Tuple(tuple) => tuple.elems.iter().find_map(|elem| find_in_type(elem, found)),
        Type::Path(path) => path.path.segments.iter().find_map(|segment| match &segment.arguments {
            PathArguments::AngleBracketed(arguments) => arguments.args.iter().find_map(|argument| match argument {
                GenericArgument::Type(ty) => find_in_type(ty, found),
                _ => None,
            }),
            _ => None,
        }),
        _ => None,
    }
}
