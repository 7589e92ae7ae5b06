//! `maos task create|list|show|retry|briefing|assign|cancel|logs|diff|rollback|depend`: tasks,
//! their attempts' output and the work they left.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use maos_application::{
    AssignTask, Assignment, CreateTask, Created, IdRef, LogRequest, MaosApi, Page, TaskFilter,
    TaskPage, WaitReason,
};
use maos_domain::{CapabilitySet, Task};
use serde::Serialize;

use crate::cli::{CreateArgs, TaskCommand, TaskListArgs};
use crate::commands::{chosen_repository, no_repo_for_base};
use crate::error::{CliError, FailureClass};
use crate::escape;
use crate::human;
use crate::input::{FileKind, read_text_or_stdin};
use crate::json;
use crate::output::{Output, Render};

/// `maos task …`.
pub(super) fn execute(
    cmd: TaskCommand,
    api: &dyn MaosApi,
    out: &mut Output,
) -> Result<(), CliError> {
    match cmd {
        TaskCommand::Create(args) => create_task(*args, api, out),
        TaskCommand::List(args) => list_tasks(args, api, out),
        TaskCommand::Show { id } => {
            let task = api.get_task(&id)?;
            let waiting = api.task_waiting(&id)?;
            out.print(&Shown { task, waiting })
        }
        TaskCommand::Retry { id, attempts } => {
            out.print(&Changed(api.retry_task(&id, attempts)?, Change::Retried))
        }
        TaskCommand::Briefing { id, attempt } => {
            let b = api.task_briefing(&id, attempt)?;
            // The document names the task by its full id, which costs a call the text does not
            // need: this branch stays.
            if out.json() {
                let t = api.get_task(&id)?;
                return out.document(&json::BriefingDoc::new(&t.id.to_string(), &b));
            }
            out.note(&format!(
                "attempt {}'s briefing: about {} tokens{}",
                b.attempt,
                b.tokens,
                if b.cut.is_empty() {
                    String::new()
                } else {
                    format!(", {} part(s) cut to fit the budget", b.cut.len())
                }
            ));
            out.text(&escape::block(b.text.trim_end()))
        }
        TaskCommand::Assign { id, agent } => {
            out.print(&Assigned(api.assign_task(AssignTask { task: id, agent })?))
        }
        TaskCommand::Cancel { id, reason } => {
            out.print(&Changed(api.cancel_task(&id, reason)?, Change::Cancelled))
        }
        TaskCommand::Logs {
            id,
            attempt,
            follow,
            raw,
        } => {
            let raw = raw || !std::io::stdout().is_terminal();
            task_logs(id, attempt, follow, raw, api, out)
        }
        TaskCommand::Diff {
            id,
            attempt,
            stat,
            raw,
        } => {
            let diff = api.task_diff(&id, attempt, stat)?;
            // The document names the task by its full id (the reference may be a prefix).
            let task = if out.json() {
                api.get_task(&id)?.id.to_string()
            } else {
                id.to_string()
            };
            out.print(&Diff {
                doc: json::DiffDoc {
                    schema_version: json::SCHEMA_VERSION,
                    task,
                    attempt,
                    stat,
                    diff,
                },
                raw,
            })
        }
        TaskCommand::Rollback { id, to_attempt } => {
            let t = api.rollback(&id, to_attempt)?;
            out.print(&Changed(t, Change::RolledBack { to_attempt }))
        }
        TaskCommand::Depend { id, on } => {
            out.print(&Changed(api.add_dependency(&id, &on)?, Change::Depends))
        }
    }
}

/// What a command did to a task.
#[derive(Debug, Clone, Copy)]
enum Change {
    Retried,
    Cancelled,
    RolledBack { to_attempt: Option<u32> },
    Depends,
}

/// A task as a command changed it: its document, or a sentence saying what happened.
struct Changed(Task, Change);

impl Render for Changed {
    fn document(&self) -> impl Serialize {
        json::TaskDoc::new(&self.0)
    }

    fn human(&self, out: &mut Output) -> Result<(), CliError> {
        let t = &self.0;
        out.text(&match self.1 {
            Change::Retried => format!(
                "task {} is {} again: {} of {} attempts used",
                t.id.short(),
                t.state,
                t.attempts_used(),
                t.attempts_allowed()
            ),
            Change::Cancelled => format!(
                "cancelled task {}: {}",
                t.id.short(),
                escape::line(t.spec.title.as_str())
            ),
            Change::RolledBack { to_attempt } => {
                let branch = t.workspace.as_ref().map_or("-", |w| w.branch.as_str());
                format!(
                    "rolled back {branch} of task {} to {}",
                    t.id.short(),
                    match to_attempt {
                        Some(n) => format!("what attempt {n} left"),
                        None => "before its newest attempt".into(),
                    }
                )
            }
            Change::Depends => format!(
                "task {} ({}) now depends on {}",
                t.id.short(),
                t.state,
                t.spec
                    .depends_on
                    .iter()
                    .map(|d| d.short())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        })
    }
}

/// `task show`: the task in detail, and what it waits for.
struct Shown {
    task: Task,
    waiting: Vec<WaitReason>,
}

impl Render for Shown {
    fn document(&self) -> impl Serialize {
        json::TaskShowDoc::new(&self.task, &self.waiting)
    }

    fn human(&self, out: &mut Output) -> Result<(), CliError> {
        let text = human::task_details(out.color(), &self.task);
        out.text(&text)?;
        if !self.waiting.is_empty() {
            out.text(&human::waiting(out.color(), self.task.id, &self.waiting))?;
        }
        Ok(())
    }
}

/// `task assign`: the attempt that was started.
struct Assigned(Assignment);

impl Render for Assigned {
    fn document(&self) -> impl Serialize {
        json::AssignmentDoc::new(&self.0)
    }

    fn human(&self, out: &mut Output) -> Result<(), CliError> {
        let a = &self.0;
        out.text(&format!(
            "assigned task {} to {} (attempt {}, fencing token {})",
            a.task.id.short(),
            a.agent,
            a.attempt,
            a.fencing
        ))
    }
}

/// `task diff`: what the work changed, raw or (to a terminal) escaped.
struct Diff {
    doc: json::DiffDoc,
    raw: bool,
}

impl Render for Diff {
    fn document(&self) -> impl Serialize {
        &self.doc
    }

    fn human(&self, out: &mut Output) -> Result<(), CliError> {
        let diff = &self.doc.diff;
        if diff.trim().is_empty() {
            out.note("no changes");
            return Ok(());
        }
        // What an agent wrote may hold escape sequences: a terminal gets them escaped.
        if self.raw || !std::io::stdout().is_terminal() {
            out.bytes(diff.as_bytes())
        } else {
            out.bytes(escape::block(diff).as_bytes())
        }
    }
}

/// `task create`: the task made (or found by its idempotency key).
struct Made(Created);

impl Render for Made {
    fn document(&self) -> impl Serialize {
        json::TaskCreatedDoc::new(&self.0.task, self.0.created)
    }

    fn human(&self, out: &mut Output) -> Result<(), CliError> {
        let t = &self.0.task;
        if self.0.created {
            out.text(&format!(
                "created task {} ({}): {}",
                t.id.short(),
                t.state,
                escape::line(t.spec.title.as_str())
            ))
        } else {
            out.note("a task with this idempotency key exists already; nothing was created");
            out.text(&format!(
                "task {} ({}): {}",
                t.id.short(),
                t.state,
                escape::line(t.spec.title.as_str())
            ))
        }
    }
}

/// `task list`: a page of tasks, and where the next one starts.
struct Listed(TaskPage);

impl Render for Listed {
    fn document(&self) -> impl Serialize {
        json::TaskListDoc::new(
            &self.0.tasks,
            self.0.next_cursor.as_ref().map(ToString::to_string),
        )
    }

    fn human(&self, out: &mut Output) -> Result<(), CliError> {
        let page = &self.0;
        if page.tasks.is_empty() {
            out.note("no tasks match; create one with `maos task create`");
        } else {
            let text = human::task_table(out.color(), &page.tasks);
            out.text(&text)?;
        }
        if let Some(cursor) = &page.next_cursor {
            out.note(&format!("more tasks: maos task list --cursor {cursor}"));
        }
        Ok(())
    }
}

fn create_task(args: CreateArgs, api: &dyn MaosApi, out: &mut Output) -> Result<(), CliError> {
    let title = match (args.title, &args.from_file) {
        (_, Some(path)) => return create_from_file(path, api, out),
        (Some(title), None) => title,
        // clap requires one of the two.
        (None, None) => {
            return Err(CliError::new(
                FailureClass::InvalidInput,
                "give the task's title, or --from-file FILE",
            ));
        }
    };
    let prompt = match (&args.prompt, &args.prompt_file) {
        (Some(p), _) => p.clone(),
        (None, Some(f)) => read_text_or_stdin(f, FileKind::Prompt)?,
        (None, None) => String::new(),
    };
    // A task of an orchestration works in the orchestration's repository unless it names one.
    let repo = if args.orchestration.is_some() && args.repo.is_none() {
        None
    } else {
        chosen_repository(args.repo.as_deref(), args.no_repo, out)?
    };
    if repo.is_none() && args.base.is_some() {
        return Err(no_repo_for_base());
    }
    let created = api.create_task(CreateTask {
        title,
        prompt,
        capabilities: args.capabilities.into_iter().collect::<CapabilitySet>(),
        priority: args.priority,
        risk: args.risk,
        tier: args.tier,
        depends_on: args.depends_on,
        orchestration: args.orchestration,
        max_attempts: args.max_attempts,
        timeout: args.timeout,
        idempotency_key: args.idempotency_key,
        budget: args.budget_usd,
        workspace: repo.map(|repo| maos_domain::WorkspaceSpec {
            repo,
            base: args.base.clone(),
        }),
        verify: args.verify.clone(),
        wants_port: args.port,
        concerns: args.concerns,
        agent: args.agent,
        lessons: args.lessons,
    })?;
    out.print(&Made(created))
}

/// `task create --from-file`: every task of the file in one transaction, after checking all of
/// them (the file's lines, the tasks and orchestrations they name, their repositories) so that a
/// bad file creates nothing.
fn create_from_file(path: &Path, api: &dyn MaosApi, out: &mut Output) -> Result<(), CliError> {
    let text = read_text_or_stdin(path, FileKind::Tasks)?;
    let shown = if path == Path::new("-") {
        Path::new("<stdin>")
    } else {
        path
    };
    let lines = match crate::tasks_file::parse(&text) {
        Ok(lines) => lines,
        Err(problems) => {
            return Err(refused(
                shown,
                maos_plans::diagnostics::render(shown, &problems),
            ));
        }
    };
    // What the lines name must exist: each reference checked once, each problem at its line.
    let mut checked: HashMap<(&str, String), Option<String>> = HashMap::new();
    let mut problems = Vec::new();
    for (line, key, reference) in crate::tasks_file::references(&lines) {
        let why = checked
            .entry((key, reference.to_string()))
            .or_insert_with(|| {
                let found = if key == "orchestration" {
                    api.get_orchestration(&reference).map(drop)
                } else {
                    api.get_task(&reference).map(drop)
                };
                found.err().map(|e| e.to_string())
            });
        if let Some(why) = why {
            problems.push(format!(
                "{}:{line}: {key:?}: {}",
                shown.display(),
                escape::line(why)
            ));
        }
    }
    if !problems.is_empty() {
        return Err(refused(shown, problems));
    }
    // Repositories as `--repo`, `--no-repo` and the current directory would give them, each
    // looked up once (the current directory's said once).
    let mut repos: HashMap<Option<PathBuf>, Option<String>> = HashMap::new();
    let mut cmds = Vec::with_capacity(lines.len());
    let mut order = Vec::with_capacity(lines.len());
    for l in lines {
        let mut task = l.task;
        let repo = if l.no_repo || (task.orchestration.is_some() && l.repo.is_none()) {
            None
        } else {
            match repos.get(&l.repo) {
                Some(r) => r.clone(),
                None => {
                    let r = chosen_repository(l.repo.as_deref(), false, out).map_err(|e| {
                        CliError::new(
                            FailureClass::InvalidInput,
                            format!(
                                "{}:{}: {}; no task was created",
                                shown.display(),
                                l.line,
                                e.message
                            ),
                        )
                        .with_hint("\"repo\" takes the directory of a git repository")
                    })?;
                    repos.insert(l.repo.clone(), r.clone());
                    r
                }
            }
        };
        if repo.is_none() && l.base.is_some() {
            return Err(refused(
                shown,
                vec![format!(
                    "{}:{}: \"base\" needs a repository, and this task has none",
                    shown.display(),
                    l.line
                )],
            ));
        }
        task.workspace = repo.map(|repo| maos_domain::WorkspaceSpec { repo, base: l.base });
        order.push(l.line);
        cmds.push(task);
    }
    let made = api.create_tasks(cmds).map_err(|e| {
        let mut e = CliError::from_info(&e);
        e.message = format!("{}; no task of {} was created", e.message, shown.display());
        e
    })?;
    out.print(&MadeAll(order.into_iter().zip(made).collect()))
}

/// The error of a tasks file with `problems`: nothing was created.
fn refused(path: &Path, mut problems: Vec<String>) -> CliError {
    let count = problems.len();
    problems.insert(
        0,
        format!(
            "{} has {count} problem{}; no task was created:",
            path.display(),
            if count == 1 { "" } else { "s" }
        ),
    );
    CliError::new(FailureClass::InvalidInput, problems.join("\n  "))
        .with_hint("fix the file and run the command again (docs/cli.md describes the tasks file)")
}

/// `task create --from-file`: the tasks made, each with its line.
struct MadeAll(Vec<(usize, Created)>);

impl Render for MadeAll {
    fn document(&self) -> impl Serialize {
        json::TasksCreatedDoc::new(&self.0)
    }

    fn human(&self, out: &mut Output) -> Result<(), CliError> {
        let made = self.0.iter().filter(|(_, c)| c.created).count();
        let existing = self.0.len() - made;
        if existing > 0 {
            out.note(&format!(
                "{existing} task(s) existed already (their idempotency keys); nothing new was \
                 made for them"
            ));
        }
        let tasks: Vec<Task> = self.0.iter().map(|(_, c)| c.task.clone()).collect();
        out.text(&human::task_table(out.color(), &tasks))?;
        out.note(&format!(
            "created {made} task{} in one transaction",
            if made == 1 { "" } else { "s" }
        ));
        Ok(())
    }
}

fn list_tasks(args: TaskListArgs, api: &dyn MaosApi, out: &mut Output) -> Result<(), CliError> {
    let orchestration = match &args.orchestration {
        Some(r) => Some(api.get_orchestration(r)?.id),
        None => None,
    };
    let page = api.list_tasks(
        &TaskFilter {
            statuses: args.statuses,
            orchestration,
            capability: args.capability,
        },
        &Page {
            limit: args.limit,
            cursor: args.cursor,
        },
    )?;
    out.print(&Listed(page))
}

/// `task logs`: the attempt's captured output, raw (any bytes; escaped unless `raw`) or, with
/// --json, as text documents; with --follow until the attempt ends.
fn task_logs(
    id: IdRef,
    attempt: Option<u32>,
    follow: bool,
    raw: bool,
    api: &dyn MaosApi,
    out: &mut Output,
) -> Result<(), CliError> {
    const CHUNK: usize = 256 * 1024;
    if follow {
        out.stream_documents();
    }
    let mut request = LogRequest {
        task: id,
        attempt,
        offset: 0,
        max: CHUNK,
        wait: if follow {
            std::time::Duration::from_secs(1)
        } else {
            std::time::Duration::ZERO
        },
    };
    let mut whole: Vec<u8> = Vec::new();
    let mut escaper = escape::ByteEscaper::default();
    loop {
        let chunk = api.read_log(&request)?;
        // Later chunks come from the same attempt, even if a newer one starts meanwhile.
        request.attempt = Some(chunk.attempt);
        request.offset += chunk.bytes.len() as u64;
        let done = chunk.finished || (!follow && chunk.bytes.len() < CHUNK);
        if out.json() {
            if follow {
                if !chunk.bytes.is_empty() || chunk.finished {
                    out.document(&json::LogChunkJson::line(&chunk))?;
                    out.flush()?;
                }
            } else {
                whole.extend_from_slice(&chunk.bytes);
                if done {
                    let all = maos_application::LogChunk {
                        offset: 0,
                        bytes: std::mem::take(&mut whole),
                        ..chunk
                    };
                    return out.document(&json::LogChunkJson::line(&all));
                }
            }
        } else if raw {
            if !chunk.bytes.is_empty() {
                out.bytes(&chunk.bytes)?;
                out.flush()?;
            }
        } else {
            let mut text = escaper.push(&chunk.bytes);
            if done {
                text.push_str(&escaper.finish());
            }
            if !text.is_empty() {
                out.bytes(text.as_bytes())?;
                out.flush()?;
            }
        }
        if done {
            return Ok(());
        }
    }
}
