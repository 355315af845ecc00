use jaunt::{PullCtx, Status};

struct Math;

trait Adder {
    async fn add(&self, ctx: &PullCtx, args: Vec<i64>) -> Result<i64, Status>;
}

#[jaunt::controller]
impl Adder for Math {
    async fn add(&self, _ctx: &PullCtx, args: Vec<i64>) -> Result<i64, Status> {
        Ok(args.iter().sum())
    }
}

fn main() {}
