//! The dashboard over real HTTP: a real SQLite store behind the application service, the
//! dashboard's router on a real socket, and requests written by hand (so that every header the
//! guards look at is the test's choice). The browser suite (`tests/browser`) drives the same
//! pages through the real daemon and a real chromium.

mod support;

mod approvals;
mod events;
mod guards;
mod live;
mod metrics;
mod orchestration;
mod overview;
mod plan;
mod task;
mod tasks;
