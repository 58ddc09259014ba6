#[redisrpc::rpc]
pub trait Motor {
    async fn start(self);
    async fn stop(&mut self);
    fn speed() -> f64;
    fn boxed(self: Box<Self>) -> f64;
}

fn main() {}
