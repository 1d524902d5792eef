"""eat-curate: batch photo curation with EAT aesthetics scores."""

__version__ = "0.1.0"
