#![allow(unused_imports)]
use jaunt::{PullCtx, PushCtx, Status};

#[jaunt::service]
trait Kv {
    async fn get(&self, key: String) -> Result<String, Status>;
}

fn main() {}
