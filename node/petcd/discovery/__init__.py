"""How a new member finds its initial cluster: a v2 discovery URL (`v2url`) or DNS SRV records (`srv`)."""
