//! A simulated robot arm shares its state: a publisher moves it at 100 Hz,
//! a subscriber prints the live pose from a mirror.
//!
//! ```text
//! # both in one process, on the embedded backend, for 3 seconds:
//! cargo run -p redisrpc-examples --bin robot-state -- embedded --seconds 3
//!
//! # over Redis, in two terminals (until Ctrl-C, or --seconds N):
//! cargo run -p redisrpc-examples --bin robot-state -- publish --redis redis://127.0.0.1:6379
//! cargo run -p redisrpc-examples --bin robot-state -- subscribe --redis redis://127.0.0.1:6379
//!
//! # sharing the arm with REEM programs (Redis with RedisJSON):
//! cargo run -p redisrpc-examples --bin robot-state -- publish --layout reem --redis redis://127.0.0.1:6379
//! ```

use std::time::Duration;

use anyhow::ensure;
use clap::{Parser, Subcommand};
use redisrpc::backend::{Memory, Redis};
use redisrpc::state::{Layout, State};
use redisrpc_examples::robot;

#[derive(Parser)]
struct Options {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Subcommand)]
enum Mode {
    /// Publisher and subscriber in this process, on the embedded backend.
    Embedded {
        /// How long to run.
        #[arg(long, default_value_t = 3.0)]
        seconds: f64,
        /// Publishes per second.
        #[arg(long, default_value_t = 100.0)]
        rate: f64,
    },
    /// Publish the arm to Redis.
    Publish {
        /// Redis URL.
        #[arg(
            long,
            value_name = "URL",
            env = "REDISRPC_URL",
            default_value = "redis://127.0.0.1:6379"
        )]
        redis: String,
        /// How long to run; 0 runs until Ctrl-C.
        #[arg(long, default_value_t = 0.0)]
        seconds: f64,
        /// Publishes per second.
        #[arg(long, default_value_t = 100.0)]
        rate: f64,
        /// `reem` to share the arm with REEM programs (Redis with RedisJSON).
        #[arg(long, default_value = "native")]
        layout: Layout,
    },
    /// Follow the arm in Redis and print its pose.
    Subscribe {
        /// Redis URL.
        #[arg(
            long,
            value_name = "URL",
            env = "REDISRPC_URL",
            default_value = "redis://127.0.0.1:6379"
        )]
        redis: String,
        /// How long to run; 0 runs until Ctrl-C.
        #[arg(long, default_value_t = 0.0)]
        seconds: f64,
        /// `reem` to follow an arm REEM programs publish.
        #[arg(long, default_value = "native")]
        layout: Layout,
    },
}

fn duration(seconds: f64) -> Option<Duration> {
    (seconds > 0.0).then(|| Duration::from_secs_f64(seconds))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    redisrpc_examples::cli::init_logging();
    match Options::parse().mode {
        Mode::Embedded { seconds, rate } => {
            let state = State::new(Memory::new());
            let publisher = tokio::spawn({
                let state = state.clone();
                async move { robot::publish(&state, rate, duration(seconds)).await }
            });
            let last = robot::follow(&state, duration(seconds)).await?;
            let published = publisher.await??;
            let seen = last.map_or(0, |arm| arm.seq);
            println!("published {published} states; the subscriber's last was #{seen}");
            ensure!(seen > 0, "the subscriber saw nothing");
        }
        Mode::Publish {
            redis,
            seconds,
            rate,
            layout,
        } => {
            let state = State::new(Redis::connect(&redis).await?).with_layout(layout);
            let published = robot::publish(&state, rate, duration(seconds)).await?;
            println!("published {published} states");
        }
        Mode::Subscribe { redis, seconds, layout } => {
            let state = State::new(Redis::connect(&redis).await?).with_layout(layout);
            let last = robot::follow(&state, duration(seconds)).await?;
            let seen = last.map_or(0, |arm| arm.seq);
            println!("the last state seen was #{seen}");
            ensure!(seen > 0, "saw nothing: is a publisher running?");
        }
    }
    Ok(())
}
