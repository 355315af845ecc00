use jaunt::PullCtx;

struct Math;

#[jaunt::controller]
impl Math {
    async fn add(&self, _ctx: &PullCtx, args: Vec<i64>) -> i64 {
        args.iter().sum()
    }
}

fn main() {}
