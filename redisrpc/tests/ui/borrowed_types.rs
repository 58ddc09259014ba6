#[redisrpc::rpc]
pub trait Text {
    fn upper(&self, text: &str) -> String;
    fn first(&self, words: Vec<&'static str>) -> String;
    fn name(&self) -> &'static str;
    fn any(&self, value: impl serde::Serialize) -> u8;
}

fn main() {}
