#![allow(unused_imports)]
use jaunt::{PullCtx, PushCtx, Status};

#[jaunt::service]
trait Kv<T> {
    async fn get(&self, ctx: &PullCtx, key: String) -> Result<T, Status>;
}

fn main() {}
