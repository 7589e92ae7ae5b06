//! Property: briefings. The title and prompt always open the text verbatim; nothing is cut when
//! the whole fits, and then the text is the unpruned one; something is cut exactly when the text
//! differs from the unpruned one, and the cuts are listed at the end; when the title and prompt
//! fit, the briefing stays within the budget plus the newest failure's kind and
//! `MAX_OVERHEAD_TOKENS`, and is over the budget only in its compact form; the newest failure's
//! kind always appears; the same input always gives the same briefing. Memory: an essential
//! entry (pinned or critical) is left out only once every other entry and every other prunable
//! text is, and an important one only once the ephemeral and routine ones are.

use maos_domain::MemoryTier;
use maos_domain::briefing::{
    Briefing, BriefingInput, DependencyOutput, EarlierFailure, MAX_OVERHEAD_TOKENS, MemoryNote,
    assemble, estimate_tokens,
};
use proptest::prelude::*;

fn text(max: usize) -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!("[a-zé` \\n]{{0,{max}}}")).expect("regex")
}

fn line(max: usize) -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!("[a-z ]{{1,{max}}}")).expect("regex")
}

/// The owned data a [`BriefingInput`] borrows.
#[derive(Debug, Clone)]
struct Owned {
    title: String,
    prompt: String,
    goal: Option<String>,
    notes: Vec<String>,
    /// (title, short id, result, diff stat)
    deps: Vec<(String, String, Option<String>, Option<String>)>,
    /// (kind, detail)
    failures: Vec<(String, String)>,
    /// (short id, tier, pinned, text)
    memories: Vec<(String, MemoryTier, bool, String)>,
}

impl Owned {
    fn input(&self, budget_tokens: u32) -> BriefingInput<'_> {
        BriefingInput {
            title: &self.title,
            prompt: &self.prompt,
            goal: self.goal.as_deref(),
            notes: &self.notes,
            dependencies: self
                .deps
                .iter()
                .map(|(title, task, result, diff)| DependencyOutput {
                    title,
                    task,
                    result: result.as_deref(),
                    diff_stat: diff.as_deref(),
                })
                .collect(),
            failures: self
                .failures
                .iter()
                .zip(1..)
                .map(|((kind, detail), attempt)| EarlierFailure {
                    attempt,
                    kind,
                    detail,
                })
                .collect(),
            memories: self
                .memories
                .iter()
                .map(|(id, tier, pinned, text)| MemoryNote {
                    id,
                    tier: *tier,
                    scope: "global",
                    pinned: *pinned,
                    text,
                })
                .collect(),
            budget_tokens,
        }
    }

    fn newest_kind(&self) -> Option<&str> {
        self.failures.last().map(|(kind, _)| kind.as_str())
    }
}

fn owned() -> impl Strategy<Value = Owned> {
    let dep = (
        line(20),
        "[0-9a-f]{6}",
        prop::option::of(prop_oneof![3 => text(300), 1 => text(3_000)]),
        prop::option::of(text(400)),
    );
    let failure = (line(30), prop_oneof![3 => text(300), 1 => text(2_500)]);
    let memory = (
        prop::sample::select(MemoryTier::ALL.to_vec()),
        any::<bool>(),
        prop_oneof![3 => text(200), 1 => text(1_500)],
    );
    (
        line(40),
        prop_oneof![3 => text(300), 1 => text(1_500)],
        prop::option::of(text(300)),
        prop::collection::vec(text(80), 0..4),
        prop::collection::vec(dep, 0..5),
        prop::collection::vec(failure, 0..4),
        prop::collection::vec(memory, 0..6),
    )
        .prop_map(
            |(title, prompt, goal, notes, deps, failures, memories)| Owned {
                title,
                prompt,
                goal,
                notes,
                deps,
                failures,
                memories: memories
                    .into_iter()
                    .enumerate()
                    .map(|(i, (tier, pinned, text))| (format!("{i:04}"), tier, pinned, text))
                    .collect(),
            },
        )
}

/// Whether the briefing shows the memory entry with this id.
fn shows_memory(b: &Briefing, id: &str) -> bool {
    b.text.contains(&format!(" (memory {id})\n"))
}

fn budget() -> impl Strategy<Value = u32> {
    prop_oneof![Just(0), 1..200u32, 1..1_000u32, 1..4_000u32]
}

fn cut_section(b: &Briefing) -> String {
    let mut s = "\n## Cut to fit the budget\n\n".to_owned();
    for entry in &b.cut {
        s.push_str("- ");
        s.push_str(entry);
        s.push('\n');
    }
    s
}

proptest! {
    #![proptest_config(crate::support::config(256, "proptest-regressions/briefing.txt"))]

    #[test]
    fn the_title_and_prompt_open_the_text_verbatim(o in owned(), budget in budget()) {
        let b = assemble(&o.input(budget));
        let opening = format!("# Task: {}\n\n{}", o.title, o.prompt);
        prop_assert!(b.text.starts_with(&opening));
        prop_assert_eq!(b.tokens, estimate_tokens(&b.text));
    }

    #[test]
    fn nothing_is_cut_when_the_whole_fits(o in owned(), budget in budget()) {
        let whole = assemble(&o.input(0));
        prop_assert!(whole.cut.is_empty());
        let b = assemble(&o.input(budget));
        if budget == 0 || whole.tokens <= budget {
            prop_assert_eq!(&b, &whole);
        }
        // Cut exactly when the text differs from the unpruned one, and then the cuts are listed
        // at the end.
        prop_assert_eq!(b.cut.is_empty(), b.text == whole.text);
        if !b.cut.is_empty() {
            prop_assert!(b.text.ends_with(&cut_section(&b)), "{:?}", b.cut);
        }
    }

    #[test]
    fn within_the_budget_when_the_title_and_prompt_fit(o in owned(), budget in 1..4_000u32) {
        let b = assemble(&o.input(budget));
        let head = estimate_tokens(&o.title) + estimate_tokens(&o.prompt);
        if head <= budget {
            let kind = o.newest_kind().map_or(0, estimate_tokens);
            prop_assert!(
                b.tokens <= budget + kind + MAX_OVERHEAD_TOKENS,
                "{} tokens for a budget of {}", b.tokens, budget
            );
        }
        if b.tokens > budget {
            // Over the budget only in the compact form.
            for heading in [
                "\n## Goal\n",
                "\n## Notes\n",
                "\n## Memory\n",
                "\n## Inputs from earlier tasks\n",
            ] {
                prop_assert!(!b.text.contains(heading), "{} over the budget", heading);
            }
            prop_assert!(b.text.matches("\n### Attempt ").count() <= 1);
        }
    }

    #[test]
    fn the_newest_failure_kind_always_appears(o in owned(), budget in budget()) {
        let b = assemble(&o.input(budget));
        if let Some(kind) = o.newest_kind() {
            let heading = format!("\n### Attempt {}: {}\n", o.failures.len(), kind);
            prop_assert!(b.text.contains(&heading), "{:?} missing", heading);
        }
    }

    #[test]
    fn assembly_is_deterministic(o in owned(), budget in budget()) {
        prop_assert_eq!(assemble(&o.input(budget)), assemble(&o.clone().input(budget)));
    }

    #[test]
    fn pruning_never_drops_an_essential_memory_before_other_text(
        o in owned(),
        budget in budget(),
    ) {
        let b = assemble(&o.input(budget));
        let essential = |tier: MemoryTier, pinned: bool| pinned || tier == MemoryTier::Critical;
        let dropped = |tiers: &dyn Fn(MemoryTier, bool) -> bool| {
            o.memories
                .iter()
                .any(|(id, tier, pinned, _)| tiers(*tier, *pinned) && !shows_memory(&b, id))
        };
        let shown = |tiers: &dyn Fn(MemoryTier, bool) -> bool| {
            o.memories
                .iter()
                .any(|(id, tier, pinned, _)| tiers(*tier, *pinned) && shows_memory(&b, id))
        };
        let minor = |tier: MemoryTier, pinned: bool| {
            !essential(tier, pinned) && tier != MemoryTier::Important
        };
        if dropped(&essential) {
            // Every other entry, and every other prunable text, went first.
            prop_assert!(!shown(&|t, p| !essential(t, p)), "{}", b.text);
            for heading in ["\n## Goal\n", "\n## Notes\n", "\n## Inputs from earlier tasks\n"] {
                prop_assert!(!b.text.contains(heading), "{} kept: {}", heading, b.text);
            }
            prop_assert!(b.text.matches("\n### Attempt ").count() <= 1);
        }
        if dropped(&|t, p| t == MemoryTier::Important && !essential(t, p)) {
            prop_assert!(!shown(&minor), "{}", b.text);
        }
        // A pinned critical entry goes after every other essential one (another pinned
        // critical entry may stay: one of two that do not both fit has to go).
        let pinned_critical = |t: MemoryTier, p: bool| p && t == MemoryTier::Critical;
        if dropped(&pinned_critical) {
            prop_assert!(
                !shown(&|t, p| essential(t, p) && !pinned_critical(t, p)),
                "{}",
                b.text
            );
        }
    }
}
