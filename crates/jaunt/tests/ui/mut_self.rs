use jaunt::{PullCtx, Status};

struct Math {
    total: i64,
}

#[jaunt::controller]
impl Math {
    async fn add(&mut self, _ctx: &PullCtx, args: Vec<i64>) -> Result<i64, Status> {
        self.total += args.iter().sum::<i64>();
        Ok(self.total)
    }
}

fn main() {}
