#![allow(unused_imports)]
use jaunt::{PullCtx, PushCtx, Status};

#[jaunt::service]
trait Kv {
    async fn put(&mut self, ctx: &PullCtx, key: String) -> Result<(), Status>;
}

fn main() {}
