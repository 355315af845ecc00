#![allow(unused_imports)]
use jaunt::{PullCtx, PushCtx, Status};

#[jaunt::service]
trait Kv {
    async fn put(&self, ctx: &PullCtx, key: String, value: String) -> Result<(), Status>;
}

fn main() {}
