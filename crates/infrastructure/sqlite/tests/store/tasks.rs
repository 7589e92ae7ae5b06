//! Task use cases end to end: create (idempotency, dependencies, cycles), promotion and blocking
//! of dependents, assignment (named and balanced), attempts with fencing, retries, cancellation,
//! approval by risk, and slot accounting. Every refusal is shown to write nothing.

use maos_application::{AssignTask, CreateTask, IdRef, MaosApi, ReadStore, TaskError};
use maos_domain::policy::balancer;
use maos_domain::{
    AgentStatus, BlockReason, FencingToken, IdempotencyKey, MaxAttempts, Risk, TaskEvent, TaskId,
    TaskState, Tier, TransitionError,
};

use crate::support::{Db, Rng, agent, agent_name, caps, kinds, raw_connection, refs, task};

fn key(k: &str) -> Option<IdempotencyKey> {
    Some(IdempotencyKey::parse(k).unwrap())
}

fn assign_cmd(task: TaskId, agent: Option<&str>) -> AssignTask {
    AssignTask {
        task: IdRef::from(task),
        agent: agent.map(agent_name),
    }
}

fn task_events(db: &Db, id: TaskId) -> Vec<&'static str> {
    kinds(&db.store().events_of(&id.to_string()).unwrap())
}

#[test]
fn create_with_an_idempotency_key_returns_the_first_task_and_writes_nothing_more() {
    let db = Db::new();
    let first = db
        .svc
        .create_task(CreateTask {
            idempotency_key: key("req-1"),
            ..task("first")
        })
        .unwrap();
    assert!(first.created);
    assert_eq!(first.task.state, TaskState::Ready);
    assert_eq!(
        task_events(&db, first.task.id),
        ["task.created", "task.ready"]
    );

    // The same key with different content: the first task comes back, nothing is written.
    let before = db.snapshot();
    let again = db
        .svc
        .create_task(CreateTask {
            idempotency_key: key("req-1"),
            capabilities: caps(&["rust"]),
            ..task("second")
        })
        .unwrap();
    assert!(!again.created);
    assert_eq!(again.task, first.task);
    db.assert_unchanged(&before);

    // Inside one batch, the second use of a key returns the first's task.
    let batch = db
        .svc
        .create_tasks(vec![
            CreateTask {
                idempotency_key: key("req-2"),
                ..task("batch a")
            },
            CreateTask {
                idempotency_key: key("req-2"),
                ..task("batch b")
            },
            CreateTask {
                idempotency_key: key("req-1"),
                ..task("batch c")
            },
        ])
        .unwrap();
    assert_eq!(
        batch.iter().map(|c| c.created).collect::<Vec<_>>(),
        [true, false, false]
    );
    assert_eq!(batch[1].task, batch[0].task);
    assert_eq!(batch[2].task, first.task);
    let tasks = db.tasks();
    assert_eq!(tasks.len(), 2);
    assert_eq!(db.events().len(), 4);
}

#[test]
fn a_dependency_on_a_missing_task_or_orchestration_is_refused() {
    let db = Db::new();
    let real = db.create_titled("real");
    let ghost = TaskId::from_bits(0xdead_beef);

    let err = db.refused(|s| {
        s.create_task(CreateTask {
            depends_on: refs(&[real.id, ghost]),
            ..task("needs a ghost")
        })
    });
    assert!(
        matches!(&err, TaskError::DependencyNotFound { reference } if *reference == ghost.to_string()),
        "{err:?}"
    );

    // In a batch, one bad create refuses the whole batch.
    let err = db.refused(|s| {
        s.create_tasks(vec![
            task("fine"),
            CreateTask {
                depends_on: refs(&[ghost]),
                ..task("bad")
            },
        ])
    });
    assert!(
        matches!(err, TaskError::DependencyNotFound { .. }),
        "{err:?}"
    );

    let err = db.refused(|s| {
        s.create_task(CreateTask {
            orchestration: Some(IdRef::parse("zzzz").unwrap()),
            ..task("lost")
        })
    });
    assert!(
        matches!(err, TaskError::OrchestrationNotFound { .. }),
        "{err:?}"
    );

    // add_dependency on a missing task, too.
    let err = db.refused(|s| s.add_dependency(&IdRef::from(real.id), &IdRef::from(ghost)));
    assert!(
        matches!(err, TaskError::DependencyNotFound { .. }),
        "{err:?}"
    );
    let err = db.refused(|s| s.add_dependency(&IdRef::from(ghost), &IdRef::from(real.id)));
    assert!(matches!(err, TaskError::NotFound { .. }), "{err:?}");
}

#[test]
fn a_dependency_cycle_is_refused_with_the_cycle_in_the_error() {
    let db = Db::new();
    let a = db.create_titled("a");
    let b = db.create(CreateTask {
        depends_on: refs(&[a.id]),
        ..task("b")
    });
    let c = db.create(CreateTask {
        depends_on: refs(&[b.id]),
        ..task("c")
    });

    // a -> c would close a -> c -> b -> a.
    let err = db.refused(|s| s.add_dependency(&IdRef::from(a.id), &IdRef::from(c.id)));
    match &err {
        TaskError::DependencyCycle { cycle } => {
            assert_eq!(
                cycle,
                &[a.id.short(), c.id.short(), b.id.short(), a.id.short()]
            );
            assert!(err.to_string().contains(&cycle.join(" -> ")), "{err}");
        }
        other => panic!("expected a cycle, got {other:?}"),
    }
    // A task on itself.
    let err = db.refused(|s| s.add_dependency(&IdRef::from(b.id), &IdRef::from(b.id)));
    assert!(
        matches!(&err, TaskError::DependencyCycle { cycle } if *cycle == [b.id.short(), b.id.short()]),
        "{err:?}"
    );

    // An edge that closes no cycle is added: a ready task goes back to pending.
    let d = db.create_titled("d");
    assert_eq!(d.state, TaskState::Ready);
    let d = db
        .svc
        .add_dependency(&IdRef::from(d.id), &IdRef::from(c.id))
        .unwrap();
    assert_eq!(d.state, TaskState::Pending);
    assert!(d.spec.depends_on.contains(&c.id));
    assert_eq!(db.task(d.id), d);
    assert_eq!(
        task_events(&db, d.id),
        ["task.created", "task.ready", "task.dependency_added"]
    );
    // Now c -> d would close c -> d -> c.
    let err = db.refused(|s| s.add_dependency(&IdRef::from(c.id), &IdRef::from(d.id)));
    assert!(
        matches!(&err, TaskError::DependencyCycle { cycle } if *cycle == [c.id.short(), d.id.short(), c.id.short()]),
        "{err:?}"
    );
}

#[test]
fn pending_tasks_become_ready_when_every_dependency_completes() {
    let db = Db::new();
    db.register("w", &["rust"], 4);
    let a = db.create_titled("a");
    let b = db.create_titled("b");
    let c = db.create(CreateTask {
        depends_on: refs(&[a.id, b.id]),
        ..task("c")
    });
    assert_eq!(c.state, TaskState::Pending);

    db.finish(a.id, Some("w"));
    assert_eq!(db.task(c.id).state, TaskState::Pending, "b is not done yet");
    // A task created on a completed dependency is ready at once.
    let d = db.create(CreateTask {
        depends_on: refs(&[a.id]),
        ..task("d")
    });
    assert_eq!(d.state, TaskState::Ready);
    // A satisfied dependency added later keeps a ready task ready.
    let e = db.create_titled("e");
    let e = db
        .svc
        .add_dependency(&IdRef::from(e.id), &IdRef::from(a.id))
        .unwrap();
    assert_eq!(e.state, TaskState::Ready);

    db.finish(b.id, Some("w"));
    let c = db.task(c.id);
    assert_eq!(c.state, TaskState::Ready);
    assert_eq!(task_events(&db, c.id), ["task.created", "task.ready"]);
    // Completing a's and b's work touched c only once, to promote it.
    assert_eq!(c.version, 2);
}

#[test]
fn cancel_blocks_pending_dependents_and_a_completed_task_cannot_be_cancelled() {
    let db = Db::new();
    db.register("w", &["rust"], 1);
    let a = db.create_titled("a");
    let b = db.create(CreateTask {
        depends_on: refs(&[a.id]),
        ..task("b")
    });
    let c = db.create(CreateTask {
        depends_on: refs(&[b.id]),
        ..task("c")
    });

    let cancelled = db
        .svc
        .cancel_task(&IdRef::from(a.id), Some("not needed".into()))
        .unwrap();
    assert_eq!(cancelled.state, TaskState::Cancelled);
    assert_eq!(cancelled.reason.as_deref(), Some("not needed"));
    let b = db.task(b.id);
    assert_eq!(b.state, TaskState::Blocked);
    assert_eq!(
        b.blocked,
        Some(BlockReason::DependencyCancelled { dependency: a.id }),
        "{b:?}"
    );
    // Only direct dependents are blocked; c waits on b, which is not cancelled.
    assert_eq!(db.task(c.id).state, TaskState::Pending);
    // A task created on a cancelled dependency is blocked from the start.
    let late = db.create(CreateTask {
        depends_on: refs(&[a.id]),
        ..task("late")
    });
    assert_eq!(late.state, TaskState::Blocked);
    assert_eq!(task_events(&db, late.id), ["task.created", "task.blocked"]);

    // Cancelling again, or cancelling a completed task, is an illegal transition.
    let err = db.refused(|s| s.cancel_task(&IdRef::from(a.id), None));
    assert!(
        matches!(
            err,
            TaskError::Transition(TransitionError::Task {
                from: TaskState::Cancelled,
                ..
            })
        ),
        "{err:?}"
    );
    let done = db.create_titled("done");
    db.finish(done.id, Some("w"));
    let err = db.refused(|s| s.cancel_task(&IdRef::from(done.id), None));
    assert!(
        matches!(
            err,
            TaskError::Transition(TransitionError::Task {
                from: TaskState::Completed,
                action: "cancelled",
                ..
            })
        ),
        "{err:?}"
    );
}

#[test]
fn assign_to_a_named_agent_or_by_the_balancer_and_refuse_unfit_agents() {
    let db = Db::new();
    db.register("a1", &["rust"], 2);
    db.register("a2", &["rust", "test"], 1);
    db.register("go", &["go"], 4);
    db.register("drained", &["rust", "test"], 8);
    db.svc.drain_agent(&agent_name("drained")).unwrap();
    let mut strategic = agent("boss", &["rust"], 1);
    strategic.tier = Tier::Strategic;
    db.svc.register_agent(strategic).unwrap();

    let rust = || CreateTask {
        capabilities: caps(&["rust"]),
        ..task("rust work")
    };
    // Least loaded first (share of slots in use), ties by active count, then by name. The task
    // names no tier, so the strategic boss competes too: a1, a2, boss all 0 -> a1; then a2 and
    // boss at 0 beat a1 at 1/2 -> a2, then boss; then only a1 has a free slot.
    let t1 = db.create(rust());
    let first = db.assign(t1.id, None);
    assert_eq!(first.agent.as_str(), "a1");
    assert_eq!((first.attempt, first.fencing), (1, FencingToken::new(1)));
    assert_eq!(first.task.state, TaskState::Assigned);
    assert_eq!(first.task, db.task(t1.id));
    assert_eq!(
        task_events(&db, t1.id),
        [
            "task.created",
            "task.ready",
            "task.assigned",
            "task.briefed"
        ]
    );
    let a1 = db.agent("a1");
    assert_eq!(
        kinds(&db.store().events_of(&a1.id.to_string()).unwrap()),
        ["agent.registered", "agent.slot_claimed"]
    );
    assert_eq!((a1.active, a1.status), (1, AgentStatus::Available));

    let picks: Vec<String> = (0..3)
        .map(|_| {
            let t = db.create(rust());
            db.assign(t.id, None).agent.to_string()
        })
        .collect();
    assert_eq!(picks, ["a2", "boss", "a1"]);
    for name in ["a1", "a2", "boss"] {
        let a = db.agent(name);
        assert_eq!(a.active, a.slots.get(), "{name}");
        assert_eq!(a.status, AgentStatus::Busy, "{name}");
    }

    // Every capable agent is full, the draining one never counts, and `go` lacks rust.
    let t = db.create(rust());
    let err = db.refused(|s| s.assign_task(assign_cmd(t.id, None)));
    assert!(matches!(err, TaskError::NoCapableAgent { .. }), "{err:?}");
    // Named: full, draining, incapable, unknown.
    let err = db.refused(|s| s.assign_task(assign_cmd(t.id, Some("a1"))));
    assert!(
        matches!(
            err,
            TaskError::Transition(TransitionError::AgentUnfit { .. })
        ),
        "{err:?}"
    );
    let err = db.refused(|s| s.assign_task(assign_cmd(t.id, Some("drained"))));
    assert!(
        matches!(err, TaskError::Transition(TransitionError::Agent { .. })),
        "{err:?}"
    );
    let err = db.refused(|s| s.assign_task(assign_cmd(t.id, Some("go"))));
    assert!(
        matches!(
            err,
            TaskError::Transition(TransitionError::AgentUnfit { .. })
        ),
        "{err:?}"
    );
    let err = db.refused(|s| s.assign_task(assign_cmd(t.id, Some("nobody"))));
    assert!(matches!(err, TaskError::AgentNotFound { .. }), "{err:?}");

    // A task that needs the strategic tier goes only to a strategic agent.
    db.svc
        .register_agent(agent("tactical-idle", &["rust"], 4))
        .unwrap();
    let hard = db.create(CreateTask {
        tier: Some(Tier::Strategic),
        ..rust()
    });
    let err = db.refused(|s| s.assign_task(assign_cmd(hard.id, None)));
    assert!(
        matches!(err, TaskError::NoCapableAgent { .. }),
        "boss is full: {err:?}"
    );
    let err = db.refused(|s| s.assign_task(assign_cmd(hard.id, Some("tactical-idle"))));
    assert!(
        matches!(
            err,
            TaskError::Transition(TransitionError::AgentUnfit { .. })
        ),
        "{err:?}"
    );
    // The free tactical agent takes the plain task.
    assert_eq!(db.assign(t.id, None).agent.as_str(), "tactical-idle");

    // Assigning a task that is not ready: refused.
    let err = db.refused(|s| s.assign_task(assign_cmd(t1.id, Some("tactical-idle"))));
    assert!(
        matches!(
            err,
            TaskError::Transition(TransitionError::Task {
                from: TaskState::Assigned,
                ..
            })
        ),
        "{err:?}"
    );
    let pending = db.create(CreateTask {
        depends_on: refs(&[t1.id]),
        ..rust()
    });
    let err = db.refused(|s| s.assign_task(assign_cmd(pending.id, None)));
    assert!(
        matches!(
            err,
            TaskError::Transition(TransitionError::Task {
                from: TaskState::Pending,
                ..
            })
        ),
        "{err:?}"
    );
}

#[test]
fn the_balancer_choice_matches_the_domain_policy_over_every_agent() {
    let db = Db::with_seed(3);
    let mut rng = Rng(0x5eed_1234_abcd_ef01);
    let alphabet = ["rust", "test", "review", "plan"];
    for i in 0..40 {
        let chosen: Vec<&str> = alphabet
            .iter()
            .copied()
            .filter(|_| rng.below(2) == 0)
            .collect();
        let mut cmd = agent(&format!("agent-{i:02}"), &chosen, 1 + rng.below(3) as u32);
        if rng.below(5) == 0 {
            cmd.tier = Tier::Strategic;
        }
        db.svc.register_agent(cmd).unwrap();
        if rng.below(8) == 0 {
            db.svc
                .drain_agent(&agent_name(&format!("agent-{i:02}")))
                .unwrap();
        }
    }
    let mut assigned = 0;
    let mut refused = 0;
    for _ in 0..120 {
        let needs: Vec<&str> = alphabet
            .iter()
            .copied()
            .filter(|_| rng.below(3) == 0)
            .collect();
        let tier = match rng.below(4) {
            0 => Some(Tier::Strategic),
            1 => Some(Tier::Tactical),
            _ => None,
        };
        let t = db.create(CreateTask {
            capabilities: caps(&needs),
            tier,
            ..task("balanced")
        });
        let everyone = db.agents();
        let expected = balancer::choose(&everyone, t.spec.needs()).map(|a| a.name.clone());
        match expected {
            Some(name) => {
                let a = db.assign(t.id, None);
                assert_eq!(a.agent, name, "needs {needs:?} tier {tier:?}");
                assigned += 1;
                // Now and then the work finishes, freeing the slot.
                if rng.below(3) == 0 {
                    db.svc
                        .start_attempt(t.id, a.fencing, Default::default())
                        .unwrap();
                    db.svc
                        .complete_attempt(t.id, a.fencing, None, maos_domain::RunReport::default())
                        .unwrap();
                }
            }
            None => {
                let err = db.refused(|s| s.assign_task(assign_cmd(t.id, None)));
                assert!(matches!(err, TaskError::NoCapableAgent { .. }), "{err:?}");
                refused += 1;
            }
        }
    }
    assert!(
        assigned > 20 && refused > 5,
        "{assigned} assigned, {refused} refused"
    );
}

#[test]
fn fencing_refuses_results_from_a_stale_or_wrong_attempt() {
    let db = Db::new();
    db.register("w1", &["rust"], 1);
    db.register("w2", &["rust"], 1);
    let t = db.create_titled("fenced");

    let first = db.assign(t.id, Some("w1"));
    assert_eq!(first.fencing, FencingToken::new(1));
    // Starting with the wrong token is refused.
    let err = db.refused(|s| s.start_attempt(t.id, FencingToken::new(7), Default::default()));
    assert!(
        matches!(
            err,
            TaskError::Transition(TransitionError::StaleAttempt {
                presented: 7,
                current: 1,
                ..
            })
        ),
        "{err:?}"
    );
    db.svc
        .start_attempt(t.id, first.fencing, Default::default())
        .unwrap();
    let failed = db
        .svc
        .fail_attempt(
            t.id,
            first.fencing,
            "crashed".into(),
            maos_domain::RunReport::default(),
        )
        .unwrap();
    assert_eq!(failed.state, TaskState::Retrying, "a retry is scheduled");
    assert_eq!(db.retries_due(), 1);
    assert_eq!(db.agent("w1").active, 0);

    // Attempt 2 on another agent; attempt 1's late results are refused.
    let second = db.assign(t.id, Some("w2"));
    assert_eq!((second.attempt, second.fencing), (2, FencingToken::new(2)));
    db.svc
        .start_attempt(t.id, second.fencing, Default::default())
        .unwrap();
    let stale = |e: &TaskError| {
        matches!(
            e,
            TaskError::Transition(TransitionError::StaleAttempt {
                presented: 1,
                current: 2,
                ..
            })
        )
    };
    let err = db.refused(|s| {
        s.fail_attempt(
            t.id,
            first.fencing,
            "late failure".into(),
            maos_domain::RunReport::default(),
        )
    });
    assert!(stale(&err), "{err:?}");
    let err = db.refused(|s| {
        s.complete_attempt(
            t.id,
            first.fencing,
            Some("late success".into()),
            maos_domain::RunReport::default(),
        )
    });
    assert!(stale(&err), "{err:?}");
    let err = db.refused(|s| s.start_attempt(t.id, first.fencing, Default::default()));
    assert!(stale(&err), "{err:?}");
    // A token from the future is no better.
    let err = db.refused(|s| {
        s.complete_attempt(
            t.id,
            FencingToken::new(3),
            None,
            maos_domain::RunReport::default(),
        )
    });
    assert!(
        matches!(
            err,
            TaskError::Transition(TransitionError::StaleAttempt {
                presented: 3,
                current: 2,
                ..
            })
        ),
        "{err:?}"
    );
    // Completing an attempt that was never started: illegal, whatever the token.
    let fresh = db.create_titled("fresh");
    let a = db.assign(fresh.id, Some("w1"));
    let err = db.refused(|s| {
        s.complete_attempt(fresh.id, a.fencing, None, maos_domain::RunReport::default())
    });
    assert!(
        matches!(
            err,
            TaskError::Transition(TransitionError::Task {
                from: TaskState::Assigned,
                ..
            })
        ),
        "{err:?}"
    );

    // The current attempt completes.
    let done = db
        .svc
        .complete_attempt(
            t.id,
            second.fencing,
            Some("ok".into()),
            maos_domain::RunReport::default(),
        )
        .unwrap();
    assert_eq!(done.state, TaskState::Completed);
    assert_eq!(done.attempts.len(), 2);
    assert_eq!(done.attempts[0].agent.as_str(), "w1");
    assert_eq!(done.attempts[0].error.as_deref(), Some("crashed"));
    assert_eq!(done.attempts[1].summary.as_deref(), Some("ok"));
    assert_eq!(done, db.task(t.id));
    // A result after completion is refused too.
    let err = db.refused(|s| {
        s.fail_attempt(
            t.id,
            second.fencing,
            "too late".into(),
            maos_domain::RunReport::default(),
        )
    });
    assert!(matches!(err, TaskError::Transition(_)), "{err:?}");
}

#[test]
fn a_failing_task_is_retried_then_blocked_after_its_last_attempt() {
    let db = Db::new();
    db.register("w", &["rust"], 1);
    let t = db.create(CreateTask {
        max_attempts: MaxAttempts::new(2).unwrap(),
        ..task("flaky")
    });

    let a1 = db.run(t.id, None);
    let after1 = db
        .svc
        .fail_attempt(
            t.id,
            a1.fencing,
            "boom 1".into(),
            maos_domain::RunReport::default(),
        )
        .unwrap();
    // The retry waits out its backoff: 2 s ± 20 % after the first failure.
    assert_eq!(after1.state, TaskState::Retrying);
    let failed_at = after1.attempts[0].ended_at.unwrap();
    let due = after1.retry_at.expect("a retry time");
    let delay = due.as_millis() - failed_at.as_millis();
    assert!((1_600..=2_400).contains(&delay), "backoff {delay} ms");
    assert_eq!(db.agent("w").active, 0);
    assert_eq!(db.svc.promote_due_retries().unwrap(), 0, "not due yet");
    assert_eq!(db.task(t.id).state, TaskState::Retrying);
    assert_eq!(db.retries_due(), 1);
    let ready = db.task(t.id);
    assert_eq!((ready.state, ready.retry_at), (TaskState::Ready, None));
    assert_eq!(
        task_events(&db, t.id)[4..],
        [
            "task.attempt_started",
            "task.attempt_failed",
            "task.retry_scheduled",
            "task.ready"
        ]
    );

    // The second attempt fails before it even starts: no attempts left, the task is blocked.
    let a2 = db.assign(t.id, None);
    assert_eq!(a2.attempt, 2);
    let after2 = db
        .svc
        .fail_attempt(
            t.id,
            a2.fencing,
            "boom 2".into(),
            maos_domain::RunReport::default(),
        )
        .unwrap();
    assert_eq!(after2.state, TaskState::Blocked);
    assert_eq!(after2.reason.as_deref(), Some("boom 2"));
    assert_eq!(
        after2.blocked,
        Some(BlockReason::AttemptsFailed {
            attempt: 2,
            failed: 2,
            interrupted: 0,
            strategic: false,
        })
    );
    assert_eq!(after2, db.task(t.id));
    let w = db.agent("w");
    assert_eq!((w.active, w.status), (0, AgentStatus::Available));
    assert!(task_events(&db, t.id).ends_with(&["task.attempt_failed", "task.blocked"]));

    // Blocked is not assignable.
    let err = db.refused(|s| s.assign_task(assign_cmd(t.id, None)));
    assert!(
        matches!(
            err,
            TaskError::Transition(TransitionError::Task {
                from: TaskState::Blocked,
                ..
            })
        ),
        "{err:?}"
    );
}

#[test]
fn a_medium_risk_task_awaits_approval_and_does_not_release_its_dependents() {
    let db = Db::new();
    db.register("w", &["rust"], 1);
    let risky = db.create(CreateTask {
        risk: Risk::Medium,
        ..task("risky")
    });
    let after = db.create(CreateTask {
        depends_on: refs(&[risky.id]),
        ..task("after")
    });
    let done = db.finish(risky.id, None);
    assert_eq!(done.state, TaskState::AwaitingApproval);
    assert!(
        task_events(&db, risky.id)
            .ends_with(&["task.attempt_succeeded", "task.approval_requested"])
    );
    assert_eq!(db.task(after.id).state, TaskState::Pending);
    assert_eq!(
        db.agent("w").active,
        0,
        "the slot is released on completion"
    );

    // High risk: a person approves it before it runs, and its result after.
    let high = db.create(CreateTask {
        risk: Risk::High,
        ..task("high")
    });
    assert_eq!(high.state, TaskState::AwaitingApproval);
    assert_eq!(high.waiting_gate(), Some(maos_domain::Gate::Run));
    assert_eq!(
        db.svc
            .approvals()
            .unwrap()
            .iter()
            .map(|a| a.task.id)
            .collect::<Vec<_>>(),
        vec![risky.id, high.id],
        "oldest request first"
    );
    let approved = db.svc.approve(&high.id.into()).unwrap();
    assert_eq!(approved.state, TaskState::Ready);
    assert!(approved.run_approved);
    let waiting = db.finish(high.id, None);
    assert_eq!(waiting.state, TaskState::AwaitingApproval);
    assert_eq!(waiting.waiting_gate(), Some(maos_domain::Gate::Result));
    let accepted = db.svc.approve(&high.id.into()).unwrap();
    assert_eq!(accepted.state, TaskState::Completed);
    assert!(
        task_events(&db, high.id).ends_with(&["task.approval_granted", "task.completed"]),
        "{:?}",
        task_events(&db, high.id)
    );
    // A rejected result goes back for another attempt, with the reason.
    let rejected = db
        .svc
        .reject(&risky.id.into(), "the tests are missing".into(), false)
        .unwrap();
    assert_eq!(
        rejected.state,
        TaskState::Ready,
        "a rejection is retried at once"
    );
    assert!(
        rejected.attempts[0]
            .error
            .as_deref()
            .unwrap()
            .contains("the tests are missing")
    );
    assert!(db.svc.approvals().unwrap().is_empty());
    let low = db.create_titled("low");
    assert_eq!(db.finish(low.id, None).state, TaskState::Completed);
}

#[test]
fn the_slot_is_released_on_complete_fail_and_cancel() {
    let db = Db::new();
    db.register("solo", &["rust"], 1);
    let idle = |db: &Db| {
        let a = db.agent("solo");
        assert_eq!((a.active, a.status), (0, AgentStatus::Available));
    };
    let full = |db: &Db| {
        let a = db.agent("solo");
        assert_eq!((a.active, a.status), (1, AgentStatus::Busy));
    };

    let t = db.create_titled("complete");
    let a = db.run(t.id, None);
    full(&db);
    db.svc
        .complete_attempt(t.id, a.fencing, None, maos_domain::RunReport::default())
        .unwrap();
    idle(&db);

    let t = db.create_titled("fail");
    let a = db.run(t.id, None);
    full(&db);
    db.svc
        .fail_attempt(
            t.id,
            a.fencing,
            "no".into(),
            maos_domain::RunReport::default(),
        )
        .unwrap();
    idle(&db);

    // Cancelled while assigned, and while running.
    for start in [false, true] {
        let t = db.create_titled("cancel");
        let a = db.assign(t.id, None);
        if start {
            db.svc
                .start_attempt(t.id, a.fencing, Default::default())
                .unwrap();
        }
        full(&db);
        let c = db.svc.cancel_task(&IdRef::from(t.id), None).unwrap();
        assert_eq!(c.state, TaskState::Cancelled);
        assert_eq!(
            c.current_attempt().unwrap().status,
            maos_domain::AttemptOutcome::Cancelled
        );
        idle(&db);
        let agent_events = kinds(
            &db.store()
                .events_of(&db.agent("solo").id.to_string())
                .unwrap(),
        );
        assert_eq!(agent_events.last(), Some(&"agent.slot_released"));
        // The cancelled attempt's late result is refused.
        let err = db.refused(|s| {
            s.complete_attempt(t.id, a.fencing, None, maos_domain::RunReport::default())
        });
        assert!(matches!(err, TaskError::Transition(_)), "{err:?}");
    }

    // Cancelling a task that holds no slot releases nothing.
    let before = db.agent("solo");
    let t = db.create_titled("never assigned");
    db.svc.cancel_task(&IdRef::from(t.id), None).unwrap();
    assert_eq!(db.agent("solo"), before);

    // Claimed and released slots balance in the agent's log.
    let log = kinds(&db.store().events_of(&before.id.to_string()).unwrap());
    let claimed = log.iter().filter(|k| **k == "agent.slot_claimed").count();
    let released = log.iter().filter(|k| **k == "agent.slot_released").count();
    assert_eq!((claimed, released), (4, 4));
}

/// The plan SQLite chooses for `sql` (each step's detail), on the store's own file.
fn query_plan(db: &Db, sql: &str) -> Vec<String> {
    let conn = raw_connection(&db.path);
    let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
    let args: Vec<i64> = vec![1; stmt.parameter_count()];
    stmt.query_map(rusqlite::params_from_iter(args), |row| {
        row.get::<_, String>(3)
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

#[test]
fn the_lookups_by_state_of_the_scheduler_and_the_reaper_use_their_indexes() {
    let db = Db::new();
    // Enough finished tasks that a scan would be the wrong plan, and the statistics to know it.
    db.svc
        .create_tasks((0..200).map(|i| task(&format!("t{i}"))).collect())
        .unwrap();
    rusqlite::Connection::open(&db.path)
        .unwrap()
        .execute_batch("ANALYZE")
        .unwrap();
    let in_flight = query_plan(
        &db,
        "SELECT id FROM tasks WHERE in_flight = 1 AND state IN (?, ?, ?, ?) \
         ORDER BY created_at, id",
    );
    assert!(
        in_flight
            .iter()
            .any(|s| s.contains("USING INDEX tasks_in_flight")),
        "{in_flight:?}"
    );
    let due = query_plan(
        &db,
        "SELECT id FROM tasks WHERE retry_at <= ? AND state = 'retrying' ORDER BY retry_at, id",
    );
    assert!(
        due.iter()
            .any(|s| s.contains("USING INDEX tasks_retry_due")),
        "{due:?}"
    );
}

/// The events of a task are found through `events_by_aggregate` (V12), keyed by the task's
/// number, and a new task's events go to that index's end: the entries of tasks created later
/// sort after those created earlier, also among tasks created together in one call.
#[test]
fn a_tasks_events_are_indexed_by_its_number_in_creation_order() {
    let db = Db::new();
    let mut made = Vec::new();
    for i in 0..20 {
        made.push(db.create_titled(&format!("t{i}")));
        db.clock.advance(1);
    }
    // Thirty more in one call: one creation time, numbered in the call's order.
    made.extend(
        db.svc
            .create_tasks((0..30).map(|i| task(&format!("batch {i}"))).collect())
            .unwrap()
            .into_iter()
            .map(|c| c.task),
    );
    let plan = query_plan(
        &db,
        "SELECT seq, at, payload FROM events
          WHERE task_no = coalesce((SELECT no FROM tasks WHERE id = ?1), 0)
            AND aggregate_id = ?1
          ORDER BY seq",
    );
    assert!(
        plan.iter()
            .any(|s| s.contains("USING INDEX events_by_aggregate")),
        "{plan:?}"
    );
    assert!(!plan.iter().any(|s| s.contains("TEMP B-TREE")), "{plan:?}");
    // In the index's order, the events come task by task in creation order, whatever the ids.
    let conn = raw_connection(&db.path);
    let order: Vec<String> = conn
        .prepare(
            "SELECT aggregate_id FROM events INDEXED BY events_by_aggregate
              WHERE task_no > 0 ORDER BY task_no, aggregate_id, seq",
        )
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let mut tasks: Vec<String> = order.clone();
    tasks.dedup();
    let created: Vec<String> = made.iter().map(|t| t.id.to_string()).collect();
    assert_eq!(tasks, created);
    for t in &made {
        assert_eq!(
            kinds(&db.store().events_of(&t.id.to_string()).unwrap()),
            ["task.created", "task.ready"]
        );
    }
}

/// Tasks created together (one creation time, one priority) wait in the order they were given,
/// not by id (V12).
#[test]
fn tasks_created_together_are_scheduled_in_the_order_given() {
    use maos_application::{Transaction, UnitOfWork};
    let db = Db::new();
    let agent = db.register("w", &["rust"], 1);
    let made: Vec<TaskId> = db
        .svc
        .create_tasks((0..30).map(|i| task(&format!("batch {i}"))).collect())
        .unwrap()
        .into_iter()
        .map(|c| c.task.id)
        .collect();
    let queued = db
        .store()
        .write(move |tx| Transaction::ready_tasks_for(tx, &agent, 30))
        .unwrap();
    assert_eq!(queued, made);
}

/// Attempts are keyed by their task's number (V12). Should two tasks ever share a number, one
/// task's attempts are never shown as the other's, and saving the other's is refused.
#[test]
fn a_repeated_task_number_never_mixes_two_tasks_attempts() {
    let db = Db::new();
    db.register("w", &["rust"], 2);
    let first = db.create_titled("first");
    let second = db.create_titled("second");
    db.svc.assign_task(assign_cmd(first.id, Some("w"))).unwrap();
    // What a renumbering of rowids could do: the second task takes the first one's number.
    rusqlite::Connection::open(&db.path)
        .unwrap()
        .execute(
            "UPDATE tasks SET no = (SELECT no FROM tasks WHERE id = ?1) WHERE id = ?2",
            [first.id.to_string(), second.id.to_string()],
        )
        .unwrap();
    assert!(db.task(second.id).attempts.is_empty());
    assert_eq!(db.task(first.id).attempts.len(), 1);
    let err = db
        .svc
        .assign_task(assign_cmd(second.id, Some("w")))
        .unwrap_err();
    assert!(
        err.to_string().contains("number is also another task's"),
        "{err}"
    );
    assert_eq!(db.task(first.id).attempts.len(), 1);
    assert!(db.task(second.id).attempts.is_empty());
}

/// An event of a task whose row is not there would be out of the index's reach: refused.
#[test]
fn events_of_a_task_that_was_never_saved_are_refused() {
    use maos_application::{Transaction, UnitOfWork};
    let db = Db::new();
    let ghost = TaskId::from_bits(42);
    let before = db.events().len();
    let err = db
        .store()
        .write(move |tx| {
            Transaction::append(
                tx,
                maos_domain::Timestamp::from_millis(5),
                &[maos_domain::DomainEvent::Task {
                    id: ghost,
                    event: TaskEvent::Cancelled {
                        reason: "never existed".into(),
                    },
                }],
            )
        })
        .unwrap_err();
    assert!(
        err.to_string().contains("before the task was saved"),
        "{err}"
    );
    assert_eq!(db.events().len(), before);
}

#[test]
fn a_retry_is_found_by_its_due_time_and_in_flight_tasks_by_their_flag() {
    let db = Db::new();
    db.register("w", &["rust"], 1);
    let t = db.create(CreateTask {
        max_attempts: MaxAttempts::new(2).unwrap(),
        ..task("flaky")
    });
    let a = db.run(t.id, None);
    let conn = raw_connection(&db.path);
    let flags = |id: TaskId| -> (i64, Option<i64>) {
        conn.query_row(
            "SELECT in_flight, retry_at FROM tasks WHERE id = ?1",
            [id.to_string()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap()
    };
    assert_eq!(flags(t.id), (1, None), "running");
    let failed = db
        .svc
        .fail_attempt(
            t.id,
            a.fencing,
            "boom".into(),
            maos_domain::RunReport::default(),
        )
        .unwrap();
    let due = failed.retry_at.unwrap().as_millis();
    assert_eq!(flags(t.id), (1, Some(due)), "retrying");
    assert_eq!(db.svc.promote_due_retries().unwrap(), 0, "not due yet");
    assert_eq!(db.retries_due(), 1);
    assert_eq!(flags(t.id), (0, None), "ready again");
}

#[test]
fn a_block_reason_is_stored_as_data_and_an_older_sentence_still_reads() {
    let db = Db::new();
    let a = db.create_titled("a");
    let b = db.create(CreateTask {
        depends_on: refs(&[a.id]),
        ..task("b")
    });
    db.svc.cancel_task(&IdRef::from(a.id), None).unwrap();
    let reason = BlockReason::DependencyCancelled { dependency: a.id };
    assert_eq!(db.task(b.id).blocked, Some(reason.clone()));
    // In the log: the reason with its facts, no sentence.
    let payload: String = db
        .raw()
        .query_row(
            "SELECT payload FROM events WHERE kind = 'task.blocked' AND aggregate_id = ?1",
            [b.id.to_string()],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        payload,
        format!(
            r#"{{"aggregate":"task","id":"{}","event":{{"type":"blocked","reason":{{"kind":"dependency_cancelled","dependency":"{}"}}}}}}"#,
            b.id, a.id
        )
    );

    // What an older MAOS wrote: a sentence in the task's reason and in its event, no data.
    let old = "dependency 01abc was cancelled (an older MAOS's words)";
    let conn = rusqlite::Connection::open(&db.path).unwrap();
    conn.execute(
        "UPDATE tasks SET reason = ?1, extra = json_remove(extra, '$.blocked') WHERE id = ?2",
        [old.to_owned(), b.id.to_string()],
    )
    .unwrap();
    drop(conn);
    let db = db.reopen();
    let t = db.task(b.id);
    assert_eq!((t.state, t.blocked.clone()), (TaskState::Blocked, None));
    assert_eq!(t.reason.as_deref(), Some(old));
    // The log is append-only: an older event is read as the reader meets it.
    let blocked: Vec<TaskEvent> =
        vec![serde_json::from_str(&format!(r#"{{"type":"blocked","reason":"{old}"}}"#)).unwrap()];
    assert_eq!(
        blocked,
        [TaskEvent::Blocked {
            reason: BlockReason::Text { text: old.into() }
        }]
    );
    // Applied again (as a rebuild from the log would), the sentence becomes the task's words.
    let mut rebuilt = t.clone();
    rebuilt.apply(&blocked[0], t.updated_at);
    assert_eq!(rebuilt.reason.as_deref(), Some(old));
    assert_eq!(rebuilt.blocked, None);
}

#[test]
fn a_simulated_agents_attempt_starts_in_the_transaction_that_assigns_it() {
    // With a runtime (the daemon), a `sim` agent has nothing to start: its attempt is started
    // with its assignment, in the same commit (ADR 0024).
    let meter = maos_sqlite::WorkMeter::new();
    let db = Db::metered(&meter);
    db.register("sim", &[], 1);
    let created = db.svc.create_task(task("at once")).unwrap().task;
    assert_eq!(created.state, TaskState::Running);
    let attempt = &created.attempts[0];
    assert_eq!(attempt.started_at, Some(attempt.assigned_at));
    let mine: Vec<_> = db
        .events()
        .into_iter()
        .filter(
            |e| matches!(&e.event, maos_domain::DomainEvent::Task { id, .. } if *id == created.id),
        )
        .collect();
    let at = mine
        .iter()
        .map(|e| e.at)
        .collect::<std::collections::BTreeSet<_>>();
    assert_eq!(at.len(), 1, "written at more than one time: {mine:?}");
    assert_eq!(
        task_events(&db, created.id),
        vec![
            "task.created",
            "task.ready",
            "task.assigned",
            "task.briefed",
            "task.attempt_started"
        ]
    );
    // A second start is refused: the attempt is running.
    assert!(
        db.svc
            .start_attempt(created.id, created.fencing, Default::default())
            .is_err()
    );

    // Without a runtime nothing runs it: the attempt waits, assigned, for whoever runs it.
    let plain = Db::new();
    plain.register("sim", &[], 1);
    let t = plain.create(task("by hand"));
    let a = plain.assign(t.id, Some("sim"));
    assert_eq!(a.task.state, TaskState::Assigned);
    // A process-backed agent in the daemon reports its own start.
    let runner = Db::metered(&maos_sqlite::WorkMeter::new());
    runner
        .svc
        .register_agent(crate::support::daemon_agent("runner", &[], 1))
        .unwrap();
    let t = runner.svc.create_task(task("a process")).unwrap().task;
    assert_eq!(t.state, TaskState::Assigned);
}
