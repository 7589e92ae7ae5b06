//! Property tests of the MAOS domain: the task and memory lifecycles against reference state
//! machines, folding every aggregate from its events, the matcher/balancer/scheduler policies
//! against independent oracles, and dependency-path search on random graphs.

#[path = "properties/briefing.rs"]
mod briefing;
#[path = "properties/concerns.rs"]
mod concerns;
#[path = "properties/folding.rs"]
mod folding;
#[path = "properties/graph.rs"]
mod graph;
#[path = "properties/lifecycle.rs"]
mod lifecycle;
#[path = "properties/memory.rs"]
mod memory;
#[path = "properties/permission.rs"]
mod permission;
#[path = "properties/policies.rs"]
mod policies;
#[path = "properties/retry.rs"]
mod retry;
#[path = "properties/revision.rs"]
mod revision;
#[path = "properties/support.rs"]
mod support;
#[path = "properties/workflow.rs"]
mod workflow;
