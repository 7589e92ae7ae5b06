//! The memory entry's lifecycle against a reference model: pin, unpin, forget and expire in
//! random order while time passes, checking each command's acceptance, the state it leaves, and
//! that folding the events gives the entry back.

use maos_domain::{
    DurationMs, Memory, MemoryEvent, MemoryId, MemoryScope, MemorySpec, MemoryState, MemoryText,
    MemoryTier, Provenance, Tags, Timestamp, TransitionError,
};
use proptest::prelude::*;
use proptest_state_machine::{ReferenceStateMachine, StateMachineTest, prop_state_machine};

use crate::support;

const ID: MemoryId = MemoryId::from_bits(42);
/// How long an ephemeral entry lives.
const TTL_MS: i64 = 1_000;

#[derive(Debug, Clone)]
pub(crate) enum Cmd {
    Pin,
    Unpin,
    Forget,
    Expire,
    /// Time passes.
    Wait(i64),
}

#[derive(Debug, Clone)]
pub(crate) struct Model {
    tier: MemoryTier,
    now: i64,
    st: MemoryState,
    pinned: bool,
    events: u64,
    /// Whether the last command is accepted, and with which event.
    last: Option<&'static str>,
}

impl Model {
    fn due(&self) -> bool {
        self.st == MemoryState::Live
            && !self.pinned
            && self.tier == MemoryTier::Ephemeral
            && self.now >= TTL_MS
    }

    fn live(&self) -> bool {
        self.st == MemoryState::Live && !self.due()
    }
}

pub(crate) struct Entry;

impl ReferenceStateMachine for Entry {
    type State = Model;
    type Transition = Cmd;

    fn init_state() -> BoxedStrategy<Model> {
        prop::sample::select(MemoryTier::ALL.to_vec())
            .prop_map(|tier| Model {
                tier,
                now: 0,
                st: MemoryState::Live,
                pinned: false,
                events: 1,
                last: None,
            })
            .boxed()
    }

    fn transitions(_: &Model) -> BoxedStrategy<Cmd> {
        prop_oneof![
            3 => Just(Cmd::Pin),
            2 => Just(Cmd::Unpin),
            1 => Just(Cmd::Forget),
            3 => Just(Cmd::Expire),
            3 => (0..800i64).prop_map(Cmd::Wait),
        ]
        .boxed()
    }

    fn apply(mut m: Model, cmd: &Cmd) -> Model {
        m.last = None;
        match cmd {
            Cmd::Wait(ms) => m.now += ms,
            Cmd::Pin if m.live() && !m.pinned => {
                m.pinned = true;
                m.last = Some("memory.pinned");
            }
            Cmd::Unpin if m.st == MemoryState::Live && m.pinned => {
                m.pinned = false;
                m.last = Some("memory.unpinned");
            }
            Cmd::Forget if m.live() => {
                m.st = MemoryState::Forgotten;
                m.last = Some("memory.forgotten");
            }
            Cmd::Expire if m.due() => {
                m.st = MemoryState::Expired;
                m.last = Some("memory.expired");
            }
            _ => {}
        }
        if m.last.is_some() {
            m.events += 1;
        }
        m
    }
}

#[derive(Debug)]
pub(crate) struct Sut {
    memory: Memory,
    log: Vec<(MemoryEvent, Timestamp)>,
}

impl StateMachineTest for Entry {
    type SystemUnderTest = Sut;
    type Reference = Entry;

    fn init_test(m: &Model) -> Sut {
        let spec = MemorySpec {
            tier: m.tier,
            scope: MemoryScope::Global,
            text: MemoryText::parse("the build needs protoc").expect("text"),
            tags: Tags::parse(["build"]).expect("tags"),
            provenance: Provenance::Person,
        };
        let ttl = DurationMs::from_millis(TTL_MS as u64).expect("ttl");
        let (memory, events) = Memory::add(ID, spec, ttl, support::at(0));
        Sut {
            memory,
            log: events.into_iter().map(|e| (e, support::at(0))).collect(),
        }
    }

    fn apply(mut sut: Sut, m: &Model, cmd: Cmd) -> Sut {
        let before = sut.memory.clone();
        let now = support::at(m.now);
        let result = match cmd {
            Cmd::Wait(_) => return sut,
            Cmd::Pin => sut.memory.pin(now),
            Cmd::Unpin => sut.memory.unpin(now),
            Cmd::Forget => sut.memory.forget(Some("outdated".into()), now),
            Cmd::Expire => sut.memory.expire(now),
        };
        match (m.last, result) {
            (Some(kind), Ok(events)) => {
                let kinds: Vec<&str> = events.iter().map(MemoryEvent::kind).collect();
                assert_eq!(kinds, vec![kind], "{cmd:?}");
                assert_eq!(sut.memory.updated_at, now);
                sut.log.extend(events.into_iter().map(|e| (e, now)));
            }
            (None, Err(TransitionError::Memory { id, from, .. })) => {
                assert_eq!(id, ID);
                assert_eq!(from, before.state);
                assert_eq!(sut.memory, before, "a refused {cmd:?} changed the entry");
            }
            (expected, got) => {
                panic!("{cmd:?} at {now:?}: the model expected {expected:?}, got {got:?}")
            }
        }
        sut
    }

    fn check_invariants(sut: &Sut, m: &Model) {
        let e = &sut.memory;
        assert_eq!(e.state, m.st);
        assert_eq!(e.pinned, m.pinned);
        assert_eq!(e.version, m.events);
        assert_eq!(e.version, sut.log.len() as u64);
        // Only ephemeral entries have a deadline, and pinning never moves it.
        assert_eq!(
            e.expires_at,
            (m.tier == MemoryTier::Ephemeral).then(|| support::at(TTL_MS))
        );
        // An entry counts exactly when the model says it is live; a pinned one always does
        // while it is live.
        assert_eq!(e.is_live_at(support::at(m.now)), m.live());
        if e.pinned && e.state == MemoryState::Live {
            assert!(e.is_live_at(support::at(m.now)));
        }
        let folded = Memory::from_events(ID, sut.log.iter().map(|(e, at)| (e, *at)))
            .expect("the log starts with an addition");
        assert_eq!(&folded, e, "folding the events does not give the entry");
    }
}

prop_state_machine! {
    #![proptest_config(support::config(256, "proptest-regressions/memory.txt"))]

    #[test]
    fn memory_entries_follow_the_model(sequential 1..30 => Entry);
}
