use jaunt::{PullCtx, PushCtx, Router};

async fn not_a_result(_: PullCtx, x: i64) -> i64 {
    x
}

async fn push_with_reply(_: PushCtx, x: i64) -> i64 {
    x
}

fn main() {
    let mut router = Router::new();
    router.pull("/a", not_a_result).unwrap();
    router.push("/b", push_with_reply).unwrap();
    router.pull("/c", |x: u32| async move { Ok::<_, jaunt::Status>(x) }).unwrap();
}
