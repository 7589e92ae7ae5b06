//! Workspaces end to end, through the real binary and its daemon, on real git repositories:
//! worktrees and branches per task, checkpoints, verification, the three risk tiers and their
//! approvals, integration into an orchestration's branch (and its conflicts), diff, rollback,
//! ports, `gc`, `orchestrate merge`, and the refusals that come before any agent starts. Only
//! the daemon runs agents, so these tests do nothing in process.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use crate::fixtures::*;
use crate::support::{Env, in_process};

// ---- the tests ----

#[test]
fn two_tasks_work_at_once_in_their_own_worktrees_and_both_are_merged_into_the_integration_branch() {
    if in_process() {
        return;
    }
    let env = Env::new();
    let repo = Repo::new();
    let head = repo.rev("HEAD");
    let work = tempfile::tempdir().unwrap();
    let here = work.path().join("here");
    std::fs::create_dir(&here).unwrap();
    // Each attempt says it is here, then waits (10 s at most) until the other one is too: they
    // can only both succeed by running at the same time.
    let agent = script(
        work.path(),
        "pair",
        &format!(
            "touch {here}/$MAOS_TASK_ID\n\
             i=0\n\
             while [ \"$(ls {here} | wc -l)\" -lt 2 ]; do\n\
               i=$((i + 1))\n\
               if [ $i -gt 200 ]; then echo 'the other task never ran at the same time'; exit 1; fi\n\
               sleep 0.05\n\
             done\n\
             sleep 0.5\n\
             printf '%s\\n' \"$MAOS_TASK_TITLE\" > \"$MAOS_TASK_TITLE.txt\"\n",
            here = here.display()
        ),
    );
    command_agent(&env, "pair", 2, &agent);
    let (orch, integration) = orchestration(&env, &repo, &[]);
    let a = id_of(&create(
        &env,
        "alpha",
        &["--orchestration", &orch, "--max-attempts", "1"],
    ));
    let b = id_of(&create(
        &env,
        "beta",
        &["--orchestration", &orch, "--max-attempts", "1"],
    ));
    let ta = settle(&env, &a, "completed");
    let tb = settle(&env, &b, "completed");

    // They ran at the same time: each started before the other ended.
    let (aa, ab) = (&ta["attempts"][0], &tb["attempts"][0]);
    for (x, y) in [(aa, ab), (ab, aa)] {
        assert!(
            str_of(&x["started_at"], "started_at") < str_of(&y["ended_at"], "ended_at"),
            "the attempts did not overlap: {aa:#} {ab:#}"
        );
    }

    // Each in its own worktree, on its own branch, with only its own file.
    let (wa, ba) = worktree_of(&env, &ta);
    let (wb, bb) = worktree_of(&env, &tb);
    assert_ne!(wa, wb);
    for (wt, branch, mine, other) in [
        (&wa, &ba, "alpha.txt", "beta.txt"),
        (&wb, &bb, "beta.txt", "alpha.txt"),
    ] {
        assert_eq!(
            git(wt, &["symbolic-ref", "--short", "HEAD"]).trim(),
            branch.as_str()
        );
        assert!(wt.join(mine).is_file(), "{} lacks {mine}", wt.display());
        assert!(!wt.join(other).exists(), "{} has {other}", wt.display());
        assert_eq!(git(wt, &["status", "--porcelain"]), "");
    }
    let listed = repo.worktrees();
    assert!(listed.contains(&wa) && listed.contains(&wb), "{listed:?}");

    // Checkpoints before and after the attempt, with their trailers, on each branch.
    for (task, t, branch) in [(&a, &ta, &ba), (&b, &tb, &bb)] {
        let attempt = &t["attempts"][0];
        let before = str_of(&attempt["checkpoint_before"], "checkpoint_before");
        let after = str_of(&attempt["checkpoint_after"], "checkpoint_after");
        assert_eq!(repo.rev(branch), after);
        assert_eq!(repo.rev(&format!("{branch}~1")), before);
        assert_eq!(repo.rev(&format!("{branch}~2")), head);
        assert_eq!(str_of(&t["workspace"]["base_commit"], "base_commit"), head);
        for (commit, which) in [(after, "after"), (before, "before")] {
            let message = repo.git(&["log", "-1", "--format=%B", commit]);
            assert!(
                message.starts_with(&format!("maos: {which} attempt 1 of task {}", short(task))),
                "{message}"
            );
            for trailer in [
                format!("Maos-Task: {task}"),
                "Maos-Attempt: 1".to_owned(),
                format!("Maos-Checkpoint: {which}"),
            ] {
                assert!(
                    message.lines().any(|l| l == trailer),
                    "{trailer:?} missing from:\n{message}"
                );
            }
        }
        // Integrated: the branch is in the integration branch, as the event says.
        assert!(repo.contains(&integration, branch));
        let data = event_data(&env, task, "task.integrated");
        assert_eq!(data["into"], integration.as_str());
        assert!(repo.contains(&integration, str_of(&data["commit"], "commit")));
    }
    assert_eq!(
        repo.show(&integration, "alpha.txt").as_deref(),
        Some("alpha\n")
    );
    assert_eq!(
        repo.show(&integration, "beta.txt").as_deref(),
        Some("beta\n")
    );
    assert_eq!(
        repo.show(&integration, "README.md").as_deref(),
        Some(README)
    );

    // The user's branch and checkout are untouched.
    repo.assert_untouched(&head);
    assert!(!repo.path().join("alpha.txt").exists());
    assert!(!repo.contains("main", &ba) && !repo.contains("main", &bb));
    let branches = repo.branches();
    for name in ["main", ba.as_str(), bb.as_str(), integration.as_str()] {
        assert!(
            branches.iter().any(|x| x == name),
            "{name} missing: {branches:?}"
        );
    }
    assert_verified(&env);
}

#[test]
fn a_merge_conflict_blocks_the_second_task_naming_the_file_and_leaves_nothing_half_done() {
    if in_process() {
        return;
    }
    let env = Env::new();
    let repo = Repo::new();
    let head = repo.rev("HEAD");
    let work = tempfile::tempdir().unwrap();
    // Both rewrite the same line of README.md; one slot: one after the other, from the same base.
    let agent = script(
        work.path(),
        "rewrite",
        "printf '# %s\\n' \"$MAOS_TASK_TITLE\" > README.md\n",
    );
    command_agent(&env, "rewrite", 1, &agent);
    let (orch, integration) = orchestration(&env, &repo, &[]);
    let first = id_of(&create(&env, "first", &["--orchestration", &orch]));
    let second = id_of(&create(&env, "second", &["--orchestration", &orch]));
    let done = settle(&env, &first, "completed");
    let blocked = settle(&env, &second, "blocked");

    // Both started from the same base.
    assert_eq!(done["workspace"]["base_commit"], head.as_str());
    assert_eq!(blocked["workspace"]["base_commit"], head.as_str());
    let reason = str_of(&blocked["reason"], "reason");
    assert!(
        reason.contains("README.md") && reason.contains(&integration),
        "{reason}"
    );
    assert_eq!(blocked["waiting_for"]["gate"], "result");
    let conflict = event_data(&env, &second, "task.integration_conflict");
    assert_eq!(conflict["paths"], serde_json::json!(["README.md"]));
    // It waits for a person, and `maos approvals` says so.
    let approvals = env.ok_json(&["approvals"]);
    let listed = approvals["approvals"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "{approvals:#}");
    assert_eq!(listed[0]["task"], second.as_str());
    assert_eq!(listed[0]["gate"], "result");
    assert_eq!(listed[0]["state"], "blocked");

    // The integration branch is where the first task's merge left it.
    let merged = event_data(&env, &first, "task.integrated");
    let tip = repo.rev(&integration);
    assert_eq!(tip, str_of(&merged["commit"], "commit"));
    assert_eq!(
        repo.show(&integration, "README.md").as_deref(),
        Some("# first\n")
    );
    let (wt, branch) = worktree_of(&env, &blocked);
    assert!(!repo.contains(&integration, &branch));

    // No merge is left half-done: no temporary worktree, no MERGE_HEAD anywhere.
    let git_dir = repo.path().join(".git");
    let worktrees = repo.worktrees();
    assert_eq!(worktrees.len(), 3, "{worktrees:?}");
    assert!(
        worktrees
            .iter()
            .all(|w| !w.to_string_lossy().contains("maos-merge")),
        "{worktrees:?}"
    );
    for entry in std::fs::read_dir(&git_dir).unwrap() {
        let name = entry.unwrap().file_name();
        assert!(
            !name.to_string_lossy().starts_with("maos-merge"),
            "{name:?} left in .git"
        );
    }
    assert!(!git_dir.join("MERGE_HEAD").exists());
    for w in &worktrees {
        assert!(!git_ok(w, &["rev-parse", "-q", "--verify", "MERGE_HEAD"]));
        assert_eq!(git(w, &["status", "--porcelain"]), "", "{}", w.display());
    }
    repo.assert_untouched(&head);

    // Merged by hand into the integration branch, an approval completes it.
    let hand = tempfile::tempdir().unwrap();
    let hand_dir = hand.path().join("merge");
    repo.git(&[
        "worktree",
        "add",
        "-q",
        hand_dir.to_str().unwrap(),
        &integration,
    ]);
    assert!(!git_ok(&hand_dir, &["merge", "-q", &branch]));
    std::fs::write(hand_dir.join("README.md"), "# first and second\n").unwrap();
    git(&hand_dir, &["commit", "-q", "-am", "merge second by hand"]);
    repo.git(&["worktree", "remove", hand_dir.to_str().unwrap()]);
    let approved = env.ok_json(&["approve", &second]);
    assert_eq!(approved["task"]["state"], "completed", "{approved:#}");
    assert!(repo.contains(&integration, &branch));
    assert_eq!(
        repo.show(&integration, "README.md").as_deref(),
        Some("# first and second\n")
    );
    assert!(wt.is_dir());
    repo.assert_untouched(&head);
}

#[test]
fn a_failed_verification_fails_the_attempt_and_its_output_reaches_the_next_prompt() {
    if in_process() {
        return;
    }
    let env = Env::new();
    let repo = Repo::new();
    let head = repo.rev("HEAD");
    let work = tempfile::tempdir().unwrap();
    let prompts = work.path().join("prompts");
    std::fs::create_dir(&prompts).unwrap();
    let agent = script(
        work.path(),
        "late",
        &format!(
            "cp \"$MAOS_PROMPT_FILE\" {prompts}/$MAOS_ATTEMPT\n\
             echo \"attempt $MAOS_ATTEMPT\" >> work.txt\n\
             if [ \"$MAOS_ATTEMPT\" -ge 2 ]; then echo done > done.txt; fi\n",
            prompts = prompts.display()
        ),
    );
    command_agent(&env, "late", 1, &agent);
    let repo_arg = repo.arg();
    let id = id_of(&create(
        &env,
        "Finish the job",
        &[
            "--repo",
            &repo_arg,
            "--prompt",
            "Create done.txt.",
            "--verify",
            "test -f done.txt || { echo 'done.txt is missing'; exit 1; }",
        ],
    ));
    let t = settle(&env, &id, "completed");
    assert_eq!(
        t["verify"],
        "test -f done.txt || { echo 'done.txt is missing'; exit 1; }"
    );
    let attempts = t["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "{t:#}");

    // Attempt 1: the agent succeeded, the verification did not.
    let first = &attempts[0];
    assert_eq!(first["status"], "failed");
    assert_eq!(first["failure"], "verification");
    assert_eq!(first["exit_code"], 0);
    assert_eq!(first["verification"]["passed"], false);
    let output = str_of(&first["verification"]["output"], "verification.output");
    assert!(output.starts_with("done.txt is missing"), "{output}");
    assert!(
        output.contains("[maos: the verification command failed"),
        "{output}"
    );
    let error = str_of(&first["error"], "error");
    assert_eq!(error, format!("verification failed: {output}"));
    // Its checkpoint holds what it did, even though it failed.
    let after = str_of(&first["checkpoint_after"], "checkpoint_after");
    assert_eq!(repo.show(after, "work.txt").as_deref(), Some("attempt 1\n"));
    assert_eq!(repo.show(after, "done.txt"), None);

    // Attempt 2 was told why, and passed.
    let prompt1 = std::fs::read_to_string(prompts.join("1")).unwrap();
    let prompt2 = std::fs::read_to_string(prompts.join("2")).unwrap();
    // The first briefing is the task's prompt alone; the second adds how attempt 1 failed.
    assert_eq!(prompt1, "Create done.txt.");
    assert!(
        prompt2.starts_with("# Task: Finish the job\n\nCreate done.txt.\n"),
        "{prompt2}"
    );
    assert!(
        prompt2.contains("## Earlier attempts\n\n### Attempt 1: verification failed\n"),
        "{prompt2}"
    );
    assert!(prompt2.contains(output.trim_end()), "{prompt2}");
    let briefing = env.ok_json(&["task", "briefing", &id, "--attempt", "2"]);
    assert_eq!(briefing["text"], prompt2.as_str(), "what the agent got");
    let second = &attempts[1];
    assert_eq!(second["status"], "succeeded");
    assert_eq!(second["verification"]["passed"], true);
    assert_eq!(second["error"], Value::Null);
    // It worked where attempt 1 left off: its before-checkpoint follows attempt 1's after.
    let before2 = str_of(&second["checkpoint_before"], "checkpoint_before");
    assert_eq!(repo.rev(&format!("{before2}~1")), after);
    let (wt, branch) = worktree_of(&env, &t);
    assert_eq!(
        std::fs::read_to_string(wt.join("work.txt")).unwrap(),
        "attempt 1\nattempt 2\n"
    );
    assert_eq!(repo.show(&branch, "done.txt").as_deref(), Some("done\n"));
    // A task of no orchestration is merged nowhere.
    repo.assert_untouched(&head);
    assert!(!repo.contains("main", &branch));
}

#[test]
fn low_risk_completes_alone_medium_and_high_wait_for_approval_and_reject_sends_work_back() {
    if in_process() {
        return;
    }
    let env = Env::new();
    let repo = Repo::new();
    let head = repo.rev("HEAD");
    let work = tempfile::tempdir().unwrap();
    let prompts = work.path().join("prompts");
    std::fs::create_dir(&prompts).unwrap();
    let agent = script(
        work.path(),
        "tiers",
        &format!(
            "cp \"$MAOS_PROMPT_FILE\" {prompts}/$MAOS_TASK_TITLE.$MAOS_ATTEMPT\n\
             echo \"attempt $MAOS_ATTEMPT\" > \"$MAOS_TASK_TITLE.txt\"\n",
            prompts = prompts.display()
        ),
    );
    command_agent(&env, "tiers", 4, &agent);
    let (orch, integration) = orchestration(
        &env,
        &repo,
        &["--verify", "test -s \"$MAOS_TASK_TITLE.txt\""],
    );
    let task = |title: &str, risk: &str| {
        create(
            &env,
            title,
            &["--orchestration", &orch, "--risk", risk, "--prompt", title],
        )
    };
    let approvals = || env.ok_json(&["approvals"])["approvals"].clone();
    let approval_of = |id: &str| -> Option<Value> {
        approvals()
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["task"] == id)
            .cloned()
    };

    // High risk waits before it runs: no attempt, nothing scheduled.
    let high = task("high", "high");
    let hi = id_of(&high);
    assert_eq!(high["state"], "awaiting_approval", "{high:#}");
    assert_eq!(high["waiting_for"]["gate"], "run");
    assert_eq!(high["attempts"], serde_json::json!([]));
    assert_eq!(high["workspace"], Value::Null);

    // Low risk completes by itself, verified and integrated.
    let lo = id_of(&task("low", "low"));
    let low = settle(&env, &lo, "completed");
    assert_eq!(low["attempts"][0]["verification"]["passed"], true);
    assert_eq!(
        repo.show(&integration, "low.txt").as_deref(),
        Some("attempt 1\n")
    );

    // Medium risk waits after verification, listed with its age and what it changed.
    let me = id_of(&task("medium", "medium"));
    let medium = settle(&env, &me, "awaiting_approval");
    assert_eq!(medium["waiting_for"]["gate"], "result");
    assert_eq!(medium["attempts"].as_array().unwrap().len(), 1);
    assert_eq!(medium["attempts"][0]["status"], "succeeded");
    assert_eq!(medium["attempts"][0]["verification"]["passed"], true);
    assert_eq!(repo.show(&integration, "medium.txt"), None);
    let listed = approval_of(&me).expect("the medium task is not listed");
    assert_eq!(listed["gate"], "result");
    assert_eq!(listed["risk"], "medium");
    assert_eq!(listed["state"], "awaiting_approval");
    assert!(listed["age_ms"].is_u64(), "{listed:#}");
    assert_eq!(listed["since"], medium["waiting_for"]["since"]);
    assert_eq!(listed["changes"], "1 file changed, 1 insertion(+)");
    let run = approval_of(&hi).expect("the high task is not listed");
    assert_eq!(run["gate"], "run");
    assert_eq!(run["changes"], Value::Null);
    let human = env.maos(&["approvals"]);
    assert_eq!(human.code, 0, "{}", human.stderr);
    let line = human
        .stdout
        .lines()
        .find(|l| l.starts_with(short(&me)))
        .unwrap_or_else(|| panic!("{}", human.stdout));
    assert!(line.contains("result (medium risk)"), "{line}");
    assert!(line.contains("1 file changed, 1 insertion(+)"), "{line}");
    assert!(
        line.split_whitespace()
            .any(|w| w.ends_with('s') && w[..w.len() - 1].chars().all(|c| c.is_ascii_digit())),
        "no age in {line}"
    );

    // Approved, it is merged and completed.
    let approved = env.ok_json(&["approve", &me]);
    assert_eq!(approved["task"]["state"], "completed", "{approved:#}");
    assert_eq!(approved["task"]["waiting_for"], Value::Null);
    assert_eq!(
        repo.show(&integration, "medium.txt").as_deref(),
        Some("attempt 1\n")
    );
    assert!(approval_of(&me).is_none());
    let again = env.maos(&["approve", &me]);
    assert_eq!(again.code, 4, "{}", again.stderr);

    // High risk: approved to run, it runs, then waits again for its result.
    let run = env.ok_json(&["approve", &hi]);
    assert!(
        matches!(
            run["task"]["state"].as_str(),
            Some("ready" | "assigned" | "running")
        ),
        "{run:#}"
    );
    let high = settle(&env, &hi, "awaiting_approval");
    assert_eq!(high["waiting_for"]["gate"], "result");
    assert_eq!(high["attempts"].as_array().unwrap().len(), 1);
    assert_eq!(high["attempts"][0]["verification"]["passed"], true);
    assert_eq!(repo.show(&integration, "high.txt"), None);
    let done = env.ok_json(&["approve", &hi]);
    assert_eq!(done["task"]["state"], "completed", "{done:#}");
    assert_eq!(
        repo.show(&integration, "high.txt").as_deref(),
        Some("attempt 1\n")
    );

    // Rejected, the work goes back to the agent with the reason.
    let re = id_of(&task("rejected", "medium"));
    settle(&env, &re, "awaiting_approval");
    let reason = "the greeting must be in French";
    let rejected = env.ok_json(&["reject", &re, "--reason", reason]);
    assert!(
        matches!(
            rejected["task"]["state"].as_str(),
            Some("ready" | "assigned" | "running")
        ),
        "{rejected:#}"
    );
    let back = wait_for(&env, &re, "awaiting approval again", |t| {
        t["state"] == "awaiting_approval" && t["attempts"].as_array().unwrap().len() == 2
    });
    assert_eq!(back["attempts"][0]["status"], "failed");
    assert_eq!(back["attempts"][0]["error"], format!("rejected: {reason}"));
    let prompt = std::fs::read_to_string(prompts.join("rejected.2")).unwrap();
    assert!(
        prompt.contains(&format!(
            "### Attempt 1: rejected by a person\n\n```\n{reason}\n"
        )),
        "{prompt}"
    );
    assert_eq!(repo.show(&integration, "rejected.txt"), None);
    let accepted = env.ok_json(&["approve", &re]);
    assert_eq!(accepted["task"]["state"], "completed", "{accepted:#}");
    assert_eq!(
        repo.show(&integration, "rejected.txt").as_deref(),
        Some("attempt 2\n")
    );

    // Rejected with --cancel, it ends and is never merged.
    let ca = id_of(&task("cancelled", "medium"));
    let waiting = settle(&env, &ca, "awaiting_approval");
    let cancelled = env.ok_json(&["reject", &ca, "--reason", "not needed", "--cancel"]);
    assert_eq!(cancelled["task"]["state"], "cancelled", "{cancelled:#}");
    let (_, branch) = worktree_of(&env, &waiting);
    assert!(!repo.contains(&integration, &branch));
    assert_eq!(repo.show(&integration, "cancelled.txt"), None);
    assert_eq!(
        wait_state(&env, &ca, "cancelled")["attempts"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    assert_eq!(approvals(), serde_json::json!([]));
    repo.assert_untouched(&head);
}

#[test]
fn task_diff_shows_what_an_attempt_changed_and_rollback_returns_the_branch_to_before_it() {
    if in_process() {
        return;
    }
    let env = Env::new();
    let repo = Repo::new();
    let head = repo.rev("HEAD");
    let work = tempfile::tempdir().unwrap();
    let gate = work.path().join("gate");
    // The agent waits for the gate, then edits.
    let agent = script(
        work.path(),
        "editor",
        &format!(
            "while [ ! -e {} ]; do sleep 0.05; done\n\
             echo 'A second line.' >> README.md\n\
             echo fresh > new.txt\n",
            gate.display()
        ),
    );
    command_agent(&env, "editor", 1, &agent);
    let repo_arg = repo.arg();
    let id = id_of(&create(
        &env,
        "Edit",
        &["--repo", &repo_arg, "--max-attempts", "1"],
    ));

    // While the attempt runs, a rollback is refused and changes nothing.
    let running = wait_state(&env, &id, "running");
    let (_, branch) = worktree_of(&env, &running);
    let started = str_of(
        &running["attempts"][0]["checkpoint_before"],
        "checkpoint_before",
    );
    let refused = env.maos(&["task", "rollback", &id]);
    assert_eq!(refused.code, 4, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("while an attempt runs"),
        "{}",
        refused.stderr
    );
    assert_eq!(repo.rev(&branch), started);
    std::fs::write(&gate, b"").unwrap();
    let t = settle(&env, &id, "completed");
    let (wt, branch) = worktree_of(&env, &t);
    let attempt = &t["attempts"][0];
    let before = str_of(&attempt["checkpoint_before"], "checkpoint_before").to_owned();
    let after = str_of(&attempt["checkpoint_after"], "checkpoint_after").to_owned();

    let stat = env.maos(&["task", "diff", &id, "--stat"]);
    assert_eq!(stat.code, 0, "{}", stat.stderr);
    assert!(stat.stdout.contains("README.md | 1 +"), "{}", stat.stdout);
    assert!(stat.stdout.contains("new.txt   | 1 +"), "{}", stat.stdout);
    assert!(
        stat.stdout.contains("2 files changed, 2 insertions(+)"),
        "{}",
        stat.stdout
    );
    for args in [
        vec!["task", "diff", &id, "--attempt", "1"],
        vec!["task", "diff", &id],
    ] {
        let diff = env.maos(&args);
        assert_eq!(diff.code, 0, "{}", diff.stderr);
        assert!(diff.stdout.contains("+A second line."), "{}", diff.stdout);
        assert!(diff.stdout.contains("+++ b/new.txt"), "{}", diff.stdout);
        assert!(diff.stdout.contains("+fresh"), "{}", diff.stdout);
    }
    // Named by a prefix, the task is still named by its full id in the document.
    let doc = env.ok_json(&["task", "diff", short(&id), "--attempt", "1", "--stat"]);
    assert_eq!(doc["task"], id.as_str());
    assert_eq!(doc["attempt"], 1);
    assert_eq!(doc["stat"], true);
    assert!(str_of(&doc["diff"], "diff").contains("2 files changed"));
    let missing = env.maos(&["task", "diff", &id, "--attempt", "2"]);
    assert_eq!(missing.code, 3, "{}", missing.stderr);

    // Back to before the attempt: the branch ends at the before-checkpoint, the change is gone.
    let rolled = env.ok_json(&["task", "rollback", &id]);
    assert_eq!(rolled["task"]["id"], id.as_str());
    assert_eq!(repo.rev(&branch), before);
    let message = repo.git(&["log", "-1", "--format=%B", &branch]);
    assert!(
        message.lines().any(|l| l == "Maos-Checkpoint: before"),
        "{message}"
    );
    assert_eq!(
        std::fs::read_to_string(wt.join("README.md")).unwrap(),
        README
    );
    assert!(!wt.join("new.txt").exists());
    assert_eq!(git(&wt, &["status", "--porcelain"]), "");
    let empty = env.ok_json(&["task", "diff", &id]);
    assert_eq!(empty["diff"], "", "{empty:#}");
    // The undone commit is still in git, and a rollback only goes back.
    assert!(repo.git_ok(&["cat-file", "-e", &format!("{after}^{{commit}}")]));
    let forward = env.maos(&["task", "rollback", &id, "--to-attempt", "1"]);
    assert_eq!(forward.code, 4, "{}", forward.stderr);
    assert_eq!(repo.rev(&branch), before);
    repo.assert_untouched(&head);
}

#[test]
fn gc_removes_merged_worktrees_and_keeps_dirty_and_unmerged_ones_until_forced() {
    if in_process() {
        return;
    }
    let env = Env::new();
    let repo = Repo::new();
    let head = repo.rev("HEAD");
    let work = tempfile::tempdir().unwrap();
    let agent = script(
        work.path(),
        "writer",
        "echo \"$MAOS_TASK_TITLE\" > \"$MAOS_TASK_TITLE.txt\"\n",
    );
    command_agent(&env, "writer", 3, &agent);
    let (orch, integration) = orchestration(&env, &repo, &[]);
    let repo_arg = repo.arg();
    let dirty = id_of(&create(&env, "dirty", &["--orchestration", &orch]));
    let alone = id_of(&create(&env, "alone", &["--repo", &repo_arg]));
    let merged = id_of(&create(&env, "merged", &["--orchestration", &orch]));
    let mut trees = Vec::new();
    for id in [&dirty, &alone, &merged] {
        let t = settle(&env, id, "completed");
        trees.push(worktree_of(&env, &t));
    }
    let [
        (dirty_wt, dirty_br),
        (alone_wt, alone_br),
        (merged_wt, merged_br),
    ] = <[(PathBuf, String); 3]>::try_from(trees).unwrap();
    std::fs::write(dirty_wt.join("stray.txt"), "not committed\n").unwrap();
    // A worktree of the user's own, which gc must never touch.
    let own = tempfile::tempdir().unwrap();
    let own_wt = own.path().join("own");
    repo.git(&[
        "worktree",
        "add",
        "-q",
        "-b",
        "mine",
        own_wt.to_str().unwrap(),
    ]);
    let own_wt = real(&own_wt);
    std::thread::sleep(Duration::from_millis(20));

    let entry = |doc: &Value, task: &str| -> Value {
        doc["worktrees"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["task"] == task)
            .cloned()
            .unwrap_or_else(|| panic!("{task} not reported: {doc:#}"))
    };
    let removed = |task: &str| -> bool {
        env.ok_json(&["task", "show", task])["task"]["workspace"]["removed"]
            .as_bool()
            .unwrap()
    };

    // Nothing finished a week ago.
    let default = env.ok_json(&["gc"]);
    assert_eq!(default["worktrees"], serde_json::json!([]), "{default:#}");

    // A dry run says what would go, and removes nothing.
    let dry = env.ok_json(&["gc", "--dry-run", "--older-than", "1ms"]);
    assert_eq!(dry["dry_run"], true);
    assert_eq!(dry["worktrees"].as_array().unwrap().len(), 3, "{dry:#}");
    let m = entry(&dry, &merged);
    assert_eq!(m["removed"], true, "{m:#}");
    assert_eq!(m["kept_because"], Value::Null);
    assert_eq!(PathBuf::from(str_of(&m["path"], "path")), merged_wt);
    let d = entry(&dry, &dirty);
    assert_eq!(d["removed"], false);
    assert!(
        str_of(&d["kept_because"], "kept_because").contains("uncommitted changes"),
        "{d:#}"
    );
    let a = entry(&dry, &alone);
    assert_eq!(a["removed"], false);
    let why = str_of(&a["kept_because"], "kept_because");
    assert!(
        why.contains(&alone_br) && why.contains("not merged"),
        "{a:#}"
    );
    for wt in [&dirty_wt, &alone_wt, &merged_wt] {
        assert!(wt.is_dir(), "the dry run removed {}", wt.display());
    }
    assert!(!removed(&merged));
    assert_eq!(repo.worktrees().len(), 5);

    // For real: only the merged one goes.
    let gc = env.ok_json(&["gc", "--older-than", "1ms"]);
    assert_eq!(gc["dry_run"], false);
    assert_eq!(entry(&gc, &merged)["removed"], true, "{gc:#}");
    assert_eq!(entry(&gc, &dirty)["removed"], false);
    assert_eq!(entry(&gc, &alone)["removed"], false);
    assert!(!merged_wt.exists());
    assert!(removed(&merged) && !removed(&dirty) && !removed(&alone));
    let mut listed = repo.worktrees();
    listed.sort();
    let mut expected = vec![
        repo.path(),
        dirty_wt.clone(),
        alone_wt.clone(),
        own_wt.clone(),
    ];
    expected.sort();
    assert_eq!(listed, expected);
    assert_eq!(
        std::fs::read_to_string(dirty_wt.join("stray.txt")).unwrap(),
        "not committed\n"
    );
    // The human report says why each is kept.
    let human = env.maos(&["gc", "--dry-run", "--older-than", "1ms"]);
    assert_eq!(human.code, 0, "{}", human.stderr);
    assert!(
        human.stdout.contains(&format!(
            "kept    {} ({})",
            dirty_wt.display(),
            short(&dirty)
        )),
        "{}",
        human.stdout
    );
    assert!(!human.stdout.contains(&merged_wt.display().to_string()));

    // --force removes the rest; the branches stay.
    let forced = env.ok_json(&["gc", "--force", "--older-than", "1ms"]);
    assert_eq!(
        forced["worktrees"].as_array().unwrap().len(),
        2,
        "{forced:#}"
    );
    assert_eq!(entry(&forced, &dirty)["removed"], true);
    assert_eq!(entry(&forced, &alone)["removed"], true);
    assert!(!dirty_wt.exists() && !alone_wt.exists());
    assert!(removed(&dirty) && removed(&alone));
    assert_eq!(repo.worktrees(), vec![repo.path(), own_wt.clone()]);
    assert!(own_wt.join("README.md").is_file());
    let fsck = git_command(&repo.path(), &["fsck", "--full", "--no-dangling"])
        .output()
        .unwrap();
    assert!(
        fsck.status.success() && fsck.stdout.is_empty(),
        "git fsck: {}{}",
        String::from_utf8_lossy(&fsck.stdout),
        String::from_utf8_lossy(&fsck.stderr)
    );
    let mut branches = repo.branches();
    branches.sort();
    let mut expected = vec![
        "main".to_owned(),
        "mine".to_owned(),
        dirty_br.clone(),
        alone_br.clone(),
        merged_br.clone(),
        integration.clone(),
    ];
    expected.sort();
    assert_eq!(branches, expected);
    assert_eq!(
        repo.show(&dirty_br, "dirty.txt").as_deref(),
        Some("dirty\n")
    );
    assert_eq!(
        repo.show(&alone_br, "alone.txt").as_deref(),
        Some("alone\n")
    );
    repo.assert_untouched(&head);
    let again = env.ok_json(&["gc", "--force", "--older-than", "1ms"]);
    assert_eq!(again["worktrees"], serde_json::json!([]), "{again:#}");
}

#[test]
fn a_repository_maos_must_not_work_from_is_refused_before_anything_is_created() {
    if in_process() {
        return;
    }
    let env = Env::new();
    let repo = Repo::new();
    let work = tempfile::tempdir().unwrap();
    let ran = work.path().join("ran");
    let agent = script(work.path(), "watch", &format!("touch {}\n", ran.display()));
    command_agent(&env, "watch", 1, &agent);
    let repo_arg = repo.arg();
    let refused = |args: &[&str], code: i32, needles: &[&str]| {
        let run = env.maos(args);
        assert_eq!(run.code, code, "{args:?}:\n{}{}", run.stdout, run.stderr);
        for needle in needles {
            assert!(
                run.stderr.contains(needle),
                "{needle:?} missing:\n{}",
                run.stderr
            );
        }
        assert!(
            run.stderr.contains("\n  hint: "),
            "no hint:\n{}",
            run.stderr
        );
        assert_eq!(tasks_listed(&env), 0);
        assert_eq!(
            env.ok_json(&["orchestrate", "list"])["orchestrations"],
            serde_json::json!([])
        );
    };
    let create_args = ["task", "create", "Work", "--repo", &repo_arg];
    let orchestrate = ["orchestrate", "create", "Work", "--repo", &repo_arg];

    // Uncommitted changes: an untracked file, then a modified one.
    repo.write("scratch.txt", "mine\n");
    refused(
        &create_args,
        4,
        &["uncommitted changes", "scratch.txt", "commit or stash"],
    );
    refused(&orchestrate, 4, &["uncommitted changes", "scratch.txt"]);
    let doc = env.maos(&[&create_args[..], &["--json"]].concat());
    assert_eq!(doc.json()["error"]["kind"], "conflict");
    assert_eq!(doc.json()["error"]["exit_code"], 4);
    std::fs::remove_file(repo.path().join("scratch.txt")).unwrap();
    repo.write("README.md", "changed\n");
    refused(&create_args, 4, &["README.md"]);
    repo.git(&["checkout", "-q", "--", "README.md"]);

    // A lock held by another git process.
    let lock = repo.path().join(".git").join("index.lock");
    std::fs::write(&lock, b"").unwrap();
    refused(
        &create_args,
        4,
        &[&lock.display().to_string(), "another git process"],
    );
    std::fs::remove_file(&lock).unwrap();

    // A detached HEAD without --base.
    repo.git(&["checkout", "-q", "--detach"]);
    refused(&create_args, 4, &["detached HEAD", "--base"]);
    // A base that names nothing.
    refused(
        &[&create_args[..], &["--base", "no-such-branch"]].concat(),
        2,
        &["no-such-branch"],
    );

    // Not a repository, or no directory at all.
    let plain = tempfile::tempdir().unwrap();
    let plain_arg = real(plain.path()).display().to_string();
    refused(
        &["task", "create", "Work", "--repo", &plain_arg],
        2,
        &["is not a git repository"],
    );
    refused(
        &["orchestrate", "create", "Work", "--repo", &plain_arg],
        2,
        &["is not a git repository"],
    );
    let gone = plain.path().join("gone").display().to_string();
    refused(&["task", "create", "Work", "--repo", &gone], 2, &["gone"]);

    // No agent ever started.
    std::thread::sleep(Duration::from_millis(200));
    assert!(!ran.exists(), "an agent ran");

    // With --base, a detached HEAD is fine.
    let t = create_ok(&env, &[&create_args[..], &["--base", "main"]].concat());
    let t = settle(&env, &t, "completed");
    assert_eq!(t["base"], "main");
    assert_eq!(t["workspace"]["base_commit"], repo.rev("main").as_str());
    assert!(ran.exists());
}

#[test]
fn tasks_running_at_once_get_different_ports() {
    if in_process() {
        return;
    }
    let env = Env::new();
    let repo = Repo::new();
    let work = tempfile::tempdir().unwrap();
    let here = work.path().join("here");
    let ports = work.path().join("ports");
    std::fs::create_dir(&here).unwrap();
    std::fs::create_dir(&ports).unwrap();
    let agent = script(
        work.path(),
        "server",
        &format!(
            "echo \"${{MAOS_PORT:-none}}\" > {ports}/$MAOS_TASK_ID\n\
             if [ \"$MAOS_TASK_TITLE\" = plain ]; then exit 0; fi\n\
             touch {here}/$MAOS_TASK_ID\n\
             i=0\n\
             while [ \"$(ls {here} | wc -l)\" -lt 2 ]; do\n\
               i=$((i + 1))\n\
               if [ $i -gt 200 ]; then echo 'the other task never ran at the same time'; exit 1; fi\n\
               sleep 0.05\n\
             done\n\
             sleep 0.2\n",
            here = here.display(),
            ports = ports.display()
        ),
    );
    command_agent(&env, "server", 2, &agent);
    let repo_arg = repo.arg();
    let ids: Vec<String> = ["one", "two"]
        .iter()
        .map(|title| {
            let t = create(
                &env,
                title,
                &["--repo", &repo_arg, "--port", "--max-attempts", "1"],
            );
            assert_eq!(t["wants_port"], true);
            id_of(&t)
        })
        .collect();
    let mut seen = Vec::new();
    for id in &ids {
        let t = settle(&env, id, "completed");
        let port = t["attempts"][0]["port"]
            .as_u64()
            .unwrap_or_else(|| panic!("no port: {t:#}"));
        assert!(port > 0);
        let given = std::fs::read_to_string(ports.join(id)).unwrap();
        assert_eq!(given.trim(), port.to_string());
        seen.push(port);
    }
    assert_ne!(seen[0], seen[1], "both attempts got port {}", seen[0]);

    // A task that asks for none gets none.
    let plain = id_of(&create(&env, "plain", &["--repo", &repo_arg]));
    let t = settle(&env, &plain, "completed");
    assert_eq!(t["wants_port"], false);
    assert_eq!(t["attempts"][0]["port"], Value::Null);
    assert_eq!(
        std::fs::read_to_string(ports.join(&plain)).unwrap().trim(),
        "none"
    );
}

#[test]
fn orchestrate_merge_refuses_a_dirty_main_and_then_merges_the_work_into_it() {
    if in_process() {
        return;
    }
    let env = Env::new();
    let repo = Repo::new();
    let head = repo.rev("HEAD");
    let work = tempfile::tempdir().unwrap();
    let agent = script(
        work.path(),
        "feature",
        "echo \"$MAOS_TASK_TITLE\" > \"$MAOS_TASK_TITLE.txt\"\n",
    );
    command_agent(&env, "feature", 2, &agent);
    // No --base: the orchestration records the branch checked out now (main), and merges back
    // into it without --into.
    let (orch, integration) = orchestration(&env, &repo, &[]);
    let ids: Vec<String> = ["feature", "docs"]
        .iter()
        .map(|title| id_of(&create(&env, title, &["--orchestration", &orch])))
        .collect();
    for id in &ids {
        settle(&env, id, "completed");
    }
    let integrated = repo.rev(&integration);

    // Refused while main's working tree has uncommitted changes: nothing changes.
    repo.write("README.md", "my own edit\n");
    let refused = env.maos(&["orchestrate", "merge", &orch]);
    assert_eq!(refused.code, 4, "{}{}", refused.stdout, refused.stderr);
    assert!(
        refused.stderr.contains("uncommitted changes") && refused.stderr.contains("README.md"),
        "{}",
        refused.stderr
    );
    assert!(refused.stderr.contains("hint: "), "{}", refused.stderr);
    assert_eq!(repo.rev("main"), head);
    assert_eq!(repo.rev("HEAD"), head);
    assert_eq!(repo.read("README.md"), "my own edit\n");
    assert_eq!(repo.status(), " M README.md\n");
    assert!(!repo.path().join("feature.txt").exists());
    assert_eq!(repo.rev(&integration), integrated);
    assert!(!repo.path().join(".git").join("MERGE_HEAD").exists());

    // Clean, it merges: main holds the tasks' work, in the checkout too.
    repo.git(&["checkout", "-q", "--", "README.md"]);
    let merged = env.ok_json(&["orchestrate", "merge", &orch]);
    assert_eq!(merged["merged"], true, "{merged:#}");
    assert_eq!(merged["into"], "main");
    assert_eq!(merged["branch"], integration.as_str());
    let commit = str_of(&merged["commit"], "commit").to_owned();
    assert_eq!(repo.rev("main"), commit);
    assert_eq!(repo.rev("HEAD"), commit);
    assert_eq!(
        repo.git(&["symbolic-ref", "HEAD"]).trim(),
        "refs/heads/main"
    );
    assert!(repo.contains("main", &integrated));
    assert!(repo.contains("main", &head));
    assert_eq!(repo.read("feature.txt"), "feature\n");
    assert_eq!(repo.read("docs.txt"), "docs\n");
    assert_eq!(repo.read("README.md"), README);
    assert_eq!(repo.status(), "");
    assert_eq!(
        repo.git(&["log", "-1", "--format=%s", "main"]).trim(),
        format!("Merge {integration} into main")
    );

    // Once more: nothing to merge.
    let again = env.ok_json(&["orchestrate", "merge", &orch, "--into", "main"]);
    assert_eq!(again["merged"], false, "{again:#}");
    assert_eq!(repo.rev("main"), commit);
}

#[test]
fn new_worktrees_are_prepared_by_the_repository_maos_copy_and_setup_files() {
    if in_process() {
        return;
    }
    let env = Env::new();
    let repo = Repo::new();
    repo.write(".gitignore", ".env\nsetup-ran.txt\n");
    repo.write(".maos/copy", "# secrets\n.env\nmissing.txt\n");
    repo.write(
        ".maos/setup.sh",
        "echo \"set up in $(pwd)\" > setup-ran.txt\n",
    );
    repo.git(&["add", "-A"]);
    repo.git(&["commit", "-q", "-m", "maos setup"]);
    // Ignored, so the repository is clean.
    repo.write(".env", "TOKEN=secret\n");
    let head = repo.rev("HEAD");
    let work = tempfile::tempdir().unwrap();
    let agent = script(
        work.path(),
        "checker",
        "cat .env > seen-env.txt\ncat setup-ran.txt > seen-setup.txt\n",
    );
    command_agent(&env, "checker", 1, &agent);
    let repo_arg = repo.arg();
    let id = id_of(&create(
        &env,
        "Check",
        &["--repo", &repo_arg, "--max-attempts", "1"],
    ));
    let t = settle(&env, &id, "completed");
    let (wt, branch) = worktree_of(&env, &t);
    assert_eq!(
        std::fs::read_to_string(wt.join(".env")).unwrap(),
        "TOKEN=secret\n"
    );
    assert!(!wt.join("missing.txt").exists());
    assert_eq!(
        repo.show(&branch, "seen-env.txt").as_deref(),
        Some("TOKEN=secret\n")
    );
    assert_eq!(
        repo.show(&branch, "seen-setup.txt").as_deref(),
        Some(format!("set up in {}\n", wt.display()).as_str())
    );
    // Ignored files stay out of the checkpoints.
    assert_eq!(repo.show(&branch, ".env"), None);
    assert_eq!(repo.show(&branch, "setup-ran.txt"), None);
    assert_eq!(repo.rev("HEAD"), head);
    assert_eq!(repo.git(&["status", "--porcelain"]), "");
}

#[test]
fn a_failing_setup_fails_the_attempt_and_leaves_no_worktree_or_branch_behind() {
    if in_process() {
        return;
    }
    let env = Env::new();
    let repo = Repo::new();
    repo.write(".maos/setup.sh", "echo 'npm is missing'\nexit 3\n");
    repo.git(&["add", "-A"]);
    repo.git(&["commit", "-q", "-m", "a broken setup"]);
    let head = repo.rev("HEAD");
    let work = tempfile::tempdir().unwrap();
    let ran = work.path().join("ran");
    let agent = script(work.path(), "never", &format!("touch {}\n", ran.display()));
    command_agent(&env, "never", 1, &agent);
    let repo_arg = repo.arg();
    let id = id_of(&create(
        &env,
        "Set up",
        &["--repo", &repo_arg, "--max-attempts", "1"],
    ));
    let t = settle(&env, &id, "blocked");
    let attempt = &t["attempts"][0];
    assert_eq!(attempt["status"], "failed");
    assert_eq!(attempt["failure"], "setup");
    let error = str_of(&attempt["error"], "error");
    assert!(
        error.contains("setup") && error.contains("npm is missing"),
        "{error}"
    );
    assert_eq!(t["workspace"], Value::Null);
    assert!(!ran.exists(), "the agent ran");
    assert!(!env.dir().join("worktrees").join(&id).exists());
    assert_eq!(repo.worktrees(), vec![repo.path()]);
    assert_eq!(repo.branches(), vec!["main".to_owned()]);
    assert_eq!(repo.rev("HEAD"), head);
    assert_eq!(repo.status(), "");
}

#[test]
fn task_diff_works_after_gc_removed_the_worktree_and_rollback_says_there_is_none() {
    if in_process() {
        return;
    }
    let env = Env::new();
    let repo = Repo::new();
    let work = tempfile::tempdir().unwrap();
    let agent = script(work.path(), "writer", "echo changed > file.txt\n");
    command_agent(&env, "writer", 1, &agent);
    let (orch, _) = orchestration(&env, &repo, &[]);
    let id = id_of(&create(&env, "Write", &["--orchestration", &orch]));
    settle(&env, &id, "completed");
    std::thread::sleep(Duration::from_millis(20));
    let gc = env.ok_json(&["gc", "--older-than", "1ms"]);
    assert_eq!(gc["worktrees"][0]["removed"], true, "{gc:#}");
    // The branch and its checkpoints stay: the diffs come from them.
    for args in [
        vec!["task", "diff", &id, "--stat"],
        vec!["task", "diff", &id, "--attempt", "1"],
    ] {
        let run = env.maos(&args);
        assert_eq!(run.code, 0, "{args:?}:\n{}", run.stderr);
        assert!(run.stdout.contains("file.txt"), "{args:?}:\n{}", run.stdout);
    }
    // Nothing to roll back: refused (exit 4), saying why.
    let rollback = env.maos(&["task", "rollback", &id]);
    assert_eq!(rollback.code, 4, "{}", rollback.stderr);
    assert!(
        rollback.stderr.contains("no worktree"),
        "{}",
        rollback.stderr
    );
}

#[test]
fn a_task_blocked_by_a_conflict_can_be_rejected_like_any_result_waiting_for_a_person() {
    if in_process() {
        return;
    }
    let env = Env::new();
    let repo = Repo::new();
    let work = tempfile::tempdir().unwrap();
    let prompts = work.path().join("prompts");
    std::fs::create_dir(&prompts).unwrap();
    let agent = script(
        work.path(),
        "rewrite",
        &format!(
            "cp \"$MAOS_PROMPT_FILE\" {}/$MAOS_TASK_TITLE.$MAOS_ATTEMPT\n\
             printf '# %s %s\\n' \"$MAOS_TASK_TITLE\" \"$MAOS_ATTEMPT\" > README.md\n",
            prompts.display()
        ),
    );
    command_agent(&env, "rewrite", 1, &agent);
    let (orch, integration) = orchestration(&env, &repo, &[]);
    let first = id_of(&create(&env, "first", &["--orchestration", &orch]));
    let second = id_of(&create(&env, "second", &["--orchestration", &orch]));
    let third = id_of(&create(&env, "third", &["--orchestration", &orch]));
    settle(&env, &first, "completed");
    settle(&env, &second, "blocked");
    settle(&env, &third, "blocked");
    // `maos approvals` lists both as results waiting for a person...
    let approvals = env.ok_json(&["approvals"]);
    for id in [&second, &third] {
        assert!(
            approvals["approvals"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a["task"] == id.as_str() && a["gate"] == "result"),
            "{approvals:#}"
        );
    }
    let tip = repo.rev(&integration);
    // ... so `maos reject --cancel` ends one,
    let cancelled = env.maos(&[
        "reject",
        &third,
        "--reason",
        "not needed",
        "--cancel",
        "--json",
    ]);
    assert_eq!(cancelled.code, 0, "{}", cancelled.stderr);
    assert_eq!(cancelled.json()["task"]["state"], "cancelled");
    // and `maos reject --reason` sends the other back to its agent with the reason.
    let reason = "start from the integration branch";
    let rejected = env.maos(&["reject", &second, "--reason", reason]);
    assert_eq!(rejected.code, 0, "{}", rejected.stderr);
    wait_for(&env, &second, "given a second attempt", |t| {
        t["attempts"].as_array().unwrap().len() == 2 && t["attempts"][1]["ended_at"].is_string()
    });
    let prompt = std::fs::read_to_string(prompts.join("second.2")).unwrap();
    assert!(
        prompt.contains(&format!(
            "### Attempt 1: rejected by a person\n\n```\n{reason}\n"
        )),
        "{prompt}"
    );
    assert_eq!(repo.rev(&integration), tip);
}

#[test]
fn a_task_whose_integration_fails_waits_for_a_person_instead_of_running_again() {
    if in_process() {
        return;
    }
    let env = Env::new();
    let repo = Repo::new();
    let work = tempfile::tempdir().unwrap();
    let agent = script(
        work.path(),
        "writer",
        "echo \"$MAOS_TASK_TITLE\" > \"$MAOS_TASK_TITLE.txt\"\n",
    );
    command_agent(&env, "writer", 1, &agent);
    let (orch, integration) = orchestration(&env, &repo, &[]);
    let first = id_of(&create(&env, "first", &["--orchestration", &orch]));
    settle(&env, &first, "completed");
    // The user looks at the integration branch in a worktree of their own: MAOS must not move
    // the branch under it.
    let look = tempfile::tempdir().unwrap();
    let look_wt = look.path().join("look");
    repo.git(&[
        "worktree",
        "add",
        "-q",
        look_wt.to_str().unwrap(),
        &integration,
    ]);
    let tip = repo.rev(&integration);
    let second = id_of(&create(&env, "second", &["--orchestration", &orch]));
    // Its work is done and verified; only the merge cannot happen now: it waits for a person,
    // saying why, and its agent is not run again.
    let t = settle(&env, &second, "blocked");
    let attempts = t["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 1, "{t:#}");
    assert_eq!(attempts[0]["status"], "succeeded", "{t:#}");
    let reason = str_of(&t["reason"], "reason");
    assert!(reason.contains(&integration), "{reason}");
    assert_eq!(repo.rev(&integration), tip);
    // Once the worktree is gone, an approval merges it.
    repo.git(&["worktree", "remove", look_wt.to_str().unwrap()]);
    let approved = env.ok_json(&["approve", &second]);
    assert_eq!(approved["task"]["state"], "completed", "{approved:#}");
    assert_eq!(
        repo.show(&integration, "second.txt").as_deref(),
        Some("second\n")
    );
}

#[test]
fn a_broken_repository_blocks_its_tasks_without_retries_and_never_drains_a_healthy_agent() {
    if in_process() {
        return;
    }
    let env = Env::new();
    let repo = Repo::new();
    repo.write(".maos/setup.sh", "echo 'npm is missing'\nexit 3\n");
    repo.git(&["add", "-A"]);
    repo.git(&["commit", "-q", "-m", "a broken setup"]);
    let work = tempfile::tempdir().unwrap();
    let agent = script(work.path(), "healthy", "echo fine\n");
    command_agent(&env, "healthy", 1, &agent);
    let repo_arg = repo.arg();
    // Three tasks of the broken repository: each blocks at once (one attempt, no backoff), and
    // none counts against the agent (the circuit breaker's threshold is 3).
    for n in 0..3 {
        let id = id_of(&create(
            &env,
            &format!("Broken {n}"),
            &["--repo", &repo_arg],
        ));
        let t = settle(&env, &id, "blocked");
        assert_eq!(t["attempts"].as_array().unwrap().len(), 1, "{t:#}");
        assert_eq!(t["attempts"][0]["failure"], "setup");
        let reason = str_of(&t["reason"], "reason");
        assert!(
            reason.contains("its workspace could not be prepared")
                && reason.contains("no retry helps until that is fixed"),
            "{reason}"
        );
        // What a person can do next is offered where the task is shown.
        let shown = env.ok_json(&["task", "show", &id]);
        assert!(
            shown["waiting"].to_string().contains("task retry"),
            "{shown:#}"
        );
    }
    let agent = env.ok_json(&["agent", "show", "healthy"]);
    assert_eq!(agent["agent"]["status"], "available", "{agent:#}");
    assert_eq!(agent["agent"]["failures_in_row"], 0, "{agent:#}");
    // The agent still does the work it can.
    let id = id_of(&create(&env, "Plain work", &[]));
    settle(&env, &id, "completed");
}

#[test]
fn a_program_missing_at_run_time_blocks_the_task_without_retries() {
    if in_process() {
        return;
    }
    let env = Env::new();
    let work = tempfile::tempdir().unwrap();
    let program = work.path().join("vanishing-agent");
    std::fs::write(&program, "#!/bin/sh\necho hi\n").unwrap();
    std::fs::set_permissions(
        &program,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    command_agent(&env, "vanishing", 1, program.to_str().unwrap());
    std::fs::remove_file(&program).unwrap();
    let id = id_of(&create(&env, "Run a gone program", &[]));
    let t = settle(&env, &id, "blocked");
    assert_eq!(t["attempts"].as_array().unwrap().len(), 1, "{t:#}");
    assert_eq!(t["attempts"][0]["failure"], "start");
    assert!(
        str_of(&t["reason"], "reason").contains("its agent could not be started"),
        "{t:#}"
    );
    let agent = env.ok_json(&["agent", "show", "vanishing"]);
    assert_eq!(agent["agent"]["failures_in_row"], 0, "{agent:#}");
}
