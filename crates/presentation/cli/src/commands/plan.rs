//! `maos plan "<goal>" | show | edit | regenerate | diff | approve | reject | brief | schema`:
//! a planner agent turns a goal into a plan, MAOS checks it (problems go back to the planner),
//! and the person reviews the versions, edits, asks for another, approves or rejects.

use std::path::Path;
use std::time::Duration;

use maos_application::{
    AgentFilter, CreateOrchestration, CreatePlan, IdRef, MaosApi, PlanGoal, PlanHistory,
    PlanReader, PlanRecord, PlanTask,
};
use maos_domain::orchestration::PlanApprover;
use maos_domain::{
    CapabilitySet, DomainEvent, MaxAttempts, OrchestrationEvent, OrchestrationId, Plan, PlanDiff,
    PlanOrigin, PlanVersion, TaskEvent, TaskId,
};
use maos_plans::PlanFiles;
use serde::Serialize;

use crate::cli::{NewPlanArgs, PlanArgs, PlanCommand};
use crate::commands::chosen_workspace;
use crate::error::{CliError, FailureClass};
use crate::escape;
use crate::input::{FileKind, read_text};
use crate::json::{self, OrchestrationJson, SCHEMA_VERSION};
use crate::live::TICK;
use crate::output::{Output, Render};

/// `maos plan schema`: needs nothing but the plan format.
pub(crate) fn schema(out: &mut Output) -> Result<(), CliError> {
    out.text(PlanFiles.schema().trim_end())
}

/// `maos plan …` on the API.
pub(crate) fn execute(
    args: PlanArgs,
    api: &dyn MaosApi,
    in_process: bool,
    out: &mut Output,
) -> Result<(), CliError> {
    match args.command {
        None => new_plan(args.new, api, in_process, out),
        Some(PlanCommand::Schema) => schema(out),
        Some(PlanCommand::Show {
            id,
            version,
            versions,
        }) => {
            let history = api.plan_history(&id)?;
            out.print(&Shown::new(history, version, versions)?)
        }
        Some(PlanCommand::Edit { id, file }) => edit(&id, file.as_deref(), api, out),
        Some(PlanCommand::Regenerate {
            id,
            feedback,
            no_wait,
        }) => {
            let since = api.status()?.last_event;
            let started = api.regenerate_plan(&id, feedback)?;
            if no_wait || in_process {
                return started_only(started, in_process, out);
            }
            let o = started.orchestration.id;
            wait_and_show(api, o, started.task.id, since, None, out)
        }
        Some(PlanCommand::Diff { id, from, to }) => {
            let history = api.plan_history(&id)?;
            out.print(&Diffed::new(&history, from, to)?)
        }
        Some(PlanCommand::Approve { id, version, watch }) => {
            let since = if watch {
                Some(api.status()?.last_event)
            } else {
                None
            };
            let made = api.approve_plan(&id, version)?;
            if watch {
                if !out.json() {
                    out.text(&format!(
                        "orchestration {} approved and started with {} task(s)",
                        made.orchestration.id.short(),
                        made.tasks.len()
                    ))?;
                }
                return super::orchestrate::watch(api, made.orchestration.id, since, out);
            }
            out.print(&super::orchestrate::Started(made))
        }
        Some(PlanCommand::Reject { id, reason }) => {
            let o = api.reject_plan(&id, reason)?;
            out.print(&Rejected(o))
        }
        Some(PlanCommand::Brief { id, version }) => brief(&id, version, api, out),
        Some(PlanCommand::Revise {
            id,
            feedback,
            no_wait,
        }) => {
            let since = api.status()?.last_event;
            let started = api.revise_plan(&id, feedback)?;
            if no_wait || in_process {
                return started_only(started, in_process, out);
            }
            let o = started.orchestration.id;
            wait_and_show(api, o, started.task.id, since, None, out)
        }
    }
}

/// `maos plan "<goal>"`.
fn new_plan(
    a: NewPlanArgs,
    api: &dyn MaosApi,
    in_process: bool,
    out: &mut Output,
) -> Result<(), CliError> {
    let Some(goal) = a.goal else {
        return Err(CliError::new(
            FailureClass::Usage,
            "say what to plan: maos plan \"<goal>\"",
        )
        .with_hint("maos plan \"add rate limiting to the API\", or maos plan --help"));
    };
    let workspace = chosen_workspace(a.repo.as_deref(), a.no_repo, a.base.as_deref(), out)?;
    let rounds = MaxAttempts::new(a.rounds)
        .map_err(|e| CliError::new(FailureClass::InvalidInput, format!("--rounds: {e}")))?;
    if a.discuss && in_process {
        return Err(CliError::new(
            FailureClass::Usage,
            "--discuss talks with a planner the daemon runs, and this command runs without one \
             (--no-daemon)",
        )
        .with_hint("leave out --no-daemon (and MAOS_NO_DAEMON)"));
    }
    let (goal, notes, discussion) = if a.discuss {
        discuss(
            PlanGoal {
                goal,
                name: None,
                notes: a.notes,
                workspace: workspace.clone(),
                planner: a.planner.clone(),
                max_tasks: a.max_tasks,
                rounds: MaxAttempts::new(PlanGoal::DEFAULT_TURNS).unwrap_or_default(),
                budget: a.budget_usd,
                timeout: a.timeout,
                discussion: None,
            },
            api,
            out,
        )?
    } else {
        (goal, a.notes, None)
    };
    let since = api.status()?.last_event;
    let started = api.plan_goal(PlanGoal {
        goal,
        name: None,
        notes,
        workspace,
        planner: a.planner,
        max_tasks: a.max_tasks,
        rounds,
        budget: a.budget_usd,
        timeout: a.timeout,
        discussion,
    })?;
    if a.no_wait || in_process {
        return started_only(started, in_process, out);
    }
    let o = started.orchestration.id;
    wait_and_show(api, o, started.task.id, since, a.out.as_deref(), out)
}

/// `maos plan --discuss`: the planner asks and the person answers on the terminal until they
/// agree on the goal (the planner's `goal` block, confirmed) or the person stops; answers the
/// goal, the notes and the discussion's task.
fn discuss(
    g: PlanGoal,
    api: &dyn MaosApi,
    out: &mut Output,
) -> Result<(String, Vec<String>, Option<TaskId>), CliError> {
    use maos_domain::TaskState;
    use std::io::IsTerminal as _;
    if out.json() || !std::io::stdin().is_terminal() || !std::io::stderr().is_terminal() {
        return Err(CliError::new(
            FailureClass::Usage,
            "--discuss is a conversation on a terminal, and there is none here (or --json asks \
             for a document)",
        )
        .with_hint(
            "run it on a terminal without --json, or plan without --discuss and give --notes",
        ));
    }
    let (goal, notes) = (g.goal.clone(), g.notes.clone());
    let task = api.discuss_goal(g)?;
    let id = IdRef::from(task.id);
    out.note(&format!(
        "discussing with the planner (task {}; Ctrl-C leaves it, maos task cancel {} ends it)",
        task.id.short(),
        task.id.short()
    ));
    crate::live::exit_quietly_on_interrupt();
    let mut seen = 0usize;
    loop {
        // The planner's next answer: its task waits for the person once more.
        let t = loop {
            let t = api.get_task(&id)?;
            let answered = t.state == TaskState::AwaitingApproval && t.attempts.len() > seen;
            if answered || t.state.is_terminal() || t.state == TaskState::Blocked {
                break t;
            }
            std::thread::sleep(Duration::from_millis(200));
        };
        if t.state != TaskState::AwaitingApproval {
            return Err(CliError::new(
                FailureClass::Unfinished,
                format!(
                    "the discussion ended: its task {} is {}",
                    t.id.short(),
                    t.state
                ),
            )
            .with_hint(format!("see why: maos task show {}", t.id.short())));
        }
        seen = t.attempts.len();
        let answer = t
            .attempts
            .last()
            .and_then(|a| a.summary.clone())
            .unwrap_or_default();
        out.text(&format!("planner: {}", escape::block(answer.trim())))?;
        let agreed = maos_domain::plan::goal_in_answer(&answer);
        let question = if agreed.is_some() {
            "Plan this goal? [y]es (or empty), or type a reply to go on:"
        } else {
            "Your reply (empty: stop and plan with what was said):"
        };
        let reply = super::ask_line(question, out)?.unwrap_or_default();
        let done = match &agreed {
            Some(_) => matches!(reply.trim(), "" | "y" | "Y" | "yes"),
            None => reply.trim().is_empty(),
        };
        if !done {
            api.reject(&id, reply, false)?;
            continue;
        }
        api.approve(&id)?;
        let mut all = notes;
        return Ok(match agreed {
            Some((agreed, points)) => {
                all.extend(points);
                (agreed, all, Some(t.id))
            }
            None => {
                if !answer.trim().is_empty() {
                    all.push(format!(
                        "From the discussion, the planner's last words: {}",
                        answer.trim()
                    ));
                }
                (goal, all, Some(t.id))
            }
        });
    }
}

/// A planner started, not waited for (`--no-wait`, or nothing runs it in this process).
fn started_only(
    started: maos_application::PlanningStarted,
    in_process: bool,
    out: &mut Output,
) -> Result<(), CliError> {
    if in_process {
        out.note(
            "no daemon runs agents for this command (--no-daemon): the planner starts once one \
             runs (maos daemon start)",
        );
    }
    out.print(&Planning(started))
}

/// How a planner's work ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ended {
    /// A version awaits the person.
    Proposed,
    /// The configuration approved it and the orchestration runs.
    Approved,
    /// No acceptable plan.
    Failed,
    /// The orchestration ended meanwhile (cancelled, or its work done).
    Cancelled,
}

/// Follows the event log until the planner of `o` (task `planner`) ends, saying on stderr what
/// it does; then shows the outcome (and writes the plan to `out_file`).
fn wait_and_show(
    api: &dyn MaosApi,
    o: OrchestrationId,
    planner: TaskId,
    since: u64,
    out_file: Option<&Path>,
    out: &mut Output,
) -> Result<(), CliError> {
    let (ended, history) = wait_for_planner(api, o, planner, since, out)?;
    show_outcome(ended, history, out_file, true, out)
}

/// Follows the event log from `since` until the planner of `o` (task `planner`) ends, saying
/// on stderr what it does; answers how it ended and the plan's history then.
pub(crate) fn wait_for_planner(
    api: &dyn MaosApi,
    o: OrchestrationId,
    planner: TaskId,
    since: u64,
    out: &mut Output,
) -> Result<(Ended, PlanHistory), CliError> {
    crate::live::exit_quietly_on_interrupt();
    let people = !out.json();
    if people {
        out.note(&format!(
            "planning orchestration {} (Ctrl-C stops waiting; the planner goes on: maos plan show {})",
            o.short(),
            o.short()
        ));
    }
    let mut follower = api.follow_events(since)?;
    let ended = loop {
        let batch = follower.next_batch(TICK.max(Duration::from_millis(500)))?;
        let mut ended = None;
        for e in batch {
            match e.event {
                DomainEvent::Task { id, event } if id == planner && people => match event {
                    TaskEvent::Assigned { attempt, agent, .. } => out.note(&format!(
                        "round {attempt}: {} is planning",
                        escape::line(agent.as_str())
                    )),
                    TaskEvent::VerificationFailed { .. } => out.note(&format!(
                        "the plan of that round had problems (maos task show {})",
                        planner.short()
                    )),
                    TaskEvent::AttemptFailed { error, .. } => out.note(&format!(
                        "the planner's attempt failed: {}",
                        escape::line(&error)
                    )),
                    _ => {}
                },
                DomainEvent::Orchestration { id, event } if id == o => match event {
                    OrchestrationEvent::PlanProposed { .. } => {
                        ended.get_or_insert(Ended::Proposed);
                    }
                    OrchestrationEvent::PlanApproved {
                        by: PlanApprover::Config,
                        ..
                    } => ended = Some(Ended::Approved),
                    OrchestrationEvent::PlanningFailed { .. } => ended = Some(Ended::Failed),
                    // It ended (cancelled, or all its work done) while a planner worked.
                    OrchestrationEvent::Cancelled { .. }
                    | OrchestrationEvent::Completed
                    | OrchestrationEvent::Failed { .. } => ended = Some(Ended::Cancelled),
                    _ => {}
                },
                _ => {}
            }
        }
        if let Some(e) = ended {
            break e;
        }
    };
    Ok((ended, api.plan_history(&IdRef::from(o))?))
}

/// Shows how a planner's work ended (with `next`, the commands that can follow a proposed
/// version), writing the plan to `out_file`; an error when there is no plan.
pub(crate) fn show_outcome(
    ended: Ended,
    history: PlanHistory,
    out_file: Option<&Path>,
    next: bool,
    out: &mut Output,
) -> Result<(), CliError> {
    let people = !out.json();
    let o = history.orchestration.id;
    match ended {
        Ended::Proposed | Ended::Approved => {
            if let (Some(path), Some(v)) = (out_file, history.version(None)) {
                write_plan_file(path, &v.plan)?;
                if people {
                    out.note(&format!("the plan is in {}", path.display()));
                }
            }
            out.print(&Shown::new(history, None, false)?)?;
            if people && next && ended == Ended::Proposed {
                let id = o.short();
                out.note(&format!(
                    "next: maos plan approve {id} | maos plan edit {id} | \
                     maos plan regenerate {id} --feedback \"…\" | maos plan reject {id}"
                ));
            }
            Ok(())
        }
        Ended::Failed => {
            let shown = Shown::new(history, None, true)?;
            out.print(&shown)?;
            Err(CliError::new(
                FailureClass::Unfinished,
                format!(
                    "the planner gave no plan that passes the checks (orchestration {})",
                    o.short()
                ),
            )
            .with_hint(format!(
                "fix its last plan yourself: maos plan edit {id}; or ask again: \
                 maos plan regenerate {id} --feedback \"…\"",
                id = o.short()
            ))
            // The document printed says what happened: no error document after it.
            .documented())
        }
        Ended::Cancelled => Err(CliError::new(
            FailureClass::Conflict,
            format!(
                "orchestration {} ended ({}) while it was planned",
                o.short(),
                history.orchestration.status
            ),
        )
        .with_hint(format!("see it: maos plan show {} --versions", o.short()))),
    }
}

/// Writes a plan as a plan file (JSON).
fn write_plan_file(path: &Path, plan: &Plan) -> Result<(), CliError> {
    std::fs::write(path, PlanFiles.write(plan)).map_err(|e| {
        CliError::new(
            FailureClass::Failure,
            format!("cannot write the plan to {}: {e}", path.display()),
        )
        .with_hint("name a file in a directory you can write to")
    })
}

/// `maos plan edit`.
fn edit(
    id: &IdRef,
    file: Option<&Path>,
    api: &dyn MaosApi,
    out: &mut Output,
) -> Result<(), CliError> {
    let history = api.plan_history(id)?;
    let o = history.orchestration.id;
    let offered = api
        .list_agents(&AgentFilter::default())?
        .iter()
        .fold(CapabilitySet::empty(), |all, a| all.union(&a.capabilities));
    let text = match file {
        Some(path) => {
            let text = read_text(path, FileKind::Plan)?;
            check(path, &text, &offered)?;
            text
        }
        None => {
            let start = editable(&history).ok_or_else(|| {
                CliError::new(
                    FailureClass::NotFound,
                    format!("orchestration {} has no plan to edit yet", o.short()),
                )
                .with_hint(format!(
                    "wait for its planner (maos plan show {}), or give a whole plan: maos plan edit {} --file plan.json",
                    o.short(),
                    o.short()
                ))
            })?;
            match in_editor(o, &start, &offered, out)? {
                Some(text) => text,
                None => {
                    out.note(&format!(
                        "no change: the plan stays at version {}",
                        history.orchestration.plan_version
                    ));
                    return Ok(());
                }
            }
        }
    };
    let updated = api.propose_plan(id, text)?;
    out.print(&NewVersion(updated))
}

/// The text a person starts editing from: the newest version, or the last planner's plan that
/// failed the checks when that came later.
pub(crate) fn editable(h: &PlanHistory) -> Option<String> {
    for r in h.record.iter().rev() {
        match r {
            PlanRecord::Proposed { .. } | PlanRecord::Approved { .. } => break,
            PlanRecord::Failed {
                text: Some(text), ..
            } => return Some(text.clone()),
            _ => {}
        }
    }
    h.version(None).map(|v| PlanFiles.write(&v.plan))
}

/// Checks a plan file's text as the service will, with the file's places.
fn check(path: &Path, text: &str, offered: &CapabilitySet) -> Result<(), CliError> {
    match PlanFiles.read(text, offered) {
        Ok(_) => Ok(()),
        Err(problems) => {
            let lines: Vec<String> = problems
                .iter()
                .map(|p| {
                    if p.line == 0 {
                        format!("{}: {}", path.display(), escape::line(&p.message))
                    } else {
                        format!(
                            "{}:{}:{}: {}",
                            path.display(),
                            p.line,
                            p.column,
                            escape::line(&p.message)
                        )
                    }
                })
                .collect();
            Err(CliError::new(
                FailureClass::InvalidInput,
                format!(
                    "{} problem{} in the plan:\n{}",
                    problems.len(),
                    if problems.len() == 1 { "" } else { "s" },
                    lines.join("\n")
                ),
            )
            .with_hint("fix each problem at its line and column, then try again"))
        }
    }
}

/// Opens `$VISUAL`/`$EDITOR` (else `vi`) on the plan until it passes the checks or the person
/// gives up; `None` when they saved it unchanged.
pub(crate) fn in_editor(
    o: OrchestrationId,
    start: &str,
    offered: &CapabilitySet,
    out: &mut Output,
) -> Result<Option<String>, CliError> {
    let editor = ["VISUAL", "EDITOR"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|e| !e.trim().is_empty()))
        .unwrap_or_else(|| "vi".to_owned());
    let path = std::env::temp_dir().join(format!(
        "maos-plan-{}-{}.json",
        o.short(),
        std::process::id()
    ));
    write_private(&path, start)?;
    let result = loop {
        let status = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("{editor} \"$1\""))
            .arg("sh")
            .arg(&path)
            .status()
            .map_err(|e| {
                CliError::new(
                    FailureClass::Failure,
                    format!("cannot run the editor {editor:?}: {e}"),
                )
                .with_hint("set EDITOR to an editor you have, or use --file")
            })?;
        if !status.success() {
            break Err(CliError::new(
                FailureClass::Failure,
                format!("the editor {editor:?} failed ({status}); nothing was changed"),
            )
            .with_hint(format!("your edit is in {}", path.display())));
        }
        let text = read_text(&path, FileKind::Plan)?;
        if text == start {
            break Ok(None);
        }
        match check(&path, &text, offered) {
            Ok(()) => break Ok(Some(text)),
            Err(e) => {
                out.note(&e.to_string());
                match super::ask("Edit again?", out)? {
                    Some(true) => continue,
                    _ => {
                        break Err(e.with_hint(format!(
                            "your edit is kept in {}: fix it and run maos plan edit {} --file {}",
                            path.display(),
                            o.short(),
                            path.display()
                        )));
                    }
                }
            }
        }
    };
    if result.is_ok() {
        let _ = std::fs::remove_file(&path);
    }
    result
}

/// Writes `text` to a new file only the user can read.
fn write_private(path: &Path, text: &str) -> Result<(), CliError> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    // A new file: never one that exists (a link someone put there would be followed).
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|e| {
            CliError::new(
                FailureClass::Failure,
                format!("cannot write {}: {e}", path.display()),
            )
        })
}

/// `maos plan brief`.
fn brief(
    id: &IdRef,
    version: Option<u32>,
    api: &dyn MaosApi,
    out: &mut Output,
) -> Result<(), CliError> {
    let history = api.plan_history(id)?;
    let o = history.orchestration.id;
    let (task, attempt) = match version {
        Some(n) => match history.version(Some(n)).map(|v| &v.origin) {
            Some(PlanOrigin::Planner { task, attempt, .. }) => (*task, Some(*attempt)),
            Some(PlanOrigin::Person) => {
                return Err(CliError::new(
                    FailureClass::NotFound,
                    format!(
                        "version {n} of orchestration {}'s plan was written by a person: no planner was briefed",
                        o.short()
                    ),
                ));
            }
            None => return Err(no_version(o, n)),
        },
        None => match history.planners().last() {
            Some(t) => (*t, None),
            None => {
                return Err(CliError::new(
                    FailureClass::NotFound,
                    format!("no planner worked on orchestration {}'s plan", o.short()),
                ));
            }
        },
    };
    let b = api.task_briefing(&IdRef::from(task), attempt)?;
    if out.json() {
        return out.document(&json::BriefingDoc::new(&task.to_string(), &b));
    }
    out.note(&format!(
        "the brief of planning task {} (attempt {}): about {} tokens",
        task.short(),
        b.attempt,
        b.tokens
    ));
    out.text(&escape::block(b.text.trim_end()))
}

fn no_version(o: OrchestrationId, n: u32) -> CliError {
    CliError::new(
        FailureClass::NotFound,
        format!("orchestration {} has no plan version {n}", o.short()),
    )
    .with_hint(format!(
        "see its versions: maos plan show {} --versions",
        o.short()
    ))
}

// ---------------------------------------------------------------------------------------------
// What the commands print.

/// A planner at work (`--no-wait`).
struct Planning(maos_application::PlanningStarted);

impl Render for Planning {
    fn document(&self) -> impl Serialize {
        PlanningDoc {
            schema_version: SCHEMA_VERSION,
            orchestration: (&self.0.orchestration).into(),
            planning_task: (&self.0.task).into(),
        }
    }

    fn human(&self, out: &mut Output) -> Result<(), CliError> {
        let o = &self.0.orchestration;
        out.text(&format!(
            "orchestration {} is being planned by task {} ({})",
            o.id.short(),
            self.0.task.id.short(),
            self.0.task.state
        ))?;
        out.note(&format!("see it: maos plan show {}", o.id.short()));
        Ok(())
    }
}

#[derive(Serialize)]
struct PlanningDoc {
    schema_version: u32,
    orchestration: OrchestrationJson,
    planning_task: json::TaskJson,
}

/// `maos plan show` (and the end of planning).
struct Shown {
    history: PlanHistory,
    /// The version shown (none: there is none yet).
    version: Option<PlanVersion>,
    all: bool,
}

impl Shown {
    fn new(history: PlanHistory, version: Option<u32>, all: bool) -> Result<Shown, CliError> {
        let chosen = history.version(version).cloned();
        if let (Some(n), None) = (version, &chosen) {
            return Err(no_version(history.orchestration.id, n));
        }
        Ok(Shown {
            history,
            version: chosen,
            all,
        })
    }
}

#[derive(Serialize)]
struct ShownDoc {
    schema_version: u32,
    orchestration: OrchestrationJson,
    version: Option<VersionJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    versions: Option<Vec<VersionJson>>,
    record: Vec<RecordJson>,
}

#[derive(Serialize)]
struct VersionJson {
    number: u32,
    origin: OriginJson,
    rationale: Option<String>,
    proposed_at: String,
    /// The plan, as a plan file (JSON).
    plan: serde_json::Value,
}

#[derive(Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum OriginJson {
    Planner {
        task: String,
        attempt: u32,
        agent: String,
    },
    Person,
}

impl From<&PlanVersion> for VersionJson {
    fn from(v: &PlanVersion) -> Self {
        VersionJson {
            number: v.number,
            origin: match &v.origin {
                PlanOrigin::Planner {
                    task,
                    attempt,
                    agent,
                } => OriginJson::Planner {
                    task: task.to_string(),
                    attempt: *attempt,
                    agent: agent.to_string(),
                },
                PlanOrigin::Person => OriginJson::Person,
            },
            rationale: v.rationale.clone(),
            proposed_at: json::time(v.proposed_at),
            plan: serde_json::from_str(&PlanFiles.write(&v.plan))
                .unwrap_or(serde_json::Value::Null),
        }
    }
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum RecordJson {
    Planning {
        task: String,
        max_tasks: u32,
        /// The discussion task the goal came from (`plan --discuss`), else null.
        discussion: Option<String>,
        at: String,
    },
    Proposed {
        version: u32,
        at: String,
    },
    Failed {
        task: String,
        text: Option<String>,
        problems: Vec<String>,
        at: String,
    },
    Approved {
        version: u32,
        by: &'static str,
        /// Each task of the version: its key and task id.
        tasks: std::collections::BTreeMap<String, String>,
        /// The tasks of the version before that it replaced or dropped (cancelled).
        superseded: Vec<String>,
        at: String,
    },
    Rejected {
        version: u32,
        reason: Option<String>,
        at: String,
    },
}

impl From<&PlanRecord> for RecordJson {
    fn from(r: &PlanRecord) -> Self {
        match r {
            PlanRecord::Planning {
                task,
                max_tasks,
                discussion,
                at,
            } => RecordJson::Planning {
                task: task.to_string(),
                max_tasks: *max_tasks,
                discussion: discussion.map(|d| d.to_string()),
                at: json::time(*at),
            },
            PlanRecord::Proposed { version, at } => RecordJson::Proposed {
                version: *version,
                at: json::time(*at),
            },
            PlanRecord::Failed {
                task,
                text,
                problems,
                at,
            } => RecordJson::Failed {
                task: task.to_string(),
                text: text.clone(),
                problems: problems.clone(),
                at: json::time(*at),
            },
            PlanRecord::Approved {
                version,
                by,
                tasks,
                superseded,
                at,
            } => RecordJson::Approved {
                version: *version,
                by: by.as_str(),
                tasks: tasks
                    .iter()
                    .map(|(k, id)| (k.to_string(), id.to_string()))
                    .collect(),
                superseded: superseded.iter().map(ToString::to_string).collect(),
                at: json::time(*at),
            },
            PlanRecord::Rejected {
                version,
                reason,
                at,
            } => RecordJson::Rejected {
                version: *version,
                reason: reason.clone(),
                at: json::time(*at),
            },
        }
    }
}

impl Render for Shown {
    fn document(&self) -> impl Serialize {
        ShownDoc {
            schema_version: SCHEMA_VERSION,
            orchestration: (&self.history.orchestration).into(),
            version: self.version.as_ref().map(Into::into),
            versions: self
                .all
                .then(|| self.history.versions.iter().map(Into::into).collect()),
            record: self.history.record.iter().map(Into::into).collect(),
        }
    }

    fn human(&self, out: &mut Output) -> Result<(), CliError> {
        let h = &self.history;
        let o = &h.orchestration;
        let mut text = format!(
            "orchestration {} \"{}\": {}",
            o.id.short(),
            escape::line(o.name.as_str()),
            o.status
        );
        if let Some(p) = o.planning {
            text.push_str(&format!(
                "\n  a planner is at work: task {} (maos task show {})",
                p.task.short(),
                p.task.short()
            ));
        }
        match &self.version {
            None => text.push_str("\n  no plan yet"),
            Some(v) => {
                text.push_str(&format!(
                    "\n  plan version {} of {}, {}",
                    v.number,
                    h.versions.len(),
                    origin_text(&v.origin)
                ));
                if let Some(r) = &v.rationale {
                    text.push_str("\n\nThe planner's reasons:\n");
                    for line in r.lines() {
                        text.push_str(&format!("  {}\n", escape::line(line)));
                    }
                }
                text.push('\n');
                text.push_str(&super::orchestrate::preview_text(&as_create_plan(
                    o, &v.plan,
                )));
            }
        }
        if let Some(PlanRecord::Failed {
            task,
            text: t,
            problems,
            ..
        }) = h.record.last()
        {
            text.push_str(&format!(
                "\n\nThe planner (task {}) gave no plan that passes the checks{}",
                task.short(),
                if problems.is_empty() {
                    ": see why with maos task show ".to_owned() + &task.short()
                } else {
                    ":".to_owned()
                }
            ));
            for p in problems {
                text.push_str(&format!("\n  - {}", escape::line(p)));
            }
            if t.is_some() {
                text.push_str(&format!(
                    "\n  its last plan is kept: maos plan edit {} opens it",
                    o.id.short()
                ));
            }
        }
        if self.all {
            text.push_str("\n\nVersions:");
            for v in &h.versions {
                let reasons = v
                    .rationale
                    .as_deref()
                    .and_then(|r| r.lines().map(str::trim).find(|l| !l.is_empty()))
                    .map(|l| format!(": \"{}\"", escape::line(l)))
                    .unwrap_or_default();
                text.push_str(&format!(
                    "\n  {}  {} task(s), {}{reasons}",
                    v.number,
                    v.plan.tasks.len(),
                    origin_text(&v.origin),
                ));
            }
            if h.versions.is_empty() {
                text.push_str("\n  none yet");
            }
            text.push_str(&format!(
                "\n  (each in full: maos plan show {id} --version N; what a planner was told: \
                 maos plan brief {id} --version N)",
                id = o.id.short()
            ));
            text.push_str("\n\nHistory:");
            for r in &h.record {
                text.push_str(&format!("\n  {}", record_text(r)));
            }
        }
        out.text(&text)
    }
}

fn origin_text(origin: &PlanOrigin) -> String {
    match origin {
        PlanOrigin::Planner {
            task,
            attempt,
            agent,
        } => format!(
            "by planner {} (task {}, attempt {attempt})",
            escape::line(agent.as_str()),
            task.short()
        ),
        PlanOrigin::Person => "written by a person".to_owned(),
    }
}

fn record_text(r: &PlanRecord) -> String {
    match r {
        PlanRecord::Planning { task, at, .. } => {
            format!(
                "{}  a planner started (task {})",
                at.to_rfc3339(),
                task.short()
            )
        }
        PlanRecord::Proposed { version, at } => {
            format!("{}  version {version} proposed", at.to_rfc3339())
        }
        PlanRecord::Failed {
            task, problems, at, ..
        } => format!(
            "{}  the planner (task {}) gave no acceptable plan ({} problem(s))",
            at.to_rfc3339(),
            task.short(),
            problems.len()
        ),
        PlanRecord::Approved {
            version,
            by,
            superseded,
            at,
            ..
        } => format!(
            "{}  version {version} approved by {}{}",
            at.to_rfc3339(),
            match by {
                PlanApprover::Person => "a person",
                PlanApprover::Config => "the configuration (approve_plans = \"auto\")",
            },
            if superseded.is_empty() {
                String::new()
            } else {
                format!(
                    "; {} task(s) of the version before cancelled",
                    superseded.len()
                )
            }
        ),
        PlanRecord::Rejected {
            version,
            reason,
            at,
        } => format!(
            "{}  version {version} rejected{}",
            at.to_rfc3339(),
            reason
                .as_deref()
                .map(|r| format!(": {}", escape::line(r)))
                .unwrap_or_default()
        ),
    }
}

/// A plan as `orchestrate run` previews one.
fn as_create_plan(o: &maos_domain::Orchestration, plan: &Plan) -> CreatePlan {
    CreatePlan {
        orchestration: CreateOrchestration {
            name: o.name.clone(),
            goal: o.goal.clone(),
            workspace: o.workspace.clone(),
            verify: plan.verify.clone(),
            notes: plan.notes.clone(),
        },
        tasks: PlanTask::from_plan(plan),
        start: false,
    }
}

/// `maos plan diff`.
struct Diffed {
    from: PlanVersion,
    to: PlanVersion,
    diff: PlanDiff,
}

impl Diffed {
    fn new(h: &PlanHistory, from: Option<u32>, to: Option<u32>) -> Result<Diffed, CliError> {
        let o = h.orchestration.id;
        let to_v = match to {
            Some(n) => h.version(Some(n)).ok_or_else(|| no_version(o, n))?,
            None => h.version(None).ok_or_else(|| {
                CliError::new(
                    FailureClass::NotFound,
                    format!("orchestration {} has no plan yet", o.short()),
                )
            })?,
        };
        let from_n = match from {
            Some(n) => n,
            None if to_v.number > 1 => to_v.number - 1,
            None => {
                return Err(CliError::new(
                    FailureClass::NotFound,
                    format!(
                        "orchestration {}'s plan has one version: nothing to compare it with",
                        o.short()
                    ),
                )
                .with_hint(format!("see it: maos plan show {}", o.short())));
            }
        };
        let from_v = h
            .version(Some(from_n))
            .ok_or_else(|| no_version(o, from_n))?;
        Ok(Diffed {
            diff: PlanDiff::between(&from_v.plan, &to_v.plan),
            from: from_v.clone(),
            to: to_v.clone(),
        })
    }

    fn title(v: &PlanVersion, key: &maos_domain::PlanKey) -> String {
        v.plan
            .tasks
            .iter()
            .find(|t| &t.key == key)
            .map(|t| t.title.to_string())
            .unwrap_or_default()
    }
}

#[derive(Serialize)]
struct DiffDoc {
    schema_version: u32,
    from: u32,
    to: u32,
    added: Vec<KeyTitle>,
    removed: Vec<KeyTitle>,
    changed: Vec<Changed>,
    plan_fields: Vec<&'static str>,
}

#[derive(Serialize)]
struct KeyTitle {
    key: String,
    title: String,
}

#[derive(Serialize)]
struct Changed {
    key: String,
    title: String,
    fields: Vec<&'static str>,
}

impl Render for Diffed {
    fn document(&self) -> impl Serialize {
        DiffDoc {
            schema_version: SCHEMA_VERSION,
            from: self.from.number,
            to: self.to.number,
            added: self
                .diff
                .added
                .iter()
                .map(|k| KeyTitle {
                    key: k.to_string(),
                    title: Diffed::title(&self.to, k),
                })
                .collect(),
            removed: self
                .diff
                .removed
                .iter()
                .map(|k| KeyTitle {
                    key: k.to_string(),
                    title: Diffed::title(&self.from, k),
                })
                .collect(),
            changed: self
                .diff
                .changed
                .iter()
                .map(|(k, fields)| Changed {
                    key: k.to_string(),
                    title: Diffed::title(&self.to, k),
                    fields: fields.clone(),
                })
                .collect(),
            plan_fields: self.diff.plan_fields.clone(),
        }
    }

    fn human(&self, out: &mut Output) -> Result<(), CliError> {
        let mut text = format!("plan version {} → {}", self.from.number, self.to.number);
        if self.diff.is_empty() {
            text.push_str(": no difference");
            return out.text(&text);
        }
        for k in &self.diff.added {
            text.push_str(&format!(
                "\n  + {k}  {}",
                escape::line(&Diffed::title(&self.to, k))
            ));
        }
        for k in &self.diff.removed {
            text.push_str(&format!(
                "\n  - {k}  {}",
                escape::line(&Diffed::title(&self.from, k))
            ));
        }
        for (k, fields) in &self.diff.changed {
            text.push_str(&format!(
                "\n  ~ {k}  {}  ({})",
                escape::line(&Diffed::title(&self.to, k)),
                fields.join(", ")
            ));
        }
        if !self.diff.plan_fields.is_empty() {
            text.push_str(&format!(
                "\n  the plan's {} changed",
                self.diff.plan_fields.join(", ")
            ));
        }
        out.text(&text)
    }
}

/// A new version from a person's edit.
struct NewVersion(maos_domain::Orchestration);

impl Render for NewVersion {
    fn document(&self) -> impl Serialize {
        json::OrchestrationDoc::new(&self.0)
    }

    fn human(&self, out: &mut Output) -> Result<(), CliError> {
        let id = self.0.id.short();
        out.text(&format!(
            "orchestration {id}: plan version {} is ready for review",
            self.0.plan_version
        ))?;
        out.note(&format!(
            "compare it: maos plan diff {id}; approve it: maos plan approve {id}"
        ));
        Ok(())
    }
}

/// A rejected plan.
struct Rejected(maos_domain::Orchestration);

impl Render for Rejected {
    fn document(&self) -> impl Serialize {
        json::OrchestrationDoc::new(&self.0)
    }

    fn human(&self, out: &mut Output) -> Result<(), CliError> {
        out.text(&format!(
            "orchestration {}: plan rejected, orchestration {}",
            self.0.id.short(),
            self.0.status
        ))
    }
}
