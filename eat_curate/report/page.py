"""The report page: plain HTML and inline SVG, every image a data: URI, no script.

A Content-Security-Policy forbids every fetch (images only from data:
URIs), so opening the file never touches the network.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from html import escape
from pathlib import Path

from eat_curate.io.whole_files import written_whole
from eat_curate.report.charts import distribution_svg, histogram_svg
from eat_curate.report.data import AlbumSection, ReportData
from eat_curate.report.thumbnails import PLACEHOLDER_URI, Thumbnail
from eat_curate.library.dupes import DuplicateGroup
from eat_curate.library.queries import SelectedImage
from eat_curate.sinks.faults import cannot_write

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 0 2em 3em; color: #222; background: #fafafa; }
h1 { margin-bottom: 0.2em; } h2 { margin-top: 2em; border-bottom: 1px solid #ccc; }
.note { color: #666; } .warn { color: #a33; font-weight: 600; }
nav a { margin-right: 1em; }
table { border-collapse: collapse; margin: 0.5em 0; }
td, th { padding: 2px 8px; text-align: left; border-bottom: 1px solid #e4e4e4; vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.grid { display: flex; flex-wrap: wrap; gap: 10px; }
figure.tile { margin: 0; width: 164px; background: #fff; border: 1px solid #ddd; padding: 2px; }
figure.tile.best { border: 2px solid #2a8a2a; }
figure.tile img { display: block; margin: 0 auto; max-width: 160px; max-height: 160px; }
figcaption { font-size: 12px; padding: 2px; }
.score { font-weight: 700; } .path { color: #777; font-size: 11px; overflow-wrap: anywhere; }
.group { margin-bottom: 1em; }
"""


def _album_name(album: str | None) -> str:
    return "(no album)" if album is None else album


def _tile(image: SelectedImage, thumbnail: Thumbnail | None, best: bool = False, note: str = "") -> str:
    thumb = thumbnail or Thumbnail(PLACEHOLDER_URI, 160, 120, "no thumbnail")
    name = os.path.basename(image.path) or image.path
    problem = f'<div class="warn">{escape(thumb.problem)}</div>' if thumb.problem else ""
    return (
        f'<figure class="tile{" best" if best else ""}" data-image-id="{escape(image.image_id)}">'
        f'<img src="{thumb.uri}" width="{thumb.width}" height="{thumb.height}" alt="{escape(name)}" '
        f'title="{escape(image.path)}">'
        f'<figcaption><span class="score">{image.mean:.2f}</span> ± {image.std:.2f} · #{image.rank}'
        f"{escape(note)}<br>{distribution_svg(image.probabilities)}"
        f'<div class="path">{escape(_album_name(image.album))} / {escape(name)}</div>{problem}</figcaption></figure>'
    )


def _grid(images: Iterable[SelectedImage], data: ReportData) -> str:
    tiles = "".join(_tile(image, data.thumbnails.get(image.image_id)) for image in images)
    return f'<div class="grid">{tiles}</div>'


def _table(header: list[str], rows: list[list[str]], numeric: set[int] = frozenset()) -> str:
    head = "".join(f"<th>{escape(title)}</th>" for title in header)
    def cells(row: list[str]) -> str:
        return "".join(f'<td{" class=num" if i in numeric else ""}>{cell}</td>' for i, cell in enumerate(row))

    body = "".join(f"<tr>{cells(row)}</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _overview(data: ReportData) -> str:
    rows = [
        [
            f'<a href="#album-{index}">{escape(_album_name(section.name))}</a>',
            str(section.stats.images),
            f"{section.stats.mean:.2f}",
            f"{section.stats.median:.2f}",
            f"{section.stats.top10_mean:.2f}",
            f"{section.stats.share_above:.0%}",
            f"{section.stats.best_score:.2f}",
        ]
        for index, section in enumerate(data.albums)
    ]
    threshold = data.albums[0].stats.threshold if data.albums else 5.0
    return _table(
        ["album", "images", "mean", "median", "top-10 mean", f"share ≥ {threshold:g}", "best"],
        rows,
        numeric={1, 2, 3, 4, 5, 6},
    )


def _album(index: int, section: AlbumSection, data: ReportData) -> str:
    name = _album_name(section.name)
    shown = len(section.images)
    count = section.stats.images
    if section.chosen is not None:  # a selection kept part of the album
        more = f" ({section.chosen} chosen" + (f", showing the best {shown}" if shown < section.chosen else "") + ")"
    else:
        more = f" (showing the best {shown} of {count})" if shown < count else ""
    return (
        f'<section class="album" id="album-{index}"><h2>{escape(name)}</h2>'
        f'<p class="note">{count} images{escape(more)}; mean {section.stats.mean:.2f}, median '
        f"{section.stats.median:.2f}, best {section.stats.best_score:.2f}</p>"
        f"{histogram_svg(section.means, f'scores in {name}')}{_grid(section.images, data)}</section>"
    )


def _duplicates(groups: list[DuplicateGroup], data: ReportData) -> str:
    if not groups:
        return '<p class="note">No near-duplicates found.</p>'
    parts = []
    for group in groups:
        tiles = "".join(
            _tile(
                member.image,
                data.thumbnails.get(member.image.image_id),
                best=index == 0,
                note=" · best" if index == 0 else (f" · {member.distance} bits" if member.distance is not None else ""),
            )
            for index, member in enumerate(data.shown_members(group))
        )
        rest = len(group.members) - len(data.shown_members(group))
        more = f'<p class="note">and {rest} more, not shown</p>' if rest else ""
        parts.append(
            f'<div class="group"><h3>Group {group.number}: {len(group.members)} images ({escape(group.kind)})</h3>'
            f'<div class="grid">{tiles}</div>{more}</div>'
        )
    return "".join(parts)


def _provenance(data: ReportData) -> str:
    model = data.model
    card = model.get("card") if isinstance(model.get("card"), dict) else {}
    facts = [
        ["model", escape(data.model_id)],
        ["preset", escape(str(model.get("preset", "?")))],
        ["trained", escape(str(model.get("trained", "?")))],
        ["scope", escape(str(card.get("scope", "")))],
        ["source", escape(str(card.get("source", "")))],
    ]
    runs = [
        [
            escape(str(run["run_id"])),
            escape(str(run["status"])),
            escape(str(run["started_at"])),
            str(run["ok"]),
            str(run["failed"]),
            str(run["skipped"]),
            escape(str(run["sources"])),
        ]
        for run in data.runs
    ]
    return _table(["", ""], facts) + "<h3>Runs</h3>" + _table(
        ["run", "status", "started", "ok", "failed", "skipped", "sources"], runs, numeric={3, 4, 5}
    )


def render_report(data: ReportData, title: str = "eat-curate report") -> str:
    """The whole page as one string."""
    untrained = data.model.get("trained") is False
    warning = (
        '<p class="warn">This model is untrained (random weights): its scores mean nothing.</p>' if untrained else ""
    )
    nav = "".join(
        f'<a href="#album-{index}">{escape(_album_name(section.name))}</a>' for index, section in enumerate(data.albums)
    )
    albums = "".join(_album(index, section, data) for index, section in enumerate(data.albums))
    errors = (
        _table(["kind", "images"], [[escape(kind), str(count)] for kind, count in sorted(data.errors_by_kind.items())])
        if data.errors_by_kind
        else '<p class="note">Every image scored.</p>'
    )
    missing = (
        _table(["file", "why"], [[escape(path), escape(why)] for path, why in data.missing])
        if data.missing
        else '<p class="note">Every shown image file was found.</p>'
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title><style>{STYLE}</style></head>
<body>
<header><h1>{escape(title)}</h1>
<p class="note">{data.image_count} images in {len(data.albums)} albums, scored by {escape(data.model_id)};
generated {data.generated_at:%Y-%m-%d %H:%M} UTC.</p>{warning}
<nav>{nav}</nav></header>
<section id="overview"><h2>Albums</h2>{_overview(data)}</section>
<section id="best"><h2>Best {len(data.best)}</h2>{_grid(data.best, data)}</section>
<section id="worst"><h2>Lowest {len(data.worst)}</h2>{_grid(data.worst, data)}</section>
{albums}
<section id="duplicates"><h2>Near-duplicates</h2>{_duplicates(data.duplicate_groups, data)}</section>
<section id="errors"><h2>Not scored</h2>{errors}</section>
<section id="missing"><h2>Missing files</h2>{missing}</section>
<section id="provenance"><h2>Model and runs</h2>{_provenance(data)}</section>
</body></html>
"""


def write_report(data: ReportData, path: Path, title: str = "eat-curate report") -> None:
    """Write the page to ``path`` atomically (a temporary sibling, then renamed).

    Raises StoreError (InfrastructureFailure for a full or read-only disk) when it cannot be written;
    nothing half-written is left behind.
    """
    path = Path(path)
    page = render_report(data, title)
    try:
        with written_whole(path) as partial:
            partial.write_text(page, encoding="utf-8")
    except OSError as error:
        raise cannot_write(error, f"--out {path}: cannot write the report") from None
