//! The keys of a plan file, as one table of descriptors: which table of the file each belongs
//! to, the shape of its value, whether it must be given, what it means, and who may give it.
//! The checker's unknown-key check (`plan_file`) and the JSON Schema given to planners
//! (`schema`) both read this table, so that the two cannot drift apart.

use Table::{Defaults, Task, Top};

/// The table of a plan file a key belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    /// The top of the file.
    Top,
    /// `[defaults]` (`"defaults": {…}` in JSON).
    Defaults,
    /// A task (`[[task]]`, an object of `"tasks"` in JSON).
    Task,
}

/// The shape of a key's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// A string.
    Text,
    /// A list of strings.
    Texts,
    /// A task's key in the plan: lowercase letters, digits, `-` and `_`.
    PlanKey,
    /// A list of task keys.
    PlanKeys,
    /// `true` or `false`.
    Flag,
    /// A whole number from `min` to `max`.
    Whole { min: u32, max: u32 },
    /// One of these words.
    Keyword(&'static [&'static str]),
    /// One of these words, or its rank (its index in the list).
    KeywordOrRank(&'static [&'static str]),
    /// Dollars: a number, or a string such as `"0.50"` or `"$2"`.
    Dollars,
    /// A duration with its unit, as a string: `"500ms"`, `"30s"`, `"10m"`, `"1h30m"`.
    Duration,
    /// The table of `[defaults]`.
    Defaults,
    /// The list of tasks.
    Tasks,
}

/// Whether a key must be given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    Required,
    Optional,
    /// Exactly one of the keys of this group (the list of tasks is `task` or `tasks`).
    OneOf(&'static str),
}

/// One key of a plan file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key {
    pub table: Table,
    pub name: &'static str,
    pub shape: Shape,
    pub need: Need,
    /// What it means, in one line.
    pub about: &'static str,
    /// A valid value, as JSON (`""` for the tables, whose keys have their own).
    pub example: &'static str,
    /// `Some(what it chooses)` for a key a person may give and a planner may not.
    pub person_only: Option<&'static str>,
}

/// The risks, from the least to the most.
pub const RISKS: &[&str] = &["low", "medium", "high"];
/// The tiers, and `any`.
pub const TIERS: &[&str] = &["tactical", "strategic", "any"];
/// The priorities, by rank (0 to 3).
pub const PRIORITIES: &[&str] = &["low", "normal", "high", "urgent"];

const fn key(table: Table, name: &'static str, shape: Shape, about: &'static str) -> Key {
    Key {
        table,
        name,
        shape,
        need: Need::Optional,
        about,
        example: "",
        person_only: None,
    }
}

impl Key {
    const fn required(mut self) -> Key {
        self.need = Need::Required;
        self
    }

    const fn one_of(mut self, group: &'static str) -> Key {
        self.need = Need::OneOf(group);
        self
    }

    const fn example(mut self, example: &'static str) -> Key {
        self.example = example;
        self
    }

    const fn person_only(mut self, chooses: &'static str) -> Key {
        self.person_only = Some(chooses);
        self
    }

    /// Whether a planner may give it.
    pub fn for_planners(&self) -> bool {
        self.person_only.is_none()
    }
}

// The settings that `[defaults]` and a task can both give.

const fn risk(table: Table) -> Key {
    key(
        table,
        "risk",
        Shape::Keyword(RISKS),
        "How much harm a mistake in the task could do: low (the default) completes once \
         verified, medium waits for a person's review, high also for a person's approval \
         before it runs.",
    )
    .example("\"medium\"")
}

const fn verify(table: Table) -> Key {
    key(
        table,
        "verify",
        Shape::Text,
        "A shell command that checks the task's work in its worktree; \"\" turns the default \
         off.",
    )
    .example("\"cargo test\"")
}

const fn tier(table: Table) -> Key {
    key(
        table,
        "tier",
        Shape::Keyword(TIERS),
        "Which agents may take the task: tactical, strategic, or any (the default).",
    )
    .example("\"tactical\"")
}

const fn max_attempts(table: Table) -> Key {
    key(
        table,
        "max_attempts",
        Shape::Whole { min: 1, max: 100 },
        "How many attempts the task gets before it needs a person (default 3).",
    )
    .example("3")
}

const fn budget_usd(table: Table) -> Key {
    key(
        table,
        "budget_usd",
        Shape::Dollars,
        "The most the task may cost, in US dollars, with up to six decimals.",
    )
    .example("\"0.50\"")
}

const fn timeout(table: Table) -> Key {
    key(
        table,
        "timeout",
        Shape::Duration,
        "How long one attempt may run: numbers with units (ms, s, m, h, d), such as \"10m\" or \
         \"1h30m\".",
    )
    .example("\"10m\"")
}

const fn priority(table: Table) -> Key {
    key(
        table,
        "priority",
        Shape::KeywordOrRank(PRIORITIES),
        "Which ready task goes first: low, normal (the default), high or urgent, or their ranks \
         0 to 3.",
    )
    .example("\"high\"")
}

/// Every key of a plan file, by table, in the order of the file format (the order in which
/// the checker lists the keys allowed in a table).
pub const KEYS: &[Key] = &[
    key(
        Top,
        "goal",
        Shape::Text,
        "What the plan achieves, in a sentence or a paragraph.",
    )
    .required()
    .example("\"Add a greeting module and its tests\""),
    key(
        Top,
        "name",
        Shape::Text,
        "A short name, one line (default: the goal, cut to 60 characters).",
    )
    .example("\"greeting\""),
    key(
        Top,
        "repo",
        Shape::Text,
        "The repository, relative to the plan file's directory.",
    )
    .example("\".\"")
    .person_only("the repository"),
    key(Top, "base", Shape::Text, "The branch the tasks start from.")
        .example("\"main\"")
        .person_only("the branch the tasks start from"),
    key(
        Top,
        "notes",
        Shape::Texts,
        "Notes pinned to every task's briefing.",
    )
    .example("[\"Keep functions small.\"]"),
    key(
        Top,
        "verify",
        Shape::Text,
        "The verification command of every task that names none (and has no default): a shell command run in the task's worktree.",
    )
    .example("\"make test\""),
    key(
        Top,
        "defaults",
        Shape::Defaults,
        "What every task gets unless it says otherwise.",
    ),
    key(
        Top,
        "task",
        Shape::Tasks,
        "The tasks, under the name of TOML's [[task]]: give `task` or `tasks`, not both.",
    )
    .one_of("tasks"),
    key(
        Top,
        "tasks",
        Shape::Tasks,
        "The tasks that carry out the goal, each with an id and a title: give `tasks` or \
         `task`, not both.",
    )
    .one_of("tasks"),
    risk(Defaults),
    verify(Defaults),
    max_attempts(Defaults),
    budget_usd(Defaults),
    tier(Defaults),
    timeout(Defaults),
    priority(Defaults),
    key(
        Task,
        "id",
        Shape::PlanKey,
        "The task's key in the plan, unique: lowercase letters, digits, '-' and '_', starting \
         with a letter or a digit, at most 64 characters; other tasks name it in depends_on.",
    )
    .required()
    .example("\"write-tests\""),
    key(
        Task,
        "title",
        Shape::Text,
        "A few words saying what the task does, one line.",
    )
    .required()
    .example("\"Write greet()\""),
    key(
        Task,
        "prompt",
        Shape::Text,
        "What the agent is told to do, in full.",
    )
    .example("\"Add src/greet.rs with greet(name), and export it.\""),
    key(
        Task,
        "capabilities",
        Shape::Texts,
        "What an agent needs to take the task, from the capabilities the registered agents \
         offer (none: the routing rules decide).",
    )
    .example("[\"code\"]"),
    key(
        Task,
        "depends_on",
        Shape::PlanKeys,
        "The ids of the tasks of this plan that must be done before this one starts.",
    )
    .example("[\"design\"]"),
    key(
        Task,
        "concerns",
        Shape::Texts,
        "What the task will touch, as path globs (\"src/api/**\") or named resources \
         (\"port:8080\"): tasks with overlapping concerns never run at the same time.",
    )
    .example("[\"src/greet.rs\"]"),
    risk(Task),
    verify(Task),
    tier(Task),
    max_attempts(Task),
    budget_usd(Task),
    timeout(Task),
    priority(Task),
    key(
        Task,
        "port",
        Shape::Flag,
        "The task needs a TCP port of its own (default false).",
    )
    .example("true"),
];

/// The keys of `table`, in order.
pub fn keys(table: Table) -> impl Iterator<Item = &'static Key> {
    KEYS.iter().filter(move |k| k.table == table)
}

/// The names of the keys of `table`, in order; without those a person only may give when
/// `planner`.
pub fn names(table: Table, planner: bool) -> Vec<&'static str> {
    keys(table)
        .filter(|k| !planner || k.for_planners())
        .map(|k| k.name)
        .collect()
}

/// The key `name` of `table`.
pub fn find(table: Table, name: &str) -> Option<&'static Key> {
    keys(table).find(|k| k.name == name)
}

#[cfg(test)]
mod tests {
    use maos_domain::{Priority, Risk, Tier};

    use super::*;

    #[test]
    fn every_table_lists_its_keys_once_in_the_order_of_the_format() {
        assert_eq!(KEYS.len(), 9 + 7 + 14);
        assert_eq!(
            names(Table::Top, false),
            [
                "goal", "name", "repo", "base", "notes", "verify", "defaults", "task", "tasks"
            ]
        );
        assert_eq!(
            names(Table::Top, true),
            [
                "goal", "name", "notes", "verify", "defaults", "task", "tasks"
            ]
        );
        assert_eq!(
            names(Table::Defaults, false),
            [
                "risk",
                "verify",
                "max_attempts",
                "budget_usd",
                "tier",
                "timeout",
                "priority"
            ]
        );
        assert_eq!(
            names(Table::Task, false),
            [
                "id",
                "title",
                "prompt",
                "capabilities",
                "depends_on",
                "concerns",
                "risk",
                "verify",
                "tier",
                "max_attempts",
                "budget_usd",
                "timeout",
                "priority",
                "port"
            ]
        );
        assert_eq!(names(Table::Task, true), names(Table::Task, false));
    }

    #[test]
    fn the_words_of_the_keywords_are_the_domains() {
        let risks: Vec<&str> = Risk::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(risks, RISKS);
        let mut tiers: Vec<&str> = Tier::ALL.iter().map(|t| t.as_str()).collect();
        tiers.push("any");
        assert_eq!(tiers, TIERS);
        for (rank, word) in PRIORITIES.iter().enumerate() {
            let rank = u8::try_from(rank).unwrap();
            assert_eq!(
                Priority::from_rank(rank),
                Some(Priority::parse(word).unwrap())
            );
        }
        assert_eq!(Priority::ALL.len(), PRIORITIES.len());
    }
}
