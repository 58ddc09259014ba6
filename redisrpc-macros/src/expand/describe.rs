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
                    types: ::core::option::Option::None,
                };
        }

        ::redisrpc::__private::inventory::submit! { #client::DESCRIPTION }
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
                shape: ::core::option::Option::None,
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
            returns_shape: ::core::option::Option::None,
        }
    }
}

/// A type as the user wrote it, without the spaces token printing adds
/// (`Vec<String>`, not `Vec < String >`) and without module paths
/// (`HashMap`, not `std::collections::HashMap`), as `Methods` describes
/// types too (`readable_type` in the library, this one's twin: a proc-macro
/// crate cannot share code with the library it serves).
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
    let mut out = String::with_capacity(text.len());
    let mut path = String::new();
    for c in text.chars().chain(['\0']) {
        if c.is_alphanumeric() || c == '_' || c == ':' {
            path.push(c);
            continue;
        }
        out.push_str(path.rsplit("::").next().unwrap_or(&path));
        path.clear();
        if c != '\0' {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::type_text;

    #[test]
    fn types_read_as_written() {
        let cases = [
            ("Vec < Option < String > >", "Vec<Option<String>>"),
            (
                "std :: collections :: HashMap < String , (u8 , f64) >",
                "HashMap<String, (u8, f64)>",
            ),
            ("[u8 ; 4]", "[u8; 4]"),
            ("()", "()"),
        ];
        for (written, expected) in cases {
            let ty: syn::Type = syn::parse_str(written).unwrap();
            assert_eq!(type_text(&ty), expected);
        }
    }
}
