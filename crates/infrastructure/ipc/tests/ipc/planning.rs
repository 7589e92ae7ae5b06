//! Protocol 7's planning calls through the daemon give what the service gives in process: a
//! goal planned (the planning task and the orchestration's planner), a person's version, another
//! version asked for, approval and rejection, and the plan's history with its versions and
//! record; refusals come back with the same kind, message and hint, and a service that cannot
//! read plans says so over the wire too.

use std::sync::Arc;

use maos_application::{
    CreateOrchestration, ErrorInfo, ErrorKind, IdRef, MaosApi, PlanGoal, PlanProblem, PlanReader,
    PlanRecord, RegisterAgent,
};
use maos_domain::orchestration::{PlanApprover, Planning};
use maos_domain::{
    CapabilitySet, MaxAttempts, OrchestrationStatus, Plan, PlanOrigin, TaskState, Tier, Title,
};

use crate::support::{TestDaemon, as_sent, register, report};

/// Plans as the JSON of the domain's `Plan`: the plan file's own reader lives in the CLI, which
/// this crate cannot use; this one reads real text the same way for what these tests need (a
/// syntax error with its place, tasks no agent can take, an empty plan).
#[derive(Debug)]
struct JsonPlans;

impl PlanReader for JsonPlans {
    fn read(&self, text: &str, offered: &CapabilitySet) -> Result<Plan, Vec<PlanProblem>> {
        let plan: Plan = serde_json::from_str(text).map_err(|e| {
            vec![PlanProblem {
                line: u32::try_from(e.line()).unwrap_or(u32::MAX),
                column: u32::try_from(e.column()).unwrap_or(u32::MAX),
                message: e.to_string(),
            }]
        })?;
        let mut problems = Vec::new();
        if plan.tasks.is_empty() {
            problems.push(PlanProblem {
                line: 0,
                column: 0,
                message: "the plan has no tasks".into(),
            });
        }
        for t in &plan.tasks {
            if !offered.covers(&t.capabilities) {
                problems.push(PlanProblem {
                    line: 0,
                    column: 0,
                    message: format!("task {} needs capabilities no agent offers", t.key.as_str()),
                });
            }
        }
        if problems.is_empty() {
            Ok(plan)
        } else {
            Err(problems)
        }
    }

    fn write(&self, plan: &Plan) -> String {
        serde_json::to_string_pretty(plan).unwrap()
    }

    fn schema(&self) -> String {
        r#"{"type": "object", "required": ["goal", "tasks"]}"#.into()
    }

    fn example(&self) -> String {
        plan_text("Say hello", &["hello"])
    }
}

/// A plan's text: one task per key, each after the one before it.
fn plan_text(goal: &str, keys: &[&str]) -> String {
    let tasks: Vec<serde_json::Value> = keys
        .iter()
        .enumerate()
        .map(|(i, key)| {
            serde_json::json!({
                "key": key,
                "title": format!("Write {key}"),
                "prompt": format!("Write {key}, ünïcode included."),
                "depends_on": if i == 0 { Vec::new() } else { vec![keys[i - 1]] },
                "concerns": [format!("src/{key}.rs")],
            })
        })
        .collect();
    serde_json::json!({ "goal": goal, "tasks": tasks }).to_string()
}

/// A strategic agent that offers `plan`: the planner a goal gets when it names none.
fn planner() -> RegisterAgent {
    RegisterAgent {
        tier: Tier::Strategic,
        ..register("planner", &["plan"], 1)
    }
}

fn goal(text: &str) -> PlanGoal {
    PlanGoal {
        goal: text.into(),
        name: None,
        notes: vec!["Keep it small.".into()],
        workspace: None,
        planner: None,
        max_tasks: 12,
        rounds: MaxAttempts::new(2).unwrap(),
        budget: None,
        timeout: None,
        discussion: None,
    }
}

fn draft(name: &str) -> CreateOrchestration {
    CreateOrchestration {
        name: Title::parse(name).unwrap(),
        goal: Some(format!("{name}, planned by a person")),
        workspace: None,
        verify: None,
        notes: Vec::new(),
    }
}

/// The plan's history through the daemon, checked against the service's.
fn history(daemon: &TestDaemon, id: &IdRef) -> maos_application::PlanHistory {
    let remote = daemon.client().plan_history(id).unwrap();
    let local = daemon.service.plan_history(id).unwrap();
    assert_eq!(remote, local);
    remote
}

#[test]
fn a_goal_planned_revised_and_rejected_through_the_daemon_is_the_services() {
    let daemon = TestDaemon::start_with_plans(Arc::new(JsonPlans));
    let svc = &daemon.service;
    let client = daemon.client();
    client.register_agent(planner()).unwrap();
    client.register_agent(register("worker", &[], 2)).unwrap();

    // A goal: a draft orchestration, its planning task, and the planner at work.
    let started = client.plan_goal(goal("Greet the world")).unwrap();
    let o = &started.orchestration;
    let id: IdRef = o.id.into();
    assert_eq!(o.status, OrchestrationStatus::Draft);
    assert_eq!(o.plan_version, 0);
    assert_eq!(
        o.planning,
        Some(Planning {
            task: started.task.id,
            max_tasks: 12,
            discussion: None,
        })
    );
    assert_eq!(started.task.spec.plans, Some(o.id));
    assert_eq!(
        client.get_task(&started.task.id.into()).unwrap(),
        as_sent(svc.get_task(&started.task.id.into()).unwrap())
    );
    assert_eq!(
        client.get_orchestration(&id).unwrap(),
        svc.get_orchestration(&id).unwrap()
    );

    // The planner is stopped by a person: the planning ends with nothing.
    client
        .cancel_task(&started.task.id.into(), Some("not now".into()))
        .unwrap();
    assert_eq!(client.get_orchestration(&id).unwrap().planning, None);

    // A person's plan that does not read is refused with the service's own words.
    for bad in ["{\"goal\": ", &plan_text("Greet", &[])] {
        let remote = client.propose_plan(&id, bad.to_owned()).unwrap_err();
        let local = svc.propose_plan(&id, bad.to_owned()).unwrap_err();
        assert_eq!(report(&remote), report(&local));
        assert_eq!(remote.kind(), ErrorKind::InvalidInput);
    }
    // One that does is version 1, awaiting approval.
    let proposed = client
        .propose_plan(&id, plan_text("Greet", &["hello", "world"]))
        .unwrap();
    assert_eq!(proposed.plan_version, 1);
    assert_eq!(proposed.status, OrchestrationStatus::AwaitingPlanApproval);
    assert_eq!(proposed, svc.get_orchestration(&id).unwrap());

    // Another version asked for: a second planner at work.
    let again = client
        .regenerate_plan(&id, "Say it louder.".into())
        .unwrap();
    assert_eq!(again.task.spec.plans, Some(o.id));
    assert_ne!(again.task.id, started.task.id);
    assert_eq!(
        again.orchestration.planning.map(|p| p.task),
        Some(again.task.id)
    );
    assert!(
        again.task.spec.prompt.contains("Say it louder."),
        "{}",
        again.task.spec.prompt
    );
    // Not approved while it works, nor at a version that does not exist.
    for version in [None, Some(7)] {
        let remote = client.approve_plan(&id, version).unwrap_err();
        let local = svc.approve_plan(&id, version).unwrap_err();
        assert_eq!(report(&remote), report(&local));
    }
    // Version 0 is no version.
    let zero = client.approve_plan(&id, Some(0)).unwrap_err();
    assert_eq!(zero.kind(), ErrorKind::InvalidInput);

    let h = history(&daemon, &id);
    assert_eq!(h.versions.len(), 1);
    assert_eq!(h.versions[0].number, 1);
    assert_eq!(h.versions[0].origin, PlanOrigin::Person);
    assert_eq!(h.versions[0].plan.tasks.len(), 2);
    let kinds: Vec<&str> = h
        .record
        .iter()
        .map(|r| match r {
            PlanRecord::Planning { .. } => "planning",
            PlanRecord::Proposed { .. } => "proposed",
            PlanRecord::Failed { .. } => "failed",
            PlanRecord::Approved { .. } => "approved",
            PlanRecord::Rejected { .. } => "rejected",
        })
        .collect();
    assert_eq!(kinds, ["planning", "failed", "proposed", "planning"]);

    // Rejected: the orchestration is cancelled, and its planner with it.
    let rejected = client
        .reject_plan(&id, Some("greet fewer people".into()))
        .unwrap();
    assert_eq!(rejected.status, OrchestrationStatus::Cancelled);
    assert_eq!(rejected, svc.get_orchestration(&id).unwrap());
    assert_eq!(
        client.get_task(&again.task.id.into()).unwrap().state,
        TaskState::Cancelled
    );
    let h = history(&daemon, &id);
    let Some(PlanRecord::Rejected {
        version, reason, ..
    }) = h.record.last()
    else {
        panic!("the last record is the rejection: {h:?}")
    };
    assert_eq!(
        (*version, reason.as_deref()),
        (1, Some("greet fewer people"))
    );

    // A second rejection is refused, as in process.
    let remote = client.reject_plan(&id, None).unwrap_err();
    let local = svc.reject_plan(&id, None).unwrap_err();
    assert_eq!(report(&remote), report(&local));
    assert_eq!(remote.kind(), ErrorKind::Conflict);
}

#[test]
fn an_approved_plan_creates_its_tasks_through_the_daemon() {
    let daemon = TestDaemon::start_with_plans(Arc::new(JsonPlans));
    let svc = &daemon.service;
    let client = daemon.client();
    client.register_agent(register("worker", &[], 2)).unwrap();
    let o = client.create_orchestration(draft("Docs")).unwrap();
    let id: IdRef = o.id.into();
    client
        .propose_plan(&id, plan_text("Docs", &["intro", "usage"]))
        .unwrap();

    let made = client.approve_plan(&id, None).unwrap();
    assert_eq!(made.orchestration.status, OrchestrationStatus::Running);
    assert_eq!(made.orchestration, svc.get_orchestration(&id).unwrap());
    let keys: Vec<&str> = made.tasks.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["intro", "usage"]);
    for (_, t) in &made.tasks {
        assert_eq!(t.spec.orchestration, Some(o.id));
        assert_eq!(
            client.get_task(&t.id.into()).unwrap(),
            as_sent(svc.get_task(&t.id.into()).unwrap())
        );
    }
    let usage = &made.tasks[1].1;
    assert_eq!(
        usage.spec.depends_on.iter().collect::<Vec<_>>(),
        [&made.tasks[0].1.id]
    );

    let h = history(&daemon, &id);
    assert!(
        matches!(
            h.record.as_slice(),
            [
                PlanRecord::Proposed { version: 1, .. },
                PlanRecord::Approved {
                    version: 1,
                    by: PlanApprover::Person,
                    ..
                }
            ]
        ),
        "{h:?}"
    );
    // A running orchestration's plan is no longer rejected.
    let remote = client.reject_plan(&id, Some("late".into())).unwrap_err();
    let local = svc.reject_plan(&id, Some("late".into())).unwrap_err();
    assert_eq!(report(&remote), report(&local));
}

#[test]
fn without_a_plan_reader_the_refusal_crosses_the_wire_and_history_and_rejection_still_work() {
    let daemon = TestDaemon::start();
    let svc = &daemon.service;
    let client = daemon.client();
    client.register_agent(planner()).unwrap();

    let remote = client.plan_goal(goal("Greet the world")).unwrap_err();
    let local = svc.plan_goal(goal("Greet the world")).unwrap_err();
    assert_eq!(report(&remote), report(&local));
    assert_eq!(remote.kind(), ErrorKind::Conflict);

    let o = client.create_orchestration(draft("Plain")).unwrap();
    let id: IdRef = o.id.into();
    let remote = client
        .propose_plan(&id, plan_text("Plain", &["a"]))
        .unwrap_err();
    let local = svc
        .propose_plan(&id, plan_text("Plain", &["a"]))
        .unwrap_err();
    assert_eq!(report(&remote), report(&local));

    // A draft with no plan: an empty history; rejecting it cancels it.
    let h = history(&daemon, &id);
    assert!(h.versions.is_empty() && h.record.is_empty(), "{h:?}");
    let rejected = client.reject_plan(&id, None).unwrap();
    assert_eq!(rejected.status, OrchestrationStatus::Cancelled);
    let h = history(&daemon, &id);
    assert!(
        matches!(
            h.record.as_slice(),
            [PlanRecord::Rejected {
                version: 0,
                reason: None,
                ..
            }]
        ),
        "{h:?}"
    );

    // An orchestration that does not exist.
    let nowhere = IdRef::parse("zzzzzz").unwrap();
    let remote = client.plan_history(&nowhere).unwrap_err();
    let local = svc.plan_history(&nowhere).unwrap_err();
    assert_eq!(report(&remote), report(&local));
    assert_eq!(remote.kind(), ErrorKind::NotFound);
}
