//! The orchestration report and the approvals listing through the service on a real file: what
//! needs a person and what to do about it, whether anything can move (a task held back by a
//! concern of a task awaiting approval, and one pending behind it, cannot), counts, and wall time
//! while it runs and once it has settled.

use maos_application::{
    ApprovalRequest, Clock, CreateOrchestration, CreatePlan, CreateTask, IdRef, MaosApi, NextStep,
    PlanTask, WaitKind,
};
use maos_domain::policy::concerns::Concern;
use maos_domain::{Risk, TaskState, Title};

use crate::support::{Db, caps, task};

fn step(key: &str, deps: &[&str], cmd: CreateTask) -> PlanTask {
    PlanTask {
        key: key.into(),
        task: cmd,
        depends_on: deps.iter().map(|d| (*d).to_owned()).collect(),
    }
}

fn work(title: &str, concern: Option<&str>) -> CreateTask {
    CreateTask {
        capabilities: caps(&["rust"]),
        concerns: concern
            .map(|c| vec![Concern::parse(c).unwrap()])
            .unwrap_or_default(),
        ..task(title)
    }
}

#[test]
fn the_report_says_what_needs_a_person_and_whether_anything_can_move() {
    let db = Db::new();
    db.register("w", &["rust"], 2);
    let made = db
        .svc
        .create_plan(CreatePlan {
            orchestration: CreateOrchestration {
                name: Title::parse("Report").unwrap(),
                goal: None,
                workspace: None,
                verify: None,
                notes: Vec::new(),
            },
            tasks: vec![
                step(
                    "holder",
                    &[],
                    CreateTask {
                        risk: Risk::Medium,
                        ..work("Holder", Some("src/**"))
                    },
                ),
                step("rival", &[], work("Rival", Some("src/a.rs"))),
                step("after", &["rival"], work("After", None)),
                step(
                    "gpu",
                    &[],
                    CreateTask {
                        capabilities: caps(&["gpu"]),
                        ..task("Render")
                    },
                ),
            ],
            start: true,
        })
        .unwrap();
    let id: IdRef = made.orchestration.id.into();
    let [holder, rival, after, gpu] = [0, 1, 2, 3].map(|i| made.tasks[i].1.id);
    let created = made.orchestration.created_at;

    // The holder's result waits for a person, and holds its concern meanwhile.
    assert_eq!(
        db.finish(holder, Some("w")).state,
        TaskState::AwaitingApproval
    );
    db.clock.set_step(0);
    let now = db.clock.now();
    let r = db.svc.orchestration_report(&id).unwrap();
    assert_eq!(r.orchestration.id, made.orchestration.id);
    assert_eq!((r.tasks, r.completed, r.attempts), (4, 0, 1));
    assert_eq!(r.by_state[&TaskState::AwaitingApproval], 1);
    assert_eq!(r.by_state[&TaskState::Ready], 2);
    assert_eq!(r.by_state[&TaskState::Pending], 1);
    assert_eq!(r.by_state[&TaskState::Completed], 0);
    assert_eq!(r.wall_ms, now.millis_since(created), "it runs: until now");
    assert_eq!(r.integration_branch, None);
    // The rival waits for the holder's concern, the task after it for the rival, the render
    // for an agent nobody offers: nothing moves without a person.
    assert!(!r.can_move, "{r:#?}");
    // (The tasks of a plan are created at one instant: independent ones come in id order.)
    let mut listed: Vec<_> = r
        .needs_a_person
        .iter()
        .map(|n| (n.task, n.state, n.next_steps.clone()))
        .collect();
    listed.sort();
    let mut expected = vec![
        (
            holder,
            TaskState::AwaitingApproval,
            vec![
                NextStep::Approve { task: holder },
                NextStep::Reject { task: holder },
            ],
        ),
        (
            gpu,
            TaskState::Ready,
            vec![
                NextStep::RegisterAgent,
                NextStep::ShowTask { task: gpu },
                NextStep::Cancel { task: gpu },
            ],
        ),
    ];
    expected.sort();
    assert_eq!(listed, expected);
    // The report's waits are the ones `task_waiting` gives, one task at a time.
    for n in &r.needs_a_person {
        assert_eq!(n.waits, db.svc.task_waiting(&n.task.into()).unwrap());
    }
    let render = r.needs_a_person.iter().find(|n| n.task == gpu).unwrap();
    assert_eq!(
        render.waits.iter().map(|w| w.kind()).collect::<Vec<_>>(),
        [WaitKind::NoCapableAgent]
    );

    // The listing of approvals: the holder, with no worktree to summarize.
    let waiting = db.svc.approvals().unwrap();
    assert_eq!(
        waiting,
        [ApprovalRequest {
            task: db.task(holder),
            changes: None
        }]
    );

    // Approved: the concern is released and the rival can be assigned.
    db.clock.set_step(1);
    db.svc.approve(&holder.into()).unwrap();
    let r = db.svc.orchestration_report(&id).unwrap();
    assert!(r.can_move);
    assert_eq!(r.completed, 1);
    assert_eq!(
        r.needs_a_person.iter().map(|n| n.task).collect::<Vec<_>>(),
        [gpu]
    );

    // Everything else done or cancelled: it has settled, and its wall time stops at the last
    // update.
    db.finish(rival, Some("w"));
    db.finish(after, Some("w"));
    let cancelled = db.svc.cancel_task(&gpu.into(), None).unwrap();
    db.clock.advance(60_000);
    let r = db.svc.orchestration_report(&id).unwrap();
    assert!(!r.can_move);
    assert_eq!((r.completed, r.attempts), (3, 3));
    assert_eq!(r.by_state[&TaskState::Cancelled], 1);
    assert!(r.needs_a_person.is_empty());
    assert_eq!(r.wall_ms, cancelled.updated_at.millis_since(created));
}
