//! Shared pieces of the example programs.
//!
//! * [`calc`]: the calculator service every RedisRPC implementation ships,
//!   and the client sequence that checks one.
//! * [`inventory`]: a parts inventory whose methods pass structs, enums,
//!   options, lists, maps and text: the richer `#[rpc]` example.
//! * [`cli`]: the command-line options the binaries share.
//! * [`journal`]: a line per call a server starts (`calc-server --journal`).
//! * [`faults`]: a slow or crashing service, to rehearse recovery with.
//! * [`observe`]: logs, exported spans and a Prometheus endpoint
//!   (`calc-server --metrics-addr`, `--otlp-endpoint`).
//! * [`bench_state`]: the shared-state measurements of `bench --suite state`.
//! * [`bench_anchors`]: what `bench`'s RPC figures are held against, in
//!   the same run.
//! * [`bench_bare`]: the same calls made with the redis crate alone, the
//!   wire protocol's own cost, `bench --bare`.
//! * [`bench_blocking`]: blocking calls beside async ones, `bench --blocking`.
//! * [`bench_server`]: the server `bench` calls, in its process or another.
//! * [`bench_memory`]: a server's memory peak while it decodes a big
//!   request, `bench --suite memory`.
//! * [`measure`]: what the benchmarks share: operations from many tasks,
//!   latency histograms.
//! * [`robot`]: a simulated arm sharing its state, and a follower of it.
//! * [`arm`]: a one-joint arm and a fixed-rate control loop, on plain
//!   threads through [`redisrpc::blocking`] (`control-loop`).
//!
//! The binaries in `src/bin/` are thin: `calculator` (server and client in
//! one process on the embedded backend), `calc-server`, `calc-client`,
//! `inventory` (likewise), `inventory-server`, `robot-state`, `control-loop`
//! and `bench`.

/// Every example program allocates through mimalloc. glibc's allocator
/// maps a fresh region for each megabyte-sized buffer (a camera frame, a
/// big request) and unmaps it when freed, so each one costs a page fault
/// per 4 KiB touched, more than copying it. That choice is the programs':
/// the library leaves the allocator to whoever builds the binary.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub mod arm;
pub mod bench_anchors;
pub mod bench_bare;
pub mod bench_blocking;
pub mod bench_memory;
pub mod bench_server;
pub mod bench_state;
pub mod bench_telemetry;
pub mod calc;
pub mod cli;
pub mod faults;
pub mod inventory;
pub mod journal;
pub mod measure;
pub mod observe;
pub mod robot;
