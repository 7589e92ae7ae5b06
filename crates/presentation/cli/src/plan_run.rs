//! `maos orchestrate run` (a plan file or a workflow becomes an orchestration with its tasks,
//! after the person approves the graph) and `maos workflow list|show|validate`.

use std::path::{Path, PathBuf};

use maos_application::{CreateOrchestration, CreatePlan, CreateTask, MaosApi, PlanTask};
use maos_domain::workflow::{self, Workflow};
use maos_domain::{CapabilitySet, Title, WorkspaceSpec};
use serde::Serialize;

use crate::cli::{RunArgs, WorkflowCommand};
use crate::config_file::{ApprovePlans, Config};
use crate::error::{CliError, Kind};
use crate::escape;
use crate::human;
use crate::input::{FileKind, read_text};
use crate::json;
use crate::orchestrate;
use crate::output::Output;
use crate::plan_file::{self, PlanFile};
use crate::workflow_file;

/// Where workflow files live: `<data dir>/workflows/*.toml` (or `.json`).
pub(crate) const WORKFLOWS_DIR: &str = "workflows";

/// `maos orchestrate run <plan> | --workflow NAME --goal TEXT`.
pub(crate) fn run(
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
            if let Some(base) = &args.base {
                file.base = Some(base.clone());
            }
            if file.base.is_some() && file.repo.is_none() {
                return Err(no_repo_for_base());
            }
            plan_of(file)?
        }
        (None, Some(name)) => {
            if args.base.is_some() && args.repo.is_none() {
                return Err(no_repo_for_base());
            }
            let (w, _) = find_workflow(dir, name)?;
            let goal = args.goal.clone().unwrap_or_default();
            let workspace = match &args.repo {
                Some(repo) => Some(WorkspaceSpec {
                    repo: crate::commands::repository(repo)?,
                    base: args.base.clone(),
                }),
                None => None,
            };
            from_workflow(&w, &goal, workspace)?
        }
        (None, None) => {
            return Err(
                CliError::new(Kind::Usage, "name a plan file or a --workflow")
                    .with_hint("maos orchestrate run plan.toml, or --workflow tdd --goal \"…\""),
            );
        }
    };
    every_task_has_an_agent(&plan, api)?;
    // The preview goes where the person reads: stdout for text, stderr beside JSON.
    let preview = orchestrate::preview_text(&plan);
    if out.json() {
        if !args.yes {
            eprintln!("{preview}");
        }
    } else {
        out.text(&preview)?;
        out.text("")?;
    }
    let auto = config.approve_plans == ApprovePlans::Auto;
    orchestrate::approve_plan(args.yes || auto, out)?;
    plan.start = true;
    // Watching streams from before the plan exists: its creation is part of the story.
    let since = if args.watch {
        Some(api.status()?.last_event)
    } else {
        None
    };
    let made = api.create_plan(plan)?;
    let o = &made.orchestration;
    if args.watch {
        if !out.json() {
            out.text(&format!(
                "orchestration {} started with {}",
                o.id.short(),
                tasks_count(made.tasks.len())
            ))?;
        }
        return orchestrate::watch(api, o.id, since, out);
    }
    if out.json() {
        return out.document(&RunDoc {
            schema_version: json::SCHEMA_VERSION,
            orchestration: json::OrchestrationDoc::new(o).orchestration,
            tasks: made
                .tasks
                .iter()
                .map(|(key, t)| KeyedTaskJson {
                    key: key.clone(),
                    task: t.into(),
                })
                .collect(),
        });
    }
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

/// `--base` names where tasks start in a repository; without one it means nothing.
fn no_repo_for_base() -> CliError {
    CliError::new(
        Kind::Usage,
        "--base names the branch tasks start from, but there is no repository",
    )
    .with_hint("give the repository too: --repo DIR (or `repo` in the plan file)")
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
                maos_domain::policy::matcher::is_capable(a, &t.task.capabilities, t.task.tier)
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
        Kind::InvalidInput,
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
        CliError::new(Kind::InvalidInput, format!("{e}\nnothing was created")).with_hint(
            "fix the file and run the command again (docs/orchestrations.md describes the format)",
        )
    })
}

/// The plan a checked plan file describes.
fn plan_of(file: PlanFile) -> Result<CreatePlan, CliError> {
    let workspace = match &file.repo {
        Some(repo) => Some(WorkspaceSpec {
            repo: crate::commands::repository(repo)?,
            base: file.base.clone(),
        }),
        None => None,
    };
    let tasks = plan_file::order(&file)
        .into_iter()
        .map(|t| PlanTask {
            key: t.id.to_string(),
            task: CreateTask {
                prompt: t.prompt.clone(),
                capabilities: t.capabilities.clone(),
                priority: t.priority,
                risk: t.risk,
                tier: t.tier,
                max_attempts: t.max_attempts,
                timeout: t.timeout,
                budget: t.budget,
                verify: t.verify.clone(),
                wants_port: t.wants_port,
                concerns: t.concerns.clone(),
                ..CreateTask::titled(t.title.clone())
            },
            depends_on: t.depends_on.iter().map(ToString::to_string).collect(),
        })
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
        return Err(CliError::new(Kind::InvalidInput, "the goal is empty")
            .with_hint("say what the workflow should achieve: --goal \"Add a --dry-run flag\""));
    }
    let flow: Vec<&str> = w.order().iter().map(|s| s.key.as_str()).collect();
    let name = Title::parse(&human::clip(&format!("{}: {goal}", w.name()), 200)).map_err(|e| {
        CliError::new(
            Kind::InvalidInput,
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

/// A workflow by name (built-in, or `<data dir>/workflows/<name>.toml|.json`) or by file path,
/// with where it came from (`built-in` or the file).
fn find_workflow(dir: &Path, name: &str) -> Result<(Workflow, String), CliError> {
    let as_path = Path::new(name);
    // A path that is not a regular file (a FIFO, a directory) is refused by `read_workflow`.
    if as_path.is_file() || (name.contains('/') && as_path.exists()) {
        return Ok((read_workflow(as_path)?, as_path.display().to_string()));
    }
    if let Some(w) = workflow::builtins()
        .into_iter()
        .find(|w| w.name().as_str() == name)
    {
        return Ok((w, "built-in".to_owned()));
    }
    for ext in ["toml", "json"] {
        let path = dir.join(WORKFLOWS_DIR).join(format!("{name}.{ext}"));
        if path.is_file() {
            return Ok((read_workflow(&path)?, path.display().to_string()));
        }
    }
    let known: Vec<String> = known_workflows(dir)
        .into_iter()
        .filter_map(|(w, _)| w.ok().map(|w| w.name().to_string()))
        .collect();
    Err(
        CliError::new(Kind::NotFound, format!("no workflow named {name:?}")).with_hint(format!(
            "known workflows: {} (`maos workflow list`); a workflow file can be named by its path, \
         or put into {}",
            known.join(", "),
            dir.join(WORKFLOWS_DIR).display()
        )),
    )
}

fn read_workflow(path: &Path) -> Result<Workflow, CliError> {
    let text = read_text(path, FileKind::Workflow)?;
    workflow_file::parse(path, &text).map_err(|e| {
        let lines = e.lines();
        CliError::new(
            Kind::InvalidInput,
            format!(
                "{} has {} problem{}:\n  {}",
                path.display(),
                lines.len(),
                if lines.len() == 1 { "" } else { "s" },
                lines.join("\n  ")
            ),
        )
        .with_hint("fix the file (docs/orchestrations.md describes the format)")
    })
}

/// The built-in workflows, then every workflow file of `<dir>/workflows` (each read, or the
/// error reading it), with where it came from.
fn known_workflows(dir: &Path) -> Vec<(Result<Workflow, CliError>, String)> {
    let mut all: Vec<(Result<Workflow, CliError>, String)> = workflow::builtins()
        .into_iter()
        .map(|w| (Ok(w), "built-in".to_owned()))
        .collect();
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join(WORKFLOWS_DIR))
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml" || e == "json"))
        .collect();
    files.sort();
    for path in files {
        let source = path.display().to_string();
        all.push((read_workflow(&path), source));
    }
    all
}

/// `maos workflow list|show|validate`.
pub(crate) fn workflow(
    cmd: &WorkflowCommand,
    dir: &Path,
    out: &mut Output,
) -> Result<(), CliError> {
    match cmd {
        WorkflowCommand::List => {
            let all = known_workflows(dir);
            if out.json() {
                let list: Vec<WorkflowJson> = all
                    .iter()
                    .filter_map(|(w, source)| w.as_ref().ok().map(|w| WorkflowJson::new(w, source)))
                    .collect();
                return out.document(&WorkflowListDoc {
                    schema_version: json::SCHEMA_VERSION,
                    workflows: list,
                });
            }
            let mut rows = Vec::new();
            for (w, source) in &all {
                match w {
                    Ok(w) => rows.push(vec![
                        w.name().to_string(),
                        w.version().to_string(),
                        stage_flow(w),
                        source.clone(),
                    ]),
                    Err(e) => out.note(&format!("skipped {source}: {}", e.message)),
                }
            }
            out.text(&human::table(
                out.color(),
                &["NAME", "VERSION", "STAGES", "SOURCE"],
                rows,
            ))
        }
        WorkflowCommand::Show { name } => {
            let (w, source) = find_workflow(dir, name)?;
            if out.json() {
                return out.document(&WorkflowDoc {
                    schema_version: json::SCHEMA_VERSION,
                    workflow: WorkflowJson::new(&w, &source),
                });
            }
            out.text(&show_text(&w, out.color()))
        }
        WorkflowCommand::Validate { file } => {
            let w = read_workflow(file)?;
            if out.json() {
                return out.document(&WorkflowDoc {
                    schema_version: json::SCHEMA_VERSION,
                    workflow: WorkflowJson::new(&w, &file.display().to_string()),
                });
            }
            out.text(&format!(
                "{} is a valid workflow: {} version {}, {} stage{} ({})",
                file.display(),
                w.name(),
                w.version(),
                w.stages().len(),
                if w.stages().len() == 1 { "" } else { "s" },
                stage_flow(&w)
            ))
        }
    }
}

fn stage_flow(w: &Workflow) -> String {
    w.order()
        .iter()
        .map(|s| s.key.as_str())
        .collect::<Vec<_>>()
        .join(" → ")
}

fn show_text(w: &Workflow, color: bool) -> String {
    let mut s = format!("{} version {}", w.name(), w.version());
    if !w.description().is_empty() {
        s.push_str(&format!(": {}", escape::line(w.description())));
    }
    s.push('\n');
    let rows = w
        .order()
        .into_iter()
        .map(|st| {
            let after: Vec<&str> = w.inputs_of(&st.key).iter().map(|k| k.as_str()).collect();
            vec![
                st.key.to_string(),
                st.title.clone(),
                st.capabilities.to_string(),
                st.tier.map_or_else(|| "any".into(), |t| t.to_string()),
                st.risk.to_string(),
                st.verify.clone().unwrap_or_else(|| "-".into()),
                if after.is_empty() {
                    "-".into()
                } else {
                    after.join(", ")
                },
            ]
        })
        .collect();
    s.push_str(&human::table(
        color,
        &[
            "STAGE",
            "TITLE",
            "CAPABILITIES",
            "TIER",
            "RISK",
            "VERIFY",
            "AFTER",
        ],
        rows,
    ));
    s
}

#[derive(Debug, Serialize)]
struct WorkflowListDoc {
    schema_version: u32,
    workflows: Vec<WorkflowJson>,
}

#[derive(Debug, Serialize)]
struct WorkflowDoc {
    schema_version: u32,
    workflow: WorkflowJson,
}

#[derive(Debug, Serialize)]
struct WorkflowJson {
    name: String,
    version: u32,
    description: String,
    source: String,
    stages: Vec<StageJson>,
    handoffs: Vec<HandoffJson>,
}

#[derive(Debug, Serialize)]
struct StageJson {
    key: String,
    title: String,
    capabilities: Vec<String>,
    tier: Option<&'static str>,
    risk: &'static str,
    verify: Option<String>,
    prompt: String,
}

#[derive(Debug, Serialize)]
struct HandoffJson {
    from: String,
    to: String,
}

impl WorkflowJson {
    fn new(w: &Workflow, source: &str) -> Self {
        WorkflowJson {
            name: w.name().to_string(),
            version: w.version(),
            description: w.description().to_owned(),
            source: source.to_owned(),
            stages: w
                .order()
                .into_iter()
                .map(|s| StageJson {
                    key: s.key.to_string(),
                    title: s.title.clone(),
                    capabilities: s.capabilities.iter().map(ToString::to_string).collect(),
                    tier: s.tier.map(|t| t.as_str()),
                    risk: s.risk.as_str(),
                    verify: s.verify.clone(),
                    prompt: s.prompt.clone(),
                })
                .collect(),
            handoffs: w
                .handoffs()
                .iter()
                .map(|(a, b)| HandoffJson {
                    from: a.to_string(),
                    to: b.to_string(),
                })
                .collect(),
        }
    }
}
