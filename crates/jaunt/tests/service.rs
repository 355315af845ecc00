//! `#[jaunt::service]`: one trait, a typed server and a typed client, over
//! real sockets, in both directions.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use jaunt::router::UriMapper;
use jaunt::service::Naming;
use jaunt::{code, Peer, PullCtx, PushCtx, Router, Session, Status};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A key and its value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    key: String,
    value: String,
}

/// The service the listening side serves.
#[jaunt::service]
pub trait Kv {
    /// Stores an entry; tells the caller's `KvEvents` about it.
    async fn put(&self, ctx: &PullCtx, entry: Entry) -> Result<(), Status>;
    /// The value of a key.
    async fn get(&self, ctx: &PullCtx, key: String) -> Result<Option<String>, Status>;
    /// How many entries, without argument.
    async fn len(&self, ctx: &PullCtx) -> Result<usize, Status>;
    /// Parses a number: a failure is an error converted with `?`.
    async fn parse(&self, ctx: &PullCtx, text: String) -> Result<i64, BoxError>;
    /// Fails with an anyhow error carrying a `Status`, or a plain one.
    async fn check(&self, ctx: &PullCtx, key: String) -> anyhow::Result<bool>;
    /// What the call carried: its body's codec and its meta `trace`.
    async fn inspect(&self, ctx: &PullCtx, text: String) -> Result<(char, Option<String>), Status>;
    /// Sleeps longer than a caller waits.
    async fn slow(&self, ctx: &PullCtx, millis: u64) -> Result<(), Status>;
    /// A push: forget a key.
    #[jaunt(uri = "/forget")]
    async fn remove(&self, ctx: &PushCtx, key: String);
}

/// What the listening side pushes to its clients, served by the dialing side.
#[jaunt::service(uri = "/kv_events")]
pub trait KvEvents {
    /// A key changed.
    async fn changed(&self, ctx: &PushCtx, entry: Entry) -> Result<(), Status>;
    /// The server asks the client something (a pull the other way).
    async fn whoami(&self, ctx: &PullCtx) -> Result<String, Status>;
}

#[derive(Default)]
struct Store {
    map: Mutex<HashMap<String, String>>,
}

impl Kv for Store {
    async fn put(&self, ctx: &PullCtx, entry: Entry) -> Result<(), Status> {
        self.map
            .lock()
            .unwrap()
            .insert(entry.key.clone(), entry.value.clone());
        // A typed push back to the caller, on the session it came on.
        KvEventsClient::new(ctx.session()).changed(entry).await?;
        Ok(())
    }

    async fn get(&self, _ctx: &PullCtx, key: String) -> Result<Option<String>, Status> {
        Ok(self.map.lock().unwrap().get(&key).cloned())
    }

    async fn len(&self, _ctx: &PullCtx) -> Result<usize, Status> {
        Ok(self.map.lock().unwrap().len())
    }

    async fn parse(&self, _ctx: &PullCtx, text: String) -> Result<i64, BoxError> {
        let n: i64 = text.trim().parse()?;
        Ok(n * 2)
    }

    async fn check(&self, _ctx: &PullCtx, key: String) -> anyhow::Result<bool> {
        match key.as_str() {
            "" => Err(Status::bad_message("an empty key").into()),
            "secret" => Err(anyhow::anyhow!("the vault is sealed").context("reading the key")),
            _ => Ok(self.map.lock().unwrap().contains_key(&key)),
        }
    }

    async fn inspect(
        &self,
        ctx: &PullCtx,
        _text: String,
    ) -> Result<(char, Option<String>), Status> {
        let trace = ctx.meta().get_str("trace").map(str::to_owned);
        Ok((char::from(ctx.body_codec()), trace))
    }

    async fn slow(&self, _ctx: &PullCtx, millis: u64) -> Result<(), Status> {
        tokio::time::sleep(Duration::from_millis(millis)).await;
        Ok(())
    }

    async fn remove(&self, _ctx: &PushCtx, key: String) {
        self.map.lock().unwrap().remove(&key);
    }
}

struct Events {
    seen: mpsc::UnboundedSender<Entry>,
    name: String,
}

impl KvEvents for Events {
    async fn changed(&self, _ctx: &PushCtx, entry: Entry) -> Result<(), Status> {
        self.seen.send(entry).map_err(Status::internal)
    }

    async fn whoami(&self, _ctx: &PullCtx) -> Result<String, Status> {
        Ok(self.name.clone())
    }
}

async fn within<F: Future>(fut: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(10), fut)
        .await
        .expect("the test took longer than 10 s")
}

/// A server serving `Kv`, a client serving `KvEvents`, and the client's
/// session.
async fn pair(mapper: UriMapper) -> (Peer, Peer, Session, mpsc::UnboundedReceiver<Entry>) {
    let mut router = Router::with_mapper(mapper);
    router.service(KvServer::new(Store::default())).unwrap();
    let server = Peer::new(router);
    let addr = server.listen("127.0.0.1:0").await.unwrap();

    let (seen, events) = mpsc::unbounded_channel();
    let mut client_router = Router::with_mapper(mapper);
    client_router
        .service(KvEventsServer::new(Events {
            seen,
            name: "client-1".into(),
        }))
        .unwrap();
    let client = Peer::new(client_router);
    let session = client.dial(&addr).await.unwrap();
    (server, client, session, events)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_typed_client_calls_a_typed_server_and_is_pushed_to() {
    within(async {
        let (server, client, session, mut events) = pair(UriMapper::Http).await;
        let kv = KvClient::new(session.clone());
        let entry = Entry {
            key: "colour".into(),
            value: "blue".into(),
        };
        assert_eq!(kv.put(entry.clone()).await, Ok(()));
        // The server's typed push reached the client's KvEvents.
        assert_eq!(events.recv().await.unwrap(), entry);
        assert_eq!(kv.get("colour".into()).await, Ok(Some("blue".into())));
        assert_eq!(kv.get("size".into()).await, Ok(None));
        assert_eq!(kv.len().await, Ok(1));
        kv.remove("colour".into()).await.unwrap();
        // The push is one way: the next pull on the same connection is served
        // after it was read.
        let mut len = kv.len().await.unwrap();
        for _ in 0..100 {
            if len == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
            len = kv.len().await.unwrap();
        }
        assert_eq!(len, 0, "the push removed the key");

        // The wire names are the Go erpc ones.
        assert_eq!(
            server.router().pull_uris(),
            [
                "/kv/check",
                "/kv/get",
                "/kv/inspect",
                "/kv/len",
                "/kv/parse",
                "/kv/put",
                "/kv/slow"
            ]
        );
        assert_eq!(server.router().push_uris(), ["/kv/forget"]);
        assert_eq!(client.router().push_uris(), ["/kv_events/changed"]);
        assert_eq!(client.router().pull_uris(), ["/kv_events/whoami"]);
        // A raw pull of the same uri is the same call.
        let raw = session.pull("/kv/get", &"nothing").await.unwrap();
        assert_eq!(raw.decode::<Option<String>>().unwrap(), None);

        client.close().await;
        server.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_listening_side_calls_a_service_the_dialing_side_serves() {
    within(async {
        let (server, client, session, _events) = pair(UriMapper::Http).await;
        // Served once: the server has registered the session.
        KvClient::new(&session).len().await.unwrap();
        let accepted = server.sessions().pop().expect("the server has the session");
        let events = KvEventsClient::new(accepted);
        assert_eq!(events.whoami().await, Ok("client-1".to_owned()));
        client.close().await;
        server.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rpc_names_and_groups_are_followed_by_client_and_server() {
    within(async {
        let (server, client, session, _events) = pair(UriMapper::Rpc).await;
        assert!(server.router().pull_uris().contains(&"Kv.Get"));
        assert_eq!(server.router().push_uris(), ["Kv.Forget"]);
        let kv = KvClient::with_naming(session.clone(), Naming::rpc());
        assert_eq!(kv.len().await, Ok(0));
        // An HTTP-style client of an RPC-style server finds nothing.
        let wrong = KvClient::new(session);
        assert_eq!(wrong.len().await.unwrap_err().code(), code::NOT_FOUND);
        client.close().await;
        server.close().await;

        // Under a group.
        let mut router = Router::new();
        router
            .group("/api/v1")
            .service(KvServer::new(Store::default()))
            .unwrap();
        let server = Peer::new(router);
        let addr = server.listen("127.0.0.1:0").await.unwrap();
        let client = Peer::new(Router::new());
        let session = client.dial(&addr).await.unwrap();
        let kv = KvClient::with_naming(&session, Naming::http().under("/api/v1"));
        assert_eq!(kv.len().await, Ok(0));
        assert_eq!(kv.get("a".into()).uri(), "/api/v1/kv/get");
        let call = format!("{:?}", kv.get("a".into()).timeout(Duration::from_secs(1)));
        assert!(
            call.contains("/api/v1/kv/get") && call.contains("1s"),
            "{call}"
        );
        assert!(format!("{:?}", kv.remove("a".into())).contains("/api/v1/kv/forget"));
        assert!(format!("{kv:?}").contains("/api/v1/kv/len"), "{kv:?}");
        client.close().await;
        server.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_convert_with_question_mark_and_deadlines_expire() {
    within(async {
        let (server, client, session, _events) = pair(UriMapper::Http).await;
        let kv = KvClient::new(&session);
        assert_eq!(kv.parse(" 21 ".into()).await, Ok(42));
        // `?` on a ParseIntError inside the handler: a 500 whose cause stays
        // on the server.
        let err = kv.parse("twenty".into()).await.unwrap_err();
        assert_eq!(err.code(), code::INTERNAL_SERVER_ERROR);
        assert_eq!(err.cause(), Some("internal error"));

        // anyhow: a Status inside stays itself; anything else is internal.
        assert_eq!(kv.check("a".into()).await, Ok(false));
        let err = kv.check(String::new()).await.unwrap_err();
        assert_eq!(
            (err.code(), err.cause()),
            (code::BAD_MESSAGE, Some("an empty key"))
        );
        let err = kv.check("secret".into()).await.unwrap_err();
        assert_eq!(
            (err.code(), err.cause()),
            (code::INTERNAL_SERVER_ERROR, Some("internal error"))
        );

        // A per-call deadline: 408, well before the handler finishes.
        let started = std::time::Instant::now();
        let err = kv
            .slow(5_000)
            .timeout(Duration::from_millis(100))
            .await
            .unwrap_err();
        assert_eq!(err.code(), code::HANDLE_TIMEOUT);
        assert!(started.elapsed() < Duration::from_secs(3));

        // A body the server cannot decode as the argument: 400.
        let err = session.pull("/kv/slow", &"not a number").await.unwrap_err();
        assert_eq!(err.code(), code::BAD_MESSAGE);

        // Per-call meta and codec reach the server; the whole reply is there.
        let seen = kv
            .inspect("x".into())
            .meta("trace", "t-1")
            .codec("plain")
            .accept_codec("json")
            .await;
        assert_eq!(seen, Ok(('s', Some("t-1".to_owned()))));
        assert_eq!(
            kv.inspect("x".into()).await,
            Ok(('j', None)),
            "the default codec"
        );
        let reply = kv.len().accept_codec("json").reply().await.unwrap();
        assert_eq!((reply.codec(), reply.decode::<usize>()), (b'j', Ok(0)));
        client.close().await;
        server.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn internal_causes_are_shown_when_the_server_says_so() {
    within(async {
        let config = jaunt::PeerConfig::builder()
            .expose_internal_errors(true)
            .build();
        let mut router = Router::new();
        router.service(KvServer::new(Store::default())).unwrap();
        let server = Peer::builder(router).config(config).build().unwrap();
        let addr = server.listen("127.0.0.1:0").await.unwrap();
        let client = Peer::new(Router::new());
        let kv = KvClient::new(client.dial(&addr).await.unwrap());
        let err = kv.parse("twenty".into()).await.unwrap_err();
        assert_eq!(err.code(), code::INTERNAL_SERVER_ERROR);
        assert_eq!(err.cause(), Some("invalid digit found in string"));
        let err = kv.check("secret".into()).await.unwrap_err();
        assert_eq!(err.cause(), Some("reading the key: the vault is sealed"));
        client.close().await;
        server.close().await;
    })
    .await;
}
