//! The file checkers' reports, black box: an agents file and a `config.toml` with several
//! problems each report every one of them at once, in file order, each as
//! `file:line:column: message` (unknown keys with a "did you mean", wrong types with an example),
//! and the command fails with exit code 2 (invalid input) without changing anything.

use crate::support::Env;

/// The problems of a report about `file`: `(line, column, message)` of every line that starts
/// (after its indent) with `file:line:column: `.
fn placed(stderr: &str, file: &str) -> Vec<(usize, usize, String)> {
    stderr
        .lines()
        .filter_map(|l| {
            let rest = l.trim_start().strip_prefix(file)?.strip_prefix(':')?;
            let mut parts = rest.splitn(3, ':');
            let line = parts.next()?.parse().ok()?;
            let column = parts.next()?.parse().ok()?;
            let message = parts.next()?.strip_prefix(' ')?;
            Some((line, column, message.to_owned()))
        })
        .collect()
}

fn places(problems: &[(usize, usize, String)]) -> Vec<(usize, usize)> {
    problems.iter().map(|(l, c, _)| (*l, *c)).collect()
}

fn has(problems: &[(usize, usize, String)], at: (usize, usize), wanted: &str) {
    assert!(
        problems
            .iter()
            .any(|(l, c, m)| (*l, *c) == at && m.contains(wanted)),
        "no problem at {at:?} saying {wanted:?} in {problems:#?}"
    );
}

/// Runs `args` on a bad file at `path`, as text and as JSON: each time it exits 2 (a JSON error
/// document of kind `invalid_input` with `--json`), says `header` on stderr, and places its
/// problems; answers them (the same both times).
fn refused_file(env: &Env, args: &[&str], path: &str, header: &str) -> Vec<(usize, usize, String)> {
    let mut found = Vec::new();
    for json in [false, true] {
        let mut all = args.to_vec();
        if json {
            all.push("--json");
        }
        let run = env.maos(&all);
        assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
        assert!(run.stderr.contains(header), "{}", run.stderr);
        if json {
            assert_eq!(
                run.json()["error"]["kind"],
                "invalid_input",
                "{}",
                run.stdout
            );
        }
        found = placed(&run.stderr, path);
    }
    found
}

#[test]
fn an_agents_file_reports_every_problem_with_its_line_and_column() {
    let env = Env::new();
    let file = env.dir().join("agents.toml");
    std::fs::write(
        &file,
        "[[agent]]\nname = \"scribe\"\nadapter = \"command\"\ncommand = [\"claude\"]\n\
         slots = -1\ncapabilites = [\"rust\"]\n\n[[agent]]\nname = \"scribe\"\nadapter = \
         \"sim\"\ntier = \"middle\"\n",
    )
    .unwrap();
    let path = file.to_str().unwrap();
    let before = env.state();
    let problems = refused_file(
        &env,
        &["agent", "register", "--from-file", path],
        path,
        &format!("{path} has 6 problems; no agent was registered:"),
    );
    assert_eq!(
        places(&problems),
        [(3, 11), (4, 11), (5, 9), (6, 1), (9, 8), (11, 8)],
        "{problems:#?}"
    );
    has(&problems, (4, 11), "like command = \"claude\"; not a list");
    has(&problems, (5, 9), "from 1 to 256, not -1");
    has(&problems, (6, 1), "did you mean `capabilities`?");
    has(&problems, (9, 8), &format!("already used at {path}:2:8"));
    has(&problems, (11, 8), "invalid tier \"middle\"");
    assert_eq!(env.state(), before, "a bad agents file changed something");
}

#[test]
fn a_config_file_reports_every_problem_with_its_line_and_column() {
    let env = Env::new();
    // Read when the first command (or the daemon it starts) opens the data directory.
    env.config(
        "approve_plan = \"auto\"\nbriefing_tokens = \"8000\"\n\n[retry]\nbase = 2\n\
         jitter_percent = 300\n\n[[route]]\npattern = \"test\"\ncapabilities = \"test\"\n",
    );
    let config = env.dir().join("config.toml").display().to_string();
    for args in [
        &["task", "list"][..],
        &["task", "create", "T", "--json"][..],
    ] {
        let run = env.maos(args);
        assert_eq!(run.code, 2, "{args:?}: {}{}", run.stdout, run.stderr);
        assert!(
            run.stderr.contains(&format!("{config} has 5 problems:")),
            "{}",
            run.stderr
        );
        let problems = placed(&run.stderr, &config);
        assert_eq!(
            places(&problems),
            [(1, 1), (2, 19), (5, 8), (6, 18), (10, 16)],
            "{}",
            run.stderr
        );
        has(&problems, (1, 1), "did you mean `approve_plans`?");
        has(
            &problems,
            (2, 19),
            "like briefing_tokens = 1; not the string \"8000\"",
        );
        has(&problems, (5, 8), "like base = \"2s\"; not the number 2");
        has(&problems, (6, 18), "from 0 to 100, not 300");
        has(&problems, (10, 16), "like capabilities = [\"test\"]");
    }
    std::fs::remove_file(env.dir().join("config.toml")).unwrap();
    let _ = env.maos(&["daemon", "stop"]);
}

#[test]
fn a_tasks_file_reports_every_problem_with_its_line_and_creates_nothing() {
    let env = Env::new();
    let existing = env.task("Already there", &["--no-repo"]);
    let file = env.dir().join("tasks.jsonl");
    std::fs::write(
        &file,
        format!(
            "{{\"title\": \"Fine\", \"no_repo\": true}}\n\
             {{\"title\": \"Bad priority\", \"priority\": \"soon\", \"no_repo\": true}}\n\
             \n\
             {{\"title\": \"Typo\", \"capabilites\": [\"rust\"]}}\n\
             not json\n\
             {{\"title\": \"After {short}\", \"depends_on\": [\"{short}\"], \"no_repo\": true}}\n",
            short = &existing[..8]
        ),
    )
    .unwrap();
    let path = file.to_str().unwrap();
    let before = env.state();
    let problems = refused_file(
        &env,
        &["task", "create", "--from-file", path],
        path,
        &format!("{path} has 3 problems; no task was created:"),
    );
    assert_eq!(
        places(&problems),
        [(2, 27), (4, 19), (5, 2)],
        "{problems:#?}"
    );
    has(
        &problems,
        (2, 27),
        "\"soon\" is not one of low, normal, high, urgent",
    );
    has(&problems, (4, 19), "did you mean \"capabilities\"?");
    has(&problems, (5, 2), "not valid JSON");
    assert_eq!(env.state(), before, "a refused file changed what is stored");

    // Lines that read well but name a task that is not there: each is placed, nothing made.
    std::fs::write(
        &file,
        "{\"title\": \"One\", \"no_repo\": true}\n\
         {\"title\": \"Two\", \"depends_on\": [\"zzzzzzzz\"], \"no_repo\": true}\n\
         {\"title\": \"Three\", \"depends_on\": [\"zzzzzzzz\"], \"no_repo\": true}\n",
    )
    .unwrap();
    let run = env.maos(&["task", "create", "--from-file", path]);
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains(&format!("{path}:2: \"depends_on\":")),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(&format!("{path}:3: \"depends_on\":")),
        "{}",
        run.stderr
    );
    assert_eq!(env.state(), before, "a refused file changed what is stored");
}
