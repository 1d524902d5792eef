"""`--album` names checked against a database's albums (eat_curate.library.album_names).

The read commands' refusals are tested end to end in test_read_cli.py; here,
what the message says when the database holds many albums, on image rows
written directly.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from eat_curate.library.album_names import LISTED_AT_MOST, AlbumChoiceError, check_albums
from eat_curate.sinks.sql import schema
from eat_curate.sinks.sql.database import create_engine, create_or_upgrade, database_url


@pytest.fixture
def connection(tmp_path):
    url = database_url(str(tmp_path / "albums.db"))
    engine = create_engine(url)
    create_or_upgrade(engine)
    now = datetime.now(timezone.utc)
    with engine.begin() as connection:
        connection.execute(
            schema.images.insert(),
            [{"image_id": f"id{n}", "path": f"/photos/{n}.jpg", "album": f"{2000 + n} trip", "updated_at": now}
             for n in range(LISTED_AT_MOST + 3)],
        )
    with engine.connect() as connection:
        yield connection
    engine.dispose()


def test_known_albums_pass_even_when_this_model_scored_none_of_their_images(connection):
    check_albums(connection, "some-model@abc", ["2000 trip", "2010 trip"])


def test_a_long_album_list_is_cut_short_and_points_to_the_albums_command(connection):
    with pytest.raises(AlbumChoiceError) as refused:
        check_albums(connection, "some-model@abc", ["2000 trip", "zebra"])
    message = str(refused.value)
    assert message.startswith("no album named 'zebra' (the albums: '2000 trip', '2001 trip', ")
    assert "'2007 trip' and 3 more: eat-curate albums lists them)" in message
    assert "2000 trip" not in message.split("(")[0]  # only the unknown name is reported
