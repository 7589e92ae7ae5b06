//! Text both front ends write the same way: what an event says, in one line of `key=value` facts
//! (`agent=scribe-1 attempt=2`, the details of the command line's event log and of the
//! dashboard's events page), free text clipped to one line, durations in short form. Facts in a
//! fixed form, not sentences for people: those are each front end's own.

use maos_domain::{
    AgentEvent, BlockReason, CapabilitySet, DomainEvent, MemoryEvent, OrchestrationEvent, TaskEvent,
};

/// The facts of `e`, in one line (empty for an event that says nothing more than its kind). Why
/// a task is blocked is data the front end puts in its own words: `block` does that.
pub fn event_summary(e: &DomainEvent, block: &dyn Fn(&BlockReason) -> String) -> String {
    event_details(e, block)
}

/// `1.2s`, `3m04s`, `1h02m` (under a second: `640ms`).
pub fn short_duration(ms: u64) -> String {
    let s = ms / 1000;
    if ms < 1000 {
        format!("{ms}ms")
    } else if s < 60 {
        format!("{}.{}s", s, (ms % 1000) / 100)
    } else if s < 3600 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    }
}

/// Shortens `s` to `max` characters, marking the cut (lines joined with ` ⏎ `).
pub fn clip(s: &str, max: usize) -> String {
    if s.contains(['\n', '\r']) {
        let joined: Vec<&str> = s.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
        return clip(&joined.join(" ⏎ "), max);
    }
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// Text quoted and escaped so that it stays on one line.
fn quoted(s: &str) -> String {
    format!("{:?}", clip(s, 60))
}

fn caps(c: &CapabilitySet) -> String {
    if c.is_empty() {
        "-".into()
    } else {
        c.to_string()
    }
}

fn short_ids<'a>(ids: impl Iterator<Item = &'a maos_domain::TaskId>) -> String {
    let v: Vec<String> = ids.map(|id| id.short()).collect();
    if v.is_empty() {
        "-".into()
    } else {
        v.join(",")
    }
}

fn event_details(e: &DomainEvent, block: &dyn Fn(&BlockReason) -> String) -> String {
    match e {
        DomainEvent::Agent { event, .. } => match event {
            AgentEvent::Registered { spec } => format!(
                "name={} adapter={} tier={} slots={} capabilities={}",
                spec.name,
                spec.adapter,
                spec.tier,
                spec.slots,
                caps(&spec.capabilities)
            ),
            AgentEvent::SlotClaimed { task, attempt } => {
                format!("task={} attempt={attempt}", task.short())
            }
            AgentEvent::SlotReleased {
                task,
                attempt,
                failed,
            } => {
                let how = match failed {
                    Some(true) => " failed",
                    Some(false) => " succeeded",
                    None => "",
                };
                format!("task={} attempt={attempt}{how}", task.short())
            }
            AgentEvent::Drained {
                reason: Some(reason),
            } => format!("reason={}", quoted(reason)),
            AgentEvent::Drained { reason: None } | AgentEvent::Resumed | AgentEvent::Removed => {
                String::new()
            }
        },
        DomainEvent::Task { event, .. } => match event {
            TaskEvent::Created { spec } => {
                let mut s = format!(
                    "{} priority={} risk={} capabilities={}",
                    quoted(spec.title.as_str()),
                    spec.priority,
                    spec.risk,
                    caps(&spec.capabilities)
                );
                if !spec.depends_on.is_empty() {
                    s.push_str(&format!(
                        " depends_on={}",
                        short_ids(spec.depends_on.iter())
                    ));
                }
                if let Some(o) = spec.orchestration {
                    s.push_str(&format!(" orchestration={}", o.short()));
                }
                s
            }
            TaskEvent::DependencyAdded { on, satisfied } => {
                format!("on={} satisfied={satisfied}", on.short())
            }
            TaskEvent::Assigned {
                attempt,
                agent,
                fencing,
                ..
            } => format!("agent={agent} attempt={attempt} fencing={fencing}"),
            TaskEvent::AttemptStarted {
                attempt,
                pid,
                checkpoint,
                port,
            } => {
                let mut s = format!("attempt={attempt}");
                if let Some(pid) = pid {
                    s.push_str(&format!(" pid={pid}"));
                }
                if let Some(c) = checkpoint {
                    s.push_str(&format!(" checkpoint={}", c.get(..12).unwrap_or(c)));
                }
                if let Some(p) = port {
                    s.push_str(&format!(" port={p}"));
                }
                s
            }
            TaskEvent::WorkspacePrepared { workspace } => {
                format!(
                    "branch={} path={}",
                    workspace.branch,
                    quoted(&workspace.path)
                )
            }
            TaskEvent::ApprovalRequested {
                gate,
                tool,
                subject,
                ..
            } => match tool {
                Some(tool) => format!(
                    "gate={gate} tool={}",
                    quoted(&match subject {
                        Some(s) => format!("{tool}({s})"),
                        None => tool.clone(),
                    })
                ),
                None => format!("gate={gate}"),
            },
            TaskEvent::ApprovalGranted { gate } => format!("gate={gate}"),
            TaskEvent::Integrated { into, commit } => {
                format!("into={into} commit={}", commit.get(..12).unwrap_or(commit))
            }
            TaskEvent::IntegrationConflict { into, paths } => {
                format!("into={into} paths={}", quoted(&paths.join(",")))
            }
            TaskEvent::IntegrationFailed { into, reason } => {
                format!("into={into} reason={}", quoted(reason))
            }
            TaskEvent::RolledBack { to_attempt, commit } => format!(
                "to_attempt={to_attempt} commit={}",
                commit.get(..12).unwrap_or(commit)
            ),
            TaskEvent::SessionRecorded { attempt, session } => {
                format!("attempt={attempt} session={}", quoted(session))
            }
            TaskEvent::LeaseRenewed {
                attempt,
                lease_expires_at,
            } => format!("attempt={attempt} until={lease_expires_at}"),
            TaskEvent::AttemptSucceeded {
                attempt,
                summary,
                report,
            } => {
                let mut s = format!("attempt={attempt}");
                if let Some(summary) = summary {
                    s.push_str(&format!(" summary={}", quoted(summary)));
                }
                s.push_str(&report_fields(report));
                s
            }
            TaskEvent::AttemptFailed {
                attempt,
                error,
                report,
            } => format!(
                "attempt={attempt} error={}{}",
                quoted(error),
                report_fields(report)
            ),
            TaskEvent::AttemptInterrupted {
                attempt,
                reason,
                refunded,
            } => {
                let refund = if *refunded { " (not counted)" } else { "" };
                format!("attempt={attempt} reason={}{refund}", quoted(reason))
            }
            TaskEvent::VerificationFailed { output } => format!("output={}", quoted(output)),
            TaskEvent::ApprovalRejected { reason, gate } => {
                format!("gate={gate} reason={}", quoted(reason))
            }
            TaskEvent::Blocked { reason } => match reason {
                BlockReason::Text { text } => format!("reason={}", quoted(text)),
                r => format!("reason={}", quoted(&block(r))),
            },
            TaskEvent::Cancelled { reason } => format!("reason={}", quoted(reason)),
            TaskEvent::ProgressReported { attempt, note } => {
                format!("attempt={attempt} note={}", quoted(note.as_str()))
            }
            TaskEvent::SubtasksCreated {
                attempt,
                tasks,
                waits,
            } => format!(
                "attempt={attempt} subtasks={} waits={waits}",
                short_ids(tasks.iter())
            ),
            TaskEvent::RetryScheduled { at: Some(due) } => format!("due={}", due.to_rfc3339()),
            TaskEvent::RetryRequested { granted } => format!("attempts_granted={granted}"),
            TaskEvent::Briefed { attempt, briefing } => {
                let mut s = format!("attempt={attempt} tokens={}", briefing.tokens);
                if !briefing.cut.is_empty() {
                    s.push_str(&format!(" cut={}", briefing.cut.len()));
                }
                s
            }
            TaskEvent::Ready
            | TaskEvent::WorkspaceRemoved
            | TaskEvent::Completed
            | TaskEvent::RetryScheduled { at: None }
            | TaskEvent::Escalated => String::new(),
        },
        DomainEvent::Orchestration { event, .. } => match event {
            OrchestrationEvent::Created {
                name,
                goal,
                workspace,
                ..
            } => {
                let mut s = quoted(name.as_str());
                if let Some(g) = goal {
                    s.push_str(&format!(" goal={}", quoted(g)));
                }
                if let Some(w) = workspace {
                    s.push_str(&format!(" repo={}", quoted(&w.repo)));
                }
                s
            }
            OrchestrationEvent::Merged { into, commit } => {
                format!("into={into} commit={}", commit.get(..12).unwrap_or(commit))
            }
            OrchestrationEvent::Failed { reason } | OrchestrationEvent::Cancelled { reason } => {
                format!("reason={}", quoted(reason))
            }
            OrchestrationEvent::PlanningStarted { planning } => format!(
                "planner_task={} max_tasks={}",
                planning.task.short(),
                planning.max_tasks
            ),
            OrchestrationEvent::PlanProposed { version } => format!(
                "version={} tasks={}",
                version.number,
                version.plan.tasks.len()
            ),
            OrchestrationEvent::PlanningFailed { task, problems, .. } => {
                format!("planner_task={} problems={}", task.short(), problems.len())
            }
            OrchestrationEvent::PlanApproved {
                version,
                by,
                tasks,
                superseded,
            } => format!(
                "version={version} tasks={} superseded={} by={}",
                tasks.len(),
                superseded.len(),
                by.as_str()
            ),
            OrchestrationEvent::PlanRejected { version, reason } => match reason {
                Some(r) => format!("version={version} reason={}", quoted(r)),
                None => format!("version={version}"),
            },
            OrchestrationEvent::PlanApprovalRequested
            | OrchestrationEvent::Started
            | OrchestrationEvent::Paused
            | OrchestrationEvent::Resumed
            | OrchestrationEvent::Completed => String::new(),
        },
        DomainEvent::Memory { event, .. } => match event {
            MemoryEvent::Added { spec, expires_at } => {
                let mut s = format!(
                    "{} tier={} scope={}",
                    quoted(spec.text.first_line()),
                    spec.tier,
                    spec.scope
                );
                if !spec.tags.is_empty() {
                    s.push_str(&format!(" tags={}", spec.tags));
                }
                if let Some(at) = expires_at {
                    s.push_str(&format!(" expires_at={}", at.to_rfc3339()));
                }
                s
            }
            MemoryEvent::Forgotten {
                reason: Some(reason),
            } => format!("reason={}", quoted(reason)),
            MemoryEvent::Forgotten { reason: None }
            | MemoryEvent::Pinned
            | MemoryEvent::Unpinned
            | MemoryEvent::Expired => String::new(),
        },
    }
}

/// ` exit=… failure=… tokens=… cost=…` for what a run reported (empty for an empty report).
fn report_fields(report: &maos_domain::RunReport) -> String {
    let mut s = String::new();
    if let Some(failure) = report.failure {
        s.push_str(&format!(" failure={failure}"));
    }
    match report.exit {
        Some(maos_domain::Exit::Code(c)) => s.push_str(&format!(" exit={c}")),
        Some(maos_domain::Exit::Signal(sig)) => s.push_str(&format!(" signal={sig}")),
        None => {}
    }
    let u = &report.usage;
    if u.total_tokens() > 0 {
        s.push_str(&format!(" tokens={}", u.total_tokens()));
    }
    if u.cost > maos_domain::Usd::ZERO {
        s.push_str(&format!(" cost=${}", u.cost));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_text_is_one_line_and_clipped() {
        let long = "x".repeat(400);
        assert_eq!(clip(&long, 60).chars().count(), 60);
        assert!(clip(&long, 60).ends_with('…'));
        assert_eq!(clip("a\nb\r\n\nc", 60), "a ⏎ b ⏎ c");
        assert_eq!(quoted("say \"hi\"\n"), "\"say \\\"hi\\\"\"");
    }

    #[test]
    fn a_block_reason_is_put_in_the_front_ends_words() {
        let e = DomainEvent::Task {
            id: maos_domain::TaskId::from_bits(7),
            event: TaskEvent::Blocked {
                reason: BlockReason::Text {
                    text: "by hand".into(),
                },
            },
        };
        assert_eq!(
            event_summary(&e, &|_| "unused".into()),
            "reason=\"by hand\""
        );
        let e = DomainEvent::Task {
            id: maos_domain::TaskId::from_bits(7),
            event: TaskEvent::Blocked {
                reason: BlockReason::MergeFailed {
                    into: "main".into(),
                    error: "locked".into(),
                },
            },
        };
        assert_eq!(
            event_summary(&e, &|r| format!("words for {}", r.kind())),
            "reason=\"words for merge_failed\""
        );
    }
}
