//! What the work came to: the metrics page (`/stats?since=7d`: throughput by hour and by day
//! as charts, the first-attempt pass rate, time to green, how often a person stepped in, tokens
//! and cost per task and per agent, each agent's success rate) and the same figures for
//! machines at `/metrics`, in Prometheus' text exposition format (all time, behind the token
//! like every other page).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use maos_application::metrics::{AgentMetrics, Metrics};
use maos_application::{MaosApi, StatusReport};
use maos_domain::{DurationMs, Timestamp, Usd};
use maud::{Markup, html};

use crate::chart::{self, Bar};
use crate::ctx::{Ctx, View, WebError};
use crate::html::{self, Section};

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 86_400_000;

/// The window when none is asked for.
const DEFAULT_SINCE: &str = "7d";

/// The most hours the hourly chart shows (the newest of a longer window).
const MAX_HOURS: i64 = 7 * 24;

/// The most days the daily chart shows (the newest of a longer window).
const MAX_DAYS: i64 = 366;

/// The windows offered as links.
const WINDOWS: &[(&str, &str)] = &[
    ("24h", "24 hours"),
    ("7d", "7 days"),
    ("30d", "30 days"),
    ("all", "all time"),
];

/// The content type of the Prometheus text format.
pub(crate) const PROMETHEUS: &str = "text/plain; version=0.0.4; charset=utf-8";

pub(super) fn routes(router: Router<Ctx>) -> Router<Ctx> {
    router
        .route("/stats", get(stats))
        .route("/metrics", get(prometheus))
}

/// The window of the page: the last stretch of time, or everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Window {
    Last(DurationMs),
    All,
}

impl Window {
    /// Parses `?since=` as `maos metrics --since` does (`24h`, `7d`, `1h30m`, at most 30 days),
    /// plus `all`; absent or empty is 7 days.
    pub(crate) fn parse(raw: Option<&str>) -> Result<Window, WebError> {
        let pairs: Vec<(String, String)> = match raw {
            Some(r) => serde_urlencoded::from_str(r)
                .map_err(|e| WebError::invalid(format!("unreadable query: {e}")))?,
            None => Vec::new(),
        };
        let since = pairs
            .iter()
            .rev()
            .find(|(k, _)| k == "since")
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
            .unwrap_or(DEFAULT_SINCE);
        if since.eq_ignore_ascii_case("all") {
            return Ok(Window::All);
        }
        DurationMs::parse(since).map(Window::Last).map_err(|e| {
            WebError::invalid(format!(
                "filter `since`: {} (or `all` for all time)",
                e.reason
            ))
        })
    }

    fn start(self, now: Timestamp) -> Option<Timestamp> {
        match self {
            Window::All => None,
            Window::Last(d) => Some(Timestamp::from_millis(
                now.as_millis()
                    .saturating_sub(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
            )),
        }
    }

    fn text(self) -> String {
        match self {
            Window::All => "all".to_owned(),
            Window::Last(d) => d.to_string(),
        }
    }
}

async fn stats(State(ctx): State<Ctx>, RawQuery(raw): RawQuery) -> Response {
    let window = match Window::parse(raw.as_deref()) {
        Ok(w) => w,
        Err(e) => return e.into_response(),
    };
    ctx.page(move |api, view| render(api, view, window)).await
}

async fn prometheus(State(ctx): State<Ctx>) -> Response {
    let text = ctx
        .blocking(|api| {
            let status = api.status()?;
            let metrics = api.metrics(None)?;
            Ok(exposition(&status, &metrics))
        })
        .await;
    match text {
        Ok(text) => {
            let mut response = text.into_response();
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROMETHEUS));
            response
        }
        Err(e) => e.into_response(),
    }
}

/// `part` of `whole` in percent, rounded; `-` of nothing.
fn percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        return "-".to_owned();
    }
    let p = (u128::from(part) * 100 + u128::from(whole) / 2) / u128::from(whole);
    format!("{p}%")
}

/// `part / whole` with two decimals; `-` of nothing.
fn ratio(part: u64, whole: u64) -> String {
    if whole == 0 {
        return "-".to_owned();
    }
    let hundredths = (u128::from(part) * 100 + u128::from(whole) / 2) / u128::from(whole);
    format!("{}.{:02}", hundredths / 100, hundredths % 100)
}

/// `total / n` tokens, rounded; `-` of nothing.
fn per(total: u64, n: u64) -> String {
    if n == 0 {
        return "-".to_owned();
    }
    ((u128::from(total) + u128::from(n) / 2) / u128::from(n)).to_string()
}

fn usd_per(total: Usd, n: u64) -> String {
    if n == 0 {
        return "-".to_owned();
    }
    html::usd(Usd::from_micros(total.micros() / n))
}

/// The hour (or day) `ms` falls in.
fn floor(ms: i64, unit: i64) -> i64 {
    ms - ms.rem_euclid(unit)
}

/// Completions per `unit` (an hour or a day) from `start` to `until`, zeros included; at most
/// `max` of the newest.
fn series(m: &Metrics, start: i64, unit: i64, max: i64) -> Vec<(i64, u64)> {
    let mut counts: BTreeMap<i64, u64> = BTreeMap::new();
    for (h, n) in &m.completed_by_hour {
        *counts.entry(floor(h.as_millis(), unit)).or_default() += n;
    }
    let last = floor(m.until.as_millis(), unit);
    let first = floor(start, unit).max(last - (max - 1) * unit);
    let mut out = Vec::new();
    let mut t = first;
    while t <= last {
        out.push((t, counts.get(&t).copied().unwrap_or(0)));
        t += unit;
    }
    out
}

fn hour_bars(m: &Metrics, start: i64) -> Vec<Bar> {
    let hours = series(m, start, HOUR_MS, MAX_HOURS);
    // Ticks on round hours: every 1, 2, 3, 6, 12 or 24 hours, a dozen at most.
    let len = i64::try_from(hours.len()).unwrap_or(i64::MAX);
    let every = [1, 2, 3, 6, 12, 24]
        .into_iter()
        .find(|e| len / e <= 12)
        .unwrap_or(24);
    hours
        .into_iter()
        .map(|(t, n)| {
            let at = Timestamp::from_millis(t).to_rfc3339();
            let hour = at.get(11..13).unwrap_or("00");
            let tick = if (t / HOUR_MS) % every != 0 {
                String::new()
            } else if hour == "00" {
                at.get(5..10).unwrap_or_default().to_owned()
            } else {
                format!("{hour}:00")
            };
            Bar {
                tick,
                label: format!("{} {}:00 UTC", at.get(..10).unwrap_or_default(), hour),
                value: n,
            }
        })
        .collect()
}

fn day_bars(m: &Metrics, start: i64) -> Vec<Bar> {
    series(m, start, DAY_MS, MAX_DAYS)
        .into_iter()
        .map(|(t, n)| {
            let at = Timestamp::from_millis(t).to_rfc3339();
            Bar {
                tick: at.get(5..10).unwrap_or_default().to_owned(),
                label: at.get(..10).unwrap_or_default().to_owned(),
                value: n,
            }
        })
        .collect()
}

fn render(api: &dyn MaosApi, view: &View, window: Window) -> Result<Markup, WebError> {
    let now = crate::ctx::now();
    let m = api.metrics(window.start(now))?;
    // The charts start at the window's start, or (all time) at the first completion.
    let start = m
        .since
        .or_else(|| m.completed_by_hour.first().map(|(h, _)| *h))
        .unwrap_or(m.until)
        .as_millis();
    let interventions = m.approvals + m.rejections + m.manual_retries;
    let hours = hour_bars(&m, start);
    let days = day_bars(&m, start);
    let chosen = window.text();
    let title = match window {
        Window::All => "Metrics: all time".to_owned(),
        Window::Last(d) => format!("Metrics: the last {d}"),
    };
    let body = html! {
        nav.windows aria-label="Window of time" {
            "Window: "
            @for (since, name) in WINDOWS {
                @if *since == chosen {
                    strong aria-current="true" { (name) }
                } @else {
                    a href={ "/stats?since=" (since) } { (name) }
                }
                " "
            }
            form.inline method="get" action="/stats" {
                label.inline for="since" { "Other: " }
                input #since type="text" name="since" value=(chosen) size="7" placeholder="12h";
                " " button type="submit" { "Show" }
            }
        }
        p.quiet {
            @if let Some(s) = m.since { "From " (html::time(s)) " " (s.to_rfc3339().get(..10).unwrap_or_default()) }
            @else { "Since the first event" }
            " until " (html::time(m.until)) " " (m.until.to_rfc3339().get(..10).unwrap_or_default()) " (UTC)."
        }
        section aria-labelledby="figures-h" {
            h2 #figures-h { "Figures" }
            dl.figures {
                dt { "Tasks created" } dd #m-created { (m.created) }
                dt { "Tasks completed" } dd #m-completed { (m.completed) }
                dt { "First-attempt pass rate" }
                dd #m-first-pass {
                    (percent(m.first_attempt_passed, m.completed))
                    span.quiet { " (" (m.first_attempt_passed) " of " (m.completed) ")" }
                }
                dt { "Time to green" }
                dd #m-green {
                    @if let Some(s) = m.time_to_green {
                        "p50 " (html::duration_ms(s.p50)) " · p90 " (html::duration_ms(s.p90)) " · max " (html::duration_ms(s.max))
                    } @else { "-" }
                }
                dt { "A person stepped in" }
                dd #m-interventions {
                    (ratio(interventions, m.completed)) " per completed task"
                    span.quiet {
                        " (" (m.approvals) " approvals, " (m.rejections) " rejections, "
                        (m.manual_retries) " retries asked for)"
                    }
                }
                dt { "Attempts" } dd #m-attempts { (m.attempts) }
                dt { "Tokens" }
                dd #m-tokens {
                    (m.usage.input_tokens) " in / " (m.usage.output_tokens) " out"
                    span.quiet { " · per completed task " (per(m.usage.total_tokens(), m.completed)) }
                }
                dt { "Cost" }
                dd #m-cost {
                    (html::usd(m.usage.cost))
                    span.quiet { " · per completed task " (usd_per(m.usage.cost, m.completed)) }
                }
            }
        }
        section aria-labelledby="throughput-h" {
            h2 #throughput-h { "Throughput" }
            (chart::bars(
                "per-hour",
                &if start < m.until.as_millis() - MAX_HOURS * HOUR_MS {
                    format!("Tasks completed per hour (the last {} hours)", MAX_HOURS)
                } else {
                    "Tasks completed per hour".to_owned()
                },
                "completed",
                &hours,
            ))
            (chart::bars("per-day", "Tasks completed per day", "completed", &days))
        }
        section aria-labelledby="agents-h" {
            h2 #agents-h { "Agents" }
            @if m.agents.is_empty() {
                p.quiet { "No attempt ended in this window." }
            } @else {
                table #m-agents {
                    thead { tr {
                        th scope="col" { "Agent" } th scope="col" { "Attempts" } th scope="col" { "Succeeded" }
                        th scope="col" { "Failed" } th scope="col" { "Success rate" } th scope="col" { "Tokens in / out" }
                        th scope="col" { "Cost" } th scope="col" { "Cost per attempt" }
                    } }
                    tbody {
                        @for a in &m.agents {
                            tr data-agent=(a.agent.as_str()) {
                                td { (a.agent.as_str()) }
                                td.num { (a.attempts) }
                                td.num { (a.succeeded) }
                                td.num { (a.failed) }
                                td.num { (percent(a.succeeded, a.succeeded + a.failed)) }
                                td.num { (a.usage.input_tokens) " / " (a.usage.output_tokens) }
                                td.num { (html::usd(a.usage.cost)) }
                                td.num { (usd_per(a.usage.cost, a.attempts)) }
                            }
                        }
                    }
                }
            }
        }
        p.quiet { "For machines: " a href="/metrics" { "/metrics" } " (Prometheus text format, all time)." }
    };
    Ok(html::page(view, Section::Metrics, &title, body))
}

/// A label value escaped as the text format wants: backslash, double quote and line feed.
pub(crate) fn label_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// The metrics in the text format, one family at a time.
struct Exposition(String);

impl Exposition {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}");
        let _ = writeln!(self.0, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        self.0.push_str(name);
        if !labels.is_empty() {
            self.0.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.0.push(',');
                }
                let _ = write!(self.0, "{k}=\"{}\"", label_value(v));
            }
            self.0.push('}');
        }
        let _ = writeln!(self.0, " {value}");
    }

    fn one(&mut self, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
        self.family(name, kind, help);
        self.sample(name, &[], value);
    }
}

/// Seconds from milliseconds, as the text format writes a float.
fn seconds(ms: u64) -> String {
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

/// The text exposition (format 0.0.4) of `status` (now) and `m` (all time).
pub(crate) fn exposition(status: &StatusReport, m: &Metrics) -> String {
    let mut x = Exposition(String::new());
    x.family("maos_tasks", "gauge", "Tasks by state.");
    for (state, n) in &status.tasks {
        x.sample("maos_tasks", &[("state", state.as_str())], n);
    }
    x.family("maos_agents", "gauge", "Agents by status.");
    for (s, n) in &status.agents {
        x.sample("maos_agents", &[("status", s.as_str())], n);
    }
    x.one(
        "maos_orchestrations",
        "gauge",
        "Orchestrations.",
        status.orchestrations,
    );
    x.one(
        "maos_last_event_seq",
        "gauge",
        "The sequence number of the newest event.",
        status.last_event,
    );
    x.one(
        "maos_tasks_created_total",
        "counter",
        "Tasks created.",
        m.created,
    );
    x.one(
        "maos_tasks_completed_total",
        "counter",
        "Tasks completed.",
        m.completed,
    );
    x.one(
        "maos_attempts_total",
        "counter",
        "Attempts that ended.",
        m.attempts,
    );
    x.one(
        "maos_first_attempt_passed_total",
        "counter",
        "Completed tasks whose first attempt was the one accepted.",
        m.first_attempt_passed,
    );
    x.one(
        "maos_approvals_total",
        "counter",
        "Approvals a person gave.",
        m.approvals,
    );
    x.one(
        "maos_rejections_total",
        "counter",
        "Rejections by a person.",
        m.rejections,
    );
    x.one(
        "maos_manual_retries_total",
        "counter",
        "Retries a person asked for.",
        m.manual_retries,
    );
    x.one(
        "maos_cost_usd_total",
        "counter",
        "What the attempts cost, in US dollars.",
        m.usage.cost,
    );
    x.family(
        "maos_tokens_total",
        "counter",
        "Tokens the attempts used, by direction.",
    );
    x.sample(
        "maos_tokens_total",
        &[("direction", "input")],
        m.usage.input_tokens,
    );
    x.sample(
        "maos_tokens_total",
        &[("direction", "output")],
        m.usage.output_tokens,
    );
    x.family(
        "maos_time_to_green_seconds",
        "gauge",
        "Time from a task's creation to its completion: the median, the 90th percentile and the longest.",
    );
    if let Some(s) = m.time_to_green {
        for (p, ms) in [("50", s.p50), ("90", s.p90), ("100", s.max)] {
            x.sample(
                "maos_time_to_green_seconds",
                &[("percentile", p)],
                seconds(ms),
            );
        }
    }
    for (name, help, value) in [
        (
            "maos_agent_attempts_total",
            "Attempts that ended, by agent.",
            (|a: &AgentMetrics| a.attempts) as fn(&AgentMetrics) -> u64,
        ),
        (
            "maos_agent_attempts_succeeded_total",
            "Attempts that succeeded, by agent.",
            |a: &AgentMetrics| a.succeeded,
        ),
        (
            "maos_agent_attempts_failed_total",
            "Attempts that failed, by agent (interrupted ones did not fail).",
            |a: &AgentMetrics| a.failed,
        ),
    ] {
        x.family(name, "counter", help);
        for a in &m.agents {
            x.sample(name, &[("agent", a.agent.as_str())], value(a));
        }
    }
    x.family(
        "maos_agent_cost_usd_total",
        "counter",
        "What each agent's attempts cost, in US dollars.",
    );
    for a in &m.agents {
        x.sample(
            "maos_agent_cost_usd_total",
            &[("agent", a.agent.as_str())],
            a.usage.cost,
        );
    }
    x.family(
        "maos_agent_tokens_total",
        "counter",
        "Tokens each agent's attempts used, by direction.",
    );
    for a in &m.agents {
        let name = a.agent.as_str();
        x.sample(
            "maos_agent_tokens_total",
            &[("agent", name), ("direction", "input")],
            a.usage.input_tokens,
        );
        x.sample(
            "maos_agent_tokens_total",
            &[("agent", name), ("direction", "output")],
            a.usage.output_tokens,
        );
    }
    x.0
}

#[cfg(test)]
#[path = "../../tests/web/prometheus_text.rs"]
mod prometheus_text;

#[cfg(test)]
mod tests {
    use maos_application::metrics::Spread;

    use super::prometheus_text::parse_exposition;
    use maos_domain::{AgentName, AgentStatus, TaskState, Usage};

    use super::*;

    fn metrics() -> Metrics {
        let usage = Usage {
            input_tokens: 1200,
            cached_input_tokens: 0,
            output_tokens: 340,
            cost: Usd::from_micros(1_500_000),
        };
        Metrics {
            since: None,
            until: Timestamp::from_millis(10 * HOUR_MS),
            created: 4,
            completed: 3,
            completed_by_hour: vec![
                (Timestamp::from_millis(2 * HOUR_MS), 2),
                (Timestamp::from_millis(9 * HOUR_MS), 1),
            ],
            first_attempt_passed: 2,
            time_to_green: Some(Spread {
                p50: 1_500,
                p90: 62_250,
                max: 90_000,
            }),
            approvals: 1,
            rejections: 2,
            manual_retries: 0,
            attempts: 5,
            usage,
            agents: vec![AgentMetrics {
                agent: AgentName::parse("claude").expect("name"),
                attempts: 5,
                succeeded: 3,
                failed: 2,
                usage,
            }],
        }
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label_value("plain"), "plain");
        assert_eq!(label_value("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
        let mut x = Exposition(String::new());
        x.family("maos_x", "gauge", "X.");
        x.sample("maos_x", &[("agent", "we\"ird\\\nname")], 1);
        let parsed = parse_exposition(&x.0).expect("parses");
        assert_eq!(
            parsed[0].1,
            vec![("agent".into(), "we\"ird\\\nname".into())]
        );
        assert!(
            x.0.contains(r#"maos_x{agent="we\"ird\\\nname"} 1"#),
            "{}",
            x.0
        );
    }

    #[test]
    fn the_exposition_parses_and_carries_the_figures() {
        let mut status = StatusReport::default();
        for s in TaskState::ALL {
            status.tasks.insert(*s, 0);
        }
        status.tasks.insert(TaskState::Completed, 3);
        status.tasks.insert(TaskState::Ready, 1);
        status.agents.insert(AgentStatus::Available, 1);
        status.last_event = 42;
        let text = exposition(&status, &metrics());
        let samples = parse_exposition(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        let get = |name: &str, labels: &[(&str, &str)]| {
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
        assert_eq!(get("maos_tasks", &[("state", "completed")]), Some(3.0));
        assert_eq!(get("maos_tasks", &[("state", "ready")]), Some(1.0));
        assert_eq!(get("maos_tasks", &[("state", "running")]), Some(0.0));
        assert_eq!(get("maos_agents", &[("status", "available")]), Some(1.0));
        assert_eq!(get("maos_tasks_completed_total", &[]), Some(3.0));
        assert_eq!(get("maos_attempts_total", &[]), Some(5.0));
        assert_eq!(get("maos_first_attempt_passed_total", &[]), Some(2.0));
        assert_eq!(get("maos_rejections_total", &[]), Some(2.0));
        assert_eq!(get("maos_cost_usd_total", &[]), Some(1.5));
        assert_eq!(
            get("maos_tokens_total", &[("direction", "output")]),
            Some(340.0)
        );
        assert_eq!(
            get("maos_time_to_green_seconds", &[("percentile", "90")]),
            Some(62.25)
        );
        assert_eq!(
            get("maos_agent_attempts_failed_total", &[("agent", "claude")]),
            Some(2.0)
        );
        assert_eq!(get("maos_last_event_seq", &[]), Some(42.0));
        // Every family is declared once, with HELP and TYPE, and every name is prefixed.
        assert!(samples.iter().all(|(n, _, _)| n.starts_with("maos_")));
        assert_eq!(
            text.matches("# TYPE ").count(),
            text.matches("# HELP ").count()
        );
    }

    #[test]
    fn the_parser_refuses_what_the_format_does_not_allow() {
        for bad in [
            "maos_x 1\n",
            "# TYPE maos_x gauge\nmaos_x{a=\"1} 2\n",
            "# TYPE maos_x gauge\nmaos_x{a=1} 2\n",
            "# TYPE maos_x gauge\nmaos_x one\n",
            "# TYPE maos_x gauge\n# TYPE maos_x gauge\nmaos_x 1\n",
            "# TYPE maos_x gauge\nmaos_x 1",
            "# TYPE maos_x gauge\nmaos_x{a=\"\\q\"} 1\n",
        ] {
            assert!(parse_exposition(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn windows_parse_like_the_cli() {
        assert_eq!(
            Window::parse(None).expect("default"),
            Window::Last(DurationMs::parse("7d").expect("7d"))
        );
        assert_eq!(
            Window::parse(Some("since=24h")).expect("24h"),
            Window::Last(DurationMs::from_millis(86_400_000).expect("ms"))
        );
        assert_eq!(Window::parse(Some("since=ALL")).expect("all"), Window::All);
        assert_eq!(
            Window::parse(Some("since=")).expect("empty"),
            Window::parse(None).expect("default")
        );
        for bad in ["since=forever", "since=31d", "since=0s", "since=-1h"] {
            let e = Window::parse(Some(bad)).expect_err(bad);
            assert!(e.message.contains("`since`"), "{bad}: {}", e.message);
        }
    }

    #[test]
    fn series_fill_the_gaps_and_sum_days() {
        let m = metrics();
        let hours = series(&m, 0, HOUR_MS, MAX_HOURS);
        assert_eq!(hours.len(), 11);
        assert_eq!(hours[2], (2 * HOUR_MS, 2));
        assert_eq!(hours[9], (9 * HOUR_MS, 1));
        assert_eq!(hours.iter().map(|h| h.1).sum::<u64>(), 3);
        let days = series(&m, 0, DAY_MS, MAX_DAYS);
        assert_eq!(days, vec![(0, 3)]);
        // A long window shows its newest hours only.
        let long = series(&m, -1000 * HOUR_MS, HOUR_MS, 4);
        assert_eq!(long.len(), 4);
        assert_eq!(long[0].0, 7 * HOUR_MS);
        assert_eq!(percent(2, 3), "67%");
        assert_eq!(percent(0, 0), "-");
        assert_eq!(ratio(3, 3), "1.00");
        assert_eq!(ratio(1, 3), "0.33");
        assert_eq!(seconds(62_250), "62.250");
    }
}
