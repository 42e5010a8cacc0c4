"""Developer tools: sample catalogs, throw-away databases and the benchmarks behind `mgw bench`."""
