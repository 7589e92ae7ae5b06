//! `maos workflow list|show|validate`: the workflows `maos orchestrate run --workflow` turns into
//! tasks (built in, or files of the data directory), and how one is found by name or path.

use std::path::{Path, PathBuf};

use maos_domain::workflow::{self, Workflow};
use serde::Serialize;

use crate::cli::WorkflowCommand;
use crate::error::{CliError, FailureClass};
use crate::escape;
use crate::human;
use crate::input::{FileKind, read_text};
use crate::json;
use crate::output::{Output, Render};
use crate::workflow_file;

/// Where workflow files live: `<data dir>/workflows/*.toml` (or `.json`).
pub(crate) const WORKFLOWS_DIR: &str = "workflows";

/// A workflow by name (built-in, or `<data dir>/workflows/<name>.toml|.json`) or by file path,
/// with where it came from (`built-in` or the file).
pub(crate) fn find_workflow(dir: &Path, name: &str) -> Result<(Workflow, String), CliError> {
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
    Err(CliError::new(
        FailureClass::NotFound,
        format!("no workflow named {name:?}"),
    )
    .with_hint(format!(
        "known workflows: {} (`maos workflow list`); a workflow file can be named by its path, \
         or put into {}",
        known.join(", "),
        dir.join(WORKFLOWS_DIR).display()
    )))
}

fn read_workflow(path: &Path) -> Result<Workflow, CliError> {
    let text = read_text(path, FileKind::Workflow)?;
    workflow_file::parse(path, &text).map_err(|e| {
        let lines = e.lines();
        CliError::new(
            FailureClass::InvalidInput,
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
pub(crate) fn known_workflows(dir: &Path) -> Vec<(Result<Workflow, CliError>, String)> {
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
pub(super) fn execute(cmd: &WorkflowCommand, dir: &Path, out: &mut Output) -> Result<(), CliError> {
    match cmd {
        WorkflowCommand::List => out.print(&Known(known_workflows(dir))),
        WorkflowCommand::Show { name } => {
            let (workflow, source) = find_workflow(dir, name)?;
            out.print(&Shown { workflow, source })
        }
        WorkflowCommand::Validate { file } => {
            let workflow = read_workflow(file)?;
            out.print(&Valid {
                workflow,
                file: file.display().to_string(),
            })
        }
    }
}

/// `workflow list`: every workflow that reads, with where it came from; the others are skipped
/// with a note.
struct Known(Vec<(Result<Workflow, CliError>, String)>);

impl Render for Known {
    fn document(&self) -> impl Serialize {
        let list: Vec<WorkflowJson> = self
            .0
            .iter()
            .filter_map(|(w, source)| w.as_ref().ok().map(|w| WorkflowJson::new(w, source)))
            .collect();
        WorkflowListDoc {
            schema_version: json::SCHEMA_VERSION,
            workflows: list,
        }
    }

    fn human(&self, out: &mut Output) -> Result<(), CliError> {
        let mut rows = Vec::new();
        for (w, source) in &self.0 {
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
}

/// `workflow show`: its stages as a table.
struct Shown {
    workflow: Workflow,
    source: String,
}

impl Render for Shown {
    fn document(&self) -> impl Serialize {
        WorkflowDoc {
            schema_version: json::SCHEMA_VERSION,
            workflow: WorkflowJson::new(&self.workflow, &self.source),
        }
    }

    fn human(&self, out: &mut Output) -> Result<(), CliError> {
        out.text(&show_text(&self.workflow, out.color()))
    }
}

/// `workflow validate`: the file holds a valid workflow.
struct Valid {
    workflow: Workflow,
    file: String,
}

impl Render for Valid {
    fn document(&self) -> impl Serialize {
        WorkflowDoc {
            schema_version: json::SCHEMA_VERSION,
            workflow: WorkflowJson::new(&self.workflow, &self.file),
        }
    }

    fn human(&self, out: &mut Output) -> Result<(), CliError> {
        let w = &self.workflow;
        out.text(&format!(
            "{} is a valid workflow: {} version {}, {} stage{} ({})",
            self.file,
            w.name(),
            w.version(),
            w.stages().len(),
            if w.stages().len() == 1 { "" } else { "s" },
            stage_flow(w)
        ))
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
    let learning: Vec<&str> = w
        .order()
        .into_iter()
        .filter(|st| w.lessons_of(st))
        .map(|st| st.key.as_str())
        .collect();
    if !learning.is_empty() {
        s.push_str(&format!(
            "Lessons after failed attempts: {}\n",
            learning.join(", ")
        ));
    }
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
    /// Its task asks for a lesson after failed attempts (absent when not).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    lessons: bool,
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
                    lessons: w.lessons_of(s),
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
