use jaunt::{PullCtx, Router};

fn main() {
    let mut router = Router::new();
    // No error type is named anywhere: the compiler asks for one.
    router.pull("/a", |_: PullCtx| async { Ok(1) }).unwrap();
}
