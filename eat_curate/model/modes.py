"""The head and steering modes a model can have, by name.

Kept apart from the network (which needs torch), so a card is read and
checked, and ``models list`` answers, without loading torch.
"""

# How the head's 10 outputs become a score: a softmax over the bins, or the published checkpoints' own rule.
HEAD_MODES = ("softmax", "published")

# How a model's offsets are steered when it scores, as recorded in its card:
# "published" — the fixed rule of the published checkpoints;
# "scheduled" — trained with a SteeringSchedule, scores with its exploit rule;
# "none" — never steered.
STEERING_MODES = ("published", "scheduled", "none")
