//! The repository a person stands in: `task create`, `orchestrate create` and `orchestrate run`
//! work in the repository of the current directory when none is named (and say so on stderr),
//! `--no-repo` opts out, an orchestration records the branch it starts from so that its work
//! merges back there by default, and `--base` without any repository is a usage error.

use serde_json::Value;

use crate::fixtures::{Repo, real};
use crate::support::Env;

fn json_of(run: &crate::support::Run) -> Value {
    assert_eq!(run.code, 0, "{:?}: {}{}", run.args, run.stdout, run.stderr);
    run.json()
}

#[test]
fn a_task_created_inside_a_repository_works_in_it_and_says_so() {
    let env = Env::new();
    let repo = Repo::new();
    repo.write("src/lib.rs", "// code\n");
    repo.git(&["add", "-A"]);
    repo.git(&["commit", "-q", "-m", "src"]);
    let top = real(repo.path()).display().to_string();
    // From a subdirectory: the repository is the whole working tree.
    let run = env.maos_in(
        &repo.path().join("src"),
        &["task", "create", "Fix it", "--json"],
    );
    let doc = json_of(&run);
    assert_eq!(doc["task"]["repo"], top.as_str(), "{doc:#}");
    assert!(
        run.stderr.contains(&format!(
            "working in the repository {top} (the current directory's; --no-repo for none)"
        )),
        "{}",
        run.stderr
    );

    // --no-repo: an empty folder of its own, and nothing said.
    let run = env.maos_in(
        &repo.path(),
        &["task", "create", "Elsewhere", "--no-repo", "--json"],
    );
    let doc = json_of(&run);
    assert_eq!(doc["task"]["repo"], Value::Null, "{doc:#}");
    assert!(!run.stderr.contains("working in"), "{}", run.stderr);

    // Outside any repository: none, and nothing said.
    let run = env.maos(&["task", "create", "Nowhere", "--json"]);
    let doc = json_of(&run);
    assert_eq!(doc["task"]["repo"], Value::Null, "{doc:#}");
    assert!(!run.stderr.contains("working in"), "{}", run.stderr);

    // --repo wins over where one stands.
    let other = Repo::new();
    let run = env.maos_in(
        &repo.path(),
        &[
            "task",
            "create",
            "There",
            "--repo",
            other.path().to_str().unwrap(),
            "--json",
        ],
    );
    let doc = json_of(&run);
    assert_eq!(
        doc["task"]["repo"],
        real(other.path()).display().to_string().as_str()
    );
}

#[test]
fn base_without_any_repository_is_a_usage_error_and_changes_nothing() {
    let env = Env::new();
    let before = env.state();
    for args in [
        &["task", "create", "T", "--base", "main"][..],
        &["orchestrate", "create", "O", "--base", "main"][..],
    ] {
        let run = env.maos(args);
        assert_eq!(run.code, 2, "{args:?}: {}{}", run.stdout, run.stderr);
        assert!(
            run.stderr
                .contains("--base names the branch tasks start from, but there is no repository"),
            "{}",
            run.stderr
        );
    }
    let mut json = vec!["task", "create", "T", "--base", "main", "--json"];
    let run = env.maos(&json);
    assert_eq!(run.code, 2);
    assert_eq!(run.json()["error"]["kind"], "usage");
    // --no-repo and --base contradict each other: clap says so.
    json.insert(3, "--no-repo");
    let run = env.maos(&json);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(env.state(), before);
}

#[test]
fn an_orchestration_records_the_branch_it_starts_from_and_merges_back_into_it() {
    let env = Env::new();
    let repo = Repo::new();
    let top = real(repo.path()).display().to_string();
    let run = env.maos_in(&repo.path(), &["orchestrate", "create", "Work", "--json"]);
    let doc = json_of(&run);
    let o = &doc["orchestration"];
    assert_eq!(o["repo"], top.as_str(), "{doc:#}");
    assert_eq!(
        o["base"], "main",
        "the branch checked out when it was made: {doc:#}"
    );
    let id = o["id"].as_str().unwrap().to_owned();

    // Checking out another branch later changes nothing: its work still merges back into main
    // (`workspaces::orchestrate_merge_refuses_a_dirty_main_and_then_merges_the_work_into_it`
    // merges without --into).
    repo.git(&["switch", "-q", "-c", "elsewhere"]);
    let shown = env.ok_json(&["orchestrate", "show", &id]);
    assert_eq!(shown["orchestration"]["base"], "main");
    repo.git(&["switch", "-q", "main"]);
    // Nothing accepted yet: nothing to merge, said as such (not as an unknown --base).
    let early = env.maos(&["orchestrate", "merge", &id]);
    assert_eq!(early.code, 4, "{}{}", early.stdout, early.stderr);
    assert!(
        early.stderr.contains("has nothing to merge yet")
            && early.stderr.contains("maos orchestrate status"),
        "{}",
        early.stderr
    );
    assert_eq!(repo.rev("main"), repo.rev("HEAD"));

    // A plan run from inside the repository works there too.
    env.agent("coder", "code");
    let plan = env.dir().join("plan.toml");
    std::fs::write(
        &plan,
        "goal = \"g\"\n\n[[task]]\nid = \"a\"\ntitle = \"A\"\ncapabilities = [\"code\"]\n",
    )
    .unwrap();
    let run = env.maos_in(
        &repo.path(),
        &[
            "orchestrate",
            "run",
            plan.to_str().unwrap(),
            "--yes",
            "--json",
        ],
    );
    let doc = json_of(&run);
    assert_eq!(doc["orchestration"]["repo"], top.as_str(), "{doc:#}");
    assert_eq!(doc["orchestration"]["base"], "main", "{doc:#}");
    assert!(
        run.stderr.contains("working in the repository"),
        "{}",
        run.stderr
    );
    // --no-repo: none.
    let run = env.maos_in(
        &repo.path(),
        &[
            "orchestrate",
            "run",
            plan.to_str().unwrap(),
            "--yes",
            "--no-repo",
            "--json",
        ],
    );
    let doc = json_of(&run);
    assert_eq!(doc["orchestration"]["repo"], Value::Null, "{doc:#}");
}
