//! What each command does: turn the parsed arguments into calls on `dyn MaosApi` and print the
//! result as text or as one JSON document (`live.rs` has the commands that keep running).

use std::io::IsTerminal;
use std::path::Path;

use clap::CommandFactory;
use maos_application::{
    AgentFilter, AssignTask, CreateTask, IdRef, LogRequest, MaosApi, Page, RegisterAgent,
    TaskFilter,
};
use maos_domain::CapabilitySet;

use crate::cli::{
    AdminCommand, AgentCommand, AgentListArgs, Cli, Command, CreateArgs, EventsArgs,
    OrchestrateCommand, RegisterArgs, StatusArgs, TaskCommand, TaskListArgs,
};
use crate::error::{CliError, Kind};
use crate::escape;
use crate::human;
use crate::input::{FileKind, read_text, read_text_or_stdin};
use crate::json;
use crate::live;
use crate::output::Output;

/// Runs a command that needs no database.
pub(crate) fn run_offline(command: &Command, out: &mut Output) -> Option<Result<(), CliError>> {
    match command {
        Command::Completions { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(*shell, &mut Cli::command(), "maos", &mut script);
            Some(out.bytes(&script))
        }
        _ => None,
    }
}

/// Runs a command against the API.
pub(crate) fn run(
    command: Command,
    api: &dyn MaosApi,
    dir: &Path,
    out: &mut Output,
) -> Result<(), CliError> {
    match command {
        Command::Agent(cmd) => agent(cmd, api, out),
        Command::Task(cmd) => task(cmd, api, out),
        Command::Orchestrate(cmd) => orchestrate(cmd, api, dir, out),
        Command::Status(args) => status(&args, api, out),
        Command::Workflow(cmd) => crate::plan_run::workflow(&cmd, dir, out),
        Command::Admin(AdminCommand::Verify) => crate::admin::verify(dir, out),
        Command::Events(args) => events(&args, api, out),
        Command::Approve { id } => {
            let t = api.approve(&id)?;
            if out.json() {
                return out.document(&json::TaskDoc::new(&t));
            }
            out.text(&format!(
                "approved task {}: it is {}{}",
                t.id.short(),
                t.state,
                t.reason
                    .as_deref()
                    .map(|r| format!(" ({})", escape::line(r)))
                    .unwrap_or_default()
            ))
        }
        Command::Reject { id, reason, cancel } => {
            let t = api.reject(&id, reason, cancel)?;
            if out.json() {
                return out.document(&json::TaskDoc::new(&t));
            }
            out.text(&format!("rejected: task {} is {}", t.id.short(), t.state))
        }
        Command::Approvals => approvals(api, out),
        Command::Gc {
            dry_run,
            force,
            older_than,
        } => gc(dry_run, force, older_than, api, out),
        Command::Completions { .. } => run_offline(&command, out).unwrap_or(Ok(())),
        // `main` runs the daemon commands before composing an API.
        Command::Daemon(_) => Ok(()),
    }
}

fn agent(cmd: AgentCommand, api: &dyn MaosApi, out: &mut Output) -> Result<(), CliError> {
    match cmd {
        AgentCommand::Register(args) => {
            if let Some(path) = &args.from_file {
                return register_from_file(path, api, out);
            }
            let cmd = register_command(*args)?;
            startable(&cmd).map_err(|why| {
                CliError::new(Kind::InvalidInput, why).with_hint(
                    "give --command a program that exists (a path, or a name on your PATH) and \
                     quote it as a shell would: --command \"sh -c 'echo hi'\"",
                )
            })?;
            let agent = api.register_agent(cmd)?;
            if out.json() {
                return out.document(&json::AgentDoc::new(&agent));
            }
            out.text(&registered_line(&agent))
        }
        AgentCommand::List(AgentListArgs {
            statuses,
            capability,
        }) => {
            let agents = api.list_agents(&AgentFilter {
                statuses,
                capability,
            })?;
            if out.json() {
                return out.document(&json::AgentListDoc::new(&agents));
            }
            if agents.is_empty() {
                out.note("no agents match; register one with `maos agent register`");
                return Ok(());
            }
            let text = human::agent_table(out.color(), &agents);
            out.text(&text)
        }
        AgentCommand::Show { name } => {
            let agent = api.get_agent(&name)?;
            if out.json() {
                return out.document(&json::AgentDoc::new(&agent));
            }
            let text = human::agent_details(out.color(), &agent);
            out.text(&text)
        }
        AgentCommand::Drain { name } => {
            let agent = api.drain_agent(&name)?;
            if out.json() {
                return out.document(&json::AgentDoc::new(&agent));
            }
            out.text(&format!(
                "agent {} is draining: it takes no new work ({} attempt{} still running)",
                agent.name,
                agent.active,
                if agent.active == 1 { "" } else { "s" }
            ))
        }
        AgentCommand::Resume { name } => {
            let agent = api.resume_agent(&name)?;
            if out.json() {
                return out.document(&json::AgentDoc::new(&agent));
            }
            out.text(&format!(
                "agent {} takes work again ({})",
                agent.name, agent.status
            ))
        }
        AgentCommand::Remove { name } => {
            let agent = api.remove_agent(&name)?;
            if out.json() {
                return out.document(&json::AgentDoc::new(&agent));
            }
            out.text(&format!("removed agent {}", agent.name))
        }
    }
}

/// A repository directory as the daemon must see it: absolute, symbolic links resolved.
pub(crate) fn repository(dir: &Path) -> Result<String, CliError> {
    let full = std::fs::canonicalize(dir).map_err(|e| {
        CliError::new(
            Kind::InvalidInput,
            format!("cannot find the repository {}: {e}", dir.display()),
        )
        .with_hint("--repo takes the directory of a git repository")
    })?;
    // A subdirectory names its repository: tasks work on the whole of it (and concern locks
    // compare paths per repository). What is no repository is refused later, with git's words.
    let top = maos_git::GitWorkspaces::new()
        .top_level(&full)
        .unwrap_or(full);
    Ok(top.display().to_string())
}

fn short_commit(commit: &str) -> &str {
    commit.get(..12).unwrap_or(commit)
}

/// `maos approvals`.
fn approvals(api: &dyn MaosApi, out: &mut Output) -> Result<(), CliError> {
    let tasks = api.approvals()?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    let rows: Vec<json::ApprovalJson> = tasks
        .iter()
        .map(|t| {
            let changes = t
                .workspace
                .as_ref()
                .and_then(|_| api.diff_summary(&t.id.into()).ok());
            json::ApprovalJson::new(t, now, changes)
        })
        .collect();
    if out.json() {
        return out.document(&json::ApprovalsDoc {
            schema_version: json::SCHEMA_VERSION,
            approvals: rows,
        });
    }
    if rows.is_empty() {
        out.note("nothing waits for a person");
        return Ok(());
    }
    let text = human::approvals_table(out.color(), &rows);
    out.text(&text)?;
    out.note("decide with `maos approve <id>` or `maos reject <id> --reason \"...\"`");
    Ok(())
}

/// `maos gc`.
fn gc(
    dry_run: bool,
    force: bool,
    older_than: Option<maos_domain::DurationMs>,
    api: &dyn MaosApi,
    out: &mut Output,
) -> Result<(), CliError> {
    let older_than = older_than.map_or(std::time::Duration::from_secs(7 * 86_400), |d| {
        std::time::Duration::from_millis(d.as_millis())
    });
    let entries = api.gc(&maos_application::GcRequest {
        dry_run,
        force,
        older_than,
    })?;
    if out.json() {
        return out.document(&json::GcDoc::new(&entries, dry_run));
    }
    if entries.is_empty() {
        out.note("no worktree of a finished task is old enough to remove");
        return Ok(());
    }
    let mut lines = Vec::new();
    for e in &entries {
        lines.push(match (&e.kept_because, dry_run) {
            (Some(why), _) => format!(
                "kept    {} ({}): {}",
                escape::line(&e.path),
                e.task.short(),
                escape::line(why)
            ),
            (None, true) => format!(
                "would remove {} ({})",
                escape::line(&e.path),
                e.task.short()
            ),
            (None, false) => format!("removed {} ({})", escape::line(&e.path), e.task.short()),
        });
    }
    out.text(&lines.join("\n"))
}

fn registered_line(agent: &maos_domain::Agent) -> String {
    format!(
        "registered agent {} ({}, {}, {} slot{}, capabilities: {})",
        agent.name,
        agent.adapter,
        agent.tier,
        agent.slots,
        if agent.slots.get() == 1 { "" } else { "s" },
        if agent.capabilities.is_empty() {
            "none".to_owned()
        } else {
            agent.capabilities.to_string()
        }
    )
}

/// Refuses a command that can never start: one that cannot be split into words, or whose
/// program does not exist (a path) or is on no directory of `PATH` (a name). The daemon runs it
/// with the `PATH` of the command that started it, usually this one's.
fn startable(cmd: &RegisterAgent) -> Result<(), String> {
    use maos_domain::AdapterKind;
    use std::os::unix::fs::PermissionsExt;
    let runs_a_program = matches!(
        cmd.adapter,
        AdapterKind::Command | AdapterKind::ClaudeCode | AdapterKind::Codex
    );
    let Some(line) = cmd.command.as_deref().filter(|_| runs_a_program) else {
        return Ok(());
    };
    let shown = crate::human::clip(line, 80);
    let words = maos_agents::plan::split_command(line)
        .map_err(|e| format!("the command {shown:?} cannot be split into words: {e}"))?;
    let Some(program) = words.first() else {
        return Err("the command is empty".to_owned());
    };
    let executable = |p: &Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        if executable(Path::new(program)) {
            return Ok(());
        }
        return Err(if Path::new(program).exists() {
            format!("the program {program:?} of the command {shown:?} is not an executable file")
        } else {
            format!("the program {program:?} of the command {shown:?} does not exist")
        });
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    if std::env::split_paths(&path).any(|dir| executable(&dir.join(program))) {
        return Ok(());
    }
    Err(format!(
        "the program {program:?} of the command {shown:?} is not on your PATH"
    ))
}

/// The registration the flags describe (clap requires a name and an adapter without a file).
fn register_command(args: RegisterArgs) -> Result<RegisterAgent, CliError> {
    let (Some(name), Some(adapter)) = (args.name, args.adapter) else {
        return Err(CliError::new(
            Kind::InvalidInput,
            "name the agent and its adapter, or give --from-file",
        )
        .with_hint("maos agent register <NAME> --adapter <KIND>"));
    };
    let mut limits = maos_domain::ResourceLimits::default();
    for (name, value) in &args.limits {
        name.set(&mut limits, *value);
    }
    let settings = maos_domain::AgentSettings {
        limits,
        args: args.args,
        prompt_via: args.prompt_via.unwrap_or_default(),
        env: args.env,
        timeout: args.timeout,
        model: args.model,
        base_url: args.base_url,
        api_key_env: args.api_key_env,
        permissions: maos_domain::policy::permission::PermissionRules {
            deny: args.deny,
            ask: args.ask,
            allow: args.allow,
        },
        delay: args.delay,
        verify: args.verify,
        ..maos_domain::AgentSettings::default()
    };
    Ok(RegisterAgent {
        name,
        adapter,
        capabilities: args.capabilities.into_iter().collect(),
        tier: args.tier,
        slots: args.slots,
        command: args.command,
        settings,
    })
}

/// `agent register --from-file`: every agent of the file, after checking all of them (and that
/// none of their names is taken) so that a bad file registers nothing.
fn register_from_file(path: &Path, api: &dyn MaosApi, out: &mut Output) -> Result<(), CliError> {
    let text = read_text(path, FileKind::Agents)?;
    let mut problems = match crate::agents_file::parse(path, &text) {
        Ok(cmds) => {
            let taken: Vec<String> = cmds
                .iter()
                .filter(|c| api.get_agent(&c.name).is_ok())
                .map(|c| {
                    format!(
                        "{}: an agent named {:?} is already registered",
                        path.display(),
                        c.name.as_str()
                    )
                })
                .collect();
            let unstartable: Vec<String> = cmds
                .iter()
                .filter_map(|c| {
                    startable(c).err().map(|why| {
                        format!("{}: agent {:?}: {why}", path.display(), c.name.as_str())
                    })
                })
                .collect();
            if taken.is_empty() && unstartable.is_empty() {
                let mut agents = Vec::with_capacity(cmds.len());
                for cmd in cmds {
                    agents.push(api.register_agent(cmd)?);
                }
                if out.json() {
                    return out.document(&json::AgentListDoc::new(&agents));
                }
                let lines: Vec<String> = agents.iter().map(registered_line).collect();
                return out.text(&lines.join("\n"));
            }
            taken.into_iter().chain(unstartable).collect()
        }
        Err(problems) => crate::diagnostics::render(path, &problems),
    };
    let count = problems.len();
    problems.insert(
        0,
        format!(
            "{} has {count} problem{}; no agent was registered:",
            path.display(),
            if count == 1 { "" } else { "s" }
        ),
    );
    Err(CliError::new(Kind::InvalidInput, problems.join("\n  "))
        .with_hint("fix the file and run the command again (docs/agents.md describes the format)"))
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

fn task(cmd: TaskCommand, api: &dyn MaosApi, out: &mut Output) -> Result<(), CliError> {
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

fn orchestrate(
    cmd: OrchestrateCommand,
    api: &dyn MaosApi,
    dir: &Path,
    out: &mut Output,
) -> Result<(), CliError> {
    match cmd {
        OrchestrateCommand::Create {
            name,
            goal,
            repo,
            base,
            verify,
            notes,
        } => {
            let workspace = match repo {
                Some(dir) => Some(maos_domain::WorkspaceSpec {
                    repo: repository(&dir)?,
                    base,
                }),
                None => None,
            };
            let o = api.create_orchestration(maos_application::CreateOrchestration {
                name,
                goal,
                workspace,
                verify,
                notes,
            })?;
            if out.json() {
                return out.document(&json::OrchestrationDoc::new(&o));
            }
            out.text(&format!(
                "created orchestration {} ({}): {}",
                o.id.short(),
                o.status,
                escape::line(o.name.as_str())
            ))
        }
        OrchestrateCommand::Merge { id, into } => {
            let report = api.merge_orchestration(&id, into)?;
            if out.json() {
                return out.document(&json::MergeDoc::new(&report));
            }
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
        OrchestrateCommand::Run(args) => crate::plan_run::run(args, dir, api, out),
        OrchestrateCommand::Start { id } => {
            let o = api.start_orchestration(&id)?;
            lifecycle_line(out, &o, "started: its ready tasks get agents")
        }
        OrchestrateCommand::Pause { id, now } => {
            let o = api.pause_orchestration(&id, now)?;
            lifecycle_line(
                out,
                &o,
                if now {
                    "paused: its running attempts were stopped and their tasks wait to run again"
                } else {
                    "paused: no new assignments; running attempts finish"
                },
            )
        }
        OrchestrateCommand::Resume { id } => {
            let o = api.resume_orchestration(&id)?;
            lifecycle_line(out, &o, "resumed")
        }
        OrchestrateCommand::Cancel { id, reason } => {
            let o = api.cancel_orchestration(&id, reason)?;
            lifecycle_line(
                out,
                &o,
                "cancelled, with every task of it that had not finished",
            )
        }
        OrchestrateCommand::Status { id, watch } => {
            crate::orchestrate::status(api, &id, watch, out)
        }
        OrchestrateCommand::Graph { id, format } => {
            crate::orchestrate::graph(api, &id, format, out)
        }
        OrchestrateCommand::List => {
            let list = api.list_orchestrations()?;
            if out.json() {
                return out.document(&json::OrchestrationListDoc::new(&list));
            }
            if list.is_empty() {
                out.note("no orchestrations yet; run a plan with `maos orchestrate run` (docs/orchestrations.md)");
                return Ok(());
            }
            let text = human::orchestration_table(out.color(), &list);
            out.text(&text)
        }
        OrchestrateCommand::Show { id } => {
            let o = api.get_orchestration(&id)?;
            if out.json() {
                return out.document(&json::OrchestrationDoc::new(&o));
            }
            let text = human::orchestration_details(out.color(), &o);
            out.text(&text)?;
            out.note(&format!(
                "its tasks: maos task list --orchestration {}",
                o.id.short()
            ));
            Ok(())
        }
    }
}

/// The answer of `orchestrate start|pause|resume|cancel`.
fn lifecycle_line(
    out: &mut Output,
    o: &maos_domain::Orchestration,
    what: &str,
) -> Result<(), CliError> {
    if out.json() {
        return out.document(&json::OrchestrationDoc::new(o));
    }
    out.text(&format!(
        "orchestration {} {what} ({})",
        o.id.short(),
        o.status
    ))
}

fn status(args: &StatusArgs, api: &dyn MaosApi, out: &mut Output) -> Result<(), CliError> {
    if args.watch {
        return live::watch_status(api, out);
    }
    let report = api.status()?;
    if out.json() {
        return out.document(&json::StatusDoc::new(&report));
    }
    let text = human::status(&report);
    out.text(&text)
}

fn events(args: &EventsArgs, api: &dyn MaosApi, out: &mut Output) -> Result<(), CliError> {
    if args.follow {
        return live::follow_events(api, args.since, args.limit, out);
    }
    let limit = args.limit.unwrap_or(EventsArgs::DEFAULT_LIMIT);
    let events = api.read_events(args.since, limit)?;
    if out.json() {
        return out.document(&json::EventsDoc::new(&events, args.since));
    }
    if events.is_empty() {
        out.note(&format!("no events after {}", args.since));
        return Ok(());
    }
    let mut text = String::new();
    for e in &events {
        text.push_str(&human::event_line(e));
        text.push('\n');
    }
    out.text(&text)?;
    if let Some(last) = events.last().filter(|_| events.len() >= limit) {
        out.note(&format!(
            "more events may follow: maos events --since {}",
            last.seq
        ));
    }
    Ok(())
}
