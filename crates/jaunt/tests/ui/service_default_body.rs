#![allow(unused_imports)]
use jaunt::{PullCtx, PushCtx, Status};

#[jaunt::service]
trait Kv {
    async fn get(&self, _ctx: &PullCtx, key: String) -> Result<String, Status> {
        Ok(key)
    }
}

fn main() {}
