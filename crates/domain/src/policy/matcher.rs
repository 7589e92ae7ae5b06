//! The capability matcher: whether an agent can take a task (status, free slot, capabilities,
//! tier), and if not, why.

use crate::agent::Agent;
use crate::error::TransitionError;
use crate::values::{CapabilitySet, Tier};

/// True when the agent's capabilities and tier fit the task, whatever its load and status.
pub fn is_capable(agent: &Agent, needs: &CapabilitySet, tier: Option<Tier>) -> bool {
    agent.capabilities.covers(needs) && tier.is_none_or(|t| agent.tier == t)
}

/// True when the agent is capable and could start the task now (accepts work, has a free slot).
pub fn can_take(agent: &Agent, needs: &CapabilitySet, tier: Option<Tier>) -> bool {
    agent.accepts_work() && agent.free_slots() > 0 && is_capable(agent, needs, tier)
}

/// Like [`can_take`], with the reason when it cannot.
pub fn check(
    agent: &Agent,
    needs: &CapabilitySet,
    tier: Option<Tier>,
) -> Result<(), TransitionError> {
    let unfit = |reason: String| TransitionError::AgentUnfit {
        agent: agent.name.to_string(),
        reason,
    };
    if !agent.accepts_work() {
        return Err(TransitionError::Agent {
            agent: agent.name.to_string(),
            from: agent.status,
            action: "given work",
        });
    }
    let missing = agent.capabilities.missing(needs);
    if !missing.is_empty() {
        let names: Vec<&str> = missing.iter().map(|c| c.as_str()).collect();
        return Err(unfit(format!(
            "it lacks the capabilities {}",
            names.join(", ")
        )));
    }
    if let Some(t) = tier
        && agent.tier != t
    {
        return Err(unfit(format!(
            "the task needs a {t} agent and it is {}",
            agent.tier
        )));
    }
    if agent.free_slots() == 0 {
        return Err(unfit(format!("all {} slots are taken", agent.slots)));
    }
    Ok(())
}
