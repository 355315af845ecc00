//! Per-message body encryption, requested through meta.
//!
//! A caller marks a pull or push as secure with the meta key
//! [`SECURE`] (`X-Secure=1`; [`encrypted`] adds it to a [`PullOptions`]).
//! The [`Secure`] plugin, registered on both peers with the same 256-bit
//! key, then encrypts the body of that message and of its reply with
//! ChaCha20-Poly1305 (an AEAD: the body is both hidden and protected against
//! tampering), under a fresh random 96-bit nonce per message. Messages
//! without the flag are left alone, so secure and plain calls share a
//! session.
//!
//! On the wire an encrypted body is `nonce (12 bytes) || ciphertext ||
//! tag (16 bytes)`; the frame keeps its body codec id (the codec of the
//! plaintext) and its `X-Secure` meta entry, which tells the receiver to
//! decrypt. The additional authenticated data is the message type and the
//! codec id, so a body cannot be moved from a pull to a reply nor be given
//! another codec unnoticed. The uri, meta, status and seq stay in clear and
//! are not authenticated (use TLS against an active attacker who could
//! replay or reroute whole messages).
//!
//! Where it happens:
//!
//! | side | hook | what |
//! |---|---|---|
//! | caller | `pre_write_pull`, `pre_write_push` | encrypt a flagged body |
//! | server | `pre_read_pull_body`, `pre_read_push_body` | decrypt it before the argument is decoded; failure: reply 400 `secure: decryption failed` (a push is dropped), the handler does not run |
//! | server | `post_read_pull_body` | flag the reply of a secure pull (reply meta `X-Secure=1`) |
//! | server | `pre_write_reply` | encrypt the flagged reply's body (error replies carry no body and no flag) |
//! | caller | `pre_read_reply_body` | decrypt the reply; failure, or a secure pull answered with a plain reply, is status 400 |
//!
//! The server side uses route hooks only, so on the serving peer the plugin
//! may also be attached to a route group with
//! [`plugin_group`](jaunt_peer::PluginGroups::plugin_group); the calling side
//! needs it as a peer plugin. Decrypting in `pre_read_pull_body` means
//! plugins that run earlier (`post_read_pull_header`) see the ciphertext.
//! Register `Secure` after plugins that must see the wire form (a capture)
//! and before plugins that must see the plaintext.
//!
//! ```
//! use jaunt::prelude::*;
//! use jaunt::plugins::secure::{self, Secure};
//!
//! # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
//! let key = Secure::generate_key(); // share it with the other side
//!
//! let mut routes = Router::new();
//! routes
//!     .pull("/whisper", |_: PullCtx, text: String| async move {
//!         Ok::<_, Status>(text.to_uppercase())
//!     })
//!     .unwrap();
//! let server = Peer::builder(routes).plugin(Secure::new(key)).build().unwrap();
//! let addr = server.listen("127.0.0.1:0").await.unwrap();
//!
//! let client = Peer::builder(Router::new()).plugin(Secure::new(key)).build().unwrap();
//! let session = client.dial(&addr).await.unwrap();
//! let opts = secure::encrypted(PullOptions::new());
//! let reply = session.pull_with("/whisper", &"psst", opts).await.unwrap();
//! assert_eq!(reply.decode::<String>().unwrap(), "PSST");
//!
//! client.close().await;
//! server.close().await;
//! # });
//! ```

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use bytes::Bytes;
use chacha20poly1305::aead::rand_core::RngCore;
use chacha20poly1305::aead::{Aead, OsRng, Payload};
use chacha20poly1305::{ChaCha20Poly1305, KeyInit, Nonce};
use jaunt_peer::{Plugin, PullCtx, PullOptions, RoutePlugin, Session};
use jaunt_socket::{Meta, Packet, PacketType, Status};

/// The meta key that asks for encryption: `X-Secure=1` (`true` is
/// accepted too).
pub const SECURE: &str = "X-Secure";

/// Length of a key in bytes.
pub const KEY_LEN: usize = 32;
/// Length of the nonce that starts every encrypted body.
const NONCE_LEN: usize = 12;
/// Length of the Poly1305 tag that ends every encrypted body.
const TAG_LEN: usize = 16;

/// The cause of the 400 status when a body cannot be decrypted.
pub const DECRYPTION_FAILED: &str = "secure: decryption failed";

/// `opts` with the [`SECURE`] flag: the body of the message and of its
/// reply are encrypted.
#[must_use]
pub fn encrypted(opts: PullOptions) -> PullOptions {
    opts.meta(SECURE, "1")
}

/// Whether `meta` carries the [`SECURE`] flag.
pub fn is_secure(meta: &Meta) -> bool {
    matches!(meta.get(SECURE), Some(v) if v == b"1" || v.eq_ignore_ascii_case(b"true"))
}

/// A key of the wrong length.
#[derive(Debug, Clone, thiserror::Error)]
#[error("a secure key is {KEY_LEN} bytes, not {0}")]
pub struct InvalidKeyLength(pub usize);

/// The plugin: encrypts and decrypts the bodies of messages flagged with
/// [`SECURE`] (see the module documentation). Its name is `secure`.
pub struct Secure {
    cipher: ChaCha20Poly1305,
    /// Distinguishes this instance's pending pulls in session data.
    instance: u64,
}

impl std::fmt::Debug for Secure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secure(<key redacted>)")
    }
}

static INSTANCES: AtomicU64 = AtomicU64::new(1);

/// The seqs of secure pulls this side sent and awaits the reply of, per
/// plugin instance; kept in the session's data so they go with it.
#[derive(Default)]
struct PendingSecure(HashSet<(u64, i32)>);

impl Secure {
    /// A plugin with this 256-bit key. Both peers need the same key.
    pub fn new(key: [u8; KEY_LEN]) -> Self {
        Self {
            cipher: ChaCha20Poly1305::new(&key.into()),
            instance: INSTANCES.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// A plugin with a key given as a slice, which must be 32 bytes long.
    pub fn try_from_slice(key: &[u8]) -> Result<Self, InvalidKeyLength> {
        <[u8; KEY_LEN]>::try_from(key)
            .map(Self::new)
            .map_err(|_| InvalidKeyLength(key.len()))
    }

    /// A fresh random key from the operating system's generator.
    ///
    /// # Panics
    ///
    /// If the operating system cannot provide random bytes.
    pub fn generate_key() -> [u8; KEY_LEN] {
        let mut key = [0u8; KEY_LEN];
        OsRng
            .try_fill_bytes(&mut key)
            .expect("the operating system random number generator failed");
        key
    }

    /// `body` encrypted: nonce || ciphertext || tag.
    fn seal(&self, ptype: PacketType, codec: u8, body: &[u8]) -> Result<Bytes, Status> {
        let mut nonce = [0u8; NONCE_LEN];
        OsRng
            .try_fill_bytes(&mut nonce)
            .map_err(|e| Status::internal(format!("secure: no random nonce: {e}")))?;
        let aad = [ptype.as_u8(), codec];
        let sealed = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: body,
                    aad: &aad,
                },
            )
            .map_err(|_| Status::internal("secure: encryption failed"))?;
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out.into())
    }

    /// The plaintext of an encrypted body; 400 if it is not authentic.
    fn open(&self, ptype: PacketType, codec: u8, body: &[u8]) -> Result<Bytes, Status> {
        if body.len() < NONCE_LEN + TAG_LEN {
            return Err(Status::bad_message(DECRYPTION_FAILED));
        }
        let (nonce, sealed) = body.split_at(NONCE_LEN);
        let aad = [ptype.as_u8(), codec];
        self.cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: &aad,
                },
            )
            .map(Bytes::from)
            .map_err(|_| Status::bad_message(DECRYPTION_FAILED))
    }

    /// Encrypts a flagged outgoing pull or push in place.
    fn seal_packet(&self, packet: &mut Packet) -> Result<(), Status> {
        packet.body = self.seal(packet.ptype, packet.body_codec, &packet.body)?;
        Ok(())
    }

    /// Decrypts a flagged incoming packet in place.
    fn open_packet(&self, packet: &mut Packet) -> Result<(), Status> {
        packet.body = self.open(packet.ptype, packet.body_codec, &packet.body)?;
        Ok(())
    }
}

#[async_trait]
impl RoutePlugin for Secure {
    fn name(&self) -> &str {
        "secure"
    }

    async fn pre_read_pull_body(&self, _: &Session, packet: &mut Packet) -> Result<(), Status> {
        if is_secure(&packet.meta) {
            self.open_packet(packet)?;
        }
        Ok(())
    }

    async fn post_read_pull_body(&self, ctx: &PullCtx) -> Result<(), Status> {
        if is_secure(ctx.meta()) {
            ctx.set_reply_meta(SECURE, "1");
        }
        Ok(())
    }

    async fn pre_write_reply(&self, _: &Session, reply: &mut Packet) -> Result<(), Status> {
        if !is_secure(&reply.meta) {
            return Ok(());
        }
        if reply.status.is_ok() {
            self.seal_packet(reply)
        } else {
            // An error reply has no body: nothing to hide, nothing to open.
            reply.meta.remove(SECURE);
            Ok(())
        }
    }

    async fn pre_read_push_body(&self, _: &Session, packet: &mut Packet) -> Result<(), Status> {
        if is_secure(&packet.meta) {
            self.open_packet(packet)?;
        }
        Ok(())
    }
}

#[async_trait]
impl Plugin for Secure {
    async fn pre_write_pull(&self, session: &Session, pull: &mut Packet) -> Result<(), Status> {
        if is_secure(&pull.meta) {
            self.seal_packet(pull)?;
            session
                .data()
                .update(|p: &mut PendingSecure| p.0.insert((self.instance, pull.seq)));
        }
        Ok(())
    }

    async fn pre_write_push(&self, _: &Session, push: &mut Packet) -> Result<(), Status> {
        if is_secure(&push.meta) {
            self.seal_packet(push)?;
        }
        Ok(())
    }

    async fn pre_read_reply_body(
        &self,
        session: &Session,
        reply: &mut Packet,
    ) -> Result<(), Status> {
        let asked = session
            .data()
            .update(|p: &mut PendingSecure| p.0.remove(&(self.instance, reply.seq)));
        if !reply.status.is_ok() {
            return Ok(());
        }
        if is_secure(&reply.meta) {
            self.open_packet(reply)
        } else if asked {
            // Refuse a downgrade: a secure pull must get a secure reply.
            Err(Status::bad_message(
                "secure: the reply to a secure pull was not encrypted",
            ))
        } else {
            Ok(())
        }
    }
}
