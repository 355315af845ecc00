//! Authentication: the AUTH_PULL / AUTH_REPLY handshake of Go erpc.
//!
//! The dialing side adds [`Bearer`], which holds the credentials; the
//! accepting side adds [`Checker`], which judges them. The handshake runs in
//! the `post_dial` and `post_accept` hooks, **before either session reads
//! anything else**, so no route of the accepting side is reachable until it
//! has succeeded: a connection whose first frame is not an AUTH_PULL is
//! closed without an answer.
//!
//! On the wire (byte-compatible with Go erpc's bearer and checker plugins):
//!
//! 1. the dialing side sends AUTH_PULL (type 4) with an empty uri, status
//!    `code=0`, no meta, the credentials JSON-encoded as the body (codec `j`)
//!    and a seq from its own counter (so its first ordinary pull is seq 2);
//! 2. the accepting side answers AUTH_REPLY (type 5) with an empty uri and
//!    its **own** first seq: on success status `code=0`, codec `j` and the
//!    JSON string `"ok"` as the body; on rejection status
//!    `code=401&msg=Unauthorized&cause=<reason>`, codec `j`, an empty body,
//!    no transfer filters, and it closes the connection;
//! 3. a rejected dial fails with status 105 (dial failed) whose cause
//!    carries the 401 and its reason.
//!
//! On success the accepting side stores the credentials in the session's
//! data as [`Credentials`], and the dialing side stores the body of the
//! AUTH_REPLY as [`AuthReply`]. A checker may store more (a user id, say)
//! with `session.data().insert(..)`.
//!
//! ```
//! use jaunt::prelude::*;
//! use jaunt::plugins::auth::{Bearer, Checker, Credentials};
//!
//! # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
//! let mut routes = Router::new();
//! routes
//!     .pull("/whoami", |ctx: PullCtx| async move {
//!         let who = ctx.session().data().get::<Credentials>().map(|c| c.0);
//!         Ok::<_, Status>(who)
//!     })
//!     .unwrap();
//! // Accept the token "s3cret" only.
//! let server = Peer::builder(routes)
//!     .plugin(Checker::expect("s3cret"))
//!     .build()
//!     .unwrap();
//! let addr = server.listen("127.0.0.1:0").await.unwrap();
//!
//! let client = Peer::builder(Router::new())
//!     .plugin(Bearer::new("s3cret"))
//!     .build()
//!     .unwrap();
//! let session = client.dial(&addr).await.unwrap();
//! let who: serde_json::Value = session.pull("/whoami", &()).await.unwrap().decode().unwrap();
//! assert_eq!(who, "s3cret");
//!
//! let intruder = Peer::builder(Router::new())
//!     .plugin(Bearer::new("guess"))
//!     .build()
//!     .unwrap();
//! let refused = intruder.dial(&addr).await.unwrap_err();
//! assert_eq!(refused.code(), code::DIAL_FAILED);
//!
//! intruder.close().await;
//! client.close().await;
//! server.close().await;
//! # });
//! ```
//!
//! A checker is any closure `Fn(&Session, serde_json::Value) -> Result<(),
//! String>` ([`Checker::new`]), or an async one taking the session by value
//! ([`Checker::new_async`]); the `String` is the rejection reason sent back
//! to the dialer.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use jaunt_codec::ids as codec_ids;
use jaunt_peer::{Plugin, RoutePlugin, Session};
use jaunt_socket::{Packet, PacketType, Status};
use serde_json::Value;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The body of a successful AUTH_REPLY: the JSON string `"ok"`, as Go
/// erpc's checker sends it.
const OK_BODY: &[u8] = b"\"ok\"";

/// The credentials a session was authenticated with, stored in the accepting
/// side's [`session.data()`](Session::data) once the [`Checker`] accepted
/// them.
#[derive(Debug, Clone, PartialEq)]
pub struct Credentials(pub Value);

/// The decoded body of the AUTH_REPLY that accepted a dial (`"ok"` from a Jaunt
/// or Go checker), stored in the dialing side's
/// [`session.data()`](Session::data).
#[derive(Debug, Clone, PartialEq)]
pub struct AuthReply(pub Value);

/// The dialing side of the handshake: sends the credentials as the first
/// frame of every dialed session and waits for the verdict. A rejection
/// fails the dial with status 105 carrying the 401 status and its reason.
#[derive(Debug, Clone)]
pub struct Bearer {
    body: Bytes,
    timeout: Option<Duration>,
}

impl Bearer {
    /// Credentials given as a JSON value (a `&str` token, a number, or
    /// `serde_json::json!({...})`).
    pub fn new(credentials: impl Into<Value>) -> Self {
        let value: Value = credentials.into();
        Self {
            // Serializing a `Value` cannot fail.
            body: Bytes::from(value.to_string()),
            timeout: None,
        }
    }

    /// Credentials given as any serializable value (a struct, say).
    pub fn from_serialize<T: serde::Serialize + ?Sized>(
        credentials: &T,
    ) -> Result<Self, serde_json::Error> {
        Ok(Self {
            body: Bytes::from(serde_json::to_vec(credentials)?),
            timeout: None,
        })
    }

    /// How long to wait for the AUTH_REPLY (default: the peer's
    /// `dial_timeout`).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The AUTH_PULL this bearer sends as seq `seq`: type 4, empty uri,
    /// status `code=0`, no meta, the JSON-encoded credentials with codec `j`,
    /// no transfer filters.
    pub fn auth_pull(&self, seq: i32) -> Packet {
        let mut packet = Packet::new(PacketType::AuthPull, seq, "");
        packet.body_codec = codec_ids::JSON;
        packet.body = self.body.clone();
        packet
    }

    async fn handshake(&self, session: &Session) -> Result<(), Status> {
        let mut pull = self.auth_pull(session.next_seq());
        session.send_packet(&mut pull).await?;
        let limit = self
            .timeout
            .unwrap_or_else(|| session.peer().config().dial_timeout);
        let reply = tokio::time::timeout(limit, session.handshake_recv())
            .await
            .map_err(|_| Status::conn_closed("no auth reply in time"))??;
        if reply.ptype != PacketType::AuthReply {
            return Err(Status::wrong_conn(format!(
                "expected an auth reply, got a {:?} message",
                reply.ptype
            )));
        }
        if !reply.status.is_ok() {
            return Err(reply.status);
        }
        let body = decode_value(session, &reply)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&reply.body).into_owned()));
        session.data().insert(AuthReply(body));
        Ok(())
    }
}

#[async_trait]
impl RoutePlugin for Bearer {
    fn name(&self) -> &str {
        "auth-bearer"
    }
}

#[async_trait]
impl Plugin for Bearer {
    async fn post_dial(&self, session: &Session, _is_redial: bool) -> Result<(), Status> {
        self.handshake(session).await
    }
}

type CheckFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;
type CheckFn = dyn Fn(Session, Value) -> CheckFuture + Send + Sync;

/// The accepting side of the handshake: reads the first frame of every
/// accepted session, which must be an AUTH_PULL, and lets its check decide.
///
/// - The first frame is not an AUTH_PULL: nothing is answered and the session
///   is closed (status 401).
/// - The check passes: AUTH_REPLY `code=0` with the body `"ok"`; the
///   credentials are stored as [`Credentials`] in the session's data; the
///   session starts serving.
/// - The check fails with a reason: AUTH_REPLY
///   `code=401&msg=Unauthorized&cause=<reason>` and the session is closed.
#[derive(Clone)]
pub struct Checker {
    check: Arc<CheckFn>,
    timeout: Option<Duration>,
}

impl std::fmt::Debug for Checker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checker")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Checker {
    /// A checker from a synchronous closure: `Ok(())` accepts, `Err(reason)`
    /// rejects with that reason. The credentials are the AUTH_PULL's body
    /// decoded as JSON (`Value::Null` when empty).
    pub fn new<F>(check: F) -> Self
    where
        F: Fn(&Session, Value) -> Result<(), String> + Send + Sync + 'static,
    {
        Self {
            check: Arc::new(move |session: Session, credentials: Value| {
                let verdict = check(&session, credentials);
                Box::pin(std::future::ready(verdict)) as CheckFuture
            }),
            timeout: None,
        }
    }

    /// A checker from an async closure (one that looks the credentials up in
    /// a database, say).
    pub fn new_async<F, Fut>(check: F) -> Self
    where
        F: Fn(Session, Value) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        Self {
            check: Arc::new(move |session: Session, credentials: Value| {
                Box::pin(check(session, credentials)) as CheckFuture
            }),
            timeout: None,
        }
    }

    /// Accepts exactly these credentials (a shared token, say), rejecting
    /// anything else with the reason `invalid credentials`.
    ///
    /// The comparison takes the same time whatever the given credentials
    /// have in common with the expected ones, so a client cannot guess a
    /// token byte by byte from how fast it is refused: both sides are
    /// reduced to the SHA-256 digest of their canonical JSON (object keys
    /// sorted), and the two 32-byte digests are compared in constant time
    /// ([`subtle::ConstantTimeEq`]). Hashing the given credentials takes
    /// time in proportion to *their* length, which the client knows
    /// already; nothing about the expected credentials, not even their
    /// length, shows in the timing.
    pub fn expect(credentials: impl Into<Value>) -> Self {
        let expected = credentials_digest(&credentials.into());
        Self::new(move |_, given| {
            if bool::from(credentials_digest(&given).ct_eq(&expected)) {
                Ok(())
            } else {
                Err("invalid credentials".to_owned())
            }
        })
    }

    /// How long to wait for the AUTH_PULL and for the check (default: the
    /// peer's `dial_timeout`). A connection that stays silent longer is
    /// closed.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The AUTH_REPLY to send as seq `seq`: accepting (`code=0`, body `"ok"`)
    /// or rejecting (`code=401&msg=Unauthorized&cause=<reason>`, empty
    /// body), both with codec `j`, empty uri, no meta and no filters.
    pub fn auth_reply(seq: i32, verdict: Result<(), &str>) -> Packet {
        let mut reply = Packet::new(PacketType::AuthReply, seq, "");
        reply.body_codec = codec_ids::JSON;
        match verdict {
            Ok(()) => reply.body = Bytes::from_static(OK_BODY),
            Err(reason) => reply.status = Status::unauthorized(reason),
        }
        reply
    }

    async fn handshake(&self, session: &Session) -> Result<(), Status> {
        let limit = self
            .timeout
            .unwrap_or_else(|| session.peer().config().dial_timeout);
        let pull = tokio::time::timeout(limit, session.handshake_recv())
            .await
            .map_err(|_| Status::unauthorized("no auth message in time"))??;
        if pull.ptype != PacketType::AuthPull {
            // As Go erpc does: no answer, the connection is dropped.
            return Err(Status::unauthorized(format!(
                "the first message is a {:?}, not an auth message",
                pull.ptype
            )));
        }
        let verdict = match decode_value(session, &pull) {
            Ok(credentials) => {
                match tokio::time::timeout(
                    limit,
                    (self.check)(session.clone(), credentials.clone()),
                )
                .await
                {
                    Ok(Ok(())) => Ok(credentials),
                    Ok(Err(reason)) => Err(reason),
                    Err(_) => Err("the credentials check timed out".to_owned()),
                }
            }
            Err(reason) => Err(reason),
        };
        let seq = session.next_seq();
        match verdict {
            Ok(credentials) => {
                session.data().insert(Credentials(credentials));
                session
                    .send_packet(&mut Self::auth_reply(seq, Ok(())))
                    .await
            }
            Err(reason) => {
                let mut reply = Self::auth_reply(seq, Err(&reason));
                let status = reply.status.clone();
                // The session is closed right after; its queued frames are
                // flushed first, so the dialer learns why.
                let _ = session.send_packet(&mut reply).await;
                Err(status)
            }
        }
    }
}

#[async_trait]
impl RoutePlugin for Checker {
    fn name(&self) -> &str {
        "auth-checker"
    }
}

#[async_trait]
impl Plugin for Checker {
    async fn post_accept(&self, session: &Session) -> Result<(), Status> {
        self.handshake(session).await
    }
}

/// The SHA-256 digest of `value`'s canonical JSON: equal values (object
/// keys in any order) give equal digests, whatever serde_json's features.
fn credentials_digest(value: &Value) -> [u8; 32] {
    fn canonical(value: &Value) -> Value {
        match value {
            Value::Object(map) => {
                let mut entries: Vec<_> = map.iter().collect();
                entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
                Value::Object(
                    entries
                        .into_iter()
                        .map(|(key, value)| (key.clone(), canonical(value)))
                        .collect(),
                )
            }
            Value::Array(items) => Value::Array(items.iter().map(canonical).collect()),
            other => other.clone(),
        }
    }
    Sha256::digest(canonical(value).to_string().as_bytes()).into()
}

/// The body of an auth message as a JSON value: empty is `null`; any codec
/// the peer knows is accepted (a plain-string body becomes a JSON string).
fn decode_value(session: &Session, packet: &Packet) -> Result<Value, String> {
    if packet.body.is_empty() {
        return Ok(Value::Null);
    }
    let codec = match packet.body_codec {
        codec_ids::NONE => codec_ids::JSON,
        other => other,
    };
    session
        .peer()
        .codecs()
        .decode::<Value>(codec, &packet.body)
        .map_err(|e| format!("undecodable credentials: {e}"))
}
