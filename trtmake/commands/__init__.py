"""One module per command that is not a build: status, gc and clean, merge-timing-cache, explain, show, cache."""
