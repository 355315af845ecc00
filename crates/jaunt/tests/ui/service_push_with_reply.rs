#![allow(unused_imports)]
use jaunt::{PullCtx, PushCtx, Status};

#[jaunt::service]
trait Kv {
    async fn forget(&self, ctx: &PushCtx, key: String) -> Result<String, Status>;
}

fn main() {}
