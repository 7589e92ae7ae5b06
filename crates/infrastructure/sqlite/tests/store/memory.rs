//! Memory on a real database: entries added, listed newest first a page at a time, filtered by
//! scope, tier and tag; searched with ranking (pinned first, relevance weighed by tier) and the
//! person's words never read as FTS5 syntax; ephemeral entries hidden once their time is up and
//! expired by the sweep; refusals that write nothing; every entry the fold of its events; and
//! a briefing with the pinned and critical entries of its scopes and the relevant others, which
//! asks memory nothing more when its scopes hold no entry.

use maos_application::verify::verify;
use maos_application::{
    AddMemory, ErrorInfo, ErrorKind, IdRef, MaosApi, MemoryError, MemoryFilter, MemoryPage,
    MemorySearch, ReadStore,
};
use maos_domain::{
    DomainEvent, Memory, MemoryEvent, MemoryId, MemoryQuery, MemoryScope, MemoryState, MemoryText,
    MemoryTier, OrchestrationId, Provenance, Tag, Tags, TaskId, TransitionError,
};

use crate::support::{Db, Rng, orch, task, title};

const DAY: i64 = 86_400_000;

fn add(db: &Db, tier: MemoryTier, scope: &str, text: &str, tags: &[&str]) -> Memory {
    db.svc
        .add_memory(AddMemory {
            tier,
            scope: MemoryScope::parse(scope).unwrap(),
            text: MemoryText::parse(text).unwrap(),
            tags: Tags::parse(tags).unwrap(),
            provenance: Provenance::Person,
        })
        .unwrap()
}

fn routine(db: &Db, text: &str) -> Memory {
    add(db, MemoryTier::Routine, "global", text, &[])
}

fn search(db: &Db, query: &str, filter: MemoryFilter) -> Vec<(String, f64)> {
    db.svc
        .search_memories(&MemorySearch {
            query: MemoryQuery::parse(query).unwrap(),
            filter,
            limit: 50,
        })
        .unwrap()
        .hits
        .into_iter()
        .map(|h| (h.memory.text.to_string(), h.score))
        .collect()
}

fn texts(db: &Db, query: &str) -> Vec<String> {
    search(db, query, MemoryFilter::default())
        .into_iter()
        .map(|(t, _)| t)
        .collect()
}

fn list(db: &Db, filter: &MemoryFilter) -> Vec<String> {
    db.svc
        .list_memories(filter, &MemoryPage::default())
        .unwrap()
        .memories
        .iter()
        .map(|m| m.text.to_string())
        .collect()
}

fn fold(db: &Db, id: MemoryId) -> Option<Memory> {
    let events = db.store().events_of(&id.to_string()).unwrap();
    Memory::from_events(
        id,
        events.iter().map(|e| match &e.event {
            DomainEvent::Memory { id: of, event } => {
                assert_eq!(*of, id);
                (event, e.at)
            }
            other => panic!("a non-memory event under a memory id: {other:?}"),
        }),
    )
}

fn r(id: MemoryId) -> IdRef {
    IdRef::parse(&id.to_string()).unwrap()
}

#[test]
fn an_entry_is_added_with_its_event_and_read_back_by_prefix() {
    let db = Db::new();
    let m = add(
        &db,
        MemoryTier::Important,
        "repo:/src/maos/",
        "  Run cargo nextest, not cargo test.\nThe CLI suite needs the daemon. ",
        &["ci", "tests", "ci"],
    );
    assert_eq!(m.scope.to_string(), "repo:/src/maos");
    assert_eq!(m.text.first_line(), "Run cargo nextest, not cargo test.");
    assert_eq!(m.tags.to_string(), "ci,tests");
    assert_eq!(m.state, MemoryState::Live);
    assert_eq!(m.expires_at, None);
    let prefix = IdRef::parse(&m.id.to_string()[..6]).unwrap();
    assert_eq!(db.svc.get_memory(&prefix).unwrap(), m);
    let events = db.store().events_of(&m.id.to_string()).unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event.kind(), "memory.added");
    assert_eq!(fold(&db, m.id).as_ref(), Some(&m));

    let missing = IdRef::parse("zzzzzz").unwrap();
    let e = db.refused(|s| s.get_memory(&missing));
    assert!(matches!(e, MemoryError::NotFound { .. }), "{e:?}");
    assert_eq!(e.kind(), ErrorKind::NotFound);
}

#[test]
fn lists_are_newest_first_a_page_at_a_time_and_filtered() {
    let db = Db::new();
    let o = db.svc.create_orchestration(orch(title("o"), None)).unwrap();
    let mut added = Vec::new();
    for i in 0..7 {
        let (tier, scope, tags): (_, String, &[&str]) = match i % 3 {
            0 => (MemoryTier::Critical, "global".into(), &["a"]),
            1 => (MemoryTier::Routine, "repo:/r".into(), &["a", "b"]),
            _ => (
                MemoryTier::Important,
                format!("orchestration:{}", o.id),
                &[],
            ),
        };
        added.push(add(&db, tier, &scope, &format!("entry {i}"), tags));
    }
    // Pages of 3, newest first, each entry once.
    let mut seen = Vec::new();
    let mut page = MemoryPage {
        limit: 3,
        cursor: None,
    };
    loop {
        let got = db
            .svc
            .list_memories(&MemoryFilter::default(), &page)
            .unwrap();
        assert!(got.memories.len() <= 3);
        seen.extend(got.memories.iter().map(|m| m.id));
        match got.next_cursor {
            Some(c) => page.cursor = Some(c),
            None => break,
        }
    }
    let newest_first: Vec<MemoryId> = added.iter().rev().map(|m| m.id).collect();
    assert_eq!(seen, newest_first);

    let by_tier = MemoryFilter {
        tiers: vec![MemoryTier::Critical],
        ..Default::default()
    };
    assert_eq!(list(&db, &by_tier), ["entry 6", "entry 3", "entry 0"]);
    let by_tag = MemoryFilter {
        tag: Some(Tag::parse("b").unwrap()),
        ..Default::default()
    };
    assert_eq!(list(&db, &by_tag), ["entry 4", "entry 1"]);
    let by_scope = MemoryFilter {
        scopes: vec![MemoryScope::Orchestration(o.id)],
        ..Default::default()
    };
    assert_eq!(list(&db, &by_scope), ["entry 5", "entry 2"]);

    for limit in [0, 1001] {
        let e = db
            .svc
            .list_memories(
                &MemoryFilter::default(),
                &MemoryPage {
                    limit,
                    cursor: None,
                },
            )
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    }
}

#[test]
fn an_attempt_sees_only_its_scopes() {
    let db = Db::new();
    let mine = db
        .svc
        .create_orchestration(orch(title("mine"), None))
        .unwrap();
    let other = db
        .svc
        .create_orchestration(orch(title("other"), None))
        .unwrap();
    add(
        &db,
        MemoryTier::Routine,
        "global",
        "deploy global note",
        &[],
    );
    add(
        &db,
        MemoryTier::Routine,
        "repo:/src/a",
        "deploy note of a",
        &[],
    );
    add(
        &db,
        MemoryTier::Routine,
        "repo:/src/b",
        "deploy note of b",
        &[],
    );
    add(
        &db,
        MemoryTier::Routine,
        "repo:/src/a/sub",
        "deploy note of a/sub",
        &[],
    );
    let in_mine = format!("orchestration:{}", mine.id);
    let in_other = format!("orchestration:{}", other.id);
    add(
        &db,
        MemoryTier::Routine,
        &in_mine,
        "deploy note of mine",
        &[],
    );
    add(
        &db,
        MemoryTier::Routine,
        &in_other,
        "deploy note of other",
        &[],
    );
    let scopes = MemoryFilter {
        scopes: vec![
            MemoryScope::Global,
            MemoryScope::parse("repo:/src/a").unwrap(),
            MemoryScope::Orchestration(mine.id),
        ],
        ..Default::default()
    };
    let mut found: Vec<String> = search(&db, "deploy", scopes.clone())
        .into_iter()
        .map(|(t, _)| t)
        .collect();
    found.sort();
    assert_eq!(
        found,
        [
            "deploy global note",
            "deploy note of a",
            "deploy note of mine"
        ]
    );
    assert_eq!(list(&db, &scopes).len(), 3);

    // A scope naming an orchestration that does not exist is refused; nothing is stored.
    let e = db.refused(|s| {
        s.add_memory(AddMemory {
            tier: MemoryTier::Routine,
            scope: MemoryScope::Orchestration(OrchestrationId::from_bits(99)),
            text: MemoryText::parse("x").unwrap(),
            tags: Tags::empty(),
            provenance: Provenance::Person,
        })
    });
    assert!(matches!(e, MemoryError::ScopeNotFound { .. }), "{e:?}");
    // So is a provenance naming an attempt that was never made.
    let t = db.create_titled("t");
    let e = db.refused(|s| {
        s.add_memory(AddMemory {
            tier: MemoryTier::Routine,
            scope: MemoryScope::Global,
            text: MemoryText::parse("x").unwrap(),
            tags: Tags::empty(),
            provenance: Provenance::Attempt {
                task: t.id,
                attempt: 1,
            },
        })
    });
    assert!(matches!(e, MemoryError::AttemptNotFound { .. }), "{e:?}");
    let e = db.refused(|s| {
        s.add_memory(AddMemory {
            tier: MemoryTier::Routine,
            scope: MemoryScope::Global,
            text: MemoryText::parse("x").unwrap(),
            tags: Tags::empty(),
            provenance: Provenance::Attempt {
                task: TaskId::from_bits(5),
                attempt: 1,
            },
        })
    });
    assert_eq!(e.kind(), ErrorKind::NotFound);
}

#[test]
fn search_ranks_pinned_first_then_relevance_weighed_by_tier() {
    let db = Db::new();
    let r1 = add(
        &db,
        MemoryTier::Routine,
        "global",
        "the release needs a signed tag",
        &[],
    );
    let _e = add(
        &db,
        MemoryTier::Ephemeral,
        "global",
        "the release is on friday",
        &[],
    );
    let _c = add(
        &db,
        MemoryTier::Critical,
        "global",
        "never release on a friday",
        &[],
    );
    let _i = add(
        &db,
        MemoryTier::Important,
        "global",
        "release notes go in CHANGES",
        &[],
    );
    add(
        &db,
        MemoryTier::Critical,
        "global",
        "unrelated words entirely",
        &[],
    );
    assert_eq!(
        texts(&db, "release"),
        [
            "never release on a friday",
            "release notes go in CHANGES",
            "the release needs a signed tag",
            "the release is on friday",
        ]
    );
    let scored = search(&db, "release", MemoryFilter::default());
    assert!(scored.windows(2).all(|w| w[0].1 >= w[1].1), "{scored:?}");
    assert!(scored.iter().all(|(_, s)| *s > 0.0));

    // A pinned routine entry comes before every unpinned one.
    db.svc.pin_memory(&r(r1.id)).unwrap();
    assert_eq!(texts(&db, "release")[0], "the release needs a signed tag");

    // Every word when some entry has them all; any of them otherwise.
    let all = db
        .svc
        .search_memories(&MemorySearch {
            query: MemoryQuery::parse("friday release").unwrap(),
            filter: MemoryFilter::default(),
            limit: 10,
        })
        .unwrap();
    assert!(all.every_word);
    assert_eq!(all.hits.len(), 2);
    let any = db
        .svc
        .search_memories(&MemorySearch {
            query: MemoryQuery::parse("friday unrelated").unwrap(),
            filter: MemoryFilter::default(),
            limit: 10,
        })
        .unwrap();
    assert!(!any.every_word);
    assert_eq!(any.hits.len(), 3);
    // The tier weighs relevance, it does not override it: in a store of some size (where the
    // word is rare), an entry about the word (in its text and its tag) comes before one of the
    // tier above that mentions it in passing.
    for i in 0..40 {
        routine(
            &db,
            &format!("unrelated note number {i} about something else"),
        );
    }
    let strong = add(
        &db,
        MemoryTier::Routine,
        "global",
        "rollback rollback: how to rollback",
        &["rollback"],
    );
    add(
        &db,
        MemoryTier::Important,
        "global",
        "Keep the changelog, the version, the tag, the notes, the docs, the site, the blog, the \
         mailing list, the chat and the tracker in step; a rollback is rare",
        &[],
    );
    let first = db
        .svc
        .search_memories(&MemorySearch {
            query: MemoryQuery::parse("rollback").unwrap(),
            filter: MemoryFilter::default(),
            limit: 10,
        })
        .unwrap();
    assert_eq!(first.hits.len(), 2);
    assert_eq!(first.hits[0].memory.id, strong.id, "{:?}", first.hits);
    // Tags are searched too; case and diacritics do not matter.
    add(
        &db,
        MemoryTier::Routine,
        "global",
        "Le café est fermé",
        &["cafe-rules"],
    );
    assert_eq!(texts(&db, "CAFE"), ["Le café est fermé"]);
    assert_eq!(texts(&db, "rules"), ["Le café est fermé"]);
    // The limit is bounded.
    for limit in [0, 101] {
        let e = db
            .svc
            .search_memories(&MemorySearch {
                query: MemoryQuery::parse("release").unwrap(),
                filter: MemoryFilter::default(),
                limit,
            })
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
    }
}

#[test]
fn hostile_fts_syntax_is_plain_words() {
    let db = Db::new();
    let hostile = [
        r#"say "hello" to NEAR(the world) OR else"#,
        "glob* patterns and -minus and col:umn",
        "a ^caret AND {braces} NOT this",
        r#"unbalanced " quote ( paren"#,
    ];
    for text in hostile {
        routine(&db, text);
    }
    assert_eq!(texts(&db, r#""hello""#), [hostile[0]]);
    assert_eq!(texts(&db, "NEAR("), [hostile[0]]);
    assert_eq!(texts(&db, "OR"), [hostile[0]]);
    assert_eq!(texts(&db, "glob*"), [hostile[1]]);
    assert_eq!(texts(&db, "col:umn"), [hostile[1]]);
    assert_eq!(texts(&db, "NOT this"), [hostile[2]]);
    assert_eq!(texts(&db, r#"" ( quote"#), [hostile[3]]);
    // A prefix is no wildcard: `glo` finds nothing.
    assert!(texts(&db, "glo").is_empty());
    // What has no word at all is refused before the store.
    assert!(MemoryQuery::parse(r#""*"()"#).is_err());
}

#[test]
fn oversized_or_empty_text_never_reaches_the_store() {
    // The service takes parsed text only: what does not parse cannot be sent.
    let big = "x".repeat(MemoryText::MAX_BYTES + 1);
    let e = MemoryText::parse(&big).unwrap_err();
    assert!(e.reason.contains("8192"), "{e}");
    assert!(MemoryText::parse("   ").is_err());
    // The largest text goes in, and is found.
    let db = Db::new();
    let max = format!("needle {}", "y".repeat(MemoryText::MAX_BYTES - 7));
    let m = routine(&db, &max);
    assert_eq!(m.text.as_str().len(), MemoryText::MAX_BYTES);
    assert_eq!(texts(&db, "needle").len(), 1);
}

#[test]
fn ephemeral_entries_vanish_when_due_and_the_sweep_expires_them() {
    let db = Db::new();
    let short = add(
        &db,
        MemoryTier::Ephemeral,
        "global",
        "build cache is warm",
        &[],
    );
    let pinned = add(
        &db,
        MemoryTier::Ephemeral,
        "global",
        "build box is slow",
        &[],
    );
    let kept = add(
        &db,
        MemoryTier::Routine,
        "global",
        "build with --locked",
        &[],
    );
    assert_eq!(
        short.expires_at,
        Some(
            short
                .created_at
                .plus(maos_domain::DurationMs::from_millis(7 * DAY as u64).unwrap())
        )
    );
    db.svc.pin_memory(&r(pinned.id)).unwrap();
    assert_eq!(db.svc.expire_memories().unwrap(), 0, "nothing is due yet");

    db.clock.advance(7 * DAY + 1);
    // Due but not swept: still live in storage, already gone from lists and searches.
    assert_eq!(
        db.svc.get_memory(&r(short.id)).unwrap().state,
        MemoryState::Live
    );
    let live = list(&db, &MemoryFilter::default());
    assert_eq!(live, ["build with --locked", "build box is slow"]);
    let mut found = texts(&db, "build");
    found.sort();
    assert_eq!(found, ["build box is slow", "build with --locked"]);
    // And nothing can be done to it any more.
    let e = db.refused(|s| s.pin_memory(&r(short.id)));
    assert!(
        matches!(e, MemoryError::Transition(TransitionError::Memory { .. })),
        "{e:?}"
    );

    assert_eq!(db.svc.expire_memories().unwrap(), 1);
    assert_eq!(
        db.svc.expire_memories().unwrap(),
        0,
        "the sweep expires once"
    );
    let swept = db.svc.get_memory(&r(short.id)).unwrap();
    assert_eq!(swept.state, MemoryState::Expired);
    let kinds: Vec<&str> = db
        .store()
        .events_of(&short.id.to_string())
        .unwrap()
        .iter()
        .map(|e| e.event.kind())
        .collect();
    assert_eq!(kinds, ["memory.added", "memory.expired"]);
    assert_eq!(fold(&db, short.id).as_ref(), Some(&swept));
    let all = MemoryFilter {
        all: true,
        ..Default::default()
    };
    assert_eq!(list(&db, &all).len(), 3);

    // Unpinned, the pinned one is due at once, and goes with the next sweep.
    db.svc.unpin_memory(&r(pinned.id)).unwrap();
    assert_eq!(list(&db, &MemoryFilter::default()), ["build with --locked"]);
    assert_eq!(db.svc.expire_memories().unwrap(), 1);
    assert_eq!(
        db.svc.get_memory(&r(kept.id)).unwrap().state,
        MemoryState::Live
    );
    assert!(verify(db.store()).unwrap().is_clean());
}

#[test]
fn pin_unpin_forget_emit_events_and_refusals_write_nothing() {
    let db = Db::new();
    let m = routine(&db, "prefer small commits");
    let id = r(m.id);
    db.svc.pin_memory(&id).unwrap();
    let e = db.refused(|s| s.pin_memory(&id));
    assert_eq!(e.kind(), ErrorKind::Conflict);
    assert!(e.to_string().contains("pinned"), "{e}");
    db.svc.unpin_memory(&id).unwrap();
    db.refused(|s| s.unpin_memory(&id));
    let long = "r".repeat(2000);
    let e = db.refused(|s| s.forget_memory(&id, Some(long)));
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    let gone = db
        .svc
        .forget_memory(&id, Some("  superseded  ".into()))
        .unwrap();
    assert_eq!(gone.state, MemoryState::Forgotten);
    assert_eq!(gone.forgotten_because.as_deref(), Some("superseded"));
    db.refused(|s| s.forget_memory(&id, None));
    db.refused(|s| s.pin_memory(&id));
    // Forgotten: out of lists and searches, unless everything is asked for.
    assert!(list(&db, &MemoryFilter::default()).is_empty());
    assert!(texts(&db, "commits").is_empty());
    let all = MemoryFilter {
        all: true,
        ..Default::default()
    };
    assert_eq!(search(&db, "commits", all).len(), 1);
    let kinds: Vec<&str> = db
        .store()
        .events_of(&m.id.to_string())
        .unwrap()
        .iter()
        .map(|e| e.event.kind())
        .collect();
    assert_eq!(
        kinds,
        [
            "memory.added",
            "memory.pinned",
            "memory.unpinned",
            "memory.forgotten"
        ]
    );
    assert_eq!(fold(&db, m.id).as_ref(), Some(&gone));
    assert!(matches!(
        db.store().events_of(&m.id.to_string()).unwrap()[3].event,
        DomainEvent::Memory {
            event: MemoryEvent::Forgotten { .. },
            ..
        }
    ));
}

#[test]
fn an_ambiguous_prefix_lists_the_candidates() {
    let db = Db::new();
    db.ids
        .script(&["abcd000000000000000000001", "abcd000000000000000000002"]);
    routine(&db, "one");
    routine(&db, "two");
    let e = db.refused(|s| s.get_memory(&IdRef::parse("abcd").unwrap()));
    match e {
        MemoryError::Ambiguous { candidates, .. } => assert_eq!(candidates.len(), 2),
        other => panic!("{other:?}"),
    }
}

/// A random workload of every memory command, with time passing: every entry is the fold of its
/// events, `admin verify` finds nothing, and after a reopen everything reads the same.
#[test]
fn a_random_memory_workload_folds_and_verifies_clean() {
    let db = Db::with_seed(7);
    let mut rng = Rng(0x00c0_ffee_1234);
    let mut ids: Vec<MemoryId> = Vec::new();
    let tiers = MemoryTier::ALL;
    for step in 0..300 {
        match rng.below(8) {
            0..=2 => {
                let tier = tiers[rng.below(4) as usize];
                let m = add(
                    &db,
                    tier,
                    "global",
                    &format!("entry {step} word{}", rng.below(5)),
                    &[],
                );
                ids.push(m.id);
            }
            3 if !ids.is_empty() => {
                let _ = db.svc.pin_memory(&r(rng.pick(&ids)));
            }
            4 if !ids.is_empty() => {
                let _ = db.svc.unpin_memory(&r(rng.pick(&ids)));
            }
            5 if !ids.is_empty() => {
                let _ = db.svc.forget_memory(&r(rng.pick(&ids)), None);
            }
            6 => db.clock.advance(rng.below(3) as i64 * DAY),
            _ => {
                db.svc.expire_memories().unwrap();
            }
        }
    }
    let mut states = std::collections::BTreeSet::new();
    for id in &ids {
        let stored = db.store().memory(*id).unwrap().unwrap();
        assert_eq!(fold(&db, *id).as_ref(), Some(&stored));
        states.insert(stored.state);
    }
    assert_eq!(states.len(), 3, "every state reached: {states:?}");
    let v = verify(db.store()).unwrap();
    assert!(v.is_clean(), "{:#?}", v.findings);
    assert_eq!(v.memories, ids.len());
    let before = db.snapshot();
    let db = db.reopen();
    db.assert_unchanged(&before);
    assert!(
        search(
            &db,
            "word1",
            MemoryFilter {
                all: true,
                ..Default::default()
            }
        )
        .len()
            > 1
    );
}

/// Thousands of queries drawn from characters that mean something to FTS5 or to Unicode
/// (quotes, operators, column filters, combining marks, superscripts, other scripts, bidi
/// controls): each one either has no word (refused before the store) or is searched without
/// error, and an entry holding the same text is found by it.
#[test]
fn any_query_is_searched_without_error() {
    const PIECES: &[&str] = &[
        "\"",
        "*",
        "^",
        ":",
        "(",
        ")",
        "-",
        "+",
        "{",
        "}",
        ",",
        ".",
        "'",
        "\\",
        "\0",
        " ",
        "NEAR",
        "AND",
        "OR",
        "NOT",
        "near/3",
        "col:",
        "a",
        "Zz",
        "42",
        "é",
        "e\u{301}",
        "²",
        "Ⅻ",
        "٣",
        "日本語",
        "ß",
        "İ",
        "ǅ",
        "\u{200d}",
        "\u{202e}",
        "🦀",
        "\u{fffd}",
        "\t\n",
    ];
    let db = Db::new();
    let mut rng = Rng(0x05ee_df75_0001);
    let mut searched = 0;
    for _ in 0..1500 {
        let n = 1 + rng.below(8) as usize;
        let raw: String = (0..n).map(|_| rng.pick(PIECES)).collect();
        let Ok(query) = MemoryQuery::parse(&raw) else {
            continue;
        };
        if let Ok(text) = MemoryText::parse(&raw)
            && rng.below(4) == 0
        {
            routine(&db, text.as_str());
        }
        let hits = db
            .svc
            .search_memories(&MemorySearch {
                query,
                filter: MemoryFilter::default(),
                limit: 100,
            })
            .unwrap_or_else(|e| panic!("searching {raw:?} failed: {e}"));
        searched += 1;
        assert!(hits.hits.len() <= 100);
    }
    assert!(searched > 500, "only {searched} queries had a word");
    // An entry is found by its own words, whatever surrounds them.
    let m = routine(&db, "x\"y NEAR(z) OR* ümlaut ⅫZ");
    let found = db
        .svc
        .search_memories(&MemorySearch {
            query: MemoryQuery::parse(m.text.as_str()).unwrap(),
            filter: MemoryFilter::default(),
            limit: 100,
        })
        .unwrap();
    assert!(found.every_word);
    assert!(found.hits.iter().any(|h| h.memory.id == m.id));
}

#[test]
fn a_briefing_includes_the_essential_and_relevant_memory_of_its_scopes() {
    let db = Db::new();
    db.register("claude-1", &[], 1);
    let rule = add(
        &db,
        MemoryTier::Critical,
        "global",
        "Never force-push.",
        &[],
    );
    db.svc.pin_memory(&r(rule.id)).unwrap();
    let repo_fact = add(
        &db,
        MemoryTier::Routine,
        "repo:/src/app",
        "The uploader retries through RetryPolicy in src/net.rs.",
        &[],
    );
    let elsewhere = add(
        &db,
        MemoryTier::Critical,
        "repo:/src/other",
        "The uploader of the other repository is frozen.",
        &[],
    );
    let o = db.svc.create_orchestration(orch(title("o"), None)).unwrap();
    let theirs = add(
        &db,
        MemoryTier::Important,
        &format!("orchestration:{}", o.id),
        "Uploader retries are out of scope here.",
        &[],
    );
    let unrelated = routine(&db, "Lunch is at noon.");
    let forgotten = routine(&db, "The uploader used to live in lib.rs.");
    db.svc.forget_memory(&r(forgotten.id), None).unwrap();

    let mut cmd = task("Add uploader retries");
    cmd.prompt = "Retry failed uploads with backoff.".into();
    cmd.workspace = Some(maos_domain::WorkspaceSpec {
        repo: "/src/app/".into(),
        base: None,
    });
    let t = db.create(cmd);
    db.assign(t.id, Some("claude-1"));
    let briefing = db.task(t.id).attempts[0].briefing.clone().unwrap();
    let text = &briefing.text;
    let shown = |m: &Memory| text.contains(&format!("(memory {})\n", m.id.short()));
    assert!(text.contains("\n## Memory\n"), "{text}");
    assert!(
        text.contains(&format!(
            "### critical, pinned · global (memory {})\n\n```\nNever force-push.\n```\n",
            rule.id.short()
        )),
        "{text}"
    );
    assert!(shown(&repo_fact), "{text}");
    assert!(
        text.find("Never force-push") < text.find("RetryPolicy"),
        "essential first: {text}"
    );
    for other in [&elsewhere, &theirs, &unrelated, &forgotten] {
        assert!(!shown(other), "{} shown: {text}", other.text);
    }
    assert!(briefing.cut.is_empty());
}

#[test]
fn a_briefing_asks_memory_nothing_more_when_its_scopes_hold_no_entry() {
    let meter = maos_sqlite::WorkMeter::new();
    // With a runtime, so a task is assigned (and briefed) in the call that creates it.
    let db = Db::metered(&meter);
    db.register("claude-1", &[], 3);
    // The steps of creating (and so assigning) a task in /src/app, and its briefing.
    let run = |name: &str| {
        let mut cmd = task(name);
        cmd.prompt = "Retry failed uploads with backoff.".into();
        cmd.workspace = Some(maos_domain::WorkspaceSpec {
            repo: "/src/app/".into(),
            base: None,
        });
        let (steps, t) = meter.count(|| db.create(cmd));
        let briefing = db.task(t.id).attempts[0].briefing.clone().unwrap();
        (steps, briefing.text)
    };
    let (empty, text) = run("Add uploader retries");
    assert!(!text.contains("## Memory"), "{text}");

    // An entry in another repository changes nothing, not even the work: no search runs.
    add(
        &db,
        MemoryTier::Critical,
        "repo:/src/other",
        "The uploader of the other repository is frozen.",
        &[],
    );
    let (elsewhere, text) = run("Add uploader retries again");
    assert!(!text.contains("## Memory"), "{text}");

    // One in the task's own repository (the only one of its scopes that holds any) is found.
    let fact = add(
        &db,
        MemoryTier::Routine,
        "repo:/src/app",
        "The uploader retries through RetryPolicy in src/net.rs.",
        &[],
    );
    let (searched, text) = run("Add uploader retries once more");
    assert!(
        text.contains(&format!("(memory {})\n", fact.id.short())),
        "{text}"
    );
    // Searching costs steps; an entry out of the task's scopes costs a few index steps only.
    let search = searched.saturating_sub(empty);
    eprintln!(
        "steps: {empty} with no memory, {elsewhere} with one elsewhere, {searched} with one here"
    );
    assert!(
        elsewhere.abs_diff(empty) * 10 < search,
        "{elsewhere} steps with an entry elsewhere, {empty} with none, {searched} with one here"
    );
}
