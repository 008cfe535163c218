"""What pgstack's Python tools share: exit codes and error classes, signal handling, durable file
writes and the dump manifest's definition. Deployed inside every tool's zip (roles/python_tool);
the exporter reads the files the tools write by their documented formats, never through this
package's writers."""
