//! `maos task create|list|show|retry|briefing|assign|cancel|logs|diff|rollback|depend`: tasks,
//! their attempts' output and the work they left.

use std::io::IsTerminal;

use maos_application::{AssignTask, CreateTask, IdRef, LogRequest, MaosApi, Page, TaskFilter};
use maos_domain::CapabilitySet;

use crate::cli::{CreateArgs, TaskCommand, TaskListArgs};
use crate::commands::repository;
use crate::error::CliError;
use crate::escape;
use crate::human;
use crate::input::{FileKind, read_text_or_stdin};
use crate::json;
use crate::output::Output;

/// `maos task …`.
pub(super) fn execute(
    cmd: TaskCommand,
    api: &dyn MaosApi,
    out: &mut Output,
) -> Result<(), CliError> {
    match cmd {
        TaskCommand::Create(args) => create_task(args, api, out),
        TaskCommand::List(args) => list_tasks(args, api, out),
        TaskCommand::Show { id } => {
            let t = api.get_task(&id)?;
            let waiting = api.task_waiting(&id)?;
            if out.json() {
                return out.document(&json::TaskShowDoc::new(&t, &waiting));
            }
            let text = human::task_details(out.color(), &t);
            out.text(&text)?;
            if !waiting.is_empty() {
                out.text(&human::waiting(out.color(), &waiting))?;
            }
            Ok(())
        }
        TaskCommand::Retry { id, attempts } => {
            let t = api.retry_task(&id, attempts)?;
            if out.json() {
                return out.document(&json::TaskDoc::new(&t));
            }
            out.text(&format!(
                "task {} is {} again: {} of {} attempts used",
                t.id.short(),
                t.state,
                t.attempts_used(),
                t.attempts_allowed()
            ))
        }
        TaskCommand::Briefing { id, attempt } => {
            let b = api.task_briefing(&id, attempt)?;
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
            let a = api.assign_task(AssignTask { task: id, agent })?;
            if out.json() {
                return out.document(&json::AssignmentDoc::new(&a));
            }
            out.text(&format!(
                "assigned task {} to {} (attempt {}, fencing token {})",
                a.task.id.short(),
                a.agent,
                a.attempt,
                a.fencing
            ))
        }
        TaskCommand::Cancel { id, reason } => {
            let t = api.cancel_task(&id, reason)?;
            if out.json() {
                return out.document(&json::TaskDoc::new(&t));
            }
            out.text(&format!(
                "cancelled task {}: {}",
                t.id.short(),
                escape::line(t.spec.title.as_str())
            ))
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
            if out.json() {
                return out.document(&json::DiffDoc {
                    schema_version: json::SCHEMA_VERSION,
                    task: id.to_string(),
                    attempt,
                    stat,
                    diff,
                });
            }
            if diff.trim().is_empty() {
                out.note("no changes");
                return Ok(());
            }
            // What an agent wrote may hold escape sequences: a terminal gets them escaped.
            if raw || !std::io::stdout().is_terminal() {
                out.bytes(diff.as_bytes())
            } else {
                out.bytes(escape::block(&diff).as_bytes())
            }
        }
        TaskCommand::Rollback { id, to_attempt } => {
            let t = api.rollback(&id, to_attempt)?;
            if out.json() {
                return out.document(&json::TaskDoc::new(&t));
            }
            let branch = t.workspace.as_ref().map_or("-", |w| w.branch.as_str());
            out.text(&format!(
                "rolled back {branch} of task {} to {}",
                t.id.short(),
                match to_attempt {
                    Some(n) => format!("what attempt {n} left"),
                    None => "before its newest attempt".into(),
                }
            ))
        }
        TaskCommand::Depend { id, on } => {
            let t = api.add_dependency(&id, &on)?;
            if out.json() {
                return out.document(&json::TaskDoc::new(&t));
            }
            out.text(&format!(
                "task {} ({}) now depends on {}",
                t.id.short(),
                t.state,
                t.spec
                    .depends_on
                    .iter()
                    .map(|d| d.short())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        }
    }
}

fn create_task(args: CreateArgs, api: &dyn MaosApi, out: &mut Output) -> Result<(), CliError> {
    let prompt = match (&args.prompt, &args.prompt_file) {
        (Some(p), _) => p.clone(),
        (None, Some(f)) => read_text_or_stdin(f, FileKind::Prompt)?,
        (None, None) => String::new(),
    };
    let created = api.create_task(CreateTask {
        title: args.title,
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
        workspace: match &args.repo {
            Some(dir) => Some(maos_domain::WorkspaceSpec {
                repo: repository(dir)?,
                base: args.base.clone(),
            }),
            None => None,
        },
        verify: args.verify.clone(),
        wants_port: args.port,
        concerns: args.concerns,
    })?;
    if out.json() {
        return out.document(&json::TaskCreatedDoc::new(&created.task, created.created));
    }
    let t = &created.task;
    if created.created {
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
    if out.json() {
        return out.document(&json::TaskListDoc::new(
            &page.tasks,
            page.next_cursor.map(|c| c.to_string()),
        ));
    }
    if page.tasks.is_empty() {
        out.note("no tasks match; create one with `maos task create`");
    } else {
        let text = human::task_table(out.color(), &page.tasks);
        out.text(&text)?;
    }
    if let Some(cursor) = page.next_cursor {
        out.note(&format!("more tasks: maos task list --cursor {cursor}"));
    }
    Ok(())
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
                    out.document(&json::LogChunkDoc::new(&chunk))?;
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
                    return out.document(&json::LogChunkDoc::new(&all));
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
