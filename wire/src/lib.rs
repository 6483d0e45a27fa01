//! `wire`: the protocol kvd speaks, to clients and between Raft peers.
//!
//! The full, language-neutral description is `docs/protocol.md`; this crate is
//! its Rust implementation. In short:
//!
//! - **Framing** ([`frame`]): each message is a 4-byte big-endian body length
//!   followed by a MessagePack body. Bodies are encoded with named fields
//!   (structs become maps), so any MessagePack library can read and write them.
//!   A header announcing more than the limit (16 MiB by default) is refused
//!   before anything is allocated, and the connection is closed; a complete
//!   frame whose body does not decode is reported on its own and the stream
//!   stays in sync.
//! - **Connections** ([`Connection`], [`FrameReader`], [`FrameWriter`]): typed
//!   reading and writing of frames over any tokio byte stream; the codec is also
//!   available for tokio-util's `Framed` as [`FrameCodec`].
//! - **Handshake** ([`handshake`]): the first frame on every connection is a
//!   [`Hello`] carrying a magic string, the protocol version and the dialer's
//!   role (client, or peer with node and cluster ids). Clients and peers use
//!   separate ports; whoever knocks on the wrong one is told so and
//!   disconnected.
//! - **Client protocol** ([`client`]): [`Request`]`{request_id, op}` and
//!   [`Response`]`{request_id, reply}`. Ids let one connection pipeline many
//!   requests; responses may come back in any order. Writes carry an
//!   exactly-once session `(client_id, seq)`.
//! - **Peer protocol** ([`peer`]): [`PeerFrame`]`<M>`, generic over the Raft
//!   message type so this crate does not depend on `raft`.
//! - **Sharding** ([`shard`]): [`key_to_shard`], the one key → shard function
//!   every client and server must agree on.
//!
//! A client session over TCP:
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use wire::{Op, Reply, Request};
//! let stream = tokio::net::TcpStream::connect("127.0.0.1:7001").await?;
//! let (_welcome, mut conn) = wire::connect_client(stream).await?;
//! let op = Op::Get { key: "x".into() };
//! conn.write_frame(&Request { request_id: 1, op }).await?;
//! if let Some(resp) = conn.read_frame().await? {
//!     if let Reply::Value { value } = resp.reply {
//!         println!("x = {value:?}");
//!     }
//! }
//! # Ok(())
//! # }
//! ```

pub mod client;
pub mod connection;
pub mod frame;
pub mod handshake;
pub mod peer;
pub mod shard;

pub use client::{
    ClientId, GroupId, LeaderHint, Member, NodeId, NodeRole, NodeStatus, Op, Reply, Request,
    Response, ShardConfig, ShardData, ShardGroupStatus, ShardId, ShardState,
};
pub use connection::{Connection, FrameReader, FrameWriter};
pub use frame::{
    DEFAULT_MAX_FRAME_LEN, FRAME_HEADER_LEN, FrameCodec, MalformedFrame, WireError, encode_to_vec,
};
pub use handshake::{
    ClientConnection, ClusterId, HANDSHAKE_MAX_FRAME_LEN, HandshakeError, Hello, HelloReply,
    LocalNode, MAGIC, PROTOCOL_VERSION, PeerConnection, RejectCode, Role, ServerConnection,
    Welcome, accept_client, accept_peer, connect_client, connect_peer,
};
pub use peer::PeerFrame;
pub use shard::{NSHARDS, fnv1a32, key_to_shard};
