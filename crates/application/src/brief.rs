//! The briefing of an attempt, assembled in the transaction that assigns it: the task, its
//! orchestration's goal and pinned notes, what the tasks it depends on produced, and how its
//! earlier attempts failed, pruned to a token budget (`maos_domain::briefing`). It is recorded
//! with the attempt, so `maos task briefing` shows exactly what the agent received.

use maos_domain::briefing::{self, Briefing, BriefingInput, DependencyOutput, EarlierFailure};
use maos_domain::{AttemptOutcome, FailureKind, Task};

use crate::ports::{StoreError, Transaction};

/// The briefing for `task`'s attempt that is being assigned.
pub(crate) fn assemble(
    tx: &mut dyn Transaction,
    task: &Task,
    budget_tokens: u32,
) -> Result<Briefing, StoreError> {
    let orchestration = match task.spec.orchestration {
        Some(o) => tx.orchestration(o)?,
        None => None,
    };
    let mut deps = Vec::new();
    for id in &task.spec.depends_on {
        if let Some(d) = tx.task(*id)? {
            deps.push(d);
        }
    }
    deps.sort_by_key(|d| (d.created_at, d.id));
    let shorts: Vec<String> = deps.iter().map(|d| d.id.short()).collect();
    let dependencies: Vec<DependencyOutput<'_>> = deps
        .iter()
        .zip(&shorts)
        .map(|(d, short)| {
            let done = d
                .attempts
                .iter()
                .rev()
                .find(|a| a.status == AttemptOutcome::Succeeded);
            DependencyOutput {
                title: d.spec.title.as_str(),
                task: short,
                result: done.and_then(|a| a.summary.as_deref()),
                diff_stat: done.and_then(|a| a.diff_stat.as_deref()),
            }
        })
        .collect();
    let current = task.attempts_used();
    let kinds: Vec<(u32, String, String)> = task
        .attempts
        .iter()
        .filter(|a| a.number < current)
        .filter_map(|a| {
            let error = a.error.as_deref()?;
            let (kind, detail) = if let Some(reason) = error.strip_prefix("rejected: ") {
                // The person answered the agent's answer: both, so that an agent without a
                // session to resume still has the conversation.
                let detail = match a
                    .summary
                    .as_deref()
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                {
                    Some(answer) => format!("{reason}\n\nYour answer then:\n{answer}"),
                    None => reason.to_owned(),
                };
                ("rejected by a person".to_owned(), detail)
            } else if let Some(v) = a.verification.as_ref().filter(|v| !v.passed) {
                ("verification failed".to_owned(), v.output.clone())
            } else {
                let kind = match (a.failure, a.exit) {
                    (Some(FailureKind::Exit), Some(exit)) => format!("the agent {exit}"),
                    (Some(k), _) => format!("{k}"),
                    _ if a.status == AttemptOutcome::Interrupted => "interrupted".to_owned(),
                    _ => "failed".to_owned(),
                };
                (kind, error.to_owned())
            };
            Some((a.number, kind, detail))
        })
        .collect();
    let failures: Vec<EarlierFailure<'_>> = kinds
        .iter()
        .map(|(attempt, kind, detail)| EarlierFailure {
            attempt: *attempt,
            kind,
            detail: detail.as_str(),
        })
        .collect();
    let prompt = if task.spec.prompt.trim().is_empty() {
        task.spec.title.as_str()
    } else {
        task.spec.prompt.as_str()
    };
    let goal = orchestration.as_ref().and_then(|o| o.goal.as_deref());
    let notes = orchestration.as_ref().map_or(&[][..], |o| &o.notes[..]);
    if goal.is_none() && notes.is_empty() && dependencies.is_empty() && failures.is_empty() {
        // Nothing to add to the task's own prompt: the agent gets exactly that.
        return Ok(Briefing {
            text: prompt.to_owned(),
            tokens: briefing::estimate_tokens(prompt),
            cut: Vec::new(),
        });
    }
    let input = BriefingInput {
        title: task.spec.title.as_str(),
        prompt,
        goal,
        notes,
        dependencies,
        failures,
        budget_tokens,
    };
    Ok(briefing::assemble(&input))
}
