//! Integration tests of maos-sqlite with the application use cases on real database files: opening,
//! migrating and refusing files, writer settings, group commit under concurrency, every use case
//! (and proof that a refused one writes nothing), folding events back into stored state, and the
//! queries (pagination, filters, id prefixes, status counts), following the log (commit
//! notification), and memory (search, ranking, scopes, expiry).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "store/agents.rs"]
mod agents;
#[path = "store/complexity.rs"]
mod complexity;
#[path = "store/concern_locks.rs"]
mod concern_locks;
#[path = "store/concurrency.rs"]
mod concurrency;
#[path = "store/folding.rs"]
mod folding;
#[path = "store/follow.rs"]
mod follow;
#[path = "store/leases.rs"]
mod leases;
#[path = "store/memory.rs"]
mod memory;
#[path = "store/open.rs"]
mod open;
#[path = "store/orchestrations.rs"]
mod orchestrations;
#[path = "store/pinned.rs"]
mod pinned;
#[path = "store/queries.rs"]
mod queries;
#[path = "store/reports.rs"]
mod reports;
#[path = "store/starvation.rs"]
mod starvation;
#[path = "store/support.rs"]
mod support;
#[path = "store/tasks.rs"]
mod tasks;
