//! Domain services: the pure rules that decide which agent may do a task, which task goes next
//! and which agent gets it.

pub mod approval;
pub mod balancer;
pub mod concerns;
pub mod matcher;
pub mod permission;
pub mod retry;
pub mod routing;
pub mod scheduler;
