//! `faultline kvd`: the `faultline` binary acting as a `kvd` node.
//!
//! `faultline test` starts its servers by running its own executable with
//! this subcommand, so `cargo run -p harness -- test` needs nothing else
//! built and always tests the server compiled beside it. The flags are
//! exactly `kvd`'s; `--server-bin` swaps in another build.

use std::process::ExitCode;

/// Runs one kvd node until SIGTERM or SIGINT, with `kvd`'s exit codes.
pub fn run(args: server::KvdArgs) -> ExitCode {
    server::entry::main(args)
}
