//! Framing: a 4-byte big-endian body length, then a MessagePack body.
//!
//! The length is checked against the configured maximum *before* any buffer
//! grows, so a hostile or confused peer announcing a 1 GiB frame costs us four
//! bytes, not a gigabyte. A body that is not valid MessagePack, or that does not
//! match the expected message type, is reported as [`MalformedFrame`]: the frame
//! has already been consumed whole, so the stream stays in sync and the server
//! can answer `bad_request` and keep reading.

use std::io;
use std::marker::PhantomData;

use bytes::{BufMut, BytesMut};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio_util::codec::{Decoder, Encoder};

/// Largest frame body accepted unless configured otherwise (16 MiB).
pub const DEFAULT_MAX_FRAME_LEN: usize = 16 * 1024 * 1024;

/// Size of the length prefix in front of every frame body.
pub const FRAME_HEADER_LEN: usize = 4;

/// Deepest MessagePack nesting we decode; our messages nest a handful of
/// levels, and the limit keeps hostile input from recursing deeply.
const MAX_NESTING_DEPTH: usize = 128;

/// Why a frame could not be read or written.
///
/// Only [`WireError::Malformed`] leaves the connection usable; every other
/// variant means the byte stream can no longer be trusted and the connection
/// must be closed (see [`WireError::is_fatal`]).
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// The peer announced a frame longer than we accept. Nothing was allocated
    /// for it; the stream cannot be resynchronised, so the connection must close.
    #[error(
        "peer announced a frame of {len} bytes, over the {max}-byte limit; closing the connection"
    )]
    FrameTooLarge {
        /// Body length announced by the peer's header.
        len: u64,
        /// Configured maximum body length.
        max: usize,
    },
    /// We were asked to send a frame longer than the configured maximum (the
    /// other side would refuse it anyway). Nothing was written.
    #[error("refusing to send a frame of {len} bytes, over the {max}-byte limit")]
    OutgoingFrameTooLarge {
        /// Encoded body length.
        len: usize,
        /// Configured maximum body length.
        max: usize,
    },
    /// A whole frame arrived but its body is not a message of the expected type.
    /// The stream is still in sync.
    #[error(transparent)]
    Malformed(#[from] MalformedFrame),
    /// The peer closed the connection part-way through a frame.
    #[error("connection closed in the middle of a frame ({buffered} bytes of it received)")]
    TruncatedFrame {
        /// Bytes of the incomplete frame (header included) that had arrived.
        buffered: usize,
    },
    /// The message could not be encoded as MessagePack (a bug in a `Serialize`
    /// impl, e.g. a map with non-string keys in a human-readable format).
    #[error("cannot encode message: {0}")]
    Encode(#[from] rmp_serde::encode::Error),
    /// The underlying socket failed.
    #[error("connection I/O error: {0}")]
    Io(#[from] io::Error),
}

impl WireError {
    /// Whether the connection must be closed after this error. Only a malformed
    /// body (complete frame, bad content) and a refused outgoing frame (nothing
    /// was written) leave the stream usable.
    pub fn is_fatal(&self) -> bool {
        !matches!(
            self,
            WireError::Malformed(_) | WireError::OutgoingFrameTooLarge { .. }
        )
    }
}

/// A complete frame whose body could not be decoded as the expected message.
///
/// The server answers it with `bad_request`, echoing `request_id` when the body
/// was at least a map carrying an integer `request_id` field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed frame body ({body_len} bytes): {reason}")]
pub struct MalformedFrame {
    /// The `request_id` salvaged from the body, if there was one.
    pub request_id: Option<u64>,
    /// Length of the offending body.
    pub body_len: usize,
    /// What the decoder objected to.
    pub reason: String,
}

/// A typed frame codec for use with tokio-util's `Framed`, `FramedRead` and
/// `FramedWrite`.
///
/// Decoding yields `Ok(Some(Err(MalformedFrame)))` for a complete frame with a
/// bad body rather than an error, because tokio-util ends a framed stream at its
/// first decoder error and a bad body must not cost the connection.
/// [`crate::Connection`] wraps the same logic with a friendlier API.
#[derive(Debug)]
pub struct FrameCodec<In, Out> {
    max_frame_len: usize,
    _types: PhantomData<fn(Out) -> In>,
}

impl<In, Out> FrameCodec<In, Out> {
    /// A codec refusing bodies longer than `max_frame_len` bytes (capped at
    /// `u32::MAX`, the most a 4-byte header can announce).
    pub fn new(max_frame_len: usize) -> Self {
        FrameCodec {
            max_frame_len: max_frame_len.min(u32::MAX as usize),
            _types: PhantomData,
        }
    }

    /// The largest body this codec accepts or sends.
    pub fn max_frame_len(&self) -> usize {
        self.max_frame_len
    }
}

impl<In, Out> Default for FrameCodec<In, Out> {
    fn default() -> Self {
        FrameCodec::new(DEFAULT_MAX_FRAME_LEN)
    }
}

impl<In, Out> Clone for FrameCodec<In, Out> {
    fn clone(&self) -> Self {
        FrameCodec::new(self.max_frame_len)
    }
}

impl<In: DeserializeOwned, Out> Decoder for FrameCodec<In, Out> {
    type Item = Result<In, MalformedFrame>;
    type Error = WireError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Self::Item>, WireError> {
        Ok(split_frame(src, self.max_frame_len)?.map(|body| decode_body(&body)))
    }
}

impl<In, Out: Serialize> Encoder<Out> for FrameCodec<In, Out> {
    type Error = WireError;

    fn encode(&mut self, item: Out, dst: &mut BytesMut) -> Result<(), WireError> {
        encode_frame(&item, dst, self.max_frame_len)
    }
}

/// Removes one complete frame body from the front of `src`, or returns
/// `Ok(None)` after reserving room for the rest of it. The announced length is
/// checked before reserving, so an oversized header never allocates.
pub(crate) fn split_frame(
    src: &mut BytesMut,
    max_frame_len: usize,
) -> Result<Option<BytesMut>, WireError> {
    let &[a, b, c, d, ..] = &src[..] else {
        src.reserve(FRAME_HEADER_LEN - src.len());
        return Ok(None);
    };
    let len = u32::from_be_bytes([a, b, c, d]) as usize;
    if len > max_frame_len {
        return Err(WireError::FrameTooLarge {
            len: len as u64,
            max: max_frame_len,
        });
    }
    let total = FRAME_HEADER_LEN + len;
    if src.len() < total {
        src.reserve(total - src.len());
        return Ok(None);
    }
    let mut frame = src.split_to(total);
    Ok(Some(frame.split_off(FRAME_HEADER_LEN)))
}

/// Decodes one body. Trailing bytes after the first MessagePack value are an
/// error: they mean the sender's framing and encoding disagree.
pub(crate) fn decode_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, MalformedFrame> {
    let mut de = rmp_serde::Deserializer::new(body);
    de.set_max_depth(MAX_NESTING_DEPTH);
    let malformed = |reason: String| MalformedFrame {
        request_id: salvage_request_id(body),
        body_len: body.len(),
        reason,
    };
    let value = T::deserialize(&mut de).map_err(|e| malformed(e.to_string()))?;
    let trailing = de.get_ref().len();
    if trailing > 0 {
        return Err(malformed(format!(
            "{trailing} trailing bytes after the MessagePack value"
        )));
    }
    Ok(value)
}

/// Reads just the `request_id` field of a map body that failed to decode, so
/// the error reply can still be matched to its request.
fn salvage_request_id(body: &[u8]) -> Option<u64> {
    #[derive(serde::Deserialize)]
    struct RequestIdOnly {
        request_id: u64,
    }
    let mut de = rmp_serde::Deserializer::new(body);
    de.set_max_depth(MAX_NESTING_DEPTH);
    RequestIdOnly::deserialize(&mut de)
        .ok()
        .map(|r| r.request_id)
}

/// Appends one frame (header and named-map MessagePack body) to `dst`. On
/// error `dst` is left as it was.
pub(crate) fn encode_frame<T: Serialize + ?Sized>(
    item: &T,
    dst: &mut BytesMut,
    max_frame_len: usize,
) -> Result<(), WireError> {
    let start = dst.len();
    dst.put_u32(0);
    if let Err(e) = rmp_serde::encode::write_named(&mut (&mut *dst).writer(), item) {
        dst.truncate(start);
        return Err(WireError::Encode(e));
    }
    let len = dst.len() - start - FRAME_HEADER_LEN;
    // `max_frame_len` is capped at u32::MAX, so the cast below cannot truncate.
    if len > max_frame_len {
        dst.truncate(start);
        return Err(WireError::OutgoingFrameTooLarge {
            len,
            max: max_frame_len,
        });
    }
    dst[start..start + FRAME_HEADER_LEN].copy_from_slice(&(len as u32).to_be_bytes());
    Ok(())
}

/// Encodes `item` as one complete frame (header included). Handy for tests,
/// tools and documentation; connections encode straight into their buffers.
pub fn encode_to_vec<T: Serialize + ?Sized>(item: &T) -> Result<Vec<u8>, WireError> {
    let mut buf = BytesMut::new();
    encode_frame(item, &mut buf, DEFAULT_MAX_FRAME_LEN)?;
    Ok(buf.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_claiming_one_gib_is_refused_without_allocating() {
        let mut codec = FrameCodec::<u64, u64>::default();
        let mut buf = BytesMut::new();
        buf.put_u32(1 << 30);
        buf.put_slice(b"abc");
        let err = codec.decode(&mut buf).unwrap_err();
        assert!(
            matches!(err, WireError::FrameTooLarge { len, max } if len == 1 << 30 && max == DEFAULT_MAX_FRAME_LEN),
            "{err}"
        );
        assert!(err.is_fatal());
        assert!(
            buf.capacity() < 4096,
            "buffer grew to {} bytes",
            buf.capacity()
        );
    }

    #[test]
    fn partial_frame_waits_for_the_rest() {
        let mut codec = FrameCodec::<String, String>::default();
        let full = encode_to_vec("hello").unwrap();
        let mut buf = BytesMut::from(&full[..2]);
        assert!(codec.decode(&mut buf).unwrap().is_none());
        buf.extend_from_slice(&full[2..5]);
        assert!(codec.decode(&mut buf).unwrap().is_none());
        buf.extend_from_slice(&full[5..]);
        assert_eq!(codec.decode(&mut buf).unwrap(), Some(Ok("hello".into())));
        assert!(buf.is_empty());
    }

    #[test]
    fn trailing_bytes_in_a_body_are_malformed() {
        let mut body = rmp_serde::to_vec_named(&7u64).unwrap();
        body.push(0xc0);
        let err = decode_body::<u64>(&body).unwrap_err();
        assert!(err.reason.contains("trailing"), "{err}");
    }

    #[test]
    fn outgoing_frame_over_the_limit_is_refused_and_nothing_is_buffered() {
        let mut codec = FrameCodec::<String, String>::new(8);
        let mut buf = BytesMut::new();
        let err = codec
            .encode("far too long for eight".into(), &mut buf)
            .unwrap_err();
        assert!(matches!(
            err,
            WireError::OutgoingFrameTooLarge { max: 8, .. }
        ));
        assert!(!err.is_fatal());
        assert!(buf.is_empty());
    }
}
