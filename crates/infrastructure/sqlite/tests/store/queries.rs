//! Queries: task pages and filters, id prefixes (unique, ambiguous, unknown), and status counts.

use std::collections::{BTreeMap, BTreeSet};

use maos_application::{
    AssignTask, CreateTask, IdRef, MaosApi, Page, QueryError, TaskCursor, TaskError, TaskFilter,
};
use maos_domain::{AgentStatus, Capability, MaxAttempts, Risk, Task, TaskState};

use crate::support::{Db, agent_name, all_tasks, caps, refs, task, title};

fn id_ref(raw: &str) -> IdRef {
    IdRef::parse(raw).unwrap()
}

/// Pages through `filter` with `limit`, checking each page's size and cursor.
fn pages(db: &Db, filter: &TaskFilter, limit: usize) -> Vec<Vec<Task>> {
    let mut out = Vec::new();
    let mut page = Page {
        limit,
        cursor: None,
    };
    loop {
        let p = db.svc.list_tasks(filter, &page).unwrap();
        assert!(p.tasks.len() <= limit);
        match p.next_cursor {
            Some(c) => {
                assert_eq!(p.tasks.len(), limit, "only a full page has a next page");
                assert_eq!(Some(c), p.tasks.last().map(TaskCursor::after));
                // The cursor survives being printed and parsed (as the CLI passes it).
                let reparsed = TaskCursor::parse(&c.to_string()).unwrap();
                assert_eq!(reparsed, c);
                out.push(p.tasks);
                page.cursor = Some(reparsed);
            }
            None => {
                out.push(p.tasks);
                return out;
            }
        }
    }
}

#[test]
fn pages_visit_every_task_once_in_creation_order_and_filters_select_the_right_ones() {
    let db = Db::new();
    db.register("w", &["rust", "a_b", "axb", "rust-fast"], 50);
    let o1 = db
        .svc
        .create_orchestration(crate::support::orch(title("one"), None))
        .unwrap();
    let o2 = db
        .svc
        .create_orchestration(crate::support::orch(title("two"), None))
        .unwrap();
    for o in [&o1, &o2] {
        db.svc.start_orchestration(&o.id.into()).unwrap();
    }
    let cap_sets: [&[&str]; 5] = [&[], &["rust"], &["rust-fast"], &["a_b"], &["axb", "rust"]];

    let mut n = 0;
    let mut next = || {
        n += 1;
        CreateTask {
            capabilities: caps(cap_sets[n % cap_sets.len()]),
            orchestration: match n % 3 {
                0 => Some(IdRef::from(o1.id)),
                1 => Some(IdRef::from(o2.id)),
                _ => None,
            },
            ..task(&format!("task {n}"))
        }
    };
    // Singles with distinct times, batches that share one time, and singles on a frozen clock.
    let mut all: Vec<Task> = Vec::new();
    for round in 0..12 {
        for _ in 0..5 {
            let cmd = next();
            all.push(db.create(cmd));
        }
        let batch: Vec<CreateTask> = (0..7).map(|_| next()).collect();
        all.extend(
            db.svc
                .create_tasks(batch)
                .unwrap()
                .into_iter()
                .map(|c| c.task),
        );
        if round % 4 == 0 {
            db.clock.set_step(0);
            for _ in 0..4 {
                let cmd = next();
                all.push(db.create(cmd));
            }
            db.clock.set_step(1);
        }
    }
    // Move some tasks on: a few pending (on a running task), some cancelled, some running.
    let running = all[3].id;
    db.run(running, Some("w"));
    for t in all.iter().step_by(9) {
        if t.id != running {
            db.svc.cancel_task(&IdRef::from(t.id), None).unwrap();
        }
    }
    for i in 0..6 {
        let cmd = CreateTask {
            depends_on: refs(&[running]),
            ..next()
        };
        let t = db.create(cmd);
        assert_eq!(t.state, TaskState::Pending, "{i}");
    }
    let stored = db.tasks();
    assert_eq!(stored.len(), 12 * 12 + 3 * 4 + 6);

    // The order is (created_at, id), with ties on created_at.
    let mut expected = stored.clone();
    expected.sort_by_key(|t| (t.created_at, t.id));
    assert_eq!(stored, expected);
    let times: BTreeSet<_> = stored.iter().map(|t| t.created_at).collect();
    assert!(times.len() < stored.len(), "the data set must have ties");

    for limit in [1, 7, 13, stored.len() - 1, stored.len(), stored.len() + 1] {
        let pages = pages(&db, &TaskFilter::default(), limit);
        let flat: Vec<Task> = pages.concat();
        assert_eq!(flat, stored, "limit {limit}");
        assert_eq!(pages.len(), stored.len().div_ceil(limit), "limit {limit}");
    }
    // A limit of 0 asks for nothing: refused, as is reading 0 events.
    let zero = db.svc.list_tasks(
        &TaskFilter::default(),
        &Page {
            limit: 0,
            cursor: None,
        },
    );
    assert!(
        matches!(
            zero,
            Err(QueryError::ZeroLimit {
                max: Page::MAX_LIMIT
            })
        ),
        "{zero:?}"
    );
    let zero = db.svc.read_events(0, 0);
    assert!(
        matches!(zero, Err(QueryError::ZeroLimit { .. })),
        "{zero:?}"
    );

    // Filters, alone and combined, paged, against the rows filtered here.
    let cap = |c: &str| Some(Capability::parse(c).unwrap());
    let filters = [
        TaskFilter {
            statuses: vec![TaskState::Ready],
            ..Default::default()
        },
        TaskFilter {
            statuses: vec![TaskState::Pending, TaskState::Cancelled, TaskState::Running],
            ..Default::default()
        },
        TaskFilter {
            statuses: vec![TaskState::Completed],
            ..Default::default()
        },
        TaskFilter {
            orchestration: Some(o1.id),
            ..Default::default()
        },
        TaskFilter {
            capability: cap("rust"),
            ..Default::default()
        },
        TaskFilter {
            capability: cap("a_b"),
            ..Default::default()
        },
        TaskFilter {
            capability: cap("rust-fast"),
            ..Default::default()
        },
        TaskFilter {
            statuses: vec![TaskState::Ready, TaskState::Pending],
            orchestration: Some(o2.id),
            capability: cap("rust"),
        },
    ];
    for filter in &filters {
        let want: Vec<Task> = stored
            .iter()
            .filter(|t| filter.statuses.is_empty() || filter.statuses.contains(&t.state))
            .filter(|t| {
                filter
                    .orchestration
                    .is_none_or(|o| t.spec.orchestration == Some(o))
            })
            .filter(|t| {
                filter
                    .capability
                    .as_ref()
                    .is_none_or(|c| t.spec.capabilities.contains(c))
            })
            .cloned()
            .collect();
        for limit in [4, 1000] {
            assert_eq!(
                pages(&db, filter, limit).concat(),
                want,
                "{filter:?} limit {limit}"
            );
        }
    }
    // The filters are not vacuous: `rust` excludes `rust-fast`, `a_b` excludes `axb`.
    let count = |f: &TaskFilter| all_tasks(&db.svc, f, 1000).len();
    assert!(count(&filters[0]) > 50);
    assert!(count(&filters[1]) > 10);
    assert_eq!(count(&filters[2]), 0);
    assert!(count(&filters[4]) > 0 && count(&filters[6]) > 0);
    assert!(all_tasks(&db.svc, &filters[4], 1000).iter().all(|t| {
        t.spec
            .capabilities
            .contains(&Capability::parse("rust").unwrap())
    }));
    assert_eq!(
        count(&filters[5]),
        stored
            .iter()
            .filter(|t| t.spec.capabilities == caps(&["a_b"]))
            .count()
    );
    assert!(count(&filters[7]) > 0);
}

/// A full id: `prefix` padded with zeros up to 24 characters, then `last`.
fn full(prefix: &str, last: char) -> String {
    format!("{prefix:0<24}{last}")
}

#[test]
fn ids_resolve_by_unique_prefix_and_an_ambiguous_prefix_lists_the_candidates() {
    let db = Db::new();
    db.register("w", &[], 1);
    let ab1 = full("abcd", '1');
    let ab2 = full("abcd", '2');
    let abe = full("abce", '1');
    db.ids.script(&[&ab1, &ab2, &abe]);
    let t1 = db.create_titled("one");
    let t2 = db.create_titled("two");
    let t3 = db.create_titled("three");
    assert_eq!(
        [t1.id, t2.id, t3.id].map(|i| i.to_string()),
        [ab1.clone(), ab2.clone(), abe.clone()]
    );

    // Unique prefixes, any case; the full id.
    assert_eq!(db.svc.get_task(&id_ref("abce")).unwrap(), t3);
    assert_eq!(db.svc.get_task(&id_ref("ABCE0")).unwrap(), t3);
    assert_eq!(db.svc.get_task(&id_ref(&ab2)).unwrap(), t2);
    assert_eq!(db.svc.get_task(&id_ref(&ab1.to_uppercase())).unwrap(), t1);

    // Ambiguous: the candidates in id order.
    for p in ["abcd", "ABCD", &ab1[..24]] {
        match db.svc.get_task(&id_ref(p)) {
            Err(QueryError::Ambiguous { prefix, candidates }) => {
                assert_eq!(prefix, p.to_ascii_lowercase());
                assert_eq!(candidates, vec![ab1.clone(), ab2.clone()]);
            }
            other => panic!("{p}: expected ambiguity, got {other:?}"),
        }
    }
    // Unknown.
    assert!(matches!(
        db.svc.get_task(&id_ref("abcf")),
        Err(QueryError::NotFound { .. })
    ));
    assert!(matches!(
        db.svc.get_task(&id_ref(&full("abcd", '3'))),
        Err(QueryError::NotFound { .. })
    ));
    // Not an id at all.
    assert!(IdRef::parse("abci").is_err());
    assert!(IdRef::parse("").is_err());
    // Too short to stay unique.
    assert!(IdRef::parse("abc").is_err());

    // Commands refuse an ambiguous reference and write nothing.
    let err = db.refused(|s| s.cancel_task(&id_ref("abcd"), None));
    assert!(matches!(err, TaskError::Ambiguous { .. }), "{err:?}");
    let err = db.refused(|s| {
        s.assign_task(AssignTask {
            task: id_ref("abcd"),
            agent: None,
        })
    });
    assert!(matches!(err, TaskError::Ambiguous { .. }), "{err:?}");
    let err = db.refused(|s| {
        s.create_task(CreateTask {
            depends_on: vec![id_ref("abcd")],
            ..task("dep")
        })
    });
    assert!(
        matches!(&err, TaskError::Ambiguous { candidates, .. } if candidates.len() == 2),
        "{err:?}"
    );
    let err = db.refused(|s| s.add_dependency(&id_ref("abce"), &id_ref("abcd")));
    assert!(matches!(err, TaskError::Ambiguous { .. }), "{err:?}");
    // And accept a unique one.
    let c = db.svc.cancel_task(&id_ref("abce"), None).unwrap();
    assert_eq!(c.id, t3.id);

    // Many matches: ten candidates are listed.
    let many: Vec<String> = (0..12).map(|i| format!("zz{i:023}")).collect();
    db.ids
        .script(&many.iter().map(String::as_str).collect::<Vec<_>>());
    for _ in 0..12 {
        db.create_titled("z");
    }
    match db.svc.get_task(&id_ref("zz00")) {
        Err(QueryError::Ambiguous { candidates, .. }) => assert_eq!(candidates, many[..10]),
        other => panic!("expected ambiguity, got {other:?}"),
    }

    // Orchestrations resolve the same way.
    db.ids.script(&[&full("q1", 'a'), &full("q1", 'b')]);
    let qa = db
        .svc
        .create_orchestration(crate::support::orch(title("qa"), None))
        .unwrap();
    let _qb = db
        .svc
        .create_orchestration(crate::support::orch(title("qb"), None))
        .unwrap();
    assert_eq!(
        db.svc.get_orchestration(&id_ref(&full("q1", 'a'))).unwrap(),
        qa
    );
    assert!(matches!(
        db.svc.get_orchestration(&id_ref("q100")),
        Err(QueryError::Ambiguous { .. })
    ));
    assert!(matches!(
        db.svc.get_orchestration(&id_ref("q200")),
        Err(QueryError::NotFound { .. })
    ));
    let err = db.refused(|s| {
        s.create_task(CreateTask {
            orchestration: Some(id_ref("q100")),
            ..task("in q")
        })
    });
    assert!(matches!(err, TaskError::Ambiguous { .. }), "{err:?}");
}

#[test]
fn status_counts_match_the_rows_after_a_mix_of_transitions() {
    let db = Db::new();
    db.register("w", &["rust"], 5);
    db.register("x", &["rust"], 1);
    db.register("y", &["rust"], 1);
    db.svc.drain_agent(&agent_name("x")).unwrap();
    db.svc.remove_agent(&agent_name("y")).unwrap();
    db.svc
        .create_orchestration(crate::support::orch(title("o"), None))
        .unwrap();

    let check = |db: &Db| {
        let status = db.svc.status().unwrap();
        let mut tasks = BTreeMap::new();
        for t in db.tasks() {
            *tasks.entry(t.state).or_insert(0u64) += 1;
        }
        assert_eq!(status.tasks, tasks);
        assert!(status.tasks.values().all(|n| *n > 0));
        let mut agents = BTreeMap::new();
        for a in db.agents() {
            *agents.entry(a.status).or_insert(0u64) += 1;
        }
        assert_eq!(status.agents, agents);
        assert_eq!(status.last_event, db.events().last().map_or(0, |e| e.seq));
        status
    };

    let a = db.create_titled("a");
    check(&db);
    db.finish(a.id, Some("w"));
    let b = db.create_titled("b");
    db.create(CreateTask {
        depends_on: refs(&[b.id]),
        ..task("c")
    });
    check(&db);
    db.svc.cancel_task(&IdRef::from(b.id), None).unwrap();
    check(&db);
    let d = db.create_titled("d");
    db.assign(d.id, Some("w"));
    let e = db.create_titled("e");
    db.run(e.id, Some("w"));
    db.create(CreateTask {
        depends_on: refs(&[e.id]),
        ..task("f")
    });
    let g = db.create(CreateTask {
        risk: Risk::Medium,
        ..task("g")
    });
    db.finish(g.id, Some("w"));
    let h = db.create(CreateTask {
        max_attempts: MaxAttempts::new(1).unwrap(),
        ..task("h")
    });
    let ha = db.run(h.id, Some("w"));
    db.svc
        .fail_attempt(
            h.id,
            ha.fencing,
            "no".into(),
            maos_domain::RunReport::default(),
        )
        .unwrap();
    db.create_titled("i");
    // A refused transition changes no count.
    let _ = db.refused(|s| s.cancel_task(&IdRef::from(a.id), None));
    let status = check(&db);

    let expected: BTreeMap<TaskState, u64> = [
        (TaskState::Completed, 1),        // a
        (TaskState::Cancelled, 1),        // b
        (TaskState::Blocked, 2),          // c (dependency cancelled), h (out of attempts)
        (TaskState::Assigned, 1),         // d
        (TaskState::Running, 1),          // e
        (TaskState::Pending, 1),          // f
        (TaskState::AwaitingApproval, 1), // g
        (TaskState::Ready, 1),            // i
    ]
    .into();
    assert_eq!(status.tasks, expected);
    let agents: BTreeMap<AgentStatus, u64> = [
        (AgentStatus::Available, 1),
        (AgentStatus::Draining, 1),
        (AgentStatus::Removed, 1),
    ]
    .into();
    assert_eq!(status.agents, agents);
    assert_eq!(status.orchestrations, 1);
    assert_eq!(db.agent("w").active, 2);

    // The counts survive a reopen, and keep following transitions after it.
    let db = db.reopen();
    assert_eq!(check(&db), status);
    let e_now = db.task(e.id);
    db.svc
        .complete_attempt(e.id, e_now.fencing, None, maos_domain::RunReport::default())
        .unwrap();
    let after = check(&db);
    assert_eq!(after.tasks.get(&TaskState::Running), None);
    assert_eq!(after.tasks.get(&TaskState::Completed), Some(&2));
    assert_eq!(
        after.tasks.get(&TaskState::Ready),
        Some(&2),
        "i, and f promoted"
    );
    assert_eq!(after.tasks.get(&TaskState::Pending), None);
}
