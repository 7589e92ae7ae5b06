//! `maos orchestrate run <plan> | --workflow NAME --goal TEXT`: a plan file or a workflow becomes
//! an orchestration with its tasks, after the person approves the graph.

use std::path::Path;

use maos_application::{
    CreateOrchestration, CreatePlan, CreateTask, IdRef, MaosApi, PlanCreated, PlanGoal, PlanTask,
};
use maos_domain::workflow::Workflow;
use maos_domain::{CapabilitySet, MaxAttempts, Title, WorkspaceSpec};
use maos_plans::plan_file::{self, PlanFile};
use serde::Serialize;

use crate::cli::RunArgs;
use crate::commands::workflow::find_workflow;
use crate::commands::{chosen_repository, chosen_workspace, no_repo_for_base, repository};
use crate::config_file::Config;
use crate::error::{CliError, FailureClass};
use crate::human;
use crate::input::{FileKind, read_text};
use crate::json;
use crate::output::{Output, Render};

/// `maos orchestrate run <plan> | --workflow NAME --goal TEXT`.
pub(super) fn run(
    args: RunArgs,
    dir: &Path,
    api: &dyn MaosApi,
    out: &mut Output,
) -> Result<(), CliError> {
    let config = Config::load(dir)?;
    let mut plan = match (&args.plan, &args.workflow) {
        (Some(path), _) => {
            let mut file = read_plan_file(path, api)?;
            if let Some(repo) = &args.repo {
                file.repo = Some(repo.clone());
            }
            if file.repo.is_none() {
                file.repo =
                    chosen_repository(None, args.no_repo, out)?.map(std::path::PathBuf::from);
            }
            if let Some(base) = &args.base {
                file.base = Some(base.clone());
            }
            if file.base.is_some() && file.repo.is_none() {
                return Err(no_repo_for_base());
            }
            plan_of(file)?
        }
        (None, None) if args.goal.is_some() => {
            let auto = config.service.approve_plans;
            return run_goal(args, auto, api, out);
        }
        (None, Some(name)) => {
            let (w, _) = find_workflow(dir, name)?;
            let goal = args.goal.clone().unwrap_or_default();
            let workspace = chosen_workspace(
                args.repo.as_deref(),
                args.no_repo,
                args.base.as_deref(),
                out,
            )?;
            from_workflow(&w, &goal, workspace)?
        }
        (None, None) => {
            return Err(
                CliError::new(FailureClass::Usage, "name a plan file or a --workflow")
                    .with_hint("maos orchestrate run plan.toml, or --workflow tdd --goal \"…\""),
            );
        }
    };
    every_task_has_an_agent(&plan, api)?;
    // The preview goes where the person reads: stdout for text, stderr beside JSON.
    let preview = super::preview_text(&plan);
    if out.json() {
        if !args.yes {
            eprintln!("{preview}");
        }
    } else {
        out.text(&preview)?;
        out.text("")?;
    }
    let auto = config.service.approve_plans;
    super::approve_plan(args.yes || auto, out)?;
    plan.start = true;
    // Watching streams from before the plan exists: its creation is part of the story.
    let since = if args.watch {
        Some(api.status()?.last_event)
    } else {
        None
    };
    let made = api.create_plan(plan)?;
    if args.watch {
        // Watching streams: the heading is text only, the stream says it with --json.
        if !out.json() {
            out.text(&format!(
                "orchestration {} started with {}",
                made.orchestration.id.short(),
                tasks_count(made.tasks.len())
            ))?;
        }
        return super::watch(api, made.orchestration.id, since, out);
    }
    out.print(&Started(made))
}

/// What `orchestrate run` created: the orchestration, started, and its tasks by plan key.
pub(crate) struct Started(pub(crate) PlanCreated);

impl Render for Started {
    fn document(&self) -> impl Serialize {
        let made = &self.0;
        RunDoc {
            schema_version: json::SCHEMA_VERSION,
            orchestration: json::OrchestrationDoc::new(&made.orchestration).orchestration,
            tasks: made
                .tasks
                .iter()
                .map(|(key, t)| KeyedTaskJson {
                    key: key.clone(),
                    task: t.into(),
                })
                .collect(),
        }
    }

    fn human(&self, out: &mut Output) -> Result<(), CliError> {
        let made = &self.0;
        let o = &made.orchestration;
        let lines: Vec<String> = made
            .tasks
            .iter()
            .map(|(key, t)| format!("  {key} → task {} ({})", t.id.short(), t.state))
            .collect();
        out.text(&format!(
            "orchestration {} started with {}:\n{}",
            o.id.short(),
            tasks_count(made.tasks.len()),
            lines.join("\n")
        ))?;
        out.note(&format!(
            "watch it: maos orchestrate status {} --watch",
            o.id.short()
        ));
        Ok(())
    }
}

/// `1 task`, `4 tasks`.
fn tasks_count(n: usize) -> String {
    format!("{n} task{}", if n == 1 { "" } else { "s" })
}

/// `orchestrate run --json`: what was created.
#[derive(Debug, Serialize)]
struct RunDoc {
    schema_version: u32,
    orchestration: json::OrchestrationJson,
    tasks: Vec<KeyedTaskJson>,
}

#[derive(Debug, Serialize)]
struct KeyedTaskJson {
    key: String,
    task: json::TaskJson,
}

/// Refuses a plan with a task that no registered agent taking work can do: none offers all of
/// its capabilities in its tier (tasks without capabilities get theirs from the routing rules
/// later, and are not checked here).
fn every_task_has_an_agent(plan: &CreatePlan, api: &dyn MaosApi) -> Result<(), CliError> {
    let agents = api.list_agents(&maos_application::AgentFilter::default())?;
    let working: Vec<&maos_domain::Agent> = agents.iter().filter(|a| a.accepts_work()).collect();
    let problems: Vec<String> = plan
        .tasks
        .iter()
        .filter(|t| !t.task.capabilities.is_empty())
        .filter(|t| {
            !working.iter().any(|a| {
                maos_domain::policy::matcher::is_capable(
                    a,
                    maos_domain::policy::matcher::Needs::new(&t.task.capabilities, t.task.tier),
                )
            })
        })
        .map(|t| {
            let tier = t
                .task
                .tier
                .map(|tier| format!(" of the {tier} tier"))
                .unwrap_or_default();
            format!(
                "task `{}` needs an agent{tier} offering all of [{}]: no registered agent that \
                 takes work does",
                t.key, t.task.capabilities
            )
        })
        .collect();
    if problems.is_empty() {
        return Ok(());
    }
    Err(CliError::new(
        FailureClass::InvalidInput,
        format!(
            "no agent can do {} of the plan's tasks; nothing was created:\n  {}",
            problems.len(),
            problems.join("\n  ")
        ),
    )
    .with_hint(
        "register an agent that offers them (`maos agent register`), resume a drained one \
         (`maos agent resume`), or change the plan",
    ))
}

/// The union of the capabilities of every agent that is registered (and not removed).
fn offered(api: &dyn MaosApi) -> Result<CapabilitySet, CliError> {
    let agents = api.list_agents(&maos_application::AgentFilter::default())?;
    Ok(agents
        .iter()
        .flat_map(|a| a.capabilities.iter().cloned())
        .collect())
}

/// Reads and checks a plan file (every problem at once).
fn read_plan_file(path: &Path, api: &dyn MaosApi) -> Result<PlanFile, CliError> {
    let text = read_text(path, FileKind::Plan)?;
    plan_file::parse(path, &text, &offered(api)?).map_err(|e| {
        CliError::new(
            FailureClass::InvalidInput,
            format!("{e}\nnothing was created"),
        )
        .with_hint(
            "fix the file and run the command again (docs/orchestrations.md describes the format)",
        )
    })
}

/// The plan a checked plan file describes.
fn plan_of(file: PlanFile) -> Result<CreatePlan, CliError> {
    let workspace = match &file.repo {
        Some(repo) => Some(WorkspaceSpec {
            repo: repository(repo)?,
            base: file.base.clone(),
        }),
        None => None,
    };
    let tasks = plan_file::order(&file)
        .into_iter()
        .map(PlanTask::of)
        .collect();
    Ok(CreatePlan {
        orchestration: CreateOrchestration {
            name: file.name,
            goal: Some(file.goal),
            workspace,
            verify: file.verify,
            notes: file.notes,
        },
        tasks,
        start: false,
    })
}

/// The plan that runs workflow `w` for `goal`: one task per stage, each depending on the stages
/// that hand off to it (whose outputs its briefing carries).
fn from_workflow(
    w: &Workflow,
    goal: &str,
    workspace: Option<WorkspaceSpec>,
) -> Result<CreatePlan, CliError> {
    let goal = goal.trim();
    if goal.is_empty() {
        return Err(
            CliError::new(FailureClass::InvalidInput, "the goal is empty")
                .with_hint("say what the workflow should achieve: --goal \"Add a --dry-run flag\""),
        );
    }
    let flow: Vec<&str> = w.order().iter().map(|s| s.key.as_str()).collect();
    let name = Title::parse(&human::clip(&format!("{}: {goal}", w.name()), 200)).map_err(|e| {
        CliError::new(
            FailureClass::InvalidInput,
            format!("the goal makes a bad name: {}", e.reason),
        )
        .with_hint("use a one-line goal")
    })?;
    let tasks = w
        .order()
        .into_iter()
        .map(|stage| PlanTask {
            key: stage.key.as_str().to_owned(),
            task: CreateTask {
                prompt: Workflow::render_prompt(stage, goal),
                capabilities: stage.capabilities.clone(),
                risk: stage.risk,
                tier: stage.tier,
                verify: stage.verify.clone(),
                lessons: w.lessons_of(stage),
                ..CreateTask::titled(Title::parse(&stage.title).unwrap_or_else(|_| {
                    Title::parse(stage.key.as_str()).unwrap_or_else(|_| name.clone())
                }))
            },
            depends_on: w
                .inputs_of(&stage.key)
                .into_iter()
                .map(|k| k.as_str().to_owned())
                .collect(),
        })
        .collect();
    Ok(CreatePlan {
        orchestration: CreateOrchestration {
            name,
            goal: Some(goal.to_owned()),
            workspace,
            verify: None,
            notes: vec![format!(
                "This task is one stage of the workflow {} (version {}): {}.",
                w.name(),
                w.version(),
                flow.join(" → ")
            )],
        },
        tasks,
        start: false,
    })
}

/// `maos orchestrate run --goal TEXT`: a planner plans the goal; the person reviews the plan on
/// the terminal (approve, edit, regenerate with feedback, reject) unless `--yes` or the
/// configuration approves it; then it runs (and is watched with `--watch`).
fn run_goal(
    args: RunArgs,
    auto: bool,
    api: &dyn MaosApi,
    out: &mut Output,
) -> Result<(), CliError> {
    use crate::commands::plan::{Ended, editable, in_editor, show_outcome, wait_for_planner};
    // With --json there is no terminal conversation: without --yes (or the configuration's
    // approval) the plan would wait for nobody. Say so before a planner is paid for.
    if out.json() && !args.yes && !auto {
        return Err(CliError::new(
            FailureClass::Usage,
            "--json with --goal needs --yes (or approve_plans = \"auto\"): nobody could approve \
             the plan here",
        )
        .with_hint("run it again with --yes, or plan it with `maos plan` and approve it later"));
    }
    let goal = args.goal.clone().unwrap_or_default();
    let workspace = chosen_workspace(
        args.repo.as_deref(),
        args.no_repo,
        args.base.as_deref(),
        out,
    )?;
    // Watching streams from before the planning: it is part of the story.
    let since = api.status()?.last_event;
    let started = api.plan_goal(PlanGoal {
        goal,
        name: None,
        notes: Vec::new(),
        workspace,
        planner: args.planner.clone(),
        max_tasks: PlanGoal::DEFAULT_MAX_TASKS,
        rounds: MaxAttempts::new(PlanGoal::DEFAULT_ROUNDS).unwrap_or_default(),
        budget: None,
        timeout: None,
        discussion: None,
    })?;
    let o = started.orchestration.id;
    let id = IdRef::from(o);
    let (mut ended, mut history) = wait_for_planner(api, o, started.task.id, since, out)?;
    // The plan goes where the person reads: stdout for text, stderr beside JSON.
    let mut made = None;
    loop {
        match ended {
            Ended::Approved => break,
            Ended::Failed | Ended::Cancelled => {
                return show_outcome(ended, history, None, false, out);
            }
            Ended::Proposed => {}
        }
        if out.json() {
            if !args.yes {
                return Err(needs_approval(o));
            }
        } else {
            show_outcome(ended, history.clone(), None, false, out)?;
        }
        if args.yes {
            made = Some(api.approve_plan(&id, None)?);
            break;
        }
        let answer = crate::commands::ask_line(
            "Run this plan? [y]es, [e]dit, [r]egenerate with feedback, re[j]ect, [q]uit (decide later)",
            out,
        )?;
        match answer.as_deref().map(str::trim) {
            None => return Err(needs_approval(o)),
            Some("y" | "Y" | "yes") => {
                made = Some(api.approve_plan(&id, None)?);
                break;
            }
            Some("e" | "edit") => {
                let offered = api
                    .list_agents(&maos_application::AgentFilter::default())?
                    .iter()
                    .fold(CapabilitySet::empty(), |all, a| all.union(&a.capabilities));
                let start = editable(&history).unwrap_or_default();
                if let Some(text) = in_editor(o, &start, &offered, out)? {
                    api.propose_plan(&id, text)?;
                }
                history = api.plan_history(&id)?;
            }
            Some("r" | "regenerate") => {
                let Some(feedback) = crate::commands::ask_line("What should change?", out)?
                    .filter(|f| !f.trim().is_empty())
                else {
                    continue;
                };
                let since = api.status()?.last_event;
                let again = api.regenerate_plan(&id, feedback)?;
                (ended, history) = wait_for_planner(api, o, again.task.id, since, out)?;
            }
            Some("j" | "reject") => {
                let reason = crate::commands::ask_line("Why (optional)?", out)?
                    .filter(|r| !r.trim().is_empty());
                api.reject_plan(&id, reason)?;
                return Err(CliError::new(
                    FailureClass::Conflict,
                    format!(
                        "you rejected the plan: orchestration {} is cancelled",
                        o.short()
                    ),
                ));
            }
            Some(_) => {
                return Err(CliError::new(
                    FailureClass::Conflict,
                    format!(
                        "the plan of orchestration {} waits for your decision",
                        o.short()
                    ),
                )
                .with_hint(format!(
                    "decide later: maos plan approve {id} (or edit, regenerate, reject)",
                    id = o.short()
                )));
            }
        }
    }
    if args.watch {
        if !out.json() {
            out.text(&format!("orchestration {} started", o.short()))?;
        }
        return super::watch(api, o, Some(since), out);
    }
    match made {
        Some(made) => out.print(&Started(made)),
        // Approved by the configuration: its tasks exist already.
        None => show_outcome(Ended::Approved, api.plan_history(&id)?, None, false, out),
    }
}

/// The plan waits for a person, and there is nobody here to ask.
fn needs_approval(o: maos_domain::OrchestrationId) -> CliError {
    CliError::new(
        FailureClass::Usage,
        format!(
            "the plan of orchestration {} needs your approval, and there is no terminal to ask on",
            o.short()
        ),
    )
    .with_hint(format!(
        "read it (maos plan show {id}), then approve it: maos plan approve {id}; or run again with --yes",
        id = o.short()
    ))
}
