//! The calculator: the service the RedisRPC peers use as their example.
//!
//! An `f64` accumulator starting at 0.0. `add`, `sub`, `mul` and `div` apply
//! their argument and return the new value; `val` returns it; `clr` resets it
//! and returns null. Division by zero is an error reply, as in the Python
//! peer.

use std::sync::Mutex;

use anyhow::{Context, bail, ensure};

/// The calculator's interface, as every RedisRPC peer serves it.
#[redisrpc::rpc]
pub trait Calculator {
    /// Resets the accumulator to 0.
    async fn clr(&self);
    /// Adds `number` to the accumulator and returns the new value.
    async fn add(&self, number: f64) -> f64;
    /// Subtracts `number` from the accumulator and returns the new value.
    async fn sub(&self, number: f64) -> f64;
    /// Multiplies the accumulator by `number` and returns the new value.
    async fn mul(&self, number: f64) -> f64;
    /// Divides the accumulator by `number` and returns the new value; fails
    /// on zero.
    async fn div(&self, number: f64) -> Result<f64, DivisionByZero>;
    /// The accumulator's value.
    fn val(&self) -> f64;
}

/// The calculator's state: one accumulator.
#[derive(Debug, Default)]
pub struct Accumulator {
    // A std mutex: the lock is held for one arithmetic step, never across an await.
    value: Mutex<f64>,
}

/// Division by zero, the calculator's one failure.
#[derive(Debug)]
pub struct DivisionByZero;

impl std::fmt::Display for DivisionByZero {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("float division by zero")
    }
}

impl Accumulator {
    fn apply(&self, step: impl FnOnce(f64) -> f64) -> f64 {
        let mut value = self.value.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        *value = step(*value);
        *value
    }
}

impl Calculator for Accumulator {
    async fn clr(&self) {
        self.apply(|_| 0.0);
    }

    async fn add(&self, number: f64) -> f64 {
        self.apply(|value| value + number)
    }

    async fn sub(&self, number: f64) -> f64 {
        self.apply(|value| value - number)
    }

    async fn mul(&self, number: f64) -> f64 {
        self.apply(|value| value * number)
    }

    async fn div(&self, number: f64) -> Result<f64, DivisionByZero> {
        if number == 0.0 {
            return Err(DivisionByZero);
        }
        Ok(self.apply(|value| value / number))
    }

    fn val(&self) -> f64 {
        self.apply(|value| value)
    }
}

/// A fresh calculator as a service, ready for [`redisrpc::Server::new`].
pub fn service() -> CalculatorServer<Accumulator> {
    CalculatorServer::new(Accumulator::default())
}

/// Runs the peers' calculator sequence against whatever serves `client`'s
/// queue, printing each step: clr, add 5, sub 3, mul 4, div 2, then checks
/// that val is 4 and that an unknown method is a remote error.
pub async fn check_calculator(calc: &CalculatorClient) -> anyhow::Result<()> {
    // Peers differ in what `clr` returns (null, or Ruby's 0.0); the client accepts any.
    calc.clr().await.context("clr")?;
    println!("clr        -> ok");
    step("add 5", calc.add(5.0).await)?;
    step("sub 3", calc.sub(3.0).await)?;
    step("mul 4", calc.mul(4.0).await)?;
    step("div 2", calc.div(2.0).await)?;
    let value = step("val", calc.val().await)?;
    ensure!(value == 4.0, "val returned {value}, expected 4");
    match calc.client().call::<serde_json::Value>("no_such_method", ()).await {
        Err(error) if error.is_remote() => println!(
            "no_such_method -> remote error: {}",
            error.remote_message().unwrap_or("")
        ),
        Err(error) => bail!("an unknown method gave {error}, expected a remote error"),
        Ok(value) => bail!("an unknown method returned {value}, expected a remote error"),
    }
    Ok(())
}

/// Prints one step of the sequence and passes its value on.
fn step(name: &str, result: redisrpc::Result<f64>) -> anyhow::Result<f64> {
    let value = result.with_context(|| name.to_string())?;
    println!("{name:<10} -> {value}");
    Ok(value)
}
