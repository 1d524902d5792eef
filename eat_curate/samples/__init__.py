"""Photos to try, train and benchmark eat-curate on.

- ``generated``: drawn landscapes with visible defects, no download (``eat-curate samples``);
- ``debian_wallpapers``: real camera photographs from Debian's wallpaper packages, fetched with apt-get.
"""

from eat_curate.samples.generated import DEFECTS, landscape, sample_paths, with_defect, write_sample_photos

__all__ = ["DEFECTS", "landscape", "sample_paths", "with_defect", "write_sample_photos"]
