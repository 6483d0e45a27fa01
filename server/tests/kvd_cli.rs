//! The command line: help text, configuration errors, and a node started from
//! a TOML file with a flag overriding it.

mod kvd_harness;

use std::process::Command;

use kvd_harness::{Client, PATIENCE, free_addr, wait_until};
use wire::{Op, Reply};

fn kvd() -> Command {
    Command::new(env!("CARGO_BIN_EXE_kvd"))
}

#[test]
fn help_explains_every_flag_of_the_contract() {
    let out = kvd().arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for flag in [
        "--config",
        "--id",
        "--cluster-id",
        "--client-addr",
        "--peer-addr",
        "--peer ",
        "--data-dir",
        "--tick",
        "--election-ticks",
        "--heartbeat-ticks",
        "--snapshot-threshold",
        "--max-frame",
        "--seed",
        "--log-format",
    ] {
        assert!(help.contains(flag), "--help does not mention {flag}");
    }
}

#[test]
fn bad_configuration_exits_2_with_a_reason() {
    let out = kvd().args(["--id", "1"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--client-addr is required"));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("kvd.toml");
    std::fs::write(&file, "id = 1\nno-such-setting = 3\n").unwrap();
    let out = kvd().arg("--config").arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no-such-setting"));
}

#[tokio::test]
async fn node_starts_from_a_toml_file_and_flags_override_it() {
    let dir = tempfile::tempdir().unwrap();
    let client_addr = free_addr();
    let file = dir.path().join("kvd.toml");
    let toml = format!(
        "id = 1\nclient-addr = \"{client_addr}\"\npeer-addr = \"{}\"\n\
         data-dir = \"{}\"\nlog-format = \"text\"\ntick = \"5ms\"\n",
        free_addr(),
        dir.path().join("data").display()
    );
    std::fs::write(&file, toml).unwrap();
    let mut child = kvd()
        .arg("--config")
        .arg(&file)
        .args(["--log-format", "json"])
        .env("RUST_LOG", "info")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let guard = KillOnDrop(child);
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let sink = lines.clone();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            sink.lock().unwrap().push(line);
        }
    });
    wait_until("kvd ready", || {
        std::future::ready(
            lines
                .lock()
                .unwrap()
                .iter()
                .any(|l| l.contains("kvd ready")),
        )
    })
    .await;
    // JSON lines (the flag won over the file), each naming the node.
    for line in lines.lock().unwrap().iter() {
        let v: serde_json::Value = serde_json::from_str(line).expect("a JSON log line");
        assert_eq!(v["span"]["node"], 1, "{line}");
    }
    let deadline = std::time::Instant::now() + PATIENCE;
    let mut client = Client::connect(&client_addr).await.unwrap();
    loop {
        let put = Op::Put {
            key: "k".into(),
            value: "v".into(),
            client_id: 1,
            seq: 1,
        };
        if client.call(put).await.unwrap() == Reply::Ok {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never became leader");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    drop(guard);
}

struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
