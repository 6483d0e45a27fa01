//! What every exactly-once client shares: a client id, the write counter,
//! options and retry jitter, on top of a [`ClusterClient`].

use rand::SeedableRng;
use rand::rngs::ChaCha8Rng;
use wire::{ClientId, Op};

use crate::cluster::{ClusterClient, Extract};
use crate::error::ClerkError;
use crate::options::ClerkOptions;

/// One client session against one Raft group. [`crate::Clerk`] (kv) and
/// [`crate::CtrlerClerk`] (controller) are thin typed fronts over it.
pub(crate) struct Session {
    pub(crate) cluster: ClusterClient,
    pub(crate) client_id: ClientId,
    pub(crate) last_seq: u64,
    pub(crate) options: ClerkOptions,
    rng: ChaCha8Rng,
}

impl Session {
    pub(crate) fn new(cluster: ClusterClient, client_id: ClientId, seed: u64) -> Session {
        Session {
            options: cluster.options().clone(),
            cluster,
            client_id,
            last_seq: 0,
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    /// Numbers the next write: every retry of it must reuse this `seq`.
    pub(crate) fn next_seq(&mut self) -> u64 {
        self.last_seq += 1;
        self.last_seq
    }

    /// Runs `op` with the cluster's retry loop and this session's options.
    pub(crate) async fn execute<T>(
        &mut self,
        op: Op,
        kind: &'static str,
        extract: Extract<T>,
    ) -> Result<T, ClerkError> {
        self.cluster
            .execute(op, kind, &self.options, &mut self.rng, extract, None)
            .await
    }
}
