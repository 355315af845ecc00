#![allow(unused_imports)]
use jaunt::{PullCtx, PushCtx, Status};

#[jaunt::service(name = "kv")]
trait Kv {
    #[jaunt(skip)]
    async fn get(&self, ctx: &PullCtx, key: String) -> Result<String, Status>;
    #[jaunt(uri = "/put?now")]
    async fn put(&self, ctx: &PullCtx, key: String) -> Result<(), Status>;
}

fn main() {}
