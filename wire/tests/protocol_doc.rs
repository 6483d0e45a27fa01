//! Keeps `docs/protocol.md` honest: the example frames printed there must be
//! exactly what the encoder produces, and the key → shard table must hold.

use wire::{
    Hello, HelloReply, NSHARDS, Op, Reply, Request, Response, Role, Welcome, encode_to_vec,
    key_to_shard,
};

const DOC: &str = include_str!("../../docs/protocol.md");

/// The dump format used in the document: 16 bytes per line, lowercase hex.
fn hex_dump(bytes: &[u8]) -> String {
    bytes
        .chunks(16)
        .map(|line| {
            line.iter()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn assert_documented(what: &str, frame: Vec<u8>) {
    let dump = hex_dump(&frame);
    assert!(
        DOC.contains(&format!("```text\n{dump}\n```")),
        "docs/protocol.md no longer shows the encoder's bytes for {what}; it should read:\n{dump}"
    );
}

#[test]
fn example_frames_in_the_protocol_doc_match_the_encoder() {
    assert_documented(
        "the client hello",
        encode_to_vec(&Hello::new(Role::Client)).unwrap(),
    );
    let welcome = HelloReply::Welcome(Welcome {
        node_id: 1,
        cluster_id: 7,
        version: 1,
    });
    assert_documented("the welcome", encode_to_vec(&welcome).unwrap());
    let put = Request {
        request_id: 1,
        op: Op::Put {
            key: "x".into(),
            value: "1".into(),
            client_id: 42,
            seq: 1,
        },
    };
    assert_documented("the put request", encode_to_vec(&put).unwrap());
    let ok = Response {
        request_id: 1,
        reply: Reply::Ok,
    };
    assert_documented("the ok response", encode_to_vec(&ok).unwrap());
    let value = Response {
        request_id: 2,
        reply: Reply::Value {
            value: Some("1".into()),
        },
    };
    assert_documented("the value response", encode_to_vec(&value).unwrap());
}

#[test]
fn key_to_shard_table_in_the_protocol_doc_holds() {
    let rows = [
        ("", 0x811c_9dc5u32, 1),
        ("a", 0xe40c_292c, 0),
        ("key-0", 0x58e0_35d9, 7),
        ("key-1", 0x57e0_3446, 8),
        ("user:42", 0x2f6b_7b82, 2),
        ("κλειδί", 0xca49_47e7, 7),
    ];
    for (key, hash, shard) in rows {
        assert_eq!(wire::fnv1a32(key.as_bytes()), hash, "{key:?}");
        assert_eq!(key_to_shard(key, NSHARDS), shard, "{key:?}");
        let row = format!("| `{key:?}` | `{hash:#010x}` | {shard} |");
        assert!(DOC.contains(&row), "docs/protocol.md lacks the row {row}");
    }
}
