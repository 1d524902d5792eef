"""The built-in model's card: what it was trained on, what its score measures and what it does not."""

from __future__ import annotations

from collections import Counter

from eat_curate.model.card import ModelCard
from training.recipes.defect_eval import REQUIRED_PAIRWISE_ACCURACY, REQUIRED_SRCC, REQUIRED_STABILITY, DefectReport
from training.recipes.defect_targets import CLEAN_MEAN, DROP_AT_FULL_STRENGTH, FLOOR_MEAN, SPREAD
from training.recipes.defects import DEFECTS
from training.recipes.wallpaper_photos import PhotoFile

MEASURES = (
    "technical and compositional soundness relative to well-made photos (focus, noise, exposure, contrast, "
    "colour cast, compression, tilt, off-subject crops)"
)
NOT_TASTE = "not taste, subject or AVA-style beauty"

NOT_MEASURED = (
    "Taste, subject matter, emotion, originality, or the AVA notion of beauty: it never saw a human rating. "
    "Two sound photos of different scenes get similar scores; a sharp, well-exposed photo of nothing "
    "interesting scores high."
)

REPLACE_WITH = (
    "For aesthetic scores, import the published EAT AVA weights (`eat-curate models import eat_ava.pth "
    "--preset base --name eat-ava`) or train on AVA (`eat-curate train --config ava ...`), then score with "
    "`--model eat-ava`. A model in your store named like this one shadows it."
)

# How the scope line names each defect type.
DEFECT_WORDS = {
    "gaussian_blur": "focus blur",
    "motion_blur": "camera shake",
    "noise": "noise",
    "underexposure": "underexposure",
    "overexposure": "overexposure",
    "low_contrast": "low contrast",
    "colour_cast": "colour casts",
    "jpeg": "JPEG blocking",
    "tilt": "tilt",
    "off_subject_crop": "off-subject crops",
    "oversaturation": "over-saturation",
}

DEFECT_AMOUNTS = {
    "gaussian_blur": "Gaussian blur, sigma 3.5 px at 1",
    "motion_blur": "straight motion streak, 1 + 19 px at 1, seeded direction",
    "noise": "shot + read noise in linear light, per channel; std ~0.12 at mid-grey at 1",
    "underexposure": "-3.5 stops at 1",
    "overexposure": "+2.5 stops at 1, highlights clipped",
    "low_contrast": "tonal range squeezed toward mid-grey, to 25% at 1",
    "colour_cast": "channel gains exp(+-1) along a seeded hue at 1, brightness kept",
    "jpeg": "JPEG quality 30 * (1/6)^strength: 30 near 0, 12 at 0.5, 5 at 1",
    "tilt": "rotation up to 12 degrees either way at 1 (same centre; shrunk only as the photo requires)",
    "off_subject_crop": "crop of 1 - 0.6 x strength of each side pushed to a corner or an edge",
    "oversaturation": "chroma x (1 + 2.5 x strength)",
}


def _named(defects: list[str]) -> str:
    return ", ".join(DEFECT_WORDS[name] for name in defects)


def caught_and_missed(report: DefectReport) -> tuple[list[str], list[str]]:
    """Defect types the model ranks below their clean photo at medium strength on held-out photos, and the rest."""
    caught = [row.defect for row in report.defects if row.pairwise_accuracy >= REQUIRED_PAIRWISE_ACCURACY]
    return caught, [row.defect for row in report.defects if row.defect not in caught]


def scope_line(report: DefectReport) -> str:
    """The one line ``score`` prints: what the score is, what it catches as measured, what it is not."""
    caught, missed = caught_and_missed(report)
    parts = ["technical soundness learnt from generated defects"]
    parts.append("catches " + (_named(caught) if caught else "no defect type reliably"))
    if missed:
        parts.append("unreliable on " + _named(missed))
    return "; ".join(parts) + "; " + NOT_TASTE


def measured_line(report: DefectReport) -> str:
    """The held-out figures in words: which types it catches and which targets it misses."""
    caught, missed = caught_and_missed(report)
    line = (
        f"On photographs it never trained on, it scores a photo above its copy with a medium-strength defect "
        f"in at least {REQUIRED_PAIRWISE_ACCURACY:.0%} of cases for: {_named(caught) or 'none'}"
    )
    if missed:
        line += f"; not reliably for: {_named(missed)}"
    if report.failures:
        targets = f"pairwise accuracy {REQUIRED_PAIRWISE_ACCURACY}, SRCC {REQUIRED_SRCC}, stability {REQUIRED_STABILITY}"
        line += f". Targets missed ({targets}): " + "; ".join(report.failures)
    return line + "."


def validation_role(keep_epoch: str) -> str:
    """What the validation photos were used for."""
    return "to pick the epoch" if keep_epoch == "best" else "to follow each epoch (the last one is kept)"


def training_data_line(
    photos: list[PhotoFile], splits: dict[str, list[str]], versions: dict[str, str], keep_epoch: str
) -> str:
    packages = Counter(photo.package for photo in photos)
    used = ", ".join(f"{package} {versions.get(package, '?')} ({count})" for package, count in sorted(packages.items()))
    return (
        f"{len(photos)} real photographs from Debian's wallpaper packages [{used}]; "
        f"{len(splits['train'])} for training, {len(splits['val'])} {validation_role(keep_epoch)}, "
        f"{len(splits['test'])} held out for the reported figures. Training images: random crops and full "
        f"frames of the training photos and copies with 1-2 of {len(DEFECTS)} generated defects at random "
        "strengths; no human ratings."
    )


def licences_line(photos: list[PhotoFile]) -> str:
    """The training photographs' licences as their packages' copyright files state them, with counts."""
    by_package: dict[str, Counter] = {}
    for photo in photos:
        by_package.setdefault(photo.package, Counter())[photo.license] += 1
    parts = []
    for package, licences in sorted(by_package.items()):
        counted = ", ".join(f"{licence} x{count}" for licence, count in sorted(licences.items()))
        parts.append(f"{package}: {counted}")
    kde = sorted({photo.metadata_license for photo in photos if photo.metadata_license})
    note = f" (KDE's own metadata.json: {', '.join(kde)})" if kde else ""
    return "photographs' licences per Debian's copyright files: " + "; ".join(parts) + note


def description(
    report: DefectReport, photos: list[PhotoFile], splits: dict[str, list[str]], keep_epoch: str
) -> str:
    return "\n\n".join(
        [
            "A small EAT (preset nano) that ships with eat-curate so that `eat-curate score` gives useful "
            "culling scores out of the box. It was trained without human ratings: on real photographs and "
            "copies of them with controlled defects (the degradation-ranking route to aesthetic features "
            "of the self-supervised aesthetics literature).",
            f"What the score measures: {MEASURES}. An untouched photo like the training photos "
            f"scores about {CLEAN_MEAN:.0f}; each defect lowers the score in proportion to its strength, "
            f"{DROP_AT_FULL_STRENGTH:.0f} points at full strength; defects add up (never below "
            f"{FLOOR_MEAN}). It was trained to find the blurred, shaken, noisy, badly exposed, flat, tinted, "
            "over-compressed, tilted and badly cropped shots of an album; which of them it finds in new photos, "
            "the next paragraph and the figures below say.",
            measured_line(report),
            f"What it does not measure: {NOT_MEASURED}",
            f"Trained on: {len(splits['train'])} photographs ({', '.join(splits['train'])}); "
            f"{', '.join(splits['val'])} {validation_role(keep_epoch)}; "
            f"figures below from {', '.join(splits['test'])}, never seen in "
            f"training. The {licences_line(photos)}; each photo's own in extra.photographs.",
            "Held-out figures (pairwise accuracy: clean view scored above its copy with the defect at "
            "strength 0.5; SRCC: score against target over strengths 0-1; for tilt the clean view is the "
            "rectangle its tilted copies are turned from, so that they differ by the turn alone):\n\n"
            + report.table(),
            f"How to replace it: {REPLACE_WITH}",
        ]
    )


def build_card(
    name: str,
    preset: str,
    trainer_card: ModelCard,
    report: DefectReport,
    photos: list[PhotoFile],
    splits: dict[str, list[str]],
    versions: dict[str, str],
    recipe: dict,
) -> ModelCard:
    """The final card, from the trainer's card (architecture, steering, validation) and the held-out report."""
    split_of = {photo: split for split, names in splits.items() for photo in names}
    return ModelCard(
        name=name,
        preset=preset,
        architecture=trainer_card.architecture,
        head_mode=trainer_card.head_mode,
        steering_mode=trainer_card.steering_mode,
        steering_schedule=trainer_card.steering_schedule,
        trained=True,
        source="python -m training.recipes.default_model (eat-curate's own recipe; see extra.recipe)",
        training_data=training_data_line(photos, splits, versions, recipe["keep_epoch"]),
        metrics={"held_out_defects": report.to_dict(), "trainer": trainer_card.metrics},
        scope=scope_line(report),
        license=f"training {licences_line(photos)}; see extra.photographs",
        extra={
            "description": description(report, photos, splits, recipe["keep_epoch"]),
            "not_measured": NOT_MEASURED,
            "replace_with": REPLACE_WITH,
            "targets": {
                "clean_mean": CLEAN_MEAN,
                "drop_at_full_strength": DROP_AT_FULL_STRENGTH,
                "floor_mean": FLOOR_MEAN,
                "spread_bins": SPREAD,
                "rule": "mean = max(clean - drop x sum of strengths, floor); a Gaussian over bins 1-10 with that mean",
            },
            "defects": DEFECT_AMOUNTS,
            "photographs": [
                {**photo.to_dict(), "split": split_of.get(photo.name)}
                for photo in photos
            ],
            "packages": {package: versions.get(package) for package in sorted({p.package for p in photos})},
            "recipe": recipe,
        },
    )

