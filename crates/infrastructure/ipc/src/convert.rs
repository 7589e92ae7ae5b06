//! Conversions between the application's types and the wire's (`schema/maos.capnp`).
//!
//! `write_*` functions fill a builder from an application or domain value; `read_*` functions
//! decode a reader into one, through the domain's own parsers, so that a bad value from the wire
//! is a [`DecodeError`] and never a panic. The schema's conventions apply throughout: a time or
//! duration of 0 means "none", and an absent optional text is a null pointer.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use capnp::{text, text_list};
use maos_application::metrics::{AgentMetrics, Metrics, Spread};
use maos_application::{
    AddMemory, AgentFilter, AgentScope, ApprovalRequest, Assignment, AttemptBriefing, BlockReason,
    CreateOrchestration, CreatePlan, CreateTask, Created, GcEntry, GcRequest, Heartbeat, IdRef,
    LogChunk, LogRequest, MemoryCursor, MemoryFilter, MemoryHit, MemoryHits, MemoryList,
    MergeReport, NeedsPerson, NextStep, OrchestrationReport, Page, PlanCreated, PlanGoal,
    PlanHistory, PlanRecord, PlanTask, PlanningStarted, RegisterAgent, StatusReport, StoredEvent,
    TaskCursor, TaskFilter, TaskPage, WaitReason,
};
use maos_domain::agent::AgentData;
use maos_domain::orchestration::{OrchestrationData, PlanApprover, Planning};
use maos_domain::policy::concerns::Concern;
use maos_domain::policy::permission::{PermissionRule, PermissionRules};
use maos_domain::task::TaskData;
use maos_domain::{
    AdapterKind, Agent, AgentEvent, AgentId, AgentName, AgentStatus, AggregateKind, Attempt,
    AttemptOutcome, Capability, CapabilitySet, DomainEvent, DurationMs, FencingToken,
    IdempotencyKey, MaxAttempts, Memory, MemoryData, MemoryEvent, MemoryId, MemoryQuery,
    MemoryScope, MemoryState, MemoryText, MemoryTier, Orchestration, OrchestrationEvent,
    OrchestrationId, OrchestrationStatus, PlanVersion, Priority, Provenance, Risk, Slots, Tag,
    Tags, Task, TaskEvent, TaskId, TaskSpec, TaskState, Tier, Timestamp, Title, ValueError,
};
use maos_domain::{
    AgentSettings, ApprovalDecision, EnvName, Exit, FailureKind, Gate, ParentLink, PendingApproval,
    Price, PromptVia, ResourceLimits, RunReport, Subtask, TaskWorkspace, Usage, Usd, Verification,
    WorkspaceSpec,
};
use thiserror::Error;

use crate::daemon::DaemonInfo;
use crate::maos_capnp as wire;

/// A message from the wire that does not decode into application values.
#[derive(Debug, Error)]
pub enum DecodeError {
    /// A value the domain refuses: a bad name, id, keyword or count.
    #[error(transparent)]
    Value(#[from] ValueError),
    /// The message itself is malformed: a bad pointer, text that is not UTF-8, or an enum value
    /// this build does not know (a newer peer).
    #[error("malformed message: {0}")]
    Message(#[from] capnp::Error),
    /// An event's JSON payload does not decode into a domain event.
    #[error("malformed event payload: {0}")]
    Payload(String),
    /// A keyword this build does not know (a newer peer).
    #[error("unknown {what} {value:?}")]
    Unknown { what: &'static str, value: String },
}

impl From<capnp::NotInSchema> for DecodeError {
    fn from(e: capnp::NotInSchema) -> Self {
        DecodeError::Message(e.into())
    }
}

impl From<std::str::Utf8Error> for DecodeError {
    fn from(e: std::str::Utf8Error) -> Self {
        DecodeError::Message(e.into())
    }
}

/// Decoding's result.
pub type Decoded<T> = Result<T, DecodeError>;

// ---------------------------------------------------------------------------------------------
// Small pieces

/// The length of a list as the wire counts it.
pub(crate) fn len32(n: usize) -> capnp::Result<u32> {
    u32::try_from(n).map_err(|_| {
        capnp::Error::failed(format!("a list of {n} items is too long for one message"))
    })
}

fn text(r: capnp::Result<text::Reader<'_>>) -> Decoded<String> {
    Ok(r?.to_str()?.to_owned())
}

/// An optional text: `None` when the pointer is null.
fn opt_text(has: bool, r: capnp::Result<text::Reader<'_>>) -> Decoded<Option<String>> {
    if has { text(r).map(Some) } else { Ok(None) }
}

fn texts(r: capnp::Result<text_list::Reader<'_>>) -> Decoded<Vec<String>> {
    r?.iter().map(text).collect()
}

fn write_texts<'a>(items: impl Iterator<Item = &'a str>, mut b: text_list::Builder<'_>) {
    for (i, s) in (0u32..).zip(items) {
        b.set(i, s);
    }
}

fn capabilities(r: capnp::Result<text_list::Reader<'_>>) -> Decoded<CapabilitySet> {
    Ok(CapabilitySet::parse(texts(r)?)?)
}

/// A time where 0 means "none".
fn concerns(r: capnp::Result<text_list::Reader<'_>>) -> Decoded<Vec<Concern>> {
    Ok(texts(r)?
        .iter()
        .map(|c| Concern::parse(c))
        .collect::<Result<Vec<_>, _>>()?)
}

fn opt_time(ms: i64) -> Option<Timestamp> {
    (ms != 0).then(|| Timestamp::from_millis(ms))
}

fn time_or_zero(t: Option<Timestamp>) -> i64 {
    t.map_or(0, Timestamp::as_millis)
}

/// A duration where 0 means "none".
fn opt_duration(ms: u64) -> Decoded<Option<DurationMs>> {
    Ok(if ms == 0 {
        None
    } else {
        Some(DurationMs::from_millis(ms)?)
    })
}

// ---------------------------------------------------------------------------------------------
// Keywords

/// Both directions between a domain enum and its wire enum, checked exhaustively both ways.
macro_rules! enum_map {
    (
        $(#[$meta:meta])*
        $to:ident, $from:ident, $domain:ident, $wire:ident {
            $($d:ident <=> $w:ident),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        pub fn $to(v: $domain) -> wire::$wire {
            match v {
                $($domain::$d => wire::$wire::$w),+
            }
        }

        $(#[$meta])*
        pub fn $from(v: wire::$wire) -> $domain {
            match v {
                $(wire::$wire::$w => $domain::$d),+
            }
        }
    };
}

enum_map!(
    /// An adapter kind.
    adapter_to_wire, adapter_from_wire, AdapterKind, AdapterKind {
        Command <=> Command,
        ClaudeCode <=> ClaudeCode,
        Codex <=> Codex,
        Openai <=> Openai,
        Ollama <=> Ollama,
        Sim <=> Sim,
        External <=> External,
    }
);

enum_map!(
    /// How a command agent gets its prompt.
    prompt_via_to_wire, prompt_via_from_wire, PromptVia, PromptVia {
        Stdin <=> Stdin,
        File <=> File,
        Arg <=> Arg,
    }
);

/// Why an attempt failed; `None` is "none".
pub fn failure_to_wire(f: Option<FailureKind>) -> wire::FailureKind {
    match f {
        None => wire::FailureKind::None,
        Some(FailureKind::Exit) => wire::FailureKind::Exit,
        Some(FailureKind::Signal) => wire::FailureKind::Signal,
        Some(FailureKind::Timeout) => wire::FailureKind::Timeout,
        Some(FailureKind::Budget) => wire::FailureKind::Budget,
        Some(FailureKind::Start) => wire::FailureKind::Start,
        Some(FailureKind::Agent) => wire::FailureKind::Agent,
        Some(FailureKind::Interrupted) => wire::FailureKind::Interrupted,
        Some(FailureKind::Verification) => wire::FailureKind::Verification,
        Some(FailureKind::Setup) => wire::FailureKind::Setup,
    }
}

/// Why an attempt failed; "none" is `None`.
pub fn failure_from_wire(f: wire::FailureKind) -> Option<FailureKind> {
    match f {
        wire::FailureKind::None => None,
        wire::FailureKind::Exit => Some(FailureKind::Exit),
        wire::FailureKind::Signal => Some(FailureKind::Signal),
        wire::FailureKind::Timeout => Some(FailureKind::Timeout),
        wire::FailureKind::Budget => Some(FailureKind::Budget),
        wire::FailureKind::Start => Some(FailureKind::Start),
        wire::FailureKind::Agent => Some(FailureKind::Agent),
        wire::FailureKind::Interrupted => Some(FailureKind::Interrupted),
        wire::FailureKind::Verification => Some(FailureKind::Verification),
        wire::FailureKind::Setup => Some(FailureKind::Setup),
    }
}

enum_map!(
    /// A tier.
    tier_to_wire, tier_from_wire, Tier, Tier {
        Tactical <=> Tactical,
        Strategic <=> Strategic,
    }
);

enum_map!(
    /// A priority.
    priority_to_wire, priority_from_wire, Priority, Priority {
        Low <=> Low,
        Normal <=> Normal,
        High <=> High,
        Urgent <=> Urgent,
    }
);

enum_map!(
    /// A risk.
    risk_to_wire, risk_from_wire, Risk, Risk {
        Low <=> Low,
        Medium <=> Medium,
        High <=> High,
    }
);

enum_map!(
    /// An agent's status.
    agent_status_to_wire, agent_status_from_wire, AgentStatus, AgentStatus {
        Available <=> Available,
        Busy <=> Busy,
        Draining <=> Draining,
        Offline <=> Offline,
        Removed <=> Removed,
    }
);

enum_map!(
    /// A task's state.
    task_state_to_wire, task_state_from_wire, TaskState, TaskState {
        Pending <=> Pending,
        Ready <=> Ready,
        Assigned <=> Assigned,
        Running <=> Running,
        Verifying <=> Verifying,
        AwaitingApproval <=> AwaitingApproval,
        Completed <=> Completed,
        Failed <=> Failed,
        Retrying <=> Retrying,
        Blocked <=> Blocked,
        Cancelled <=> Cancelled,
        Escalated <=> Escalated,
    }
);

enum_map!(
    /// An attempt's status.
    attempt_status_to_wire, attempt_status_from_wire, AttemptOutcome, AttemptStatus {
        Assigned <=> Assigned,
        Running <=> Running,
        Succeeded <=> Succeeded,
        Failed <=> Failed,
        Interrupted <=> Interrupted,
        Cancelled <=> Cancelled,
    }
);

enum_map!(
    /// An orchestration's status.
    orchestration_status_to_wire, orchestration_status_from_wire,
    OrchestrationStatus, OrchestrationStatus {
        Draft <=> Draft,
        AwaitingPlanApproval <=> AwaitingPlanApproval,
        Running <=> Running,
        Paused <=> Paused,
        Completed <=> Completed,
        Failed <=> Failed,
        Cancelled <=> Cancelled,
    }
);

enum_map!(
    /// What a task waits for a person to decide.
    gate_to_wire, gate_from_wire, Gate, Gate {
        Run <=> Run,
        Result <=> Result,
        Tool <=> Tool,
    }
);

/// The tier a task needs; `None` is "any".
pub fn tier_requirement_to_wire(t: Option<Tier>) -> wire::TierRequirement {
    match t {
        None => wire::TierRequirement::Any,
        Some(Tier::Tactical) => wire::TierRequirement::Tactical,
        Some(Tier::Strategic) => wire::TierRequirement::Strategic,
    }
}

/// The tier a task needs; "any" is `None`.
pub fn tier_requirement_from_wire(t: wire::TierRequirement) -> Option<Tier> {
    match t {
        wire::TierRequirement::Any => None,
        wire::TierRequirement::Tactical => Some(Tier::Tactical),
        wire::TierRequirement::Strategic => Some(Tier::Strategic),
    }
}

// ---------------------------------------------------------------------------------------------
// Aggregates

/// Writes an agent.
pub fn write_agent(a: &Agent, mut b: wire::agent::Builder<'_>) -> capnp::Result<()> {
    b.set_id(a.id.to_string().as_str());
    b.set_name(a.name.as_str());
    b.set_adapter(adapter_to_wire(a.adapter));
    write_texts(
        a.capabilities.iter().map(Capability::as_str),
        b.reborrow().init_capabilities(len32(a.capabilities.len())?),
    );
    b.set_tier(tier_to_wire(a.tier));
    b.set_slots(a.slots.get());
    if let Some(command) = &a.command {
        b.set_command(command.as_str());
    }
    b.set_status(agent_status_to_wire(a.status));
    b.set_active(a.active);
    b.set_registered_at(a.registered_at.as_millis());
    b.set_updated_at(a.updated_at.as_millis());
    b.set_version(a.version);
    b.set_failures_in_row(a.failures_in_row);
    if let Some(why) = &a.drained_because {
        b.set_drained_because(why.as_str());
    }
    write_settings(&a.settings, b.init_settings())
}

/// Reads an agent.
pub fn read_agent(r: wire::agent::Reader<'_>) -> Decoded<Agent> {
    Ok(Agent::restore(AgentData {
        id: AgentId::parse(&text(r.get_id())?)?,
        name: AgentName::parse(&text(r.get_name())?)?,
        adapter: adapter_from_wire(r.get_adapter()?),
        capabilities: capabilities(r.get_capabilities())?,
        tier: tier_from_wire(r.get_tier()?),
        slots: Slots::new(r.get_slots())?,
        command: opt_text(r.has_command(), r.get_command())?,
        status: agent_status_from_wire(r.get_status()?),
        active: r.get_active(),
        registered_at: Timestamp::from_millis(r.get_registered_at()),
        updated_at: Timestamp::from_millis(r.get_updated_at()),
        version: r.get_version(),
        settings: read_opt_settings(r.has_settings(), r.get_settings())?,
        failures_in_row: r.get_failures_in_row(),
        drained_because: opt_text(r.has_drained_because(), r.get_drained_because())?,
    }))
}

fn opt_u64(n: u64) -> Option<u64> {
    (n != 0).then_some(n)
}

/// Writes an agent's settings.
pub fn write_settings(
    s: &AgentSettings,
    mut b: wire::agent_settings::Builder<'_>,
) -> capnp::Result<()> {
    write_texts(
        s.args.iter().map(String::as_str),
        b.reborrow().init_args(len32(s.args.len())?),
    );
    b.set_prompt_via(prompt_via_to_wire(s.prompt_via));
    write_texts(
        s.env.iter().map(EnvName::as_str),
        b.reborrow().init_env(len32(s.env.len())?),
    );
    b.set_timeout_ms(s.timeout.map_or(0, DurationMs::as_millis));
    {
        let mut l = b.reborrow().init_limits();
        l.set_cpu_seconds(s.limits.cpu_seconds.unwrap_or(0));
        l.set_memory_mib(s.limits.memory_mib.unwrap_or(0));
        l.set_open_files(s.limits.open_files.unwrap_or(0));
        l.set_processes(s.limits.processes.unwrap_or(0));
    }
    if let Some(m) = &s.model {
        b.set_model(m.as_str());
    }
    if let Some(u) = &s.base_url {
        b.set_base_url(u.as_str());
    }
    if let Some(k) = &s.api_key_env {
        b.set_api_key_env(k.as_str());
    }
    b.set_max_steps(s.max_steps.unwrap_or(0));
    b.set_tool_calls(match s.tool_calls {
        None => wire::ToolCalls::Default,
        Some(true) => wire::ToolCalls::Yes,
        Some(false) => wire::ToolCalls::No,
    });
    if let Some(p) = &s.price {
        let mut pb = b.reborrow().init_price();
        pb.set_input_micros(p.input.micros());
        pb.set_output_micros(p.output.micros());
        match p.cached_input {
            None => pb.reborrow().init_cached_input().set_same(()),
            Some(c) => pb.reborrow().init_cached_input().set_micros(c.micros()),
        }
    }
    {
        let mut pb = b.reborrow().init_permissions();
        let rules = &s.permissions;
        write_texts(
            rules.deny.iter().map(PermissionRule::as_str),
            pb.reborrow().init_deny(len32(rules.deny.len())?),
        );
        write_texts(
            rules.ask.iter().map(PermissionRule::as_str),
            pb.reborrow().init_ask(len32(rules.ask.len())?),
        );
        write_texts(
            rules.allow.iter().map(PermissionRule::as_str),
            pb.reborrow().init_allow(len32(rules.allow.len())?),
        );
    }
    b.set_skip_permissions(s.skip_permissions);
    b.set_delay_ms(s.delay.map_or(0, DurationMs::as_millis));
    b.set_fail_every(s.fail_every.unwrap_or(0));
    if let Some(v) = &s.verify {
        b.set_verify(v.as_str());
    }
    Ok(())
}

fn rules(r: capnp::Result<text_list::Reader<'_>>) -> Decoded<Vec<PermissionRule>> {
    texts(r)?
        .iter()
        .map(|t| PermissionRule::parse(t).map_err(DecodeError::from))
        .collect()
}

/// Reads an agent's settings; a null pointer is every default.
pub fn read_opt_settings(
    has: bool,
    r: capnp::Result<wire::agent_settings::Reader<'_>>,
) -> Decoded<AgentSettings> {
    if !has {
        return Ok(AgentSettings::default());
    }
    let r = r?;
    let limits = r.get_limits()?;
    let price = if r.has_price() {
        let p = r.get_price()?;
        Some(Price {
            input: Usd::from_micros(p.get_input_micros()),
            output: Usd::from_micros(p.get_output_micros()),
            cached_input: match p.get_cached_input().which()? {
                wire::price::cached_input::Same(()) => None,
                wire::price::cached_input::Micros(m) => Some(Usd::from_micros(m)),
            },
        })
    } else {
        None
    };
    let permissions = if r.has_permissions() {
        let p = r.get_permissions()?;
        PermissionRules {
            deny: rules(p.get_deny())?,
            ask: rules(p.get_ask())?,
            allow: rules(p.get_allow())?,
        }
    } else {
        PermissionRules::default()
    };
    Ok(AgentSettings {
        args: texts(r.get_args())?,
        prompt_via: prompt_via_from_wire(r.get_prompt_via()?),
        env: texts(r.get_env())?
            .iter()
            .map(|n| EnvName::parse(n))
            .collect::<Result<_, _>>()?,
        timeout: opt_duration(r.get_timeout_ms())?,
        limits: ResourceLimits {
            cpu_seconds: opt_u64(limits.get_cpu_seconds()),
            memory_mib: opt_u64(limits.get_memory_mib()),
            open_files: opt_u64(limits.get_open_files()),
            processes: opt_u64(limits.get_processes()),
        },
        model: opt_text(r.has_model(), r.get_model())?,
        base_url: opt_text(r.has_base_url(), r.get_base_url())?,
        api_key_env: opt_text(r.has_api_key_env(), r.get_api_key_env())?
            .map(|n| EnvName::parse(&n))
            .transpose()?,
        max_steps: (r.get_max_steps() != 0).then_some(r.get_max_steps()),
        tool_calls: match r.get_tool_calls()? {
            wire::ToolCalls::Default => None,
            wire::ToolCalls::Yes => Some(true),
            wire::ToolCalls::No => Some(false),
        },
        price,
        permissions,
        skip_permissions: r.get_skip_permissions(),
        verify: opt_text(r.has_verify(), r.get_verify())?,
        delay: opt_duration(r.get_delay_ms())?,
        fail_every: (r.get_fail_every() != 0).then_some(r.get_fail_every()),
    })
}

/// Writes tokens and money.
pub fn write_usage(u: &Usage, mut b: wire::usage::Builder<'_>) {
    b.set_input_tokens(u.input_tokens);
    b.set_cached_input_tokens(u.cached_input_tokens);
    b.set_output_tokens(u.output_tokens);
    b.set_cost_micros(u.cost.micros());
}

/// Reads tokens and money; a null pointer is nothing used.
pub fn read_usage(has: bool, r: capnp::Result<wire::usage::Reader<'_>>) -> Decoded<Usage> {
    if !has {
        return Ok(Usage::NONE);
    }
    let r = r?;
    Ok(Usage {
        input_tokens: r.get_input_tokens(),
        cached_input_tokens: r.get_cached_input_tokens(),
        output_tokens: r.get_output_tokens(),
        cost: Usd::from_micros(r.get_cost_micros()),
    })
}

/// Writes the end of an attempt as the runtime saw it.
pub fn write_run_report(rep: &RunReport, mut b: wire::run_report::Builder<'_>) {
    match rep.exit {
        None => b.reborrow().init_exit().set_none(()),
        Some(Exit::Code(c)) => b.reborrow().init_exit().set_code(c),
        Some(Exit::Signal(sig)) => b.reborrow().init_exit().set_signal(sig),
    }
    write_usage(&rep.usage, b.reborrow().init_usage());
    b.set_failure(failure_to_wire(rep.failure));
    if let Some(c) = &rep.checkpoint {
        b.set_checkpoint(c.as_str());
    }
    if let Some(s) = &rep.diff_stat {
        b.set_diff_stat(s.as_str());
    }
    let denials = &rep.permission_denials;
    write_texts(
        denials.iter().map(String::as_str),
        b.reborrow()
            .init_permission_denials(u32::try_from(denials.len()).unwrap_or(u32::MAX)),
    );
    if let Some(v) = &rep.verification {
        write_verification(v, b.init_verification());
    }
}

/// Reads the end of an attempt; a null pointer is an empty report.
pub fn read_run_report(
    has: bool,
    r: capnp::Result<wire::run_report::Reader<'_>>,
) -> Decoded<RunReport> {
    if !has {
        return Ok(RunReport::default());
    }
    let r = r?;
    Ok(RunReport {
        exit: match r.get_exit().which()? {
            wire::run_report::exit::None(()) => None,
            wire::run_report::exit::Code(c) => Some(Exit::Code(c)),
            wire::run_report::exit::Signal(sig) => Some(Exit::Signal(sig)),
        },
        usage: read_usage(r.has_usage(), r.get_usage())?,
        failure: failure_from_wire(r.get_failure()?),
        checkpoint: opt_text(r.has_checkpoint(), r.get_checkpoint())?,
        verification: read_opt_verification(r.has_verification(), r.get_verification())?,
        diff_stat: opt_text(r.has_diff_stat(), r.get_diff_stat())?,
        permission_denials: texts(r.get_permission_denials())?,
    })
}

/// Writes the outcome of a verification command.
pub fn write_verification(v: &Verification, mut b: wire::verification::Builder<'_>) {
    b.set_passed(v.passed);
    b.set_output(v.output.as_str());
}

/// Reads the outcome of a verification command; a null pointer is none.
pub fn read_opt_verification(
    has: bool,
    r: capnp::Result<wire::verification::Reader<'_>>,
) -> Decoded<Option<Verification>> {
    if !has {
        return Ok(None);
    }
    let r = r?;
    Ok(Some(Verification {
        passed: r.get_passed(),
        output: text(r.get_output())?,
    }))
}

/// Writes where a task works (a repository and a base).
pub fn write_workspace_spec(w: &WorkspaceSpec, mut b: wire::workspace_spec::Builder<'_>) {
    b.set_repo(w.repo.as_str());
    if let Some(base) = &w.base {
        b.set_base(base.as_str());
    }
}

/// Reads where a task works; a null pointer is none.
pub fn read_opt_workspace_spec(
    has: bool,
    r: capnp::Result<wire::workspace_spec::Reader<'_>>,
) -> Decoded<Option<WorkspaceSpec>> {
    if !has {
        return Ok(None);
    }
    let r = r?;
    Ok(Some(WorkspaceSpec {
        repo: text(r.get_repo())?,
        base: opt_text(r.has_base(), r.get_base())?,
    }))
}

/// Writes a task's worktree.
pub fn write_task_workspace(w: &TaskWorkspace, mut b: wire::task_workspace::Builder<'_>) {
    b.set_repo(w.repo.as_str());
    b.set_path(w.path.as_str());
    b.set_branch(w.branch.as_str());
    b.set_base(w.base.as_str());
    b.set_removed(w.removed);
}

/// Reads a task's worktree.
pub fn read_task_workspace(r: wire::task_workspace::Reader<'_>) -> Decoded<TaskWorkspace> {
    Ok(TaskWorkspace {
        repo: text(r.get_repo())?,
        path: text(r.get_path())?,
        branch: text(r.get_branch())?,
        base: text(r.get_base())?,
        removed: r.get_removed(),
    })
}

/// Writes a decision a task waits for.
pub fn write_pending_approval(p: &PendingApproval, mut b: wire::pending_approval::Builder<'_>) {
    b.set_gate(gate_to_wire(p.gate));
    b.set_attempt(p.attempt.unwrap_or(0));
    if let Some(tool) = &p.tool {
        b.set_tool(tool.as_str());
    }
    if let Some(subject) = &p.subject {
        b.set_subject(subject.as_str());
    }
    b.set_requested_at(p.requested_at.as_millis());
}

/// Reads a decision a task waits for.
pub fn read_pending_approval(r: wire::pending_approval::Reader<'_>) -> Decoded<PendingApproval> {
    Ok(PendingApproval {
        gate: gate_from_wire(r.get_gate()?),
        attempt: (r.get_attempt() != 0).then_some(r.get_attempt()),
        tool: opt_text(r.has_tool(), r.get_tool())?,
        subject: opt_text(r.has_subject(), r.get_subject())?,
        requested_at: Timestamp::from_millis(r.get_requested_at()),
    })
}

/// Writes a person's decision on an approval.
pub fn write_approval_decision(d: &ApprovalDecision, mut b: wire::approval_decision::Builder<'_>) {
    b.set_gate(gate_to_wire(d.gate));
    b.set_approved(d.approved);
    if let Some(reason) = &d.reason {
        b.set_reason(reason.as_str());
    }
    b.set_at(d.at.as_millis());
}

/// Reads a person's decision on an approval.
pub fn read_approval_decision(r: wire::approval_decision::Reader<'_>) -> Decoded<ApprovalDecision> {
    Ok(ApprovalDecision {
        gate: gate_from_wire(r.get_gate()?),
        approved: r.get_approved(),
        reason: opt_text(r.has_reason(), r.get_reason())?,
        at: Timestamp::from_millis(r.get_at()),
    })
}

/// Writes one attempt of a task.
pub fn write_attempt(a: &Attempt, mut b: wire::attempt::Builder<'_>) {
    b.set_number(a.number);
    b.set_agent(a.agent.as_str());
    b.set_fencing(a.fencing.get());
    b.set_status(attempt_status_to_wire(a.status));
    b.set_assigned_at(a.assigned_at.as_millis());
    b.set_lease_expires_at(a.lease_expires_at.as_millis());
    b.set_started_at(time_or_zero(a.started_at));
    b.set_ended_at(time_or_zero(a.ended_at));
    if let Some(summary) = &a.summary {
        b.set_summary(summary.as_str());
    }
    if let Some(error) = &a.error {
        b.set_error(error.as_str());
    }
    b.set_pid(a.pid.unwrap_or(0));
    if let Some(session) = &a.session {
        b.set_session(session.as_str());
    }
    match a.exit {
        None => b.reborrow().init_exit().set_none(()),
        Some(Exit::Code(c)) => b.reborrow().init_exit().set_code(c),
        Some(Exit::Signal(sig)) => b.reborrow().init_exit().set_signal(sig),
    }
    write_usage(&a.usage, b.reborrow().init_usage());
    b.set_failure(failure_to_wire(a.failure));
    if let Some(c) = &a.checkpoint_before {
        b.set_checkpoint_before(c.as_str());
    }
    if let Some(c) = &a.checkpoint_after {
        b.set_checkpoint_after(c.as_str());
    }
    b.set_port(a.port.unwrap_or(0));
    if let Some(s) = &a.diff_stat {
        b.set_diff_stat(s.as_str());
    }
    let denials = &a.permission_denials;
    write_texts(
        denials.iter().map(String::as_str),
        b.reborrow()
            .init_permission_denials(u32::try_from(denials.len()).unwrap_or(u32::MAX)),
    );
    b.set_briefed(a.briefing.is_some());
    b.set_refunded(a.refunded);
    if let Some(v) = &a.verification {
        write_verification(v, b.init_verification());
    }
}

/// Reads one attempt of a task.
pub fn read_attempt(r: wire::attempt::Reader<'_>) -> Decoded<Attempt> {
    Ok(Attempt {
        number: r.get_number(),
        agent: AgentName::parse(&text(r.get_agent())?)?,
        fencing: FencingToken::new(r.get_fencing()),
        status: attempt_status_from_wire(r.get_status()?),
        assigned_at: Timestamp::from_millis(r.get_assigned_at()),
        lease_expires_at: Timestamp::from_millis(r.get_lease_expires_at()),
        started_at: opt_time(r.get_started_at()),
        ended_at: opt_time(r.get_ended_at()),
        summary: opt_text(r.has_summary(), r.get_summary())?,
        error: opt_text(r.has_error(), r.get_error())?,
        pid: (r.get_pid() != 0).then_some(r.get_pid()),
        session: opt_text(r.has_session(), r.get_session())?,
        exit: match r.get_exit().which()? {
            wire::attempt::exit::None(()) => None,
            wire::attempt::exit::Code(c) => Some(Exit::Code(c)),
            wire::attempt::exit::Signal(sig) => Some(Exit::Signal(sig)),
        },
        usage: read_usage(r.has_usage(), r.get_usage())?,
        failure: failure_from_wire(r.get_failure()?),
        checkpoint_before: opt_text(r.has_checkpoint_before(), r.get_checkpoint_before())?,
        checkpoint_after: opt_text(r.has_checkpoint_after(), r.get_checkpoint_after())?,
        port: (r.get_port() != 0).then_some(r.get_port()),
        verification: read_opt_verification(r.has_verification(), r.get_verification())?,
        // The briefing itself travels by `taskBriefing`, not with every task: a briefed attempt
        // read from the wire has an empty stand-in, so that it still says it was briefed.
        briefing: r.get_briefed().then(|| maos_domain::briefing::Briefing {
            text: String::new(),
            tokens: 0,
            cut: Vec::new(),
        }),
        diff_stat: opt_text(r.has_diff_stat(), r.get_diff_stat())?,
        permission_denials: texts(r.get_permission_denials())?,
        refunded: r.get_refunded(),
    })
}

/// Writes a task with its attempts.
pub fn write_task(t: &Task, mut b: wire::task::Builder<'_>) -> capnp::Result<()> {
    let spec = &t.spec;
    b.set_id(t.id.to_string().as_str());
    b.set_title(spec.title.as_str());
    b.set_prompt(spec.prompt.as_str());
    write_texts(
        spec.capabilities.iter().map(Capability::as_str),
        b.reborrow()
            .init_capabilities(len32(spec.capabilities.len())?),
    );
    b.set_priority(priority_to_wire(spec.priority));
    b.set_risk(risk_to_wire(spec.risk));
    b.set_tier(tier_requirement_to_wire(spec.tier));
    let deps: Vec<String> = spec.depends_on.iter().map(ToString::to_string).collect();
    write_texts(
        deps.iter().map(String::as_str),
        b.reborrow().init_depends_on(len32(deps.len())?),
    );
    if let Some(o) = spec.orchestration {
        b.set_orchestration(o.to_string().as_str());
    }
    b.set_max_attempts(spec.max_attempts.get());
    b.set_timeout_ms(spec.timeout.map_or(0, DurationMs::as_millis));
    if let Some(key) = &spec.idempotency_key {
        b.set_idempotency_key(key.as_str());
    }
    b.set_state(task_state_to_wire(t.state));
    if let Some(reason) = &t.reason {
        b.set_reason(reason.as_str());
    }
    if let Some(blocked) = &t.blocked {
        b.set_blocked(as_json(blocked)?.as_str());
    }
    let mut attempts = b.reborrow().init_attempts(len32(t.attempts.len())?);
    for (i, a) in (0u32..).zip(&t.attempts) {
        write_attempt(a, attempts.reborrow().get(i));
    }
    b.set_fencing(t.fencing.get());
    b.set_created_at(t.created_at.as_millis());
    b.set_updated_at(t.updated_at.as_millis());
    b.set_version(t.version);
    b.set_budget_micros(spec.budget.map_or(0, Usd::micros));
    if let Some(w) = &spec.workspace {
        write_workspace_spec(w, b.reborrow().init_workspace_spec());
    }
    if let Some(v) = &spec.verify {
        b.set_verify(v.as_str());
    }
    b.set_wants_port(spec.wants_port);
    if let Some(w) = &t.workspace {
        write_task_workspace(w, b.reborrow().init_workspace());
    }
    if let Some(p) = &t.pending {
        write_pending_approval(p, b.reborrow().init_pending());
    }
    b.set_run_approved(t.run_approved);
    if let Some(d) = &t.decision {
        write_approval_decision(d, b.reborrow().init_decision());
    }
    write_texts(
        spec.concerns.iter().map(Concern::as_str),
        b.reborrow().init_concerns(len32(spec.concerns.len())?),
    );
    b.set_retry_at(time_or_zero(t.retry_at));
    b.set_extra_attempts(t.extra_attempts);
    if let Some(o) = spec.plans {
        b.set_plans(o.to_string().as_str());
    }
    if let Some(agent) = &spec.agent {
        b.set_agent(agent.as_str());
    }
    if let Some(parent) = &spec.parent {
        write_subtask_link(parent.task, parent.waits, b.reborrow().init_parent());
    }
    b.set_lessons(spec.lessons);
    let mut subtasks = b.init_subtasks(len32(t.subtasks.len())?);
    for (i, s) in (0u32..).zip(&t.subtasks) {
        write_subtask_link(s.task, s.waits, subtasks.reborrow().get(i));
    }
    Ok(())
}

/// Writes one end of a subtask's link (a task's parent, or one of its subtasks).
fn write_subtask_link(task: TaskId, waits: bool, mut b: wire::subtask_link::Builder<'_>) {
    b.set_task(task.to_string().as_str());
    b.set_waits(waits);
}

/// Reads one end of a subtask's link: the task at the other end, and whether the parent waits.
fn read_subtask_link(r: wire::subtask_link::Reader<'_>) -> Decoded<(TaskId, bool)> {
    Ok((TaskId::parse(&text(r.get_task())?)?, r.get_waits()))
}

/// Reads a task with its attempts.
pub fn read_task(r: wire::task::Reader<'_>) -> Decoded<Task> {
    let depends_on = texts(r.get_depends_on())?
        .iter()
        .map(|s| TaskId::parse(s))
        .collect::<Result<BTreeSet<_>, _>>()?;
    let orchestration = opt_text(r.has_orchestration(), r.get_orchestration())?
        .map(|s| OrchestrationId::parse(&s))
        .transpose()?;
    let idempotency_key = opt_text(r.has_idempotency_key(), r.get_idempotency_key())?
        .map(|s| IdempotencyKey::parse(&s))
        .transpose()?;
    let spec = TaskSpec {
        title: Title::parse(&text(r.get_title())?)?,
        prompt: text(r.get_prompt())?,
        capabilities: capabilities(r.get_capabilities())?,
        priority: priority_from_wire(r.get_priority()?),
        risk: risk_from_wire(r.get_risk()?),
        tier: tier_requirement_from_wire(r.get_tier()?),
        depends_on,
        orchestration,
        max_attempts: MaxAttempts::new(r.get_max_attempts())?,
        timeout: opt_duration(r.get_timeout_ms())?,
        idempotency_key,
        budget: opt_u64(r.get_budget_micros()).map(Usd::from_micros),
        workspace: read_opt_workspace_spec(r.has_workspace_spec(), r.get_workspace_spec())?,
        verify: opt_text(r.has_verify(), r.get_verify())?,
        wants_port: r.get_wants_port(),
        concerns: concerns(r.get_concerns())?,
        plans: opt_text(r.has_plans(), r.get_plans())?
            .map(|s| OrchestrationId::parse(&s))
            .transpose()?,
        agent: pinned_agent(r.has_agent(), r.get_agent())?,
        parent: if r.has_parent() {
            let (task, waits) = read_subtask_link(r.get_parent()?)?;
            Some(ParentLink { task, waits })
        } else {
            None
        },
        lessons: r.get_lessons(),
    };
    let subtasks = r
        .get_subtasks()?
        .iter()
        .map(|s| read_subtask_link(s).map(|(task, waits)| Subtask { task, waits }))
        .collect::<Decoded<Vec<_>>>()?;
    let attempts = r
        .get_attempts()?
        .iter()
        .map(read_attempt)
        .collect::<Decoded<Vec<_>>>()?;
    Ok(Task::restore(TaskData {
        id: TaskId::parse(&text(r.get_id())?)?,
        spec,
        state: task_state_from_wire(r.get_state()?),
        reason: opt_text(r.has_reason(), r.get_reason())?,
        blocked: opt_text(r.has_blocked(), r.get_blocked())?
            .map(|j| from_json("block reason", &j))
            .transpose()?,
        attempts,
        fencing: FencingToken::new(r.get_fencing()),
        created_at: Timestamp::from_millis(r.get_created_at()),
        updated_at: Timestamp::from_millis(r.get_updated_at()),
        version: r.get_version(),
        workspace: if r.has_workspace() {
            Some(read_task_workspace(r.get_workspace()?)?)
        } else {
            None
        },
        pending: if r.has_pending() {
            Some(read_pending_approval(r.get_pending()?)?)
        } else {
            None
        },
        run_approved: r.get_run_approved(),
        decision: if r.has_decision() {
            Some(read_approval_decision(r.get_decision()?)?)
        } else {
            None
        },
        retry_at: opt_time(r.get_retry_at()),
        extra_attempts: r.get_extra_attempts(),
        subtasks,
    }))
}

/// Writes an orchestration.
pub fn write_orchestration(o: &Orchestration, mut b: wire::orchestration::Builder<'_>) {
    b.set_id(o.id.to_string().as_str());
    b.set_name(o.name.as_str());
    if let Some(goal) = &o.goal {
        b.set_goal(goal.as_str());
    }
    b.set_status(orchestration_status_to_wire(o.status));
    b.set_created_at(o.created_at.as_millis());
    b.set_updated_at(o.updated_at.as_millis());
    b.set_version(o.version);
    if let Some(w) = &o.workspace {
        write_workspace_spec(w, b.reborrow().init_workspace());
    }
    if let Some(v) = &o.verify {
        b.set_verify(v.as_str());
    }
    b.set_planned(o.planned);
    b.set_plan_version(o.plan_version);
    b.set_approved_version(o.approved_version);
    b.set_decided_version(o.decided_version);
    if let Some(p) = &o.planning {
        let mut pb = b.reborrow().init_planning();
        pb.set_task(p.task.to_string().as_str());
        pb.set_max_tasks(p.max_tasks);
        if let Some(d) = p.discussion {
            pb.set_discussion(d.to_string().as_str());
        }
    }
    let superseded: Vec<String> = o.superseded.iter().map(ToString::to_string).collect();
    if let Ok(n) = len32(superseded.len()) {
        write_texts(
            superseded.iter().map(String::as_str),
            b.reborrow().init_superseded(n),
        );
    }
    if let Ok(n) = len32(o.notes.len()) {
        write_texts(o.notes.iter().map(String::as_str), b.init_notes(n));
    }
}

/// Reads an orchestration.
pub fn read_orchestration(r: wire::orchestration::Reader<'_>) -> Decoded<Orchestration> {
    Ok(Orchestration::restore(OrchestrationData {
        id: OrchestrationId::parse(&text(r.get_id())?)?,
        name: Title::parse(&text(r.get_name())?)?,
        goal: opt_text(r.has_goal(), r.get_goal())?,
        workspace: read_opt_workspace_spec(r.has_workspace(), r.get_workspace())?,
        verify: opt_text(r.has_verify(), r.get_verify())?,
        notes: texts(r.get_notes())?,
        planned: r.get_planned(),
        plan_version: r.get_plan_version(),
        planning: if r.has_planning() {
            let p = r.get_planning()?;
            Some(Planning {
                task: TaskId::parse(&text(p.get_task())?)?,
                max_tasks: p.get_max_tasks(),
                discussion: opt_text(p.has_discussion(), p.get_discussion())?
                    .map(|t| TaskId::parse(&t))
                    .transpose()?,
            })
        } else {
            None
        },
        approved_version: r.get_approved_version(),
        decided_version: r.get_decided_version(),
        superseded: texts(r.get_superseded())?
            .iter()
            .map(|t| TaskId::parse(t))
            .collect::<Result<_, _>>()?,
        status: orchestration_status_from_wire(r.get_status()?),
        created_at: Timestamp::from_millis(r.get_created_at()),
        updated_at: Timestamp::from_millis(r.get_updated_at()),
        version: r.get_version(),
    }))
}

// ---------------------------------------------------------------------------------------------
// Events, status, daemon

/// The JSON payload of an event: the aggregate's event (tagged by `type`, keys sorted), the same
/// shape as the `data` of `maos events --json`. The aggregate and its id travel beside it.
pub fn event_payload(event: &DomainEvent) -> Result<String, serde_json::Error> {
    let value = match event {
        DomainEvent::Agent { event, .. } => serde_json::to_value(event),
        DomainEvent::Task { event, .. } => serde_json::to_value(event),
        DomainEvent::Orchestration { event, .. } => serde_json::to_value(event),
        DomainEvent::Memory { event, .. } => serde_json::to_value(event),
    }?;
    Ok(value.to_string())
}

/// Rebuilds a domain event from its aggregate kind, the aggregate's id and the JSON payload.
pub fn domain_event(aggregate: &str, id: &str, payload: &str) -> Decoded<DomainEvent> {
    let bad = |e: serde_json::Error| DecodeError::Payload(e.to_string());
    Ok(match AggregateKind::parse(aggregate)? {
        AggregateKind::Agent => DomainEvent::Agent {
            id: AgentId::parse(id)?,
            event: serde_json::from_str::<AgentEvent>(payload).map_err(bad)?,
        },
        AggregateKind::Task => DomainEvent::Task {
            id: TaskId::parse(id)?,
            event: serde_json::from_str::<TaskEvent>(payload).map_err(bad)?,
        },
        AggregateKind::Orchestration => DomainEvent::Orchestration {
            id: OrchestrationId::parse(id)?,
            event: serde_json::from_str::<OrchestrationEvent>(payload).map_err(bad)?,
        },
        AggregateKind::Memory => DomainEvent::Memory {
            id: MemoryId::parse(id)?,
            event: serde_json::from_str::<MemoryEvent>(payload).map_err(bad)?,
        },
    })
}

/// Writes an event of the log.
pub fn write_event(e: &StoredEvent, b: wire::event::Builder<'_>) -> capnp::Result<()> {
    let payload = event_payload(&e.event)
        .map_err(|err| capnp::Error::failed(format!("cannot encode event {}: {err}", e.seq)))?;
    write_event_with_payload(e, &payload, b);
    Ok(())
}

/// Writes an event of the log whose payload ([`event_payload`]) is already encoded.
pub fn write_event_with_payload(e: &StoredEvent, payload: &str, mut b: wire::event::Builder<'_>) {
    b.set_seq(e.seq);
    b.set_at(e.at.as_millis());
    b.set_kind(e.event.kind());
    b.set_aggregate(e.event.aggregate_kind().as_str());
    b.set_aggregate_id(e.event.aggregate_id().as_str());
    b.set_payload(payload);
}

/// Reads an event of the log. `kind` is derived from the payload, so it is not read.
pub fn read_event(r: wire::event::Reader<'_>) -> Decoded<StoredEvent> {
    Ok(StoredEvent {
        seq: r.get_seq(),
        at: Timestamp::from_millis(r.get_at()),
        event: domain_event(
            &text(r.get_aggregate())?,
            &text(r.get_aggregate_id())?,
            &text(r.get_payload())?,
        )?,
    })
}

/// Writes the counts of `maos status`.
pub fn write_status(s: &StatusReport, mut b: wire::status::Builder<'_>) -> capnp::Result<()> {
    let mut tasks = b.reborrow().init_tasks(len32(s.tasks.len())?);
    for (i, (state, n)) in (0u32..).zip(&s.tasks) {
        let mut c = tasks.reborrow().get(i);
        c.set_key(state.as_str());
        c.set_n(*n);
    }
    let mut agents = b.reborrow().init_agents(len32(s.agents.len())?);
    for (i, (status, n)) in (0u32..).zip(&s.agents) {
        let mut c = agents.reborrow().get(i);
        c.set_key(status.as_str());
        c.set_n(*n);
    }
    b.set_orchestrations(s.orchestrations);
    b.set_last_event(s.last_event);
    write_usage(&s.usage, b.init_usage());
    Ok(())
}

/// Reads the counts of `maos status`.
pub fn read_status(r: wire::status::Reader<'_>) -> Decoded<StatusReport> {
    let mut report = StatusReport {
        orchestrations: r.get_orchestrations(),
        last_event: r.get_last_event(),
        usage: read_usage(r.has_usage(), r.get_usage())?,
        ..StatusReport::default()
    };
    for c in r.get_tasks()? {
        report
            .tasks
            .insert(TaskState::parse(&text(c.get_key())?)?, c.get_n());
    }
    for c in r.get_agents()? {
        report
            .agents
            .insert(AgentStatus::parse(&text(c.get_key())?)?, c.get_n());
    }
    Ok(report)
}

/// Writes what the daemon says about itself.
pub fn write_daemon_info(d: &DaemonInfo, mut b: wire::daemon_info::Builder<'_>) {
    b.set_pid(d.pid);
    b.set_version(d.version.as_str());
    b.set_protocol(d.protocol);
    b.set_socket(d.socket.to_string_lossy().as_ref());
    b.set_database(d.database.to_string_lossy().as_ref());
    b.set_started_at(d.started_at.as_millis());
    b.set_uptime_ms(u64::try_from(d.uptime.as_millis()).unwrap_or(u64::MAX));
    b.set_containment(d.containment.as_str());
    if let Some(root) = &d.containment_root {
        b.set_containment_root(root.to_string_lossy().as_ref());
    }
    if let Some(ui) = &d.ui {
        b.set_ui(ui.as_str());
    }
}

/// Reads what the daemon says about itself.
pub fn read_daemon_info(r: wire::daemon_info::Reader<'_>) -> Decoded<DaemonInfo> {
    Ok(DaemonInfo {
        pid: r.get_pid(),
        version: text(r.get_version())?,
        protocol: r.get_protocol(),
        socket: PathBuf::from(text(r.get_socket())?),
        database: PathBuf::from(text(r.get_database())?),
        started_at: Timestamp::from_millis(r.get_started_at()),
        uptime: Duration::from_millis(r.get_uptime_ms()),
        containment: text(r.get_containment())?,
        containment_root: Some(text(r.get_containment_root())?)
            .filter(|s| !s.is_empty())
            .map(PathBuf::from),
        ui: Some(text(r.get_ui())?).filter(|s| !s.is_empty()),
    })
}

/// Writes where the dashboard should be served.
pub fn write_ui_request(q: &crate::UiRequest, mut b: wire::ui_request::Builder<'_>) {
    if let Some(a) = q.address {
        b.set_address(a.to_string().as_str());
    }
    b.set_port(q.port.unwrap_or(0));
}

/// Reads where the dashboard should be served.
pub fn read_ui_request(r: wire::ui_request::Reader<'_>) -> Decoded<crate::UiRequest> {
    let address = text(r.get_address())?;
    let address = if address.is_empty() {
        None
    } else {
        Some(address.parse().map_err(|_| DecodeError::Unknown {
            what: "IP address",
            value: address.clone(),
        })?)
    };
    Ok(crate::UiRequest {
        address,
        port: Some(r.get_port()).filter(|p| *p != 0),
    })
}

/// Writes where the dashboard is served.
pub fn write_ui_serving(s: &crate::UiServing, mut b: wire::ui_serving::Builder<'_>) {
    b.set_url(s.url.as_str());
    b.set_token(s.token.as_str());
    b.set_address(s.address.to_string().as_str());
    b.set_port(s.port);
    b.set_loopback(s.loopback);
    b.set_already(s.already);
}

/// Reads where the dashboard is served.
pub fn read_ui_serving(r: wire::ui_serving::Reader<'_>) -> Decoded<crate::UiServing> {
    let address = text(r.get_address())?;
    Ok(crate::UiServing {
        url: text(r.get_url())?,
        token: text(r.get_token())?,
        address: address.parse().map_err(|_| DecodeError::Unknown {
            what: "IP address",
            value: address.clone(),
        })?,
        port: r.get_port(),
        loopback: r.get_loopback(),
        already: r.get_already(),
    })
}

// ---------------------------------------------------------------------------------------------
// Commands, answers and filters

/// Writes an agent registration.
pub fn write_new_agent(
    c: &RegisterAgent,
    mut b: wire::new_agent::Builder<'_>,
) -> capnp::Result<()> {
    b.set_name(c.name.as_str());
    b.set_adapter(adapter_to_wire(c.adapter));
    write_texts(
        c.capabilities.iter().map(Capability::as_str),
        b.reborrow().init_capabilities(len32(c.capabilities.len())?),
    );
    b.set_tier(tier_to_wire(c.tier));
    b.set_slots(c.slots.get());
    if let Some(command) = &c.command {
        b.set_command(command.as_str());
    }
    write_settings(&c.settings, b.init_settings())
}

/// Reads an agent registration.
pub fn read_new_agent(r: wire::new_agent::Reader<'_>) -> Decoded<RegisterAgent> {
    Ok(RegisterAgent {
        name: AgentName::parse(&text(r.get_name())?)?,
        adapter: adapter_from_wire(r.get_adapter()?),
        capabilities: capabilities(r.get_capabilities())?,
        tier: tier_from_wire(r.get_tier()?),
        slots: Slots::new(r.get_slots())?,
        command: opt_text(r.has_command(), r.get_command())?,
        settings: read_opt_settings(r.has_settings(), r.get_settings())?,
    })
}

/// Writes a task creation.
pub fn write_new_task(c: &CreateTask, mut b: wire::new_task::Builder<'_>) -> capnp::Result<()> {
    b.set_title(c.title.as_str());
    b.set_prompt(c.prompt.as_str());
    write_texts(
        c.capabilities.iter().map(Capability::as_str),
        b.reborrow().init_capabilities(len32(c.capabilities.len())?),
    );
    b.set_priority(priority_to_wire(c.priority));
    b.set_risk(risk_to_wire(c.risk));
    b.set_tier(tier_requirement_to_wire(c.tier));
    write_texts(
        c.depends_on.iter().map(IdRef::as_str),
        b.reborrow().init_depends_on(len32(c.depends_on.len())?),
    );
    if let Some(o) = &c.orchestration {
        b.set_orchestration(o.as_str());
    }
    b.set_max_attempts(c.max_attempts.get());
    b.set_timeout_ms(c.timeout.map_or(0, DurationMs::as_millis));
    if let Some(key) = &c.idempotency_key {
        b.set_idempotency_key(key.as_str());
    }
    b.set_budget_micros(c.budget.map_or(0, Usd::micros));
    if let Some(w) = &c.workspace {
        write_workspace_spec(w, b.reborrow().init_workspace());
    }
    if let Some(v) = &c.verify {
        b.set_verify(v.as_str());
    }
    b.set_wants_port(c.wants_port);
    write_texts(
        c.concerns.iter().map(Concern::as_str),
        b.reborrow().init_concerns(len32(c.concerns.len())?),
    );
    if let Some(agent) = &c.agent {
        b.set_agent(agent.as_str());
    }
    b.set_lessons(c.lessons);
    Ok(())
}

/// Reads a task creation.
pub fn read_new_task(r: wire::new_task::Reader<'_>) -> Decoded<CreateTask> {
    Ok(CreateTask {
        title: Title::parse(&text(r.get_title())?)?,
        prompt: text(r.get_prompt())?,
        capabilities: capabilities(r.get_capabilities())?,
        priority: priority_from_wire(r.get_priority()?),
        risk: risk_from_wire(r.get_risk()?),
        tier: tier_requirement_from_wire(r.get_tier()?),
        depends_on: texts(r.get_depends_on())?
            .iter()
            .map(|s| IdRef::parse(s))
            .collect::<Result<_, _>>()?,
        orchestration: opt_text(r.has_orchestration(), r.get_orchestration())?
            .map(|s| IdRef::parse(&s))
            .transpose()?,
        max_attempts: MaxAttempts::new(r.get_max_attempts())?,
        timeout: opt_duration(r.get_timeout_ms())?,
        idempotency_key: opt_text(r.has_idempotency_key(), r.get_idempotency_key())?
            .map(|s| IdempotencyKey::parse(&s))
            .transpose()?,
        budget: opt_u64(r.get_budget_micros()).map(Usd::from_micros),
        workspace: read_opt_workspace_spec(r.has_workspace(), r.get_workspace())?,
        verify: opt_text(r.has_verify(), r.get_verify())?,
        wants_port: r.get_wants_port(),
        concerns: concerns(r.get_concerns())?,
        agent: pinned_agent(r.has_agent(), r.get_agent())?,
        lessons: r.get_lessons(),
    })
}

/// The agent a task is pinned to: none when the field is absent (an older peer) or empty.
fn pinned_agent(has: bool, r: capnp::Result<text::Reader<'_>>) -> Decoded<Option<AgentName>> {
    match opt_text(has, r)? {
        Some(name) if !name.is_empty() => Ok(Some(AgentName::parse(&name)?)),
        _ => Ok(None),
    }
}

/// Writes an orchestration's creation.
pub fn write_new_orchestration(
    c: &CreateOrchestration,
    mut b: wire::new_orchestration::Builder<'_>,
) -> capnp::Result<()> {
    b.set_name(c.name.as_str());
    if let Some(goal) = &c.goal {
        b.set_goal(goal.as_str());
    }
    if let Some(w) = &c.workspace {
        write_workspace_spec(w, b.reborrow().init_workspace());
    }
    if let Some(v) = &c.verify {
        b.set_verify(v.as_str());
    }
    write_texts(
        c.notes.iter().map(String::as_str),
        b.init_notes(len32(c.notes.len())?),
    );
    Ok(())
}

/// Reads an orchestration's creation.
pub fn read_new_orchestration(
    r: wire::new_orchestration::Reader<'_>,
) -> Decoded<CreateOrchestration> {
    Ok(CreateOrchestration {
        name: Title::parse(&text(r.get_name())?)?,
        goal: opt_text(r.has_goal(), r.get_goal())?,
        workspace: read_opt_workspace_spec(r.has_workspace(), r.get_workspace())?,
        verify: opt_text(r.has_verify(), r.get_verify())?,
        notes: texts(r.get_notes())?,
    })
}

/// Writes a plan to create.
pub fn write_new_plan(p: &CreatePlan, mut b: wire::new_plan::Builder<'_>) -> capnp::Result<()> {
    write_new_orchestration(&p.orchestration, b.reborrow().init_orchestration())?;
    b.set_start(p.start);
    write_plan_tasks(&p.tasks, b.init_tasks(len32(p.tasks.len())?))
}

/// Writes the tasks of a plan (or an agent's subtasks) into a list of their length.
pub fn write_plan_tasks(
    tasks: &[PlanTask],
    mut list: capnp::struct_list::Builder<'_, wire::plan_task::Owned>,
) -> capnp::Result<()> {
    for (i, t) in (0u32..).zip(tasks) {
        let mut tb = list.reborrow().get(i);
        tb.set_key(t.key.as_str());
        write_new_task(&t.task, tb.reborrow().init_task())?;
        write_texts(
            t.depends_on.iter().map(String::as_str),
            tb.init_depends_on(len32(t.depends_on.len())?),
        );
    }
    Ok(())
}

/// Reads the tasks of a plan (or an agent's subtasks).
pub fn read_plan_tasks(
    list: capnp::struct_list::Reader<'_, wire::plan_task::Owned>,
) -> Decoded<Vec<PlanTask>> {
    list.iter()
        .map(|t| {
            Ok(PlanTask {
                key: text(t.get_key())?,
                task: read_new_task(t.get_task()?)?,
                depends_on: texts(t.get_depends_on())?,
            })
        })
        .collect()
}

/// Reads a plan to create.
pub fn read_new_plan(r: wire::new_plan::Reader<'_>) -> Decoded<CreatePlan> {
    let tasks = read_plan_tasks(r.get_tasks()?)?;
    Ok(CreatePlan {
        orchestration: read_new_orchestration(r.get_orchestration()?)?,
        tasks,
        start: r.get_start(),
    })
}

/// Writes what createPlan made.
pub fn write_plan_created(
    p: &PlanCreated,
    mut b: wire::plan_created::Builder<'_>,
) -> capnp::Result<()> {
    write_orchestration(&p.orchestration, b.reborrow().init_orchestration());
    let mut tasks = b.init_tasks(len32(p.tasks.len())?);
    for (i, (key, t)) in (0u32..).zip(&p.tasks) {
        let mut tb = tasks.reborrow().get(i);
        tb.set_key(key.as_str());
        write_task(t, tb.init_task())?;
    }
    Ok(())
}

/// Reads what createPlan made.
pub fn read_plan_created(r: wire::plan_created::Reader<'_>) -> Decoded<PlanCreated> {
    let tasks = r
        .get_tasks()?
        .iter()
        .map(|t| Ok((text(t.get_key())?, read_task(t.get_task()?)?)))
        .collect::<Decoded<Vec<_>>>()?;
    Ok(PlanCreated {
        orchestration: read_orchestration(r.get_orchestration()?)?,
        tasks,
    })
}

/// Writes a goal to plan.
pub fn write_plan_goal(
    g: &PlanGoal,
    mut b: wire::plan_goal_request::Builder<'_>,
) -> capnp::Result<()> {
    b.set_goal(g.goal.as_str());
    if let Some(name) = &g.name {
        b.set_name(name.as_str());
    }
    write_texts(
        g.notes.iter().map(String::as_str),
        b.reborrow().init_notes(len32(g.notes.len())?),
    );
    if let Some(w) = &g.workspace {
        write_workspace_spec(w, b.reborrow().init_workspace());
    }
    if let Some(planner) = &g.planner {
        b.set_planner(planner.as_str());
    }
    b.set_max_tasks(g.max_tasks);
    b.set_rounds(g.rounds.get());
    b.set_budget_micros(g.budget.map_or(0, Usd::micros));
    b.set_timeout_ms(g.timeout.map_or(0, DurationMs::as_millis));
    if let Some(d) = g.discussion {
        b.set_discussion(d.to_string().as_str());
    }
    Ok(())
}

/// Reads a goal to plan. `maxTasks` passes as it is (the service checks its range); `rounds`
/// must be a valid number of attempts (0 is refused).
pub fn read_plan_goal(r: wire::plan_goal_request::Reader<'_>) -> Decoded<PlanGoal> {
    Ok(PlanGoal {
        goal: text(r.get_goal())?,
        name: opt_text(r.has_name(), r.get_name())?
            .map(|n| Title::parse(&n))
            .transpose()?,
        notes: texts(r.get_notes())?,
        workspace: read_opt_workspace_spec(r.has_workspace(), r.get_workspace())?,
        planner: opt_text(r.has_planner(), r.get_planner())?
            .map(|p| AgentName::parse(&p))
            .transpose()?,
        max_tasks: r.get_max_tasks(),
        rounds: MaxAttempts::new(r.get_rounds())?,
        budget: opt_u64(r.get_budget_micros()).map(Usd::from_micros),
        timeout: opt_duration(r.get_timeout_ms())?,
        discussion: opt_text(r.has_discussion(), r.get_discussion())?
            .map(|t| TaskId::parse(&t))
            .transpose()?,
    })
}

/// Writes a planner at work: the orchestration and its planning task.
pub fn write_planning_started(
    p: &PlanningStarted,
    mut b: wire::planning_started::Builder<'_>,
) -> capnp::Result<()> {
    write_orchestration(&p.orchestration, b.reborrow().init_orchestration());
    write_task(&p.task, b.init_task())
}

/// Reads a planner at work.
pub fn read_planning_started(r: wire::planning_started::Reader<'_>) -> Decoded<PlanningStarted> {
    Ok(PlanningStarted {
        orchestration: read_orchestration(r.get_orchestration()?)?,
        task: read_task(r.get_task()?)?,
    })
}

/// Who approved a plan, as the wire says it (the same words as its JSON).
fn approver_to_wire(by: PlanApprover) -> &'static str {
    by.as_str()
}

/// An approver this build does not know is a newer peer's word, not a bad value.
fn approver_from_wire(by: &str) -> Decoded<PlanApprover> {
    PlanApprover::parse(by).map_err(|_| DecodeError::Unknown {
        what: "plan approver",
        value: by.to_owned(),
    })
}

/// Writes one step of a plan's history.
pub fn write_plan_record(
    rec: &PlanRecord,
    mut b: wire::plan_record::Builder<'_>,
) -> capnp::Result<()> {
    match rec {
        PlanRecord::Planning {
            task,
            max_tasks,
            discussion,
            at,
        } => {
            b.set_at(at.as_millis());
            let mut g = b.init_planning();
            g.set_task(task.to_string().as_str());
            g.set_max_tasks(*max_tasks);
            if let Some(d) = discussion {
                g.set_discussion(d.to_string().as_str());
            }
        }
        PlanRecord::Proposed { version, at } => {
            b.set_at(at.as_millis());
            b.init_proposed().set_version(*version);
        }
        PlanRecord::Failed {
            task,
            text,
            problems,
            at,
        } => {
            b.set_at(at.as_millis());
            let mut g = b.init_failed();
            g.set_task(task.to_string().as_str());
            if let Some(text) = text {
                g.set_text(text.as_str());
            }
            write_texts(
                problems.iter().map(String::as_str),
                g.init_problems(len32(problems.len())?),
            );
        }
        PlanRecord::Approved {
            version,
            by,
            tasks,
            superseded,
            at,
        } => {
            b.set_at(at.as_millis());
            let mut g = b.init_approved();
            g.set_version(*version);
            g.set_by(approver_to_wire(*by));
            let mut list = g.reborrow().init_tasks(len32(tasks.len())?);
            for (i, (key, id)) in tasks.iter().enumerate() {
                let mut k = list.reborrow().get(len32(i)?);
                k.set_key(key.as_str());
                k.set_id(id.to_string().as_str());
            }
            let ids: Vec<String> = superseded.iter().map(ToString::to_string).collect();
            write_texts(
                ids.iter().map(String::as_str),
                g.init_superseded(len32(ids.len())?),
            );
        }
        PlanRecord::Rejected {
            version,
            reason,
            at,
        } => {
            b.set_at(at.as_millis());
            let mut g = b.init_rejected();
            g.set_version(*version);
            if let Some(reason) = reason {
                g.set_reason(reason.as_str());
            }
        }
    }
    Ok(())
}

/// Reads one step of a plan's history.
pub fn read_plan_record(r: wire::plan_record::Reader<'_>) -> Decoded<PlanRecord> {
    use wire::plan_record::Which;
    let at = Timestamp::from_millis(r.get_at());
    Ok(match r.which()? {
        Which::Planning(g) => PlanRecord::Planning {
            task: TaskId::parse(&text(g.get_task())?)?,
            max_tasks: g.get_max_tasks(),
            discussion: opt_text(g.has_discussion(), g.get_discussion())?
                .map(|t| TaskId::parse(&t))
                .transpose()?,
            at,
        },
        Which::Proposed(g) => PlanRecord::Proposed {
            version: g.get_version(),
            at,
        },
        Which::Failed(g) => PlanRecord::Failed {
            task: TaskId::parse(&text(g.get_task())?)?,
            text: opt_text(g.has_text(), g.get_text())?,
            problems: texts(g.get_problems())?,
            at,
        },
        Which::Approved(g) => PlanRecord::Approved {
            version: g.get_version(),
            by: approver_from_wire(&text(g.get_by())?)?,
            tasks: g
                .get_tasks()?
                .iter()
                .map(|k| {
                    Ok((
                        maos_domain::PlanKey::parse(&text(k.get_key())?)
                            .map_err(|e| DecodeError::Payload(e.to_string()))?,
                        TaskId::parse(&text(k.get_id())?)?,
                    ))
                })
                .collect::<Decoded<_>>()?,
            superseded: texts(g.get_superseded())?
                .iter()
                .map(|t| TaskId::parse(t))
                .collect::<Result<_, _>>()?,
            at,
        },
        Which::Rejected(g) => PlanRecord::Rejected {
            version: g.get_version(),
            reason: opt_text(g.has_reason(), g.get_reason())?,
            at,
        },
    })
}

/// Writes an orchestration's plan over time: each version as JSON (a `PlanVersion`), the
/// record as data.
pub fn write_plan_history(
    h: &PlanHistory,
    mut b: wire::plan_history::Builder<'_>,
) -> capnp::Result<()> {
    write_orchestration(&h.orchestration, b.reborrow().init_orchestration());
    let mut versions = b.reborrow().init_versions(len32(h.versions.len())?);
    for (i, v) in (0u32..).zip(&h.versions) {
        versions.set(i, as_json(v)?.as_str());
    }
    let mut record = b.init_record(len32(h.record.len())?);
    for (i, rec) in (0u32..).zip(&h.record) {
        write_plan_record(rec, record.reborrow().get(i))?;
    }
    Ok(())
}

/// Reads an orchestration's plan over time.
pub fn read_plan_history(r: wire::plan_history::Reader<'_>) -> Decoded<PlanHistory> {
    Ok(PlanHistory {
        orchestration: read_orchestration(r.get_orchestration()?)?,
        versions: texts(r.get_versions())?
            .iter()
            .map(|json| from_json::<PlanVersion>("plan version", json))
            .collect::<Decoded<Vec<_>>>()?,
        record: r
            .get_record()?
            .iter()
            .map(read_plan_record)
            .collect::<Decoded<Vec<_>>>()?,
    })
}

/// Writes one thing a task waits for.
pub fn write_waiting(w: &WaitReason, mut b: wire::waiting::Builder<'_>) -> capnp::Result<()> {
    b.set_kind(w.kind().as_str());
    if let Some(t) = w.task() {
        b.set_task(t.to_string().as_str());
    }
    b.set_reason(as_json(w)?.as_str());
    Ok(())
}

/// Reads one thing a task waits for.
pub fn read_waiting(r: wire::waiting::Reader<'_>) -> Decoded<WaitReason> {
    from_json("wait reason", &text(r.get_reason())?)
}

/// Writes a task waiting for a person's decision, with what its branch changed.
pub fn write_approval_request(
    a: &ApprovalRequest,
    mut b: wire::approval_request::Builder<'_>,
) -> capnp::Result<()> {
    write_task(&a.task, b.reborrow().init_task())?;
    if let Some(changes) = &a.changes {
        b.set_changes(changes.as_str());
    }
    Ok(())
}

/// Reads a task waiting for a person's decision.
pub fn read_approval_request(r: wire::approval_request::Reader<'_>) -> Decoded<ApprovalRequest> {
    Ok(ApprovalRequest {
        task: read_task(r.get_task()?)?,
        changes: opt_text(r.has_changes(), r.get_changes())?,
    })
}

/// Writes where an orchestration stands.
pub fn write_orchestration_report(
    rep: &OrchestrationReport,
    mut b: wire::orchestration_report::Builder<'_>,
) -> capnp::Result<()> {
    write_orchestration(&rep.orchestration, b.reborrow().init_orchestration());
    let mut counts = b.reborrow().init_by_state(len32(rep.by_state.len())?);
    for (i, (state, n)) in (0u32..).zip(&rep.by_state) {
        let mut c = counts.reborrow().get(i);
        c.set_key(state.as_str());
        c.set_n(*n);
    }
    b.set_tasks(rep.tasks);
    b.set_completed(rep.completed);
    b.set_attempts(rep.attempts);
    b.set_wall_ms(rep.wall_ms);
    b.set_input_tokens(rep.input_tokens);
    b.set_output_tokens(rep.output_tokens);
    b.set_cost_micros(rep.cost.micros());
    if let Some(branch) = &rep.integration_branch {
        b.set_integration_branch(branch.as_str());
    }
    b.set_can_move(rep.can_move);
    write_usage(&rep.planning, b.reborrow().init_planning());
    let mut people = b.init_needs_a_person(len32(rep.needs_a_person.len())?);
    for (i, n) in (0u32..).zip(&rep.needs_a_person) {
        let mut nb = people.reborrow().get(i);
        nb.set_task(n.task.to_string().as_str());
        nb.set_title(n.title.as_str());
        nb.set_state(task_state_to_wire(n.state));
        let mut waits = nb.reborrow().init_waits(len32(n.waits.len())?);
        for (j, w) in (0u32..).zip(&n.waits) {
            write_waiting(w, waits.reborrow().get(j))?;
        }
        if let Some(reason) = &n.blocked {
            nb.set_blocked(as_json(reason)?.as_str());
        }
        let mut steps = nb.init_next_steps(len32(n.next_steps.len())?);
        for (j, step) in (0u32..).zip(&n.next_steps) {
            steps.set(j, as_json(step)?.as_str());
        }
    }
    Ok(())
}

/// Reads where an orchestration stands.
pub fn read_orchestration_report(
    r: wire::orchestration_report::Reader<'_>,
) -> Decoded<OrchestrationReport> {
    let mut by_state = std::collections::BTreeMap::new();
    for c in r.get_by_state()? {
        by_state.insert(TaskState::parse(&text(c.get_key())?)?, c.get_n());
    }
    let needs_a_person = r
        .get_needs_a_person()?
        .iter()
        .map(|n| {
            Ok(NeedsPerson {
                task: TaskId::parse(&text(n.get_task())?)?,
                title: Title::parse(&text(n.get_title())?)?,
                state: task_state_from_wire(n.get_state()?),
                waits: n
                    .get_waits()?
                    .iter()
                    .map(read_waiting)
                    .collect::<Decoded<Vec<_>>>()?,
                blocked: opt_text(n.has_blocked(), n.get_blocked())?
                    .map(|json| from_json::<BlockReason>("block reason", &json))
                    .transpose()?,
                next_steps: texts(n.get_next_steps())?
                    .iter()
                    .map(|json| from_json::<NextStep>("next step", json))
                    .collect::<Decoded<Vec<_>>>()?,
            })
        })
        .collect::<Decoded<Vec<_>>>()?;
    Ok(OrchestrationReport {
        orchestration: read_orchestration(r.get_orchestration()?)?,
        by_state,
        tasks: r.get_tasks(),
        completed: r.get_completed(),
        attempts: r.get_attempts(),
        wall_ms: r.get_wall_ms(),
        input_tokens: r.get_input_tokens(),
        output_tokens: r.get_output_tokens(),
        cost: Usd::from_micros(r.get_cost_micros()),
        planning: read_usage(r.has_planning(), r.get_planning())?,
        integration_branch: opt_text(r.has_integration_branch(), r.get_integration_branch())?,
        needs_a_person,
        can_move: r.get_can_move(),
    })
}

/// A value that travels as JSON inside a message (reasons, whose shapes grow with MAOS).
fn as_json<T: serde::Serialize>(v: &T) -> capnp::Result<String> {
    serde_json::to_string(v).map_err(|e| capnp::Error::failed(format!("cannot encode: {e}")))
}

/// Reads a value that travels as JSON inside a message. The error quotes the start of the
/// JSON (a plan version can be long).
fn from_json<T: serde::de::DeserializeOwned>(what: &'static str, json: &str) -> Decoded<T> {
    const QUOTED: usize = 200;
    serde_json::from_str(json).map_err(|e| {
        let mut quoted: String = json.chars().take(QUOTED).collect();
        if quoted.len() < json.len() {
            quoted.push('…');
        }
        DecodeError::Unknown {
            what,
            value: format!("{quoted} ({e})"),
        }
    })
}

/// Writes an attempt's briefing.
pub fn write_briefing(
    w: &AttemptBriefing,
    mut b: wire::briefing::Builder<'_>,
) -> capnp::Result<()> {
    b.set_attempt(w.attempt);
    b.set_text(w.text.as_str());
    b.set_tokens(w.tokens);
    write_texts(
        w.cut.iter().map(String::as_str),
        b.init_cut(len32(w.cut.len())?),
    );
    Ok(())
}

/// Reads an attempt's briefing.
pub fn read_briefing(r: wire::briefing::Reader<'_>) -> Decoded<AttemptBriefing> {
    Ok(AttemptBriefing {
        attempt: r.get_attempt(),
        text: text(r.get_text())?,
        tokens: r.get_tokens(),
        cut: texts(r.get_cut())?,
    })
}

/// Writes which worktrees gc removes.
pub fn write_gc_request(q: &GcRequest, mut b: wire::gc_request::Builder<'_>) {
    b.set_dry_run(q.dry_run);
    b.set_force(q.force);
    b.set_older_than_ms(u64::try_from(q.older_than.as_millis()).unwrap_or(u64::MAX));
}

/// Reads which worktrees gc removes.
pub fn read_gc_request(r: wire::gc_request::Reader<'_>) -> GcRequest {
    GcRequest {
        dry_run: r.get_dry_run(),
        force: r.get_force(),
        older_than: Duration::from_millis(r.get_older_than_ms()),
    }
}

/// Writes one worktree gc looked at.
pub fn write_gc_entry(e: &GcEntry, mut b: wire::gc_entry::Builder<'_>) {
    b.set_task(e.task.to_string().as_str());
    b.set_path(e.path.as_str());
    b.set_removed(e.removed);
    if let Some(why) = &e.kept_because {
        b.set_kept_because(why.as_str());
    }
}

/// Reads one worktree gc looked at.
pub fn read_gc_entry(r: wire::gc_entry::Reader<'_>) -> Decoded<GcEntry> {
    Ok(GcEntry {
        task: TaskId::parse(&text(r.get_task())?)?,
        path: text(r.get_path())?,
        removed: r.get_removed(),
        kept_because: opt_text(r.has_kept_because(), r.get_kept_because())?,
    })
}

/// Writes what an orchestration's merge did.
pub fn write_merge_report(m: &MergeReport, mut b: wire::merge_report::Builder<'_>) {
    write_orchestration(&m.orchestration, b.reborrow().init_orchestration());
    b.set_branch(m.branch.as_str());
    b.set_into(m.into.as_str());
    b.set_commit(m.commit.as_str());
    b.set_merged(m.merged);
}

/// Reads what an orchestration's merge did.
pub fn read_merge_report(r: wire::merge_report::Reader<'_>) -> Decoded<MergeReport> {
    Ok(MergeReport {
        orchestration: read_orchestration(r.get_orchestration()?)?,
        branch: text(r.get_branch())?,
        into: text(r.get_into())?,
        commit: text(r.get_commit())?,
        merged: r.get_merged(),
    })
}

/// Writes a heartbeat.
pub fn write_beat(h: &Heartbeat, mut b: wire::beat::Builder<'_>) {
    b.set_task(h.task.to_string().as_str());
    b.set_fencing(h.fencing.get());
}

/// Reads a heartbeat.
pub fn read_beat(r: wire::beat::Reader<'_>) -> Decoded<Heartbeat> {
    Ok(Heartbeat {
        task: TaskId::parse(&text(r.get_task())?)?,
        fencing: FencingToken::new(r.get_fencing()),
    })
}

/// Writes a log request.
pub fn write_log_request(q: &LogRequest, mut b: wire::log_request::Builder<'_>) {
    b.set_task(q.task.as_str());
    b.set_attempt(q.attempt.unwrap_or(0));
    b.set_offset(q.offset);
    b.set_max(u32::try_from(q.max).unwrap_or(u32::MAX));
    b.set_wait_ms(u64::try_from(q.wait.as_millis()).unwrap_or(u64::MAX));
}

/// Reads a log request.
pub fn read_log_request(r: wire::log_request::Reader<'_>) -> Decoded<LogRequest> {
    Ok(LogRequest {
        task: IdRef::parse(&text(r.get_task())?)?,
        attempt: (r.get_attempt() != 0).then_some(r.get_attempt()),
        offset: r.get_offset(),
        max: usize::try_from(r.get_max()).unwrap_or(usize::MAX),
        wait: Duration::from_millis(r.get_wait_ms()),
    })
}

/// Writes a piece of a log.
pub fn write_log_chunk(c: &LogChunk, mut b: wire::log_chunk::Builder<'_>) {
    b.set_task(c.task.to_string().as_str());
    b.set_attempt(c.attempt);
    b.set_offset(c.offset);
    b.set_bytes(&c.bytes);
    b.set_finished(c.finished);
}

/// Reads a piece of a log.
pub fn read_log_chunk(r: wire::log_chunk::Reader<'_>) -> Decoded<LogChunk> {
    Ok(LogChunk {
        task: TaskId::parse(&text(r.get_task())?)?,
        attempt: r.get_attempt(),
        offset: r.get_offset(),
        bytes: r.get_bytes()?.to_vec(),
        finished: r.get_finished(),
    })
}

/// Writes a create's answer.
pub fn write_created(c: &Created, mut b: wire::created::Builder<'_>) -> capnp::Result<()> {
    write_task(&c.task, b.reborrow().init_task())?;
    b.set_created(c.created);
    Ok(())
}

/// Reads a create's answer.
pub fn read_created(r: wire::created::Reader<'_>) -> Decoded<Created> {
    Ok(Created {
        task: read_task(r.get_task()?)?,
        created: r.get_created(),
    })
}

/// Writes an assignment.
pub fn write_assignment(a: &Assignment, mut b: wire::assignment::Builder<'_>) -> capnp::Result<()> {
    write_task(&a.task, b.reborrow().init_task())?;
    b.set_agent(a.agent.as_str());
    b.set_attempt(a.attempt);
    b.set_fencing(a.fencing.get());
    Ok(())
}

/// Reads an assignment.
pub fn read_assignment(r: wire::assignment::Reader<'_>) -> Decoded<Assignment> {
    Ok(Assignment {
        task: read_task(r.get_task()?)?,
        agent: AgentName::parse(&text(r.get_agent())?)?,
        attempt: r.get_attempt(),
        fencing: FencingToken::new(r.get_fencing()),
    })
}

/// Writes a page of tasks.
pub fn write_task_page(p: &TaskPage, mut b: wire::task_page::Builder<'_>) -> capnp::Result<()> {
    let mut tasks = b.reborrow().init_tasks(len32(p.tasks.len())?);
    for (i, t) in (0u32..).zip(&p.tasks) {
        write_task(t, tasks.reborrow().get(i))?;
    }
    if let Some(cursor) = &p.next_cursor {
        b.set_next_cursor(cursor.to_string().as_str());
    }
    Ok(())
}

/// Reads a page of tasks.
pub fn read_task_page(r: wire::task_page::Reader<'_>) -> Decoded<TaskPage> {
    Ok(TaskPage {
        tasks: r
            .get_tasks()?
            .iter()
            .map(read_task)
            .collect::<Decoded<_>>()?,
        next_cursor: opt_text(r.has_next_cursor(), r.get_next_cursor())?
            .map(|s| TaskCursor::parse(&s))
            .transpose()?,
    })
}

/// Writes a filter for listing agents.
pub fn write_agent_filter(
    f: &AgentFilter,
    mut b: wire::agent_filter::Builder<'_>,
) -> capnp::Result<()> {
    let mut statuses = b.reborrow().init_statuses(len32(f.statuses.len())?);
    for (i, s) in (0u32..).zip(&f.statuses) {
        statuses.set(i, agent_status_to_wire(*s));
    }
    if let Some(c) = &f.capability {
        b.set_capability(c.as_str());
    }
    Ok(())
}

/// Reads a filter for listing agents.
pub fn read_agent_filter(r: wire::agent_filter::Reader<'_>) -> Decoded<AgentFilter> {
    Ok(AgentFilter {
        statuses: r
            .get_statuses()?
            .iter()
            .map(|s| s.map(agent_status_from_wire))
            .collect::<Result<_, _>>()?,
        capability: opt_text(r.has_capability(), r.get_capability())?
            .map(|s| Capability::parse(&s))
            .transpose()?,
    })
}

/// Writes a filter and a page request for listing tasks (the wire holds both in one struct).
pub fn write_task_filter(
    f: &TaskFilter,
    page: &Page,
    mut b: wire::task_filter::Builder<'_>,
) -> capnp::Result<()> {
    let mut statuses = b.reborrow().init_statuses(len32(f.statuses.len())?);
    for (i, s) in (0u32..).zip(&f.statuses) {
        statuses.set(i, task_state_to_wire(*s));
    }
    if let Some(o) = f.orchestration {
        b.set_orchestration(o.to_string().as_str());
    }
    if let Some(c) = &f.capability {
        b.set_capability(c.as_str());
    }
    b.set_limit(u32::try_from(page.limit).unwrap_or(u32::MAX));
    if let Some(cursor) = &page.cursor {
        b.set_cursor(cursor.to_string().as_str());
    }
    Ok(())
}

/// Reads a filter and a page request for listing tasks.
pub fn read_task_filter(r: wire::task_filter::Reader<'_>) -> Decoded<(TaskFilter, Page)> {
    let filter = TaskFilter {
        statuses: r
            .get_statuses()?
            .iter()
            .map(|s| s.map(task_state_from_wire))
            .collect::<Result<_, _>>()?,
        orchestration: opt_text(r.has_orchestration(), r.get_orchestration())?
            .map(|s| OrchestrationId::parse(&s))
            .transpose()?,
        capability: opt_text(r.has_capability(), r.get_capability())?
            .map(|s| Capability::parse(&s))
            .transpose()?,
    };
    let page = Page {
        limit: usize::try_from(r.get_limit()).unwrap_or(Page::MAX_LIMIT),
        cursor: opt_text(r.has_cursor(), r.get_cursor())?
            .map(|s| TaskCursor::parse(&s))
            .transpose()?,
    };
    Ok((filter, page))
}

// ---------------------------------------------------------------------------------------------
// Memory

enum_map!(
    /// A memory entry's tier.
    memory_tier_to_wire, memory_tier_from_wire, MemoryTier, MemoryTier {
        Critical <=> Critical,
        Important <=> Important,
        Routine <=> Routine,
        Ephemeral <=> Ephemeral,
    }
);

enum_map!(
    /// A memory entry's state.
    memory_state_to_wire, memory_state_from_wire, MemoryState, MemoryState {
        Live <=> Live,
        Forgotten <=> Forgotten,
        Expired <=> Expired,
    }
);

fn tags(r: capnp::Result<text_list::Reader<'_>>) -> Decoded<Tags> {
    Ok(Tags::parse(texts(r)?)?)
}

fn provenance(
    has_task: bool,
    task: capnp::Result<text::Reader<'_>>,
    attempt: u32,
) -> Decoded<Provenance> {
    Ok(match opt_text(has_task, task)? {
        None => Provenance::Person,
        Some(task) => Provenance::Attempt {
            task: TaskId::parse(&task)?,
            attempt,
        },
    })
}

/// Writes a memory entry.
pub fn write_memory(m: &Memory, mut b: wire::memory::Builder<'_>) -> capnp::Result<()> {
    b.set_id(m.id.to_string().as_str());
    b.set_tier(memory_tier_to_wire(m.tier));
    b.set_scope(m.scope.to_string().as_str());
    b.set_text(m.text.as_str());
    write_texts(
        m.tags.iter().map(|t| t.as_str()),
        b.reborrow().init_tags(len32(m.tags.len())?),
    );
    if let Provenance::Attempt { task, attempt } = m.provenance {
        b.set_provenance_task(task.to_string().as_str());
        b.set_provenance_attempt(attempt);
    }
    b.set_pinned(m.pinned);
    b.set_state(memory_state_to_wire(m.state));
    if let Some(reason) = &m.forgotten_because {
        b.set_forgotten_because(reason.as_str());
    }
    b.set_created_at(m.created_at.as_millis());
    b.set_updated_at(m.updated_at.as_millis());
    b.set_expires_at(time_or_zero(m.expires_at));
    b.set_version(m.version);
    Ok(())
}

/// Reads a memory entry.
pub fn read_memory(r: wire::memory::Reader<'_>) -> Decoded<Memory> {
    Ok(Memory::restore(MemoryData {
        id: MemoryId::parse(&text(r.get_id())?)?,
        tier: memory_tier_from_wire(r.get_tier()?),
        scope: MemoryScope::parse(&text(r.get_scope())?)?,
        text: MemoryText::parse(&text(r.get_text())?)?,
        tags: tags(r.get_tags())?,
        provenance: provenance(
            r.has_provenance_task(),
            r.get_provenance_task(),
            r.get_provenance_attempt(),
        )?,
        pinned: r.get_pinned(),
        state: memory_state_from_wire(r.get_state()?),
        forgotten_because: opt_text(r.has_forgotten_because(), r.get_forgotten_because())?,
        created_at: Timestamp::from_millis(r.get_created_at()),
        updated_at: Timestamp::from_millis(r.get_updated_at()),
        expires_at: opt_time(r.get_expires_at()),
        version: r.get_version(),
    }))
}

/// Writes a new memory entry.
pub fn write_new_memory(m: &AddMemory, mut b: wire::new_memory::Builder<'_>) -> capnp::Result<()> {
    b.set_tier(memory_tier_to_wire(m.tier));
    b.set_scope(m.scope.to_string().as_str());
    b.set_text(m.text.as_str());
    write_texts(
        m.tags.iter().map(|t| t.as_str()),
        b.reborrow().init_tags(len32(m.tags.len())?),
    );
    if let Provenance::Attempt { task, attempt } = m.provenance {
        b.set_provenance_task(task.to_string().as_str());
        b.set_provenance_attempt(attempt);
    }
    Ok(())
}

/// Reads a new memory entry.
pub fn read_new_memory(r: wire::new_memory::Reader<'_>) -> Decoded<AddMemory> {
    Ok(AddMemory {
        tier: memory_tier_from_wire(r.get_tier()?),
        scope: MemoryScope::parse(&text(r.get_scope())?)?,
        text: MemoryText::parse(&text(r.get_text())?)?,
        tags: tags(r.get_tags())?,
        provenance: provenance(
            r.has_provenance_task(),
            r.get_provenance_task(),
            r.get_provenance_attempt(),
        )?,
    })
}

/// Writes a filter of memory entries.
pub fn write_memory_filter(
    f: &MemoryFilter,
    mut b: wire::memory_filter::Builder<'_>,
) -> capnp::Result<()> {
    let scopes: Vec<String> = f.scopes.iter().map(ToString::to_string).collect();
    write_texts(
        scopes.iter().map(String::as_str),
        b.reborrow().init_scopes(len32(scopes.len())?),
    );
    let mut tiers = b.reborrow().init_tiers(len32(f.tiers.len())?);
    for (i, t) in (0u32..).zip(&f.tiers) {
        tiers.set(i, memory_tier_to_wire(*t));
    }
    if let Some(tag) = &f.tag {
        b.set_tag(tag.as_str());
    }
    b.set_all(f.all);
    Ok(())
}

/// Reads a filter of memory entries.
pub fn read_memory_filter(r: wire::memory_filter::Reader<'_>) -> Decoded<MemoryFilter> {
    Ok(MemoryFilter {
        scopes: texts(r.get_scopes())?
            .iter()
            .map(|s| MemoryScope::parse(s))
            .collect::<Result<_, _>>()?,
        tiers: r
            .get_tiers()?
            .iter()
            .map(|t| t.map(memory_tier_from_wire))
            .collect::<Result<_, _>>()?,
        tag: opt_text(r.has_tag(), r.get_tag())?
            .map(|s| Tag::parse(&s))
            .transpose()?,
        all: r.get_all(),
    })
}

/// Writes a page of memory entries.
pub fn write_memory_page(
    p: &MemoryList,
    mut b: wire::memory_page::Builder<'_>,
) -> capnp::Result<()> {
    let mut list = b.reborrow().init_memories(len32(p.memories.len())?);
    for (i, m) in (0u32..).zip(&p.memories) {
        write_memory(m, list.reborrow().get(i))?;
    }
    if let Some(cursor) = &p.next_cursor {
        b.set_next_cursor(cursor.to_string().as_str());
    }
    Ok(())
}

/// Reads a page of memory entries.
pub fn read_memory_page(r: wire::memory_page::Reader<'_>) -> Decoded<MemoryList> {
    Ok(MemoryList {
        memories: r
            .get_memories()?
            .iter()
            .map(read_memory)
            .collect::<Decoded<_>>()?,
        next_cursor: opt_text(r.has_next_cursor(), r.get_next_cursor())?
            .map(|s| MemoryCursor::parse(&s))
            .transpose()?,
    })
}

/// Writes what a search of memory found.
pub fn write_memory_hits(
    h: &MemoryHits,
    mut b: wire::memory_hits::Builder<'_>,
) -> capnp::Result<()> {
    let mut list = b.reborrow().init_hits(len32(h.hits.len())?);
    for (i, hit) in (0u32..).zip(&h.hits) {
        let mut item = list.reborrow().get(i);
        write_memory(&hit.memory, item.reborrow().init_memory())?;
        item.set_score(hit.score);
    }
    b.set_every_word(h.every_word);
    Ok(())
}

/// Reads what a search of memory found.
pub fn read_memory_hits(r: wire::memory_hits::Reader<'_>) -> Decoded<MemoryHits> {
    Ok(MemoryHits {
        hits: r
            .get_hits()?
            .iter()
            .map(|h| {
                Ok(MemoryHit {
                    memory: read_memory(h.get_memory()?)?,
                    score: h.get_score(),
                })
            })
            .collect::<Decoded<_>>()?,
        every_word: r.get_every_word(),
    })
}

/// Reads a search query's text into its words.
pub fn read_memory_query(r: capnp::Result<text::Reader<'_>>) -> Decoded<MemoryQuery> {
    Ok(MemoryQuery::parse(&text(r)?)?)
}

/// Reads a text parameter that must be present, such as a name or a reference.
pub fn read_text(r: capnp::Result<text::Reader<'_>>) -> Decoded<String> {
    text(r)
}

/// Reads an optional text parameter: `None` when the pointer is null.
pub fn read_opt_text(has: bool, r: capnp::Result<text::Reader<'_>>) -> Decoded<Option<String>> {
    opt_text(has, r)
}

#[cfg(test)]
mod tests;

/// Writes the metrics of a window of time.
pub fn write_metrics(m: &Metrics, mut b: wire::metrics::Builder<'_>) -> capnp::Result<()> {
    b.set_since(m.since.map_or(0, Timestamp::as_millis));
    b.set_until(m.until.as_millis());
    b.set_created(m.created);
    b.set_completed(m.completed);
    let mut hours = b
        .reborrow()
        .init_completed_by_hour(len32(m.completed_by_hour.len())?);
    for (i, (hour, n)) in (0u32..).zip(&m.completed_by_hour) {
        let mut h = hours.reborrow().get(i);
        h.set_hour(hour.as_millis());
        h.set_n(*n);
    }
    b.set_first_attempt_passed(m.first_attempt_passed);
    if let Some(s) = &m.time_to_green {
        let mut g = b.reborrow().init_time_to_green();
        g.set_p50(s.p50);
        g.set_p90(s.p90);
        g.set_max(s.max);
    }
    b.set_approvals(m.approvals);
    b.set_rejections(m.rejections);
    b.set_manual_retries(m.manual_retries);
    b.set_attempts(m.attempts);
    write_usage(&m.usage, b.reborrow().init_usage());
    let mut agents = b.init_agents(len32(m.agents.len())?);
    for (i, a) in (0u32..).zip(&m.agents) {
        let mut w = agents.reborrow().get(i);
        w.set_agent(a.agent.as_str());
        w.set_attempts(a.attempts);
        w.set_succeeded(a.succeeded);
        w.set_failed(a.failed);
        write_usage(&a.usage, w.init_usage());
    }
    Ok(())
}

/// Reads the metrics of a window of time.
pub fn read_metrics(r: wire::metrics::Reader<'_>) -> Decoded<Metrics> {
    Ok(Metrics {
        since: match r.get_since() {
            0 => None,
            ms => Some(Timestamp::from_millis(ms)),
        },
        until: Timestamp::from_millis(r.get_until()),
        created: r.get_created(),
        completed: r.get_completed(),
        completed_by_hour: r
            .get_completed_by_hour()?
            .iter()
            .map(|h| (Timestamp::from_millis(h.get_hour()), h.get_n()))
            .collect(),
        first_attempt_passed: r.get_first_attempt_passed(),
        time_to_green: if r.has_time_to_green() {
            let g = r.get_time_to_green()?;
            Some(Spread {
                p50: g.get_p50(),
                p90: g.get_p90(),
                max: g.get_max(),
            })
        } else {
            None
        },
        approvals: r.get_approvals(),
        rejections: r.get_rejections(),
        manual_retries: r.get_manual_retries(),
        attempts: r.get_attempts(),
        usage: read_usage(r.has_usage(), r.get_usage())?,
        agents: r
            .get_agents()?
            .iter()
            .map(|a| {
                Ok(AgentMetrics {
                    agent: AgentName::parse(&text(a.get_agent())?)?,
                    attempts: a.get_attempts(),
                    succeeded: a.get_succeeded(),
                    failed: a.get_failed(),
                    usage: read_usage(a.has_usage(), a.get_usage())?,
                })
            })
            .collect::<Decoded<_>>()?,
    })
}

// ---------------------------------------------------------------------------------------------
// An agent's own calls

/// Writes what an agent's credential stands for.
pub fn write_agent_scope(
    a: &AgentScope,
    mut b: wire::agent_scope::Builder<'_>,
) -> capnp::Result<()> {
    b.set_task(a.task.to_string().as_str());
    b.set_attempt(a.attempt);
    b.set_fencing(a.fencing.get());
    if let Some(o) = a.orchestration {
        b.set_orchestration(o.to_string().as_str());
    }
    let scopes: Vec<String> = a.scopes.iter().map(ToString::to_string).collect();
    write_texts(
        scopes.iter().map(String::as_str),
        b.init_scopes(len32(scopes.len())?),
    );
    Ok(())
}

/// Reads what an agent's credential stands for.
pub fn read_agent_scope(r: wire::agent_scope::Reader<'_>) -> Decoded<AgentScope> {
    Ok(AgentScope {
        task: TaskId::parse(&text(r.get_task())?)?,
        attempt: r.get_attempt(),
        fencing: FencingToken::new(r.get_fencing()),
        orchestration: opt_text(r.has_orchestration(), r.get_orchestration())?
            .map(|o| OrchestrationId::parse(&o))
            .transpose()?,
        scopes: texts(r.get_scopes())?
            .iter()
            .map(|s| MemoryScope::parse(s))
            .collect::<Result<_, _>>()?,
    })
}
