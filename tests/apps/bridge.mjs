// The host side of MCP Apps for the browser tests: the official AppBridge, bundled by esbuild into one script.
import { AppBridge, PostMessageTransport } from "@modelcontextprotocol/ext-apps/app-bridge";

window.AppBridge = AppBridge;
window.PostMessageTransport = PostMessageTransport;
