//! The netns backend against real namespaces, veths, a bridge and iptables.
//!
//! These tests need root, `ip` (iproute2), `iptables` and, for the wrapped
//! server, `python3`; CI runs them as root. Without them they fail, saying
//! what is missing, rather than pass silently.
#![cfg(target_os = "linux")]

use std::collections::BTreeSet;
use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::MetadataExt;
use std::process::Command;
use std::time::Duration;

use nemesis::grudge::{self, Grudge};
use nemesis::{
    CutMode, ManagedProcess, NetFaultError, NetnsError, NetnsNetwork, NetworkFaults, NodeId,
    ProcessSpec,
};

const NODES: [NodeId; 3] = [1, 2, 3];
/// Long enough for any healthy connect on a bridge; a cut one never
/// completes.
const CUT_WAIT: Duration = Duration::from_millis(300);
/// A generous bound for connections that must succeed.
const CONNECT_WAIT: Duration = Duration::from_secs(5);

fn network(nodes: &[NodeId]) -> NetnsNetwork {
    if let Err(error) = NetnsNetwork::check_available() {
        panic!(
            "the netns tests need root with `ip` and `iptables` (CI runs them as root): {error}"
        );
    }
    NetnsNetwork::create(nodes).expect("create the namespace network")
}

/// A listener on `node`'s address, in its namespace. Connections complete
/// in the kernel's backlog without anyone accepting them.
fn listen(net: &NetnsNetwork, node: NodeId) -> TcpListener {
    let ip = net.node_ip(node).unwrap();
    net.run_in(node, || TcpListener::bind((ip, 0)))
        .unwrap()
        .unwrap()
}

/// Dials `to` from `from`'s namespace (`None`: from the host).
fn dial(
    net: &NetnsNetwork,
    from: Option<NodeId>,
    to: SocketAddr,
    wait: Duration,
) -> std::io::Result<TcpStream> {
    match from {
        None => TcpStream::connect_timeout(&to, wait),
        Some(node) => net
            .run_in(node, || TcpStream::connect_timeout(&to, wait))
            .unwrap(),
    }
}

/// Asserts who can reach whom: `cut` lists the node pairs that must not
/// connect (either direction); all other node pairs, and the host to every
/// node, must. The dials run at once, so cut ones wait in parallel.
fn assert_reachability(net: &NetnsNetwork, cut: &[(NodeId, NodeId)], expect_cut: ErrorKind) {
    let listeners: Vec<(NodeId, TcpListener)> =
        NODES.iter().map(|&n| (n, listen(net, n))).collect();
    let mut attempts = Vec::new();
    for (to, listener) in &listeners {
        let addr = listener.local_addr().unwrap();
        attempts.push((None, *to, addr));
        attempts.extend(
            NODES
                .iter()
                .filter(|&f| f != to)
                .map(|&f| (Some(f), *to, addr)),
        );
    }
    std::thread::scope(|s| {
        for (from, to, addr) in attempts {
            s.spawn(move || {
                let is_cut = from.is_some_and(|f| cut.contains(&(f, to)) || cut.contains(&(to, f)));
                let wait = if is_cut { CUT_WAIT } else { CONNECT_WAIT };
                let who = from.map_or("the host".to_string(), |f| format!("node {f}"));
                match dial(net, from, addr, wait) {
                    Ok(_) if is_cut => panic!("{who} reached node {to} across a cut"),
                    Ok(_) => {}
                    Err(e) if is_cut => assert_eq!(e.kind(), expect_cut, "{who} -> {to}: {e}"),
                    Err(e) => panic!("{who} cannot reach node {to}: {e}"),
                }
            });
        }
    });
}

/// Namespaces and links whose names start with `tag`.
fn leftovers(tag: &str) -> Vec<String> {
    let run = |args: &[&str]| {
        let out = Command::new("ip").args(args).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let namespaces = run(&["netns", "list"]);
    let links = run(&["-o", "link", "show"]);
    let forward = Command::new("iptables")
        .args(["-w", "-S", "FORWARD"])
        .output()
        .unwrap();
    namespaces
        .lines()
        .filter(|l| l.starts_with(tag))
        .chain(links.lines().filter(|l| l.contains(tag)))
        .map(str::to_string)
        .chain(
            String::from_utf8_lossy(&forward.stdout)
                .lines()
                .filter(|l| l.contains(tag))
                .map(str::to_string),
        )
        .collect()
}

#[test]
fn check_available_accepts_this_root_host() {
    NetnsNetwork::check_available().expect("netns tests run as root with ip and iptables");
}

#[test]
fn every_node_reaches_every_other_and_the_host_reaches_every_node() {
    let net = network(&NODES);
    assert_eq!(net.nodes(), NODES);
    let ips: BTreeSet<IpAddr> = NODES.iter().map(|&n| net.node_ip(n).unwrap()).collect();
    assert_eq!(ips.len(), 3, "every node has its own address");
    assert!(!ips.contains(&net.host_ip()));
    for node in NODES {
        let namespace = net.namespace(node).unwrap();
        let out = Command::new("ip")
            .args(["-n", namespace, "-6", "addr", "show"])
            .output()
            .unwrap();
        assert!(out.stdout.is_empty(), "IPv6 left on in node {node}");
    }
    assert_reachability(&net, &[], ErrorKind::TimedOut);
}

#[test]
fn a_one_sided_grudge_cuts_the_pair_both_ways_and_heal_restores_it() {
    let net = network(&NODES);
    assert_eq!(net.backend(), "netns");
    let grudge = Grudge::from([(1, BTreeSet::from([2]))]);
    net.apply_grudge(&grudge).unwrap();
    assert_reachability(&net, &[(1, 2)], ErrorKind::TimedOut);
    net.heal().unwrap();
    assert_reachability(&net, &[], ErrorKind::TimedOut);
}

#[test]
fn a_new_grudge_replaces_the_previous_one() {
    let net = network(&NODES);
    net.apply_grudge(&grudge::isolate(&NODES, 1)).unwrap();
    assert_reachability(&net, &[(1, 2), (1, 3)], ErrorKind::TimedOut);
    net.apply_grudge(&grudge::from_groups(&NODES, &[vec![1, 2], vec![3]]))
        .unwrap();
    assert_reachability(&net, &[(1, 3), (2, 3)], ErrorKind::TimedOut);
}

#[test]
fn reset_mode_refuses_cut_connections_at_once() {
    let mut net = network(&NODES);
    net.set_cut_mode(CutMode::Reset);
    net.apply_grudge(&grudge::isolate(&NODES, 3)).unwrap();
    assert_reachability(&net, &[(1, 3), (2, 3)], ErrorKind::ConnectionRefused);
}

/// An accepted connection from `from` to `to`: (dialer's end, acceptor's end).
fn connection(net: &NetnsNetwork, from: NodeId, to: NodeId) -> (TcpStream, TcpStream) {
    let listener = listen(net, to);
    let dialer = dial(
        net,
        Some(from),
        listener.local_addr().unwrap(),
        CONNECT_WAIT,
    )
    .unwrap();
    let (acceptor, _) = listener.accept().unwrap();
    (dialer, acceptor)
}

/// One read that gives up after `wait`. A signal (tokio's SIGCHLD handler,
/// for one) interrupts a socket read that has a timeout even under
/// `SA_RESTART`, so interrupted reads are retried.
fn read_within(stream: &mut TcpStream, wait: Duration, buf: &mut [u8]) -> std::io::Result<usize> {
    stream.set_read_timeout(Some(wait))?;
    loop {
        match stream.read(buf) {
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

#[test]
fn drop_mode_stalls_an_open_connection_which_resumes_after_heal() {
    let net = network(&NODES);
    let (mut dialer, mut acceptor) = connection(&net, 1, 2);
    net.apply_grudge(&grudge::isolate(&NODES, 2)).unwrap();
    dialer.write_all(b"x").unwrap();
    let mut byte = [0u8; 1];
    let stalled = read_within(&mut acceptor, CUT_WAIT, &mut byte).unwrap_err();
    assert!(
        matches!(stalled.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
        "{stalled}"
    );
    net.heal().unwrap();
    // TCP retransmits on its own schedule; the byte arrives intact.
    acceptor
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    acceptor.read_exact(&mut byte).unwrap();
    assert_eq!(&byte, b"x");
}

#[test]
fn reset_mode_kills_an_open_connection() {
    let mut net = network(&NODES);
    net.set_cut_mode(CutMode::Reset);
    let (mut dialer, _acceptor) = connection(&net, 1, 2);
    net.apply_grudge(&grudge::isolate(&NODES, 2)).unwrap();
    dialer.write_all(b"x").unwrap();
    let error = read_within(&mut dialer, CONNECT_WAIT, &mut [0u8; 1]).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::ConnectionReset, "{error}");
}

#[test]
fn grudges_and_lookups_naming_unknown_nodes_are_refused() {
    let net = network(&NODES[..2]);
    let grudge = Grudge::from([(1, BTreeSet::from([9]))]);
    assert!(matches!(
        net.apply_grudge(&grudge),
        Err(NetFaultError::UnknownNode(9))
    ));
    assert_eq!(net.node_ip(9), None);
    assert!(matches!(
        net.wrap(9, ProcessSpec::new("true", ["x"], "/dev/null")),
        Err(NetnsError::UnknownNode(9))
    ));
    assert!(matches!(
        net.run_in(9, || ()),
        Err(NetnsError::UnknownNode(9))
    ));
}

#[test]
fn bad_node_lists_are_refused_before_anything_is_created() {
    assert!(matches!(
        NetnsNetwork::create(&[]),
        Err(NetnsError::NoNodes)
    ));
    assert!(matches!(
        NetnsNetwork::create(&[1, 2, 1]),
        Err(NetnsError::DuplicateNode(1))
    ));
    let many: Vec<NodeId> = (0..300).collect();
    assert!(matches!(
        NetnsNetwork::create(&many),
        Err(NetnsError::TooManyNodes { count: 300 })
    ));
}

#[test]
fn drop_removes_every_namespace_link_and_rule_it_created() {
    let net = network(&NODES);
    let tag = net.tag().to_string();
    net.apply_grudge(&grudge::isolate(&NODES, 1)).unwrap();
    let before = leftovers(&tag);
    // Three namespaces, three veths and the bridge at least.
    assert!(before.len() >= 7, "{before:#?}");
    drop(net);
    assert_eq!(leftovers(&tag), Vec::<String>::new());
}

#[test]
fn a_panicking_test_still_removes_its_network() {
    let mut tag = String::new();
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let net = network(&NODES);
        tag = net.tag().to_string();
        panic!("a test failing while {} exists", net.bridge());
    }));
    assert!(outcome.is_err());
    assert!(!tag.is_empty());
    assert_eq!(leftovers(&tag), Vec::<String>::new());
}

#[test]
fn networks_built_at_once_get_their_own_names_and_subnets() {
    network(&[1]); // Fails clearly if this host cannot run the tests.
    const AT_ONCE: usize = 4;
    let start = std::sync::Barrier::new(AT_ONCE);
    let nets: Vec<NetnsNetwork> = std::thread::scope(|s| {
        let threads: Vec<_> = (0..AT_ONCE)
            .map(|_| {
                s.spawn(|| {
                    start.wait();
                    NetnsNetwork::create(&NODES).unwrap()
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    });
    let tags: BTreeSet<&str> = nets.iter().map(NetnsNetwork::tag).collect();
    let host_ips: BTreeSet<IpAddr> = nets.iter().map(NetnsNetwork::host_ip).collect();
    assert_eq!(tags.len(), AT_ONCE);
    assert_eq!(host_ips.len(), AT_ONCE, "two networks share a subnet");
    // They work, and a partition in one leaves another alone.
    nets[0].apply_grudge(&grudge::isolate(&NODES, 1)).unwrap();
    assert_reachability(&nets[0], &[(1, 2), (1, 3)], ErrorKind::TimedOut);
    assert_reachability(&nets[1], &[], ErrorKind::TimedOut);
}

/// A server that prints its own pid, then listens on the node's address.
const PY_SERVER: &str = "import os, socket, sys, time
s = socket.socket()
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen()
print('pid', os.getpid(), flush=True)
print('kvd ready', flush=True)
time.sleep(60)";

/// The scheduler state of a process (`S`, `T`...), if it exists.
fn proc_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(") ")
        .and_then(|(_, rest)| rest.chars().next())
}

#[tokio::test]
async fn a_wrapped_server_runs_in_its_namespace_under_the_pid_we_signal() {
    let net = network(&NODES);
    let dir = tempfile::tempdir().unwrap();
    let ip = net.node_ip(2).unwrap();
    let mut spec = ProcessSpec::new(
        "python3",
        ["-c", PY_SERVER, &ip.to_string(), "7411"],
        dir.path().join("node2.log"),
    );
    spec.ready_timeout = Duration::from_secs(10);
    let mut server = ManagedProcess::start(net.wrap(2, spec).unwrap())
        .await
        .unwrap();
    let pid = server.pid().unwrap();

    // `ip netns exec` exec'd python in place: the pid we hold is python's.
    let log = std::fs::read_to_string(dir.path().join("node2.log")).unwrap();
    assert!(
        log.contains(&format!("pid {pid}\n")),
        "pid {pid}, log:\n{log}"
    );
    // And it lives in node 2's namespace, reachable from the host and node 1.
    let ns = std::fs::metadata(format!("/proc/{pid}/ns/net")).unwrap();
    let expected =
        std::fs::metadata(format!("/var/run/netns/{}", net.namespace(2).unwrap())).unwrap();
    assert_eq!(ns.ino(), expected.ino());
    let addr = SocketAddr::new(ip, 7411);
    dial(&net, None, addr, CONNECT_WAIT).unwrap();
    dial(&net, Some(1), addr, CONNECT_WAIT).unwrap();

    // Signals reach the server itself.
    server.pause().unwrap();
    let mut state = proc_state(pid);
    for _ in 0..200 {
        if state == Some('T') {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        state = proc_state(pid);
    }
    assert_eq!(state, Some('T'));
    server.resume().unwrap();
    server.kill().await.unwrap();
    assert_eq!(proc_state(pid), None);
}
