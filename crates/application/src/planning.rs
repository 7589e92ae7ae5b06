//! The planning engine's words to a planner, and its referee: the brief a planning task's prompt
//! carries (the goal and notes, the repository, the agents, the plan format and the rules), the
//! check of a planner's answer (the plan file checker through [`PlanReader`], then the domain's
//! rules), and the problems sent back to the planner for its next round.

use std::fmt::Write as _;

use maos_domain::plan::{PlanRuleBroken, plan_in_answer};
use maos_domain::{Agent, CapabilitySet, Plan};

use crate::ports::PlanReader;
use crate::workspace::{CommandPurpose, RepoSummary};

/// The prompt of a discussion before planning: the goal, the person's notes, the repository,
/// and how to end it (the agreed goal in a fenced `goal` block).
pub(crate) fn discussion_brief(goal: &str, notes: &[String], repo: Option<&RepoSummary>) -> String {
    let mut s = String::with_capacity(4 * 1024);
    let first_line = goal.lines().next().unwrap_or_default();
    let _ = writeln!(s, "# Discuss: {first_line}\n");
    s.push_str(
        "You will plan this goal, but first talk it over with the person who wants it: ask what \
         you need to know to plan it well (what done looks like, limits, what must not \
         change), a few questions at a time. Do not plan yet, and change no file. Each answer \
         of yours goes to the person; their reply comes back to you.\n\n\
         When you both agree, answer with the agreed goal as one fenced block marked `goal`: \
         its first line the goal in one sentence, then one line per thing the plan must \
         respect, for example:\n\n```goal\nAdd rate limiting to the public API\n- per API \
         key, 100 requests a minute\n- keep the existing tests green\n```\n\n",
    );
    let _ = writeln!(s, "## Goal\n\n{}\n", goal.trim());
    if !notes.is_empty() {
        s.push_str("## Notes from the person\n\n");
        for n in notes {
            let _ = writeln!(s, "- {}", n.trim());
        }
        s.push('\n');
    }
    if let Some(r) = repo {
        repository(&mut s, r);
    }
    s
}

/// What a brief is made of.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BriefInput<'a> {
    pub(crate) goal: &'a str,
    pub(crate) notes: &'a [String],
    pub(crate) repo: Option<&'a RepoSummary>,
    pub(crate) agents: &'a [Agent],
    pub(crate) max_tasks: u32,
    pub(crate) schema: &'a str,
    pub(crate) example: &'a str,
    /// The newest version (its number and plan file text), when a person asked for another.
    pub(crate) current: Option<(u32, &'a str)>,
    /// What the person said when they asked for another version.
    pub(crate) feedback: Option<&'a str>,
    /// A revision of the plan at work: its version, its plan file text, and where each of its
    /// tasks stands ([`task_progress`] lines).
    pub(crate) revision: Option<(u32, &'a str, &'a str)>,
}

/// The brief: the whole prompt of a planning task.
pub(crate) fn brief(b: &BriefInput<'_>) -> String {
    let mut s = String::with_capacity(8 * 1024);
    let first_line = b.goal.lines().next().unwrap_or_default();
    let _ = writeln!(s, "# Plan: {first_line}\n");
    s.push_str(
        "You are the planner. Turn the goal below into a plan of tasks that coding agents will \
         carry out, each in its own git worktree of the repository: what each task does, which \
         tasks build on which, the capabilities each needs, what each will touch, its risk and \
         how to verify it. Do not do the work yourself, and change no file: answer with the \
         plan.\n\n",
    );
    let _ = writeln!(s, "## Goal\n\n{}\n", b.goal.trim());
    if !b.notes.is_empty() {
        s.push_str("## Notes from the person\n\n");
        for n in b.notes {
            let _ = writeln!(s, "- {}", n.trim());
        }
        s.push('\n');
    }
    if let Some(r) = b.repo {
        repository(&mut s, r);
    }
    agents(&mut s, b.agents);
    rules(&mut s, b);
    if let Some((version, text)) = b.current {
        let _ = writeln!(
            s,
            "## The current plan (version {version})\n\n\
             The person asked for a new version of this plan:\n\n```json\n{}\n```\n\n\
             Answer with the whole new plan, not only what changes.\n",
            text.trim_end(),
        );
    }
    if let Some((version, text, progress)) = b.revision {
        let _ = writeln!(
            s,
            "## The plan at work (version {version}) and where it stands\n\n\
             This plan is being carried out; revise the work that is not done yet. Answer with \
             the whole revised plan: keep every completed task exactly as it is (same id and \
             fields: it cannot change), keep the tasks that should go on as they are, and add, \
             replace (change a task: it starts over) or leave out the others (left out: \
             cancelled). A task may depend on completed tasks.\n\n```json\n{}\n```\n\n\
             Its tasks now:\n\n{}",
            text.trim_end(),
            progress
        );
    }
    if let Some(feedback) = b.feedback {
        let _ = writeln!(s, "## The person's feedback\n\n{}\n", feedback.trim());
    }
    let _ = write!(
        s,
        "## Your answer\n\n\
         First say in a few sentences why the plan is shaped as it is (the person who approves \
         it reads this). Then give the plan as one fenced block, ```json … ```, in this format \
         (a JSON Schema):\n\n```json\n{}\n```\n\nA short example:\n\n```json\n{}\n```\n",
        b.schema.trim_end(),
        b.example.trim_end()
    );
    s
}

fn repository(s: &mut String, r: &RepoSummary) {
    s.push_str("## The repository\n\n");
    if !r.languages.is_empty() {
        let langs: Vec<String> = r
            .languages
            .iter()
            .map(|(l, n)| format!("{l} ({n} files)"))
            .collect();
        let _ = writeln!(s, "Languages: {}.", langs.join(", "));
    }
    for purpose in [CommandPurpose::Build, CommandPurpose::Test] {
        let found: Vec<String> = r
            .commands
            .iter()
            .filter(|c| c.purpose == purpose)
            .map(|c| format!("`{}` (from {})", c.command, c.source))
            .collect();
        if !found.is_empty() {
            let what = match purpose {
                CommandPurpose::Build => "Build",
                CommandPurpose::Test => "Test",
            };
            let _ = writeln!(s, "{what}: {}.", found.join(", "));
        }
    }
    if !r.tree.is_empty() {
        s.push_str("\nFiles:\n\n```\n");
        for p in &r.tree {
            let _ = writeln!(s, "{p}");
        }
        if r.tree_cut > 0 {
            let _ = writeln!(s, "… and {} more", r.tree_cut);
        }
        s.push_str("```\n");
    }
    if let Some((name, text)) = &r.readme {
        let _ = writeln!(s, "\nThe start of {name}:\n\n```\n{}\n```", text.trim_end());
    }
    if !r.recent_commits.is_empty() {
        s.push_str("\nRecent commits:\n\n");
        for c in &r.recent_commits {
            let _ = writeln!(s, "- {c}");
        }
    }
    s.push('\n');
}

fn agents(s: &mut String, agents: &[Agent]) {
    s.push_str("## The agents that will do the work\n\n");
    if agents.is_empty() {
        s.push_str("None is registered yet.\n\n");
        return;
    }
    let mut offered = CapabilitySet::empty();
    for a in agents {
        let caps: Vec<&str> = a.capabilities.iter().map(|c| c.as_str()).collect();
        let _ = writeln!(
            s,
            "- {} ({} tier, {} slot{}): {}",
            a.name,
            a.tier,
            a.slots.get(),
            if a.slots.get() == 1 { "" } else { "s" },
            if caps.is_empty() {
                "no capabilities".to_owned()
            } else {
                caps.join(", ")
            }
        );
        offered = offered.union(&a.capabilities);
    }
    let all: Vec<&str> = offered.iter().map(|c| c.as_str()).collect();
    let _ = writeln!(
        s,
        "\nA task may only require capabilities from this list: {}.\n",
        if all.is_empty() {
            "(none: leave `capabilities` out)".to_owned()
        } else {
            all.join(", ")
        }
    );
}

fn rules(s: &mut String, b: &BriefInput<'_>) {
    let tests: Vec<&str> = b
        .repo
        .map(|r| {
            r.commands
                .iter()
                .filter(|c| c.purpose == CommandPurpose::Test)
                .map(|c| c.command.as_str())
                .collect()
        })
        .unwrap_or_default();
    let _ = write!(
        s,
        "## Rules\n\n\
         - At most {max} tasks. Each has a short `id` (lowercase letters, digits, `-` and `_`), \
         a one-line `title`, and a `prompt` that tells an agent exactly what to do: the agent \
         sees only its own task's prompt, the goal, and what the tasks it depends on reported.\n\
         - `depends_on` lists the ids of the tasks whose work a task builds on (their work is \
         merged before it starts). No cycles.\n\
         - `concerns` lists the paths (globs such as `src/api/**`) and resources (such as \
         `port:8080` or `db:main`) a task will change. Tasks whose concerns overlap never run at \
         the same time: name what each task really touches, not the whole repository, or the \
         plan runs one task at a time (a plan whose concerns hold every task back is refused).\n\
         - `risk`: `low` (routine and easy to undo), `medium`, or `high` (a person approves it \
         before it runs: migrations, deleting data, security, anything hard to undo).\n\
         - `verify` is a command, run in the task's worktree after the agent finishes, that \
         exits 0 when the work is right. Every task needs one where the repository has a way \
         to test{tests}.\n\
         - Prefer small tasks that can be verified on their own, and independent tasks where \
         the work allows, so that agents work in parallel.\n\n",
        max = b.max_tasks,
        tests = if tests.is_empty() {
            String::new()
        } else {
            format!(" (it has: `{}`)", tests.join("`, `"))
        },
    );
}

/// What the referee made of a planner's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// A plan that passed every check, with the planner's reasons.
    Plan {
        plan: Box<Plan>,
        rationale: Option<String>,
    },
    /// No plan, or one with problems: the plan's text when one was found, and every problem.
    Problems {
        text: Option<String>,
        problems: Vec<String>,
    },
}

/// The most of a planner's rationale kept with a version.
const RATIONALE_MAX: usize = 8 * 1024;

/// Checks a planner's answer: the plan in it, read by the plan file checker, then the domain's
/// rules for plans.
pub(crate) fn referee(
    reader: &dyn PlanReader,
    answer: &str,
    offered: &CapabilitySet,
    max_tasks: u32,
) -> Verdict {
    let Some(found) = plan_in_answer(answer) else {
        return Verdict::Problems {
            text: None,
            problems: vec![
                "the answer has no plan: give the plan as one fenced block, ```json … ```, in \
                 the format of the schema"
                    .to_owned(),
            ],
        };
    };
    let text = Some(found.text.to_owned());
    let plan = match reader.read(found.text, offered) {
        Ok(plan) => plan,
        Err(problems) => {
            return Verdict::Problems {
                text,
                problems: problems.iter().map(ToString::to_string).collect(),
            };
        }
    };
    let broken = plan.broken_rules(usize::try_from(max_tasks).unwrap_or(usize::MAX));
    if !broken.is_empty() {
        return Verdict::Problems {
            text,
            problems: broken.iter().map(rule_text).collect(),
        };
    }
    let rationale = found.rationale.trim();
    Verdict::Plan {
        plan: Box::new(plan),
        rationale: (!rationale.is_empty()).then(|| cut(rationale, RATIONALE_MAX)),
    }
}

/// A broken rule, in words a planner can act on.
pub(crate) fn rule_text(r: &PlanRuleBroken) -> String {
    match r {
        PlanRuleBroken::TooManyTasks { count, max } => format!(
            "the plan has {count} tasks; at most {max} are allowed: merge small tasks, or leave \
             later work out of this plan"
        ),
        PlanRuleBroken::ConcernsSerialiseEverything { example } => format!(
            "the concerns hold every task back: every two tasks that could run at the same time \
             share a concern (such as {example:?}), so they would run one at a time; name only \
             the paths and resources each task really changes"
        ),
    }
}

/// One line (or a few) for the revision brief: where the task of key `key` stands, with what
/// it changed when it completed and why its attempts failed (the last three, their outputs
/// cut) when it is `blocked` (`focus`: the task whose blocking asked for the revision).
pub(crate) fn task_progress(
    key: &maos_domain::PlanKey,
    t: &maos_domain::Task,
    focus: bool,
) -> String {
    use maos_domain::TaskState;
    let mut s = format!("- `{key}` ({}): {}", t.spec.title, t.state);
    if t.state == TaskState::Completed
        && let Some(stat) = t.attempts.iter().rev().find_map(|a| a.diff_stat.as_deref())
    {
        let _ = write!(s, "; it changed {stat}");
    }
    if focus {
        s.push_str(" — this task's failures asked for the revision");
    }
    s.push('\n');
    if matches!(
        t.state,
        TaskState::Blocked | TaskState::Failed | TaskState::Retrying
    ) {
        for a in t
            .attempts
            .iter()
            .rev()
            .take(3)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
        {
            let mut why = a.error.clone().unwrap_or_default();
            if let Some(v) = a.verification.as_ref().filter(|v| !v.passed) {
                why = format!("its verification failed: {}", cut(v.output.trim(), 1_500));
            }
            if !why.is_empty() {
                let _ = writeln!(
                    s,
                    "  - attempt {} on {}: {}",
                    a.number,
                    a.agent,
                    cut(&why, 2_000)
                );
            }
        }
    }
    s
}

/// A revision's problem, in words a planner can act on.
pub(crate) fn revision_problem_text(p: &maos_domain::RevisionProblem) -> String {
    match p {
        maos_domain::RevisionProblem::CompletedDropped { key } => format!(
            "task `{key}` completed: keep it in the plan exactly as it is (it cannot be undone)"
        ),
        maos_domain::RevisionProblem::CompletedChanged { key } => format!(
            "task `{key}` completed: it cannot change; give it exactly as in the plan at work, \
             and add a new task for more work"
        ),
    }
}

/// What the planner is told for its next round: the problems of its last answer.
pub(crate) fn for_next_round(problems: &[String]) -> String {
    let n = problems.len();
    let mut s = format!(
        "The plan was not accepted: {n} problem{} (line:column in the plan's text).\n",
        if n == 1 { "" } else { "s" }
    );
    for p in problems {
        let _ = writeln!(s, "- {p}");
    }
    s.push_str("Answer again with the whole corrected plan, as one fenced ```json block.");
    s
}

/// `text` cut to at most `max` bytes on a character boundary, marked when cut.
fn cut(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
mod tests {
    use maos_domain::{PlanKey, PlannedTask, Title};

    use super::*;
    use crate::ports::PlanProblem;

    /// A reader of a tiny format for these tests: `tasks: a b c` (one task per word).
    #[derive(Debug)]
    struct Words;

    impl PlanReader for Words {
        fn read(&self, text: &str, _: &CapabilitySet) -> Result<Plan, Vec<PlanProblem>> {
            let Some(words) = text.trim().strip_prefix("tasks:") else {
                return Err(vec![PlanProblem {
                    line: 1,
                    column: 1,
                    message: "expected `tasks:`".into(),
                }]);
            };
            let mut tasks = Vec::new();
            for w in words.split_whitespace() {
                let key = PlanKey::parse(w).map_err(|e| {
                    vec![PlanProblem {
                        line: 1,
                        column: 8,
                        message: e.to_string(),
                    }]
                })?;
                tasks.push(PlannedTask {
                    key,
                    title: Title::parse(w).map_err(|_| Vec::new())?,
                    prompt: String::new(),
                    capabilities: CapabilitySet::empty(),
                    depends_on: Vec::new(),
                    concerns: Vec::new(),
                    risk: Default::default(),
                    verify: None,
                    tier: None,
                    max_attempts: Default::default(),
                    budget: None,
                    timeout: None,
                    priority: Default::default(),
                    wants_port: false,
                });
            }
            Ok(Plan {
                goal: "g".into(),
                name: None,
                notes: Vec::new(),
                verify: None,
                tasks,
            })
        }
        fn write(&self, _: &Plan) -> String {
            String::new()
        }
        fn schema(&self) -> String {
            "{}".into()
        }
        fn example(&self) -> String {
            "tasks: a".into()
        }
    }

    #[test]
    fn an_answer_without_a_plan_says_how_to_give_one() {
        let v = referee(
            &Words,
            "I think we should refactor.",
            &CapabilitySet::empty(),
            5,
        );
        let Verdict::Problems { text, problems } = v else {
            panic!("{v:?}")
        };
        assert_eq!(text, None);
        assert!(problems[0].contains("fenced block"), "{problems:?}");
    }

    #[test]
    fn the_checkers_problems_and_the_rules_are_sent_back() {
        let v = referee(&Words, "```\nplan: a\n```", &CapabilitySet::empty(), 5);
        assert_eq!(
            v,
            Verdict::Problems {
                text: Some("plan: a\n".into()),
                problems: vec!["1:1: expected `tasks:`".into()],
            }
        );
        let v = referee(
            &Words,
            "```json\ntasks: a b c\n```",
            &CapabilitySet::empty(),
            2,
        );
        let Verdict::Problems { problems, .. } = v else {
            panic!("{v:?}")
        };
        assert!(problems[0].contains("3 tasks; at most 2"), "{problems:?}");
        let next = for_next_round(&problems);
        assert!(next.contains("1 problem "), "{next}");
        assert!(next.contains("- the plan has 3 tasks"), "{next}");
    }

    #[test]
    fn a_good_answer_gives_the_plan_and_the_reasons_around_it() {
        let v = referee(
            &Words,
            "Two small steps.\n```json\ntasks: a b\n```\n",
            &CapabilitySet::empty(),
            5,
        );
        let Verdict::Plan { plan, rationale } = v else {
            panic!("{v:?}")
        };
        assert_eq!(plan.tasks.len(), 2);
        assert_eq!(rationale.as_deref(), Some("Two small steps."));
    }

    #[test]
    fn the_brief_holds_the_goal_the_agents_the_rules_and_the_format() {
        let b = brief(&BriefInput {
            goal: "Add rate limiting\nto the API",
            notes: &["Use tower.".to_owned()],
            repo: Some(&RepoSummary {
                tree: vec!["src/".into(), "Cargo.toml".into()],
                tree_cut: 3,
                readme: Some(("README.md".into(), "# api".into())),
                languages: vec![("Rust".into(), 12)],
                commands: vec![crate::workspace::DetectedCommand {
                    purpose: CommandPurpose::Test,
                    command: "cargo test".into(),
                    source: "Cargo.toml".into(),
                }],
                recent_commits: vec!["abc1234 Start".into()],
            }),
            agents: &[],
            max_tasks: 7,
            schema: "{\"type\": \"object\"}",
            example: "{\"goal\": \"x\"}",
            current: Some((2, "{\"goal\": \"old\"}")),
            feedback: Some("Split the middleware task."),
            revision: None,
        });
        for part in [
            "# Plan: Add rate limiting\n",
            "## Goal\n\nAdd rate limiting\nto the API\n",
            "- Use tower.",
            "Languages: Rust (12 files).",
            "Test: `cargo test` (from Cargo.toml).",
            "… and 3 more",
            "The start of README.md",
            "- abc1234 Start",
            "None is registered yet.",
            "At most 7 tasks",
            "(it has: `cargo test`)",
            "version 2",
            "Split the middleware task.",
            "{\"type\": \"object\"}",
            "{\"goal\": \"x\"}",
        ] {
            assert!(b.contains(part), "{part:?} missing from:\n{b}");
        }
    }

    #[test]
    fn long_rationales_are_cut_on_a_character_boundary() {
        let long = "é".repeat(RATIONALE_MAX);
        let c = cut(&long, RATIONALE_MAX);
        assert!(c.len() <= RATIONALE_MAX + "…".len());
        assert!(c.ends_with('…'));
    }
}
