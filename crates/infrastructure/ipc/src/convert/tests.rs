//! Round trips of the conversions: domain → wire (a real serialized message) → domain gives
//! back the same value, with optional fields both set and absent; bad values from the wire are
//! errors, never panics.

use std::collections::BTreeMap;

use capnp::message::ReaderOptions;
use capnp::traits::Owned;
use maos_application::{ErrorInfo, ErrorKind, TaskError};
use maos_domain::TransitionError;

use super::*;
use crate::error::{read_error, write_error};

/// Writes with `write` into a fresh message, serializes it to bytes, reads it back with `read`.
fn round_trip<O, T>(
    write: impl for<'a> FnOnce(O::Builder<'a>) -> capnp::Result<()>,
    read: impl for<'a> FnOnce(O::Reader<'a>) -> Decoded<T>,
) -> Decoded<T>
where
    O: Owned,
{
    let mut message = capnp::message::Builder::new_default();
    write(message.init_root::<O::Builder<'_>>()).unwrap();
    let bytes = capnp::serialize::write_message_to_words(&message);
    let reader =
        capnp::serialize::read_message_from_flat_slice(&mut &bytes[..], ReaderOptions::new())
            .unwrap();
    read(reader.get_root::<O::Reader<'_>>().unwrap())
}

const T0: i64 = 1_795_239_198_123;

fn at(offset: i64) -> Timestamp {
    Timestamp::from_millis(T0 + offset)
}

fn caps(raw: &[&str]) -> CapabilitySet {
    CapabilitySet::parse(raw).unwrap()
}

fn agent(command: Option<&str>) -> Agent {
    Agent::restore(AgentData {
        id: AgentId::from_bits(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef),
        name: AgentName::parse("claude-1").unwrap(),
        adapter: AdapterKind::ClaudeCode,
        capabilities: caps(&["rust", "lang:python", "c++"]),
        tier: Tier::Strategic,
        slots: Slots::new(4).unwrap(),
        command: command.map(str::to_owned),
        status: AgentStatus::Busy,
        active: 4,
        registered_at: at(0),
        updated_at: at(5_000),
        version: 9,
        settings: full_settings(),
        failures_in_row: 3,
        drained_because: Some("3 attempts failed in a row".into()),
    })
}

/// Settings with every field away from its default.
fn full_settings() -> maos_domain::AgentSettings {
    use maos_domain::policy::permission::{PermissionRule, PermissionRules};
    let rule = |r: &str| PermissionRule::parse(r).unwrap();
    maos_domain::AgentSettings {
        args: vec!["--flag".into(), "{prompt}".into(), "ünï".into()],
        prompt_via: maos_domain::PromptVia::Arg,
        env: vec![maos_domain::EnvName::parse("OPENAI_API_KEY").unwrap()],
        timeout: Some(DurationMs::parse("15m").unwrap()),
        limits: maos_domain::ResourceLimits {
            cpu_seconds: Some(600),
            memory_mib: Some(2048),
            open_files: Some(1024),
            processes: Some(64),
        },
        model: Some("qwen2.5-coder".into()),
        base_url: Some("http://127.0.0.1:11434/v1".into()),
        api_key_env: Some(maos_domain::EnvName::parse("KEY").unwrap()),
        max_steps: Some(30),
        tool_calls: Some(false),
        price: Some(maos_domain::Price {
            input: maos_domain::Usd::from_micros(1_250_000),
            cached_input: Some(maos_domain::Usd::from_micros(125_000)),
            output: maos_domain::Usd::from_micros(10_000_000),
        }),
        permissions: PermissionRules {
            deny: vec![rule("Bash(rm:*)")],
            ask: vec![rule("Edit(src/**)"), rule("WebFetch")],
            allow: vec![rule("Read")],
        },
        skip_permissions: true,
        verify: Some("cargo test --workspace".into()),
        delay: Some(DurationMs::parse("250ms").unwrap()),
        fail_every: Some(3),
    }
}

/// A task after two attempts (one failed, one running), with every optional field set.
fn full_task() -> Task {
    let dep_a = TaskId::from_bits(11);
    let dep_b = TaskId::from_bits(u128::MAX);
    Task::restore(TaskData {
        id: TaskId::from_bits(0xfeed_beef_0000_1111_2222_3333_4444_5555),
        spec: TaskSpec {
            title: Title::parse("Fix the flaky test — ünïcode too").unwrap(),
            prompt: "Line one\nline two\n".into(),
            capabilities: caps(&["rust", "test"]),
            priority: Priority::Urgent,
            risk: Risk::High,
            tier: Some(Tier::Tactical),
            depends_on: [dep_a, dep_b].into_iter().collect(),
            orchestration: Some(OrchestrationId::from_bits(42)),
            max_attempts: MaxAttempts::new(5).unwrap(),
            timeout: Some(DurationMs::parse("1h30m").unwrap()),
            idempotency_key: Some(IdempotencyKey::parse("ci-run-7/step:3").unwrap()),
            budget: Some(maos_domain::Usd::from_micros(2_500_000)),
            workspace: Some(WorkspaceSpec {
                repo: "/home/me/src/maos".into(),
                base: Some("main".into()),
            }),
            verify: Some("cargo test && cargo clippy -- -D warnings".into()),
            wants_port: true,
            concerns: vec![
                Concern::parse("src/api/**").unwrap(),
                Concern::parse("port:8080").unwrap(),
            ],
            plans: Some(OrchestrationId::from_bits(77)),
            agent: Some(AgentName::parse("planner").unwrap()),
            parent: Some(ParentLink {
                task: TaskId::from_bits(0xabcd),
                waits: true,
            }),
            lessons: true,
        },
        state: TaskState::Running,
        reason: Some("the first attempt timed out".into()),
        blocked: Some(maos_domain::BlockReason::MergeConflict {
            into: "maos/o/plan".into(),
            paths: vec!["src/a.rs".into(), "ünï code.rs".into()],
        }),
        attempts: vec![
            Attempt {
                number: 1,
                agent: AgentName::parse("codex.a").unwrap(),
                fencing: FencingToken::new(1),
                status: AttemptOutcome::Failed,
                assigned_at: at(100),
                lease_expires_at: at(10_100),
                started_at: Some(at(150)),
                ended_at: Some(at(9_000)),
                summary: None,
                error: Some("exit status 101".into()),
                pid: Some(4242),
                session: Some("sess-1".into()),
                exit: Some(maos_domain::Exit::Code(101)),
                usage: maos_domain::Usage {
                    input_tokens: 1000,
                    cached_input_tokens: 400,
                    output_tokens: 50,
                    cost: maos_domain::Usd::from_micros(1234),
                },
                failure: Some(maos_domain::FailureKind::Exit),
                checkpoint_before: Some("0123456789abcdef0123456789abcdef01234567".into()),
                checkpoint_after: Some("89abcdef0123456789abcdef0123456789abcdef".into()),
                port: Some(u16::MAX),
                verification: Some(Verification {
                    passed: false,
                    output: "test tests::flaky ... FAILED\nünï\n".into(),
                }),
                // The briefing travels by taskBriefing, not with the task.
                briefing: None,
                diff_stat: Some("2 files changed, 10 insertions(+)".into()),
                permission_denials: vec!["Bash(rm -rf target)".into()],
                refunded: true,
            },
            Attempt {
                number: 2,
                agent: AgentName::parse("claude-1").unwrap(),
                fencing: FencingToken::new(2),
                status: AttemptOutcome::Running,
                assigned_at: at(10_000),
                lease_expires_at: at(20_000),
                started_at: Some(at(10_050)),
                ended_at: None,
                summary: Some(String::new()),
                error: None,
                pid: Some(77),
                session: None,
                exit: Some(maos_domain::Exit::Signal(9)),
                usage: maos_domain::Usage::NONE,
                failure: None,
                checkpoint_before: Some("fedcba9876543210fedcba9876543210fedcba98".into()),
                checkpoint_after: None,
                port: Some(40123),
                verification: Some(Verification {
                    passed: true,
                    output: String::new(),
                }),
                briefing: None,
                diff_stat: None,
                permission_denials: Vec::new(),
                refunded: false,
            },
        ],
        fencing: FencingToken::new(2),
        created_at: at(0),
        updated_at: at(10_050),
        version: 7,
        workspace: Some(TaskWorkspace {
            repo: "/home/me/src/maos".into(),
            path: "/home/me/src/maos/.maos/worktrees/feedbeef".into(),
            branch: "maos/feedbeef".into(),
            base: "0123456789abcdef0123456789abcdef01234567".into(),
            removed: true,
        }),
        pending: Some(PendingApproval {
            gate: Gate::Tool,
            attempt: Some(2),
            tool: Some("Bash".into()),
            subject: Some("git push --force".into()),
            requested_at: at(10_060),
        }),
        retry_at: Some(at(12_000)),
        extra_attempts: 2,
        subtasks: vec![
            Subtask {
                task: TaskId::from_bits(901),
                waits: true,
            },
            Subtask {
                task: TaskId::from_bits(u128::MAX - 1),
                waits: false,
            },
        ],
        run_approved: true,
        decision: Some(ApprovalDecision {
            gate: Gate::Result,
            approved: false,
            reason: Some("the test still flakes".into()),
            at: at(9_500),
        }),
    })
}

/// A fresh task with every optional field absent.
fn bare_task() -> Task {
    Task::restore(TaskData {
        id: TaskId::from_bits(3),
        spec: TaskSpec {
            title: Title::parse("t").unwrap(),
            prompt: String::new(),
            capabilities: CapabilitySet::empty(),
            priority: Priority::Low,
            risk: Risk::Low,
            tier: None,
            depends_on: BTreeSet::new(),
            orchestration: None,
            max_attempts: MaxAttempts::default(),
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
        },
        state: TaskState::Pending,
        reason: None,
        blocked: None,
        attempts: Vec::new(),
        fencing: FencingToken::new(0),
        created_at: at(0),
        updated_at: at(0),
        version: 1,
        workspace: None,
        pending: None,
        run_approved: false,
        decision: None,
        retry_at: None,
        extra_attempts: 0,
        subtasks: Vec::new(),
    })
}

/// An orchestration; with a goal, every optional field is set (a plan at version 3, and a
/// planner at work on the next).
fn orchestration(goal: Option<&str>) -> Orchestration {
    Orchestration::restore(OrchestrationData {
        id: OrchestrationId::from_bits(42),
        name: Title::parse("Release 1.0").unwrap(),
        goal: goal.map(str::to_owned),
        workspace: goal.map(|_| WorkspaceSpec {
            repo: "/srv/repo".into(),
            base: None,
        }),
        verify: goal.map(|_| "make check".into()),
        notes: goal.map_or_else(Vec::new, |_| vec!["Keep it small.".into(), "ünï".into()]),
        planned: goal.is_some(),
        plan_version: goal.map_or(0, |_| 3),
        planning: goal.map(|_| Planning {
            task: TaskId::from_bits(0xabcd_0000_0000_0000_0000_0000_0000_0099),
            max_tasks: 500,
            discussion: Some(TaskId::from_bits(0x77)),
        }),
        approved_version: goal.map_or(0, |_| 2),
        decided_version: goal.map_or(0, |_| 2),
        superseded: goal.map_or_else(Default::default, |_| {
            [TaskId::from_bits(7), TaskId::from_bits(8)]
                .into_iter()
                .collect()
        }),
        status: OrchestrationStatus::AwaitingPlanApproval,
        created_at: at(1),
        updated_at: at(2),
        version: 2,
    })
}

#[test]
fn agents_round_trip_with_and_without_a_command() {
    for a in [
        agent(Some("run-agent --fast")),
        agent(None),
        agent(Some("")),
    ] {
        let back = round_trip::<wire::agent::Owned, _>(|b| write_agent(&a, b), read_agent);
        assert_eq!(back.unwrap(), a);
    }
}

#[test]
fn tasks_round_trip_with_attempts_and_optional_fields_set_or_absent() {
    for t in [full_task(), bare_task()] {
        let back = round_trip::<wire::task::Owned, _>(|b| write_task(&t, b), read_task);
        assert_eq!(back.unwrap(), t);
    }
}

#[test]
fn tasks_round_trip_with_their_parent_and_subtasks() {
    let mut data = bare_task().data().clone();
    for (parent, subtasks) in [
        (
            Some(ParentLink {
                task: TaskId::from_bits(7),
                waits: false,
            }),
            Vec::new(),
        ),
        (
            None,
            vec![Subtask {
                task: TaskId::from_bits(8),
                waits: true,
            }],
        ),
        (
            Some(ParentLink {
                task: TaskId::from_bits(7),
                waits: true,
            }),
            (0..16)
                .map(|i| Subtask {
                    task: TaskId::from_bits(100 + i),
                    waits: i % 2 == 0,
                })
                .collect(),
        ),
    ] {
        data.spec.parent = parent;
        data.subtasks = subtasks;
        let t = Task::restore(data.clone());
        let back = round_trip::<wire::task::Owned, _>(|b| write_task(&t, b), read_task).unwrap();
        assert_eq!(back.spec.parent, parent);
        assert_eq!(back.subtasks, t.subtasks);
        assert_eq!(back, t);
    }
}

#[test]
fn a_subtask_link_with_a_bad_id_is_an_error_not_a_panic() {
    let t = bare_task();
    let err = round_trip::<wire::task::Owned, _>(
        |mut b| {
            write_task(&t, b.reborrow())?;
            b.reborrow().init_parent().set_task("not-an-id");
            Ok(())
        },
        read_task,
    )
    .unwrap_err();
    assert!(matches!(err, DecodeError::Value(_)), "{err:?}");
    let err = round_trip::<wire::task::Owned, _>(
        |mut b| {
            write_task(&t, b.reborrow())?;
            b.reborrow().init_subtasks(1).get(0).set_task("");
            Ok(())
        },
        read_task,
    )
    .unwrap_err();
    assert!(matches!(err, DecodeError::Value(_)), "{err:?}");
}

#[test]
fn agent_scopes_round_trip_with_and_without_an_orchestration() {
    for orchestration in [Some(OrchestrationId::from_bits(42)), None] {
        let scope = AgentScope {
            task: TaskId::from_bits(0xfeed),
            attempt: 3,
            fencing: FencingToken::new(u64::MAX),
            orchestration,
            scopes: vec![
                MemoryScope::Global,
                MemoryScope::parse("repo:/home/me/src/ünï").unwrap(),
                MemoryScope::parse(&format!("orchestration:{}", OrchestrationId::from_bits(42)))
                    .unwrap(),
            ],
        };
        let back = round_trip::<wire::agent_scope::Owned, _>(
            |b| write_agent_scope(&scope, b),
            read_agent_scope,
        );
        assert_eq!(back.unwrap(), scope);
    }
    let err = round_trip::<wire::agent_scope::Owned, _>(
        |mut b| {
            b.set_task(TaskId::from_bits(1).to_string().as_str());
            b.init_scopes(1).set(0, "nowhere");
            Ok(())
        },
        read_agent_scope,
    )
    .unwrap_err();
    assert!(matches!(err, DecodeError::Value(_)), "{err:?}");
}

#[test]
fn every_keyword_survives_the_wire() {
    for state in TaskState::ALL {
        let mut t = bare_task();
        let mut data = t.data().clone();
        data.state = *state;
        t = Task::restore(data);
        let back = round_trip::<wire::task::Owned, _>(|b| write_task(&t, b), read_task);
        assert_eq!(back.unwrap().state, *state);
    }
    for status in AgentStatus::ALL {
        assert_eq!(
            agent_status_from_wire(agent_status_to_wire(*status)),
            *status
        );
    }
    for kind in AdapterKind::ALL {
        assert_eq!(adapter_from_wire(adapter_to_wire(*kind)), *kind);
    }
    for p in Priority::ALL {
        assert_eq!(priority_from_wire(priority_to_wire(*p)), *p);
    }
    for r in Risk::ALL {
        assert_eq!(risk_from_wire(risk_to_wire(*r)), *r);
    }
    for s in OrchestrationStatus::ALL {
        assert_eq!(
            orchestration_status_from_wire(orchestration_status_to_wire(*s)),
            *s
        );
    }
    for s in AttemptOutcome::ALL {
        assert_eq!(attempt_status_from_wire(attempt_status_to_wire(*s)), *s);
    }
    for t in [None, Some(Tier::Tactical), Some(Tier::Strategic)] {
        assert_eq!(tier_requirement_from_wire(tier_requirement_to_wire(t)), t);
    }
    for gate in Gate::ALL {
        let mut data = full_task().data().clone();
        if let Some(p) = data.pending.as_mut() {
            p.gate = *gate;
        }
        if let Some(d) = data.decision.as_mut() {
            d.gate = *gate;
        }
        let t = Task::restore(data);
        let back = round_trip::<wire::task::Owned, _>(|b| write_task(&t, b), read_task);
        assert_eq!(back.unwrap(), t);
    }
}

#[test]
fn every_wait_reason_round_trips_with_its_facts() {
    use maos_domain::{BlockReason, FailureKind, Gate, WaitReason};
    let name = |n: &str| AgentName::parse(n).unwrap();
    let reasons = vec![
        WaitReason::Dependency {
            task: TaskId::from_bits(7),
            title: Title::parse("build — ü").unwrap(),
            state: TaskState::Running,
        },
        WaitReason::MissingDependency {
            task: TaskId::from_bits(8),
        },
        WaitReason::Backoff {
            due: Some(at(5)),
            wait_ms: 5,
        },
        WaitReason::Backoff {
            due: None,
            wait_ms: 0,
        },
        WaitReason::Approval { gate: Gate::Tool },
        WaitReason::Blocked {
            reason: Some(BlockReason::CannotStart {
                attempt: 2,
                failure: FailureKind::Setup,
            }),
            words: Some("no such file".into()),
            cancelled_dependency: Some(TaskId::from_bits(9)),
            budget_spent: true,
        },
        WaitReason::Blocked {
            reason: None,
            words: None,
            cancelled_dependency: None,
            budget_spent: false,
        },
        WaitReason::Orchestration {
            orchestration: OrchestrationId::from_bits(4),
            status: OrchestrationStatus::Paused,
        },
        WaitReason::Budget {
            budget: maos_domain::Usd::from_micros(1),
        },
        WaitReason::Concern {
            mine: Concern::parse("src/**").unwrap(),
            theirs: Concern::parse("src/a.rs").unwrap(),
            holder: TaskId::from_bits(10),
        },
        WaitReason::NoCapableAgent {
            capabilities: caps(&["rust"]),
            tier: Some(Tier::Strategic),
            draining: vec![name("a")],
        },
        WaitReason::AgentsBusy {
            agents: vec![name("a"), name("b")],
        },
        WaitReason::AssignsSoon {
            agents: vec![name("a")],
        },
        WaitReason::ExternalOnly {
            agents: vec![name("x")],
        },
        WaitReason::BusyOrExternal {
            busy: vec![name("a")],
            external: vec![name("x")],
        },
        WaitReason::NextPass,
    ];
    for w in reasons {
        let back =
            round_trip::<wire::waiting::Owned, _>(|b| write_waiting(&w, b), read_waiting).unwrap();
        assert_eq!(back, w);
    }
    // A reason this build does not know (a newer daemon) is an error, not a panic.
    let unknown = round_trip::<wire::waiting::Owned, _>(
        |mut b| {
            b.set_reason(r#"{"wait":"from_the_future"}"#);
            Ok(())
        },
        read_waiting,
    );
    assert!(unknown.is_err(), "{unknown:?}");
}

#[test]
fn orchestration_reports_round_trip_with_what_needs_a_person() {
    let blocked = TaskId::from_bits(7);
    let ready = TaskId::from_bits(8);
    let full = OrchestrationReport {
        orchestration: orchestration(Some("Ship it")),
        by_state: TaskState::ALL
            .iter()
            .zip(0u64..)
            .map(|(s, n)| (*s, n))
            .collect(),
        tasks: 78,
        completed: 6,
        attempts: 12,
        wall_ms: 3_600_123,
        input_tokens: 1_234_567,
        output_tokens: 89_012,
        cost: Usd::from_micros(4_560_000),
        planning: Usage {
            input_tokens: 3_000,
            cached_input_tokens: 1_000,
            output_tokens: 400,
            cost: Usd::from_micros(8_500),
        },
        integration_branch: Some("maos/orchestration-42".into()),
        needs_a_person: vec![
            NeedsPerson {
                task: blocked,
                title: Title::parse("Fix the ünï build").unwrap(),
                state: TaskState::Blocked,
                waits: vec![WaitReason::Blocked {
                    reason: Some(BlockReason::MergeConflict {
                        into: "main".into(),
                        paths: vec!["src/a.rs".into()],
                    }),
                    words: None,
                    cancelled_dependency: None,
                    budget_spent: false,
                }],
                blocked: Some(BlockReason::MergeConflict {
                    into: "main".into(),
                    paths: vec!["src/a.rs".into()],
                }),
                next_steps: vec![
                    NextStep::Retry { task: blocked },
                    NextStep::Cancel { task: blocked },
                ],
            },
            NeedsPerson {
                task: ready,
                title: Title::parse("Write docs").unwrap(),
                state: TaskState::Ready,
                waits: vec![WaitReason::NoCapableAgent {
                    capabilities: caps(&["docs"]),
                    tier: Some(Tier::Strategic),
                    draining: vec![AgentName::parse("writer").unwrap()],
                }],
                blocked: None,
                next_steps: vec![
                    NextStep::ResumeAgent {
                        agent: AgentName::parse("writer").unwrap(),
                    },
                    NextStep::RegisterAgent,
                    NextStep::ShowTask { task: ready },
                    NextStep::Cancel { task: ready },
                ],
            },
        ],
        can_move: false,
    };
    let bare = OrchestrationReport {
        orchestration: orchestration(None),
        by_state: BTreeMap::new(),
        tasks: 0,
        completed: 0,
        attempts: 0,
        wall_ms: 0,
        input_tokens: 0,
        output_tokens: 0,
        cost: Usd::ZERO,
        planning: Usage::default(),
        integration_branch: None,
        needs_a_person: Vec::new(),
        can_move: true,
    };
    for r in [full, bare] {
        let back = round_trip::<wire::orchestration_report::Owned, _>(
            |b| write_orchestration_report(&r, b),
            read_orchestration_report,
        );
        assert_eq!(back.unwrap(), r);
    }
    // A next step this build does not know (a newer daemon) is an error, not a panic.
    let unknown = round_trip::<wire::orchestration_report::Owned, _>(
        |mut b| {
            write_orchestration(&orchestration(None), b.reborrow().init_orchestration());
            let mut n = b.init_needs_a_person(1).get(0);
            n.set_task(ready.to_string().as_str());
            n.set_title("t");
            n.init_next_steps(1)
                .set(0, r#"{"action":"from_the_future"}"#);
            Ok(())
        },
        read_orchestration_report,
    );
    assert!(unknown.is_err(), "{unknown:?}");
}

#[test]
fn approval_requests_round_trip_with_and_without_changes() {
    for changes in [Some("2 files changed, 10 insertions(+)".to_owned()), None] {
        let a = ApprovalRequest {
            task: full_task(),
            changes,
        };
        let back = round_trip::<wire::approval_request::Owned, _>(
            |b| write_approval_request(&a, b),
            read_approval_request,
        );
        assert_eq!(back.unwrap(), a);
    }
}

/// A plan with a task whose every optional field is set, and one with none.
fn plan() -> maos_domain::Plan {
    let key = |k: &str| maos_domain::PlanKey::parse(k).unwrap();
    maos_domain::Plan {
        goal: "Ship the login page — ünï".into(),
        name: Some(Title::parse("Login").unwrap()),
        notes: vec!["Keep the API stable.".into()],
        verify: Some("make check".into()),
        tasks: vec![
            maos_domain::PlannedTask {
                key: key("schema"),
                title: Title::parse("Write the schema").unwrap(),
                prompt: String::new(),
                capabilities: CapabilitySet::empty(),
                depends_on: Vec::new(),
                concerns: Vec::new(),
                risk: Risk::Low,
                verify: None,
                tier: None,
                max_attempts: MaxAttempts::default(),
                budget: None,
                timeout: None,
                priority: Priority::Normal,
                wants_port: false,
            },
            maos_domain::PlannedTask {
                key: key("ui"),
                title: Title::parse("Build the page").unwrap(),
                prompt: "Line one\nline two".into(),
                capabilities: caps(&["rust", "lang:typescript"]),
                depends_on: vec![key("schema")],
                concerns: vec![
                    Concern::parse("web/**").unwrap(),
                    Concern::parse("port:8080").unwrap(),
                ],
                risk: Risk::High,
                verify: Some("npm test".into()),
                tier: Some(Tier::Strategic),
                max_attempts: MaxAttempts::new(7).unwrap(),
                budget: Some(Usd::from_micros(1_500_000)),
                timeout: Some(DurationMs::parse("45m").unwrap()),
                priority: Priority::Urgent,
                wants_port: true,
            },
        ],
    }
}

/// An orchestration's plan history with every kind of record, both plan origins and optional
/// fields set and absent.
fn plan_history() -> PlanHistory {
    let planner = TaskId::from_bits(0x0099);
    let second = TaskId::from_bits(u128::MAX >> 3);
    PlanHistory {
        orchestration: orchestration(Some("Ship it")),
        versions: vec![
            PlanVersion {
                number: 1,
                plan: plan(),
                origin: maos_domain::PlanOrigin::Planner {
                    task: planner,
                    attempt: 2,
                    agent: AgentName::parse("claude-1").unwrap(),
                },
                rationale: Some("Schema first: the page needs it.".into()),
                proposed_at: at(10),
            },
            PlanVersion {
                number: 2,
                plan: maos_domain::Plan {
                    name: None,
                    notes: Vec::new(),
                    verify: None,
                    ..plan()
                },
                origin: maos_domain::PlanOrigin::Person,
                rationale: None,
                proposed_at: at(20),
            },
        ],
        record: vec![
            PlanRecord::Planning {
                task: planner,
                max_tasks: 30,
                discussion: Some(TaskId::from_bits(0x55)),
                at: at(1),
            },
            PlanRecord::Failed {
                task: planner,
                text: Some("```json\n{\"tasks\": []}\n```".into()),
                problems: vec!["1:1: the plan has no tasks".into(), "ünï".into()],
                at: at(5),
            },
            PlanRecord::Planning {
                task: second,
                max_tasks: 500,
                discussion: None,
                at: at(6),
            },
            PlanRecord::Failed {
                task: second,
                text: None,
                problems: Vec::new(),
                at: at(8),
            },
            PlanRecord::Proposed {
                version: 1,
                at: at(10),
            },
            PlanRecord::Rejected {
                version: 1,
                reason: Some("too big".into()),
                at: at(12),
            },
            PlanRecord::Rejected {
                version: 0,
                reason: None,
                at: at(13),
            },
            PlanRecord::Proposed {
                version: 2,
                at: at(20),
            },
            PlanRecord::Approved {
                version: 2,
                by: PlanApprover::Person,
                tasks: [
                    (
                        maos_domain::PlanKey::parse("greet").unwrap(),
                        TaskId::from_bits(5),
                    ),
                    (
                        maos_domain::PlanKey::parse("tests").unwrap(),
                        TaskId::from_bits(6),
                    ),
                ]
                .into_iter()
                .collect(),
                superseded: vec![TaskId::from_bits(4)],
                at: at(21),
            },
            PlanRecord::Approved {
                version: 2,
                by: PlanApprover::Config,
                tasks: Default::default(),
                superseded: Vec::new(),
                at: at(22),
            },
        ],
    }
}

#[test]
fn plan_histories_round_trip_with_every_record_kind() {
    let full = plan_history();
    let empty = PlanHistory {
        orchestration: orchestration(None),
        versions: Vec::new(),
        record: Vec::new(),
    };
    for h in [full, empty] {
        let back = round_trip::<wire::plan_history::Owned, _>(
            |b| write_plan_history(&h, b),
            read_plan_history,
        );
        assert_eq!(back.unwrap(), h);
    }
}

#[test]
fn plan_versions_travel_as_the_json_of_plan_version() {
    let h = plan_history();
    let mut message = capnp::message::Builder::new_default();
    write_plan_history(&h, message.init_root()).unwrap();
    let r = message
        .get_root_as_reader::<wire::plan_history::Reader<'_>>()
        .unwrap();
    let versions = r.get_versions().unwrap();
    assert_eq!(versions.len(), 2);
    let first: serde_json::Value =
        serde_json::from_str(versions.get(0).unwrap().to_str().unwrap()).unwrap();
    assert_eq!(first["number"], 1);
    assert_eq!(first["origin"]["kind"], "planner");
    assert_eq!(first["plan"]["tasks"][1]["key"], "ui");
    let by = r.get_record().unwrap().get(8);
    let wire::plan_record::Which::Approved(approved) = by.which().unwrap() else {
        panic!("the ninth record is an approval")
    };
    assert_eq!(approved.get_by().unwrap().to_str().unwrap(), "person");
}

#[test]
fn planning_commands_and_answers_round_trip() {
    let full = PlanGoal {
        goal: "Add a login page\nwith tests".into(),
        name: Some(Title::parse("Login").unwrap()),
        notes: vec!["Use the existing session store.".into(), "ünï".into()],
        workspace: Some(WorkspaceSpec {
            repo: "/home/me/src/app".into(),
            base: Some("main".into()),
        }),
        planner: Some(AgentName::parse("claude-1").unwrap()),
        max_tasks: 12,
        rounds: MaxAttempts::new(2).unwrap(),
        budget: Some(Usd::from_micros(3_000_000)),
        timeout: Some(DurationMs::parse("10m").unwrap()),
        discussion: Some(TaskId::from_bits(0x66)),
    };
    let bare = PlanGoal {
        goal: "x".into(),
        name: None,
        notes: Vec::new(),
        workspace: None,
        planner: None,
        max_tasks: PlanGoal::DEFAULT_MAX_TASKS,
        rounds: MaxAttempts::default(),
        budget: None,
        timeout: None,
        discussion: None,
    };
    for g in [full, bare] {
        let back = round_trip::<wire::plan_goal_request::Owned, _>(
            |b| write_plan_goal(&g, b),
            read_plan_goal,
        );
        assert_eq!(back.unwrap(), g);
    }

    let started = PlanningStarted {
        orchestration: orchestration(Some("Ship it")),
        task: full_task(),
    };
    let back = round_trip::<wire::planning_started::Owned, _>(
        |b| write_planning_started(&started, b),
        read_planning_started,
    );
    assert_eq!(back.unwrap(), started);
}

#[test]
fn bad_planning_values_from_the_wire_are_errors_not_panics() {
    // Zero rounds.
    let back = round_trip::<wire::plan_goal_request::Owned, _>(
        |mut b| {
            b.set_goal("g");
            b.set_max_tasks(3);
            Ok(())
        },
        read_plan_goal,
    );
    assert!(
        matches!(&back, Err(DecodeError::Value(e)) if e.what == "max attempts"),
        "{back:?}"
    );
    // An approver nobody knows, a version that is not a plan version, a task that is no id.
    let back = round_trip::<wire::plan_record::Owned, _>(
        |b| {
            let mut g = b.init_approved();
            g.set_version(1);
            g.set_by("robot");
            Ok(())
        },
        read_plan_record,
    );
    assert!(
        matches!(&back, Err(DecodeError::Unknown { what: "plan approver", value }) if value == "robot"),
        "{back:?}"
    );
    let long = format!("{{\"number\": 1, \"pad\": \"{}\"}}", "x".repeat(10_000));
    let back = round_trip::<wire::plan_history::Owned, _>(
        |mut b| {
            write_orchestration(&orchestration(None), b.reborrow().init_orchestration());
            b.init_versions(1).set(0, long.as_str());
            Ok(())
        },
        read_plan_history,
    );
    let Err(DecodeError::Unknown { what, value }) = &back else {
        panic!("expected an unknown plan version, got {back:?}");
    };
    assert_eq!(*what, "plan version");
    assert!(
        value.len() < 1_000,
        "the error quotes the start only: {value}"
    );
    let back = round_trip::<wire::plan_record::Owned, _>(
        |b| {
            b.init_planning().set_task("nope");
            Ok(())
        },
        read_plan_record,
    );
    assert!(
        matches!(&back, Err(DecodeError::Value(e)) if e.what == "task id"),
        "{back:?}"
    );
    // A planning task (of an orchestration) that is no id.
    let back = round_trip::<wire::orchestration::Owned, _>(
        |mut b| {
            b.set_id(OrchestrationId::from_bits(1).to_string().as_str());
            b.set_name("o");
            b.init_planning().set_task("nope");
            Ok(())
        },
        read_orchestration,
    );
    assert!(
        matches!(&back, Err(DecodeError::Value(e)) if e.what == "task id"),
        "{back:?}"
    );
}

#[test]
fn orchestrations_round_trip() {
    for o in [orchestration(Some("Ship it")), orchestration(None)] {
        let back = round_trip::<wire::orchestration::Owned, _>(
            |b| {
                write_orchestration(&o, b);
                Ok(())
            },
            read_orchestration,
        );
        assert_eq!(back.unwrap(), o);
    }
}

#[test]
fn events_round_trip_with_their_payload_as_the_aggregates_event_in_json() {
    let t = full_task();
    let events = vec![
        StoredEvent {
            seq: 1,
            at: at(0),
            event: DomainEvent::Agent {
                id: agent(None).id,
                event: AgentEvent::Registered {
                    spec: Box::new(maos_domain::agent::AgentSpec {
                        name: agent(None).name.clone(),
                        adapter: AdapterKind::Command,
                        capabilities: caps(&["rust"]),
                        tier: Tier::Tactical,
                        slots: Slots::default(),
                        command: Some("./agent.sh".into()),
                        settings: full_settings(),
                    }),
                },
            },
        },
        StoredEvent {
            seq: 2,
            at: at(1),
            event: DomainEvent::Task {
                id: t.id,
                event: TaskEvent::Created {
                    spec: Box::new(t.spec.clone()),
                },
            },
        },
        StoredEvent {
            seq: 3,
            at: at(2),
            event: DomainEvent::Task {
                id: t.id,
                event: TaskEvent::Assigned {
                    attempt: 1,
                    agent: AgentName::parse("claude-1").unwrap(),
                    fencing: FencingToken::new(1),
                    lease_expires_at: at(10_002),
                },
            },
        },
        StoredEvent {
            seq: 4,
            at: at(3),
            event: DomainEvent::Orchestration {
                id: OrchestrationId::from_bits(42),
                event: OrchestrationEvent::Created {
                    name: Title::parse("Release").unwrap(),
                    goal: None,
                    workspace: Some(WorkspaceSpec {
                        repo: "/srv/repo".into(),
                        base: Some("v1".into()),
                    }),
                    verify: None,
                    notes: vec!["Pinned.".into()],
                    planned: true,
                },
            },
        },
    ];
    for e in &events {
        let back = round_trip::<wire::event::Owned, _>(|b| write_event(e, b), read_event);
        assert_eq!(&back.unwrap(), e);
    }

    // The payload is the aggregate's event, as `maos events --json` prints it under `data`.
    let mut message = capnp::message::Builder::new_default();
    write_event(&events[2], message.init_root()).unwrap();
    let r: wire::event::Reader<'_> = message.get_root_as_reader().unwrap();
    assert_eq!(r.get_kind().unwrap().to_str().unwrap(), "task.assigned");
    assert_eq!(r.get_aggregate().unwrap().to_str().unwrap(), "task");
    assert_eq!(
        r.get_aggregate_id().unwrap().to_str().unwrap(),
        t.id.to_string()
    );
    let payload: serde_json::Value =
        serde_json::from_str(r.get_payload().unwrap().to_str().unwrap()).unwrap();
    assert_eq!(
        payload,
        serde_json::json!({
            "type": "assigned",
            "attempt": 1,
            "agent": "claude-1",
            "fencing": 1,
            "lease_expires_at": T0 + 10_002,
        })
    );
}

#[test]
fn status_reports_round_trip() {
    let report = StatusReport {
        tasks: BTreeMap::from([(TaskState::Ready, 3), (TaskState::AwaitingApproval, 1)]),
        agents: BTreeMap::from([(AgentStatus::Available, 2), (AgentStatus::Removed, 1)]),
        orchestrations: 4,
        last_event: 99,
        usage: maos_domain::Usage {
            input_tokens: 7,
            cached_input_tokens: 3,
            output_tokens: 11,
            cost: maos_domain::Usd::from_micros(13),
        },
    };
    let back = round_trip::<wire::status::Owned, _>(|b| write_status(&report, b), read_status);
    assert_eq!(back.unwrap(), report);
    let empty = StatusReport::default();
    let back = round_trip::<wire::status::Owned, _>(|b| write_status(&empty, b), read_status);
    assert_eq!(back.unwrap(), empty);
}

#[test]
fn answers_round_trip() {
    let created = Created {
        task: full_task(),
        created: false,
    };
    let back = round_trip::<wire::created::Owned, _>(|b| write_created(&created, b), read_created);
    assert_eq!(back.unwrap(), created);

    let assignment = Assignment {
        task: full_task(),
        agent: AgentName::parse("claude-1").unwrap(),
        attempt: 2,
        fencing: FencingToken::new(2),
    };
    let back = round_trip::<wire::assignment::Owned, _>(
        |b| write_assignment(&assignment, b),
        read_assignment,
    );
    assert_eq!(back.unwrap(), assignment);

    for page in [
        TaskPage {
            tasks: vec![full_task(), bare_task()],
            next_cursor: Some(TaskCursor::after(&bare_task())),
        },
        TaskPage {
            tasks: Vec::new(),
            next_cursor: None,
        },
    ] {
        let back =
            round_trip::<wire::task_page::Owned, _>(|b| write_task_page(&page, b), read_task_page);
        assert_eq!(back.unwrap(), page);
    }

    let info = DaemonInfo {
        pid: 4242,
        version: "0.1.0".into(),
        protocol: 1,
        socket: "/run/user/1000/maos/0123456789abcdef.sock".into(),
        database: "/home/me/.local/share/maos/maos.db".into(),
        started_at: at(0),
        uptime: Duration::from_millis(86_400_123),
        containment: "cgroup".into(),
        containment_root: Some("/sys/fs/cgroup/maos-0123456789abcdef".into()),
        ui: Some("http://127.0.0.1:8787/".into()),
    };
    let back = round_trip::<wire::daemon_info::Owned, _>(
        |b| {
            write_daemon_info(&info, b);
            Ok(())
        },
        read_daemon_info,
    );
    assert_eq!(back.unwrap(), info);
}

#[test]
fn commands_and_filters_round_trip() {
    let register = RegisterAgent {
        name: AgentName::parse("ollama.qwen").unwrap(),
        adapter: AdapterKind::Ollama,
        capabilities: caps(&["rust", "review"]),
        tier: Tier::Tactical,
        slots: Slots::new(2).unwrap(),
        command: None,
        settings: maos_domain::AgentSettings::default(),
    };
    let back =
        round_trip::<wire::new_agent::Owned, _>(|b| write_new_agent(&register, b), read_new_agent);
    assert_eq!(back.unwrap(), register);
    let with_command = RegisterAgent {
        command: Some("./run.sh {prompt}".into()),
        adapter: AdapterKind::Command,
        settings: full_settings(),
        ..register
    };
    let back = round_trip::<wire::new_agent::Owned, _>(
        |b| write_new_agent(&with_command, b),
        read_new_agent,
    );
    assert_eq!(back.unwrap(), with_command);

    let full = CreateTask {
        title: Title::parse("Write the docs").unwrap(),
        prompt: "Explain the protocol".into(),
        capabilities: caps(&["docs"]),
        priority: Priority::High,
        risk: Risk::Medium,
        tier: Some(Tier::Strategic),
        depends_on: vec![IdRef::parse("abcd").unwrap(), IdRef::parse("x9yz").unwrap()],
        orchestration: Some(IdRef::parse("0123").unwrap()),
        max_attempts: MaxAttempts::new(1).unwrap(),
        timeout: Some(DurationMs::parse("90s").unwrap()),
        idempotency_key: Some(IdempotencyKey::parse("k-1").unwrap()),
        budget: Some(maos_domain::Usd::from_micros(500_000)),
        workspace: Some(WorkspaceSpec {
            repo: "../repo".into(),
            base: Some("feature/x".into()),
        }),
        verify: Some("npm test".into()),
        wants_port: true,
        concerns: vec![Concern::parse("docs/*.md").unwrap()],
        agent: Some(AgentName::parse("writer-2").unwrap()),
        lessons: true,
    };
    for cmd in [full, CreateTask::titled(Title::parse("Minimal").unwrap())] {
        let back =
            round_trip::<wire::new_task::Owned, _>(|b| write_new_task(&cmd, b), read_new_task);
        assert_eq!(back.unwrap(), cmd);
    }

    for cmd in [
        CreateOrchestration {
            name: Title::parse("Release 2").unwrap(),
            goal: Some("Ship it".into()),
            workspace: Some(WorkspaceSpec {
                repo: "/srv/repo".into(),
                base: Some("main".into()),
            }),
            verify: Some("make check".into()),
            notes: vec!["Pinned.".into()],
        },
        CreateOrchestration {
            name: Title::parse("Chores").unwrap(),
            goal: None,
            workspace: Some(WorkspaceSpec {
                repo: "/srv/repo".into(),
                base: None,
            }),
            verify: None,
            notes: Vec::new(),
        },
        CreateOrchestration {
            name: Title::parse("Bare").unwrap(),
            goal: None,
            workspace: None,
            verify: None,
            notes: Vec::new(),
        },
    ] {
        let back = round_trip::<wire::new_orchestration::Owned, _>(
            |b| write_new_orchestration(&cmd, b),
            read_new_orchestration,
        );
        assert_eq!(back.unwrap(), cmd);
    }

    for req in [
        GcRequest {
            dry_run: false,
            force: false,
            older_than: Duration::ZERO,
        },
        GcRequest {
            dry_run: true,
            force: true,
            older_than: Duration::from_millis(7 * 86_400_000 + 1),
        },
    ] {
        let back = round_trip::<wire::gc_request::Owned, _>(
            |b| {
                write_gc_request(&req, b);
                Ok(())
            },
            |r| Ok(read_gc_request(r)),
        );
        assert_eq!(back.unwrap(), req);
    }

    for filter in [
        AgentFilter::default(),
        AgentFilter {
            statuses: vec![AgentStatus::Draining, AgentStatus::Removed],
            capability: Some(Capability::parse("rust").unwrap()),
        },
    ] {
        let back = round_trip::<wire::agent_filter::Owned, _>(
            |b| write_agent_filter(&filter, b),
            read_agent_filter,
        );
        assert_eq!(back.unwrap(), filter);
    }

    for (filter, page) in [
        (TaskFilter::default(), Page::default()),
        (
            TaskFilter {
                statuses: vec![TaskState::Ready, TaskState::Escalated],
                orchestration: Some(OrchestrationId::from_bits(42)),
                capability: Some(Capability::parse("test").unwrap()),
            },
            Page {
                limit: 7,
                cursor: Some(TaskCursor::after(&full_task())),
            },
        ),
    ] {
        let back = round_trip::<wire::task_filter::Owned, _>(
            |b| write_task_filter(&filter, &page, b),
            read_task_filter,
        );
        assert_eq!(back.unwrap(), (filter, page));
    }
}

#[test]
fn run_reports_round_trip_with_checkpoint_and_verification_set_or_absent() {
    let full = RunReport {
        exit: Some(Exit::Signal(15)),
        usage: maos_domain::Usage {
            input_tokens: 1,
            cached_input_tokens: 2,
            output_tokens: 3,
            cost: maos_domain::Usd::from_micros(4),
        },
        failure: Some(FailureKind::Timeout),
        checkpoint: Some("0123456789abcdef0123456789abcdef01234567".into()),
        verification: Some(Verification {
            passed: false,
            output: "error[E0308]: mismatched types\n".into(),
        }),
        diff_stat: Some("1 file changed, 1 deletion(-)".into()),
        permission_denials: vec!["Write(/etc/hosts)".into(), "WebFetch".into()],
    };
    for rep in [full, RunReport::default()] {
        let back = round_trip::<wire::run_report::Owned, _>(
            |b| {
                write_run_report(&rep, b);
                Ok(())
            },
            |r| read_run_report(true, Ok(r)),
        );
        assert_eq!(back.unwrap(), rep);
    }
}

#[test]
fn workspace_answers_round_trip() {
    for entry in [
        GcEntry {
            task: TaskId::from_bits(99),
            path: "/srv/repo/.maos/worktrees/abc".into(),
            removed: true,
            kept_because: None,
        },
        GcEntry {
            task: TaskId::from_bits(u128::MAX),
            path: "/tmp/ünï".into(),
            removed: false,
            kept_because: Some("it has uncommitted changes".into()),
        },
    ] {
        let back = round_trip::<wire::gc_entry::Owned, _>(
            |b| {
                write_gc_entry(&entry, b);
                Ok(())
            },
            read_gc_entry,
        );
        assert_eq!(back.unwrap(), entry);
    }

    for merged in [true, false] {
        let report = MergeReport {
            orchestration: orchestration(Some("Ship it")),
            branch: "maos/orch-abc".into(),
            into: "main".into(),
            commit: "89abcdef0123456789abcdef0123456789abcdef".into(),
            merged,
        };
        let back = round_trip::<wire::merge_report::Owned, _>(
            |b| {
                write_merge_report(&report, b);
                Ok(())
            },
            read_merge_report,
        );
        assert_eq!(back.unwrap(), report);
    }
}

#[test]
fn bad_values_from_the_wire_are_errors_not_panics() {
    // A name the domain refuses.
    let back = round_trip::<wire::new_agent::Owned, _>(
        |mut b| {
            b.set_name("Claude 2");
            b.set_slots(1);
            Ok(())
        },
        read_new_agent,
    );
    let Err(DecodeError::Value(e)) = back else {
        panic!("expected a value error, got {back:?}");
    };
    assert_eq!(e.what, "agent name");

    // Zero slots, a zero-length title, a short id, an unknown capability syntax.
    let back = round_trip::<wire::new_agent::Owned, _>(
        |mut b| {
            b.set_name("ok");
            Ok(())
        },
        read_new_agent,
    );
    assert!(matches!(back, Err(DecodeError::Value(e)) if e.what == "slots"));
    let back = round_trip::<wire::new_task::Owned, _>(|_| Ok(()), read_new_task);
    assert!(matches!(back, Err(DecodeError::Value(e)) if e.what == "title"));
    let back = round_trip::<wire::task::Owned, _>(
        |mut b| {
            b.set_id("abc");
            b.set_title("x");
            b.set_max_attempts(1);
            Ok(())
        },
        read_task,
    );
    assert!(matches!(back, Err(DecodeError::Value(e)) if e.what == "task id"));
    let back = round_trip::<wire::gc_entry::Owned, _>(
        |mut b| {
            b.set_task("not-an-id");
            b.set_path("/tmp/x");
            Ok(())
        },
        read_gc_entry,
    );
    assert!(matches!(back, Err(DecodeError::Value(e)) if e.what == "task id"));
    let back = round_trip::<wire::new_orchestration::Owned, _>(|_| Ok(()), read_new_orchestration);
    assert!(matches!(back, Err(DecodeError::Value(e)) if e.what == "title"));

    // A payload that is not the aggregate's event.
    let back = round_trip::<wire::event::Owned, _>(
        |mut b| {
            b.set_aggregate("task");
            b.set_aggregate_id(TaskId::from_bits(1).to_string().as_str());
            b.set_payload(r#"{"type":"registered"}"#);
            Ok(())
        },
        read_event,
    );
    assert!(matches!(back, Err(DecodeError::Payload(_))), "{back:?}");
    let back = round_trip::<wire::event::Owned, _>(
        |mut b| {
            b.set_aggregate("planet");
            Ok(())
        },
        read_event,
    );
    assert!(matches!(back, Err(DecodeError::Value(_))), "{back:?}");

    // Status counts with a key that is no state.
    let back = round_trip::<wire::status::Owned, _>(
        |b| {
            let mut c = b.init_tasks(1).get(0);
            c.set_key("sleeping");
            Ok(())
        },
        read_status,
    );
    assert!(matches!(back, Err(DecodeError::Value(_))));

    // Text that is not UTF-8.
    let back = round_trip::<wire::orchestration::Owned, _>(
        |mut b| {
            b.set_id(OrchestrationId::from_bits(1).to_string().as_str());
            let name = b.init_name(2);
            name.as_bytes_mut().copy_from_slice(&[0xff, 0xfe]);
            Ok(())
        },
        read_orchestration,
    );
    assert!(matches!(back, Err(DecodeError::Message(_))), "{back:?}");
}

#[test]
fn errors_cross_the_wire_with_kind_message_and_hint() {
    let errors = [
        TaskError::Ambiguous {
            prefix: "ab".into(),
            candidates: vec!["ab1".into(), "ab2".into()],
        },
        TaskError::Transition(TransitionError::StaleAttempt {
            task: TaskId::from_bits(5),
            presented: 1,
            current: 2,
        }),
        TaskError::Invalid(Title::parse("").unwrap_err()),
        TaskError::Denied(maos_application::Denial::UnknownCredential),
        TaskError::Denied(maos_application::Denial::StaleAttempt {
            task: TaskId::from_bits(5),
            attempt: 2,
        }),
        TaskError::Refused(Box::new(maos_application::Refusal::Subtasks {
            task: TaskId::from_bits(5),
            why: "17 subtasks were asked for".into(),
        })),
    ];
    // The front end's hints (here: the message echoed, or none for invalid input).
    fn hints(e: &(dyn std::error::Error + 'static)) -> Option<String> {
        match e.downcast_ref::<TaskError>() {
            Some(TaskError::Invalid(_)) => None,
            _ => Some(format!("hint for: {e}")),
        }
    }
    for e in errors {
        let back = round_trip::<wire::error::Owned, _>(
            |b| {
                write_error(&e, hints, b);
                Ok(())
            },
            |r| Ok(read_error(r)),
        )
        .unwrap();
        assert_eq!(back.kind, e.kind());
        assert_eq!(back.message, e.to_string());
        assert_eq!(back.hint, hints(&e));
        // Wrapped as the client does, it reports the same.
        let remote = TaskError::Remote(back.clone());
        assert_eq!(
            (remote.kind(), remote.to_string()),
            (e.kind(), e.to_string())
        );
        assert_eq!(hints(&e), back.hint);
    }

    for kind in [
        ErrorKind::InvalidInput,
        ErrorKind::NotFound,
        ErrorKind::Conflict,
        ErrorKind::Storage,
        ErrorKind::Unavailable,
        ErrorKind::Internal,
        ErrorKind::Denied,
    ] {
        assert_eq!(
            crate::error::kind_from_wire(crate::error::kind_to_wire(kind)),
            kind
        );
    }
    assert_eq!(
        crate::error::kind_from_wire(wire::ErrorKind::VersionMismatch),
        ErrorKind::Unavailable
    );
}

fn memory(provenance: Provenance, forgotten: Option<&str>, expires: Option<i64>) -> Memory {
    Memory::restore(MemoryData {
        id: MemoryId::from_bits(0x0abc_def0_1234),
        tier: MemoryTier::Ephemeral,
        scope: MemoryScope::parse("repo:/srv/ünï code").unwrap(),
        text: MemoryText::parse("Line one.\nLine \"two\" with NEAR( and *.").unwrap(),
        tags: Tags::parse(["ci", "flaky-tests"]).unwrap(),
        provenance,
        pinned: true,
        state: if forgotten.is_some() {
            MemoryState::Forgotten
        } else {
            MemoryState::Live
        },
        forgotten_because: forgotten.map(str::to_owned),
        created_at: at(0),
        updated_at: at(7),
        expires_at: expires.map(at),
        version: 3,
    })
}

#[test]
fn memory_entries_round_trip() {
    let attempt = Provenance::Attempt {
        task: TaskId::from_bits(77),
        attempt: 2,
    };
    for m in [
        memory(Provenance::Person, None, None),
        memory(attempt, Some("superseded"), Some(86_400_000)),
    ] {
        let back = round_trip::<wire::memory::Owned, _>(|b| write_memory(&m, b), read_memory);
        assert_eq!(back.unwrap(), m);
    }
    for tier in MemoryTier::ALL {
        assert_eq!(memory_tier_from_wire(memory_tier_to_wire(*tier)), *tier);
    }
    for state in MemoryState::ALL {
        assert_eq!(memory_state_from_wire(memory_state_to_wire(*state)), *state);
    }

    let add = AddMemory {
        tier: MemoryTier::Critical,
        scope: MemoryScope::Orchestration(OrchestrationId::from_bits(5)),
        text: MemoryText::parse("never force-push main").unwrap(),
        tags: Tags::parse(["git"]).unwrap(),
        provenance: attempt,
    };
    let back =
        round_trip::<wire::new_memory::Owned, _>(|b| write_new_memory(&add, b), read_new_memory);
    assert_eq!(back.unwrap(), add);

    for filter in [
        MemoryFilter::default(),
        MemoryFilter {
            scopes: vec![MemoryScope::Global, MemoryScope::parse("repo:/a").unwrap()],
            tiers: vec![MemoryTier::Critical, MemoryTier::Routine],
            tag: Some(Tag::parse("ci").unwrap()),
            all: true,
        },
    ] {
        let back = round_trip::<wire::memory_filter::Owned, _>(
            |b| write_memory_filter(&filter, b),
            read_memory_filter,
        );
        assert_eq!(back.unwrap(), filter);
    }

    let m = memory(Provenance::Person, None, None);
    for next_cursor in [None, Some(MemoryCursor::after(&m))] {
        let page = MemoryList {
            memories: vec![m.clone(), memory(attempt, Some("x"), Some(5))],
            next_cursor,
        };
        let back = round_trip::<wire::memory_page::Owned, _>(
            |b| write_memory_page(&page, b),
            read_memory_page,
        );
        assert_eq!(back.unwrap(), page);
    }
    let hits = MemoryHits {
        hits: vec![
            MemoryHit {
                memory: m.clone(),
                score: 3.25,
            },
            MemoryHit {
                memory: memory(attempt, None, None),
                score: 0.125,
            },
        ],
        every_word: false,
    };
    let back = round_trip::<wire::memory_hits::Owned, _>(
        |b| write_memory_hits(&hits, b),
        read_memory_hits,
    );
    assert_eq!(back.unwrap(), hits);

    // Memory events travel as any other.
    let e = StoredEvent {
        seq: 9,
        at: at(1),
        event: DomainEvent::Memory {
            id: m.id,
            event: MemoryEvent::Forgotten {
                reason: Some("old".into()),
            },
        },
    };
    let back = round_trip::<wire::event::Owned, _>(|b| write_event(&e, b), read_event);
    assert_eq!(back.unwrap(), e);
}

#[test]
fn bad_memory_values_from_the_wire_are_errors() {
    // A text over the limit, a bad scope and a bad tag are refused on reading.
    let mut m = memory(Provenance::Person, None, None);
    let mut message = capnp::message::Builder::new_default();
    write_memory(&m, message.init_root()).unwrap();
    {
        let mut b: wire::memory::Builder<'_> = message.get_root().unwrap();
        b.set_text("x".repeat(MemoryText::MAX_BYTES + 1).as_str());
    }
    let r: wire::memory::Reader<'_> = message.get_root_as_reader().unwrap();
    assert!(matches!(read_memory(r), Err(DecodeError::Value(_))));

    let mut message = capnp::message::Builder::new_default();
    let mut data = m.data().clone();
    data.tags = Tags::empty();
    m = Memory::restore(data);
    write_memory(&m, message.init_root()).unwrap();
    {
        let mut b: wire::memory::Builder<'_> = message.get_root().unwrap();
        b.set_scope("repo:relative");
    }
    let r: wire::memory::Reader<'_> = message.get_root_as_reader().unwrap();
    assert!(read_memory(r).is_err());

    let mut message = capnp::message::Builder::new_default();
    {
        let mut b: wire::memory_filter::Builder<'_> = message.init_root();
        b.set_tag("Not A Tag");
    }
    let r: wire::memory_filter::Reader<'_> = message.get_root_as_reader().unwrap();
    assert!(read_memory_filter(r).is_err());
    // A query without a word is refused on reading.
    let mut message = capnp::message::Builder::new_default();
    {
        let mut b: wire::memory_filter::Builder<'_> = message.init_root();
        b.set_tag("\"*\"");
    }
    let r: wire::memory_filter::Reader<'_> = message.get_root_as_reader().unwrap();
    assert!(read_memory_query(r.get_tag()).is_err());
}
