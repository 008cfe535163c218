#!/usr/bin/env bash
# The layers of `make test`, each one a Makefile target, timed, in three phases of two lanes:
#
#   phase 1:  lint unit alerts integration   beside   lab-lifecycle lab
#   phase 2:  e2e                            beside   molecule lab-debian12 e2e-debian12
#                                                     lab-ha e2e-ha-steady
#   phase 3:  e2e-ha-failover                beside   test-upgrade
#
# test-upgrade runs docs/runbooks/upgrade-to-debian13.md, from the Debian 12 lab to the lab; lab-ha
# brings up the HA layout's lab (inventory/lab-ha), whose end-to-end tests run in two parts: those
# of the steady cluster (e2e-ha-steady), and the failovers with the converge that follows them
# (e2e-ha-failover, marker `failover`), the longest layer after e2e.
#
# The lab is Debian 13; the Debian 12 lab (the same deployment on other addresses) comes up once
# the molecule scenarios are done, and runs the end-to-end tests whose behaviour differs by release.
# The second lane of phase 2 carries what does not need the lab, so that it ends about when the
# end-to-end tests do; the upgrade waits for phase 3, since it moves data onto the lab.
#
# A lane runs its layers in order and stops at its first failure; a phase ends when both of its
# lanes have, and phase 2 runs only when phase 1 passed. Phase 2 waits for `make lab` because the
# molecule scenarios' hosts use the lab's CA and lab-lifecycle takes every lab machine down. The
# lanes spend much of their time waiting on lab hosts (boots, SSH round trips, the alerts' `for`
# windows), so side by side they take little more than the longer one alone (docs/testing.md).
# The first lane of a phase prints as it goes; the second one's output follows when it ends. The
# lab is torn down at the end, whatever happened.
set -uo pipefail
cd "$(dirname "$0")/.."

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
: >"$work/report"
: >"$work/all.log"
started=$(date +%s)

# lane LAYER...: the layers in order, each timed; its line goes into the report as it ends (both
# lanes append to one file, a line per write).
lane() {
    local layer began result elapsed
    for layer in "$@"; do
        began=$(date +%s)
        echo "== layer ${layer%-tests} started" >&3
        if make --no-print-directory "$layer"; then result=passed; else result=FAILED; fi
        elapsed=$(($(date +%s) - began))
        # `lab` and `e2e-tests` make up `make e2e`; the report names them apart.
        printf '  %-14s %-6s %4d s\n' "${layer%-tests}" "$result" "$elapsed" >>"$work/report"
        echo "== layer ${layer%-tests} $result in $elapsed s" >&3
        [ "$result" = passed ] || return 1
    done
}

# phase "LAYERS OF THE FIRST LANE" "LAYERS OF THE SECOND LANE"
phase() {
    local status=0 second
    # shellcheck disable=SC2086  # the layer lists are words
    lane $2 >"$work/second.log" 2>&1 &
    second=$!
    # shellcheck disable=SC2086
    lane $1 > >(tee -a "$work/all.log") 2>&1 || status=1
    wait "$second" || status=1
    echo "== output of: $2"
    tee -a "$work/all.log" <"$work/second.log"
    return $status
}

exec 3>&1
status=0
phase "lint unit alerts integration" "lab-lifecycle lab" || status=1
if [ $status -eq 0 ]; then
    # Two scenarios at a time beside the end-to-end tests, then the Debian 12 lab's tests and the
    # HA lab's steady ones: the second lane ends about when the end-to-end tests do.
    MOLECULE_JOBS=2 phase "e2e-tests" \
        "molecule lab-debian12 e2e-debian12-tests lab-ha e2e-ha-steady-tests" || status=1
fi
if [ $status -eq 0 ]; then
    # The lab is through its tests: the upgrade runbook moves the Debian 12 lab's data to it,
    # which nothing else uses any more; beside it, the HA layout's failovers.
    phase "e2e-ha-failover-tests" "test-upgrade" || status=1
fi
# The machines are thrown away: killed, not powered off (a database host's PostgreSQL would wait
# at shutdown on WAL archiving to its backup host, going down with it; docs/lab.md).
make --no-print-directory lab-down KILL=1 || status=1

elapsed=$(($(date +%s) - started))
# A failure's details scroll far up: its summary lines (pytest's `-rfE`, ansible's "fatal:") are
# repeated here, above the report.
if [ $status -ne 0 ]; then
    echo "pgstack test suite failures:"
    grep -aE '^(FAILED|ERROR) |^fatal: |^(E   |>) .{0,200}$' "$work/all.log" | cut -c1-300 | tail -n 80
fi
echo "pgstack test suite layers:"
cat "$work/report"
printf 'pgstack test suite: %s after %dm%02ds\n' \
    "$([ $status -eq 0 ] && echo passed || echo FAILED)" $((elapsed / 60)) $((elapsed % 60))
exit $status
