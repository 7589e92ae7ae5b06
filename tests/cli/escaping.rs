//! No terminal injection: free text from people and agents (titles, goals, prompts, reasons, an
//! agent's error and log) reaches a person's terminal with control characters, escape sequences and
//! bidirectional overrides shown as visible escapes, while `--json` keeps the exact text.

use serde_json::Value;

use crate::fixtures::*;
use crate::support::{Env, Run, in_process};

/// Sets the window title, rings the bell.
const TITLE_SEQUENCE: &str = "\u{1b}]0;pwned\u{7}";
/// What a person sees of it.
const TITLE_SHOWN: &str = "\\e]0;pwned\\x07";
/// A right-to-left override, accepted in titles.
const RLO: &str = "\u{202e}";

/// No raw escape byte, no bidirectional override, no C1 control in what a person reads.
fn assert_inert(what: &str, text: &str) {
    assert!(!text.contains('\u{1b}'), "{what} has an ESC byte:\n{text}");
    assert!(!text.contains('\u{7}'), "{what} has a BEL byte:\n{text}");
    assert!(!text.contains(RLO), "{what} has U+202E:\n{text}");
    assert!(!text.contains('\u{9b}'), "{what} has a C1 CSI:\n{text}");
}

fn shown(env: &Env, args: &[&str]) -> Run {
    let run = env.maos(args);
    assert_eq!(run.code, 0, "{args:?}: {}", run.stderr);
    assert_inert(&format!("stdout of {args:?}"), &run.stdout);
    assert_inert(&format!("stderr of {args:?}"), &run.stderr);
    run
}

#[test]
fn titles_prompts_reasons_and_plans_are_escaped_for_people_and_exact_in_json() {
    let env = Env::new();
    let title = format!("Rename {RLO}exe.txt");
    let prompt = format!("Do it{TITLE_SEQUENCE}\n\u{1b}[2Jsecond line\u{9b}31m");
    let reason = format!("because{TITLE_SEQUENCE}\ncompleted");
    let doc = env.ok_json(&["task", "create", &title, "--prompt", &prompt]);
    let id = doc["task"]["id"].as_str().unwrap().to_owned();
    // The text is stored and given back exactly.
    assert_eq!(doc["task"]["title"], title.as_str());
    let cancelled = env.ok_json(&["task", "cancel", &id, "--reason", &reason]);
    assert_eq!(cancelled["task"]["reason"], reason.as_str());
    let json = env.ok_json(&["task", "show", &id]);
    assert_eq!(json["task"]["title"], title.as_str());
    assert_eq!(json["task"]["prompt"], prompt.as_str());
    assert_eq!(json["task"]["reason"], reason.as_str());

    let show = shown(&env, &["task", "show", &id]);
    assert!(
        show.stdout.contains("Rename \\u{202e}exe.txt"),
        "{}",
        show.stdout
    );
    // A single-line field escapes its line break: no fake "completed" line.
    assert!(
        show.stdout
            .contains(&format!("because{TITLE_SHOWN}\\ncompleted")),
        "{}",
        show.stdout
    );
    assert!(!show.stdout.lines().any(|l| l.trim() == "completed"));
    // The prompt is a block: its lines stay, everything else is escaped.
    assert!(
        show.stdout.contains(&format!("  Do it{TITLE_SHOWN}\n")),
        "{}",
        show.stdout
    );
    assert!(
        show.stdout.contains("  \\e[2Jsecond line\\u{9b}31m"),
        "{}",
        show.stdout
    );
    let list = shown(&env, &["task", "list"]);
    assert!(
        list.stdout.contains("Rename \\u{202e}exe.txt"),
        "{}",
        list.stdout
    );
    let events = shown(&env, &["events"]);
    assert!(events.stdout.contains("Rename"), "{}", events.stdout);
    assert_eq!(
        events.stdout.lines().count(),
        env.ok_json(&["events"])["events"].as_array().unwrap().len(),
        "one line per event:\n{}",
        events.stdout
    );

    // An error that echoes its input.
    let bad = env.maos(&["task", "create", &format!("x{TITLE_SEQUENCE}")]);
    assert_eq!(bad.code, 2);
    assert_inert("a refused title's error", &bad.stderr);
    let unknown = env.maos(&["task", "show", &format!("zz{TITLE_SEQUENCE}")]);
    assert_ne!(unknown.code, 0);
    assert_inert("an unknown id's error", &unknown.stderr);

    // A plan: its preview, and the orchestration's status and summary.
    let plan = env.dir().join("plan.toml");
    std::fs::write(
        &plan,
        format!(
            "name = \"Evil {RLO}plan\"\ngoal = \"Win\\u001b]0;pwned\\u0007\\ncompleted\"\n\n\
             [[task]]\nid = \"a\"\ntitle = \"{title}\"\nprompt = \"p\\u001b[2J\"\n"
        ),
    )
    .unwrap();
    let plan = plan.to_str().unwrap();
    let preview = env.maos(&["orchestrate", "run", plan]);
    assert_eq!(preview.code, 2, "{}", preview.stderr);
    assert_inert("the plan preview", &preview.stdout);
    assert_inert("the plan refusal", &preview.stderr);
    assert!(
        preview
            .stdout
            .contains(&format!("goal: Win{TITLE_SHOWN}\\ncompleted")),
        "{}",
        preview.stdout
    );
    assert!(
        preview.stdout.contains("Rename \\u{202e}exe.txt"),
        "{}",
        preview.stdout
    );
    assert!(
        preview.stdout.contains("Evil \\u{202e}plan"),
        "{}",
        preview.stdout
    );
    let created = env.ok_json(&["orchestrate", "run", plan, "--yes"]);
    let o = created["orchestration"]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        created["orchestration"]["goal"],
        "Win\u{1b}]0;pwned\u{7}\ncompleted"
    );
    assert_eq!(created["tasks"][0]["task"]["title"], title.as_str());
    let status = shown(&env, &["orchestrate", "status", &o]);
    assert!(
        status.stdout.contains("Rename \\u{202e}exe.txt"),
        "{}",
        status.stdout
    );
    assert!(
        status.stdout.contains("Evil \\u{202e}plan"),
        "{}",
        status.stdout
    );
    let show = shown(&env, &["orchestrate", "show", &o]);
    assert!(
        show.stdout
            .contains(&format!("Win{TITLE_SHOWN}\\ncompleted")),
        "{}",
        show.stdout
    );
    shown(&env, &["orchestrate", "list"]);
    shown(&env, &["orchestrate", "graph", &o]);
    let json = env.ok_json(&["orchestrate", "show", &o]);
    assert_eq!(
        json["orchestration"]["name"],
        format!("Evil {RLO}plan").as_str()
    );
}

#[test]
fn an_agents_escape_sequences_reach_a_terminal_escaped_and_json_exact() {
    if in_process() {
        return;
    }
    let env = Env::new();
    let work = tempfile::tempdir().unwrap();
    let evil = script(
        work.path(),
        "evil",
        "printf 'clear\\033[2J\\033]0;pwned\\007\\342\\200\\256done\\n'\n\
         printf 'oops\\033[31m\\n' >&2\nexit 3\n",
    );
    command_agent(&env, "evil", 1, &evil);
    let id = env.task("Break", &["--max-attempts", "1"]);
    let task = wait_for(&env, &id, "blocked", |t| t["state"] == "blocked");
    let error = task["attempts"][0]["error"].as_str().unwrap();
    assert!(
        error.contains('\u{1b}'),
        "the JSON keeps the agent's text: {error:?}"
    );
    assert!(
        task["reason"].as_str().unwrap().contains('\u{1b}'),
        "{task:#}"
    );

    let show = shown(&env, &["task", "show", &id]);
    assert!(show.stdout.contains("\\e["), "{}", show.stdout);
    shown(&env, &["task", "list"]);
    shown(&env, &["events"]);
    shown(&env, &["approvals"]);

    // The log: raw bytes into a pipe, escaped on a terminal unless --raw.
    let piped = env.maos(&["task", "logs", &id]);
    assert!(
        piped.stdout.contains("\u{1b}]0;pwned\u{7}"),
        "{:?}",
        piped.stdout
    );
    let (code, screen) = on_a_terminal(&env, &["task", "logs", &id], "");
    assert_eq!(code, 0, "{screen}");
    assert_inert("task logs on a terminal", &screen);
    assert!(
        screen.contains("clear\\e[2J\\e]0;pwned\\x07\\u{202e}done"),
        "{screen:?}"
    );
    let (_, raw) = on_a_terminal(&env, &["task", "logs", &id, "--raw"], "");
    assert!(raw.contains("\u{1b}]0;pwned\u{7}"), "{raw:?}");
    let json: Value = serde_json::from_str(&env.maos(&["task", "logs", &id, "--json"]).stdout)
        .expect("a JSON document");
    assert!(json.to_string().contains("\\u001b]0;pwned"), "{json}");
}

#[test]
fn what_an_agent_wrote_into_its_worktree_reaches_a_terminal_escaped_in_task_diff() {
    if in_process() {
        return;
    }
    let env = Env::new();
    let repo = Repo::new();
    let work = tempfile::tempdir().unwrap();
    let writer = script(
        work.path(),
        "writer",
        "printf 'title\\033]0;pwned\\007\\342\\200\\256\\tend\\n' > evil.txt\n",
    );
    command_agent(&env, "writer", 1, &writer);
    let repo_arg = repo.arg();
    let id = id_of(&create(
        &env,
        "Write",
        &["--repo", &repo_arg, "--max-attempts", "1"],
    ));
    wait_for(&env, &id, "finished", |t| {
        matches!(t["state"].as_str(), Some("completed" | "awaiting_approval"))
    });
    let piped = env.maos(&["task", "diff", &id]);
    assert_eq!(piped.code, 0, "{}", piped.stderr);
    assert!(
        piped.stdout.contains("+title\u{1b}]0;pwned\u{7}"),
        "{:?}",
        piped.stdout
    );
    let (code, screen) = on_a_terminal(&env, &["task", "diff", &id], "");
    assert_eq!(code, 0, "{screen}");
    assert_inert("task diff on a terminal", &screen);
    assert!(
        screen.contains("+title\\e]0;pwned\\x07\\u{202e}\tend"),
        "{screen:?}"
    );
    let (_, raw) = on_a_terminal(&env, &["task", "diff", &id, "--raw"], "");
    assert!(raw.contains("\u{1b}]0;pwned\u{7}"), "{raw:?}");
    let json = env.ok_json(&["task", "diff", &id]);
    assert!(
        json["diff"]
            .as_str()
            .unwrap()
            .contains("\u{1b}]0;pwned\u{7}"),
        "{json}"
    );
}
