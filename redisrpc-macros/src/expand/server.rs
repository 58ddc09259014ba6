//! The server adapter: `<Trait>Server<T>` turns any implementation `T` of
//! the trait into a `redisrpc::service::Service`. Each method is registered
//! with `redisrpc::service::Methods`, which binds positional and named
//! arguments to the parameters and reports every argument error.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::Ident;
use syn::spanned::Spanned;

use super::Names;
use crate::model::{Method, Returns, Service};

/// The adapter struct and its `Service` implementation.
pub(crate) fn expand(service: &Service, names: &Names) -> TokenStream {
    let Service { ident, vis, .. } = service;
    let Names { client, server, .. } = names;
    let bounds = quote!(#ident + ::core::marker::Send + ::core::marker::Sync + 'static);
    let doc = format!(
        "Serves any implementation of [`{ident}`]: pass it to [`redisrpc::Server::new`].\n\n\
         Callers may pass arguments by position, by name, or both as in Python; a missing, extra or \
         mistyped argument is answered with an exception naming the method and the parameter. An `Err` \
         returned by a method, or a panic, is answered with an exception carrying its text."
    );
    // A local the user's parameter names cannot clash with.
    let shared = Ident::new("service", Span::mixed_site());
    let registrations = service
        .methods
        .iter()
        .map(|method| registration(service, method, &shared));
    let server_name = server.to_string();
    let shape_fills = service.methods.iter().enumerate().map(|(index, method)| {
        let params = method.params.iter().enumerate().map(|(position, param)| {
            let ty = &param.ty;
            quote!(params[#position].shape = shapes.of::<#ty>();)
        });
        let returns = method
            .ok_type()
            .map(|ok| quote!(methods[#index].returns_shape = shapes.of::<#ok>();));
        quote! {
            {
                let params = methods[#index].params.to_mut();
                #(#params)*
            }
            #returns
        }
    });
    quote! {
        #[doc = #doc]
        #vis struct #server<T> {
            methods: ::redisrpc::service::Methods<T>,
        }

        impl<T: #bounds> #server<T> {
            /// Serves `service`.
            #vis fn new(service: T) -> Self {
                Self::from_arc(::std::sync::Arc::new(service))
            }

            /// Serves a value that is also shared elsewhere.
            #vis fn from_arc(#shared: ::std::sync::Arc<T>) -> Self {
                let methods = ::redisrpc::service::Methods::with_shared_state(#shared)
                    #(#registrations)*;
                Self { methods }
            }
        }

        // `Service` is an `#[async_trait]` trait; this is the signature that
        // attribute gives `call`, written out so that every path is absolute.
        impl<T: #bounds> ::redisrpc::service::Service for #server<T> {
            fn call<'life0, 'life1, 'async_trait>(
                &'life0 self,
                method: &'life1 str,
                args: ::redisrpc::service::Args,
            ) -> ::core::pin::Pin<::std::boxed::Box<
                dyn ::core::future::Future<
                    Output = ::core::result::Result<::redisrpc::protocol::JsonText, ::redisrpc::service::CallError>,
                > + ::core::marker::Send + 'async_trait,
            >>
            where
                'life0: 'async_trait,
                'life1: 'async_trait,
                Self: 'async_trait,
            {
                ::redisrpc::service::Service::call(&self.methods, method, args)
            }

            // The constant description, with the shapes of the types traced
            // through their `Deserialize` implementations.
            fn describe(&self) -> ::redisrpc::describe::ServiceDescription {
                let mut shapes = <::redisrpc::__private::Shapes as ::core::default::Default>::default();
                let mut description = #client::DESCRIPTION;
                let methods = description.methods.to_mut();
                #(#shape_fills)*
                description.types = shapes.into_types();
                description
            }
        }

        impl<T> ::core::fmt::Debug for #server<T> {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                f.debug_struct(#server_name).field("methods", &self.methods).finish()
            }
        }
    }
}

/// `.method(...)` registering one trait method.
fn registration(service: &Service, method: &Method, shared: &Ident) -> TokenStream {
    let trait_ident = &service.ident;
    let Method {
        ident,
        wire_name,
        params,
        ..
    } = method;
    let names: Vec<_> = params.iter().map(|param| &param.ident).collect();
    let name_texts = names.iter().map(|name| name.to_string());
    let types = params.iter().map(|param| &param.ty);
    let mut call = quote!(<T as #trait_ident>::#ident(&#shared #(, #names)*));
    if method.is_async {
        call = quote!(#call.await);
    }
    let infallible = quote!(::core::result::Result::<_, ::core::convert::Infallible>::Ok);
    let body = match &method.returns {
        Returns::Unit => quote!({ #call; #infallible(()) }),
        Returns::Value(_) => quote!(#infallible(#call)),
        // The error's text is what callers receive. Taking it here, at the
        // span of the user's error type, makes an error type without
        // `Display` a compile error pointing at that type.
        Returns::Result { error, .. } => {
            let span = error.as_ref().map_or(method.returns_span, |error| error.span());
            quote_spanned!(span=> ::core::result::Result::map_err(#call, |error| ::std::string::ToString::to_string(&error)))
        }
    };
    quote! {
        .method(
            #wire_name,
            &[#(#name_texts),*],
            |#shared: ::std::sync::Arc<T>, (#(#names,)*): (#(#types,)*)| async move { #body },
        )
    }
}
