//! The capability matcher: whether an agent can take a task (status, free slot, the agent the
//! task is pinned to, capabilities, tier), and if not, why. The one home of that rule: the
//! scheduler, the store's queries and the explanations of a waiting task all ask it.

use crate::agent::Agent;
use crate::error::TransitionError;
use crate::values::{AgentName, CapabilitySet, Tier};

/// What a task asks of the agent that takes it ([`TaskSpec::needs`](crate::TaskSpec::needs)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Needs<'a> {
    /// Capabilities the agent must offer, all of them.
    pub capabilities: &'a CapabilitySet,
    /// The tier the agent must be of; `None`: any.
    pub tier: Option<Tier>,
    /// Only this agent may take the task; `None`: any agent that fits.
    pub agent: Option<&'a AgentName>,
}

impl<'a> Needs<'a> {
    /// Needs of capabilities and a tier, pinned to no agent.
    pub fn new(capabilities: &'a CapabilitySet, tier: Option<Tier>) -> Self {
        Needs {
            capabilities,
            tier,
            agent: None,
        }
    }

    /// The same needs with `tier` instead.
    #[must_use]
    pub fn with_tier(self, tier: Option<Tier>) -> Self {
        Needs { tier, ..self }
    }

    /// True when `name` may take the task as far as the pin goes (no pin, or pinned to it).
    pub fn allows(&self, name: &AgentName) -> bool {
        self.agent.is_none_or(|pinned| pinned == name)
    }
}

/// True when the agent's capabilities and tier fit the task and the task is not pinned to
/// another agent, whatever its load and status.
pub fn is_capable(agent: &Agent, needs: Needs<'_>) -> bool {
    needs.allows(&agent.name)
        && agent.capabilities.covers(needs.capabilities)
        && needs.tier.is_none_or(|t| agent.tier == t)
}

/// True when the agent is capable and could start the task now (accepts work, has a free slot).
pub fn can_take(agent: &Agent, needs: Needs<'_>) -> bool {
    agent.accepts_work() && agent.free_slots() > 0 && is_capable(agent, needs)
}

/// Like [`can_take`], with the reason when it cannot.
pub fn check(agent: &Agent, needs: Needs<'_>) -> Result<(), TransitionError> {
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
    if let Some(pinned) = needs.agent
        && !needs.allows(&agent.name)
    {
        return Err(unfit(format!("only the agent {pinned} may take the task")));
    }
    let missing = agent.capabilities.missing(needs.capabilities);
    if !missing.is_empty() {
        let names: Vec<&str> = missing.iter().map(|c| c.as_str()).collect();
        return Err(unfit(format!(
            "it lacks the capabilities {}",
            names.join(", ")
        )));
    }
    if let Some(t) = needs.tier
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
