"""fastcelery's benchmarks: `bash bench/run.sh [--quick]` (see docs/benchmarks.md)."""
