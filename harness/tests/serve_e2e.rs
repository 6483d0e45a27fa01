//! End to end: the real `faultline serve` binary on a free port of
//! 127.0.0.1, over a store built in a temporary directory, spoken to with a
//! hand-written HTTP/1.1 GET.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long the server may take to start or to stop.
const PATIENCE: Duration = Duration::from_secs(30);

const RESULTS: &str = r#"{
  "test": "kv-append-kill", "verdict": "invalid", "exit_code": 1, "error": null,
  "seed": 4242, "started_at": "2026-11-23T10:00:00Z", "duration_ms": 15000,
  "net": "proxy", "nodes": 3, "concurrency": 4, "workload": "kv-append",
  "nemesis": ["kill"], "counts": {"ok": 321, "fail": 7, "info": 2},
  "rate_ok_per_s": 21.4, "recovered": true, "checker": null, "timeline": null
}"#;

/// A store with one invalid run and the `latest` links.
fn store_with_one_run(root: &Path) {
    let run = root.join("kv-append-kill/20261123T100000Z-4242");
    std::fs::create_dir_all(run.join("nodes/1")).unwrap();
    std::fs::write(run.join("results.json"), RESULTS).unwrap();
    std::fs::write(run.join("nodes/1/kvd.log"), "raft: became leader\n").unwrap();
    std::os::unix::fs::symlink("20261123T100000Z-4242", root.join("kv-append-kill/latest"))
        .unwrap();
}

/// The server process, killed if a test fails before stopping it.
struct Server {
    child: Child,
    url: String,
}

impl Server {
    /// Starts `faultline serve` on the store at `root` and waits for the
    /// line that says its URL.
    fn start(root: &Path) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_faultline"))
            .args(["serve", "--addr", "127.0.0.1:0", "--store"])
            .arg(root)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start faultline serve");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let mut server = Server {
            child,
            url: String::new(),
        };
        let line = rx.recv_timeout(PATIENCE).expect("the server says its URL");
        let start = line.find("http://").expect("a URL on the first line");
        server.url = line[start..].split_whitespace().next().unwrap().to_string();
        server
    }

    /// The `host:port` it listens on.
    fn addr(&self) -> &str {
        self.url.trim_start_matches("http://").trim_end_matches('/')
    }

    /// Sends SIGTERM and waits for the exit.
    fn stop(mut self) -> ExitStatus {
        let pid = rustix::process::Pid::from_raw(self.child.id() as i32).unwrap();
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "the server did not stop");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A parsed response.
struct Response {
    status: u16,
    headers: String,
    body: String,
}

/// GETs `path` from `addr` over a fresh connection.
fn get(addr: &str, path: &str) -> Response {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").expect("a complete response");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    Response {
        status,
        headers: head.to_ascii_lowercase(),
        body: body.replace("&#x2f;", "/"),
    }
}

#[test]
fn serve_lists_the_store_serves_its_files_and_stops_on_sigterm() {
    let tmp = tempfile::tempdir().unwrap();
    store_with_one_run(tmp.path());
    let server = Server::start(tmp.path());
    let addr = server.addr().to_string();

    let index = get(&addr, "/");
    assert_eq!(index.status, 200, "{}", index.body);
    assert!(
        index
            .headers
            .contains("content-type: text/html; charset=utf-8")
    );
    assert!(index.body.contains("kv-append-kill"));
    assert!(
        index
            .body
            .contains(r#"<span class="pill invalid">invalid</span>"#)
    );
    assert!(
        index
            .body
            .contains("/run/kv-append-kill/20261123T100000Z-4242/")
    );

    let log = get(&addr, "/store/kv-append-kill/latest/nodes/1/kvd.log");
    assert_eq!(log.status, 200);
    assert!(
        log.headers
            .contains("content-type: text/plain; charset=utf-8")
    );
    assert_eq!(log.body, "raft: became leader\n");

    let escape = get(&addr, "/store/../../etc/passwd");
    assert_eq!(escape.status, 400, "{}", escape.body);

    let status = server.stop();
    assert_eq!(status.code(), Some(0), "a clean stop on SIGTERM");
}

#[test]
fn serve_refuses_a_store_that_does_not_exist() {
    let tmp = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(["serve", "--addr", "127.0.0.1:0", "--store"])
        .arg(tmp.path().join("nowhere"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("does not exist"), "{stderr}");
}

#[test]
fn serve_refuses_a_port_in_use() {
    let tmp = tempfile::tempdir().unwrap();
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let output = Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(["serve", "--addr", &addr, "--store"])
        .arg(tmp.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot listen on"), "{stderr}");
}
