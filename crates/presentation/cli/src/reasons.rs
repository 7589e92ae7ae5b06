//! The CLI's words for the application's reasons: why a task is blocked, what it waits for and
//! what a person can do next, each rendered from data (the domain's `BlockReason`, `WaitReason`
//! and `NextStep`) into a sentence, and a next step into the exact `maos` command line. The one
//! place where CLI commands are written into explanations (ADR 0015).

use maos_domain::{
    BlockReason, FailureKind, Gate, NextStep, OrchestrationStatus, Task, TaskId, Tier, WaitReason,
};
use serde::Serialize;

/// Why `t` is blocked, failed or cancelled, in words (none when there is nothing to say).
/// Untrusted text (an agent's error, a person's reason, a title) is kept as it is: escape it
/// where it is printed to a terminal.
pub(crate) fn task_reason(t: &Task) -> Option<String> {
    match &t.blocked {
        Some(b) => Some(block(b, t.reason.as_deref())),
        None => t.reason.clone(),
    }
}

/// Why a task is blocked; `words` are its last failure's (or a person's) own.
pub(crate) fn block(reason: &BlockReason, words: Option<&str>) -> String {
    let last = words.unwrap_or("nothing was recorded");
    match reason {
        BlockReason::CannotStart { failure, .. } => {
            let what = match failure {
                FailureKind::Setup => "its workspace could not be prepared",
                _ => "its agent could not be started",
            };
            format!("{what}, and no retry helps until that is fixed: {last}")
        }
        BlockReason::AttemptsFailed {
            failed,
            interrupted,
            strategic,
            ..
        } => {
            let attempts = match (failed, interrupted) {
                (1, 0) => "its attempt".to_owned(),
                (n, 0) => format!("all {n} attempts"),
                (n, i) => format!(
                    "{n} attempt{} ({i} more interrupted)",
                    if *n == 1 { "" } else { "s" }
                ),
            };
            if *strategic {
                format!("{attempts} failed, on the strategic tier; the last said: {last}")
            } else {
                format!(
                    "{attempts} failed and no strategic agent can take it over; the last said: \
                     {last}"
                )
            }
        }
        BlockReason::BudgetSpent { budget, spent, .. } => format!(
            "its budget of ${budget} is spent (${spent} used); the last attempt said: {last}"
        ),
        BlockReason::DependencyCancelled { dependency } => {
            format!("dependency {} was cancelled", dependency.short())
        }
        BlockReason::RejectedBeforeRun => format!("rejected before it ran: {last}"),
        BlockReason::MergeConflict { into, paths } => format!(
            "merging into {into} conflicts in {}; merge it by hand, then approve it again",
            paths.join(", ")
        ),
        BlockReason::MergeFailed { into, error } => {
            format!("cannot merge into {into}: {error}; fix that, then approve it again")
        }
        BlockReason::Text { text } => text.clone(),
    }
}

/// One thing task `task` waits for, in words, with the commands that end the wait.
pub(crate) fn waiting(w: &WaitReason, task: TaskId) -> String {
    let commands = |steps: &[NextStep]| {
        steps
            .iter()
            .map(|s| format!("`{}`", command_line(s)))
            .collect::<Vec<_>>()
            .join(" or ")
    };
    match w {
        WaitReason::Dependency { task, title, state } => {
            format!("its dependency {} \"{title}\" is {state}", task.short())
        }
        WaitReason::MissingDependency { task } => {
            format!("its dependency {} does not exist", task.short())
        }
        WaitReason::Backoff {
            due: Some(due),
            wait_ms,
        } if *wait_ms > 0 => format!(
            "the backoff after its failed attempt: the retry is due at {} (in {})",
            due.to_rfc3339(),
            seconds(*wait_ms)
        ),
        WaitReason::Backoff { .. } => {
            "its retry is due: it becomes ready at the next scheduling pass".to_owned()
        }
        WaitReason::Approval { gate } => {
            let what = match gate {
                Gate::Run => "to run at all (high risk)",
                Gate::Tool => "a tool call of its running agent",
                Gate::Result => "its verified result",
            };
            format!(
                "a person must approve {what}: {}",
                commands(&w.next_steps(task))
            )
        }
        WaitReason::Blocked { reason, words, .. } => {
            let why = match reason {
                Some(r) => block(r, words.as_deref()),
                None => words.clone().unwrap_or_else(|| "no reason recorded".into()),
            };
            let steps = w.next_steps(task);
            let next = match steps.as_slice() {
                [NextStep::Cancel { .. }] => {
                    format!("it cannot run as it is: {}", commands(&steps))
                }
                [first, ..] => format!("`{}` runs it again", command_line(first)),
                [] => String::new(),
            };
            format!("it is blocked: {why}; {next}")
        }
        WaitReason::Orchestration {
            orchestration,
            status,
        } => {
            let how = match status {
                OrchestrationStatus::Draft | OrchestrationStatus::AwaitingPlanApproval => {
                    format!("has not started: {}", commands(&w.next_steps(task)))
                }
                OrchestrationStatus::Paused => {
                    format!("is paused: {}", commands(&w.next_steps(task)))
                }
                s => format!("is {s}"),
            };
            format!("its orchestration {} {how}", orchestration.short())
        }
        WaitReason::Budget { budget } => format!("its budget of ${budget} is spent"),
        WaitReason::Concern {
            mine,
            theirs,
            holder,
        } => format!(
            "its concern `{mine}` overlaps `{theirs}`, held by task {} until that task's work is \
             accepted",
            holder.short()
        ),
        WaitReason::NoCapableAgent {
            capabilities,
            tier,
            draining,
        } => {
            let needs = if capabilities.is_empty() {
                "any capability".to_owned()
            } else {
                capabilities.to_string()
            };
            let tier = match tier {
                Some(Tier::Strategic) => " of the strategic tier",
                Some(Tier::Tactical) => " of the tactical tier",
                None => "",
            };
            let also = if draining.is_empty() {
                String::new()
            } else {
                format!(
                    " ({} can but {} draining: `maos agent resume`)",
                    names(draining),
                    if draining.len() == 1 { "is" } else { "are" }
                )
            };
            format!(
                "no agent that takes work offers {needs}{tier}{also}; register one \
                 (`{}`)",
                command_line(&NextStep::RegisterAgent)
            )
        }
        WaitReason::AgentsBusy { agents } => format!(
            "every capable agent is busy ({}); it runs when a slot frees",
            names(agents)
        ),
        WaitReason::AssignsSoon { agents } => format!(
            "{} can take it now: the daemon assigns it at its next scheduling pass (in process, \
             with --no-daemon, nothing assigns: the next `maos` command through the daemon \
             starts one)",
            names(agents)
        ),
        WaitReason::ExternalOnly { agents } => format!(
            "only external agents offer what it needs ({}), and MAOS never assigns work to them: \
             it runs when one of them takes it ({})",
            names(agents),
            commands(&w.next_steps(task))
        ),
        WaitReason::BusyOrExternal { busy, .. } => format!(
            "every capable agent MAOS runs is busy ({}); it runs when a slot frees, or when an \
             external agent takes it ({})",
            names(busy),
            commands(&w.next_steps(task))
        ),
        WaitReason::NextPass => {
            "a capable agent is free: it runs at the next scheduling pass".into()
        }
    }
}

/// A next step as data for JSON: the command as an argument array (full ids) and what it does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct NextStepJson {
    /// What the step does, for people.
    pub(crate) description: &'static str,
    /// The command that does it, one argument per element; `<...>` marks a value to fill in.
    pub(crate) command: Vec<String>,
    /// The step as data (`action` and its facts), for programs that act on it themselves.
    pub(crate) step: NextStep,
}

impl From<&NextStep> for NextStepJson {
    fn from(step: &NextStep) -> Self {
        NextStepJson {
            description: description(step),
            command: argv(step, Ids::Full),
            step: step.clone(),
        }
    }
}

/// How ids are written in a command: short prefixes for people, full ids for programs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ids {
    Short,
    Full,
}

/// The command of a next step, one argument per element.
pub(crate) fn argv(step: &NextStep, ids: Ids) -> Vec<String> {
    let id = |t: &dyn Fn() -> (String, String)| {
        let (short, full) = t();
        if ids == Ids::Short { short } else { full }
    };
    let task = |t: TaskId| id(&|| (t.short(), t.to_string()));
    let words = |w: &[&str]| w.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    let mut v = words(&["maos"]);
    match step {
        NextStep::Approve { task: t } => {
            v.extend(words(&["approve"]));
            v.push(task(*t));
        }
        NextStep::Reject { task: t } => {
            v.extend(words(&["reject"]));
            v.push(task(*t));
            v.extend(words(&["--reason", "…"]));
        }
        NextStep::Retry { task: t } => {
            v.extend(words(&["task", "retry"]));
            v.push(task(*t));
        }
        NextStep::Cancel { task: t } => {
            v.extend(words(&["task", "cancel"]));
            v.push(task(*t));
        }
        NextStep::ShowTask { task: t } => {
            v.extend(words(&["task", "show"]));
            v.push(task(*t));
        }
        NextStep::Assign { task: t, agent } => {
            v.extend(words(&["task", "assign"]));
            v.push(task(*t));
            v.push("--agent".into());
            v.push(agent.to_string());
        }
        NextStep::StartOrchestration { orchestration: o } => {
            v.extend(words(&["orchestrate", "start"]));
            v.push(id(&|| (o.short(), o.to_string())));
        }
        NextStep::ResumeOrchestration { orchestration: o } => {
            v.extend(words(&["orchestrate", "resume"]));
            v.push(id(&|| (o.short(), o.to_string())));
        }
        NextStep::ResumeAgent { agent } => {
            v.extend(words(&["agent", "resume"]));
            v.push(agent.to_string());
        }
        NextStep::RegisterAgent => v.extend(words(&["agent", "register"])),
    }
    v
}

/// The command of a next step as people type it (short ids, a quoted placeholder).
pub(crate) fn command_line(step: &NextStep) -> String {
    argv(step, Ids::Short)
        .into_iter()
        .map(|a| if a == "…" { "\"…\"".to_owned() } else { a })
        .collect::<Vec<_>>()
        .join(" ")
}

/// What a next step does.
pub(crate) fn description(step: &NextStep) -> &'static str {
    match step {
        NextStep::Approve { .. } => "approve what it waits for",
        NextStep::Reject { .. } => "reject it, saying why",
        NextStep::Retry { .. } => "run it again with more attempts",
        NextStep::Cancel { .. } => "cancel it",
        NextStep::ShowTask { .. } => "see its state, history and what it waits for",
        NextStep::Assign { .. } => "hand it to an external agent",
        NextStep::StartOrchestration { .. } => "start the orchestration",
        NextStep::ResumeOrchestration { .. } => "resume the orchestration",
        NextStep::ResumeAgent { .. } => "take the drained agent back into work",
        NextStep::RegisterAgent => "register an agent that offers what it needs",
    }
}

fn names(agents: &[maos_domain::AgentName]) -> String {
    agents
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// `12s`, `3m 05s`.
fn seconds(ms: u64) -> String {
    let s = ms.div_ceil(1000);
    if s < 60 {
        format!("{s}s")
    } else {
        format!("{}m {:02}s", s / 60, s % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use maos_domain::{AgentName, OrchestrationId, Usd};

    #[test]
    fn a_blocked_reason_is_words_without_a_command() {
        let r = BlockReason::AttemptsFailed {
            attempt: 3,
            failed: 3,
            interrupted: 0,
            strategic: false,
        };
        assert_eq!(
            block(&r, Some("exit 1")),
            "all 3 attempts failed and no strategic agent can take it over; the last said: exit 1"
        );
        let r = BlockReason::AttemptsFailed {
            attempt: 2,
            failed: 1,
            interrupted: 1,
            strategic: true,
        };
        assert_eq!(
            block(&r, None),
            "1 attempt (1 more interrupted) failed, on the strategic tier; the last said: \
             nothing was recorded"
        );
        let r = BlockReason::BudgetSpent {
            attempt: 1,
            budget: Usd::from_micros(500_000),
            spent: Usd::from_micros(600_000),
        };
        assert_eq!(
            block(&r, Some("x")),
            "its budget of $0.50 is spent ($0.60 used); the last attempt said: x"
        );
        let text = BlockReason::Text {
            text: "an old sentence".into(),
        };
        assert_eq!(block(&text, Some("ignored")), "an old sentence");
    }

    #[test]
    fn next_steps_are_exact_commands_short_for_people_full_for_programs() {
        let t = TaskId::from_bits(0x1234_5678_9abc_def0);
        let steps = [
            NextStep::Reject { task: t },
            NextStep::Assign {
                task: t,
                agent: AgentName::parse("ext").unwrap(),
            },
            NextStep::ResumeOrchestration {
                orchestration: OrchestrationId::from_bits(5),
            },
        ];
        assert_eq!(
            command_line(&steps[0]),
            format!("maos reject {} --reason \"…\"", t.short())
        );
        assert_eq!(
            argv(&steps[1], Ids::Full),
            vec![
                "maos".to_owned(),
                "task".into(),
                "assign".into(),
                t.to_string(),
                "--agent".into(),
                "ext".into()
            ]
        );
        let json = NextStepJson::from(&steps[2]);
        assert_eq!(json.command[3], OrchestrationId::from_bits(5).to_string());
        assert_eq!(json.description, "resume the orchestration");
    }

    #[test]
    fn a_blocked_wait_offers_cancel_alone_when_a_retry_cannot_help() {
        let t = TaskId::from_bits(9);
        let dep = TaskId::from_bits(10);
        let w = WaitReason::Blocked {
            reason: Some(BlockReason::DependencyCancelled { dependency: dep }),
            words: None,
            cancelled_dependency: Some(dep),
            budget_spent: false,
        };
        let said = waiting(&w, t);
        assert!(
            said.ends_with(&format!(
                "it cannot run as it is: `maos task cancel {}`",
                t.short()
            )),
            "{said}"
        );
        let w = WaitReason::Blocked {
            reason: Some(BlockReason::RejectedBeforeRun),
            words: Some("not now".into()),
            cancelled_dependency: None,
            budget_spent: false,
        };
        assert_eq!(
            waiting(&w, t),
            format!(
                "it is blocked: rejected before it ran: not now; `maos task retry {}` runs it \
                 again",
                t.short()
            )
        );
    }
}
