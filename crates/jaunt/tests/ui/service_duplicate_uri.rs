#![allow(unused_imports)]
use jaunt::{PullCtx, PushCtx, Status};

#[jaunt::service]
trait Kv {
    async fn get(&self, ctx: &PullCtx, key: String) -> Result<String, Status>;
    #[jaunt(uri = "/get")]
    async fn fetch(&self, ctx: &PullCtx, key: String) -> Result<String, Status>;
}

fn main() {}
