//! The `#[rpc]` attribute of [redisrpc](https://docs.rs/redisrpc). Use it as
//! `#[redisrpc::rpc]`; this crate is an implementation detail of that one,
//! whose documentation describes what the attribute generates.
//!
//! The attribute works in three stages, one file each:
//!
//! * `parse.rs`: reads the attribute's own arguments (`#[rpc(name = "...")]`
//!   on methods);
//! * `validate.rs`: checks the trait and builds the model (`model.rs`) of the service,
//!   collecting every problem as a compile error at the user's token rather
//!   than stopping at the first;
//! * `expand/`: writes the trait, the typed client, the server adapter and
//!   the service's description, using only `redisrpc`'s public API through
//!   absolute paths.
//!
//! When validation fails, the trait is still emitted (without the
//! attribute's markers) beside the errors, so the rest of the program sees
//! the trait and the only errors reported are the ones that matter.

mod expand;
mod model;
mod parse;
mod reserved;
mod validate;

use proc_macro::TokenStream;
use quote::ToTokens;

/// Turns a trait into an RPC service: a typed client, a server adapter, and
/// a registered description. See `redisrpc::rpc` for the documentation.
#[proc_macro_attribute]
pub fn rpc(attr: TokenStream, item: TokenStream) -> TokenStream {
    let mut item = syn::parse_macro_input!(item as syn::ItemTrait);
    let errors = match parse::trait_arguments(attr.into()) {
        Ok(()) => match validate::service(&item) {
            Ok(service) => return expand::service(&service).into(),
            Err(errors) => errors,
        },
        Err(error) => error,
    };
    parse::strip_method_attributes(&mut item);
    let mut output = item.into_token_stream();
    output.extend(errors.into_compile_error());
    output.into()
}

/// The reserved method every server answers itself, as a string literal:
/// `redisrpc::describe::DESCRIBE_METHOD` is defined with it, so that the
/// name is spelled once, here.
#[doc(hidden)]
#[proc_macro]
pub fn __describe_method(input: TokenStream) -> TokenStream {
    if !input.is_empty() {
        return syn::Error::new(proc_macro2::Span::call_site(), "takes no arguments")
            .into_compile_error()
            .into();
    }
    proc_macro2::Literal::string(reserved::DESCRIBE_METHOD)
        .into_token_stream()
        .into()
}
