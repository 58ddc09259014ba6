//! Writes the code for a validated service: the trait (with `async fn`s
//! made `Send`), the typed clients (async and blocking), the server adapter
//! and the description.
//!
//! Everything generated names `redisrpc`, `core` and `std` items by absolute
//! path, so it compiles whatever the user's module imports, even under
//! `#![no_implicit_prelude]`; and it uses only `redisrpc`'s public API, so a
//! user could have written it by hand, apart from `redisrpc::__private`,
//! which re-exports the `inventory` crate the user need not depend on.

mod client;
mod describe;
mod server;
mod trait_def;

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::Ident;

use crate::model::Service;

pub(crate) use self::client::OWN_METHODS as CLIENT_METHODS;

/// All the code for `service`.
pub(crate) fn service(service: &Service) -> TokenStream {
    let names = Names::of(service);
    let trait_def = trait_def::expand(service);
    let client = client::expand(service, &names);
    let blocking_client = client::expand_blocking(service, &names);
    let server = server::expand(service, &names);
    let describe = describe::expand(service, &names);
    quote! {
        #trait_def
        #client
        #blocking_client
        #server
        #describe
    }
}

/// The names of the generated types.
pub(crate) struct Names {
    /// The typed client, `<Trait>Client`.
    pub(crate) client: Ident,
    /// The blocking typed client, `<Trait>BlockingClient`.
    pub(crate) blocking_client: Ident,
    /// The server adapter, `<Trait>Server`.
    pub(crate) server: Ident,
}

impl Names {
    fn of(service: &Service) -> Self {
        Names {
            client: format_ident!("{}Client", service.ident),
            blocking_client: format_ident!("{}BlockingClient", service.ident),
            server: format_ident!("{}Server", service.ident),
        }
    }
}
