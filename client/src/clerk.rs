//! The Clerk: one client session with exactly-once writes.

use wire::{ClientId, Op, Reply};

use crate::cluster::{ClusterClient, expect_ok};
use crate::error::ClerkError;
use crate::options::ClerkOptions;
use crate::session::Session;

/// One logical client of a kvd group: `get`, `put` and `append`, each
/// retried until it succeeds, fails definitely, or runs out of time.
///
/// A Clerk is a session: writes carry `(client_id, seq)`, `seq` grows by one
/// per write, and every retry of a write resends the same `seq`, so the
/// servers apply it once however many attempts reach them. Methods take
/// `&mut self` because the protocol allows one outstanding write per session;
/// run concurrent clients as separate Clerks (they share connections through
/// their [`ClusterClient`]).
pub struct Clerk {
    session: Session,
}

impl Clerk {
    /// A Clerk on a fresh [`ClusterClient`] of its own: the quick way to get
    /// one client. Use [`ClusterClient::clerk`] for many.
    pub fn new<S: Into<String>>(
        servers: impl IntoIterator<Item = S>,
        options: ClerkOptions,
    ) -> Result<Clerk, ClerkError> {
        Ok(ClusterClient::new(servers, options)?.clerk())
    }

    pub(crate) fn new_with(cluster: ClusterClient, client_id: ClientId, seed: u64) -> Clerk {
        Clerk {
            session: Session::new(cluster, client_id, seed),
        }
    }

    /// This session's client id.
    pub fn client_id(&self) -> ClientId {
        self.session.client_id
    }

    /// The `seq` of the last write issued (0 before the first).
    pub fn last_seq(&self) -> u64 {
        self.session.last_seq
    }

    /// The shared cluster handle (for admin calls).
    pub fn cluster(&self) -> &ClusterClient {
        &self.session.cluster
    }

    /// This Clerk's options, e.g. to tighten the deadline of the next call.
    pub fn options_mut(&mut self) -> &mut ClerkOptions {
        &mut self.session.options
    }

    /// Reads `key` linearizably; `None` when the key is absent.
    pub async fn get(&mut self, key: &str) -> Result<Option<String>, ClerkError> {
        let op = Op::Get {
            key: key.to_string(),
        };
        self.session
            .execute(op, "get", |reply| match reply {
                Reply::Value { value } => Ok(value),
                other => Err(Box::new(other)),
            })
            .await
    }

    /// Sets `key` to `value`, exactly once.
    pub async fn put(&mut self, key: &str, value: &str) -> Result<(), ClerkError> {
        let op = Op::Put {
            key: key.to_string(),
            value: value.to_string(),
            client_id: self.session.client_id,
            seq: self.session.next_seq(),
        };
        self.session.execute(op, "put", expect_ok).await
    }

    /// Appends `value` to `key` (absent counts as empty), exactly once.
    pub async fn append(&mut self, key: &str, value: &str) -> Result<(), ClerkError> {
        let op = Op::Append {
            key: key.to_string(),
            value: value.to_string(),
            client_id: self.session.client_id,
            seq: self.session.next_seq(),
        };
        self.session.execute(op, "append", expect_ok).await
    }
}
