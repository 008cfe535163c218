"""Cached Debian root filesystems, built once per release with debootstrap.

An image is built into ``<name>.tmp`` and renamed into place only when complete, with a stamp
holding the recipe's digest: an interrupted build leaves nothing that looks usable, and a changed
recipe rebuilds the image on the next ``up``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path

from pgstack_lab.system import Runner

log = logging.getLogger(__name__)

MIRROR = "http://deb.debian.org/debian"
SECURITY_MIRROR = "http://deb.debian.org/debian-security"
PACKAGES = (
    "systemd",
    "systemd-sysv",
    "dbus",
    "python3",
    "python3-apt",
    "openssh-server",
    "sudo",
    "iproute2",
    "ca-certificates",
)
# apt timers would take the apt lock in the middle of a converge: a lab host never runs them.
MASKED_UNITS = ("apt-daily.timer", "apt-daily-upgrade.timer", "e2scrub_reap.service")
RECIPE_VERSION = 1


def recipe(release: str) -> dict[str, object]:
    return {
        "version": RECIPE_VERSION,
        "release": release,
        "packages": list(PACKAGES),
        "masked": list(MASKED_UNITS),
        "mirror": MIRROR,
    }


def recipe_digest(release: str) -> str:
    blob = json.dumps(recipe(release), sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()


def sources_list(release: str) -> str:
    return (
        f"deb {MIRROR} {release} main\n"
        f"deb {MIRROR} {release}-updates main\n"
        f"deb {SECURITY_MIRROR} {release}-security main\n"
    )


class Images:
    def __init__(self, root: Path, runner: Runner) -> None:
        self.root = root
        self.runner = runner

    def path(self, release: str) -> Path:
        return self.root / release

    def _stamp(self, release: str) -> Path:
        return self.root / f"{release}.stamp"

    def is_current(self, release: str) -> bool:
        stamp = self._stamp(release)
        return (
            self.path(release).is_dir()
            and stamp.is_file()
            and stamp.read_text().strip() == recipe_digest(release)
        )

    def ensure(self, release: str) -> Path:
        if self.is_current(release):
            return self.path(release)
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / f"{release}.tmp"
        if tmp.exists():
            log.info("removing an unfinished image build at %s", tmp)
            shutil.rmtree(tmp)
        log.info("building the %s image with debootstrap (about a minute)", release)
        self.runner.run(
            [
                "debootstrap",
                "--variant=minbase",
                f"--include={','.join(PACKAGES)}",
                release,
                str(tmp),
                MIRROR,
            ]
        )
        self._customise(tmp, release)
        final = self.path(release)
        self._stamp(release).unlink(missing_ok=True)
        if final.exists():
            shutil.rmtree(final)
        tmp.rename(final)
        self._stamp(release).write_text(recipe_digest(release) + "\n")
        return final

    @staticmethod
    def _customise(rootfs: Path, release: str) -> None:
        (rootfs / "etc/apt/sources.list").write_text(sources_list(release))
        (rootfs / "etc/apt/apt.conf.d/90pgstack-lab").write_text(
            "// Lab hosts share one package archive: keep what was downloaded.\n"
            'APT::Keep-Downloaded-Packages "true";\n'
            'Binary::apt::APT::Keep-Downloaded-Packages "true";\n'
        )
        (rootfs / "etc/default/locale").write_text("LANG=C.UTF-8\n")
        units = rootfs / "etc/systemd/system"
        for unit in MASKED_UNITS:
            link = units / unit
            link.unlink(missing_ok=True)
            link.symlink_to("/dev/null")
        wants = units / "multi-user.target.wants/e2scrub_reap.service"
        wants.unlink(missing_ok=True)
        # Every machine gets its own host keys and machine id when it is made.
        for key in (rootfs / "etc/ssh").glob("ssh_host_*"):
            key.unlink()
        (rootfs / "etc/machine-id").write_text("")
        dbus_id = rootfs / "var/lib/dbus/machine-id"
        if dbus_id.is_symlink() or dbus_id.exists():
            dbus_id.unlink()
