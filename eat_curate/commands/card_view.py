"""A model card as text for `models info`: its facts whole, then nested sections cut to a readable depth.

A card's ``metrics`` and ``extra`` can hold hundreds of values (the built-in
model's held-out figures per defect and per photo); printed whole they make
one unreadable line. Here a nested section is indented, sections deeper than
:data:`DEPTH` are summarised by their keys, long lists by their length, long
text by its first words, and floats keep four significant digits.
``models info --json`` prints the card whole.
"""

from __future__ import annotations

import json

DEPTH = 3  # levels of nested sections shown in full (metrics > held_out_defects > stability)
TEXT_AT_MOST = 160  # characters of one text value
LIST_AT_MOST = 8  # items of a list shown inline
FIRST = ("model_id", "name", "preset", "input_size", "head_mode", "steering_mode", "trained", "scope",
         "training_data", "source", "license", "created", "weights_dtype", "sha256", "card_format")
ONE_LINE = ("architecture", "steering_schedule")  # short and read as a whole


def card_lines(card: dict, model_id: str) -> list[str]:
    """The lines `models info` prints for ``card`` (``ModelCard.to_dict()``): its facts whole, then its sections."""
    card = {"model_id": model_id, **card}
    sections = sorted((key for key, value in card.items() if isinstance(value, dict) and value and key not in ONE_LINE),
                      key=lambda key: (key != "metrics", key))  # the figures before the rest
    facts = [key for key in (*FIRST, *ONE_LINE) if key in card and key not in sections]
    facts += sorted(key for key in card if key not in facts and key not in sections)
    width = max(len(key) for key in facts)
    lines = []
    for key in facts:
        value = card[key]
        shown = str(value) if isinstance(value, str) else json.dumps(value, separators=(", ", ": "))
        lines.append(f"{key.ljust(width)}  {shown}")
    for key in sections:
        lines.append(key)
        lines += _section(card[key], depth=1)
    return lines


def _section(section: dict, depth: int) -> list[str]:
    indent = "  " * depth
    lines = []
    for key in sorted(section, key=str):
        value = section[key]
        if isinstance(value, dict) and value:
            if depth < DEPTH:
                lines.append(f"{indent}{key}")
                lines += _section(value, depth + 1)
            else:
                names = ", ".join(map(str, list(value)[:LIST_AT_MOST]))
                more = ", ..." if len(value) > LIST_AT_MOST else ""
                entries = "1 entry" if len(value) == 1 else f"{len(value)} entries"
                lines.append(f"{indent}{key}: {{{entries}: {names}{more}}}")
        else:
            lines.append(f"{indent}{key}: {_scalar(value)}")
    return lines


def _scalar(value: object) -> str:
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        if len(value) <= LIST_AT_MOST and all(isinstance(item, (str, int, float)) for item in value):
            return ", ".join(_scalar(item) for item in value) or "[]"
        return f"[{len(value)} items]"
    if isinstance(value, dict):
        return "{}"
    text = str(value)
    if len(text) > TEXT_AT_MOST:
        return text[:TEXT_AT_MOST].rsplit(" ", 1)[0] + f" ... ({len(text):,} characters)"
    return text.replace("\n", " ")
