"""The IMAP index on both engines, as several processes share it: UIDs past 2^31, the same
message fetched twice, a UIDVALIDITY change, and one syncer at a time (the lease)."""

from __future__ import annotations

import time
from pathlib import Path

from workflows.providers.smtp_imap.index import ImapIndex
from workflows.read_models import EmailQuery
from workflows.store import open_database

BOX = "alice@example.test"
BIG_UID = 3_000_000_000  # IMAP UIDs are unsigned 32-bit


def _raw(n: int) -> bytes:
    return (
        f"Message-ID: <m{n}@example.test>\r\nFrom: bob@example.test\r\nTo: {BOX}\r\n"
        f"Subject: note {n}\r\n\r\nbody {n}\r\n"
    ).encode()


def test_two_index_objects_on_one_database_store_each_message_once(tmp_path: Path, database_url: str | None) -> None:
    first = ImapIndex(open_database(tmp_path / "i.db", database_url, name="imap_x"), BOX)
    second = ImapIndex(open_database(tmp_path / "i.db", database_url, name="imap_x"), BOX)
    first.reset_folder("INBOX", 7)
    assert first.store_batch("INBOX", "inbox", {}, [(BIG_UID, _raw(1), False, None)], BIG_UID, held=False) == 1
    # The other process fetched the same message (and an older UID): nothing twice, last_uid never goes back.
    assert second.store_batch("INBOX", "inbox", {}, [(BIG_UID, _raw(1), True, None)], 5, held=False) == 0
    assert second.folder_state("INBOX") == (7, BIG_UID)
    ids = [e.email_id for e in second.list_emails(BOX, EmailQuery()).emails]
    assert len(ids) == 1 and first.uid_of(int(ids[0])) == ("INBOX", BIG_UID)
    second.reset_folder("INBOX", 8)
    assert first.folder_state("INBOX") == (8, 0) and first.uid_of(int(ids[0])) is None


def test_one_syncer_at_a_time_and_a_dead_holder_expires(tmp_path: Path, database_url: str | None) -> None:
    first = ImapIndex(open_database(tmp_path / "i.db", database_url, name="imap_x"), BOX)
    second = ImapIndex(open_database(tmp_path / "i.db", database_url, name="imap_x"), BOX)
    assert first.take_lease()
    assert first.take_lease()  # renewing one's own
    assert not second.take_lease()
    first.drop_lease()
    assert second.take_lease(seconds=-1)  # taken, but already expired: as if its holder was killed
    expires = second.db.query("SELECT expires FROM sync_lease")[0][0]
    assert abs(expires - (time.time() - 1)) < 5  # kept to the second (a 4-byte float is not)
    assert first.take_lease()
