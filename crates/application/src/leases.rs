//! The lease book: how long each live attempt's lease runs, renewed by heartbeats in memory
//! rather than by a durable write per attempt per renewal (ADR 0023).
//!
//! An attempt's lease is written once, when it is assigned. Heartbeats push its deadline on
//! here only; the reaper takes the attempts whose deadline passed from here, earliest first,
//! and checks each against the store before it interrupts it. The book holds one attempt per
//! task, the newest it heard of (fencing tokens only grow), so that a late heartbeat of an
//! attempt that just ended cannot hide its task's next attempt.

use std::collections::{BTreeSet, HashMap};

use maos_domain::{FencingToken, TaskId, Timestamp};

/// One attempt: its task and its fencing token.
pub(crate) type Holder = (TaskId, FencingToken);

/// A task id as two words: a `u128` would align every entry to 16 bytes, and the book holds
/// one per attempt in flight.
type Key = [u64; 2];

fn key(task: TaskId) -> Key {
    let bits = task.bits();
    [(bits >> 64) as u64, bits as u64]
}

fn task_of(key: Key) -> TaskId {
    TaskId::from_bits((u128::from(key[0]) << 64) | u128::from(key[1]))
}

/// The deadlines of live attempts, one per task (its newest attempt: fencing tokens only grow),
/// ordered so that the due ones are found without a scan.
#[derive(Debug, Default)]
pub(crate) struct LeaseBook {
    /// Per task: the fencing token of its newest attempt heard of, and its deadline.
    deadlines: HashMap<Key, (FencingToken, Timestamp)>,
    by_deadline: BTreeSet<(Timestamp, Key)>,
    /// Every attempt live in the store when the book was first used is in it.
    seeded: bool,
}

impl LeaseBook {
    /// The attempt's lease runs at least until `until` (an earlier deadline never shortens
    /// it). An attempt older than the one the book holds for its task is ignored; a newer one
    /// takes its place.
    pub(crate) fn extend(&mut self, (task, fencing): Holder, until: Timestamp) {
        let k = key(task);
        match self.deadlines.get_mut(&k) {
            Some((held, _)) if *held > fencing => {}
            Some((held, deadline)) if *held == fencing && *deadline >= until => {}
            Some((held, deadline)) => {
                self.by_deadline.remove(&(*deadline, k));
                *held = fencing;
                *deadline = until;
                self.by_deadline.insert((until, k));
            }
            None => {
                self.deadlines.insert(k, (fencing, until));
                self.by_deadline.insert((until, k));
            }
        }
    }

    /// When the attempt's lease runs out, if the book holds it.
    pub(crate) fn deadline(&self, (task, fencing): Holder) -> Option<Timestamp> {
        self.deadlines
            .get(&key(task))
            .filter(|(held, _)| *held == fencing)
            .map(|(_, deadline)| *deadline)
    }

    /// At most `limit` attempts whose lease ran out before `now`, earliest first.
    pub(crate) fn due(&self, now: Timestamp, limit: usize) -> Vec<Holder> {
        self.by_deadline
            .iter()
            .take_while(|(deadline, _)| *deadline < now)
            .take(limit)
            .filter_map(|(_, k)| self.deadlines.get(k).map(|(f, _)| (task_of(*k), *f)))
            .collect()
    }

    /// Drops the attempt (it ended, or its lease was found expired and acted on); a newer
    /// attempt of its task stays.
    pub(crate) fn forget(&mut self, (task, fencing): Holder) {
        let k = key(task);
        if let Some((held, deadline)) = self.deadlines.get(&k).copied()
            && held == fencing
        {
            self.deadlines.remove(&k);
            self.by_deadline.remove(&(deadline, k));
        }
    }

    /// How many attempts the book holds.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.deadlines.len()
    }

    /// False until [`Self::seed`] ran.
    pub(crate) fn is_seeded(&self) -> bool {
        self.seeded
    }

    /// Adds every attempt the store holds live that the book lacks, with its lease as stored
    /// but never shorter than `floor`: a daemon that just started has heard no heartbeat yet,
    /// and an external worker that kept beating while the previous daemon ran gets one whole
    /// lease to be heard by this one.
    pub(crate) fn seed(
        &mut self,
        live: impl IntoIterator<Item = (Holder, Timestamp)>,
        floor: Timestamp,
    ) {
        for (holder, stored) in live {
            if self.deadline(holder).is_none() {
                self.extend(holder, stored.max(floor));
            }
        }
        self.seeded = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn task(n: u8) -> TaskId {
        TaskId::from_bits(u128::from(n) + 1)
    }

    fn holder(task_n: u8, fencing: u8) -> Holder {
        (task(task_n), FencingToken::new(u64::from(fencing)))
    }

    fn at(ms: i64) -> Timestamp {
        Timestamp::from_millis(ms)
    }

    #[test]
    fn a_heartbeat_pushes_the_deadline_on_and_never_back() {
        let mut book = LeaseBook::default();
        book.extend(holder(1, 1), at(100));
        book.extend(holder(1, 1), at(300));
        book.extend(holder(1, 1), at(200));
        assert_eq!(book.deadline(holder(1, 1)), Some(at(300)));
        assert_eq!(book.due(at(300), 10), vec![]);
        assert_eq!(book.due(at(301), 10), vec![holder(1, 1)]);
    }

    #[test]
    fn a_newer_attempt_takes_its_tasks_place_and_an_older_one_never_does() {
        let mut book = LeaseBook::default();
        book.extend(holder(1, 1), at(500));
        // The next attempt of the same task, assigned with a shorter lease.
        book.extend(holder(1, 2), at(100));
        assert_eq!(book.deadline(holder(1, 1)), None);
        // A late beat of the first attempt neither renews it nor hides the second.
        book.extend(holder(1, 1), at(900));
        assert_eq!(book.due(at(200), 10), vec![holder(1, 2)]);
        book.forget(holder(1, 1));
        assert_eq!(book.len(), 1);
        book.forget(holder(1, 2));
        assert_eq!(book.len(), 0);
        assert_eq!(book.due(at(1_000), 10), vec![]);
    }

    #[test]
    fn a_task_id_survives_the_two_word_key() {
        let id = TaskId::from_bits(u128::MAX - 12_345);
        assert_eq!(task_of(key(id)), id);
    }

    #[test]
    fn seeding_keeps_what_the_book_holds_and_gives_the_rest_a_whole_lease() {
        let mut book = LeaseBook::default();
        book.extend(holder(1, 1), at(50));
        assert!(!book.is_seeded());
        book.seed([(holder(1, 1), at(10)), (holder(2, 1), at(10))], at(1_000));
        assert!(book.is_seeded());
        assert_eq!(book.deadline(holder(1, 1)), Some(at(50)));
        assert_eq!(book.deadline(holder(2, 1)), Some(at(1_000)));
        book.seed([(holder(3, 1), at(5_000))], at(1_000));
        assert_eq!(book.deadline(holder(3, 1)), Some(at(5_000)));
    }

    #[derive(Debug, Clone)]
    enum Op {
        Extend(u8, u8, i64),
        Forget(u8, u8),
        Due(i64, usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0u8..6, 0u8..3, 0i64..50).prop_map(|(t, f, d)| Op::Extend(t, f, d)),
            (0u8..6, 0u8..3).prop_map(|(t, f)| Op::Forget(t, f)),
            (0i64..60, 0usize..8).prop_map(|(n, l)| Op::Due(n, l)),
        ]
    }

    proptest! {
        /// The book answers as a plain map from task to its newest attempt's latest deadline
        /// would.
        #[test]
        fn the_book_agrees_with_a_plain_map(ops in proptest::collection::vec(op(), 0..60)) {
            let mut book = LeaseBook::default();
            let mut model: BTreeMap<TaskId, (FencingToken, Timestamp)> = BTreeMap::new();
            for op in ops {
                match op {
                    Op::Extend(t, f, d) => {
                        book.extend(holder(t, f), at(d));
                        let (task, fencing) = holder(t, f);
                        match model.get(&task).copied() {
                            Some((held, _)) if held > fencing => {}
                            Some((held, until)) if held == fencing => {
                                model.insert(task, (held, until.max(at(d))));
                            }
                            _ => {
                                model.insert(task, (fencing, at(d)));
                            }
                        }
                    }
                    Op::Forget(t, f) => {
                        book.forget(holder(t, f));
                        let (task, fencing) = holder(t, f);
                        if model.get(&task).is_some_and(|(held, _)| *held == fencing) {
                            model.remove(&task);
                        }
                    }
                    Op::Due(now, limit) => {
                        let mut expected: Vec<(Timestamp, TaskId, FencingToken)> = model
                            .iter()
                            .filter(|(_, (_, d))| *d < at(now))
                            .map(|(t, (f, d))| (*d, *t, *f))
                            .collect();
                        expected.sort();
                        let expected: Vec<Holder> =
                            expected.into_iter().take(limit).map(|(_, t, f)| (t, f)).collect();
                        prop_assert_eq!(book.due(at(now), limit), expected);
                    }
                }
                prop_assert_eq!(book.len(), model.len());
                prop_assert_eq!(book.by_deadline.len(), model.len());
                for (t, (f, d)) in &model {
                    prop_assert_eq!(book.deadline((*t, *f)), Some(*d));
                }
            }
        }
    }
}
