//! The events page: newest first, filters that narrow, a search that finds a hostile title and
//! shows it as text, pages by `before=`, a bounded scan, and bad filters refused naming the
//! field.

use maos_application::{CreateOrchestration, CreateTask, MaosApi, RegisterAgent};
use maos_domain::{AdapterKind, AgentName, CapabilitySet, Slots, Task, Tier, Title};

use crate::support::Served;

fn create(s: &Served, title: &str) -> Task {
    s.api
        .create_task(CreateTask::titled(Title::parse(title).expect("title")))
        .expect("create")
        .task
}

/// The seqs of the rows a page shows, in its order.
fn seqs(body: &str) -> Vec<u64> {
    body.split("<tr data-seq=\"")
        .skip(1)
        .map(|rest| {
            rest.split('"')
                .next()
                .and_then(|n| n.parse().ok())
                .expect("a seq")
        })
        .collect()
}

fn page(s: &Served, path: &str) -> String {
    let a = s.get(path);
    assert_eq!(a.status, 200, "{path}: {}", a.body);
    a.body
}

#[test]
fn the_log_is_shown_newest_first_with_links_to_its_subjects() {
    let s = Served::new();
    let t = create(&s, "First task");
    let body = page(&s, "/events");
    assert_eq!(seqs(&body), vec![2, 1]);
    assert!(body.contains("task.created"));
    assert!(body.contains("task.ready"));
    assert!(body.contains(&format!("href=\"/tasks/{}\"", t.id)));
    assert!(body.contains("First task"));
    // The table is a live region; the filter form has a label for every input.
    assert!(body.contains("id=\"event-log\" data-live"));
    for id in [
        "f-kind", "f-task", "f-orch", "f-agent", "f-from", "f-to", "f-q",
    ] {
        assert!(body.contains(&format!("for=\"{id}\"")), "{id}");
        assert!(body.contains(&format!("id=\"{id}\"")), "{id}");
    }
}

#[test]
fn filters_narrow_the_log() {
    let s = Served::new();
    let o = s
        .api
        .create_orchestration(CreateOrchestration {
            name: Title::parse("Plan A").expect("name"),
            goal: None,
            workspace: None,
            verify: None,
            notes: Vec::new(),
        })
        .expect("orchestration");
    let inside = s
        .api
        .create_task(CreateTask {
            orchestration: Some(o.id.into()),
            ..CreateTask::titled(Title::parse("Inside").expect("title"))
        })
        .expect("create")
        .task;
    let outside = create(&s, "Outside");
    s.api
        .register_agent(RegisterAgent {
            name: AgentName::parse("worker").expect("name"),
            adapter: AdapterKind::External,
            capabilities: CapabilitySet::empty(),
            tier: Tier::Tactical,
            slots: Slots::new(1).expect("slots"),
            command: None,
            settings: Default::default(),
        })
        .expect("agent");
    let all = seqs(&page(&s, "/events"));
    assert!(all.len() >= 5, "{all:?}");

    let created = page(&s, "/events?kind=task.created");
    assert_eq!(seqs(&created).len(), 2);
    assert!(created.contains("Inside") && created.contains("Outside"));

    let by_task = page(
        &s,
        &format!("/events?task={}", &outside.id.to_string()[..10]),
    );
    assert!(by_task.contains("Outside") && !by_task.contains("Inside"));
    assert_eq!(seqs(&by_task).len(), 2, "created and ready");

    let by_orch = page(&s, &format!("/events?orchestration={}", o.id));
    assert!(by_orch.contains("Inside") && !by_orch.contains("Outside"));
    assert!(by_orch.contains("orchestration.created"));
    assert!(by_orch.contains(&format!("href=\"/tasks/{}\"", inside.id)));

    let by_agent = page(&s, "/events?agent=worker");
    assert_eq!(seqs(&by_agent).len(), 1);
    assert!(by_agent.contains("agent.registered"));

    let groups = page(&s, "/events?kind=orchestration");
    assert_eq!(seqs(&groups).len(), 1);

    // Times: everything happened today; nothing tomorrow or before the epoch's first day.
    let now = s.api.status().expect("status").last_event;
    assert_eq!(now as usize, all.len());
    let since_1970 = page(&s, "/events?from=1970-01-01");
    assert_eq!(seqs(&since_1970), all);
    let until_1970 = page(&s, "/events?to=1970-01-01T23:59:59Z");
    assert!(seqs(&until_1970).is_empty());
    let future = page(&s, "/events?from=2999-01-01T00:00:00%2B02:00");
    assert!(seqs(&future).is_empty());
}

#[test]
fn a_search_finds_a_hostile_title_and_shows_it_as_text() {
    let s = Served::new();
    create(&s, "harmless");
    let t = create(&s, "<script>alert('x')</script> evil");
    let body = page(&s, "/events?q=%3Cscript%3E");
    assert_eq!(
        seqs(&body).len(),
        1,
        "only the created event carries the title"
    );
    assert!(!body.contains("<script>alert"), "rendered raw");
    assert!(body.contains("&lt;script&gt;alert"));
    assert!(body.contains(&format!("/tasks/{}", t.id)));
    // The search box keeps what was typed, escaped too.
    assert!(body.contains("value=\"&lt;script&gt;\""));
    // Case does not matter; a search for nothing there finds nothing.
    assert_eq!(seqs(&page(&s, "/events?q=HARMLESS")).len(), 1);
    assert!(seqs(&page(&s, "/events?q=nowhere")).is_empty());
}

#[test]
fn pages_go_back_with_before() {
    let s = Served::new();
    for i in 0..30 {
        create(&s, &format!("task {i}"));
    }
    // 60 events: 50 on the first page, then 10.
    let first = page(&s, "/events");
    assert_eq!(seqs(&first), (11..=60).rev().collect::<Vec<_>>());
    assert!(first.contains("href=\"/events?before=11\""), "older link");
    let second = page(&s, "/events?before=11");
    assert_eq!(seqs(&second), (1..=10).rev().collect::<Vec<_>>());
    assert!(!second.contains("rel=\"next\""), "nothing older");
    assert!(second.contains("href=\"/events\""), "back to the newest");
    // Filters carry over to the next page.
    let created = page(&s, "/events?kind=task.created&before=41");
    assert_eq!(
        seqs(&created),
        (1..=39u64).rev().step_by(2).collect::<Vec<_>>()
    );
    // A cursor past the head is the newest page.
    assert_eq!(seqs(&page(&s, "/events?before=9999")), seqs(&first));
}

#[test]
fn one_request_scans_a_bounded_stretch_and_says_so() {
    let s = Served::new();
    let needle = create(&s, "the needle");
    let many: Vec<CreateTask> = (0..2_600)
        .map(|i| CreateTask::titled(Title::parse(&format!("hay {i}")).expect("title")))
        .collect();
    s.api.create_tasks(many).expect("create many");
    let head = s.api.status().expect("status").last_event;
    assert_eq!(head, 2 + 2 * 2_600);
    let body = page(&s, "/events?q=needle");
    assert!(seqs(&body).is_empty(), "the needle is older than one scan");
    let low = head - 5_000 + 1;
    assert!(
        body.contains(&format!("Scanned events {low}–{head}")),
        "{body}"
    );
    let next = format!("/events?q=needle&before={low}");
    assert!(body.contains(&format!("href=\"{}\"", next.replace('&', "&amp;"))));
    let older = page(&s, &next);
    assert_eq!(seqs(&older), vec![1]);
    assert!(older.contains(&needle.id.to_string()));
}

#[test]
fn a_bad_filter_is_refused_naming_the_field() {
    let s = Served::new();
    create(&s, "t");
    for (q, field) in [
        ("kind=nonsense", "kind"),
        ("task=x", "task"),
        ("from=last%20tuesday", "from"),
        ("to=2026-99-01", "to"),
        ("before=abc", "before"),
        ("agent=nobody", "agent"),
        ("task=zzzzzzzz", "task"),
    ] {
        let a = s.get(&format!("/events?{q}"));
        assert_eq!(a.status, 400, "{q}: {}", a.body);
        assert!(a.body.contains(&format!("`{field}`")), "{q}: {}", a.body);
    }
}

#[test]
fn a_page_ending_at_a_time_starts_there_without_scanning_what_followed() {
    let s = Served::new();
    let needle = create(&s, "the needle");
    std::thread::sleep(std::time::Duration::from_millis(30));
    let mid = now();
    std::thread::sleep(std::time::Duration::from_millis(30));
    let many: Vec<CreateTask> = (0..2_600)
        .map(|i| CreateTask::titled(Title::parse(&format!("hay {i}")).expect("title")))
        .collect();
    s.api.create_tasks(many).expect("create many");
    let body = page(&s, &format!("/events?to={}", mid.to_rfc3339()));
    assert_eq!(seqs(&body), vec![2, 1]);
    assert!(body.contains(&needle.id.to_string()));
    assert!(!body.contains("Scanned events"));
    // With a search too: found at once.
    let body = page(&s, &format!("/events?q=needle&to={}", mid.to_rfc3339()));
    assert_eq!(seqs(&body), vec![1]);
}

fn now() -> maos_domain::Timestamp {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_millis();
    maos_domain::Timestamp::from_millis(i64::try_from(ms).expect("ms"))
}
