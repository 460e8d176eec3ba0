"""Entry points: `nemovideo-mcp` and `python -m nemovideo_mcp`.

    nemovideo-mcp                       MCP server over stdio (what hosts start)
    nemovideo-mcp --skill-dir DIR       ... speaking for the skill folder DIR (its SKILL.md)
    nemovideo-mcp --transport http      streamable HTTP on 127.0.0.1
    nemovideo-mcp --sandbox             against an embedded offline sandbox backend
    nemovideo-mcp sandbox --port N      the sandbox backend alone
    nemovideo-mcp demo                  a scripted walk-through on the sandbox
    nemovideo-mcp pack VARIANT DIR      a complete skill folder for one published variant
    nemovideo-mcp login                 save a NemoVideo account token (read from a prompt or stdin)
    nemovideo-mcp logout                forget it and go back to a free anonymous token
"""

from __future__ import annotations

import argparse
import ipaddress
import socket
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import ConfigurationError
from .identity import SkillIdentity, find_skill_md, load_identity
from .logs import configure_logging, get_logger, register_secret
from .settings import Settings

if TYPE_CHECKING:
    from mcp.server.transport_security import TransportSecuritySettings

log = get_logger("cli")


def load_startup(settings: Settings, skill_dir: Path | None = None) -> SkillIdentity:
    """The identity of `--skill-dir`, else NEMO_SKILL_DIR, else the folder we run or were installed from."""
    skill_md = find_skill_md(skill_dir or settings.skill_dir)
    return load_identity(skill_md, skill_source=settings.skill_source, home=Path.home())


def parse_serve_args(argv: Sequence[str]) -> argparse.Namespace:
    # The module's own list of commands is the help's: one text for both.
    commands = "\n".join(line for line in (__doc__ or "").splitlines() if line.startswith("    nemovideo-mcp"))
    parser = argparse.ArgumentParser(prog="nemovideo-mcp", description="NemoVideo MCP server.",
                                     epilog=f"commands (each takes --help):\n{commands}",
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skill-dir", type=Path, metavar="DIR",
                        help="the skill folder whose SKILL.md names this server (default: NEMO_SKILL_DIR, "
                        "else the folder it runs or was installed from)")
    parser.add_argument("--transport", choices=("stdio", "http"), default="stdio")
    parser.add_argument("--host", default="127.0.0.1", help="HTTP transport only; a loopback address unless "
                        "--allow-network-without-auth")
    parser.add_argument("--port", type=int, default=8765, help="HTTP transport only")
    parser.add_argument("--allow-network-without-auth", action="store_true",
                        help="HTTP transport only: listen on a non-loopback --host although the server has no "
                        "authentication (anyone who reaches it acts as you)")
    parser.add_argument("--sandbox", action="store_true", help="use an embedded offline sandbox backend")
    parser.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    return parser.parse_args(argv)


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve to any interface
        return False


def http_security(host: str, allow_network: bool) -> TransportSecuritySettings:
    """Which Host and Origin headers the HTTP transport accepts (`host` as uvicorn takes it, no brackets): a page
    in the user's browser that rebinds its own name to this address (DNS rebinding) sends a Host and Origin of
    its own and is refused; the names and addresses of this machine are served.

    Off loopback the transport has no authentication: anyone who reaches it could upload the user's files, spend
    their credits and create folders, so that needs the explicit flag.
    """
    if not is_loopback(host) and not allow_network:
        raise ConfigurationError(
            f"Refusing to listen on {host}: without NEMO_AUTH_ISSUER the HTTP transport has no authentication, so "
            "anyone who can reach that address could upload your files, spend your credits and write into your "
            "folders. Keep the default 127.0.0.1; to serve others, set NEMO_AUTH_ISSUER (README, \"Hosting it for "
            "others\"); on a network you trust, --allow-network-without-auth."
        )
    from mcp.server.transport_security import TransportSecuritySettings  # the SDK: only when serving

    names = {"127.0.0.1", "localhost", "::1", host}
    if not is_loopback(host):
        log.warning("Listening on %s without authentication: anyone who can reach it uses NemoVideo as you", host)
        names |= machine_names()
    names -= {"0.0.0.0", "::"}  # where it listens, never what a client asks for
    shown = sorted(f"[{name}]" if ":" in name else name for name in names)
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=[f"{name}:*" for name in shown],
        allowed_origins=[f"http://{name}:*" for name in shown],
    )


def check_hosted(settings: Settings, transport: str) -> None:
    """What a hosted deployment cannot start without, each with the sentence that says what to set."""
    from .sealing import MIN_SECRET_KEY_CHARS

    if transport != "http":
        raise ConfigurationError("NEMO_AUTH_ISSUER is set, so this is a hosted server: start it with "
                                 "--transport http (users reach it by URL, not through a host's stdio).")
    if not settings.public_url or not settings.public_url.startswith(("https://", "http://")):
        raise ConfigurationError("Set NEMO_PUBLIC_URL to the address users reach this server at (for example "
                                 "https://video.example.com): its /mcp is the resource the access tokens are issued for.")
    if settings.secret_key is None or len(settings.secret_key.get_secret_value()) < MIN_SECRET_KEY_CHARS:
        raise ConfigurationError(
            f"Set NEMO_SECRET_KEY to a random string of at least {MIN_SECRET_KEY_CHARS} characters, the same on every "
            "replica (it seals the NemoVideo tokens kept for users): python -c 'import secrets; "
            "print(secrets.token_urlsafe(32))'")


def hosted_security() -> TransportSecuritySettings:
    """No Host or Origin check: every request carries an access token the issuer signed for this server's URL,
    which a page that rebinds a name to this address has not got, and the address behind a proxy is the
    operator's to choose."""
    from mcp.server.transport_security import TransportSecuritySettings

    return TransportSecuritySettings(enable_dns_rebinding_protection=False)


def machine_names() -> set[str]:
    """The names and addresses this machine answers to, as far as its own resolver knows them."""
    names = {socket.gethostname(), socket.getfqdn()}
    for name in list(names):
        try:
            names |= {str(info[4][0]) for info in socket.getaddrinfo(name, None)}
        except OSError:  # a name the resolver does not know
            pass
    # The address outgoing traffic uses, which the resolver may not list (connecting a UDP socket sends nothing).
    for family, probe in ((socket.AF_INET, "192.0.2.1"), (socket.AF_INET6, "2001:db8::1")):
        try:
            with socket.socket(family, socket.SOCK_DGRAM) as udp:
                udp.connect((probe, 9))
                names.add(str(udp.getsockname()[0]))
        except OSError:  # no route of that family
            pass
    return {name.split("%")[0] for name in names if name}


def serve(argv: Sequence[str]) -> int:
    args = parse_serve_args(argv)
    args.host = args.host.strip("[]")  # "[::1]" as written in a URL is "::1" to bind
    settings = Settings.from_env()
    if settings.hosted:
        check_hosted(settings, args.transport)
        security = hosted_security()
    else:
        security = http_security(args.host, args.allow_network_without_auth) if args.transport == "http" else None
    if settings.database_url is not None:
        register_secret(settings.database_url.get_secret_value())
    identity = load_startup(settings, args.skill_dir)
    sandbox = None
    scratch = None
    if args.sandbox:
        from .sandbox import Sandbox, SandboxServer  # only sandbox runs pay for its import

        sandbox = SandboxServer(Sandbox()).__enter__()
        # Sandbox tokens, sessions and renders mean nothing to the real backend: they live in a
        # throwaway folder, never beside the user's real ones.
        scratch = tempfile.TemporaryDirectory(prefix="nemovideo-sandbox-")
        # A real token must not travel to the sandbox, and the sandbox would reject it anyway.
        settings = settings.with_api_url(sandbox.url).model_copy(update={
            "token": None,
            "config_dir": Path(scratch.name) / "config",
            "state_dir": Path(scratch.name) / "state",
        })
        log.info("Using the embedded sandbox backend at %s", sandbox.url)

    from .tools import build_server

    server = build_server(settings, identity, args.log_level)
    configure_logging(args.log_level)
    log.info("Starting as %s %s (platform %s)", identity.name, identity.version, identity.platform)
    try:
        if args.transport == "http":
            # Hosted: no session lives in a replica, so a load balancer may send each request to any of them.
            server.run("streamable-http", host=args.host, port=args.port, transport_security=security,
                       stateless_http=settings.hosted)
        else:
            server.run()
    finally:
        if sandbox is not None:
            sandbox.stop()
        if scratch is not None:
            scratch.cleanup()
    return 0


def login(argv: Sequence[str]) -> int:
    """Check an account token with one request, then keep it (0600) for every server on this machine."""
    argparse.ArgumentParser(prog="nemovideo-mcp login", description=(
        "Save a NemoVideo account token (nemovideo.com, Settings → API Tokens) so the skill can export. "
        "Reads it from a prompt, or from standard input when piped. NEMO_TOKEN, when set, still wins."
    )).parse_args(argv)
    if sys.stdin.isatty():
        import getpass

        token = getpass.getpass("NemoVideo account token: ").strip()
    else:
        token = sys.stdin.readline().strip()
    if not token:
        print("nemovideo-mcp: no token given; nothing was saved.", file=sys.stderr)
        return 1
    settings = Settings.from_env()
    identity = load_startup(settings)
    import anyio
    from pydantic import SecretStr

    from .auth import AccountTokenFile
    from .client import NemoClient
    from .errors import NemoError, TokenRejected

    register_secret(token)

    async def check() -> float:
        async with NemoClient(settings.model_copy(update={"token": SecretStr(token)}), identity) as client:
            return (await client.credits()).available

    try:
        available = anyio.run(check)
    except TokenRejected:
        print("nemovideo-mcp: NemoVideo did not accept this token, so it was not saved. Copy the whole token "
              "again from nemovideo.com (Settings → API Tokens) and retry.", file=sys.stderr)
        return 1
    except NemoError as error:
        print(f"nemovideo-mcp: the token was not saved. {error}", file=sys.stderr)
        return 1
    AccountTokenFile(settings).save(token)
    note = " (NEMO_TOKEN is set and still takes precedence)" if settings.token else ""
    print(f"Logged in: {available:g} credits available. Every NemoVideo server on this computer now uses this "
          f"account{note}.", file=sys.stderr)
    return 0


def logout(argv: Sequence[str]) -> int:
    argparse.ArgumentParser(prog="nemovideo-mcp logout",
                            description="Forget the saved account token.").parse_args(argv)
    from .auth import AccountTokenFile

    removed = AccountTokenFile(Settings.from_env()).remove()
    print("Logged out: the skill uses a free anonymous token again." if removed else "No saved account token.",
          file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    configure_logging()
    try:
        if argv[:1] == ["sandbox"]:
            from .sandbox import main as sandbox_main

            return sandbox_main(argv[1:])
        if argv[:1] == ["demo"]:
            from .demo import main as demo_main

            return demo_main(argv[1:])
        if argv[:1] == ["login"]:
            return login(argv[1:])
        if argv[:1] == ["logout"]:
            return logout(argv[1:])
        if argv[:1] == ["pack"]:
            from .pack import main as pack_main

            return pack_main(argv[1:])
        return serve(argv)
    except ConfigurationError as error:
        print(f"nemovideo-mcp: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
