#[redisrpc::rpc]
pub unsafe trait Sensor {
    type Reading;
    const UNITS: &'static str;
    async fn read(&self) -> f64 {
        0.0
    }
    const fn id(&self) -> u8;
    unsafe fn reset(&self);
    extern "C" fn raw(&self);
}

fn main() {}
