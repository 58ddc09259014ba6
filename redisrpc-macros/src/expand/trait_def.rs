//! The trait itself, with each `async fn` declared as returning a `Send`
//! future, so the server can run calls on a multi-threaded runtime.
//! Implementations still write `async fn`; the compiler checks their
//! futures are `Send`.

use proc_macro2::TokenStream;
use quote::{ToTokens, quote};
use syn::spanned::Spanned;
use syn::{ReturnType, TraitItem};

use crate::model::Service;

/// The trait with its `async fn`s rewritten.
pub(crate) fn expand(service: &Service) -> TokenStream {
    let mut item = service.item.clone();
    for entry in &mut item.items {
        let TraitItem::Fn(function) = entry else { continue };
        let sig = &mut function.sig;
        let Some(asyncness) = sig.asyncness.take() else {
            continue;
        };
        let output = match &sig.output {
            ReturnType::Default => quote!(()),
            ReturnType::Type(_, ty) => ty.to_token_stream(),
        };
        let span = asyncness.span();
        sig.output = syn::parse_quote_spanned! {span=>
            -> impl ::core::future::Future<Output = #output> + ::core::marker::Send
        };
    }
    item.into_token_stream()
}
