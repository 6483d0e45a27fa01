//! Typed framed connections over any byte stream.
//!
//! [`Connection`] owns a stream plus its read and write buffers and speaks one
//! message type in each direction. Servers that answer pipelined requests out
//! of order split it into a [`FrameReader`] and a [`FrameWriter`] owned by
//! separate tasks; a writer task can queue several frames and flush them with
//! one write.

use std::marker::PhantomData;

use bytes::BytesMut;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};

use crate::frame::{DEFAULT_MAX_FRAME_LEN, WireError, decode_body, encode_frame, split_frame};

/// Least spare room offered to each socket read, so pipelined small frames
/// arrive many per system call.
const READ_CHUNK: usize = 8 * 1024;

/// A framed connection receiving `In` messages and sending `Out` messages.
///
/// Reading is cancel-safe (it can sit in a `select!`); writing is not: a
/// cancelled [`Connection::write_frame`] may have sent part of a frame.
#[derive(Debug)]
pub struct Connection<S, In, Out> {
    stream: S,
    read_buf: BytesMut,
    write_buf: BytesMut,
    max_frame_len: usize,
    _types: PhantomData<fn(Out) -> In>,
}

impl<S, In, Out> Connection<S, In, Out> {
    /// Wraps a stream, accepting frames up to [`DEFAULT_MAX_FRAME_LEN`].
    pub fn new(stream: S) -> Self {
        Connection::with_max_frame_len(stream, DEFAULT_MAX_FRAME_LEN)
    }

    /// Wraps a stream, accepting and sending bodies up to `max_frame_len` bytes.
    pub fn with_max_frame_len(stream: S, max_frame_len: usize) -> Self {
        Connection {
            stream,
            read_buf: BytesMut::new(),
            write_buf: BytesMut::new(),
            max_frame_len: max_frame_len.min(u32::MAX as usize),
            _types: PhantomData,
        }
    }

    /// Changes the frame size limit, e.g. from the small handshake limit to the
    /// configured one.
    pub fn set_max_frame_len(&mut self, max_frame_len: usize) {
        self.max_frame_len = max_frame_len.min(u32::MAX as usize);
    }

    /// The underlying stream (to ask for its peer address, say).
    pub fn get_ref(&self) -> &S {
        &self.stream
    }

    /// Reinterprets the connection as carrying other message types, keeping any
    /// bytes already buffered. Used when a handshake gives way to the protocol
    /// proper.
    pub fn retype<In2, Out2>(self) -> Connection<S, In2, Out2> {
        Connection {
            stream: self.stream,
            read_buf: self.read_buf,
            write_buf: self.write_buf,
            max_frame_len: self.max_frame_len,
            _types: PhantomData,
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin, In: DeserializeOwned, Out: Serialize>
    Connection<S, In, Out>
{
    /// Reads the next message. `Ok(None)` means the peer closed the connection
    /// cleanly between frames. [`WireError::Malformed`] means one bad frame was
    /// skipped and the connection is still usable; any other error is fatal.
    pub async fn read_frame(&mut self) -> Result<Option<In>, WireError> {
        read_frame_from(&mut self.stream, &mut self.read_buf, self.max_frame_len).await
    }

    /// Sends one message and flushes it.
    pub async fn write_frame(&mut self, msg: &Out) -> Result<(), WireError> {
        encode_frame(msg, &mut self.write_buf, self.max_frame_len)?;
        flush_to(&mut self.stream, &mut self.write_buf).await
    }

    /// Flushes and shuts down the sending side, so the peer reads a clean end
    /// of stream after our last frame.
    pub async fn shutdown(&mut self) -> Result<(), WireError> {
        flush_to(&mut self.stream, &mut self.write_buf).await?;
        self.stream.shutdown().await?;
        Ok(())
    }

    /// Splits into independently owned halves, keeping buffered bytes.
    pub fn into_split(self) -> (FrameReader<ReadHalf<S>, In>, FrameWriter<WriteHalf<S>, Out>) {
        let (rd, wr) = tokio::io::split(self.stream);
        (
            FrameReader {
                rd,
                buf: self.read_buf,
                max_frame_len: self.max_frame_len,
                _type: PhantomData,
            },
            FrameWriter {
                wr,
                buf: self.write_buf,
                max_frame_len: self.max_frame_len,
                _type: PhantomData,
            },
        )
    }
}

/// The receiving half of a connection: decodes `In` messages from `R`.
#[derive(Debug)]
pub struct FrameReader<R, In> {
    rd: R,
    buf: BytesMut,
    max_frame_len: usize,
    _type: PhantomData<fn() -> In>,
}

impl<R: AsyncRead + Unpin, In: DeserializeOwned> FrameReader<R, In> {
    /// Wraps a read half (e.g. a `TcpStream::into_split` half), accepting bodies
    /// up to `max_frame_len` bytes.
    pub fn new(rd: R, max_frame_len: usize) -> Self {
        FrameReader {
            rd,
            buf: BytesMut::new(),
            max_frame_len: max_frame_len.min(u32::MAX as usize),
            _type: PhantomData,
        }
    }

    /// Reads the next message; same contract as [`Connection::read_frame`],
    /// and likewise cancel-safe.
    pub async fn read_frame(&mut self) -> Result<Option<In>, WireError> {
        read_frame_from(&mut self.rd, &mut self.buf, self.max_frame_len).await
    }
}

/// The sending half of a connection: encodes `Out` messages onto `W`.
#[derive(Debug)]
pub struct FrameWriter<W, Out> {
    wr: W,
    buf: BytesMut,
    max_frame_len: usize,
    _type: PhantomData<fn(Out)>,
}

impl<W: AsyncWrite + Unpin, Out: Serialize> FrameWriter<W, Out> {
    /// Wraps a write half, sending bodies up to `max_frame_len` bytes.
    pub fn new(wr: W, max_frame_len: usize) -> Self {
        FrameWriter {
            wr,
            buf: BytesMut::new(),
            max_frame_len: max_frame_len.min(u32::MAX as usize),
            _type: PhantomData,
        }
    }

    /// Encodes a message into the send buffer without writing it, so a burst
    /// of replies goes out in one system call at the next [`Self::flush`].
    pub fn queue_frame(&mut self, msg: &Out) -> Result<(), WireError> {
        encode_frame(msg, &mut self.buf, self.max_frame_len)
    }

    /// Bytes queued and not yet flushed.
    pub fn queued_len(&self) -> usize {
        self.buf.len()
    }

    /// Writes every queued frame and flushes the stream.
    pub async fn flush(&mut self) -> Result<(), WireError> {
        flush_to(&mut self.wr, &mut self.buf).await
    }

    /// Queues one message and flushes everything queued.
    pub async fn write_frame(&mut self, msg: &Out) -> Result<(), WireError> {
        self.queue_frame(msg)?;
        self.flush().await
    }

    /// Flushes and shuts down the stream.
    pub async fn shutdown(&mut self) -> Result<(), WireError> {
        self.flush().await?;
        self.wr.shutdown().await?;
        Ok(())
    }
}

async fn read_frame_from<R: AsyncRead + Unpin, T: DeserializeOwned>(
    rd: &mut R,
    buf: &mut BytesMut,
    max_frame_len: usize,
) -> Result<Option<T>, WireError> {
    loop {
        if let Some(body) = split_frame(buf, max_frame_len)? {
            return Ok(Some(decode_body(&body)?));
        }
        // `split_frame` reserved room for the rest of the frame; offer at least a
        // chunk more so that frames pipelined behind it come in the same read.
        if buf.capacity() - buf.len() < READ_CHUNK {
            buf.reserve(READ_CHUNK);
        }
        if rd.read_buf(buf).await? == 0 {
            return if buf.is_empty() {
                Ok(None)
            } else {
                Err(WireError::TruncatedFrame {
                    buffered: buf.len(),
                })
            };
        }
    }
}

/// Writes all of `buf`, consuming it as it goes so that a cancelled flush never
/// resends bytes, then flushes the stream.
async fn flush_to<W: AsyncWrite + Unpin>(wr: &mut W, buf: &mut BytesMut) -> Result<(), WireError> {
    wr.write_all_buf(buf).await?;
    wr.flush().await?;
    Ok(())
}
