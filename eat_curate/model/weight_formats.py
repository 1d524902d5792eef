"""The kinds of weight file ``eat-curate models import`` reads.

A module of its own, so the command line can offer the choice without importing torch.
"""

# auto: told apart by their keys; published-eat: the EAT authors' AVA/TAD66K checkpoints;
# dat-imagenet: DAT's ImageNet weights, a starting point for training.
FORMATS = ("auto", "published-eat", "dat-imagenet")
