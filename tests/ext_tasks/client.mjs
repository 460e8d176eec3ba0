// The TypeScript Tasks client (@modelcontextprotocol/ext-tasks, on @modelcontextprotocol/client) against our
// server: `node client.mjs <target> <scenario> [answer]`; prints one JSON line of what it saw. The target is a
// Streamable HTTP URL, or a JSON array `[command, ...args]` that starts the server over stdio.
// Scenarios: "generate" (a chat turn that generates), "question" (the agent's question answered through the
// task, with the answer given in argv[4]), "cancel" (an export's render cancelled through tasks/cancel once the
// task's status says it is rendering).
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";
import { StdioClientTransport } from "@modelcontextprotocol/client/stdio";
import { createTaskSessionFromClient } from "@modelcontextprotocol/ext-tasks/client";

const [target, scenario, answer] = process.argv.slice(2);
const PROTOCOL = "2026-07-28";
const clientInfo = { name: "ext-tasks-test", version: "0" };
const overStdio = target.startsWith("[");

// Task requests travel as raw JSON-RPC (the package's V2 wire shapes, framed by the package itself): over HTTP as
// POSTs with the headers a 2026-07-28 Streamable HTTP request carries, over stdio on the client's own pipe.
async function httpDispatch(request) {
  const headers = { "content-type": "application/json", accept: "application/json, text/event-stream",
                    "mcp-protocol-version": PROTOCOL, "mcp-method": request.method };
  if (request.method === "tools/call") headers["mcp-name"] = request.params.name;
  const response = await fetch(target, {
    method: "POST",
    headers,
    body: JSON.stringify({ jsonrpc: "2.0", id: Math.floor(Math.random() * 1e9), ...request }),
  });
  const text = await response.text();
  const body = response.headers.get("content-type")?.startsWith("text/event-stream")
    ? JSON.parse(text.split("\n").filter((line) => line.startsWith("data:")).map((line) => line.slice(5)).pop())
    : JSON.parse(text);
  return answered(body);
}

function answered(body) {
  return body.error ? { kind: "error", error: body.error } : { kind: "result", result: body.result };
}

let transport;
const waitingOnPipe = new Map();
let rawNumber = 0;

async function stdioDispatch(request) {
  const id = `raw-${++rawNumber}`;
  const reply = new Promise((resolve) => waitingOnPipe.set(id, resolve));
  await transport.send({ jsonrpc: "2.0", id, ...request });
  return answered(await reply);
}

function takeRawReplies() {
  // Replies to raw requests are ours; everything else goes to the Client as before.
  const clients = transport.onmessage;
  transport.onmessage = (message, extra) => {
    const resolve = waitingOnPipe.get(message.id);
    if (resolve && !message.method) {
      waitingOnPipe.delete(message.id);
      resolve(message);
    } else {
      clients(message, extra);
    }
  };
}

const client = new Client(clientInfo, { capabilities: {}, versionNegotiation: { mode: { pin: PROTOCOL } } });
if (overStdio) {
  const [command, ...args] = JSON.parse(target);
  transport = new StdioClientTransport({ command, args, env: process.env, stderr: "inherit" });
} else {
  transport = new StreamableHTTPClientTransport(new URL(target));
}
await client.connect(transport);
if (overStdio) takeRawReplies();
const asked = [];
const session = createTaskSessionFromClient(client, {
  endpointId: "nemovideo-test",
  rawDispatch: overStdio ? stdioDispatch : httpDispatch,
  v2RequestFraming: { protocolVersion: PROTOCOL, clientInfo, clientCapabilities: { extensions: {} } },
  onInputRequest: async (request) => {
    asked.push(request.params.message);
    return { action: "accept", content: { answer } };
  },
});
const seen = { era: client.getProtocolEra(), asked };
try {
  if (scenario === "cancel") {
    await session.callTool("chat", { message: "create a video with visuals synced to this music track" })
      .then((execution) => execution.settle());
    const execution = await session.callTool("export", {});
    seen.kind = execution.kind;
    seen.taskId = execution.handle?.taskId;
    for await (const event of execution.updates()) {  // until the task says the render is under way
      if (event.type === "task" && event.task.statusMessage?.includes("Rendering")) break;
    }
    await execution.cancel();
    const { outcome } = await execution.settle();
    seen.status = outcome.status;
  } else {
    const message = scenario === "question" ? "hello there" : "create a video with visuals synced to this music track";
    const execution = await session.callTool("chat", { message });
    seen.kind = execution.kind;
    seen.taskId = execution.handle?.taskId;
    const { outcome } = await execution.settle();
    seen.status = outcome.status;
    seen.result = outcome.result?.structuredContent;
  }
} finally {
  await session.close();
  await client.close();
}
console.log(JSON.stringify(seen));
