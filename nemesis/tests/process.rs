//! Process control against small shell scripts standing in for kvd.
#![cfg(target_os = "linux")]

use std::path::Path;
use std::time::Duration;

use nemesis::{ManagedProcess, ProcessError, ProcessSpec};

fn script(dir: &Path, body: &str) -> ProcessSpec {
    let mut spec = ProcessSpec::new("/bin/sh", ["-c", body], dir.join("node.log"));
    spec.ready_timeout = Duration::from_secs(5);
    spec
}

/// A server stand-in: announces readiness, then idles.
const SERVER: &str = "echo starting; echo 'kvd ready' >&2; exec sleep 60";

/// The scheduler state letter of a process (`S`, `T`, `Z`...), or `None`
/// once it is gone.
fn proc_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The state follows the parenthesised command name.
    stat.rsplit_once(") ")
        .and_then(|(_, rest)| rest.chars().next())
}

#[tokio::test]
async fn start_waits_for_the_ready_line_and_kill_reaps_the_process() {
    let dir = tempfile::tempdir().unwrap();
    let mut process = ManagedProcess::start(script(dir.path(), SERVER))
        .await
        .unwrap();
    let pid = process.pid().unwrap();
    assert!(process.is_running());
    let log = std::fs::read_to_string(dir.path().join("node.log")).unwrap();
    assert!(
        log.contains("starting") && log.contains("kvd ready"),
        "{log}"
    );

    let status = process.kill().await.unwrap();
    assert!(!status.success());
    assert!(!process.is_running());
    assert_eq!(process.pid(), None);
    assert_eq!(proc_state(pid), None, "killed process still present");
    assert!(matches!(
        process.pause(),
        Err(ProcessError::NotRunning { .. })
    ));
}

#[tokio::test]
async fn pause_stops_the_process_and_resume_continues_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut process = ManagedProcess::start(script(dir.path(), SERVER))
        .await
        .unwrap();
    let pid = process.pid().unwrap();
    process.pause().unwrap();
    assert!(process.is_paused());
    assert_eq!(wait_for_state(pid, |s| s == 'T').await, Some('T'));
    process.resume().unwrap();
    assert!(!process.is_paused());
    let state = wait_for_state(pid, |s| s != 'T').await;
    assert!(
        matches!(state, Some('S' | 'R')),
        "state {state:?} after SIGCONT"
    );
    // A paused process can still be killed.
    process.pause().unwrap();
    process.kill().await.unwrap();
}

async fn wait_for_state(pid: u32, done: impl Fn(char) -> bool) -> Option<char> {
    for _ in 0..200 {
        match proc_state(pid) {
            Some(s) if done(s) => return Some(s),
            None => return None,
            _ => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
    proc_state(pid)
}

#[tokio::test]
async fn terminate_lets_the_process_exit_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let body =
        "trap 'echo bye; exit 0' TERM; echo 'kvd ready' >&2; while true; do sleep 0.05; done";
    let mut process = ManagedProcess::start(script(dir.path(), body))
        .await
        .unwrap();
    let status = process.terminate(Duration::from_secs(5)).await.unwrap();
    assert!(status.success(), "{status}");
    let log = std::fs::read_to_string(dir.path().join("node.log")).unwrap();
    assert!(log.contains("bye"));
}

#[tokio::test]
async fn terminate_falls_back_to_kill_when_the_process_ignores_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let body = "trap '' TERM; echo 'kvd ready' >&2; while true; do sleep 0.05; done";
    let mut process = ManagedProcess::start(script(dir.path(), body))
        .await
        .unwrap();
    let status = process.terminate(Duration::from_millis(200)).await.unwrap();
    assert!(!status.success());
    assert!(!process.is_running());
}

#[tokio::test]
async fn restart_starts_a_new_process_with_the_same_spec_and_log() {
    let dir = tempfile::tempdir().unwrap();
    let mut process = ManagedProcess::start(script(dir.path(), SERVER))
        .await
        .unwrap();
    let first = process.pid().unwrap();
    process.restart().await.unwrap();
    let second = process.pid().unwrap();
    assert_ne!(first, second);
    assert_eq!(process.starts(), 2);
    assert_eq!(proc_state(first), None);

    process.kill().await.unwrap();
    process.start_again().await.unwrap();
    assert_eq!(process.starts(), 3);
    let log = std::fs::read_to_string(dir.path().join("node.log")).unwrap();
    assert_eq!(log.matches("=== nemesis: start #").count(), 3);
    assert_eq!(log.lines().filter(|l| *l == "kvd ready").count(), 3);
}

#[tokio::test]
async fn a_process_that_exits_before_ready_reports_its_log() {
    let dir = tempfile::tempdir().unwrap();
    let err = ManagedProcess::start(script(dir.path(), "echo 'cannot bind port' >&2; exit 3"))
        .await
        .err()
        .unwrap();
    match err {
        ProcessError::ExitedBeforeReady {
            status, log_tail, ..
        } => {
            assert_eq!(status.code(), Some(3));
            assert!(log_tail.contains("cannot bind port"), "{log_tail}");
        }
        other => panic!("unexpected error: {other}"),
    }
}

#[tokio::test]
async fn a_process_that_never_gets_ready_is_killed_after_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = script(dir.path(), "echo 'still loading'; exec sleep 60");
    spec.ready_timeout = Duration::from_millis(300);
    let err = ManagedProcess::start(spec).await.err().unwrap();
    assert!(
        matches!(err, ProcessError::NotReady { ref log_tail, .. } if log_tail.contains("still loading")),
        "{err}"
    );
}

#[tokio::test]
async fn dropping_the_handle_kills_the_process() {
    let dir = tempfile::tempdir().unwrap();
    let process = ManagedProcess::start(script(dir.path(), SERVER))
        .await
        .unwrap();
    let pid = process.pid().unwrap();
    drop(process);
    // Gone, or a zombie awaiting tokio's background reaper: not running.
    let state = wait_for_state(pid, |s| s == 'Z').await;
    assert!(matches!(state, None | Some('Z')), "state {state:?}");
}

#[tokio::test]
async fn a_missing_program_is_a_spawn_error() {
    let dir = tempfile::tempdir().unwrap();
    let spec = ProcessSpec::new("/nonexistent/kvd", ["--id", "1"], dir.path().join("log"));
    let err = ManagedProcess::start(spec).await.err().unwrap();
    assert!(matches!(err, ProcessError::Spawn { .. }), "{err}");
}
