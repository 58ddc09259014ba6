use std::rc::Rc;

#[redisrpc::rpc]
pub trait Clock {
    async fn tick(&self) -> u64;
}

struct Local;

impl Clock for Local {
    async fn tick(&self) -> u64 {
        let shared = Rc::new(1);
        tokio::task::yield_now().await;
        *shared
    }
}

fn main() {}
