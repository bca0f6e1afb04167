"""The results room: the SQLite store of benchmark runs, latency statistics and comparisons."""
