//! What to do about an error, in the CLI's words: the hint for each error of the application,
//! written from the facts the error carries (ADR 0015). The daemon gives the same hints to the
//! errors it sends over the wire (`compose.rs` hands [`hint`] to the IPC server), so an error
//! reads the same through the daemon and in process.

use std::error::Error;

use maos_application::{
    AgentError, Denial, Entity, MemoryError, NoWorktree, OrchestrationError, QueryError, Refusal,
    RemoteError, StoreError, TaskError, WorkspaceError,
};
use maos_domain::{OrchestrationStatus, TaskState, TransitionError};
use maos_ipc::ConnectError;

/// The hint for `e`, when there is something to say.
pub(crate) fn hint(e: &(dyn Error + 'static)) -> Option<String> {
    if let Some(e) = e.downcast_ref::<AgentError>() {
        agent(e)
    } else if let Some(e) = e.downcast_ref::<TaskError>() {
        task(e)
    } else if let Some(e) = e.downcast_ref::<OrchestrationError>() {
        orchestration(e)
    } else if let Some(e) = e.downcast_ref::<QueryError>() {
        query(e)
    } else if let Some(e) = e.downcast_ref::<MemoryError>() {
        memory(e)
    } else if let Some(e) = e.downcast_ref::<RemoteError>() {
        e.hint.clone()
    } else if let Some(e) = e.downcast_ref::<ConnectError>() {
        e.hint()
    } else if let Some(e) = e.downcast_ref::<StoreError>() {
        store(e)
    } else if let Some(e) = e.downcast_ref::<WorkspaceError>() {
        workspace(e)
    } else if let Some(e) = e.downcast_ref::<TransitionError>() {
        transition(e)
    } else {
        None
    }
}

fn agent(e: &AgentError) -> Option<String> {
    match e {
        AgentError::Invalid(_) => None,
        AgentError::MissingCommand => Some("add --command \"<program and arguments>\"".into()),
        AgentError::NotFound { .. } => Some("`maos agent list` shows the registered agents".into()),
        AgentError::AlreadyExists { name } => Some(format!(
            "choose another name, or run `maos agent remove {name}` first to replace it"
        )),
        AgentError::Transition(e) => transition(e),
        AgentError::Store(e) => store(e),
        AgentError::Remote(e) => e.hint.clone(),
    }
}

fn task(e: &TaskError) -> Option<String> {
    match e {
        TaskError::Invalid(_) | TaskError::ZeroLimit { .. } => None,
        TaskError::NotFound { .. } | TaskError::DependencyNotFound { .. } => {
            Some("`maos task list` shows the tasks and their ids".into())
        }
        TaskError::Ambiguous { .. } => Some("type more characters of the id".into()),
        TaskError::DependencyCycle { .. } => Some(
            "a task cannot depend, directly or not, on itself; drop one of the dependencies".into(),
        ),
        TaskError::OrchestrationNotFound { .. } => {
            Some("`maos orchestrate list` shows the orchestrations".into())
        }
        TaskError::AgentNotFound { .. } => {
            Some("`maos agent list` shows the registered agents".into())
        }
        TaskError::NoCapableAgent { .. } => Some(
            "register an agent with those capabilities (`maos agent register`), or wait for a \
             busy one to free a slot"
                .into(),
        ),
        TaskError::Transition(e) => transition(e),
        TaskError::Refused(r) => Some(refusal(r)),
        TaskError::Workspace(e) => workspace(e),
        TaskError::NoWorkspace { task, because } => no_worktree(task, *because),
        TaskError::Store(e) => store(e),
        TaskError::Remote(e) => e.hint.clone(),
        TaskError::Denied(d) => Some(denial(d)),
    }
}

fn denial(d: &Denial) -> String {
    match d {
        Denial::UnknownCredential => "use the credential MAOS gave the running attempt; it \
                                      stops working once the attempt ends"
            .into(),
        Denial::StaleAttempt { task, .. } => format!(
            "that attempt has ended: `maos task show {}` shows the task's current one",
            task.short()
        ),
    }
}

fn refusal(r: &Refusal) -> String {
    match r {
        Refusal::OrchestrationClosed { .. } => {
            "create the task on its own, or in another orchestration".into()
        }
        Refusal::OrchestrationNotRunning {
            orchestration,
            status,
            ..
        } => {
            let o = orchestration.short();
            match status {
                OrchestrationStatus::Paused => format!("`maos orchestrate resume {o}` resumes it"),
                OrchestrationStatus::Draft | OrchestrationStatus::AwaitingPlanApproval => {
                    format!("`maos orchestrate start {o}` starts it")
                }
                _ => format!(
                    "`maos orchestrate start {o}` (a draft) or `maos orchestrate resume {o}` \
                     (paused)"
                ),
            }
        }
        Refusal::BudgetSpent { .. } => {
            "cancel it, or create it again with a larger --budget-usd".into()
        }
        Refusal::ConcernHeld { task, holder, .. } => format!(
            "wait for task {} (`maos task show {}` says what it waits for)",
            holder.short(),
            task.short()
        ),
        Refusal::DependencyNotCompleted {
            task,
            dependency,
            state,
        } => {
            let dep = dependency.short();
            if *state == TaskState::Cancelled {
                format!(
                    "task {dep} was cancelled, so this task cannot run as it is: cancel it \
                     (`maos task cancel {}`) and create what is still needed anew",
                    task.short()
                )
            } else {
                format!("let task {dep} complete first (`maos task retry {dep}` if it is blocked)")
            }
        }
        Refusal::Subtasks { .. } => {
            "split the work into fewer subtasks, or fix their keys and dependencies as the \
             message says"
                .into()
        }
    }
}

fn no_worktree(task: &str, because: NoWorktree) -> Option<String> {
    match because {
        NoWorktree::NoRepository | NoWorktree::NotYet => Some(
            "only tasks created with --repo (or in an orchestration with one) have a worktree"
                .into(),
        ),
        NoWorktree::Removed => Some(format!(
            "`maos gc` removed it; `maos task diff {task}` still shows its branch's work"
        )),
        NoWorktree::NoCheckpointFor(_)
        | NoWorktree::NoCheckpointAfter(_)
        | NoWorktree::NoCheckpointBefore(_) => {
            Some(format!("`maos task show {task}` lists its attempts"))
        }
    }
}

fn orchestration(e: &OrchestrationError) -> Option<String> {
    match e {
        OrchestrationError::Invalid(_) | OrchestrationError::Refused(_) => None,
        OrchestrationError::PlanProblems { .. } => Some(
            "fix each problem at its line and column (the plan file's format: maos plan schema)"
                .to_owned(),
        ),
        OrchestrationError::NoPlanner { planner: Some(_) } => Some(
            "name a registered agent with --planner (maos agent list), or leave --planner out"
                .to_owned(),
        ),
        OrchestrationError::NoPlanner { planner: None } => Some(
            "register a strategic agent that plans (maos agent register NAME … --capability plan \
             --tier strategic), or name any agent with --planner NAME"
                .to_owned(),
        ),
        OrchestrationError::NoPlan { orchestration, .. } => Some(format!(
            "see what it has: maos plan show {orchestration} --versions"
        )),
        OrchestrationError::NoPlanReader => None,
        OrchestrationError::NotNewest { orchestration, .. } => Some(format!(
            "see what changed: maos plan diff {orchestration}; approve the newest: maos plan \
             approve {orchestration}"
        )),
        OrchestrationError::NoRepository { .. } => {
            Some("create it with --repo to integrate its work".into())
        }
        OrchestrationError::NoMergeTarget { .. } => {
            Some("name the branch to merge into with --into".into())
        }
        OrchestrationError::NothingToMerge { orchestration, .. } => Some(format!(
            "`maos orchestrate status {orchestration}` shows where its tasks stand"
        )),
        OrchestrationError::MergeConflict { branch, into, .. } => Some(format!(
            "merge {branch} into {into} by hand (git merge), or resolve the conflicting tasks \
             first"
        )),
        OrchestrationError::Query(e) => query(e),
        OrchestrationError::Task(e) => task(e),
        OrchestrationError::Workspace(e) => workspace(e),
        OrchestrationError::Transition(e) => transition(e),
        OrchestrationError::Store(e) => store(e),
        OrchestrationError::Remote(e) => e.hint.clone(),
    }
}

fn memory(e: &MemoryError) -> Option<String> {
    match e {
        MemoryError::Invalid(_) => None,
        MemoryError::NotFound { .. } => {
            Some("`maos memory list --all` shows the entries and their ids".into())
        }
        MemoryError::Ambiguous { .. } => Some("type more characters of the id".into()),
        MemoryError::Limit { max, .. } => Some(format!("pass --limit between 1 and {max}")),
        MemoryError::ScopeNotFound { .. } => Some(
            "`maos orchestrate list` shows the orchestrations; give a full id after              `orchestration:`"
                .into(),
        ),
        MemoryError::AttemptNotFound { task, .. } => Some(format!(
            "`maos task show {}` lists its attempts",
            task.short()
        )),
        MemoryError::Transition(e) => transition(e),
        MemoryError::Store(e) => store(e),
        MemoryError::Remote(e) => e.hint.clone(),
    }
}

fn query(e: &QueryError) -> Option<String> {
    match e {
        QueryError::Invalid(_) | QueryError::ZeroLimit { .. } => None,
        QueryError::NotFound { what, .. } => Some(
            match what {
                Entity::Agent => "`maos agent list` shows the registered agents",
                Entity::Orchestration => "`maos orchestrate list` shows the orchestrations",
                Entity::Task => "`maos task list` shows the tasks and their ids",
                Entity::Memory => "`maos memory list --all` shows the entries and their ids",
            }
            .into(),
        ),
        QueryError::Ambiguous { .. } => Some("type more characters of the id".into()),
        QueryError::NoAttempt { task, made, .. } => Some(if *made == 0 {
            format!(
                "task {task} has not been assigned yet; `maos task show {task}` says what it \
                 waits for"
            )
        } else {
            format!("`maos task show {task}` lists its attempts")
        }),
        QueryError::Workspace(e) => workspace(e),
        QueryError::NoWorkspace { task, because } => no_worktree(task, *because),
        QueryError::Store(e) => store(e),
        QueryError::Remote(e) => e.hint.clone(),
    }
}

fn store(e: &StoreError) -> Option<String> {
    Some(match e {
        StoreError::NotMaos { .. } => "point --data-dir (or MAOS_DATA_DIR) at a MAOS data \
                                       directory, or at an empty one to start afresh"
            .into(),
        StoreError::Damaged { path, .. } => format!(
            "stop the daemon (`maos daemon stop`); see what is damaged with `sqlite3 '{path}' \
             'PRAGMA integrity_check'`; then restore {path} from a backup, or move it away \
             (with its -wal and -shm files) to start with an empty database"
        ),
        StoreError::Open { .. } => "check that the data directory exists and is writable, or \
                                    choose another with --data-dir"
            .into(),
        StoreError::Lost { path, .. } => format!(
            "the daemon stops and acknowledged nothing after this; find out what removed or \
             replaced {path} (a cleanup job, a restore, a sync tool), put the right file back, \
             and run the command again"
        ),
        StoreError::Corrupt(_) => {
            "the database was changed outside MAOS; restore it from a backup".into()
        }
        StoreError::WriterGone | StoreError::Backend(_) => return None,
    })
}

fn transition(e: &TransitionError) -> Option<String> {
    match e {
        TransitionError::StaleAttempt { .. } => Some(
            "this attempt was superseded (its lease expired or the task was reassigned); its \
             result is discarded"
                .into(),
        ),
        TransitionError::Task { task, .. } => Some(format!(
            "`maos task show {}` shows the task's state and history",
            task.short()
        )),
        TransitionError::AgentBusy { agent, .. } => Some(format!(
            "run `maos agent drain {agent}` so it takes no new work, and remove it once its \
             attempts finish"
        )),
        TransitionError::Agent { agent, .. } | TransitionError::AgentUnfit { agent, .. } => Some(
            format!("`maos agent show {agent}` shows its status and slots"),
        ),
        TransitionError::Orchestration { id, .. } => Some(format!(
            "`maos orchestrate show {}` shows its status",
            id.short()
        )),
        TransitionError::Memory { id, .. } => Some(format!(
            "`maos memory show {}` shows the entry's state",
            id.short()
        )),
    }
}

fn workspace(e: &WorkspaceError) -> Option<String> {
    Some(match e {
        WorkspaceError::NotARepository { .. } => {
            "give --repo the directory of a git repository (`git init` makes one)".into()
        }
        WorkspaceError::Dirty { .. } => {
            "commit or stash the changes first: MAOS never works on top of uncommitted changes"
                .into()
        }
        WorkspaceError::DetachedHead { .. } => {
            "check out a branch (`git switch <branch>`), or name a base with --base".into()
        }
        WorkspaceError::Locked { lock, .. } => format!(
            "wait for the other git command to finish; if none runs, remove {}",
            lock.display()
        ),
        WorkspaceError::UnknownBase { .. } => {
            "name an existing branch or commit with --base".into()
        }
        WorkspaceError::Unsafe { .. } => {
            "commit or merge the work first, or pass --force to discard it".into()
        }
        WorkspaceError::Setup { .. } | WorkspaceError::Git { .. } => return None,
        WorkspaceError::NoGit(_) => "install git and make sure it is on the PATH".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use maos_domain::{OrchestrationId, TaskId};

    #[test]
    fn a_refused_retry_says_what_helps_by_the_dependency_state() {
        let t = TaskId::from_bits(1);
        let d = TaskId::from_bits(2);
        let e = TaskError::Refused(Box::new(Refusal::DependencyNotCompleted {
            task: t,
            dependency: d,
            state: TaskState::Cancelled,
        }));
        let said = hint(&e).unwrap();
        assert!(
            said.contains(&format!("`maos task cancel {}`", t.short())),
            "{said}"
        );
        let e = TaskError::Refused(Box::new(Refusal::DependencyNotCompleted {
            task: t,
            dependency: d,
            state: TaskState::Blocked,
        }));
        let said = hint(&e).unwrap();
        assert!(
            said.contains(&format!("`maos task retry {}`", d.short())),
            "{said}"
        );
    }

    #[test]
    fn an_error_wrapped_in_another_family_gets_the_inner_hint() {
        let o = OrchestrationId::from_bits(3);
        let e = OrchestrationError::Task(TaskError::Refused(Box::new(
            Refusal::OrchestrationNotRunning {
                task: TaskId::from_bits(1),
                orchestration: o,
                status: OrchestrationStatus::Paused,
            },
        )));
        assert_eq!(
            hint(&e),
            Some(format!(
                "`maos orchestrate resume {}` resumes it",
                o.short()
            ))
        );
        // An error the CLI does not know has no hint rather than a wrong one.
        let io = std::io::Error::other("x");
        assert_eq!(hint(&io), None);
        // What came over the wire keeps the daemon's words.
        let remote = RemoteError::new(maos_application::ErrorKind::Conflict, "m").with_hint("h");
        assert_eq!(hint(&remote).as_deref(), Some("h"));
    }
}
