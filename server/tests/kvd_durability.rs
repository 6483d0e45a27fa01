//! What survives crashes: SIGKILL of every node, a torn WAL tail, SIGTERM;
//! and what makes a node refuse to start.

mod kvd_harness;

use std::io::Write;

use kvd_harness::{Client, Cluster, Session, free_addr, newest_segment, wait_until};
use wire::{Op, Reply};

#[tokio::test]
async fn acknowledged_writes_survive_sigkill_of_every_node() {
    let mut c = Cluster::new(3, &[]);
    c.start_all().await;
    c.leader().await;
    let mut s = Session::new(10);
    for n in 0..30 {
        assert_eq!(c.call(s.append("log", &format!("{n},"))).await, Reply::Ok);
        assert_eq!(
            c.call(s.put(&format!("k{n}"), &format!("v{n}"))).await,
            Reply::Ok
        );
    }
    for i in 0..3 {
        c.kill(i);
    }
    c.start_all().await;
    c.leader().await;
    let expected: String = (0..30).map(|n| format!("{n},")).collect();
    assert_eq!(c.get("log").await, Some(expected));
    for n in 0..30 {
        assert_eq!(c.get(&format!("k{n}")).await, Some(format!("v{n}")));
    }
    // Sessions survived too: replaying the last write changes nothing.
    s.seq -= 1;
    assert_eq!(c.call(s.put("k29", "replayed")).await, Reply::Ok);
    assert_eq!(c.get("k29").await.as_deref(), Some("v29"));
}

#[tokio::test]
async fn torn_wal_tail_is_cut_on_restart_and_data_survives() {
    let mut c = Cluster::new(1, &[]);
    c.start_all().await;
    let mut s = Session::new(11);
    for n in 0..10 {
        assert_eq!(c.call(s.append("k", &n.to_string())).await, Reply::Ok);
    }
    c.kill(0);
    // A crash in the middle of a write leaves a partial batch at the end.
    let segment = newest_segment(&c.nodes[0].data_dir);
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&segment)
        .unwrap();
    f.write_all(&[0x5a; 37]).unwrap();
    drop(f);
    c.start(0).await;
    assert!(
        c.nodes[0].logged("torn WAL tail"),
        "the truncation was not logged"
    );
    assert_eq!(c.get("k").await.as_deref(), Some("0123456789"));
    assert_eq!(c.call(s.append("k", "!")).await, Reply::Ok);
    assert_eq!(c.get("k").await.as_deref(), Some("0123456789!"));
}

#[tokio::test]
async fn corruption_before_the_tail_refuses_to_start_naming_the_file() {
    let mut c = Cluster::new(1, &[]);
    c.start_all().await;
    let mut s = Session::new(12);
    for n in 0..20 {
        assert_eq!(c.call(s.put("k", &n.to_string())).await, Reply::Ok);
    }
    c.kill(0);
    let segment = newest_segment(&c.nodes[0].data_dir);
    let mut bytes = std::fs::read(&segment).unwrap();
    // Damage early in the file, with many complete batches after it.
    let at = bytes.len() / 4;
    bytes[at] ^= 0xff;
    std::fs::write(&segment, &bytes).unwrap();
    c.spawn(0);
    let status = c.wait_exit(0);
    assert!(!status.success(), "kvd started on a corrupt WAL");
    let name = segment.file_name().unwrap().to_string_lossy().into_owned();
    wait_until("the refusal to name the damaged segment", || {
        let named = c.nodes[0]
            .log_lines()
            .iter()
            .any(|l| l.contains("corrupt WAL segment") && l.contains(&name));
        std::future::ready(named)
    })
    .await;
}

#[tokio::test]
async fn sigterm_exits_zero_closes_connections_and_keeps_data() {
    let mut c = Cluster::new(1, &[]);
    c.start_all().await;
    let mut s = Session::new(13);
    assert_eq!(c.call(s.put("k", "v")).await, Reply::Ok);
    let mut client = Client::connect(&c.nodes[0].client_addr).await.unwrap();
    let status = c.terminate(0);
    assert!(status.success(), "kvd exited with {status}");
    c.wait_logged(0, "stopped").await;
    // The connection was closed rather than left hanging.
    assert!(client.call(Op::Status).await.is_err());
    c.start(0).await;
    assert_eq!(c.get("k").await.as_deref(), Some("v"));
}

#[tokio::test]
async fn a_second_process_on_the_same_data_dir_is_refused() {
    let mut c = Cluster::new(1, &[]);
    c.start_all().await;
    // Same data directory, fresh ports.
    let args = [
        "--id".to_string(),
        "1".into(),
        "--client-addr".into(),
        free_addr(),
        "--peer-addr".into(),
        free_addr(),
        "--data-dir".into(),
        c.nodes[0].data_dir.display().to_string(),
    ];
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kvd"))
        .args(&args)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("already in use"), "{stderr}");
    // The first process is unharmed.
    let mut s = Session::new(14);
    assert_eq!(c.call(s.put("k", "v")).await, Reply::Ok);
}

#[tokio::test]
async fn sigterm_answers_pending_requests_shutting_down() {
    // Long election timeouts: the leader keeps leading for a second after
    // losing its followers, so the write below is still pending at SIGTERM.
    let mut c = Cluster::new(3, &["--election-ticks", "100", "--request-timeout", "60s"]);
    c.start_all().await;
    let leader = c.leader().await;
    let mut client = Client::connect(&c.nodes[leader].client_addr).await.unwrap();
    for i in 0..3 {
        if i != leader {
            c.kill(i);
        }
    }
    let mut s = Session::new(15);
    client.send(s.put("k", "v")).await.unwrap();
    client.send(Op::Get { key: "k".into() }).await.unwrap();
    // Both requests are in the driver once its status reflects the proposal.
    wait_until("the put to be appended", || async {
        c.status(leader)
            .await
            .is_ok_and(|st| st.last_log_index > st.commit_index)
    })
    .await;
    let status = c.terminate(leader);
    assert!(status.success(), "kvd exited with {status}");
    for _ in 0..2 {
        assert_eq!(client.recv().await.unwrap().reply, Reply::ShuttingDown);
    }
    assert!(client.recv().await.is_err(), "connection left open");
}
