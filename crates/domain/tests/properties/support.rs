//! Shared builders and generators: agents with a chosen load and status, task specs, clock.

use std::collections::BTreeSet;

use maos_domain::agent::AgentSpec;
use maos_domain::{
    AdapterKind, Agent, AgentId, AgentName, AgentStatus, Capability, CapabilitySet, MaxAttempts,
    Priority, Risk, Slots, TaskId, TaskSpec, Tier, Timestamp, Title,
};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;

/// The capability alphabet: a mask bit `i` stands for `CAPS[i]`.
pub(crate) const CAPS: [&str; 3] = ["rust", "test", "review"];
/// Every capability at once.
pub(crate) const ALL_CAPS: u8 = 0b111;

pub(crate) fn at(ms: i64) -> Timestamp {
    Timestamp::from_millis(ms)
}

/// The capability set a mask stands for.
pub(crate) fn caps(mask: u8) -> CapabilitySet {
    CAPS.iter()
        .enumerate()
        .filter(|(i, _)| mask & (1 << i) != 0)
        .map(|(_, c)| Capability::parse(c).expect("capability"))
        .collect()
}

pub(crate) fn tier() -> impl Strategy<Value = Tier> {
    prop_oneof![Just(Tier::Tactical), Just(Tier::Strategic)]
}

pub(crate) fn opt_tier() -> impl Strategy<Value = Option<Tier>> {
    prop_oneof![Just(None), tier().prop_map(Some)]
}

pub(crate) fn risk() -> impl Strategy<Value = Risk> {
    prop::sample::select(Risk::ALL.to_vec())
}

pub(crate) fn priority() -> impl Strategy<Value = Priority> {
    prop::sample::select(Priority::ALL.to_vec())
}

/// A task spec with the given requirements.
pub(crate) fn spec(
    cap_mask: u8,
    tier: Option<Tier>,
    risk: Risk,
    priority: Priority,
    max_attempts: u32,
    depends_on: BTreeSet<TaskId>,
) -> TaskSpec {
    TaskSpec {
        title: Title::parse("a task").expect("title"),
        prompt: "do it".to_owned(),
        capabilities: caps(cap_mask),
        priority,
        risk,
        tier,
        depends_on,
        orchestration: None,
        max_attempts: MaxAttempts::new(max_attempts).expect("max attempts"),
        timeout: None,
        idempotency_key: None,
        budget: None,
        workspace: None,
        verify: None,
        wants_port: false,
        concerns: Vec::new(),
        plans: None,
        agent: None,
        parent: None,
        lessons: false,
    }
}

/// The status an agent is brought to after registration and slot claims.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Standing {
    /// Left as registered (available, or busy when every slot is taken).
    Active,
    Draining,
    Removed,
}

/// A description of an agent, from which both the test's oracle and a real [`Agent`] are made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AgentGen {
    pub(crate) name: String,
    pub(crate) caps: u8,
    pub(crate) tier: Tier,
    pub(crate) slots: u32,
    pub(crate) active: u32,
    pub(crate) standing: Standing,
}

impl AgentGen {
    /// Oracle: the agent takes new work at all.
    pub(crate) fn accepts_work(&self) -> bool {
        self.standing == Standing::Active
    }

    /// Oracle: capabilities and tier fit, whatever the load.
    pub(crate) fn capable(&self, needs: u8, tier: Option<Tier>) -> bool {
        needs & !self.caps == 0 && tier.is_none_or(|t| t == self.tier)
    }

    /// Oracle: the agent could start the task now.
    pub(crate) fn can_take(&self, needs: u8, tier: Option<Tier>) -> bool {
        self.accepts_work() && self.active < self.slots && self.capable(needs, tier)
    }

    /// The real agent: registered, `active` slots claimed, then drained or removed.
    pub(crate) fn build(&self, id: u128) -> Agent {
        let spec = AgentSpec {
            name: AgentName::parse(&self.name).expect("agent name"),
            adapter: AdapterKind::Sim,
            capabilities: caps(self.caps),
            tier: self.tier,
            slots: Slots::new(self.slots).expect("slots"),
            command: None,
            settings: maos_domain::AgentSettings::default(),
        };
        let (mut agent, _) = Agent::register(AgentId::from_bits(id), spec, at(0));
        for n in 0..self.active {
            agent
                .claim_slot(TaskId::from_bits(u128::from(n) + 10_000), 1, at(1))
                .expect("claiming a free slot");
        }
        match self.standing {
            Standing::Active => {}
            Standing::Draining => {
                agent.drain(at(2)).expect("draining");
            }
            Standing::Removed => {
                agent.remove(at(2)).expect("removing an idle agent");
            }
        }
        assert_eq!(agent.active, self.active);
        let expected = match self.standing {
            Standing::Active if self.active >= self.slots => AgentStatus::Busy,
            Standing::Active => AgentStatus::Available,
            Standing::Draining => AgentStatus::Draining,
            Standing::Removed => AgentStatus::Removed,
        };
        assert_eq!(agent.status, expected);
        agent
    }
}

pub(crate) fn standing() -> impl Strategy<Value = Standing> {
    prop_oneof![
        4 => Just(Standing::Active),
        1 => Just(Standing::Draining),
        1 => Just(Standing::Removed),
    ]
}

/// Any agent: random capabilities, tier, 1–4 slots, any load and standing. A removed agent holds
/// no slot (removal is refused while it does).
pub(crate) fn agent_gen(name: String) -> impl Strategy<Value = AgentGen> {
    (0..=ALL_CAPS, tier(), 1..=4u32, standing())
        .prop_flat_map(|(caps, tier, slots, standing)| {
            let active = if standing == Standing::Removed {
                Just(0).boxed()
            } else {
                (0..=slots).boxed()
            };
            (Just(caps), Just(tier), Just(slots), active, Just(standing))
        })
        .prop_map(move |(caps, tier, slots, active, standing)| AgentGen {
            name: name.clone(),
            caps,
            tier,
            slots,
            active,
            standing,
        })
}

/// An agent that can take a task needing `needs` and `tier` right now.
pub(crate) fn fitting_agent_gen(
    name: String,
    needs: u8,
    tier: Option<Tier>,
) -> impl Strategy<Value = AgentGen> {
    let tier = match tier {
        Some(t) => Just(t).boxed(),
        None => self::tier().boxed(),
    };
    (0..=ALL_CAPS, tier, 1..=4u32)
        .prop_flat_map(|(extra, tier, slots)| (Just(extra), Just(tier), Just(slots), 0..slots))
        .prop_map(move |(extra, tier, slots, active)| AgentGen {
            name: name.clone(),
            caps: needs | extra,
            tier,
            slots,
            active,
            standing: Standing::Active,
        })
}

/// The proptest configuration of every property: `cases` cases, and failures persisted under the
/// crate's `proptest-regressions/` (the default location needs a `lib.rs` beside the test).
pub(crate) fn config(cases: u32, regressions: &'static str) -> ProptestConfig {
    ProptestConfig {
        cases,
        max_shrink_iters: 4096,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(regressions))),
        ..ProptestConfig::default()
    }
}
