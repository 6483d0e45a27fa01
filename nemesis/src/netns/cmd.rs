//! Running `ip` and `iptables`, with failures that name the command line,
//! its exit status and what it printed on stderr.

use std::io::Write;
use std::process::{Command, Stdio};

use super::NetnsError;

/// Runs `program args...`, feeding `input` on stdin if given, and returns
/// its stdout. A non-zero exit is an error carrying stderr.
pub(super) fn run(program: &str, args: &[&str], input: Option<&str>) -> Result<String, NetnsError> {
    let command_line = || {
        std::iter::once(program)
            .chain(args.iter().copied())
            .collect::<Vec<_>>()
            .join(" ")
    };
    tracing::debug!(command = %command_line(), "netns");
    let mut command = Command::new(program);
    command
        .args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let spawn_error = |source: std::io::Error| {
        if source.kind() == std::io::ErrorKind::NotFound {
            NetnsError::MissingTool {
                tool: program.to_string(),
                source,
            }
        } else {
            NetnsError::Spawn {
                command: command_line(),
                source,
            }
        }
    };
    let mut child = command.spawn().map_err(spawn_error)?;
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        // A write error means the program exited early; its status and
        // stderr below say why.
        let _ = stdin.write_all(text.as_bytes());
    }
    let output = child
        .wait_with_output()
        .map_err(|source| NetnsError::Spawn {
            command: command_line(),
            source,
        })?;
    if !output.status.success() {
        return Err(NetnsError::Command {
            command: command_line(),
            status: output.status,
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// `ip args...`.
pub(super) fn ip(args: &[&str]) -> Result<String, NetnsError> {
    run("ip", args, None)
}

/// `ip netns exec NAMESPACE program args...`: runs a command inside a
/// namespace.
pub(super) fn in_namespace(
    namespace: &str,
    program: &str,
    args: &[&str],
    input: Option<&str>,
) -> Result<String, NetnsError> {
    let mut full = vec!["netns", "exec", namespace, program];
    full.extend_from_slice(args);
    run("ip", &full, input)
}
