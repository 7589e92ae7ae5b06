//! The briefing of an attempt, assembled in the transaction that assigns it: the task, its
//! orchestration's goal and pinned notes, what memory holds for it (the pinned and critical
//! entries of its scopes, and the entries most relevant to its title and prompt), what the
//! tasks it depends on produced, and how its earlier attempts failed, pruned to a token budget (`maos_domain::briefing`). It is recorded
//! with the attempt, so `maos task briefing` shows exactly what the agent received.

use maos_domain::briefing::{
    self, Briefing, BriefingInput, DependencyOutput, EarlierFailure, MemoryNote,
};
use maos_domain::{
    AttemptOutcome, FailureKind, Memory, MemoryQuery, MemoryScope, Orchestration, RepoPath, Task,
    Timestamp,
};

use crate::api::MemoryFilter;
use crate::ports::{StoreError, Transaction};

/// The most pinned or critical entries a briefing includes.
const ESSENTIAL_MEMORIES: usize = 32;
/// The most other entries, the most relevant to the task, a briefing includes.
const RELEVANT_MEMORIES: usize = 5;

/// The scopes whose memory applies to `task`: global, its repository (its own, or its
/// orchestration's) and its orchestration.
pub(crate) fn scopes_of(task: &Task, orchestration: Option<&Orchestration>) -> Vec<MemoryScope> {
    let mut scopes = vec![MemoryScope::Global];
    let repo = task
        .spec
        .workspace
        .as_ref()
        .or_else(|| orchestration.and_then(|o| o.workspace.as_ref()))
        .and_then(|w| RepoPath::parse(&w.repo).ok());
    if let Some(repo) = repo {
        scopes.push(MemoryScope::Repository(repo));
    }
    if let Some(o) = task.spec.orchestration {
        scopes.push(MemoryScope::Orchestration(o));
    }
    scopes
}

/// What memory holds for `task` at `now`: the pinned and critical entries of its scopes, then
/// the live others most relevant to its title and prompt (searched on their words).
fn memories_for(
    tx: &mut dyn Transaction,
    task: &Task,
    scopes: Vec<MemoryScope>,
    now: Timestamp,
) -> Result<Vec<Memory>, StoreError> {
    // Most work runs where memory holds nothing: then neither query (a full-text one) runs.
    if !tx.holds_memories(&scopes)? {
        return Ok(Vec::new());
    }
    let mut memories = tx.essential_memories(&scopes, now, ESSENTIAL_MEMORIES)?;
    let about = format!("{}\n{}", task.spec.title.as_str(), task.spec.prompt);
    if let Some(query) = MemoryQuery::about(&about) {
        let filter = MemoryFilter {
            scopes,
            ..MemoryFilter::default()
        };
        // The search ranks pinned entries first: ask for enough to find the others past them.
        let hits = tx.search_memories(&query, &filter, RELEVANT_MEMORIES + memories.len(), now)?;
        let relevant: Vec<Memory> = hits
            .hits
            .into_iter()
            .map(|hit| hit.memory)
            .filter(|m| !memories.iter().any(|e| e.id == m.id))
            .take(RELEVANT_MEMORIES)
            .collect();
        memories.extend(relevant);
    }
    Ok(memories)
}

/// The briefing for `task`'s attempt that is being assigned at `now`.
pub(crate) fn assemble(
    tx: &mut dyn Transaction,
    task: &Task,
    budget_tokens: u32,
    now: Timestamp,
) -> Result<Briefing, StoreError> {
    let orchestration = match task.spec.orchestration {
        Some(o) => tx.orchestration(o)?,
        None => None,
    };
    let scopes = scopes_of(task, orchestration.as_ref());
    let memories = memories_for(tx, task, scopes, now)?;
    let labels: Vec<(String, String)> = memories
        .iter()
        .map(|m| (m.id.short(), m.scope.to_string()))
        .collect();
    let memories: Vec<MemoryNote<'_>> = memories
        .iter()
        .zip(&labels)
        .map(|(m, (id, scope))| MemoryNote {
            id,
            tier: m.tier,
            scope,
            pinned: m.pinned,
            text: m.text.as_str(),
        })
        .collect();
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
    if goal.is_none()
        && notes.is_empty()
        && memories.is_empty()
        && dependencies.is_empty()
        && failures.is_empty()
    {
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
        memories,
        budget_tokens,
    };
    Ok(briefing::assemble(&input))
}

#[cfg(test)]
mod tests {
    use maos_domain::{
        CapabilitySet, MaxAttempts, OrchestrationId, Priority, Risk, TaskId, TaskSpec, Title,
        WorkspaceSpec,
    };

    use super::*;

    fn task(repo: Option<&str>, orchestration: Option<OrchestrationId>) -> Task {
        let spec = TaskSpec {
            title: Title::parse("t").unwrap(),
            prompt: String::new(),
            capabilities: CapabilitySet::empty(),
            priority: Priority::Normal,
            risk: Risk::Low,
            tier: None,
            depends_on: Default::default(),
            orchestration,
            max_attempts: MaxAttempts::new(3).unwrap(),
            timeout: None,
            idempotency_key: None,
            budget: None,
            workspace: repo.map(|r| WorkspaceSpec {
                repo: r.to_owned(),
                base: None,
            }),
            verify: None,
            wants_port: false,
            concerns: Vec::new(),
            plans: None,
            agent: None,
            parent: None,
            lessons: false,
        };
        Task::create(TaskId::from_bits(9), spec, Timestamp::from_millis(1)).0
    }

    #[test]
    fn a_task_draws_on_global_its_repository_and_its_orchestration() {
        assert_eq!(scopes_of(&task(None, None), None), [MemoryScope::Global]);
        let o = OrchestrationId::from_bits(7);
        assert_eq!(
            scopes_of(&task(Some("/src/app/"), Some(o)), None),
            [
                MemoryScope::Global,
                MemoryScope::parse("repo:/src/app").unwrap(),
                MemoryScope::Orchestration(o),
            ]
        );
        // A repository that is no absolute path names no scope.
        assert_eq!(
            scopes_of(&task(Some("src/app"), None), None),
            [MemoryScope::Global]
        );
    }
}
