//! `maos admin verify`: the database checked against its own event log (the check is the
//! application's `verify` use case; compose.rs opens the database for reading only), shown as
//! text or as one JSON document, exit 8 when something disagrees.

use std::path::Path;

use maos_application::verify::{Finding, Verification};
use serde::Serialize;

use crate::compose;
use crate::error::{CliError, FailureClass};
use crate::escape;
use crate::json;
use crate::output::{Output, Render};

/// `maos admin verify`.
pub(crate) fn verify(dir: &Path, out: &mut Output) -> Result<(), CliError> {
    let v = compose::verify(dir)?;
    out.print(&Verified(&v))?;
    if v.is_clean() {
        return Ok(());
    }
    let n = v.findings.len();
    let e = CliError::new(
        FailureClass::Inconsistent,
        format!(
            "the database disagrees with its event log: {n} problem{}",
            if n == 1 { "" } else { "s" }
        ),
    )
    .with_hint(
        "the database was changed outside MAOS or is damaged; keep a copy of the data \
         directory before changing anything",
    );
    Err(out.said_by_the_document(e))
}

/// What `admin verify` found: the counts, and each problem.
struct Verified<'a>(&'a Verification);

impl Render for Verified<'_> {
    fn document(&self) -> impl Serialize {
        VerifyDoc::new(self.0)
    }

    fn human(&self, out: &mut Output) -> Result<(), CliError> {
        out.text(&text(self.0))
    }
}

fn text(v: &Verification) -> String {
    let counts = format!(
        "{} event{} (last seq {}), {} agent{}, {} task{}, {} orchestration{}",
        v.events,
        plural(v.events),
        v.last_seq,
        v.agents,
        plural(v.agents as u64),
        v.tasks,
        plural(v.tasks as u64),
        v.orchestrations,
        plural(v.orchestrations as u64),
    ) + &match v.memories {
        0 => String::new(),
        1 => ", 1 memory entry".to_owned(),
        n => format!(", {n} memory entries"),
    };
    if v.is_clean() {
        return format!("the database agrees with its event log: {counts}");
    }
    let mut s = format!("checked {counts}; problems:");
    for f in &v.findings {
        s.push_str(&format!(
            "\n  {:<20}  {}",
            f.kind.as_str(),
            escape::line(&f.message)
        ));
    }
    s
}

fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// The document of `admin verify --json`.
#[derive(Debug, Serialize)]
struct VerifyDoc {
    schema_version: u32,
    clean: bool,
    events: u64,
    last_seq: u64,
    agents: usize,
    tasks: usize,
    orchestrations: usize,
    memories: usize,
    problems: Vec<ProblemJson>,
}

#[derive(Debug, Serialize)]
struct ProblemJson {
    kind: &'static str,
    aggregate: &'static str,
    id: Option<String>,
    message: String,
    facts: serde_json::Map<String, serde_json::Value>,
}

impl VerifyDoc {
    fn new(v: &Verification) -> Self {
        VerifyDoc {
            schema_version: json::SCHEMA_VERSION,
            clean: v.is_clean(),
            events: v.events,
            last_seq: v.last_seq,
            agents: v.agents,
            tasks: v.tasks,
            orchestrations: v.orchestrations,
            memories: v.memories,
            problems: v.findings.iter().map(ProblemJson::new).collect(),
        }
    }
}

impl ProblemJson {
    fn new(f: &Finding) -> Self {
        ProblemJson {
            kind: f.kind.as_str(),
            aggregate: f.aggregate,
            id: f.id.clone(),
            message: f.message.clone(),
            facts: f
                .facts
                .iter()
                .map(|(k, v)| ((*k).to_owned(), serde_json::Value::String(v.clone())))
                .collect(),
        }
    }
}
