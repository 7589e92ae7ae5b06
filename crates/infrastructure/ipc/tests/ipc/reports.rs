//! The orchestration report through the daemon is the service's: what needs a person and
//! whether anything can move, while a draft waits to be started, while its work runs, and once
//! it has ended; an unknown orchestration is refused with the same kind, message and hint.

use maos_application::{
    AssignTask, CreateOrchestration, CreatePlan, IdRef, MaosApi, NextStep, OrchestrationReport,
    PlanTask,
};
use maos_domain::{OrchestrationStatus, RunReport, TaskState, Title};

use crate::support::{TestDaemon, register, report, task};

fn plan() -> CreatePlan {
    let step = |key: &str, deps: &[&str]| PlanTask {
        key: key.into(),
        task: task(&format!("Write {key}")),
        depends_on: deps.iter().map(|d| (*d).to_owned()).collect(),
    };
    CreatePlan {
        orchestration: CreateOrchestration {
            name: Title::parse("Report").unwrap(),
            goal: None,
            workspace: None,
            verify: None,
            notes: Vec::new(),
        },
        tasks: vec![step("a", &[]), step("b", &["a"])],
        start: false,
    }
}

/// The service's report, then the client's: equal but for the wall time of an orchestration
/// still under way, which grows between the two.
fn both(daemon: &TestDaemon, id: &IdRef) -> OrchestrationReport {
    let local = daemon.service.orchestration_report(id).unwrap();
    let remote = daemon.client().orchestration_report(id).unwrap();
    assert!(remote.wall_ms >= local.wall_ms, "{remote:?} {local:?}");
    assert_eq!(
        OrchestrationReport {
            wall_ms: local.wall_ms,
            ..remote.clone()
        },
        local
    );
    remote
}

#[test]
fn the_report_through_the_daemon_is_the_services() {
    let daemon = TestDaemon::start();
    let client = daemon.client();
    client.register_agent(register("worker", &[], 2)).unwrap();
    let made = client.create_plan(plan()).unwrap();
    let id: IdRef = made.orchestration.id.into();
    let a = made.tasks[0].1.id;

    // A draft: its ready task waits for a person to start it; the other waits behind it.
    let r = both(&daemon, &id);
    assert_eq!((r.tasks, r.completed), (2, 0));
    assert_eq!(r.by_state[&TaskState::Ready], 1);
    assert_eq!(r.by_state[&TaskState::Pending], 1);
    assert!(!r.can_move);
    let [n] = r.needs_a_person.as_slice() else {
        panic!("one task needs a person: {r:?}")
    };
    assert_eq!(n.task, a);
    assert_eq!(
        n.next_steps.first(),
        Some(&NextStep::StartOrchestration {
            orchestration: made.orchestration.id
        })
    );

    // Started, with an agent for it: it can move.
    client.start_orchestration(&id).unwrap();
    let r = both(&daemon, &id);
    assert!(r.can_move);
    assert!(r.needs_a_person.is_empty());

    // Its first task done; then it is cancelled, and its report settles.
    let assigned = client
        .assign_task(AssignTask {
            task: a.into(),
            agent: None,
        })
        .unwrap();
    client
        .start_attempt(a, assigned.fencing, Default::default())
        .unwrap();
    client
        .complete_attempt(
            a,
            assigned.fencing,
            Some("done".into()),
            RunReport::default(),
        )
        .unwrap();
    let r = both(&daemon, &id);
    assert_eq!((r.completed, r.attempts), (1, 1));
    client.cancel_orchestration(&id, None).unwrap();
    let local = daemon.service.orchestration_report(&id).unwrap();
    let remote = client.orchestration_report(&id).unwrap();
    assert_eq!(remote, local);
    assert_eq!(remote.orchestration.status, OrchestrationStatus::Cancelled);
    assert!(!remote.can_move);

    // An orchestration that does not exist.
    let nowhere = IdRef::parse("zzzzzz").unwrap();
    let remote = client.orchestration_report(&nowhere).unwrap_err();
    let local = daemon.service.orchestration_report(&nowhere).unwrap_err();
    assert_eq!(report(&remote), report(&local));
}
