use jaunt::{Session, Status};

struct Math;

#[jaunt::controller]
impl Math {
    async fn add(&self, _session: &Session, args: Vec<i64>) -> Result<i64, Status> {
        Ok(args.iter().sum())
    }
}

fn main() {}
