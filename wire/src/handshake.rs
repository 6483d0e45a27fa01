//! The handshake that opens every connection.
//!
//! The dialing side sends a [`Hello`] naming the protocol (a magic string and a
//! version) and its role: a client, or a peer with its node id and cluster id.
//! The listening side answers [`HelloReply::Welcome`], or
//! [`HelloReply::Rejected`] with a code and a sentence, and then closes. So a
//! client that dials a peer port, a peer from another cluster, or a program
//! that speaks something else altogether gets a clear error instead of a
//! confused conversation.
//!
//! These helpers do not time out; wrap them in `tokio::time::timeout` so a
//! silent peer cannot hold a connection slot forever.

use std::fmt;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::client::{NodeId, Request, Response};
use crate::connection::Connection;
use crate::frame::{DEFAULT_MAX_FRAME_LEN, MalformedFrame, WireError};
use crate::peer::PeerFrame;

/// Identifies the protocol in every hello.
pub const MAGIC: &str = "faultline-kvd";

/// The protocol version this crate speaks. Bumped on any incompatible change.
pub const PROTOCOL_VERSION: u32 = 1;

/// Frame limit while the handshake is in progress: a hello is tiny, and an
/// unauthenticated stranger should not make us buffer megabytes.
pub const HANDSHAKE_MAX_FRAME_LEN: usize = 64 * 1024;

/// A Raft group's identity, shared by all its nodes; peers from another
/// cluster are turned away.
pub type ClusterId = u64;

/// A client's connection after the handshake: sends requests, reads responses.
pub type ClientConnection<S> = Connection<S, Response, Request>;
/// A server's view of a client connection: reads requests, sends responses.
pub type ServerConnection<S> = Connection<S, Request, Response>;
/// A connection between two Raft peers carrying messages of type `M`.
pub type PeerConnection<S, M> = Connection<S, PeerFrame<M>, PeerFrame<M>>;

/// The first frame on every connection, sent by the side that dialed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// Always [`MAGIC`].
    pub magic: String,
    /// The protocol version the dialer speaks.
    pub version: u32,
    /// Who is dialing.
    pub role: Role,
}

impl Hello {
    /// The hello this crate sends for `role`.
    pub fn new(role: Role) -> Hello {
        Hello {
            magic: MAGIC.to_owned(),
            version: PROTOCOL_VERSION,
            role,
        }
    }
}

/// Who is dialing, which decides the port they must use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Role {
    /// A client, for the client port.
    Client,
    /// A Raft peer, for the peer port.
    Peer {
        /// The dialing node's id.
        node_id: NodeId,
        /// The cluster it belongs to.
        cluster_id: ClusterId,
    },
}

/// The listener's answer to a [`Hello`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum HelloReply {
    /// Accepted; the protocol proper starts with the next frame.
    Welcome(Welcome),
    /// Refused; the listener closes the connection after this frame.
    Rejected {
        /// Machine-readable cause.
        code: RejectCode,
        /// A sentence for humans.
        reason: String,
    },
}

/// Who accepted the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Welcome {
    /// The accepting node.
    pub node_id: NodeId,
    /// Its cluster.
    pub cluster_id: ClusterId,
    /// The protocol version both sides now speak.
    pub version: u32,
}

/// Why a hello was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectCode {
    /// The first frame was not a hello at all.
    Malformed,
    /// The hello's magic string is not [`MAGIC`]: not our protocol.
    BadMagic,
    /// The listener does not speak the hello's version.
    UnsupportedVersion,
    /// A client dialed a peer port or a peer dialed a client port.
    WrongPort,
    /// A peer from another cluster dialed.
    WrongCluster,
}

impl fmt::Display for RejectCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RejectCode::Malformed => "malformed",
            RejectCode::BadMagic => "bad_magic",
            RejectCode::UnsupportedVersion => "unsupported_version",
            RejectCode::WrongPort => "wrong_port",
            RejectCode::WrongCluster => "wrong_cluster",
        })
    }
}

/// The local node's identity, checked against incoming hellos.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalNode {
    /// This node's id.
    pub node_id: NodeId,
    /// This node's cluster.
    pub cluster_id: ClusterId,
}

/// Why a handshake did not complete.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    /// The listener refused our hello (dialing side).
    #[error("node refused our hello ({code}): {reason}")]
    Rejected {
        /// The listener's code.
        code: RejectCode,
        /// The listener's explanation.
        reason: String,
    },
    /// We refused the dialer's hello and told it why (listening side).
    #[error("refused an incoming hello ({code}): {reason}")]
    Refused {
        /// The code we sent.
        code: RejectCode,
        /// The explanation we sent.
        reason: String,
    },
    /// The other side answered with something that is not a hello reply: it
    /// does not speak this protocol.
    #[error("the other side does not speak the kvd protocol: {0}")]
    NotKvd(MalformedFrame),
    /// A peer welcomed us but belongs to another cluster.
    #[error("node {node_id} belongs to cluster {theirs}, we are in cluster {ours}")]
    WrongCluster {
        /// The node that answered.
        node_id: NodeId,
        /// Its cluster.
        theirs: ClusterId,
        /// Ours.
        ours: ClusterId,
    },
    /// The connection closed before the handshake finished.
    #[error("connection closed before the handshake completed")]
    Closed,
    /// Framing or I/O failed.
    #[error("handshake failed: {0}")]
    Wire(#[from] WireError),
}

/// Dials as a client: sends the client hello and waits for the welcome.
pub async fn connect_client<S>(stream: S) -> Result<(Welcome, ClientConnection<S>), HandshakeError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    dial(stream, Role::Client).await
}

/// Dials as peer `me`: sends the peer hello, waits for the welcome, and checks
/// that the answering node is in our cluster.
pub async fn connect_peer<S, M>(
    stream: S,
    me: &LocalNode,
) -> Result<(Welcome, PeerConnection<S, M>), HandshakeError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let role = Role::Peer {
        node_id: me.node_id,
        cluster_id: me.cluster_id,
    };
    let (welcome, conn) = dial(stream, role).await?;
    if welcome.cluster_id != me.cluster_id {
        return Err(HandshakeError::WrongCluster {
            node_id: welcome.node_id,
            theirs: welcome.cluster_id,
            ours: me.cluster_id,
        });
    }
    Ok((welcome, conn))
}

/// Accepts a connection on the client port: welcomes a client hello, refuses
/// anything else (telling the dialer why, then closing).
pub async fn accept_client<S>(
    stream: S,
    me: &LocalNode,
) -> Result<ServerConnection<S>, HandshakeError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let ((), conn) = accept(stream, me, |hello| match hello.role {
        Role::Client => Ok(()),
        Role::Peer { node_id, .. } => Err((
            RejectCode::WrongPort,
            format!(
                "this is the client port of node {}; peer {node_id} must dial the peer port",
                me.node_id
            ),
        )),
    })
    .await?;
    Ok(conn)
}

/// Accepts a connection on the peer port: welcomes a peer of our cluster and
/// returns its node id, refuses anything else.
pub async fn accept_peer<S, M>(
    stream: S,
    me: &LocalNode,
) -> Result<(NodeId, PeerConnection<S, M>), HandshakeError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    accept(stream, me, |hello| match hello.role {
        Role::Client => Err((
            RejectCode::WrongPort,
            format!(
                "this is the peer port of node {}; clients must dial the client port",
                me.node_id
            ),
        )),
        Role::Peer {
            node_id,
            cluster_id,
        } if cluster_id != me.cluster_id => Err((
            RejectCode::WrongCluster,
            format!(
                "node {} belongs to cluster {}; the hello came from node {node_id} of cluster {cluster_id}",
                me.node_id, me.cluster_id
            ),
        )),
        Role::Peer { node_id, .. } => Ok(node_id),
    })
    .await
}

async fn dial<S, In, Out>(
    stream: S,
    role: Role,
) -> Result<(Welcome, Connection<S, In, Out>), HandshakeError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut conn: Connection<S, HelloReply, Hello> =
        Connection::with_max_frame_len(stream, HANDSHAKE_MAX_FRAME_LEN);
    conn.write_frame(&Hello::new(role)).await?;
    match conn.read_frame().await {
        Ok(Some(HelloReply::Welcome(welcome))) => {
            let mut conn = conn.retype();
            conn.set_max_frame_len(DEFAULT_MAX_FRAME_LEN);
            Ok((welcome, conn))
        }
        Ok(Some(HelloReply::Rejected { code, reason })) => {
            Err(HandshakeError::Rejected { code, reason })
        }
        Ok(None) => Err(HandshakeError::Closed),
        Err(WireError::Malformed(m)) => Err(HandshakeError::NotKvd(m)),
        Err(e) => Err(e.into()),
    }
}

/// Reads the hello, checks the protocol and version, then lets `admit` judge
/// the role; answers with a welcome or a rejection.
async fn accept<S, T, In, Out>(
    stream: S,
    me: &LocalNode,
    admit: impl FnOnce(&Hello) -> Result<T, (RejectCode, String)>,
) -> Result<(T, Connection<S, In, Out>), HandshakeError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut conn: Connection<S, Hello, HelloReply> =
        Connection::with_max_frame_len(stream, HANDSHAKE_MAX_FRAME_LEN);
    let hello = match conn.read_frame().await {
        Ok(Some(hello)) => hello,
        Ok(None) => return Err(HandshakeError::Closed),
        Err(WireError::Malformed(m)) => {
            let reason = format!(
                "the first frame must be a hello map {{magic, version, role}}: {}",
                m.reason
            );
            return Err(refuse(conn, RejectCode::Malformed, reason).await);
        }
        Err(e @ WireError::FrameTooLarge { .. }) => {
            return Err(refuse(conn, RejectCode::Malformed, e.to_string()).await);
        }
        Err(e) => return Err(e.into()),
    };
    let admitted = check_protocol(&hello, me).and_then(|()| admit(&hello));
    let admitted = match admitted {
        Ok(admitted) => admitted,
        Err((code, reason)) => return Err(refuse(conn, code, reason).await),
    };
    let welcome = Welcome {
        node_id: me.node_id,
        cluster_id: me.cluster_id,
        version: PROTOCOL_VERSION,
    };
    conn.write_frame(&HelloReply::Welcome(welcome)).await?;
    let mut conn = conn.retype();
    conn.set_max_frame_len(DEFAULT_MAX_FRAME_LEN);
    Ok((admitted, conn))
}

fn check_protocol(hello: &Hello, me: &LocalNode) -> Result<(), (RejectCode, String)> {
    if hello.magic != MAGIC {
        return Err((
            RejectCode::BadMagic,
            format!("expected magic {MAGIC:?}, got {:?}", hello.magic),
        ));
    }
    if hello.version != PROTOCOL_VERSION {
        return Err((
            RejectCode::UnsupportedVersion,
            format!(
                "node {} speaks protocol version {PROTOCOL_VERSION}, the hello asked for version {}",
                me.node_id, hello.version
            ),
        ));
    }
    Ok(())
}

/// Tells the dialer why it is refused, closes, and returns the matching error.
/// Sending is best effort: a dialer that already hung up needs no explanation.
async fn refuse<S>(
    mut conn: Connection<S, Hello, HelloReply>,
    code: RejectCode,
    reason: String,
) -> HandshakeError
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let reply = HelloReply::Rejected {
        code,
        reason: reason.clone(),
    };
    if conn.write_frame(&reply).await.is_ok() {
        // The dialer may be gone already; nothing more to tell it either way.
        conn.shutdown().await.ok();
    }
    HandshakeError::Refused { code, reason }
}
