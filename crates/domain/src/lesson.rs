//! Lessons after failed attempts: when an attempt of a task that asks for them
//! ([`TaskSpec::lessons`](crate::TaskSpec::lessons)) succeeds after earlier attempts failed, the
//! agent that succeeded is asked for one paragraph on what went wrong and what to do differently;
//! its answer becomes a routine memory entry of the task's repository.
//!
//! This module decides when to ask ([`wants_lesson`]), what to ask ([`question`]), and what is
//! kept of the answer ([`lesson_memory`]: clipped, tagged `lesson`, scoped to the repository or,
//! for a task without one, its orchestration; nothing for a task with neither).

use crate::memory::{MemoryScope, MemorySpec, MemoryText, MemoryTier, Provenance, RepoPath, Tags};
use crate::task::{Attempt, AttemptOutcome, Task};

/// The tag every lesson carries.
pub const LESSON_TAG: &str = "lesson";

/// The most of an answer kept as a lesson, in bytes: a paragraph fits many times over, and a
/// briefing that includes the lesson stays small. (A memory text may be 8 KiB.)
pub const LESSON_MAX_BYTES: usize = 4096;

/// The most characters of an earlier attempt's error quoted in the question.
const ERROR_SHOWN: usize = 300;

/// The attempts of `task` before attempt `attempt` that count as failures: those that failed,
/// and those interrupted without a refund (a refunded interruption was nothing the task did).
pub fn earlier_failures(task: &Task, attempt: u32) -> Vec<&Attempt> {
    task.attempts
        .iter()
        .filter(|a| a.number < attempt)
        .filter(|a| match a.status {
            AttemptOutcome::Failed => true,
            AttemptOutcome::Interrupted => !a.refunded,
            _ => false,
        })
        .collect()
}

/// Whether attempt `attempt` of `task`, having succeeded, is asked for a lesson: the task asks
/// for lessons, an earlier attempt failed, and there is a scope to keep the lesson in
/// ([`lesson_scope`]).
pub fn wants_lesson(task: &Task, attempt: u32) -> bool {
    task.spec.lessons && lesson_scope(task).is_some() && !earlier_failures(task, attempt).is_empty()
}

/// What the agent of attempt `attempt` is asked. It says what happened in the earlier attempts
/// (so an agent that cannot resume its session knows too), and asks for one paragraph of prose
/// and no change to any file.
pub fn question(task: &Task, attempt: u32) -> String {
    let mut text = format!(
        "The task \"{}\" is done: attempt {attempt} succeeded, after earlier attempts did not.\n\n\
         What went wrong before (as recorded):\n",
        task.spec.title.as_str()
    );
    for a in earlier_failures(task, attempt) {
        let error = a.error.as_deref().unwrap_or("it failed").trim();
        let error = clip_chars(&one_line(error), ERROR_SHOWN);
        text.push_str(&format!("- attempt {} ({}): {error}\n", a.number, a.agent));
    }
    text.push_str(
        "\nIn one paragraph of plain prose (no list, no heading, no code block; at most about 150 \
         words), write the lesson for whoever works on this repository next: what went wrong in \
         the earlier attempts, and what to do differently next time. Do not change any file and \
         do not run any command: answer with the paragraph only.\n",
    );
    text
}

/// Where a lesson of `task` is kept: its repository (as a memory scope names it), else its
/// orchestration; `None` for a task with neither (a lesson of nothing in particular would
/// land in every briefing).
pub fn lesson_scope(task: &Task) -> Option<MemoryScope> {
    let repo = task
        .spec
        .workspace
        .as_ref()
        .and_then(|w| RepoPath::parse(&w.repo).ok());
    match (repo, task.spec.orchestration) {
        (Some(repo), _) => Some(MemoryScope::Repository(repo)),
        (None, Some(o)) => Some(MemoryScope::Orchestration(o)),
        (None, None) => None,
    }
}

/// The text kept of an agent's answer: trimmed, without NUL characters, cut at a word
/// boundary to at most [`LESSON_MAX_BYTES`] (with `…`); `None` for a blank answer.
pub fn lesson_text(answer: &str) -> Option<MemoryText> {
    let clean: String = answer.chars().filter(|c| *c != '\0').collect();
    let t = clean.trim();
    if t.is_empty() {
        return None;
    }
    let kept = if t.len() <= LESSON_MAX_BYTES {
        t.to_owned()
    } else {
        const MORE: &str = " …";
        let mut end = LESSON_MAX_BYTES - MORE.len();
        while !t.is_char_boundary(end) {
            end -= 1;
        }
        let head = &t[..end];
        // Cut at the last whitespace of the second half, not through a word.
        let head = match head.rfind(char::is_whitespace) {
            Some(i) if i > end / 2 => &head[..i],
            _ => head,
        };
        format!("{}{MORE}", head.trim_end())
    };
    MemoryText::parse(&kept).ok()
}

/// The memory entry of a lesson that attempt `attempt` of `task` answered: routine, in the
/// task's [`lesson_scope`], tagged [`LESSON_TAG`], written by that attempt. `None` when the
/// task has no scope for it or the answer is blank.
pub fn lesson_memory(task: &Task, attempt: u32, answer: &str) -> Option<MemorySpec> {
    let scope = lesson_scope(task)?;
    let text = lesson_text(answer)?;
    let tags = Tags::parse([LESSON_TAG]).ok()?;
    Some(MemorySpec {
        tier: MemoryTier::Routine,
        scope,
        text,
        tags,
        provenance: Provenance::Attempt {
            task: task.id,
            attempt,
        },
    })
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn clip_chars(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let head: String = text.chars().take(max).collect();
    format!("{head}…")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{OrchestrationId, TaskId};
    use crate::run::Usage;
    use crate::task::{TaskData, TaskSpec, WorkspaceSpec};
    use crate::values::{
        AgentName, CapabilitySet, FencingToken, MaxAttempts, Priority, Risk, Timestamp, Title,
    };

    fn spec(lessons: bool, repo: Option<&str>, orchestration: Option<OrchestrationId>) -> TaskSpec {
        TaskSpec {
            title: Title::parse("Fix the flaky test").unwrap(),
            prompt: String::new(),
            capabilities: CapabilitySet::empty(),
            priority: Priority::Normal,
            risk: Risk::Low,
            tier: None,
            depends_on: Default::default(),
            orchestration,
            max_attempts: MaxAttempts::new(5).unwrap(),
            timeout: None,
            idempotency_key: None,
            budget: None,
            workspace: repo.map(|r| WorkspaceSpec {
                repo: r.to_owned(),
                base: None,
            }),
            verify: None,
            wants_port: false,
            concerns: Vec::new(),
            plans: None,
            agent: None,
            parent: None,
            lessons,
        }
    }

    /// A task whose attempts ended as `ends` says (`f`: failed, `i`: interrupted and counted,
    /// `r`: interrupted and refunded), then one more attempt that is running.
    fn task(spec: TaskSpec, ends: &str) -> Task {
        let (t, _) = Task::create(TaskId::from_bits(9), spec, Timestamp::from_millis(1));
        let mut data = TaskData::clone(&t);
        let attempt = |number: u32, status: AttemptOutcome, refunded: bool| Attempt {
            number,
            agent: AgentName::parse("claude").unwrap(),
            fencing: FencingToken::new(1),
            status,
            assigned_at: Timestamp::from_millis(2),
            lease_expires_at: Timestamp::from_millis(3),
            started_at: None,
            ended_at: None,
            summary: None,
            error: (status != AttemptOutcome::Running).then(|| "exited with status 1".to_owned()),
            pid: None,
            session: None,
            exit: None,
            usage: Usage::NONE,
            failure: None,
            checkpoint_before: None,
            checkpoint_after: None,
            port: None,
            verification: None,
            briefing: None,
            diff_stat: None,
            permission_denials: Vec::new(),
            refunded,
        };
        for (n, end) in (1..).zip(ends.chars()) {
            data.attempts.push(match end {
                'f' => attempt(n, AttemptOutcome::Failed, false),
                'i' => attempt(n, AttemptOutcome::Interrupted, false),
                'r' => attempt(n, AttemptOutcome::Interrupted, true),
                _ => unreachable!(),
            });
        }
        let n = u32::try_from(data.attempts.len()).unwrap() + 1;
        data.attempts
            .push(attempt(n, AttemptOutcome::Running, false));
        Task::restore(data)
    }

    #[test]
    fn only_a_success_after_counted_failures_of_a_task_that_asks_is_asked() {
        let s = || spec(true, Some("/src/app"), None);
        assert!(!wants_lesson(&task(s(), ""), 1), "a first attempt");
        assert!(wants_lesson(&task(s(), "f"), 2));
        assert!(wants_lesson(&task(s(), "i"), 2));
        assert!(!wants_lesson(&task(s(), "r"), 2), "a refunded interruption");
        assert!(wants_lesson(&task(s(), "rf"), 3));
        assert!(
            !wants_lesson(&task(spec(false, Some("/src/app"), None), "ff"), 3),
            "the setting is off"
        );
        assert!(
            !wants_lesson(&task(spec(true, None, None), "ff"), 3),
            "nowhere to keep it"
        );
        let o = OrchestrationId::from_bits(7);
        assert!(wants_lesson(&task(spec(true, None, Some(o)), "f"), 2));
        let t = task(s(), "fri");
        let numbers: Vec<u32> = earlier_failures(&t, 4).iter().map(|a| a.number).collect();
        assert_eq!(numbers, [1, 3]);
        assert_eq!(earlier_failures(&t, 2).len(), 1, "only attempts before it");
    }

    #[test]
    fn the_question_names_the_failures_and_asks_for_a_paragraph() {
        let t = task(spec(true, None, None), "fr");
        let q = question(&t, 3);
        assert!(q.contains("attempt 3 succeeded"));
        assert!(q.contains("- attempt 1 (claude): exited with status 1"));
        assert!(!q.contains("- attempt 2"), "a refunded one is no failure");
        assert!(q.contains("one paragraph"));
        assert!(q.contains("Do not change any file"));
    }

    #[test]
    fn a_long_error_is_one_line_and_cut() {
        let t = task(spec(true, None, None), "f");
        let mut data = TaskData::clone(&t);
        data.attempts[0].error = Some(format!("first\nsecond {}", "x".repeat(1000)));
        let q = question(&Task::restore(data), 2);
        let line = q.lines().find(|l| l.starts_with("- attempt 1")).unwrap();
        assert!(line.contains("first second"));
        assert!(line.chars().count() < ERROR_SHOWN + 40);
        assert!(line.ends_with('…'));
    }

    #[test]
    fn a_lesson_goes_to_the_repository_else_the_orchestration_else_nowhere() {
        let o = OrchestrationId::from_bits(7);
        let t = task(spec(true, Some("/src//app/"), Some(o)), "f");
        assert_eq!(
            lesson_scope(&t),
            Some(MemoryScope::parse("repo:/src/app").unwrap())
        );
        let t = task(spec(true, None, Some(o)), "f");
        assert_eq!(lesson_scope(&t), Some(MemoryScope::Orchestration(o)));
        let t = task(spec(true, None, None), "f");
        assert_eq!(lesson_scope(&t), None);
        assert_eq!(lesson_memory(&t, 2, "a lesson"), None);
    }

    #[test]
    fn the_entry_is_routine_tagged_and_written_by_the_attempt() {
        let t = task(spec(true, Some("/src/app"), None), "f");
        let m = lesson_memory(&t, 2, "  Run the daemon before the CLI suite.\n").unwrap();
        assert_eq!(m.tier, MemoryTier::Routine);
        assert_eq!(m.scope.to_string(), "repo:/src/app");
        assert_eq!(m.text.as_str(), "Run the daemon before the CLI suite.");
        assert_eq!(m.tags.to_string(), "lesson");
        assert_eq!(
            m.provenance,
            Provenance::Attempt {
                task: t.id,
                attempt: 2
            }
        );
        assert_eq!(lesson_memory(&t, 2, " \n\t"), None, "a blank answer");
    }

    #[test]
    fn a_long_answer_is_cut_at_a_word_and_nul_goes() {
        let long = "word ".repeat(2000);
        let text = lesson_text(&long).unwrap();
        assert!(text.as_str().len() <= LESSON_MAX_BYTES);
        assert!(text.as_str().ends_with("word …"));
        let wide = "é".repeat(LESSON_MAX_BYTES);
        let text = lesson_text(&wide).unwrap();
        assert!(text.as_str().len() <= LESSON_MAX_BYTES);
        assert!(text.as_str().ends_with('…'));
        assert_eq!(lesson_text("a\0b").unwrap().as_str(), "ab");
        assert!(lesson_text("\0").is_none());
    }
}
