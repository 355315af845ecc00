use jaunt::{PullCtx, Status};

struct Math;

#[jaunt::controller]
impl Math {
    async fn echo<T: Send>(&self, _ctx: &PullCtx, value: T) -> Result<T, Status> {
        Ok(value)
    }
}

fn main() {}
