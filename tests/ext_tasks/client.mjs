// The TypeScript Tasks client (@modelcontextprotocol/ext-tasks, on @modelcontextprotocol/client) against our
// server over Streamable HTTP: `node client.mjs <mcp url> <scenario>`; prints one JSON line of what it saw.
// Scenarios: "generate" (a chat turn that generates), "question" (the agent's question answered through the
// task, with the answer given in argv[4]), "cancel" (an export's render cancelled through tasks/cancel once the
// task's status says it is rendering).
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";
import { createTaskSessionFromClient } from "@modelcontextprotocol/ext-tasks/client";

const [url, scenario, answer] = process.argv.slice(2);
const PROTOCOL = "2026-07-28";
const clientInfo = { name: "ext-tasks-test", version: "0" };

// Task requests travel as raw JSON-RPC (the package's V2 wire shapes, framed by the package itself), with the
// headers a 2026-07-28 Streamable HTTP request carries.
async function rawDispatch(request) {
  const headers = { "content-type": "application/json", accept: "application/json, text/event-stream",
                    "mcp-protocol-version": PROTOCOL, "mcp-method": request.method };
  if (request.method === "tools/call") headers["mcp-name"] = request.params.name;
  const response = await fetch(url, {
    method: "POST",
    headers,
    body: JSON.stringify({ jsonrpc: "2.0", id: Math.floor(Math.random() * 1e9), ...request }),
  });
  const text = await response.text();
  const body = response.headers.get("content-type")?.startsWith("text/event-stream")
    ? JSON.parse(text.split("\n").filter((line) => line.startsWith("data:")).map((line) => line.slice(5)).pop())
    : JSON.parse(text);
  return body.error ? { kind: "error", error: body.error } : { kind: "result", result: body.result };
}

const client = new Client(clientInfo, { capabilities: {}, versionNegotiation: { mode: { pin: PROTOCOL } } });
await client.connect(new StreamableHTTPClientTransport(new URL(url)));
const asked = [];
const session = createTaskSessionFromClient(client, {
  endpointId: "nemovideo-test",
  rawDispatch,
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
