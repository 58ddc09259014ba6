//! Shared pieces of the example programs.
//!
//! * [`calc`]: the calculator service every RedisRPC implementation ships,
//!   and the client sequence that checks one.
//! * [`inventory`]: a parts inventory whose methods pass structs, enums,
//!   options, lists, maps and text: the richer `#[rpc]` example.
//! * [`cli`]: the command-line options the binaries share.
//!
//! The binaries in `src/bin/` are thin: `calculator` (server and client in
//! one process on the embedded backend), `calc-server`, `calc-client`,
//! `inventory` (likewise), `inventory-server`, and `bench`.

pub mod calc;
pub mod cli;
pub mod inventory;
