//! `kvd`: one node of a Raft-replicated key/value group. See `kvd --help`
//! and the `server` crate docs.
//!
//! Exit codes: 0 after a graceful shutdown (SIGTERM/SIGINT), 1 when the node
//! fails (unusable data directory, address in use, storage error), 2 for a
//! bad configuration.

use std::process::ExitCode;

use clap::Parser;
use server::KvdArgs;

fn main() -> ExitCode {
    server::entry::main(KvdArgs::parse())
}
