#![allow(unused_imports)]
use jaunt::{PullCtx, PushCtx, Status};

/// An error with no `From<LookupError> for Status`.
#[derive(Debug)]
struct LookupError;

#[jaunt::service]
trait Kv {
    async fn get(&self, ctx: &PullCtx, key: String) -> Result<String, LookupError>;
}

fn main() {}
