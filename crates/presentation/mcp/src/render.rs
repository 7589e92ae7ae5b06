//! What the tools answer, as JSON: tasks, briefings, reports, agents and memory entries, with
//! the fields an agent needs (ids in full, times in RFC 3339, states as their keywords).

use maos_application::{AgentScope, AttemptBriefing, MemoryHit, OrchestrationReport};
use maos_domain::{Agent, Memory, Provenance, Task};
use serde_json::{Value, json};

/// A task.
pub(crate) fn task(t: &Task) -> Value {
    let spec = &t.spec;
    json!({
        "id": t.id.to_string(),
        "title": spec.title.as_str(),
        "prompt": spec.prompt,
        "state": t.state.as_str(),
        "reason": t.reason,
        "capabilities": spec.capabilities.iter().map(|c| c.as_str()).collect::<Vec<_>>(),
        "risk": spec.risk.as_str(),
        "priority": spec.priority.as_str(),
        "orchestration": spec.orchestration.map(|o| o.to_string()),
        "depends_on": spec.depends_on.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "parent": spec.parent.map(|p| json!({"task": p.task.to_string(), "waits": p.waits})),
        "subtasks": t.subtasks.iter()
            .map(|s| json!({"task": s.task.to_string(), "waits": s.waits}))
            .collect::<Vec<_>>(),
        "attempts": t.attempts_used(),
        "repository": spec.workspace.as_ref().map(|w| w.repo.clone()),
        "branch": t.workspace.as_ref().map(|w| w.branch.clone()),
        "pending": t.pending.as_ref().map(|p| json!({
            "gate": p.gate.as_str(),
            "tool": p.tool,
            "subject": p.subject,
            "requested_at": p.requested_at.to_rfc3339(),
        })),
        "decision": t.decision.as_ref().map(|d| json!({
            "gate": d.gate.as_str(),
            "approved": d.approved,
            "reason": d.reason,
            "at": d.at.to_rfc3339(),
        })),
        "created_at": t.created_at.to_rfc3339(),
        "updated_at": t.updated_at.to_rfc3339(),
    })
}

/// A task in a short list: id, title, state and why it stopped.
pub(crate) fn task_line(t: &Task) -> Value {
    json!({
        "id": t.id.to_string(),
        "title": t.spec.title.as_str(),
        "state": t.state.as_str(),
        "reason": t.reason,
    })
}

/// An attempt's briefing.
pub(crate) fn briefing(task: &Task, b: &AttemptBriefing) -> Value {
    json!({
        "task": task.id.to_string(),
        "attempt": b.attempt,
        "tokens": b.tokens,
        "cut": b.cut,
        "text": b.text,
    })
}

/// An orchestration's report.
pub(crate) fn report(r: &OrchestrationReport) -> Value {
    let o = &r.orchestration;
    json!({
        "id": o.id.to_string(),
        "name": o.name.as_str(),
        "goal": o.goal,
        "status": o.status.as_str(),
        "tasks": r.tasks,
        "completed": r.completed,
        "by_state": r.by_state.iter()
            .map(|(s, n)| (s.as_str().to_owned(), json!(n)))
            .collect::<serde_json::Map<_, _>>(),
        "attempts": r.attempts,
        "wall_ms": r.wall_ms,
        "cost_usd": r.cost.to_string(),
        "integration_branch": r.integration_branch,
        "needs_a_person": r.needs_a_person.iter()
            .map(|n| json!({"task": n.task.to_string(), "title": n.title.as_str(), "state": n.state.as_str()}))
            .collect::<Vec<_>>(),
        "can_move": r.can_move,
    })
}

/// An agent, without its settings (commands and environment stay private).
pub(crate) fn agent(a: &Agent) -> Value {
    json!({
        "name": a.name.as_str(),
        "adapter": a.adapter.as_str(),
        "capabilities": a.capabilities.iter().map(|c| c.as_str()).collect::<Vec<_>>(),
        "tier": a.tier.as_str(),
        "status": a.status.as_str(),
        "slots": a.slots.get(),
        "active": a.active,
    })
}

/// A memory entry.
pub(crate) fn memory(m: &Memory) -> Value {
    let provenance = match m.provenance {
        Provenance::Person => json!({"by": "person"}),
        Provenance::Attempt { task, attempt } => {
            json!({"by": "attempt", "task": task.to_string(), "attempt": attempt})
        }
    };
    json!({
        "id": m.id.to_string(),
        "tier": m.tier.as_str(),
        "scope": m.scope.to_string(),
        "text": m.text.as_str(),
        "tags": m.tags.iter().map(|t| t.as_str()).collect::<Vec<_>>(),
        "pinned": m.pinned,
        "state": m.state.as_str(),
        "provenance": provenance,
        "created_at": m.created_at.to_rfc3339(),
        "expires_at": m.expires_at.map(|t| t.to_rfc3339()),
    })
}

/// A search hit.
pub(crate) fn hit(h: &MemoryHit) -> Value {
    let mut v = memory(&h.memory);
    if let Some(map) = v.as_object_mut() {
        map.insert("score".to_owned(), json!(h.score));
    }
    v
}

/// What an agent's credential stands for.
pub(crate) fn scope(s: &AgentScope) -> Value {
    json!({
        "task": s.task.to_string(),
        "attempt": s.attempt,
        "orchestration": s.orchestration.map(|o| o.to_string()),
        "memory_scopes": s.scopes.iter().map(ToString::to_string).collect::<Vec<_>>(),
    })
}
