//! Frames over real byte streams: round trips, oversized and garbage frames,
//! end of stream, batching.

use std::collections::BTreeMap;

use bytes::Bytes;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncWriteExt, DuplexStream, duplex};
use tokio_util::codec::FramedRead;
use wire::{
    Connection, FrameCodec, LeaderHint, Member, NodeRole, NodeStatus, Op, PeerFrame, Reply,
    Request, Response, ShardConfig, ShardData, WireError,
};

fn pair<A, B>() -> (
    Connection<DuplexStream, A, B>,
    Connection<DuplexStream, B, A>,
) {
    let (a, b) = duplex(1 << 16);
    (Connection::new(a), Connection::new(b))
}

fn all_ops() -> Vec<Op> {
    vec![
        Op::Get { key: "k".into() },
        Op::Put {
            key: "k".into(),
            value: "v".into(),
            client_id: 7,
            seq: 1,
        },
        Op::Append {
            key: "κλειδί".into(),
            value: "x y".into(),
            client_id: 7,
            seq: u64::MAX,
        },
        Op::Status,
        Op::TransferLeader { to: 3 },
        Op::Join {
            groups: BTreeMap::from([(100, vec!["127.0.0.1:7001".into()]), (101, vec![])]),
            client_id: 7,
            seq: 3,
        },
        Op::Leave {
            gids: vec![100, 101],
            client_id: 7,
            seq: 4,
        },
        Op::Move {
            shard: 9,
            gid: 100,
            client_id: 7,
            seq: 5,
        },
        Op::Query { num: None },
        Op::Query { num: Some(12) },
        Op::PullShard {
            shard: 2,
            config_num: 5,
        },
        Op::DeleteShard {
            shard: 2,
            config_num: 5,
        },
    ]
}

fn all_replies() -> Vec<Reply> {
    vec![
        Reply::Ok,
        Reply::Value { value: None },
        Reply::Value {
            value: Some(String::new()),
        },
        Reply::Status(NodeStatus {
            node_id: 2,
            role: NodeRole::PreCandidate,
            term: 9,
            leader: None,
            commit_index: 10,
            applied_index: 9,
            last_log_index: 12,
            snapshot_index: 4,
            members: vec![Member {
                node_id: 2,
                client_addr: "127.0.0.1:7002".into(),
                peer_addr: "127.0.0.1:8002".into(),
            }],
            shard_group: Some(wire::ShardGroupStatus {
                gid: 100,
                config_num: 4,
                shards: BTreeMap::from([
                    (0, wire::ShardState::Serving),
                    (3, wire::ShardState::Leaving),
                ]),
                keys: 12,
            }),
        }),
        Reply::Config(ShardConfig {
            num: 3,
            shards: vec![100, 100, 0],
            groups: BTreeMap::from([(100, vec!["a:1".into(), "b:2".into()])]),
        }),
        Reply::Shard(ShardData {
            shard: 1,
            config_num: 4,
            kv: BTreeMap::from([("k".into(), "v".into())]),
            sessions: BTreeMap::from([(7, 12)]),
        }),
        Reply::WrongLeader { leader: None },
        Reply::WrongLeader {
            leader: Some(LeaderHint {
                node_id: 3,
                client_addr: "127.0.0.1:7003".into(),
            }),
        },
        Reply::WrongGroup {
            shard: 4,
            config_num: 2,
        },
        Reply::NotReady { config_num: 2 },
        Reply::Timeout,
        Reply::ShuttingDown,
        Reply::BadRequest {
            reason: "nope".into(),
        },
    ]
}

#[tokio::test]
async fn every_request_and_reply_kind_round_trips() {
    let (mut client, mut server) = pair::<Response, Request>();
    for (id, op) in (1..).zip(all_ops()) {
        let req = Request { request_id: id, op };
        client.write_frame(&req).await.unwrap();
        assert_eq!(server.read_frame().await.unwrap(), Some(req));
    }
    for (id, reply) in (1..).zip(all_replies()) {
        let resp = Response {
            request_id: id,
            reply,
        };
        server.write_frame(&resp).await.unwrap();
        assert_eq!(client.read_frame().await.unwrap(), Some(resp));
    }
}

/// Stands in for `raft::Message`: nested, with raw bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
enum FakeRaftMessage {
    Append { term: u64, entries: Vec<Bytes> },
    Vote { term: u64, granted: bool },
}

#[tokio::test]
async fn peer_frames_carry_any_serde_message() {
    let (mut a, mut b) = pair::<PeerFrame<FakeRaftMessage>, PeerFrame<FakeRaftMessage>>();
    let frames = [
        PeerFrame::Raft(FakeRaftMessage::Append {
            term: 3,
            entries: vec![Bytes::from_static(b"\x00\xffbinary"), Bytes::new()],
        }),
        PeerFrame::Raft(FakeRaftMessage::Vote {
            term: 4,
            granted: true,
        }),
        PeerFrame::Goodbye {
            reason: "shutting down".into(),
        },
    ];
    for frame in frames {
        a.write_frame(&frame).await.unwrap();
        assert_eq!(b.read_frame().await.unwrap(), Some(frame));
    }
}

fn raw_frame(body: &[u8]) -> Vec<u8> {
    let mut out = (body.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(body);
    out
}

#[tokio::test]
async fn header_claiming_a_gibibyte_is_a_fatal_error() {
    let (mut raw, server) = duplex(1 << 16);
    let mut server: Connection<_, Request, Response> = Connection::new(server);
    raw.write_all(&(1u32 << 30).to_be_bytes()).await.unwrap();
    let err = server.read_frame().await.unwrap_err();
    assert!(
        matches!(err, WireError::FrameTooLarge { len, .. } if len == 1 << 30),
        "{err}"
    );
    assert!(err.is_fatal());
    let reply = Response::for_wire_error(&err).expect("the client is told before we close");
    assert!(
        matches!(reply.reply, Reply::BadRequest { ref reason } if reason.contains("1073741824"))
    );
}

#[tokio::test]
async fn garbage_body_is_skipped_and_the_next_frame_still_decodes() {
    let (mut raw, server) = duplex(1 << 16);
    let mut server: Connection<_, Request, Response> = Connection::new(server);
    // 0xc1 is the one byte MessagePack never uses; then a plausible-looking map
    // of the wrong shape; then a valid request.
    raw.write_all(&raw_frame(&[0xc1, 0x00, 0x13]))
        .await
        .unwrap();
    let wrong_shape = rmp_serde::to_vec_named(&BTreeMap::from([("op", "get")])).unwrap();
    raw.write_all(&raw_frame(&wrong_shape)).await.unwrap();
    let good = Request {
        request_id: 5,
        op: Op::Status,
    };
    raw.write_all(&wire::encode_to_vec(&good).unwrap())
        .await
        .unwrap();

    for body_len in [3, wrong_shape.len()] {
        let err = server.read_frame().await.unwrap_err();
        assert!(!err.is_fatal(), "{err}");
        let WireError::Malformed(m) = &err else {
            panic!("expected a malformed frame, got {err}")
        };
        assert_eq!((m.request_id, m.body_len), (None, body_len));
        let reply = Response::for_wire_error(&err).unwrap();
        assert_eq!(reply.request_id, 0);
    }
    assert_eq!(server.read_frame().await.unwrap(), Some(good));
}

/// A request as some other client library might build it: fields in another
/// order, an extra field we do not know, and an op type we do not know.
#[derive(Serialize)]
struct ForeignRequest {
    future_field: bool,
    op: ForeignOp,
    request_id: u64,
}

#[derive(Serialize)]
struct ForeignOp {
    seq: u64,
    client_id: u64,
    value: &'static str,
    key: &'static str,
    r#type: &'static str,
}

#[tokio::test]
async fn field_order_and_unknown_fields_do_not_matter_but_unknown_ops_do() {
    let (mut raw, server) = duplex(1 << 16);
    let mut server: Connection<_, Request, Response> = Connection::new(server);
    let foreign = |r#type| ForeignRequest {
        future_field: true,
        op: ForeignOp {
            seq: 2,
            client_id: 9,
            value: "v",
            key: "k",
            r#type,
        },
        request_id: 77,
    };
    for req in [foreign("append"), foreign("compare_and_swap")] {
        let body = rmp_serde::to_vec_named(&req).unwrap();
        raw.write_all(&raw_frame(&body)).await.unwrap();
    }
    let expected = Request {
        request_id: 77,
        op: Op::Append {
            key: "k".into(),
            value: "v".into(),
            client_id: 9,
            seq: 2,
        },
    };
    assert_eq!(server.read_frame().await.unwrap(), Some(expected));
    let err = server.read_frame().await.unwrap_err();
    let reply = Response::for_wire_error(&err).unwrap();
    assert_eq!(
        reply.request_id, 77,
        "the id is salvaged from the bad request"
    );
    let Reply::BadRequest { reason } = reply.reply else {
        panic!("expected bad_request")
    };
    assert!(reason.contains("compare_and_swap"), "{reason}");
}

#[tokio::test]
async fn clean_close_is_none_but_a_close_inside_a_frame_is_an_error() {
    let (mut raw, server) = duplex(1 << 16);
    let mut server: Connection<_, Request, Response> = Connection::new(server);
    let frame = wire::encode_to_vec(&Request {
        request_id: 1,
        op: Op::Status,
    })
    .unwrap();
    raw.write_all(&frame).await.unwrap();
    raw.write_all(&frame[..frame.len() - 1]).await.unwrap();
    drop(raw);
    assert!(server.read_frame().await.unwrap().is_some());
    let err = server.read_frame().await.unwrap_err();
    assert!(
        matches!(err, WireError::TruncatedFrame { buffered } if buffered == frame.len() - 1),
        "{err}"
    );

    let (raw, server) = duplex(1 << 16);
    let mut server: Connection<_, Request, Response> = Connection::new(server);
    drop(raw);
    assert!(server.read_frame().await.unwrap().is_none());
}

#[tokio::test]
async fn split_halves_batch_queued_frames_and_keep_buffered_bytes() {
    let (client, server) = pair::<Response, Request>();
    let (mut server_rd, mut server_wr) = server.into_split();
    let (mut client_rd, mut client_wr) = client.into_split();

    client_wr
        .write_frame(&Request {
            request_id: 1,
            op: Op::Status,
        })
        .await
        .unwrap();
    assert!(server_rd.read_frame().await.unwrap().is_some());

    // Answer three requests out of order with one flush.
    for id in [3, 1, 2] {
        server_wr
            .queue_frame(&Response {
                request_id: id,
                reply: Reply::Ok,
            })
            .unwrap();
    }
    assert!(server_wr.queued_len() > 0);
    server_wr.flush().await.unwrap();
    assert_eq!(server_wr.queued_len(), 0);
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(client_rd.read_frame().await.unwrap().unwrap().request_id);
    }
    assert_eq!(ids, [3, 1, 2]);
}

#[tokio::test]
async fn tokio_util_framed_read_survives_a_bad_body() {
    let (mut raw, server) = duplex(1 << 16);
    let mut frames = FramedRead::new(server, FrameCodec::<Request, Response>::default());
    raw.write_all(&raw_frame(b"\xc1")).await.unwrap();
    let good = Request {
        request_id: 2,
        op: Op::Get { key: "k".into() },
    };
    raw.write_all(&wire::encode_to_vec(&good).unwrap())
        .await
        .unwrap();
    drop(raw);
    assert!(matches!(frames.next().await, Some(Ok(Err(_)))));
    assert_eq!(frames.next().await.unwrap().unwrap(), Ok(good));
    assert!(frames.next().await.is_none());
}

#[tokio::test]
async fn connection_limit_applies_to_both_directions() {
    let (a, b) = duplex(1 << 16);
    let mut a: Connection<_, Request, Request> = Connection::with_max_frame_len(a, 64);
    let mut b: Connection<_, Request, Request> = Connection::with_max_frame_len(b, 1 << 20);
    let big = Request {
        request_id: 1,
        op: Op::Get {
            key: "k".repeat(100),
        },
    };
    let err = a.write_frame(&big).await.unwrap_err();
    assert!(matches!(
        err,
        WireError::OutgoingFrameTooLarge { max: 64, .. }
    ));
    b.write_frame(&big).await.unwrap();
    let err = a.read_frame().await.unwrap_err();
    assert!(
        matches!(err, WireError::FrameTooLarge { max: 64, .. }),
        "{err}"
    );
}

#[tokio::test]
async fn invalid_utf8_in_a_key_is_a_bad_request_for_that_id() {
    let (mut raw, server) = duplex(1 << 16);
    let mut server: Connection<_, Request, Response> = Connection::new(server);
    // {"request_id": 3, "op": {"type": "get", "key": <str 0xff 0xfe>}}
    let mut body = vec![0x82, 0xaa];
    body.extend_from_slice(b"request_id");
    body.extend_from_slice(&[0x03, 0xa2]);
    body.extend_from_slice(b"op");
    body.extend_from_slice(&[0x82, 0xa4]);
    body.extend_from_slice(b"type");
    body.push(0xa3);
    body.extend_from_slice(b"get");
    body.push(0xa3);
    body.extend_from_slice(b"key");
    body.extend_from_slice(&[0xa2, 0xff, 0xfe]);
    raw.write_all(&raw_frame(&body)).await.unwrap();
    let err = server.read_frame().await.unwrap_err();
    assert!(!err.is_fatal());
    assert_eq!(Response::for_wire_error(&err).unwrap().request_id, 3);
}

#[tokio::test]
async fn works_over_loopback_tcp() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let mut conn: Connection<_, Request, Response> = Connection::new(stream);
        while let Some(req) = conn.read_frame().await.unwrap() {
            let reply = Response {
                request_id: req.request_id,
                reply: Reply::Ok,
            };
            conn.write_frame(&reply).await.unwrap();
        }
    });
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut client: Connection<_, Response, Request> = Connection::new(stream);
    for request_id in 1..=100 {
        client
            .write_frame(&Request {
                request_id,
                op: Op::Status,
            })
            .await
            .unwrap();
        assert_eq!(
            client.read_frame().await.unwrap().unwrap().request_id,
            request_id
        );
    }
    drop(client);
    server.await.unwrap();
}
