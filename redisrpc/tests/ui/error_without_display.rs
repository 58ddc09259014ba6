#[derive(Debug)]
pub struct Jammed;

#[redisrpc::rpc]
pub trait Gripper {
    async fn close(&self) -> Result<(), Jammed>;
}

struct Hand;

impl Gripper for Hand {
    async fn close(&self) -> Result<(), Jammed> {
        Err(Jammed)
    }
}

fn main() {
    let _ = GripperServer::new(Hand);
}
