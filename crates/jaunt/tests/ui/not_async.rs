use jaunt::{PullCtx, Status};

struct Math;

#[jaunt::controller]
impl Math {
    fn add(&self, _ctx: &PullCtx, args: Vec<i64>) -> Result<i64, Status> {
        Ok(args.iter().sum())
    }
}

fn main() {}
