//! Workspaces and approvals through the daemon: an `external` worker's attempt with its
//! checkpoint, port and worktree; tool, result and run approvals granted and rejected; the
//! workspace calls, which need a worktree and git (the test daemon has no git attached), answer
//! clean errors with the service's kind, message and hint.

use maos_application::{
    AssignTask, CreateOrchestration, ErrorInfo, ErrorKind, GcRequest, IdRef, MaosApi,
    OrchestrationError, QueryError, TaskError,
};
use maos_domain::{
    AdapterKind, AttemptStart, FencingToken, Gate, Risk, RunReport, TaskId, TaskState,
    TaskWorkspace, Title, Verification, WorkspaceSpec,
};
use maos_ipc::convert::read_orchestration;
use maos_ipc::maos_capnp::{handshake_result, orchestration_result};

use crate::support::{
    TestDaemon, as_sent, name, raw_session, register, remote_hint, report, requests_as_sent, task,
    tasks_of,
};

const BEFORE: &str = "0123456789abcdef0123456789abcdef01234567";
const AFTER: &str = "89abcdef0123456789abcdef0123456789abcdef";

/// Registers `external`, a worker of the test's own (MAOS never starts it).
fn external_worker(api: &dyn MaosApi) {
    let mut worker = register("external", &[], 4);
    worker.adapter = AdapterKind::External;
    worker.command = None;
    api.register_agent(worker).unwrap();
}

/// Assigns `task` to the external worker and starts the attempt; answers its fencing token.
fn run_on_worker(api: &dyn MaosApi, task: TaskId, start: AttemptStart) -> FencingToken {
    let a = api
        .assign_task(AssignTask {
            task: task.into(),
            agent: Some(name("external")),
        })
        .unwrap();
    api.start_attempt(task, a.fencing, start).unwrap();
    a.fencing
}

fn worktree(task: TaskId) -> TaskWorkspace {
    TaskWorkspace {
        repo: "/srv/repo".into(),
        path: format!("/srv/repo/.maos/worktrees/{}", task.short()),
        branch: format!("maos/{}", task.short()),
        base: BEFORE.into(),
        removed: false,
    }
}

#[test]
fn an_external_workers_attempt_asks_for_approvals_and_a_person_answers() {
    let daemon = TestDaemon::start();
    let svc = &daemon.service;
    let client = daemon.client();
    external_worker(&client);

    // A medium-risk task with a verification command and a port of its own.
    let mut cmd = task("Fix the flaky test");
    cmd.risk = Risk::Medium;
    cmd.verify = Some("cargo test".into());
    cmd.wants_port = true;
    let t = client.create_task(cmd).unwrap().task;
    assert_eq!(t.spec.verify.as_deref(), Some("cargo test"));
    assert!(t.spec.wants_port);
    assert_eq!(t, as_sent(svc.get_task(&t.id.into()).unwrap()));

    // Started with a process, a checkpoint and a port.
    let fencing = run_on_worker(
        &client,
        t.id,
        AttemptStart {
            pid: Some(4242),
            checkpoint: Some(BEFORE.into()),
            port: Some(40_001),
        },
    );
    let running = client.get_task(&t.id.into()).unwrap();
    assert_eq!(running, as_sent(svc.get_task(&t.id.into()).unwrap()));
    let attempt = &running.attempts[0];
    assert_eq!(attempt.pid, Some(4242));
    assert_eq!(attempt.checkpoint_before.as_deref(), Some(BEFORE));
    assert_eq!(attempt.port, Some(40_001));

    // Its worktree, recorded; with a stale token, refused as in process.
    let ws = worktree(t.id);
    let recorded = client.record_workspace(t.id, fencing, ws.clone()).unwrap();
    assert_eq!(recorded.workspace.as_ref(), Some(&ws));
    assert_eq!(client.get_task(&t.id.into()).unwrap(), recorded);
    let stale = FencingToken::new(fencing.get() + 1);
    let remote = client
        .record_workspace(t.id, stale, ws.clone())
        .unwrap_err();
    assert!(matches!(remote, TaskError::Remote(_)), "{remote:?}");
    assert_eq!(remote.kind(), ErrorKind::Conflict);
    assert_eq!(
        report(&remote),
        report(&svc.record_workspace(t.id, stale, ws).unwrap_err())
    );

    // A tool call waits for a person: listed, a second request refused, then approved.
    let asked = client
        .request_approval(t.id, fencing, "Bash".into(), Some("git push".into()))
        .unwrap();
    assert_eq!(asked.state, TaskState::Running);
    let pending = asked.pending.clone().unwrap();
    assert_eq!(pending.gate, Gate::Tool);
    assert_eq!(pending.attempt, Some(1));
    assert_eq!(pending.tool.as_deref(), Some("Bash"));
    assert_eq!(pending.subject.as_deref(), Some("git push"));
    assert_eq!(tasks_of(client.approvals().unwrap()), vec![asked.clone()]);
    assert_eq!(
        client.approvals().unwrap(),
        requests_as_sent(svc.approvals().unwrap())
    );
    let remote = client
        .request_approval(t.id, fencing, "Edit".into(), None)
        .unwrap_err();
    assert_eq!(remote.kind(), ErrorKind::Conflict);
    assert_eq!(
        report(&remote),
        report(
            &svc.request_approval(t.id, fencing, "Edit".into(), None)
                .unwrap_err()
        )
    );
    let short = IdRef::parse(&t.id.short()).unwrap();
    let approved = client.approve(&short).unwrap();
    assert_eq!(approved.state, TaskState::Running);
    assert_eq!(approved.pending, None);
    let decision = approved.decision.clone().unwrap();
    assert_eq!(
        (decision.gate, decision.approved, decision.reason),
        (Gate::Tool, true, None)
    );
    assert_eq!(approved, as_sent(svc.get_task(&short).unwrap()));
    assert!(client.approvals().unwrap().is_empty());

    // Asked again and rejected: the attempt goes on.
    client
        .request_approval(t.id, fencing, "Bash".into(), None)
        .unwrap();
    let rejected = client.reject(&short, "not on main".into(), false).unwrap();
    assert_eq!(rejected.state, TaskState::Running);
    let decision = rejected.decision.clone().unwrap();
    assert_eq!(
        (decision.gate, decision.approved, decision.reason.as_deref()),
        (Gate::Tool, false, Some("not on main"))
    );
    assert_eq!(rejected, as_sent(svc.get_task(&short).unwrap()));

    // Nothing waits now: approving and rejecting are refused as in process.
    let remote = client.approve(&short).unwrap_err();
    assert!(matches!(remote, TaskError::Remote(_)), "{remote:?}");
    assert_eq!(remote.kind(), ErrorKind::Conflict);
    assert_eq!(report(&remote), report(&svc.approve(&short).unwrap_err()));
    let remote = client.reject(&short, "no".into(), true).unwrap_err();
    assert_eq!(
        report(&remote),
        report(&svc.reject(&short, "no".into(), true).unwrap_err())
    );

    // The attempt ends with a checkpoint and a passing verification; the result waits for a
    // person (medium risk), who accepts it.
    let verification = Verification {
        passed: true,
        output: "test result: ok. 12 passed\n".into(),
    };
    let done = client
        .complete_attempt(
            t.id,
            fencing,
            Some("fixed".into()),
            RunReport {
                checkpoint: Some(AFTER.into()),
                verification: Some(verification.clone()),
                ..RunReport::default()
            },
        )
        .unwrap();
    assert_eq!(done.state, TaskState::AwaitingApproval);
    assert_eq!(done.pending.as_ref().map(|p| p.gate), Some(Gate::Result));
    assert_eq!(done.attempts[0].checkpoint_after.as_deref(), Some(AFTER));
    assert_eq!(done.attempts[0].verification.as_ref(), Some(&verification));
    assert_eq!(done, as_sent(svc.get_task(&short).unwrap()));
    // It has a worktree, but the test daemon has no git to tell what it changed.
    let listed = client.approvals().unwrap();
    assert_eq!(listed, requests_as_sent(svc.approvals().unwrap()));
    assert_eq!(listed.first().map(|r| &r.changes), Some(&None));
    assert_eq!(tasks_of(listed), vec![done]);
    let accepted = client.approve(&t.id.into()).unwrap();
    assert_eq!(accepted.state, TaskState::Completed);
    let decision = accepted.decision.clone().unwrap();
    assert_eq!((decision.gate, decision.approved), (Gate::Result, true));
    assert_eq!(accepted, as_sent(svc.get_task(&short).unwrap()));

    // High-risk tasks wait for a person before they run: one approved, one rejected for good.
    let mut risky = task("Rewrite history");
    risky.risk = Risk::High;
    let r = client.create_task(risky.clone()).unwrap().task;
    risky.title = Title::parse("Rewrite more history").unwrap();
    let c = client.create_task(risky).unwrap().task;
    for waiting in [&r, &c] {
        assert_eq!(waiting.state, TaskState::AwaitingApproval);
        assert_eq!(waiting.pending.as_ref().map(|p| p.gate), Some(Gate::Run));
    }
    let waiting = client.approvals().unwrap();
    assert_eq!(waiting.len(), 2);
    assert_eq!(waiting, requests_as_sent(svc.approvals().unwrap()));
    let ready = client.approve(&r.id.into()).unwrap();
    assert_eq!(ready.state, TaskState::Ready);
    assert!(ready.run_approved);
    assert_eq!(ready, as_sent(svc.get_task(&r.id.into()).unwrap()));
    let cancelled = client
        .reject(&c.id.into(), "too risky".into(), true)
        .unwrap();
    assert_eq!(cancelled.state, TaskState::Cancelled);
    let decision = cancelled.decision.clone().unwrap();
    assert_eq!(
        (decision.gate, decision.approved, decision.reason.as_deref()),
        (Gate::Run, false, Some("too risky"))
    );
    assert_eq!(cancelled, as_sent(svc.get_task(&c.id.into()).unwrap()));
    assert!(client.approvals().unwrap().is_empty());

    // The events of all this (approval_requested, approval_granted, ...) read the same.
    assert_eq!(
        client.read_events(0, 10_000).unwrap(),
        svc.read_events(0, 10_000).unwrap()
    );
}

#[test]
fn workspace_calls_without_a_worktree_or_without_git_are_clean_errors() {
    let daemon = TestDaemon::start();
    let svc = &daemon.service;
    let client = daemon.client();
    external_worker(&client);

    // A task without a repository: a conflict, with the hint about --repo.
    let plain = client.create_task(task("Plain")).unwrap().task;
    let p: IdRef = plain.id.into();
    let remote = client.diff_summary(&p).unwrap_err();
    assert!(matches!(remote, QueryError::Remote(_)), "{remote:?}");
    assert_eq!(remote.kind(), ErrorKind::Conflict);
    assert!(remote_hint(&remote).is_some(), "{remote:?}");
    assert_eq!(report(&remote), report(&svc.diff_summary(&p).unwrap_err()));
    for (attempt, stat) in [(None, false), (Some(1), true)] {
        let remote = client.task_diff(&p, attempt, stat).unwrap_err();
        assert_eq!(
            report(&remote),
            report(&svc.task_diff(&p, attempt, stat).unwrap_err())
        );
    }
    let remote = client.rollback(&p, None).unwrap_err();
    assert!(matches!(remote, TaskError::Remote(_)), "{remote:?}");
    assert_eq!(
        report(&remote),
        report(&svc.rollback(&p, None).unwrap_err())
    );

    // Attempt 0 does not exist; the client refuses it before anything is sent (on the wire 0
    // means "none").
    let remote = client.rollback(&p, Some(0)).unwrap_err();
    assert_eq!(remote.kind(), ErrorKind::InvalidInput);
    let remote = client.task_diff(&p, Some(0), false).unwrap_err();
    assert_eq!(remote.kind(), ErrorKind::InvalidInput);

    // A task in a repository whose first attempt has not started has no worktree yet.
    let spec = WorkspaceSpec {
        repo: "/srv/repo".into(),
        base: Some("main".into()),
    };
    let mut cmd = task("In a repository");
    cmd.workspace = Some(spec.clone());
    let in_repo = client.create_task(cmd).unwrap().task;
    assert_eq!(in_repo.spec.workspace.as_ref(), Some(&spec));
    assert_eq!(in_repo, as_sent(svc.get_task(&in_repo.id.into()).unwrap()));
    let r: IdRef = in_repo.id.into();
    let remote = client.diff_summary(&r).unwrap_err();
    assert_eq!(remote.kind(), ErrorKind::Conflict);
    assert!(remote.to_string().contains("yet"), "{remote}");
    assert_eq!(report(&remote), report(&svc.diff_summary(&r).unwrap_err()));

    // Once it has one, the calls need git, which this daemon lacks: an error, not a crash.
    let fencing = run_on_worker(&client, in_repo.id, AttemptStart::default());
    client
        .record_workspace(in_repo.id, fencing, worktree(in_repo.id))
        .unwrap();
    let remote = client.diff_summary(&r).unwrap_err();
    assert_eq!(remote.kind(), ErrorKind::Storage);
    assert_eq!(report(&remote), report(&svc.diff_summary(&r).unwrap_err()));
    let remote = client.task_diff(&r, None, true).unwrap_err();
    assert_eq!(
        report(&remote),
        report(&svc.task_diff(&r, None, true).unwrap_err())
    );
    let gc = GcRequest {
        dry_run: true,
        force: false,
        older_than: std::time::Duration::ZERO,
    };
    let remote = client.gc(&gc).unwrap_err();
    assert!(matches!(remote, TaskError::Remote(_)), "{remote:?}");
    assert_eq!(remote.kind(), ErrorKind::Storage);
    assert_eq!(report(&remote), report(&svc.gc(&gc).unwrap_err()));

    // An orchestration in a repository: its spec round-trips; merging it needs git.
    let o = client
        .create_orchestration(CreateOrchestration {
            name: Title::parse("Release").unwrap(),
            goal: Some("Ship 1.0".into()),
            workspace: Some(spec.clone()),
            verify: Some("make check".into()),
            notes: Vec::new(),
        })
        .unwrap();
    assert_eq!(o.workspace.as_ref(), Some(&spec));
    assert_eq!(o.verify.as_deref(), Some("make check"));
    let oid: IdRef = o.id.into();
    assert_eq!(client.get_orchestration(&oid).unwrap(), o);
    assert_eq!(svc.get_orchestration(&oid).unwrap(), o);
    let remote = client.merge_orchestration(&oid, None).unwrap_err();
    assert!(
        matches!(remote, OrchestrationError::Remote(_)),
        "{remote:?}"
    );
    assert_eq!(remote.kind(), ErrorKind::Storage);
    assert_eq!(
        report(&remote),
        report(&svc.merge_orchestration(&oid, None).unwrap_err())
    );
    // Without a repository there is nothing to merge.
    let bare = client
        .create_orchestration(CreateOrchestration {
            name: Title::parse("Chores").unwrap(),
            goal: None,
            workspace: None,
            verify: None,
            notes: Vec::new(),
        })
        .unwrap();
    let bid: IdRef = bare.id.into();
    let remote = client
        .merge_orchestration(&bid, Some("main".into()))
        .unwrap_err();
    assert_eq!(remote.kind(), ErrorKind::Conflict);
    assert!(remote.to_string().contains("no repository"), "{remote}");
    assert_eq!(
        report(&remote),
        report(
            &svc.merge_orchestration(&bid, Some("main".into()))
                .unwrap_err()
        )
    );

    // The connection is still in step.
    assert_eq!(client.status().unwrap(), svc.status().unwrap());
}

#[test]
fn create_orchestration_takes_name_and_goal_or_a_spec_that_wins() {
    let daemon = TestDaemon::start();
    let (old_shape, with_spec) = raw_session(&daemon.socket, |bootstrap| async move {
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

        // The shape of protocol 2's call: name and goal only.
        let mut request = api.create_orchestration_request();
        request.get().set_name("Old shape");
        request.get().set_goal("no spec");
        let answer = request.send().promise.await.unwrap();
        let orchestration_result::Which::Ok(old) =
            answer.get().unwrap().get_result().unwrap().which().unwrap()
        else {
            panic!("name and goal were refused");
        };
        let old_shape = read_orchestration(old.unwrap()).unwrap();

        // Both: the spec wins.
        let mut request = api.create_orchestration_request();
        request.get().set_name("Ignored");
        let mut spec = request.get().init_spec();
        spec.set_name("From the spec");
        spec.set_verify("make check");
        spec.reborrow().init_workspace().set_repo("/srv/repo");
        let answer = request.send().promise.await.unwrap();
        let orchestration_result::Which::Ok(new) =
            answer.get().unwrap().get_result().unwrap().which().unwrap()
        else {
            panic!("the spec was refused");
        };
        (old_shape, read_orchestration(new.unwrap()).unwrap())
    });
    assert_eq!(old_shape.name.as_str(), "Old shape");
    assert_eq!(old_shape.goal.as_deref(), Some("no spec"));
    assert_eq!(old_shape.workspace, None);
    assert_eq!(old_shape.verify, None);
    assert_eq!(with_spec.name.as_str(), "From the spec");
    assert_eq!(with_spec.goal, None);
    assert_eq!(
        with_spec.workspace,
        Some(WorkspaceSpec {
            repo: "/srv/repo".into(),
            base: None,
        })
    );
    assert_eq!(with_spec.verify.as_deref(), Some("make check"));
    assert_eq!(
        daemon.service.list_orchestrations().unwrap(),
        vec![old_shape, with_spec]
    );
}
