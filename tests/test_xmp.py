"""`eat-curate xmp`: ratings merged into the sidecars that darktable, digiKam, Lightroom and Immich read.

Every written sidecar is read back with a real XML parser (ElementTree).
The sidecars these tests start from are shaped as darktable and digiKam
write them (through Exiv2): namespace declarations on rdf:Description,
darktable's edit history as an rdf:Seq of rdf:li with attributes, keyword
bags, digiKam's tag list, a rating as an attribute or as an element.
"""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from eat_curate import exit_codes
from eat_curate.library.ratings import StarRule, star_ratings
from eat_curate.library.sidecars import NAMESPACE
from eat_curate.library.xmp import XmpError, XmpPacket
from read_library import invoke
from score_rows import scored, write_scores

RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
XMP = "http://ns.adobe.com/xap/1.0/"
DARKTABLE = "http://darktable.sf.net/"
DIGIKAM = "http://www.digikam.org/ns/1.0/"
MICROSOFT = "http://ns.microsoft.com/photo/1.0/"
DC = "http://purl.org/dc/elements/1.1/"

DARKTABLE_SIDECAR = """<?xml version="1.0" encoding="UTF-8"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/" x:xmptk="XMP Core 4.4.0-Exiv2">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about=""
    xmlns:exif="http://ns.adobe.com/exif/1.0/"
    xmlns:xmp="http://ns.adobe.com/xap/1.0/"
    xmlns:xmpMM="http://ns.adobe.com/xap/1.0/mm/"
    xmlns:dc="http://purl.org/dc/elements/1.1/"
    xmlns:lr="http://ns.adobe.com/lightroom/1.0/"
    xmlns:darktable="http://darktable.sf.net/"
   exif:DateTimeOriginal="2024:07:01 10:00:00.000"
   xmp:Rating="1"
   xmpMM:DerivedFrom="IMG_0001.CR2"
   darktable:import_timestamp="63856137600000000"
   darktable:change_timestamp="63856141200000000"
   darktable:export_timestamp="-1"
   darktable:print_timestamp="-1"
   darktable:xmp_version="5"
   darktable:raw_params="0"
   darktable:auto_presets_applied="1"
   darktable:history_end="3"
   darktable:iop_order_version="4"
   darktable:history_basic_hash="6f4e2a5f0c1b3d7e9a8b2c4d6e8f0a1b"
   darktable:history_current_hash="a1b2c3d4e5f60718293a4b5c6d7e8f90">
   <darktable:masks_history>
    <rdf:Seq/>
   </darktable:masks_history>
   <darktable:history>
    <rdf:Seq>
     <rdf:li
      darktable:num="0"
      darktable:operation="rawprepare"
      darktable:enabled="1"
      darktable:modversion="2"
      darktable:params="0000000000000000000000000000000000000000"
      darktable:multi_name=""
      darktable:multi_priority="0"
      darktable:blendop_version="14"
      darktable:blendop_params="gz11eJxjYIAACQYYOOHEgAYYGRxIhgBgBQ=="/>
     <rdf:li
      darktable:num="1"
      darktable:operation="exposure"
      darktable:enabled="1"
      darktable:modversion="6"
      darktable:params="00000000000080b9cdcc4c3f0000803f00004842"
      darktable:multi_name="sky &amp; &quot;sea&quot; &lt;1&gt;"
      darktable:multi_priority="1"
      darktable:blendop_version="14"
      darktable:blendop_params="gz11eJxjYIAACQYYOOHEgAYYGRxIhgBgBQ=="/>
     <rdf:li
      darktable:num="2"
      darktable:operation="filmicrgb"
      darktable:enabled="1"
      darktable:modversion="6"
      darktable:params="gz04eJxjYIAACwYYOOHEgAYYGRxIhgBgBQ=="
      darktable:multi_name=""
      darktable:multi_priority="0"
      darktable:blendop_version="14"
      darktable:blendop_params="gz11eJxjYIAACQYYOOHEgAYYGRxIhgBgBQ=="/>
    </rdf:Seq>
   </darktable:history>
   <dc:subject>
    <rdf:Bag>
     <rdf:li>holiday</rdf:li>
     <rdf:li>beach</rdf:li>
    </rdf:Bag>
   </dc:subject>
   <lr:hierarchicalSubject>
    <rdf:Bag>
     <rdf:li>places|beach</rdf:li>
    </rdf:Bag>
   </lr:hierarchicalSubject>
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>
"""

# digiKam (Exiv2) with the rating as an element, its percent twin, a tag list and an xpacket wrapper.
DIGIKAM_SIDECAR = """<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/" x:xmptk="XMP Core 4.4.0-Exiv2">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <!-- written by digiKam -->
  <rdf:Description rdf:about=""
    xmlns:digiKam="http://www.digikam.org/ns/1.0/"
    xmlns:MicrosoftPhoto="http://ns.microsoft.com/photo/1.0/"
    xmlns:xmp="http://ns.adobe.com/xap/1.0/"
    xmlns:dc="http://purl.org/dc/elements/1.1/"
    xmlns:tiff="http://ns.adobe.com/tiff/1.0/"
   MicrosoftPhoto:Rating="25"
   tiff:Orientation="1">
   <xmp:Rating>2</xmp:Rating>
   <digiKam:TagsList>
    <rdf:Seq>
     <rdf:li>Places/Paris</rdf:li>
     <rdf:li>People/Anna &amp; Ben</rdf:li>
    </rdf:Seq>
   </digiKam:TagsList>
   <dc:subject>
    <rdf:Bag>
     <rdf:li>Paris</rdf:li>
    </rdf:Bag>
   </dc:subject>
   <dc:title>
    <rdf:Alt>
     <rdf:li xml:lang="x-default">Quai de la Tournelle</rdf:li>
    </rdf:Alt>
   </dc:title>
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>
<?xpacket end="w"?>"""

BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>
<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
<rdf:Description rdf:about="" xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmp:Label="&lol2;"/></rdf:RDF></x:xmpmeta>
"""

# 20 images, scores 8.0 down to 6.1: with the default stars (5:5%,4:15%,3:30%,2:30%,1:20%) the bands end at
# ceil(1) = 1, ceil(4) = 4, ceil(10) = 10, ceil(16) = 16, 20.
EXPECTED_STARS = [5] + [4] * 3 + [3] * 6 + [2] * 6 + [1] * 4


@pytest.fixture
def shoot(tmp_path) -> tuple[str, Path]:
    """A folder of 20 raw files scored into a database: (db, folder)."""
    folder = tmp_path / "photos" / "shoot"
    folder.mkdir(parents=True)
    records = []
    for number in range(1, 21):
        path = folder / f"IMG_{number:04d}.CR2"
        path.write_bytes(b"raw" * number)
        records.append(scored(f"img-{number:02d}", 8.1 - number / 10, album="shoot", path=path, std=1.5))
    return write_scores(tmp_path / "photos.db", records), folder


def sidecar(folder: Path, number: int, naming: str = "full") -> Path:
    name = f"IMG_{number:04d}.CR2.xmp" if naming == "full" else f"IMG_{number:04d}.xmp"
    return folder / name


def description_values(path: Path) -> dict[str, str]:
    """Every simple property of the sidecar's top-level descriptions, '{uri}name' -> value (real parser)."""
    root = ET.parse(path).getroot()
    values: dict[str, str] = {}
    for description in root.iter(f"{{{RDF}}}Description"):
        values.update(description.attrib)
        for child in description:
            if len(child) == 0 and isinstance(child.tag, str):
                values[child.tag] = (child.text or "").strip()
    return values


def flatten(root: ET.Element, ignore: set[str]) -> list[tuple]:
    """Each element in document order: (tag, attributes, text), leaving out ``ignore``d properties."""
    facts = []
    for element in root.iter():
        if element.tag in ignore:
            continue
        attributes = tuple(sorted((k, v) for k, v in element.attrib.items() if k not in ignore))
        facts.append((element.tag, attributes, (element.text or "").strip()))
    return facts


OURS = {f"{{{XMP}}}Rating", f"{{{XMP}}}Label", f"{{{MICROSOFT}}}Rating"} | {
    f"{{{NAMESPACE}}}{name}" for name in ("Score", "Std", "Model", "Rating", "Label")
}


def run_xmp(db: str, *options: str, expect_ok: bool = True):
    return invoke("xmp", "--db", db, *options, expect_ok=expect_ok)


# --- new sidecars -------------------------------------------------------------------------------


def test_new_sidecars_get_stars_by_share_and_the_score_in_our_namespace(shoot):
    db, folder = shoot
    result = run_xmp(db)
    assert "created 20" in result.stdout
    ratings = [int(description_values(sidecar(folder, n))[f"{{{XMP}}}Rating"]) for n in range(1, 21)]
    assert ratings == EXPECTED_STARS
    first = description_values(sidecar(folder, 1))
    assert first[f"{{{NAMESPACE}}}Score"] == "8.0000" and first[f"{{{NAMESPACE}}}Std"] == "1.5000"
    assert first[f"{{{NAMESPACE}}}Model"] == "micro@000000000000" and first[f"{{{NAMESPACE}}}Rating"] == "5"
    text = sidecar(folder, 1).read_text()
    assert 'xmlns:eatcurate="https://eat-curate.invalid/ns/1.0/"' in text and "xmp:Rating=" in text
    assert f"{{{XMP}}}Label" not in first  # no --labels, no label


def test_score_thresholds_and_rejects(shoot):
    db, folder = shoot
    run_xmp(db, "--stars", "5:7.95,4:7.5,3:7", "--reject-bottom", "10")
    ratings = [int(description_values(sidecar(folder, n))[f"{{{XMP}}}Rating"]) for n in range(1, 21)]
    # 8.0 -> 5; 7.9..7.5 -> 4; 7.4..7.0 -> 3; below 7 -> 0; the lowest floor(10 % of 20) = 2 rejected
    assert ratings == [5] + [4] * 5 + [3] * 5 + [0] * 7 + [-1, -1]


def test_labels_follow_the_stars_and_a_hand_set_label_stays(shoot):
    db, folder = shoot
    run_xmp(db, "--labels", "5:Green,4:yellow")
    assert description_values(sidecar(folder, 1))[f"{{{XMP}}}Label"] == "Green"
    assert description_values(sidecar(folder, 2))[f"{{{XMP}}}Label"] == "Yellow"
    assert f"{{{XMP}}}Label" not in description_values(sidecar(folder, 5))
    hand = sidecar(folder, 3)  # someone relabels image 3 by hand
    hand.write_text(hand.read_text().replace('xmp:Label="Yellow"', 'xmp:Label="Purple"'))
    run_xmp(db, "--labels", "5:Green")  # 4 stars lose their label now
    assert f"{{{XMP}}}Label" not in description_values(sidecar(folder, 2))  # ours: removed
    assert description_values(hand)[f"{{{XMP}}}Label"] == "Purple"  # theirs: kept
    assert description_values(sidecar(folder, 1))[f"{{{XMP}}}Label"] == "Green"


# --- merging into sidecars other programs wrote -----------------------------------------------


def test_a_darktable_sidecar_keeps_its_history_keywords_and_everything_else(shoot):
    db, folder = shoot
    target = sidecar(folder, 1)
    target.write_text(DARKTABLE_SIDECAR)
    before = ET.fromstring(DARKTABLE_SIDECAR)
    run_xmp(db, "--overwrite-ratings")  # its rating 1 was set by hand: replaced on purpose here
    after = ET.parse(target).getroot()
    assert flatten(after, OURS) == flatten(before, OURS)  # every element, attribute and text, in order
    values = description_values(target)
    assert values[f"{{{XMP}}}Rating"] == "5" and values[f"{{{NAMESPACE}}}Score"] == "8.0000"
    history = after.find(f".//{{{DARKTABLE}}}history/{{{RDF}}}Seq")
    assert [li.get(f"{{{DARKTABLE}}}operation") for li in history] == ["rawprepare", "exposure", "filmicrgb"]
    assert history[1].get(f"{{{DARKTABLE}}}multi_name") == 'sky & "sea" <1>'
    assert [li.text for li in after.find(f".//{{{DC}}}subject/{{{RDF}}}Bag")] == ["holiday", "beach"]
    text = target.read_text()
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    assert "xmlns:darktable=" in text and "<darktable:history>" in text and "<rdf:Seq/>" in text  # prefixes kept
    assert text.count("xmp:Rating=") == 1


def test_a_digikam_sidecar_keeps_its_tags_and_its_rating_stays_an_element(shoot):
    db, folder = shoot
    target = sidecar(folder, 2)
    target.write_text(DIGIKAM_SIDECAR, encoding="utf-8")
    before = ET.fromstring(DIGIKAM_SIDECAR)
    run_xmp(db, "--overwrite-ratings")
    after = ET.parse(target).getroot()
    assert flatten(after, OURS) == flatten(before, OURS)
    rating = after.find(f".//{{{RDF}}}Description/{{{XMP}}}Rating")
    assert rating is not None and rating.text == "4"  # where it was, as it was: an element
    description = after.find(f".//{{{RDF}}}Description")
    assert f"{{{XMP}}}Rating" not in description.attrib  # not a second copy as an attribute
    assert description.get(f"{{{MICROSOFT}}}Rating") == "75"  # digiKam's percent twin kept in step
    tags = [li.text for li in after.find(f".//{{{DIGIKAM}}}TagsList/{{{RDF}}}Seq")]
    assert tags == ["Places/Paris", "People/Anna & Ben"]
    text = target.read_text(encoding="utf-8")
    assert text.startswith('<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>')
    assert text.rstrip().endswith('<?xpacket end="w"?>') and "<!-- written by digiKam -->" in text
    assert 'xml:lang="x-default"' in text


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b"<x:xmpmeta xmlns:x='adobe:ns:meta/'><rdf:RDF", "not well-formed"),
        (b"\xff\xfe<\x00x\x00", "not UTF-8"),
        (BILLION_LAUGHS.encode(), "DOCTYPE"),
        (b"<?xml version='1.0'?><html><body>not xmp</body></html>", "no rdf:RDF"),
        (b"", "not well-formed"),
    ],
    ids=["truncated", "utf16", "entities", "not-xmp", "empty"],
)
def test_an_unreadable_sidecar_is_left_untouched_and_reported(shoot, content, why):
    db, folder = shoot
    target = sidecar(folder, 3)
    target.write_bytes(content)
    result = run_xmp(db, expect_ok=False)
    assert result.exit_code == exit_codes.SIDECARS_LEFT.code  # the others were written; this one is listed
    assert target.read_bytes() == content
    assert f"unreadable: {target}:" in result.stderr and why in result.stderr
    assert "created 19" in result.stdout and "unreadable 1" in result.stdout  # the others were done
    summary = json.loads(run_xmp(db, "--json", expect_ok=False).stdout)
    assert summary["counts"] == {"unchanged": 19, "unreadable": 1} and summary["problems"] == 1
    assert summary["outcome"] == "sidecars_left"


def test_a_second_run_changes_nothing(shoot):
    db, folder = shoot
    sidecar(folder, 1).write_text(DARKTABLE_SIDECAR)
    sidecar(folder, 2).write_text(DIGIKAM_SIDECAR, encoding="utf-8")
    run_xmp(db, "--labels", "5:Green,1:Red", "--reject-bottom", "5")
    written = {path: (path.read_bytes(), path.stat().st_mtime_ns) for path in folder.glob("*.xmp")}
    assert len(written) == 20
    result = run_xmp(db, "--labels", "5:Green,1:Red", "--reject-bottom", "5")
    assert "unchanged 20" in result.stdout
    assert {path: (path.read_bytes(), path.stat().st_mtime_ns) for path in folder.glob("*.xmp")} == written


def test_dry_run_writes_nothing_and_lists_the_changes(shoot):
    db, folder = shoot
    sidecar(folder, 1).write_text(DARKTABLE_SIDECAR)
    listing_before = sorted(os.listdir(folder))
    result = run_xmp(db, "--dry-run", "--overwrite-ratings")
    assert sorted(os.listdir(folder)) == listing_before and sidecar(folder, 1).read_text() == DARKTABLE_SIDECAR
    assert result.stdout.startswith("dry run, nothing written: would create 19, would update 1")
    assert any("would update" in line and "1 -> 5" in line for line in result.stdout.splitlines())
    outcomes = json.loads(run_xmp(db, "--dry-run", "--json").stdout)["outcomes"]
    assert {o["action"] for o in outcomes} == {"would create", "would update"}
    listed = run_xmp(db, "--dry-run").stdout.splitlines()
    assert any(line.startswith("would update") and "1 -> kept (by hand)" in line for line in listed)


# --- ratings people set by hand -------------------------------------------------------------------


def test_a_rating_set_by_hand_stays_with_its_label_and_the_model_s_stars_go_beside_it(shoot):
    db, folder = shoot
    sidecar(folder, 1).write_text(DARKTABLE_SIDECAR)  # rated 1 star in darktable
    sidecar(folder, 2).write_text(DIGIKAM_SIDECAR.replace("<xmp:Rating>2</xmp:Rating>", "<xmp:Rating>0</xmp:Rating>"))
    result = run_xmp(db, "--labels", "5:Green")
    assert "kept 1 rating set by hand (--overwrite-ratings replaces them)" in result.stderr
    kept = description_values(sidecar(folder, 1))
    assert kept[f"{{{XMP}}}Rating"] == "1" and f"{{{XMP}}}Label" not in kept  # the person's, untouched
    assert kept[f"{{{NAMESPACE}}}Rating"] == "5" and kept[f"{{{NAMESPACE}}}Score"] == "8.0000"  # the model's, beside
    unrated = description_values(sidecar(folder, 2))
    assert unrated[f"{{{XMP}}}Rating"] == "4"  # 0 is "no rating": replaced
    assert unrated[f"{{{MICROSOFT}}}Rating"] == "75"

    # The person changes a rating eat-curate wrote: from then on it is theirs.
    ours = sidecar(folder, 3)
    assert description_values(ours)[f"{{{XMP}}}Rating"] == description_values(ours)[f"{{{NAMESPACE}}}Rating"]
    ours.write_text(ours.read_text().replace(f'xmp:Rating="{description_values(ours)[f"{{{XMP}}}Rating"]}"',
                                             'xmp:Rating="2"'))
    again = json.loads(run_xmp(db, "--json").stdout)
    assert again["kept_by_hand"] == 2
    assert description_values(ours)[f"{{{XMP}}}Rating"] == "2"
    replaced = run_xmp(db, "--overwrite-ratings")
    assert "kept" not in replaced.stderr and description_values(sidecar(folder, 1))[f"{{{XMP}}}Rating"] == "5"


@pytest.mark.parametrize("not_a_rating", ["nan", "inf", "-inf", "7", "2.5", "-2", "five"])
def test_a_value_that_is_no_rating_is_replaced_like_no_rating_at_all(shoot, not_a_rating):
    db, folder = shoot
    sidecar(folder, 1).write_text(DARKTABLE_SIDECAR.replace('xmp:Rating="1"', f'xmp:Rating="{not_a_rating}"'))
    summary = json.loads(run_xmp(db, "--json").stdout)
    assert summary["kept_by_hand"] == 0 and summary["counts"]["updated"] == 1
    assert description_values(sidecar(folder, 1))[f"{{{XMP}}}Rating"] == "5"  # the model's stars


# --- where sidecars go ----------------------------------------------------------------------------


def test_both_naming_modes_and_a_shared_stem(tmp_path):
    folder = tmp_path / "pair"
    folder.mkdir()
    for name in ("IMG_1.CR2", "IMG_1.JPG", "IMG_2.NEF"):
        (folder / name).write_bytes(b"x")
    db = write_scores(tmp_path / "pair.db", [
        scored("raw", 7.0, path=folder / "IMG_1.CR2"),
        scored("jpeg", 6.0, path=folder / "IMG_1.JPG"),
        scored("nef", 5.0, path=folder / "IMG_2.NEF"),
    ])
    run_xmp(db)
    assert sorted(p.name for p in folder.glob("*.xmp")) == ["IMG_1.CR2.xmp", "IMG_1.JPG.xmp", "IMG_2.NEF.xmp"]
    for path in folder.glob("*.xmp"):
        path.unlink()
    result = json.loads(run_xmp(db, "--sidecar-name", "stem", "--json").stdout)
    assert sorted(p.name for p in folder.glob("*.xmp")) == ["IMG_1.xmp", "IMG_2.xmp"]
    jpeg = next(o for o in result["outcomes"] if o["image"].endswith("IMG_1.JPG"))
    assert jpeg["action"] == "skipped" and jpeg["reason"].startswith("shared")  # the better-ranked raw has it
    assert description_values(folder / "IMG_1.xmp")[f"{{{NAMESPACE}}}Score"] == "7.0000"


def test_hostile_paths_and_albums_cannot_write_elsewhere(tmp_path):
    photos, outside = tmp_path / "photos", tmp_path / "outside"
    (photos / "a").mkdir(parents=True)
    (photos / "b").mkdir()
    outside.mkdir()
    (photos / "b" / "real.jpg").write_bytes(b"x")
    (photos / "a" / "linked.jpg").write_bytes(b"x")
    precious = outside / "precious.txt"
    precious.write_text("do not touch")
    (photos / "a" / "linked.jpg.xmp").symlink_to(precious)  # a sidecar that points out of the folder
    db = write_scores(tmp_path / "hostile.db", [
        scored("dots", 7.0, album="../../outside", path=f"{photos}/a/../b/real.jpg"),  # resolves into b/
        scored("link", 6.9, album="../../outside", path=photos / "a" / "linked.jpg"),
        scored("gone", 6.8, album="a", path=photos / "a" / "deleted.jpg"),
        scored("nowhere", 6.7, album="a", path=photos / "missing-folder" / "x.jpg"),
        scored("remote", 6.6, album="a", path="s3://bucket/photo.jpg"),
        scored("folder", 6.5, album="a", path=f"{photos}/a/.."),
    ])
    def files() -> set[Path]:
        return set(photos.rglob("*")) | set(outside.rglob("*"))

    before = files()
    result = run_xmp(db, "--json", expect_ok=False)
    assert result.exit_code == exit_codes.SIDECARS_LEFT.code  # the symlinked sidecar is reported
    outcomes = {o["image"].rsplit("/", 1)[-1]: o for o in json.loads(result.stdout)["outcomes"]}
    assert outcomes["real.jpg"]["action"] == "created"
    assert outcomes["real.jpg"]["sidecar"] == str(photos / "b" / "real.jpg.xmp")
    assert outcomes["linked.jpg"]["action"] == "unreadable" and "symbolic link" in outcomes["linked.jpg"]["reason"]
    assert outcomes["deleted.jpg"]["reason"].startswith("missing")
    assert outcomes["x.jpg"]["reason"].startswith("missing")
    assert outcomes["photo.jpg"]["reason"] == "not a local file"
    assert outcomes[".."]["reason"] == "no file name"
    assert precious.read_text() == "do not touch" and (photos / "a" / "linked.jpg.xmp").is_symlink()
    assert files() - before == {photos / "b" / "real.jpg.xmp"}  # nothing else appeared


def test_a_sidecar_keeps_its_permissions(shoot):
    db, folder = shoot
    target = sidecar(folder, 4)
    target.write_text(DARKTABLE_SIDECAR)
    target.chmod(0o640)
    run_xmp(db)
    assert target.stat().st_mode & 0o777 == 0o640
    assert not list(folder.glob(".*.tmp"))  # no temporary file left behind


# --- the pieces ----------------------------------------------------------------------------------


def test_xmp_packet_round_trips_to_the_same_bytes():
    for source in (DARKTABLE_SIDECAR, DIGIKAM_SIDECAR):
        once = XmpPacket(source.encode()).to_bytes()
        assert XmpPacket(once).to_bytes() == once
        assert flatten(ET.fromstring(once), set()) == flatten(ET.fromstring(source), set())


def test_an_old_prefix_for_the_xmp_namespace_is_kept():
    packet = XmpPacket(b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="' + RDF.encode() + b'">'
                       b'<rdf:Description rdf:about="" xmlns:xap="http://ns.adobe.com/xap/1.0/" xap:Rating="2"/>'
                       b"</rdf:RDF></x:xmpmeta>")
    packet.set(XMP, "Rating", "4")
    text = packet.to_bytes().decode()
    assert 'xap:Rating="4"' in text and "xmlns:xmp=" not in text


def test_values_we_write_lose_characters_xml_cannot_hold():
    packet = XmpPacket()
    packet.set(NAMESPACE, "Model", "evil\x00\x1b model & <co>")
    back = XmpPacket(packet.to_bytes({NAMESPACE: "eatcurate"}))
    assert back.get(NAMESPACE, "Model") == "evil model & <co>"


def test_packets_without_rdf_or_with_a_doctype_are_refused():
    with pytest.raises(XmpError, match="DOCTYPE"):
        XmpPacket(BILLION_LAUGHS.encode())
    with pytest.raises(XmpError, match="encoding"):
        XmpPacket(b'<?xml version="1.0" encoding="ISO-8859-1"?><x/>')


def test_star_shares_cover_albums_of_1_3_and_7():
    from eat_curate.library.queries import SelectedImage

    images = [SelectedImage(album, 0, f"{album}-{n}", "", 9.0 - n, 1.0, None)
              for album, size in (("one", 1), ("three", 3), ("seven", 7)) for n in range(size)]
    ratings = star_ratings(images, StarRule.parse("5:5%,4:15%,3:30%,2:30%,1:20%"))
    assert [ratings[f"one-{n}"] for n in range(1)] == [5]
    assert [ratings[f"three-{n}"] for n in range(3)] == [5, 3, 2]
    assert [ratings[f"seven-{n}"] for n in range(7)] == [5, 4, 3, 3, 2, 2, 1]
    rejects = star_ratings(images, StarRule.parse("5:50%"), reject_bottom=parse(30))
    assert [rejects[f"seven-{n}"] for n in range(7)] == [5, 5, 5, 5, 0, -1, -1]  # floor(2.1) = 2 rejects
    assert rejects["one-0"] == 5 and [rejects[f"three-{n}"] for n in range(3)] == [5, 5, 0]  # floor(0.9) = 0


def parse(percent: float):
    from eat_curate.library.picks import parse_percent

    return parse_percent(str(percent))


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("5:5%,4:8", "not both"),
        ("6:5%", "stars are 1 to 5"),
        ("5:60%,4:50%", "more than 100"),
        ("5:6,4:7", "higher star needs a higher threshold"),
        ("5", "KEY:VALUE"),
        ("5:nan", "a threshold is a score from 1 to 10"),
        ("5:inf,4:7", "a threshold is a score from 1 to 10"),
        ("5:11", "a threshold is a score from 1 to 10"),
    ],
)
def test_bad_star_specs_are_refused(shoot, spec, message):
    db, _ = shoot
    result = run_xmp(db, "--stars", spec, expect_ok=False)
    assert result.exit_code == 2 and message in result.output


def test_xmp_help_says_which_application_reads_which_name():
    text = " ".join(invoke("xmp", "--help").stdout.split())
    assert "IMG_1.CR2.xmp, as darktable and digiKam" in text and "IMG_1.xmp, as Adobe Lightroom" in text
    assert "Immich reads both" in text and "https://eat-curate.invalid/ns/1.0/" in text
    assert "exits with status 6" in text


def test_xmp_starts_without_torch_timm_or_ray(shoot):
    from test_cli_startup import heavy_imports_of

    db, _ = shoot
    assert heavy_imports_of("xmp", "--db", db, "--dry-run") == []


def test_a_star_rule_reads_back_as_one_line_the_user_can_check():
    assert StarRule.parse("5:5%,4:15%,3:30%,2:30%,1:20%").describe() == (
        "5 stars: best 5 %, 4 stars: next 15 %, 3 stars: next 30 %, 2 stars: next 30 %, 1 star: next 20 %"
    )
    assert StarRule.parse("5:10%,4:20%").describe() == "5 stars: best 10 %, 4 stars: next 20 %, 0 stars: the other 70 %"
    assert StarRule.parse("5:8,1:4.5").describe() == "5 stars: score >= 8, 1 star: score >= 4.5, 0 stars: below"
