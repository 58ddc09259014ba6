//! The robot-state example: a simulated two-link arm published at a fixed
//! rate, and a subscriber that follows its pose through a live mirror.

use std::time::{Duration, Instant};

use anyhow::Context;
use redisrpc::state::State;
use serde::{Deserialize, Serialize};

/// Where the arm's state lives in the store.
pub const ARM: &str = "robot.arm";

/// What the publisher publishes at [`ARM`] on every tick.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArmState {
    /// Counts the ticks, from 1.
    pub seq: u64,
    /// Seconds since the publisher started.
    pub t: f64,
    /// Shoulder and elbow angles, in radians.
    pub joints: [f64; 2],
    /// Where the arm's tip is, in metres.
    pub tip: Tip,
}

/// The arm's tip in the plane.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Tip {
    /// Metres to the right of the shoulder.
    pub x: f64,
    /// Metres above the shoulder.
    pub y: f64,
}

/// The lengths of the upper arm and the forearm, in metres.
const LINKS: [f64; 2] = [0.4, 0.3];

impl ArmState {
    /// The simulated arm at tick `seq`, `t` seconds in: both joints swing.
    pub fn at(seq: u64, t: f64) -> ArmState {
        let joints = [0.8 * (0.5 * t).sin(), 1.2 * (0.8 * t).sin().abs()];
        let x = LINKS[0] * joints[0].cos() + LINKS[1] * (joints[0] + joints[1]).cos();
        let y = LINKS[0] * joints[0].sin() + LINKS[1] * (joints[0] + joints[1]).sin();
        ArmState {
            seq,
            t,
            joints,
            tip: Tip { x, y },
        }
    }
}

/// Publishes the arm at `rate_hz` for `duration` (`None`: until the process
/// stops); returns how many states it published.
pub async fn publish(state: &State, rate_hz: f64, duration: Option<Duration>) -> anyhow::Result<u64> {
    let started = Instant::now();
    let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / rate_hz));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut seq = 0;
    while duration.is_none_or(|d| started.elapsed() < d) {
        ticks.tick().await;
        seq += 1;
        let arm = ArmState::at(seq, started.elapsed().as_secs_f64());
        state.publish(ARM, &arm).await.context("publishing the arm")?;
    }
    Ok(seq)
}

/// Follows the arm through a mirror for `duration` (`None`: until the
/// process stops), printing its pose ten times a second; returns the last
/// state seen, if any.
pub async fn follow(state: &State, duration: Option<Duration>) -> anyhow::Result<Option<ArmState>> {
    let started = Instant::now();
    let mirror = state.mirror(ARM).await.context("mirroring the arm")?;
    let mut last: Option<ArmState> = None;
    let mut prints = tokio::time::interval(Duration::from_millis(100));
    while duration.is_none_or(|d| started.elapsed() < d) {
        prints.tick().await;
        // A local read: no round trip.
        match mirror.get::<ArmState>(ARM) {
            Ok(arm) => {
                println!(
                    "seq {:>5}  t {:>6.2} s  joints [{:+.3}, {:+.3}] rad  tip ({:+.3}, {:+.3}) m",
                    arm.seq, arm.t, arm.joints[0], arm.joints[1], arm.tip.x, arm.tip.y
                );
                last = Some(arm);
            }
            Err(e) if e.is_not_found() => println!("waiting for the publisher…"),
            Err(e) if e.is_out_of_sync() => println!("reconnecting: {e}"),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(last)
}
