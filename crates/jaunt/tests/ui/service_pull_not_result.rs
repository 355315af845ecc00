#![allow(unused_imports)]
use jaunt::{PullCtx, PushCtx, Status};

#[jaunt::service]
trait Kv {
    async fn get(&self, ctx: &PullCtx, key: String) -> String;
}

fn main() {}
