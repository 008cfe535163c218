"""pgstack-dashboards: the Grafana dashboards of pgstack, generated from code.

Runs on the controller (grafana-foundation-sdk from the dev tool chain) and writes
``dashboards/*.json``; see docs/dashboards.md.
"""
