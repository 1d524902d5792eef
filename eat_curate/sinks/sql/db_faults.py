"""Which database errors pass by themselves (retry), which mean the storage failed, and which are for good.

By the code the database gives, never by its wording where a code exists:

- PostgreSQL (psycopg): the SQLSTATE. Transient: class 08 (connection
  exceptions), 57P01-57P03 (administrator or crash shutdown, "the database
  system is starting up / shutting down"), 40001 and 40P01 (serialization
  failure, deadlock: the transaction may simply run again), 53300 (too many
  connections). Storage: 53100 (disk full), 58030 (I/O error).
- SQLite: the result code. Transient: SQLITE_BUSY and SQLITE_LOCKED ("database
  is locked" beyond the busy timeout). Storage: SQLITE_FULL, SQLITE_IOERR,
  SQLITE_READONLY, SQLITE_CANTOPEN.
- For good, the database's own state (:func:`is_refusal`): a role without the
  privilege (42501), a read-only transaction or hot standby (25006), and an
  SQLite file that is corrupt or not a database (SQLITE_CORRUPT, SQLITE_NOTADB).
- An established connection that dropped without a code (psycopg's
  OperationalError without SQLSTATE, or one SQLAlchemy took for a
  disconnect): transient.

The one exception is a connection that could not be opened: libpq reports
the server's refusal as text only (no SQLSTATE before a session exists).
There the server's own words for the refusals that are for good — a wrong
password, a missing database or role, no pg_hba.conf entry — stop at once;
anything else (connection refused or reset, timeouts, "starting up",
"shutting down") is retried. A server answering in another language makes
those refusals wait out the retry limit, which ends with the right message.
"""

from __future__ import annotations

import re
import sqlite3
import sys

import sqlalchemy as sa

from eat_curate import exit_codes
from eat_curate.errors import StoreError

TRANSIENT_SQLSTATES = frozenset({"57P01", "57P02", "57P03", "40001", "40P01", "53300"})
TRANSIENT_SQLSTATE_CLASSES = frozenset({"08"})
STORAGE_SQLSTATES = frozenset({"53100", "58030"})

SQLITE_BUSY, SQLITE_LOCKED = 5, 6
SQLITE_STORAGE_CODES = frozenset({8, 10, 13, 14})  # READONLY, IOERR, FULL, CANTOPEN (primary codes)
# The database refuses for good, whatever is retried: the grant, the server's role or the file needs fixing.
REFUSAL_SQLSTATES = frozenset({"42501", "25006"})  # insufficient_privilege, read_only_sql_transaction
SQLITE_REFUSAL_CODES = frozenset({11, 26})  # CORRUPT, NOTADB

# libpq's text for refusals no retry can fix (see the module doc: there is no SQLSTATE to read).
CONNECT_REFUSALS = (
    "password authentication failed",
    "authentication failed",
    "no password supplied",
    "does not exist",  # database or role
    "no pg_hba.conf entry",
    "permission denied",
)


class DatabaseUnreachable(StoreError):
    """A connection could not be opened for a reason that may pass (see :func:`is_transient`)."""

    exit_code = exit_codes.INFRASTRUCTURE.code  # it may pass: a scheduler tries again later

    def __init__(self, where: str, why: str) -> None:
        super().__init__(f"cannot connect to {where}: {why}")
        self.why = why


def driver_error(error: BaseException) -> BaseException:
    """The driver's own exception inside SQLAlchemy's wrapper (or the error itself)."""
    if isinstance(error, sa.exc.DBAPIError) and error.orig is not None:
        return error.orig
    return error


def _sqlstate(error: BaseException) -> str | None:
    state = getattr(error, "sqlstate", None)
    return state if isinstance(state, str) and len(state) == 5 else None


def _sqlite_code(error: BaseException) -> int | None:
    code = getattr(error, "sqlite_errorcode", None)
    return code & 0xFF if isinstance(code, int) else None  # extended codes keep the primary in the low byte


def _psycopg_operational(error: BaseException) -> bool:
    psycopg = sys.modules.get("psycopg")  # only loaded (the postgres extra) when PostgreSQL is in use
    return psycopg is not None and isinstance(error, psycopg.OperationalError)


# libpq's own check of the URL's options, before any server is asked: 'invalid port number: "99999"',
# 'invalid sslmode value: "x"', 'invalid integer value "x" for connection option "connect_timeout"'.
_BAD_OPTION = re.compile(r"invalid [a-z_ ]+(?:value|number)")


def refused_for_good(error: BaseException) -> bool:
    """A connection attempt refused for a reason no wait fixes (bad login, missing database, a bad URL option)."""
    text = str(driver_error(error)).lower()
    return any(marker in text for marker in CONNECT_REFUSALS) or _BAD_OPTION.search(text) is not None


def is_transient(error: BaseException) -> bool:
    """Whether trying the same operation again later may succeed (see the module doc)."""
    if isinstance(error, DatabaseUnreachable):
        return True
    inner = driver_error(error)
    state = _sqlstate(inner)
    if state is not None:
        return state in TRANSIENT_SQLSTATES or state[:2] in TRANSIENT_SQLSTATE_CLASSES
    code = _sqlite_code(inner)
    if code is not None:
        return code in (SQLITE_BUSY, SQLITE_LOCKED)
    if isinstance(error, sa.exc.DBAPIError) and error.connection_invalidated:
        return True  # SQLAlchemy's dialect recognised a dropped connection
    if _psycopg_operational(inner):
        return not refused_for_good(inner)
    return False


def is_storage_fault(error: BaseException) -> bool:
    """Whether the database's storage failed: full, read-only, an I/O error."""
    inner = driver_error(error)
    state = _sqlstate(inner)
    if state is not None:
        return state in STORAGE_SQLSTATES
    code = _sqlite_code(inner)
    return isinstance(inner, sqlite3.Error) and code in SQLITE_STORAGE_CODES


def is_refusal(error: BaseException) -> bool:
    """Whether the database refused for good: no privilege, a read-only server, a corrupt SQLite file, text
    that is not UTF-8."""
    inner = driver_error(error)
    state = _sqlstate(inner)
    if state is not None:
        return state in REFUSAL_SQLSTATES
    return isinstance(inner, sqlite3.Error) and _sqlite_code(inner) in SQLITE_REFUSAL_CODES or holds_text_not_utf8(error)


def holds_text_not_utf8(error: BaseException) -> bool:
    """SQLite text that is not UTF-8 (another tool stored bytes as text): Python's sqlite3 will not read the row.

    sqlite3 raises this itself, without a result code, so its words are all there is to tell it by.
    """
    inner = driver_error(error)
    return (isinstance(inner, sqlite3.OperationalError) and _sqlite_code(inner) is None
            and str(inner).startswith("Could not decode to UTF-8"))


def reason(error: BaseException) -> str:
    """The error in a few words, for a progress line or a one-line message."""
    if isinstance(error, DatabaseUnreachable):
        return f"cannot connect ({error.why})"
    if isinstance(error, StoreError):
        return str(error)
    # PostgreSQL's position in the statement ("LINE 2: CREATE TABLE ... ^") says nothing to the user.
    text = " ".join(re.split(r"\nLINE \d+:", str(driver_error(error)), maxsplit=1)[0].split())
    # libpq: 'connection failed: connection to server at "h", port 5 failed: Connection refused Is the server...'
    text = text.rsplit(" failed: ", 1)[-1]
    text = text.split(" Is the server running", 1)[0]
    text = text.removeprefix("FATAL: ").strip()
    return text if len(text) <= 120 else text[:117] + "..."
