"""Search over the sandbox's mail index (also the IMAP index): SQL conditions for a parsed
query, and the full-text index kept beside the messages (SQLite FTS5 over subject and body;
on PostgreSQL a tsvector per message, ``workflows/providers/sandbox/postgres.py``)."""

from __future__ import annotations

from typing import Any

from workflows.mail.search_query import SearchQuery
from workflows.providers.sandbox import postgres
from workflows.providers.sandbox.index import parse_thread_key, resolve_thread
from workflows.store import Tx

FTS_SCHEMA = (
    "CREATE VIRTUAL TABLE messages_fts USING fts5(subject, body, content='messages', content_rowid='id',"
    " tokenize='unicode61 remove_diacritics 2')"
)
LABELS_SCHEMA = """
CREATE TABLE IF NOT EXISTS labels (
    message INTEGER NOT NULL,
    label TEXT NOT NULL COLLATE NOCASE,
    PRIMARY KEY (message, label)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS labels_label ON labels (label, message);
"""
# Folders no agent read ever shows, and folders a search leaves out unless it names them.
HIDDEN_FOLDERS = ("notices", "discarded")
SEARCH_SKIPS = ("trash", "drafts")
STANDARD_FOLDERS = ("inbox", "sent", "archive", "trash", "drafts")
# bm25 weights: a word in the subject counts more than one in the body.
RANK = "bm25(messages_fts, 4.0, 1.0)"


def migrate_search(db: Tx) -> None:
    """Create the full-text index and labels; index the mail already stored (once)."""
    if db.dialect == "postgresql":
        return  # postgres.SCHEMA has both
    for statement in LABELS_SCHEMA.split(";"):
        if statement.strip():
            db.execute(statement)
    if db.execute("SELECT 1 FROM sqlite_master WHERE name = 'messages_fts'").fetchone() is None:
        db.execute(FTS_SCHEMA)
        db.execute("INSERT INTO messages_fts(messages_fts) VALUES ('rebuild')")


def index_text(db: Tx, row_id: int, subject: str, body: str) -> None:
    if db.dialect == "postgresql":
        postgres.index_text(db, row_id, subject, body)
        return
    db.execute("INSERT INTO messages_fts(rowid, subject, body) VALUES (?, ?, ?)", (row_id, subject, body))


def unindex_text(db: Tx, row_id: int) -> None:
    """Take a row out of the full-text index (external content: the old values must be given)."""
    if db.dialect == "postgresql":
        db.execute("DELETE FROM message_words WHERE id = ?", (row_id,))
        return
    db.execute(
        "INSERT INTO messages_fts(messages_fts, rowid, subject, body) SELECT 'delete', id, subject, body"
        " FROM messages WHERE id = ?",
        (row_id,),
    )


def reindex_text(db: Tx) -> None:
    """Rebuild the full-text index from the messages (after rows were written straight into them)."""
    if db.dialect == "postgresql":
        postgres.reindex(db)
    else:
        db.execute("INSERT INTO messages_fts(messages_fts) VALUES ('rebuild')")


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _phrase(words: tuple[str, ...]) -> str:
    return '"' + " ".join(words) + '"'  # words are letters and digits only: nothing to escape


def match_expression(query: SearchQuery, dialect: str = "sqlite") -> str | None:
    """The words of a query as the engine's full-text index takes them (FTS5 MATCH or a tsquery)."""
    if dialect == "postgresql":
        return postgres.query(query)
    parts = [_phrase(t) for t in query.terms] + [f"subject : {_phrase(t)}" for t in query.subject]
    return " AND ".join(parts) or None


def conditions(
    db: Tx, query: SearchQuery, *, default_folder: str | None, with_match: bool = True
) -> tuple[list[str], list[Any]]:
    """WHERE conditions (on table ``messages``) and their parameters; held mail is never included.
    ``with_match=False`` leaves the words out, for a caller that joins the full-text index itself."""
    pg = db.dialect == "postgresql"
    like = "ILIKE" if pg else "LIKE"  # SQLite's LIKE already ignores (ASCII) case
    where = ["held = 0", f"folder NOT IN {HIDDEN_FOLDERS!r}"]
    params: list[Any] = []
    folder = query.folder or default_folder
    if folder:
        # Standard folders are stored lower-case: a plain comparison keeps the listing index usable.
        if folder in STANDARD_FOLDERS:
            where.append("folder = ?")
        else:
            where.append("lower(folder) = lower(?)" if pg else "folder = ? COLLATE NOCASE")
        params.append(folder)
    else:
        where.append(f"folder NOT IN {SEARCH_SKIPS!r}")
    match = match_expression(query, db.dialect) if with_match else None
    if match:
        if pg:
            where.append("id IN (SELECT id FROM message_words WHERE words @@ ?::tsquery)")
        else:
            where.append("id IN (SELECT rowid FROM messages_fts WHERE messages_fts MATCH ?)")
        params.append(match)
    for sender in query.senders:
        where.append(f"(sender {like} ? ESCAPE '\\' OR sender_name {like} ? ESCAPE '\\')")
        params += [_like(sender)] * 2
    for recipient in query.recipients:
        where.append(f"(to_json {like} ? ESCAPE '\\' OR cc_json {like} ? ESCAPE '\\')")
        params += [_like(recipient)] * 2
    if query.has_attachment:
        where.append("has_attachments = 1")
    if query.unread is not None:
        where.append("unread = ?")
        params.append(int(query.unread))
    for label in query.labels:
        where.append("id IN (SELECT message FROM labels WHERE label = ?)")
        params.append(label)
    if query.after is not None:
        where.append("received_at >= ?")
        params.append(query.after.isoformat())
    if query.before is not None:
        where.append("received_at < ?")
        params.append(query.before.isoformat())
    if query.thread is not None:
        number = parse_thread_key(query.thread)
        where.append("thread_id = ?")
        params.append(resolve_thread(db, number) if number is not None else -1)
    return where, params


# --- keeping search fast on a large index ----------------------------------------------------

# The planner's statistics are refreshed when the index has grown this much since they were made
# (bounded work: ANALYZE reads at most ANALYSIS_LIMIT rows per index).
REANALYZE_GROWTH = 2.0
ANALYSIS_LIMIT = 1000


def refresh_statistics(engine: Any) -> None:
    """Give SQLite's query planner a picture of the index (sqlite_stat1) once it has grown:
    without one it takes ``mailbox = ?`` for selective and reads and sorts every message of a
    mailbox (at 100,000 messages `label:urgent has:attachment` took 77 ms, 3 ms with statistics;
    check_inbox with a word 47 ms, 2 ms; benchmarks/search_results.md). PostgreSQL's autovacuum
    keeps its own statistics."""
    if engine.dialect != "sqlite":
        return
    with engine.read() as tx:
        top = int(tx.execute("SELECT coalesce(max(id), 0) FROM messages").fetchone()[0])
        row = tx.execute("SELECT value FROM counters WHERE name = 'analyzed_at'").fetchone()
    analyzed = int(row[0]) if row else 0
    if top < 1000 or top <= analyzed * REANALYZE_GROWTH:
        return
    with engine.transaction() as tx:
        tx.execute(f"PRAGMA analysis_limit={ANALYSIS_LIMIT}")
        tx.execute("ANALYZE messages")
        tx.execute("ANALYZE labels")
        tx.execute("INSERT OR REPLACE INTO counters VALUES ('analyzed_at', ?)", (top,))
