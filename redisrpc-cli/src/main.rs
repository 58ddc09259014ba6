//! `redisrpc`: see and drive a running redisrpc system from a shell, in the
//! habits of `ros2`, `grpcurl` and `celery inspect`.
//!
//! * `rpc.rs`: `call` and `describe`, through the library's client;
//! * `check.rs`: a call's arguments held to the method's description;
//! * `acl.rs`: least-privilege ACL users, one per role;
//! * `servers.rs`: `services` and `inspect`, from the servers' liveness
//!   records and the queues themselves;
//! * `stats.rs`: per-method rates and latencies, merged over servers;
//! * `state.rs`: the `state` commands, through the library's store;
//! * `shapes.rs`: types' shapes from `rpc.describe`, written as Rust;
//! * `failure.rs`: errors and the exit codes scripts rely on;
//! * `words.rs`: command-line words as JSON values and arguments.

mod acl;
mod check;
mod failure;
mod rpc;
mod servers;
mod shapes;
mod state;
mod stats;
mod words;

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::failure::Outcome;

/// See and drive a running redisrpc system.
///
/// Exit codes: 0 ok; 1 the remote method failed; 2 bad usage; 3 timed out;
/// 4 could not reach Redis or lost the connection; 5 not found.
#[derive(Parser)]
#[command(name = "redisrpc", version)]
struct Cli {
    /// The Redis URL (any form the library takes); default `$REDISRPC_URL`,
    /// else redis://127.0.0.1:6379.
    #[arg(
        long,
        global = true,
        value_name = "URL",
        env = "REDISRPC_URL",
        default_value = "redis://127.0.0.1:6379"
    )]
    redis: String,
    /// Machine-readable output: one JSON document (one per line for
    /// streams).
    #[arg(long, global = true)]
    json: bool,
    /// How long to wait for a reply or for Redis: 500ms, 2s, 1m.
    #[arg(long, global = true, value_name = "DURATION", default_value = "10s", value_parser = words::duration)]
    timeout: Duration,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List the services that have live servers, and queues with waiting
    /// requests but none.
    ///
    /// Example: redisrpc services
    Services,
    /// Show a service's methods, parameters, return types and docs.
    ///
    /// Example: redisrpc describe inventory add
    Describe {
        /// The service's queue.
        queue: String,
        /// Only this method.
        method: Option<String>,
    },
    /// Call a method and print its return value as JSON.
    ///
    /// Each ARG is JSON when it parses, else a string; `name=value` passes
    /// it by name. When the server describes itself, the arguments are
    /// checked against the method's parameter types before the request is
    /// sent. Examples: redisrpc call calc add 5;
    /// redisrpc call arm move_joint joint=elbow angle=0.5;
    /// redisrpc call inventory add -d '{"args": ["gear", "motor", 3], "kwargs": {"weight_kg": 0.2, "tags": []}}'
    Call {
        /// The service's queue.
        queue: String,
        /// The method.
        method: String,
        /// Arguments: `5`, `elbow`, `'"5"'`, `name=value`.
        args: Vec<String>,
        /// `{"args": […], "kwargs": {…}}` instead of ARGs: JSON, `@file`,
        /// or `@-` for stdin.
        #[arg(short = 'd', long = "data", value_name = "JSON", conflicts_with = "args")]
        data: Option<String>,
        /// Push the request to the head of the queue.
        #[arg(long)]
        urgent: bool,
        /// Send the arguments without checking them against the method's
        /// description (`rpc.describe`) first.
        #[arg(long)]
        no_check: bool,
    },
    /// Show a queue: waiting requests, held requests, reply queues, servers.
    ///
    /// Example: redisrpc inspect calc
    Inspect {
        /// The service's queue.
        queue: String,
    },
    /// Calls/s, errors/s and p50/p99 latency per method, over every live
    /// server of a queue.
    ///
    /// Example: redisrpc stats calc --watch
    Stats {
        /// The service's queue.
        queue: String,
        /// Print the figures of each interval, until interrupted.
        #[arg(long)]
        watch: bool,
        /// The interval of --watch (the servers rewrite their figures every second).
        #[arg(long, default_value = "2s", value_parser = words::duration)]
        interval: Duration,
        /// With --watch: stop after this many intervals.
        #[arg(long, value_name = "N")]
        count: Option<u64>,
    },
    /// The shared state.
    State {
        /// How the documents are kept: `native` (this project's), or
        /// `reem` to share them with REEM programs (Redis with RedisJSON).
        #[arg(long, global = true, default_value = "native", value_parser = clap::value_parser!(redisrpc::state::Layout))]
        layout: redisrpc::state::Layout,
        #[command(subcommand)]
        command: state::StateCommand,
    },
    /// Print the `ACL SETUSER` line of a least-privilege user for a role
    /// (Redis 7 or later; on a cluster, run it on every node).
    ///
    /// Example: redisrpc acl server calc --user arm-server | redis-cli
    Acl {
        /// The role.
        #[arg(value_enum)]
        role: acl::RoleName,
        /// The queue (server, client) or document (state-reader,
        /// state-writer).
        name: Option<String>,
        /// The user's name.
        #[arg(long)]
        user: String,
        /// The user's password; a random one (printed on stderr) when not
        /// given.
        #[arg(long)]
        password: Option<String>,
        /// A path inside the document that is mirrored on its own
        /// (state roles; repeat for more).
        #[arg(long, value_name = "PATH")]
        mirror: Vec<String>,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("redisrpc: {failure}");
            failure.exit_code()
        }
    }
}

async fn run(cli: Cli) -> Outcome {
    let options = Options {
        redis: cli.redis,
        json: cli.json,
        timeout: cli.timeout,
    };
    match cli.command {
        Command::Services => servers::services(&options).await,
        Command::Describe { queue, method } => rpc::describe(&options, &queue, method.as_deref()).await,
        Command::Call {
            queue,
            method,
            args,
            data,
            urgent,
            no_check,
        } => {
            let request = rpc::CallRequest {
                queue: &queue,
                method: &method,
                args: &args,
                data: data.as_deref(),
                urgent,
                check: !no_check,
            };
            rpc::call(&options, request).await
        }
        Command::Inspect { queue } => servers::inspect(&options, &queue).await,
        Command::Stats {
            queue,
            watch,
            interval,
            count,
        } => stats::stats(&options, &queue, watch, interval, count).await,
        Command::State { layout, command } => state::run(&options, layout, command).await,
        Command::Acl {
            role,
            name,
            user,
            password,
            mirror,
        } => acl::acl(role, name.as_deref(), &user, password.as_deref(), &mirror),
    }
}

/// The global options.
pub(crate) struct Options {
    pub(crate) redis: String,
    pub(crate) json: bool,
    pub(crate) timeout: Duration,
}

impl Options {
    /// The library's Redis backend, connected within the timeout.
    pub(crate) async fn backend(&self) -> Outcome<redisrpc::backend::Redis> {
        let connecting = redisrpc::backend::Redis::connect(&self.redis);
        match tokio::time::timeout(self.timeout, connecting).await {
            Ok(connected) => Ok(connected?),
            Err(_) => Err(failure::Failure::new(
                failure::CONNECTION,
                format!("no answer from {} within {:?}", self.redis, self.timeout),
            )),
        }
    }

    /// A connection for looking at keys, routed as the library routes its
    /// own (to the node of each key on a cluster).
    pub(crate) async fn connection(&self) -> Outcome<redisrpc::backend::RedisConnection> {
        Ok(self.backend().await?.connection())
    }
}
