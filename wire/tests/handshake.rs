//! The opening handshake: the right role on the right port is welcomed,
//! everything else is told why and disconnected.

use tokio::io::{AsyncWriteExt, DuplexStream, duplex};
use wire::{
    Connection, HandshakeError, Hello, HelloReply, LocalNode, Op, PeerFrame, RejectCode, Reply,
    Request, Response, Role, Welcome, accept_client, accept_peer, connect_client, connect_peer,
};

const NODE: LocalNode = LocalNode {
    node_id: 1,
    cluster_id: 7,
};
const PEER: LocalNode = LocalNode {
    node_id: 2,
    cluster_id: 7,
};

#[tokio::test]
async fn client_on_the_client_port_is_welcomed_and_can_talk() {
    let (c, s) = duplex(1 << 16);
    let (client, server) = tokio::join!(connect_client(c), accept_client(s, &NODE));
    let (welcome, mut client) = client.unwrap();
    let mut server = server.unwrap();
    assert_eq!(
        welcome,
        Welcome {
            node_id: 1,
            cluster_id: 7,
            version: wire::PROTOCOL_VERSION
        }
    );

    let req = Request {
        request_id: 1,
        op: Op::Get { key: "k".into() },
    };
    client.write_frame(&req).await.unwrap();
    assert_eq!(server.read_frame().await.unwrap(), Some(req));
    let resp = Response {
        request_id: 1,
        reply: Reply::Value { value: None },
    };
    server.write_frame(&resp).await.unwrap();
    assert_eq!(client.read_frame().await.unwrap(), Some(resp));
}

#[tokio::test]
async fn peer_on_the_peer_port_is_welcomed_and_identified() {
    let (c, s) = duplex(1 << 16);
    let (dialer, acceptor) = tokio::join!(
        connect_peer::<_, String>(c, &PEER),
        accept_peer::<_, String>(s, &NODE)
    );
    let (welcome, mut dialer) = dialer.unwrap();
    let (peer_id, mut acceptor) = acceptor.unwrap();
    assert_eq!((welcome.node_id, peer_id), (1, 2));
    dialer
        .write_frame(&PeerFrame::Raft("hello".to_owned()))
        .await
        .unwrap();
    assert_eq!(
        acceptor.read_frame().await.unwrap(),
        Some(PeerFrame::Raft("hello".to_owned()))
    );
}

/// Sends a raw hello (or anything else) and returns the reply plus whether the
/// listener then closed the connection.
async fn knock<T: serde::Serialize>(
    first_frame: &T,
    listener: Listener,
) -> (HelloReply, bool, HandshakeError) {
    let (c, s) = duplex(1 << 16);
    let mut dialer: Connection<DuplexStream, HelloReply, T> = Connection::new(c);
    dialer.write_frame(first_frame).await.unwrap();
    let refused = match listener {
        Listener::Client => accept_client(s, &NODE).await.map(drop).unwrap_err(),
        Listener::Peer => accept_peer::<_, String>(s, &NODE)
            .await
            .map(drop)
            .unwrap_err(),
    };
    let reply = dialer.read_frame().await.unwrap().expect("a reply frame");
    let closed = dialer.read_frame().await.unwrap().is_none();
    (reply, closed, refused)
}

#[derive(Clone, Copy)]
enum Listener {
    Client,
    Peer,
}

fn assert_rejected(reply: &HelloReply, code: RejectCode, mentions: &str) {
    let HelloReply::Rejected { code: got, reason } = reply else {
        panic!("expected a rejection, got {reply:?}")
    };
    assert_eq!(*got, code, "{reason}");
    assert!(
        reason.contains(mentions),
        "{reason:?} should mention {mentions:?}"
    );
}

#[tokio::test]
async fn client_dialing_the_peer_port_is_told_and_disconnected() {
    let (reply, closed, refused) = knock(&Hello::new(Role::Client), Listener::Peer).await;
    assert_rejected(
        &reply,
        RejectCode::WrongPort,
        "clients must dial the client port",
    );
    assert!(closed);
    assert!(matches!(
        refused,
        HandshakeError::Refused {
            code: RejectCode::WrongPort,
            ..
        }
    ));
}

#[tokio::test]
async fn peer_dialing_the_client_port_is_told_and_disconnected() {
    let hello = Hello::new(Role::Peer {
        node_id: 2,
        cluster_id: 7,
    });
    let (reply, closed, _) = knock(&hello, Listener::Client).await;
    assert_rejected(
        &reply,
        RejectCode::WrongPort,
        "peer 2 must dial the peer port",
    );
    assert!(closed);
}

#[tokio::test]
async fn peer_from_another_cluster_is_refused() {
    let hello = Hello::new(Role::Peer {
        node_id: 2,
        cluster_id: 8,
    });
    let (reply, closed, _) = knock(&hello, Listener::Peer).await;
    assert_rejected(&reply, RejectCode::WrongCluster, "cluster 8");
    assert!(closed);
}

#[tokio::test]
async fn foreign_magic_and_future_versions_are_refused() {
    let mut hello = Hello::new(Role::Client);
    hello.magic = "redis".into();
    let (reply, closed, _) = knock(&hello, Listener::Client).await;
    assert_rejected(&reply, RejectCode::BadMagic, "redis");
    assert!(closed);

    let mut hello = Hello::new(Role::Client);
    hello.version = 2;
    let (reply, closed, _) = knock(&hello, Listener::Client).await;
    assert_rejected(&reply, RejectCode::UnsupportedVersion, "version 2");
    assert!(closed);
}

#[tokio::test]
async fn request_sent_before_any_hello_is_refused_as_malformed() {
    let req = Request {
        request_id: 1,
        op: Op::Status,
    };
    let (reply, closed, _) = knock(&req, Listener::Client).await;
    assert_rejected(&reply, RejectCode::Malformed, "hello");
    assert!(closed);
}

#[tokio::test]
async fn oversized_first_frame_is_refused_without_reading_it() {
    let (mut c, s) = duplex(1 << 16);
    c.write_all(&(1u32 << 20).to_be_bytes()).await.unwrap();
    let mut dialer: Connection<DuplexStream, HelloReply, Hello> = Connection::new(c);
    let refused = accept_client(s, &NODE).await.map(drop).unwrap_err();
    assert!(matches!(
        refused,
        HandshakeError::Refused {
            code: RejectCode::Malformed,
            ..
        }
    ));
    let reply = dialer.read_frame().await.unwrap().unwrap();
    assert_rejected(&reply, RejectCode::Malformed, "limit");
}

#[tokio::test]
async fn dialer_learns_why_it_was_rejected() {
    let (c, s) = duplex(1 << 16);
    let (dialer, _) = tokio::join!(connect_client(c), accept_peer::<_, String>(s, &NODE));
    let err = dialer.map(drop).unwrap_err();
    assert!(
        matches!(
            err,
            HandshakeError::Rejected {
                code: RejectCode::WrongPort,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("wrong_port"), "{err}");
}

#[tokio::test]
async fn dialer_detects_a_server_that_speaks_something_else() {
    let (c, mut s) = duplex(1 << 16);
    let fake = async move {
        // Answer with a well-framed body that is not a hello reply.
        let body = rmp_serde::to_vec_named(&"+OK").unwrap();
        let mut frame = (body.len() as u32).to_be_bytes().to_vec();
        frame.extend_from_slice(&body);
        s.write_all(&frame).await.unwrap();
        s
    };
    let (dialer, _s) = tokio::join!(connect_client(c), fake);
    let err = dialer.map(drop).unwrap_err();
    assert!(matches!(err, HandshakeError::NotKvd(_)), "{err}");
}

#[tokio::test]
async fn peer_dialer_checks_the_cluster_of_whoever_welcomes_it() {
    let (c, s) = duplex(1 << 16);
    let impostor = async move {
        let mut conn: Connection<DuplexStream, Hello, HelloReply> = Connection::new(s);
        conn.read_frame().await.unwrap();
        let welcome = Welcome {
            node_id: 9,
            cluster_id: 99,
            version: wire::PROTOCOL_VERSION,
        };
        conn.write_frame(&HelloReply::Welcome(welcome))
            .await
            .unwrap();
        conn
    };
    let (dialer, _conn) = tokio::join!(connect_peer::<_, String>(c, &PEER), impostor);
    let err = dialer.map(drop).unwrap_err();
    assert!(
        matches!(
            err,
            HandshakeError::WrongCluster {
                node_id: 9,
                theirs: 99,
                ours: 7
            }
        ),
        "{err}"
    );
}

#[tokio::test]
async fn listener_sees_a_dialer_that_hangs_up_before_saying_hello() {
    let (c, s) = duplex(1 << 16);
    drop(c);
    let err = accept_client(s, &NODE).await.map(drop).unwrap_err();
    assert!(matches!(err, HandshakeError::Closed), "{err}");
}
