# The MAOS IPC contract: what the `maos` command (or any other client) and the MAOS daemon say to
# each other over a Unix socket, with Cap'n Proto RPC (two-party, VatNetwork over the socket).
#
# How to talk to the daemon (docs/ipc.md has the whole story):
#   1. connect to the socket; the daemon checks that your uid is its own (SO_PEERCRED);
#   2. take the bootstrap capability, a `Bootstrap`, and call `handshake` with PROTOCOL_VERSION;
#   3. the handshake answers with an `Api` capability (or an error naming both versions);
#   4. call the `Api`'s methods. Every method answers with a result struct that holds either the
#      value or an `Error` (kind, message, hint): a refused command is a normal answer, not an RPC
#      exception. RPC exceptions mean the connection or the daemon failed.
#
# Growing the schema: add fields and methods at the end with the next ordinal, never renumber or
# retype; bump PROTOCOL_VERSION only for a change an older peer cannot ignore.
#
# Conventions: times are Int64 milliseconds since the Unix epoch, UTC, with 0 meaning "none";
# durations are UInt64 milliseconds with 0 meaning "none"; an absent optional Text is a null
# pointer (not an empty string); ids are 25-character lowercase Crockford base32 strings, and
# where the API says "reference" it also accepts any unique prefix of an id.

@0xb95e69db9986670e;

const protocolVersion :UInt32 = 10;
# The version of this contract. A daemon serves clients of the same protocol version.
# Version 2 added the agent runtime: agent settings, budgets, attempts' process, session, exit,
# usage and failure kind, run reports, sessions, heartbeats and logs.
# Version 3 added workspaces and approvals: tasks' and orchestrations' repositories, worktrees,
# verification commands and ports, attempts' checkpoints and verification, pending approvals and
# decisions (gates run, result and tool), and the calls recordWorkspace, requestApproval,
# approve, reject, approvals, diffSummary, taskDiff, rollback, gc and mergeOrchestration.
# Version 4 added orchestrations at work: plans (createPlan), the orchestration lifecycle
# (start, pause, resume, cancel), tasks' concerns, backoff and extra attempts, attempts'
# briefings and diff stats, agents' failure streaks and drain reasons, pinned notes, and the
# calls retryTask, taskWaiting, taskBriefing and resumeAgent.
# Version 6 added orchestrationReport, and approvalRequests, which answers approvals with what
# each task's branch changed (a version 5 client lists approvals with approvals @30).
# Version 7 added planning: a goal planned by a planner (planGoal), an orchestration's plan
# versions and what happened to them (planHistory), a person's version (proposePlan), another
# version with feedback (regeneratePlan), approvePlan and rejectPlan; orchestrations' plan
# version and planner at work, and tasks' `plans` (the orchestration a planning task plans).
# Version 9 added memory: entries (Memory) and the calls addMemory, getMemory, listMemories,
# searchMemories, pinMemory, unpinMemory and forgetMemory; events of aggregate "memory".
# Version 10 added an agent's own calls, made with the credential its attempt was given:
# authenticateAgent (AgentScope), reportProgress and createSubtasks; tasks' `parent` and
# `subtasks`; the error kind `denied`; the task events task.progress_reported and
# task.subtasks_created.

# ---------------------------------------------------------------------------------------------
# Errors

enum ErrorKind {
  invalidInput @0;     # malformed or ambiguous input (exit code 2 in the CLI)
  notFound @1;         # something named does not exist (exit code 3)
  conflict @2;         # a duplicate, an illegal transition, a stale attempt (exit code 4)
  storage @3;          # the store failed or holds no MAOS data (exit code 5)
  unavailable @4;      # the daemon is shutting down or cannot serve (exit code 6)
  versionMismatch @5;  # the handshake failed: client and daemon speak different protocols
  internal @6;         # a bug: the daemon could not encode or decode something
  denied @7;           # an agent's credential refused: unknown, or its attempt no longer runs (exit code 10)
}

struct Error {
  kind @0 :ErrorKind;
  message @1 :Text;    # what went wrong, for a person
  hint @2 :Text;       # what to do about it; null when there is nothing to say
}

# ---------------------------------------------------------------------------------------------
# Values

enum AdapterKind {
  command @0;
  claudeCode @1;
  codex @2;
  openai @3;
  ollama @4;
  sim @5;
  external @6;                 # a worker of your own: MAOS never starts it
}

enum PromptVia {
  stdin @0;
  file @1;
  arg @2;
}

enum FailureKind {
  none @0;                     # not failed
  exit @1;
  signal @2;
  timeout @3;
  budget @4;
  start @5;
  agent @6;
  interrupted @7;
  verification @8;             # the agent succeeded, its verification failed
  setup @9;                    # the workspace could not be prepared (not the agent's fault)
}

enum ToolCalls {
  default @0;                  # the adapter's default (tool calls on)
  yes @1;
  no @2;
}

enum Tier {
  tactical @0;
  strategic @1;
}

enum TierRequirement {
  any @0;
  tactical @1;
  strategic @2;
}

enum Priority {
  low @0;
  normal @1;
  high @2;
  urgent @3;
}

enum Risk {
  low @0;
  medium @1;
  high @2;
}

enum AgentStatus {
  available @0;
  busy @1;
  draining @2;
  offline @3;
  removed @4;
}

enum TaskState {
  pending @0;
  ready @1;
  assigned @2;
  running @3;
  verifying @4;
  awaitingApproval @5;
  completed @6;
  failed @7;
  retrying @8;
  blocked @9;
  cancelled @10;
  escalated @11;
}

enum AttemptStatus {
  assigned @0;
  running @1;
  succeeded @2;
  failed @3;
  interrupted @4;
  cancelled @5;
}

enum OrchestrationStatus {
  draft @0;
  awaitingPlanApproval @1;
  running @2;
  paused @3;
  completed @4;
  failed @5;
  cancelled @6;
}

enum Gate {
  # What a task waits for a person to decide.
  run @0;                      # a high-risk task, before it runs at all
  result @1;                   # verified work of a medium- or high-risk task, before it is accepted
  tool @2;                     # a tool call a running agent wants to make
}

# ---------------------------------------------------------------------------------------------
# Workspaces and approvals

struct WorkspaceSpec {
  # Where a task works: a git repository, and the branch or commit its work starts from.
  repo @0 :Text;               # the repository's path
  base @1 :Text;               # null: the repository's current branch
}

struct TaskWorkspace {
  # The worktree a task works in, once prepared.
  repo @0 :Text;
  path @1 :Text;               # the worktree
  branch @2 :Text;             # the task's branch, maos/<short id>
  base @3 :Text;               # the commit the branch started from
  removed @4 :Bool;            # the worktree was removed (gc); the branch stays
}

struct PendingApproval {
  # A decision a task waits for.
  gate @0 :Gate;
  attempt @1 :UInt32;          # the attempt that asks (tool approvals); 0: none
  tool @2 :Text;               # the tool (tool approvals); null: none
  subject @3 :Text;            # what the tool acts on; null: none
  requestedAt @4 :Int64;
}

struct ApprovalDecision {
  # A person's decision on an approval.
  gate @0 :Gate;
  approved @1 :Bool;
  reason @2 :Text;             # why it was rejected; null: none
  at @3 :Int64;
}

struct Verification {
  # The outcome of a task's verification command.
  passed @0 :Bool;             # it exited with status 0
  output @1 :Text;             # the end of what it printed
}

# ---------------------------------------------------------------------------------------------
# Aggregates, as read

struct Agent {
  id @0 :Text;
  name @1 :Text;
  adapter @2 :AdapterKind;
  capabilities @3 :List(Text);
  tier @4 :Tier;
  slots @5 :UInt32;
  command @6 :Text;            # null when the adapter needs none
  status @7 :AgentStatus;
  active @8 :UInt32;           # attempts holding one of its slots
  registeredAt @9 :Int64;
  updatedAt @10 :Int64;
  version @11 :UInt64;         # events applied since registration
  settings @12 :AgentSettings;
  failuresInRow @13 :UInt32;   # its attempts that failed in a row, newest last
  drainedBecause @14 :Text;    # why MAOS drained it (its circuit breaker); null: not so
}

struct AgentSettings {
  # How the daemon runs an agent (docs/agents.md). Secrets are never sent: only the names of the
  # environment variables that hold them.
  args @0 :List(Text);
  promptVia @1 :PromptVia;
  env @2 :List(Text);          # variable names passed to the agent besides the allowlist
  timeoutMs @3 :UInt64;        # 0: none
  limits @4 :ResourceLimits;
  model @5 :Text;              # null: the adapter's default
  baseUrl @6 :Text;            # null: the adapter's default
  apiKeyEnv @7 :Text;          # null: none
  maxSteps @8 :UInt32;         # 0: the adapter's default
  toolCalls @9 :ToolCalls;
  price @10 :Price;            # null: no price table
  permissions @11 :Permissions;
  skipPermissions @12 :Bool;
  delayMs @13 :UInt64;         # sim: 0 means the default
  failEvery @14 :UInt32;       # sim: 0 means never
  verify @15 :Text;            # the verification command of its tasks that name none; null: none
}

struct ResourceLimits {
  # 0 leaves the daemon's own limit.
  cpuSeconds @0 :UInt64;
  memoryMib @1 :UInt64;
  openFiles @2 :UInt64;
  processes @3 :UInt64;
}

struct Price {
  # US micro-dollars per million tokens.
  inputMicros @0 :UInt64;
  outputMicros @1 :UInt64;
  cachedInput :union {
    same @2 :Void;             # cached tokens cost the input price
    micros @3 :UInt64;
  }
}

struct Permissions {
  # Rules such as "Bash(git diff:*)": deny, then ask, then allow, first match wins.
  deny @0 :List(Text);
  ask @1 :List(Text);
  allow @2 :List(Text);
}

struct Usage {
  inputTokens @0 :UInt64;
  cachedInputTokens @1 :UInt64;
  outputTokens @2 :UInt64;
  costMicros @3 :UInt64;       # US micro-dollars
}

struct RunReport {
  # What the runtime observed at the end of an attempt.
  exit :union {
    none @0 :Void;
    code @1 :Int32;
    signal @2 :Int32;
  }
  usage @3 :Usage;
  failure @4 :FailureKind;
  checkpoint @5 :Text;         # the checkpoint commit made after the attempt; null: none
  verification @6 :Verification;  # null: no verification ran
  diffStat @7 :Text;           # what the attempt changed, one line; null: no worktree
  permissionDenials @8 :List(Text);  # tool calls the agent was refused, "Tool(subject)"
}

struct Attempt {
  number @0 :UInt32;
  agent @1 :Text;
  fencing @2 :UInt64;
  status @3 :AttemptStatus;
  assignedAt @4 :Int64;
  leaseExpiresAt @5 :Int64;
  startedAt @6 :Int64;         # 0: not started
  endedAt @7 :Int64;           # 0: not ended
  summary @8 :Text;            # null when none
  error @9 :Text;              # null when none
  pid @10 :UInt32;             # 0: no process (yet)
  session @11 :Text;           # the agent's own session id; null when none
  exit :union {
    none @12 :Void;
    code @13 :Int32;
    signal @14 :Int32;
  }
  usage @15 :Usage;
  failure @16 :FailureKind;
  checkpointBefore @17 :Text;  # the checkpoint commit made before it started; null: none
  checkpointAfter @18 :Text;   # the checkpoint commit made after it ended; null: none
  port @19 :UInt16;            # the port it was given (MAOS_PORT); 0: none
  verification @20 :Verification;  # null: no verification ran
  diffStat @21 :Text;          # what it changed, one line; null: unknown
  briefed @22 :Bool;           # its briefing was recorded (taskBriefing shows it)
  permissionDenials @23 :List(Text);  # tool calls the agent was refused, "Tool(subject)"
  refunded @24 :Bool;          # interrupted without counting against the task
}

struct Task {
  id @0 :Text;
  title @1 :Text;
  prompt @2 :Text;
  capabilities @3 :List(Text);
  priority @4 :Priority;
  risk @5 :Risk;
  tier @6 :TierRequirement;
  dependsOn @7 :List(Text);    # full task ids
  orchestration @8 :Text;      # null when none
  maxAttempts @9 :UInt32;
  timeoutMs @10 :UInt64;       # 0: none
  idempotencyKey @11 :Text;    # null when none
  state @12 :TaskState;
  reason @13 :Text;            # why it is blocked, failed or cancelled; null otherwise
  attempts @14 :List(Attempt);
  fencing @15 :UInt64;
  createdAt @16 :Int64;
  updatedAt @17 :Int64;
  version @18 :UInt64;
  budgetMicros @19 :UInt64;    # US micro-dollars over all attempts; 0: none
  workspaceSpec @20 :WorkspaceSpec;  # the repository it works in, as given; null: none
  verify @21 :Text;            # its verification command, as given; null: none
  wantsPort @22 :Bool;         # it needs a TCP port of its own
  workspace @23 :TaskWorkspace;  # its worktree, once prepared; null: none
  pending @24 :PendingApproval;  # what it waits for a person to decide; null: nothing
  runApproved @25 :Bool;       # a person approved it to run (high risk)
  decision @26 :ApprovalDecision;  # the last decision a person made about it; null: none
  concerns @27 :List(Text);    # what no other task may work on at the same time
  retryAt @28 :Int64;          # when a retrying task's backoff ends; 0: none
  extraAttempts @29 :UInt32;   # attempts granted beyond maxAttempts
  blocked @30 :Text;           # why it is blocked, as JSON (a BlockReason); null: not blocked
  plans @31 :Text;             # the orchestration a planning task plans (full id); null: none
  agent @32 :Text;             # the only agent that may take it; empty or null: any
  parent @33 :SubtaskLink;     # the task whose agent made it as a subtask; null: none
  subtasks @34 :List(SubtaskLink);  # the subtasks its agents made, in the order they were made
  lessons @35 :Bool;           # an attempt that succeeds after failed ones is asked for a lesson
}

struct SubtaskLink {
  # A subtask and the task whose running attempt made it: `task` is the other end (the parent
  # in a task's `parent`, the subtask in its `subtasks`).
  task @0 :Text;               # full id
  waits @1 :Bool;              # the parent may not complete before the subtask has
}

struct Orchestration {
  id @0 :Text;
  name @1 :Text;
  goal @2 :Text;               # null when none
  status @3 :OrchestrationStatus;
  createdAt @4 :Int64;
  updatedAt @5 :Int64;
  version @6 :UInt64;
  workspace @7 :WorkspaceSpec; # the repository its tasks work in; null: none
  verify @8 :Text;             # the verification command its tasks inherit; null: none
  notes @9 :List(Text);        # pinned to every task's briefing
  planned @10 :Bool;           # made from a plan: it completes once all its tasks have
  planVersion @11 :UInt32;     # the newest version of its plan; 0: none yet
  planning @12 :Planning;      # the planner at work on a version of its plan; null: none
  approvedVersion @13 :UInt32; # the version its tasks carry out; 0: none approved
  decidedVersion @14 :UInt32;  # the newest version approved or rejected (a newer one waits)
  superseded @15 :List(Text);  # its tasks a revision replaced or dropped (cancelled)
}

struct Metrics {
  # What the work in a window of time came to (`maos metrics`); counts, no ratios.
  since @0 :Int64;                  # the window's start; 0: since the first event
  until @1 :Int64;                  # when the figures were read
  created @2 :UInt64;               # tasks created in the window
  completed @3 :UInt64;             # tasks completed in the window
  completedByHour @4 :List(HourCount);  # by the hour they completed in, oldest first
  firstAttemptPassed @5 :UInt64;    # completed tasks whose first attempt was accepted
  timeToGreen @6 :Spread;           # creation to completion, ms; null: none completed
  approvals @7 :UInt64;             # a person's approvals in the window
  rejections @8 :UInt64;
  manualRetries @9 :UInt64;         # retries a person asked for
  attempts @10 :UInt64;             # attempts that ended in the window
  usage @11 :Usage;                 # what they used
  agents @12 :List(AgentMetrics);   # by agent name
}

struct HourCount {
  hour @0 :Int64;                   # the hour's start, ms since the epoch
  n @1 :UInt64;
}

struct Spread {
  p50 @0 :UInt64;
  p90 @1 :UInt64;
  max @2 :UInt64;
}

struct AgentMetrics {
  agent @0 :Text;
  attempts @1 :UInt64;
  succeeded @2 :UInt64;
  failed @3 :UInt64;                # interrupted attempts are neither
  usage @4 :Usage;
}

struct MetricsResult { union { ok @0 :Metrics; err @1 :Error; } }

struct KeyedId {
  # A task of a plan: its key in the plan and its id.
  key @0 :Text;
  id @1 :Text;
}

struct Planning {
  # A planner at work on an orchestration's plan.
  task @0 :Text;               # the planning task (full id): its answer is the plan
  maxTasks @1 :UInt32;         # the most tasks the plan may have
  discussion @2 :Text;         # the task of the discussion the goal came from; null: none
}

struct Event {
  seq @0 :UInt64;              # 1, 2, 3, ... without gaps
  at @1 :Int64;
  kind @2 :Text;               # such as "task.assigned"
  aggregate @3 :Text;          # "agent", "task", "orchestration" or "memory"
  aggregateId @4 :Text;
  payload @5 :Text;            # the domain event as JSON (docs/json.md, "events")
}

struct Count {
  key @0 :Text;                # a task state or agent status keyword
  n @1 :UInt64;
}

struct Status {
  tasks @0 :List(Count);
  agents @1 :List(Count);
  orchestrations @2 :UInt64;
  lastEvent @3 :UInt64;
  usage @4 :Usage;             # every attempt ever made
}

struct DaemonInfo {
  pid @0 :UInt32;
  version @1 :Text;            # the daemon's MAOS version
  protocol @2 :UInt32;
  socket @3 :Text;
  database @4 :Text;
  startedAt @5 :Int64;
  uptimeMs @6 :UInt64;
  containment @7 :Text;        # how agents' processes are contained: "cgroup" or "process_tree"
  containmentRoot @8 :Text;    # with "cgroup": the directory of the attempts' cgroups
  ui @9 :Text;                 # the dashboard's address (without its token) when it serves one
}

struct UiRequest {
  # Where the daemon should serve the web dashboard.
  address @0 :Text;            # the IP address to listen on; empty: 127.0.0.1
  port @1 :UInt16;             # 0: the default port, or the next free one after it
}

struct UiServing {
  # Where the dashboard is served.
  url @0 :Text;                # http://127.0.0.1:8787/ (without the token)
  token @1 :Text;              # the data directory's dashboard token, which the URL needs
  address @2 :Text;            # the IP address listened on
  port @3 :UInt16;
  loopback @4 :Bool;           # true when only this machine can connect
  already @5 :Bool;            # true when it was already serving (the request changed nothing)
}

struct UiResult { union { ok @0 :UiServing; err @1 :Error; } }

# ---------------------------------------------------------------------------------------------
# Commands and queries

struct NewAgent {
  name @0 :Text;
  adapter @1 :AdapterKind;
  capabilities @2 :List(Text);
  tier @3 :Tier;
  slots @4 :UInt32;
  command @5 :Text;            # null when none
  settings @6 :AgentSettings;  # null: every default
}

struct NewTask {
  title @0 :Text;
  prompt @1 :Text;
  capabilities @2 :List(Text);
  priority @3 :Priority;
  risk @4 :Risk;
  tier @5 :TierRequirement;
  dependsOn @6 :List(Text);    # references
  orchestration @7 :Text;      # reference, or null
  maxAttempts @8 :UInt32;
  timeoutMs @9 :UInt64;        # 0: none
  idempotencyKey @10 :Text;    # null when none
  budgetMicros @11 :UInt64;    # 0: none
  workspace @12 :WorkspaceSpec;  # null: its orchestration's, if any
  verify @13 :Text;            # null: its orchestration's, then its agent's
  wantsPort @14 :Bool;         # it needs a TCP port of its own (MAOS_PORT)
  concerns @15 :List(Text);    # path globs and named resources (`port:8080`)
  agent @16 :Text;             # the only agent that may take it; empty or null: any
  lessons @17 :Bool;           # an attempt that succeeds after failed ones is asked for a lesson
}

struct NewOrchestration {
  name @0 :Text;
  goal @1 :Text;               # null when none
  workspace @2 :WorkspaceSpec; # the repository its tasks work in; null: none
  verify @3 :Text;             # the verification command its tasks inherit; null: none
  notes @4 :List(Text);        # pinned to every task's briefing
}

struct Created {
  task @0 :Task;
  created @1 :Bool;            # false: an earlier call with the same idempotency key made it
}

struct Assignment {
  task @0 :Task;
  agent @1 :Text;
  attempt @2 :UInt32;
  fencing @3 :UInt64;
}

struct AgentFilter {
  statuses @0 :List(AgentStatus);   # empty: every status but removed
  capability @1 :Text;              # null: any
}

struct TaskFilter {
  statuses @0 :List(TaskState);     # empty: every state
  orchestration @1 :Text;           # full id, or null
  capability @2 :Text;              # null: any
  limit @3 :UInt32;                 # page size, 1..10000
  cursor @4 :Text;                  # the previous page's nextCursor, or null for the first page
}

struct TaskPage {
  tasks @0 :List(Task);
  nextCursor @1 :Text;              # null on the last page
}

struct Beat {
  task @0 :Text;                    # full id
  fencing @1 :UInt64;
}

struct LogRequest {
  task @0 :Text;                    # reference
  attempt @1 :UInt32;               # 0: the newest
  offset @2 :UInt64;
  max @3 :UInt32;                   # at most this many bytes (the daemon caps it at 1 MiB)
  waitMs @4 :UInt64;                # nothing yet and the attempt runs: wait this long for output
}

struct LogChunk {
  task @0 :Text;
  attempt @1 :UInt32;
  offset @2 :UInt64;
  bytes @3 :Data;                   # raw output: not necessarily UTF-8
  finished @4 :Bool;                # the attempt ended and nothing follows
}

struct GcRequest {
  # Which worktrees of finished tasks to remove.
  dryRun @0 :Bool;                  # only say what would be removed
  force @1 :Bool;                   # also dirty and unmerged ones (their uncommitted work is lost)
  olderThanMs @2 :UInt64;           # only tasks finished at least this long ago; 0: any
}

struct GcEntry {
  # One worktree gc looked at.
  task @0 :Text;                    # full id
  path @1 :Text;
  removed @2 :Bool;                 # removed (in a dry run: would be)
  keptBecause @3 :Text;             # why it was kept; null when removed
}

struct MergeReport {
  # What mergeOrchestration did.
  orchestration @0 :Orchestration;
  branch @1 :Text;                  # the integration branch that was merged
  into @2 :Text;
  commit @3 :Text;                  # the merge commit, or the target's when nothing was merged
  merged @4 :Bool;                  # false: `into` already contained everything
}

struct PlanTask {
  # One task of a plan: its key in the plan, what to create (its dependsOn and orchestration
  # are ignored), and the keys of the plan's tasks it depends on.
  key @0 :Text;
  task @1 :NewTask;
  dependsOn @2 :List(Text);
}

struct NewPlan {
  orchestration @0 :NewOrchestration;
  tasks @1 :List(PlanTask);
  start @2 :Bool;                   # start at once (its plan was approved); else a draft
}

struct KeyedTask {
  key @0 :Text;
  task @1 :Task;
}

struct PlanCreated {
  orchestration @0 :Orchestration;
  tasks @1 :List(KeyedTask);        # in the plan's order
}

struct Waiting {
  # One thing a task waits for.
  kind @0 :Text;                    # dependency, concern, no_capable_agent, agents_busy, budget,
                                    # approval, backoff, orchestration or person
  detail @1 :Text;                  # unused since reasons are data (always null)
  task @2 :Text;                    # the other task involved (full id); null: none
  reason @3 :Text;                  # the reason with its facts, as JSON (a WaitReason)
}

struct ApprovalRequest {
  # A task that waits for a person's decision, as the listing of approvals shows it.
  task @0 :Task;
  changes @1 :Text;                 # what its branch changed, one line; null: no worktree, or
                                    # git could not tell
}

struct NeedsPerson {
  # A task of an orchestration that waits for a person.
  task @0 :Text;                    # full id
  title @1 :Text;
  state @2 :TaskState;
  waits @3 :List(Waiting);          # what it waits for
  blocked @4 :Text;                 # why it is blocked, as JSON (a BlockReason); null: it is not
  nextSteps @5 :List(Text);         # what a person can do, most useful first, each as JSON (a
                                    # NextStep)
}

struct OrchestrationReport {
  # Where an orchestration stands.
  orchestration @0 :Orchestration;
  byState @1 :List(Count);          # tasks in each state, every state (0 included), by its name
  tasks @2 :UInt64;
  completed @3 :UInt64;
  attempts @4 :UInt32;
  wallMs @5 :UInt64;                # from its creation to its tasks' last update once every task
                                    # is settled, else to now
  inputTokens @6 :UInt64;           # cached ones included
  outputTokens @7 :UInt64;
  costMicros @8 :UInt64;            # US micro-dollars
  integrationBranch @9 :Text;       # null: its tasks work in no repository
  needsAPerson @10 :List(NeedsPerson);  # in dependency order
  canMove @11 :Bool;                # false: nothing of it moves without a person
  planning @12 :Usage;              # what its planning took (planning and discussion tasks)
}

struct PlanGoalRequest {
  # A goal to plan: a draft orchestration whose plan a planner writes, as the answer of a
  # planning task.
  goal @0 :Text;                    # what the plan should achieve; not empty
  name @1 :Text;                    # a short name; null: the goal's first line, cut
  notes @2 :List(Text);             # for the planner, and pinned to every task's briefing
  workspace @3 :WorkspaceSpec;      # the repository to plan work in; null: none
  planner @4 :Text;                 # the agent that plans (a name); null: the least loaded
                                    # strategic agent offering `plan`
  maxTasks @5 :UInt32;              # the most tasks the plan may have, 1..500 (0 is refused)
  rounds @6 :UInt32;                # the planner's answers checked before the planning stops,
                                    # 1..100 (0 is refused)
  budgetMicros @7 :UInt64;          # the most the planning may cost (US micro-dollars); 0: none
  timeoutMs @8 :UInt64;             # how long one round may take; 0: none
  discussion @9 :Text;              # the discussion task the goal came from; null: none
}

struct PlanningStarted {
  # A planner at work: the orchestration and its planning task.
  orchestration @0 :Orchestration;
  task @1 :Task;
}

struct PlanRecord {
  # One step of a plan's history.
  at @0 :Int64;
  union {
    planning :group {               # a planner started
      task @1 :Text;                # the planning task (full id)
      maxTasks @2 :UInt32;
      discussion @13 :Text;         # the discussion the goal came from (full id); null: none
    }
    proposed :group {               # a version was proposed
      version @3 :UInt32;
    }
    failed :group {                 # a planner gave no acceptable plan
      task @4 :Text;                # the planning task (full id)
      text @5 :Text;                # its last plan's text; null: none
      problems @6 :List(Text);      # what was wrong with it
    }
    approved :group {               # a version was approved: its tasks were created
      version @7 :UInt32;
      by @8 :Text;                  # "person" or "config" (the configuration approves plans)
      tasks @11 :List(KeyedId);     # each task of the version by its key (none: older MAOS)
      superseded @12 :List(Text);   # tasks of the previous version it replaced or dropped
    }
    rejected :group {               # the plan was rejected: the orchestration was cancelled
      version @9 :UInt32;           # the newest version then; 0: none
      reason @10 :Text;             # null: none given
    }
  }
}

struct PlanHistory {
  # An orchestration's plan over time.
  orchestration @0 :Orchestration;
  versions @1 :List(Text);          # every version, oldest first, each as JSON (a PlanVersion:
                                    # number, plan, origin, rationale, proposed_at)
  record @2 :List(PlanRecord);      # what happened to the plan, oldest first
}

struct Briefing {
  # Exactly the prompt an attempt's agent received.
  attempt @0 :UInt32;
  text @1 :Text;
  tokens @2 :UInt32;                # estimated
  cut @3 :List(Text);               # what was cut to fit the token budget
}

# One result struct per shape of answer: the value, or an error.

struct AgentResult { union { ok @0 :Agent; err @1 :Error; } }
struct AgentsResult { union { ok @0 :List(Agent); err @1 :Error; } }
struct TaskResult { union { ok @0 :Task; err @1 :Error; } }
struct CreatedResult { union { ok @0 :Created; err @1 :Error; } }
struct CreatedListResult { union { ok @0 :List(Created); err @1 :Error; } }
struct AssignmentResult { union { ok @0 :Assignment; err @1 :Error; } }
struct TaskPageResult { union { ok @0 :TaskPage; err @1 :Error; } }
struct OrchestrationResult { union { ok @0 :Orchestration; err @1 :Error; } }
struct OrchestrationsResult { union { ok @0 :List(Orchestration); err @1 :Error; } }
struct StatusResult { union { ok @0 :Status; err @1 :Error; } }
struct EventsResult { union { ok @0 :List(Event); err @1 :Error; } }
struct BeatsResult { union { ok @0 :List(Beat); err @1 :Error; } }
struct LogChunkResult { union { ok @0 :LogChunk; err @1 :Error; } }
struct TasksResult { union { ok @0 :List(Task); err @1 :Error; } }
struct TextResult { union { ok @0 :Text; err @1 :Error; } }
struct GcResult { union { ok @0 :List(GcEntry); err @1 :Error; } }
struct MergeResult { union { ok @0 :MergeReport; err @1 :Error; } }
struct PlanResult { union { ok @0 :PlanCreated; err @1 :Error; } }
struct WaitingResult { union { ok @0 :List(Waiting); err @1 :Error; } }
struct BriefingResult { union { ok @0 :Briefing; err @1 :Error; } }
struct ApprovalRequestsResult { union { ok @0 :List(ApprovalRequest); err @1 :Error; } }
struct OrchestrationReportResult { union { ok @0 :OrchestrationReport; err @1 :Error; } }
struct PlanningResult { union { ok @0 :PlanningStarted; err @1 :Error; } }
struct PlanHistoryResult { union { ok @0 :PlanHistory; err @1 :Error; } }

# ---------------------------------------------------------------------------------------------
# Memory

enum MemoryTier {
  critical @0;
  important @1;
  routine @2;
  ephemeral @3;                # expires (unless pinned)
}

enum MemoryState {
  live @0;
  forgotten @1;
  expired @2;
}

struct Memory {
  # A memory entry: something learned that outlives a task.
  id @0 :Text;
  tier @1 :MemoryTier;
  scope @2 :Text;              # "global", "repo:<absolute path>" or "orchestration:<id>"
  text @3 :Text;
  tags @4 :List(Text);         # sorted, each once
  provenanceTask @5 :Text;     # the task whose attempt wrote it (full id); null: a person
  provenanceAttempt @6 :UInt32;  # that attempt's number (with provenanceTask)
  pinned @7 :Bool;
  state @8 :MemoryState;
  forgottenBecause @9 :Text;   # why it was forgotten; null: no reason given (or not forgotten)
  createdAt @10 :Int64;
  updatedAt @11 :Int64;
  expiresAt @12 :Int64;        # when an ephemeral entry expires unless pinned; 0: never
  version @13 :UInt64;
}

struct NewMemory {
  tier @0 :MemoryTier;
  scope @1 :Text;
  text @2 :Text;               # 1 to 8192 bytes once trimmed
  tags @3 :List(Text);         # at most 16
  provenanceTask @4 :Text;     # null: a person writes it
  provenanceAttempt @5 :UInt32;
}

struct MemoryFilter {
  scopes @0 :List(Text);       # empty: every scope
  tiers @1 :List(MemoryTier);  # empty: every tier
  tag @2 :Text;                # null: any
  all @3 :Bool;                # forgotten and expired entries too
}

struct MemoryPage {
  memories @0 :List(Memory);   # newest first
  nextCursor @1 :Text;         # null on the last page
}

struct MemoryHit {
  memory @0 :Memory;
  score @1 :Float64;           # relevance weighed by tier; higher is better
}

struct MemoryHits {
  hits @0 :List(MemoryHit);    # pinned first, then by score
  everyWord @1 :Bool;          # false: no entry had every word; these have some
}

struct MemoryResult { union { ok @0 :Memory; err @1 :Error; } }
struct MemoryPageResult { union { ok @0 :MemoryPage; err @1 :Error; } }
struct MemoryHitsResult { union { ok @0 :MemoryHits; err @1 :Error; } }

# ---------------------------------------------------------------------------------------------
# An agent's own calls

struct AgentScope {
  # What an agent's credential stands for: its task's running attempt, and what it may touch.
  task @0 :Text;               # full id
  attempt @1 :UInt32;
  fencing @2 :UInt64;          # the attempt's fencing token, for reportProgress and createSubtasks
  orchestration @3 :Text;      # the task's orchestration (full id); null: none
  scopes @4 :List(Text);       # the memory scopes it reads and writes: "global",
                               # "repo:<absolute path>", "orchestration:<id>"
}

struct AgentScopeResult { union { ok @0 :AgentScope; err @1 :Error; } }

# ---------------------------------------------------------------------------------------------
# Interfaces

interface Bootstrap {
  # The capability a new connection receives. It only knows how to shake hands.

  handshake @0 (protocol :UInt32, client :Text) -> (result :HandshakeResult);
  # `protocol` is the client's protocolVersion; `client` names it ("maos-cli 0.1.0").
}

struct HandshakeResult {
  union {
    ok :group {
      api @0 :Api;
      daemon @1 :DaemonInfo;
    }
    err @2 :Error;             # kind versionMismatch, with both versions in the message
  }
}

interface EventSink {
  # Implemented by a client that subscribes to events. The daemon calls `push` with batches in
  # sequence order; `push` is a stream, so the daemon never has more than a window of batches in
  # flight: a sink that stops reading stops the daemon from sending, and the daemon's memory for
  # that subscription stays bounded.

  push @0 (events :List(Event)) -> stream;
  end @1 (reason :Error);
  # The daemon ends the subscription (it is shutting down): resume with `since` = the last seq seen.
}

interface Subscription {
  # Dropping it (or calling cancel) stops the stream.
  cancel @0 ();
}

interface Api {
  # agents
  registerAgent @0 (agent :NewAgent) -> (result :AgentResult);
  drainAgent @1 (name :Text) -> (result :AgentResult);
  removeAgent @2 (name :Text) -> (result :AgentResult);
  getAgent @3 (name :Text) -> (result :AgentResult);
  listAgents @4 (filter :AgentFilter) -> (result :AgentsResult);

  # tasks
  createTask @5 (task :NewTask) -> (result :CreatedResult);
  createTasks @6 (tasks :List(NewTask)) -> (result :CreatedListResult);
  # All or none, in one transaction.
  addDependency @7 (task :Text, on :Text) -> (result :TaskResult);
  assignTask @8 (task :Text, agent :Text) -> (result :AssignmentResult);
  # `agent` null: the load balancer chooses.
  startAttempt @9 (task :Text, fencing :UInt64, pid :UInt32, checkpoint :Text, port :UInt16)
      -> (result :TaskResult);
  # `pid` 0: the caller started no process; `checkpoint`: the commit made in the task's worktree
  # before the attempt (null: none); `port`: the port it was given (0: none).
  completeAttempt @10 (task :Text, fencing :UInt64, summary :Text, report :RunReport)
      -> (result :TaskResult);
  failAttempt @11 (task :Text, fencing :UInt64, error :Text, report :RunReport)
      -> (result :TaskResult);
  cancelTask @12 (task :Text, reason :Text) -> (result :TaskResult);
  getTask @13 (task :Text) -> (result :TaskResult);
  listTasks @14 (filter :TaskFilter) -> (result :TaskPageResult);

  # orchestrations
  createOrchestration @15 (name :Text, goal :Text, spec :NewOrchestration)
      -> (result :OrchestrationResult);
  # When `spec` is set it wins and `name` and `goal` are ignored; without it (a client of
  # protocol 2's shape) the orchestration has `name` and `goal` and no repository.
  getOrchestration @16 (id :Text) -> (result :OrchestrationResult);
  listOrchestrations @17 () -> (result :OrchestrationsResult);

  # overview
  status @18 () -> (result :StatusResult);
  readEvents @19 (after :UInt64, limit :UInt32) -> (result :EventsResult);
  subscribe @20 (since :UInt64, sink :EventSink) -> (subscription :Subscription);
  # Streams every event with seq > since, then new ones as they are committed, into `sink`.

  # the daemon itself
  daemonInfo @21 () -> (daemon :DaemonInfo);
  shutdown @22 () -> ();
  # Graceful stop: stop accepting, finish in-flight calls, flush the writer, remove the socket.

  # attempts, for whoever runs them (the daemon's own supervisor, or a worker of yours driving an
  # `external` agent)
  recordSession @23 (task :Text, fencing :UInt64, session :Text) -> (result :TaskResult);
  heartbeat @24 (beats :List(Beat)) -> (result :BeatsResult);
  # Renews the leases (10 s by default) of live attempts; answers the beats that were refused
  # because their attempt is no longer current: stop those.
  readLog @25 (request :LogRequest) -> (result :LogChunkResult);

  # workspaces and approvals (docs/ipc.md, "Approvals and workspaces")
  recordWorkspace @26 (task :Text, fencing :UInt64, workspace :TaskWorkspace)
      -> (result :TaskResult);
  # The worktree the attempt holding `fencing` works in (whoever prepared it records it).
  requestApproval @27 (task :Text, fencing :UInt64, tool :Text, subject :Text)
      -> (result :TaskResult);
  # The running attempt holding `fencing` asks a person about a tool call (`subject` null:
  # none); the answer appears as the task's `decision` (gate tool) once a person decides.
  approve @28 (task :Text) -> (result :TaskResult);
  # Approves what the task waits for (its `pending` gate). `task` is a reference.
  reject @29 (task :Text, reason :Text, cancel :Bool) -> (result :TaskResult);
  # Rejects what the task waits for; a rejected result goes back to the agent with `reason`,
  # or with `cancel` the task ends.
  approvals @30 () -> (result :TasksResult);
  # Every task waiting for a person's decision, oldest request first.
  diffSummary @31 (task :Text) -> (result :TextResult);
  # One line summing up what the task's branch changed.
  taskDiff @32 (task :Text, attempt :UInt32, stat :Bool) -> (result :TextResult);
  # The diff of attempt `attempt` (between its checkpoints), or with 0 of the whole task (from
  # its base); `stat`: a diffstat instead of the patch.
  rollback @33 (task :Text, toAttempt :UInt32) -> (result :TaskResult);
  # Returns the task's branch to the checkpoint attempt `toAttempt` ended in, or with 0 to the
  # one before its newest attempt.
  gc @34 (request :GcRequest) -> (result :GcResult);
  # Removes the worktrees of finished tasks (never a dirty or unmerged one without `force`).
  mergeOrchestration @35 (id :Text, into :Text) -> (result :MergeResult);
  # Merges the orchestration's integration branch into `into` (null: the branch its tasks
  # started from), refusing a dirty target.

  # orchestrations at work (docs/orchestrations.md)
  createPlan @36 (plan :NewPlan) -> (result :PlanResult);
  # The orchestration and every task of the plan, in one transaction.
  startOrchestration @37 (id :Text) -> (result :OrchestrationResult);
  pauseOrchestration @38 (id :Text, now :Bool) -> (result :OrchestrationResult);
  # Stops giving its tasks agents; with `now`, also stops its running attempts and requeues them.
  resumeOrchestration @39 (id :Text) -> (result :OrchestrationResult);
  cancelOrchestration @40 (id :Text, reason :Text) -> (result :OrchestrationResult);
  retryTask @41 (task :Text, attempts :UInt32) -> (result :TaskResult);
  # A person gives a blocked or failed task `attempts` more attempts (0 counts as 1).
  taskWaiting @42 (task :Text) -> (result :WaitingResult);
  # What the task waits for (empty: nothing).
  taskBriefing @43 (task :Text, attempt :UInt32) -> (result :BriefingResult);
  # The briefing of attempt `attempt` (0: the newest).
  resumeAgent @44 (name :Text) -> (result :AgentResult);
  # A drained agent takes work again.
  orchestrationReport @45 (id :Text) -> (result :OrchestrationReportResult);
  # Where the orchestration stands: counts, cost, what needs a person, whether it can move.
  approvalRequests @46 () -> (result :ApprovalRequestsResult);
  # Every task waiting for a person's decision, oldest request first, with what its branch
  # changed (approvals @30 without the changes).

  # planning (docs/ipc.md, "Planning")
  planGoal @47 (goal :PlanGoalRequest) -> (result :PlanningResult);
  # A draft orchestration and its planning task, which a planner takes; its answer, once it
  # passes the plan checks, is version 1 of the plan.
  planHistory @48 (id :Text) -> (result :PlanHistoryResult);
  # The orchestration's plan: every version, and what happened to them.
  proposePlan @49 (id :Text, text :Text) -> (result :OrchestrationResult);
  # A person's version of the plan: the text of a plan file, checked as a planner's is.
  regeneratePlan @50 (id :Text, feedback :Text) -> (result :PlanningResult);
  # Asks a planner for another version, with the person's feedback on the newest.
  approvePlan @51 (id :Text, version :UInt32) -> (result :PlanResult);
  # Approves version `version` (0: the newest, which it must be): its tasks are created and the
  # orchestration starts.
  rejectPlan @52 (id :Text, reason :Text) -> (result :OrchestrationResult);
  # Rejects the plan (`reason` null: none): before it runs, the orchestration is cancelled,
  # with its planner; a revision of a running plan is set aside and the plan runs on.
  revisePlan @53 (id :Text, feedback :Text) -> (result :PlanningResult);
  discussGoal @54 (goal :PlanGoalRequest) -> (result :TaskResult);
  metrics @55 (since :Int64) -> (result :MetricsResult);

  serveUi @56 (request :UiRequest) -> (result :UiResult);
  # Serves the web dashboard (docs/dashboard.md); when it already does, says where.
  # The work done since `since` (ms since the epoch; 0: since the first event): throughput, the
  # first-attempt pass rate, time to green, a person's decisions, usage, each agent's attempts.
  # Talks a goal over with the planner before planning: a task whose every answer waits for the
  # person (reject with a reply: the next turn; approve: agreed). `rounds` counts the turns.
  # Asks the planner for a revision of the plan at work (`feedback` null: none): the work not
  # done yet, given what completed and why blocked tasks failed.

  addMemory @57 (memory :NewMemory) -> (result :MemoryResult);
  # Adds a memory entry (an ephemeral one expires after the daemon's configured time).
  getMemory @58 (id :Text) -> (result :MemoryResult);
  listMemories @59 (filter :MemoryFilter, limit :UInt32, cursor :Text)
      -> (result :MemoryPageResult);
  # One page of entries, newest first; `cursor` (null: the first page) is the previous page's
  # nextCursor.
  searchMemories @60 (query :Text, filter :MemoryFilter, limit :UInt32)
      -> (result :MemoryHitsResult);
  # The entries with the query's words (letters and digits; anything else separates words and
  # is never syntax), pinned first, then by relevance weighed by tier.
  pinMemory @61 (id :Text) -> (result :MemoryResult);
  unpinMemory @62 (id :Text) -> (result :MemoryResult);
  forgetMemory @63 (id :Text, reason :Text) -> (result :MemoryResult);
  # `reason` null: none given.

  # an agent's own calls (its tools), with the credential its attempt was given
  # (docs/ipc.md, "An agent's own calls")
  authenticateAgent @64 (credential :Text) -> (result :AgentScopeResult);
  # The attempt `credential` stands for, while it is its task's current one and runs; an error
  # of kind denied for a credential no running attempt holds, or whose attempt no longer runs.
  # The credential is a secret: the daemon never logs it nor puts it in an error.
  reportProgress @65 (task :Text, fencing :UInt64, note :Text) -> (result :TaskResult);
  # The running attempt holding `fencing` says how it is getting on (`note`: 1 to 2000
  # characters): a task.progress_reported event, and a line in its log.
  createSubtasks @66 (task :Text, fencing :UInt64, tasks :List(PlanTask), waits :Bool)
      -> (result :CreatedListResult);
  # The running attempt holding `fencing` splits off subtasks, keyed and depending on each other
  # as in a plan (at most 16 per task over its life, 3 levels deep), in the task's orchestration
  # and repository; `waits`: the task may not complete before they all have. All or none.
}
