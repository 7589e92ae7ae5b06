//! Agent use cases: register, drain, remove, and the refusals of each.

use maos_application::{AgentError, AgentFilter, AssignTask, IdRef, MaosApi, ReadStore, TaskError};
use maos_domain::{AdapterKind, AgentStatus, Capability, TaskState, TransitionError};

use crate::support::{Db, agent, agent_name, caps, kinds, task};

fn with_capability(db: &Db, cap: &str) -> Vec<String> {
    db.svc
        .list_agents(&AgentFilter {
            statuses: Vec::new(),
            capability: Some(Capability::parse(cap).unwrap()),
        })
        .unwrap()
        .into_iter()
        .map(|a| a.name.to_string())
        .collect()
}

#[test]
fn register_refuses_a_duplicate_name_and_accepts_a_removed_one_again() {
    let db = Db::new();
    let first = db.register("worker", &["rust", "test"], 2);
    assert_eq!(first.status, AgentStatus::Available);
    assert_eq!(first.active, 0);
    assert_eq!(db.agent("worker"), first);
    assert_eq!(
        kinds(&db.store().events_of(&first.id.to_string()).unwrap()),
        ["agent.registered"]
    );

    // The same name again, even with other capabilities: refused, nothing written.
    let err = db.refused(|s| s.register_agent(agent("worker", &["go"], 1)));
    assert!(
        matches!(&err, AgentError::AlreadyExists { name } if name == "worker"),
        "{err:?}"
    );
    // So is a draining one's name.
    db.svc.drain_agent(&agent_name("worker")).unwrap();
    let err = db.refused(|s| s.register_agent(agent("worker", &["go"], 1)));
    assert!(matches!(err, AgentError::AlreadyExists { .. }), "{err:?}");

    // A command agent without its command: refused before anything is written.
    let err = db.refused(|s| {
        s.register_agent(maos_application::RegisterAgent {
            adapter: AdapterKind::Command,
            ..agent("cmd", &["rust"], 1)
        })
    });
    assert!(matches!(err, AgentError::MissingCommand), "{err:?}");

    // Removed, the name is free again: a new registration with a new id and new capabilities.
    db.svc.remove_agent(&agent_name("worker")).unwrap();
    assert!(db.svc.get_agent(&agent_name("worker")).is_err());
    assert!(with_capability(&db, "rust").is_empty());
    let second = db.register("worker", &["go"], 3);
    assert_ne!(second.id, first.id);
    assert_eq!(second.version, 1);
    assert_eq!(second.status, AgentStatus::Available);
    assert_eq!(second.slots.get(), 3);
    assert_eq!(db.agent("worker"), second);
    assert_eq!(with_capability(&db, "go"), ["worker"]);
    assert!(
        with_capability(&db, "rust").is_empty(),
        "stale capabilities"
    );
    assert!(
        with_capability(&db, "test").is_empty(),
        "stale capabilities"
    );
    // The first registration's history is still in the log, under its own id.
    assert_eq!(
        kinds(&db.store().events_of(&first.id.to_string()).unwrap()),
        ["agent.registered", "agent.drained", "agent.removed"]
    );
    assert_eq!(
        kinds(&db.store().events_of(&second.id.to_string()).unwrap()),
        ["agent.registered"]
    );
    // And the balancer uses the new capabilities.
    let t = db.create(maos_application::CreateTask {
        capabilities: caps(&["go"]),
        ..task("go work")
    });
    assert_eq!(db.assign(t.id, None).agent.as_str(), "worker");
}

#[test]
fn drain_stops_new_work_and_a_second_drain_is_refused() {
    let db = Db::new();
    db.register("d", &["rust"], 2);
    let running = db.create_titled("running");
    let a = db.run(running.id, Some("d"));

    let drained = db.svc.drain_agent(&agent_name("d")).unwrap();
    assert_eq!(drained.status, AgentStatus::Draining);
    assert_eq!(drained.active, 1);
    assert_eq!(db.agent("d"), drained);

    // No new work, named or balanced, though a slot is free.
    let next = db.create_titled("next");
    let err = db.refused(|s| {
        s.assign_task(AssignTask {
            task: IdRef::from(next.id),
            agent: Some(agent_name("d")),
        })
    });
    assert!(
        matches!(
            err,
            TaskError::Transition(TransitionError::Agent {
                from: AgentStatus::Draining,
                ..
            })
        ),
        "{err:?}"
    );
    let err = db.refused(|s| {
        s.assign_task(AssignTask {
            task: IdRef::from(next.id),
            agent: None,
        })
    });
    assert!(matches!(err, TaskError::NoCapableAgent { .. }), "{err:?}");

    // Draining twice is an illegal transition.
    let err = db.refused(|s| s.drain_agent(&agent_name("d")));
    assert!(
        matches!(
            err,
            AgentError::Transition(TransitionError::Agent {
                from: AgentStatus::Draining,
                ..
            })
        ),
        "{err:?}"
    );
    // Unknown agents are not found.
    let err = db.refused(|s| s.drain_agent(&agent_name("nobody")));
    assert!(matches!(err, AgentError::NotFound { .. }), "{err:?}");

    // The running attempt finishes normally and the agent stays draining.
    let done = db
        .svc
        .complete_attempt(
            running.id,
            a.fencing,
            None,
            maos_domain::RunReport::default(),
        )
        .unwrap();
    assert_eq!(done.state, TaskState::Completed);
    let d = db.agent("d");
    assert_eq!(d.active, 0);
    assert_eq!(d.status, AgentStatus::Draining);
}

#[test]
fn remove_is_refused_while_the_agent_holds_an_attempt_and_allowed_after() {
    let db = Db::new();
    db.register("busy", &["rust"], 1);
    let t = db.create_titled("work");

    // Assigned (not yet started) already holds the slot.
    let a = db.assign(t.id, Some("busy"));
    assert_eq!(db.agent("busy").status, AgentStatus::Busy);
    let err = db.refused(|s| s.remove_agent(&agent_name("busy")));
    assert!(
        matches!(
            &err,
            AgentError::Transition(TransitionError::AgentBusy { agent, active: 1 }) if agent == "busy"
        ),
        "{err:?}"
    );

    // Running: still refused.
    db.svc
        .start_attempt(t.id, a.fencing, Default::default())
        .unwrap();
    let err = db.refused(|s| s.remove_agent(&agent_name("busy")));
    assert!(
        matches!(
            err,
            AgentError::Transition(TransitionError::AgentBusy { active: 1, .. })
        ),
        "{err:?}"
    );

    // Finished: the slot is free and removal is allowed.
    db.svc
        .complete_attempt(t.id, a.fencing, None, maos_domain::RunReport::default())
        .unwrap();
    let busy = db.agent("busy");
    assert_eq!((busy.active, busy.status), (0, AgentStatus::Available));
    let removed = db.svc.remove_agent(&agent_name("busy")).unwrap();
    assert_eq!(removed.status, AgentStatus::Removed);
    assert!(db.svc.get_agent(&agent_name("busy")).is_err());
    assert!(
        db.svc
            .list_agents(&AgentFilter::default())
            .unwrap()
            .is_empty()
    );
    assert_eq!(db.agents(), [removed]);

    // Removing twice: the removed agent is not found.
    let err = db.refused(|s| s.remove_agent(&agent_name("busy")));
    assert!(matches!(err, AgentError::NotFound { .. }), "{err:?}");
    // Nor can a removed agent be given work.
    let t2 = db.create_titled("more");
    let err = db.refused(|s| {
        s.assign_task(AssignTask {
            task: IdRef::from(t2.id),
            agent: Some(agent_name("busy")),
        })
    });
    assert!(matches!(err, TaskError::AgentNotFound { .. }), "{err:?}");
}
