"""Label files, official splits and the up-front clean-up of training data.

Every format is read from a real file; every malformed file names the line
(or Parquet row) that is wrong.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import make_photo
from training.datasets import Augmentation, ScoredImages, clean, collate, epoch_order, split_items
from training.labels import LabelFileError, read_id_list, read_labels

VOTES_A = [0, 1, 2, 3, 10, 20, 10, 3, 1, 0]  # mean 5.72
VOTES_B = [5, 5, 5, 5, 5, 0, 0, 0, 0, 0]  # mean 3.0


def ava_line(index: int, image_id: str, votes: list[int]) -> str:
    return " ".join(map(str, [index, image_id, *votes, 15, 21, 1396])) + "\n"


def test_ava_txt_gives_vote_distributions_and_jpg_paths(tmp_path: Path) -> None:
    (tmp_path / "AVA.txt").write_text(ava_line(1, "953619", VOTES_A) + ava_line(2, "953958", VOTES_B))
    (tmp_path / "images").mkdir()

    labels = read_labels(tmp_path / "AVA.txt", tmp_path / "images")

    assert labels.format == "ava" and labels.target == "votes"
    first = labels.items[0]
    assert first.image_id == "953619"
    assert first.path == tmp_path / "images" / "953619.jpg"
    assert first.votes == tuple(VOTES_A)
    assert first.score == pytest.approx(sum(i * v for i, v in zip(range(1, 11), VOTES_A)) / sum(VOTES_A))
    assert first.distribution().sum() == pytest.approx(1.0)
    assert labels.items[1].score == pytest.approx(3.0)


@pytest.mark.parametrize(
    "bad_line, message",
    [
        ("3 953980 1 2 3\n", "expected 15 fields"),
        (ava_line(3, "953980", [0, 1, 2, "x", 0, 0, 0, 0, 0, 0]), "vote count 'x' is not a number"),
        (ava_line(3, "953980", [0, 1, 2, -3, 0, 0, 0, 0, 0, 0]), "not a whole number >= 0"),
        (ava_line(3, "953980", [0] * 10), "all ten vote counts are zero"),
    ],
)
def test_a_malformed_ava_line_is_reported_with_its_line_number(tmp_path: Path, bad_line: str, message: str) -> None:
    path = tmp_path / "AVA.txt"
    path.write_text(ava_line(1, "953619", VOTES_A) + "\n" + bad_line)

    with pytest.raises(LabelFileError, match=rf"AVA.txt:3: .*{message}"):
        read_labels(path)


def test_tad66k_csv_gives_single_scores(tmp_path: Path) -> None:
    path = tmp_path / "train.csv"
    path.write_text("image,score\n1.jpg,5.54\n2.jpg,3.1\n")

    labels = read_labels(path, fmt="tad66k")

    assert labels.target == "score"
    assert [(item.image_id, item.score) for item in labels.items] == [("1.jpg", 5.54), ("2.jpg", 3.1)]
    assert labels.items[0].path == tmp_path / "1.jpg"


def test_tad66k_score_outside_0_to_10_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "train.csv"
    path.write_text("image,score\n1.jpg,5.5\n2.jpg,55\n")
    with pytest.raises(LabelFileError, match=r"train.csv:3: score '55' is outside 0..10"):
        read_labels(path, fmt="tad66k")


def test_a_table_may_hold_votes_scores_or_star_ratings(tmp_path: Path) -> None:
    votes = tmp_path / "votes.csv"
    vote_columns = ",".join(f"votes_{i}" for i in range(1, 11))
    votes.write_text(f"path,extra,{vote_columns}\na.jpg,x,{','.join(map(str, VOTES_A))}\n")
    scores = tmp_path / "scores.csv"
    scores.write_text("path,score\na.jpg,7.5\n")
    ratings = tmp_path / "ratings.csv"
    ratings.write_text("file,rating\na.jpg,1\nb.jpg,3\nc.jpg,5\n")

    assert read_labels(votes).target == "votes"
    assert read_labels(votes).items[0].votes == tuple(VOTES_A)
    assert read_labels(scores).items[0].score == 7.5
    rated = read_labels(ratings)
    assert rated.target == "score"
    assert [item.score for item in rated.items] == [1.0, 5.5, 10.0]  # 1-5 stars onto 1-10


def test_a_parquet_table_reports_bad_rows_by_row_number(tmp_path: Path) -> None:
    path = tmp_path / "labels.parquet"
    pq.write_table(pa.table({"path": ["a.jpg", "b.jpg", "c.jpg"], "rating": [4, 2, 9]}), path)

    with pytest.raises(LabelFileError, match=r"labels.parquet row 3: rating 9 is outside 1..5"):
        read_labels(path)


@pytest.mark.parametrize(
    "content, message",
    [
        ("name,score\na.jpg,5\n", "no image column"),
        ("path,colour\na.jpg,red\n", "no label columns"),
        ("path,votes_1,votes_2\na.jpg,1,2\n", "vote columns incomplete"),
        ("path,score\na.jpg,5\na.jpg,6\n", "appears more than once"),
        ("path,score\na.jpg,5,7\n", r"labels.csv:2: more fields than the header"),
        ("path,score\na.jpg,5\nb.jpg,4\n,3\n", r"labels.csv:4: empty image path"),
        ("path,score,split\na.jpg,5,train\nb.jpg,4,holdout\n", r"labels.csv:3: split 'holdout'"),
        ("path,score\n", "holds no labelled images"),
        ("", "is empty; a header line naming the columns comes first"),
    ],
)
def test_malformed_tables_are_refused_with_a_reason(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "labels.csv"
    path.write_text(content)
    with pytest.raises(LabelFileError, match=message):
        read_labels(path)


@pytest.mark.parametrize(
    "saved_as, content",
    [
        ("Excel's CSV UTF-8, with a byte-order mark", "\ufeffpath,score\r\na.jpg,7.5\r\nb;1.jpg,8\r\n".encode()),
        ("Excel where the decimal mark is a comma", b'path;score\r\na.jpg;7,5\r\n"b;1.jpg";8\r\n'),
        ("tab-separated", b"path\tscore\na.jpg\t7.5\nb;1.jpg\t8\n"),
    ],
)
def test_a_table_reads_as_spreadsheets_save_it(tmp_path: Path, saved_as: str, content: bytes) -> None:
    path = tmp_path / "labels.csv"
    path.write_bytes(content)

    labels = read_labels(path)

    assert [(item.image_id, item.score) for item in labels.items] == [("a.jpg", 7.5), ("b;1.jpg", 8.0)], saved_as


def test_a_table_that_is_not_utf8_says_how_to_save_it(tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    path.write_bytes("path,score\ncafé.jpg,5\n".encode("cp1252"))  # Excel's plain "CSV" on Windows

    with pytest.raises(LabelFileError, match=r'labels.csv is not UTF-8 text \(byte 0xe9 at offset 14\); save it as '
                                             r'UTF-8 \(Excel: "CSV UTF-8"\)'):
        read_labels(path)


def test_missing_label_file_or_images_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(LabelFileError, match="does not exist"):
        read_labels(tmp_path / "nope.csv")
    (tmp_path / "labels.csv").write_text("path,score\na.jpg,5\n")
    with pytest.raises(LabelFileError, match="images folder .* does not exist"):
        read_labels(tmp_path / "labels.csv", tmp_path / "no-images")


def _score_rows(count: int) -> str:
    return "".join(f"img_{i:03d}.jpg,{1 + i % 9}\n" for i in range(count))


def test_without_a_split_the_seeded_split_is_90_5_5_and_independent_of_file_order(tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    path.write_text("path,score\n" + _score_rows(200))
    reordered = tmp_path / "reordered.csv"
    reordered.write_text("path,score\n" + "".join(reversed(_score_rows(200).splitlines(keepends=True))))

    split = split_items(read_labels(path).items, seed=7)
    again = split_items(read_labels(reordered).items, seed=7)
    other_seed = split_items(read_labels(path).items, seed=8)

    assert split.sizes() == {"train": 180, "val": 10, "test": 10}
    assert [item.image_id for item in split.val] == [item.image_id for item in again.val]
    assert {item.image_id for item in split.val} != {item.image_id for item in other_seed.val}
    ids = [item.image_id for part in (split.train, split.val, split.test) for item in part]
    assert sorted(ids) == sorted(set(ids)) and len(ids) == 200


def test_official_id_lists_define_test_and_training_images(tmp_path: Path) -> None:
    path = tmp_path / "AVA.txt"
    path.write_text("".join(ava_line(i, str(1000 + i), VOTES_A) for i in range(60)))
    (tmp_path / "test.jpgl").write_text("1000\n1001\n1002\n")
    (tmp_path / "train.csv").write_text("image,score\n" + "".join(f"{1000 + i}.jpg,5\n" for i in range(3, 50)))

    train_ids, test_ids = read_id_list(tmp_path / "train.csv"), read_id_list(tmp_path / "test.jpgl")

    split = split_items(read_labels(path).items, seed=0, train_ids=train_ids, test_ids=test_ids)

    assert sorted(item.image_id for item in split.test) == ["1000", "1001", "1002"]
    assert len(split.train) + len(split.val) == 47  # the val images are held out of the training list
    assert len(split.val) == round(47 * 0.05 / 0.95)
    assert split.unassigned == 10  # in neither list


def test_a_split_column_is_used_as_given(tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    path.write_text("path,score,split\na.jpg,5,train\nb.jpg,6,train\nc.jpg,7,val\nd.jpg,2,test\n")
    split = split_items(read_labels(path).items, seed=0)
    assert [len(split.train), len(split.val), len(split.test)] == [2, 1, 1]
    assert split.method == "split column"


def test_cleaning_leaves_out_missing_empty_and_non_image_files_and_counts_them(tmp_path: Path) -> None:
    images = tmp_path / "images"
    make_photo(images / "good.jpg", seed=1)
    make_photo(images / "good.png", seed=2, fmt="PNG")
    (images / "empty.jpg").write_bytes(b"")
    (images / "text.jpg").write_text("not an image at all")
    path = tmp_path / "labels.csv"
    path.write_text("path,score\ngood.jpg,5\ngood.png,6\nempty.jpg,7\ntext.jpg,3\nmissing.jpg,4\n")

    cleaned = clean(read_labels(path, images), progress=False)

    assert [item.path.name for item in cleaned.items] == ["good.jpg", "good.png"]
    assert cleaned.dropped == {"empty": 1, "not-an-image": 1, "missing": 1}


def test_an_image_that_breaks_while_decoding_is_dropped_from_its_batch_and_counted(tmp_path: Path) -> None:
    images = tmp_path / "images"
    make_photo(images / "a.jpg", seed=1)
    make_photo(images / "b.jpg", seed=2)
    truncated = images / "b.jpg"
    data = truncated.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])  # header intact: passes the clean-up, fails to decode
    path = tmp_path / "labels.csv"
    path.write_text("path,score\na.jpg,5\nb.jpg,6\n")
    labels = read_labels(path, images)
    assert len(clean(labels, progress=False).items) == 2

    dataset = ScoredImages(labels.items, labels.target, image_size=224)
    batch = collate([dataset[0], dataset[1]])

    assert len(batch) == 1 and batch.indices.tolist() == [0]
    assert batch.pixels.shape == (1, 224, 224, 3)
    assert len(batch.failures) == 1


def test_augmentation_depends_on_seed_epoch_and_index_only(tmp_path: Path) -> None:
    make_photo(tmp_path / "a.jpg", size=(300, 200), seed=3)
    (tmp_path / "labels.csv").write_text("path,score\na.jpg,5\n")
    labels = read_labels(tmp_path / "labels.csv")
    augmented = Augmentation(flip=True, crop_from=256)

    def pixels(epoch: int, seed: int = 0):
        dataset = ScoredImages(labels.items, "score", 224, augmented, seed=seed)
        dataset.set_epoch(epoch)
        return dataset[0]["pixels"]

    assert pixels(3).shape == (224, 224, 3)
    assert (pixels(3) == pixels(3)).all()  # the same sample, wherever and whenever it is decoded
    assert any(not (pixels(3) == pixels(epoch)).all() for epoch in range(4, 10))


def test_each_process_gets_a_disjoint_equal_share_of_the_epoch_shuffle() -> None:
    whole = epoch_order(11, seed=0, epoch=2)
    shares = [epoch_order(11, seed=0, epoch=2, rank=rank, world=2) for rank in range(2)]

    assert sorted(whole) == list(range(11))
    assert len(shares[0]) == len(shares[1]) == 5
    assert not set(shares[0]) & set(shares[1])
    assert epoch_order(11, seed=0, epoch=3) != whole


def test_the_command_line_offers_every_label_format() -> None:
    from eat_curate.commands.train import LABEL_FORMATS as CLI_FORMATS
    from training.labels import LABEL_FORMATS

    assert CLI_FORMATS == LABEL_FORMATS
