// A real MCP client for the tests: the official TypeScript SDK's `Client`, over stdio (it starts
// `$MCP_COMMAND` with the JSON array `$MCP_ARGS`, passing this process's environment) or over
// Streamable HTTP (`$MCP_URL`, with `Authorization: Bearer $MCP_TOKEN`). It runs the steps in
// the JSON file given first and writes what came back, as JSON, to the file given second (or to
// stdout for `-`).
//
// A step is one of:
//   {"list_tools": true}
//   {"list_resources": true}
//   {"read_resource": "<uri>"}
//   {"tool": "<name>", "arguments": {...}}      "$created" in an argument list stands for the
//                                                ids of the subtasks the last create_subtasks made
//   {"wait_for_created": <rounds>}                wait_for_tasks on those ids until they are done
//
// Needs NODE_PATH to hold the SDK (.ci/run installs it in target/agent-clis/node_modules).
'use strict';

const fs = require('fs');
const { Client } = require('@modelcontextprotocol/sdk/client/index.js');
const { StdioClientTransport } = require('@modelcontextprotocol/sdk/client/stdio.js');
const {
  StreamableHTTPClientTransport,
} = require('@modelcontextprotocol/sdk/client/streamableHttp.js');

function message(e) {
  return String((e && e.message) || e);
}

function transport() {
  if (process.env.MCP_URL) {
    const headers = {};
    if (process.env.MCP_TOKEN) headers.Authorization = `Bearer ${process.env.MCP_TOKEN}`;
    return new StreamableHTTPClientTransport(new URL(process.env.MCP_URL), {
      requestInit: { headers },
    });
  }
  const env = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
  return new StdioClientTransport({
    command: process.env.MCP_COMMAND,
    args: JSON.parse(process.env.MCP_ARGS || '[]'),
    env,
    stderr: 'inherit',
  });
}

function substitute(value, created) {
  if (value === '$created') return created;
  if (Array.isArray(value)) return value.map((v) => substitute(v, created));
  if (value && typeof value === 'object') {
    const out = {};
    for (const [k, v] of Object.entries(value)) out[k] = substitute(v, created);
    return out;
  }
  return value;
}

async function call(client, name, args) {
  const r = await client.callTool({ name, arguments: args });
  return { tool: name, isError: Boolean(r.isError), structuredContent: r.structuredContent ?? null };
}

async function run(steps) {
  const client = new Client({ name: 'maos-tests', version: '1.0.0' });
  try {
    await client.connect(transport());
  } catch (e) {
    return [{ connect_error: message(e) }];
  }
  const results = [{ server: client.getServerVersion() }];
  let created = [];
  for (const step of steps) {
    try {
      if (step.list_tools) {
        const r = await client.listTools();
        results.push({ tools: r.tools.map((t) => ({ name: t.name, inputSchema: t.inputSchema })) });
      } else if (step.list_resources) {
        const r = await client.listResources();
        results.push({ resources: r.resources.map((x) => x.uri) });
      } else if (step.read_resource) {
        const r = await client.readResource({ uri: step.read_resource });
        results.push({ contents: r.contents });
      } else if (step.wait_for_created) {
        let last = null;
        for (let i = 0; i < step.wait_for_created; i += 1) {
          last = await call(client, 'wait_for_tasks', { tasks: created, timeout_seconds: 20 });
          if (last.isError || (last.structuredContent && last.structuredContent.done)) break;
        }
        results.push(last);
      } else {
        const r = await call(client, step.tool, substitute(step.arguments || {}, created));
        if (step.tool === 'create_subtasks' && r.structuredContent && r.structuredContent.tasks) {
          created = r.structuredContent.tasks.map((t) => t.task);
        }
        results.push(r);
      }
    } catch (e) {
      results.push({ tool: step.tool, protocol_error: message(e) });
    }
  }
  await client.close();
  return results;
}

async function main() {
  const steps = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
  const results = await run(steps);
  const text = JSON.stringify(results, null, 1);
  if (process.argv[3] === '-' || !process.argv[3]) process.stdout.write(text + '\n');
  else fs.writeFileSync(process.argv[3], text);
}

main().catch((e) => {
  process.stderr.write(`mcp client: ${message(e)}\n`);
  process.exit(1);
});
