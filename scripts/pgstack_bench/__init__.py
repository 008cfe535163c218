"""pgstack-bench: pgstack measured side by side with what users would pick instead, on the lab."""
