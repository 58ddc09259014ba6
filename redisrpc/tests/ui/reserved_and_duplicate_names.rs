#[redisrpc::rpc]
pub trait Lookup {
    #[rpc(name = "rpc.describe")]
    fn describe(&self) -> String;
    #[rpc(name = "rpc.ping")]
    fn ping(&self);
    #[rpc(name = "find")]
    fn find_one(&self, key: String) -> String;
    fn find(&self, key: String) -> String;
    #[rpc(name = "")]
    fn nameless(&self);
}

fn main() {}
