//! Compile errors of `#[rpc]`: each file in `tests/ui/` must fail to compile
//! with exactly the messages in its `.stderr` snapshot, pointing at the
//! user's token. After a deliberate change of wording, refresh the
//! snapshots with `TRYBUILD=overwrite cargo test -p redisrpc --test ui`.

#[test]
fn misuses_of_rpc_are_compile_errors_that_say_what_to_do() {
    trybuild::TestCases::new().compile_fail("tests/ui/*.rs");
}
