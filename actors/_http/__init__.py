"""The node's HTTP surface: ingress and admin API, web console, metrics (private package;
`actors serve` and the `actors` command line use it)."""
