//! State rows and events agree: after a seeded random workload of every command (many of them
//! refused), folding each aggregate's stored events gives exactly its stored row, slot counts
//! match the attempts that hold slots, and the status counts match the rows.

use std::collections::{BTreeMap, BTreeSet};

use maos_application::{
    AssignTask, CreateTask, ErrorInfo, ErrorKind, IdRef, MaosApi, Page, TaskFilter,
};
use maos_domain::{
    AgentStatus, DomainEvent, FencingToken, IdempotencyKey, MaxAttempts, Risk, Task, TaskId, Tier,
};

use crate::support::{
    Db, Rng, agent, agent_name, assert_gapless, caps, fold_agent, fold_orchestration, fold_task,
    task, title,
};

const NAMES: [&str; 6] = ["ann", "bob", "cat", "dan", "eve", "fay"];
const CAPS: [&str; 3] = ["rust", "test", "review"];

fn subset<'a>(rng: &mut Rng, of: &[&'a str], odds: u64) -> Vec<&'a str> {
    of.iter()
        .copied()
        .filter(|_| rng.below(odds) == 0)
        .collect()
}

/// A refusal is fine (that is most of what random commands get); a storage error is not.
fn allowed<T, E: ErrorInfo>(r: Result<T, E>) {
    if let Err(e) = r {
        assert_ne!(e.kind(), ErrorKind::Storage, "{e}");
    }
}

/// Runs `steps` random commands.
pub(crate) fn workload(db: &Db, seed: u64, steps: usize) {
    let mut rng = Rng(seed);
    let mut tasks: Vec<TaskId> = Vec::new();
    let mut orchestrations = Vec::new();
    let svc = &db.svc;
    for _ in 0..steps {
        let any_task = |rng: &mut Rng, tasks: &[TaskId]| -> Option<TaskId> {
            (!tasks.is_empty()).then(|| rng.pick(tasks))
        };
        match rng.below(14) {
            0 => {
                let mut cmd = agent(
                    rng.pick(&NAMES),
                    &subset(&mut rng, &CAPS, 2),
                    1 + rng.below(3) as u32,
                );
                if rng.below(4) == 0 {
                    cmd.tier = Tier::Strategic;
                }
                allowed(svc.register_agent(cmd));
            }
            1 => allowed(svc.drain_agent(&agent_name(rng.pick(&NAMES)))),
            2 => allowed(svc.remove_agent(&agent_name(rng.pick(&NAMES)))),
            3 => {
                let o = svc
                    .create_orchestration(crate::support::orch(
                        title("o"),
                        (rng.below(2) == 0).then(|| "goal".into()),
                    ))
                    .unwrap();
                orchestrations.push(o.id);
            }
            4 | 5 => {
                let n = 1 + rng.below(3) as usize;
                let cmds: Vec<CreateTask> = (0..n)
                    .map(|_| {
                        let mut deps = Vec::new();
                        for _ in 0..rng.below(3) {
                            if let Some(d) = any_task(&mut rng, &tasks) {
                                deps.push(IdRef::from(d));
                            }
                        }
                        CreateTask {
                            capabilities: caps(&subset(&mut rng, &CAPS, 4)),
                            risk: rng.pick(&[Risk::Low, Risk::Low, Risk::Medium, Risk::High]),
                            tier: match rng.below(6) {
                                0 => Some(Tier::Strategic),
                                1 => Some(Tier::Tactical),
                                _ => None,
                            },
                            depends_on: deps,
                            orchestration: (!orchestrations.is_empty() && rng.below(2) == 0)
                                .then(|| IdRef::from(rng.pick(&orchestrations))),
                            max_attempts: MaxAttempts::new(1 + rng.below(3) as u32).unwrap(),
                            idempotency_key: (rng.below(5) == 0).then(|| {
                                IdempotencyKey::parse(&format!("k{}", rng.below(10))).unwrap()
                            }),
                            ..task("work")
                        }
                    })
                    .collect();
                let result = if n == 1 {
                    svc.create_task(cmds.into_iter().next().unwrap())
                        .map(|c| vec![c])
                } else {
                    svc.create_tasks(cmds)
                };
                match result {
                    Ok(created) => {
                        tasks.extend(created.iter().filter(|c| c.created).map(|c| c.task.id))
                    }
                    Err(e) => allowed::<(), _>(Err(e)),
                }
            }
            6 => {
                if let (Some(t), Some(on)) =
                    (any_task(&mut rng, &tasks), any_task(&mut rng, &tasks))
                {
                    allowed(svc.add_dependency(&IdRef::from(t), &IdRef::from(on)));
                }
            }
            7 | 8 => {
                if let Some(t) = any_task(&mut rng, &tasks) {
                    let named = (rng.below(3) == 0).then(|| agent_name(rng.pick(&NAMES)));
                    allowed(svc.assign_task(AssignTask {
                        task: IdRef::from(t),
                        agent: named,
                    }));
                }
            }
            9..=12 => {
                if let Some(t) = any_task(&mut rng, &tasks) {
                    let current = db.task(t).fencing;
                    // Mostly the current token, sometimes a stale or a future one.
                    let token = match rng.below(6) {
                        0 => FencingToken::new(current.get().saturating_sub(1)),
                        1 => current.next(),
                        _ => current,
                    };
                    match rng.below(4) {
                        0 => allowed(svc.start_attempt(t, token, Default::default())),
                        1 => allowed(svc.complete_attempt(
                            t,
                            token,
                            Some("ok".into()),
                            maos_domain::RunReport::default(),
                        )),
                        2 => allowed(svc.fail_attempt(
                            t,
                            token,
                            "bad".into(),
                            maos_domain::RunReport::default(),
                        )),
                        _ => {
                            // Start then finish, so that work actually completes.
                            allowed(svc.start_attempt(t, token, Default::default()));
                            allowed(svc.complete_attempt(
                                t,
                                token,
                                None,
                                maos_domain::RunReport::default(),
                            ));
                        }
                    }
                }
            }
            _ => {
                if let Some(t) = any_task(&mut rng, &tasks) {
                    allowed(svc.cancel_task(&IdRef::from(t), None));
                }
            }
        }
    }
}

/// Every aggregate folds from its events into its stored row, and the derived counts agree.
pub(crate) fn assert_consistent(db: &Db) {
    let tasks = db.tasks();
    let agents = db.agents();
    let orchestrations = db.svc.list_orchestrations().unwrap();
    let events = db.events();
    assert_gapless(&events);

    for t in &tasks {
        assert_eq!(fold_task(db, t.id).as_ref(), Some(t), "task {}", t.id);
    }
    for a in &agents {
        assert_eq!(fold_agent(db, a).as_ref(), Some(a), "agent {}", a.name);
    }
    for o in &orchestrations {
        assert_eq!(
            fold_orchestration(db, o).as_ref(),
            Some(o),
            "orchestration {}",
            o.id
        );
    }

    // Every event belongs to a stored aggregate (or to an earlier registration of a name).
    let task_ids: BTreeSet<String> = tasks.iter().map(|t| t.id.to_string()).collect();
    let orch_ids: BTreeSet<String> = orchestrations.iter().map(|o| o.id.to_string()).collect();
    let agent_names: BTreeSet<String> = agents.iter().map(|a| a.name.to_string()).collect();
    let mut registered: BTreeMap<String, String> = BTreeMap::new();
    for e in &events {
        match &e.event {
            DomainEvent::Task { id, .. } => assert!(task_ids.contains(&id.to_string())),
            DomainEvent::Orchestration { id, .. } => assert!(orch_ids.contains(&id.to_string())),
            DomainEvent::Memory { id, .. } => {
                assert!(
                    maos_application::ReadStore::memory(db.store(), *id)
                        .unwrap()
                        .is_some(),
                    "memory {id}"
                )
            }
            DomainEvent::Agent { id, event } => {
                if let maos_domain::AgentEvent::Registered { spec } = event {
                    registered.insert(id.to_string(), spec.name.to_string());
                }
                let name = registered
                    .get(&id.to_string())
                    .expect("an agent event before its registration");
                assert!(agent_names.contains(name));
            }
        }
    }

    // Slots in use are exactly the attempts that hold one.
    for a in &agents {
        let holding = tasks
            .iter()
            .filter(|t| t.slot_holder() == Some(&a.name))
            .count();
        assert_eq!(a.active as usize, holding, "agent {}", a.name);
        assert!(a.active <= a.slots.get());
        if a.status == AgentStatus::Removed {
            assert_eq!(a.active, 0);
        }
    }

    // Status counts are the rows'.
    let status = db.svc.status().unwrap();
    let mut by_state = BTreeMap::new();
    for t in &tasks {
        *by_state.entry(t.state).or_insert(0u64) += 1;
    }
    assert_eq!(status.tasks, by_state);
    let mut by_status = BTreeMap::new();
    for a in &agents {
        *by_status.entry(a.status).or_insert(0u64) += 1;
    }
    assert_eq!(status.agents, by_status);
    assert_eq!(status.orchestrations, orchestrations.len() as u64);
    assert_eq!(status.last_event, events.last().map_or(0, |e| e.seq));

    // The per-state filter agrees with the rows too.
    for (state, n) in &by_state {
        let filtered = db
            .svc
            .list_tasks(
                &TaskFilter {
                    statuses: vec![*state],
                    ..Default::default()
                },
                &Page {
                    limit: Page::MAX_LIMIT,
                    cursor: None,
                },
            )
            .unwrap();
        assert_eq!(filtered.tasks.len() as u64, *n, "{state}");
        assert!(filtered.tasks.iter().all(|t: &Task| t.state == *state));
    }
}

#[test]
fn folding_the_events_of_every_aggregate_gives_its_stored_state() {
    for seed in [0x1234_5678_9abc_def1, 0x0bad_cafe_f00d_0001, 42] {
        let db = Db::with_seed(seed);
        workload(&db, seed, 700);
        let tasks = db.tasks();
        assert!(tasks.len() > 50, "seed {seed}: only {} tasks", tasks.len());
        let states: BTreeSet<_> = tasks.iter().map(|t| t.state).collect();
        assert!(
            states.len() >= 5,
            "seed {seed}: too few states reached: {states:?}"
        );
        assert_consistent(&db);

        // And the same after a reopen.
        let before = db.snapshot();
        let db = db.reopen();
        db.assert_unchanged(&before);
        assert_consistent(&db);
    }
}

/// `admin verify`'s use case over a store opened for reading only, beside the open store: a
/// random workload is clean, every event and aggregate is scanned, and such a store refuses to
/// write.
#[test]
fn verify_finds_a_random_workload_clean_through_a_store_opened_for_reading() {
    use maos_application::StoreError;
    use maos_application::ports::{ReadStore, Scanned, UnitOfWork};
    use maos_application::verify::verify;
    use maos_sqlite::SqliteStore;

    let seed = 0x005e_ed0f_ab1e;
    let db = Db::with_seed(seed);
    workload(&db, seed, 400);
    let reader = SqliteStore::open_for_reading(&db.path).expect("open for reading");
    let v = verify(&reader).expect("verify");
    assert!(v.is_clean(), "{:#?}", v.findings);
    let events = db.events();
    assert_eq!(v.events, events.len() as u64);
    assert_eq!(v.last_seq, events.len() as u64);
    assert_eq!(v.tasks, db.tasks().len());
    assert!(v.tasks > 20 && v.agents > 0, "{v:?}");

    // The scan hands over every event in order, then agents, tasks, orchestrations and memory
    // entries.
    let mut order = Vec::new();
    let mut seqs = Vec::new();
    reader
        .scan(&mut |item| {
            let k = match item {
                Scanned::Event(e) => {
                    seqs.push(e.seq);
                    0
                }
                Scanned::Agent(_) => 1,
                Scanned::Task(_) => 2,
                Scanned::Orchestration(_) => 3,
                Scanned::Memory(_) => 4,
            };
            order.push(k);
        })
        .unwrap();
    assert!(order.windows(2).all(|w| w[0] <= w[1]));
    assert_eq!(seqs, (1..=events.len() as u64).collect::<Vec<_>>());
    assert_eq!(order.iter().filter(|k| **k == 2).count(), v.tasks);

    let refused: Result<(), StoreError> = reader.write(|_| Ok(()));
    assert_eq!(refused, Err(StoreError::WriterGone));
    // The same through the service's own store.
    assert!(verify(db.store()).unwrap().is_clean());
}
