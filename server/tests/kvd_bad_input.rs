//! Bad input on either port is answered or the connection closed, logged,
//! and harms neither the node nor other connections.

mod kvd_harness;

use kvd_harness::{Client, Cluster, Session, raw_hello, read_raw_frame, write_raw};
use serde::Serialize;
use tokio::net::TcpStream;
use wire::{Hello, HelloReply, Op, RejectCode, Reply, Request, Response, Role};

/// A single-node group plus one healthy connection opened beforehand.
async fn node_with_a_bystander() -> (Cluster, Client) {
    let mut c = Cluster::new(1, &[]);
    c.start_all().await;
    let mut s = Session::new(1);
    assert_eq!(c.call(s.put("k", "v")).await, Reply::Ok);
    let bystander = Client::connect(&c.nodes[0].client_addr).await.unwrap();
    (c, bystander)
}

/// The bystander and a brand-new connection both still work.
async fn assert_node_still_serves(c: &Cluster, bystander: &mut Client) {
    let get = Op::Get { key: "k".into() };
    let expected = Reply::Value {
        value: Some("v".into()),
    };
    assert_eq!(bystander.call(get.clone()).await.unwrap(), expected);
    let mut fresh = Client::connect(&c.nodes[0].client_addr).await.unwrap();
    assert_eq!(fresh.call(get).await.unwrap(), expected);
}

async fn client_stream(c: &Cluster) -> TcpStream {
    let (s, reply) = raw_hello(&c.nodes[0].client_addr, &Hello::new(Role::Client))
        .await
        .unwrap();
    assert!(matches!(reply, HelloReply::Welcome(_)), "{reply:?}");
    s
}

async fn read_response(s: &mut TcpStream) -> Response {
    let body = read_raw_frame(s).await.unwrap().expect("a response frame");
    rmp_serde::from_slice(&body).unwrap()
}

#[tokio::test]
async fn oversize_frame_is_answered_then_the_connection_closed() {
    let (c, mut bystander) = node_with_a_bystander().await;
    let mut s = client_stream(&c).await;
    // Announce 100 MiB (the limit is 16 MiB) and send a little of it.
    let mut bytes = (100u32 << 20).to_be_bytes().to_vec();
    bytes.extend_from_slice(&[0u8; 64]);
    write_raw(&mut s, &bytes).await.unwrap();
    let r = read_response(&mut s).await;
    assert_eq!(r.request_id, 0);
    assert!(
        matches!(&r.reply, Reply::BadRequest { reason } if reason.contains("limit")),
        "{r:?}"
    );
    assert_eq!(
        read_raw_frame(&mut s).await.unwrap(),
        None,
        "connection not closed"
    );
    assert_node_still_serves(&c, &mut bystander).await;
    c.wait_logged(0, "bad frame from client").await;
}

#[tokio::test]
async fn garbage_body_is_a_bad_request_and_the_connection_goes_on() {
    let (c, mut bystander) = node_with_a_bystander().await;
    let mut s = client_stream(&c).await;
    // 0xc1 is never valid MessagePack.
    write_raw(&mut s, &[0, 0, 0, 3, 0xc1, 0xc1, 0xc1])
        .await
        .unwrap();
    let r = read_response(&mut s).await;
    assert_eq!(r.request_id, 0);
    assert!(matches!(r.reply, Reply::BadRequest { .. }), "{r:?}");
    // The same connection still works.
    let req = Request {
        request_id: 5,
        op: Op::Get { key: "k".into() },
    };
    write_raw(&mut s, &wire::encode_to_vec(&req).unwrap())
        .await
        .unwrap();
    let r = read_response(&mut s).await;
    assert_eq!(r.request_id, 5);
    assert_eq!(
        r.reply,
        Reply::Value {
            value: Some("v".into())
        }
    );
    assert_node_still_serves(&c, &mut bystander).await;
}

#[tokio::test]
async fn unknown_and_unserved_ops_are_bad_requests() {
    #[derive(Serialize)]
    struct Weird {
        request_id: u64,
        op: WeirdOp,
    }
    #[derive(Serialize)]
    struct WeirdOp {
        #[serde(rename = "type")]
        kind: &'static str,
    }
    let (c, mut bystander) = node_with_a_bystander().await;
    let mut s = client_stream(&c).await;
    let weird = Weird {
        request_id: 9,
        op: WeirdOp { kind: "frobnicate" },
    };
    write_raw(&mut s, &wire::encode_to_vec(&weird).unwrap())
        .await
        .unwrap();
    let r = read_response(&mut s).await;
    assert_eq!(r.request_id, 9, "the request id was not salvaged");
    assert!(
        matches!(&r.reply, Reply::BadRequest { reason } if reason.contains("frobnicate")),
        "{r:?}"
    );
    // A controller operation is well-formed but not served by kvd.
    let mut client = Client::connect(&c.nodes[0].client_addr).await.unwrap();
    let reply = client.call(Op::Query { num: None }).await.unwrap();
    assert!(
        matches!(&reply, Reply::BadRequest { reason } if reason.contains("query")),
        "{reply:?}"
    );
    assert_node_still_serves(&c, &mut bystander).await;
}

#[tokio::test]
async fn client_hello_on_the_peer_port_is_refused() {
    let (c, mut bystander) = node_with_a_bystander().await;
    let (mut s, reply) = raw_hello(&c.nodes[0].peer_addr, &Hello::new(Role::Client))
        .await
        .unwrap();
    assert!(
        matches!(
            reply,
            HelloReply::Rejected {
                code: RejectCode::WrongPort,
                ..
            }
        ),
        "{reply:?}"
    );
    assert_eq!(
        read_raw_frame(&mut s).await.unwrap(),
        None,
        "connection not closed"
    );
    assert_node_still_serves(&c, &mut bystander).await;
    c.wait_logged(0, "refused a connection on the peer port")
        .await;
}

#[tokio::test]
async fn peer_hello_on_the_client_port_is_refused() {
    let (c, mut bystander) = node_with_a_bystander().await;
    let hello = Hello::new(Role::Peer {
        node_id: 2,
        cluster_id: 1,
    });
    let (mut s, reply) = raw_hello(&c.nodes[0].client_addr, &hello).await.unwrap();
    assert!(
        matches!(
            reply,
            HelloReply::Rejected {
                code: RejectCode::WrongPort,
                ..
            }
        ),
        "{reply:?}"
    );
    assert_eq!(
        read_raw_frame(&mut s).await.unwrap(),
        None,
        "connection not closed"
    );
    assert_node_still_serves(&c, &mut bystander).await;
    c.wait_logged(0, "refused a connection on the client port")
        .await;
}

#[tokio::test]
async fn peers_from_elsewhere_are_turned_away() {
    let (c, mut bystander) = node_with_a_bystander().await;
    // Another cluster.
    let other_cluster = Hello::new(Role::Peer {
        node_id: 2,
        cluster_id: 99,
    });
    let (_, reply) = raw_hello(&c.nodes[0].peer_addr, &other_cluster)
        .await
        .unwrap();
    assert!(
        matches!(
            reply,
            HelloReply::Rejected {
                code: RejectCode::WrongCluster,
                ..
            }
        ),
        "{reply:?}"
    );
    // Our cluster, but not a member: welcomed by the handshake, then told
    // goodbye and closed.
    let stranger = Hello::new(Role::Peer {
        node_id: 42,
        cluster_id: 1,
    });
    let (mut s, reply) = raw_hello(&c.nodes[0].peer_addr, &stranger).await.unwrap();
    assert!(matches!(reply, HelloReply::Welcome(_)), "{reply:?}");
    let bye: wire::PeerFrame<raft::Message> =
        rmp_serde::from_slice(&read_raw_frame(&mut s).await.unwrap().expect("goodbye")).unwrap();
    assert!(matches!(bye, wire::PeerFrame::Goodbye { .. }), "{bye:?}");
    assert_eq!(read_raw_frame(&mut s).await.unwrap(), None);
    assert_node_still_serves(&c, &mut bystander).await;
}

#[tokio::test]
async fn write_too_big_to_replicate_is_refused_before_it_reaches_the_log() {
    let mut c = Cluster::new(1, &["--max-frame", "8192"]);
    c.start_all().await;
    c.leader().await;
    let mut client = Client::connect(&c.nodes[0].client_addr).await.unwrap();
    let mut s = Session::new(1);
    // Fits in a client frame, but not with room to spare in a peer frame.
    let reply = client.call(s.put("big", &"x".repeat(6000))).await.unwrap();
    assert!(
        matches!(&reply, Reply::BadRequest { reason } if reason.contains("at most")),
        "{reply:?}"
    );
    let before = c.status(0).await.unwrap().last_log_index;
    assert_eq!(
        client.call(s.put("ok", &"x".repeat(3000))).await.unwrap(),
        Reply::Ok
    );
    assert_eq!(c.status(0).await.unwrap().last_log_index, before + 1);
    assert_eq!(c.get("big").await, None);
}
