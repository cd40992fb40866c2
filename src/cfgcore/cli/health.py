"""``cfgcore health``: is this configuration live and ready?

Loads the configuration (and opens its flag store) as a service would, then prints the
same report as ``manager.health()`` and the ``/health/ready`` probe: each check with
``ok``, ``warn`` or ``fail``. Exit status 0 when ready, 1 when not (a configuration
that does not load, a store that cannot be followed). ``--json`` prints the probe's
JSON body. ``--url`` asks a running service's readiness probe instead.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

__all__ = ["register"]


def register(subparsers: Any) -> None:
    """Add the ``health`` subcommand."""
    from cfgcore.cli.config import _common, positive_seconds

    p = subparsers.add_parser(
        "health",
        help="load the configuration and report liveness and readiness (exit 1: not ready)",
        description="Load the configuration and its flags, then print the health report.",
    )
    _common(p)
    p.add_argument(
        "--max-staleness",
        type=positive_seconds,
        metavar="SECONDS",
        help="how long followed inputs may go unconfirmed (default: "
        "health_monitoring.max_staleness, else 60)",
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument(
        "--url",
        metavar="URL",
        type=_probe_url,
        help="ask a running service instead: GET this readiness probe URL "
        "(http://HOST:PORT/health/ready) and print its report",
    )
    p.set_defaults(func=_cmd_health)


def _probe_url(raw: str) -> str:
    """``--url``: an http(s) URL with a host ('localhost:8080/health/ready' was 'unknown
    url type', exit 1): anything else is a usage error (exit 2)."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(raw)
    except ValueError:
        parts = None
    if parts is None or parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        from cfgcore.runtime.redaction import redact_text

        # argparse prints this line itself, past the CLI's masking of error lines: a
        # store URL given here by mistake (redis://:PASSWORD@cache) showed its password.
        raise argparse.ArgumentTypeError(
            f"{redact_text(repr(raw))}: expected an http:// or https:// URL such as "
            "http://localhost:8080/health/ready"
        )
    return raw


def _cmd_health(args: argparse.Namespace) -> int:
    if args.url:
        return _remote(args.url, as_json=args.json)
    from cfgcore.config.manager import ConfigurationManager
    from cfgcore.errors import ConfigError
    from cfgcore.observability.health import Check, HealthReport, _first_line

    manager = ConfigurationManager(
        args.config_dir,
        profile=args.profile,
        geographic_profile=args.geographic_profile,
        record_usage=False,
    )
    manager.disable_audit()  # a probe from the command line is not the service's load
    try:
        extra: list[Check] = []
        try:
            manager.load_environment_config(args.environment)
            manager.flags  # noqa: B018 - opens the flag store, so its checks run
        except ConfigError as exc:  # the report says why (last_error), or:
            if manager.version:
                extra.append(Check("flags", "fail", _first_line(exc)))
        report = manager.health(max_staleness=args.max_staleness)
        if extra:
            report = HealthReport(report.liveness, (*report.readiness, *extra))
    finally:
        manager.close()
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(report)
    return 0 if report.ready else 1


#: A health report is a few hundred bytes; a body past this is not one.
MAX_REPORT_BYTES = 1 << 20
#: Seconds ``--url`` waits for the whole answer: each read has its own 10 s timeout,
#: but a server sending a byte every few seconds would hold the command for days.
URL_DEADLINE = 20.0


def _fetch(request: Any) -> tuple[int, bytes]:
    """(status, body) of ``request``, the body cut past MAX_REPORT_BYTES, within
    URL_DEADLINE seconds (on a daemon thread, left behind when the server trickles:
    raises TimeoutError); raises what urllib raises."""
    import threading
    import urllib.error
    import urllib.request

    result: dict[str, Any] = {}

    def run() -> None:
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - the user's URL
                result["answer"] = response.status, response.read(MAX_REPORT_BYTES + 1)
        except urllib.error.HTTPError as exc:  # 503 carries the report too
            result["answer"] = exc.code, exc.read(MAX_REPORT_BYTES + 1)
        except BaseException as exc:  # handed to the caller's thread
            result["error"] = exc

    worker = threading.Thread(target=run, name="cfgcore-health-url", daemon=True)
    worker.start()
    worker.join(URL_DEADLINE)
    if worker.is_alive():
        raise TimeoutError(f"no complete answer within {URL_DEADLINE:g} s")
    if "error" in result:
        raise result["error"]
    answer: tuple[int, bytes] = result["answer"]
    return answer


def _remote(url: str, *, as_json: bool) -> int:
    import urllib.error
    import urllib.request

    from cfgcore.cli import CommandError

    try:
        status, body = _fetch(_request(url))
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise CommandError(f"{url}: {getattr(exc, 'reason', exc)}") from None
    if len(body) > MAX_REPORT_BYTES:
        # A URL that is not a probe (a download, an endpoint that streams) was read to
        # the end, into memory, however large.
        raise CommandError(
            f"{url}: HTTP {status}, more than {MAX_REPORT_BYTES // 1024} KiB: not a cfgcore "
            "health report (is it the readiness probe's URL?)"
        )
    try:
        data = json.loads(body)
        report = _from_dict(data)
    except (ValueError, KeyError, TypeError, RecursionError):
        raise CommandError(
            f"{url}: HTTP {status}, not a cfgcore health report (is it the readiness "
            "probe's URL, such as http://HOST:PORT/health/ready?)"
        ) from None
    print(json.dumps(data, indent=2) if as_json else report, file=sys.stdout)
    # Ready by the report, not only by the status: the liveness probe's URL answers 200
    # for a process that is live but not ready, and this command exits 1 when not ready.
    return 0 if status == 200 and report.ready else 1


def _request(url: str) -> Any:
    """A GET of ``url``; ``user:password@`` in it is sent as HTTP basic authentication
    (urllib itself took ``user:password@host`` for the host's name)."""
    import base64
    import urllib.request
    from urllib.parse import unquote, urlsplit, urlunsplit

    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return urllib.request.Request(url)
    userinfo, _, host = parts.netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    token = base64.b64encode(f"{unquote(user)}:{unquote(password)}".encode()).decode()
    bare = urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
    request = urllib.request.Request(bare)
    # Not sent on to where a redirect points (another host must not get the password).
    request.add_unredirected_header("Authorization", f"Basic {token}")
    return request


def _from_dict(data: dict[str, Any]) -> Any:
    from cfgcore.observability.health import Check, HealthReport

    def checks(key: str) -> tuple[Check, ...]:
        return tuple(Check(c["name"], c["status"], c["detail"]) for c in data[key])

    return HealthReport(checks("liveness"), checks("readiness"), data["checked_at"])
