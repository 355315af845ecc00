#![allow(unused_imports)]
use jaunt::{PullCtx, PushCtx, Status};

#[jaunt::service]
trait Kv {
    fn get(&self, ctx: &PullCtx, key: String) -> Result<String, Status>;
}

fn main() {}
