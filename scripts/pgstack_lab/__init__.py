"""pgstack-lab: a local lab of systemd-nspawn Debian hosts for converging and testing pgstack."""
