use jaunt::PushCtx;

struct Math;

#[jaunt::controller]
impl Math {
    async fn notify(&self, _ctx: &PushCtx, msg: String) -> String {
        msg
    }
}

fn main() {}
