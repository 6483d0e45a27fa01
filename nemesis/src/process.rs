//! Server processes under test: start, wait until ready, kill, pause,
//! resume, terminate, restart.
//!
//! A [`ManagedProcess`] starts a program with fixed arguments, sends its
//! stdout and stderr to a log file (appended to across restarts, each start
//! marked by a header line), and waits for a readiness marker in that log
//! (kvd prints `kvd ready`). Signals go only to the process id we started,
//! and only while we have not reaped it, so a recycled pid is never hit; no
//! process is ever looked up by name. Dropping a `ManagedProcess` kills what
//! it started.

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use rustix::process::{Pid, Signal, kill_process};
use tokio::process::{Child, Command};
use tokio::time::Instant;

/// How often the log is polled for the readiness marker.
const READY_POLL: Duration = Duration::from_millis(10);
/// Lines of log quoted in errors.
const LOG_TAIL_LINES: usize = 20;

/// Why a process operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// The program could not be started.
    #[error("cannot start {program}: {source}")]
    Spawn {
        /// The program.
        program: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The log file could not be opened or read.
    #[error("log file {path}: {source}")]
    Log {
        /// The log file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The process exited before printing its readiness marker.
    #[error("{program} exited ({status}) before it was ready; last log lines:\n{log_tail}")]
    ExitedBeforeReady {
        /// The program.
        program: PathBuf,
        /// How it exited.
        status: ExitStatus,
        /// The end of its log.
        log_tail: String,
    },
    /// The marker did not appear in time (the process is killed).
    #[error("{program} did not print {marker:?} within {waited:?}; last log lines:\n{log_tail}")]
    NotReady {
        /// The program.
        program: PathBuf,
        /// The marker waited for.
        marker: String,
        /// How long we waited.
        waited: Duration,
        /// The end of its log.
        log_tail: String,
    },
    /// The operation needs a running process and there is none.
    #[error("{program} is not running")]
    NotRunning {
        /// The program.
        program: PathBuf,
    },
    /// Sending a signal failed.
    #[error("cannot send {signal} to pid {pid}: {source}")]
    Signal {
        /// The signal's name.
        signal: &'static str,
        /// The process id.
        pid: u32,
        /// The OS error.
        source: std::io::Error,
    },
    /// Waiting for the process to exit failed.
    #[error("cannot wait for {program}: {source}")]
    Wait {
        /// The program.
        program: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

/// Everything needed to start (and restart) one server process the same way.
#[derive(Debug, Clone)]
pub struct ProcessSpec {
    /// The executable.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<OsString>,
    /// Extra environment variables.
    pub env: Vec<(OsString, OsString)>,
    /// Where stdout and stderr go (appended).
    pub log_path: PathBuf,
    /// Text whose appearance in the log means the process is ready; `None`
    /// to consider it ready once started.
    pub ready_marker: Option<String>,
    /// How long to wait for the marker.
    pub ready_timeout: Duration,
}

impl ProcessSpec {
    /// A spec for `program args...` logging to `log_path`, ready on `kvd ready`
    /// within 10 s.
    pub fn new(
        program: impl Into<PathBuf>,
        args: impl IntoIterator<Item = impl Into<OsString>>,
        log_path: impl Into<PathBuf>,
    ) -> Self {
        ProcessSpec {
            program: program.into(),
            args: args.into_iter().map(Into::into).collect(),
            env: Vec::new(),
            log_path: log_path.into(),
            ready_marker: Some("kvd ready".to_string()),
            ready_timeout: Duration::from_secs(10),
        }
    }
}

/// One server process we own; see the module docs.
pub struct ManagedProcess {
    spec: ProcessSpec,
    child: Option<Child>,
    starts: u32,
    paused: bool,
}

impl ManagedProcess {
    /// Starts the process and waits until it is ready.
    pub async fn start(spec: ProcessSpec) -> Result<ManagedProcess, ProcessError> {
        let mut process = ManagedProcess {
            spec,
            child: None,
            starts: 0,
            paused: false,
        };
        process.spawn_and_wait().await?;
        Ok(process)
    }

    /// The spec it was started with.
    pub fn spec(&self) -> &ProcessSpec {
        &self.spec
    }

    /// How many times it has been started.
    pub fn starts(&self) -> u32 {
        self.starts
    }

    /// The pid of the running process, if any.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    /// Whether the process is alive (paused counts as alive). Reaps it if it
    /// has exited.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut().map(Child::try_wait) {
            Some(Ok(None)) => true,
            Some(Ok(Some(_)) | Err(_)) => {
                self.child = None;
                false
            }
            None => false,
        }
    }

    /// Whether it was paused with [`ManagedProcess::pause`] and not resumed.
    pub fn is_paused(&self) -> bool {
        self.paused
    }

    /// SIGKILL, then waits for the exit. Killing a stopped process works.
    pub async fn kill(&mut self) -> Result<ExitStatus, ProcessError> {
        self.signal(Signal::KILL, "SIGKILL")?;
        self.reap().await
    }

    /// SIGSTOP: the process freezes, its sockets stay open.
    pub fn pause(&mut self) -> Result<(), ProcessError> {
        self.signal(Signal::STOP, "SIGSTOP")?;
        self.paused = true;
        Ok(())
    }

    /// SIGCONT after a pause.
    pub fn resume(&mut self) -> Result<(), ProcessError> {
        self.signal(Signal::CONT, "SIGCONT")?;
        self.paused = false;
        Ok(())
    }

    /// SIGTERM (resuming a paused process first, or it could not act on
    /// it), then waits up to `grace` for a clean exit before SIGKILL.
    pub async fn terminate(&mut self, grace: Duration) -> Result<ExitStatus, ProcessError> {
        if self.paused {
            self.resume()?;
        }
        self.signal(Signal::TERM, "SIGTERM")?;
        let program = self.spec.program.clone();
        let child = self.child.as_mut().ok_or(ProcessError::NotRunning {
            program: program.clone(),
        })?;
        match tokio::time::timeout(grace, child.wait()).await {
            Ok(status) => {
                self.child = None;
                status.map_err(|source| ProcessError::Wait { program, source })
            }
            Err(_) => self.kill().await,
        }
    }

    /// Kills the process if it runs, then starts it again with the same
    /// program, arguments and log, and waits until it is ready.
    pub async fn restart(&mut self) -> Result<(), ProcessError> {
        if self.is_running() {
            self.kill().await?;
        }
        self.spawn_and_wait().await
    }

    /// Starts it again after it was killed or exited; does nothing if it
    /// is running.
    pub async fn start_again(&mut self) -> Result<(), ProcessError> {
        if self.is_running() {
            return Ok(());
        }
        self.spawn_and_wait().await
    }

    fn signal(&mut self, signal: Signal, name: &'static str) -> Result<(), ProcessError> {
        let program = self.spec.program.clone();
        // `id()` is `None` once the child has been reaped, so a pid we got
        // here is still ours and cannot have been recycled.
        let pid = self.pid().ok_or(ProcessError::NotRunning { program })?;
        let raw = i32::try_from(pid).ok().and_then(Pid::from_raw);
        let Some(target) = raw else {
            return Err(ProcessError::Signal {
                signal: name,
                pid,
                source: std::io::Error::from(std::io::ErrorKind::InvalidInput),
            });
        };
        kill_process(target, signal).map_err(|errno| ProcessError::Signal {
            signal: name,
            pid,
            source: errno.into(),
        })
    }

    async fn reap(&mut self) -> Result<ExitStatus, ProcessError> {
        let program = self.spec.program.clone();
        let mut child = self.child.take().ok_or(ProcessError::NotRunning {
            program: program.clone(),
        })?;
        self.paused = false;
        child
            .wait()
            .await
            .map_err(|source| ProcessError::Wait { program, source })
    }

    async fn spawn_and_wait(&mut self) -> Result<(), ProcessError> {
        let spec = &self.spec;
        let log_error = |source| ProcessError::Log {
            path: spec.log_path.clone(),
            source,
        };
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&spec.log_path)
            .map_err(log_error)?;
        self.starts += 1;
        writeln!(
            log,
            "=== nemesis: start #{} of {} {:?}",
            self.starts,
            spec.program.display(),
            spec.args
        )
        .map_err(log_error)?;
        let offset = log.metadata().map_err(log_error)?.len();
        let stderr = log.try_clone().map_err(log_error)?;
        let mut command = Command::new(&spec.program);
        command
            .args(&spec.args)
            .envs(spec.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(stderr))
            .kill_on_drop(true);
        let child = command.spawn().map_err(|source| ProcessError::Spawn {
            program: spec.program.clone(),
            source,
        })?;
        self.child = Some(child);
        self.paused = false;
        let Some(marker) = self.spec.ready_marker.clone() else {
            return Ok(());
        };
        let started = Instant::now();
        loop {
            let output =
                read_from(&self.spec.log_path, offset).map_err(|source| ProcessError::Log {
                    path: self.spec.log_path.clone(),
                    source,
                })?;
            if output.contains(&marker) {
                return Ok(());
            }
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                self.child = None;
                return Err(ProcessError::ExitedBeforeReady {
                    program: self.spec.program.clone(),
                    status,
                    log_tail: tail(&output),
                });
            }
            if started.elapsed() >= self.spec.ready_timeout {
                // Best effort: the process is useless to the caller now.
                let _ = self.kill().await;
                return Err(ProcessError::NotReady {
                    program: self.spec.program.clone(),
                    marker,
                    waited: self.spec.ready_timeout,
                    log_tail: tail(&output),
                });
            }
            tokio::time::sleep(READY_POLL).await;
        }
    }
}

impl Drop for ManagedProcess {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            // SIGKILL; tokio reaps the orphan in the background.
            let _ = child.start_kill();
        }
    }
}

/// The log from byte `offset` on, lossily decoded.
fn read_from(path: &std::path::Path, offset: u64) -> std::io::Result<String> {
    let mut file = File::open(path)?;
    file.seek(SeekFrom::Start(offset))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

fn tail(output: &str) -> String {
    let lines: Vec<&str> = output.lines().collect();
    lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n")
}
