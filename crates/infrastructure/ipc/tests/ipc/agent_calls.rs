//! An agent's own calls through the daemon: progress notes and subtasks of a running attempt
//! (with the task's new `parent` and `subtasks` fields), their refusals with the service's kind,
//! message and hint, and credentials, which the test daemon (a service without an agent
//! runtime) denies every one of, without the secret ever coming back in an error.

use maos_application::{
    AgentCredential, AssignTask, CreateSubtasks, ErrorInfo, ErrorKind, IdRef, MaosApi, PlanTask,
    TaskError,
};
use maos_domain::{
    AdapterKind, AttemptStart, FencingToken, MAX_SUBTASKS, ParentLink, ProgressNote, Subtask,
    TaskEvent, TaskId, TaskState,
};
use maos_ipc::maos_capnp::{
    ErrorKind as WireErrorKind, agent_scope_result, handshake_result, task_result,
};

use crate::support::{TestDaemon, as_sent, name, raw_session, register, remote_hint, report, task};

/// A credential of the right shape that no attempt holds.
const SECRET: &str = "maos-test-credential-0123456789-abcdefghijklmnop";

/// Registers `external`, a worker of the test's own, and starts an attempt of a new task on it;
/// answers the task's id and the attempt's fencing token.
fn running_task(api: &dyn MaosApi, title: &str) -> (TaskId, FencingToken) {
    if api.get_agent(&name("external")).is_err() {
        let mut worker = register("external", &[], 8);
        worker.adapter = AdapterKind::External;
        worker.command = None;
        api.register_agent(worker).unwrap();
    }
    let t = api.create_task(task(title)).unwrap().task;
    let a = api
        .assign_task(AssignTask {
            task: t.id.into(),
            agent: Some(name("external")),
        })
        .unwrap();
    api.start_attempt(t.id, a.fencing, AttemptStart::default())
        .unwrap();
    (t.id, a.fencing)
}

fn note(raw: &str) -> ProgressNote {
    ProgressNote::parse(raw).unwrap()
}

fn subtask(key: &str, depends_on: &[&str]) -> PlanTask {
    PlanTask {
        key: key.into(),
        task: task(&format!("Subtask {key}")),
        depends_on: depends_on.iter().map(|&k| k.to_owned()).collect(),
    }
}

#[test]
fn progress_notes_and_subtasks_cross_the_wire_with_the_tasks_new_fields() {
    let daemon = TestDaemon::start();
    let svc = &daemon.service;
    let client = daemon.client();
    let (parent, fencing) = running_task(&client, "Split me");

    // progress: the task answered is the service's, and the event carries the note
    let noted = client
        .report_progress(parent, fencing, note("halfway: ünïcode\nand a second line"))
        .unwrap();
    assert_eq!(noted, as_sent(svc.get_task(&parent.into()).unwrap()));
    let events = client.read_events(0, 1000).unwrap();
    let last = events.last().unwrap();
    assert_eq!(last.event.kind(), "task.progress_reported");
    assert_eq!(events, svc.read_events(0, 1000).unwrap());
    let maos_domain::DomainEvent::Task {
        event: TaskEvent::ProgressReported { attempt, note: n },
        ..
    } = &last.event
    else {
        panic!("{last:?}");
    };
    assert_eq!(
        (*attempt, n.as_str()),
        (1, "halfway: ünïcode\nand a second line")
    );

    // subtasks: a small DAG, each with its parent, and the parent with them
    let made = client
        .create_subtasks(
            parent,
            fencing,
            CreateSubtasks {
                tasks: vec![subtask("a", &[]), subtask("b", &["a"])],
                waits: true,
            },
        )
        .unwrap();
    assert_eq!(made.len(), 2);
    let (a, b) = (&made[0].task, &made[1].task);
    assert!(made.iter().all(|c| c.created));
    for c in &made {
        assert_eq!(
            c.task.spec.parent,
            Some(ParentLink {
                task: parent,
                waits: true
            })
        );
        assert_eq!(c.task, as_sent(svc.get_task(&c.task.id.into()).unwrap()));
    }
    assert_eq!(b.spec.depends_on.iter().collect::<Vec<_>>(), vec![&a.id]);
    let p = client.get_task(&parent.into()).unwrap();
    assert_eq!(
        p.subtasks,
        vec![
            Subtask {
                task: a.id,
                waits: true
            },
            Subtask {
                task: b.id,
                waits: true
            },
        ]
    );
    assert_eq!(p, as_sent(svc.get_task(&parent.into()).unwrap()));
    let events = client.read_events(0, 1000).unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.event.kind() == "task.subtasks_created"),
        "{events:?}"
    );
    assert_eq!(events, svc.read_events(0, 1000).unwrap());

    // subtasks that go on alone
    let alone = client
        .create_subtasks(
            parent,
            fencing,
            CreateSubtasks {
                tasks: vec![subtask("c", &[])],
                waits: false,
            },
        )
        .unwrap();
    let p = client.get_task(&parent.into()).unwrap();
    assert_eq!(
        p.subtasks.last(),
        Some(&Subtask {
            task: alone[0].task.id,
            waits: false
        })
    );
    assert_eq!(p.awaited_subtasks().count(), 2);
}

#[test]
fn an_agents_calls_are_refused_with_the_services_kind_message_and_hint() {
    let daemon = TestDaemon::start();
    let svc = &daemon.service;
    let client = daemon.client();
    let (parent, fencing) = running_task(&client, "Parent");

    // a stale fencing token
    let stale = FencingToken::new(fencing.get() + 3);
    let remote = client
        .report_progress(parent, stale, note("late"))
        .unwrap_err();
    assert!(matches!(remote, TaskError::Remote(_)), "{remote:?}");
    assert_eq!(
        report(&remote),
        report(
            &svc.report_progress(parent, stale, note("late"))
                .unwrap_err()
        )
    );
    assert_eq!(remote.kind(), ErrorKind::Conflict);

    // subtasks that are not a plan: a dependency on an unknown key, a cycle
    for tasks in [
        vec![subtask("a", &["nowhere"])],
        vec![subtask("a", &["b"]), subtask("b", &["a"])],
    ] {
        let cmd = CreateSubtasks { tasks, waits: true };
        let remote = client
            .create_subtasks(parent, fencing, cmd.clone())
            .unwrap_err();
        let local = svc.create_subtasks(parent, fencing, cmd).unwrap_err();
        assert!(matches!(local, TaskError::Refused(_)), "{local:?}");
        assert_eq!(report(&remote), report(&local));
        assert_eq!(
            remote_hint(&remote),
            Some(Some(format!("hint for: {local}")))
        );
    }

    // more subtasks than a task may have: the daemon does not read them, and refuses them as
    // the service does
    let cmd = CreateSubtasks {
        tasks: (0..=MAX_SUBTASKS)
            .map(|i| subtask(&format!("t{i}"), &[]))
            .collect(),
        waits: false,
    };
    let remote = client
        .create_subtasks(parent, fencing, cmd.clone())
        .unwrap_err();
    let local = svc.create_subtasks(parent, fencing, cmd).unwrap_err();
    assert_eq!(report(&remote), report(&local));
    assert!(remote.to_string().contains("at most 16"), "{remote}");

    // an attempt that no longer runs
    client.cancel_task(&IdRef::from(parent), None).unwrap();
    let cmd = CreateSubtasks {
        tasks: vec![subtask("a", &[])],
        waits: false,
    };
    let remote = client
        .create_subtasks(parent, fencing, cmd.clone())
        .unwrap_err();
    assert_eq!(
        report(&remote),
        report(&svc.create_subtasks(parent, fencing, cmd).unwrap_err())
    );
    // Nothing was made by any refused call.
    let p = client.get_task(&parent.into()).unwrap();
    assert_eq!(p.state, TaskState::Cancelled);
    assert!(p.subtasks.is_empty());
}

#[test]
fn an_unknown_credential_is_denied_across_the_wire_without_the_secret() {
    let daemon = TestDaemon::start();
    let svc = &daemon.service;
    let client = daemon.client();
    // A running attempt exists, but its credential is not this one (and the test daemon has no
    // runtime to give one).
    let _ = running_task(&client, "Running");
    let credential = AgentCredential::parse(SECRET).unwrap();

    let remote = client.authenticate_agent(&credential).unwrap_err();
    let local = svc.authenticate_agent(&credential).unwrap_err();
    assert!(matches!(remote, TaskError::Remote(_)), "{remote:?}");
    assert_eq!(remote.kind(), ErrorKind::Denied);
    assert_eq!(report(&remote), report(&local));
    assert_eq!(
        remote.to_string(),
        "the agent credential is not one a running attempt holds"
    );
    let hint = remote_hint(&remote).unwrap().unwrap();
    for said in [remote.to_string(), hint, format!("{remote:?}")] {
        assert!(!said.contains(SECRET), "{said}");
    }

    // Over a raw connection: the denied kind on the wire, and a malformed credential refused as
    // invalid input without being quoted back.
    let malformed = format!("{SECRET} with spaces");
    let answers = raw_session(&daemon.socket, |bootstrap| async move {
        let mut hello = bootstrap.handshake_request();
        hello.get().set_protocol(maos_ipc::PROTOCOL_VERSION);
        hello.get().set_client("raw");
        let answer = hello.send().promise.await.unwrap();
        let handshake_result::Which::Ok(ok) =
            answer.get().unwrap().get_result().unwrap().which().unwrap()
        else {
            panic!("the handshake failed");
        };
        let api = ok.get_api().unwrap();
        let mut answers = Vec::new();
        for credential in [SECRET, malformed.as_str()] {
            let mut request = api.authenticate_agent_request();
            request.get().set_credential(credential);
            let answer = request.send().promise.await.unwrap();
            let result = answer.get().unwrap().get_result().unwrap();
            let agent_scope_result::Which::Err(e) = result.which().unwrap() else {
                panic!("a credential no attempt holds was accepted");
            };
            let e = e.unwrap();
            answers.push((
                e.get_kind().unwrap(),
                e.get_message().unwrap().to_string().unwrap(),
                e.get_hint().unwrap().to_string().unwrap(),
            ));
        }
        answers
    });
    assert_eq!(answers[0].0, WireErrorKind::Denied);
    assert_eq!(answers[1].0, WireErrorKind::InvalidInput);
    assert!(
        answers[1].1.contains("agent credential"),
        "{}",
        answers[1].1
    );
    for (_, message, hint) in &answers {
        assert!(!message.contains(SECRET), "{message}");
        assert!(!hint.contains(SECRET), "{hint}");
    }
}

#[test]
fn a_progress_note_too_long_to_read_is_refused_as_invalid_input() {
    let daemon = TestDaemon::start();
    let client = daemon.client();
    let (parent, fencing) = running_task(&client, "Chatty");
    let long = "x".repeat(ProgressNote::MAX_CHARS * 4 + 1);
    let message = raw_session(&daemon.socket, |bootstrap| async move {
        let mut hello = bootstrap.handshake_request();
        hello.get().set_protocol(maos_ipc::PROTOCOL_VERSION);
        hello.get().set_client("raw");
        let answer = hello.send().promise.await.unwrap();
        let handshake_result::Which::Ok(ok) =
            answer.get().unwrap().get_result().unwrap().which().unwrap()
        else {
            panic!("the handshake failed");
        };
        let api = ok.get_api().unwrap();
        let mut request = api.report_progress_request();
        request.get().set_task(parent.to_string().as_str());
        request.get().set_fencing(fencing.get());
        request.get().set_note(long.as_str());
        let answer = request.send().promise.await.unwrap();
        let result = answer.get().unwrap().get_result().unwrap();
        let task_result::Which::Err(e) = result.which().unwrap() else {
            panic!("an overlong note was accepted");
        };
        let e = e.unwrap();
        assert_eq!(e.get_kind().unwrap(), WireErrorKind::InvalidInput);
        e.get_message().unwrap().to_string().unwrap()
    });
    assert!(message.contains("progress note"), "{message}");
    // The note is not quoted back.
    assert!(message.len() < 200, "{message}");
    // Nothing was written for it.
    let events = client.read_events(0, 1000).unwrap();
    assert!(
        events
            .iter()
            .all(|e| e.event.kind() != "task.progress_reported")
    );
}
