//! How one attempt runs as a process: the program and arguments (with `{placeholders}`
//! substituted), the environment (an allowlist, the variables the agent's settings name, and
//! MAOS's own), what goes to stdin, and which protocol its stdout speaks.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use maos_application::{AgentCredential, Launch};
use maos_domain::{AdapterKind, PromptVia};

use crate::claude::{ClaudeInvocation, ClaudeStream};
use crate::codex::{CodexInvocation, CodexMcp, CodexStream};
use crate::credential::CREDENTIAL_ENV;
use crate::stream::StreamParser;
use crate::supervisor::McpLaunch;

/// Variables an agent inherits from the daemon's environment whatever its settings say
/// (besides every `LC_*`).
pub const ENV_ALLOWLIST: &[&str] = &[
    "PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "TERM", "TZ", "TMPDIR",
];

/// Where an attempt's files live.
#[derive(Debug, Clone)]
pub(crate) struct Paths {
    /// The task's working directory (kept across its attempts).
    pub(crate) workdir: PathBuf,
    /// The prompt, as given to the agent.
    pub(crate) prompt_file: PathBuf,
    /// Where a `command` agent may write its result.
    pub(crate) result_file: PathBuf,
    /// What the verification command printed.
    pub(crate) verify_file: PathBuf,
    /// The port the attempt was given (`MAOS_PORT`).
    pub(crate) port: Option<u16>,
    /// The checkpoint made in the task's worktree before the attempt.
    pub(crate) checkpoint_before: Option<String>,
    /// Claude Code's MCP configuration (MAOS's server, with the credential).
    pub(crate) mcp_file: PathBuf,
    /// The data directory (`MAOS_DATA_DIR` of a `command` agent given a credential).
    pub(crate) data_dir: PathBuf,
    /// The secret the attempt's agent uses for MAOS's tools; none for in-process agents that
    /// were not given one.
    pub(crate) credential: Option<AgentCredential>,
}

impl Paths {
    /// The paths of `launch` under the data directory.
    pub(crate) fn of(data_dir: &Path, launch: &Launch) -> Paths {
        let task = launch.task.id.to_string();
        let run = data_dir
            .join("runs")
            .join(&task)
            .join(launch.attempt.to_string());
        Paths {
            workdir: data_dir.join("work").join(&task),
            prompt_file: run.join("prompt.md"),
            result_file: run.join("result.md"),
            verify_file: run.join("verify.log"),
            mcp_file: run.join("mcp.json"),
            port: None,
            checkpoint_before: None,
            data_dir: data_dir.to_owned(),
            credential: None,
        }
    }
}

/// What goes to the agent's standard input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Stdin {
    /// Nothing: it reads end of file at once.
    Null,
    /// These bytes, then end of file.
    Write(Vec<u8>),
    /// These bytes, and the pipe stays open for the protocol's answers.
    Stream(Vec<u8>),
}

/// A process to start for an attempt.
pub(crate) struct ProcessPlan {
    pub(crate) program: String,
    pub(crate) args: Vec<String>,
    pub(crate) env: Vec<(OsString, OsString)>,
    pub(crate) stdin: Stdin,
    /// How to read its stdout: `None` for plain output.
    pub(crate) parser: Option<Box<dyn StreamParser + Send>>,
    /// Variables the settings name that the daemon's environment lacks.
    pub(crate) missing_env: Vec<String>,
    /// Private files (0600) to write before the process starts, and to remove once it ended:
    /// they may hold the attempt's credential.
    pub(crate) files: Vec<(PathBuf, Vec<u8>)>,
}

impl std::fmt::Debug for ProcessPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the environment's values: they may hold secrets.
        f.debug_struct("ProcessPlan")
            .field("program", &self.program)
            .field("args", &self.args)
            .field("stdin", &self.stdin)
            .field(
                "files",
                &self.files.iter().map(|(p, _)| p).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// The prompt an agent receives: the attempt's briefing, assembled when it was assigned (the
/// task, its orchestration's goal and notes, its dependencies' outputs, its earlier failures).
/// An attempt without one (assigned by an older daemon) gets the task's prompt (its title when
/// it has none), followed, on a retry, by what went wrong in the previous attempt.
pub(crate) fn prompt_of(launch: &Launch) -> String {
    if let Some(b) = launch
        .task
        .attempts
        .iter()
        .find(|a| a.number == launch.attempt)
        .and_then(|a| a.briefing.as_ref())
    {
        return b.text.clone();
    }
    let spec = &launch.task.spec;
    let mut prompt = if spec.prompt.trim().is_empty() {
        spec.title.to_string()
    } else {
        spec.prompt.clone()
    };
    let previous = launch
        .task
        .attempts
        .iter()
        .rev()
        .find(|a| a.number < launch.attempt && a.error.is_some());
    if let Some(a) = previous {
        prompt.push_str(&format!(
            "\n\n---\nThis is attempt {} of this task. Attempt {} did not succeed: {}\n",
            launch.attempt,
            a.number,
            a.error.as_deref().unwrap_or_default()
        ));
    }
    prompt
}

/// Splits a command line into words the way a POSIX shell would for plain words, single and
/// double quotes and backslashes (no variables, globs or other expansions).
pub fn split_command(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err("a single quote is not closed".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => word.push(c),
                            Some(c) => {
                                word.push('\\');
                                word.push(c);
                            }
                            None => return Err("a double quote is not closed".into()),
                        },
                        Some(c) => word.push(c),
                        None => return Err("a double quote is not closed".into()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some(c) => word.push(c),
                    None => return Err("the line ends with a lone backslash".into()),
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

/// The variables of `daemon_env` a process MAOS starts may see: the allowlist, every `LC_*`,
/// and the variables `named`.
pub(crate) fn allowlisted(
    daemon_env: &[(OsString, OsString)],
    named: &[&str],
) -> Vec<(OsString, OsString)> {
    daemon_env
        .iter()
        .filter(|(k, _)| {
            k.to_str().is_some_and(|k| {
                ENV_ALLOWLIST.contains(&k) || k.starts_with("LC_") || named.contains(&k)
            })
        })
        .cloned()
        .collect()
}

/// The environment of an attempt: the allowlisted variables and those the agent's settings
/// name, taken from `daemon_env`, then MAOS's own.
pub(crate) fn environment(
    launch: &Launch,
    paths: &Paths,
    daemon_env: &[(OsString, OsString)],
) -> (Vec<(OsString, OsString)>, Vec<String>) {
    let named: Vec<&str> = launch
        .agent
        .settings
        .env
        .iter()
        .map(|n| n.as_str())
        .chain(
            launch
                .agent
                .settings
                .api_key_env
                .as_ref()
                .map(|n| n.as_str()),
        )
        .collect();
    let mut env = allowlisted(daemon_env, &named);
    let missing = named
        .iter()
        .filter(|n| !daemon_env.iter().any(|(k, _)| k.to_str() == Some(**n)))
        .map(|n| (*n).to_owned())
        .collect();
    let t = &launch.task;
    let ours: [(&str, OsString); 8] = [
        ("MAOS_TASK_ID", t.id.to_string().into()),
        ("MAOS_TASK_TITLE", t.spec.title.to_string().into()),
        ("MAOS_ATTEMPT", launch.attempt.to_string().into()),
        ("MAOS_FENCING", launch.fencing.get().to_string().into()),
        ("MAOS_AGENT", launch.agent.name.to_string().into()),
        ("MAOS_WORKDIR", paths.workdir.clone().into_os_string()),
        (
            "MAOS_PROMPT_FILE",
            paths.prompt_file.clone().into_os_string(),
        ),
        (
            "MAOS_RESULT_FILE",
            paths.result_file.clone().into_os_string(),
        ),
    ];
    // MAOS's own values win over the daemon's (a named variable of the same name is dropped);
    // other named variables pass, whatever their prefix.
    env.retain(|(k, _)| !ours.iter().any(|(name, _)| k.to_str() == Some(*name)));
    env.extend(ours.into_iter().map(|(k, v)| (OsString::from(k), v)));
    if let Some(port) = paths.port {
        env.push(("MAOS_PORT".into(), port.to_string().into()));
    }
    (env, missing)
}

/// The variables that give a process the attempt's credential: a `command` agent gets it with
/// the data directory (so that a script can run `maos mcp` itself), Codex gets it to forward to
/// MAOS's MCP server (`env_vars`); Claude Code gets it only in its MCP configuration file.
fn credential_env(
    launch: &Launch,
    paths: &Paths,
    mcp: Option<&McpLaunch>,
) -> Vec<(OsString, OsString)> {
    let Some(credential) = &paths.credential else {
        return Vec::new();
    };
    let secret = (
        OsString::from(CREDENTIAL_ENV),
        OsString::from(credential.expose()),
    );
    // What `maos mcp` needs to find the daemon, beside the secret.
    let finding = mcp
        .into_iter()
        .flat_map(|m| m.env.iter())
        .map(|(k, v)| (OsString::from(k), OsString::from(v)));
    match launch.agent.adapter {
        AdapterKind::Command => {
            let dir = mcp.map_or(&paths.data_dir, |m| &m.data_dir);
            let mut env = vec![
                secret,
                ("MAOS_DATA_DIR".into(), dir.clone().into_os_string()),
            ];
            env.extend(finding);
            env
        }
        AdapterKind::Codex if mcp.is_some() => std::iter::once(secret).chain(finding).collect(),
        _ => Vec::new(),
    }
}

fn substitute(arg: &str, launch: &Launch, paths: &Paths, prompt: &str) -> String {
    arg.replace("{prompt_file}", &paths.prompt_file.to_string_lossy())
        .replace("{result_file}", &paths.result_file.to_string_lossy())
        .replace("{workdir}", &paths.workdir.to_string_lossy())
        .replace("{task}", &launch.task.id.to_string())
        .replace("{attempt}", &launch.attempt.to_string())
        .replace("{prompt}", prompt)
}

/// Where `program` is, as the daemon would run it: a path (with a `/`) to an executable file,
/// or a name found on the directories of `PATH`; none when it cannot be run.
pub fn find_program(program: &str) -> Option<std::path::PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &std::path::Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        let p = std::path::PathBuf::from(program);
        return executable(&p).then_some(p);
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|p| executable(p))
}

/// The program an agent of this adapter runs and its leading arguments: its `command`, or the
/// adapter's own CLI (`claude`, `codex`); none for the adapters that run no program of their own
/// (sim, openai, ollama, external). Refused: a command that does not split into words.
pub fn agent_program(agent: &maos_domain::Agent) -> Result<Option<Vec<String>>, String> {
    let default = match agent.adapter {
        AdapterKind::Command => "",
        AdapterKind::ClaudeCode => "claude",
        AdapterKind::Codex => "codex",
        _ => return Ok(None),
    };
    let words = program_words_of(agent, default)?;
    Ok(words
        .first()
        .is_some_and(|w| !w.is_empty())
        .then_some(words))
}

/// The program and leading arguments from the agent's `command`, or `default` when it has none.
fn program_words(launch: &Launch, default: &str) -> Result<Vec<String>, String> {
    program_words_of(&launch.agent, default)
}

fn program_words_of(agent: &maos_domain::Agent, default: &str) -> Result<Vec<String>, String> {
    match agent.command.as_deref().map(str::trim) {
        Some(line) if !line.is_empty() => {
            let words = split_command(line).map_err(|e| {
                format!("the agent's command {line:?} cannot be split into words: {e}")
            })?;
            if words.is_empty() {
                return Err("the agent's command is empty".into());
            }
            Ok(words)
        }
        _ => Ok(vec![default.to_owned()]),
    }
}

/// The process for a `command`, `claude-code` or `codex` attempt.
/// With `mcp` (and a credential in `paths`), the CLI adapters are given MAOS's MCP server.
pub(crate) fn process_plan(
    launch: &Launch,
    paths: &Paths,
    daemon_env: &[(OsString, OsString)],
    mcp: Option<&McpLaunch>,
) -> Result<ProcessPlan, String> {
    process_plan_with(launch, paths, daemon_env, prompt_of(launch), mcp)
}

/// [`process_plan`] with another prompt than the attempt's briefing (a lesson's question).
pub(crate) fn process_plan_with(
    launch: &Launch,
    paths: &Paths,
    daemon_env: &[(OsString, OsString)],
    prompt: String,
    mcp: Option<&McpLaunch>,
) -> Result<ProcessPlan, String> {
    let settings = &launch.agent.settings;
    let (mut env, missing_env) = environment(launch, paths, daemon_env);
    let ours = credential_env(launch, paths, mcp);
    env.retain(|(k, _)| !ours.iter().any(|(name, _)| name == k));
    env.extend(ours);
    let mcp = mcp.zip(paths.credential.as_ref());
    let mut files = Vec::new();
    let (mut words, stdin, parser): (Vec<String>, Stdin, Option<Box<dyn StreamParser + Send>>) =
        match launch.agent.adapter {
            AdapterKind::Command => {
                let mut words = program_words(launch, "")?;
                if words.first().is_some_and(String::is_empty) {
                    return Err("a `command` agent needs the program to run (its command)".into());
                }
                words.extend(settings.args.iter().cloned());
                let mentions_prompt = words.iter().any(|w| w.contains("{prompt}"));
                let stdin = match settings.prompt_via {
                    PromptVia::Stdin => Stdin::Write(prompt.clone().into_bytes()),
                    PromptVia::File => Stdin::Null,
                    PromptVia::Arg => {
                        if !mentions_prompt {
                            words.push("{prompt}".to_owned());
                        }
                        Stdin::Null
                    }
                };
                (words, stdin, None)
            }
            AdapterKind::ClaudeCode => {
                let mut words = program_words(launch, "claude")?;
                let invocation = ClaudeInvocation {
                    program: words[0].clone(),
                    model: settings.model.clone(),
                    resume: launch.resume.clone(),
                    skip_permissions: settings.skip_permissions,
                    always_ask: ClaudeInvocation::always_ask_of(&settings.permissions),
                    extra_args: settings.args.clone(),
                    mcp_config: mcp.map(|_| paths.mcp_file.to_string_lossy().into_owned()),
                };
                if let Some((m, credential)) = mcp {
                    let config = crate::claude::mcp_config(
                        &m.program.to_string_lossy(),
                        &m.data_dir.to_string_lossy(),
                        credential.expose(),
                        &m.env,
                    );
                    files.push((paths.mcp_file.clone(), config.to_string().into_bytes()));
                }
                words.extend(invocation.args());
                (
                    words,
                    Stdin::Stream(ClaudeInvocation::prompt_message(&prompt)),
                    Some(Box::new(ClaudeStream::asking_people(
                        settings.permissions.clone(),
                    ))),
                )
            }
            AdapterKind::Codex => {
                let mut words = program_words(launch, "codex")?;
                let invocation = CodexInvocation {
                    program: words[0].clone(),
                    model: settings.model.clone(),
                    resume: launch.resume.clone(),
                    extra_args: settings.args.clone(),
                    mcp: mcp.map(|(m, _)| CodexMcp {
                        command: m.program.to_string_lossy().into_owned(),
                        args: vec![
                            "mcp".to_owned(),
                            "--data-dir".to_owned(),
                            m.data_dir.to_string_lossy().into_owned(),
                        ],
                        env_vars: std::iter::once(CREDENTIAL_ENV.to_owned())
                            .chain(m.env.iter().map(|(k, _)| k.clone()))
                            .collect(),
                    }),
                };
                words.extend(invocation.args());
                (
                    words,
                    Stdin::Write(CodexInvocation::prompt_input(&prompt)),
                    Some(Box::new(match &launch.resume {
                        Some(session) => CodexStream::resuming(None, thread_usage(launch, session)),
                        None => CodexStream::new(None),
                    })),
                )
            }
            other => return Err(format!("the {other} adapter does not run a process")),
        };
    // `{prompt}` is only substituted where the prompt is meant to go: for `command` agents
    // (the CLI adapters get theirs on stdin).
    let prompt_arg = if launch.agent.adapter == AdapterKind::Command {
        prompt.as_str()
    } else {
        "{prompt}"
    };
    for w in words.iter_mut() {
        *w = substitute(w, launch, paths, prompt_arg);
    }
    let program = words.remove(0);
    Ok(ProcessPlan {
        program,
        args: words,
        env,
        stdin,
        parser,
        missing_env,
        files,
    })
}

/// What the earlier attempts of the task recorded in the agent session `session`: the total a
/// resumed Codex thread starts from.
pub(crate) fn thread_usage(launch: &Launch, session: &str) -> crate::report::Usage {
    let mut total = crate::report::Usage::default();
    for a in launch
        .task
        .attempts
        .iter()
        .filter(|a| a.number < launch.attempt && a.session.as_deref() == Some(session))
    {
        total.input_tokens += a.usage.input_tokens;
        total.cached_input_tokens += a.usage.cached_input_tokens;
        total.output_tokens += a.usage.output_tokens;
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_lines_split_like_a_shell() {
        assert_eq!(
            split_command(r#"python3 -c 'print("hi there")' "a b" c\ d"#).unwrap(),
            vec!["python3", "-c", r#"print("hi there")"#, "a b", "c d"]
        );
        assert_eq!(split_command("  ").unwrap(), Vec::<String>::new());
        assert_eq!(split_command(r#"x "" y"#).unwrap(), vec!["x", "", "y"]);
        assert!(split_command("'open").is_err());
        assert!(split_command("\"open").is_err());
        assert!(split_command("end\\").is_err());
    }
}
