//! Orchestrations at work through the service on a real file: how a planned orchestration ends
//! (completed, failed, after a pause), what a pause with `--now` costs a task, a person's retry,
//! and the rules a manual assignment and a new task must follow.

use maos_application::{
    CreateOrchestration, CreatePlan, CreateTask, ErrorInfo, ErrorKind, IdRef, MaosApi, PlanCreated,
    PlanTask, TaskError,
};
use maos_domain::policy::concerns::Concern;
use maos_domain::{MaxAttempts, OrchestrationStatus, RunReport, TaskState, Title, Usd};

use crate::support::{Db, task};

fn plan(tasks: Vec<PlanTask>) -> CreatePlan {
    CreatePlan {
        orchestration: CreateOrchestration {
            name: Title::parse("Plan").unwrap(),
            goal: Some("Do it".into()),
            workspace: None,
            verify: None,
            notes: Vec::new(),
        },
        tasks,
        start: true,
    }
}

fn step(key: &str, deps: &[&str], cmd: CreateTask) -> PlanTask {
    PlanTask {
        key: key.into(),
        task: cmd,
        depends_on: deps.iter().map(|d| (*d).to_owned()).collect(),
    }
}

fn work(title: &str) -> CreateTask {
    CreateTask {
        capabilities: crate::support::caps(&["rust"]),
        ..task(title)
    }
}

fn made(db: &Db, tasks: Vec<PlanTask>) -> PlanCreated {
    db.svc.create_plan(plan(tasks)).unwrap()
}

fn refused(result: Result<impl std::fmt::Debug, TaskError>) -> TaskError {
    let e = result.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");
    e
}

#[test]
fn a_planned_orchestration_completes_with_its_last_task_even_after_a_pause() {
    let db = Db::new();
    db.register("w", &["rust"], 2);
    let p = made(
        &db,
        vec![step("a", &[], work("A")), step("b", &[], work("B"))],
    );
    let o: IdRef = p.orchestration.id.into();
    let (a, b) = (p.tasks[0].1.id, p.tasks[1].1.id);
    db.finish(a, None);
    let running = db.run(b, None);
    db.svc.pause_orchestration(&o, false).unwrap();
    db.svc
        .complete_attempt(b, running.fencing, None, RunReport::default())
        .unwrap();
    // Every task completed while it was paused: it ends when it is resumed.
    assert_eq!(
        db.svc.get_orchestration(&o).unwrap().status,
        OrchestrationStatus::Paused
    );
    let resumed = db.svc.resume_orchestration(&o).unwrap();
    assert_eq!(resumed.status, OrchestrationStatus::Completed);
}

#[test]
fn a_planned_orchestration_with_a_cancelled_task_fails_once_every_task_finished() {
    let db = Db::new();
    db.register("w", &["rust"], 2);
    let p = made(
        &db,
        vec![step("a", &[], work("A")), step("b", &[], work("B"))],
    );
    let o: IdRef = p.orchestration.id.into();
    let (a, b) = (p.tasks[0].1.id, p.tasks[1].1.id);
    db.svc.cancel_task(&b.into(), None).unwrap();
    assert_eq!(
        db.svc.get_orchestration(&o).unwrap().status,
        OrchestrationStatus::Running,
        "a still runs"
    );
    db.finish(a, None);
    let done = db.svc.get_orchestration(&o).unwrap();
    assert_eq!(done.status, OrchestrationStatus::Failed);
    // A finished orchestration takes no more tasks.
    let e = refused(db.svc.create_task(CreateTask {
        orchestration: Some(o.clone()),
        ..task("late")
    }));
    assert!(e.to_string().contains("takes no more tasks"), "{e}");
}

#[test]
fn pause_now_does_not_count_the_stopped_attempt_against_the_task() {
    let db = Db::new();
    db.register("w", &["rust"], 1);
    let one_try = CreateTask {
        max_attempts: MaxAttempts::new(1).unwrap(),
        ..work("Only one try")
    };
    let p = made(&db, vec![step("a", &[], one_try)]);
    let o: IdRef = p.orchestration.id.into();
    let a = p.tasks[0].1.id;
    db.run(a, None);
    db.svc.pause_orchestration(&o, true).unwrap();
    let t = db.task(a);
    // Its only attempt was stopped by a person, not lost: it waits to run again.
    assert_eq!(t.state, TaskState::Ready, "{:?}", t.reason);
    assert_eq!((t.attempts_used(), t.attempts_allowed()), (1, 2));
    db.svc.resume_orchestration(&o).unwrap();
    let second = db.run(a, None);
    assert_eq!(second.attempt, 2);
}

#[test]
fn manual_assignment_follows_the_schedulers_rules() {
    let db = Db::new();
    db.register("w", &["rust"], 4);
    let holder = CreateTask {
        concerns: vec![Concern::parse("src/**").unwrap()],
        ..work("Holder")
    };
    let rival = CreateTask {
        concerns: vec![Concern::parse("src/api.rs").unwrap()],
        ..work("Rival")
    };
    let p = made(
        &db,
        vec![step("holder", &[], holder), step("rival", &[], rival)],
    );
    let (h, r) = (p.tasks[0].1.id, p.tasks[1].1.id);
    db.run(h, None);
    let e = refused(db.svc.assign_task(maos_application::AssignTask {
        task: r.into(),
        agent: None,
    }));
    assert!(e.to_string().contains("held by task"), "{e}");
    // The refusal carries its facts, for a front end to say what helps.
    match &e {
        maos_application::TaskError::Refused(refusal) => assert!(
            matches!(
                **refusal,
                maos_application::Refusal::ConcernHeld { task, holder, .. }
                    if task == r && holder == h
            ),
            "{refusal:?}"
        ),
        other => panic!("expected a refusal, got {other:?}"),
    }

    // A paused orchestration's tasks are refused too.
    let other = made(&db, vec![step("x", &[], work("X"))]);
    db.svc
        .pause_orchestration(&other.orchestration.id.into(), false)
        .unwrap();
    let e = refused(db.svc.assign_task(maos_application::AssignTask {
        task: other.tasks[0].1.id.into(),
        agent: None,
    }));
    assert!(e.to_string().contains("paused"), "{e}");
}

#[test]
fn a_persons_retry_leaves_exactly_the_attempts_asked_for_and_refuses_what_cannot_run() {
    let db = Db::new();
    db.register("w", &["rust"], 2);
    db.register("v", &["rust"], 1);
    let p = made(
        &db,
        vec![
            step(
                "base",
                &[],
                CreateTask {
                    max_attempts: MaxAttempts::new(3).unwrap(),
                    ..work("Base")
                },
            ),
            step("next", &["base"], work("Next")),
        ],
    );
    let (base, next) = (p.tasks[0].1.id, p.tasks[1].1.id);
    // Cancelling `base` blocks `next`, which cannot be retried without base's work.
    let a = db.run(base, Some("w"));
    db.svc
        .fail_attempt(base, a.fencing, "boom".into(), RunReport::default())
        .unwrap();
    db.svc.cancel_task(&base.into(), None).unwrap();
    assert_eq!(db.task(next).state, TaskState::Blocked);
    let e = refused(db.svc.retry_task(&next.into(), 1));
    assert!(e.to_string().contains("cancelled"), "{e}");

    // A blocked task with one of three attempts used, retried with two more: two are left.
    let lone = db.create(CreateTask {
        max_attempts: MaxAttempts::new(3).unwrap(),
        ..work("Lone")
    });
    let a = db.run(lone.id, Some("v"));
    db.svc
        .fail_attempt(lone.id, a.fencing, "boom".into(), RunReport::default())
        .unwrap();
    assert_eq!(db.task(lone.id).state, TaskState::Retrying);
    db.retries_due();
    let t = db.task(lone.id);
    assert_eq!(t.state, TaskState::Ready);
    let a = db.run(lone.id, Some("v"));
    db.svc
        .fail_attempt(lone.id, a.fencing, "boom".into(), RunReport::default())
        .unwrap();
    db.retries_due();
    let a = db.run(lone.id, Some("v"));
    let blocked = db
        .svc
        .fail_attempt(lone.id, a.fencing, "boom".into(), RunReport::default())
        .unwrap();
    assert_eq!(blocked.state, TaskState::Blocked);
    let again = db.svc.retry_task(&lone.id.into(), 2).unwrap();
    assert_eq!(again.state, TaskState::Ready);
    assert_eq!(again.attempts_allowed() - again.attempts_used(), 2);

    // Three failures in a row drained `v` (its circuit breaker); another agent takes over.
    assert_eq!(
        db.agent("v").status,
        maos_domain::AgentStatus::Draining,
        "the breaker"
    );
    db.register("spare", &["rust"], 1);
    // A task whose budget is spent is refused: more attempts would stop at once.
    let broke = db.create(CreateTask {
        budget: Some(Usd::from_micros(1)),
        ..work("Broke")
    });
    let a = db.run(broke.id, Some("spare"));
    let mut report = RunReport::default();
    report.usage.cost = Usd::from_micros(5);
    report.failure = Some(maos_domain::FailureKind::Budget);
    db.svc
        .fail_attempt(broke.id, a.fencing, "over budget".into(), report)
        .unwrap();
    assert_eq!(db.task(broke.id).state, TaskState::Blocked);
    let e = refused(db.svc.retry_task(&broke.id.into(), 1));
    assert!(e.to_string().contains("budget"), "{e}");
}

#[test]
fn an_empty_plan_is_refused_and_creates_nothing() {
    let db = Db::new();
    let e = db.svc.create_plan(plan(Vec::new())).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict);
    assert!(e.to_string().contains("no tasks"), "{e}");
    assert!(db.svc.list_orchestrations().unwrap().is_empty());
}

#[test]
fn rejecting_and_cancelling_the_last_task_ends_the_orchestration() {
    let db = Db::new();
    db.register("w", &["rust"], 2);
    let medium = CreateTask {
        risk: maos_domain::Risk::Medium,
        ..work("Medium")
    };
    let p = made(&db, vec![step("a", &[], work("A")), step("m", &[], medium)]);
    let o: IdRef = p.orchestration.id.into();
    let (a, m) = (p.tasks[0].1.id, p.tasks[1].1.id);
    db.finish(a, None);
    let r = db.run(m, None);
    let waiting = db
        .svc
        .complete_attempt(m, r.fencing, None, RunReport::default())
        .unwrap();
    assert_eq!(waiting.state, TaskState::AwaitingApproval);
    db.svc
        .reject(&m.into(), "not needed after all".into(), true)
        .unwrap();
    assert_eq!(
        db.svc.get_orchestration(&o).unwrap().status,
        OrchestrationStatus::Failed
    );
}

#[test]
fn a_refunded_interruption_is_not_called_a_failure_in_the_reason_of_a_block() {
    let db = Db::new();
    db.register("w", &["rust"], 1);
    let one_try = CreateTask {
        max_attempts: MaxAttempts::new(1).unwrap(),
        ..work("One try")
    };
    let p = made(&db, vec![step("a", &[], one_try)]);
    let o: IdRef = p.orchestration.id.into();
    let a = p.tasks[0].1.id;
    db.run(a, None);
    db.svc.pause_orchestration(&o, true).unwrap();
    db.svc.resume_orchestration(&o).unwrap();
    let second = db.run(a, None);
    let blocked = db
        .svc
        .fail_attempt(a, second.fencing, "boom".into(), RunReport::default())
        .unwrap();
    assert_eq!(blocked.state, TaskState::Blocked);
    assert_eq!(
        blocked.blocked,
        Some(maos_domain::BlockReason::AttemptsFailed {
            attempt: 2,
            failed: 1,
            interrupted: 1,
            strategic: false,
        })
    );
    assert_eq!(blocked.reason.as_deref(), Some("boom"));
    // Which interruption was refunded is kept with the attempt (a lesson asks only after a
    // failure that counted).
    let stored = db.svc.get_task(&a.into()).unwrap();
    let refunded: Vec<bool> = stored.attempts.iter().map(|t| t.refunded).collect();
    assert_eq!(refunded, [true, false]);
}

#[test]
fn an_orchestrations_plan_version_and_planner_are_saved_as_they_change() {
    use maos_application::{ReadStore, StoreError, UnitOfWork};
    use maos_domain::orchestration::{OrchestrationSpec, Planning};
    use maos_domain::{
        Orchestration, OrchestrationId, Plan, PlanOrigin, PlanVersion, TaskId, Timestamp,
    };

    let dir = tempfile::tempdir().unwrap();
    let store = maos_sqlite::SqliteStore::open(&dir.path().join("maos.db")).unwrap();
    let save = |o: &Orchestration| {
        let o = o.clone();
        store
            .write(move |tx| tx.save_orchestration(&o))
            .map_err(|e: StoreError| e)
            .unwrap();
    };
    let at = Timestamp::from_millis(1_700_000_000_000);
    let id = OrchestrationId::from_bits(7);
    let spec = OrchestrationSpec {
        name: Title::parse("Plan me").unwrap(),
        goal: Some("Plan me".into()),
        workspace: None,
        verify: None,
        notes: vec!["kept".into()],
        planned: true,
    };
    let (mut o, _) = Orchestration::create(id, spec, at);
    save(&o);
    let planner = Planning {
        task: TaskId::from_bits(9),
        max_tasks: 12,
        discussion: Some(TaskId::from_bits(10)),
    };
    o.start_planning(planner, at).unwrap();
    save(&o);
    let stored = store.orchestration(id).unwrap().unwrap();
    assert_eq!((stored.plan_version, stored.planning), (0, Some(planner)));

    o.fail_planning(planner.task, None, Vec::new(), at).unwrap();
    let plan: Plan =
        serde_json::from_str(r#"{"goal": "g", "tasks": [{"key": "a", "title": "A"}]}"#).unwrap();
    o.propose_plan(
        PlanVersion {
            number: 1,
            plan,
            origin: PlanOrigin::Person,
            rationale: None,
            proposed_at: at,
        },
        at,
    )
    .unwrap();
    save(&o);
    let stored = store.orchestration(id).unwrap().unwrap();
    assert_eq!((stored.plan_version, stored.planning), (1, None));
    assert_eq!(stored, o);
}

#[test]
fn whether_work_is_left_is_known_without_reading_the_orchestrations_tasks() {
    use maos_application::UnitOfWork;

    let db = Db::new();
    db.register("w", &["rust"], 2);
    let p = made(
        &db,
        vec![step("a", &[], work("A")), step("b", &["a"], work("B"))],
    );
    let oid = p.orchestration.id;
    let unfinished = |db: &Db| {
        db.store()
            .write(move |tx| tx.has_unfinished_tasks(oid))
            .map_err(|e: maos_application::StoreError| e)
            .unwrap()
    };
    assert!(unfinished(&db), "both tasks are to do");
    let ids: Vec<_> = p.tasks.iter().map(|(_, t)| t.id).collect();
    db.finish(ids[0], None);
    assert!(unfinished(&db), "B is still to do");
    db.finish(ids[1], None);
    assert!(!unfinished(&db), "every task completed");
    assert_eq!(
        db.svc.get_orchestration(&IdRef::from(oid)).unwrap().status,
        OrchestrationStatus::Completed
    );
    // Seeks in the index by orchestration and state: its cost does not grow with the tasks that
    // have ended.
    let plan: Vec<String> = db
        .raw()
        .prepare(
            "EXPLAIN QUERY PLAN SELECT EXISTS (SELECT 1 FROM tasks INDEXED BY \
             tasks_by_orchestration_state WHERE orchestration = ?1 AND state IN ('ready', 'running'))",
        )
        .unwrap()
        .query_map([oid.to_string()], |r| r.get::<_, String>(3))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(
        plan.iter()
            .any(|l| l.contains("SEARCH tasks USING COVERING INDEX tasks_by_orchestration_state (orchestration=? AND state=?)")),
        "{plan:?}"
    );
}
