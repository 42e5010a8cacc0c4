"""The benchmarks behind `mgw bench ...`: each prints figures against a baseline of the same run."""
