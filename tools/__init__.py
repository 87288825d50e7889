"""Developer tools (benchmark, load test, screenshots, browser toolkit), never imported by core or dashboard."""
