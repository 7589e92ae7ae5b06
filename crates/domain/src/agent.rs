//! The Agent aggregate: a registered worker (a program or model) with capabilities, a tier and a
//! number of slots, and the events that change it.

use std::fmt;
use std::ops::Deref;

use serde::{Deserialize, Serialize};

use crate::error::TransitionError;
use crate::ids::{AgentId, TaskId};
use crate::settings::AgentSettings;
use crate::values::{AdapterKind, AgentName, CapabilitySet, Slots, Tier, Timestamp, keyword_enum};

keyword_enum!(
    /// Where an agent stands. `busy` means every slot is taken.
    AgentStatus, "agent status" {
        Available => "available",
        Busy => "busy",
        Draining => "draining",
        Offline => "offline",
        Removed => "removed",
    }
);

/// What a new registration says about an agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentSpec {
    pub name: AgentName,
    pub adapter: AdapterKind,
    pub capabilities: CapabilitySet,
    pub tier: Tier,
    pub slots: Slots,
    /// The program to run, for adapters that need one.
    pub command: Option<String>,
    /// How the daemon runs it.
    #[serde(default)]
    pub settings: AgentSettings,
}

/// The state of an agent. Read it through [`Agent`]; change it only through `Agent`'s methods.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentData {
    pub id: AgentId,
    pub name: AgentName,
    pub adapter: AdapterKind,
    pub capabilities: CapabilitySet,
    pub tier: Tier,
    pub slots: Slots,
    pub command: Option<String>,
    pub settings: AgentSettings,
    pub status: AgentStatus,
    /// Attempts currently holding one of the agent's slots.
    pub active: u32,
    pub registered_at: Timestamp,
    pub updated_at: Timestamp,
    /// Number of events applied since registration.
    pub version: u64,
}

/// Something that happened to an agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AgentEvent {
    Registered { spec: Box<AgentSpec> },
    SlotClaimed { task: TaskId, attempt: u32 },
    SlotReleased { task: TaskId, attempt: u32 },
    Drained,
    Removed,
}

impl AgentEvent {
    /// The event's name in the event log.
    pub fn kind(&self) -> &'static str {
        match self {
            AgentEvent::Registered { .. } => "agent.registered",
            AgentEvent::SlotClaimed { .. } => "agent.slot_claimed",
            AgentEvent::SlotReleased { .. } => "agent.slot_released",
            AgentEvent::Drained => "agent.drained",
            AgentEvent::Removed => "agent.removed",
        }
    }
}

/// A registered agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agent(AgentData);

impl Deref for Agent {
    type Target = AgentData;
    fn deref(&self) -> &AgentData {
        &self.0
    }
}

impl Agent {
    /// Registers a new agent.
    pub fn register(id: AgentId, spec: AgentSpec, at: Timestamp) -> (Agent, Vec<AgentEvent>) {
        let agent = Agent::from_spec(id, &spec, at);
        (
            agent,
            vec![AgentEvent::Registered {
                spec: Box::new(spec),
            }],
        )
    }

    /// Rebuilds an agent from stored state (for repositories).
    pub fn restore(data: AgentData) -> Agent {
        Agent(data)
    }

    /// The stored state.
    pub fn data(&self) -> &AgentData {
        &self.0
    }

    /// Rebuilds an agent by folding its events, oldest first. `None` if the first is not a
    /// registration.
    pub fn from_events<'a>(
        id: AgentId,
        events: impl IntoIterator<Item = (&'a AgentEvent, Timestamp)>,
    ) -> Option<Agent> {
        let mut it = events.into_iter();
        let (first, at) = it.next()?;
        let mut agent = Agent::genesis(id, first, at)?;
        for (e, at) in it {
            agent.apply(e, at);
        }
        Some(agent)
    }

    fn genesis(id: AgentId, event: &AgentEvent, at: Timestamp) -> Option<Agent> {
        let AgentEvent::Registered { spec } = event else {
            return None;
        };
        Some(Agent::from_spec(id, spec, at))
    }

    fn from_spec(id: AgentId, spec: &AgentSpec, at: Timestamp) -> Agent {
        Agent(AgentData {
            id,
            name: spec.name.clone(),
            adapter: spec.adapter,
            capabilities: spec.capabilities.clone(),
            tier: spec.tier,
            slots: spec.slots,
            command: spec.command.clone(),
            settings: spec.settings.clone(),
            status: AgentStatus::Available,
            active: 0,
            registered_at: at,
            updated_at: at,
            version: 1,
        })
    }

    /// Applies one event (already validated by the command that produced it).
    pub fn apply(&mut self, event: &AgentEvent, at: Timestamp) {
        let d = &mut self.0;
        match event {
            AgentEvent::Registered { .. } => {}
            AgentEvent::SlotClaimed { .. } => {
                d.active += 1;
                if d.status == AgentStatus::Available && d.active >= d.slots.get() {
                    d.status = AgentStatus::Busy;
                }
            }
            AgentEvent::SlotReleased { .. } => {
                d.active = d.active.saturating_sub(1);
                if d.status == AgentStatus::Busy && d.active < d.slots.get() {
                    d.status = AgentStatus::Available;
                }
            }
            AgentEvent::Drained => d.status = AgentStatus::Draining,
            AgentEvent::Removed => d.status = AgentStatus::Removed,
        }
        d.updated_at = at;
        d.version += 1;
    }

    fn emit(&mut self, event: AgentEvent, at: Timestamp) -> Vec<AgentEvent> {
        self.apply(&event, at);
        vec![event]
    }

    /// Free slots: how many more attempts the agent can take now.
    pub fn free_slots(&self) -> u32 {
        self.slots.get().saturating_sub(self.active)
    }

    /// True when the agent takes new work at all (available or busy, not draining or gone).
    pub fn accepts_work(&self) -> bool {
        matches!(self.status, AgentStatus::Available | AgentStatus::Busy)
    }

    /// Takes a slot for an attempt.
    pub fn claim_slot(
        &mut self,
        task: TaskId,
        attempt: u32,
        at: Timestamp,
    ) -> Result<Vec<AgentEvent>, TransitionError> {
        if !self.accepts_work() {
            return Err(TransitionError::Agent {
                agent: self.name.to_string(),
                from: self.status,
                action: "given work",
            });
        }
        if self.free_slots() == 0 {
            return Err(TransitionError::AgentUnfit {
                agent: self.name.to_string(),
                reason: format!("all {} slots are taken", self.slots),
            });
        }
        Ok(self.emit(AgentEvent::SlotClaimed { task, attempt }, at))
    }

    /// Gives back the slot an attempt held.
    pub fn release_slot(
        &mut self,
        task: TaskId,
        attempt: u32,
        at: Timestamp,
    ) -> Result<Vec<AgentEvent>, TransitionError> {
        if self.active == 0 {
            return Err(TransitionError::Agent {
                agent: self.name.to_string(),
                from: self.status,
                action: "released from a slot it does not hold",
            });
        }
        Ok(self.emit(AgentEvent::SlotReleased { task, attempt }, at))
    }

    /// Stops giving the agent new work; running attempts finish.
    pub fn drain(&mut self, at: Timestamp) -> Result<Vec<AgentEvent>, TransitionError> {
        match self.status {
            AgentStatus::Available | AgentStatus::Busy | AgentStatus::Offline => {
                Ok(self.emit(AgentEvent::Drained, at))
            }
            from => Err(TransitionError::Agent {
                agent: self.name.to_string(),
                from,
                action: "drained",
            }),
        }
    }

    /// Removes the agent. Refused while it holds slots: drain it and let its attempts finish.
    pub fn remove(&mut self, at: Timestamp) -> Result<Vec<AgentEvent>, TransitionError> {
        if self.status == AgentStatus::Removed {
            return Err(TransitionError::Agent {
                agent: self.name.to_string(),
                from: self.status,
                action: "removed",
            });
        }
        if self.active > 0 {
            return Err(TransitionError::AgentBusy {
                agent: self.name.to_string(),
                active: self.active,
            });
        }
        Ok(self.emit(AgentEvent::Removed, at))
    }
}

impl fmt::Display for Agent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}, {})", self.name, self.adapter, self.status)
    }
}
