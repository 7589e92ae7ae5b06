//! `maos metrics [--since DURATION]`: what the work came to, for people (counts with their
//! rates) and as one JSON document (the counts and the rates the CLI works out from them).

use std::time::{SystemTime, UNIX_EPOCH};

use maos_application::MaosApi;
use maos_application::metrics::Metrics;
use maos_domain::{DurationMs, Timestamp};
use serde::Serialize;

use crate::error::CliError;
use crate::human;
use crate::json::{self, SCHEMA_VERSION};
use crate::output::{Output, Render};

/// `maos metrics`.
pub(super) fn execute(
    since: Option<DurationMs>,
    api: &dyn MaosApi,
    out: &mut Output,
) -> Result<(), CliError> {
    let since = since.map(|d| {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        Timestamp::from_millis(now.saturating_sub(i64::try_from(d.as_millis()).unwrap_or(0)))
    });
    out.print(&Shown(api.metrics(since)?))
}

struct Shown(Metrics);

/// `part` of `whole` as a share from 0 to 1, rounded to three places; none of nothing.
fn share(part: u64, whole: u64) -> Option<f64> {
    #[allow(clippy::cast_precision_loss)]
    (whole > 0).then(|| ((part as f64 / whole as f64) * 1000.0).round() / 1000.0)
}

fn percent(part: u64, whole: u64) -> String {
    share(part, whole).map_or_else(|| "-".to_owned(), |s| format!("{:.0}%", s * 100.0))
}

#[derive(Serialize)]
struct MetricsDoc {
    schema_version: u32,
    since: Option<String>,
    until: String,
    created: u64,
    completed: u64,
    completed_by_hour: Vec<HourJson>,
    first_attempt_passed: u64,
    first_attempt_pass_rate: Option<f64>,
    time_to_green_ms: Option<SpreadJson>,
    approvals: u64,
    rejections: u64,
    manual_retries: u64,
    /// Approvals, rejections and retries asked for, per completed task.
    interventions_per_task: Option<f64>,
    attempts: u64,
    input_tokens: u64,
    output_tokens: u64,
    cost_usd: String,
    agents: Vec<AgentJson>,
}

#[derive(Serialize)]
struct HourJson {
    hour: String,
    completed: u64,
}

#[derive(Serialize)]
struct SpreadJson {
    p50: u64,
    p90: u64,
    max: u64,
}

#[derive(Serialize)]
struct AgentJson {
    agent: String,
    attempts: u64,
    succeeded: u64,
    failed: u64,
    success_rate: Option<f64>,
    input_tokens: u64,
    output_tokens: u64,
    cost_usd: String,
}

impl Render for Shown {
    fn document(&self) -> impl Serialize {
        let m = &self.0;
        let interventions = m.approvals + m.rejections + m.manual_retries;
        MetricsDoc {
            schema_version: SCHEMA_VERSION,
            since: m.since.map(json::time),
            until: json::time(m.until),
            created: m.created,
            completed: m.completed,
            completed_by_hour: m
                .completed_by_hour
                .iter()
                .map(|(h, n)| HourJson {
                    hour: json::time(*h),
                    completed: *n,
                })
                .collect(),
            first_attempt_passed: m.first_attempt_passed,
            first_attempt_pass_rate: share(m.first_attempt_passed, m.completed),
            time_to_green_ms: m.time_to_green.map(|s| SpreadJson {
                p50: s.p50,
                p90: s.p90,
                max: s.max,
            }),
            approvals: m.approvals,
            rejections: m.rejections,
            manual_retries: m.manual_retries,
            #[allow(clippy::cast_precision_loss)]
            interventions_per_task: (m.completed > 0)
                .then(|| ((interventions as f64 / m.completed as f64) * 100.0).round() / 100.0),
            attempts: m.attempts,
            input_tokens: m.usage.input_tokens,
            output_tokens: m.usage.output_tokens,
            cost_usd: m.usage.cost.to_string(),
            agents: m
                .agents
                .iter()
                .map(|a| AgentJson {
                    agent: a.agent.to_string(),
                    attempts: a.attempts,
                    succeeded: a.succeeded,
                    failed: a.failed,
                    success_rate: share(a.succeeded, a.succeeded + a.failed),
                    input_tokens: a.usage.input_tokens,
                    output_tokens: a.usage.output_tokens,
                    cost_usd: a.usage.cost.to_string(),
                })
                .collect(),
        }
    }

    fn human(&self, out: &mut Output) -> Result<(), CliError> {
        let m = &self.0;
        let window = match m.since {
            Some(s) => format!("since {}", s.to_rfc3339()),
            None => "since the first event".to_owned(),
        };
        let green = m.time_to_green.map_or_else(
            || "-".to_owned(),
            |s| {
                format!(
                    "p50 {}, p90 {}, max {}",
                    human::duration_ms(s.p50),
                    human::duration_ms(s.p90),
                    human::duration_ms(s.max)
                )
            },
        );
        let mut text = format!(
            "work {window}, until {}\n\
             tasks             {} created, {} completed\n\
             first attempt     {} of {} completed tasks passed ({})\n\
             time to green     {green}\n\
             a person          {} approval(s), {} rejection(s), {} retry(ies) asked for\n\
             attempts          {}, tokens {}, cost ${}",
            m.until.to_rfc3339(),
            m.created,
            m.completed,
            m.first_attempt_passed,
            m.completed,
            percent(m.first_attempt_passed, m.completed),
            m.approvals,
            m.rejections,
            m.manual_retries,
            m.attempts,
            human::tokens(&m.usage),
            m.usage.cost,
        );
        if !m.completed_by_hour.is_empty() {
            text.push_str("\n\ncompleted by hour");
            for (h, n) in &m.completed_by_hour {
                text.push_str(&format!("\n  {}  {n}", h.to_rfc3339()));
            }
        }
        if !m.agents.is_empty() {
            let rows = m
                .agents
                .iter()
                .map(|a| {
                    vec![
                        crate::escape::line(a.agent.as_str()).into_owned(),
                        a.attempts.to_string(),
                        a.succeeded.to_string(),
                        a.failed.to_string(),
                        percent(a.succeeded, a.succeeded + a.failed),
                        human::thousands(a.usage.total_tokens()),
                        format!("${}", a.usage.cost),
                    ]
                })
                .collect();
            text.push_str("\n\n");
            text.push_str(&human::table(
                out.color(),
                &[
                    "AGENT",
                    "ATTEMPTS",
                    "SUCCEEDED",
                    "FAILED",
                    "SUCCESS",
                    "TOKENS",
                    "COST",
                ],
                rows,
            ));
        }
        out.text(&text)
    }
}
