#[redisrpc::rpc(name = "calc")]
pub trait Calculator {
    fn val(&self) -> f64;
}

#[redisrpc::rpc]
pub trait Counter {
    #[rpc(nme = "count")]
    fn count(&self) -> u64;
    #[rpc(name = 5)]
    fn reset(&self);
    #[rpc(name = "a", name = "b")]
    fn twice(&self);
}

fn main() {}
