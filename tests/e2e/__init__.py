"""End-to-end tests: real processes, real SQLite files, real SIGKILLs."""
