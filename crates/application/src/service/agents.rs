//! Agents: registering, draining, resuming, removing and reading them.

use super::*;

impl<S: Store> Service<S> {
    pub(super) fn register_agent(&self, cmd: RegisterAgent) -> Result<Agent, AgentError> {
        if cmd.adapter == AdapterKind::Command
            && cmd.command.as_deref().is_none_or(|c| c.trim().is_empty())
        {
            return Err(AgentError::MissingCommand);
        }
        let at = self.clock.now();
        let id = AgentId::from_bits(self.ids.next_bits());
        self.write_scheduled(at, move |tx, changes| {
            if let Some(existing) = tx.agent(&cmd.name)?
                && existing.status != AgentStatus::Removed
            {
                return Err(AgentError::AlreadyExists {
                    name: cmd.name.to_string(),
                });
            }
            let spec = AgentSpec {
                name: cmd.name.clone(),
                adapter: cmd.adapter,
                capabilities: cmd.capabilities.clone(),
                tier: cmd.tier,
                slots: cmd.slots,
                command: cmd.command.clone(),
                settings: cmd.settings.clone(),
            };
            let (agent, events) = Agent::register(id, spec, at);
            tx.save_agent(&agent)?;
            tx.append(at, &DomainEvent::agents(id, events).collect::<Vec<_>>())?;
            // A new agent takes waiting work at once.
            changes.freed.push(agent.name.clone());
            Ok(agent)
        })
    }

    pub(super) fn drain_agent(&self, name: &AgentName) -> Result<Agent, AgentError> {
        self.agent_command(name, Agent::drain)
    }

    pub(super) fn resume_agent(&self, name: &AgentName) -> Result<Agent, AgentError> {
        let name = name.clone();
        let at = self.clock.now();
        self.write_scheduled(at, move |tx, changes| {
            let mut agent = tx
                .agent(&name)?
                .filter(|a| a.status != AgentStatus::Removed)
                .ok_or_else(|| AgentError::NotFound {
                    name: name.to_string(),
                })?;
            let events = agent.resume(at)?;
            tx.save_agent(&agent)?;
            tx.append(
                at,
                &DomainEvent::agents(agent.id, events).collect::<Vec<_>>(),
            )?;
            changes.freed.push(agent.name.clone());
            Ok(agent)
        })
    }

    pub(super) fn remove_agent(&self, name: &AgentName) -> Result<Agent, AgentError> {
        self.agent_command(name, Agent::remove)
    }

    pub(super) fn get_agent(&self, name: &AgentName) -> Result<Agent, QueryError> {
        self.store
            .agent(name)?
            .filter(|a| a.status != AgentStatus::Removed)
            .ok_or_else(|| QueryError::NotFound {
                what: Entity::Agent,
                reference: name.to_string(),
            })
    }

    pub(super) fn list_agents(&self, filter: &AgentFilter) -> Result<Vec<Agent>, QueryError> {
        Ok(self.store.agents(filter)?)
    }

    pub(super) fn agent_command(
        &self,
        name: &AgentName,
        op: fn(
            &mut Agent,
            Timestamp,
        ) -> Result<Vec<maos_domain::AgentEvent>, maos_domain::TransitionError>,
    ) -> Result<Agent, AgentError> {
        let name = name.clone();
        let at = self.clock.now();
        self.store.write(move |tx| {
            let mut agent = tx
                .agent(&name)?
                .filter(|a| a.status != AgentStatus::Removed)
                .ok_or_else(|| AgentError::NotFound {
                    name: name.to_string(),
                })?;
            let events = op(&mut agent, at)?;
            tx.save_agent(&agent)?;
            tx.append(
                at,
                &DomainEvent::agents(agent.id, events).collect::<Vec<_>>(),
            )?;
            Ok(agent)
        })
    }
}
