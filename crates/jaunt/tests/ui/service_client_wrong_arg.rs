#![allow(unused_imports)]
use jaunt::{PullCtx, PushCtx, Status};

#[jaunt::service]
trait Kv {
    async fn get(&self, ctx: &PullCtx, key: String) -> Result<String, Status>;
    async fn forget(&self, ctx: &PushCtx, key: String);
}

async fn call(kv: KvClient) -> Result<(), Status> {
    let _: String = kv.get(42).await?;
    let _: u32 = kv.get("a".to_owned()).await?;
    Ok(())
}

fn main() {}
