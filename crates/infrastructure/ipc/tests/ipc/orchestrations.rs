//! Protocol 4's calls through the daemon give what the service gives in process: plans, the
//! orchestration lifecycle, a person's retry, what a task waits for, briefings, and resuming a
//! drained agent; refusals come back with the same kind, message and hint.

use maos_application::{
    AssignTask, CreateOrchestration, CreatePlan, IdRef, MaosApi, PlanTask, WaitKind,
};
use maos_domain::policy::concerns::Concern;
use maos_domain::{AgentStatus, MaxAttempts, OrchestrationStatus, RunReport, TaskState, Title};

use crate::support::{TestDaemon, as_sent, register, report, task};

fn plan(tasks: Vec<PlanTask>) -> CreatePlan {
    CreatePlan {
        orchestration: CreateOrchestration {
            name: Title::parse("Greeting").unwrap(),
            goal: Some("Say hello politely".into()),
            workspace: None,
            verify: None,
            notes: vec!["Keep it short.".into(), "Größe: ünïcode".into()],
        },
        tasks,
        start: false,
    }
}

fn step(key: &str, deps: &[&str]) -> PlanTask {
    PlanTask {
        key: key.into(),
        task: maos_application::CreateTask {
            concerns: vec![Concern::parse(&format!("src/{key}.rs")).unwrap()],
            max_attempts: MaxAttempts::new(1).unwrap(),
            ..task(&format!("Write {key}"))
        },
        depends_on: deps.iter().map(|d| (*d).to_owned()).collect(),
    }
}

#[test]
fn plans_lifecycle_waiting_briefings_and_retries_answer_as_the_service_does() {
    let daemon = TestDaemon::start();
    let svc = &daemon.service;
    let client = daemon.client();
    client.register_agent(register("worker", &[], 2)).unwrap();

    // A cycle is refused with the service's own words, and nothing is created.
    let cyclic = plan(vec![step("a", &["b"]), step("b", &["a"])]);
    let remote = client.create_plan(cyclic.clone()).unwrap_err();
    let local = svc.create_plan(cyclic).unwrap_err();
    assert_eq!(report(&remote), report(&local));
    assert!(remote.to_string().contains("cycle"), "{remote}");
    assert!(client.list_orchestrations().unwrap().is_empty());

    // A plan: a, then b and c after it.
    let made = client
        .create_plan(plan(vec![
            step("a", &[]),
            step("b", &["a"]),
            step("c", &["a"]),
        ]))
        .unwrap();
    let o = made.orchestration.clone();
    assert_eq!(o.status, OrchestrationStatus::Draft);
    assert_eq!(o.notes, ["Keep it short.", "Größe: ünïcode"]);
    assert_eq!(o, svc.get_orchestration(&o.id.into()).unwrap());
    let keys: Vec<&str> = made.tasks.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["a", "b", "c"]);
    for (_, t) in &made.tasks {
        assert_eq!(*t, as_sent(svc.get_task(&t.id.into()).unwrap()));
        assert_eq!(t.spec.orchestration, Some(o.id));
    }
    let (a, b) = (&made.tasks[0].1, &made.tasks[1].1);
    assert_eq!(
        b.spec.depends_on.iter().copied().collect::<Vec<_>>(),
        [a.id]
    );
    assert_eq!(b.spec.concerns[0].as_str(), "src/b.rs");

    // What they wait for: a for its draft orchestration, b for a.
    let a_waits = client.task_waiting(&a.id.into()).unwrap();
    assert_eq!(a_waits, svc.task_waiting(&a.id.into()).unwrap());
    assert!(
        a_waits.iter().any(|w| w.kind() == WaitKind::Orchestration),
        "{a_waits:?}"
    );
    let b_waits = client.task_waiting(&b.id.into()).unwrap();
    assert_eq!(b_waits, svc.task_waiting(&b.id.into()).unwrap());
    assert_eq!(b_waits.len(), 1);
    assert_eq!(
        (b_waits[0].kind(), b_waits[0].task()),
        (WaitKind::Dependency, Some(a.id))
    );

    // The lifecycle, each answer as the service reads it afterwards.
    let oref: IdRef = o.id.into();
    let started = client.start_orchestration(&oref).unwrap();
    assert_eq!(started.status, OrchestrationStatus::Running);
    let paused = client.pause_orchestration(&oref, true).unwrap();
    assert_eq!(paused.status, OrchestrationStatus::Paused);
    let again = client.pause_orchestration(&oref, false).unwrap_err();
    let local = svc.pause_orchestration(&oref, false).unwrap_err();
    assert_eq!(again.to_string(), local.to_string());
    let resumed = client.resume_orchestration(&oref).unwrap();
    assert_eq!(resumed.status, OrchestrationStatus::Running);
    assert_eq!(resumed, svc.get_orchestration(&oref).unwrap());

    // a runs: its briefing carries the goal and the notes, the same through both doors.
    let assigned = client
        .assign_task(AssignTask {
            task: a.id.into(),
            agent: None,
        })
        .unwrap();
    let briefing = client.task_briefing(&a.id.into(), None).unwrap();
    assert_eq!(briefing, svc.task_briefing(&a.id.into(), Some(1)).unwrap());
    assert_eq!(briefing.attempt, 1);
    assert!(
        briefing.text.contains("Say hello politely"),
        "{}",
        briefing.text
    );
    assert!(
        briefing.text.contains("Größe: ünïcode"),
        "{}",
        briefing.text
    );
    let none = client.task_briefing(&a.id.into(), Some(2)).unwrap_err();
    assert_eq!(
        none.to_string(),
        svc.task_briefing(&a.id.into(), Some(2))
            .unwrap_err()
            .to_string()
    );

    // Its only attempt fails: no strategic agent can take it over, so it waits for a person,
    // who gives it another attempt.
    let failed = client
        .fail_attempt(a.id, assigned.fencing, "boom".into(), RunReport::default())
        .unwrap();
    assert_eq!(failed.state, TaskState::Blocked);
    // Why, as data (the words of the failure beside it); no command line travels.
    assert_eq!(
        failed.blocked,
        Some(maos_domain::BlockReason::AttemptsFailed {
            attempt: 1,
            failed: 1,
            interrupted: 0,
            strategic: false,
        })
    );
    assert_eq!(failed.reason.as_deref(), Some("boom"));
    assert_eq!(failed, as_sent(svc.get_task(&a.id.into()).unwrap()));
    let retried = client.retry_task(&a.id.into(), 2).unwrap();
    assert_eq!(retried.state, TaskState::Ready);
    assert_eq!(retried.attempts_allowed(), 3);
    assert_eq!(retried, as_sent(svc.get_task(&a.id.into()).unwrap()));
    let twice = client.retry_task(&a.id.into(), 1).unwrap_err();
    assert_eq!(
        twice.to_string(),
        svc.retry_task(&a.id.into(), 1).unwrap_err().to_string()
    );

    // A drained agent resumes.
    let worker = maos_domain::AgentName::parse("worker").unwrap();
    client.drain_agent(&worker).unwrap();
    let resumed = client.resume_agent(&worker).unwrap();
    assert_eq!(resumed.status, AgentStatus::Available);
    assert_eq!(resumed, svc.get_agent(&worker).unwrap());

    // Cancelling ends the orchestration and every unfinished task of it.
    let cancelled = client
        .cancel_orchestration(&oref, Some("not needed".into()))
        .unwrap();
    assert_eq!(cancelled.status, OrchestrationStatus::Cancelled);
    for (_, t) in &made.tasks {
        assert_eq!(
            client.get_task(&t.id.into()).unwrap().state,
            TaskState::Cancelled
        );
    }
}
