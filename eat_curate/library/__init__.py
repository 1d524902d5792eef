"""The read side: what the read commands ask of a scored database, and what they do with the answer.

Queries (ranks inside albums, album statistics, selections, errors), the
connection that opens a database read-only and picks the model to read,
shots (RAW + JPEG read as one), hiding vanished files, near-duplicate
groups, export of a selection into a folder, selection manifests, XMP
sidecars (star ratings written, and people's own stars read back), and the
run listing. Nothing here scores or writes scores.
Names are imported on first use (``eat_curate.lazy_exports``).
"""

from eat_curate.lazy_exports import lazy_exports

_MODULES = {
    "RATING_STATUSES": "eat_curate.library.user_ratings",
    "FoundRating": "eat_curate.library.user_ratings",
    "one_per_shot": "eat_curate.library.user_ratings",
    "read_ratings": "eat_curate.library.user_ratings",
    "AlbumChoiceError": "eat_curate.library.album_names",
    "check_albums": "eat_curate.library.album_names",
    "ModelChoiceError": "eat_curate.library.connection",
    "read_connection": "eat_curate.library.connection",
    "resolve_model": "eat_curate.library.connection",
    "DEFAULT_DISTANCE": "eat_curate.library.dupes",
    "NEAR_EQUAL_SCORE": "eat_curate.library.dupes",
    "DuplicateGroup": "eat_curate.library.dupes",
    "find_duplicate_groups": "eat_curate.library.dupes",
    "keep_best": "eat_curate.library.dupes",
    "MissingFiles": "eat_curate.library.hidden",
    "hide_missing_files": "eat_curate.library.hidden",
    "ShotFile": "eat_curate.library.shots",
    "LAYOUTS": "eat_curate.library.export",
    "MODES": "eat_curate.library.export",
    "ExportItem": "eat_curate.library.export",
    "ExportReport": "eat_curate.library.export",
    "export_images": "eat_curate.library.export",
    "items_from_images": "eat_curate.library.export",
    "ALBUM_SORTS": "eat_curate.library.queries",
    "DEFAULT_THRESHOLD": "eat_curate.library.queries",
    "RANK_KEYS": "eat_curate.library.queries",
    "TIME_FIELDS": "eat_curate.library.queries",
    "AlbumStats": "eat_curate.library.queries",
    "ErrorRow": "eat_curate.library.queries",
    "SelectedImage": "eat_curate.library.queries",
    "Selection": "eat_curate.library.queries",
    "album_stats": "eat_curate.library.queries",
    "rank_images": "eat_curate.library.queries",
    "select_errors": "eat_curate.library.queries",
    "select_images": "eat_curate.library.queries",
    "KeepBest": "eat_curate.library.picks",
    "Picks": "eat_curate.library.picks",
    "choose_images": "eat_curate.library.picks",
    "parse_percent": "eat_curate.library.picks",
    "share_count": "eat_curate.library.picks",
    "DEFAULT_STARS": "eat_curate.library.ratings",
    "LABEL_COLOURS": "eat_curate.library.ratings",
    "StarRule": "eat_curate.library.ratings",
    "parse_labels": "eat_curate.library.ratings",
    "star_ratings": "eat_curate.library.ratings",
    "NAMESPACE": "eat_curate.library.sidecars",
    "SIDECAR_NAMES": "eat_curate.library.sidecars",
    "SidecarReport": "eat_curate.library.sidecars",
    "SidecarValues": "eat_curate.library.sidecars",
    "sidecar_values": "eat_curate.library.sidecars",
    "write_sidecars": "eat_curate.library.sidecars",
    "XmpError": "eat_curate.library.xmp",
    "XmpPacket": "eat_curate.library.xmp",
    "runs_from_database": "eat_curate.library.run_listing",
    "runs_from_parquet": "eat_curate.library.run_listing",
    "write_manifest": "eat_curate.library.selection_manifest",
}
__all__ = sorted(_MODULES)
__getattr__, __dir__ = lazy_exports(__name__, _MODULES)
