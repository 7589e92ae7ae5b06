//! The command line grammar: every command, argument and flag of `maos`, declared with clap's
//! derive API. Every value is parsed here with the domain's own constructors, so a bad value is a
//! usage error (exit 2) that carries the domain's reason.

use std::path::PathBuf;

use crate::commands::completions;
use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};
use clap_complete::{ArgValueCompleter, CompletionCandidate, Shell};
use maos_application::{IdRef, MEMORY_PAGE_MAX, MemoryCursor, MemorySearch, Page, TaskCursor};
use maos_domain::policy::concerns::Concern;
use maos_domain::policy::permission::PermissionRule;
use maos_domain::{
    AdapterKind, AgentName, AgentStatus, Capability, DurationMs, EnvName, IdempotencyKey,
    MaxAttempts, MemoryQuery, MemoryScope, MemoryText, MemoryTier, Priority, PromptVia, Risk,
    Slots, Tag, TaskState, Tier, Title, Usd, ValueError,
};

const GLOBAL: &str = "Global options";

const EXAMPLES: &str = "\
Examples:
  maos agent register claude-1 --adapter claude-code --capability rust,test
  maos task create \"Fix the flaky login test\" --capability rust --priority high
  maos task assign 3kq9
  maos events --since 10 --json";

/// MAOS: coordinate AI coding agents on real repositories.
///
/// Register agents with their capabilities, describe work as tasks (with dependencies,
/// priorities and risk), assign tasks to capable agents and follow every change in the event
/// log. Tasks and orchestrations are addressed by id or by any unique prefix of it (4 characters
/// or more); agents by name.
#[derive(Debug, Parser)]
#[command(name = "maos", version, after_help = EXAMPLES)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) global: GlobalArgs,

    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Options every command accepts.
#[derive(Debug, Args)]
pub(crate) struct GlobalArgs {
    /// Print one JSON document on stdout instead of text (shapes in docs/json.md).
    #[arg(long, global = true, help_heading = GLOBAL, hide_short_help = true)]
    pub(crate) json: bool,

    /// The directory holding the MAOS database, maos.db [env: MAOS_DATA_DIR] [default: the XDG
    /// data directory, e.g. ~/.local/share/maos].
    #[arg(long, global = true, value_name = "DIR", help_heading = GLOBAL, hide_short_help = true)]
    pub(crate) data_dir: Option<PathBuf>,

    /// Print nothing on stderr but errors.
    #[arg(short, long, global = true, conflicts_with = "verbose", help_heading = GLOBAL, hide_short_help = true)]
    pub(crate) quiet: bool,

    /// Log more on stderr: -v for progress, -vv for debugging.
    #[arg(short, long, global = true, action = ArgAction::Count, help_heading = GLOBAL, hide_short_help = true)]
    pub(crate) verbose: u8,

    /// Work on the database in this process instead of through the daemon [env: MAOS_NO_DAEMON=1].
    #[arg(long, global = true, help_heading = GLOBAL, hide_short_help = true)]
    pub(crate) no_daemon: bool,

    /// When to use colour: auto (only on a terminal, and never when NO_COLOR is set), always or
    /// never.
    #[arg(
        long,
        global = true,
        value_enum,
        value_name = "WHEN",
        default_value_t = ColorWhen::Auto,
        help_heading = GLOBAL,
        hide_short_help = true
    )]
    pub(crate) color: ColorWhen,

    /// Never send long output (lists, logs, diffs, help) through a pager. On a terminal it
    /// goes through $MAOS_PAGER, else $PAGER, else `less -FRX`; setting either to nothing
    /// turns the pager off too.
    #[arg(long, global = true, help_heading = GLOBAL, hide_short_help = true)]
    pub(crate) no_pager: bool,
}

/// When to colour output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ColorWhen {
    /// Colour only on a terminal, and never when NO_COLOR is set.
    Auto,
    /// Always colour, even in a pipe and despite NO_COLOR.
    Always,
    /// Never colour.
    Never,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Set MAOS up on this machine: find the agent CLIs and register them (start here)
    ///
    /// Finds the agent CLIs (claude, codex, gemini, opencode, aider on the PATH, and a running
    /// Ollama), proposes an agents file with sensible defaults, writes it to your config
    /// directory (or the repository's .maos/ with --repo-local), registers its agents and starts
    /// the daemon. Asks on a terminal; run twice, it changes nothing.
    #[command(
        after_help = "Examples:\n  maos init\n  maos init --yes --only claude,codex\n  maos init --repo-local --yes"
    )]
    Init {
        /// Answer yes: write and register without asking (for scripts).
        #[arg(long, short = 'y')]
        yes: bool,

        /// Only these CLIs, comma-separated: claude, codex, gemini, opencode, aider, ollama.
        #[arg(long, value_delimiter = ',', value_name = "NAMES")]
        only: Vec<String>,

        /// Write .maos/agents.toml of the repository you stand in, not your config directory's
        /// maos/agents.toml.
        #[arg(long)]
        repo_local: bool,

        /// Write the proposal over an agents file that differs from it (without: it is kept).
        #[arg(long)]
        force: bool,
    },

    /// Check what MAOS needs here, and say what to fix
    ///
    /// Checks each agent's program and the environment variables it names (names only), git and
    /// its identity, the repository, a free port, disk space and permissions of the data
    /// directory, the database, the daemon and its protocol, and the process containment. Each
    /// finding is ok, a warning or a problem with what to do; exit 9 on a problem. Starts no
    /// daemon and changes nothing.
    #[command(after_help = "Examples:\n  maos doctor\n  maos doctor --repo ~/src/app --json")]
    Doctor {
        /// The repository to check [default: the one the current directory is in].
        #[arg(long, value_name = "DIR")]
        repo: Option<PathBuf>,
    },

    /// Register, list, inspect, drain and remove agents.
    #[command(subcommand)]
    Agent(AgentCommand),

    /// Create, list, inspect, assign and cancel tasks.
    #[command(subcommand)]
    Task(TaskCommand),

    /// Run plans and workflows, and create, start, pause, watch and inspect orchestrations: a
    /// goal and the tasks that carry it out.
    #[command(subcommand)]
    Orchestrate(OrchestrateCommand),

    /// Keep what outlives a task: add, search, pin and forget memory entries
    ///
    /// An entry is a piece of text with a tier (critical, important, routine, ephemeral), a
    /// scope (global, a repository, an orchestration) and tags. Ephemeral entries expire after a
    /// while (`[memory] ephemeral_ttl` in config.toml, 7 days by default) unless pinned. Search
    /// ranks pinned entries first, then by relevance weighed by tier. See docs/memory.md.
    #[command(subcommand)]
    Memory(MemoryCommand),

    /// Serve MAOS to an MCP client over stdio: agents and editors call MAOS's tools
    ///
    /// Speaks the Model Context Protocol on stdin and stdout (logs go to stderr), through the
    /// daemon (started if need be), until the client closes stdin. Without a credential it acts
    /// for you, the person who runs it: every tool, on any task. With the credential MAOS gives
    /// an agent's attempt (in MAOS_AGENT_CREDENTIAL, which MAOS sets in the MCP configuration of
    /// the agents it launches) it acts for that attempt only: its own task and orchestration,
    /// while the attempt runs. The daemon serves the same tools over HTTP at `/mcp` beside the
    /// dashboard (`maos ui`). See docs/mcp.md.
    #[command(after_help = "Examples:\n  claude mcp add maos -- maos mcp\n  \
        codex mcp add maos -- maos mcp\n  \
        npx @modelcontextprotocol/inspector maos mcp")]
    Mcp,

    /// Turn a goal into a plan with a planner agent; review, edit, approve or reject it.
    ///
    /// `maos plan "<goal>"` gives a planner agent the goal, a summary of the repository, the
    /// registered agents and the plan format; MAOS checks its answer with the plan checker and
    /// sends any problems back for another round. The plan then waits for you as version 1 of a
    /// new orchestration: show it, edit it, ask for another version with feedback, approve it
    /// (its tasks are created and start) or reject it. See docs/planning.md.
    #[command(
        args_conflicts_with_subcommands = true,
        subcommand_negates_reqs = true,
        after_help = "Examples:
  maos plan \"add rate limiting to the API\"
          maos plan \"split the parser module\" --planner claude --max-tasks 8 --notes \"keep the public API\"
          maos plan show 3kq9
  maos plan regenerate 3kq9 --feedback \"tests first\"
          maos plan approve 3kq9"
    )]
    Plan(PlanArgs),

    /// List, show and check workflows: stages of work as data (plan → tests → implement →
    /// review) that `maos orchestrate run --workflow` turns into tasks.
    #[command(subcommand)]
    Workflow(WorkflowCommand),

    /// Show how many tasks are in each state and how many agents in each status.
    #[command(after_help = "Examples:\n  maos status\n  \
        maos status --watch          # redraw whenever something changes (Ctrl-C stops)\n  \
        maos status --watch --json   # one status document per line, per change")]
    Status(StatusArgs),

    /// Show what the work came to: throughput, pass rate, time to green, cost, agents
    ///
    /// Tasks created and completed (and completed by hour), the first-attempt pass rate, time to
    /// green (a task's creation to its completion), a person's approvals, rejections and retries
    /// asked for, tokens and cost, and each agent's attempts and success rate.
    #[command(
        after_help = "Examples:\n  maos metrics\n  maos metrics --since 24h\n  \
        maos metrics --since 7d --json"
    )]
    Metrics {
        /// Only the work of this last stretch of time, such as 24h or 7d [default: all of it].
        #[arg(long, value_name = "DURATION", value_parser = duration)]
        since: Option<DurationMs>,
    },

    /// Serve the web dashboard from the daemon and print its address, token included.
    ///
    /// The daemon (started if need be) serves the dashboard on 127.0.0.1 (port 8787, or the next
    /// free one) until it stops. The address carries the data directory's token (kept in
    /// `ui-token` there) once; the browser then keeps it in a cookie, and every request without
    /// it is refused. Another address (`--address 0.0.0.0`) exposes the dashboard to the
    /// network: anyone with the token could read every prompt, log and diff and approve work.
    /// `[ui] serve = true` in config.toml serves it from the daemon's start (docs/dashboard.md).
    #[command(
        after_help = "Examples:\n  maos ui\n  maos ui --open\n  maos ui --port 9000\n  \
        maos ui --json | jq -r .url_with_token"
    )]
    Ui(UiArgs),

    /// Print the event log, oldest first: every change MAOS made, numbered without gaps.
    #[command(after_help = "Examples:\n  maos events --since 10 --limit 20\n  \
        maos events --follow                    # what exists, then new events live (Ctrl-C stops)\n  \
        maos events --follow --since 42 --json  # resume after seq 42, one JSON object per line")]
    Events(EventsArgs),

    /// Approve what a task waits for: running it (high risk), its verified work (medium and
    /// high risk; it is then merged into its orchestration's integration branch), or a tool call
    /// its agent asked about.
    #[command(after_help = "Examples:\n  maos approvals\n  maos approve 3kq9")]
    Approve {
        /// The task's id or a unique prefix of it.
        #[arg(value_parser = id_ref, add = live(completions::task_ids))]
        id: IdRef,
    },

    /// Reject what a task waits for. Rejected work goes back to the agent with your reason (or,
    /// with --cancel, the task ends); a rejected run blocks the task; a rejected tool call is
    /// refused to the agent.
    #[command(
        after_help = "Examples:\n  maos reject 3kq9 --reason \"the test still fails on CI\"\n  \
        maos reject 3kq9 --reason \"not needed\" --cancel"
    )]
    Reject {
        /// The task's id or a unique prefix of it.
        #[arg(value_parser = id_ref, add = live(completions::task_ids))]
        id: IdRef,

        /// Why: the next attempt is told.
        #[arg(long, value_name = "TEXT")]
        reason: String,

        /// End the task instead of sending it back.
        #[arg(long)]
        cancel: bool,
    },

    /// List what waits for a person: tasks to approve before they run, work to accept, and
    /// tool calls, oldest first, with their age and what the work changed.
    Approvals,

    /// Remove the git worktrees of finished tasks (never one with uncommitted or unmerged work
    /// unless --force); only git's own `git worktree remove` is used, and branches stay.
    #[command(
        after_help = "Examples:\n  maos gc --dry-run\n  maos gc --older-than 1h\n  maos gc --force"
    )]
    Gc {
        /// Say what would be removed, remove nothing.
        #[arg(long)]
        dry_run: bool,

        /// Also remove worktrees with uncommitted changes or unmerged commits (the uncommitted
        /// changes are lost; the branch and its commits stay).
        #[arg(long)]
        force: bool,

        /// Only tasks finished at least this long ago [default: 7d].
        #[arg(long, value_name = "DURATION", value_parser = duration)]
        older_than: Option<DurationMs>,
    },

    /// Administration: check the database against its own event log.
    #[command(subcommand)]
    Admin(AdminCommand),

    /// Run the MAOS daemon in the foreground, or start, stop or inspect it.
    ///
    /// The daemon owns the database and serves every `maos` command over a Unix socket; `maos`
    /// starts it on first need, so you rarely run these yourself.
    #[command(
        after_help = "Examples:\n  maos daemon            # run in the foreground (logs on stderr)\n  \
        maos daemon start      # run in the background; returns once it answers\n  \
        maos daemon status --json\n  \
        maos daemon stop"
    )]
    Daemon(DaemonArgs),

    /// Print a completion script for a shell: commands, flags and their values.
    ///
    /// This script is static. For completion of live data too (task and orchestration ids,
    /// agent and workflow names, read from the database without starting the daemon), have the
    /// shell ask `maos` itself: `source <(COMPLETE=bash maos)` in ~/.bashrc,
    /// `source <(COMPLETE=zsh maos)` in ~/.zshrc, `COMPLETE=fish maos | source` in fish's
    /// config (docs/cli.md).
    #[command(after_help = "Examples:\n  \
        maos completions bash > ~/.local/share/bash-completion/completions/maos\n  \
        echo 'source <(COMPLETE=bash maos)' >> ~/.bashrc   # with live ids and names")]
    Completions {
        /// The shell to write the script for.
        #[arg(value_enum)]
        shell: Shell,
    },

    /// Print the manual page of maos or of one of its commands (roff, for man), or write every
    /// page into a directory.
    #[command(after_help = "Examples:\n  \
        maos man task create | man -l -\n  \
        maos man --dir ~/.local/share/man/man1   # then: man maos-task-create")]
    Man {
        /// The command whose page to print, such as `task create` [default: maos itself].
        #[arg(value_name = "COMMAND")]
        command: Vec<String>,

        /// Write the page of the command and of every command below it into this directory,
        /// one file each (maos.1, maos-task-create.1, …), instead of printing one.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

/// `maos daemon`: without an action, run the daemon in the foreground.
#[derive(Debug, Args)]
pub(crate) struct DaemonArgs {
    #[command(subcommand)]
    pub(crate) action: Option<DaemonAction>,
}

/// What to do with the daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Subcommand)]
pub(crate) enum DaemonAction {
    /// Start the daemon in the background; prints its pid and socket once it answers.
    Start,
    /// Stop the daemon gracefully: it finishes in-flight calls, flushes and removes its socket.
    Stop,
    /// Show the daemon's pid, socket, version, uptime, database and counts.
    Status,
}

/// Agent commands.
#[derive(Debug, Subcommand)]
pub(crate) enum AgentCommand {
    /// Register an agent under a unique name, or every agent of an agents file.
    ///
    /// The daemon runs the agent (unless its adapter is `external`) and gives it ready tasks it
    /// can do as soon as it has a free slot. Secrets never go into MAOS: --env and
    /// --api-key-env name environment variables of the daemon that hold them.
    #[command(after_help = "Examples:\n  \
        maos agent register claude-1 --adapter claude-code --capability rust --capability test\n  \
        maos agent register lint --adapter command --command \"cargo clippy\" --capability lint --slots 2\n  \
        maos agent register local --adapter ollama --model qwen2.5-coder -c rust\n  \
        maos agent register --from-file agents.toml\n\n\
        The agents file format is in docs/agents.md.")]
    Register(Box<RegisterArgs>),

    /// List agents (every status but removed, unless --status says otherwise).
    #[command(visible_alias = "ls")]
    List(AgentListArgs),

    /// Show one agent.
    Show {
        /// The agent's name.
        #[arg(value_parser = agent_name, add = live(completions::agent_names))]
        name: AgentName,
    },

    /// Stop giving an agent new work; attempts it is running finish.
    Drain {
        /// The agent's name.
        #[arg(value_parser = agent_name, add = live(completions::agent_names))]
        name: AgentName,
    },

    /// Give a drained agent work again (after you drained it, or after its circuit breaker
    /// drained it for failing too often in a row: `maos agent show` says why).
    Resume {
        /// The agent's name.
        #[arg(value_parser = agent_name, add = live(completions::agent_names))]
        name: AgentName,
    },

    /// Remove an agent (refused while it runs attempts: drain it first). Its name can then be
    /// registered again.
    #[command(visible_alias = "rm")]
    Remove {
        /// The agent's name.
        #[arg(value_parser = agent_name, add = live(completions::agent_names))]
        name: AgentName,
    },
}

/// `maos agent register`.
#[derive(Debug, Args)]
pub(crate) struct RegisterArgs {
    /// The agent's unique name: lowercase letters, digits, '-', '_' and '.' (at most 64).
    #[arg(value_parser = agent_name, required_unless_present = "from_file")]
    pub(crate) name: Option<AgentName>,

    /// Register every agent of this TOML file instead (all checked before any is registered).
    #[arg(long, value_name = "FILE", conflicts_with_all = [
        "name", "adapter", "command", "capabilities", "tier", "slots", "args", "prompt_via", "env",
        "timeout", "model", "base_url", "api_key_env", "allow", "ask", "deny", "delay", "verify",
    ])]
    pub(crate) from_file: Option<PathBuf>,

    /// The kind of program behind the agent: command, claude-code, codex, openai, ollama, sim
    /// (a simulated agent for load tests) or external (a worker of yours that takes work through
    /// the API; MAOS never starts it).
    #[arg(long, value_name = "KIND", value_parser = keyword::<AdapterKind>(), required_unless_present = "from_file")]
    pub(crate) adapter: Option<AdapterKind>,

    /// A capability the agent offers, such as rust, test or review (repeat the flag or separate
    /// with commas).
    #[arg(long = "capability", short = 'c', value_name = "CAP", value_delimiter = ',', value_parser = capability)]
    pub(crate) capabilities: Vec<Capability>,

    /// The agent's tier: tactical for everyday work, strategic for the hard cases.
    #[arg(long, value_name = "TIER", value_parser = keyword::<Tier>(), default_value = "tactical")]
    pub(crate) tier: Tier,

    /// How many attempts the agent runs at once (1 to 256).
    #[arg(long, allow_negative_numbers = true, value_name = "N", value_parser = slots, default_value = "1")]
    pub(crate) slots: Slots,

    /// The program to run, with its arguments (required for --adapter command; for claude-code
    /// and codex it replaces the program found on the PATH).
    #[arg(long, value_name = "CMD")]
    pub(crate) command: Option<String>,

    /// An argument after the command's own (repeat for several); {prompt}, {prompt_file},
    /// {result_file}, {task}, {attempt} and {workdir} are replaced when the agent starts.
    #[arg(long = "arg", value_name = "ARG", allow_hyphen_values = true)]
    pub(crate) args: Vec<String>,

    /// How a command agent gets its prompt: stdin, file ($MAOS_PROMPT_FILE) or arg ({prompt}).
    #[arg(long, value_name = "HOW", value_parser = keyword::<PromptVia>())]
    pub(crate) prompt_via: Option<PromptVia>,

    /// An environment variable of the daemon to pass to the agent besides the allowlist, by name
    /// (repeat for several): this is how an agent gets a secret.
    #[arg(long = "env", value_name = "NAME", value_parser = env_name)]
    pub(crate) env: Vec<EnvName>,

    /// How long one attempt may run unless the task says otherwise, such as 30m.
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub(crate) timeout: Option<DurationMs>,

    /// The model to ask for (claude-code, codex, openai, ollama).
    #[arg(long, value_name = "MODEL")]
    pub(crate) model: Option<String>,

    /// The endpoint of an openai or ollama agent, up to /v1.
    #[arg(long, value_name = "URL")]
    pub(crate) base_url: Option<String>,

    /// The environment variable that holds an openai agent's API key.
    #[arg(long, value_name = "NAME", value_parser = env_name)]
    pub(crate) api_key_env: Option<EnvName>,

    /// A tool call a claude-code agent may make without asking, such as Read or
    /// "Bash(git diff:*)" (repeat for several).
    #[arg(long = "allow", value_name = "RULE", value_parser = permission_rule)]
    pub(crate) allow: Vec<PermissionRule>,

    /// A tool call that needs a person's approval (denied until approvals exist).
    #[arg(long = "ask", value_name = "RULE", value_parser = permission_rule)]
    pub(crate) ask: Vec<PermissionRule>,

    /// A tool call that is always refused; deny rules are checked first.
    #[arg(long = "deny", value_name = "RULE", value_parser = permission_rule)]
    pub(crate) deny: Vec<PermissionRule>,

    /// How long each attempt of a sim agent takes, such as 200ms.
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub(crate) delay: Option<DurationMs>,

    /// The command that checks this agent's work when the task names none.
    #[arg(long, value_name = "CMD")]
    pub(crate) verify: Option<String>,

    /// A resource limit of each of the agent's processes, NAME=VALUE (repeat for several):
    /// cpu=SECONDS, memory=MIB (address space), files=N (open files), processes=N (of your
    /// user); VALUE `unlimited` lifts it. Unset limits take the defaults: cpu=14400,
    /// memory=65536, files=4096, processes=16384 (docs/agents.md).
    #[arg(long = "limit", value_name = "NAME=VALUE", value_parser = limit)]
    pub(crate) limits: Vec<(LimitName, u64)>,
}

/// The resource limits `--limit` sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LimitName {
    Cpu,
    Memory,
    Files,
    Processes,
}

impl LimitName {
    /// Sets this limit in `limits`.
    pub(crate) fn set(self, limits: &mut maos_domain::ResourceLimits, value: u64) {
        let field = match self {
            LimitName::Cpu => &mut limits.cpu_seconds,
            LimitName::Memory => &mut limits.memory_mib,
            LimitName::Files => &mut limits.open_files,
            LimitName::Processes => &mut limits.processes,
        };
        *field = Some(value);
    }
}

/// `--limit NAME=VALUE`: a known name (or its agents-file key) and a whole number from 1, or
/// `unlimited`.
fn limit(raw: &str) -> Result<(LimitName, u64), String> {
    let known = "cpu=SECONDS, memory=MIB, files=N or processes=N (or NAME=unlimited)";
    let Some((name, value)) = raw.split_once('=') else {
        return Err(format!("write it as NAME=VALUE: {known}"));
    };
    let name = match name.trim() {
        "cpu" | "cpu_seconds" => LimitName::Cpu,
        "memory" | "memory_mib" => LimitName::Memory,
        "files" | "open_files" | "nofile" => LimitName::Files,
        "processes" | "nproc" => LimitName::Processes,
        other => {
            return Err(format!(
                "unknown limit `{}`: the limits are {known}",
                other.chars().take(40).collect::<String>()
            ));
        }
    };
    let value = value.trim();
    if value == "unlimited" {
        return Ok((name, maos_domain::ResourceLimits::UNLIMITED));
    }
    let max = maos_domain::ResourceLimits::UNLIMITED - 1;
    whole_number(value, 1, max)
        .map(|v| (name, v))
        .map_err(|_| "the value must be a whole number from 1, or `unlimited`".to_owned())
}

/// `maos agent list`.
#[derive(Debug, Args)]
pub(crate) struct AgentListArgs {
    /// Only agents in this status (repeat for several).
    #[arg(long = "status", value_name = "STATUS", value_parser = keyword::<AgentStatus>())]
    pub(crate) statuses: Vec<AgentStatus>,

    /// Only agents that offer this capability.
    #[arg(long, value_name = "CAP", value_parser = capability)]
    pub(crate) capability: Option<Capability>,
}

/// Task commands.
#[derive(Debug, Subcommand)]
pub(crate) enum TaskCommand {
    /// Create a task. It is ready at once unless it depends on unfinished tasks.
    #[command(
        override_usage = "maos task create [OPTIONS] <TITLE>\n       maos task create --from-file <FILE>"
    )]
    #[command(after_help = "Examples:\n  \
        maos task create \"Add a --dry-run flag\" -c rust --prompt \"Add --dry-run to deploy\"\n  \
        maos task create \"Review the change\" --capability review --depends-on 3kq9 --risk medium\n  \
        git diff | maos task create \"Explain this diff\" --prompt-file -")]
    Create(Box<CreateArgs>),

    /// List tasks, oldest first, one page at a time.
    #[command(visible_alias = "ls")]
    List(TaskListArgs),

    /// Show one task with its attempts.
    Show {
        /// The task's id or a unique prefix of it.
        #[arg(value_parser = id_ref, add = live(completions::task_ids))]
        id: IdRef,
    },

    /// Assign a ready task to an agent (the least loaded capable agent unless --agent names one).
    Assign {
        /// The task's id or a unique prefix of it.
        #[arg(value_parser = id_ref, add = live(completions::task_ids))]
        id: IdRef,

        /// The agent to give it to.
        #[arg(long, value_name = "NAME", value_parser = agent_name, add = live(completions::agent_names))]
        agent: Option<AgentName>,
    },

    /// Cancel a task. Tasks that depend on it become blocked.
    Cancel {
        /// The task's id or a unique prefix of it.
        #[arg(value_parser = id_ref, add = live(completions::task_ids))]
        id: IdRef,

        /// Why (recorded in the event log).
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
    },

    /// Print what an attempt's agent wrote (stdout and stderr, as captured), newest attempt by
    /// default; --follow keeps printing while it runs.
    #[command(after_help = "Examples:\n  \
        maos task logs 3kq9\n  \
        maos task logs 3kq9 --attempt 1\n  \
        maos task logs 3kq9 --follow")]
    Logs {
        /// The task's id or a unique prefix of it.
        #[arg(value_parser = id_ref, add = live(completions::task_ids))]
        id: IdRef,

        /// The attempt (1, 2, ...) [default: the newest].
        #[arg(long, allow_negative_numbers = true, value_name = "N", value_parser = attempt_number)]
        attempt: Option<u32>,

        /// Keep printing new output until the attempt ends.
        #[arg(long, short = 'f')]
        follow: bool,

        /// Print the log's bytes as they are, even to a terminal. By default a terminal gets
        /// control characters and escape sequences shown as visible escapes (`\e`, `\x07`,
        /// `\u{202e}`), so that an agent's output cannot steer it; a pipe or a file always
        /// gets the raw bytes.
        #[arg(long)]
        raw: bool,
    },

    /// Show what a task's agent changed: the whole task (from the commit it started from), or
    /// one attempt (between its checkpoints).
    #[command(
        after_help = "Examples:\n  maos task diff 3kq9 --stat\n  maos task diff 3kq9 --attempt 2"
    )]
    Diff {
        /// The task's id or a unique prefix of it.
        #[arg(value_parser = id_ref, add = live(completions::task_ids))]
        id: IdRef,

        /// Only one attempt's changes.
        #[arg(long, allow_negative_numbers = true, value_name = "N", value_parser = attempt_number)]
        attempt: Option<u32>,

        /// The summary (files and lines changed) instead of the diff.
        #[arg(long)]
        stat: bool,

        /// Print the diff as it is, even to a terminal. By default a terminal gets control
        /// characters and escape sequences in the agent's changes shown as visible escapes;
        /// a pipe or a file always gets the diff as it is.
        #[arg(long)]
        raw: bool,
    },

    /// Return a task's branch to a checkpoint: as it was before its newest attempt, or as
    /// attempt N left it. Later commits stay in git's reflog.
    #[command(
        after_help = "Examples:\n  maos task rollback 3kq9\n  maos task rollback 3kq9 --to-attempt 1"
    )]
    Rollback {
        /// The task's id or a unique prefix of it.
        #[arg(value_parser = id_ref, add = live(completions::task_ids))]
        id: IdRef,

        /// Return to what attempt N left.
        #[arg(long, allow_negative_numbers = true, value_name = "N", value_parser = attempt_number)]
        to_attempt: Option<u32>,
    },

    /// Run a blocked or failed task again: it gets more attempts (and is ready at once).
    #[command(
        after_help = "Examples:\n  maos task retry 3kq9\n  maos task retry 3kq9 --attempts 2"
    )]
    Retry {
        /// The task's id or a unique prefix of it.
        #[arg(value_parser = id_ref, add = live(completions::task_ids))]
        id: IdRef,

        /// How many more attempts it gets.
        #[arg(long, allow_negative_numbers = true, value_name = "N", value_parser = attempt_number, default_value = "1")]
        attempts: u32,
    },

    /// Print exactly what an attempt's agent received: the briefing assembled from the task,
    /// its orchestration's goal and notes, what its dependencies produced and how its earlier
    /// attempts failed, cut to the token budget.
    #[command(
        after_help = "Examples:\n  maos task briefing 3kq9\n  maos task briefing 3kq9 --attempt 1"
    )]
    Briefing {
        /// The task's id or a unique prefix of it.
        #[arg(value_parser = id_ref, add = live(completions::task_ids))]
        id: IdRef,

        /// The attempt (1, 2, ...) [default: the newest].
        #[arg(long, allow_negative_numbers = true, value_name = "N", value_parser = attempt_number)]
        attempt: Option<u32>,
    },

    /// Make a task depend on another one (refused if that would close a cycle).
    Depend {
        /// The task that must wait: its id or a unique prefix of it.
        #[arg(value_parser = id_ref, add = live(completions::task_ids))]
        id: IdRef,

        /// The task it waits for: its id or a unique prefix of it.
        #[arg(long, value_name = "ID", value_parser = id_ref, add = live(completions::task_ids))]
        on: IdRef,
    },
}

/// `maos task create`.
#[derive(Debug, Args)]
pub(crate) struct CreateArgs {
    /// A one-line title (at most 200 characters).
    #[arg(value_parser = title, required_unless_present = "from_file")]
    pub(crate) title: Option<Title>,

    /// Create every task of a file instead, one JSON object per line whose keys are this
    /// command's options (`{"title": "…", "capabilities": ["rust"], "depends_on": ["3kq9"]}`);
    /// `-` reads standard input. All of them or none: every problem is reported with its line.
    #[arg(long, value_name = "FILE", conflicts_with_all = [
        "title", "prompt", "prompt_file", "capabilities", "priority", "risk", "tier",
        "depends_on", "orchestration", "max_attempts", "timeout", "idempotency_key",
        "budget_usd", "repo", "no_repo", "base", "verify", "port", "concerns", "agent",
        "lessons",
    ])]
    pub(crate) from_file: Option<PathBuf>,

    /// What the agent is asked to do.
    #[arg(long, value_name = "TEXT", conflicts_with = "prompt_file")]
    pub(crate) prompt: Option<String>,

    /// Read the prompt from a file; `-` reads standard input.
    #[arg(long, value_name = "FILE")]
    pub(crate) prompt_file: Option<PathBuf>,

    /// A capability the task needs (repeat the flag or separate with commas).
    #[arg(long = "capability", short = 'c', value_name = "CAP", value_delimiter = ',', value_parser = capability)]
    pub(crate) capabilities: Vec<Capability>,

    /// How urgent it is; higher priorities are scheduled first.
    #[arg(long, value_name = "PRIORITY", value_parser = keyword::<Priority>(), default_value = "normal")]
    pub(crate) priority: Priority,

    /// How much damage it could do; decides the approval it needs.
    #[arg(long, value_name = "RISK", value_parser = keyword::<Risk>(), default_value = "low")]
    pub(crate) risk: Risk,

    /// Only agents of this tier may take it [default: any].
    #[arg(long, value_name = "TIER", value_parser = keyword::<Tier>())]
    pub(crate) tier: Option<Tier>,

    /// A task that must complete first: its id or a unique prefix (repeat for several).
    #[arg(long, value_name = "ID", value_parser = id_ref, add = live(completions::task_ids))]
    pub(crate) depends_on: Vec<IdRef>,

    /// The orchestration the task belongs to: its id or a unique prefix.
    #[arg(long, value_name = "ID", value_parser = id_ref, add = live(completions::orchestration_ids))]
    pub(crate) orchestration: Option<IdRef>,

    /// How many attempts it gets before it needs a person (1 to 100).
    #[arg(long, allow_negative_numbers = true, value_name = "N", value_parser = max_attempts, default_value = "3")]
    pub(crate) max_attempts: MaxAttempts,

    /// How long one attempt may run, such as 90s, 15m or 1h30m.
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub(crate) timeout: Option<DurationMs>,

    /// A key that makes the create safe to retry: a second create with the same key returns the
    /// first task instead of a new one.
    #[arg(long, value_name = "KEY", value_parser = idempotency_key)]
    pub(crate) idempotency_key: Option<IdempotencyKey>,

    /// The most the task may cost over all its attempts, in US dollars (such as 0.50): the
    /// attempt that would overrun it is stopped and the task waits for a person.
    #[arg(long, allow_negative_numbers = true, value_name = "USD", value_parser = budget)]
    pub(crate) budget_usd: Option<Usd>,

    /// The git repository to work in: the task gets its own branch maos/<id> in its own
    /// worktree [default: its orchestration's; else the repository of the current directory].
    #[arg(long, value_name = "DIR")]
    pub(crate) repo: Option<PathBuf>,

    /// Work in no repository, even when the current directory is in one (the agent gets an
    /// empty folder of its own).
    #[arg(long, conflicts_with = "repo")]
    pub(crate) no_repo: bool,

    /// The branch or commit to start from [default: the repository's current branch].
    #[arg(long, value_name = "REF", conflicts_with = "no_repo")]
    pub(crate) base: Option<String>,

    /// A command that checks the agent's work (run with sh in the worktree after it succeeds;
    /// its failure is the next attempt's context) [default: its orchestration's, then its
    /// agent's].
    #[arg(long, value_name = "CMD")]
    pub(crate) verify: Option<String>,

    /// Give each attempt a free TCP port of its own, in MAOS_PORT.
    #[arg(long)]
    pub(crate) port: bool,

    /// Something no other task may work on at the same time: a path glob of the repository
    /// (src/api/**, Cargo.toml) or a named resource (port:8080, db:main). Repeat for several.
    #[arg(long = "concern", value_name = "CONCERN", value_parser = concern)]
    pub(crate) concerns: Vec<Concern>,

    /// Only this agent may take the task.
    #[arg(long, value_name = "NAME", value_parser = agent_name, add = live(completions::agent_names))]
    pub(crate) agent: Option<AgentName>,

    /// When an attempt succeeds after failed ones, ask its agent for a one-paragraph lesson and
    /// keep it in memory (routine, tag `lesson`, in the task's repository or orchestration).
    #[arg(long)]
    pub(crate) lessons: bool,
}

/// `maos task list`.
#[derive(Debug, Args)]
pub(crate) struct TaskListArgs {
    /// Only tasks in this state (repeat for several).
    #[arg(long = "status", value_name = "STATE", value_parser = keyword::<TaskState>())]
    pub(crate) statuses: Vec<TaskState>,

    /// Only tasks of this orchestration: its id or a unique prefix.
    #[arg(long, value_name = "ID", value_parser = id_ref, add = live(completions::orchestration_ids))]
    pub(crate) orchestration: Option<IdRef>,

    /// Only tasks that need this capability.
    #[arg(long, value_name = "CAP", value_parser = capability)]
    pub(crate) capability: Option<Capability>,

    /// At most this many tasks (1 to 10000).
    #[arg(long, allow_negative_numbers = true, value_name = "N", value_parser = page_limit, default_value = "100")]
    pub(crate) limit: usize,

    /// Continue after an earlier page: the cursor that page printed.
    #[arg(long, value_name = "CURSOR", value_parser = cursor)]
    pub(crate) cursor: Option<TaskCursor>,
}

/// Memory commands.
#[derive(Debug, Subcommand)]
pub(crate) enum MemoryCommand {
    /// Add an entry.
    #[command(after_help = "Examples:\n  \
        maos memory add \"Run cargo nextest, not cargo test\" --tier important --scope repo:. --tag ci\n  \
        maos memory add \"The staging database is being migrated\" --tier ephemeral\n  \
        git log -1 --format=%B | maos memory add - --scope repo:.")]
    Add(MemoryAddArgs),

    /// List entries, newest first, one page at a time (live ones unless --all).
    #[command(visible_alias = "ls")]
    List(MemoryListArgs),

    /// Search entries for words: pinned first, then by relevance weighed by tier.
    #[command(after_help = "Examples:\n  \
        maos memory search \"flaky test\"\n  \
        maos memory search deploy --scope global --scope repo:. --limit 5")]
    Search(MemorySearchArgs),

    /// Show one entry in full.
    Show {
        /// The entry's id or a unique prefix of it.
        #[arg(value_parser = id_ref, add = live(completions::memory_ids))]
        id: IdRef,
    },

    /// Pin an entry: it ranks first and never expires.
    Pin {
        /// The entry's id or a unique prefix of it.
        #[arg(value_parser = id_ref, add = live(completions::memory_ids))]
        id: IdRef,
    },

    /// Unpin an entry (an ephemeral one expires at its time again).
    Unpin {
        /// The entry's id or a unique prefix of it.
        #[arg(value_parser = id_ref, add = live(completions::memory_ids))]
        id: IdRef,
    },

    /// Forget an entry: it is no longer listed or found (the event log keeps it).
    Forget {
        /// The entry's id or a unique prefix of it.
        #[arg(value_parser = id_ref, add = live(completions::memory_ids))]
        id: IdRef,

        /// Why (recorded in the event log).
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
    },
}

/// The text of `memory add`: given, or `-` for standard input.
#[derive(Debug, Clone)]
pub(crate) enum MemoryTextArg {
    Text(MemoryText),
    Stdin,
}

/// A scope as typed: a scope, `repo:.` (the current directory's repository) or an
/// orchestration by a prefix of its id.
#[derive(Debug, Clone)]
pub(crate) enum ScopeArg {
    Scope(MemoryScope),
    CurrentRepository,
    Orchestration(IdRef),
}

/// `maos memory add`.
#[derive(Debug, Args)]
pub(crate) struct MemoryAddArgs {
    /// What to remember (1 to 8192 bytes once trimmed); `-` reads it from standard input.
    #[arg(value_name = "TEXT", value_parser = memory_text)]
    pub(crate) text: MemoryTextArg,

    /// How much it matters: critical, important, routine or ephemeral (which expires).
    #[arg(long, value_name = "TIER", value_parser = keyword::<MemoryTier>(), default_value = "routine")]
    pub(crate) tier: MemoryTier,

    /// Where it applies: global, repo:<absolute path>, repo:. (the current directory's
    /// repository) or orchestration:<id>.
    #[arg(long, value_name = "SCOPE", value_parser = scope, default_value = "global")]
    pub(crate) scope: ScopeArg,

    /// A tag (repeat, or separate with commas; at most 16): lowercase letters, digits, `.`, `_`
    /// and `-`.
    #[arg(long = "tag", value_name = "TAG", value_delimiter = ',', value_parser = tag)]
    pub(crate) tags: Vec<Tag>,
}

/// `maos memory list`.
#[derive(Debug, Args)]
pub(crate) struct MemoryListArgs {
    /// Only entries of this tier (repeat for several).
    #[arg(long = "tier", value_name = "TIER", value_parser = keyword::<MemoryTier>())]
    pub(crate) tiers: Vec<MemoryTier>,

    /// Only entries of this scope (repeat for several).
    #[arg(long = "scope", value_name = "SCOPE", value_parser = scope)]
    pub(crate) scopes: Vec<ScopeArg>,

    /// Only entries with this tag.
    #[arg(long, value_name = "TAG", value_parser = tag)]
    pub(crate) tag: Option<Tag>,

    /// Forgotten and expired entries too.
    #[arg(long)]
    pub(crate) all: bool,

    /// At most this many entries (1 to 1000).
    #[arg(long, allow_negative_numbers = true, value_name = "N", value_parser = memory_page_limit, default_value = "100")]
    pub(crate) limit: usize,

    /// Continue after an earlier page: the cursor that page printed.
    #[arg(long, value_name = "CURSOR", value_parser = memory_cursor)]
    pub(crate) cursor: Option<MemoryCursor>,
}

/// `maos memory search`.
#[derive(Debug, Args)]
pub(crate) struct MemorySearchArgs {
    /// The words to look for: an entry with all of them, or else any (letters and digits;
    /// anything else only separates words).
    #[arg(value_name = "QUERY", value_parser = memory_query)]
    pub(crate) query: MemoryQuery,

    /// Only entries of this scope (repeat for several: an attempt sees global, its
    /// repository and its orchestration).
    #[arg(long = "scope", value_name = "SCOPE", value_parser = scope)]
    pub(crate) scopes: Vec<ScopeArg>,

    /// Only entries of this tier (repeat for several).
    #[arg(long = "tier", value_name = "TIER", value_parser = keyword::<MemoryTier>())]
    pub(crate) tiers: Vec<MemoryTier>,

    /// Only entries with this tag.
    #[arg(long, value_name = "TAG", value_parser = tag)]
    pub(crate) tag: Option<Tag>,

    /// Forgotten and expired entries too.
    #[arg(long)]
    pub(crate) all: bool,

    /// At most this many entries (1 to 100).
    #[arg(long, allow_negative_numbers = true, value_name = "N", value_parser = search_limit, default_value = "10")]
    pub(crate) limit: usize,
}

/// Orchestration commands.
#[derive(Debug, Subcommand)]
pub(crate) enum OrchestrateCommand {
    /// Create an empty orchestration in draft: add tasks with `maos task create --orchestration`,
    /// then `maos orchestrate start` it. Its tasks work in --repo and their accepted work is
    /// merged into its branch maos/orch-<id>. (`maos orchestrate run` does all of it from a plan
    /// file or a workflow.)
    Create {
        /// Its name (one line, at most 200 characters).
        #[arg(value_parser = title)]
        name: Title,

        /// What it is meant to achieve.
        #[arg(long, value_name = "TEXT")]
        goal: Option<String>,

        /// The git repository its tasks work in [default: the repository of the current
        /// directory].
        #[arg(long, value_name = "DIR")]
        repo: Option<PathBuf>,

        /// No repository, even when the current directory is in one.
        #[arg(long, conflicts_with = "repo")]
        no_repo: bool,

        /// The branch its tasks start from and its work merges back into [default: the
        /// repository's current branch, recorded now].
        #[arg(long, value_name = "REF", conflicts_with = "no_repo")]
        base: Option<String>,

        /// The command that checks its tasks' work.
        #[arg(long, value_name = "CMD")]
        verify: Option<String>,

        /// A note pinned to every task's briefing (repeat for several).
        #[arg(long = "note", value_name = "TEXT")]
        notes: Vec<String>,
    },

    /// Merge an orchestration's integration branch into a branch of yours: --into, or the
    /// branch the orchestration was created with (--base). Refused when that branch is checked
    /// out with uncommitted changes; a conflict changes nothing.
    #[command(
        after_help = "Examples:\n  maos orchestrate merge 7xpq\n  maos orchestrate merge 7xpq --into release"
    )]
    Merge {
        /// The orchestration's id or a unique prefix of it.
        #[arg(value_parser = id_ref)]
        id: IdRef,

        /// The branch to merge into.
        #[arg(long, value_name = "BRANCH")]
        into: Option<String>,
    },

    /// Run a plan, a workflow or a goal: show its task graph, ask for your approval on a
    /// terminal, then create the orchestration and its tasks and start it.
    ///
    /// A plan file (TOML or JSON; docs/orchestrations.md) names the goal, the repository and the
    /// tasks with their dependencies; a workflow (--workflow, with --goal) makes one task per
    /// stage; a goal alone (--goal) is planned by a planner agent first (docs/planning.md), and
    /// you approve, edit, regenerate or reject its plan. Without a terminal, --yes is required
    /// (it never waits for an answer that cannot come). With --watch it stays to show progress
    /// and exits 0 only when every task completed.
    #[command(after_help = "Examples:\n  \
        maos orchestrate run examples/quickstart.toml --watch\n  \
        maos orchestrate run --goal \"Add rate limiting to the API\" --watch\n  \
        maos orchestrate run plan.toml --yes --json          # one JSON document: what was created\n  \
        maos orchestrate run --workflow tdd --goal \"Add a --dry-run flag\" --repo . --yes --watch")]
    Run(RunArgs),

    /// Start a draft orchestration: its ready tasks get agents.
    Start {
        /// The orchestration's id or a unique prefix of it.
        #[arg(value_parser = id_ref, add = live(completions::orchestration_ids))]
        id: IdRef,
    },

    /// Pause an orchestration: no new assignments; running attempts finish (or, with --now,
    /// stop at once and their tasks go back to ready).
    Pause {
        /// The orchestration's id or a unique prefix of it.
        #[arg(value_parser = id_ref, add = live(completions::orchestration_ids))]
        id: IdRef,

        /// Also stop its running attempts now (they count as interrupted, not failed).
        #[arg(long)]
        now: bool,
    },

    /// Resume a paused orchestration.
    Resume {
        /// The orchestration's id or a unique prefix of it.
        #[arg(value_parser = id_ref, add = live(completions::orchestration_ids))]
        id: IdRef,
    },

    /// Cancel an orchestration and every task of it that has not finished.
    Cancel {
        /// The orchestration's id or a unique prefix of it.
        #[arg(value_parser = id_ref, add = live(completions::orchestration_ids))]
        id: IdRef,

        /// Why (recorded in the event log).
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
    },

    /// Show an orchestration with one line per task (state, agent, attempt, time, tokens, cost)
    /// and what needs a person; --watch keeps it up to date.
    Status {
        /// The orchestration's id or a unique prefix of it.
        #[arg(value_parser = id_ref, add = live(completions::orchestration_ids))]
        id: IdRef,

        /// Keep redrawing on every change until every task finished (NDJSON events with --json);
        /// exits 0 only if every task completed.
        #[arg(long, short = 'w')]
        watch: bool,
    },

    /// Print an orchestration's task graph as Mermaid or Graphviz dot.
    #[command(
        after_help = "Examples:\n  maos orchestrate graph 7xpq --format mermaid\n  \
        maos orchestrate graph 7xpq --format dot | dot -Tsvg > graph.svg"
    )]
    Graph {
        /// The orchestration's id or a unique prefix of it.
        #[arg(value_parser = id_ref, add = live(completions::orchestration_ids))]
        id: IdRef,

        /// The graph language.
        #[arg(long, value_enum, default_value_t = GraphFormat::Mermaid)]
        format: GraphFormat,
    },

    /// List orchestrations, oldest first.
    #[command(visible_alias = "ls")]
    List,

    /// Show one orchestration.
    Show {
        /// The orchestration's id or a unique prefix of it.
        #[arg(value_parser = id_ref, add = live(completions::orchestration_ids))]
        id: IdRef,
    },
}

/// `maos orchestrate run`.
#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// The plan file (TOML, or JSON when it ends in .json).
    #[arg(
        value_name = "PLAN",
        required_unless_present_any = ["workflow", "goal"],
        conflicts_with_all = ["workflow", "goal"]
    )]
    pub(crate) plan: Option<PathBuf>,

    /// Run a workflow instead: a built-in (tdd, single), one in <data dir>/workflows, or a file.
    #[arg(long, value_name = "NAME|FILE", add = live(completions::workflow_names), requires = "goal")]
    pub(crate) workflow: Option<String>,

    /// The goal. With --workflow, the workflow run's; alone, a planner agent plans it (as
    /// `maos plan` does), you review the plan here (approve, edit, regenerate with feedback or
    /// reject), and it runs.
    #[arg(long, value_name = "TEXT")]
    pub(crate) goal: Option<String>,

    /// The agent that plans the goal [default: the least loaded strategic agent offering
    /// `plan`].
    #[arg(long, value_name = "AGENT", value_parser = agent_name, add = live(completions::agent_names), requires = "goal", conflicts_with_all = ["workflow", "plan"])]
    pub(crate) planner: Option<AgentName>,

    /// The repository to work in: overrides the plan's `repo` [default: the plan's, else the
    /// repository of the current directory].
    #[arg(long, value_name = "DIR")]
    pub(crate) repo: Option<PathBuf>,

    /// No repository, even when the current directory is in one (a plan's `repo` still counts).
    #[arg(long, conflicts_with = "repo")]
    pub(crate) no_repo: bool,

    /// The branch to start from: overrides the plan's `base` [default: the plan's, else the
    /// repository's current branch].
    #[arg(long, value_name = "REF")]
    pub(crate) base: Option<String>,

    /// Approve the plan without asking.
    #[arg(long, short = 'y')]
    pub(crate) yes: bool,

    /// Stay and show progress until every task finished; exit 0 only if every task completed.
    #[arg(long, short = 'w')]
    pub(crate) watch: bool,
}

/// `maos plan`: a goal to plan, or a subcommand on a plan.
#[derive(Debug, Args)]
pub(crate) struct PlanArgs {
    #[command(subcommand)]
    pub(crate) command: Option<PlanCommand>,

    #[command(flatten)]
    pub(crate) new: NewPlanArgs,
}

/// `maos plan "<goal>"`.
#[derive(Debug, Args)]
pub(crate) struct NewPlanArgs {
    /// What the plan should achieve, in your words (quote it).
    #[arg(value_name = "GOAL", required = true)]
    pub(crate) goal: Option<String>,

    /// The repository to plan work in [default: the repository of the current directory].
    #[arg(long, value_name = "DIR")]
    pub(crate) repo: Option<PathBuf>,

    /// No repository, even when the current directory is in one.
    #[arg(long, conflicts_with = "repo")]
    pub(crate) no_repo: bool,

    /// The branch the work starts from [default: the repository's current branch].
    #[arg(long, value_name = "REF", conflicts_with = "no_repo")]
    pub(crate) base: Option<String>,

    /// The agent that plans [default: the least loaded strategic agent offering `plan`].
    #[arg(long, value_name = "AGENT", value_parser = agent_name, add = live(completions::agent_names))]
    pub(crate) planner: Option<AgentName>,

    /// A note for the planner (and every task's briefing); repeat for more.
    #[arg(long = "notes", value_name = "TEXT")]
    pub(crate) notes: Vec<String>,

    /// The most tasks the plan may have (1 to 500).
    #[arg(long, value_name = "N", default_value = "30", value_parser = clap::value_parser!(u32).range(1..=500))]
    pub(crate) max_tasks: u32,

    /// How many answers of the planner are checked before planning stops: the first and its
    /// corrections (1 to 10).
    #[arg(long, value_name = "N", default_value = "3", value_parser = clap::value_parser!(u32).range(1..=10))]
    pub(crate) rounds: u32,

    /// The most the planning may cost, in US dollars.
    #[arg(long, allow_negative_numbers = true, value_name = "USD", value_parser = budget)]
    pub(crate) budget_usd: Option<Usd>,

    /// How long one round of planning may take, such as 10m.
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub(crate) timeout: Option<DurationMs>,

    /// Also write the plan, once ready, to this file (a plan file: JSON).
    #[arg(long, value_name = "FILE")]
    pub(crate) out: Option<PathBuf>,

    /// Return once the planner has started, without waiting for the plan.
    #[arg(long, conflicts_with = "discuss")]
    pub(crate) no_wait: bool,

    /// Talk the goal over with the planner first, on this terminal: it asks, you answer, until
    /// you agree on the goal; the agreed goal and its points become the plan's goal and notes.
    #[arg(long)]
    pub(crate) discuss: bool,
}

/// `maos plan` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum PlanCommand {
    /// Show an orchestration's plan: its tasks in order with their dependencies, the planner's
    /// reasons, and what happened to it.
    #[command(after_help = "Examples:
  maos plan show 3kq9
  maos plan show 3kq9 --versions
          maos plan show 3kq9 --version 1 --json")]
    Show {
        /// The orchestration's id or a unique prefix of it.
        #[arg(value_parser = id_ref, add = live(completions::orchestration_ids))]
        id: IdRef,
        /// Which version [default: the newest].
        #[arg(long, value_name = "N")]
        version: Option<u32>,
        /// Every version, and every decision on them.
        #[arg(long)]
        versions: bool,
    },
    /// Edit the newest version in $EDITOR (or give a file with --file); the result, checked like
    /// any plan file, becomes a new version.
    #[command(after_help = "Examples:
  maos plan edit 3kq9
  maos plan edit 3kq9 --file plan.json")]
    Edit {
        /// The orchestration's id or a unique prefix of it.
        #[arg(value_parser = id_ref, add = live(completions::orchestration_ids))]
        id: IdRef,
        /// Take this plan file as the new version instead of opening an editor.
        #[arg(long, value_name = "FILE")]
        file: Option<PathBuf>,
    },
    /// Ask the planner for another version, with your feedback on the newest.
    #[command(after_help = "Examples:
  maos plan regenerate 3kq9 --feedback \"write the tests first\"")]
    Regenerate {
        /// The orchestration's id or a unique prefix of it.
        #[arg(value_parser = id_ref, add = live(completions::orchestration_ids))]
        id: IdRef,
        /// What should change.
        #[arg(long, value_name = "TEXT")]
        feedback: String,
        /// Return once the planner has started, without waiting for the plan.
        #[arg(long)]
        no_wait: bool,
    },
    /// Ask the planner to revise a running plan: the work not done yet, given what completed
    /// and why blocked tasks failed. The revision is a new version, approved like any (approve
    /// applies it without stopping the orchestration: completed tasks stay, replaced and dropped
    /// ones are cancelled, new ones join). A task that ends blocked asks for one by itself.
    #[command(
        after_help = "Examples:\n  maos plan revise 3kq9 --feedback \"the API moved to v2\"\n  \
        maos plan diff 3kq9 && maos plan approve 3kq9"
    )]
    Revise {
        /// The orchestration's id or a unique prefix of it.
        #[arg(value_parser = id_ref, add = live(completions::orchestration_ids))]
        id: IdRef,
        /// What should change, for the planner.
        #[arg(long, value_name = "TEXT")]
        feedback: Option<String>,
        /// Return once the planner has started, without waiting for the revision.
        #[arg(long)]
        no_wait: bool,
    },
    /// What changed between two versions: tasks added, removed and changed.
    #[command(after_help = "Examples:
  maos plan diff 3kq9          # the newest against the one before
          maos plan diff 3kq9 1 3")]
    Diff {
        /// The orchestration's id or a unique prefix of it.
        #[arg(value_parser = id_ref, add = live(completions::orchestration_ids))]
        id: IdRef,
        /// The older version [default: the one before the newer].
        from: Option<u32>,
        /// The newer version [default: the newest].
        to: Option<u32>,
    },
    /// Approve the plan: its tasks are created and the orchestration starts.
    #[command(after_help = "Examples:
  maos plan approve 3kq9
  maos plan approve 3kq9 --watch")]
    Approve {
        /// The orchestration's id or a unique prefix of it.
        #[arg(value_parser = id_ref, add = live(completions::orchestration_ids))]
        id: IdRef,
        /// The version you approve; it must be the newest [default: the newest].
        #[arg(long, value_name = "N")]
        version: Option<u32>,
        /// Stay and show progress until every task finished.
        #[arg(long, short = 'w')]
        watch: bool,
    },
    /// Reject the plan: the orchestration is cancelled (and its planner stopped).
    #[command(after_help = "Examples:
  maos plan reject 3kq9 --reason \"not now\"")]
    Reject {
        /// The orchestration's id or a unique prefix of it.
        #[arg(value_parser = id_ref, add = live(completions::orchestration_ids))]
        id: IdRef,
        /// Why (kept with the decision).
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
    },
    /// Print exactly what the planner was told (the brief of a version, or of the newest
    /// planner's last round).
    #[command(after_help = "Examples:
  maos plan brief 3kq9
  maos plan brief 3kq9 --version 2")]
    Brief {
        /// The orchestration's id or a unique prefix of it.
        #[arg(value_parser = id_ref, add = live(completions::orchestration_ids))]
        id: IdRef,
        /// The version whose brief [default: the newest planner's].
        #[arg(long, value_name = "N")]
        version: Option<u32>,
    },
    /// Print the JSON Schema of plan files (what planners are given).
    Schema,
}

/// How `maos orchestrate graph` draws.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum GraphFormat {
    /// A Mermaid flowchart (renders in GitHub markdown).
    Mermaid,
    /// Graphviz dot.
    Dot,
}

/// `maos admin` commands.
#[derive(Debug, Subcommand)]
pub(crate) enum AdminCommand {
    /// Check the database against its event log: fold every agent's, task's and
    /// orchestration's events and compare them with the stored state, check that the log is
    /// numbered without gaps, that each task's attempts are numbered from 1 with at most one
    /// live (its newest), and that fencing tokens increase and match the newest attempt. Reads
    /// the database directly and only reads (a running daemon goes on working); changes
    /// nothing. Exits 8 when something disagrees, listing each problem.
    #[command(after_help = "Examples:\n  maos admin verify\n  \
        maos admin verify --json   # one document: the counts and each problem with its facts")]
    Verify,
}

/// Workflow commands.
#[derive(Debug, Subcommand)]
pub(crate) enum WorkflowCommand {
    /// List the workflows `maos orchestrate run --workflow` knows: the built-ins and the files
    /// in <data dir>/workflows.
    #[command(visible_alias = "ls")]
    List,

    /// Show a workflow's stages, in the order they run, and its handoffs.
    Show {
        /// A workflow's name, or a workflow file.
        #[arg(value_name = "NAME|FILE", add = live(completions::workflow_names))]
        name: String,
    },

    /// Check a workflow file: every problem at once, with line and column.
    Validate {
        /// The workflow file (TOML, or JSON when it ends in .json).
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
}

/// `maos status`.
#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    /// Keep running and show the status again whenever events change it (at most 10 times a
    /// second); with --json, one document per line.
    #[arg(long, short = 'w')]
    pub(crate) watch: bool,
}

/// `maos ui`.
#[derive(Debug, Args)]
pub(crate) struct UiArgs {
    /// The port to listen on [default: 8787, or the next free port after it].
    #[arg(long, value_name = "PORT", value_parser = clap::value_parser!(u16).range(1..))]
    pub(crate) port: Option<u16>,
    /// The IP address to listen on [default: 127.0.0.1]. Any other than a loopback address
    /// exposes the dashboard (plain HTTP) to whoever can reach it.
    #[arg(long, value_name = "IP")]
    pub(crate) address: Option<std::net::IpAddr>,
    /// Open the address in a browser too ($BROWSER, else xdg-open).
    #[arg(long)]
    pub(crate) open: bool,
}

/// `maos events`.
#[derive(Debug, Args)]
pub(crate) struct EventsArgs {
    /// Only events after this sequence number (0 = from the start).
    #[arg(long, allow_negative_numbers = true, value_name = "SEQ", value_parser = event_seq, default_value = "0")]
    pub(crate) since: u64,

    /// At most this many events, 1 to 10000 [default: 1000; with --follow: no limit, and with a
    /// limit --follow stops once it has printed that many].
    #[arg(long, allow_negative_numbers = true, value_name = "N", value_parser = page_limit)]
    pub(crate) limit: Option<usize>,

    /// Keep running: print what exists after --since, then every new event as it is committed;
    /// with --json, one JSON object per line (NDJSON). Ctrl-C stops it.
    #[arg(long, short = 'f')]
    pub(crate) follow: bool,
}

impl EventsArgs {
    /// How many events a plain `maos events` prints when --limit does not say.
    pub(crate) const DEFAULT_LIMIT: usize = 1000;
}

/// A completer of live data (commands/completions.rs), for `COMPLETE=<shell> maos`.
fn live(complete: fn(&std::ffi::OsStr) -> Vec<CompletionCandidate>) -> ArgValueCompleter {
    ArgValueCompleter::new(complete)
}

// ---- value parsers: the domain's constructors, with the domain's reason as clap's message ----

fn reason(e: ValueError) -> String {
    e.reason
}

pub(crate) fn agent_name(raw: &str) -> Result<AgentName, String> {
    AgentName::parse(raw).map_err(reason)
}

pub(crate) fn capability(raw: &str) -> Result<Capability, String> {
    Capability::parse(raw).map_err(reason)
}

pub(crate) fn concern(raw: &str) -> Result<Concern, String> {
    Concern::parse(raw).map_err(reason)
}

pub(crate) fn title(raw: &str) -> Result<Title, String> {
    Title::parse(raw).map_err(reason)
}

pub(crate) fn id_ref(raw: &str) -> Result<IdRef, String> {
    IdRef::parse(raw).map_err(reason)
}

pub(crate) fn duration(raw: &str) -> Result<DurationMs, String> {
    DurationMs::parse(raw).map_err(reason)
}

fn env_name(raw: &str) -> Result<EnvName, String> {
    EnvName::parse(raw).map_err(reason)
}

fn permission_rule(raw: &str) -> Result<PermissionRule, String> {
    PermissionRule::parse(raw).map_err(reason)
}

fn attempt_number(raw: &str) -> Result<u32, String> {
    whole_number(raw, 1, 100).map(|n| u32::try_from(n).unwrap_or(1))
}

pub(crate) fn budget(raw: &str) -> Result<Usd, String> {
    let usd = Usd::parse(raw).map_err(reason)?;
    if usd == Usd::ZERO {
        return Err("a budget must be more than zero (leave --budget-usd out for none)".into());
    }
    Ok(usd)
}

pub(crate) fn idempotency_key(raw: &str) -> Result<IdempotencyKey, String> {
    IdempotencyKey::parse(raw).map_err(reason)
}

fn whole_number(raw: &str, min: u64, max: u64) -> Result<u64, String> {
    raw.trim()
        .parse::<u64>()
        .ok()
        .filter(|n| (min..=max).contains(n))
        .ok_or_else(|| format!("expected a whole number from {min} to {max}"))
}

fn event_seq(raw: &str) -> Result<u64, String> {
    whole_number(raw, 0, u64::MAX)
}

fn slots(raw: &str) -> Result<Slots, String> {
    let n = whole_number(raw, Slots::MIN.into(), Slots::MAX.into())?;
    Slots::new(u32::try_from(n).unwrap_or(u32::MAX)).map_err(reason)
}

pub(crate) fn max_attempts(raw: &str) -> Result<MaxAttempts, String> {
    let n = whole_number(raw, MaxAttempts::MIN.into(), MaxAttempts::MAX.into())?;
    MaxAttempts::new(u32::try_from(n).unwrap_or(u32::MAX)).map_err(reason)
}

fn page_limit(raw: &str) -> Result<usize, String> {
    let max = u64::try_from(Page::MAX_LIMIT).unwrap_or(u64::MAX);
    let n = whole_number(raw, 1, max)?;
    Ok(usize::try_from(n).unwrap_or(Page::MAX_LIMIT))
}

fn cursor(raw: &str) -> Result<TaskCursor, String> {
    TaskCursor::parse(raw).map_err(reason)
}

fn memory_cursor(raw: &str) -> Result<MemoryCursor, String> {
    MemoryCursor::parse(raw).map_err(reason)
}

fn memory_page_limit(raw: &str) -> Result<usize, String> {
    let max = u64::try_from(MEMORY_PAGE_MAX).unwrap_or(u64::MAX);
    let n = whole_number(raw, 1, max)?;
    Ok(usize::try_from(n).unwrap_or(MEMORY_PAGE_MAX))
}

fn search_limit(raw: &str) -> Result<usize, String> {
    let max = u64::try_from(MemorySearch::MAX_LIMIT).unwrap_or(u64::MAX);
    let n = whole_number(raw, 1, max)?;
    Ok(usize::try_from(n).unwrap_or(MemorySearch::MAX_LIMIT))
}

fn memory_text(raw: &str) -> Result<MemoryTextArg, String> {
    if raw == "-" {
        return Ok(MemoryTextArg::Stdin);
    }
    MemoryText::parse(raw)
        .map(MemoryTextArg::Text)
        .map_err(reason)
}

fn memory_query(raw: &str) -> Result<MemoryQuery, String> {
    MemoryQuery::parse(raw).map_err(reason)
}

fn tag(raw: &str) -> Result<Tag, String> {
    Tag::parse(raw).map_err(reason)
}

fn scope(raw: &str) -> Result<ScopeArg, String> {
    if raw == "repo:." {
        return Ok(ScopeArg::CurrentRepository);
    }
    match MemoryScope::parse(raw) {
        Ok(s) => Ok(ScopeArg::Scope(s)),
        // An orchestration may be named by a prefix of its id, as everywhere else.
        Err(e) => match raw.strip_prefix("orchestration:") {
            Some(id) => IdRef::parse(id)
                .map(ScopeArg::Orchestration)
                .map_err(reason),
            None => Err(e.reason),
        },
    }
}

/// A domain keyword enum: its values, their keywords, and the domain's parser.
pub(crate) trait Keyword: Copy + Send + Sync + 'static {
    /// Every value.
    const ALL: &'static [Self];
    /// The keyword.
    fn keyword(self) -> &'static str;
    /// The domain's parser.
    fn parse_keyword(raw: &str) -> Result<Self, ValueError>;
}

macro_rules! keyword {
    ($($t:ty),+) => {$(
        impl Keyword for $t {
            const ALL: &'static [Self] = <$t>::ALL;
            fn keyword(self) -> &'static str {
                self.as_str()
            }
            fn parse_keyword(raw: &str) -> Result<Self, ValueError> {
                <$t>::parse(raw)
            }
        }
    )+};
}

keyword!(
    AdapterKind,
    AgentStatus,
    MemoryTier,
    Priority,
    PromptVia,
    Risk,
    TaskState,
    Tier
);

/// A parser that lists the keywords in help and completions and parses with the domain.
fn keyword<K: Keyword>() -> impl TypedValueParser<Value = K> {
    PossibleValuesParser::new(K::ALL.iter().map(|k| k.keyword()))
        .try_map(|raw: String| K::parse_keyword(&raw))
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_grammar_is_consistent() {
        Cli::command().debug_assert();
    }
}
