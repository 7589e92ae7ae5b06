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
    /// Attempts that failed in a row, newest last (a success resets it; an interrupted or
    /// cancelled attempt leaves it alone).
    #[serde(default)]
    pub failures_in_row: u32,
    /// Why the agent was drained, when MAOS drained it (its circuit breaker) or a person said.
    #[serde(default)]
    pub drained_because: Option<String>,
}

/// Something that happened to an agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AgentEvent {
    Registered {
        spec: Box<AgentSpec>,
    },
    SlotClaimed {
        task: TaskId,
        attempt: u32,
    },
    SlotReleased {
        task: TaskId,
        attempt: u32,
        /// How the attempt went for the agent: `Some(true)` failed, `Some(false)` succeeded,
        /// `None` neither (interrupted, cancelled, or an event from before this was recorded).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        failed: Option<bool>,
    },
    Drained {
        /// Why, when MAOS drained it (its circuit breaker) rather than a person.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// A drained agent takes work again (`maos agent resume`).
    Resumed,
    Removed,
}

impl AgentEvent {
    /// Every name [`Self::kind`] gives, in the order of `kind`'s arms.
    pub const KINDS: &'static [&'static str] = &[
        "agent.registered",
        "agent.slot_claimed",
        "agent.slot_released",
        "agent.drained",
        "agent.resumed",
        "agent.removed",
    ];

    /// The event's name in the event log.
    pub fn kind(&self) -> &'static str {
        match self {
            AgentEvent::Registered { .. } => "agent.registered",
            AgentEvent::SlotClaimed { .. } => "agent.slot_claimed",
            AgentEvent::SlotReleased { .. } => "agent.slot_released",
            AgentEvent::Drained { .. } => "agent.drained",
            AgentEvent::Resumed => "agent.resumed",
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
            failures_in_row: 0,
            drained_because: None,
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
            AgentEvent::SlotReleased { failed, .. } => {
                d.active = d.active.saturating_sub(1);
                if d.status == AgentStatus::Busy && d.active < d.slots.get() {
                    d.status = AgentStatus::Available;
                }
                match failed {
                    Some(true) => d.failures_in_row = d.failures_in_row.saturating_add(1),
                    Some(false) => d.failures_in_row = 0,
                    None => {}
                }
            }
            AgentEvent::Drained { reason } => {
                d.status = AgentStatus::Draining;
                d.drained_because = reason.clone();
            }
            AgentEvent::Resumed => {
                d.status = if d.active >= d.slots.get() {
                    AgentStatus::Busy
                } else {
                    AgentStatus::Available
                };
                d.failures_in_row = 0;
                d.drained_because = None;
            }
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

    /// Gives back the slot an attempt held; `failed` says how the attempt went for the agent
    /// (`None`: it was interrupted or cancelled, which is not the agent's doing).
    pub fn release_slot(
        &mut self,
        task: TaskId,
        attempt: u32,
        failed: Option<bool>,
        at: Timestamp,
    ) -> Result<Vec<AgentEvent>, TransitionError> {
        if self.active == 0 {
            return Err(TransitionError::Agent {
                agent: self.name.to_string(),
                from: self.status,
                action: "released from a slot it does not hold",
            });
        }
        Ok(self.emit(
            AgentEvent::SlotReleased {
                task,
                attempt,
                failed,
            },
            at,
        ))
    }

    /// Stops giving the agent new work; running attempts finish.
    pub fn drain(&mut self, at: Timestamp) -> Result<Vec<AgentEvent>, TransitionError> {
        self.drain_because(None, at)
    }

    /// Drains the agent with the reason MAOS did it (its circuit breaker tripped).
    pub fn drain_because(
        &mut self,
        reason: Option<String>,
        at: Timestamp,
    ) -> Result<Vec<AgentEvent>, TransitionError> {
        match self.status {
            AgentStatus::Available | AgentStatus::Busy | AgentStatus::Offline => {
                Ok(self.emit(AgentEvent::Drained { reason }, at))
            }
            from => Err(TransitionError::Agent {
                agent: self.name.to_string(),
                from,
                action: "drained",
            }),
        }
    }

    /// Gives a drained agent work again, with a clean failure record.
    pub fn resume(&mut self, at: Timestamp) -> Result<Vec<AgentEvent>, TransitionError> {
        if self.status != AgentStatus::Draining {
            return Err(TransitionError::Agent {
                agent: self.name.to_string(),
                from: self.status,
                action: "resumed (only a draining agent can be)",
            });
        }
        Ok(self.emit(AgentEvent::Resumed, at))
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
