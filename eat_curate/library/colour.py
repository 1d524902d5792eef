"""Whether a picture has colour, read from its file: how a duplicate group tells an original from its grey copy.

The scores do not record colour (the model sees RGB either way), and file
size alone misleads: a greyscale PNG, or a grey copy saved at a higher
quality, is larger than its colour JPEG. So the few members of a group whose
rank depends on it are looked at: the picture decoded small (a JPEG at
reduced scale, a RAW from its preview; ``io.decode.open_image``), and called
greyscale when its channels agree everywhere but for compression noise,
whatever mode the file stores (an "RGB" JPEG of a grey picture is grey).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

from eat_curate.io.decode import DecodeError, open_image
from eat_curate.sinks.sql.prune import is_local_file_row

LOOK_SIDE = 64  # pixels, longer side: colour shows at any size
# Mean spread between a pixel's strongest and weakest channel (0..255) below which a picture is grey:
# JPEG noise on a grey picture stays around 1; the greyest colour photographs are far above 3.
GREY_SPREAD = 3.0
MAX_BYTES = 512 << 20  # as score's --max-bytes: a bigger file is not read for a tie-break


def is_greyscale(path: str) -> bool | None:
    """True for a picture without colour, False for one with it; None when the file cannot be looked at.

    None (a URL, a manifest's embedded image, a missing, huge or undecodable
    file) ranks as colour: what cannot be checked is not held against it.
    """
    if not is_local_file_row(path):
        return None
    try:
        if os.path.getsize(path) > MAX_BYTES:
            return None
        image = open_image(Path(path).read_bytes(), min_size=LOOK_SIDE, name=os.path.basename(path))
    except (OSError, DecodeError, Image.DecompressionBombError):
        return None
    image.thumbnail((LOOK_SIDE, LOOK_SIDE), Image.Resampling.BILINEAR)
    pixels = np.asarray(image, dtype=np.int16)
    spread = pixels.max(axis=2) - pixels.min(axis=2)
    return float(spread.mean()) < GREY_SPREAD
