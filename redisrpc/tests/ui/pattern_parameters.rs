#[redisrpc::rpc]
pub trait Geometry {
    fn distance(&self, (x, y): (f64, f64)) -> f64;
    fn ignore(&self, _: u8);
}

fn main() {}
