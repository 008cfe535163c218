"""pgstack-screenshots: the pictures of docs/images, made again from the code.

Runs on the controller with Debian's headless Chromium: a restore drill report as pgstack-drill
renders it, and the panel layout of dashboards drawn from their JSON (a layout, not Grafana).
"""
