//! Test harness for the `kvd` binary: start real processes on loopback ports
//! with their own data directories, talk to them over the `wire` protocol,
//! and kill them (by pid) however the test ends.
//!
//! Every wait is a poll with a deadline; no test relies on a sleep being
//! long enough.

#![allow(dead_code)] // each test file uses a different part

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::net::TcpStream;
use wire::{ClientConnection, NodeRole, NodeStatus, Op, Reply, Request};

/// Upper bound for anything a healthy cluster should manage (elections,
/// catching up); generous because the machine is shared.
pub const PATIENCE: Duration = Duration::from_secs(30);
/// Upper bound for one request/response exchange.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// A loopback address nobody listens on right now, which stays free while
/// its node is down (see `nemesis::ports`).
pub fn free_addr() -> String {
    nemesis::ports::reserve_loopback_addr()
        .expect("a free loopback port")
        .to_string()
}

/// One kvd process (or the plan for one, while it is down).
pub struct Node {
    pub id: u64,
    pub client_addr: String,
    pub peer_addr: String,
    pub data_dir: PathBuf,
    args: Vec<String>,
    /// The network namespace the node runs in, if any.
    netns: Option<String>,
    child: Option<Child>,
    log: Arc<Mutex<Vec<String>>>,
}

impl Node {
    /// Everything this node has written to stderr, over all its runs.
    pub fn log_lines(&self) -> Vec<String> {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Whether some log line contains `needle`.
    pub fn logged(&self, needle: &str) -> bool {
        self.log
            .lock()
            .map(|l| l.iter().any(|line| line.contains(needle)))
            .unwrap_or(false)
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }
}

/// A group of kvd nodes that are killed when the value is dropped.
pub struct Cluster {
    pub nodes: Vec<Node>,
    _dir: tempfile::TempDir,
}

impl Cluster {
    /// Plans `n` nodes (ids 1..=n) that know each other; `extra` flags go to
    /// every node. Nothing is started yet.
    pub fn new(n: usize, extra: &[&str]) -> Cluster {
        let addrs: Vec<(String, String)> = (0..n).map(|_| (free_addr(), free_addr())).collect();
        Cluster::with_addrs(addrs, extra)
    }

    /// Plans one node (ids 1..) in each namespace of `net`, listening on
    /// its namespace's address, so that partitions are iptables rules
    /// between real interfaces. Nothing is started yet.
    pub fn in_netns(net: &nemesis::NetnsNetwork, extra: &[&str]) -> Cluster {
        let nodes = net.nodes();
        let addrs = nodes
            .iter()
            .map(|&id| {
                let ip = net.node_ip(id).expect("a node of the network");
                (format!("{ip}:7000"), format!("{ip}:7001"))
            })
            .collect();
        let mut cluster = Cluster::with_addrs(addrs, extra);
        for (node, &id) in cluster.nodes.iter_mut().zip(&nodes) {
            assert_eq!(node.id, id, "namespace nodes are numbered from 1");
            node.netns = net.namespace(id).map(str::to_string);
        }
        cluster
    }

    fn with_addrs(addrs: Vec<(String, String)>, extra: &[&str]) -> Cluster {
        let n = addrs.len();
        let dir = tempfile::tempdir().expect("temp dir");
        let mut nodes = Vec::new();
        for i in 0..n {
            let id = i as u64 + 1;
            let data_dir = dir.path().join(format!("node-{id}"));
            let mut args = vec![
                "--id".to_string(),
                id.to_string(),
                "--client-addr".into(),
                addrs[i].0.clone(),
                "--peer-addr".into(),
                addrs[i].1.clone(),
                "--data-dir".into(),
                data_dir.display().to_string(),
            ];
            for (j, (client, peer)) in addrs.iter().enumerate() {
                if j != i {
                    args.push("--peer".into());
                    args.push(format!("{}={peer}/{client}", j + 1));
                }
            }
            args.extend(extra.iter().map(|s| s.to_string()));
            nodes.push(Node {
                id,
                client_addr: addrs[i].0.clone(),
                peer_addr: addrs[i].1.clone(),
                data_dir,
                args,
                netns: None,
                child: None,
                log: Arc::new(Mutex::new(Vec::new())),
            });
        }
        Cluster { nodes, _dir: dir }
    }

    /// Makes node `i` reach member `peer` (an id) at `dial` instead of its
    /// peer address, and name `client` as that member's client address in
    /// leader hints: for routing a group's links through proxies. Takes
    /// effect at the node's next start.
    pub fn route_peer(&mut self, i: usize, peer: u64, dial: &str, client: &str) {
        let prefix = format!("{peer}=");
        let spec = self.nodes[i]
            .args
            .iter_mut()
            .find(|a| a.starts_with(&prefix))
            .unwrap_or_else(|| panic!("node {} has no member {peer}", i + 1));
        *spec = format!("{peer}={dial}/{client}");
    }

    /// Starts every node that is down and waits until each says `kvd ready`.
    pub async fn start_all(&mut self) {
        for i in 0..self.nodes.len() {
            if !self.nodes[i].is_running() {
                self.spawn(i);
            }
        }
        for i in 0..self.nodes.len() {
            self.wait_ready(i).await;
        }
    }

    /// Starts node `i` and waits for `kvd ready`.
    pub async fn start(&mut self, i: usize) {
        self.spawn(i);
        self.wait_ready(i).await;
    }

    /// Starts node `i` without waiting (for tests that expect it to fail).
    pub fn spawn(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        assert!(node.child.is_none(), "node {} is already running", node.id);
        let kvd = env!("CARGO_BIN_EXE_kvd");
        // `ip netns exec` execs kvd in place, so the pid is kvd's own.
        let mut command = match &node.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, kvd]);
                c
            }
            None => Command::new(kvd),
        };
        let mut child = command
            .args(&node.args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn kvd");
        // The marker goes in before any of this run's lines can.
        node.log
            .lock()
            .expect("log lock")
            .push(format!("=== harness: started pid {}", child.id()));
        let stderr = child.stderr.take().expect("piped stderr");
        let log = node.log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Ok(mut l) = log.lock() {
                    l.push(line);
                }
            }
        });
        node.child = Some(child);
    }

    /// Waits until node `i`'s current run has logged `kvd ready`.
    pub async fn wait_ready(&self, i: usize) {
        let node = &self.nodes[i];
        let marker = node
            .log_lines()
            .iter()
            .rposition(|l| l.starts_with("=== harness: started"))
            .expect("the node was started");
        wait_until(&format!("node {} to log `kvd ready`", node.id), || {
            let lines = node.log_lines();
            let ready = lines[marker..].iter().any(|l| l.contains("kvd ready"));
            std::future::ready(ready)
        })
        .await;
    }

    /// Waits until node `i` has logged a line containing `needle` (its
    /// stderr is read by another thread, so a line may arrive late).
    pub async fn wait_logged(&self, i: usize, needle: &str) {
        let node = &self.nodes[i];
        wait_until(&format!("node {} to log {needle:?}", node.id), || {
            std::future::ready(node.logged(needle))
        })
        .await;
    }

    /// SIGKILLs node `i` and reaps it.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERMs node `i` and waits (bounded) for it to exit.
    pub fn terminate(&mut self, i: usize) -> ExitStatus {
        let mut child = self.nodes[i].child.take().expect("node is running");
        let pid = rustix::process::Pid::from_child(&child);
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).expect("send SIGTERM");
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = child.try_wait().expect("wait for kvd") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "node {} did not exit within {PATIENCE:?} of SIGTERM",
                    self.nodes[i].id
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits (bounded) for node `i` to exit on its own, e.g. after refusing
    /// to start.
    pub fn wait_exit(&mut self, i: usize) -> ExitStatus {
        let mut child = self.nodes[i].child.take().expect("node is running");
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = child.try_wait().expect("wait for kvd") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("node {} did not exit within {PATIENCE:?}", self.nodes[i].id);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Node `i`'s status, if it answers.
    pub async fn status(&self, i: usize) -> anyhow::Result<NodeStatus> {
        let mut c = Client::connect(&self.nodes[i].client_addr).await?;
        match c.call(Op::Status).await? {
            Reply::Status(s) => Ok(s),
            other => bail!("status answered {other:?}"),
        }
    }

    /// Waits until the running nodes agree on one leader and returns its
    /// index.
    pub async fn leader(&self) -> usize {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(i) = self.agreed_leader().await {
                return i;
            }
            if Instant::now() > deadline {
                self.dump_logs();
                panic!("no agreed leader within {PATIENCE:?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn agreed_leader(&self) -> Option<usize> {
        let mut leader = None;
        for (i, n) in self.nodes.iter().enumerate() {
            if !n.is_running() {
                continue;
            }
            let s = self.status(i).await.ok()?;
            if s.role == NodeRole::Leader {
                leader = Some(i);
            }
            let claimed = s.leader?;
            if leader.is_some_and(|l| self.nodes[l].id != claimed) {
                return None;
            }
        }
        let l = leader?;
        let id = self.nodes[l].id;
        for (i, n) in self.nodes.iter().enumerate() {
            if n.is_running() && self.status(i).await.ok()?.leader != Some(id) {
                return None;
            }
        }
        Some(l)
    }

    fn index_of_client_addr(&self, addr: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.client_addr == addr)
    }

    /// Runs `op` against the group until some node answers it with a
    /// success, following `wrong_leader` hints and retrying errors with the
    /// same op (so the same session).
    pub async fn call(&self, op: Op) -> Reply {
        let deadline = Instant::now() + PATIENCE;
        let mut target = 0;
        let mut last = String::new();
        loop {
            if Instant::now() > deadline {
                self.dump_logs();
                panic!("{op:?} did not succeed within {PATIENCE:?}; last outcome: {last}");
            }
            if self.nodes[target].is_running() {
                let outcome = async {
                    let mut c = Client::connect(&self.nodes[target].client_addr).await?;
                    c.call(op.clone()).await
                }
                .await;
                match outcome {
                    Ok(Reply::WrongLeader { leader: Some(hint) }) => {
                        last = format!("wrong_leader -> {}", hint.client_addr);
                        if let Some(i) = self.index_of_client_addr(&hint.client_addr) {
                            target = i;
                            continue;
                        }
                    }
                    Ok(reply) if !reply.is_error() => return reply,
                    Ok(reply) => last = format!("{reply:?}"),
                    Err(e) => last = format!("{e:#}"),
                }
            }
            target = (target + 1) % self.nodes.len();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Linearizable get through whichever node leads.
    pub async fn get(&self, key: &str) -> Option<String> {
        match self.call(Op::Get { key: key.into() }).await {
            Reply::Value { value } => value,
            other => panic!("get {key} answered {other:?}"),
        }
    }

    /// Prints every node's log, to explain a failure.
    pub fn dump_logs(&self) {
        for n in &self.nodes {
            eprintln!("----- node {} log -----", n.id);
            for line in n.log_lines() {
                eprintln!("{line}");
            }
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.dump_logs();
        }
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
    }
}

/// Polls `cond` every 20 ms until it holds; panics after [`PATIENCE`].
pub async fn wait_until<F, Fut>(what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + PATIENCE;
    while !cond().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Exactly-once session numbering for one test client.
pub struct Session {
    pub client_id: u64,
    pub seq: u64,
}

impl Session {
    pub fn new(client_id: u64) -> Session {
        Session { client_id, seq: 0 }
    }

    pub fn put(&mut self, key: &str, value: &str) -> Op {
        self.seq += 1;
        Op::Put {
            key: key.into(),
            value: value.into(),
            client_id: self.client_id,
            seq: self.seq,
        }
    }

    pub fn append(&mut self, key: &str, value: &str) -> Op {
        self.seq += 1;
        Op::Append {
            key: key.into(),
            value: value.into(),
            client_id: self.client_id,
            seq: self.seq,
        }
    }
}

/// A bare protocol connection to one node.
pub struct Client {
    pub conn: ClientConnection<TcpStream>,
    next_id: u64,
}

impl Client {
    pub async fn connect(addr: &str) -> anyhow::Result<Client> {
        let stream = tokio::time::timeout(CALL_TIMEOUT, TcpStream::connect(addr))
            .await
            .context("connect timed out")??;
        // Pipelined requests must leave at once, not wait on Nagle.
        stream.set_nodelay(true)?;
        let (_welcome, conn) = tokio::time::timeout(CALL_TIMEOUT, wire::connect_client(stream))
            .await
            .context("handshake timed out")??;
        Ok(Client { conn, next_id: 0 })
    }

    /// Sends a request and returns its id, without waiting for the answer.
    pub async fn send(&mut self, op: Op) -> anyhow::Result<u64> {
        self.next_id += 1;
        let request_id = self.next_id;
        self.conn.write_frame(&Request { request_id, op }).await?;
        Ok(request_id)
    }

    /// The next response on the connection.
    pub async fn recv(&mut self) -> anyhow::Result<wire::Response> {
        match tokio::time::timeout(CALL_TIMEOUT, self.conn.read_frame()).await {
            Ok(Ok(Some(r))) => Ok(r),
            Ok(Ok(None)) => bail!("connection closed"),
            Ok(Err(e)) => Err(e.into()),
            Err(_) => bail!("no response within {CALL_TIMEOUT:?}"),
        }
    }

    /// One request, one answer.
    pub async fn call(&mut self, op: Op) -> anyhow::Result<Reply> {
        let id = self.send(op).await?;
        let r = self.recv().await?;
        anyhow::ensure!(
            r.request_id == id,
            "answer for request {} instead of {id}",
            r.request_id
        );
        Ok(r.reply)
    }
}

/// The newest WAL segment in a data directory.
pub fn newest_segment(data_dir: &Path) -> PathBuf {
    let mut segments: Vec<PathBuf> = std::fs::read_dir(data_dir.join("wal"))
        .expect("list wal dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    segments.sort();
    segments.pop().expect("at least one WAL segment")
}

/// Reads one whole frame body from a raw stream; `None` at a clean end of
/// stream.
pub async fn read_raw_frame(s: &mut TcpStream) -> anyhow::Result<Option<Vec<u8>>> {
    use tokio::io::AsyncReadExt;
    let mut header = [0u8; 4];
    let read = tokio::time::timeout(CALL_TIMEOUT, async {
        match s.read_exact(&mut header).await {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(e),
        }
        let mut body = vec![0u8; u32::from_be_bytes(header) as usize];
        s.read_exact(&mut body).await?;
        Ok(Some(body))
    })
    .await
    .context("no frame within the call timeout")?;
    Ok(read?)
}

/// Writes raw bytes to a stream.
pub async fn write_raw(s: &mut TcpStream, bytes: &[u8]) -> anyhow::Result<()> {
    use tokio::io::AsyncWriteExt;
    s.write_all(bytes).await?;
    Ok(())
}

/// Dials `addr`, sends `hello` and returns the stream with the decoded reply.
pub async fn raw_hello(
    addr: &str,
    hello: &wire::Hello,
) -> anyhow::Result<(TcpStream, wire::HelloReply)> {
    let mut s = TcpStream::connect(addr).await?;
    write_raw(&mut s, &wire::encode_to_vec(hello)?).await?;
    let body = read_raw_frame(&mut s)
        .await?
        .context("closed before the hello reply")?;
    Ok((s, rmp_serde::from_slice(&body)?))
}

/// Total size of the files under `dir`.
pub fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}
