"""The HTTP endpoints beside `/mcp`: health and readiness for the operator's orchestrator, and, hosted, the
links a user's browser opens (no access token there: the signed link says whose it is).

Like the tools, they only adapt: what they serve comes from the user's `VideoService`.
"""

from __future__ import annotations

import html
import json
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from urllib.parse import unquote
from typing import TYPE_CHECKING

from mcp.server.mcpserver import MCPServer
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse

from .errors import NemoError
from .logs import get_logger
from .media import dropped_name
from .settings import Settings
from .users import UserContext

if TYPE_CHECKING:
    from .registry import ServiceRegistry
    from .store import Store

log = get_logger("pages")

CHUNK_BYTES = 1024 * 1024
PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>body{{font:16px/1.5 system-ui,sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem}}</style>
</head><body><main><h1>{title}</h1><p>{sentence}</p></main></body></html>
"""


# The upload page: plain HTML with its script inline, no build. Each file is checked here first (the server checks
# again), then sent as the request's body with its name in a header, so the server streams it on as it arrives.
UPLOAD_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Add your media</title>
<style>
body{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem}
#zone{display:block;border:2px dashed #888;border-radius:.75rem;padding:2.5rem 1rem;text-align:center;cursor:pointer}
#zone.over{border-color:#2563eb;background:#eff6ff}
#zone:focus-within{outline:3px solid #2563eb;outline-offset:2px}
#picker{position:absolute;width:1px;height:1px;opacity:0}
li{margin:.75rem 0;list-style:none}progress{width:100%}.refused{color:#b91c1c}.arrived{color:#15803d}
</style></head><body><main>
<h1>Add your media</h1>
<p>Accepted: {formats}; up to {max_size} each. The files go to your project on NemoVideo; come back to the
conversation when they have arrived.</p>
<label id="zone" for="picker">Drop files here, or press Enter to choose them
<input id="picker" type="file" multiple></label>
<ul id="files" aria-live="polite"></ul>
</main><script>
const FORMATS = {formats_json}, MAX_BYTES = {max_bytes}, ALIASES = {jpeg: "jpg"};
const zone = document.getElementById("zone"), picker = document.getElementById("picker");
const list = document.getElementById("files");
function size(bytes) {
  const units = ["bytes", "KB", "MB", "GB"]; let unit = 0;
  while (bytes >= 1024 && unit < 3) { bytes /= 1024; unit++; }
  return unit ? bytes.toFixed(1) + " " + units[unit] : bytes + " bytes";
}
function refusal(file) {
  const dot = file.name.lastIndexOf("."), raw = dot > 0 ? file.name.slice(dot + 1).toLowerCase() : "";
  const extension = ALIASES[raw] || raw;
  if (!FORMATS.includes(extension))
    return file.name + ": NemoVideo does not accept " + (raw ? "." + raw : "files without an extension") +
      " files. Accepted formats: " + FORMATS.join(", ") + ".";
  if (file.size > MAX_BYTES) return file.name + " is " + size(file.size) + ", over the " + size(MAX_BYTES) + " limit.";
  if (file.size === 0) return file.name + " is empty (0 bytes).";
  return null;
}
function send(file) {
  const item = document.createElement("li"), label = document.createElement("span");
  label.id = "label-" + list.children.length; label.textContent = file.name;
  item.append(label); list.append(item);
  const refused = refusal(file);
  if (refused) { item.className = "refused"; label.textContent = refused; return; }
  const bar = document.createElement("progress");
  bar.max = file.size; bar.value = 0; bar.setAttribute("aria-labelledby", label.id); item.append(bar);
  const request = new XMLHttpRequest();
  request.open("POST", location.href);
  request.setRequestHeader("X-File-Name", encodeURIComponent(file.name));
  request.upload.onprogress = (event) => { bar.value = event.loaded; };
  request.onload = () => {
    let answer; try { answer = JSON.parse(request.responseText); } catch (error) { answer = {}; }
    if (answer.ok) bar.value = bar.max; else bar.remove();
    item.className = answer.ok ? "arrived" : "refused";
    label.textContent = answer.sentence || (file.name + " could not be sent (HTTP " + request.status + "). Drop it again.");
  };
  request.onerror = () => { bar.remove(); item.className = "refused";
    label.textContent = file.name + " could not be sent: the connection broke. Drop it again."; };
  request.send(file);
}
picker.addEventListener("change", () => { [...picker.files].forEach(send); picker.value = ""; });
zone.addEventListener("dragover", (event) => { event.preventDefault(); zone.classList.add("over"); });
zone.addEventListener("dragleave", () => zone.classList.remove("over"));
zone.addEventListener("drop", (event) => {
  event.preventDefault(); zone.classList.remove("over"); [...event.dataTransfer.files].forEach(send);
});
</script></body></html>
"""


# The account page: the token goes in a form's body (never a URL), over the page's own signed link.
ACCOUNT_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Your NemoVideo account</title>
<style>body{{font:16px/1.5 system-ui,sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem}}
input{{font:inherit;width:100%;padding:.5rem;box-sizing:border-box}}button{{font:inherit;padding:.5rem 1rem;margin:.75rem 0}}
.said{{padding:.75rem;border-radius:.5rem;background:#f1f5f9}}</style>
</head><body><main><h1>Your NemoVideo account</h1>
{said}
<p>Create a token at nemovideo.com (Settings → API Tokens) and paste it here: this server then uses your
account and its credits for you. It is checked with NemoVideo and kept encrypted.</p>
<form method="post"><label for="token">NemoVideo token</label>
<input id="token" name="token" type="password" autocomplete="off" required>
<button name="action" value="link">Use my account</button></form>
<form method="post"><button name="action" value="forget">Forget my linked account</button></form>
</main></body></html>
"""


def page(title: str, sentence: str, status: int) -> HTMLResponse:
    return HTMLResponse(PAGE.format(title=html.escape(title), sentence=html.escape(sentence)), status_code=status)


def add_routes(server: MCPServer, settings: Settings, registry: Callable[[], ServiceRegistry],
               store: Callable[[], Store]) -> None:
    @server.custom_route("/healthz", methods=["GET"])
    async def alive(_: Request) -> Response:
        return JSONResponse({"status": "alive"})

    @server.custom_route("/readyz", methods=["GET"])
    async def ready(_: Request) -> Response:
        """Ready when the store answers: a load balancer sends no user to a replica without its database. Anyone
        may ask, so the reason (which names the database's host) goes to the log, not into the answer."""
        try:
            await store().ping()
        except NemoError as error:
            log.warning("Not ready: %s", error.message)
            return JSONResponse({"status": "unavailable"}, status_code=503)
        return JSONResponse({"status": "ready"})

    if not settings.hosted:
        return
    from .links import LinkClaims, LinkExpired, Links
    from .upload import human_size

    assert settings.secret_key is not None and settings.public_url is not None  # cli.check_hosted
    links = Links(settings.secret_key.get_secret_value(), settings.public_url)

    def opened_link(request: Request, purpose: str, again: str) -> LinkClaims | HTMLResponse:
        """The link's claims, or the page that says it no longer works and what to do (`again`)."""
        try:
            claims = links.read(request.path_params["token"], purpose)
        except LinkExpired:
            return page("This link has expired", again, 410)
        return claims if claims is not None else page(
            "This link does not work", f"It is not a link of this server, or it was cut short when it was copied. "
            f"{again}", 404)

    @server.custom_route("/download/{token}", methods=["GET"])
    async def download(request: Request) -> Response:
        """The rendered video, streamed from NemoVideo by whichever replica the browser reaches."""
        claims = opened_link(request, "download", "Ask for the video again (export): a finished video is not "
                             "rendered again, and the answer carries a new link.")
        if not isinstance(claims, LinkClaims):
            return claims
        opened = AsyncExitStack()
        try:
            service = await opened.enter_async_context(registry().using(UserContext(claims.sub)))
            record = await service.exporter.registry.get(claims.subject)
            if record is None or record.status not in ("completed", "delivered"):
                await opened.aclose()
                return page("This video is no longer here", "Ask for the video again (export) to render it anew.", 404)
            upstream = await opened.enter_async_context(service.exporter.open_render(record))
        except NemoError as error:
            await opened.aclose()
            return page("The video cannot be downloaded now", error.message, 502)

        async def body() -> AsyncIterator[bytes]:
            async with opened:
                async for chunk in upstream.aiter_raw(CHUNK_BYTES):
                    yield chunk

        headers = {"Content-Disposition": f'attachment; filename="nemovideo-{record.render_id}.mp4"'}
        if upstream.headers.get("content-length"):
            headers["Content-Length"] = upstream.headers["content-length"]
        return StreamingResponse(body(), media_type="video/mp4", headers=headers)

    def upload_claims(request: Request) -> LinkClaims | HTMLResponse:
        return opened_link(request, "upload", "Ask for the upload again in the conversation: the answer carries "
                           "a new page.")

    def account_claims(request: Request) -> LinkClaims | HTMLResponse:
        return opened_link(request, "link", "Ask for your credits again in the conversation: the answer carries "
                           "a new link to this page.")

    def account_page(said: str = "", status: int = 200) -> HTMLResponse:
        shown = f'<p class="said" role="status">{html.escape(said)}</p>' if said else ""
        return HTMLResponse(ACCOUNT_PAGE.format(said=shown), status_code=status)

    @server.custom_route("/link/{token}", methods=["GET"])
    async def account(request: Request) -> Response:
        claims = account_claims(request)
        return claims if not isinstance(claims, LinkClaims) else account_page()

    @server.custom_route("/link/{token}", methods=["POST"])
    async def account_change(request: Request) -> Response:
        claims = account_claims(request)
        if not isinstance(claims, LinkClaims):
            return claims
        form = await request.form()
        async with registry().using(UserContext(claims.sub)) as service:
            if form.get("action") == "forget":
                forgotten = await service.forget_account()
                return account_page("Your account is no longer used here: you are back on a free anonymous token."
                                    if forgotten else "No account was linked.")
            try:
                linked = await service.link_account(str(form.get("token") or ""))
            except NemoError as error:
                return account_page(error.message, 422)
        return account_page(f"{linked.summary} Go back to the conversation and carry on.")

    @server.custom_route("/upload/{token}", methods=["GET"])
    async def upload_page(request: Request) -> Response:
        claims = upload_claims(request)
        if not isinstance(claims, LinkClaims):
            return claims
        async with registry().using(UserContext(claims.sub)) as service:
            limits = service.settings
        assert limits.max_upload_bytes is not None
        return HTMLResponse(UPLOAD_PAGE.replace("{formats_json}", json.dumps(list(limits.accepted_formats)))
                            .replace("{formats}", html.escape(", ".join(limits.accepted_formats)))
                            .replace("{max_bytes}", str(limits.max_upload_bytes))
                            .replace("{max_size}", html.escape(human_size(limits.max_upload_bytes))))

    @server.custom_route("/upload/{token}", methods=["POST"])
    async def upload_file(request: Request) -> Response:
        """One dropped file, its bytes passed on to NemoVideo as they arrive."""
        claims = upload_claims(request)
        if not isinstance(claims, LinkClaims):
            return JSONResponse({"ok": False, "sentence": "This upload page no longer works: ask for the upload "
                                 "again in the conversation."}, status_code=claims.status_code)
        name = dropped_name(unquote(request.headers.get("x-file-name", "")))
        try:
            size = int(request.headers["content-length"])
            if size < 0:
                raise ValueError(size)
        except (KeyError, ValueError):
            return JSONResponse({"ok": False, "sentence": "The browser did not say how large the file is. Drop it "
                                 "again, or use another browser."}, status_code=411)
        if not name:
            return JSONResponse({"ok": False, "sentence": "The file came without its name. Drop it again."},
                                status_code=400)
        try:
            async with registry().using(UserContext(claims.sub)) as service:
                item = await service.upload_dropped(claims.subject, name, size, request.stream())
        except NemoError as error:
            return JSONResponse({"ok": False, "sentence": error.message}, status_code=422)
        return JSONResponse({"ok": True, "sentence": f"{item.name} arrived ({human_size(size)})."})
