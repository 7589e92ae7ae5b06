//! Waiting, concern locks, retries, escalation, the circuit breaker, routing and briefings end to
//! end, through the real binary and its daemon: `command` agents (scripts) that wait for a gate
//! file, fail on purpose or write long results. Only the daemon runs agents, so the tests that need
//! them do nothing in process; routing and a bad `config.toml` are checked in both transports.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};

use crate::fixtures::*;
use crate::support::{Env, in_process};

// ---- helpers ----

/// Gate files in a directory: an agent started by [`Gates::agent`] waits until the file named
/// after its task's title exists, so the test decides when each attempt ends.
struct Gates {
    dir: PathBuf,
}

impl Gates {
    fn new(work: &Path) -> Gates {
        let dir = work.join("gates");
        std::fs::create_dir_all(&dir).unwrap();
        Gates { dir }
    }

    /// The command of an agent that waits for its task's gate (a minute at most), then succeeds.
    fn agent(&self, work: &Path, name: &str) -> String {
        script(
            work,
            name,
            &format!(
                "i=0\n\
                 while [ ! -e \"{gates}/$MAOS_TASK_TITLE\" ]; do\n\
                   i=$((i + 1))\n\
                   if [ $i -gt 1200 ]; then echo 'the gate never opened'; exit 1; fi\n\
                   sleep 0.05\n\
                 done\n",
                gates = self.dir.display()
            ),
        )
    }

    fn open(&self, title: &str) {
        std::fs::write(self.dir.join(title), b"").unwrap();
    }
}

/// Milliseconds since the Unix epoch of a time as MAOS prints it (`2026-11-21T05:33:18.123Z`).
fn millis(t: &Value) -> i64 {
    let t = t.as_str().unwrap_or_else(|| panic!("not a time: {t}"));
    assert!(
        t.len() == 24 && t.ends_with('Z') && &t[10..11] == "T",
        "not a time: {t}"
    );
    let n = |r: std::ops::Range<usize>| -> i64 { t[r].parse().unwrap() };
    let (y, m, d) = (n(0..4), n(5..7), n(8..10));
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    ((days * 86_400 + n(11..13) * 3600 + n(14..16) * 60 + n(17..19)) * 1000) + n(20..23)
}

#[test]
fn millis_reads_maos_times() {
    assert_eq!(millis(&json!("1970-01-01T00:00:00.000Z")), 0);
    assert_eq!(
        millis(&json!("2026-11-21T09:31:47.095Z")),
        1_795_253_507_095
    );
    assert_eq!(millis(&json!("2000-03-01T00:00:01.250Z")), 951_868_801_250);
}

/// The events of one task, agent or orchestration (by its full id).
fn events_of(env: &Env, id: &str) -> Vec<Value> {
    events(env)
        .into_iter()
        .filter(|e| e["aggregate_id"] == id)
        .collect()
}

fn kinds(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["kind"].as_str().unwrap()).collect()
}

/// The sequence number of the first event of `kind` in `events`.
fn seq_of(events: &[Value], kind: &str) -> u64 {
    events
        .iter()
        .find(|e| e["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} in {:?}", kinds(events)))["seq"]
        .as_u64()
        .unwrap()
}

/// `task show --json`: the task and what it waits for.
fn show(env: &Env, id: &str) -> Value {
    env.ok_json(&["task", "show", id])
}

/// The kinds of what a `task show` document says the task waits for.
fn waits(doc: &Value) -> Vec<String> {
    doc["waiting"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["kind"].as_str().unwrap().to_owned())
        .collect()
}

/// The one thing of `kind` the task waits for.
fn waiting_of(doc: &Value, kind: &str) -> Value {
    let found: Vec<&Value> = doc["waiting"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["kind"] == kind)
        .collect();
    assert_eq!(found.len(), 1, "{kind} in {:#}", doc["waiting"]);
    found[0].clone()
}

fn attempts(task: &Value) -> &Vec<Value> {
    task["attempts"].as_array().unwrap()
}

/// Asserts that attempt `b` was assigned only after attempt `a` had ended.
fn assert_after(a: &Value, b: &Value) {
    assert!(
        millis(&b["assigned_at"]) >= millis(&a["ended_at"])
            && millis(&b["started_at"]) >= millis(&a["ended_at"]),
        "the second attempt began before the first ended:\n{a:#}\n{b:#}"
    );
}

/// Longer than a tick of the daemon's reaper (500 ms): whatever it would do has been done.
fn past_a_reaper_tick() {
    std::thread::sleep(Duration::from_millis(1200));
}

fn agent_doc(env: &Env, name: &str) -> Value {
    env.ok_json(&["agent", "show", name])["agent"].clone()
}

// ---- concern locks ----

#[test]
fn tasks_whose_concerns_overlap_run_one_after_the_other_and_disjoint_ones_run_together() {
    if in_process() {
        return;
    }
    let env = Env::new();
    let repo = Repo::new();
    let work = tempfile::tempdir().unwrap();
    let gates = Gates::new(work.path());
    command_agent(&env, "locker", 2, &gates.agent(work.path(), "locker"));
    let (orch, _) = orchestration(&env, &repo, &[]);
    let task = |title: &str, concern: &str| {
        id_of(&create(
            &env,
            title,
            &[
                "--orchestration",
                &orch,
                "--concern",
                concern,
                "--max-attempts",
                "1",
            ],
        ))
    };

    let alpha = task("alpha", "src/**");
    wait_state(&env, &alpha, "running");
    let beta = task("beta", "src/api.rs");
    let gamma = task("gamma", "docs/**");
    // gamma takes the agent's second slot at once, beside alpha, and waits for nothing.
    wait_state(&env, &gamma, "running");
    assert_eq!(show(&env, &gamma)["waiting"], json!([]));

    // beta has no attempt: it waits for the concern alpha holds, and `task show` says so.
    let doc = show(&env, &beta);
    assert_eq!(doc["task"]["state"], "ready", "{doc:#}");
    assert_eq!(doc["task"]["attempts"], json!([]));
    assert_eq!(doc["task"]["concerns"], json!(["src/api.rs"]));
    let concern = waiting_of(&doc, "concern");
    assert_eq!(concern["task"], alpha.as_str());
    let detail = concern["detail"].as_str().unwrap();
    for part in ["`src/api.rs`", "`src/**`", short(&alpha)] {
        assert!(detail.contains(part), "{part} missing from {detail}");
    }

    // gamma ends and frees a slot: beta still waits, for alpha's concern only.
    gates.open("gamma");
    let tc = settle(&env, &gamma, "completed");
    past_a_reaper_tick();
    let doc = show(&env, &beta);
    assert_eq!(doc["task"]["state"], "ready", "{doc:#}");
    assert_eq!(waits(&doc), ["concern"], "{doc:#}");
    assert_eq!(agent_doc(&env, "locker")["active"], 1);

    // alpha's work is accepted: beta runs.
    gates.open("alpha");
    let ta = settle(&env, &alpha, "completed");
    wait_state(&env, &beta, "running");
    assert_eq!(show(&env, &beta)["waiting"], json!([]));
    gates.open("beta");
    let tb = settle(&env, &beta, "completed");

    let (a, b, c) = (&attempts(&ta)[0], &attempts(&tb)[0], &attempts(&tc)[0]);
    assert_after(a, b);
    assert_overlap(a, c);
    // beta got its agent only once alpha had let go of its concern.
    let assigned = seq_of(&events_of(&env, &beta), "task.assigned");
    let completed = seq_of(&events_of(&env, &alpha), "task.completed");
    assert!(
        assigned > completed,
        "beta assigned at {assigned}, alpha completed at {completed}"
    );
    assert_verified(&env);
}

#[test]
fn a_named_resource_is_one_lock_across_repositories_while_paths_are_per_repository() {
    if in_process() {
        return;
    }
    let env = Env::new();
    let (one, two) = (Repo::new(), Repo::new());
    let work = tempfile::tempdir().unwrap();
    let gates = Gates::new(work.path());
    command_agent(&env, "locker", 3, &gates.agent(work.path(), "locker"));
    let task = |title: &str, repo: &Repo, concern: &str| {
        let repo = repo.arg();
        id_of(&create(
            &env,
            title,
            &["--repo", &repo, "--concern", concern, "--max-attempts", "1"],
        ))
    };

    // The same path glob in two repositories: no clash, both run.
    let p1 = task("p1", &one, "src/**");
    let p2 = task("p2", &two, "src/**");
    wait_state(&env, &p1, "running");
    wait_state(&env, &p2, "running");

    // The same named resource in two repositories: the second waits for the first.
    let q1 = task("q1", &one, "port:8080");
    wait_state(&env, &q1, "running");
    let q2 = task("q2", &two, "port:8080");
    let doc = show(&env, &q2);
    assert_eq!(doc["task"]["state"], "ready", "{doc:#}");
    let concern = waiting_of(&doc, "concern");
    assert_eq!(concern["task"], q1.as_str());
    assert!(
        concern["detail"].as_str().unwrap().contains("`port:8080`"),
        "{concern:#}"
    );

    // Slots free up, the resource does not.
    gates.open("p1");
    gates.open("p2");
    let t1 = settle(&env, &p1, "completed");
    let t2 = settle(&env, &p2, "completed");
    past_a_reaper_tick();
    let doc = show(&env, &q2);
    assert_eq!(doc["task"]["state"], "ready", "{doc:#}");
    assert_eq!(waits(&doc), ["concern"], "{doc:#}");

    gates.open("q1");
    let u1 = settle(&env, &q1, "completed");
    wait_state(&env, &q2, "running");
    gates.open("q2");
    let u2 = settle(&env, &q2, "completed");

    assert_overlap(&attempts(&t1)[0], &attempts(&t2)[0]);
    assert_after(&attempts(&u1)[0], &attempts(&u2)[0]);
}

#[test]
fn the_same_repository_named_by_one_of_its_directories_is_one_lock_scope() {
    if in_process() {
        return;
    }
    let env = Env::new();
    let repo = Repo::new();
    repo.write("sub/notes.md", "notes\n");
    repo.git(&["add", "-A"]);
    repo.git(&["commit", "-q", "-m", "sub"]);
    let work = tempfile::tempdir().unwrap();
    let gates = Gates::new(work.path());
    command_agent(&env, "locker", 2, &gates.agent(work.path(), "locker"));
    // Both work in the same repository (git works from any directory in it): README.md is the
    // same file for both.
    let top = repo.arg();
    let sub = repo.path().join("sub").display().to_string();
    let first = id_of(&create(
        &env,
        "first",
        &[
            "--repo",
            &top,
            "--concern",
            "README.md",
            "--max-attempts",
            "1",
        ],
    ));
    wait_state(&env, &first, "running");
    let second = id_of(&create(
        &env,
        "second",
        &[
            "--repo",
            &sub,
            "--concern",
            "README.md",
            "--max-attempts",
            "1",
        ],
    ));
    std::thread::sleep(Duration::from_millis(300));
    let doc = show(&env, &second);
    gates.open("first");
    gates.open("second");
    settle(&env, &first, "completed");
    assert_eq!(
        doc["task"]["state"], "ready",
        "two tasks edit README.md of {top} at once ({sub} is a directory of the same \
         repository): {doc:#}"
    );
    assert_eq!(waiting_of(&doc, "concern")["task"], first.as_str());
    settle(&env, &second, "completed");
}

// ---- what a task waits for ----

#[test]
fn task_show_says_what_a_waiting_task_waits_for() {
    if in_process() {
        return;
    }
    let env = Env::new();
    env.config("[retry]\nbase = \"1m\"\njitter_percent = 0\n");
    let work = tempfile::tempdir().unwrap();
    let gates = Gates::new(work.path());
    let fail = script(work.path(), "flaky", "echo 'it broke'\nexit 1\n");
    tiered_agent(&env, "flaky", "flaky", "tactical", 1, &fail);
    tiered_agent(
        &env,
        "busy",
        "slow",
        "tactical",
        1,
        &gates.agent(work.path(), "busy"),
    );
    let draft = env.ok_json(&["orchestrate", "create", "Later", "--goal", "Someday"]);
    let draft = draft["orchestration"]["id"].as_str().unwrap().to_owned();

    let in_draft = env.task("In a draft", &["--orchestration", &draft]);
    let after = env.task("After it", &["--depends-on", &in_draft]);
    let nobody = env.task("Nobody can", &["-c", "nobody"]);
    let risky = env.task("Risky", &["--risk", "high"]);
    let holder = env.task("Slow one", &["-c", "slow", "--concern", "db:main"]);
    wait_state(&env, &holder, "running");
    let busy = env.task("Slow two", &["-c", "slow"]);
    let same_db = env.task("Same db", &["-c", "slow", "--concern", "db:main"]);
    let flaky = env.task("Flaky", &["-c", "flaky"]);
    let retrying = wait_state(&env, &flaky, "retrying");

    // As JSON: the kinds, and the other task involved.
    let expect = [
        (&in_draft, vec!["orchestration"], None),
        (&after, vec!["dependency"], Some(&in_draft)),
        (&nobody, vec!["no_capable_agent"], None),
        (&risky, vec!["approval"], None),
        (&busy, vec!["agents_busy"], None),
        (&same_db, vec!["concern", "agents_busy"], Some(&holder)),
        (&flaky, vec!["backoff"], None),
    ];
    for (id, kinds, other) in &expect {
        let doc = show(&env, id);
        assert_eq!(waits(&doc), *kinds, "{doc:#}");
        let first = &doc["waiting"][0];
        assert_eq!(
            first["task"],
            other.map_or(Value::Null, |o| json!(o)),
            "{doc:#}"
        );
        assert!(!first["detail"].as_str().unwrap().is_empty());
    }
    assert_eq!(show(&env, &holder)["waiting"], json!([]));
    let detail = |id: &str| {
        show(&env, id)["waiting"][0]["detail"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert!(detail(&in_draft).contains(&format!("maos orchestrate start {}", short(&draft))));
    assert!(detail(&after).contains(short(&in_draft)));
    assert!(detail(&nobody).contains("nobody"));
    assert!(detail(&risky).contains(&format!("maos approve {}", short(&risky))));
    assert!(detail(&busy).contains("busy"));
    // The backoff ends a minute after the failure, at the task's retry_at.
    let due = &retrying["retry_at"];
    assert_eq!(
        millis(due) - millis(&retrying["attempts"][0]["ended_at"]),
        60_000
    );
    assert!(detail(&flaky).contains(due.as_str().unwrap()));

    // As people read it.
    for id in [&in_draft, &after, &nobody, &risky, &busy, &same_db, &flaky] {
        env.step(&["task", "show", id]);
    }
    insta::with_settings!({filters => vec![
        (r"\(in [0-9ms ]+\)", "(in <delay>)"),
        (r"(?m)^(1 +flaky +failed +1 +1 +)\S+ +", "${1}<time>    "),
    ]}, {
        insta::assert_snapshot!(env.transcript());
    });
    gates.open("Slow one");
}

// ---- retries ----

#[test]
fn a_failed_attempt_is_retried_after_an_exponential_backoff_with_what_went_wrong_in_its_briefing() {
    if in_process() {
        return;
    }
    let env = Env::new();
    env.config("[retry]\nbase = \"300ms\"\nfactor = 2\njitter_percent = 0\n");
    let work = tempfile::tempdir().unwrap();
    let prompts = work.path().join("prompts");
    std::fs::create_dir(&prompts).unwrap();
    let agent = script(
        work.path(),
        "third",
        &format!(
            "cp \"$MAOS_PROMPT_FILE\" {prompts}/$MAOS_ATTEMPT\n\
             if [ \"$MAOS_ATTEMPT\" -lt 3 ]; then\n\
               echo \"attempt $MAOS_ATTEMPT failed on purpose\"\n\
               exit 1\n\
             fi\n\
             echo 'third time lucky' > \"$MAOS_RESULT_FILE\"\n",
            prompts = prompts.display()
        ),
    );
    command_agent(&env, "third", 1, &agent);
    let id = id_of(&create(&env, "Lucky", &["--prompt", "Do it."]));
    let t = settle(&env, &id, "completed");
    let list = attempts(&t);
    assert_eq!(
        list.iter()
            .map(|a| a["status"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["failed", "failed", "succeeded"],
        "{t:#}"
    );
    assert_eq!(t["retry_at"], Value::Null);

    // Through `retrying`, each time with the retry's due time: 300 ms, then 600 ms after the
    // failure; the next attempt is assigned once it is due (the reaper looks every 500 ms).
    let log = events_of(&env, &id);
    let scheduled: Vec<&Value> = log
        .iter()
        .filter(|e| e["kind"] == "task.retry_scheduled")
        .collect();
    assert_eq!(scheduled.len(), 2, "{:?}", kinds(&log));
    for (n, delay) in [(0, 300), (1, 600)] {
        let ended = millis(&list[n]["ended_at"]);
        let due = scheduled[n]["data"]["at"].as_i64().unwrap();
        assert_eq!(due - ended, delay, "attempt {}'s backoff", n + 1);
        let next = millis(&list[n + 1]["assigned_at"]);
        assert!(
            next >= due && next - ended < delay + 2_000,
            "attempt {} was assigned {} ms after attempt {} ended (backoff {delay} ms)",
            n + 2,
            next - ended,
            n + 1
        );
    }
    let order = kinds(&log);
    let expected = [
        "task.attempt_failed",
        "task.retry_scheduled",
        "task.ready",
        "task.assigned",
    ];
    for start in order
        .iter()
        .enumerate()
        .filter(|(_, k)| **k == "task.attempt_failed")
        .map(|(i, _)| i)
    {
        assert_eq!(order[start..start + 4], expected, "{order:?}");
    }

    // The briefing of attempt 3 says how attempts 1 and 2 failed: exactly what the agent got.
    let first = env.ok_json(&["task", "briefing", &id, "--attempt", "1"]);
    assert_eq!(first["text"], "Do it.");
    let third = env.ok_json(&["task", "briefing", &id, "--attempt", "3"]);
    let text = third["text"].as_str().unwrap();
    assert_eq!(text, std::fs::read_to_string(prompts.join("3")).unwrap());
    assert!(text.starts_with("# Task: Lucky\n\nDo it.\n"), "{text}");
    let earlier = text
        .find("## Earlier attempts\n\n### Attempt 1: ")
        .unwrap_or_else(|| panic!("{text}"));
    let second = text
        .find("\n### Attempt 2: ")
        .unwrap_or_else(|| panic!("{text}"));
    assert!(earlier < second, "{text}");
    assert!(
        text[earlier..second].contains("attempt 1 failed on purpose"),
        "{text}"
    );
    assert!(
        text[second..].contains("attempt 2 failed on purpose"),
        "{text}"
    );
    assert_eq!(third["cut"], json!([]));
    assert_verified(&env);
}

#[test]
fn without_backoff_a_failed_attempt_is_retried_at_once() {
    if in_process() {
        return;
    }
    let env = Env::new();
    env.config("[retry]\nbackoff = false\nbase = \"5s\"\n");
    let work = tempfile::tempdir().unwrap();
    let agent = script(
        work.path(),
        "second",
        "if [ \"$MAOS_ATTEMPT\" -lt 2 ]; then echo 'not yet'; exit 1; fi\n",
    );
    command_agent(&env, "second", 1, &agent);
    let id = id_of(&create(&env, "Quick", &[]));
    let t = settle(&env, &id, "completed");
    let list = attempts(&t);
    assert_eq!(list.len(), 2, "{t:#}");
    let gap = millis(&list[1]["assigned_at"]) - millis(&list[0]["ended_at"]);
    assert!(
        (0..300).contains(&gap),
        "retried {gap} ms after the failure"
    );
    let log = events_of(&env, &id);
    let scheduled = log
        .iter()
        .find(|e| e["kind"] == "task.retry_scheduled")
        .unwrap();
    assert_eq!(
        scheduled["data"].get("at").unwrap_or(&Value::Null),
        &Value::Null
    );
}

// ---- escalation ----

#[test]
fn after_its_attempts_fail_on_the_tactical_tier_a_task_escalates_to_a_strategic_agent() {
    if in_process() {
        return;
    }
    let env = Env::new();
    env.config("[retry]\nbackoff = false\n");
    let work = tempfile::tempdir().unwrap();
    let prompts = work.path().join("prompts");
    std::fs::create_dir(&prompts).unwrap();
    let fail = script(
        work.path(),
        "cheap",
        "echo \"cheap failed attempt $MAOS_ATTEMPT\"\nexit 1\n",
    );
    let succeed = script(
        work.path(),
        "expert",
        &format!(
            "cp \"$MAOS_PROMPT_FILE\" {}/$MAOS_ATTEMPT\necho solved > \"$MAOS_RESULT_FILE\"\n",
            prompts.display()
        ),
    );
    // Names chosen so that the tactical agent wins ties: it gets the task first.
    tiered_agent(&env, "cheap", "fix", "tactical", 1, &fail);
    tiered_agent(&env, "expert", "fix", "strategic", 1, &succeed);
    let created = create(&env, "Hard", &["-c", "fix", "--max-attempts", "2"]);
    let id = id_of(&created);
    assert_eq!(created["tier"], Value::Null);
    let t = settle(&env, &id, "completed");

    let list = attempts(&t);
    let summary: Vec<(&str, &str)> = list
        .iter()
        .map(|a| (a["agent"].as_str().unwrap(), a["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        summary,
        [
            ("cheap", "failed"),
            ("cheap", "failed"),
            ("expert", "succeeded")
        ],
        "{t:#}"
    );
    assert_eq!(t["tier"], "strategic");
    assert_eq!(t["max_attempts"], 2);
    assert_eq!(t["attempts_allowed"], 3);
    assert_eq!(list[2]["summary"], "solved");

    // One escalation, after the second failure and before the strategic attempt.
    let log = events_of(&env, &id);
    let escalations: Vec<&Value> = log
        .iter()
        .filter(|e| e["kind"] == "task.escalated")
        .collect();
    assert_eq!(escalations.len(), 1, "{:?}", kinds(&log));
    let at = escalations[0]["seq"].as_u64().unwrap();
    let failed: Vec<u64> = log
        .iter()
        .filter(|e| e["kind"] == "task.attempt_failed")
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    let assigned: Vec<u64> = log
        .iter()
        .filter(|e| e["kind"] == "task.assigned")
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert_eq!((failed.len(), assigned.len()), (2, 3));
    assert!(failed[1] < at && at < assigned[2], "{:?}", kinds(&log));

    // The strategic agent was told how the tactical attempts failed.
    let prompt = std::fs::read_to_string(prompts.join("3")).unwrap();
    assert!(prompt.contains("### Attempt 1: "), "{prompt}");
    assert!(prompt.contains("cheap failed attempt 2"), "{prompt}");
    assert_verified(&env);
}

#[test]
fn without_a_strategic_agent_a_task_waits_for_a_person_who_can_retry_it() {
    if in_process() {
        return;
    }
    let env = Env::new();
    env.config("[retry]\nbackoff = false\n");
    let work = tempfile::tempdir().unwrap();
    let agent = script(
        work.path(),
        "stubborn",
        "if [ \"$MAOS_ATTEMPT\" -lt 3 ]; then\n\
           echo \"no luck on attempt $MAOS_ATTEMPT\"\n\
           exit 1\n\
         fi\n",
    );
    tiered_agent(&env, "stubborn", "fix", "tactical", 1, &agent);
    let id = id_of(&create(
        &env,
        "Stuck",
        &["-c", "fix", "--max-attempts", "2"],
    ));
    let blocked = settle(&env, &id, "blocked");
    assert_eq!(attempts(&blocked).len(), 2);
    assert_eq!(blocked["attempts_allowed"], 2);
    assert_eq!(blocked["tier"], Value::Null, "not escalated: {blocked:#}");
    let reason = blocked["reason"].as_str().unwrap();
    for part in [
        "all 2 attempts failed".to_owned(),
        "no strategic agent".to_owned(),
        "no luck on attempt 2".to_owned(),
    ] {
        assert!(reason.contains(&part), "{part} missing from {reason}");
    }
    // The reason is words and data; the command to run is a next step, not part of it.
    assert!(!reason.contains("maos "), "{reason}");
    assert_eq!(blocked["blocked"]["kind"], "attempts_failed", "{blocked:#}");
    assert_eq!(blocked["blocked"]["failed"], 2, "{blocked:#}");
    assert_eq!(blocked["blocked"]["attempt"], 2, "{blocked:#}");
    assert!(
        !kinds(&events_of(&env, &id)).contains(&"task.escalated"),
        "escalated without a strategic agent"
    );
    let doc = show(&env, &id);
    assert_eq!(waits(&doc), ["person"], "{doc:#}");
    assert!(
        doc["waiting"][0]["detail"]
            .as_str()
            .unwrap()
            .contains(&format!("maos task retry {}", short(&id)))
    );
    assert_eq!(
        doc["waiting"][0]["next"][0]["command"],
        serde_json::json!(["maos", "task", "retry", id]),
        "{doc:#}"
    );
    assert_eq!(doc["waiting"][0]["reason"]["wait"], "blocked", "{doc:#}");

    // A person gives it another attempt: it runs again, and this time it works.
    let retried = env.ok_json(&["task", "retry", &id]);
    assert_eq!(retried["task"]["attempts_allowed"], 3, "{retried:#}");
    assert!(
        matches!(
            retried["task"]["state"].as_str(),
            Some("ready" | "assigned" | "running")
        ),
        "{retried:#}"
    );
    let done = settle(&env, &id, "completed");
    assert_eq!(attempts(&done).len(), 3);
    assert_eq!(done["attempts"][2]["status"], "succeeded");
    assert_eq!(done["attempts"][2]["agent"], "stubborn");

    // A completed task cannot be retried.
    let refused = env.maos(&["task", "retry", &id]);
    assert_eq!(refused.code, 4, "{}{}", refused.stdout, refused.stderr);
    assert!(refused.stderr.contains("retried"), "{}", refused.stderr);
    assert_eq!(show(&env, &id)["task"]["attempts_allowed"], 3);
}

// ---- the circuit breaker ----

#[test]
fn an_agent_that_fails_too_often_in_a_row_is_drained_until_a_person_resumes_it() {
    if in_process() {
        return;
    }
    let env = Env::new();
    env.config("[retry]\nbackoff = false\n\n[circuit_breaker]\nthreshold = 2\n");
    let work = tempfile::tempdir().unwrap();
    // It fails its first two runs, whatever the task, and works from then on.
    let count = work.path().join("runs");
    let agent = script(
        work.path(),
        "shaky",
        &format!(
            "n=$(cat {count} 2>/dev/null || echo 0)\n\
             n=$((n + 1))\n\
             echo $n > {count}\n\
             if [ $n -le 2 ]; then echo \"run $n broke\"; exit 1; fi\n",
            count = count.display()
        ),
    );
    tiered_agent(&env, "shaky", "shake", "tactical", 1, &agent);
    let first = id_of(&create(
        &env,
        "First",
        &["-c", "shake", "--max-attempts", "3"],
    ));
    let drained = wait_for(&env, &first, "failed twice", |t| {
        attempts(t).len() == 2 && t["state"] == "ready"
    });
    assert!(
        attempts(&drained).iter().all(|a| a["status"] == "failed"),
        "{drained:#}"
    );

    // Drained, saying why, with an event that says it too.
    let a = agent_doc(&env, "shaky");
    assert_eq!(a["status"], "draining", "{a:#}");
    assert_eq!(a["failures_in_row"], 2);
    let because = a["drained_because"].as_str().unwrap();
    for part in [
        "2 attempts failed in a row",
        "threshold is 2",
        "run 2 broke",
    ] {
        assert!(because.contains(part), "{part} missing from {because}");
    }
    // The stored reason is facts; the command that helps is the CLI's to say.
    assert!(!because.contains("maos "), "{because}");
    let shown = env.maos(&["agent", "show", "shaky"]);
    assert!(
        shown
            .stdout
            .contains("`maos agent resume shaky` takes it back"),
        "{}",
        shown.stdout
    );
    let agent_id = a["id"].as_str().unwrap();
    let log = events_of(&env, agent_id);
    let drains: Vec<&Value> = log
        .iter()
        .filter(|e| e["kind"] == "agent.drained")
        .collect();
    assert_eq!(drains.len(), 1, "{:?}", kinds(&log));
    assert_eq!(drains[0]["data"]["reason"], because);

    // Its tasks are not given to it any more, and `task show` says why.
    let second = id_of(&create(&env, "Second", &["-c", "shake"]));
    past_a_reaper_tick();
    for id in [&first, &second] {
        let doc = show(&env, id);
        assert_eq!(doc["task"]["state"], "ready", "{doc:#}");
        let w = waiting_of(&doc, "no_capable_agent");
        assert!(
            w["detail"]
                .as_str()
                .unwrap()
                .contains("shaky can but is draining"),
            "{w:#}"
        );
    }
    assert_eq!(attempts(&show(&env, &first)["task"]).len(), 2);
    assert_eq!(attempts(&show(&env, &second)["task"]).len(), 0);

    // Resumed, it takes work again, its count of failures reset.
    let resumed = env.ok_json(&["agent", "resume", "shaky"]);
    assert_eq!(resumed["agent"]["failures_in_row"], 0, "{resumed:#}");
    assert_eq!(resumed["agent"]["drained_because"], Value::Null);
    assert_ne!(resumed["agent"]["status"], "draining");
    let one = settle(&env, &first, "completed");
    let two = settle(&env, &second, "completed");
    assert_eq!(one["attempts"][2]["agent"], "shaky");
    assert_eq!(two["attempts"][0]["agent"], "shaky");
    let a = agent_doc(&env, "shaky");
    assert_eq!(a["status"], "available", "{a:#}");
    assert_eq!(a["failures_in_row"], 0);
    assert_eq!(
        kinds(&events_of(&env, agent_id))
            .iter()
            .filter(|k| **k == "agent.drained")
            .count(),
        1
    );
    assert_verified(&env);
}

// ---- routing and configuration ----

#[test]
fn routing_rules_give_a_task_without_capabilities_its_capabilities_and_tier() {
    let env = Env::new();
    env.config(
        "[[route]]\npattern = \"test|spec\"\ncapabilities = [\"test\"]\ntier = \"tactical\"\n\n\
         [[route]]\npattern = \"fix*bug\"\ncapabilities = [\"rust\", \"debug\"]\n",
    );
    let routed = create(&env, "Write the spec for X", &[]);
    assert_eq!(routed["capabilities"], json!(["test"]), "{routed:#}");
    assert_eq!(routed["tier"], "tactical");
    // The prompt counts too; the first rule that matches wins.
    let by_prompt = create(
        &env,
        "Chores",
        &["--prompt", "Add a TEST, then fix the bug."],
    );
    assert_eq!(by_prompt["capabilities"], json!(["test"]));
    let second_rule = create(&env, "Fix the login bug", &[]);
    assert_eq!(second_rule["capabilities"], json!(["debug", "rust"]));
    assert_eq!(second_rule["tier"], Value::Null);
    // No rule matches: nothing.
    let plain = create(&env, "Refactor the parser", &[]);
    assert_eq!(plain["capabilities"], json!([]), "{plain:#}");
    assert_eq!(plain["tier"], Value::Null);
    // A task that names its capabilities keeps them.
    let named = create(&env, "Write the spec for Y", &["-c", "docs"]);
    assert_eq!(named["capabilities"], json!(["docs"]), "{named:#}");
    assert_eq!(named["tier"], Value::Null);
}

#[test]
fn a_bad_config_file_makes_commands_fail_with_exit_2_naming_it() {
    let env = Env::new();
    env.ok_json(&["task", "create", "Before"]);
    let before = env.state();
    // The daemon reads the file when it starts.
    let _ = env.maos(&["daemon", "stop"]);
    for (text, problems) in [
        (
            "colour = \"red\"\n",
            vec!["config.toml:1:1: unknown key `colour` at the top of config.toml"],
        ),
        (
            "[[route]]\npattern = \"x\"\ncapabilities = [\"Bad Cap\"]\ntier = \"middle\"\n",
            vec!["2 problems", "config.toml:3:17: ", "config.toml:4:8: "],
        ),
    ] {
        env.config(text);
        for args in [&["task", "list"][..], &["task", "create", "After"][..]] {
            let run = env.maos(args);
            assert_eq!(
                run.code, 2,
                "{args:?} with a bad config.toml:\n{}{}",
                run.stdout, run.stderr
            );
            let config = env.dir().join("config.toml").display().to_string();
            assert!(run.stderr.contains(&config), "{}", run.stderr);
            for p in &problems {
                assert!(run.stderr.contains(p), "{p} missing from {}", run.stderr);
            }
        }
    }
    std::fs::remove_file(env.dir().join("config.toml")).unwrap();
    let _ = env.maos(&["daemon", "stop"]);
    assert_eq!(
        env.state(),
        before,
        "a command with a bad config.toml wrote something"
    );
}

// ---- briefings ----

#[test]
fn a_briefing_over_the_token_budget_is_cut_and_says_what_was_cut() {
    if in_process() {
        return;
    }
    let env = Env::new();
    env.config("briefing_tokens = 200\n");
    let repo = Repo::new();
    let work = tempfile::tempdir().unwrap();
    let prompts = work.path().join("prompts");
    std::fs::create_dir(&prompts).unwrap();
    let agent = script(
        work.path(),
        "verbose",
        &format!(
            "cp \"$MAOS_PROMPT_FILE\" \"{prompts}/$MAOS_TASK_TITLE\"\n\
             i=0\n\
             while [ $i -lt 60 ]; do\n\
               echo \"line $i of the long result of $MAOS_TASK_TITLE\" >> \"$MAOS_RESULT_FILE\"\n\
               i=$((i + 1))\n\
             done\n",
            prompts = prompts.display()
        ),
    );
    command_agent(&env, "verbose", 1, &agent);
    let goal = "Make the uploader reliable. ".repeat(40);
    let note = "Keep the public API stable. ".repeat(20);
    let (orch, _) = orchestration(&env, &repo, &["--goal", &goal, "--note", &note]);
    let first = id_of(&create(&env, "First", &["--orchestration", &orch]));
    let second = id_of(&create(
        &env,
        "Second",
        &[
            "--orchestration",
            &orch,
            "--depends-on",
            &first,
            "--prompt",
            "Use what the first produced.",
        ],
    ));
    let done = settle(&env, &first, "completed");
    let result = done["attempts"][0]["summary"].as_str().unwrap();
    assert!(result.len() > 2_000, "{result}");
    settle(&env, &second, "completed");

    let doc = env.ok_json(&["task", "briefing", &second]);
    let text = doc["text"].as_str().unwrap();
    assert_eq!(
        text,
        std::fs::read_to_string(prompts.join("Second")).unwrap(),
        "what the agent got"
    );
    let tokens = doc["tokens"].as_u64().unwrap();
    assert!((180..=200).contains(&tokens), "{tokens} tokens:\n{text}");
    assert_eq!(tokens, (text.chars().count() as u64).div_ceil(4));
    let cut: Vec<&str> = doc["cut"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert!(!cut.is_empty());
    assert!(
        cut.iter()
            .any(|c| c.starts_with(&format!("the output of task {}", short(&first)))),
        "{cut:?}"
    );
    assert!(cut.iter().any(|c| c.starts_with("the goal")), "{cut:?}");
    // The title and prompt are whole, the cut section ends it and lists every cut.
    assert!(
        text.starts_with("# Task: Second\n\nUse what the first produced.\n"),
        "{text}"
    );
    let bullets: String = cut.iter().map(|c| format!("- {c}\n")).collect();
    assert!(
        text.ends_with(&format!("\n## Cut to fit the budget\n\n{bullets}")),
        "{text}"
    );
    assert!(text.contains("… [cut "), "{text}");
    assert!(!text.contains(result), "the whole result is in:\n{text}");

    // People see the same text, and a note of how much was cut.
    let human = env.maos(&["task", "briefing", &second]);
    assert_eq!(human.code, 0, "{}", human.stderr);
    assert_eq!(human.stdout.trim_end(), text.trim_end());
    assert!(
        human
            .stderr
            .contains(&format!("{} part(s) cut to fit the budget", cut.len())),
        "{}",
        human.stderr
    );
}

#[test]
fn task_show_says_which_attempts_were_briefed() {
    if in_process() {
        return;
    }
    let env = Env::new();
    let work = tempfile::tempdir().unwrap();
    let agent = script(work.path(), "quick", "true\n");
    command_agent(&env, "quick", 1, &agent);
    let id = id_of(&create(&env, "Brief", &["--prompt", "Say hello."]));
    let t = settle(&env, &id, "completed");
    assert_eq!(
        env.ok_json(&["task", "briefing", &id])["text"],
        "Say hello."
    );
    // `briefed`: "its briefing was recorded (`maos task briefing` prints it)".
    assert_eq!(t["attempts"][0]["briefed"], true, "{t:#}");
}
