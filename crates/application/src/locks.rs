//! Concern locks: a task whose concerns overlap those of a task that holds them (assigned,
//! running, verifying or waiting for approval of its result: its work is not integrated yet)
//! does not start. A task waiting for approval to run at all holds nothing yet.
//! Paths are compared within one repository (or one orchestration, for tasks without one);
//! named resources such as `port:8080` are shared by everything.

use maos_domain::policy::concerns::Concern;
use maos_domain::{Gate, Task, TaskId, TaskState};

/// The states in which a task holds its concerns.
pub(crate) const HOLDING: [TaskState; 4] = [
    TaskState::Assigned,
    TaskState::Running,
    TaskState::Verifying,
    TaskState::AwaitingApproval,
];

/// True when `t` holds its concerns now: it is in flight, except a task that waits for a
/// person's approval to run at all (it has done nothing yet).
pub(crate) fn holds(t: &Task) -> bool {
    HOLDING.contains(&t.state)
        && !(t.state == TaskState::AwaitingApproval
            && t.pending.as_ref().is_some_and(|p| p.gate == Gate::Run))
}

/// Where a task's path concerns apply: its repository, else its orchestration, else nowhere in
/// particular (every task without either shares one space).
fn scope(t: &Task) -> String {
    match (&t.spec.workspace, t.spec.orchestration) {
        (Some(ws), _) => format!("repo:{}", ws.repo),
        (None, Some(o)) => format!("orchestration:{o}"),
        (None, None) => String::new(),
    }
}

/// A held concern that `task` may not work beside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Clash {
    /// The task that holds it.
    pub(crate) holder: TaskId,
    /// `task`'s concern.
    pub(crate) mine: Concern,
    /// The holder's overlapping concern.
    pub(crate) theirs: Concern,
}

/// The concerns tasks hold now, to check candidates against.
#[derive(Debug, Default)]
pub(crate) struct Held {
    holders: Vec<(TaskId, String, Vec<Concern>)>,
}

impl Held {
    /// The concerns held by `tasks` (those of them in a holding state).
    pub(crate) fn of<'a>(tasks: impl IntoIterator<Item = &'a Task>) -> Held {
        let mut held = Held::default();
        for t in tasks {
            if holds(t) {
                held.take(t);
            }
        }
        held
    }

    /// Records that `t` now holds its concerns (it was just assigned).
    pub(crate) fn take(&mut self, t: &Task) {
        if !t.spec.concerns.is_empty() {
            self.holders.push((t.id, scope(t), t.spec.concerns.clone()));
        }
    }

    /// Every held concern that `t`'s concerns overlap, one per holder.
    pub(crate) fn clashes(&self, t: &Task) -> Vec<Clash> {
        if t.spec.concerns.is_empty() {
            return Vec::new();
        }
        let mine_scope = scope(t);
        let mut out = Vec::new();
        for (holder, their_scope, theirs) in &self.holders {
            if *holder == t.id {
                continue;
            }
            // Across repositories only named resources can clash (a resource never overlaps a
            // path, so filtering `t`'s side is enough).
            let same_scope = *their_scope == mine_scope;
            let found = t
                .spec
                .concerns
                .iter()
                .filter(|m| same_scope || matches!(m, Concern::Resource(_)))
                .find_map(|m| theirs.iter().find(|th| m.overlaps(th)).map(|th| (m, th)));
            if let Some((m, th)) = found {
                out.push(Clash {
                    holder: *holder,
                    mine: m.clone(),
                    theirs: th.clone(),
                });
            }
        }
        out
    }

    /// True when `t` may start beside everything held.
    pub(crate) fn allows(&self, t: &Task) -> bool {
        self.clashes(t).is_empty()
    }
}
