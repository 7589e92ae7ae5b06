//! Text for people: plain tables without borders (comfy-table), `key: value` detail views and
//! one line per event. Ids are shown short; the output is stable enough to snapshot.

use comfy_table::{ContentArrangement, Table, presets};
use maos_application::{MemoryHit, StatusReport, StoredEvent};
use maos_domain::{
    Agent, AgentStatus, CapabilitySet, DomainEvent, Memory, Orchestration, Task, TaskState,
};
use maos_domain::{TaskId, Timestamp};

use crate::escape;
use crate::output::{Style, paint};

/// A borderless table with a header; `color` makes the header bold.
pub(crate) fn table(color: bool, header: &[&str], rows: Vec<Vec<String>>) -> String {
    render(color, Some(header), rows)
}

/// A borderless table without a header.
pub(crate) fn rows(rows: Vec<Vec<String>>) -> String {
    render(false, None, rows)
}

fn render(color: bool, header: Option<&[&str]>, rows: Vec<Vec<String>>) -> String {
    let mut t = Table::new();
    t.load_preset(presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Disabled);
    if let Some(header) = header {
        t.set_header(header.to_vec());
    }
    // Every cell is one line of text: free text in it is escaped here (escape.rs).
    for row in rows {
        t.add_row(row.iter().map(|cell| escape::line(cell).into_owned()));
    }
    for column in t.column_iter_mut() {
        column.set_padding((0, 2));
    }
    let mut lines = t.lines().map(|l| l.trim_end().to_owned());
    let mut out = String::new();
    if let Some(head) = header.and_then(|_| lines.next()) {
        out.push_str(&paint(color, Style::Bold, &head));
        out.push('\n');
    }
    for line in lines {
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// `key: value` lines with the values aligned.
pub(crate) fn details(color: bool, pairs: &[(&str, String)]) -> String {
    let width = pairs.iter().map(|(k, _)| k.len()).max().unwrap_or(0) + 1;
    let mut out = String::new();
    for (k, v) in pairs {
        let key = format!("{k}:");
        out.push_str(&paint(color, Style::Bold, &format!("{key:<width$}")));
        out.push_str("  ");
        out.push_str(&escape::line(v));
        out.push('\n');
    }
    out
}

fn or_dash(s: Option<String>) -> String {
    s.filter(|s| !s.is_empty()).unwrap_or_else(|| "-".into())
}

fn caps(c: &CapabilitySet) -> String {
    if c.is_empty() {
        "-".into()
    } else {
        c.to_string()
    }
}

pub(crate) use maos_application::text::{clip, short_duration as duration_ms};

// ---- agents ----

pub(crate) fn agent_table(color: bool, agents: &[Agent]) -> String {
    let rows = agents
        .iter()
        .map(|a| {
            vec![
                a.name.to_string(),
                a.adapter.to_string(),
                a.tier.to_string(),
                a.status.to_string(),
                format!("{}/{}", a.active, a.slots),
                caps(&a.capabilities),
            ]
        })
        .collect();
    table(
        color,
        &["NAME", "ADAPTER", "TIER", "STATUS", "SLOTS", "CAPABILITIES"],
        rows,
    )
}

pub(crate) fn agent_details(color: bool, a: &Agent) -> String {
    details(
        color,
        &[
            ("name", a.name.to_string()),
            ("id", a.id.to_string()),
            ("adapter", a.adapter.to_string()),
            ("tier", a.tier.to_string()),
            ("status", a.status.to_string()),
            ("slots", format!("{} in use of {}", a.active, a.slots)),
            ("capabilities", caps(&a.capabilities)),
            ("command", or_dash(a.command.clone())),
            (
                "failures",
                if a.failures_in_row == 0 {
                    "-".into()
                } else {
                    format!("{} in a row", a.failures_in_row)
                },
            ),
            (
                "drained",
                match (&a.drained_because, a.status) {
                    (Some(why), maos_domain::AgentStatus::Draining) => format!(
                        "{why} (`{}` takes it back)",
                        crate::reasons::command_line(&maos_domain::NextStep::ResumeAgent {
                            agent: a.name.clone()
                        })
                    ),
                    _ => or_dash(a.drained_because.clone()),
                },
            ),
            ("registered", a.registered_at.to_rfc3339()),
            ("updated", a.updated_at.to_rfc3339()),
        ],
    )
}

// ---- tasks ----

fn short_ids<'a>(ids: impl Iterator<Item = &'a maos_domain::TaskId>) -> String {
    let v: Vec<String> = ids.map(|id| id.short()).collect();
    if v.is_empty() {
        "-".into()
    } else {
        v.join(",")
    }
}

pub(crate) fn task_table(color: bool, tasks: &[Task]) -> String {
    let rows = tasks
        .iter()
        .map(|t| {
            vec![
                t.id.short(),
                t.state.to_string(),
                t.spec.priority.to_string(),
                caps(&t.spec.capabilities),
                or_dash(t.current_attempt().map(|a| a.agent.to_string())),
                short_ids(t.spec.depends_on.iter()),
                t.spec.title.to_string(),
            ]
        })
        .collect();
    table(
        color,
        &[
            "ID",
            "STATE",
            "PRIORITY",
            "CAPABILITIES",
            "AGENT",
            "DEPENDS ON",
            "TITLE",
        ],
        rows,
    )
}

pub(crate) fn task_details(color: bool, t: &Task) -> String {
    let s = &t.spec;
    let mut pairs = vec![
        ("id", t.id.to_string()),
        ("title", s.title.to_string()),
        ("state", t.state.to_string()),
    ];
    if let Some(reason) = crate::reasons::task_reason(t) {
        pairs.push(("reason", reason));
    }
    pairs.extend([
        ("priority", s.priority.to_string()),
        ("risk", s.risk.to_string()),
        (
            "tier",
            s.tier.map_or_else(|| "any".into(), |x| x.to_string()),
        ),
        ("capabilities", caps(&s.capabilities)),
    ]);
    if let Some(agent) = &s.agent {
        pairs.push(("agent", format!("{agent} only")));
    }
    pairs.extend([
        ("depends on", short_ids(s.depends_on.iter())),
        ("orchestration", or_dash(s.orchestration.map(|o| o.short()))),
        (
            "attempts",
            format!("{} of {}", t.attempts_used(), t.attempts_allowed()),
        ),
        ("timeout", or_dash(s.timeout.map(|d| d.to_string()))),
    ]);
    if let Some(key) = &s.idempotency_key {
        pairs.push(("idempotency key", key.to_string()));
    }
    if let Some(ws) = &t.workspace {
        pairs.push((
            "worktree",
            format!(
                "{} on {}{}",
                ws.path,
                ws.branch,
                if ws.removed { " (removed)" } else { "" }
            ),
        ));
    } else if let Some(spec) = &s.workspace {
        pairs.push(("repository", spec.repo.clone()));
    }
    if let Some(v) = &s.verify {
        pairs.push(("verify", v.clone()));
    }
    if !s.concerns.is_empty() {
        let list: Vec<String> = s.concerns.iter().map(ToString::to_string).collect();
        pairs.push(("concerns", list.join(" ")));
    }
    if let Some(due) = t.retry_at {
        pairs.push(("retry at", due.to_rfc3339()));
    }
    if let Some(p) = &t.pending {
        pairs.push((
            "waiting for",
            match (p.gate, &p.tool) {
                (maos_domain::Gate::Tool, Some(tool)) => format!(
                    "a person to allow {tool}{}",
                    p.subject
                        .as_deref()
                        .map(|s| format!("({s})"))
                        .unwrap_or_default()
                ),
                (maos_domain::Gate::Run, _) => "a person's approval to run (high risk)".into(),
                _ => "a person to accept its work".into(),
            },
        ));
    }
    let usage = t.usage();
    if let Some(budget) = s.budget {
        pairs.push(("budget", format!("${} (${} spent)", budget, usage.cost)));
    } else if usage.cost > maos_domain::Usd::ZERO {
        pairs.push(("spent", format!("${}", usage.cost)));
    }
    if usage.total_tokens() > 0 {
        pairs.push(("tokens", tokens(&usage)));
    }
    pairs.extend([
        ("created", t.created_at.to_rfc3339()),
        ("updated", t.updated_at.to_rfc3339()),
    ]);
    let mut out = details(color, &pairs);
    if !s.prompt.trim().is_empty() {
        out.push('\n');
        out.push_str(&paint(color, Style::Bold, "prompt:"));
        out.push('\n');
        for line in s.prompt.trim_end().lines() {
            out.push_str("  ");
            out.push_str(&escape::block(line));
            out.push('\n');
        }
    }
    if !t.attempts.is_empty() {
        let rows = t
            .attempts
            .iter()
            .map(|a| {
                let exit = match a.exit {
                    Some(maos_domain::Exit::Code(c)) => c.to_string(),
                    Some(maos_domain::Exit::Signal(s)) => format!("sig {s}"),
                    None => "-".into(),
                };
                let outcome = a.summary.clone().or_else(|| a.error.clone()).map(|s| {
                    let text = clip(&s, 60);
                    match a.failure {
                        Some(f) => format!("{f}: {text}"),
                        None => text,
                    }
                });
                vec![
                    a.number.to_string(),
                    a.agent.to_string(),
                    a.status.to_string(),
                    a.fencing.to_string(),
                    exit,
                    or_dash(a.duration_ms().map(duration_ms)),
                    if a.usage.total_tokens() == 0 {
                        "-".into()
                    } else {
                        thousands(a.usage.total_tokens())
                    },
                    if a.usage.cost == maos_domain::Usd::ZERO {
                        "-".into()
                    } else {
                        format!("${}", a.usage.cost)
                    },
                    or_dash(outcome),
                ]
            })
            .collect();
        out.push('\n');
        out.push_str(&table(
            color,
            &[
                "ATTEMPT", "AGENT", "STATUS", "FENCING", "EXIT", "DURATION", "TOKENS", "COST",
                "OUTCOME",
            ],
            rows,
        ));
        // A task whose tool calls were denied may not have done its work: say so.
        for a in t
            .attempts
            .iter()
            .filter(|a| !a.permission_denials.is_empty())
        {
            let n = a.permission_denials.len();
            let calls: Vec<String> = a
                .permission_denials
                .iter()
                .map(|d| escape::line(&clip(d, 60)).into_owned())
                .collect();
            out.push_str(&format!(
                "\nattempt {}: the agent was refused {n} tool call{}: {}",
                a.number,
                if n == 1 { "" } else { "s" },
                calls.join(", ")
            ));
        }
    }
    out
}

// ---- approvals ----

/// `maos approvals`: what waits for a person.
pub(crate) fn approvals_table(color: bool, rows: &[crate::json::ApprovalJson]) -> String {
    let rows = rows
        .iter()
        .map(|a| {
            let short: String = a.task.chars().take(8).collect();
            let what = match (a.gate, &a.tool) {
                ("tool", Some(tool)) => format!(
                    "tool {tool}{}",
                    a.subject
                        .as_deref()
                        .map(|s| format!("({})", clip(s, 40)))
                        .unwrap_or_default()
                ),
                ("run", _) => "run (high risk)".into(),
                _ => format!("result ({} risk)", a.risk),
            };
            vec![
                short,
                what,
                age(a.age_ms),
                a.changes.clone().unwrap_or_else(|| "-".into()),
                clip(&a.title, 50),
            ]
        })
        .collect();
    table(
        color,
        &["TASK", "WAITING FOR", "AGE", "CHANGES", "TITLE"],
        rows,
    )
}

/// `45s`, `12m`, `3h`, `2d`.
fn age(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86_400 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}

/// What a task waits for, under `task show`.
pub(crate) fn waiting(color: bool, task: TaskId, list: &[maos_application::WaitReason]) -> String {
    let heading = paint(color, Style::Bold, "it waits for");
    let mut s = format!("{heading}:");
    for w in list {
        s.push_str(&format!(
            "\n  - {} ({})",
            escape::line(&crate::reasons::waiting(w, task)),
            w.kind().as_str()
        ));
    }
    s
}

// ---- orchestrations ----

pub(crate) fn orchestration_table(color: bool, list: &[Orchestration]) -> String {
    let rows = list
        .iter()
        .map(|o| {
            vec![
                o.id.short(),
                o.status.to_string(),
                o.name.to_string(),
                or_dash(o.goal.as_deref().map(|g| clip(g, 60))),
            ]
        })
        .collect();
    table(color, &["ID", "STATUS", "NAME", "GOAL"], rows)
}

pub(crate) fn orchestration_details(color: bool, o: &Orchestration) -> String {
    details(
        color,
        &[
            ("id", o.id.to_string()),
            ("name", o.name.to_string()),
            ("status", o.status.to_string()),
            ("goal", or_dash(o.goal.clone())),
            (
                "repository",
                or_dash(o.workspace.as_ref().map(|w| match &w.base {
                    Some(b) => format!("{} (from {b})", w.repo),
                    None => w.repo.clone(),
                })),
            ),
            (
                "integration",
                or_dash(o.workspace.as_ref().map(|_| o.integration_branch())),
            ),
            ("verify", or_dash(o.verify.clone())),
            ("created", o.created_at.to_rfc3339()),
            ("updated", o.updated_at.to_rfc3339()),
        ],
    )
}

// ---- status ----

pub(crate) fn status(r: &StatusReport) -> String {
    let tasks: u64 = r.tasks.values().sum();
    let agents: u64 = r.agents.values().sum();
    let mut rows = vec![vec!["tasks".to_owned(), tasks.to_string()]];
    rows.extend(
        TaskState::ALL
            .iter()
            .filter_map(|s| r.tasks.get(s).filter(|n| **n > 0).map(|n| (s, n)))
            .map(|(s, n)| vec![format!("  {s}"), n.to_string()]),
    );
    rows.push(vec!["agents".to_owned(), agents.to_string()]);
    rows.extend(
        AgentStatus::ALL
            .iter()
            .filter_map(|s| r.agents.get(s).filter(|n| **n > 0).map(|n| (s, n)))
            .map(|(s, n)| vec![format!("  {s}"), n.to_string()]),
    );
    rows.push(vec![
        "orchestrations".to_owned(),
        r.orchestrations.to_string(),
    ]);
    rows.push(vec!["last event".to_owned(), r.last_event.to_string()]);
    rows.push(vec!["tokens".to_owned(), tokens(&r.usage)]);
    rows.push(vec!["cost".to_owned(), format!("${}", r.usage.cost)]);
    self::rows(rows)
}

/// `12,345 (10,000 in, 2,345 out)`, or `0`.
pub(crate) fn tokens(u: &maos_domain::Usage) -> String {
    if u.total_tokens() == 0 {
        return "0".into();
    }
    format!(
        "{} ({} in, {} out)",
        thousands(u.total_tokens()),
        thousands(u.input_tokens),
        thousands(u.output_tokens)
    )
}

pub(crate) fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

// ---- events ----

/// `seq  time  kind  aggregate  details`.
pub(crate) fn event_line(e: &StoredEvent) -> String {
    let aggregate = match &e.event {
        DomainEvent::Agent { id, .. } => id.short(),
        DomainEvent::Task { id, .. } => id.short(),
        DomainEvent::Orchestration { id, .. } => id.short(),
        DomainEvent::Memory { id, .. } => id.short(),
    };
    let line = format!(
        "{:>4}  {}  {:<24}  {}  {}",
        e.seq,
        e.at.to_rfc3339(),
        e.event.kind(),
        aggregate,
        maos_application::text::event_summary(&e.event, &|r| crate::reasons::block(r, None))
    );
    // Events carry free text (titles, reasons, agents' errors): one escaped line each.
    escape::line(line.trim_end()).into_owned()
}

/// `daemon status`.
pub(crate) fn daemon(info: &maos_ipc::DaemonInfo, counts: &StatusReport) -> String {
    let secs = info.uptime.as_secs();
    let uptime = format!("{}h{:02}m{:02}s", secs / 3600, (secs / 60) % 60, secs % 60);
    let mut text = details(
        false,
        &[
            ("pid", info.pid.to_string()),
            ("socket", info.socket.display().to_string()),
            (
                "version",
                format!("{} (protocol {})", info.version, info.protocol),
            ),
            ("uptime", uptime),
            ("started", info.started_at.to_rfc3339()),
            ("database", info.database.display().to_string()),
            ("containment", containment(info)),
            (
                "dashboard",
                match &info.ui {
                    Some(url) => format!("{url} (`maos ui` prints the address with its token)"),
                    None => "not served (`maos ui` serves it)".to_owned(),
                },
            ),
        ],
    );
    text.push('\n');
    text.push_str(&status(counts));
    text
}

/// How the daemon contains agents' processes, for people.
fn containment(info: &maos_ipc::DaemonInfo) -> String {
    match (info.containment.as_str(), &info.containment_root) {
        ("cgroup", Some(root)) => format!("a cgroup v2 per attempt, under {}", root.display()),
        ("cgroup", None) => "a cgroup v2 per attempt".to_owned(),
        ("process_tree", _) => {
            "the process tree (the daemon is the child subreaper; no cgroup could be made)"
                .to_owned()
        }
        _ => "not reported by this daemon".to_owned(),
    }
}

// ---- memory ----

fn pin_mark(pinned: bool) -> String {
    if pinned { "yes".into() } else { "-".into() }
}

/// `memory list`: one line per entry; with `all`, its state too.
pub(crate) fn memory_table(color: bool, memories: &[Memory], all: bool) -> String {
    let rows = memories
        .iter()
        .map(|m| {
            let mut row = vec![
                m.id.short(),
                m.tier.to_string(),
                clip(&m.scope.to_string(), 40),
                pin_mark(m.pinned),
            ];
            if all {
                row.push(m.state.to_string());
            }
            row.push(clip(m.text.first_line(), 60));
            row
        })
        .collect();
    if all {
        table(
            color,
            &["ID", "TIER", "SCOPE", "PINNED", "STATE", "TEXT"],
            rows,
        )
    } else {
        table(color, &["ID", "TIER", "SCOPE", "PINNED", "TEXT"], rows)
    }
}

/// `memory search`: the hits, best first, with their scores.
pub(crate) fn memory_hits(color: bool, hits: &[MemoryHit]) -> String {
    let rows = hits
        .iter()
        .map(|h| {
            let m = &h.memory;
            vec![
                m.id.short(),
                format!("{:.2}", h.score),
                m.tier.to_string(),
                clip(&m.scope.to_string(), 40),
                pin_mark(m.pinned),
                clip(m.text.first_line(), 60),
            ]
        })
        .collect();
    table(
        color,
        &["ID", "SCORE", "TIER", "SCOPE", "PINNED", "TEXT"],
        rows,
    )
}

/// `memory show`: the entry's fields, then its text (escaped, line by line). `now` tells an
/// ephemeral entry whose time is up (left out of lists already) from one that still counts.
pub(crate) fn memory_details(color: bool, m: &Memory, now: Timestamp) -> String {
    let mut pairs = vec![
        ("id", m.id.to_string()),
        ("tier", m.tier.to_string()),
        ("scope", m.scope.to_string()),
        ("state", m.state.to_string()),
        ("pinned", if m.pinned { "yes" } else { "no" }.to_owned()),
        (
            "tags",
            if m.tags.is_empty() {
                "-".to_owned()
            } else {
                m.tags.to_string()
            },
        ),
        ("written by", m.provenance.to_string()),
        ("created", m.created_at.to_rfc3339()),
        ("updated", m.updated_at.to_rfc3339()),
    ];
    if let Some(at) = m.expires_at {
        let when = if m.pinned {
            format!("{} (not while pinned)", at.to_rfc3339())
        } else if m.is_due(now) {
            format!(
                "{} (its time is up: it is left out of lists and searches)",
                at.to_rfc3339()
            )
        } else {
            at.to_rfc3339()
        };
        pairs.push(("expires", when));
    }
    if let Some(reason) = &m.forgotten_because {
        pairs.push(("forgotten because", reason.clone()));
    }
    let mut out = details(color, &pairs);
    out.push('\n');
    out.push_str(&escape::block(m.text.as_str()));
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_plain_and_trimmed() {
        let t = table(
            false,
            &["A", "LONGER"],
            vec![
                vec!["x".into(), "y".into()],
                vec!["wide cell".into(), String::new()],
            ],
        );
        assert_eq!(t, "A          LONGER\nx          y\nwide cell\n");
    }

    #[test]
    fn clipping_marks_the_cut() {
        assert_eq!(clip("abcdef", 4), "abc…");
        assert_eq!(clip("abc", 4), "abc");
    }
}
