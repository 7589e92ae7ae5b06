//! `maos orchestrate create|run|start|pause|resume|cancel|status|graph|list|show|merge`:
//! creating orchestrations, running plans and workflows (`run.rs`), steering orchestrations, and
//! watching them to the end (a line per task, NDJSON events with `--json`, a final summary, and
//! exit 0 only when every task completed).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::IsTerminal;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use maos_application::{
    CreatePlan, IdRef, MaosApi, NeedsPerson, OrchestrationReport, Page, TaskFilter, WaitReason,
};
use maos_domain::graph;
use maos_domain::{NextStep, Orchestration, OrchestrationId, Task, TaskId, TaskState};
use serde::Serialize;

use crate::cli::{GraphFormat, OrchestrateCommand};
use crate::error::{CliError, FailureClass};
use crate::escape;
use crate::human;
use crate::json;
use crate::live::{InPlace, MIN_REDRAW, TICK, strip_colour};
use crate::output::{Output, Render, Style, paint};
use crate::reasons;

mod run;

pub(crate) use run::Started;

/// How often a terminal's live view turns its spinners while attempts run.
const SPIN: Duration = Duration::from_millis(250);
/// The spinner of a running attempt.
const SPINNER: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

/// One task of a plan as the graph preview shows it.
#[derive(Debug, Clone)]
pub(crate) struct PreviewTask {
    pub(crate) key: String,
    pub(crate) title: String,
    pub(crate) capabilities: String,
    pub(crate) risk: String,
    pub(crate) depends_on: Vec<String>,
    pub(crate) concerns: Vec<String>,
}

/// The preview of a plan: what `maos orchestrate run` shows before asking.
pub(crate) fn preview(plan: &CreatePlan) -> Vec<PreviewTask> {
    plan.tasks
        .iter()
        .map(|t| PreviewTask {
            key: t.key.clone(),
            title: t.task.title.to_string(),
            capabilities: if t.task.capabilities.is_empty() {
                "any".to_owned()
            } else {
                t.task.capabilities.to_string()
            },
            risk: t.task.risk.to_string(),
            depends_on: t.depends_on.clone(),
            concerns: t.task.concerns.iter().map(ToString::to_string).collect(),
        })
        .collect()
}

/// The plan's graph for people: one line per task in an order that respects dependencies, with
/// what it waits for.
pub(crate) fn preview_text(plan: &CreatePlan) -> String {
    let tasks = preview(plan);
    let order = topological(&tasks);
    let width = tasks.iter().map(|t| t.key.len()).max().unwrap_or(0);
    let mut out = format!(
        "Plan \"{}\": {} task{}",
        escape::line(plan.orchestration.name.as_str()),
        tasks.len(),
        if tasks.len() == 1 { "" } else { "s" }
    );
    if let Some(goal) = &plan.orchestration.goal {
        out.push_str(&format!("\n  goal: {}", escape::line(goal)));
    }
    if let Some(ws) = &plan.orchestration.workspace {
        out.push_str(&format!(
            "\n  repository: {}{}",
            escape::line(&ws.repo),
            ws.base
                .as_deref()
                .map(|b| format!(" (from {})", escape::line(b)))
                .unwrap_or_default()
        ));
    }
    out.push('\n');
    for i in order {
        let t = &tasks[i];
        let after = if t.depends_on.is_empty() {
            String::new()
        } else {
            format!("  after {}", t.depends_on.join(", "))
        };
        let concerns = if t.concerns.is_empty() {
            String::new()
        } else {
            format!("  concerns {}", escape::line(&t.concerns.join(" ")))
        };
        out.push_str(&format!(
            "\n  {:width$}  {}  [{}] {} risk{after}{concerns}",
            t.key,
            escape::line(&t.title),
            t.capabilities,
            t.risk
        ));
    }
    out
}

/// Indexes of `tasks` in dependency order (ties in plan order); tasks in a cycle (refused later
/// by the service) come last.
fn topological(tasks: &[PreviewTask]) -> Vec<usize> {
    let index: HashMap<&str, usize> = tasks
        .iter()
        .enumerate()
        .map(|(i, t)| (t.key.as_str(), i))
        .collect();
    let deps: Vec<Vec<usize>> = tasks
        .iter()
        .map(|t| {
            t.depends_on
                .iter()
                .map(|d| index.get(d.as_str()).copied().unwrap_or(usize::MAX))
                .collect()
        })
        .collect();
    graph::topological_order(&deps)
}

/// Asks on the terminal whether to run the plan; refuses (rather than waits) without one.
pub(crate) fn approve_plan(yes: bool, out: &mut Output) -> Result<(), CliError> {
    if yes {
        return Ok(());
    }
    match super::ask("Run this plan?", out)? {
        Some(true) => Ok(()),
        Some(false) => Err(CliError::new(
            FailureClass::Conflict,
            "you did not approve the plan: nothing was created",
        )
        .with_hint("answer y to run it, or pass --yes")),
        None => Err(CliError::new(
            FailureClass::Usage,
            "the plan needs your approval, and there is no terminal to ask on",
        )
        .with_hint(
            "read the plan, then run again with --yes (or set `approve_plans = \"auto\"` in the \
             data directory's config.toml)",
        )),
    }
}

/// Every task of an orchestration, oldest first.
pub(crate) fn tasks_of(api: &dyn MaosApi, id: OrchestrationId) -> Result<Vec<Task>, CliError> {
    let mut tasks = Vec::new();
    let mut cursor = None;
    loop {
        let page = api.list_tasks(
            &TaskFilter {
                orchestration: Some(id),
                ..TaskFilter::default()
            },
            &Page {
                limit: Page::MAX_LIMIT,
                cursor,
            },
        )?;
        tasks.extend(page.tasks);
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => return Ok(in_dependency_order(tasks)),
        }
    }
}

/// `tasks` with every task after the tasks it depends on, otherwise in the order given (the
/// tasks of a plan are created at the same instant, so their creation order says little).
/// Dependencies on tasks not in `tasks` are ignored.
fn in_dependency_order(tasks: Vec<Task>) -> Vec<Task> {
    let index: HashMap<TaskId, usize> = tasks.iter().enumerate().map(|(i, t)| (t.id, i)).collect();
    let deps: Vec<Vec<usize>> = tasks
        .iter()
        .map(|t| {
            t.spec
                .depends_on
                .iter()
                .filter_map(|d| index.get(d).copied())
                .collect()
        })
        .collect();
    let order = graph::topological_order(&deps);
    let mut slots: Vec<Option<Task>> = tasks.into_iter().map(Some).collect();
    order
        .into_iter()
        .filter_map(|i| slots.get_mut(i).and_then(Option::take))
        .collect()
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Why a task of the report waits for a person, in words.
fn why(n: &NeedsPerson) -> String {
    match n.state {
        TaskState::AwaitingApproval => "waits for your approval".to_owned(),
        TaskState::Blocked => n
            .waits
            .iter()
            .find_map(|w| match w {
                WaitReason::Blocked { reason, words, .. } => Some(match reason {
                    Some(r) => reasons::block(r, words.as_deref()),
                    None => words.clone().unwrap_or_else(|| "blocked".into()),
                }),
                _ => None,
            })
            .or_else(|| n.blocked.as_ref().map(|r| reasons::block(r, None)))
            .unwrap_or_else(|| "blocked".into()),
        _ => n
            .waits
            .iter()
            .map(|w| reasons::waiting(w, n.task))
            .collect::<Vec<_>>()
            .join("; "),
    }
}

impl From<&OrchestrationReport> for json::SummaryJson {
    fn from(r: &OrchestrationReport) -> Self {
        json::SummaryJson {
            orchestration: r.orchestration.id.to_string(),
            status: r.orchestration.status.to_string(),
            tasks: r.tasks,
            completed: r.completed,
            // The states its tasks are in (the report counts every state).
            by_state: r
                .by_state
                .iter()
                .filter(|(_, n)| **n > 0)
                .map(|(s, n)| (s.to_string(), *n))
                .collect(),
            attempts: r.attempts,
            wall_ms: r.wall_ms,
            input_tokens: r.input_tokens,
            output_tokens: r.output_tokens,
            cost_usd: r.cost.to_string(),
            planning_input_tokens: r.planning.input_tokens,
            planning_output_tokens: r.planning.output_tokens,
            planning_cost_usd: r.planning.cost.to_string(),
            needs_a_person: r
                .needs_a_person
                .iter()
                .map(|n| json::NeedsPersonJson {
                    task: n.task.to_string(),
                    title: n.title.to_string(),
                    state: n.state.as_str(),
                    why: why(n),
                    next: n
                        .next_steps
                        .iter()
                        .map(crate::reasons::NextStepJson::from)
                        .collect(),
                })
                .collect(),
            integration_branch: r.integration_branch.clone(),
        }
    }
}

/// The summary for people.
pub(crate) fn summary_text(s: &OrchestrationReport) -> String {
    let states: Vec<String> = s
        .by_state
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(k, v)| format!("{v} {k}"))
        .collect();
    let mut out = format!(
        "Orchestration {} is {}: {} of {} tasks completed ({}).\n  attempts: {}   wall time: {}   \
         tokens: {} in, {} out   cost: ${}",
        s.orchestration.id.short(),
        s.orchestration.status,
        s.completed,
        s.tasks,
        states.join(", "),
        s.attempts,
        human::duration_ms(s.wall_ms),
        s.input_tokens,
        s.output_tokens,
        s.cost
    );
    if s.planning.total_tokens() > 0 || s.planning.cost > maos_domain::Usd::ZERO {
        out.push_str(&format!(
            "\n  planning: tokens {} in, {} out   cost: ${}",
            s.planning.input_tokens, s.planning.output_tokens, s.planning.cost
        ));
    }
    if let Some(b) = &s.integration_branch {
        out.push_str(&format!("\n  integration branch: {b}"));
    }
    if !s.needs_a_person.is_empty() {
        out.push_str("\nNeeds a person:");
        for n in &s.needs_a_person {
            out.push_str(&format!(
                "\n  {} {} ({}): {}\n      {}",
                n.task.short(),
                escape::line(n.title.as_str()),
                n.state,
                escape::line(&why(n)),
                next_text(n)
            ));
        }
    }
    out
}

/// What a person can do about a task of the summary, as people type it: a ready task's
/// details are a `task show` away; otherwise the first step, then the other or why there is
/// none.
fn next_text(n: &NeedsPerson) -> String {
    let steps: Vec<NextStep> = if n.state == TaskState::Ready {
        vec![
            NextStep::ShowTask { task: n.task },
            NextStep::Cancel { task: n.task },
        ]
    } else {
        n.next_steps.clone()
    };
    match steps.as_slice() {
        [only @ NextStep::Cancel { .. }] => {
            format!("{}  (it cannot run as it is)", reasons::command_line(only))
        }
        [first, second, ..] => format!(
            "{}  (or {})",
            reasons::command_line(first),
            reasons::command_line(second)
        ),
        [only] => reasons::command_line(only),
        [] => String::new(),
    }
}

/// The line above a table of an orchestration's tasks: which, and how far it got.
fn heading(o: &Orchestration, tasks: &[Task]) -> String {
    let done = tasks
        .iter()
        .filter(|t| t.state == TaskState::Completed)
        .count();
    format!(
        "{} {} ({}): {done}/{} tasks completed",
        o.id.short(),
        escape::line(o.name.as_str()),
        o.status,
        tasks.len()
    )
}

/// A task's row: id, state, agent, attempt, `elapsed`, tokens, cost, title (cut to `title`).
fn task_row(t: &Task, elapsed: String, title: usize) -> Vec<String> {
    let u = t.usage();
    vec![
        t.id.short(),
        t.state.to_string(),
        t.current_attempt()
            .map_or_else(|| "-".into(), |a| a.agent.to_string()),
        if t.attempts_used() == 0 {
            "-".into()
        } else {
            format!("{}/{}", t.attempts_used(), t.attempts_allowed())
        },
        elapsed,
        // Input tokens include the cached ones (`Usage`).
        (u.input_tokens + u.output_tokens).to_string(),
        format!("${}", t.spent()),
        human::clip(t.spec.title.as_str(), title),
    ]
}

/// One line per task: state, agent, attempt, elapsed, tokens, cost.
pub(crate) fn progress_text(o: &Orchestration, tasks: &[Task], color: bool) -> String {
    let now = now_ms();
    let rows = tasks
        .iter()
        .map(|t| {
            let a = t.current_attempt();
            let started = t.attempts.first().and_then(|a| a.started_at);
            let ended = if t.state.is_terminal() {
                a.and_then(|a| a.ended_at).map(|e| e.as_millis())
            } else {
                None
            };
            let elapsed = started.map_or_else(
                || "-".to_owned(),
                |s| {
                    human::duration_ms(
                        u64::try_from(ended.unwrap_or(now).saturating_sub(s.as_millis()))
                            .unwrap_or(0),
                    )
                },
            );
            task_row(t, elapsed, 48)
        })
        .collect();
    let mut out = format!("{}\n", heading(o, tasks));
    out.push_str(&human::table(
        color,
        &[
            "TASK", "STATE", "AGENT", "ATTEMPT", "ELAPSED", "TOKENS", "COST", "TITLE",
        ],
        rows,
    ));
    out
}

/// `maos orchestrate status <id> [--watch]`.
pub(crate) fn status(
    api: &dyn MaosApi,
    id: &IdRef,
    watch_it: bool,
    out: &mut Output,
) -> Result<(), CliError> {
    let o = api.get_orchestration(id)?;
    if watch_it {
        return watch(api, o.id, None, out);
    }
    let tasks = tasks_of(api, o.id)?;
    let report = api.orchestration_report(&IdRef::from(o.id))?;
    out.print(&Progress {
        o: report.orchestration.clone(),
        tasks,
        summary: report,
    })
}

/// `maos orchestrate status`: a line per task, then the summary.
struct Progress {
    o: Orchestration,
    tasks: Vec<Task>,
    summary: OrchestrationReport,
}

impl Render for Progress {
    fn document(&self) -> impl Serialize {
        StatusDoc {
            schema_version: json::SCHEMA_VERSION,
            orchestration: json::OrchestrationDoc::new(&self.o).orchestration,
            tasks: self.tasks.iter().map(json::TaskJson::from).collect(),
            summary: json::SummaryJson::from(&self.summary),
        }
    }

    fn human(&self, out: &mut Output) -> Result<(), CliError> {
        out.text(&progress_text(&self.o, &self.tasks, out.color()))?;
        out.text(&summary_text(&self.summary))
    }
}

/// `maos orchestrate status --json`.
#[derive(Debug, Serialize)]
struct StatusDoc {
    schema_version: u32,
    orchestration: json::OrchestrationJson,
    tasks: Vec<json::TaskJson>,
    summary: json::SummaryJson,
}

/// The last line of `--watch --json` (`"type": "summary"`).
#[derive(Debug, Serialize)]
struct SummaryLine {
    summary: json::SummaryJson,
}

/// Watches an orchestration until nothing moves without a person; then prints the summary and
/// ends with exit 0 only if every task completed.
pub(crate) fn watch(
    api: &dyn MaosApi,
    id: OrchestrationId,
    since: Option<u64>,
    out: &mut Output,
) -> Result<(), CliError> {
    out.stream_documents();
    let terminal = !out.json() && std::io::stdout().is_terminal();
    let start = match since {
        Some(seq) => seq,
        None => api.status()?.last_event,
    };
    let mut follower = api.follow_events(start)?;
    let mut streamed = start;
    let (mut o, mut tasks, mut report, mut as_of) = snapshot(api, id)?;
    let ids: BTreeSet<TaskId> = tasks.iter().map(|t| t.id).collect();
    let mut drawn = Instant::now();
    let began = Instant::now();
    // Without a terminal: one line per change of a task, not a redrawn table.
    let mut seen: BTreeMap<TaskId, (TaskState, u32)> = BTreeMap::new();
    // On a terminal: a block redrawn in place, with what the running agents print last.
    let mut block = InPlace::default();
    let mut tails = Tails::default();
    let mut frame = 0usize;
    if terminal {
        tails.refresh(api, &tasks);
        block.draw(
            out,
            &live_text(&o, &tasks, report.as_ref(), &tails, frame, out.color()),
        )?;
    } else if !out.json() {
        out.text(&changes(&mut seen, &tasks, began))?;
        out.flush()?;
    }
    loop {
        if report.as_ref().is_some_and(|r| !r.can_move) {
            // The state at rest was read as of event `as_of`: stream every event up to it, so
            // that the stream and the summary tell the same story.
            let deadline = Instant::now() + Duration::from_secs(5);
            while streamed < as_of && Instant::now() < deadline {
                let batch = follower.next_batch(TICK)?;
                streamed = stream(out, &batch, id, &ids, streamed)?;
            }
            break;
        }
        let batch = follower.next_batch(if terminal { SPIN } else { TICK })?;
        if batch.is_empty() {
            // Nothing happened: on a terminal, the spinners and clocks of running attempts
            // still turn, and their agents' last lines change.
            if terminal && tasks.iter().any(|t| t.state == TaskState::Running) {
                frame = frame.wrapping_add(1);
                tails.refresh(api, &tasks);
                block.draw(
                    out,
                    &live_text(&o, &tasks, report.as_ref(), &tails, frame, out.color()),
                )?;
                drawn = Instant::now();
            }
            continue;
        }
        streamed = stream(out, &batch, id, &ids, streamed)?;
        if drawn.elapsed() < MIN_REDRAW {
            std::thread::sleep(MIN_REDRAW.saturating_sub(drawn.elapsed()));
        }
        (o, tasks, report, as_of) = snapshot(api, id)?;
        if terminal {
            frame = frame.wrapping_add(1);
            tails.refresh(api, &tasks);
            block.draw(
                out,
                &live_text(&o, &tasks, report.as_ref(), &tails, frame, out.color()),
            )?;
        } else if !out.json() {
            let text = changes(&mut seen, &tasks, began);
            if !text.is_empty() {
                out.text(&text)?;
                out.flush()?;
            }
        }
        drawn = Instant::now();
    }
    let s = match report {
        Some(r) => r,
        None => api.orchestration_report(&IdRef::from(id))?,
    };
    if out.json() {
        out.document(&json::Line::new(
            json::LineType::Summary,
            SummaryLine {
                summary: json::SummaryJson::from(&s),
            },
        ))?;
    } else {
        out.text("")?;
        out.text(&summary_text(&s))?;
    }
    out.flush()?;
    if s.completed == s.tasks {
        Ok(())
    } else {
        Err(CliError::new(
            FailureClass::Unfinished,
            format!(
                "orchestration {} stopped with {} of {} tasks completed",
                s.orchestration.id.short(),
                s.completed,
                s.tasks
            ),
        )
        .with_hint(if s.needs_a_person.is_empty() {
            "see `maos orchestrate status` for what happened".to_owned()
        } else {
            "what needs a person is listed above".to_owned()
        }))
    }
}

/// A line for each task whose state or attempt changed since `seen`, which is updated.
fn changes(
    seen: &mut BTreeMap<TaskId, (TaskState, u32)>,
    tasks: &[Task],
    began: Instant,
) -> String {
    let at = human::duration_ms(u64::try_from(began.elapsed().as_millis()).unwrap_or(u64::MAX));
    let mut lines = Vec::new();
    for t in tasks {
        let now = (t.state, t.attempts_used());
        if seen.insert(t.id, now) == Some(now) {
            continue;
        }
        let who = match t.current_attempt() {
            Some(a) if t.attempts_used() > 0 => format!(
                " ({}, attempt {}/{})",
                a.agent,
                t.attempts_used(),
                t.attempts_allowed()
            ),
            _ => String::new(),
        };
        let why = match t.state {
            TaskState::Retrying | TaskState::Blocked | TaskState::Failed => reasons::task_reason(t)
                .as_deref()
                .map(|r| {
                    let first = r.lines().next().unwrap_or(r);
                    format!(": {}", escape::line(&human::clip(first, 80)))
                })
                .unwrap_or_default(),
            _ => String::new(),
        };
        lines.push(format!(
            "[{at:>6}] {} {:<12} {}{who}{why}",
            t.id.short(),
            t.state.as_str(),
            escape::line(&human::clip(t.spec.title.as_str(), 40))
        ));
    }
    lines.join("\n")
}

/// What the running agents printed last, read as their logs grow (a few KiB per task and
/// redraw; nothing is read twice).
#[derive(Debug, Default)]
struct Tails(BTreeMap<TaskId, Tail>);

/// The end of one running attempt's log.
#[derive(Debug, Default)]
struct Tail {
    attempt: u32,
    /// How far the log was read.
    offset: u64,
    /// The last complete line that was not blank.
    last: String,
    /// What followed the last newline (a line still being written).
    partial: String,
}

impl Tails {
    /// The longest piece of a log read for one task at one redraw.
    const CHUNK: usize = 64 * 1024;

    /// Reads what the running attempts of `tasks` printed since the last time; forgets the
    /// others. A log that cannot be read (no daemon runs agents) leaves the line empty.
    fn refresh(&mut self, api: &dyn MaosApi, tasks: &[Task]) {
        self.0.retain(|id, _| {
            tasks
                .iter()
                .any(|t| t.id == *id && t.state == TaskState::Running)
        });
        for t in tasks.iter().filter(|t| t.state == TaskState::Running) {
            let Some(attempt) = t.current_attempt().map(|a| a.number) else {
                continue;
            };
            let tail = self.0.entry(t.id).or_default();
            if tail.attempt != attempt {
                *tail = Tail {
                    attempt,
                    ..Tail::default()
                };
            }
            let Ok(chunk) = api.read_log(&maos_application::LogRequest {
                task: IdRef::from(t.id),
                attempt: Some(attempt),
                offset: tail.offset,
                max: Self::CHUNK,
                wait: Duration::ZERO,
            }) else {
                continue;
            };
            tail.offset = chunk.offset + chunk.bytes.len() as u64;
            tail.partial
                .push_str(&String::from_utf8_lossy(&chunk.bytes));
            if let Some(end) = tail.partial.rfind('\n') {
                if let Some(line) = tail.partial[..end]
                    .lines()
                    .rev()
                    .map(str::trim)
                    .find(|l| !l.is_empty())
                {
                    tail.last = human::clip(line, 60);
                }
                tail.partial.drain(..=end);
            }
            if tail.partial.len() > 4096 {
                tail.partial.clear();
            }
        }
    }

    fn last_line(&self, task: TaskId) -> Option<&str> {
        self.0
            .get(&task)
            .map(|t| t.last.as_str())
            .filter(|l| !l.is_empty())
    }
}

/// What a terminal shows while watching: a row per task with its state in colour, a spinner and
/// the clock of a running attempt, and why the row is as it is (what its agent printed last, why
/// it retries or is blocked); then what waits for a person, with the exact command.
fn live_text(
    o: &Orchestration,
    tasks: &[Task],
    report: Option<&OrchestrationReport>,
    tails: &Tails,
    frame: usize,
    color: bool,
) -> String {
    let now = now_ms();
    let spinner = SPINNER[frame % SPINNER.len()];
    let rows = tasks
        .iter()
        .map(|t| {
            let a = t.current_attempt();
            let running = t.state == TaskState::Running;
            let elapsed = match a.and_then(|a| a.started_at) {
                Some(s) if running => format!(
                    "{spinner} {}",
                    human::duration_ms(u64::try_from(now - s.as_millis()).unwrap_or(0))
                ),
                _ => "-".into(),
            };
            let why = match t.state {
                TaskState::Running => tails.last_line(t.id).unwrap_or("").to_owned(),
                TaskState::AwaitingApproval => "waits for your approval".into(),
                TaskState::Retrying
                | TaskState::Failed
                | TaskState::Blocked
                | TaskState::Cancelled => reasons::task_reason(t)
                    .map(|r| human::clip(r.lines().next().unwrap_or(""), 60))
                    .unwrap_or_default(),
                _ => String::new(),
            };
            let mut row = task_row(t, elapsed, 40);
            row.push(why);
            row
        })
        .collect();
    let table = human::table(
        color,
        &[
            "TASK", "STATE", "AGENT", "ATTEMPT", "ELAPSED", "TOKENS", "COST", "TITLE", "WHY",
        ],
        rows,
    );
    let mut text = format!(
        "{}\n{}",
        heading(o, tasks),
        if color { paint_states(&table) } else { table }
    );
    if let Some(r) = report.filter(|r| !r.needs_a_person.is_empty()) {
        text.push_str(&paint(color, Style::Yellow, "Needs a person:"));
        for n in &r.needs_a_person {
            text.push_str(&format!(
                "\n  {} {}: {}\n      {}",
                n.task.short(),
                escape::line(n.title.as_str()),
                escape::line(&human::clip(&why(n), 100)),
                next_text(n)
            ));
        }
        text.push('\n');
    }
    text.push_str("(watching; Ctrl-C stops watching, not the work)");
    text
}

/// The table with each row's state in its colour: green done, cyan at work, yellow waiting for a
/// person or a retry, red failed or blocked, dim cancelled. (The state column starts where its
/// header does: the columns before it hold ids, plain ASCII.)
fn paint_states(table: &str) -> String {
    let mut lines = table.lines();
    let Some(header) = lines.next() else {
        return table.to_owned();
    };
    let plain_header = strip_colour(header);
    let Some(at) = plain_header.find("STATE") else {
        return table.to_owned();
    };
    let mut out = format!("{header}\n");
    for line in lines {
        let word_end = line[at.min(line.len())..]
            .find(' ')
            .map_or(line.len(), |e| at + e);
        let (before, rest) = line.split_at(at.min(line.len()));
        let (word, after) = rest.split_at(word_end.saturating_sub(at).min(rest.len()));
        let style = match TaskState::parse(word) {
            Ok(TaskState::Completed) => Some(Style::Green),
            Ok(TaskState::Running | TaskState::Assigned | TaskState::Verifying) => {
                Some(Style::Cyan)
            }
            Ok(TaskState::AwaitingApproval | TaskState::Retrying | TaskState::Escalated) => {
                Some(Style::Yellow)
            }
            Ok(TaskState::Failed | TaskState::Blocked) => Some(Style::Red),
            Ok(TaskState::Cancelled) => Some(Style::Dim),
            _ => None,
        };
        match style {
            Some(s) => out.push_str(&format!("{before}{}{after}\n", paint(true, s, word))),
            None => out.push_str(&format!("{line}\n")),
        }
    }
    out
}

/// The orchestration and its tasks, its report once nothing runs, and the newest event they
/// reflect at most. The tasks are read first: the transaction that finishes the last task also
/// ends the orchestration, so an orchestration read afterwards is never older than its tasks
/// (and a finished one is read with its tasks again).
fn snapshot(api: &dyn MaosApi, id: OrchestrationId) -> Result<View, CliError> {
    let mut tasks = tasks_of(api, id)?;
    let mut o = api.get_orchestration(&IdRef::from(id))?;
    if o.status.is_terminal() {
        // It ended after the tasks were read (its end and its last task's are one commit):
        // read them again, so that they show that end.
        tasks = tasks_of(api, id)?;
    }
    // Whether anything can still move matters only once nothing runs (a task that runs moves
    // by itself): asking earlier would cost a report at every redraw, unless a task already
    // waits for a person.
    let quiet = tasks.iter().all(|t| {
        matches!(
            t.state,
            TaskState::Ready
                | TaskState::Pending
                | TaskState::Completed
                | TaskState::Cancelled
                | TaskState::Blocked
                | TaskState::AwaitingApproval
        )
    });
    // A task that waits for a person is shown as it happens, with what to do.
    let waits_for_a_person = tasks
        .iter()
        .any(|t| matches!(t.state, TaskState::Blocked | TaskState::AwaitingApproval));
    let report = if quiet || waits_for_a_person || o.status.is_terminal() {
        let r = api.orchestration_report(&IdRef::from(id))?;
        o = r.orchestration.clone();
        Some(r)
    } else {
        None
    };
    let as_of = api.status()?.last_event;
    Ok((o, tasks, report, as_of))
}

/// An orchestration, its tasks, its report (once nothing runs), and the newest event reflected.
type View = (Orchestration, Vec<Task>, Option<OrchestrationReport>, u64);

/// With `--json`, prints the events of `batch` that are about the orchestration; answers the
/// newest seq seen.
fn stream(
    out: &mut Output,
    batch: &[maos_application::StoredEvent],
    id: OrchestrationId,
    ids: &BTreeSet<TaskId>,
    streamed: u64,
) -> Result<u64, CliError> {
    if out.json() {
        for e in batch {
            if concerns(e, id, ids) {
                out.document(&json::EventJson::line(e))?;
            }
        }
        out.flush()?;
    }
    Ok(batch.last().map_or(streamed, |e| e.seq.max(streamed)))
}

/// True when the event is about the orchestration or one of its tasks.
fn concerns(
    e: &maos_application::StoredEvent,
    id: OrchestrationId,
    tasks: &BTreeSet<TaskId>,
) -> bool {
    match &e.event {
        maos_domain::DomainEvent::Orchestration { id: o, .. } => *o == id,
        maos_domain::DomainEvent::Task { id: t, .. } => tasks.contains(t),
        maos_domain::DomainEvent::Agent { .. } | maos_domain::DomainEvent::Memory { .. } => false,
    }
}

/// `maos orchestrate graph <id> --format mermaid|dot`.
pub(crate) fn graph(
    api: &dyn MaosApi,
    id: &IdRef,
    format: GraphFormat,
    out: &mut Output,
) -> Result<(), CliError> {
    let o = api.get_orchestration(id)?;
    let tasks = tasks_of(api, o.id)?;
    let text = match format {
        GraphFormat::Mermaid => mermaid(&tasks),
        GraphFormat::Dot => dot(&o, &tasks),
    };
    out.print(&Drawn {
        orchestration: o.id,
        format,
        text,
    })
}

/// `maos orchestrate graph`: the graph in Mermaid or dot.
struct Drawn {
    orchestration: OrchestrationId,
    format: GraphFormat,
    text: String,
}

impl Render for Drawn {
    fn document(&self) -> impl Serialize {
        #[derive(Serialize)]
        struct GraphDoc<'a> {
            schema_version: u32,
            orchestration: String,
            format: &'a str,
            graph: &'a str,
        }
        GraphDoc {
            schema_version: json::SCHEMA_VERSION,
            orchestration: self.orchestration.to_string(),
            format: match self.format {
                GraphFormat::Mermaid => "mermaid",
                GraphFormat::Dot => "dot",
            },
            graph: &self.text,
        }
    }

    fn human(&self, out: &mut Output) -> Result<(), CliError> {
        out.text(self.text.trim_end())
    }
}

/// A label safe inside double quotes in Mermaid and dot.
fn label(t: &Task) -> String {
    let title: String = t
        .spec
        .title
        .as_str()
        .chars()
        .map(|c| if c == '"' { '\'' } else { c })
        .collect();
    format!(
        "{}<br/>{} ({})",
        escape::line(&human::clip(&title, 40)),
        t.id.short(),
        t.state
    )
}

fn mermaid(tasks: &[Task]) -> String {
    let mut s = String::from("flowchart LR\n");
    for t in tasks {
        s.push_str(&format!("  t{}[\"{}\"]\n", t.id.short(), label(t)));
    }
    for t in tasks {
        for d in &t.spec.depends_on {
            s.push_str(&format!("  t{} --> t{}\n", d.short(), t.id.short()));
        }
    }
    for t in tasks {
        let class = match t.state {
            TaskState::Completed => "done",
            TaskState::Blocked | TaskState::Cancelled => "stopped",
            TaskState::AwaitingApproval => "waiting",
            _ => continue,
        };
        s.push_str(&format!("  class t{} {class}\n", t.id.short()));
    }
    s.push_str(
        "  classDef done fill:#d4f7d4\n  classDef stopped fill:#f7d4d4\n  classDef waiting fill:#f7f0d4\n",
    );
    s
}

fn dot(o: &Orchestration, tasks: &[Task]) -> String {
    let mut s = format!(
        "digraph \"{}\" {{\n  rankdir=LR;\n  node [shape=box];\n",
        o.id.short()
    );
    for t in tasks {
        let color = match t.state {
            TaskState::Completed => "palegreen",
            TaskState::Blocked | TaskState::Cancelled => "lightpink",
            TaskState::AwaitingApproval => "lightyellow",
            _ => "white",
        };
        s.push_str(&format!(
            "  t{} [label=\"{}\", style=filled, fillcolor={color}];\n",
            t.id.short(),
            label(t).replace("<br/>", "\\n")
        ));
    }
    for t in tasks {
        for d in &t.spec.depends_on {
            s.push_str(&format!("  t{} -> t{};\n", d.short(), t.id.short()));
        }
    }
    s.push_str("}\n");
    s
}

/// `maos orchestrate …`.
pub(super) fn execute(
    cmd: OrchestrateCommand,
    api: &dyn MaosApi,
    dir: &std::path::Path,
    out: &mut Output,
) -> Result<(), CliError> {
    match cmd {
        OrchestrateCommand::Create {
            name,
            goal,
            repo,
            no_repo,
            base,
            verify,
            notes,
        } => {
            let workspace =
                super::chosen_workspace(repo.as_deref(), no_repo, base.as_deref(), out)?;
            let o = api.create_orchestration(maos_application::CreateOrchestration {
                name,
                goal,
                workspace,
                verify,
                notes,
            })?;
            out.print(&Changed(o, Change::Created))
        }
        OrchestrateCommand::Merge { id, into } => {
            out.print(&Merged(api.merge_orchestration(&id, into)?))
        }
        OrchestrateCommand::Run(args) => run::run(args, dir, api, out),
        OrchestrateCommand::Start { id } => {
            out.print(&Changed(api.start_orchestration(&id)?, Change::Started))
        }
        OrchestrateCommand::Pause { id, now } => {
            let o = api.pause_orchestration(&id, now)?;
            out.print(&Changed(o, Change::Paused { now }))
        }
        OrchestrateCommand::Resume { id } => {
            out.print(&Changed(api.resume_orchestration(&id)?, Change::Resumed))
        }
        OrchestrateCommand::Cancel { id, reason } => {
            let o = api.cancel_orchestration(&id, reason)?;
            out.print(&Changed(o, Change::Cancelled))
        }
        OrchestrateCommand::Status { id, watch } => status(api, &id, watch, out),
        OrchestrateCommand::Graph { id, format } => graph(api, &id, format, out),
        OrchestrateCommand::List => out.print(&Listed(api.list_orchestrations()?)),
        OrchestrateCommand::Show { id } => out.print(&Shown(api.get_orchestration(&id)?)),
    }
}

/// What a command did to an orchestration.
#[derive(Debug, Clone, Copy)]
enum Change {
    Created,
    Started,
    Paused { now: bool },
    Resumed,
    Cancelled,
}

/// An orchestration as a command changed it: its document, or a sentence saying what happened.
struct Changed(Orchestration, Change);

impl Render for Changed {
    fn document(&self) -> impl Serialize {
        json::OrchestrationDoc::new(&self.0)
    }

    fn human(&self, out: &mut Output) -> Result<(), CliError> {
        let o = &self.0;
        let what = match self.1 {
            Change::Created => {
                return out.text(&format!(
                    "created orchestration {} ({}): {}",
                    o.id.short(),
                    o.status,
                    escape::line(o.name.as_str())
                ));
            }
            Change::Started => "started: its ready tasks get agents",
            Change::Paused { now: true } => {
                "paused: its running attempts were stopped and their tasks wait to run again"
            }
            Change::Paused { now: false } => "paused: no new assignments; running attempts finish",
            Change::Resumed => "resumed",
            Change::Cancelled => "cancelled, with every task of it that had not finished",
        };
        out.text(&format!(
            "orchestration {} {what} ({})",
            o.id.short(),
            o.status
        ))
    }
}

/// `orchestrate merge`: the integration branch merged, or already contained.
struct Merged(maos_application::MergeReport);

impl Render for Merged {
    fn document(&self) -> impl Serialize {
        json::MergeDoc::new(&self.0)
    }

    fn human(&self, out: &mut Output) -> Result<(), CliError> {
        let report = &self.0;
        if report.merged {
            out.text(&format!(
                "merged {} into {} (commit {})",
                report.branch,
                report.into,
                short_commit(&report.commit)
            ))
        } else {
            out.text(&format!(
                "{} already contains {}: nothing to merge",
                report.into, report.branch
            ))
        }
    }
}

/// `orchestrate list`: a table, or a note that there is none.
struct Listed(Vec<Orchestration>);

impl Render for Listed {
    fn document(&self) -> impl Serialize {
        json::OrchestrationListDoc::new(&self.0)
    }

    fn human(&self, out: &mut Output) -> Result<(), CliError> {
        if self.0.is_empty() {
            out.note(
                "no orchestrations yet; run a plan with `maos orchestrate run` \
                 (docs/orchestrations.md)",
            );
            return Ok(());
        }
        let text = human::orchestration_table(out.color(), &self.0);
        out.text(&text)
    }
}

/// `orchestrate show`: the orchestration in detail, and how to list its tasks.
struct Shown(Orchestration);

impl Render for Shown {
    fn document(&self) -> impl Serialize {
        json::OrchestrationDoc::new(&self.0)
    }

    fn human(&self, out: &mut Output) -> Result<(), CliError> {
        let o = &self.0;
        let text = human::orchestration_details(out.color(), o);
        out.text(&text)?;
        out.note(&format!(
            "its tasks: maos task list --orchestration {}",
            o.id.short()
        ));
        Ok(())
    }
}

fn short_commit(commit: &str) -> &str {
    commit.get(..12).unwrap_or(commit)
}

#[cfg(test)]
mod tests {
    use maos_application::{
        AssignTask, CreateOrchestration, CreatePlan, CreateTask, PlanTask, RegisterAgent,
    };
    use maos_domain::policy::concerns::Concern;
    use maos_domain::{AdapterKind, AgentName, CapabilitySet, Risk, RunReport, Slots, Tier, Title};

    use super::*;

    /// An in-process service over a real database in a temporary directory, with an external
    /// agent offering `rust` (so that nothing runs unless a test assigns it).
    fn api() -> (tempfile::TempDir, std::sync::Arc<dyn MaosApi>) {
        let dir = tempfile::tempdir().unwrap();
        let api = crate::compose::in_process(dir.path()).unwrap();
        api.register_agent(RegisterAgent {
            name: AgentName::parse("w").unwrap(),
            adapter: AdapterKind::External,
            capabilities: CapabilitySet::parse(["rust"]).unwrap(),
            tier: Tier::Tactical,
            slots: Slots::new(4).unwrap(),
            command: None,
            settings: Default::default(),
        })
        .unwrap();
        (dir, api)
    }

    fn titled(title: &str) -> CreateTask {
        CreateTask {
            capabilities: CapabilitySet::parse(["rust"]).unwrap(),
            ..CreateTask::titled(Title::parse(title).unwrap())
        }
    }

    fn run(api: &dyn MaosApi, id: TaskId) -> maos_application::Assignment {
        let a = api
            .assign_task(AssignTask {
                task: id.into(),
                agent: None,
            })
            .unwrap();
        api.start_attempt(id, a.fencing, Default::default())
            .unwrap();
        a
    }

    #[test]
    fn the_summary_words_next_steps_for_people_with_short_ids() {
        let task = TaskId::from_bits(7);
        let s = task.short();
        let person = |state, next_steps| NeedsPerson {
            task,
            title: Title::parse("T").unwrap(),
            state,
            waits: Vec::new(),
            blocked: None,
            next_steps,
        };
        let approval = person(
            TaskState::AwaitingApproval,
            vec![NextStep::Approve { task }, NextStep::Reject { task }],
        );
        assert_eq!(
            next_text(&approval),
            format!("maos approve {s}  (or maos reject {s} --reason \"…\")")
        );
        let blocked = person(
            TaskState::Blocked,
            vec![NextStep::Retry { task }, NextStep::Cancel { task }],
        );
        assert_eq!(
            next_text(&blocked),
            format!("maos task retry {s}  (or maos task cancel {s})")
        );
        let dead_end = person(TaskState::Blocked, vec![NextStep::Cancel { task }]);
        assert_eq!(
            next_text(&dead_end),
            format!("maos task cancel {s}  (it cannot run as it is)")
        );
        // A ready task's steps are in `task show`.
        let ready = person(TaskState::Ready, vec![NextStep::RegisterAgent]);
        assert_eq!(
            next_text(&ready),
            format!("maos task show {s}  (or maos task cancel {s})")
        );
        // JSON: full ids, as commands and as data.
        let o = OrchestrationId::from_bits(9);
        let dead_end = NeedsPerson {
            waits: vec![WaitReason::Blocked {
                reason: None,
                words: Some("w".into()),
                cancelled_dependency: None,
                budget_spent: true,
            }],
            ..dead_end
        };
        let summary = OrchestrationReport {
            orchestration: Orchestration::create(
                o,
                maos_domain::OrchestrationSpec {
                    name: Title::parse("O").unwrap(),
                    goal: None,
                    workspace: None,
                    verify: None,
                    notes: Vec::new(),
                    planned: false,
                },
                maos_domain::Timestamp::from_millis(0),
            )
            .0,
            by_state: BTreeMap::from([(TaskState::Blocked, 1), (TaskState::Ready, 0)]),
            tasks: 1,
            completed: 0,
            attempts: 0,
            wall_ms: 0,
            input_tokens: 0,
            output_tokens: 0,
            cost: maos_domain::Usd::ZERO,
            planning: maos_domain::Usage::default(),
            integration_branch: None,
            needs_a_person: vec![dead_end],
            can_move: false,
        };
        let doc = serde_json::to_value(json::SummaryJson::from(&summary)).unwrap();
        assert_eq!(doc["orchestration"], o.to_string());
        // The states its tasks are in, not every state.
        assert_eq!(doc["by_state"], serde_json::json!({"blocked": 1}));
        let full = task.to_string();
        assert_eq!(
            doc["needs_a_person"][0],
            serde_json::json!({
                "task": full,
                "title": "T",
                "state": "blocked",
                "why": "w",
                "next": [{
                    "description": "cancel it",
                    "command": ["maos", "task", "cancel", full],
                    "step": {"action": "cancel", "task": full}
                }]
            })
        );
    }

    #[test]
    fn a_ready_task_behind_a_concern_of_a_task_awaiting_approval_is_at_rest() {
        let (_dir, api) = api();
        let plan = CreatePlan {
            orchestration: CreateOrchestration {
                name: Title::parse("Plan").unwrap(),
                goal: None,
                workspace: None,
                verify: None,
                notes: Vec::new(),
            },
            tasks: vec![
                PlanTask {
                    key: "h".into(),
                    task: CreateTask {
                        risk: Risk::Medium,
                        concerns: vec![Concern::parse("src/**").unwrap()],
                        ..titled("Holder")
                    },
                    depends_on: vec![],
                },
                PlanTask {
                    key: "r".into(),
                    task: CreateTask {
                        concerns: vec![Concern::parse("src/a.rs").unwrap()],
                        ..titled("Rival")
                    },
                    depends_on: vec![],
                },
            ],
            start: true,
        };
        let made = api.create_plan(plan).unwrap();
        let h = made.tasks[0].1.id;
        let a = run(api.as_ref(), h);
        let t = api
            .complete_attempt(h, a.fencing, Some("done".into()), RunReport::default())
            .unwrap();
        assert_eq!(t.state, TaskState::AwaitingApproval);
        let (_, _, report, _) = snapshot(api.as_ref(), made.orchestration.id).unwrap();
        let report = report.expect("nothing runs: the report is read");
        assert!(
            !report.can_move,
            "only a person's approval moves it: {report:?}"
        );
    }

    #[test]
    fn a_pending_task_whose_other_dependency_still_runs_is_not_at_rest() {
        let (_dir, api) = api();
        // A task of no orchestration, running.
        let x = api.create_task(titled("Outside")).unwrap().task;
        run(api.as_ref(), x.id);
        let o = api
            .create_orchestration(CreateOrchestration {
                name: Title::parse("Open").unwrap(),
                goal: None,
                workspace: None,
                verify: None,
                notes: Vec::new(),
            })
            .unwrap();
        let oref: IdRef = o.id.into();
        let a = api
            .create_task(CreateTask {
                orchestration: Some(oref.clone()),
                ..titled("A")
            })
            .unwrap()
            .task;
        api.create_task(CreateTask {
            orchestration: Some(oref.clone()),
            depends_on: vec![a.id.into(), x.id.into()],
            ..titled("B")
        })
        .unwrap();
        api.start_orchestration(&oref).unwrap();
        let att = run(api.as_ref(), a.id);
        api.complete_attempt(a.id, att.fencing, Some("done".into()), RunReport::default())
            .unwrap();
        let (_, _, report, _) = snapshot(api.as_ref(), o.id).unwrap();
        let report = report.expect("nothing of it runs: the report is read");
        assert!(
            report.can_move,
            "B runs as soon as the outside task completes"
        );
    }
}
