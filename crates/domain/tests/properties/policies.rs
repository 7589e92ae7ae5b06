//! Property 3: the capability matcher, the load balancer and the scheduler, against independent
//! oracles on random agents and tasks.

use std::cmp::{Ordering, Reverse};
use std::collections::{BTreeMap, BTreeSet};

use maos_domain::policy::matcher::Needs;
use maos_domain::policy::{balancer, matcher, scheduler};
use maos_domain::{
    Agent, AgentName, DurationMs, FencingToken, Priority, Risk, Task, TaskId, TaskState, Tier,
    Timestamp,
};
use proptest::prelude::*;

use crate::support::{self, ALL_CAPS, AgentGen};

/// Task requirements that many agents can meet: often nothing or one capability.
fn needs() -> impl Strategy<Value = u8> {
    prop_oneof![
        2 => Just(0),
        2 => (0..3u8).prop_map(|i| 1 << i),
        1 => 0..=ALL_CAPS,
    ]
}

fn needed_tier() -> impl Strategy<Value = Option<Tier>> {
    prop_oneof![3 => Just(None), 1 => support::tier().prop_map(Some)]
}

/// The agent a task is pinned to, if any: often one of [`agents`]' names, sometimes one no agent
/// has.
fn pinned() -> impl Strategy<Value = Option<AgentName>> {
    prop_oneof![
        2 => Just(None),
        2 => (0..10usize).prop_map(|i| Some(AgentName::parse(&format!("agent-{i}")).expect("name"))),
    ]
}

/// Oracle: the pin lets the agent named `name` take the task.
fn pin_allows(pin: Option<&AgentName>, name: &str) -> bool {
    pin.is_none_or(|p| p.as_str() == name)
}

/// Up to eight agents with distinct names, in random order.
fn agents() -> impl Strategy<Value = Vec<AgentGen>> {
    (0..=8usize)
        .prop_flat_map(|n| {
            (0..n)
                .map(|i| support::agent_gen(format!("agent-{i}")))
                .collect::<Vec<_>>()
        })
        .prop_shuffle()
}

fn build_all(gens: &[AgentGen]) -> Vec<Agent> {
    gens.iter()
        .zip(1u128..)
        .map(|(g, id)| g.build(id))
        .collect()
}

/// The load of an agent as a fraction: division of small integers is exact enough to compare
/// (IEEE division is correctly rounded, so equal fractions give equal floats).
fn load(a: &Agent) -> f64 {
    f64::from(a.active) / f64::from(a.slots.get())
}

// ---------------------------------------------------------------------------------------------
// Tasks for the scheduler

/// A state a task is driven to through its real commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Pending,
    Ready,
    Assigned,
    Running,
    Failed,
    Blocked,
    Completed,
    Cancelled,
}

#[derive(Debug, Clone)]
struct TaskGen {
    caps: u8,
    tier: Option<Tier>,
    risk: Risk,
    priority: Priority,
    created: i64,
    /// Indices of the tasks it depends on; indices past the end are tasks outside the set.
    deps: BTreeSet<usize>,
    target: Target,
}

const MAX_TASKS: usize = 8;
const OUTSIDE: usize = 3;

fn task_id(index: usize) -> TaskId {
    TaskId::from_bits(100 + index as u128)
}

fn target() -> impl Strategy<Value = Target> {
    prop_oneof![
        1 => Just(Target::Pending),
        5 => Just(Target::Ready),
        1 => Just(Target::Assigned),
        1 => Just(Target::Running),
        1 => Just(Target::Failed),
        1 => Just(Target::Blocked),
        2 => Just(Target::Completed),
        1 => Just(Target::Cancelled),
    ]
}

fn task_gen() -> impl Strategy<Value = TaskGen> {
    (
        0..=ALL_CAPS,
        support::opt_tier(),
        support::risk(),
        support::priority(),
        0..4i64,
        prop::collection::btree_set(0..MAX_TASKS + OUTSIDE, 0..=2),
        target(),
    )
        .prop_map(
            |(caps, tier, risk, priority, created, deps, target)| TaskGen {
                caps,
                tier,
                risk,
                priority,
                created,
                deps,
                target,
            },
        )
}

/// Creates the task and drives it to its target state through the real commands.
fn build_task(index: usize, g: &TaskGen) -> Task {
    let deps = g
        .deps
        .iter()
        .filter(|d| **d != index)
        .map(|d| task_id(*d))
        .collect();
    let spec = support::spec(g.caps, g.tier, g.risk, g.priority, 3, deps);
    let (mut t, _) = Task::create(task_id(index), spec, support::at(g.created));
    let now = support::at(100);
    let worker = AgentGen {
        name: "worker".into(),
        caps: ALL_CAPS,
        tier: g.tier.unwrap_or(Tier::Tactical),
        slots: 4,
        active: 0,
        standing: support::Standing::Active,
    }
    .build(999);
    let lease = DurationMs::from_millis(1_000).expect("lease");
    let token = FencingToken::new(1);
    // Ready, after a person's approval to run when the task is high risk.
    let ready = |t: &mut Task| {
        t.make_ready(now).expect("ready");
        if t.state == TaskState::AwaitingApproval {
            t.approve(maos_domain::Integration::None, now)
                .expect("approve to run");
        }
    };
    let run = |t: &mut Task| {
        ready(t);
        t.assign(&worker, lease, now).expect("assign");
    };
    match g.target {
        Target::Pending => {}
        Target::Ready => ready(&mut t),
        Target::Assigned => run(&mut t),
        Target::Running => {
            run(&mut t);
            t.start_attempt(token, maos_domain::AttemptStart::default(), now)
                .expect("start");
        }
        Target::Failed => {
            run(&mut t);
            t.start_attempt(token, maos_domain::AttemptStart::default(), now)
                .expect("start");
            t.fail_attempt(token, "boom".into(), maos_domain::RunReport::default(), now)
                .expect("fail");
        }
        Target::Blocked => {
            t.block(maos_domain::BlockReason::RejectedBeforeRun, now)
                .expect("block");
        }
        Target::Completed => {
            run(&mut t);
            t.start_attempt(token, maos_domain::AttemptStart::default(), now)
                .expect("start");
            t.succeed_attempt(token, None, maos_domain::RunReport::default(), now)
                .expect("succeed");
            t.pass_verification(maos_domain::Integration::None, now)
                .expect("verify");
            if t.state == TaskState::AwaitingApproval {
                t.approve(maos_domain::Integration::None, now)
                    .expect("approve");
            }
        }
        Target::Cancelled => {
            t.cancel("no".into(), now).expect("cancel");
        }
    }
    t
}

/// The tasks plus the completion of the tasks outside the set (a bit per outside index).
fn task_set() -> impl Strategy<Value = (Vec<Task>, u8)> {
    (
        prop::collection::vec(task_gen(), 0..=MAX_TASKS),
        any::<u8>(),
    )
        .prop_map(|(gens, outside)| {
            let tasks = gens
                .iter()
                .enumerate()
                .map(|(i, g)| build_task(i, g))
                .collect();
            (tasks, outside)
        })
}

/// Oracle: whether the task with this id is completed.
fn completed(tasks: &[Task], outside: u8, id: TaskId) -> bool {
    let index = usize::try_from(id.bits() - 100).expect("small index");
    match tasks.get(index) {
        Some(t) => t.state == TaskState::Completed,
        None => outside & (1 << (index - tasks.len()).min(7)) != 0,
    }
}

/// Oracle: the task may be served now.
fn schedulable(tasks: &[Task], outside: u8, t: &Task) -> bool {
    t.state == TaskState::Ready
        && t.spec
            .depends_on
            .iter()
            .all(|d| completed(tasks, outside, *d))
}

/// Oracle: the order of service, smallest first.
fn urgency_key(t: &Task) -> (Reverse<u8>, Timestamp, TaskId) {
    (Reverse(t.spec.priority.rank()), t.created_at, t.id)
}

fn mask_of(t: &Task) -> u8 {
    support::CAPS
        .iter()
        .enumerate()
        .filter(|(_, c)| t.spec.capabilities.iter().any(|x| x.as_str() == **c))
        .fold(0, |m, (i, _)| m | (1 << i))
}

proptest! {
    #![proptest_config(crate::support::config(256, "proptest-regressions/policies.txt"))]

    #[test]
    fn matcher_agrees_with_the_oracle(
        gens in agents(),
        needs in needs(),
        tier in needed_tier(),
        pin in pinned(),
    ) {
        let agents = build_all(&gens);
        let need_set = support::caps(needs);
        let wanted = Needs { capabilities: &need_set, tier, agent: pin.as_ref() };
        for (g, a) in gens.iter().zip(&agents) {
            let allowed = pin_allows(pin.as_ref(), &g.name);
            prop_assert_eq!(matcher::is_capable(a, wanted), g.capable(needs, tier) && allowed);
            prop_assert_eq!(matcher::can_take(a, wanted), g.can_take(needs, tier) && allowed);
            prop_assert_eq!(
                matcher::check(a, wanted).is_ok(),
                g.can_take(needs, tier) && allowed,
                "check disagrees for {:?}", g
            );
            // Pinned to another agent, an agent that fits in every other way is told why not.
            if g.can_take(needs, tier) && !allowed {
                let refusal = matcher::check(a, wanted).expect_err("pinned elsewhere").to_string();
                prop_assert!(refusal.contains("only the agent"), "{}", refusal);
            }
        }
    }

    #[test]
    fn balancer_chooses_the_least_loaded_agent_that_can_take_the_task(
        gens in agents(),
        needs in needs(),
        tier in needed_tier(),
        pin in pinned(),
    ) {
        let agents = build_all(&gens);
        let need_set = support::caps(needs);
        let able: Vec<&Agent> = gens
            .iter()
            .zip(&agents)
            .filter(|(g, _)| g.can_take(needs, tier) && pin_allows(pin.as_ref(), &g.name))
            .map(|(_, a)| a)
            .collect();
        let wanted = Needs { capabilities: &need_set, tier, agent: pin.as_ref() };
        let chosen = balancer::choose(agents.iter(), wanted);
        prop_assert_eq!(chosen.is_some(), !able.is_empty());
        if let Some(c) = chosen {
            let g = gens.iter().find(|g| g.name == c.name.as_str()).expect("a known agent");
            prop_assert!(g.capable(needs, tier), "chose an incapable agent {:?}", g);
            prop_assert!(pin_allows(pin.as_ref(), &g.name), "chose {:?} against the pin", g);
            prop_assert!(g.accepts_work(), "chose an agent not accepting work {:?}", g);
            prop_assert!(g.active < g.slots, "chose a full agent {:?}", g);
            for other in &able {
                prop_assert_ne!(
                    balancer::by_load(c, other),
                    Ordering::Greater,
                    "{} is less loaded than the chosen {}", other.name, c.name
                );
                prop_assert!(load(c) <= load(other), "{} has a lower load share", other.name);
                if load(c) == load(other) {
                    prop_assert!(c.active <= other.active);
                }
            }
        }
    }

    #[test]
    fn by_load_is_a_total_order(gens in agents()) {
        let agents = build_all(&gens);
        for a in &agents {
            prop_assert_eq!(balancer::by_load(a, a), Ordering::Equal);
            for b in &agents {
                prop_assert_eq!(balancer::by_load(a, b), balancer::by_load(b, a).reverse());
                for c in &agents {
                    if balancer::by_load(a, b) != Ordering::Greater
                        && balancer::by_load(b, c) != Ordering::Greater
                    {
                        prop_assert_ne!(balancer::by_load(a, c), Ordering::Greater);
                    }
                }
            }
        }
    }

    #[test]
    fn scheduler_serves_the_most_urgent_schedulable_task((tasks, outside) in task_set()) {
        let next = scheduler::next(tasks.iter(), |id| completed(&tasks, outside, id));
        let able: Vec<&Task> =
            tasks.iter().filter(|t| schedulable(&tasks, outside, t)).collect();
        prop_assert_eq!(next.is_some(), !able.is_empty());
        if let Some(n) = next {
            prop_assert_eq!(n.state, TaskState::Ready);
            for d in &n.spec.depends_on {
                prop_assert!(completed(&tasks, outside, *d), "dependency {} not completed", d);
            }
            let best = able.iter().map(|t| urgency_key(t)).min().expect("non-empty");
            prop_assert_eq!(urgency_key(n), best);
        }
    }

    #[test]
    fn scheduler_plan_respects_slots_capabilities_and_readiness(
        (tasks, outside) in task_set(),
        gens in agents(),
    ) {
        let agents = build_all(&gens);
        let plan = scheduler::plan(&tasks, &agents, |id| completed(&tasks, outside, id));
        let by_id: BTreeMap<TaskId, &Task> = tasks.iter().map(|t| (t.id, t)).collect();
        let by_name: BTreeMap<&str, &AgentGen> =
            gens.iter().map(|g| (g.name.as_str(), g)).collect();

        let mut seen = BTreeSet::new();
        let mut given: BTreeMap<&str, u32> = BTreeMap::new();
        for (task_id, agent) in &plan {
            prop_assert!(seen.insert(*task_id), "task {} assigned twice", task_id);
            let t = by_id.get(task_id).expect("a task of the set");
            prop_assert!(schedulable(&tasks, outside, t), "planned a task that is not schedulable");
            let g = by_name.get(agent.as_str()).expect("an agent of the set");
            prop_assert!(g.accepts_work(), "planned on an agent not accepting work");
            prop_assert!(
                g.capable(mask_of(t), t.spec.tier),
                "paired task {:?} with incapable agent {:?}", t.spec.capabilities, g
            );
            *given.entry(agent.as_str()).or_default() += 1;
        }
        for (name, n) in &given {
            let g = by_name[name];
            prop_assert!(*n <= g.slots - g.active, "{} got {} tasks for {} free slots",
                name, n, g.slots - g.active);
        }
        // Most urgent first.
        let keys: Vec<_> = plan.iter().map(|(id, _)| urgency_key(by_id[id])).collect();
        prop_assert!(keys.windows(2).all(|w| w[0] < w[1]), "plan not in urgency order");
        // Greedy and maximal: a schedulable task left out has no agent with a slot left for it.
        for t in tasks.iter().filter(|t| schedulable(&tasks, outside, t)) {
            if seen.contains(&t.id) {
                continue;
            }
            for g in &gens {
                let used = given.get(g.name.as_str()).copied().unwrap_or(0);
                prop_assert!(
                    !(g.can_take(mask_of(t), t.spec.tier) && g.active + used < g.slots),
                    "task {} left out although {} had a free slot for it", t.id, g.name
                );
            }
        }
    }
}

/// A pinned task goes to its agent only, and keeps its pin when escalated: its later attempts
/// are the same agent's.
#[test]
fn a_pinned_task_is_assigned_to_its_agent_only() {
    let fits = |name: &str| AgentGen {
        name: name.into(),
        caps: ALL_CAPS,
        tier: Tier::Tactical,
        slots: 2,
        active: 0,
        standing: support::Standing::Active,
    };
    let (planner, other) = (fits("planner").build(1), fits("other").build(2));
    let mut spec = support::spec(0, None, Risk::Low, Priority::Normal, 3, BTreeSet::new());
    spec.agent = Some(planner.name.clone());
    let (mut task, _) = Task::create(task_id(1), spec, support::at(0));
    task.make_ready(support::at(1)).expect("ready");

    assert_eq!(
        balancer::choose([&other, &planner], task.spec.needs()).map(|a| a.name.as_str()),
        Some("planner")
    );
    assert_eq!(balancer::choose([&other], task.spec.needs()), None);
    let lease = DurationMs::from_millis(1_000).expect("lease");
    let refused = task
        .assign(&other, lease, support::at(2))
        .expect_err("pinned to another agent");
    assert!(
        refused.to_string().contains("only the agent planner"),
        "{refused}"
    );
    task.assign(&planner, lease, support::at(2))
        .expect("its own agent takes it");
    assert_eq!(task.state, TaskState::Assigned);

    // Unpinned, either may take it.
    let unpinned = Needs::new(&task.spec.capabilities, None);
    assert!(matcher::can_take(&other, unpinned) && matcher::can_take(&planner, unpinned));
}
