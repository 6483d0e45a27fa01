//! Requests the leader has started but not yet answered.
//!
//! **Writes** are proposed into the log and remembered by `(index, term)`.
//! When the entry at `index` is applied, the write is answered with what the
//! state machine said if the entry is ours (same term), and `timeout` if
//! another leader's entry took the slot (ours can then never apply there; the
//! client retries with the same session, which is safe either way).
//!
//! **Reads** use ReadIndex. Gets that arrive together share one read-index
//! round (`ctx`): the round's index is taken when the first of them arrives,
//! and the batch is closed before any later write could be acknowledged, so
//! every get in it observes every write completed before it was sent. A
//! confirmed batch is served once the state machine has applied its index.
//!
//! Both kinds carry a deadline and are answered `timeout` when it passes, so a
//! leader cut off in a minority never leaves a client hanging.

use std::collections::{BTreeMap, VecDeque};
use std::time::Instant;

use raft::{Index, ReadState, Term};
use wire::Reply;

use crate::responder::Responder;
use crate::state_machine::StateMachine;

#[derive(Debug)]
struct PendingWrite {
    index: Index,
    term: Term,
    deadline: Instant,
    responder: Responder,
}

/// Proposed writes in log order.
#[derive(Debug, Default)]
pub(crate) struct PendingWrites {
    queue: VecDeque<PendingWrite>,
}

impl PendingWrites {
    /// Remembers a write proposed at `(index, term)`.
    pub(crate) fn push(
        &mut self,
        index: Index,
        term: Term,
        deadline: Instant,
        responder: Responder,
    ) {
        self.queue.push_back(PendingWrite {
            index,
            term,
            deadline,
            responder,
        });
    }

    /// The entry at `(index, term)` was applied with result `reply` (`None`
    /// for a no-op). Answers the write proposed there, and any older ones,
    /// which were overwritten.
    pub(crate) fn applied(&mut self, index: Index, term: Term, reply: Option<&Reply>) {
        while let Some(front) = self.queue.front() {
            if front.index > index {
                return;
            }
            let Some(w) = self.queue.pop_front() else {
                return;
            };
            match reply {
                Some(reply) if w.index == index && w.term == term => {
                    w.responder.reply(reply.clone())
                }
                _ => w.responder.reply(Reply::Timeout),
            }
        }
    }

    /// Answers `timeout` to writes whose deadline has passed. Deadlines grow
    /// with the index (both follow arrival order), so only the front matters.
    pub(crate) fn expire(&mut self, now: Instant) {
        while self.queue.front().is_some_and(|w| w.deadline <= now) {
            if let Some(w) = self.queue.pop_front() {
                w.responder.reply(Reply::Timeout);
            }
        }
    }

    /// Answers every pending write with `reply`.
    pub(crate) fn fail_all(&mut self, reply: &Reply) {
        for w in self.queue.drain(..) {
            w.responder.reply(reply.clone());
        }
    }

    /// Number of writes awaiting their entry.
    pub(crate) fn len(&self) -> usize {
        self.queue.len()
    }
}

/// Reads sharing one read-index round.
#[derive(Debug)]
struct ReadBatch<Q> {
    deadline: Instant,
    gets: Vec<(Q, Responder)>,
}

impl<Q> ReadBatch<Q> {
    fn serve<S: StateMachine<Query = Q>>(self, state: &S) {
        for (query, responder) in self.gets {
            responder.reply(state.read(&query));
        }
    }

    fn fail(self, reply: &Reply) {
        for (_, responder) in self.gets {
            responder.reply(reply.clone());
        }
    }
}

/// Linearizable reads (`get`, `query`: whatever the state machine's
/// [`StateMachine::Query`] is) in their three stages.
#[derive(Debug)]
pub(crate) struct PendingReads<S: StateMachine> {
    next_ctx: u64,
    /// The batch still taking reads: its round has been asked of Raft but
    /// its heartbeat has not gone out.
    open: Option<(u64, ReadBatch<S::Query>)>,
    /// Rounds waiting for a quorum to confirm leadership, by ctx.
    confirming: BTreeMap<u64, ReadBatch<S::Query>>,
    /// Confirmed rounds waiting for the state machine to reach their index.
    confirmed: VecDeque<(Index, ReadBatch<S::Query>)>,
}

impl<S: StateMachine> Default for PendingReads<S> {
    fn default() -> Self {
        PendingReads {
            next_ctx: 0,
            open: None,
            confirming: BTreeMap::new(),
            confirmed: VecDeque::new(),
        }
    }
}

impl<S: StateMachine> PendingReads<S> {
    /// Adds a get to the open batch if there is one; otherwise hands the get
    /// back with the ctx for a new round, which the caller must start with
    /// `RawNode::read_index` and then [`PendingReads::open`].
    pub(crate) fn join_open(
        &mut self,
        query: S::Query,
        responder: Responder,
    ) -> Result<(), (u64, S::Query, Responder)> {
        match &mut self.open {
            Some((_, batch)) => {
                batch.gets.push((query, responder));
                Ok(())
            }
            None => {
                self.next_ctx += 1;
                Err((self.next_ctx, query, responder))
            }
        }
    }

    /// Opens the batch for round `ctx` with its first get.
    pub(crate) fn open(
        &mut self,
        ctx: u64,
        deadline: Instant,
        query: S::Query,
        responder: Responder,
    ) {
        self.close();
        self.open = Some((
            ctx,
            ReadBatch {
                deadline,
                gets: vec![(query, responder)],
            },
        ));
    }

    /// Closes the open batch: gets arriving from now on start a new round.
    pub(crate) fn close(&mut self) {
        if let Some((ctx, batch)) = self.open.take() {
            self.confirming.insert(ctx, batch);
        }
    }

    /// Raft confirmed round `rs.ctx` at `rs.index`; serves it now if the
    /// state machine is there (`applied`), or queues it.
    pub(crate) fn confirmed(&mut self, rs: ReadState, applied: Index, state: &S) {
        let batch = match self.open.take_if(|(ctx, _)| *ctx == rs.ctx) {
            Some((_, batch)) => batch,
            None => match self.confirming.remove(&rs.ctx) {
                Some(batch) => batch,
                // Already answered (timed out, or failed on a role change).
                None => return,
            },
        };
        if rs.index <= applied {
            batch.serve(state);
        } else {
            let at = self.confirmed.partition_point(|(i, _)| *i <= rs.index);
            self.confirmed.insert(at, (rs.index, batch));
        }
    }

    /// The state machine reached `applied`: serves the rounds waiting for it.
    pub(crate) fn serve_applied(&mut self, applied: Index, state: &S) {
        while self.confirmed.front().is_some_and(|(i, _)| *i <= applied) {
            if let Some((_, batch)) = self.confirmed.pop_front() {
                batch.serve(state);
            }
        }
    }

    /// Answers `timeout` to rounds whose deadline has passed.
    pub(crate) fn expire(&mut self, now: Instant) {
        let timeout = Reply::Timeout;
        if self.open.as_ref().is_some_and(|(_, b)| b.deadline <= now)
            && let Some((_, batch)) = self.open.take()
        {
            batch.fail(&timeout);
        }
        let expired: Vec<u64> = self
            .confirming
            .iter()
            .filter(|(_, b)| b.deadline <= now)
            .map(|(ctx, _)| *ctx)
            .collect();
        for ctx in expired {
            if let Some(batch) = self.confirming.remove(&ctx) {
                batch.fail(&timeout);
            }
        }
        let (expired, kept): (VecDeque<_>, VecDeque<_>) = std::mem::take(&mut self.confirmed)
            .into_iter()
            .partition(|(_, b)| b.deadline <= now);
        self.confirmed = kept;
        for (_, batch) in expired {
            batch.fail(&timeout);
        }
    }

    /// Fails the rounds Raft has not confirmed (it drops them when the node
    /// loses leadership). Confirmed rounds stay: their index is still valid.
    pub(crate) fn fail_unconfirmed(&mut self, reply: &Reply) {
        if let Some((_, batch)) = self.open.take() {
            batch.fail(reply);
        }
        for (_, batch) in std::mem::take(&mut self.confirming) {
            batch.fail(reply);
        }
    }

    /// Answers every pending read with `reply`.
    pub(crate) fn fail_all(&mut self, reply: &Reply) {
        self.fail_unconfirmed(reply);
        for (_, batch) in self.confirmed.drain(..) {
            batch.fail(reply);
        }
    }

    /// Number of read rounds in progress.
    pub(crate) fn rounds(&self) -> usize {
        usize::from(self.open.is_some()) + self.confirming.len() + self.confirmed.len()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use tokio::sync::{Semaphore, mpsc};
    use wire::Response;

    use super::*;
    use crate::kv::{Command, KvStore};

    struct Answers {
        tx: mpsc::UnboundedSender<Response>,
        rx: mpsc::UnboundedReceiver<Response>,
        slots: Arc<Semaphore>,
    }

    impl Answers {
        fn new() -> Self {
            let (tx, rx) = mpsc::unbounded_channel();
            Answers {
                tx,
                rx,
                slots: Arc::new(Semaphore::new(100)),
            }
        }

        fn responder(&self, request_id: u64) -> Responder {
            let slot = self.slots.clone().try_acquire_owned().unwrap();
            Responder::new(request_id, self.tx.clone(), slot)
        }

        /// Every answer so far, by request id.
        fn drain(&mut self) -> BTreeMap<u64, Reply> {
            let mut out = BTreeMap::new();
            while let Ok(r) = self.rx.try_recv() {
                assert!(
                    out.insert(r.request_id, r.reply).is_none(),
                    "answered twice"
                );
            }
            out
        }
    }

    fn later(secs: u64) -> Instant {
        Instant::now() + Duration::from_secs(secs)
    }

    #[test]
    fn a_write_gets_the_state_machines_answer_only_if_its_own_entry_lands() {
        let mut answers = Answers::new();
        let mut writes = PendingWrites::default();
        writes.push(5, 2, later(60), answers.responder(1));
        writes.push(6, 2, later(60), answers.responder(2));
        writes.push(7, 2, later(60), answers.responder(3));
        writes.applied(5, 2, Some(&Reply::Ok));
        // Another leader's no-op took index 6; index 7 is not applied yet.
        writes.applied(6, 3, None);
        let got = answers.drain();
        assert_eq!(got[&1], Reply::Ok);
        assert_eq!(got[&2], Reply::Timeout);
        assert!(!got.contains_key(&3));
        assert_eq!(writes.len(), 1);
        // Applying past a write that was overwritten answers it too.
        writes.applied(9, 3, Some(&Reply::Ok));
        assert_eq!(answers.drain()[&3], Reply::Timeout);
    }

    #[test]
    fn expired_writes_time_out_and_fail_all_answers_the_rest() {
        let mut answers = Answers::new();
        let mut writes = PendingWrites::default();
        let now = Instant::now();
        writes.push(1, 1, now, answers.responder(1));
        writes.push(2, 1, later(60), answers.responder(2));
        writes.expire(now);
        assert_eq!(answers.drain(), BTreeMap::from([(1, Reply::Timeout)]));
        writes.fail_all(&Reply::ShuttingDown);
        assert_eq!(answers.drain(), BTreeMap::from([(2, Reply::ShuttingDown)]));
    }

    #[test]
    fn gets_share_a_round_and_are_served_once_the_index_is_applied() {
        let mut answers = Answers::new();
        let mut kv = KvStore::default();
        let put = Command::Put {
            key: "k".into(),
            value: "v".into(),
            client_id: 1,
            seq: 1,
        };
        kv.apply(&put.encode());
        let mut reads = PendingReads::<KvStore>::default();
        let Err((ctx, key, r)) = reads.join_open("k".into(), answers.responder(1)) else {
            panic!("no round was open");
        };
        reads.open(ctx, later(60), key, r);
        assert!(
            reads
                .join_open("missing".into(), answers.responder(2))
                .is_ok()
        );
        reads.close();
        // The next get needs a new round; dropping it unanswered tells the
        // client the node is going away.
        assert!(reads.join_open("k".into(), answers.responder(3)).is_err());
        assert_eq!(answers.drain(), BTreeMap::from([(3, Reply::ShuttingDown)]));
        reads.confirmed(ReadState { ctx, index: 8 }, 7, &kv);
        assert!(
            answers.drain().is_empty(),
            "served before index 8 was applied"
        );
        reads.serve_applied(8, &kv);
        let got = answers.drain();
        assert_eq!(
            got[&1],
            Reply::Value {
                value: Some("v".into())
            }
        );
        assert_eq!(got[&2], Reply::Value { value: None });
        assert_eq!(reads.rounds(), 0);
    }

    #[test]
    fn losing_leadership_fails_unconfirmed_rounds_but_serves_confirmed_ones() {
        let mut answers = Answers::new();
        let kv = KvStore::default();
        let mut reads = PendingReads::<KvStore>::default();
        for (id, ctx) in [(1, 1), (2, 2)] {
            let Err((c, key, r)) = reads.join_open("k".into(), answers.responder(id)) else {
                panic!("no round was open");
            };
            assert_eq!(c, ctx);
            reads.open(c, later(60), key, r);
            reads.close();
        }
        reads.confirmed(ReadState { ctx: 1, index: 4 }, 3, &kv);
        let wrong = Reply::WrongLeader { leader: None };
        reads.fail_unconfirmed(&wrong);
        assert_eq!(answers.drain(), BTreeMap::from([(2, wrong)]));
        reads.serve_applied(4, &kv);
        assert_eq!(
            answers.drain(),
            BTreeMap::from([(1, Reply::Value { value: None })])
        );
        // A confirmation for a round already answered is ignored.
        reads.confirmed(ReadState { ctx: 2, index: 4 }, 4, &kv);
        assert!(answers.drain().is_empty());
    }
}
