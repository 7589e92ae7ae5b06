//! Memory through the daemon: every call answers what the service answers in process, and its
//! refusals come back with the same kind, message and hint.

use maos_application::{
    AddMemory, ErrorInfo, ErrorKind, IdRef, MaosApi, MemoryError, MemoryFilter, MemoryPage,
    MemorySearch,
};
use maos_domain::{
    MemoryQuery, MemoryScope, MemoryState, MemoryText, MemoryTier, OrchestrationId, Provenance,
    Tag, Tags,
};

use crate::support::{TestDaemon, report};

fn entry(tier: MemoryTier, scope: MemoryScope, text: &str, tags: &[&str]) -> AddMemory {
    AddMemory {
        tier,
        scope,
        text: MemoryText::parse(text).unwrap(),
        tags: Tags::parse(tags).unwrap(),
        provenance: Provenance::Person,
    }
}

#[test]
fn every_memory_call_answers_what_the_service_answers() {
    let daemon = TestDaemon::start();
    let svc = &daemon.service;
    let client = daemon.client();

    let repo = MemoryScope::parse("repo:/srv/app").unwrap();
    let a = client
        .add_memory(entry(
            MemoryTier::Critical,
            MemoryScope::Global,
            "Never deploy on a Friday",
            &["deploy"],
        ))
        .unwrap();
    let b = client
        .add_memory(entry(
            MemoryTier::Ephemeral,
            repo.clone(),
            "The deploy box is \"slow\" NEAR( today",
            &[],
        ))
        .unwrap();
    assert!(b.expires_at.is_some());
    let prefix = IdRef::parse(&a.id.to_string()[..8]).unwrap();
    assert_eq!(client.get_memory(&prefix).unwrap(), a);
    assert_eq!(svc.get_memory(&prefix).unwrap(), a);

    for filter in [
        MemoryFilter::default(),
        MemoryFilter {
            scopes: vec![repo.clone()],
            tiers: vec![MemoryTier::Ephemeral],
            tag: None,
            all: true,
        },
        MemoryFilter {
            tag: Some(Tag::parse("deploy").unwrap()),
            ..MemoryFilter::default()
        },
    ] {
        let mut page = MemoryPage {
            limit: 1,
            cursor: None,
        };
        loop {
            let remote = client.list_memories(&filter, &page).unwrap();
            assert_eq!(remote, svc.list_memories(&filter, &page).unwrap());
            match remote.next_cursor {
                Some(c) => page.cursor = Some(c),
                None => break,
            }
        }
        let search = MemorySearch {
            query: MemoryQuery::parse("deploy NEAR(").unwrap(),
            filter: filter.clone(),
            limit: 10,
        };
        assert_eq!(
            client.search_memories(&search).unwrap(),
            svc.search_memories(&search).unwrap()
        );
    }

    let id = IdRef::from(b.id);
    let pinned = client.pin_memory(&id).unwrap();
    assert!(pinned.pinned);
    assert_eq!(pinned, svc.get_memory(&id).unwrap());
    let unpinned = client.unpin_memory(&id).unwrap();
    assert!(!unpinned.pinned);
    let gone = client
        .forget_memory(&id, Some("moved to a new box".into()))
        .unwrap();
    assert_eq!(gone.state, MemoryState::Forgotten);
    assert_eq!(
        gone.forgotten_because.as_deref(),
        Some("moved to a new box")
    );
    assert_eq!(gone, svc.get_memory(&id).unwrap());
    // The events travel too.
    let kinds: Vec<&str> = client
        .read_events(0, 100)
        .unwrap()
        .iter()
        .map(|e| e.event.kind())
        .collect();
    assert_eq!(
        kinds,
        [
            "memory.added",
            "memory.added",
            "memory.pinned",
            "memory.unpinned",
            "memory.forgotten"
        ]
    );
}

#[test]
fn memory_refusals_come_back_with_their_kind_message_and_hint() {
    let daemon = TestDaemon::start();
    let svc = &daemon.service;
    let client = daemon.client();
    let m = client
        .add_memory(entry(MemoryTier::Routine, MemoryScope::Global, "x", &[]))
        .unwrap();
    let id = IdRef::from(m.id);
    client.pin_memory(&id).unwrap();

    let remote = client.pin_memory(&id).unwrap_err();
    assert!(matches!(remote, MemoryError::Remote(_)), "{remote:?}");
    assert_eq!(report(&remote), report(&svc.pin_memory(&id).unwrap_err()));
    assert_eq!(remote.kind(), ErrorKind::Conflict);

    let ghost = IdRef::parse("zzzzzz").unwrap();
    let remote = client.get_memory(&ghost).unwrap_err();
    assert_eq!(
        report(&remote),
        report(&svc.get_memory(&ghost).unwrap_err())
    );
    assert_eq!(remote.kind(), ErrorKind::NotFound);

    let nowhere = entry(
        MemoryTier::Routine,
        MemoryScope::Orchestration(OrchestrationId::from_bits(9)),
        "x",
        &[],
    );
    let remote = client.add_memory(nowhere.clone()).unwrap_err();
    assert_eq!(
        report(&remote),
        report(&svc.add_memory(nowhere).unwrap_err())
    );
    assert_eq!(remote.kind(), ErrorKind::NotFound);

    let page = MemoryPage {
        limit: 5000,
        cursor: None,
    };
    let remote = client
        .list_memories(&MemoryFilter::default(), &page)
        .unwrap_err();
    assert_eq!(
        report(&remote),
        report(
            &svc.list_memories(&MemoryFilter::default(), &page)
                .unwrap_err()
        )
    );
    assert_eq!(remote.kind(), ErrorKind::InvalidInput);
}

/// What a client sends is parsed by the daemon as the CLI parses it: an oversized text, a
/// relative repository, too many tags or a query without a word are `invalidInput`, and nothing
/// is stored.
#[test]
fn the_daemon_refuses_bad_memory_values_from_the_wire() {
    use maos_ipc::maos_capnp::{ErrorKind as WireErrorKind, memory_hits_result, memory_result};

    let daemon = TestDaemon::start();
    let refusals = crate::support::raw_session(&daemon.socket, |bootstrap| async move {
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
        let mut out = Vec::new();
        let big = "x".repeat(MemoryText::MAX_BYTES + 1);
        let tags: Vec<String> = (0..17).map(|i| format!("t{i}")).collect();
        for case in 0..3 {
            let mut request = api.add_memory_request();
            let mut m = request.get().init_memory();
            m.set_scope("global");
            m.set_text("fine");
            match case {
                0 => m.set_text(big.as_str()),
                1 => m.set_scope("repo:relative"),
                _ => {
                    let mut list = m.reborrow().init_tags(17);
                    for (i, t) in (0u32..).zip(&tags) {
                        list.set(i, t.as_str());
                    }
                }
            }
            let answer = request.send().promise.await.unwrap();
            let result = answer.get().unwrap().get_result().unwrap();
            let memory_result::Which::Err(e) = result.which().unwrap() else {
                panic!("case {case} was accepted");
            };
            let e = e.unwrap();
            out.push((
                e.get_kind().unwrap(),
                e.get_message().unwrap().to_string().unwrap(),
            ));
        }
        let mut request = api.search_memories_request();
        request.get().set_query("\"*\" ( )");
        request.get().set_limit(10);
        let answer = request.send().promise.await.unwrap();
        let result = answer.get().unwrap().get_result().unwrap();
        let memory_hits_result::Which::Err(e) = result.which().unwrap() else {
            panic!("a query without a word was accepted");
        };
        let e = e.unwrap();
        out.push((
            e.get_kind().unwrap(),
            e.get_message().unwrap().to_string().unwrap(),
        ));
        out
    });
    let says = [
        "8192",
        "not absolute",
        "at most 16",
        "no word to search for",
    ];
    assert_eq!(refusals.len(), says.len());
    for ((kind, message), says) in refusals.iter().zip(says) {
        assert_eq!(*kind, WireErrorKind::InvalidInput, "{message}");
        assert!(message.contains(says), "{message}");
        assert!(
            message.len() < 400,
            "the message echoes the whole value: {message}"
        );
    }
    assert_eq!(daemon.service.status().unwrap().last_event, 0);
}
