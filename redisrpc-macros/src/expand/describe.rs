//! The service's description: a constant on the client type
//! (`<Trait>Client::DESCRIPTION`), registered with `inventory` so that
//! `redisrpc::describe::registered_services` lists it.

use proc_macro2::TokenStream;
use quote::{ToTokens, quote};
use syn::Type;

use super::Names;
use crate::model::{Method, Returns, Service};

/// The `DESCRIPTION` constant and its registration.
pub(crate) fn expand(service: &Service, names: &Names) -> TokenStream {
    let Service { ident, vis, docs, .. } = service;
    let client = &names.client;
    let name = ident.to_string();
    let methods = service.methods.iter().map(method);
    let doc = format!(
        "What the [`{ident}`] service offers: its methods, their parameters and docs. Servers answer \
         `rpc.describe` with it."
    );
    quote! {
        #[allow(dead_code)]
        impl #client {
            #[doc = #doc]
            #vis const DESCRIPTION: ::redisrpc::describe::ServiceDescription =
                ::redisrpc::describe::ServiceDescription {
                    name: ::std::borrow::Cow::Borrowed(#name),
                    docs: ::std::borrow::Cow::Borrowed(#docs),
                    methods: ::std::borrow::Cow::Borrowed(&[#(#methods),*]),
                };
        }

        ::redisrpc::inventory::submit! { #client::DESCRIPTION }
    }
}

/// One method's `MethodDescription`.
fn method(method: &Method) -> TokenStream {
    let Method { wire_name, docs, .. } = method;
    let params = method.params.iter().map(|param| {
        let name = param.ident.to_string();
        let rust_type = type_text(&param.ty);
        quote! {
            ::redisrpc::describe::ParamDescription {
                name: ::std::borrow::Cow::Borrowed(#name),
                rust_type: ::std::borrow::Cow::Borrowed(#rust_type),
            }
        }
    });
    let returns = method.ok_type().map(type_text).unwrap_or_else(|| "()".to_string());
    let error = match &method.returns {
        Returns::Result { error: Some(error), .. } => {
            let error = type_text(error);
            quote!(::core::option::Option::Some(::std::borrow::Cow::Borrowed(#error)))
        }
        _ => quote!(::core::option::Option::None),
    };
    quote! {
        ::redisrpc::describe::MethodDescription {
            name: ::std::borrow::Cow::Borrowed(#wire_name),
            docs: ::std::borrow::Cow::Borrowed(#docs),
            params: ::std::borrow::Cow::Borrowed(&[#(#params),*]),
            returns: ::std::borrow::Cow::Borrowed(#returns),
            error: #error,
        }
    }
}

/// A type as the user wrote it, without the spaces token printing adds
/// (`Vec<String>`, not `Vec < String >`).
fn type_text(ty: &Type) -> String {
    let mut text = ty.to_token_stream().to_string();
    for (spaced, tight) in [
        (" <", "<"),
        ("< ", "<"),
        (" >", ">"),
        (" ::", "::"),
        (":: ", "::"),
        (" ,", ","),
        ("& ", "&"),
        ("( ", "("),
        (" )", ")"),
        ("[ ", "["),
        (" ]", "]"),
        (" ;", ";"),
    ] {
        text = text.replace(spaced, tight);
    }
    text
}
