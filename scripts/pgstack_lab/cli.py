"""pgstack-lab: bring a local lab of systemd-nspawn Debian hosts up and down.

pgstack-lab up [--release bookworm] [HOST ...] make or reuse the hosts, boot them, wait for SSH
pgstack-lab down [--all] [--kill] [HOST ...]   stop and remove hosts (the network when empty)
pgstack-lab status                              one line per host
pgstack-lab ssh HOST [COMMAND ...]              a root shell or command on a host
pgstack-lab summary                             what a converged lab offers: endpoints, env files
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from pgstack_lab.errors import ExitCode, LabError, PreconditionError, UsageError
from pgstack_lab.lab import HostStatus, Lab
from pgstack_lab.spec import DEFAULT_RELEASE, RELEASES, load_spec
from pgstack_lab.summary import render as render_summary
from pgstack_lab.system import SubprocessRunner

log = logging.getLogger(__name__)

DEFAULT_ROOT = Path("/var/lib/pgstack-lab")
# Which lab the commands mean when -i is not given: the end-to-end tests set it to run against
# another lab (inventory/lab-debian12) and every pgstack-lab call they make follows.
INVENTORY_ENV = "PGSTACK_LAB_INVENTORY"


def find_repo_root(start: Path) -> Path:
    """The nearest directory at or above start that holds ansible.cfg (the repository root)."""
    for candidate in (start, *start.parents):
        if (candidate / "ansible.cfg").is_file():
            return candidate
    raise PreconditionError(
        f"no ansible.cfg at or above {start}: run inside a pgstack checkout or pass --inventory"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pgstack-lab", description="A local lab of systemd-nspawn Debian hosts."
    )
    parser.add_argument(
        "-i",
        "--inventory",
        type=Path,
        default=Path(os.environ[INVENTORY_ENV]) if os.environ.get(INVENTORY_ENV) else None,
        help=f"lab inventory (default: ${INVENTORY_ENV}, else inventory/lab/hosts.yml of this"
        " checkout)",
    )
    parser.add_argument(
        "--root",
        type=Path,
        default=Path(os.environ.get("PGSTACK_LAB_ROOT", DEFAULT_ROOT)),
        help="machine-wide lab state: images, machines, apt archive (default: %(default)s)",
    )
    parser.add_argument(
        "--lab-dir",
        type=Path,
        help="controller-side lab state: SSH key, known_hosts, secrets, CA "
        "(default: .lab in this checkout)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log every command")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="make or reuse the hosts and wait until they boot")
    up.add_argument(
        "--release",
        choices=RELEASES,
        help=f"Debian release for every host (default: per inventory, else {DEFAULT_RELEASE})",
    )
    up.add_argument("hosts", nargs="*", help="only these hosts (default: all in the inventory)")
    down = sub.add_parser("down", help="stop and remove hosts; safe to run twice")
    down.add_argument(
        "--all",
        action="store_true",
        help="every lab machine on this machine, whatever the inventory",
    )
    down.add_argument(
        "--kill",
        action="store_true",
        help="kill the machines instead of powering them off, as hosts that lost their power",
    )
    down.add_argument("hosts", nargs="*", help="only these hosts (default: all in the inventory)")
    sub.add_parser("status", help="one line per host: address, release, state")
    sub.add_parser("summary", help="endpoints and env files of the converged lab, how to try them")
    ssh = sub.add_parser("ssh", help="run ssh as root on a host")
    ssh.add_argument("host")
    ssh.add_argument("remote", nargs=argparse.REMAINDER, help="command to run (default: a shell)")
    return parser


def print_status(rows: list[HostStatus]) -> None:
    print(f"{'HOST':<12} {'ADDRESS':<15} {'RELEASE':<10} {'STATE':<8} PID")
    for row in rows:
        pid = str(row.pid) if row.pid else "-"
        print(f"{row.name:<12} {row.address:<15} {row.release:<10} {row.state:<8} {pid}")


def run(args: argparse.Namespace) -> ExitCode:
    if args.inventory is None or args.lab_dir is None:
        repo_root = find_repo_root(Path.cwd())
    inventory = (args.inventory or repo_root / "inventory/lab/hosts.yml").resolve()
    lab_dir = (args.lab_dir or repo_root / ".lab").resolve()
    release = getattr(args, "release", None)
    spec = load_spec(inventory, release)
    lab = Lab(args.root, lab_dir, SubprocessRunner())
    if args.command == "down" and args.all and args.hosts:
        raise UsageError("down: give either --all or host names, not both")
    if args.command == "ssh":
        host = spec.host(args.host)
        argv = [
            *lab.ssh_base(),
            "-t" if sys.stdin.isatty() else "-T",
            f"root@{host.address}",
            *args.remote,
        ]
        os.execvp(argv[0], argv)
    if args.command == "status":
        print_status(lab.status(spec))
        return ExitCode.OK
    if args.command == "summary":
        print(render_summary(inventory))
        return ExitCode.OK
    if os.geteuid() != 0:
        raise PreconditionError("pgstack-lab up/down needs root (network namespaces, nspawn)")
    if args.command == "up":
        print_status(lab.up(spec, spec.select(args.hosts)))
    elif args.command == "down":
        lab.down(spec, None if args.all else spec.select(args.hosts), kill=args.kill)
        if not args.all:
            print_status(lab.status(spec))
    return ExitCode.OK


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="pgstack-lab: %(message)s",
        stream=sys.stderr,
    )
    try:
        return int(run(args))
    except LabError as exc:
        log.error("%s", exc)
        return int(exc.exit_code)
    except OSError as exc:
        log.error("unexpected system error: %s", exc)
        return int(ExitCode.UNEXPECTED)
    except KeyboardInterrupt:
        log.error("interrupted: run `pgstack-lab up` again to finish or `down` to clean up")
        return int(ExitCode.UNEXPECTED)
