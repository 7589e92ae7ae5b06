//! Every `MaosApi` method through the daemon gives what the service gives in process, and every
//! refusal comes back with the same kind, message and hint.

use std::sync::Arc;

use maos_application::{
    AgentError, AgentFilter, AssignTask, CreateOrchestration, ErrorInfo, ErrorKind, IdRef, MaosApi,
    Page, QueryError, TaskError, TaskFilter,
};
use maos_domain::{
    AgentStatus, AttemptStart, Capability, DurationMs, FencingToken, IdempotencyKey, MaxAttempts,
    Priority, Risk, TaskId, TaskState, Tier, Title,
};
use maos_ipc::maos_capnp::{ErrorKind as WireErrorKind, agent_result};

use crate::support::{
    SharedPrefixIds, TestDaemon, as_sent, caps, name, page_as_sent, raw_session, register,
    remote_hint, report, task,
};

#[test]
fn every_method_answers_what_the_service_answers() {
    let daemon = TestDaemon::start();
    let svc = &daemon.service;
    let client = daemon.client();
    assert_eq!(client.handshake_info(), &daemon.info);
    assert_eq!(client.daemon_info().unwrap(), daemon.info);

    // agents
    let worker = client
        .register_agent(register("worker", &["rust", "test"], 2))
        .unwrap();
    assert_eq!(worker, svc.get_agent(&worker.name).unwrap());
    let mut reviewer_cmd = register("reviewer", &["review"], 1);
    reviewer_cmd.adapter = maos_domain::AdapterKind::ClaudeCode;
    reviewer_cmd.tier = Tier::Strategic;
    reviewer_cmd.command = None;
    let reviewer = client.register_agent(reviewer_cmd).unwrap();
    assert_eq!(reviewer.command, None);
    assert_eq!(client.get_agent(&reviewer.name).unwrap(), reviewer);
    for filter in [
        AgentFilter::default(),
        AgentFilter {
            statuses: vec![AgentStatus::Available],
            capability: Some(Capability::parse("rust").unwrap()),
        },
    ] {
        assert_eq!(
            client.list_agents(&filter).unwrap(),
            svc.list_agents(&filter).unwrap()
        );
    }

    // orchestrations
    let release = client
        .create_orchestration(CreateOrchestration {
            name: Title::parse("Release").unwrap(),
            goal: Some("Ship 1.0".into()),
            workspace: None,
            verify: None,
            notes: Vec::new(),
        })
        .unwrap();
    // Its tasks get agents once it runs.
    let release = client.start_orchestration(&release.id.into()).unwrap();
    let bare = client
        .create_orchestration(CreateOrchestration {
            name: Title::parse("Chores").unwrap(),
            goal: None,
            workspace: None,
            verify: None,
            notes: Vec::new(),
        })
        .unwrap();
    assert_eq!(bare.goal, None);
    let prefix = IdRef::parse(&release.id.to_string()[..10]).unwrap();
    assert_eq!(client.get_orchestration(&prefix).unwrap(), release);
    assert_eq!(
        client.list_orchestrations().unwrap(),
        svc.list_orchestrations().unwrap()
    );

    // tasks: one with every field, then the same key again, then a batch
    let mut full = task("Fix the build");
    full.prompt = "cargo build fails on main\n".into();
    full.capabilities = caps(&["rust"]);
    full.priority = Priority::Urgent;
    full.risk = Risk::Medium;
    full.tier = Some(Tier::Tactical);
    full.orchestration = Some(prefix.clone());
    full.max_attempts = MaxAttempts::new(2).unwrap();
    full.timeout = Some(DurationMs::parse("10m").unwrap());
    full.idempotency_key = Some(IdempotencyKey::parse("build-1").unwrap());
    let first = client.create_task(full.clone()).unwrap();
    assert!(first.created);
    let t1 = first.task.clone();
    assert_eq!(t1.spec.orchestration, Some(release.id));
    assert_eq!(t1, as_sent(svc.get_task(&t1.id.into()).unwrap()));
    let again = client.create_task(full).unwrap();
    assert!(!again.created);
    assert_eq!(again.task, t1);

    let batch = client
        .create_tasks(vec![task("Two"), task("Three"), task("Four")])
        .unwrap();
    assert_eq!(batch.len(), 3);
    for c in &batch {
        assert!(c.created);
        assert_eq!(c.task, as_sent(svc.get_task(&c.task.id.into()).unwrap()));
    }
    let (t2, t3, t4) = (&batch[0].task, &batch[1].task, &batch[2].task);

    let t2 = client.add_dependency(&t2.id.into(), &t1.id.into()).unwrap();
    assert_eq!(t2.state, TaskState::Pending);
    assert_eq!(t2, as_sent(svc.get_task(&t2.id.into()).unwrap()));

    // t1: assigned by name, started, completed
    let assignment = client
        .assign_task(AssignTask {
            task: t1.id.into(),
            agent: Some(worker.name.clone()),
        })
        .unwrap();
    assert_eq!(assignment.agent, worker.name);
    assert_eq!(assignment.attempt, 1);
    assert_eq!(
        assignment.task,
        as_sent(svc.get_task(&t1.id.into()).unwrap())
    );
    let started = client
        .start_attempt(t1.id, assignment.fencing, AttemptStart::default())
        .unwrap();
    assert_eq!(started.state, TaskState::Running);
    assert_eq!(started, as_sent(svc.get_task(&t1.id.into()).unwrap()));
    let done = client
        .complete_attempt(
            t1.id,
            assignment.fencing,
            Some("fixed it".into()),
            maos_domain::RunReport::default(),
        )
        .unwrap();
    assert_eq!(done, as_sent(svc.get_task(&t1.id.into()).unwrap()));
    assert_eq!(done.attempts[0].summary.as_deref(), Some("fixed it"));

    // t3: assigned by the balancer, started, failed
    let balanced = client
        .assign_task(AssignTask {
            task: t3.id.into(),
            agent: None,
        })
        .unwrap();
    client
        .start_attempt(t3.id, balanced.fencing, AttemptStart::default())
        .unwrap();
    let failed = client
        .fail_attempt(
            t3.id,
            balanced.fencing,
            "exit status 1".into(),
            maos_domain::RunReport::default(),
        )
        .unwrap();
    assert_eq!(failed, as_sent(svc.get_task(&t3.id.into()).unwrap()));
    assert_eq!(failed.attempts[0].error.as_deref(), Some("exit status 1"));

    // t4: cancelled with a reason; t2 (pending) without one
    let cancelled = client
        .cancel_task(&t4.id.into(), Some("not needed".into()))
        .unwrap();
    assert_eq!(cancelled.state, TaskState::Cancelled);
    assert_eq!(cancelled, as_sent(svc.get_task(&t4.id.into()).unwrap()));
    let cancelled = client.cancel_task(&t2.id.into(), None).unwrap();
    assert_eq!(cancelled, as_sent(svc.get_task(&t2.id.into()).unwrap()));

    // queries
    let short = IdRef::parse(&t3.id.short()).unwrap();
    assert_eq!(
        client.get_task(&short).unwrap(),
        as_sent(svc.get_task(&short).unwrap())
    );
    for filter in [
        TaskFilter::default(),
        TaskFilter {
            statuses: vec![TaskState::Cancelled, TaskState::Completed],
            orchestration: None,
            capability: None,
        },
        TaskFilter {
            statuses: Vec::new(),
            orchestration: Some(release.id),
            capability: Some(Capability::parse("rust").unwrap()),
        },
    ] {
        // Page by page, two at a time, following the cursors.
        let mut page = Page {
            limit: 2,
            cursor: None,
        };
        loop {
            let remote = client.list_tasks(&filter, &page).unwrap();
            assert_eq!(
                remote,
                page_as_sent(svc.list_tasks(&filter, &page).unwrap())
            );
            match remote.next_cursor {
                Some(cursor) => page.cursor = Some(cursor),
                None => break,
            }
        }
    }
    let status = client.status().unwrap();
    assert_eq!(status, svc.status().unwrap());
    assert_eq!(status.tasks.values().sum::<u64>(), 4);
    let events = client.read_events(0, 10_000).unwrap();
    assert_eq!(events, svc.read_events(0, 10_000).unwrap());
    assert_eq!(events.len() as u64, status.last_event);
    assert_eq!(
        client.read_events(3, 2).unwrap(),
        svc.read_events(3, 2).unwrap()
    );

    // agents again: drain and remove
    let drained = client.drain_agent(&reviewer.name).unwrap();
    assert_eq!(drained.status, AgentStatus::Draining);
    assert_eq!(drained, svc.get_agent(&reviewer.name).unwrap());
    let removed = client.remove_agent(&reviewer.name).unwrap();
    assert_eq!(removed.status, AgentStatus::Removed);
    let gone = AgentFilter {
        statuses: vec![AgentStatus::Removed],
        capability: None,
    };
    assert_eq!(client.list_agents(&gone).unwrap(), vec![removed]);
    assert_eq!(
        client.list_agents(&AgentFilter::default()).unwrap(),
        svc.list_agents(&AgentFilter::default()).unwrap()
    );
}

#[test]
fn refusals_come_back_with_their_kind_message_and_hint() {
    let daemon = TestDaemon::start();
    let svc = &daemon.service;
    let client = daemon.client();

    // not found
    let ghost = name("ghost");
    let remote = client.get_agent(&ghost).unwrap_err();
    assert!(matches!(remote, QueryError::Remote(_)), "{remote:?}");
    assert_eq!(report(&remote), report(&svc.get_agent(&ghost).unwrap_err()));
    assert_eq!(remote.kind(), ErrorKind::NotFound);
    let remote = client.drain_agent(&ghost).unwrap_err();
    assert!(matches!(remote, AgentError::Remote(_)));
    assert_eq!(
        report(&remote),
        report(&svc.drain_agent(&ghost).unwrap_err())
    );
    let unknown = IdRef::from(TaskId::from_bits(7));
    let remote = client.get_task(&unknown).unwrap_err();
    assert_eq!(
        report(&remote),
        report(&svc.get_task(&unknown).unwrap_err())
    );
    assert_eq!(remote.kind(), ErrorKind::NotFound);
    // The daemon's front end gave it its hint, and the hint crossed the wire.
    assert_eq!(
        remote_hint(&remote),
        Some(Some(format!("hint for: {remote}")))
    );

    // conflict: a duplicate name
    client.register_agent(register("worker", &[], 1)).unwrap();
    let remote = client
        .register_agent(register("worker", &[], 1))
        .unwrap_err();
    assert_eq!(
        report(&remote),
        report(&svc.register_agent(register("worker", &[], 1)).unwrap_err())
    );
    assert_eq!(remote.kind(), ErrorKind::Conflict);

    // conflict: a stale fencing token, and a dependency cycle
    let t = client.create_task(task("One")).unwrap().task;
    let a = client
        .assign_task(AssignTask {
            task: t.id.into(),
            agent: None,
        })
        .unwrap();
    let stale = FencingToken::new(a.fencing.get() + 5);
    let remote = client
        .start_attempt(t.id, stale, AttemptStart::default())
        .unwrap_err();
    assert!(matches!(remote, TaskError::Remote(_)));
    assert_eq!(
        report(&remote),
        report(
            &svc.start_attempt(t.id, stale, AttemptStart::default())
                .unwrap_err()
        )
    );
    assert_eq!(remote.kind(), ErrorKind::Conflict);
    let u = client.create_task(task("Two")).unwrap().task;
    client.add_dependency(&u.id.into(), &t.id.into()).unwrap();
    let remote = client
        .add_dependency(&t.id.into(), &u.id.into())
        .unwrap_err();
    assert_eq!(remote.kind(), ErrorKind::Conflict);
    assert!(remote.to_string().contains("cycle"), "{remote}");

    // invalid input: an ambiguous prefix (two tasks of a daemon whose ids share 4 characters)
    let daemon = TestDaemon::start_with_ids(Arc::new(SharedPrefixIds));
    let svc = &daemon.service;
    let client = daemon.client();
    let created = client
        .create_tasks((0..2).map(|i| task(&format!("Task {i}"))).collect())
        .unwrap();
    assert!(
        created[1]
            .task
            .id
            .to_string()
            .starts_with(SharedPrefixIds::PREFIX)
    );
    let prefix = IdRef::parse(SharedPrefixIds::PREFIX).unwrap();
    let remote = client.get_task(&prefix).unwrap_err();
    assert_eq!(report(&remote), report(&svc.get_task(&prefix).unwrap_err()));
    assert_eq!(remote.kind(), ErrorKind::InvalidInput);
    assert!(remote.to_string().contains("ambiguous"), "{remote}");
    let remote = client.cancel_task(&prefix, None).unwrap_err();
    assert_eq!(
        report(&remote),
        report(&svc.cancel_task(&prefix, None).unwrap_err())
    );
}

#[test]
fn the_daemon_refuses_invalid_values_from_the_wire_as_invalid_input() {
    let daemon = TestDaemon::start();
    let (kind, message) = raw_session(&daemon.socket, |bootstrap| async move {
        let mut hello = bootstrap.handshake_request();
        hello.get().set_protocol(maos_ipc::PROTOCOL_VERSION);
        hello.get().set_client("raw");
        let answer = hello.send().promise.await.unwrap();
        let maos_ipc::maos_capnp::handshake_result::Which::Ok(ok) =
            answer.get().unwrap().get_result().unwrap().which().unwrap()
        else {
            panic!("the handshake failed");
        };
        let api = ok.get_api().unwrap();
        let mut request = api.register_agent_request();
        let mut agent = request.get().init_agent();
        agent.set_name("Not A Name");
        agent.set_slots(1);
        let answer = request.send().promise.await.unwrap();
        let result = answer.get().unwrap().get_result().unwrap();
        let agent_result::Which::Err(e) = result.which().unwrap() else {
            panic!("an invalid name was accepted");
        };
        let e = e.unwrap();
        (
            e.get_kind().unwrap(),
            e.get_message().unwrap().to_string().unwrap(),
        )
    });
    assert_eq!(kind, WireErrorKind::InvalidInput);
    assert!(message.contains("invalid agent name"), "{message}");
    // Nothing was written.
    assert_eq!(daemon.service.status().unwrap().last_event, 0);
}

#[test]
fn requests_and_answers_larger_than_the_socket_buffer_cross_whole() {
    // A call's request and its answer each take several of the socket's buffers (a few hundred
    // KiB): writing and reading them waits for room and for data part-way through.
    let daemon = TestDaemon::start();
    let client = daemon.client();
    let prompt = "p".repeat(4096);
    let tasks = (0..600)
        .map(|i| {
            let mut t = task(&format!("Big {i}"));
            t.prompt.clone_from(&prompt);
            t
        })
        .collect();
    let created = client.create_tasks(tasks).unwrap();
    assert_eq!(created.len(), 600);
    let events = client.read_events(0, 10_000).unwrap();
    assert_eq!(events, daemon.service.read_events(0, 10_000).unwrap());
    assert!(events.len() >= 600);
    // The connection is still in step: the next call gets its own answer.
    assert_eq!(client.daemon_info().unwrap(), daemon.info);
}
