use jaunt::{PullCtx, PushCtx, Status};

#[jaunt::service]
trait Kv {
    #[jaunt(idempotent)]
    async fn get(&self, ctx: &PullCtx, key: String) -> Result<String, Status>;
    #[jaunt(idempotent)]
    async fn forget(&self, ctx: &PushCtx, key: String);
}

fn main() {}
