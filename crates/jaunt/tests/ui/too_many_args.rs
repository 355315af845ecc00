use jaunt::{PullCtx, Status};

struct Math;

#[jaunt::controller]
impl Math {
    async fn add(&self, _ctx: &PullCtx, a: i64, b: i64) -> Result<i64, Status> {
        Ok(a + b)
    }
}

fn main() {}
