//! `#[jaunt::controller]`: a controller's methods served by a real peer,
//! under HTTP- and RPC-style names, alone or in a group.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use jaunt::router::UriMapper;
use jaunt::{Peer, PullCtx, PushCtx, Router, Status};
use tokio::sync::mpsc;

/// A controller whose state is shared by its routes: a call counter and a
/// channel the pushes report to.
struct Math {
    calls: AtomicU64,
    notes: mpsc::UnboundedSender<String>,
}

#[jaunt::controller]
impl Math {
    /// Pull with an argument.
    async fn add(&self, _ctx: &PullCtx, args: Vec<i64>) -> Result<i64, Status> {
        self.count();
        Ok(args.iter().sum())
    }

    /// Pull without argument; the context is the caller's.
    async fn ping(&self, ctx: &PullCtx) -> Result<String, Status> {
        self.count();
        Ok(format!("pong {}", ctx.path()))
    }

    /// Push returning nothing.
    async fn notify(&self, _ctx: &PushCtx, msg: String) {
        self.count();
        let _ = self.notes.send(format!("notify {msg}"));
    }

    /// Push returning a result.
    async fn log(&self, ctx: &PushCtx, msg: String) -> Result<(), Status> {
        self.count();
        let _ = self.notes.send(format!("log {msg} on {}", ctx.path()));
        Ok(())
    }

    /// Not a route.
    #[jaunt(skip)]
    fn count(&self) -> u64 {
        self.calls.fetch_add(1, Ordering::SeqCst) + 1
    }
}

impl Math {
    fn new() -> (Self, mpsc::UnboundedReceiver<String>) {
        let (notes, rx) = mpsc::unbounded_channel();
        let math = Self {
            calls: AtomicU64::new(0),
            notes,
        };
        (math, rx)
    }
}

mod shapes {
    /// A controller named by the last segment of a path.
    pub struct Pair;
}

#[jaunt::controller]
impl shapes::Pair {
    /// A tuple argument destructured in the signature, `self: &Self`.
    #[allow(clippy::needless_arbitrary_self_type)]
    async fn r#swap(
        self: &Self,
        _: &jaunt::PullCtx,
        (a, b): (i64, i64),
    ) -> Result<(i64, i64), Status> {
        Ok((b, a))
    }
}

async fn within<F: Future>(fut: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(10), fut)
        .await
        .expect("the test took longer than 10 s")
}

/// Serves `router` on loopback; a client peer and its session to it.
async fn serve(router: Router) -> (Peer, Peer, jaunt::Session) {
    let server = Peer::new(router);
    let addr = server.listen("127.0.0.1:0").await.unwrap();
    let client = Peer::new(Router::new());
    let session = client.dial(&addr).await.unwrap();
    (server, client, session)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_controller_serves_pulls_and_pushes_with_shared_state() {
    within(async {
        let (math, mut notes) = Math::new();
        let math = Arc::new(math);
        let mut router = Router::new();
        router.controller_arc(math.clone()).unwrap();
        router.controller(shapes::Pair).unwrap();
        let mut pulls = router.pull_uris();
        pulls.sort_unstable();
        assert_eq!(pulls, ["/math/add", "/math/ping", "/pair/swap"]);
        let mut pushes = router.push_uris();
        pushes.sort_unstable();
        assert_eq!(pushes, ["/math/log", "/math/notify"]);

        let (server, client, session) = serve(router).await;
        let sum = session.pull("/math/add", &vec![1, 2, 39]).await.unwrap();
        assert_eq!(sum.decode::<i64>().unwrap(), 42);
        let sum = session.pull("/math/add", &vec![-1]).await.unwrap();
        assert_eq!(sum.decode::<i64>().unwrap(), -1);
        let pong = session.pull("/math/ping", &()).await.unwrap();
        assert_eq!(pong.decode::<String>().unwrap(), "pong /math/ping");
        let bad = session.pull("/math/add", &"not numbers").await;
        assert_eq!(
            bad.unwrap_err().code(),
            jaunt::code::BAD_MESSAGE,
            "the argument is decoded before the method runs"
        );
        let swapped = session.pull("/pair/swap", &(1, 2)).await.unwrap();
        assert_eq!(swapped.decode::<(i64, i64)>().unwrap(), (2, 1));

        session.push("/math/notify", &"hello").await.unwrap();
        assert_eq!(notes.recv().await.unwrap(), "notify hello");
        session.push("/math/log", &"entry").await.unwrap();
        assert_eq!(notes.recv().await.unwrap(), "log entry on /math/log");

        // Every route shares the one controller: 3 pulls and 2 pushes.
        assert_eq!(math.calls.load(Ordering::SeqCst), 5);
        assert_eq!(math.count(), 6, "methods stay callable directly");

        client.close().await;
        server.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rpc_style_names_are_type_dot_method() {
    within(async {
        let (math, mut notes) = Math::new();
        let mut router = Router::with_mapper(UriMapper::Rpc);
        router.controller(math).unwrap();
        let mut pulls = router.pull_uris();
        pulls.sort_unstable();
        assert_eq!(pulls, ["Math.Add", "Math.Ping"]);
        let mut pushes = router.push_uris();
        pushes.sort_unstable();
        assert_eq!(pushes, ["Math.Log", "Math.Notify"]);

        let (server, client, session) = serve(router).await;
        let sum = session.pull("Math.Add", &vec![2, 3]).await.unwrap();
        assert_eq!(sum.decode::<i64>().unwrap(), 5);
        session.push("Math.Notify", &"rpc").await.unwrap();
        assert_eq!(notes.recv().await.unwrap(), "notify rpc");

        client.close().await;
        server.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_controller_registered_in_a_group_is_nested() {
    within(async {
        let (math, _notes) = Math::new();
        let mut router = Router::new();
        router.group("/api").controller(math).unwrap();
        let mut pulls = router.pull_uris();
        pulls.sort_unstable();
        assert_eq!(pulls, ["/api/math/add", "/api/math/ping"]);
        let (again, _) = Math::new();
        assert!(
            router.group("/api").controller(again).is_err(),
            "the same routes twice"
        );

        let (server, client, session) = serve(router).await;
        let sum = session.pull("/api/math/add", &vec![4, 5]).await.unwrap();
        assert_eq!(sum.decode::<i64>().unwrap(), 9);
        let pong = session.pull("/api/math/ping", &()).await.unwrap();
        assert_eq!(pong.decode::<String>().unwrap(), "pong /api/math/ping");
        assert!(session.pull("/math/add", &vec![1]).await.is_err());

        client.close().await;
        server.close().await;
    })
    .await;
}

/// A controller with an explicit group uri and method uri, whose methods
/// return errors other than `Status`.
struct Files;

#[jaunt::controller(uri = "/fs")]
impl Files {
    /// `/fs/cat`: an `io::Error` is converted (500, private cause).
    #[jaunt(uri = "/cat")]
    async fn read(&self, _ctx: &PullCtx, path: String) -> Result<String, std::io::Error> {
        std::fs::read_to_string(path)
    }

    /// `/fs/len`: a boxed error.
    async fn len(
        &self,
        _ctx: &PullCtx,
        text: String,
    ) -> Result<usize, Box<dyn std::error::Error + Send + Sync>> {
        Ok(text.parse::<usize>()?)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_uris_are_explicit_and_errors_convert() {
    within(async {
        let mut router = Router::new();
        router.controller(Files).unwrap();
        assert_eq!(router.pull_uris(), ["/fs/cat", "/fs/len"]);
        let (server, client, session) = serve(router).await;
        let err = session.pull("/fs/cat", &"/no/such/file").await.unwrap_err();
        assert_eq!(err.code(), jaunt::code::INTERNAL_SERVER_ERROR);
        assert_eq!(
            err.cause(),
            Some("internal error"),
            "the cause stays on the server"
        );
        let err = session.pull("/fs/len", &"x").await.unwrap_err();
        assert_eq!(err.code(), jaunt::code::INTERNAL_SERVER_ERROR);
        let n = session.pull("/fs/len", &"12").await.unwrap();
        assert_eq!(n.decode::<usize>().unwrap(), 12);

        let mut rpc = Router::with_mapper(UriMapper::Rpc);
        rpc.controller(Files).unwrap();
        assert_eq!(rpc.pull_uris(), ["Fs.Cat", "Fs.Len"]);
        client.close().await;
        server.close().await;
    })
    .await;
}
