"""`models import` of a damaged or foreign file: one line saying so, and nothing added to the store."""

from __future__ import annotations

import io
import os
import struct
from pathlib import Path

import pytest
import torch
from safetensors.torch import save as save_safetensors



def safetensors_bytes() -> bytes:
    return save_safetensors({"weight": torch.zeros(64, 64)})


def torch_bytes() -> bytes:
    buffer = io.BytesIO()
    torch.save({"weight": torch.zeros(64, 64)}, buffer)
    return buffer.getvalue()


def header_only(data: bytes) -> bytes:
    """A valid safetensors header whose tensor data is missing."""
    (length,) = struct.unpack("<Q", data[:8])
    return data[: 8 + length]


CASES = {
    "random.safetensors": (lambda: os.urandom(5), "header too small"),
    "cut.safetensors": (lambda: safetensors_bytes()[:-100], "incomplete metadata, file not fully covered"),
    "no_data.safetensors": (lambda: header_only(safetensors_bytes()), "incomplete metadata, file not fully covered"),
    "random.pth": (lambda: b"\x13\x37" + os.urandom(30), "neither a zip archive nor a pickle"),
    "text.pth": (lambda: b"model weights, honest\n" * 4, "neither a zip archive nor a pickle"),
    "cut.pth": (lambda: torch_bytes()[: len(torch_bytes()) // 2], "as a PyTorch checkpoint"),
    # To the safe loader, a garbled pickle and one with objects it does not allow look alike.
    "garbled_pickle.pth": (lambda: b"\x80\x02" + b"\xe0" * 20, "a pickle payload (Python objects"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_damaged_weights_file_is_refused_in_one_line(name: str, run, tmp_path: Path) -> None:
    make, detail = CASES[name]
    path = tmp_path / name
    path.write_bytes(make())

    result = run("models", "import", str(path), "--preset", "tiny", "--name", "broken", expect_ok=False)

    assert result.exit_code == 2
    assert result.output.startswith("Error: ") and result.output.count("\n") == 1, result.output
    assert name in result.output and "damaged" in result.output and detail in result.output
    assert "broken" not in run("models", "list").output
