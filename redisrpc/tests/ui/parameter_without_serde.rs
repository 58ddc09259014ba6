pub struct Pose {
    pub x: f64,
}

#[redisrpc::rpc]
pub trait Arm {
    async fn reach(&self, pose: Pose) -> bool;
}

fn main() {}
