#[redisrpc::rpc]
pub trait Store {
    async fn get<T: serde::de::DeserializeOwned>(&self, key: String) -> Option<T>;
    fn put<'a>(&self, key: String) -> bool;
}

fn main() {}
