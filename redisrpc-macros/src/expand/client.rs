//! The typed client: one `async` method per trait method, same name and
//! parameters, returning `redisrpc::Result` of what the trait returns.

use proc_macro2::TokenStream;
use quote::quote;

use super::Names;
use crate::model::{Method, Service};

/// The client struct and its methods.
pub(crate) fn expand(service: &Service, names: &Names) -> TokenStream {
    let Service { ident, vis, .. } = service;
    let client = &names.client;
    let struct_doc = format!(
        "A typed client of the [`{ident}`] service: each method sends a call to the servers of a queue and \
         waits for the reply.\n\nA method the server fails returns a remote error ([`redisrpc::Error::Remote`]) \
         carrying the error's text; a lost connection, a timeout or a reply of the wrong type return the \
         matching [`redisrpc::Error`]."
    );
    let methods = service.methods.iter().map(|method| client_method(service, method));
    quote! {
        #[doc = #struct_doc]
        #[derive(::core::clone::Clone, ::core::fmt::Debug)]
        #[allow(dead_code)]
        #vis struct #client {
            client: ::redisrpc::Client,
        }

        #[allow(dead_code)]
        impl #client {
            /// A client of the servers popping `queue` on `backend`.
            #vis fn new(
                backend: impl ::redisrpc::backend::IntoBackend,
                queue: impl ::core::convert::Into<::std::string::String>,
            ) -> Self {
                Self::from_client(::redisrpc::Client::new(backend, queue))
            }

            /// A typed client over `client`, keeping its queue and timeout.
            #vis fn from_client(client: ::redisrpc::Client) -> Self {
                Self { client }
            }

            /// The dynamic client underneath, for calls by name.
            #vis fn client(&self) -> &::redisrpc::Client {
                &self.client
            }

            /// The same client with another timeout per call (`None`: wait forever).
            #vis fn with_timeout(self, timeout: ::core::option::Option<::core::time::Duration>) -> Self {
                Self { client: self.client.with_timeout(timeout) }
            }

            #(#methods)*
        }
    }
}

/// One client method.
fn client_method(service: &Service, method: &Method) -> TokenStream {
    let Method {
        ident,
        wire_name,
        doc_attrs,
        params,
        ..
    } = method;
    let vis = &service.vis;
    let names: Vec<_> = params.iter().map(|param| &param.ident).collect();
    let types = params.iter().map(|param| &param.ty);
    let call = quote!(::redisrpc::Call::new(#wire_name) #(.arg(#names))*);
    // A method without a value accepts whatever the server sends: peers
    // differ (null, Ruby's 0.0, ...).
    let (output, body) = match method.ok_type() {
        None => (quote!(()), quote!(self.client.send_ignoring_result(#call).await)),
        Some(ok) => (quote!(#ok), quote!(self.client.send::<#ok>(#call).await)),
    };
    let fallback_doc = (doc_attrs.is_empty()).then(|| {
        let text = format!("Calls `{wire_name}` on the server.");
        quote!(#[doc = #text])
    });
    quote! {
        #(#doc_attrs)*
        #fallback_doc
        #[allow(clippy::too_many_arguments)]
        #vis async fn #ident(&self #(, #names: #types)*) -> ::redisrpc::Result<#output> {
            #body
        }
    }
}
