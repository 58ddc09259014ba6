//! scratch
use std::sync::Mutex;

#[redisrpc::rpc]
pub trait Calculator {
    /// Adds to the accumulator and returns the new value.
    async fn add(&self, number: f64) -> f64;
    fn val(&self) -> f64;
    async fn div(&self, number: f64) -> Result<f64, String>;
    async fn clr(&self);
}

#[derive(Default)]
struct Acc(Mutex<f64>);

impl Calculator for Acc {
    async fn add(&self, number: f64) -> f64 {
        let mut v = self.0.lock().unwrap();
        *v += number;
        *v
    }
    fn val(&self) -> f64 {
        *self.0.lock().unwrap()
    }
    async fn div(&self, number: f64) -> Result<f64, String> {
        if number == 0.0 {
            return Err("float division by zero".into());
        }
        let mut v = self.0.lock().unwrap();
        *v /= number;
        Ok(*v)
    }
    async fn clr(&self) {
        *self.0.lock().unwrap() = 0.0;
    }
}

#[tokio::test]
async fn scratch() {
    let backend = redisrpc::backend::Memory::new();
    let server = redisrpc::Server::new(backend.clone(), "calc", CalculatorServer::new(Acc::default()));
    let handle = server.handle();
    tokio::spawn(server.run());
    let calc = CalculatorClient::new(backend, "calc");
    calc.clr().await.unwrap();
    assert_eq!(calc.add(5.0).await.unwrap(), 5.0);
    assert_eq!(calc.val().await.unwrap(), 5.0);
    let e = calc.div(0.0).await.unwrap_err();
    assert_eq!(e.remote_message(), Some("float division by zero"));
    let d: serde_json::Value = calc.client().call("rpc.describe", ()).await.unwrap();
    println!("{d:#}");
    println!("{:?}", redisrpc::describe::registered_services());
    handle.shutdown();
}
