//! Orchestrations end to end, through the real binary and its daemon: the main job
//! (examples/quickstart.toml with examples/agents.toml on a throwaway repository), plan files and
//! their validation, plan approval without a terminal, `orchestrate run --json` and
//! `--watch --json`, workflows (`workflow list|show|validate`, `--workflow single|tdd`), the
//! lifecycle of an orchestration (draft, start, pause, pause --now, resume, cancel, status,
//! graph) and the refusals. Only the daemon runs agents: the tests that need agents to work do
//! nothing in process.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::fixtures::*;
use crate::support::{Env, Run, in_process};

// ---- helpers ----

/// The repository's `examples` directory.
fn examples() -> PathBuf {
    real(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples"))
}

fn example(name: &str) -> String {
    examples().join(name).to_str().unwrap().to_owned()
}

/// Writes `text` into the data directory as `name` and answers its path.
fn write_file(env: &Env, name: &str, text: &str) -> String {
    let path = env.dir().join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

/// Reads a child's stdout and stderr to the end on threads of their own, so that it never
/// blocks on a full pipe.
struct Output {
    stdout: std::thread::JoinHandle<String>,
    stderr: std::thread::JoinHandle<String>,
}

fn drain(child: &mut Child) -> Output {
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    Output {
        stdout: std::thread::spawn(move || {
            let mut s = String::new();
            out.read_to_string(&mut s).unwrap();
            s
        }),
        stderr: std::thread::spawn(move || {
            let mut s = String::new();
            err.read_to_string(&mut s).unwrap();
            s
        }),
    }
}

/// Starts `maos args` without a terminal (stdin empty), its output captured.
fn spawn(env: &Env, args: &[&str]) -> Child {
    let mut cmd = env.std_command(args);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd.spawn().unwrap()
}

/// Waits (at most `limit`) for a child started by [`spawn`] to end; kills it and fails the test
/// if it does not.
fn finish(env: &Env, mut child: Child, args: &[&str], limit: Duration) -> Run {
    let output = drain(&mut child);
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{args:?} did not end within {limit:?}:\n{}\n{}\nstate:\n{}",
                output.stdout.join().unwrap(),
                output.stderr.join().unwrap(),
                env.maos(&["task", "list", "--limit", "1000"]).stdout
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Run {
        args: args.iter().map(|s| (*s).to_owned()).collect(),
        code: status.code().unwrap_or(-1),
        stdout: output.stdout.join().unwrap(),
        stderr: output.stderr.join().unwrap(),
    }
}

/// Runs `maos args` to its end (at most `limit`).
fn run_bounded(env: &Env, args: &[&str], limit: Duration) -> Run {
    let child = spawn(env, args);
    finish(env, child, args, limit)
}

/// The only orchestration of the data directory.
fn only_orchestration(env: &Env) -> Value {
    let doc = env.ok_json(&["orchestrate", "list"]);
    let all = doc["orchestrations"].as_array().unwrap();
    assert_eq!(all.len(), 1, "{doc:#}");
    all[0].clone()
}

/// Every task of orchestration `orch`.
fn tasks_of(env: &Env, orch: &str) -> Vec<Value> {
    env.ok_json(&["task", "list", "--orchestration", orch, "--limit", "1000"])["tasks"]
        .as_array()
        .unwrap()
        .clone()
}

fn titled<'a>(tasks: &'a [Value], title: &str) -> &'a Value {
    tasks
        .iter()
        .find(|t| t["title"] == title)
        .unwrap_or_else(|| panic!("no task titled {title:?}: {tasks:#?}"))
}

/// The kinds of the events of `id`, in order.
fn kinds_of(events: &[Value], id: &str) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["aggregate_id"] == id)
        .map(|e| e["kind"].as_str().unwrap().to_owned())
        .collect()
}

fn time_of<'a>(attempt: &'a Value, key: &str) -> &'a str {
    str_of(&attempt[key], key)
}

/// `maos task briefing <task> --attempt <n>`: the text.
fn briefing(env: &Env, task: &str, attempt: u32) -> String {
    let doc = env.ok_json(&["task", "briefing", task, "--attempt", &attempt.to_string()]);
    str_of(&doc["text"], "text").to_owned()
}

/// Replaces what changes from run to run in a status (wall times) by placeholders.
fn mask_wall_time(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    loop {
        let human = rest.find("wall time: ").map(|i| (i, "wall time: "));
        let json = rest.find("\"wall_ms\": ").map(|i| (i, "\"wall_ms\": "));
        let next = match (human, json) {
            (Some(h), Some(j)) => Some(if h.0 < j.0 { h } else { j }),
            (h, j) => h.or(j),
        };
        let Some((at, marker)) = next else {
            out.push_str(rest);
            return out;
        };
        out.push_str(&rest[..at + marker.len()]);
        let after = &rest[at + marker.len()..];
        let end = if marker == "wall time: " {
            after.find("   ").unwrap_or(after.len())
        } else {
            after
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(after.len())
        };
        out.push_str("<wall>");
        rest = &after[end..];
    }
}

/// Waits until `done` holds for the output of `task show --json` (the whole document, with
/// `waiting`), and returns it.
fn wait_doc(env: &Env, task: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let doc = env.ok_json(&["task", "show", task]);
        if done(&doc) {
            return doc;
        }
        assert!(
            Instant::now() < deadline,
            "task {task} never became {what}: {doc:#}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn waits_for_kind(doc: &Value, kind: &str) -> bool {
    doc["waiting"]
        .as_array()
        .unwrap()
        .iter()
        .any(|w| w["kind"] == kind)
}

fn orchestration_status(env: &Env, id: &str) -> String {
    env.ok_json(&["orchestrate", "show", id])["orchestration"]["status"]
        .as_str()
        .unwrap()
        .to_owned()
}

// ---- 1. the main job ----

const GREET: &str = "greet() { printf 'Hello, %s!\\n' \"$1\"; }\n";
const FAREWELL: &str = "farewell() { printf 'Goodbye, %s.\\n' \"$1\"; }\n";
const TESTS: &str = ". lib/greet.sh; . lib/farewell.sh\n\
[ \"$(greet Ada)\" = \"Hello, Ada!\" ] || { echo \"greet Ada printed: $(greet Ada)\"; exit 1; }\n\
[ \"$(farewell Ada)\" = \"Goodbye, Ada.\" ] || { echo \"farewell Ada printed: $(farewell Ada)\"; exit 1; }\n\
echo \"2 tests passed\"\n";
const DOCS: &str = "# Greetings\n\n    \
. lib/greet.sh && greet Ada        # Hello, Ada!\n    \
. lib/farewell.sh && farewell Ada  # Goodbye, Ada.\n";

#[test]
fn the_main_job_runs_the_quickstart_plan_in_parallel_with_a_retry_into_the_integration_branch() {
    if in_process() {
        return;
    }
    let env = Env::new();
    let repo = Repo::new();
    let head = repo.rev("HEAD");
    let agents = env.ok_json(&["agent", "register", "--from-file", &example("agents.toml")]);
    assert_eq!(
        agents["agents"].as_array().map(Vec::len),
        Some(2),
        "{agents:#}"
    );

    let plan = example("quickstart.toml");
    let repo_arg = repo.arg();
    let args = [
        "orchestrate",
        "run",
        &plan,
        "--repo",
        &repo_arg,
        "--yes",
        "--watch",
    ];
    let run = run_bounded(&env, &args, Duration::from_secs(120));
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);

    let o = only_orchestration(&env);
    let orch = str_of(&o["id"], "id").to_owned();
    let branch = format!("maos/orch-{}", short(&orch));
    assert_eq!(o["integration_branch"], branch.as_str());
    assert_eq!(o["status"], "completed", "{o:#}");
    assert_eq!(o["name"], "Quickstart: greetings");

    // What it printed: the graph, a line per change, the final summary.
    assert!(
        run.stdout
            .contains("Plan \"Quickstart: greetings\": 4 tasks"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains(&format!(
            "orchestration {} started with 4 tasks",
            short(&orch)
        )),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains(&format!(
            "Orchestration {} is completed: 4 of 4 tasks completed (4 completed).",
            short(&orch)
        )),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("  attempts: 5   wall time: "),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains(&format!("  integration branch: {branch}")),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("Needs a person"), "{}", run.stdout);

    // The integration branch holds everything, the tests as the retry wrote them.
    assert_eq!(repo.show(&branch, "lib/greet.sh").as_deref(), Some(GREET));
    assert_eq!(
        repo.show(&branch, "lib/farewell.sh").as_deref(),
        Some(FAREWELL)
    );
    assert_eq!(repo.show(&branch, "tests/run.sh").as_deref(), Some(TESTS));
    assert_eq!(
        repo.show(&branch, "docs/greetings.md").as_deref(),
        Some(DOCS)
    );
    assert_eq!(repo.show(&branch, "README.md").as_deref(), Some(README));
    assert!(repo.contains(&branch, &head));
    // The user's side is untouched.
    repo.assert_untouched(&head);
    assert!(!repo.path().join("lib").exists());

    let tasks = tasks_of(&env, &orch);
    assert_eq!(tasks.len(), 4);
    for t in &tasks {
        assert_eq!(t["state"], "completed", "{t:#}");
        assert_eq!(t["risk"], "low");
    }
    let greet = titled(&tasks, "Write greet()");
    let farewell = titled(&tasks, "Write farewell()");
    let tests = titled(&tasks, "Test greet() and farewell()");
    let docs = titled(&tasks, "Document the greetings");
    let (gid, fid, tid, did) = (id_of(greet), id_of(farewell), id_of(tests), id_of(docs));

    // Dependencies became task ids.
    let deps: BTreeSet<&str> = tests["depends_on"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap())
        .collect();
    assert_eq!(deps, BTreeSet::from([gid.as_str(), fid.as_str()]));
    assert_eq!(docs["depends_on"], serde_json::json!([gid]));

    // greet and farewell ran at the same time, on the two agents.
    let (ga, fa) = (&greet["attempts"][0], &farewell["attempts"][0]);
    assert_eq!(greet["attempts"].as_array().unwrap().len(), 1);
    assert_eq!(farewell["attempts"].as_array().unwrap().len(), 1);
    assert_overlap(ga, fa);
    assert_ne!(ga["agent"], fa["agent"]);

    // tests waited for both; docs for greet.
    let tests_attempts = tests["attempts"].as_array().unwrap();
    assert_eq!(tests_attempts.len(), 2, "{tests:#}");
    let first = &tests_attempts[0];
    for dep in [ga, fa] {
        assert!(time_of(first, "assigned_at") >= time_of(dep, "ended_at"));
    }
    assert!(time_of(&docs["attempts"][0], "assigned_at") >= time_of(ga, "ended_at"));

    // The first attempt of tests failed its verification; the retry passed.
    assert_eq!(first["status"], "failed");
    assert_eq!(first["exit_code"], 0);
    assert_eq!(first["verification"]["passed"], false);
    let output = str_of(&first["verification"]["output"], "verification.output");
    assert!(
        output.starts_with("greet Ada printed: Hello, Ada!"),
        "{output}"
    );
    let second = &tests_attempts[1];
    assert_eq!(second["status"], "succeeded");
    assert_eq!(second["verification"]["passed"], true);
    assert_eq!(second["verification"]["output"], "2 tests passed");
    assert!(time_of(second, "started_at") >= time_of(first, "ended_at"));
    // The first draft is in the first attempt's checkpoint, not in the integration branch.
    let draft = repo
        .show(
            str_of(&first["checkpoint_after"], "checkpoint_after"),
            "tests/run.sh",
        )
        .unwrap();
    assert!(draft.contains("\"Hello, Ada.\""), "{draft}");

    // The retry's briefing: the task, the goal, the notes, its inputs and the failure.
    let b2 = briefing(&env, &tid, 2);
    assert!(
        b2.starts_with("# Task: Test greet() and farewell()\n\nAdd tests/run.sh:"),
        "{b2}"
    );
    assert!(
        b2.contains("\n## Goal\n\nGive the project a greeting library, with tests and docs\n"),
        "{b2}"
    );
    assert!(
        b2.contains("\n## Notes\n\n- Keep every function a one-liner.\n- Shell code must run under plain sh.\n"),
        "{b2}"
    );
    let inputs = b2
        .find("\n## Inputs from earlier tasks\n")
        .unwrap_or_else(|| panic!("no inputs in:\n{b2}"));
    let earlier = b2
        .find("\n## Earlier attempts\n\n### Attempt 1: verification failed\n")
        .unwrap_or_else(|| panic!("no earlier attempt in:\n{b2}"));
    assert!(inputs < earlier, "{b2}");
    for (title, id, wrote) in [
        (
            "Write greet()",
            &gid,
            "attempt 1: wrote 1 file: lib/greet.sh",
        ),
        (
            "Write farewell()",
            &fid,
            "attempt 1: wrote 1 file: lib/farewell.sh",
        ),
    ] {
        let heading = format!("\n### {title} (task {})\n", short(id));
        let at = b2
            .find(&heading)
            .unwrap_or_else(|| panic!("{heading:?} missing:\n{b2}"));
        assert!(inputs < at && at < earlier, "{b2}");
        assert!(b2[at..earlier].contains(wrote), "{b2}");
    }
    assert!(b2[earlier..].contains(output.trim_end()), "{b2}");
    // The first attempt had the inputs but no failure.
    let b1 = briefing(&env, &tid, 1);
    assert!(b1.contains("\n## Inputs from earlier tasks\n"), "{b1}");
    assert!(!b1.contains("## Earlier attempts"), "{b1}");

    // Low risk: every task was accepted without asking anyone, and merged.
    let all = events(&env);
    for id in [&gid, &fid, &tid, &did] {
        let kinds = kinds_of(&all, id);
        assert!(
            !kinds.iter().any(|k| k.starts_with("task.approval")),
            "{id}: {kinds:?}"
        );
        assert_eq!(kinds.last().map(String::as_str), Some("task.completed"));
        assert_eq!(
            kinds.iter().filter(|k| *k == "task.integrated").count(),
            1,
            "{id}: {kinds:?}"
        );
    }
    let tk = kinds_of(&all, &tid);
    assert_eq!(
        tk.iter()
            .filter(|k| *k == "task.verification_failed")
            .count(),
        1
    );
    assert_eq!(
        tk.iter().filter(|k| *k == "task.retry_scheduled").count(),
        1
    );
    assert_eq!(
        kinds_of(&all, &orch).last().map(String::as_str),
        Some("orchestration.completed")
    );
    assert!(
        env.ok_json(&["approvals"])["approvals"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert_verified(&env);
}

// ---- 2. plan validation ----

const BAD_PLAN: &str = r#"goal = "Ship greetings"
colour = "blue"

[[task]]
id = "greet"
title = "Write greet()"
capabilities = ["code"]

[[task]]
id = "greet"
title = "Write greet() again"
capabilities = ["code"]

[[task]]
id = "tests"
title = "Test it"
capabilities = ["code"]
depends_on = ["greeet"]

[[task]]
id = "docs"
title = "Document it"
capabilities = ["docs"]
depends_on = ["review"]

[[task]]
id = "review"
title = "Review it"
capabilities = ["code"]
depends_on = ["docs"]
"#;

#[test]
fn a_plan_with_problems_is_refused_with_every_problem_and_its_place_and_nothing_is_created() {
    let env = Env::new();
    env.agent("coder", "code");
    let plan = write_file(&env, "plan.toml", BAD_PLAN);
    let before = env.state();
    let text = env.step(&["orchestrate", "run", &plan, "--yes"]);
    let json = env.step(&["orchestrate", "run", &plan, "--yes", "--json"]);
    for run in [&text, &json] {
        assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
        for place in [
            "2:1: unknown key `colour`",
            "10:6: duplicate task id `greet`",
            "18:15: task `tests` depends on `greeet`",
            "23:17: no registered agent offers capability `docs`",
            "24:15: dependency cycle docs → review → docs",
        ] {
            assert!(
                run.stderr.contains(&format!("{plan}:{place}")),
                "{place} missing:\n{}",
                run.stderr
            );
        }
        assert!(run.stderr.contains("5 problems in the plan file"));
        assert!(run.stderr.contains("nothing was created"));
    }
    assert_eq!(text.stdout, "");
    let doc = json.json();
    assert_eq!(doc["error"]["kind"], "invalid_input");
    assert_eq!(doc["error"]["exit_code"], 2);
    // Nothing was created.
    assert_eq!(env.state(), before);
    env.step(&["orchestrate", "list"]);
    env.step(&["task", "list"]);
    assert!(
        env.ok_json(&["orchestrate", "list"])["orchestrations"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert_eq!(tasks_listed(&env), 0);
    insta::assert_snapshot!(env.transcript());
}

// ---- 3. approval of the plan ----

const PLAN: &str = r#"goal = "Greet the world"
name = "Greetings"
notes = ["Be kind."]

[defaults]
risk = "medium"
max_attempts = 2

[[task]]
id = "design"
title = "Design the greeting"
capabilities = ["design"]

[[task]]
id = "docs"
title = "Document greet()"
capabilities = ["docs"]
depends_on = ["design", "code"]
risk = "low"

[[task]]
id = "code"
title = "Write greet()"
capabilities = ["code"]
depends_on = ["design"]
concerns = ["src/greet.*"]
"#;

/// Agents that offer what [`PLAN`] needs and never run (MAOS does not schedule onto external
/// agents), so that its tasks stay where they are in both transports.
fn idle_agents(env: &Env) {
    env.agent("designer", "design");
    env.agent("writer", "code,docs");
}

#[test]
fn without_a_terminal_and_without_yes_the_plan_is_refused_unless_the_policy_approves_it() {
    let env = Env::new();
    idle_agents(&env);
    let plan = write_file(&env, "plan.toml", PLAN);
    let before = env.state();
    // No terminal (stdin is not one): refused rather than left waiting, nothing created.
    let text = env.step(&["orchestrate", "run", &plan]);
    let json = env.step(&["orchestrate", "run", &plan, "--json"]);
    for run in [&text, &json] {
        assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
        assert!(
            run.stderr
                .contains("the plan needs your approval, and there is no terminal to ask on"),
            "{}",
            run.stderr
        );
        assert!(run.stderr.contains("--yes"), "{}", run.stderr);
        assert!(run.stderr.contains("approve_plans"), "{}", run.stderr);
    }
    // The person still sees the graph: on stdout, or on stderr beside JSON.
    assert!(
        text.stdout.starts_with("Plan \"Greetings\": 3 tasks\n"),
        "{}",
        text.stdout
    );
    assert!(
        json.stderr.starts_with("Plan \"Greetings\": 3 tasks\n"),
        "{}",
        json.stderr
    );
    assert_eq!(json.json()["error"]["exit_code"], 2);
    assert_eq!(env.state(), before, "a refused plan changed the database");

    // The policy approves it: it runs without --yes.
    env.config("approve_plans = \"auto\"\n");
    let auto = env.step(&["orchestrate", "run", &plan]);
    assert_eq!(auto.code, 0, "{}{}", auto.stdout, auto.stderr);
    let o = only_orchestration(&env);
    assert_eq!(o["status"], "running");
    assert_eq!(o["name"], "Greetings");
    assert_eq!(o["goal"], "Greet the world");
    assert_eq!(o["notes"], serde_json::json!(["Be kind."]));
    let tasks = tasks_of(&env, str_of(&o["id"], "id"));
    assert_eq!(tasks.len(), 3);
    insta::assert_snapshot!(env.transcript());
}

#[test]
fn on_a_terminal_the_plan_runs_only_when_the_person_says_yes() {
    let env = Env::new();
    idle_agents(&env);
    let plan = write_file(&env, "plan.toml", PLAN);
    let before = env.state();
    let (code, screen) = on_a_terminal(&env, &["orchestrate", "run", &plan], "n");
    assert_eq!(code, 4, "{screen}");
    assert!(screen.contains("Run this plan? [y/N]"), "{screen}");
    assert!(
        screen.contains("you did not approve the plan: nothing was created"),
        "{screen}"
    );
    assert_eq!(
        env.state(),
        before,
        "a plan the person declined changed the database"
    );

    let (code, screen) = on_a_terminal(&env, &["orchestrate", "run", &plan], "y");
    assert_eq!(code, 0, "{screen}");
    assert!(screen.contains("Run this plan? [y/N]"), "{screen}");
    assert!(screen.contains("started with 3 tasks"), "{screen}");
    let o = only_orchestration(&env);
    assert_eq!(o["status"], "running");
    assert_eq!(tasks_of(&env, str_of(&o["id"], "id")).len(), 3);
}

#[test]
fn watching_ends_when_only_a_person_can_move_the_rest_of_a_chain_or_a_drained_agents_work() {
    if in_process() {
        return;
    }
    let env = Env::new();
    env.config("[retry]\nbackoff = false\n[circuit_breaker]\nthreshold = 2\n");
    let work = tempfile::tempdir().unwrap();
    let fail = script(work.path(), "fail", "echo 'cannot do it'\nexit 1\n");
    tiered_agent(&env, "broken", "chain,pair", "tactical", 2, &fail);
    // a -> b -> c: a blocks after its only attempt; b and c can never start.
    let chain = write_file(
        &env,
        "chain.toml",
        "goal = \"A chain\"\n[defaults]\nmax_attempts = 1\n\
         [[task]]\nid = \"a\"\ntitle = \"A\"\ncapabilities = [\"chain\"]\n\
         [[task]]\nid = \"b\"\ntitle = \"B\"\ncapabilities = [\"chain\"]\ndepends_on = [\"a\"]\n\
         [[task]]\nid = \"c\"\ntitle = \"C\"\ncapabilities = [\"chain\"]\ndepends_on = [\"b\"]\n",
    );
    let run = run_bounded(
        &env,
        &["orchestrate", "run", &chain, "--yes", "--watch", "--json"],
        Duration::from_secs(60),
    );
    assert_eq!(run.code, 7, "{}\n{}", run.stdout, run.stderr);
    let summary = run
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|d| type_of(d) == "summary")
        .expect("a summary line");
    let s = &summary["summary"];
    assert_eq!(
        s["by_state"],
        serde_json::json!({"blocked": 1, "pending": 2}),
        "{s:#}"
    );

    // Two tasks whose only agent its circuit breaker drains: they stay ready, and only a person
    // (`maos agent resume`) can change that, so watching ends and says so.
    let pair = write_file(
        &env,
        "pair.toml",
        "goal = \"A pair\"\n[defaults]\nmax_attempts = 3\n\
         [[task]]\nid = \"x\"\ntitle = \"X\"\ncapabilities = [\"pair\"]\n\
         [[task]]\nid = \"y\"\ntitle = \"Y\"\ncapabilities = [\"pair\"]\n",
    );
    let run = run_bounded(
        &env,
        &["orchestrate", "run", &pair, "--yes", "--watch"],
        Duration::from_secs(60),
    );
    assert_eq!(run.code, 7, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("Needs a person:"), "{}", run.stdout);
    assert!(run.stdout.contains("is draining"), "{}", run.stdout);
    assert_eq!(
        env.ok_json(&["agent", "show", "broken"])["agent"]["status"],
        "draining"
    );
}

// ---- 4. orchestrate run --json ----

#[test]
fn run_json_prints_one_document_with_the_orchestration_and_its_tasks_keyed_and_linked() {
    let env = Env::new();
    idle_agents(&env);
    let plan = write_file(&env, "plan.toml", PLAN);
    // (Not in the snapshot: the order of `depends_on` follows the random ids.)
    let run = env.maos(&["orchestrate", "run", &plan, "--yes", "--json"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    // One document (pretty-printed), nothing on stderr: --yes shows no graph.
    let doc = run.json();
    assert_eq!(run.stderr, "");
    assert_eq!(doc["schema_version"], 1);
    let o = &doc["orchestration"];
    assert_eq!(o["status"], "running");
    assert_eq!(o["name"], "Greetings");
    assert_eq!(o["goal"], "Greet the world");
    let orch = str_of(&o["id"], "orchestration.id");
    let tasks = doc["tasks"].as_array().unwrap();
    // Created so that each comes after what it depends on.
    let keys: Vec<&str> = tasks.iter().map(|t| t["key"].as_str().unwrap()).collect();
    assert_eq!(keys, ["design", "code", "docs"]);
    let id = |key: &str| -> String {
        let t = tasks.iter().find(|t| t["key"] == key).unwrap();
        id_of(&t["task"])
    };
    let (design, code, docs) = (id("design"), id("code"), id("docs"));
    for t in tasks {
        let task = &t["task"];
        assert_eq!(task["orchestration"], orch);
        assert_eq!(task["max_attempts"], 2, "the plan's default");
    }
    let task = |key: &str| &tasks.iter().find(|t| t["key"] == key).unwrap()["task"];
    assert_eq!(task("design")["depends_on"], serde_json::json!([]));
    assert_eq!(task("design")["state"], "ready");
    assert_eq!(task("design")["risk"], "medium");
    assert_eq!(task("code")["depends_on"], serde_json::json!([design]));
    assert_eq!(task("code")["state"], "pending");
    assert_eq!(task("code")["concerns"], serde_json::json!(["src/greet.*"]));
    let docs_deps: BTreeSet<String> = task("docs")["depends_on"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(docs_deps, BTreeSet::from([design.clone(), code.clone()]));
    assert_eq!(task("docs")["risk"], "low");
    // The same as the store says.
    let stored = tasks_of(&env, orch);
    let stored_ids: BTreeSet<String> = stored.iter().map(id_of).collect();
    assert_eq!(stored_ids, BTreeSet::from([design, code, docs]));
    // The human form of the same run: the graph, then what was created, in plan order.
    let human = env.step(&["orchestrate", "run", &plan, "--yes"]);
    assert_eq!(human.code, 0, "{}", human.stderr);
    assert_eq!(
        env.ok_json(&["orchestrate", "list"])["orchestrations"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    insta::assert_snapshot!(env.transcript());
}

// ---- 5. watching with --json ----

#[test]
fn watch_json_streams_its_events_then_a_summary_and_exits_7_when_a_task_needs_a_person() {
    if in_process() {
        return;
    }
    let env = Env::new();
    env.config("[retry]\nbackoff = false\n");
    let work = tempfile::tempdir().unwrap();
    let gates = work.path().join("gates");
    std::fs::create_dir(&gates).unwrap();
    // Both wait for their gate (so that all that matters happens while the watch runs), then
    // one works and the other always fails.
    let wait = format!(
        "i=0\n\
         while [ ! -e {gates}/open ]; do\n\
           i=$((i + 1)); if [ $i -gt 400 ]; then echo 'the gate never opened'; exit 1; fi\n\
           sleep 0.05\n\
         done\n",
        gates = gates.display()
    );
    // Once the gate opens, `Works` ends a moment after `Fails`.
    let good = script(
        work.path(),
        "good",
        &format!(
            "if [ \"$MAOS_TASK_TITLE\" != Outsider ]; then\n{wait}sleep 0.05\nfi\n\
             echo \"did $MAOS_TASK_TITLE\"\n"
        ),
    );
    let bad = script(
        work.path(),
        "bad",
        &format!("{wait}echo 'the compiler is on fire'\nexit 3\n"),
    );
    tiered_agent(&env, "good", "good", "tactical", 2, &good);
    tiered_agent(&env, "bad", "bad", "tactical", 2, &bad);
    let plan = write_file(
        &env,
        "plan.toml",
        r#"goal = "Try both"
name = "Mixed"

[[task]]
id = "fine"
title = "Works"
capabilities = ["good"]

[[task]]
id = "broken"
title = "Fails"
capabilities = ["bad"]
max_attempts = 1

[[task]]
id = "after"
title = "After the failure"
capabilities = ["good"]
depends_on = ["broken"]
"#,
    );
    let args = ["orchestrate", "run", &plan, "--yes", "--watch", "--json"];
    let child = spawn(&env, &args);
    // The watch is on once the orchestration exists; a task of no orchestration then works
    // beside it, and its events must not be in the stream.
    let deadline = Instant::now() + Duration::from_secs(30);
    while env.ok_json(&["orchestrate", "list"])["orchestrations"]
        .as_array()
        .unwrap()
        .is_empty()
    {
        assert!(
            Instant::now() < deadline,
            "the orchestration never appeared"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    let outsider = create_ok(&env, &["task", "create", "Outsider", "-c", "good"]);
    settle(&env, &outsider, "completed");
    std::fs::write(gates.join("open"), "").unwrap();
    let run = finish(&env, child, &args, Duration::from_secs(60));
    assert_eq!(run.code, 7, "{}\n{}", run.stdout, run.stderr);

    let o = only_orchestration(&env);
    let orch = str_of(&o["id"], "id").to_owned();
    let tasks = tasks_of(&env, &orch);
    let fine = id_of(titled(&tasks, "Works"));
    let broken = id_of(titled(&tasks, "Fails"));
    let after = id_of(titled(&tasks, "After the failure"));
    assert_eq!(titled(&tasks, "Works")["state"], "completed");
    let failed = titled(&tasks, "Fails");
    assert_eq!(failed["state"], "blocked", "{failed:#}");
    assert_eq!(failed["attempts"].as_array().unwrap().len(), 1);
    assert_eq!(titled(&tasks, "After the failure")["state"], "pending");

    // NDJSON: one document per line, each tagged with what it is; events, then the summary.
    let docs: Vec<Value> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect();
    let at = docs
        .iter()
        .position(|d| type_of(d) == "summary")
        .unwrap_or_else(|| panic!("no summary line:\n{}", run.stdout));
    for (line, doc) in run.stdout.lines().zip(&docs) {
        line_of(line, type_of(doc));
    }
    let ours: BTreeSet<&str> = [
        orch.as_str(),
        fine.as_str(),
        broken.as_str(),
        after.as_str(),
    ]
    .into();
    let streamed = &docs[..at];
    assert!(!streamed.is_empty());
    for e in streamed {
        assert_eq!(type_of(e), "event", "{e}");
        let id = e["aggregate_id"].as_str().unwrap_or_else(|| panic!("{e}"));
        assert!(ours.contains(id), "an event of something else: {e}");
        assert!(e["seq"].is_u64() && e["kind"].is_string(), "{e}");
    }
    let s = &docs[at]["summary"];
    // Ids in JSON are full ids.
    assert_eq!(s["orchestration"], orch.as_str());
    assert_eq!(s["tasks"], 3);
    assert_eq!(s["completed"], 1);
    assert_eq!(
        s["by_state"],
        serde_json::json!({"blocked": 1, "completed": 1, "pending": 1})
    );
    assert_eq!(s["attempts"], 2);
    let needs = s["needs_a_person"].as_array().unwrap();
    assert_eq!(needs.len(), 1, "{s:#}");
    assert_eq!(needs[0]["task"], broken.as_str());
    assert_eq!(needs[0]["title"], "Fails");
    assert_eq!(needs[0]["state"], "blocked");
    let why = str_of(&needs[0]["why"], "why");
    assert!(
        why.contains("no strategic agent can take it over") && why.contains("on fire"),
        "{why}"
    );
    // What a person can do, as data: each step its command (full ids) and what it is.
    assert_eq!(
        needs[0]["next"],
        serde_json::json!([
            {
                "description": "run it again with more attempts",
                "command": ["maos", "task", "retry", broken],
                "step": {"action": "retry", "task": broken}
            },
            {
                "description": "cancel it",
                "command": ["maos", "task", "cancel", broken],
                "step": {"action": "cancel", "task": broken}
            }
        ]),
        "{s:#}"
    );
    // What follows the summary is the error line of exit 7.
    assert_eq!(docs.len(), at + 2, "{}", run.stdout);
    for d in &docs[at + 1..] {
        assert_eq!(type_of(d), "error", "{d}");
        assert_eq!(d["error"]["exit_code"], 7, "{d}");
    }
    assert!(
        run.stderr.contains(&format!(
            "orchestration {} stopped with 1 of 3 tasks completed",
            short(&orch)
        )),
        "{}",
        run.stderr
    );

    // Every event of the orchestration and its tasks from the first one streamed on, in
    // order, without a gap: the log has no other (the watch ended when the last task settled).
    let seqs: Vec<u64> = streamed
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    let logged: Vec<Value> = events(&env)
        .into_iter()
        .filter(|e| ours.contains(e["aggregate_id"].as_str().unwrap()))
        .filter(|e| e["seq"].as_u64().unwrap() >= seqs[0])
        .collect();
    let expected: Vec<u64> = logged.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    let kinds = |list: &[Value]| -> Vec<String> {
        list.iter()
            .map(|e| {
                format!(
                    "{} {} {}",
                    e["seq"],
                    short(e["aggregate_id"].as_str().unwrap()),
                    e["kind"].as_str().unwrap()
                )
            })
            .collect()
    };
    assert_eq!(
        seqs,
        expected,
        "the stream missed events of the orchestration's tasks:\nstreamed {:#?}\nlogged {:#?}",
        kinds(streamed),
        kinds(&logged)
    );
    for (id, kind) in [
        (&fine, "task.completed"),
        (&broken, "task.attempt_failed"),
        (&broken, "task.blocked"),
    ] {
        assert!(
            streamed
                .iter()
                .any(|e| e["aggregate_id"] == id.as_str() && e["kind"] == kind),
            "{kind} of {id} not streamed:\n{}",
            run.stdout
        );
    }
}

// ---- 6. workflows ----

const BAD_WORKFLOW: &str = r#"name = "loopy"
version = 1

[[stage]]
key = "start"
capabilities = ["code"]
prompt = "Start {goal}"

[[stage]]
key = "b"
capabilities = ["code"]
prompt = "B {goal}"

[[stage]]
key = "c"
capabilities = ["code"]
prompt = "C {goal}"

[[handoff]]
from = "b"
to = "c"

[[handoff]]
from = "c"
to = "b"
"#;

const MY_WORKFLOW: &str = r#"name = "draft-review"
version = 3
description = "Write a draft, then have it reviewed"

[[stage]]
key = "draft"
title = "Write a draft"
capabilities = ["code"]
prompt = "Draft: {goal}"

[[stage]]
key = "review"
title = "Review the draft"
capabilities = ["review"]
tier = "strategic"
risk = "medium"
verify = "test -f REVIEW.md"
prompt = "Review the draft of: {goal}"

[[handoff]]
from = "draft"
to = "review"
"#;

#[test]
fn workflows_are_listed_shown_and_validated_with_every_problem_and_its_line() {
    let env = Env::new();
    // A workflow file of the data directory, and a broken one that the list skips.
    let mine = write_file(&env, "workflows/draft-review.toml", MY_WORKFLOW);
    let broken = write_file(&env, "workflows/loopy.toml", BAD_WORKFLOW);

    let list = env.step(&["workflow", "list"]);
    assert_eq!(list.code, 0, "{}", list.stderr);
    for row in ["tdd", "single", "draft-review"] {
        assert!(
            list.stdout
                .lines()
                .any(|l| l.starts_with(&format!("{row} "))),
            "{row} missing:\n{}",
            list.stdout
        );
    }
    assert!(list.stderr.contains("skipped"), "{}", list.stderr);
    assert!(list.stderr.contains("loopy.toml"), "{}", list.stderr);
    let listed = env.ok_json(&["workflow", "list"]);
    let names: Vec<(&str, &str)> = listed["workflows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| (w["name"].as_str().unwrap(), w["source"].as_str().unwrap()))
        .collect();
    assert_eq!(
        names,
        [
            ("tdd", "built-in"),
            ("single", "built-in"),
            ("draft-review", mine.as_str())
        ]
    );

    env.step(&["workflow", "show", "tdd"]);
    let tdd = env.step(&["workflow", "show", "tdd", "--json"]).json();
    let stages: Vec<(&str, &str, &str)> = tdd["workflow"]["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["key"].as_str().unwrap(),
                s["capabilities"][0].as_str().unwrap(),
                s["tier"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        stages,
        [
            ("plan", "plan", "strategic"),
            ("tests", "test", "tactical"),
            ("implement", "code", "tactical"),
            ("review", "review", "strategic"),
        ]
    );
    assert_eq!(tdd["workflow"]["handoffs"].as_array().unwrap().len(), 3);
    env.step(&["workflow", "show", "single"]);
    env.step(&["workflow", "show", "draft-review"]);
    env.step(&["workflow", "show", "draft-review", "--json"]);

    // The example workflow is valid.
    let strict = example("workflows/tdd-strict.toml");
    let ok = env.maos(&["workflow", "validate", &strict]);
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    assert!(
        ok.stdout
            .contains("is a valid workflow: tdd-strict version 2, 5 stages"),
        "{}",
        ok.stdout
    );
    let doc = env.ok_json(&["workflow", "validate", &strict]);
    assert_eq!(doc["workflow"]["name"], "tdd-strict");
    assert_eq!(doc["workflow"]["stages"].as_array().unwrap().len(), 5);
    env.step(&["workflow", "validate", &mine]);
    env.step(&["workflow", "validate", &mine, "--json"]);

    // A broken one: every problem, each with its line and column.
    let bad = env.step(&["workflow", "validate", &broken]);
    let bad_json = env.step(&["workflow", "validate", &broken, "--json"]);
    for run in [&bad, &bad_json] {
        assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
        assert!(run.stderr.contains("has 3 problems"), "{}", run.stderr);
        for place in [
            "10:7: stage \"b\" cannot be reached",
            "15:7: stage \"c\" cannot be reached",
            "24:8: the handoffs form a cycle",
        ] {
            assert!(
                run.stderr.contains(&format!("{broken}:{place}")),
                "{place} missing:\n{}",
                run.stderr
            );
        }
        assert!(run.stderr.contains("b → c → b"), "{}", run.stderr);
    }
    assert_eq!(bad_json.json()["error"]["exit_code"], 2);
    // The same file by name is refused the same way when a run asks for it; an unknown name
    // is not found. Nothing is created.
    let by_name = env.step(&[
        "orchestrate",
        "run",
        "--workflow",
        "loopy",
        "--goal",
        "Anything",
        "--yes",
    ]);
    assert_eq!(by_name.code, 2, "{}", by_name.stderr);
    let unknown = env.step(&[
        "orchestrate",
        "run",
        "--workflow",
        "nope",
        "--goal",
        "Anything",
        "--yes",
    ]);
    assert_eq!(unknown.code, 3, "{}", unknown.stderr);
    assert!(
        unknown.stderr.contains("tdd, single, draft-review"),
        "{}",
        unknown.stderr
    );
    assert!(
        env.ok_json(&["orchestrate", "list"])["orchestrations"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert_eq!(tasks_listed(&env), 0);
    insta::assert_snapshot!(env.transcript());
}

#[test]
fn the_single_workflow_runs_the_goal_on_one_capable_agent() {
    if in_process() {
        return;
    }
    let env = Env::new();
    let repo = Repo::new();
    let head = repo.rev("HEAD");
    let work = tempfile::tempdir().unwrap();
    let agent = script(
        work.path(),
        "single",
        "cp \"$MAOS_PROMPT_FILE\" briefing.md\necho 'wrote briefing.md'\n",
    );
    tiered_agent(&env, "coder", "code", "tactical", 2, &agent);
    let repo_arg = repo.arg();
    let goal = "Write down what you were asked";
    let args = [
        "orchestrate",
        "run",
        "--workflow",
        "single",
        "--goal",
        goal,
        "--repo",
        &repo_arg,
        "--yes",
        "--watch",
    ];
    let run = run_bounded(&env, &args, Duration::from_secs(60));
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("1 of 1 tasks completed"),
        "{}",
        run.stdout
    );
    let o = only_orchestration(&env);
    assert_eq!(o["status"], "completed");
    assert_eq!(o["goal"], goal);
    assert_eq!(o["name"], format!("single: {goal}"));
    let tasks = tasks_of(&env, str_of(&o["id"], "id"));
    assert_eq!(tasks.len(), 1);
    let t = &tasks[0];
    assert_eq!(t["title"], "Do it");
    assert_eq!(t["prompt"], goal);
    assert_eq!(t["capabilities"], serde_json::json!(["code"]));
    assert_eq!(t["attempts"][0]["agent"], "coder");
    // What the agent got, as it wrote it into the integration branch.
    let branch = str_of(&o["integration_branch"], "integration_branch");
    let got = repo.show(branch, "briefing.md").unwrap();
    assert!(
        got.starts_with(&format!("# Task: Do it\n\n{goal}\n")),
        "{got}"
    );
    assert!(
        got.contains("This task is one stage of the workflow single (version 1): do."),
        "{got}"
    );
    assert_eq!(got, briefing(&env, &id_of(t), 1));
    repo.assert_untouched(&head);
}

#[test]
fn the_tdd_workflow_runs_its_four_stages_in_order_each_handing_its_output_to_the_next() {
    if in_process() {
        return;
    }
    let env = Env::new();
    let repo = Repo::new();
    let head = repo.rev("HEAD");
    let work = tempfile::tempdir().unwrap();
    // Each stage's agent writes a file and ends with a summary line of its own.
    let stage = |name: &str, file: &str, line: &str| {
        script(
            work.path(),
            name,
            &format!(
                "mkdir -p \"$(dirname {file})\"\n\
                 echo '{line}' > {file}\n\
                 echo 'working on it'\n\
                 echo '{line}'\n"
            ),
        )
    };
    tiered_agent(
        &env,
        "planner",
        "plan",
        "strategic",
        2,
        &stage(
            "planner",
            "PLAN.md",
            "PLAN: add shout() in lib/shout.sh, test it in tests/shout.sh",
        ),
    );
    tiered_agent(
        &env,
        "tester",
        "test",
        "tactical",
        2,
        &stage(
            "tester",
            "tests/shout.sh",
            "TESTS: tests/shout.sh fails until shout() exists",
        ),
    );
    tiered_agent(
        &env,
        "coder",
        "code",
        "tactical",
        2,
        &stage(
            "coder",
            "lib/shout.sh",
            "CODE: shout() prints its argument in capitals",
        ),
    );
    // The reviewer changes nothing: it only reports.
    let reviewer = script(work.path(), "reviewer", "echo 'REVIEW: no problem found'\n");
    tiered_agent(&env, "reviewer", "review", "strategic", 2, &reviewer);

    let repo_arg = repo.arg();
    let goal = "Add a shout function";
    let args = [
        "orchestrate",
        "run",
        "--workflow",
        "tdd",
        "--goal",
        goal,
        "--repo",
        &repo_arg,
        "--yes",
        "--watch",
    ];
    let run = run_bounded(&env, &args, Duration::from_secs(120));
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("4 of 4 tasks completed"),
        "{}",
        run.stdout
    );
    let o = only_orchestration(&env);
    assert_eq!(o["status"], "completed");
    let tasks = tasks_of(&env, str_of(&o["id"], "id"));
    assert_eq!(tasks.len(), 4);
    let plan = titled(&tasks, "Plan");
    let tests = titled(&tasks, "Write failing tests");
    let implement = titled(&tasks, "Make the tests pass");
    let review = titled(&tasks, "Review");

    // Each stage on the agent of its capability and tier, one after the other.
    let chain = [
        (
            plan,
            "planner",
            "PLAN: add shout() in lib/shout.sh, test it in tests/shout.sh",
        ),
        (
            tests,
            "tester",
            "TESTS: tests/shout.sh fails until shout() exists",
        ),
        (
            implement,
            "coder",
            "CODE: shout() prints its argument in capitals",
        ),
        (review, "reviewer", "REVIEW: no problem found"),
    ];
    for (t, agent, _) in &chain {
        assert_eq!(t["state"], "completed", "{t:#}");
        let attempts = t["attempts"].as_array().unwrap();
        assert_eq!(attempts.len(), 1, "{t:#}");
        assert_eq!(attempts[0]["agent"], *agent);
    }
    assert_eq!(plan["tier"], "strategic");
    assert_eq!(tests["tier"], "tactical");
    assert_eq!(implement["tier"], "tactical");
    assert_eq!(review["tier"], "strategic");
    for pair in chain.windows(2) {
        let (from, _, summary) = &pair[0];
        let (to, _, _) = &pair[1];
        assert_eq!(to["depends_on"], serde_json::json!([id_of(from)]));
        assert!(
            time_of(&to["attempts"][0], "assigned_at") >= time_of(&from["attempts"][0], "ended_at")
        );
        // The stage's briefing carries what the stage before it produced.
        let b = briefing(&env, &id_of(to), 1);
        let heading = format!(
            "\n## Inputs from earlier tasks\n\n### {} (task {})\n\n",
            from["title"].as_str().unwrap(),
            short(&id_of(from))
        );
        let at = b
            .find(&heading)
            .unwrap_or_else(|| panic!("{heading:?} missing:\n{b}"));
        assert!(b[at..].contains(summary), "{summary:?} missing:\n{b}");
        assert!(b.contains(&format!("\n## Goal\n\n{goal}\n")), "{b}");
        assert!(
            b.contains("This task is one stage of the workflow tdd (version 1): plan → tests → implement → review."),
            "{b}"
        );
    }
    // The plan's briefing has no inputs; the review's names only the implementation.
    assert!(!briefing(&env, &id_of(plan), 1).contains("## Inputs from earlier tasks"));
    let rb = briefing(&env, &id_of(review), 1);
    assert!(!rb.contains("PLAN: add shout()"), "{rb}");

    // Everything but the review's report is in the integration branch.
    let branch = str_of(&o["integration_branch"], "integration_branch");
    for (file, line) in [
        ("PLAN.md", chain[0].2),
        ("tests/shout.sh", chain[1].2),
        ("lib/shout.sh", chain[2].2),
    ] {
        assert_eq!(
            repo.show(branch, file).as_deref(),
            Some(format!("{line}\n").as_str())
        );
    }
    repo.assert_untouched(&head);
}

// ---- 7. the lifecycle ----

#[test]
fn draft_start_pause_pause_now_resume_and_cancel_steer_an_orchestrations_tasks() {
    if in_process() {
        return;
    }
    let env = Env::new();
    let work = tempfile::tempdir().unwrap();
    let gates = work.path().join("gates");
    std::fs::create_dir(&gates).unwrap();
    let log = work.path().join("log");
    // A task whose title has a `.hold` file waits until its `.go` file exists (30 s at most).
    let agent = script(
        work.path(),
        "worker",
        &format!(
            "echo \"start $MAOS_TASK_TITLE $MAOS_ATTEMPT\" >> {log}\n\
             if [ -e \"{gates}/$MAOS_TASK_TITLE.hold\" ]; then\n\
               i=0\n\
               while [ ! -e \"{gates}/$MAOS_TASK_TITLE.go\" ]; do\n\
                 i=$((i + 1)); if [ $i -gt 600 ]; then exit 1; fi\n\
                 sleep 0.05\n\
               done\n\
             fi\n\
             echo \"end $MAOS_TASK_TITLE $MAOS_ATTEMPT\" >> {log}\n\
             echo \"did $MAOS_TASK_TITLE\"\n",
            log = log.display(),
            gates = gates.display()
        ),
    );
    tiered_agent(&env, "worker", "work", "tactical", 2, &agent);
    let hold = |title: &str| std::fs::write(gates.join(format!("{title}.hold")), "").unwrap();
    let go = |title: &str| std::fs::write(gates.join(format!("{title}.go")), "").unwrap();
    let log_text = || std::fs::read_to_string(&log).unwrap_or_default();
    let task = |title: &str, extra: &[&str]| -> String {
        let mut args = vec!["task", "create", title, "-c", "work", "--max-attempts", "3"];
        args.extend(extra);
        create_ok(&env, &args)
    };

    // Draft: its tasks wait for it to start, and say so.
    let o = env.ok_json(&["orchestrate", "create", "Steering", "--goal", "Steer it"]);
    let orch = str_of(&o["orchestration"]["id"], "id").to_owned();
    assert_eq!(o["orchestration"]["status"], "draft");
    let a = task("alpha", &["--orchestration", &orch]);
    let b = task("beta", &["--orchestration", &orch, "--depends-on", &a]);
    std::thread::sleep(Duration::from_secs(1));
    let doc = env.ok_json(&["task", "show", &a]);
    assert_eq!(doc["task"]["state"], "ready");
    assert_eq!(doc["task"]["attempts"], serde_json::json!([]));
    let waiting = doc["waiting"].as_array().unwrap();
    assert_eq!(waiting.len(), 1, "{doc:#}");
    assert_eq!(waiting[0]["kind"], "orchestration");
    assert!(
        str_of(&waiting[0]["detail"], "detail").contains("has not started"),
        "{doc:#}"
    );
    let doc_b = env.ok_json(&["task", "show", &b]);
    assert_eq!(doc_b["task"]["state"], "pending");
    assert!(waits_for_kind(&doc_b, "dependency"), "{doc_b:#}");
    assert_eq!(log_text(), "");

    // Started: they run, in order.
    let started = env.ok_json(&["orchestrate", "start", &orch]);
    assert_eq!(started["orchestration"]["status"], "running");
    settle(&env, &a, "completed");
    settle(&env, &b, "completed");
    assert_eq!(
        log_text(),
        "start alpha 1\nend alpha 1\nstart beta 1\nend beta 1\n"
    );

    // Paused while a task runs: the running attempt finishes, a ready task stays ready.
    hold("gamma");
    let c = task("gamma", &["--orchestration", &orch]);
    wait_state(&env, &c, "running");
    let paused = env.ok_json(&["orchestrate", "pause", &orch]);
    assert_eq!(paused["orchestration"]["status"], "paused");
    let d = task("delta", &["--orchestration", &orch]);
    go("gamma");
    let gamma = settle(&env, &c, "completed");
    assert_eq!(gamma["attempts"].as_array().unwrap().len(), 1);
    std::thread::sleep(Duration::from_secs(1));
    let doc_d = env.ok_json(&["task", "show", &d]);
    assert_eq!(doc_d["task"]["state"], "ready", "{doc_d:#}");
    assert_eq!(doc_d["task"]["attempts"], serde_json::json!([]));
    assert!(waits_for_kind(&doc_d, "orchestration"), "{doc_d:#}");
    assert!(
        doc_d["waiting"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("is paused"),
        "{doc_d:#}"
    );
    assert!(!log_text().contains("delta"));

    // Resumed: the ready task runs.
    let resumed = env.ok_json(&["orchestrate", "resume", &orch]);
    assert_eq!(resumed["orchestration"]["status"], "running");
    settle(&env, &d, "completed");

    // Paused now: the running attempt is stopped and its task waits to run again.
    hold("epsilon");
    let e = task("epsilon", &["--orchestration", &orch]);
    let running = wait_state(&env, &e, "running");
    let pid = running["attempts"][0]["pid"].as_u64().unwrap();
    assert!(Path::new(&format!("/proc/{pid}")).exists());
    let paused = env.ok_json(&["orchestrate", "pause", &orch, "--now"]);
    assert_eq!(paused["orchestration"]["status"], "paused");
    let stopped = wait_doc(&env, &e, "stopped", |doc| {
        matches!(doc["task"]["state"].as_str(), Some("ready" | "retrying"))
            && doc["task"]["attempts"][0]["ended_at"].is_string()
    });
    let t = &stopped["task"];
    assert_eq!(t["attempts"].as_array().unwrap().len(), 1, "{t:#}");
    assert_eq!(t["attempts"][0]["status"], "interrupted", "{t:#}");
    // Its process is gone (the whole group was stopped), before it could finish.
    let deadline = Instant::now() + Duration::from_secs(15);
    while Path::new(&format!("/proc/{pid}")).exists() {
        assert!(
            Instant::now() < deadline,
            "the attempt's process {pid} still runs"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_secs(1));
    let still = env.ok_json(&["task", "show", &e]);
    assert_eq!(still["task"]["attempts"].as_array().unwrap().len(), 1);
    assert!(!log_text().contains("end epsilon"), "{}", log_text());
    assert_eq!(
        kinds_of(&events(&env), &e)
            .iter()
            .filter(|k| *k == "task.attempt_interrupted")
            .count(),
        1
    );
    // Resumed, it runs again and completes.
    env.ok_json(&["orchestrate", "resume", &orch]);
    let again = wait_for(&env, &e, "running again", |t| {
        t["attempts"].as_array().unwrap().len() == 2
    });
    assert_eq!(again["attempts"][1]["number"], 2);
    go("epsilon");
    let done = settle(&env, &e, "completed");
    assert_eq!(done["attempts"][1]["status"], "succeeded");
    assert!(
        log_text().contains("start epsilon 2\nend epsilon 2\n"),
        "{}",
        log_text()
    );

    // The status: every task, and what they came to.
    let status = env.ok_json(&["orchestrate", "status", &orch]);
    assert_eq!(status["schema_version"], 1);
    assert_eq!(status["orchestration"]["id"], orch.as_str());
    assert_eq!(status["orchestration"]["status"], "running");
    let listed: Vec<&str> = status["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["title"].as_str().unwrap())
        .collect();
    assert_eq!(listed, ["alpha", "beta", "gamma", "delta", "epsilon"]);
    let s = &status["summary"];
    assert_eq!(s["tasks"], 5);
    assert_eq!(s["completed"], 5);
    assert_eq!(s["attempts"], 6);
    assert_eq!(s["status"], "running");
    assert_eq!(s["needs_a_person"], serde_json::json!([]));
    for key in [
        "orchestration",
        "status",
        "tasks",
        "completed",
        "by_state",
        "attempts",
        "wall_ms",
        "input_tokens",
        "output_tokens",
        "cost_usd",
        "needs_a_person",
        "integration_branch",
    ] {
        assert!(s.get(key).is_some(), "{key} missing: {s:#}");
    }

    // Cancelled: its unfinished tasks are cancelled (the running one stopped), the finished
    // ones stay as they were.
    hold("zeta");
    let f = task("zeta", &["--orchestration", &orch]);
    let g = task("eta", &["--orchestration", &orch, "--depends-on", &f]);
    let zeta = wait_state(&env, &f, "running");
    let zpid = zeta["attempts"][0]["pid"].as_u64().unwrap();
    let cancelled = env.ok_json(&["orchestrate", "cancel", &orch, "--reason", "enough"]);
    assert_eq!(cancelled["orchestration"]["status"], "cancelled");
    let zf = wait_state(&env, &f, "cancelled");
    assert!(str_of(&zf["reason"], "reason").contains("enough"), "{zf:#}");
    assert_eq!(
        env.ok_json(&["task", "show", &g])["task"]["state"],
        "cancelled"
    );
    for done in [&a, &b, &c, &d, &e] {
        assert_eq!(
            env.ok_json(&["task", "show", done])["task"]["state"],
            "completed"
        );
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    while Path::new(&format!("/proc/{zpid}")).exists() {
        assert!(
            Instant::now() < deadline,
            "zeta's process {zpid} still runs"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!log_text().contains("start eta "), "{}", log_text());
    assert!(!log_text().contains("end zeta"), "{}", log_text());
    assert_eq!(orchestration_status(&env, &orch), "cancelled");
    assert_verified(&env);
}

/// An orchestration whose tasks never get an agent (nobody offers their capabilities), in
/// every state a graph shows: ready, pending, cancelled and blocked.
fn graph_orchestration(env: &Env) -> String {
    let o = env.ok_json(&[
        "orchestrate",
        "create",
        "Release \"2.0\"",
        "--goal",
        "Ship it",
    ]);
    let orch = str_of(&o["orchestration"]["id"], "id").to_owned();
    let t = |title: &str, deps: &[&str]| -> String {
        let mut args = vec![
            "task",
            "create",
            title,
            "-c",
            "design",
            "--orchestration",
            &orch,
        ];
        for d in deps {
            args.extend(["--depends-on", d]);
        }
        create_ok(env, &args)
    };
    // A tree: the order of several dependencies of one task follows their random ids, and the
    // snapshot must not.
    let design = t("Design", &[]);
    let build = t("Build", &[&design]);
    t("Check", &[&build]);
    let notes = t("Write the notes", &[&design]);
    t("Publish", &[&notes]);
    env.ok_json(&["orchestrate", "start", &orch]);
    env.ok_json(&["task", "cancel", &notes, "--reason", "not this time"]);
    orch
}

#[test]
fn status_and_graph_show_every_task_and_the_edges_of_depends_on() {
    let env = Env::new();
    let orch = graph_orchestration(&env);
    let status = env.step(&["orchestrate", "status", &orch]);
    assert_eq!(status.code, 0, "{}", status.stderr);
    assert!(
        status.stdout.contains("Needs a person:"),
        "{}",
        status.stdout
    );
    let json = env.step(&["orchestrate", "status", &orch, "--json"]).json();
    assert_eq!(json["schema_version"], 1);
    assert_eq!(json["orchestration"]["id"], orch.as_str());
    let s = &json["summary"];
    // The same full id as the orchestration's (not a short one beside it).
    assert_eq!(s["orchestration"], orch.as_str());
    assert_eq!(s["tasks"], 5);
    assert_eq!(s["completed"], 0);
    assert_eq!(
        s["by_state"],
        serde_json::json!({"blocked": 1, "cancelled": 1, "pending": 2, "ready": 1})
    );
    // Publish is blocked; Design is ready, but no registered agent can do it.
    let needs = s["needs_a_person"].as_array().unwrap();
    let mut who: Vec<(String, String)> = needs
        .iter()
        .map(|n| {
            (
                str_of(&n["title"], "title").to_owned(),
                str_of(&n["state"], "state").to_owned(),
            )
        })
        .collect();
    who.sort();
    assert_eq!(
        who,
        [
            ("Design".to_owned(), "ready".to_owned()),
            ("Publish".to_owned(), "blocked".to_owned())
        ],
        "{s:#}"
    );
    let design = needs.iter().find(|n| n["title"] == "Design").unwrap();
    assert!(
        str_of(&design["why"], "why").contains("no agent that takes work offers"),
        "{design:#}"
    );
    // Each names its task by full id; what a person can do is data: a command (full ids) per
    // step. No agent offers what Design needs: register one (or look at it, or cancel it).
    // Publish's dependency was cancelled: it can only be cancelled.
    let tasks = tasks_of(&env, &orch);
    let (design_id, publish_id) = (
        id_of(titled(&tasks, "Design")),
        id_of(titled(&tasks, "Publish")),
    );
    assert_eq!(design["task"], design_id.as_str());
    assert_eq!(
        design["next"],
        serde_json::json!([
            {
                "description": "register an agent that offers what it needs",
                "command": ["maos", "agent", "register"],
                "step": {"action": "register_agent"}
            },
            {
                "description": "see its state, history and what it waits for",
                "command": ["maos", "task", "show", design_id],
                "step": {"action": "show_task", "task": design_id}
            },
            {
                "description": "cancel it",
                "command": ["maos", "task", "cancel", design_id],
                "step": {"action": "cancel", "task": design_id}
            }
        ]),
        "{design:#}"
    );
    let publish = needs.iter().find(|n| n["title"] == "Publish").unwrap();
    assert_eq!(publish["task"], publish_id.as_str());
    assert_eq!(
        publish["next"],
        serde_json::json!([{
            "description": "cancel it",
            "command": ["maos", "task", "cancel", publish_id],
            "step": {"action": "cancel", "task": publish_id}
        }]),
        "{publish:#}"
    );

    let mermaid = env.step(&["orchestrate", "graph", &orch, "--format", "mermaid"]);
    let dot = env.step(&["orchestrate", "graph", &orch, "--format", "dot"]);
    let default = env.maos(&["orchestrate", "graph", &orch]);
    assert_eq!(default.stdout, mermaid.stdout, "mermaid is the default");
    let doc = env
        .step(&["orchestrate", "graph", &orch, "--format", "dot", "--json"])
        .json();
    assert_eq!(doc["schema_version"], 1);
    assert_eq!(doc["format"], "dot");
    assert_eq!(
        doc["graph"].as_str().unwrap().trim_end(),
        dot.stdout.trim_end()
    );
    let snapshot = mask_wall_time(&env.transcript());

    // The edges are the dependencies, from what is needed to what needs it; a task that waits
    // for two has an edge from each.
    let tasks = tasks_of(&env, &orch);
    let check = id_of(titled(&tasks, "Check"));
    let build = id_of(titled(&tasks, "Build"));
    create_ok(
        &env,
        &[
            "task",
            "create",
            "Ship",
            "-c",
            "design",
            "--orchestration",
            &orch,
            "--depends-on",
            &check,
            "--depends-on",
            &build,
        ],
    );
    let mermaid = env.maos(&["orchestrate", "graph", &orch, "--format", "mermaid"]);
    let dot = env.maos(&["orchestrate", "graph", &orch, "--format", "dot"]);
    let tasks = tasks_of(&env, &orch);
    let mut expected_mermaid = BTreeSet::new();
    let mut expected_dot = BTreeSet::new();
    for t in &tasks {
        for d in t["depends_on"].as_array().unwrap() {
            let (from, to) = (short(d.as_str().unwrap()), short(str_of(&t["id"], "id")));
            expected_mermaid.insert(format!("  t{from} --> t{to}"));
            expected_dot.insert(format!("  t{from} -> t{to};"));
        }
    }
    assert_eq!(expected_mermaid.len(), 6);
    let edges = |text: &str, arrow: &str| -> BTreeSet<String> {
        text.lines()
            .filter(|l| l.contains(arrow))
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(edges(&mermaid.stdout, " --> "), expected_mermaid);
    assert_eq!(edges(&dot.stdout, " -> "), expected_dot);
    assert!(mermaid.stdout.starts_with("flowchart LR\n"));
    assert!(
        dot.stdout
            .starts_with(&format!("digraph \"{}\" {{\n", short(&orch)))
    );
    insta::assert_snapshot!(snapshot);
}

// ---- 8. bad input ----

/// Runs `args`, expects exit `code` with `error:` on stderr, and that nothing changed.
fn refused(env: &Env, args: &[&str], code: i32) {
    let before = env.state();
    let run = env.step(args);
    assert_eq!(run.code, code, "{args:?}\n{}{}", run.stdout, run.stderr);
    assert!(
        run.stderr.starts_with("error: "),
        "{args:?}: {}",
        run.stderr
    );
    assert_eq!(env.state(), before, "{args:?} changed the database");
}

#[test]
fn unknown_orchestrations_illegal_transitions_and_bad_formats_are_refused() {
    let env = Env::new();
    let o = env.ok_json(&["orchestrate", "create", "Running"]);
    let running = str_of(&o["orchestration"]["id"], "id").to_owned();
    env.ok_json(&["orchestrate", "start", &running]);
    let d = env.ok_json(&["orchestrate", "create", "Draft"]);
    let draft = str_of(&d["orchestration"]["id"], "id").to_owned();

    refused(&env, &["orchestrate", "start", "zzzz"], 3);
    refused(&env, &["orchestrate", "status", "zzzz"], 3);
    refused(&env, &["orchestrate", "start", &running], 4);
    refused(&env, &["orchestrate", "resume", &running], 4);
    refused(&env, &["orchestrate", "pause", &draft], 4);
    refused(
        &env,
        &["orchestrate", "graph", &running, "--format", "png"],
        2,
    );
    refused(
        &env,
        &["orchestrate", "run", "/nonexistent/plan.toml", "--yes"],
        2,
    );
    refused(&env, &["orchestrate", "run", "--yes"], 2);
    refused(
        &env,
        &[
            "orchestrate",
            "run",
            "--workflow",
            "single",
            "--goal",
            "  ",
            "--yes",
        ],
        2,
    );
    // A cancelled orchestration stays cancelled.
    env.ok_json(&["orchestrate", "cancel", &draft]);
    refused(&env, &["orchestrate", "start", &draft], 4);
    refused(&env, &["orchestrate", "cancel", &draft], 4);
    assert_eq!(orchestration_status(&env, &running), "running");
    insta::assert_snapshot!(env.transcript());
}

// ---- plans of any size ----

/// A plan of `n` tasks; `depends_on(i)` names the tasks task `i` waits for.
fn big_plan(n: usize, depends_on: impl Fn(usize) -> Vec<usize>) -> String {
    let mut text = String::from("goal = \"Big\"\nname = \"big\"\n");
    for i in 0..n {
        text.push_str(&format!(
            "\n[[task]]\nid = \"t{i}\"\ntitle = \"Task {i}\"\nprompt = \"Do part {i}\"\n"
        ));
        let deps = depends_on(i);
        if !deps.is_empty() {
            let names: Vec<String> = deps.iter().map(|d| format!("\"t{d}\"")).collect();
            text.push_str(&format!("depends_on = [{}]\n", names.join(", ")));
        }
    }
    text
}

/// The plan check and the preview are near-linear: 100,000 tasks with no dependencies, in one
/// chain, and all but one waited for by the last (a fan-in), each checked and shown in full (a
/// quadratic step would take hours here; the refusal for want of a terminal comes after both),
/// and the cycle closing the chain found and reported once.
#[test]
fn plans_of_a_hundred_thousand_tasks_are_checked_and_shown() {
    const N: usize = 100_000;
    let env = Env::new();
    let flat = big_plan(N, |_| vec![]);
    let chain = big_plan(N, |i| if i == 0 { vec![] } else { vec![i - 1] });
    let fan_in = big_plan(N, |i| {
        if i == N - 1 {
            (0..N - 1).collect()
        } else {
            vec![]
        }
    });
    for (name, text) in [("flat", &flat), ("chain", &chain), ("fan-in", &fan_in)] {
        let plan = write_file(&env, &format!("{name}.toml"), text);
        let run = env.maos(&["orchestrate", "run", &plan]);
        assert_eq!(run.code, 2, "{name}: {}", run.stderr);
        assert!(
            run.stderr.contains("no terminal to ask on"),
            "{name}: {}",
            run.stderr
        );
        assert!(
            run.stdout.starts_with("Plan \"big\": 100000 tasks"),
            "{name}: {}",
            &run.stdout[..run.stdout.len().min(200)]
        );
        let lines: Vec<&str> = run.stdout.lines().filter(|l| l.contains("Task ")).collect();
        assert_eq!(lines.len(), N, "{name}");
        if name == "fan-in" {
            // The task that waits for every other comes last.
            assert!(
                lines[N - 1]
                    .trim_start()
                    .starts_with(&format!("t{}", N - 1))
            );
        }
    }
    // The chain in reverse order in the file: shown in dependency order all the same.
    let reversed = big_plan(N, |i| if i == N - 1 { vec![] } else { vec![i + 1] });
    let plan = write_file(&env, "reversed.toml", &reversed);
    let run = env.maos(&["orchestrate", "run", &plan]);
    let first: Vec<&str> = run
        .stdout
        .lines()
        .filter(|l| l.contains("Task "))
        .take(2)
        .collect();
    assert!(
        first[0].trim_start().starts_with(&format!("t{} ", N - 1)),
        "{first:?}"
    );
    assert!(
        first[1].trim_start().starts_with(&format!("t{} ", N - 2)),
        "{first:?}"
    );
    // Closing the chain into one long cycle: reported once, as a cycle through every task.
    let ring = big_plan(N, |i| if i == 0 { vec![N - 1] } else { vec![i - 1] });
    let plan = write_file(&env, "ring.toml", &ring);
    let run = env.maos(&["orchestrate", "run", &plan]);
    assert_eq!(run.code, 2, "{}", &run.stderr[..run.stderr.len().min(500)]);
    assert_eq!(run.stderr.matches("dependency cycle").count(), 1);
    assert!(
        run.stderr
            .contains(&format!("dependency cycle t0 → t{} → t{}", N - 1, N - 2)),
        "{}",
        &run.stderr[..run.stderr.len().min(500)]
    );
}

#[test]
fn a_workflow_that_asks_for_lessons_says_so_and_its_stages_tasks_carry_it() {
    let env = Env::new();
    let learning = MY_WORKFLOW
        .replace("description = ", "lessons = true\ndescription = ")
        .replace(
            "verify = \"test -f REVIEW.md\"\n",
            "verify = \"test -f REVIEW.md\"\nlessons = false\n",
        );
    let file = write_file(&env, "learning.toml", &learning);
    let shown = env.maos(&["workflow", "show", &file]);
    assert_eq!(shown.code, 0, "{}", shown.stderr);
    assert!(
        shown
            .stdout
            .ends_with("Lessons after failed attempts: draft\n"),
        "{}",
        shown.stdout
    );
    let doc = env.ok_json(&["workflow", "show", &file]);
    let stages = doc["workflow"]["stages"].as_array().unwrap();
    assert_eq!(stages[0]["lessons"], true, "{doc:#}");
    assert!(stages[1].get("lessons").is_none(), "{doc:#}");
    // Without the setting, nothing is said.
    let plain = write_file(&env, "plain.toml", MY_WORKFLOW);
    let shown = env.maos(&["workflow", "show", &plain]);
    assert!(!shown.stdout.contains("Lessons"), "{}", shown.stdout);

    // Agents that could take the stages (the plan is refused without them).
    tiered_agent(&env, "coder", "code", "tactical", 1, "true");
    tiered_agent(&env, "reviewer", "review", "strategic", 1, "true");
    let run = env.maos(&[
        "orchestrate",
        "run",
        "--workflow",
        &file,
        "--goal",
        "Write it up",
        "--no-repo",
        "--yes",
    ]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let o = only_orchestration(&env);
    let tasks = tasks_of(&env, str_of(&o["id"], "id"));
    // By title: tasks created in the same millisecond list in id order.
    let mut asks: Vec<(&str, bool)> = tasks
        .iter()
        .map(|t| {
            (
                t["title"].as_str().unwrap(),
                t.get("lessons").is_some_and(|l| l == true),
            )
        })
        .collect();
    asks.sort_unstable();
    assert_eq!(
        asks,
        [("Review the draft", false), ("Write a draft", true)],
        "{tasks:#?}"
    );
}
