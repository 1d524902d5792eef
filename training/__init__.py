"""Training and evaluation of EAT."""
