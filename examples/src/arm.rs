//! A one-joint arm for the `control-loop` example, written for plain
//! threads (no `async`, no runtime in sight; see [`redisrpc::blocking`]).
//!
//! - The **arm service** ([`Arm`]) takes velocity commands.
//! - A **simulator** thread integrates the commanded velocity and publishes
//!   the arm's state at `robot.arm` (`angle`, `velocity`, `seq`) at a fixed
//!   rate.
//! - The **control loop** ([`control_loop`]) runs at a fixed rate. Each
//!   tick it reads a mirror of `robot.arm`, computes a velocity toward a
//!   moving setpoint, and calls the arm service. It records the achieved
//!   loop rate and the call latencies.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use redisrpc::blocking;
use serde::{Deserialize, Serialize};

use crate::measure::Latencies;

/// The arm's interface.
#[redisrpc::rpc]
pub trait Arm {
    /// Sets the joint's velocity, in rad/s, clamped to the arm's limit;
    /// returns the velocity it will move at.
    fn command(&self, velocity: f64) -> f64;
    /// The joint's angle, in rad.
    fn angle(&self) -> f64;
}

/// The fastest the joint turns, in rad/s.
pub const MAX_VELOCITY: f64 = 2.0;

/// What the arm publishes at `robot.arm`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ArmState {
    /// The joint's angle, in rad.
    pub angle: f64,
    /// Its commanded velocity, in rad/s.
    pub velocity: f64,
    /// Counts the publishes.
    pub seq: u64,
}

/// The simulated joint, shared by the service and the simulator.
#[derive(Debug, Default)]
pub struct Joint {
    state: Mutex<ArmState>,
}

impl Joint {
    fn state(&self) -> std::sync::MutexGuard<'_, ArmState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Arm for Arc<Joint> {
    fn command(&self, velocity: f64) -> f64 {
        let velocity = velocity.clamp(-MAX_VELOCITY, MAX_VELOCITY);
        self.state().velocity = velocity;
        velocity
    }

    fn angle(&self) -> f64 {
        self.state().angle
    }
}

/// Moves the joint at its commanded velocity and publishes its state every
/// `period` until `stop`.
pub fn simulate(joint: &Joint, state: &blocking::State, period: Duration, stop: &AtomicBool) -> redisrpc::Result<()> {
    let mut ticks = Ticks::new(period);
    while !stop.load(Ordering::SeqCst) {
        let published = {
            let mut arm = joint.state();
            arm.angle += arm.velocity * period.as_secs_f64();
            arm.seq += 1;
            *arm
        };
        state.publish("robot.arm", &published)?;
        ticks.wait();
    }
    Ok(())
}

/// The setpoint the loop follows: a slow sine, in rad.
pub fn setpoint(t: f64) -> f64 {
    0.5 * (t * 0.5).sin()
}

/// What a control loop achieved.
#[derive(Debug)]
pub struct Report {
    /// How many ticks ran.
    pub ticks: u64,
    /// Ticks per second over the run.
    pub rate_hz: f64,
    /// How many ticks started later than one period after they were due.
    pub late_ticks: u64,
    /// The arm service calls' latencies.
    pub calls: Latencies,
    /// The largest distance from the setpoint once the arm caught up (after
    /// the first second), in rad.
    pub worst_error: f64,
}

/// Runs the loop at `period` for `duration`: each tick reads the mirror,
/// commands a velocity toward [`setpoint`] through `arm`, and records the
/// call's latency.
pub fn control_loop(
    arm: &ArmBlockingClient,
    mirror: &blocking::Mirror,
    period: Duration,
    duration: Duration,
) -> redisrpc::Result<Report> {
    const GAIN: f64 = 8.0;
    let started = Instant::now();
    let mut ticks = Ticks::new(period);
    let mut calls = Latencies::default();
    let mut worst_error: f64 = 0.0;
    let mut count = 0;
    while started.elapsed() < duration {
        let t = started.elapsed().as_secs_f64();
        let now: ArmState = mirror.get("robot.arm")?;
        let error = setpoint(t) - now.angle;
        if t > 1.0 {
            worst_error = worst_error.max(error.abs());
        }
        let call = Instant::now();
        arm.command(GAIN * error)?;
        calls.record(call.elapsed());
        count += 1;
        ticks.wait();
    }
    Ok(Report {
        ticks: count,
        rate_hz: count as f64 / started.elapsed().as_secs_f64(),
        late_ticks: ticks.late,
        calls,
        worst_error,
    })
}

/// A fixed-rate schedule: each tick is due one period after the last was
/// due, not after it ended, so the rate does not drift; a tick more than a
/// period late is counted, and the schedule starts again from now.
struct Ticks {
    period: Duration,
    next: Instant,
    late: u64,
}

impl Ticks {
    fn new(period: Duration) -> Ticks {
        Ticks {
            period,
            next: Instant::now() + period,
            late: 0,
        }
    }

    fn wait(&mut self) {
        let now = Instant::now();
        if now < self.next {
            thread::sleep(self.next - now);
            self.next += self.period;
        } else {
            if now - self.next > self.period {
                self.late += 1;
                self.next = now;
            }
            self.next += self.period;
        }
    }
}
