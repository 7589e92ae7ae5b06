//! The metrics page and `/metrics`: the page shows what `MaosApi::metrics` computes, with its
//! charts and their tables; `/metrics` is Prometheus text behind the token, every line of which
//! parses, carrying the counts of the tasks created and run.

#[path = "prometheus_text.rs"]
mod prometheus_text;

use maos_application::{AssignTask, CreateTask, MaosApi, RegisterAgent};
use maos_domain::{
    AdapterKind, AgentName, CapabilitySet, Risk, RunReport, Slots, Task, Tier, Timestamp, Title,
    Usage, Usd,
};

use self::prometheus_text::parse_exposition;
use crate::support::Served;

fn create(s: &Served, title: &str) -> Task {
    s.api
        .create_task(CreateTask {
            risk: Risk::Low,
            ..CreateTask::titled(Title::parse(title).expect("title"))
        })
        .expect("create")
        .task
}

fn report(input: u64, output: u64, micros: u64) -> RunReport {
    RunReport {
        usage: Usage {
            input_tokens: input,
            cached_input_tokens: 0,
            output_tokens: output,
            cost: Usd::from_micros(micros),
        },
        ..RunReport::default()
    }
}

/// An agent `w`; three tasks: one completed at the first attempt, one whose attempt failed, one
/// ready.
fn work(s: &Served) {
    s.api
        .register_agent(RegisterAgent {
            name: AgentName::parse("w").expect("name"),
            adapter: AdapterKind::External,
            capabilities: CapabilitySet::empty(),
            tier: Tier::Tactical,
            slots: Slots::new(2).expect("slots"),
            command: None,
            settings: Default::default(),
        })
        .expect("agent");
    let done = create(s, "done");
    let failing = create(s, "failing");
    create(s, "waiting");
    for (task, ok) in [(done.id, true), (failing.id, false)] {
        let a = s
            .api
            .assign_task(AssignTask {
                task: task.into(),
                agent: None,
            })
            .expect("assign");
        s.api
            .start_attempt(task, a.fencing, Default::default())
            .expect("start");
        if ok {
            s.api
                .complete_attempt(task, a.fencing, None, report(1000, 200, 250_000))
                .expect("complete");
        } else {
            s.api
                .fail_attempt(task, a.fencing, "boom".into(), report(500, 50, 50_000))
                .expect("fail");
        }
    }
}

/// The text of the element with id `id` (its first text, up to the next tag).
fn figure<'a>(body: &'a str, id: &str) -> &'a str {
    let at = body
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id}"));
    let rest = &body[at..];
    let start = rest.find('>').expect("tag end") + 1;
    let end = rest[start..].find('<').expect("next tag") + start;
    rest[start..end].trim()
}

#[test]
fn the_page_shows_what_the_api_computes() {
    let s = Served::new();
    work(&s);
    let a = s.get("/stats");
    assert_eq!(a.status, 200, "{}", a.body);
    let now = s.api.status().expect("status");
    let m = s
        .api
        .metrics(Some(Timestamp::from_millis(0)))
        .expect("metrics");
    assert!(now.last_event > 0);
    let body = &a.body;
    assert_eq!(figure(body, "m-created"), m.created.to_string());
    assert_eq!(figure(body, "m-completed"), m.completed.to_string());
    assert_eq!((m.created, m.completed, m.attempts), (3, 1, 2));
    assert_eq!(figure(body, "m-attempts"), "2");
    assert_eq!(figure(body, "m-first-pass"), "100%");
    assert_eq!(figure(body, "m-tokens"), "1500 in / 250 out");
    assert_eq!(figure(body, "m-cost"), "$0.30");
    assert!(figure(body, "m-green").starts_with("p50 "));
    assert_eq!(figure(body, "m-interventions"), "0.00 per completed task");
    // The agent's row: two attempts, one each way, 50%.
    let row = body
        .split("<tr data-agent=\"w\">")
        .nth(1)
        .and_then(|r| r.split("</tr>").next())
        .expect("agent row");
    for cell in [">2<", ">1<", ">50%<", ">1500 / 250<", ">$0.30<", ">$0.15<"] {
        assert!(row.contains(cell), "{cell} in {row}");
    }
    // Charts: SVG bars with a title each, and their tables.
    assert!(body.contains("<svg class=\"bars\""));
    assert!(body.contains(": 1 completed</title>"));
    assert!(body.contains("The numbers as a table"));
    assert!(body.contains("aria-current=\"page\">Metrics"));
}

#[test]
fn the_window_is_chosen_with_since() {
    let s = Served::new();
    work(&s);
    for since in ["24h", "30d", "all", "1h30m"] {
        let a = s.get(&format!("/stats?since={since}"));
        assert_eq!(a.status, 200, "{since}: {}", a.body);
        assert_eq!(figure(&a.body, "m-completed"), "1", "{since}");
    }
    for bad in ["forever", "31d", "0s", "%3Cscript%3E"] {
        let a = s.get(&format!("/stats?since={bad}"));
        assert_eq!(a.status, 400, "{bad}");
        assert!(a.body.contains("`since`"), "{bad}: {}", a.body);
        assert!(!a.body.contains("<script>"));
    }
}

#[test]
fn prometheus_text_needs_the_token() {
    let s = Served::new();
    let a = s.raw("GET /metrics HTTP/1.1", "");
    assert_eq!(a.status, 401);
    assert!(!a.body.contains("maos_tasks"));
}

#[test]
fn prometheus_text_parses_and_carries_the_counts() {
    let s = Served::new();
    let empty = s.get("/metrics");
    assert_eq!(empty.status, 200);
    assert_eq!(
        empty.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    parse_exposition(&empty.body).unwrap_or_else(|e| panic!("{e}\n{}", empty.body));
    work(&s);
    let a = s.get("/metrics");
    assert_eq!(a.status, 200);
    let samples = parse_exposition(&a.body).unwrap_or_else(|e| panic!("{e}\n{}", a.body));
    let get = |name: &str, labels: &[(&str, &str)]| -> Option<f64> {
        samples
            .iter()
            .find(|(n, l, _)| {
                n == name
                    && l.len() == labels.len()
                    && labels
                        .iter()
                        .all(|(k, v)| l.iter().any(|(a, b)| a == k && b == v))
            })
            .map(|s| s.2)
    };
    let status = s.api.status().expect("status");
    for (state, n) in &status.tasks {
        #[allow(clippy::cast_precision_loss)]
        let want = *n as f64;
        assert_eq!(
            get("maos_tasks", &[("state", state.as_str())]),
            Some(want),
            "{state}"
        );
    }
    assert_eq!(get("maos_tasks", &[("state", "completed")]), Some(1.0));
    assert_eq!(get("maos_tasks_created_total", &[]), Some(3.0));
    assert_eq!(get("maos_tasks_completed_total", &[]), Some(1.0));
    assert_eq!(get("maos_attempts_total", &[]), Some(2.0));
    assert_eq!(get("maos_first_attempt_passed_total", &[]), Some(1.0));
    assert_eq!(get("maos_cost_usd_total", &[]), Some(0.3));
    assert_eq!(
        get("maos_tokens_total", &[("direction", "input")]),
        Some(1500.0)
    );
    assert_eq!(
        get("maos_tokens_total", &[("direction", "output")]),
        Some(250.0)
    );
    assert_eq!(
        get("maos_agent_attempts_failed_total", &[("agent", "w")]),
        Some(1.0)
    );
    assert_eq!(
        get("maos_agent_attempts_total", &[("agent", "w")]),
        Some(2.0)
    );
    assert_eq!(
        get("maos_agent_cost_usd_total", &[("agent", "w")]),
        Some(0.3)
    );
    assert!(get("maos_time_to_green_seconds", &[("percentile", "50")]).is_some());
    assert_eq!(get("maos_agents", &[("status", "available")]), Some(1.0));
    assert_eq!(
        get("maos_last_event_seq", &[]),
        Some(f64::from(u32::try_from(status.last_event).expect("small")))
    );
}
