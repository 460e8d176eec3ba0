// A test host: shows a view's HTML in a sandboxed frame under the policy hosts build from the resource's
// `_meta.ui.csp` (the restrictive default, widened only by the domains it declares: media only as data: and from
// resourceDomains, network only to connectDomains), connects the official AppBridge to it, and forwards the view's
// calls to the real server through the functions the test exposes (window.callServerTool, window.readServerResource).
window.hostView = async (html, toolResult, csp = {}) => {
  const resources = (csp.resourceDomains ?? []).join(" ");
  const connect = (csp.connectDomains ?? []).join(" ") || "'none'";
  const policy = `default-src 'none'; script-src 'unsafe-inline' ${resources}; style-src 'unsafe-inline' ${resources}; ` +
    `img-src data: ${resources}; media-src data: ${resources}; font-src ${resources || "'none'"}; connect-src ${connect}`;
  const frame = document.createElement("iframe");
  frame.setAttribute("sandbox", "allow-scripts");
  frame.title = "MCP App view";
  frame.style.cssText = "width: 720px; height: 560px; border: 1px solid #ccc;";
  frame.srcdoc = html.replace("<head>", `<head><meta http-equiv="Content-Security-Policy" content="${policy}">`);
  document.body.appendChild(frame);
  await new Promise((resolve) => frame.addEventListener("load", resolve, { once: true }));
  const bridge = new AppBridge(null, { name: "nemovideo-test-host", version: "1" },
                               { openLinks: {}, serverTools: {}, serverResources: {} });
  bridge.oncalltool = (params) => window.callServerTool(params);
  bridge.onreadresource = (params) => window.readServerResource(params);
  const initialized = new Promise((resolve) => { bridge.oninitialized = resolve; });
  await bridge.connect(new PostMessageTransport(frame.contentWindow, frame.contentWindow));
  await initialized;
  await bridge.sendToolResult(toolResult);
};
