//! The calculator: the service the RedisRPC peers use as their example.
//!
//! An `f64` accumulator starting at 0.0. `add`, `sub`, `mul` and `div` apply
//! their argument and return the new value; `val` returns it; `clr` resets it
//! and returns null. Division by zero is an error reply, as in the Python
//! peer.

use std::convert::Infallible;
use std::sync::Mutex;

use anyhow::{Context, bail, ensure};
use redisrpc::Client;
use redisrpc::service::Methods;

/// The calculator's state.
#[derive(Debug, Default)]
pub struct Calculator {
    // A std mutex: the lock is held for one arithmetic step, never across an await.
    accumulator: Mutex<f64>,
}

/// Division by zero, the calculator's one failure.
#[derive(Debug)]
pub struct DivisionByZero;

impl std::fmt::Display for DivisionByZero {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("float division by zero")
    }
}

impl Calculator {
    fn apply(&self, step: impl FnOnce(f64) -> f64) -> f64 {
        let mut accumulator = self.accumulator.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        *accumulator = step(*accumulator);
        *accumulator
    }

    fn divide(&self, number: f64) -> Result<f64, DivisionByZero> {
        if number == 0.0 {
            return Err(DivisionByZero);
        }
        Ok(self.apply(|value| value / number))
    }
}

/// The calculator as a service, ready for [`redisrpc::Server::new`].
pub fn service() -> Methods<Calculator> {
    Methods::new(Calculator::default())
        .method("clr", &[], |calc, ()| async move {
            calc.apply(|_| 0.0);
            Ok::<_, Infallible>(())
        })
        .method("add", &["number"], |calc, (number,): (f64,)| async move {
            Ok::<_, Infallible>(calc.apply(|value| value + number))
        })
        .method("sub", &["number"], |calc, (number,): (f64,)| async move {
            Ok::<_, Infallible>(calc.apply(|value| value - number))
        })
        .method("mul", &["number"], |calc, (number,): (f64,)| async move {
            Ok::<_, Infallible>(calc.apply(|value| value * number))
        })
        .method("div", &["number"], |calc, (number,): (f64,)| async move {
            calc.divide(number)
        })
        .method("val", &[], |calc, ()| async move {
            Ok::<_, Infallible>(calc.apply(|value| value))
        })
}

/// Runs the peers' calculator sequence against whatever serves `client`'s
/// queue, printing each step: clr, add 5, sub 3, mul 4, div 2, then checks
/// that val is 4 and that an unknown method is a remote error.
pub async fn check_calculator(client: &Client) -> anyhow::Result<()> {
    // Peers differ in what `clr` returns (null, or Ruby's 0.0): any value will do.
    let cleared: serde_json::Value = client.call("clr", ()).await.context("clr")?;
    println!("clr        -> {cleared}");
    for (method, number) in [("add", 5.0), ("sub", 3.0), ("mul", 4.0), ("div", 2.0)] {
        let value: f64 = client
            .call(method, (number,))
            .await
            .with_context(|| format!("{method} {number}"))?;
        println!("{method} {number:<6} -> {value}");
    }
    let value: f64 = client.call("val", ()).await.context("val")?;
    println!("val        -> {value}");
    ensure!(value == 4.0, "val returned {value}, expected 4");
    match client.call::<serde_json::Value>("no_such_method", ()).await {
        Err(error) if error.is_remote() => println!(
            "no_such_method -> remote error: {}",
            error.remote_message().unwrap_or("")
        ),
        Err(error) => bail!("an unknown method gave {error}, expected a remote error"),
        Ok(value) => bail!("an unknown method returned {value}, expected a remote error"),
    }
    Ok(())
}
