//! `maos init`: the first run. Finds the agent CLIs on this machine (`claude`, `codex`,
//! `gemini`, `opencode`, `aider` on the PATH, and a running Ollama with its models), asks each for
//! its version, proposes an agents file with sensible defaults per adapter, writes it (the user's
//! config directory, or `.maos/agents.toml` of the repository with `--repo-local`), registers its
//! agents (which starts the daemon) and says what to do next. It asks on a terminal; `--yes`
//! answers for scripts. Run twice, it changes nothing and says so.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

use etcetera::BaseStrategy;
use maos_application::MaosApi;
use serde::Serialize;

use crate::error::{CliError, FailureClass};
use crate::escape;
use crate::input::{FileKind, read_text};
use crate::json;
use crate::output::{Output, Render};

/// The CLIs `init` looks for, in the order it proposes them.
const KNOWN: [&str; 6] = ["claude", "codex", "gemini", "opencode", "aider", "ollama"];

/// Where Ollama listens unless `OLLAMA_HOST` says otherwise.
const OLLAMA_DEFAULT: &str = "127.0.0.1:11434";

/// What `init` was asked.
#[derive(Debug)]
pub(crate) struct InitArgs {
    pub(crate) yes: bool,
    pub(crate) only: Vec<String>,
    pub(crate) repo_local: bool,
    pub(crate) force: bool,
}

/// An agent CLI found here.
#[derive(Debug, Clone, Serialize)]
struct Found {
    /// `claude`, `codex`, … or `ollama`.
    name: &'static str,
    /// Where it is (the program, or Ollama's address).
    at: String,
    /// What its version command said (for Ollama: its models).
    version: String,
    /// Ollama's first model.
    #[serde(skip)]
    model: Option<String>,
}

/// Looks for the CLIs; answers what it found (a missing or silent one is left out).
fn detect() -> Vec<Found> {
    let mut found = Vec::new();
    for name in KNOWN.iter().copied().filter(|n| *n != "ollama") {
        let Some(path) = maos_agents::plan::find_program(name) else {
            continue;
        };
        let version = super::doctor::version_of(&path, &[])
            .unwrap_or_else(|e| format!("(its version command failed: {e})"));
        found.push(Found {
            name,
            at: path.display().to_string(),
            version,
            model: None,
        });
    }
    if let Some((at, models)) = ollama() {
        found.push(Found {
            name: "ollama",
            at: format!("http://{at}"),
            version: if models.is_empty() {
                "running, no model pulled".into()
            } else {
                format!("running, models: {}", models.join(", "))
            },
            model: models.first().cloned(),
        });
    }
    found
}

/// A running Ollama: its address and the models it has (`GET /api/tags`).
fn ollama() -> Option<(String, Vec<String>)> {
    let host = std::env::var("OLLAMA_HOST")
        .ok()
        .map(|h| {
            h.trim_start_matches("http://")
                .trim_end_matches('/')
                .to_owned()
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| OLLAMA_DEFAULT.to_owned());
    let addr = host.to_socket_addrs().ok()?.next()?;
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    stream
        .write_all(
            format!("GET /api/tags HTTP/1.0\r\nHost: {host}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .ok()?;
    let mut reply = Vec::new();
    stream.take(1 << 20).read_to_end(&mut reply).ok()?;
    let reply = String::from_utf8_lossy(&reply);
    let (head, body) = reply.split_once("\r\n\r\n")?;
    if !head.starts_with("HTTP/1.") || head.split_whitespace().nth(1).is_none_or(|c| c != "200") {
        return None;
    }
    let doc: serde_json::Value = serde_json::from_str(body).ok()?;
    let models = doc["models"]
        .as_array()
        .map(|ms| {
            ms.iter()
                .filter_map(|m| m["name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    Some((host, models))
}

/// The agents file `init` proposes for what it found.
fn proposal(found: &[Found]) -> String {
    let mut text = String::from(
        "# MAOS agents, written by `maos init` (edit freely; `maos agent register --from-file`\n\
         # registers what you add). Reference: docs/agents.md.\n",
    );
    for f in found {
        text.push('\n');
        text.push_str(match f.name {
            "claude" => {
                "# Claude Code: edits inside its task's worktree; anything else (commands, the web)\n\
                 # waits for your decision (`maos approvals`).\n\
                 [[agent]]\nname = \"claude\"\nadapter = \"claude-code\"\n\
                 capabilities = [\"code\", \"test\", \"review\", \"docs\", \"plan\"]\n\
                 tier = \"strategic\"\nslots = 2\n\
                 permissions = { allow = [\"Read\", \"Grep\", \"Glob\", \"Edit(**)\", \"Write(**)\"], ask = [\"Bash\", \"WebFetch\", \"WebSearch\"] }\n"
            }
            "codex" => {
                "# Codex: --sandbox workspace-write lets it change files in its worktree (without it,\n\
                 # Codex only reads).\n\
                 [[agent]]\nname = \"codex\"\nadapter = \"codex\"\n\
                 args = [\"--sandbox\", \"workspace-write\"]\n\
                 capabilities = [\"code\", \"test\"]\ntier = \"tactical\"\nslots = 2\n"
            }
            "gemini" => {
                "# Gemini CLI, run as a command: the prompt is its -p argument.\n\
                 [[agent]]\nname = \"gemini\"\nadapter = \"command\"\n\
                 command = \"gemini --yolo -p\"\nprompt_via = \"arg\"\n\
                 capabilities = [\"code\", \"docs\"]\ntier = \"tactical\"\n"
            }
            "opencode" => {
                "# opencode, run as a command: `opencode run <prompt>`.\n\
                 [[agent]]\nname = \"opencode\"\nadapter = \"command\"\n\
                 command = \"opencode run\"\nprompt_via = \"arg\"\n\
                 capabilities = [\"code\"]\ntier = \"tactical\"\n"
            }
            "aider" => {
                "# aider, run as a command: one message, no questions, MAOS commits.\n\
                 [[agent]]\nname = \"aider\"\nadapter = \"command\"\n\
                 command = \"aider --yes-always --no-auto-commits --message\"\nprompt_via = \"arg\"\n\
                 capabilities = [\"code\"]\ntier = \"tactical\"\n"
            }
            _ => "",
        });
        if f.name == "ollama" {
            let model = f.model.as_deref().unwrap_or("llama3.2");
            text.push_str(&format!(
                "# Ollama at {}{}: a local model in MAOS's own loop (no API key).\n\
                 [[agent]]\nname = \"ollama\"\nadapter = \"ollama\"\nmodel = \"{}\"\n\
                 base_url = \"{}/v1\"\ncapabilities = [\"docs\"]\ntier = \"tactical\"\n",
                f.at,
                if f.model.is_none() {
                    " (pull a model first: `ollama pull llama3.2`)"
                } else {
                    ""
                },
                model.replace('"', ""),
                f.at
            ));
        }
    }
    text
}

/// Where the agents file goes: the user's config directory, or the repository's `.maos/`.
fn target(repo_local: bool) -> Result<PathBuf, CliError> {
    if repo_local {
        let cwd = std::env::current_dir().map_err(|e| {
            CliError::new(
                FailureClass::Failure,
                format!("cannot read the current directory: {e}"),
            )
        })?;
        let top = maos_git::GitWorkspaces::new()
            .top_level(&cwd)
            .map_err(|_| {
                CliError::new(
                    FailureClass::Usage,
                    "--repo-local writes .maos/agents.toml of the repository you stand in, and the \
                 current directory is in none",
                )
                .with_hint("cd into the repository first, or leave out --repo-local")
            })?;
        return Ok(top.join(".maos").join("agents.toml"));
    }
    // The same base directories as the data directory's (`compose::data_dir`), for config.
    let base = etcetera::choose_base_strategy().map_err(|e| {
        CliError::new(
            FailureClass::Failure,
            format!("cannot find the home directory: {e}"),
        )
        .with_hint("set HOME or XDG_CONFIG_HOME, or use --repo-local")
    })?;
    Ok(base.config_dir().join("maos").join("agents.toml"))
}

/// `maos init`.
pub(super) fn execute(
    args: &InitArgs,
    api: impl FnOnce() -> Result<Box<dyn ApiHandle>, CliError>,
    out: &mut Output,
) -> Result<(), CliError> {
    for name in &args.only {
        if !KNOWN.contains(&name.as_str()) {
            return Err(CliError::new(
                FailureClass::Usage,
                format!("--only names {name:?}, which init does not look for"),
            )
            .with_hint(format!("name some of: {}", KNOWN.join(", "))));
        }
    }
    let found: Vec<Found> = detect()
        .into_iter()
        .filter(|f| args.only.is_empty() || args.only.iter().any(|o| o == f.name))
        .collect();
    if found.is_empty() {
        return Err(CliError::new(
            FailureClass::NotFound,
            format!(
                "found no agent CLI{}: looked for {} on the PATH and for Ollama at http://{}",
                if args.only.is_empty() {
                    String::new()
                } else {
                    format!(" of {}", args.only.join(", "))
                },
                KNOWN[..5].join(", "),
                std::env::var("OLLAMA_HOST").unwrap_or_else(|_| OLLAMA_DEFAULT.into())
            ),
        )
        .with_hint(
            "install one: npm install -g @anthropic-ai/claude-code (Claude Code), npm install -g \
             @openai/codex (Codex), or start Ollama (https://ollama.com); then run `maos init` \
             again",
        ));
    }
    let path = target(args.repo_local)?;
    let proposed = proposal(&found);
    let existing = match path.exists() {
        true => Some(read_text(&path, FileKind::Agents)?),
        false => None,
    };
    let write = match &existing {
        None => true,
        Some(text) if *text == proposed => false,
        Some(_) => args.force,
    };
    if !out.json() {
        let mut said = String::from("Found:\n");
        for f in &found {
            said.push_str(&format!(
                "  {:<9} {}  ({})\n",
                f.name,
                escape::line(&f.at),
                escape::line(&f.version)
            ));
        }
        out.note(said.trim_end());
    }
    if write {
        if !out.json() {
            out.note(&format!(
                "Proposed agents file {}:\n\n{}",
                path.display(),
                escape::block(&proposed)
            ));
        }
        confirm(args.yes, &path, out)?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| {
                CliError::new(
                    FailureClass::Failure,
                    format!("cannot create {}: {e}", dir.display()),
                )
            })?;
        }
        std::fs::write(&path, &proposed).map_err(|e| {
            CliError::new(
                FailureClass::Failure,
                format!("cannot write {}: {e}", path.display()),
            )
        })?;
    }
    // Register what the file (written now, or kept as the person wrote it) names.
    let text = read_text(&path, FileKind::Agents)?;
    let cmds = crate::agents_file::parse(&path, &text).map_err(|problems| {
        CliError::new(
            FailureClass::InvalidInput,
            format!(
                "{} has problems; nothing was registered:\n  {}",
                path.display(),
                maos_plans::diagnostics::render(&path, &problems).join("\n  ")
            ),
        )
        .with_hint("fix the file (or `maos init --force` writes the proposal over it)")
    })?;
    let handle = api()?;
    let api = handle.api();
    let (mut registered, mut already) = (Vec::new(), Vec::new());
    for cmd in cmds {
        let name = cmd.name.to_string();
        if api.get_agent(&cmd.name).is_ok() {
            already.push(name);
        } else {
            api.register_agent(cmd)?;
            registered.push(name);
        }
    }
    out.print(&Done {
        schema_version: json::SCHEMA_VERSION,
        found,
        file: path.display().to_string(),
        written: write,
        kept: existing.as_ref().is_some_and(|text| *text != proposed) && !write,
        registered,
        already,
    })
}

/// The API `init` registers through (opened only once the file is settled).
pub(crate) trait ApiHandle {
    fn api(&self) -> &dyn MaosApi;
}

/// Asks before writing, on a terminal; refuses without one unless `--yes`.
fn confirm(yes: bool, path: &Path, out: &mut Output) -> Result<(), CliError> {
    if yes {
        return Ok(());
    }
    match super::ask("Write it and register these agents?", out)? {
        Some(true) => Ok(()),
        Some(false) => Err(CliError::new(
            FailureClass::Conflict,
            "you did not approve: nothing was written or registered",
        )
        .with_hint("answer y, or pass --yes")),
        None => Err(CliError::new(
            FailureClass::Usage,
            format!(
                "init would write {} and register its agents, and there is no terminal to ask on",
                path.display()
            ),
        )
        .with_hint("read the proposal above, then run again with --yes")),
    }
}

/// What `init` did.
#[derive(Debug, Serialize)]
struct Done {
    schema_version: u32,
    found: Vec<Found>,
    /// The agents file.
    file: String,
    /// Written now.
    written: bool,
    /// There already, different from the proposal, and kept (without `--force`).
    kept: bool,
    /// Agents registered now.
    registered: Vec<String>,
    /// Agents of the file that were registered already.
    already: Vec<String>,
}

impl Render for Done {
    fn document(&self) -> impl Serialize {
        self
    }

    fn human(&self, out: &mut Output) -> Result<(), CliError> {
        let mut text = String::new();
        if !self.written && !self.kept && self.registered.is_empty() {
            text.push_str(&format!(
                "Nothing changed: {} and its {} agent{} are set up already.\n",
                self.file,
                self.already.len(),
                if self.already.len() == 1 { "" } else { "s" }
            ));
        } else {
            if self.written {
                text.push_str(&format!("Wrote {}.\n", self.file));
            } else if self.kept {
                text.push_str(&format!(
                    "Kept {} as it is (it differs from the proposal; --force writes the proposal \
                     over it).\n",
                    self.file
                ));
            }
            if !self.registered.is_empty() {
                text.push_str(&format!("Registered: {}.\n", self.registered.join(", ")));
            }
            if !self.already.is_empty() {
                text.push_str(&format!(
                    "Registered already: {}.\n",
                    self.already.join(", ")
                ));
            }
        }
        text.push_str(
            "Next:\n  maos doctor                                   checks everything MAOS needs\n  \
             cd your-repo && maos task create \"Fix the flaky test\" -c code\n  \
             maos orchestrate run plan.toml --watch        a plan of several tasks\n  \
             maos approvals                                what waits for you",
        );
        out.text(&escape::block(&text))
    }
}
