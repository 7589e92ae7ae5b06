//! The JSON documents `maos --json` prints: typed, versioned shapes for the outside world, kept
//! apart from the domain's types so that the domain can change without breaking scripts.
//!
//! Every top-level document starts with `"schema_version": 1`; keys appear in the order of the
//! struct fields; times are RFC 3339 strings in UTC; ids are full. docs/json.md describes each
//! shape and the versioning policy.

use maos_application::{
    Assignment, Created, MemoryHits, MemorySearch, StatusReport, StoredEvent, WaitReason,
};
use maos_domain::{BlockReason, TaskId};

use crate::reasons::NextStepJson;
use maos_domain::{
    Agent, AgentStatus, Attempt, DomainEvent, Memory, Orchestration, Provenance, Task, TaskState,
    Timestamp,
};
use serde::Serialize;
use serde::ser::SerializeMap;

/// The version of every document below. Adding a field keeps it; renaming, removing or changing
/// the meaning of one bumps it.
pub(crate) const SCHEMA_VERSION: u32 = 1;

/// What a line of an NDJSON stream is (its `type`), as cargo tags its messages with `reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum LineType {
    /// An event of the log (`events --follow`, `orchestrate … --watch`).
    Event,
    /// The counts of `status` (`status --watch`).
    Status,
    /// What an orchestration came to (the last line of `orchestrate … --watch`).
    Summary,
    /// A piece of an attempt's output (`task logs --follow`).
    Log,
    /// The error that ended the stream.
    Error,
}

impl LineType {
    /// Every line type, as docs/json.md lists them.
    #[cfg(test)]
    pub(crate) const ALL: [LineType; 5] = [
        LineType::Event,
        LineType::Status,
        LineType::Summary,
        LineType::Log,
        LineType::Error,
    ];

    /// Its name, the value of `type`.
    #[cfg(test)]
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            LineType::Event => "event",
            LineType::Status => "status",
            LineType::Summary => "summary",
            LineType::Log => "log",
            LineType::Error => "error",
        }
    }
}

/// One line of an NDJSON stream: `schema_version`, `type` (what the line is), then the fields
/// of `body`.
#[derive(Debug, Serialize)]
pub(crate) struct Line<T> {
    pub(crate) schema_version: u32,
    #[serde(rename = "type")]
    pub(crate) kind: LineType,
    #[serde(flatten)]
    pub(crate) body: T,
}

impl<T> Line<T> {
    pub(crate) fn new(kind: LineType, body: T) -> Self {
        Line {
            schema_version: SCHEMA_VERSION,
            kind,
            body,
        }
    }
}

pub(crate) fn time(t: Timestamp) -> String {
    t.to_rfc3339()
}

/// An agent.
#[derive(Debug, Serialize)]
pub(crate) struct AgentJson {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) adapter: &'static str,
    pub(crate) tier: &'static str,
    pub(crate) status: &'static str,
    pub(crate) capabilities: Vec<String>,
    pub(crate) slots: u32,
    pub(crate) active: u32,
    pub(crate) command: Option<String>,
    pub(crate) settings: SettingsJson,
    /// Attempts that failed in a row, newest last (the circuit breaker drains at its threshold).
    pub(crate) failures_in_row: u32,
    /// Why MAOS drained it, when its circuit breaker did.
    pub(crate) drained_because: Option<String>,
    pub(crate) registered_at: String,
    pub(crate) updated_at: String,
    pub(crate) version: u64,
}

/// How the daemon runs an agent (secrets appear only as the names of their variables).
#[derive(Debug, Serialize)]
pub(crate) struct SettingsJson {
    pub(crate) args: Vec<String>,
    pub(crate) prompt_via: &'static str,
    pub(crate) env: Vec<String>,
    pub(crate) timeout_ms: Option<u64>,
    pub(crate) limits: LimitsJson,
    pub(crate) model: Option<String>,
    pub(crate) base_url: Option<String>,
    pub(crate) api_key_env: Option<String>,
    pub(crate) max_steps: Option<u32>,
    pub(crate) tool_calls: Option<bool>,
    pub(crate) price: Option<PriceJson>,
    pub(crate) permissions: PermissionsJson,
    pub(crate) skip_permissions: bool,
    pub(crate) delay_ms: Option<u64>,
    pub(crate) fail_every: Option<u32>,
}

/// The resource limits in force (the agent's own, else the defaults); null where lifted.
#[derive(Debug, Serialize)]
pub(crate) struct LimitsJson {
    pub(crate) cpu_seconds: Option<u64>,
    pub(crate) memory_mib: Option<u64>,
    pub(crate) open_files: Option<u64>,
    pub(crate) processes: Option<u64>,
}

/// US dollars per million tokens, as decimal strings.
#[derive(Debug, Serialize)]
pub(crate) struct PriceJson {
    pub(crate) input_usd: String,
    pub(crate) cached_input_usd: Option<String>,
    pub(crate) output_usd: String,
}

/// Permission rules, in the order they are checked.
#[derive(Debug, Serialize)]
pub(crate) struct PermissionsJson {
    pub(crate) deny: Vec<String>,
    pub(crate) ask: Vec<String>,
    pub(crate) allow: Vec<String>,
}

impl From<&maos_domain::AgentSettings> for SettingsJson {
    fn from(s: &maos_domain::AgentSettings) -> Self {
        let rules = |l: &[maos_domain::policy::permission::PermissionRule]| {
            l.iter().map(|r| r.as_str().to_owned()).collect()
        };
        SettingsJson {
            args: s.args.clone(),
            prompt_via: s.prompt_via.as_str(),
            env: s.env.iter().map(ToString::to_string).collect(),
            timeout_ms: s.timeout.map(|d| d.as_millis()),
            limits: LimitsJson {
                cpu_seconds: s.limits.effective().cpu_seconds,
                memory_mib: s.limits.effective().memory_mib,
                open_files: s.limits.effective().open_files,
                processes: s.limits.effective().processes,
            },
            model: s.model.clone(),
            base_url: s.base_url.clone(),
            api_key_env: s.api_key_env.as_ref().map(ToString::to_string),
            max_steps: s.max_steps,
            tool_calls: s.tool_calls,
            price: s.price.map(|p| PriceJson {
                input_usd: p.input.to_string(),
                cached_input_usd: p.cached_input.map(|c| c.to_string()),
                output_usd: p.output.to_string(),
            }),
            permissions: PermissionsJson {
                deny: rules(&s.permissions.deny),
                ask: rules(&s.permissions.ask),
                allow: rules(&s.permissions.allow),
            },
            skip_permissions: s.skip_permissions,
            delay_ms: s.delay.map(|d| d.as_millis()),
            fail_every: s.fail_every,
        }
    }
}

/// Tokens and money; the cost is a decimal string of US dollars.
#[derive(Debug, Serialize)]
pub(crate) struct UsageJson {
    pub(crate) input_tokens: u64,
    pub(crate) cached_input_tokens: u64,
    pub(crate) output_tokens: u64,
    pub(crate) total_tokens: u64,
    pub(crate) cost_usd: String,
}

impl From<&maos_domain::Usage> for UsageJson {
    fn from(u: &maos_domain::Usage) -> Self {
        UsageJson {
            input_tokens: u.input_tokens,
            cached_input_tokens: u.cached_input_tokens,
            output_tokens: u.output_tokens,
            total_tokens: u.total_tokens(),
            cost_usd: u.cost.to_string(),
        }
    }
}

impl From<&Agent> for AgentJson {
    fn from(a: &Agent) -> Self {
        AgentJson {
            id: a.id.to_string(),
            name: a.name.to_string(),
            adapter: a.adapter.as_str(),
            tier: a.tier.as_str(),
            status: a.status.as_str(),
            capabilities: a.capabilities.iter().map(ToString::to_string).collect(),
            slots: a.slots.get(),
            active: a.active,
            command: a.command.clone(),
            settings: SettingsJson::from(&a.settings),
            failures_in_row: a.failures_in_row,
            drained_because: a.drained_because.clone(),
            registered_at: time(a.registered_at),
            updated_at: time(a.updated_at),
            version: a.version,
        }
    }
}

/// One attempt of a task.
#[derive(Debug, Serialize)]
pub(crate) struct AttemptJson {
    pub(crate) number: u32,
    pub(crate) agent: String,
    pub(crate) status: &'static str,
    pub(crate) fencing: u64,
    pub(crate) assigned_at: String,
    pub(crate) lease_expires_at: String,
    pub(crate) started_at: Option<String>,
    pub(crate) ended_at: Option<String>,
    pub(crate) summary: Option<String>,
    pub(crate) error: Option<String>,
    pub(crate) failure: Option<&'static str>,
    pub(crate) checkpoint_before: Option<String>,
    pub(crate) checkpoint_after: Option<String>,
    pub(crate) port: Option<u16>,
    pub(crate) verification: Option<VerificationJson>,
    pub(crate) pid: Option<u32>,
    pub(crate) session: Option<String>,
    pub(crate) exit_code: Option<i32>,
    pub(crate) signal: Option<i32>,
    pub(crate) duration_ms: Option<u64>,
    pub(crate) usage: UsageJson,
    /// What the task's branch had changed when the attempt ended.
    pub(crate) diff_stat: Option<String>,
    /// Its briefing was recorded (`maos task briefing` prints it).
    pub(crate) briefed: bool,
    /// Tool calls its agent was refused, `Tool(subject)`.
    pub(crate) permission_denials: Vec<String>,
}

impl From<&Attempt> for AttemptJson {
    fn from(a: &Attempt) -> Self {
        AttemptJson {
            number: a.number,
            agent: a.agent.to_string(),
            status: a.status.as_str(),
            fencing: a.fencing.get(),
            assigned_at: time(a.assigned_at),
            lease_expires_at: time(a.lease_expires_at),
            started_at: a.started_at.map(time),
            ended_at: a.ended_at.map(time),
            summary: a.summary.clone(),
            error: a.error.clone(),
            failure: a.failure.map(maos_domain::FailureKind::as_str),
            checkpoint_before: a.checkpoint_before.clone(),
            checkpoint_after: a.checkpoint_after.clone(),
            port: a.port,
            verification: a.verification.as_ref().map(|v| VerificationJson {
                passed: v.passed,
                output: v.output.clone(),
            }),
            pid: a.pid,
            session: a.session.clone(),
            exit_code: match a.exit {
                Some(maos_domain::Exit::Code(c)) => Some(c),
                _ => None,
            },
            signal: match a.exit {
                Some(maos_domain::Exit::Signal(s)) => Some(s),
                _ => None,
            },
            duration_ms: a.duration_ms(),
            usage: UsageJson::from(&a.usage),
            diff_stat: a.diff_stat.clone(),
            briefed: a.briefing.is_some(),
            permission_denials: a.permission_denials.clone(),
        }
    }
}

/// A task.
#[derive(Debug, Serialize)]
pub(crate) struct TaskJson {
    pub(crate) id: String,
    pub(crate) title: String,
    pub(crate) state: &'static str,
    /// Why it is blocked, failed or cancelled, in words.
    pub(crate) reason: Option<String>,
    /// Why it is blocked, as data (`kind` and its facts); null unless it is blocked.
    pub(crate) blocked: Option<BlockReason>,
    pub(crate) priority: &'static str,
    pub(crate) risk: &'static str,
    pub(crate) tier: Option<&'static str>,
    pub(crate) capabilities: Vec<String>,
    pub(crate) depends_on: Vec<String>,
    pub(crate) orchestration: Option<String>,
    pub(crate) prompt: String,
    pub(crate) max_attempts: u32,
    pub(crate) timeout_ms: Option<u64>,
    pub(crate) idempotency_key: Option<String>,
    pub(crate) budget_usd: Option<String>,
    pub(crate) usage: UsageJson,
    pub(crate) repo: Option<String>,
    pub(crate) base: Option<String>,
    pub(crate) verify: Option<String>,
    pub(crate) wants_port: bool,
    pub(crate) concerns: Vec<String>,
    /// The only agent that may take it.
    pub(crate) agent: Option<String>,
    /// An attempt that succeeds after failed ones is asked for a lesson (absent when not).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub(crate) lessons: bool,
    /// The task whose agent made it as a subtask (absent when none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) parent: Option<SubtaskJson>,
    /// The subtasks its agents made (absent when none).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) subtasks: Vec<SubtaskJson>,
    pub(crate) workspace: Option<WorkspaceJson>,
    pub(crate) waiting_for: Option<PendingJson>,
    pub(crate) fencing: u64,
    /// Attempts it may make in all (max_attempts plus those an escalation or a person granted).
    pub(crate) attempts_allowed: u32,
    /// When a retrying task's backoff ends.
    pub(crate) retry_at: Option<String>,
    pub(crate) attempts: Vec<AttemptJson>,
    pub(crate) created_at: String,
    pub(crate) updated_at: String,
    pub(crate) version: u64,
}

impl From<&Task> for TaskJson {
    fn from(t: &Task) -> Self {
        let s = &t.spec;
        TaskJson {
            id: t.id.to_string(),
            title: s.title.to_string(),
            state: t.state.as_str(),
            reason: crate::reasons::task_reason(t),
            blocked: t.blocked.clone(),
            priority: s.priority.as_str(),
            risk: s.risk.as_str(),
            tier: s.tier.map(|x| x.as_str()),
            capabilities: s.capabilities.iter().map(ToString::to_string).collect(),
            depends_on: s.depends_on.iter().map(ToString::to_string).collect(),
            orchestration: s.orchestration.map(|o| o.to_string()),
            prompt: s.prompt.clone(),
            max_attempts: s.max_attempts.get(),
            timeout_ms: s.timeout.map(|d| d.as_millis()),
            idempotency_key: s.idempotency_key.as_ref().map(ToString::to_string),
            budget_usd: s.budget.map(|b| b.to_string()),
            usage: UsageJson::from(&t.usage()),
            repo: s.workspace.as_ref().map(|w| w.repo.clone()),
            base: s.workspace.as_ref().and_then(|w| w.base.clone()),
            verify: s.verify.clone(),
            wants_port: s.wants_port,
            concerns: s.concerns.iter().map(ToString::to_string).collect(),
            agent: s.agent.as_ref().map(ToString::to_string),
            lessons: s.lessons,
            parent: s.parent.map(|p| SubtaskJson {
                task: p.task.to_string(),
                waits: p.waits,
            }),
            subtasks: t
                .subtasks
                .iter()
                .map(|s| SubtaskJson {
                    task: s.task.to_string(),
                    waits: s.waits,
                })
                .collect(),
            workspace: t.workspace.as_ref().map(|w| WorkspaceJson {
                path: w.path.clone(),
                branch: w.branch.clone(),
                base_commit: w.base.clone(),
                removed: w.removed,
            }),
            waiting_for: t.pending.as_ref().map(PendingJson::from),
            fencing: t.fencing.get(),
            attempts_allowed: t.attempts_allowed(),
            retry_at: t.retry_at.map(time),
            attempts: t.attempts.iter().map(AttemptJson::from).collect(),
            created_at: time(t.created_at),
            updated_at: time(t.updated_at),
            version: t.version,
        }
    }
}

/// The other end of a subtask link: the parent (in a task's `parent`) or the subtask (in its
/// `subtasks`), and whether the parent waits for the subtask before it completes.
#[derive(Debug, Serialize)]
pub(crate) struct SubtaskJson {
    pub(crate) task: String,
    pub(crate) waits: bool,
}

/// A verification's outcome.
#[derive(Debug, Serialize)]
pub(crate) struct VerificationJson {
    pub(crate) passed: bool,
    pub(crate) output: String,
}

/// A task's worktree.
#[derive(Debug, Serialize)]
pub(crate) struct WorkspaceJson {
    pub(crate) path: String,
    pub(crate) branch: String,
    pub(crate) base_commit: String,
    pub(crate) removed: bool,
}

/// What a task waits for a person to decide.
#[derive(Debug, Serialize)]
pub(crate) struct PendingJson {
    pub(crate) gate: &'static str,
    pub(crate) attempt: Option<u32>,
    pub(crate) tool: Option<String>,
    pub(crate) subject: Option<String>,
    pub(crate) since: String,
}

impl From<&maos_domain::PendingApproval> for PendingJson {
    fn from(p: &maos_domain::PendingApproval) -> Self {
        PendingJson {
            gate: p.gate.as_str(),
            attempt: p.attempt,
            tool: p.tool.clone(),
            subject: p.subject.clone(),
            since: time(p.requested_at),
        }
    }
}

/// One entry of `approvals`.
#[derive(Debug, Serialize)]
pub(crate) struct ApprovalJson {
    pub(crate) task: String,
    pub(crate) title: String,
    pub(crate) state: &'static str,
    pub(crate) risk: &'static str,
    pub(crate) gate: &'static str,
    pub(crate) tool: Option<String>,
    pub(crate) subject: Option<String>,
    pub(crate) since: String,
    pub(crate) age_ms: u64,
    /// One line of what its branch changed, when it has one.
    pub(crate) changes: Option<String>,
}

impl ApprovalJson {
    pub(crate) fn new(t: &Task, now_ms: i64, changes: Option<String>) -> Self {
        let pending = t.pending.as_ref();
        let since = pending.map_or(t.updated_at, |p| p.requested_at);
        ApprovalJson {
            task: t.id.to_string(),
            title: t.spec.title.to_string(),
            state: t.state.as_str(),
            risk: t.spec.risk.as_str(),
            gate: pending.map_or("result", |p| p.gate.as_str()),
            tool: pending.and_then(|p| p.tool.clone()),
            subject: pending.and_then(|p| p.subject.clone()),
            since: time(since),
            age_ms: u64::try_from(now_ms - since.as_millis()).unwrap_or(0),
            changes,
        }
    }
}

/// `approvals`.
#[derive(Debug, Serialize)]
pub(crate) struct ApprovalsDoc {
    pub(crate) schema_version: u32,
    pub(crate) approvals: Vec<ApprovalJson>,
}

/// `task diff`.
#[derive(Debug, Serialize)]
pub(crate) struct DiffDoc {
    pub(crate) schema_version: u32,
    pub(crate) task: String,
    pub(crate) attempt: Option<u32>,
    pub(crate) stat: bool,
    pub(crate) diff: String,
}

/// `orchestrate merge`.
#[derive(Debug, Serialize)]
pub(crate) struct MergeDoc {
    pub(crate) schema_version: u32,
    pub(crate) orchestration: String,
    pub(crate) branch: String,
    pub(crate) into: String,
    pub(crate) commit: String,
    pub(crate) merged: bool,
}

impl MergeDoc {
    pub(crate) fn new(r: &maos_application::MergeReport) -> Self {
        MergeDoc {
            schema_version: SCHEMA_VERSION,
            orchestration: r.orchestration.id.to_string(),
            branch: r.branch.clone(),
            into: r.into.clone(),
            commit: r.commit.clone(),
            merged: r.merged,
        }
    }
}

/// One worktree of `gc`.
#[derive(Debug, Serialize)]
pub(crate) struct GcEntryJson {
    pub(crate) task: String,
    pub(crate) path: String,
    pub(crate) removed: bool,
    pub(crate) kept_because: Option<String>,
}

/// `gc`.
#[derive(Debug, Serialize)]
pub(crate) struct GcDoc {
    pub(crate) schema_version: u32,
    pub(crate) dry_run: bool,
    pub(crate) worktrees: Vec<GcEntryJson>,
}

impl GcDoc {
    pub(crate) fn new(entries: &[maos_application::GcEntry], dry_run: bool) -> Self {
        GcDoc {
            schema_version: SCHEMA_VERSION,
            dry_run,
            worktrees: entries
                .iter()
                .map(|e| GcEntryJson {
                    task: e.task.to_string(),
                    path: e.path.clone(),
                    removed: e.removed,
                    kept_because: e.kept_because.clone(),
                })
                .collect(),
        }
    }
}

/// What a run of an orchestration came to (`orchestrate status`, the end of `--watch`).
#[derive(Debug, Serialize)]
pub(crate) struct SummaryJson {
    /// Its full id.
    pub(crate) orchestration: String,
    pub(crate) status: String,
    pub(crate) tasks: u64,
    pub(crate) completed: u64,
    pub(crate) by_state: std::collections::BTreeMap<String, u64>,
    pub(crate) attempts: u32,
    pub(crate) wall_ms: u64,
    pub(crate) input_tokens: u64,
    pub(crate) output_tokens: u64,
    pub(crate) cost_usd: String,
    /// What its planning took (planning and discussion tasks), apart from its tasks.
    pub(crate) planning_input_tokens: u64,
    pub(crate) planning_output_tokens: u64,
    pub(crate) planning_cost_usd: String,
    pub(crate) needs_a_person: Vec<NeedsPersonJson>,
    pub(crate) integration_branch: Option<String>,
}

/// A task of the summary that waits for a person.
#[derive(Debug, Serialize)]
pub(crate) struct NeedsPersonJson {
    /// Its full id.
    pub(crate) task: String,
    pub(crate) title: String,
    pub(crate) state: &'static str,
    /// Why, in words, for people.
    pub(crate) why: String,
    /// What a person can do, most useful first, as commands with full ids and as data.
    pub(crate) next: Vec<NextStepJson>,
}

/// An orchestration.
#[derive(Debug, Serialize)]
pub(crate) struct OrchestrationJson {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) goal: Option<String>,
    pub(crate) status: &'static str,
    pub(crate) repo: Option<String>,
    pub(crate) base: Option<String>,
    pub(crate) verify: Option<String>,
    pub(crate) integration_branch: Option<String>,
    pub(crate) notes: Vec<String>,
    /// The number of its plan's newest version (0: none yet).
    pub(crate) plan_version: u32,
    /// The version its tasks carry out (0: none approved).
    pub(crate) approved_version: u32,
    /// The planning task at work on its plan, if any.
    pub(crate) planning_task: Option<String>,
    /// Its tasks that a revision of the plan replaced or left out.
    pub(crate) superseded: Vec<String>,
    pub(crate) created_at: String,
    pub(crate) updated_at: String,
    pub(crate) version: u64,
}

impl From<&Orchestration> for OrchestrationJson {
    fn from(o: &Orchestration) -> Self {
        OrchestrationJson {
            id: o.id.to_string(),
            name: o.name.to_string(),
            goal: o.goal.clone(),
            status: o.status.as_str(),
            repo: o.workspace.as_ref().map(|w| w.repo.clone()),
            base: o.workspace.as_ref().and_then(|w| w.base.clone()),
            verify: o.verify.clone(),
            integration_branch: o.workspace.as_ref().map(|_| o.integration_branch()),
            notes: o.notes.clone(),
            plan_version: o.plan_version,
            approved_version: o.approved_version,
            planning_task: o.planning.map(|p| p.task.to_string()),
            superseded: o.superseded.iter().map(ToString::to_string).collect(),
            created_at: time(o.created_at),
            updated_at: time(o.updated_at),
            version: o.version,
        }
    }
}

/// `agent register`, `agent show`, `agent drain`, `agent remove`.
#[derive(Debug, Serialize)]
pub(crate) struct AgentDoc {
    pub(crate) schema_version: u32,
    pub(crate) agent: AgentJson,
}

impl AgentDoc {
    pub(crate) fn new(agent: &Agent) -> Self {
        AgentDoc {
            schema_version: SCHEMA_VERSION,
            agent: agent.into(),
        }
    }
}

/// `agent list`.
#[derive(Debug, Serialize)]
pub(crate) struct AgentListDoc {
    pub(crate) schema_version: u32,
    pub(crate) agents: Vec<AgentJson>,
}

impl AgentListDoc {
    pub(crate) fn new(agents: &[Agent]) -> Self {
        AgentListDoc {
            schema_version: SCHEMA_VERSION,
            agents: agents.iter().map(AgentJson::from).collect(),
        }
    }
}

/// `task create`.
#[derive(Debug, Serialize)]
pub(crate) struct TaskCreatedDoc {
    pub(crate) schema_version: u32,
    /// False when an earlier create with the same idempotency key made the task.
    pub(crate) created: bool,
    pub(crate) task: TaskJson,
}

impl TaskCreatedDoc {
    pub(crate) fn new(task: &Task, created: bool) -> Self {
        TaskCreatedDoc {
            schema_version: SCHEMA_VERSION,
            created,
            task: task.into(),
        }
    }
}

/// `task create --from-file`: every task of the file, in its order.
#[derive(Debug, Serialize)]
pub(crate) struct TasksCreatedDoc {
    pub(crate) schema_version: u32,
    /// How many tasks were made (the others existed already, by their idempotency keys).
    pub(crate) created: usize,
    pub(crate) tasks: Vec<TaskCreatedJson>,
}

/// One task of `task create --from-file`.
#[derive(Debug, Serialize)]
pub(crate) struct TaskCreatedJson {
    /// The line of the file it came from.
    pub(crate) line: usize,
    /// False when an earlier create with the same idempotency key made the task.
    pub(crate) created: bool,
    pub(crate) task: TaskJson,
}

impl TasksCreatedDoc {
    pub(crate) fn new(made: &[(usize, Created)]) -> Self {
        TasksCreatedDoc {
            schema_version: SCHEMA_VERSION,
            created: made.iter().filter(|(_, c)| c.created).count(),
            tasks: made
                .iter()
                .map(|(line, c)| TaskCreatedJson {
                    line: *line,
                    created: c.created,
                    task: (&c.task).into(),
                })
                .collect(),
        }
    }
}

/// `task show`, `task cancel`, `task depend`.
#[derive(Debug, Serialize)]
pub(crate) struct TaskDoc {
    pub(crate) schema_version: u32,
    pub(crate) task: TaskJson,
}

impl TaskDoc {
    pub(crate) fn new(task: &Task) -> Self {
        TaskDoc {
            schema_version: SCHEMA_VERSION,
            task: task.into(),
        }
    }
}

/// `task show`: the task and what it waits for.
#[derive(Debug, Serialize)]
pub(crate) struct TaskShowDoc {
    pub(crate) schema_version: u32,
    pub(crate) task: TaskJson,
    /// Empty when it waits for nothing (it runs, is finished, or is next in line).
    pub(crate) waiting: Vec<WaitingJson>,
}

/// One thing a task waits for.
#[derive(Debug, Serialize)]
pub(crate) struct WaitingJson {
    pub(crate) kind: &'static str,
    /// In words, for people.
    pub(crate) detail: String,
    /// The other task involved (the dependency, the holder of the concern), if any.
    pub(crate) task: Option<String>,
    /// The reason as data: `wait` names it, the other fields are its facts.
    pub(crate) reason: WaitReason,
    /// What a person can do to end the wait (empty: nothing but time).
    pub(crate) next: Vec<NextStepJson>,
}

impl WaitingJson {
    pub(crate) fn new(w: &WaitReason, waiting: TaskId) -> Self {
        WaitingJson {
            kind: w.kind().as_str(),
            detail: crate::reasons::waiting(w, waiting),
            task: w.task().map(|t| t.to_string()),
            reason: w.clone(),
            next: w
                .next_steps(waiting)
                .iter()
                .map(NextStepJson::from)
                .collect(),
        }
    }
}

impl TaskShowDoc {
    pub(crate) fn new(task: &Task, waiting: &[WaitReason]) -> Self {
        TaskShowDoc {
            schema_version: SCHEMA_VERSION,
            task: task.into(),
            waiting: waiting
                .iter()
                .map(|w| WaitingJson::new(w, task.id))
                .collect(),
        }
    }
}

/// `task briefing`.
#[derive(Debug, Serialize)]
pub(crate) struct BriefingDoc {
    pub(crate) schema_version: u32,
    pub(crate) task: String,
    pub(crate) attempt: u32,
    pub(crate) tokens: u32,
    pub(crate) cut: Vec<String>,
    pub(crate) text: String,
}

impl BriefingDoc {
    pub(crate) fn new(task: &str, b: &maos_application::AttemptBriefing) -> Self {
        BriefingDoc {
            schema_version: SCHEMA_VERSION,
            task: task.to_owned(),
            attempt: b.attempt,
            tokens: b.tokens,
            cut: b.cut.clone(),
            text: b.text.clone(),
        }
    }
}

/// `task list`.
#[derive(Debug, Serialize)]
pub(crate) struct TaskListDoc {
    pub(crate) schema_version: u32,
    pub(crate) tasks: Vec<TaskJson>,
    /// Pass as `--cursor` to get the next page; null on the last page.
    pub(crate) next_cursor: Option<String>,
}

impl TaskListDoc {
    pub(crate) fn new(tasks: &[Task], next_cursor: Option<String>) -> Self {
        TaskListDoc {
            schema_version: SCHEMA_VERSION,
            tasks: tasks.iter().map(TaskJson::from).collect(),
            next_cursor,
        }
    }
}

/// `task assign`.
#[derive(Debug, Serialize)]
pub(crate) struct AssignmentDoc {
    pub(crate) schema_version: u32,
    pub(crate) agent: String,
    pub(crate) attempt: u32,
    pub(crate) fencing: u64,
    pub(crate) task: TaskJson,
}

impl AssignmentDoc {
    pub(crate) fn new(a: &Assignment) -> Self {
        AssignmentDoc {
            schema_version: SCHEMA_VERSION,
            agent: a.agent.to_string(),
            attempt: a.attempt,
            fencing: a.fencing.get(),
            task: (&a.task).into(),
        }
    }
}

/// `orchestrate create`, `orchestrate show`.
#[derive(Debug, Serialize)]
pub(crate) struct OrchestrationDoc {
    pub(crate) schema_version: u32,
    pub(crate) orchestration: OrchestrationJson,
}

impl OrchestrationDoc {
    pub(crate) fn new(o: &Orchestration) -> Self {
        OrchestrationDoc {
            schema_version: SCHEMA_VERSION,
            orchestration: o.into(),
        }
    }
}

/// `orchestrate list`.
#[derive(Debug, Serialize)]
pub(crate) struct OrchestrationListDoc {
    pub(crate) schema_version: u32,
    pub(crate) orchestrations: Vec<OrchestrationJson>,
}

impl OrchestrationListDoc {
    pub(crate) fn new(list: &[Orchestration]) -> Self {
        OrchestrationListDoc {
            schema_version: SCHEMA_VERSION,
            orchestrations: list.iter().map(OrchestrationJson::from).collect(),
        }
    }
}

/// Counts by keyword, every keyword present (zero included), in the domain's order.
#[derive(Debug)]
pub(crate) struct Counts(pub(crate) Vec<(&'static str, u64)>);

impl Serialize for Counts {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

/// Tasks: a total and how many are in each state.
#[derive(Debug, Serialize)]
pub(crate) struct TaskTally {
    pub(crate) total: u64,
    pub(crate) by_state: Counts,
}

/// Agents (removed ones included): a total and how many are in each status.
#[derive(Debug, Serialize)]
pub(crate) struct AgentTally {
    pub(crate) total: u64,
    pub(crate) by_status: Counts,
}

/// `status`.
#[derive(Debug, Serialize)]
pub(crate) struct StatusDoc {
    pub(crate) schema_version: u32,
    #[serde(flatten)]
    pub(crate) status: StatusJson,
}

impl StatusDoc {
    pub(crate) fn new(r: &StatusReport) -> Self {
        StatusDoc {
            schema_version: SCHEMA_VERSION,
            status: StatusJson::new(r),
        }
    }
}

/// The counts of `status`: its document without the version (a line of `status --watch`).
#[derive(Debug, Serialize)]
pub(crate) struct StatusJson {
    pub(crate) tasks: TaskTally,
    pub(crate) agents: AgentTally,
    pub(crate) orchestrations: u64,
    pub(crate) last_event: u64,
    pub(crate) usage: UsageJson,
}

impl StatusJson {
    pub(crate) fn new(r: &StatusReport) -> Self {
        let tasks = Counts(
            TaskState::ALL
                .iter()
                .map(|s| (s.as_str(), r.tasks.get(s).copied().unwrap_or(0)))
                .collect(),
        );
        let agents = Counts(
            AgentStatus::ALL
                .iter()
                .map(|s| (s.as_str(), r.agents.get(s).copied().unwrap_or(0)))
                .collect(),
        );
        StatusJson {
            tasks: TaskTally {
                total: tasks.0.iter().map(|(_, n)| n).sum(),
                by_state: tasks,
            },
            agents: AgentTally {
                total: agents.0.iter().map(|(_, n)| n).sum(),
                by_status: agents,
            },
            orchestrations: r.orchestrations,
            last_event: r.last_event,
            usage: UsageJson::from(&r.usage),
        }
    }
}

/// A piece of an attempt's output as text (bytes that are not UTF-8 become U+FFFD; the raw bytes
/// are what `task logs` without --json prints).
#[derive(Debug, Serialize)]
pub(crate) struct LogChunkJson {
    pub(crate) task: String,
    pub(crate) attempt: u32,
    pub(crate) offset: u64,
    pub(crate) bytes: usize,
    pub(crate) text: String,
    pub(crate) finished: bool,
}

impl LogChunkJson {
    /// `task logs --json`, and each line of `task logs --follow --json`: the piece tagged
    /// `"type": "log"`.
    pub(crate) fn line(c: &maos_application::LogChunk) -> Line<LogChunkJson> {
        Line::new(LineType::Log, LogChunkJson::new(c))
    }

    fn new(c: &maos_application::LogChunk) -> Self {
        LogChunkJson {
            task: c.task.to_string(),
            attempt: c.attempt,
            offset: c.offset,
            bytes: c.bytes.len(),
            text: String::from_utf8_lossy(&c.bytes).into_owned(),
            finished: c.finished,
        }
    }
}

/// One event of the log.
#[derive(Debug, Serialize)]
pub(crate) struct EventJson {
    pub(crate) seq: u64,
    pub(crate) at: String,
    pub(crate) kind: &'static str,
    pub(crate) aggregate: &'static str,
    pub(crate) aggregate_id: String,
    /// The domain event itself, as serde serializes it (tagged by `type`).
    pub(crate) data: serde_json::Value,
}

impl From<&StoredEvent> for EventJson {
    fn from(e: &StoredEvent) -> Self {
        let data = match &e.event {
            DomainEvent::Agent { event, .. } => serde_json::to_value(event),
            DomainEvent::Task { event, .. } => serde_json::to_value(event),
            DomainEvent::Orchestration { event, .. } => serde_json::to_value(event),
            DomainEvent::Memory { event, .. } => serde_json::to_value(event),
        };
        EventJson {
            seq: e.seq,
            at: time(e.at),
            kind: e.event.kind(),
            aggregate: e.event.aggregate_kind().as_str(),
            aggregate_id: e.event.aggregate_id(),
            data: data.unwrap_or(serde_json::Value::Null),
        }
    }
}

impl EventJson {
    /// The event as a line of a stream (`"type": "event"`).
    pub(crate) fn line(e: &StoredEvent) -> Line<EventJson> {
        Line::new(LineType::Event, EventJson::from(e))
    }
}

/// `events`.
#[derive(Debug, Serialize)]
pub(crate) struct EventsDoc {
    pub(crate) schema_version: u32,
    pub(crate) events: Vec<EventJson>,
    /// Pass as `--since` to read what follows.
    pub(crate) next_since: u64,
}

impl EventsDoc {
    pub(crate) fn new(events: &[StoredEvent], since: u64) -> Self {
        EventsDoc {
            schema_version: SCHEMA_VERSION,
            events: events.iter().map(EventJson::from).collect(),
            next_since: events.last().map_or(since, |e| e.seq),
        }
    }
}

/// `daemon start` and `daemon status`.
#[derive(Debug, Serialize)]
pub(crate) struct DaemonDoc {
    pub(crate) schema_version: u32,
    /// `daemon start`: true when a daemon was already running (nothing was started).
    pub(crate) already_running: bool,
    pub(crate) pid: u32,
    pub(crate) version: String,
    pub(crate) protocol: u32,
    pub(crate) socket: String,
    pub(crate) database: String,
    pub(crate) started_at: String,
    pub(crate) uptime_ms: u64,
    /// How agents' processes are contained: `cgroup` or `process_tree`.
    pub(crate) containment: String,
    /// With `cgroup`: the directory of the attempts' cgroups.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) containment_root: Option<String>,
    /// The dashboard's address (without its token) while the daemon serves it; null when not.
    pub(crate) ui: Option<String>,
    /// `daemon status` only: the same counts as `maos status`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) status: Option<StatusDoc>,
}

impl DaemonDoc {
    pub(crate) fn new(
        info: &maos_ipc::DaemonInfo,
        already_running: bool,
        status: Option<&StatusReport>,
    ) -> Self {
        DaemonDoc {
            schema_version: SCHEMA_VERSION,
            already_running,
            pid: info.pid,
            version: info.version.clone(),
            protocol: info.protocol,
            socket: info.socket.display().to_string(),
            database: info.database.display().to_string(),
            started_at: time(info.started_at),
            uptime_ms: u64::try_from(info.uptime.as_millis()).unwrap_or(u64::MAX),
            containment: info.containment.clone(),
            containment_root: info
                .containment_root
                .as_ref()
                .map(|p| p.display().to_string()),
            ui: info.ui.clone(),
            status: status.map(StatusDoc::new),
        }
    }
}

/// `daemon stop`.
#[derive(Debug, Serialize)]
pub(crate) struct DaemonStoppedDoc {
    pub(crate) schema_version: u32,
    /// The pid of the daemon that stopped; null when none was running.
    pub(crate) stopped: Option<u32>,
}

impl DaemonStoppedDoc {
    pub(crate) fn new(stopped: Option<u32>) -> Self {
        DaemonStoppedDoc {
            schema_version: SCHEMA_VERSION,
            stopped,
        }
    }
}

/// The error inside an error document.
#[derive(Debug, Serialize)]
pub(crate) struct ErrorJson {
    pub(crate) kind: &'static str,
    pub(crate) message: String,
    pub(crate) hint: Option<String>,
    pub(crate) exit_code: u8,
}

/// Printed on stdout, with `--json`, when a command fails.
#[derive(Debug, Serialize)]
pub(crate) struct ErrorDoc {
    pub(crate) schema_version: u32,
    pub(crate) error: ErrorJson,
}

/// The error of an error document, as the last line of a stream (`"type": "error"`).
#[derive(Debug, Serialize)]
pub(crate) struct ErrorLine {
    pub(crate) error: ErrorJson,
}

impl ErrorDoc {
    /// The same error as a line of a stream.
    pub(crate) fn line(self) -> Line<ErrorLine> {
        Line::new(LineType::Error, ErrorLine { error: self.error })
    }
}

impl ErrorDoc {
    pub(crate) fn new(
        kind: &'static str,
        message: String,
        hint: Option<String>,
        exit_code: u8,
    ) -> Self {
        ErrorDoc {
            schema_version: SCHEMA_VERSION,
            error: ErrorJson {
                kind,
                message,
                hint,
                exit_code,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// docs/json.md, which documents these shapes.
    fn json_md() -> String {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../docs/json.md");
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
    }

    /// The first cell of each row of the first table under `heading` in `doc` (its header
    /// left out), without its backticks.
    fn first_column(doc: &str, heading: &str) -> Vec<String> {
        let start = doc
            .lines()
            .position(|l| l.trim() == heading)
            .unwrap_or_else(|| panic!("docs/json.md has no heading {heading}"));
        doc.lines()
            .skip(start + 1)
            .take_while(|l| !l.starts_with('#'))
            .skip_while(|l| !l.starts_with("|---"))
            .skip(1)
            .take_while(|l| l.starts_with('|'))
            .filter_map(|l| l.strip_prefix("| `"))
            .filter_map(|l| l.split_once('`'))
            .map(|(cell, _)| cell.to_owned())
            .collect()
    }

    #[test]
    fn docs_list_every_event_kind_and_no_other() {
        let documented = first_column(&json_md(), "#### Event kinds");
        let unique: BTreeSet<&str> = documented.iter().map(String::as_str).collect();
        assert_eq!(
            unique.len(),
            documented.len(),
            "listed twice: {documented:?}"
        );
        let code: BTreeSet<&str> = DomainEvent::kinds().collect();
        let missing: Vec<&&str> = code.difference(&unique).collect();
        let extra: Vec<&&str> = unique.difference(&code).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "docs/json.md's event kinds differ from the code's: not documented {missing:?}, \
             documented but unknown {extra:?}"
        );
    }

    #[test]
    fn docs_list_every_block_reason_and_no_other() {
        let documented = first_column(&json_md(), "### Block reasons");
        assert_eq!(documented, BlockReason::KINDS);
    }

    #[test]
    fn docs_list_every_line_type_of_a_stream_and_no_other() {
        let documented: BTreeSet<String> = first_column(&json_md(), "#### Line types")
            .into_iter()
            .collect();
        let code: BTreeSet<String> = LineType::ALL
            .iter()
            .map(|t| t.as_str().to_owned())
            .collect();
        assert_eq!(documented, code);
        for t in LineType::ALL {
            assert_eq!(
                serde_json::to_value(t).unwrap(),
                serde_json::Value::from(t.as_str())
            );
        }
    }

    #[test]
    fn a_line_of_a_stream_starts_with_its_version_and_its_type() {
        let line = Line::new(
            LineType::Error,
            ErrorLine {
                error: ErrorJson {
                    kind: "failure",
                    message: "m".into(),
                    hint: None,
                    exit_code: 1,
                },
            },
        );
        assert_eq!(
            serde_json::to_string(&line).unwrap(),
            r#"{"schema_version":1,"type":"error","error":{"kind":"failure","message":"m","hint":null,"exit_code":1}}"#
        );
    }
}

// ---- memory ----

/// Who wrote a memory entry.
#[derive(Debug, Serialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub(crate) enum ProvenanceJson {
    Person,
    Attempt { task: String, attempt: u32 },
}

/// A memory entry.
#[derive(Debug, Serialize)]
pub(crate) struct MemoryJson {
    pub(crate) id: String,
    pub(crate) tier: &'static str,
    pub(crate) scope: String,
    pub(crate) text: String,
    pub(crate) tags: Vec<String>,
    pub(crate) provenance: ProvenanceJson,
    pub(crate) pinned: bool,
    pub(crate) state: &'static str,
    pub(crate) forgotten_because: Option<String>,
    pub(crate) created_at: String,
    pub(crate) updated_at: String,
    /// When an ephemeral entry expires unless pinned; null for the other tiers.
    pub(crate) expires_at: Option<String>,
}

impl From<&Memory> for MemoryJson {
    fn from(m: &Memory) -> Self {
        MemoryJson {
            id: m.id.to_string(),
            tier: m.tier.as_str(),
            scope: m.scope.to_string(),
            text: m.text.to_string(),
            tags: m.tags.iter().map(ToString::to_string).collect(),
            provenance: match m.provenance {
                Provenance::Person => ProvenanceJson::Person,
                Provenance::Attempt { task, attempt } => ProvenanceJson::Attempt {
                    task: task.to_string(),
                    attempt,
                },
            },
            pinned: m.pinned,
            state: m.state.as_str(),
            forgotten_because: m.forgotten_because.clone(),
            created_at: time(m.created_at),
            updated_at: time(m.updated_at),
            expires_at: m.expires_at.map(time),
        }
    }
}

/// `memory add`, `show`, `pin`, `unpin` and `forget`.
#[derive(Debug, Serialize)]
pub(crate) struct MemoryDoc {
    pub(crate) schema_version: u32,
    pub(crate) memory: MemoryJson,
}

impl MemoryDoc {
    pub(crate) fn new(m: &Memory) -> Self {
        MemoryDoc {
            schema_version: SCHEMA_VERSION,
            memory: MemoryJson::from(m),
        }
    }
}

/// `memory list`.
#[derive(Debug, Serialize)]
pub(crate) struct MemoryListDoc {
    pub(crate) schema_version: u32,
    pub(crate) memories: Vec<MemoryJson>,
    /// Pass as `--cursor` to get the next page; null on the last page.
    pub(crate) next_cursor: Option<String>,
}

impl MemoryListDoc {
    pub(crate) fn new(memories: &[Memory], next_cursor: Option<String>) -> Self {
        MemoryListDoc {
            schema_version: SCHEMA_VERSION,
            memories: memories.iter().map(MemoryJson::from).collect(),
            next_cursor,
        }
    }
}

/// One hit of `memory search`.
#[derive(Debug, Serialize)]
pub(crate) struct MemoryHitJson {
    /// Relevance weighed by tier; higher is better (pinned entries come first whatever it is).
    pub(crate) score: f64,
    pub(crate) memory: MemoryJson,
}

/// `memory search`.
#[derive(Debug, Serialize)]
pub(crate) struct MemorySearchDoc {
    pub(crate) schema_version: u32,
    /// The words searched for, lowercase, each once.
    pub(crate) words: Vec<String>,
    /// False when no entry had every word and the hits have some of them.
    pub(crate) every_word: bool,
    pub(crate) hits: Vec<MemoryHitJson>,
}

impl MemorySearchDoc {
    pub(crate) fn new(search: &MemorySearch, hits: &MemoryHits) -> Self {
        MemorySearchDoc {
            schema_version: SCHEMA_VERSION,
            words: search.query.words().to_vec(),
            every_word: hits.every_word,
            hits: hits
                .hits
                .iter()
                .map(|h| MemoryHitJson {
                    score: (h.score * 1000.0).round() / 1000.0,
                    memory: MemoryJson::from(&h.memory),
                })
                .collect(),
        }
    }
}
