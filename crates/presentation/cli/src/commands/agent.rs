//! `maos agent register|list|show|drain|resume|remove`: agents, registered from flags or from an
//! agents file (every agent checked, and its command found, before any is registered).

use std::path::Path;

use maos_application::{AgentFilter, MaosApi, RegisterAgent};
use maos_domain::Agent;
use serde::Serialize;

use crate::cli::{AgentCommand, AgentListArgs, RegisterArgs};
use crate::error::{CliError, FailureClass};
use crate::human;
use crate::input::{FileKind, read_text};
use crate::json;
use crate::output::{Output, Render};

/// `maos agent register|list|show|drain|resume|remove`.
pub(super) fn execute(
    cmd: AgentCommand,
    api: &dyn MaosApi,
    out: &mut Output,
) -> Result<(), CliError> {
    match cmd {
        AgentCommand::Register(args) => {
            if let Some(path) = &args.from_file {
                return register_from_file(path, api, out);
            }
            let cmd = register_command(*args)?;
            // A command named here must run; the CLI an adapter runs by itself may be installed
            // after the agent is registered: said, not refused (its attempts would not start).
            let missing_cli = match startable(&cmd) {
                Err(why) if cmd.command.is_some() => {
                    return Err(CliError::new(FailureClass::InvalidInput, why).with_hint(
                        "give --command a program that exists (a path, or a name on your PATH) \
                         and quote it as a shell would: --command \"sh -c 'echo hi'\"",
                    ));
                }
                Err(why) => Some(why),
                Ok(()) => None,
            };
            let agent = api.register_agent(cmd)?;
            out.print(&Changed(agent, Change::Registered))?;
            if let Some(why) = missing_cli {
                out.note(&format!(
                    "warning: {why}; until then its attempts cannot start (`maos doctor` checks it)"
                ));
            }
            Ok(())
        }
        AgentCommand::List(AgentListArgs {
            statuses,
            capability,
        }) => {
            let agents = api.list_agents(&AgentFilter {
                statuses,
                capability,
            })?;
            out.print(&Listed(agents))
        }
        AgentCommand::Show { name } => out.print(&Shown(api.get_agent(&name)?)),
        AgentCommand::Drain { name } => {
            out.print(&Changed(api.drain_agent(&name)?, Change::Draining))
        }
        AgentCommand::Resume { name } => {
            out.print(&Changed(api.resume_agent(&name)?, Change::Resumed))
        }
        AgentCommand::Remove { name } => {
            out.print(&Changed(api.remove_agent(&name)?, Change::Removed))
        }
    }
}

/// What a command did to an agent.
#[derive(Debug, Clone, Copy)]
enum Change {
    Registered,
    Draining,
    Resumed,
    Removed,
}

/// An agent as a command changed it: its document, or a sentence saying what happened.
struct Changed(Agent, Change);

impl Render for Changed {
    fn document(&self) -> impl Serialize {
        json::AgentDoc::new(&self.0)
    }

    fn human(&self, out: &mut Output) -> Result<(), CliError> {
        let agent = &self.0;
        out.text(&match self.1 {
            Change::Registered => registered_line(agent),
            Change::Draining => format!(
                "agent {} is draining: it takes no new work ({} attempt{} still running)",
                agent.name,
                agent.active,
                if agent.active == 1 { "" } else { "s" }
            ),
            Change::Resumed => format!("agent {} takes work again ({})", agent.name, agent.status),
            Change::Removed => format!("removed agent {}", agent.name),
        })
    }
}

/// `agent show`: one agent in detail.
struct Shown(Agent);

impl Render for Shown {
    fn document(&self) -> impl Serialize {
        json::AgentDoc::new(&self.0)
    }

    fn human(&self, out: &mut Output) -> Result<(), CliError> {
        let text = human::agent_details(out.color(), &self.0);
        out.text(&text)
    }
}

/// `agent list`: a table, or a note that none matches.
struct Listed(Vec<Agent>);

impl Render for Listed {
    fn document(&self) -> impl Serialize {
        json::AgentListDoc::new(&self.0)
    }

    fn human(&self, out: &mut Output) -> Result<(), CliError> {
        if self.0.is_empty() {
            out.note("no agents match; register one with `maos agent register`");
            return Ok(());
        }
        let text = human::agent_table(out.color(), &self.0);
        out.text(&text)
    }
}

/// `agent register --from-file`: the agents registered, a line each.
struct RegisteredAll(Vec<Agent>);

impl Render for RegisteredAll {
    fn document(&self) -> impl Serialize {
        json::AgentListDoc::new(&self.0)
    }

    fn human(&self, out: &mut Output) -> Result<(), CliError> {
        let lines: Vec<String> = self.0.iter().map(registered_line).collect();
        out.text(&lines.join("\n"))
    }
}

fn registered_line(agent: &Agent) -> String {
    format!(
        "registered agent {} ({}, {}, {} slot{}, capabilities: {})",
        agent.name,
        agent.adapter,
        agent.tier,
        agent.slots,
        if agent.slots.get() == 1 { "" } else { "s" },
        if agent.capabilities.is_empty() {
            "none".to_owned()
        } else {
            agent.capabilities.to_string()
        }
    )
}

/// Refuses a command that can never start: one that cannot be split into words, or whose
/// program does not exist (a path) or is on no directory of `PATH` (a name). The daemon runs it
/// with the `PATH` of the command that started it, usually this one's.
fn startable(cmd: &RegisterAgent) -> Result<(), String> {
    use maos_domain::AdapterKind;
    // Without --command, Claude Code and Codex run their own CLI.
    let line = match (cmd.adapter, cmd.command.as_deref()) {
        (AdapterKind::Command | AdapterKind::ClaudeCode | AdapterKind::Codex, Some(line)) => line,
        (AdapterKind::ClaudeCode, None) => "claude",
        (AdapterKind::Codex, None) => "codex",
        _ => return Ok(()),
    };
    let shown = crate::human::clip(line, 80);
    let words = maos_agents::plan::split_command(line)
        .map_err(|e| format!("the command {shown:?} cannot be split into words: {e}"))?;
    let Some(program) = words.first() else {
        return Err("the command is empty".to_owned());
    };
    if maos_agents::plan::find_program(program).is_some() {
        return Ok(());
    }
    Err(if program.contains('/') {
        if Path::new(program).exists() {
            format!("the program {program:?} of the command {shown:?} is not an executable file")
        } else {
            format!("the program {program:?} of the command {shown:?} does not exist")
        }
    } else if cmd.command.is_none() {
        let package = if program == "claude" {
            "@anthropic-ai/claude-code"
        } else {
            "@openai/codex"
        };
        format!(
            "{program:?} is not on your PATH: install it (npm install -g {package}) or name it \
             with --command /path/to/{program}"
        )
    } else {
        format!("the program {program:?} of the command {shown:?} is not on your PATH")
    })
}

/// The registration the flags describe (clap requires a name and an adapter without a file).
fn register_command(args: RegisterArgs) -> Result<RegisterAgent, CliError> {
    let (Some(name), Some(adapter)) = (args.name, args.adapter) else {
        return Err(CliError::new(
            FailureClass::InvalidInput,
            "name the agent and its adapter, or give --from-file",
        )
        .with_hint("maos agent register <NAME> --adapter <KIND>"));
    };
    let mut limits = maos_domain::ResourceLimits::default();
    for (name, value) in &args.limits {
        name.set(&mut limits, *value);
    }
    let settings = maos_domain::AgentSettings {
        limits,
        args: args.args,
        prompt_via: args.prompt_via.unwrap_or_default(),
        env: args.env,
        timeout: args.timeout,
        model: args.model,
        base_url: args.base_url,
        api_key_env: args.api_key_env,
        permissions: maos_domain::policy::permission::PermissionRules {
            deny: args.deny,
            ask: args.ask,
            allow: args.allow,
        },
        delay: args.delay,
        verify: args.verify,
        ..maos_domain::AgentSettings::default()
    };
    Ok(RegisterAgent {
        name,
        adapter,
        capabilities: args.capabilities.into_iter().collect(),
        tier: args.tier,
        slots: args.slots,
        command: args.command,
        settings,
    })
}

/// `agent register --from-file`: every agent of the file, after checking all of them (and that
/// none of their names is taken) so that a bad file registers nothing.
fn register_from_file(path: &Path, api: &dyn MaosApi, out: &mut Output) -> Result<(), CliError> {
    let text = read_text(path, FileKind::Agents)?;
    let mut problems = match crate::agents_file::parse(path, &text) {
        Ok(cmds) => {
            let taken: Vec<String> = cmds
                .iter()
                .filter(|c| api.get_agent(&c.name).is_ok())
                .map(|c| {
                    format!(
                        "{}: an agent named {:?} is already registered",
                        path.display(),
                        c.name.as_str()
                    )
                })
                .collect();
            let unstartable: Vec<String> = cmds
                .iter()
                .filter(|c| c.command.is_some())
                .filter_map(|c| {
                    startable(c).err().map(|why| {
                        format!("{}: agent {:?}: {why}", path.display(), c.name.as_str())
                    })
                })
                .collect();
            if taken.is_empty() && unstartable.is_empty() {
                let mut agents = Vec::with_capacity(cmds.len());
                for cmd in cmds {
                    agents.push(api.register_agent(cmd)?);
                }
                return out.print(&RegisteredAll(agents));
            }
            taken.into_iter().chain(unstartable).collect()
        }
        Err(problems) => maos_plans::diagnostics::render(path, &problems),
    };
    let count = problems.len();
    problems.insert(
        0,
        format!(
            "{} has {count} problem{}; no agent was registered:",
            path.display(),
            if count == 1 { "" } else { "s" }
        ),
    );
    Err(
        CliError::new(FailureClass::InvalidInput, problems.join("\n  ")).with_hint(
            "fix the file and run the command again (docs/agents.md describes the format)",
        ),
    )
}
