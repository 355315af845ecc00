//! `binder::Valid` through real sessions: invalid arguments are refused with
//! 400 naming the field, and the handler never sees them.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use jaunt::prelude::*;
use jaunt::Addr;
use jaunt_plugins::binder::{Invalid, Valid, Validate, ValidationError};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::mpsc;

/// Fails the test if `body` takes longer than 20 s.
async fn within<F: Future>(body: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(20), body)
        .await
        .expect("the test did not finish within 20 s")
}

#[derive(Debug, Serialize, Deserialize, Validate)]
struct Address {
    #[validate(length(min = 2))]
    city: String,
}

#[derive(Debug, Serialize, Deserialize, Validate)]
struct NewUser {
    #[validate(length(min = 1, max = 32))]
    name: String,
    #[validate(email)]
    email: String,
    #[validate(range(min = 18, max = 150))]
    age: u32,
    #[validate(nested)]
    address: Address,
}

/// A hand-written rule instead of the derive.
#[derive(Debug, Serialize, Deserialize)]
struct Even(i64);

impl Validate for Even {
    fn validate(&self) -> Result<(), validator::ValidationErrors> {
        let mut errors = validator::ValidationErrors::new();
        if self.0 % 2 != 0 {
            errors.add(
                "value",
                ValidationError::new("even").with_message("must be even".into()),
            );
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

fn good_user() -> serde_json::Value {
    json!({"name": "ann", "email": "ann@example.org", "age": 30, "address": {"city": "Oslo"}})
}

struct Server {
    peer: Peer,
    addr: Addr,
    calls: Arc<AtomicUsize>,
    pushes: mpsc::Receiver<i64>,
}

/// `/users/create` (Valid<NewUser>), `/even` (Valid<Even>), push `/even`.
async fn server() -> Server {
    let calls = Arc::new(AtomicUsize::new(0));
    let (tx, pushes) = mpsc::channel(8);
    let mut router = Router::new();
    let counter = calls.clone();
    router
        .pull(
            "/users/create",
            move |_: PullCtx, Valid(user): Valid<NewUser>| {
                counter.fetch_add(1, Ordering::SeqCst);
                async move { Ok::<_, Status>(format!("welcome, {}", user.name)) }
            },
        )
        .unwrap()
        .pull("/even", |_: PullCtx, even: Valid<Even>| async move {
            Ok::<_, Status>(even.into_inner().0 / 2)
        })
        .unwrap()
        .push("/even", move |_: PushCtx, even: Valid<Even>| {
            let tx = tx.clone();
            async move {
                tx.send(even.0 .0).await.ok();
            }
        })
        .unwrap();
    let peer = Peer::new(router);
    let addr = peer.listen("127.0.0.1:0").await.unwrap();
    Server {
        peer,
        addr,
        calls,
        pushes,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn valid_input_reaches_the_handler() {
    within(async {
        let srv = server().await;
        let client = Peer::new(Router::new());
        let session = client.dial(&srv.addr).await.unwrap();

        let reply = session.pull("/users/create", &good_user()).await.unwrap();
        assert_eq!(reply.decode::<String>().unwrap(), "welcome, ann");
        assert_eq!(srv.calls.load(Ordering::SeqCst), 1);

        client.close().await;
        srv.peer.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_fields_are_named_and_the_handler_does_not_run() {
    within(async {
        let srv = server().await;
        let client = Peer::new(Router::new());
        let session = client.dial(&srv.addr).await.unwrap();

        // One bad field.
        let mut user = good_user();
        user["name"] = json!("");
        let err = session.pull("/users/create", &user).await.unwrap_err();
        assert_eq!(err.code(), code::BAD_MESSAGE);
        assert_eq!(err.msg(), "Bad Message");
        let cause = err.cause().unwrap();
        assert!(cause.contains("name: length (1..=32)"), "{cause}");
        assert!(!cause.contains("email"), "{cause}");

        // Several, nested included: each is named, in order.
        let user = json!({"name": "x", "email": "nope", "age": 7, "address": {"city": "A"}});
        let err = session.pull("/users/create", &user).await.unwrap_err();
        assert_eq!(err.code(), code::BAD_MESSAGE);
        let cause = err.cause().unwrap();
        assert!(
            cause.ends_with(
                "invalid: address.city: length (>= 2); age: range (18..=150); email: email"
            ),
            "{cause}"
        );

        // A body that does not decode at all is still the codec's 400.
        let err = session
            .pull("/users/create", &json!({"name": 1}))
            .await
            .unwrap_err();
        assert_eq!(err.code(), code::BAD_MESSAGE);

        assert_eq!(srv.calls.load(Ordering::SeqCst), 0, "the handler never ran");

        client.close().await;
        srv.peer.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hand_written_rules_and_pushes() {
    within(async {
        let mut srv = server().await;
        let client = Peer::new(Router::new());
        let session = client.dial(&srv.addr).await.unwrap();

        let half: i64 = session.pull("/even", &4).await.unwrap().decode().unwrap();
        assert_eq!(half, 2);
        let err = session.pull("/even", &3).await.unwrap_err();
        assert_eq!(err.code(), code::BAD_MESSAGE);
        assert!(
            err.cause().unwrap().contains("value: even: must be even"),
            "{err}"
        );

        // An invalid push is dropped; the valid one after it arrives.
        session.push("/even", &5).await.unwrap();
        session.push("/even", &6).await.unwrap();
        assert_eq!(srv.pushes.recv().await.unwrap(), 6);
        let next = tokio::time::timeout(Duration::from_millis(100), srv.pushes.recv()).await;
        assert!(
            next.is_err(),
            "the invalid push was not delivered: {next:?}"
        );

        client.close().await;
        srv.peer.close().await;
    })
    .await;
}

#[test]
fn invalid_lists_its_fields() {
    let user = NewUser {
        name: String::new(),
        email: "ann@example.org".into(),
        age: 200,
        address: Address {
            city: "Oslo".into(),
        },
    };
    let invalid = Invalid(user.validate().unwrap_err());
    assert_eq!(invalid.fields(), ["age", "name"]);
    assert_eq!(
        invalid.to_string(),
        "invalid: age: range (18..=150); name: length (1..=32)"
    );
}
