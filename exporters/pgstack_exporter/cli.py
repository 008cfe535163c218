"""pgstack-exporter: the command line (Prometheus-style flags)."""

from __future__ import annotations

import argparse
import gc
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from pgstack_common.errors import ExitCode
from pgstack_exporter import __version__
from pgstack_exporter.collectors import DEFAULT_ON, REGISTRY
from pgstack_exporter.config import ConfigError, load
from pgstack_exporter.exporter import COLLECTORS, Exporter
from pgstack_exporter.server import make_server, parse_listen_address
from pgstack_exporter.web import WebConfigFile

log = logging.getLogger(__name__)

DEFAULT_PORT = 9716
DEFAULT_CONFIG = Path("/etc/pgstack/exporter.yml")
LOG_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "error": logging.ERROR,
}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="pgstack-exporter",
        description="Prometheus exporter and /health endpoint of a pgstack host (docs/exporter.md)",
    )
    p.add_argument(
        "--web.listen-address",
        dest="listen",
        default=f":{DEFAULT_PORT}",
        help=f"address to serve /metrics and /health on (default :{DEFAULT_PORT})",
    )
    p.add_argument(
        "--config.file",
        dest="config",
        type=Path,
        default=DEFAULT_CONFIG,
        help=f"configuration file (default {DEFAULT_CONFIG})",
    )
    p.add_argument(
        "--web.config.file",
        dest="web_config",
        type=Path,
        default=None,
        help="web configuration file (Prometheus exporter-toolkit's format): TLS and basic"
        " authentication (default none: plain HTTP, no authentication)",
    )
    p.add_argument(
        "--check-config",
        action="store_true",
        help="check the configuration file (and the web configuration file), list every problem"
        " and exit (0 valid, 1 not)",
    )
    p.add_argument("--log.level", dest="log_level", choices=sorted(LOG_LEVELS), default="info")
    p.add_argument("--version", action="version", version=f"pgstack-exporter {__version__}")
    for name in COLLECTORS:
        parts = [spec.name for spec in REGISTRY if spec.part_of == name]
        what = f"the {name} collectors ({', '.join(parts)})" if parts else f"the {name} collector"
        default = name in DEFAULT_ON
        p.add_argument(
            f"--collector.{name}",
            dest=f"collector_{name}",
            default=default,
            action=argparse.BooleanOptionalAction,
            help=f"{what} (default {'on' if default else 'off'})",
        )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = parser().parse_args(sys.argv[1:] if argv is None else argv)
    except SystemExit as exit_:
        return int(exit_.code or 0) if exit_.code in (0, None) else ExitCode.USAGE
    logging.basicConfig(
        level=LOG_LEVELS[args.log_level],
        stream=sys.stderr,
        format="%(levelname)s %(name)s: %(message)s",
    )
    config = web = None
    try:
        config = load(args.config)
    except ConfigError as error:
        _report(args.config, error)
    if args.web_config is not None:
        try:
            web = WebConfigFile(args.web_config)
        except ConfigError as error:
            _report(args.web_config, error)
    if config is None or (args.web_config is not None and web is None):
        return ExitCode.VERIFICATION_FAILED
    if args.check_config:
        print(f"{args.config}: valid")
        if web is not None:
            print(f"{web.path}: valid")
        return ExitCode.OK
    try:
        host, port = parse_listen_address(args.listen)
    except ValueError as error:
        print(f"--web.listen-address: {error}", file=sys.stderr)
        return ExitCode.USAGE
    enabled = [name for name in COLLECTORS if getattr(args, f"collector_{name}")]
    return serve(Exporter(config, enabled), host, port, web)


def _report(path: Path, error: ConfigError) -> None:
    for problem in error.problems:
        print(problem, file=sys.stderr)
    print(f"{path}: {len(error.problems)} problem(s)", file=sys.stderr)


def serve(exporter: Exporter, host: str, port: int, web: WebConfigFile | None = None) -> int:
    try:
        server = make_server(exporter, exporter.registry(), host, port, web)
    except OSError as error:
        log.error("cannot listen on %s:%d: %s", host, port, error.strerror)
        exporter.close()
        return ExitCode.PRECONDITION
    stop = threading.Event()

    def shutdown(_signum: int, _frame: object) -> None:
        stop.set()
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    # What exists now (modules, configuration, targets) lives as long as the process: frozen,
    # it is left out of the cyclic collector's full passes, which the tens of thousands of
    # short-lived objects of a large cluster's scrape trigger (about half its GC time).
    gc.freeze()
    exporter.start_health()
    log.info(
        "pgstack-exporter %s listening on %s:%d (%d targets)",
        __version__,
        host or "*",
        port,
        len(exporter.targets),
    )
    if web is not None:
        log.info("web configuration %s: %s", web.path, web.current().describe())
    try:
        server.serve_forever()
    finally:
        server.server_close()
        exporter.close()
    return ExitCode.OK
