#![allow(unused_imports)]
use jaunt::{PullCtx, PushCtx, Status};

#[jaunt::service]
trait Kv {
    async fn get(&self, ctx: &PullCtx, key: String) -> Result<String, Status>;
}

struct Store;

impl Kv for Store {
    async fn get(&self, _ctx: &PullCtx, key: String) -> Result<String, Status> {
        let local = std::rc::Rc::new(key);
        tokio::task::yield_now().await;
        Ok((*local).clone())
    }
}

fn main() {}
