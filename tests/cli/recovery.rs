//! Waiting, concern locks, retries, escalation, the circuit breaker and routing end to end (being written).
