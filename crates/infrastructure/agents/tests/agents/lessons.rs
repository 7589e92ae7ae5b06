//! Lessons after failed attempts, end to end: a scripted `command` agent fails a task's first
//! attempt and succeeds on the retry; when the task asks for lessons, the agent is run again
//! with the lesson's question (`MAOS_LESSON=1`), and its answer becomes a routine memory entry
//! of the task's orchestration, tagged `lesson`, written by the succeeding attempt. When the
//! setting is off, when there is nowhere to keep a lesson, or when the step fails or hangs, the
//! task completes all the same. Claude Code and Codex (their test doubles, through
//! `scripts/claude-lesson.sh` and `scripts/codex-lesson.sh`) are asked in the attempt's resumed
//! session; the model loop's extra turn is tested in `openai.rs`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use maos_application::{
    CreateOrchestration, CreatePlan, CreateTask, MaosApi, MemoryFilter, MemoryPage, PlanTask,
};
use maos_domain::{
    AggregateKind, MaxAttempts, Memory, MemoryScope, MemoryTier, OrchestrationId, Provenance, Task,
    TaskState, Title,
};

use crate::supervisor::support::{Env, command_agent, process_gone, script};

/// A task of a started orchestration (its lesson's scope), run by `lesson.sh` with `mode`.
fn orchestration_task(env: &Env, mode: &str, lessons: bool) -> (OrchestrationId, Task) {
    env.register(command_agent(
        "scripted",
        &format!("{} {mode}", script("lesson.sh")),
        &[],
    ));
    let mut task = CreateTask::titled(Title::parse("Fix the parser").unwrap());
    task.max_attempts = MaxAttempts::new(3).unwrap();
    task.lessons = lessons;
    let made = env
        .service
        .create_plan(CreatePlan {
            orchestration: CreateOrchestration {
                name: Title::parse("lessons").unwrap(),
                goal: Some("a parser that parses".to_owned()),
                workspace: None,
                verify: None,
                notes: Vec::new(),
            },
            tasks: vec![PlanTask {
                key: "fix".to_owned(),
                task,
                depends_on: Vec::new(),
            }],
            start: true,
        })
        .unwrap();
    (made.orchestration.id, made.tasks[0].1.clone())
}

/// The task, once completed (with its state and log in the failure message otherwise).
fn completed(env: &Env, task: &Task) -> Task {
    let task = env.settled(task.id);
    assert_eq!(
        task.state,
        TaskState::Completed,
        "{}",
        env.describe(&task, "not completed")
    );
    assert_eq!(task.attempts.len(), 2, "{:#?}", task.attempts);
    task
}

/// Every live memory entry.
fn memories(env: &Env) -> Vec<Memory> {
    env.service
        .list_memories(&MemoryFilter::default(), &MemoryPage::default())
        .unwrap()
        .memories
}

/// The runs `lesson.sh` made for `task`, one line each.
fn runs(env: &Env, task: &Task) -> Vec<String> {
    let file: PathBuf = env
        .dir
        .path()
        .join("work")
        .join(task.id.to_string())
        .join("runs.txt");
    std::fs::read_to_string(&file)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn a_success_after_a_failure_is_asked_for_its_lesson_and_memory_keeps_it() {
    let env = Env::new();
    let (orchestration, task) = orchestration_task(&env, "answer", true);
    let task = completed(&env, &task);
    assert_eq!(
        runs(&env, &task),
        [
            "attempt 1 lesson=0",
            "attempt 2 lesson=0",
            "attempt 2 lesson=1"
        ]
    );
    // Stored by the time the task completes is not promised (it follows the completion): wait.
    let deadline = Instant::now() + Duration::from_secs(5);
    let all = loop {
        let all = memories(&env);
        if !all.is_empty() || Instant::now() > deadline {
            break all;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(all.len(), 1, "{all:#?}");
    let m = &all[0];
    assert_eq!(m.tier, MemoryTier::Routine);
    assert_eq!(m.scope, MemoryScope::Orchestration(orchestration));
    assert_eq!(m.tags.to_string(), "lesson");
    assert_eq!(
        m.provenance,
        Provenance::Attempt {
            task: task.id,
            attempt: 2
        }
    );
    // The agent got the question, with the account of attempt 1's failure.
    assert!(
        m.text
            .as_str()
            .starts_with("Check the input before the first run."),
        "{}",
        m.text
    );
    assert!(
        m.text
            .as_str()
            .contains("exited with status 1: giving up on attempt 1"),
        "{}",
        m.text
    );
    // Its event is in the log, like every change.
    let events = env.service.read_events(0, 10_000).unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.event.aggregate_kind() == AggregateKind::Memory),
        "no memory event"
    );
    let log = env.log_text(task.id, 2);
    assert!(
        log.contains("asking the agent for a lesson"),
        "the log says what happened:\n{log}"
    );
    assert!(log.contains("the agent answered with a lesson"), "{log}");
    // The attempt's summary is its work's, not the lesson.
    assert_eq!(
        task.attempts[1].summary.as_deref(),
        Some("done on attempt 2")
    );
}

#[test]
fn with_the_setting_off_nobody_is_asked() {
    let env = Env::new();
    let (_, task) = orchestration_task(&env, "answer", false);
    let task = completed(&env, &task);
    assert_eq!(
        runs(&env, &task),
        ["attempt 1 lesson=0", "attempt 2 lesson=0"]
    );
    assert!(memories(&env).is_empty());
    assert!(!env.log_text(task.id, 2).contains("lesson"));
}

#[test]
fn a_task_with_nowhere_to_keep_a_lesson_is_not_asked() {
    let env = Env::new();
    env.register(command_agent(
        "scripted",
        &format!("{} answer", script("lesson.sh")),
        &[],
    ));
    // Outside an orchestration and a repository, a lesson would have no scope: not asked.
    let task = env.task("standalone", |t| {
        t.max_attempts = MaxAttempts::new(3).unwrap();
        t.lessons = true;
    });
    let task = completed(&env, &task);
    assert_eq!(
        runs(&env, &task),
        ["attempt 1 lesson=0", "attempt 2 lesson=0"]
    );
    assert!(memories(&env).is_empty());
}

#[test]
fn a_lesson_step_that_fails_leaves_the_task_completed_and_memory_empty() {
    let env = Env::new();
    let (_, task) = orchestration_task(&env, "fail", true);
    let task = completed(&env, &task);
    assert_eq!(runs(&env, &task).len(), 3);
    std::thread::sleep(Duration::from_millis(200));
    assert!(memories(&env).is_empty());
    let log = env.log_text(task.id, 2);
    assert!(
        log.contains("no lesson: it exited with status 3"),
        "the log says why:\n{log}"
    );
}

#[test]
fn a_lesson_step_that_never_answers_is_killed_at_its_timeout_and_the_task_completes() {
    let env = Env::with(|c| c.lesson_timeout = Duration::from_millis(500));
    let started = Instant::now();
    let (_, task) = orchestration_task(&env, "hang", true);
    let task = completed(&env, &task);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the lesson held the task back for {:?}",
        started.elapsed()
    );
    std::thread::sleep(Duration::from_millis(200));
    assert!(memories(&env).is_empty());
    let log = env.log_text(task.id, 2);
    assert!(
        log.contains("no lesson: the agent did not answer within"),
        "{log}"
    );
    let pid: u32 = log
        .lines()
        .find_map(|l| l.strip_prefix("lesson pid ")?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no pid in the log:\n{log}"));
    assert!(process_gone(pid), "the lesson's process {pid} outlived it");
}

#[test]
fn claude_code_is_asked_in_its_resumed_session_and_no_tool_runs() {
    use maos_domain::policy::permission::{PermissionRule, PermissionRules};
    use maos_domain::{AdapterKind, EnvName};

    use crate::supervisor::support::{agent, env_with};

    let answers_dir = tempfile::tempdir().unwrap();
    let answers = answers_dir.path().join("answers.jsonl");
    let env = Env::with(|c| {
        c.env = env_with(&[("MAOS_TEST_ANSWERS", answers.to_str().unwrap())]);
    });
    let mut claude = agent(
        "claude",
        AdapterKind::ClaudeCode,
        Some(&script("claude-lesson.sh")),
        &[],
    );
    claude.settings.env = vec![EnvName::parse("MAOS_TEST_ANSWERS").unwrap()];
    // Whatever the agent may do at work, a lesson step runs no tool and asks MAOS about each.
    claude.settings.skip_permissions = true;
    claude.settings.permissions = PermissionRules {
        allow: vec![PermissionRule::parse("Write").unwrap()],
        ..PermissionRules::default()
    };
    env.register(claude);
    let mut task = CreateTask::titled(Title::parse("Fix the parser").unwrap());
    task.max_attempts = MaxAttempts::new(3).unwrap();
    task.lessons = true;
    let made = env
        .service
        .create_plan(CreatePlan {
            orchestration: CreateOrchestration {
                name: Title::parse("lessons").unwrap(),
                goal: None,
                workspace: None,
                verify: None,
                notes: Vec::new(),
            },
            tasks: vec![PlanTask {
                key: "fix".to_owned(),
                task,
                depends_on: Vec::new(),
            }],
            start: true,
        })
        .unwrap();
    let task = completed(&env, &made.tasks[0].1);
    assert_eq!(
        task.attempts[1].summary.as_deref(),
        Some("Fixed the parser.")
    );
    assert_eq!(
        task.attempts[1].usage.cost,
        maos_domain::Usd::from_micros(12_000),
        "the lesson's cost counts in the attempt's"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    let all = loop {
        let all = memories(&env);
        if !all.is_empty() || Instant::now() > deadline {
            break all;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(all.len(), 1, "{}", env.log_text(task.id, 2));
    assert_eq!(
        all[0].text.as_str(),
        "Attempt 1 crashed because the parser was run on an empty input; check for empty input \
         first."
    );
    let answers = std::fs::read_to_string(&answers).unwrap();
    assert_eq!(answers.lines().count(), 1, "{answers}");
    assert!(answers.contains(r#""behavior":"deny""#), "{answers}");
}

#[test]
fn codex_is_asked_in_its_resumed_thread_and_only_the_new_turn_counts() {
    use maos_domain::AdapterKind;

    use crate::supervisor::support::agent;

    let env = Env::new();
    env.register(agent(
        "codex",
        AdapterKind::Codex,
        Some(&script("codex-lesson.sh")),
        &[],
    ));
    let mut task = CreateTask::titled(Title::parse("Accept suffixes").unwrap());
    task.max_attempts = MaxAttempts::new(3).unwrap();
    task.lessons = true;
    let made = env
        .service
        .create_plan(CreatePlan {
            orchestration: CreateOrchestration {
                name: Title::parse("lessons").unwrap(),
                goal: None,
                workspace: None,
                verify: None,
                notes: Vec::new(),
            },
            tasks: vec![PlanTask {
                key: "t".to_owned(),
                task,
                depends_on: Vec::new(),
            }],
            start: true,
        })
        .unwrap();
    let task = completed(&env, &made.tasks[0].1);
    let usage = task.attempts[1].usage;
    // The work's turn (48,211 in, 1,873 out) and the lesson's (the thread's total minus that).
    assert_eq!(
        (
            usage.input_tokens,
            usage.cached_input_tokens,
            usage.output_tokens
        ),
        (50_211, 41_984, 1_923)
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    let all = loop {
        let all = memories(&env);
        if !all.is_empty() || Instant::now() > deadline {
            break all;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(all.len(), 1, "{}", env.log_text(task.id, 2));
    assert_eq!(
        all[0].text.as_str(),
        "Attempt 1 failed because the suffix table was missing; add the table before the parser."
    );
}
