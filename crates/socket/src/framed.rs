//! [`PacketCodec`]: frames any `AsyncRead`/`AsyncWrite` with any [`Proto`],
//! through tokio-util's `Framed`.

use std::sync::Arc;

use bytes::BytesMut;
use tokio_util::codec::{Decoder, Encoder};

use crate::{Packet, Proto, ProtoError};

/// A tokio-util [`Decoder`]/[`Encoder`] for packets in a given [`Proto`].
///
/// ```
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use futures_util::{SinkExt, StreamExt};
/// use jaunt_socket::{Packet, PacketCodec, PacketType, RawProto};
/// use tokio_util::codec::Framed;
///
/// let (a, b) = tokio::io::duplex(4096);
/// let mut left = Framed::new(a, PacketCodec::new(RawProto::default()));
/// let mut right = Framed::new(b, PacketCodec::new(RawProto::default()));
/// left.send(Packet::new(PacketType::Push, 1, "/hi")).await?;
/// let got = right.next().await.expect("one packet")?;
/// assert_eq!(got.uri, "/hi");
/// # Ok(()) }
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(demo()).unwrap();
/// ```
#[derive(Clone)]
pub struct PacketCodec {
    proto: Arc<dyn Proto>,
}

impl std::fmt::Debug for PacketCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PacketCodec")
            .field("proto", &self.proto.name())
            .finish()
    }
}

impl PacketCodec {
    /// A codec for the given framing.
    pub fn new(proto: impl Proto) -> Self {
        Self {
            proto: Arc::new(proto),
        }
    }

    /// A codec for a shared framing.
    pub fn from_arc(proto: Arc<dyn Proto>) -> Self {
        Self { proto }
    }

    /// The framing.
    pub fn proto(&self) -> &Arc<dyn Proto> {
        &self.proto
    }
}

impl Decoder for PacketCodec {
    type Item = Packet;
    type Error = ProtoError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Packet>, ProtoError> {
        self.proto.decode(src)
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Packet>, ProtoError> {
        match self.proto.decode(src)? {
            Some(packet) => Ok(Some(packet)),
            None if src.is_empty() => Ok(None),
            None => {
                // The framing knows whether its prefix counts itself.
                let need = self
                    .proto
                    .frame_len(src)
                    .map_or(4, |len| usize::try_from(len).unwrap_or(usize::MAX));
                Err(ProtoError::Truncated {
                    have: src.len(),
                    need,
                })
            }
        }
    }
}

impl Encoder<&Packet> for PacketCodec {
    type Error = ProtoError;

    fn encode(&mut self, packet: &Packet, dst: &mut BytesMut) -> Result<(), ProtoError> {
        self.proto.encode(packet, dst)
    }
}

impl Encoder<Packet> for PacketCodec {
    type Error = ProtoError;

    fn encode(&mut self, packet: Packet, dst: &mut BytesMut) -> Result<(), ProtoError> {
        self.proto.encode(&packet, dst)
    }
}
