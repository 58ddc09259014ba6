//! The typed clients: one method per trait method, same name and
//! parameters, returning `redisrpc::Result` of what the trait returns;
//! `async` on `<Trait>Client`, blocking on `<Trait>BlockingClient` (over
//! `redisrpc::blocking::Client`, for plain threads).

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::Ident;

use super::Names;
use crate::model::{Method, Service};

/// The client's own methods, which no trait method may share a name with.
/// Their definitions below take their names from this list.
pub(crate) const OWN_METHODS: [&str; 4] = ["new", "from_client", "client", "with_timeout"];

/// The client struct and its methods.
pub(crate) fn expand(service: &Service, names: &Names) -> TokenStream {
    let ident = &service.ident;
    let struct_doc = format!(
        "A typed client of the [`{ident}`] service: each method sends a call to the servers of a queue and \
         waits for the reply.\n\nA method the server fails returns a remote error ([`redisrpc::Error::Remote`]) \
         carrying the error's text; a lost connection, a timeout or a reply of the wrong type return the \
         matching [`redisrpc::Error`]."
    );
    typed_client(
        service,
        TypedClient {
            name: &names.client,
            inner: quote!(::redisrpc::Client),
            struct_doc,
            timeout_doc: "A client like this one whose calls time out after `timeout` (`None`: wait forever, and \
                          send no deadline). Cheap, and it leaves this client as it is, so it sets a timeout for \
                          one call too: `arm.with_timeout(Some(Duration::from_millis(200))).stop().await`.",
            blocking: false,
        },
    )
}

/// The blocking client struct and its methods: the async client's, without
/// `.await`.
pub(crate) fn expand_blocking(service: &Service, names: &Names) -> TokenStream {
    let (ident, async_client) = (&service.ident, &names.client);
    let struct_doc = format!(
        "A blocking typed client of the [`{ident}`] service, for plain threads (see [`redisrpc::blocking`]): \
         the methods of [`{async_client}`], each waiting for its reply on the calling thread.\n\n\
         Called from inside an async runtime, a method returns [`redisrpc::Error::Config`] at once, saying so."
    );
    typed_client(
        service,
        TypedClient {
            name: &names.blocking_client,
            inner: quote!(::redisrpc::blocking::Client),
            struct_doc,
            timeout_doc: "A client like this one whose calls time out after `timeout` (`None`: wait forever, and \
                          send no deadline).",
            blocking: true,
        },
    )
}

/// What tells the two typed clients apart.
struct TypedClient<'a> {
    name: &'a Ident,
    /// The dynamic client it wraps.
    inner: TokenStream,
    struct_doc: String,
    timeout_doc: &'static str,
    blocking: bool,
}

/// A typed client: the struct over `inner`, its own methods, and one method
/// per trait method.
fn typed_client(service: &Service, typed: TypedClient<'_>) -> TokenStream {
    let vis = &service.vis;
    let TypedClient {
        name: client,
        inner,
        struct_doc,
        timeout_doc,
        blocking,
    } = typed;
    let [new, from_client, client_fn, with_timeout] = OWN_METHODS.map(|name| Ident::new(name, Span::call_site()));
    let methods = service
        .methods
        .iter()
        .map(|method| client_method(service, method, blocking));
    quote! {
        #[doc = #struct_doc]
        #[derive(::core::clone::Clone, ::core::fmt::Debug)]
        #[allow(dead_code)]
        #vis struct #client {
            client: #inner,
        }

        #[allow(dead_code)]
        impl #client {
            /// A client of the servers popping `queue` on `backend`.
            #vis fn #new(
                backend: impl ::redisrpc::backend::IntoBackend,
                queue: impl ::core::convert::Into<::std::string::String>,
            ) -> Self {
                Self::#from_client(#inner::new(backend, queue))
            }

            /// A typed client over `client`, keeping its queue and timeout.
            #vis fn #from_client(client: #inner) -> Self {
                Self { client }
            }

            /// The dynamic client underneath, for calls by name.
            #vis fn #client_fn(&self) -> &#inner {
                &self.client
            }

            #[doc = #timeout_doc]
            #vis fn #with_timeout(&self, timeout: ::core::option::Option<::core::time::Duration>) -> Self {
                Self { client: ::core::clone::Clone::clone(&self.client).with_timeout(timeout) }
            }

            #(#methods)*
        }
    }
}

/// One client method, `async` or blocking.
fn client_method(service: &Service, method: &Method, blocking: bool) -> TokenStream {
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
    let wait = (!blocking).then(|| quote!(.await));
    let (output, body) = match method.ok_type() {
        None => (quote!(()), quote!(self.client.send_ignoring_result(#call) #wait)),
        Some(ok) => (quote!(#ok), quote!(self.client.send::<#ok>(#call) #wait)),
    };
    let asyncness = (!blocking).then(|| quote!(async));
    let fallback_doc = (doc_attrs.is_empty()).then(|| {
        let text = format!("Calls `{wire_name}` on the server.");
        quote!(#[doc = #text])
    });
    quote! {
        #(#doc_attrs)*
        #fallback_doc
        #[allow(clippy::too_many_arguments)]
        #vis #asyncness fn #ident(&self #(, #names: #types)*) -> ::redisrpc::Result<#output> {
            #body
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every method of the generated client that is not a trait method is
    /// in [`OWN_METHODS`], so validation refuses exactly the names taken.
    #[test]
    fn the_list_of_own_methods_is_what_the_client_defines() {
        let item: syn::ItemTrait = syn::parse_quote! {
            trait Arm { fn angle(&self, joint: String) -> f64; }
        };
        let service = crate::validate::service(&item).unwrap_or_else(|_| panic!("a valid trait"));
        let names = Names {
            client: Ident::new("ArmClient", Span::call_site()),
            blocking_client: Ident::new("ArmBlockingClient", Span::call_site()),
            server: Ident::new("ArmServer", Span::call_site()),
        };
        let mut tokens = expand(&service, &names);
        tokens.extend(expand_blocking(&service, &names));
        let file: syn::File = syn::parse2(tokens).expect("the clients parse");
        let mut defined: Vec<String> = file
            .items
            .iter()
            .filter_map(|item| match item {
                syn::Item::Impl(block) => Some(block),
                _ => None,
            })
            .flat_map(|block| &block.items)
            .filter_map(|item| match item {
                syn::ImplItem::Fn(function) => Some(function.sig.ident.to_string()),
                _ => None,
            })
            .filter(|name| name != "angle")
            .collect();
        defined.sort();
        defined.dedup(); // both clients define the same own methods
        let mut own = OWN_METHODS.map(String::from).to_vec();
        own.sort();
        assert_eq!(defined, own);
    }
}
