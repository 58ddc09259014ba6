#[redisrpc::rpc]
pub trait Factory {
    fn new(&self) -> u32;
    fn client(&self) -> String;
    #[rpc(name = "with_timeout")]
    fn timeout(&self, seconds: f64);
}

fn main() {}
