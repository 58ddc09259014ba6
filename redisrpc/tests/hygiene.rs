//! `#[rpc]` expands to code that names everything by absolute path: it
//! compiles in a module without the prelude, beside local items that shadow
//! every prelude name the expansion could otherwise pick up by mistake, and
//! with parameters named like the expansion's own locals.

mod hygienic {
    #![no_implicit_prelude]
    #![allow(dead_code, non_camel_case_types, missing_docs)]

    // Decoys: if the expansion wrote `Result`, `Box`, `Send`, ... without a
    // path, it would find these and fail to compile.
    struct Result;
    struct Option;
    struct Box;
    struct Vec;
    struct String;
    struct Arc;
    struct Ok;
    struct Some;
    struct None;
    trait Send {}
    trait Sync {}
    trait Clone {}
    trait Debug {}
    trait Future {}
    trait Into {}
    trait ToString {}
    mod redisrpc {}
    mod serde {}
    mod service {}

    /// A service declared without the prelude.
    #[::redisrpc::rpc]
    pub(crate) trait Plain {
        /// Joins words, or fails on none.
        async fn join(
            &self,
            words: ::std::vec::Vec<::std::string::String>,
            separator: ::std::option::Option<::std::string::String>,
        ) -> ::std::result::Result<::std::string::String, ::std::string::String>;
        /// A plain value.
        fn answer(&self) -> u64;
        /// Nothing back.
        async fn poke(&self);
        /// Parameters named like the expansion's own locals.
        async fn shadow(
            &self,
            service: u8,
            methods: u8,
            error: u8,
            args: u8,
            method: u8,
        ) -> ::std::result::Result<u8, ::std::string::String>;
    }

    pub(crate) struct Joiner;

    impl Plain for Joiner {
        async fn join(
            &self,
            words: ::std::vec::Vec<::std::string::String>,
            separator: ::std::option::Option<::std::string::String>,
        ) -> ::std::result::Result<::std::string::String, ::std::string::String> {
            if words.is_empty() {
                return ::std::result::Result::Err(::std::borrow::ToOwned::to_owned("no words"));
            }
            ::std::result::Result::Ok(words.join(&separator.unwrap_or_else(|| ::std::borrow::ToOwned::to_owned(" "))))
        }

        fn answer(&self) -> u64 {
            42
        }

        async fn poke(&self) {}

        async fn shadow(
            &self,
            service: u8,
            methods: u8,
            error: u8,
            args: u8,
            method: u8,
        ) -> ::std::result::Result<u8, ::std::string::String> {
            ::std::result::Result::Ok(service + methods + error + args + method)
        }
    }
}

use std::time::Duration;

use hygienic::{Joiner, PlainClient, PlainServer};
use redisrpc::Server;
use redisrpc::backend::Memory;

#[tokio::test]
async fn a_service_declared_without_the_prelude_works() {
    let backend = Memory::new();
    let server = Server::new(backend.clone(), "plain", PlainServer::new(Joiner));
    let handle = server.handle();
    tokio::spawn(server.run());
    let plain = PlainClient::new(backend, "plain").with_timeout(Some(Duration::from_secs(5)));
    let words = vec!["left".to_string(), "right".to_string()];
    assert_eq!(plain.join(words, Some("+".into())).await.unwrap(), "left+right");
    let error = plain.join(Vec::new(), None).await.unwrap_err();
    assert_eq!(error.remote_message(), Some("no words"));
    assert_eq!(plain.answer().await.unwrap(), 42);
    plain.poke().await.unwrap();
    assert_eq!(plain.shadow(1, 2, 3, 4, 5).await.unwrap(), 15);
    assert_eq!(PlainClient::DESCRIPTION.name, "Plain");
    handle.shutdown();
}
