//! The application API: the commands and queries of MAOS as one trait, [`MaosApi`], with the
//! types they take and return. The CLI calls it in process; the daemon serves it over IPC.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use maos_domain::ids::check_prefix;
use maos_domain::policy::concerns::Concern;
use maos_domain::{
    AdapterKind, Agent, AgentName, AgentSettings, AgentStatus, AttemptStart, Capability,
    CapabilitySet, DomainEvent, DurationMs, FencingToken, IdempotencyKey, MaxAttempts, Memory,
    MemoryId, MemoryQuery, MemoryScope, MemorySpec, MemoryText, MemoryTier, Orchestration,
    OrchestrationId, Priority, ProgressNote, Provenance, Risk, RunReport, Slots, Tag, Tags, Task,
    TaskId, TaskState, TaskWorkspace, Tier, Timestamp, Title, Usage, Usd, ValueError,
    WorkspaceSpec,
};

use crate::error::{AgentError, MemoryError, OrchestrationError, QueryError, TaskError};

/// A reference to a task or orchestration as a person types it: the full id or a unique prefix.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdRef(String);

impl IdRef {
    /// The fewest characters a prefix may have: a shorter one would soon name several ids, so
    /// a script that used it would break as tasks are added.
    pub const MIN_LEN: usize = 4;

    /// Parses a reference: 4–25 characters of the id alphabet (case-insensitive).
    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        let prefix = check_prefix("id", raw)?;
        if prefix.chars().count() < Self::MIN_LEN {
            return Err(ValueError {
                what: "id",
                value: raw.to_owned(),
                reason: format!(
                    "an id prefix needs at least {} characters, so that it stays unique as \
                     more are added; give at least {} characters or the full id",
                    Self::MIN_LEN,
                    Self::MIN_LEN
                ),
            });
        }
        Ok(IdRef(prefix))
    }

    /// The lowercase prefix.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod id_ref_tests {
    use super::*;

    #[test]
    fn a_prefix_of_fewer_than_four_characters_is_refused_with_the_rule_and_the_fix() {
        for raw in ["", "a", "ab", "3kq"] {
            let e = IdRef::parse(raw).unwrap_err();
            assert_eq!(e.what, "id");
            if !raw.is_empty() {
                assert!(e.reason.contains("at least 4 characters"), "{}", e.reason);
                assert!(e.reason.contains("the full id"), "{}", e.reason);
            }
        }
    }

    #[test]
    fn four_characters_up_to_the_full_id_are_taken_in_lowercase() {
        assert_eq!(IdRef::parse("3KQ9").unwrap().as_str(), "3kq9");
        let full = "0123456789abcdefghjkmnpqr";
        assert_eq!(IdRef::parse(full).unwrap().as_str(), full);
        assert!(IdRef::parse(&format!("{full}s")).is_err());
        assert!(IdRef::parse("3kqi").is_err());
    }
}

impl fmt::Display for IdRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<TaskId> for IdRef {
    fn from(id: TaskId) -> Self {
        IdRef(id.to_string())
    }
}

impl From<OrchestrationId> for IdRef {
    fn from(id: OrchestrationId) -> Self {
        IdRef(id.to_string())
    }
}

impl From<MemoryId> for IdRef {
    fn from(id: MemoryId) -> Self {
        IdRef(id.to_string())
    }
}

/// Register an agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterAgent {
    pub name: AgentName,
    pub adapter: AdapterKind,
    pub capabilities: CapabilitySet,
    pub tier: Tier,
    pub slots: Slots,
    pub command: Option<String>,
    pub settings: AgentSettings,
}

/// Create a task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateTask {
    pub title: Title,
    pub prompt: String,
    pub capabilities: CapabilitySet,
    pub priority: Priority,
    pub risk: Risk,
    pub tier: Option<Tier>,
    pub depends_on: Vec<IdRef>,
    pub orchestration: Option<IdRef>,
    pub max_attempts: MaxAttempts,
    pub timeout: Option<DurationMs>,
    pub idempotency_key: Option<IdempotencyKey>,
    pub budget: Option<Usd>,
    /// The repository it works in (none: its orchestration's, if any).
    pub workspace: Option<WorkspaceSpec>,
    /// The command that checks its work (none: its orchestration's, then its agent's).
    pub verify: Option<String>,
    /// It needs a TCP port of its own (`MAOS_PORT`).
    pub wants_port: bool,
    /// What no other task may work on at the same time.
    pub concerns: Vec<Concern>,
    /// Only this agent may take it (and so each of its attempts runs on it).
    pub agent: Option<AgentName>,
    /// Ask the agent of an attempt that succeeds after failed ones for a lesson, kept in memory.
    pub lessons: bool,
}

impl CreateTask {
    /// A task with this title and every other field at its default.
    pub fn titled(title: Title) -> Self {
        CreateTask {
            title,
            prompt: String::new(),
            capabilities: CapabilitySet::empty(),
            priority: Priority::default(),
            risk: Risk::default(),
            tier: None,
            depends_on: Vec::new(),
            orchestration: None,
            max_attempts: MaxAttempts::default(),
            timeout: None,
            idempotency_key: None,
            budget: None,
            workspace: None,
            verify: None,
            wants_port: false,
            concerns: Vec::new(),
            agent: None,
            lessons: false,
        }
    }
}

/// Create an orchestration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateOrchestration {
    pub name: Title,
    pub goal: Option<String>,
    /// The repository its tasks work in, and the branch they start from.
    pub workspace: Option<WorkspaceSpec>,
    /// The verification command its tasks inherit.
    pub verify: Option<String>,
    /// Notes pinned to every task's briefing.
    pub notes: Vec<String>,
}

pub use maos_domain::{BlockReason, NextStep, WaitKind, WaitReason};

/// The briefing an attempt's agent received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptBriefing {
    pub attempt: u32,
    /// Exactly the prompt the agent got.
    pub text: String,
    /// Its estimated size in tokens.
    pub tokens: u32,
    /// What was cut to fit the token budget.
    pub cut: Vec<String>,
}

/// One task of a plan: its key in the plan, what to create, and the keys it depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanTask {
    pub key: String,
    /// Its `depends_on` and `orchestration` are ignored: the plan's keys and orchestration are
    /// used.
    pub task: CreateTask,
    pub depends_on: Vec<String>,
}

impl PlanTask {
    /// A task of a checked plan, as it is.
    pub fn of(t: &maos_domain::PlannedTask) -> PlanTask {
        PlanTask {
            key: t.key.to_string(),
            depends_on: t.depends_on.iter().map(ToString::to_string).collect(),
            task: CreateTask {
                title: t.title.clone(),
                prompt: t.prompt.clone(),
                capabilities: t.capabilities.clone(),
                priority: t.priority,
                risk: t.risk,
                tier: t.tier,
                depends_on: Vec::new(),
                orchestration: None,
                max_attempts: t.max_attempts,
                timeout: t.timeout,
                idempotency_key: None,
                budget: t.budget,
                workspace: None,
                verify: t.verify.clone(),
                wants_port: t.wants_port,
                concerns: t.concerns.clone(),
                agent: None,
                lessons: false,
            },
        }
    }

    /// The tasks of a checked plan, in its order, for an orchestration that exists already:
    /// the plan's `verify` is the verification of each task that names none, and its `notes`
    /// close each task's prompt.
    pub fn from_plan(plan: &maos_domain::Plan) -> Vec<PlanTask> {
        let notes = if plan.notes.is_empty() {
            String::new()
        } else {
            let lines: Vec<String> = plan.notes.iter().map(|n| format!("- {n}")).collect();
            format!("\n\nNotes of the plan:\n{}", lines.join("\n"))
        };
        plan.tasks
            .iter()
            .map(|t| {
                let mut p = PlanTask::of(t);
                p.task.prompt.push_str(&notes);
                p.task.verify = p.task.verify.or_else(|| plan.verify.clone());
                p
            })
            .collect()
    }
}

/// Create an orchestration and all its tasks at once (`maos orchestrate run`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatePlan {
    pub orchestration: CreateOrchestration,
    pub tasks: Vec<PlanTask>,
    /// Start it at once (its plan was approved); else it stays a draft until `start`.
    pub start: bool,
}

/// What `create_plan` made: the orchestration, and each task by its key in the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanCreated {
    pub orchestration: Orchestration,
    pub tasks: Vec<(String, Task)>,
}
/// Plan a goal: an orchestration in `draft` whose plan a planner writes, as an
/// attempt of a planning task; its answer, once it passes the plan checks, is version 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanGoal {
    pub goal: String,
    /// A short name (none: the goal, cut).
    pub name: Option<Title>,
    /// Notes for the planner, pinned to every task's briefing too.
    pub notes: Vec<String>,
    /// The repository to plan work in, and the branch it starts from.
    pub workspace: Option<WorkspaceSpec>,
    /// The agent that plans (none: the least loaded strategic agent offering `plan`).
    pub planner: Option<AgentName>,
    /// The most tasks the plan may have.
    pub max_tasks: u32,
    /// The planner's answers checked before the planning stops: the first and the corrections.
    pub rounds: MaxAttempts,
    /// The most the planning may cost, over its rounds.
    pub budget: Option<Usd>,
    /// How long one round may take.
    pub timeout: Option<DurationMs>,
    /// The discussion the goal and notes came from (`discuss_goal`'s task), kept with the plan.
    pub discussion: Option<TaskId>,
}

impl PlanGoal {
    /// The most tasks a plan may have unless the person says otherwise.
    pub const DEFAULT_MAX_TASKS: u32 = 30;
    /// The most tasks a person may allow (a plan is checked and shown whole).
    pub const MAX_TASKS: u32 = 500;
    /// Answers checked before the planning stops, unless the person says otherwise.
    pub const DEFAULT_ROUNDS: u32 = 3;
    /// Turns of a discussion (`discuss_goal`: `rounds` counts them), unless the person says
    /// otherwise.
    pub const DEFAULT_TURNS: u32 = 20;
}

/// A planner at work: the orchestration (a draft, or awaiting approval of an older version) and
/// the planning task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanningStarted {
    pub orchestration: Orchestration,
    pub task: Task,
}

/// An orchestration's plan over time: every version, the decisions on them, the planners that
/// worked on it and what those that failed left (from the orchestration's events).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanHistory {
    pub orchestration: Orchestration,
    /// Oldest first.
    pub versions: Vec<maos_domain::PlanVersion>,
    /// What happened to the plan, oldest first.
    pub record: Vec<PlanRecord>,
}

/// One step of a plan's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanRecord {
    /// A planner started (its task, and the most tasks its plan may have).
    Planning {
        task: TaskId,
        max_tasks: u32,
        /// The discussion the goal came from, if any.
        discussion: Option<TaskId>,
        at: Timestamp,
    },
    /// Version `version` was proposed.
    Proposed { version: u32, at: Timestamp },
    /// A planner gave no acceptable plan: its last plan text and the problems.
    Failed {
        task: TaskId,
        text: Option<String>,
        problems: Vec<String>,
        at: Timestamp,
    },
    Approved {
        version: u32,
        by: maos_domain::orchestration::PlanApprover,
        /// Each task of the version by its key.
        tasks: BTreeMap<maos_domain::PlanKey, TaskId>,
        /// The tasks of the previous version it replaced or dropped.
        superseded: Vec<TaskId>,
        at: Timestamp,
    },
    Rejected {
        version: u32,
        reason: Option<String>,
        at: Timestamp,
    },
}

impl PlanHistory {
    /// The history told by an orchestration's events (any order of kinds; others ignored).
    pub fn from_events<'a>(
        orchestration: Orchestration,
        events: impl IntoIterator<Item = (&'a maos_domain::OrchestrationEvent, Timestamp)>,
    ) -> PlanHistory {
        use maos_domain::OrchestrationEvent as E;
        let mut versions = Vec::new();
        let mut record = Vec::new();
        for (e, at) in events {
            match e {
                E::PlanningStarted { planning } => record.push(PlanRecord::Planning {
                    task: planning.task,
                    max_tasks: planning.max_tasks,
                    discussion: planning.discussion,
                    at,
                }),
                E::PlanProposed { version } => {
                    record.push(PlanRecord::Proposed {
                        version: version.number,
                        at,
                    });
                    versions.push((**version).clone());
                }
                E::PlanningFailed {
                    task,
                    text,
                    problems,
                } => record.push(PlanRecord::Failed {
                    task: *task,
                    text: text.clone(),
                    problems: problems.clone(),
                    at,
                }),
                E::PlanApproved {
                    version,
                    by,
                    tasks,
                    superseded,
                } => record.push(PlanRecord::Approved {
                    version: *version,
                    by: *by,
                    tasks: tasks.clone(),
                    superseded: superseded.clone(),
                    at,
                }),
                E::PlanRejected { version, reason } => record.push(PlanRecord::Rejected {
                    version: *version,
                    reason: reason.clone(),
                    at,
                }),
                _ => {}
            }
        }
        PlanHistory {
            orchestration,
            versions,
            record,
        }
    }

    /// Version `n` (none: the newest).
    pub fn version(&self, n: Option<u32>) -> Option<&maos_domain::PlanVersion> {
        match n {
            Some(n) => self.versions.iter().find(|v| v.number == n),
            None => self.versions.last(),
        }
    }

    /// The planning tasks, oldest first.
    pub fn planners(&self) -> Vec<TaskId> {
        self.record
            .iter()
            .filter_map(|r| match r {
                PlanRecord::Planning { task, .. } => Some(*task),
                _ => None,
            })
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergeReport {
    pub orchestration: Orchestration,
    /// The integration branch that was merged.
    pub branch: String,
    pub into: String,
    /// The merge commit, or the target's commit when there was nothing to merge.
    pub commit: String,
    /// False when `into` already contained everything.
    pub merged: bool,
}

/// Where an orchestration stands, as data (`orchestration_report`): what its tasks came to, what
/// they cost, what waits for a person and what to do about it, and whether anything can still
/// move without one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrchestrationReport {
    pub orchestration: Orchestration,
    /// How many of its tasks are in each state: every state is a key, with 0 when no task is in
    /// it.
    pub by_state: BTreeMap<TaskState, u64>,
    /// How many tasks it has.
    pub tasks: u64,
    /// How many of them completed.
    pub completed: u64,
    /// The attempts its tasks made.
    pub attempts: u32,
    /// From its creation to the last update of its tasks when every task is settled (completed,
    /// cancelled, blocked or awaiting approval), else to now.
    pub wall_ms: u64,
    /// Input tokens its attempts used, cached ones included.
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// What its attempts cost.
    pub cost: Usd,
    /// What planning it took: its planning tasks' (and a discussion's) tokens and cost, apart
    /// from its tasks'.
    pub planning: Usage,
    /// The branch its tasks' work is integrated in, when they work in a repository.
    pub integration_branch: Option<String>,
    /// The tasks that wait for a person, in dependency order.
    pub needs_a_person: Vec<NeedsPerson>,
    /// False when nothing of it can move without a person: it has ended, or every task is
    /// completed, or stopped (blocked, cancelled, awaiting approval), or ready but waiting only
    /// for what a person can change or for a concern a stopped task holds, or pending behind,
    /// however indirectly, a stopped task.
    pub can_move: bool,
}

/// A task that waits for a person, in an [`OrchestrationReport`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NeedsPerson {
    pub task: TaskId,
    pub title: Title,
    pub state: TaskState,
    /// What it waits for.
    pub waits: Vec<WaitReason>,
    /// Why it is blocked (the task's own reason), when it is.
    pub blocked: Option<BlockReason>,
    /// What a person can do, most useful first.
    pub next_steps: Vec<NextStep>,
}

/// A task that waits for a person's decision, as `approvals` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalRequest {
    pub task: Task,
    /// One line summing up what its branch changed (`3 files changed, ...`); none when it has
    /// no worktree, or git could not tell (the listing goes on without it; `diff_summary` says
    /// why).
    pub changes: Option<String>,
}

/// Which worktrees `maos gc` removes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GcRequest {
    /// Only say what would be removed.
    pub dry_run: bool,
    /// Also remove dirty and unmerged worktrees (their uncommitted work is lost).
    pub force: bool,
    /// Only worktrees of tasks that finished at least this long ago.
    pub older_than: std::time::Duration,
}

/// One worktree `maos gc` looked at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GcEntry {
    pub task: TaskId,
    pub path: String,
    /// Removed (or, in a dry run, would be).
    pub removed: bool,
    /// Why it was kept.
    pub kept_because: Option<String>,
}

/// What a create returned: the task, and whether this call created it (false when an earlier
/// call with the same idempotency key did).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Created {
    pub task: Task,
    pub created: bool,
}

/// Assign a task to a named agent, or let the load balancer choose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssignTask {
    pub task: IdRef,
    pub agent: Option<AgentName>,
}

/// The outcome of an assignment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    pub task: Task,
    pub agent: AgentName,
    pub attempt: u32,
    pub fencing: FencingToken,
}

/// Filter for listing agents. Empty `statuses` means every status but `removed`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgentFilter {
    pub statuses: Vec<AgentStatus>,
    pub capability: Option<Capability>,
}

/// Filter for listing tasks. Empty `statuses` means every status.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskFilter {
    pub statuses: Vec<TaskState>,
    pub orchestration: Option<OrchestrationId>,
    pub capability: Option<Capability>,
}

/// Where a page of tasks starts: after the task created at `created_at` with id `id`. Written
/// `<created_at ms>.<task id>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskCursor {
    pub created_at: Timestamp,
    pub id: TaskId,
}

impl TaskCursor {
    /// The cursor that continues after `task`.
    pub fn after(task: &Task) -> Self {
        TaskCursor {
            created_at: task.created_at,
            id: task.id,
        }
    }

    /// Parses `<ms>.<id>` as printed by [`fmt::Display`].
    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        let bad = || ValueError {
            what: "page cursor",
            value: raw.to_owned(),
            reason: "pass the next_cursor printed by the previous page".into(),
        };
        let (ms, id) = raw.split_once('.').ok_or_else(bad)?;
        let ms: i64 = ms.parse().map_err(|_| bad())?;
        let id = TaskId::parse(id).map_err(|_| bad())?;
        Ok(TaskCursor {
            created_at: Timestamp::from_millis(ms),
            id,
        })
    }
}

impl fmt::Display for TaskCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.created_at.as_millis(), self.id)
    }
}

/// A page request: at most `limit` items after `cursor` (from an earlier page's `next_cursor`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub limit: usize,
    pub cursor: Option<TaskCursor>,
}

impl Page {
    /// The largest page size served.
    pub const MAX_LIMIT: usize = 10_000;
}

impl Default for Page {
    fn default() -> Self {
        Page {
            limit: 100,
            cursor: None,
        }
    }
}

/// One page of tasks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskPage {
    pub tasks: Vec<Task>,
    /// Pass this as the next page's cursor; `None` on the last page.
    pub next_cursor: Option<TaskCursor>,
}

/// Adds a memory entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddMemory {
    pub tier: MemoryTier,
    pub scope: MemoryScope,
    pub text: MemoryText,
    pub tags: Tags,
    /// Who writes it: a person (the CLI), or an agent's attempt.
    pub provenance: Provenance,
}

impl AddMemory {
    /// What the entry says.
    pub fn spec(self) -> MemorySpec {
        MemorySpec {
            tier: self.tier,
            scope: self.scope,
            text: self.text,
            tags: self.tags,
            provenance: self.provenance,
        }
    }
}

/// Which memory entries a list or a search considers. Empty `scopes` or `tiers` mean every
/// scope or tier; `tag`, only entries with that tag. Only live entries unless `all` (forgotten
/// and expired ones too); an ephemeral entry past its deadline is never live, even before the
/// sweep marks it expired.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemoryFilter {
    pub scopes: Vec<MemoryScope>,
    pub tiers: Vec<MemoryTier>,
    pub tag: Option<Tag>,
    pub all: bool,
}

impl MemoryFilter {
    /// The most different scopes one filter may name.
    pub const MAX_SCOPES: usize = 64;
}

/// Where a page of memory entries starts: after (older than) the entry added at `created_at`
/// with id `id`. Written `<created_at ms>.<memory id>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryCursor {
    pub created_at: Timestamp,
    pub id: MemoryId,
}

impl MemoryCursor {
    /// The cursor that continues after `memory`.
    pub fn after(memory: &Memory) -> Self {
        MemoryCursor {
            created_at: memory.created_at,
            id: memory.id,
        }
    }

    /// Parses `<ms>.<id>` as printed by [`fmt::Display`].
    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        let bad = || ValueError {
            what: "page cursor",
            value: raw.to_owned(),
            reason: "pass the next_cursor printed by the previous page".into(),
        };
        let (ms, id) = raw.split_once('.').ok_or_else(bad)?;
        let ms: i64 = ms.parse().map_err(|_| bad())?;
        let id = MemoryId::parse(id).map_err(|_| bad())?;
        Ok(MemoryCursor {
            created_at: Timestamp::from_millis(ms),
            id,
        })
    }
}

impl fmt::Display for MemoryCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.created_at.as_millis(), self.id)
    }
}

/// A page request of memory entries: at most `limit`, newest first, after `cursor`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryPage {
    pub limit: usize,
    pub cursor: Option<MemoryCursor>,
}

impl Default for MemoryPage {
    fn default() -> Self {
        MemoryPage {
            limit: 100,
            cursor: None,
        }
    }
}

/// One page of memory entries, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryList {
    pub memories: Vec<Memory>,
    /// Pass this as the next page's cursor; `None` on the last page.
    pub next_cursor: Option<MemoryCursor>,
}

/// A search of memory: the entries that `filter` lets through and that have the query's words,
/// best first, at most `limit`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemorySearch {
    pub query: MemoryQuery,
    pub filter: MemoryFilter,
    pub limit: usize,
}

impl MemorySearch {
    /// The most hits a search returns.
    pub const MAX_LIMIT: usize = 100;
}

/// One entry found, with its score: its tier's weight (critical 4, important 2, routine 1,
/// ephemeral 0.5) times 1 + its relevance to the query (BM25 over the text and the tags, tags
/// counting twice). Higher is better; pinned entries come first whatever their score.
#[derive(Debug, Clone, PartialEq)]
pub struct MemoryHit {
    pub memory: Memory,
    pub score: f64,
}

/// What a search found.
#[derive(Debug, Clone, PartialEq)]
pub struct MemoryHits {
    pub hits: Vec<MemoryHit>,
    /// True when every hit has every word of the query; false when no entry had them all and
    /// the hits are the entries with any of them.
    pub every_word: bool,
}

/// Counts for `maos status`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatusReport {
    pub tasks: BTreeMap<TaskState, u64>,
    pub agents: BTreeMap<AgentStatus, u64>,
    pub orchestrations: u64,
    /// The sequence number of the newest event (0 for an empty log).
    pub last_event: u64,
    /// Tokens and money of every attempt ever made.
    pub usage: Usage,
}

/// A heartbeat from whoever runs an attempt: the attempt holding `fencing` is alive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Heartbeat {
    pub task: TaskId,
    pub fencing: FencingToken,
}

/// A piece of an attempt's log (its captured stdout and stderr, as raw bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogChunk {
    pub task: TaskId,
    /// The attempt number (1, 2, ...).
    pub attempt: u32,
    /// Where `bytes` start in the log.
    pub offset: u64,
    pub bytes: Vec<u8>,
    /// True when the attempt has ended and nothing follows `bytes`: stop reading.
    pub finished: bool,
}

/// Which part of a log to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRequest {
    pub task: IdRef,
    /// The attempt; `None` means the newest.
    pub attempt: Option<u32>,
    /// Read from here.
    pub offset: u64,
    /// At most this many bytes.
    pub max: usize,
    /// When nothing is there yet and the attempt still runs, wait up to this long for output.
    pub wait: Duration,
}

impl LogRequest {
    /// The largest chunk served.
    pub const MAX_CHUNK: usize = 1 << 20;
}

/// An event as stored in the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    /// Position in the log: 1, 2, 3, ... without gaps.
    pub seq: u64,
    pub at: Timestamp,
    pub event: DomainEvent,
}

/// A reader that follows the event log: each [`EventFollower::next_batch`] returns the events
/// committed after the last one it returned (after the `since` it was opened with, at first), in
/// sequence order, with no gap and no duplicate.
///
/// Dropping it stops the following (through the daemon: it cancels the subscription).
pub trait EventFollower: Send {
    /// The next events, waiting up to `timeout` for some to be committed; an empty batch means
    /// none came in that time. An error ends the following: the daemon went away or stopped (kind
    /// `unavailable`), or the store failed; resume with a new follower from the last seq seen.
    fn next_batch(&mut self, timeout: Duration) -> Result<Vec<StoredEvent>, QueryError>;
}

/// Everything MAOS can be asked to do. The CLI calls this trait; an in-process [`crate::Service`]
/// and the daemon's IPC client implement it.
pub trait MaosApi: Send + Sync {
    // agents
    fn register_agent(&self, cmd: RegisterAgent) -> Result<Agent, AgentError>;
    fn drain_agent(&self, name: &AgentName) -> Result<Agent, AgentError>;
    /// Gives a drained agent work again (after its circuit breaker tripped, say).
    fn resume_agent(&self, name: &AgentName) -> Result<Agent, AgentError>;
    fn remove_agent(&self, name: &AgentName) -> Result<Agent, AgentError>;
    fn get_agent(&self, name: &AgentName) -> Result<Agent, QueryError>;
    fn list_agents(&self, filter: &AgentFilter) -> Result<Vec<Agent>, QueryError>;

    // tasks
    fn create_task(&self, cmd: CreateTask) -> Result<Created, TaskError>;
    /// Creates many tasks in one transaction: all or none.
    fn create_tasks(&self, cmds: Vec<CreateTask>) -> Result<Vec<Created>, TaskError>;
    fn add_dependency(&self, task: &IdRef, on: &IdRef) -> Result<Task, TaskError>;
    fn assign_task(&self, cmd: AssignTask) -> Result<Assignment, TaskError>;
    /// The attempt holding `fencing` has started (its process, checkpoint and port, as known).
    fn start_attempt(
        &self,
        task: TaskId,
        fencing: FencingToken,
        start: AttemptStart,
    ) -> Result<Task, TaskError>;
    /// Records the worktree the attempt holding `fencing` works in.
    fn record_workspace(
        &self,
        task: TaskId,
        fencing: FencingToken,
        workspace: TaskWorkspace,
    ) -> Result<Task, TaskError>;
    /// The running attempt holding `fencing` asks a person about a tool call; answer with
    /// `approve` / `reject`, and read the decision in the task's `decision`.
    fn request_approval(
        &self,
        task: TaskId,
        fencing: FencingToken,
        tool: String,
        subject: Option<String>,
    ) -> Result<Task, TaskError>;
    /// Approves what the task waits for: running it (high risk), its result (which is then
    /// integrated and completed), or its agent's tool call.
    fn approve(&self, task: &IdRef) -> Result<Task, TaskError>;
    /// Rejects what the task waits for; a rejected result goes back to the agent with `reason`
    /// (or, with `cancel`, the task ends).
    fn reject(&self, task: &IdRef, reason: String, cancel: bool) -> Result<Task, TaskError>;
    /// Every task waiting for a person's decision, oldest request first, with what its branch
    /// changed.
    fn approvals(&self) -> Result<Vec<ApprovalRequest>, QueryError>;
    /// One line summing up what the task's branch changed (`3 files changed, ...`), for people.
    fn diff_summary(&self, task: &IdRef) -> Result<String, QueryError>;
    /// The diff of an attempt (between its checkpoints), or of the whole task (from its base).
    fn task_diff(
        &self,
        task: &IdRef,
        attempt: Option<u32>,
        stat: bool,
    ) -> Result<String, QueryError>;
    /// Returns the task's branch to a checkpoint: as attempt `to_attempt` left it, or by default
    /// as it was before its newest attempt.
    fn rollback(&self, task: &IdRef, to_attempt: Option<u32>) -> Result<Task, TaskError>;
    /// Removes the worktrees of finished tasks (never a dirty or unmerged one without force).
    fn gc(&self, req: &GcRequest) -> Result<Vec<GcEntry>, TaskError>;
    /// Records the agent's own session id for the attempt holding `fencing`.
    fn record_session(
        &self,
        task: TaskId,
        fencing: FencingToken,
        session: String,
    ) -> Result<Task, TaskError>;
    /// Renews the leases of live attempts, in one transaction. Returns the heartbeats that were
    /// refused because their attempt is no longer current (cancelled, interrupted, superseded):
    /// whoever runs them should stop them.
    fn heartbeat(&self, beats: &[Heartbeat]) -> Result<Vec<Heartbeat>, TaskError>;
    /// The attempt holding `fencing` succeeded. A stale token is refused.
    fn complete_attempt(
        &self,
        task: TaskId,
        fencing: FencingToken,
        summary: Option<String>,
        report: RunReport,
    ) -> Result<Task, TaskError>;
    /// The attempt holding `fencing` failed. A stale token is refused.
    fn fail_attempt(
        &self,
        task: TaskId,
        fencing: FencingToken,
        error: String,
        report: RunReport,
    ) -> Result<Task, TaskError>;
    fn cancel_task(&self, task: &IdRef, reason: Option<String>) -> Result<Task, TaskError>;
    /// A person gives a blocked or failed task `attempts` more attempts (at least one) and makes
    /// it ready again.
    fn retry_task(&self, task: &IdRef, attempts: u32) -> Result<Task, TaskError>;
    fn get_task(&self, task: &IdRef) -> Result<Task, QueryError>;
    /// What a task that is not running waits for (empty: nothing, it runs or is finished).
    fn task_waiting(&self, task: &IdRef) -> Result<Vec<WaitReason>, QueryError>;
    /// The briefing attempt `attempt` (none: the newest) received: exactly its prompt.
    fn task_briefing(
        &self,
        task: &IdRef,
        attempt: Option<u32>,
    ) -> Result<AttemptBriefing, QueryError>;
    fn list_tasks(&self, filter: &TaskFilter, page: &Page) -> Result<TaskPage, QueryError>;
    /// Reads an attempt's captured output.
    fn read_log(&self, req: &LogRequest) -> Result<LogChunk, QueryError>;

    // orchestrations
    fn create_orchestration(
        &self,
        cmd: CreateOrchestration,
    ) -> Result<Orchestration, OrchestrationError>;
    /// Creates an orchestration and every task of its plan in one transaction, dependencies
    /// resolved by the plan's keys; started at once when `start`.
    fn create_plan(&self, plan: CreatePlan) -> Result<PlanCreated, OrchestrationError>;
    /// Plans a goal: a draft orchestration and its planning task, which a planner takes.
    fn plan_goal(&self, goal: PlanGoal) -> Result<PlanningStarted, OrchestrationError>;
    /// Talks a goal over with the planner before planning: a task of
    /// the planner's (`goal.rounds` turns) whose every answer waits for the person: a reply
    /// (rejecting it with the reply as the reason) is the next turn, approving it ends the
    /// discussion. `max_tasks` and `discussion` are ignored.
    fn discuss_goal(&self, goal: PlanGoal) -> Result<Task, OrchestrationError>;
    /// The orchestration's plan: its versions, the decisions, its planners.
    fn plan_history(&self, id: &IdRef) -> Result<PlanHistory, QueryError>;
    /// A person's version of the plan (the text of a plan file, checked like a planner's).
    fn propose_plan(&self, id: &IdRef, text: String) -> Result<Orchestration, OrchestrationError>;
    /// Asks the planner for another version, with the person's feedback on the newest.
    fn regenerate_plan(
        &self,
        id: &IdRef,
        feedback: String,
    ) -> Result<PlanningStarted, OrchestrationError>;
    /// Approves version `version` of the plan (none: the newest, which it must be): creates its
    /// tasks and starts the orchestration.
    fn approve_plan(
        &self,
        id: &IdRef,
        version: Option<u32>,
    ) -> Result<PlanCreated, OrchestrationError>;
    /// Rejects the newest version: before the plan runs, the orchestration is cancelled (with
    /// its planner, if one works); a revision of a running plan is set aside.
    fn reject_plan(
        &self,
        id: &IdRef,
        reason: Option<String>,
    ) -> Result<Orchestration, OrchestrationError>;
    /// Asks the planner for a revision of the plan at work: the work not done yet, given what
    /// completed and why blocked tasks failed (with the person's feedback, if any).
    fn revise_plan(
        &self,
        id: &IdRef,
        feedback: Option<String>,
    ) -> Result<PlanningStarted, OrchestrationError>;
    /// Starts a draft orchestration: its ready tasks get agents.
    fn start_orchestration(&self, id: &IdRef) -> Result<Orchestration, OrchestrationError>;
    /// Stops giving its tasks agents; with `now`, also stops its running attempts and requeues
    /// their tasks.
    fn pause_orchestration(
        &self,
        id: &IdRef,
        now: bool,
    ) -> Result<Orchestration, OrchestrationError>;
    /// Resumes a paused orchestration.
    fn resume_orchestration(&self, id: &IdRef) -> Result<Orchestration, OrchestrationError>;
    /// Cancels an orchestration and every task of it that has not finished.
    fn cancel_orchestration(
        &self,
        id: &IdRef,
        reason: Option<String>,
    ) -> Result<Orchestration, OrchestrationError>;
    /// Merges the orchestration's integration branch into `into` (default: the branch its
    /// tasks started from), refusing a dirty target.
    fn merge_orchestration(
        &self,
        id: &IdRef,
        into: Option<String>,
    ) -> Result<MergeReport, OrchestrationError>;
    fn get_orchestration(&self, id: &IdRef) -> Result<Orchestration, QueryError>;
    fn list_orchestrations(&self) -> Result<Vec<Orchestration>, QueryError>;
    /// Where the orchestration stands: counts, cost, what needs a person, whether it can move.
    fn orchestration_report(&self, id: &IdRef) -> Result<OrchestrationReport, QueryError>;

    // overview
    fn status(&self) -> Result<StatusReport, QueryError>;
    /// The work done since `since` (none: since the first event), until now.
    fn metrics(&self, since: Option<Timestamp>) -> Result<crate::metrics::Metrics, QueryError>;
    fn read_events(&self, after: u64, limit: usize) -> Result<Vec<StoredEvent>, QueryError>;
    /// Follows the event log from `since` (exclusive): what exists already, then new events as
    /// they are committed.
    fn follow_events(&self, since: u64) -> Result<Box<dyn EventFollower>, QueryError>;

    // memory
    /// Adds a memory entry; an ephemeral one expires after the configured time.
    fn add_memory(&self, cmd: AddMemory) -> Result<Memory, MemoryError>;
    fn get_memory(&self, id: &IdRef) -> Result<Memory, MemoryError>;
    /// One page of entries, newest first.
    fn list_memories(
        &self,
        filter: &MemoryFilter,
        page: &MemoryPage,
    ) -> Result<MemoryList, MemoryError>;
    /// The entries with the query's words, best first.
    fn search_memories(&self, search: &MemorySearch) -> Result<MemoryHits, MemoryError>;
    /// Pins an entry: it ranks first and never expires.
    fn pin_memory(&self, id: &IdRef) -> Result<Memory, MemoryError>;
    fn unpin_memory(&self, id: &IdRef) -> Result<Memory, MemoryError>;
    /// Forgets an entry (it stays in the event log).
    fn forget_memory(&self, id: &IdRef, reason: Option<String>) -> Result<Memory, MemoryError>;

    // an agent's own calls (its tools)
    /// The attempt `credential` was given to, while that attempt is the task's current one and
    /// runs; refused ([`crate::ErrorKind::Denied`]) for an unknown credential or a stale attempt.
    fn authenticate_agent(&self, credential: &AgentCredential) -> Result<AgentScope, TaskError>;
    /// The running attempt holding `fencing` says how it is getting on: an event, and a line in
    /// its log.
    fn report_progress(
        &self,
        task: TaskId,
        fencing: FencingToken,
        note: ProgressNote,
    ) -> Result<Task, TaskError>;
    /// The running attempt holding `fencing` splits off subtasks: a small DAG checked like a
    /// plan, in the task's orchestration (or standalone with it), within
    /// [`maos_domain::MAX_SUBTASKS`] per task and [`maos_domain::MAX_SUBTASK_DEPTH`] levels.
    fn create_subtasks(
        &self,
        task: TaskId,
        fencing: FencingToken,
        cmd: CreateSubtasks,
    ) -> Result<Vec<Created>, TaskError>;
}

/// The secret MAOS gives one attempt's agent for its tools: it stands for that attempt while it
/// runs. 32–128 characters of `A-Z a-z 0-9 - _`. Its `Debug` never shows it.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct AgentCredential(String);

impl AgentCredential {
    /// Parses a credential (its shape only: whether it stands for an attempt is the daemon's
    /// to say).
    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        let ok_len = (32..=128).contains(&raw.len());
        let ok_chars = raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !ok_len || !ok_chars {
            return Err(ValueError {
                what: "agent credential",
                value: String::new(),
                reason: "it is not a credential MAOS gives agents (32 to 128 letters, digits, \
                         '-' and '_')"
                    .to_owned(),
            });
        }
        Ok(AgentCredential(raw.to_owned()))
    }

    /// The secret itself, to send or compare; never to print.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for AgentCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AgentCredential(..)")
    }
}

/// Compares two secrets (tokens, credentials) in time that depends only on their lengths, so
/// that how long a refusal takes says nothing about how much of a guess was right.
pub fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// What an agent's credential stands for: a current attempt, and what it may touch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentScope {
    pub task: TaskId,
    pub attempt: u32,
    pub fencing: FencingToken,
    /// The task's orchestration: the agent may read its tasks and report.
    pub orchestration: Option<OrchestrationId>,
    /// The memory scopes it reads and writes: its repository's and its orchestration's (and
    /// the global one).
    pub scopes: Vec<MemoryScope>,
}

/// Subtasks an agent splits off its task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateSubtasks {
    /// The subtasks, with keys and dependencies among them as in a plan. Their orchestration,
    /// repository and verification are the parent's.
    pub tasks: Vec<PlanTask>,
    /// The parent may not complete before they all have; otherwise they go on alone.
    pub waits: bool,
}

#[cfg(test)]
mod secret_tests {
    use super::*;

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret("abcdefgh", "abcdefgh"));
        assert!(!same_secret("abcdefgh", "abcdefgX"));
        assert!(!same_secret("Xbcdefgh", "abcdefgh"));
        assert!(!same_secret("abcdefgh", "abcdefg"));
        assert!(!same_secret("", "a"));
    }

    #[test]
    fn a_credential_is_never_shown_by_debug_and_its_shape_is_checked() {
        let c = AgentCredential::parse("abcdefghijklmnopqrstuvwxyz0123456789-_").unwrap();
        assert_eq!(format!("{c:?}"), "AgentCredential(..)");
        for bad in [
            "short",
            "has space in it and is long enough to pass",
            &"x".repeat(129),
        ] {
            let e = AgentCredential::parse(bad).unwrap_err();
            assert!(
                !e.to_string().contains(bad),
                "the refusal quotes no secret: {e}"
            );
        }
    }
}
