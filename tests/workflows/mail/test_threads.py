"""Threading by headers: JWZ ordering, and the store's threads under any arrival order."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from workflows.mail.threads import (
    ThreadItem,
    base_subject,
    message_ids,
    order_thread,
    reply_references,
    reply_subject,
)
from workflows.providers.sandbox.store import SandboxStore
from workflows.read_models import EmailQuery

T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def item(key: str, parents: tuple[str, ...] = (), minutes: int = 0) -> ThreadItem:
    return ThreadItem(
        key=key,
        message_id=f"<{key}@x>",
        parent_ids=tuple(f"<{p}@x>" for p in parents),
        date=T0 + timedelta(minutes=minutes),
    )


def layout(items: list[ThreadItem]) -> list[tuple[str, int, str | None]]:
    return [(p.key, p.depth, p.parent_key) for p in order_thread(items)]


CONVERSATION = [
    item("a", (), 0),
    item("b", ("a",), 1),
    item("c", ("a", "b"), 2),
    item("d", ("a",), 3),
    item("e", ("a", "b", "c"), 4),
]
EXPECTED = [("a", 0, None), ("b", 1, "a"), ("c", 2, "b"), ("e", 3, "c"), ("d", 1, "a")]


@pytest.mark.parametrize("order", list(itertools.permutations(range(5))))
def test_any_arrival_order_gives_the_same_tree(order: tuple[int, ...]) -> None:
    assert layout([CONVERSATION[i] for i in order]) == EXPECTED


def test_missing_parents_keep_their_children_together() -> None:
    # "b" was never received; "c" and "d" reply to it, "e" to "c".
    items = [item("a"), item("c", ("a", "b"), 2), item("d", ("a", "b"), 3), item("e", ("a", "b", "c"), 4)]
    assert layout(items) == [("a", 0, None), ("c", 1, "a"), ("e", 2, "c"), ("d", 1, "a")]


def test_a_thread_whose_root_is_missing_has_sibling_roots() -> None:
    items = [item("x", ("root",), 1), item("y", ("root",), 2)]
    assert layout(items) == [("x", 0, None), ("y", 0, None)]


def test_cycles_in_references_are_broken_not_followed() -> None:
    items = [item("a", ("b",), 0), item("b", ("a",), 1), item("c", ("c", "a"), 2)]
    placed = layout(items)
    assert sorted(k for k, _, _ in placed) == ["a", "b", "c"]
    assert len(placed) == 3


def test_duplicate_message_ids_are_both_shown() -> None:
    items = [item("a"), ThreadItem(key="a2", message_id="<a@x>", parent_ids=(), date=T0 + timedelta(minutes=1))]
    assert [k for k, _, _ in layout(items)] == ["a", "a2"]


def test_a_deep_thread_is_ordered_without_recursion() -> None:
    items = [item("m0")] + [item(f"m{i}", (f"m{i - 1}",), i) for i in range(1, 3000)]
    placed = order_thread(reversed(items))
    assert placed[-1].key == "m2999" and placed[-1].depth == 2999


def test_message_ids_keep_only_well_formed_ids() -> None:
    assert message_ids("<a@x> junk <b@y>\r\n <a@x>") == ["<a@x>", "<b@y>"]
    assert message_ids("bare@id.example") == ["<bare@id.example>"]
    assert message_ids("<no-at-sign>") == []
    assert message_ids("<a@x>\r\nBcc: evil@example.com") == ["<a@x>"]
    assert message_ids("") == []


@pytest.mark.parametrize(
    ("subject", "reply"),
    [
        ("Lunch", "Re: Lunch"),
        ("Re: Lunch", "Re: Lunch"),
        ("RE: re: Re[2]: Lunch", "Re: Lunch"),
        ("Aw: Lunch", "Re: Lunch"),
        ("Re: Fwd: Lunch", "Re: Fwd: Lunch"),
        ("  Re :  Lunch  ", "Re: Lunch"),
        ("", "Re:"),
    ],
)
def test_replies_get_exactly_one_re(subject: str, reply: str) -> None:
    assert reply_subject(subject) == reply
    assert base_subject(reply) == base_subject(subject)


def test_reply_references_follow_rfc_5322() -> None:
    assert reply_references(("<r@x>", "<p@x>"), "<p@x>", "<m@x>") == ("<r@x>", "<p@x>", "<m@x>")
    assert reply_references((), "<p@x>", "<m@x>") == ("<p@x>", "<m@x>")
    assert reply_references((), "", "<m@x>") == ("<m@x>",)
    long = tuple(f"<{i}@x>" for i in range(50))
    trimmed = reply_references(long, "", "<m@x>")
    assert len(trimmed) == 20 and trimmed[0] == "<0@x>" and trimmed[-1] == "<m@x>"


# --- the store: threads assigned at delivery, in any order -----------------------------------


def raw(key: str, subject: str, parents: tuple[str, ...] = ()) -> bytes:
    headers = f"Message-ID: <{key}@x>\r\nFrom: bob@example.com\r\nTo: agent@mailgate.local\r\nSubject: {subject}\r\n"
    if parents:
        headers += f"References: {' '.join(f'<{p}@x>' for p in parents)}\r\nIn-Reply-To: <{parents[-1]}@x>\r\n"
    return (headers + f"\r\nbody {key}\r\n").encode()


MESSAGES = {
    "a": raw("a", "Plan"),
    "b": raw("b", "Re: Plan", ("a",)),
    "c": raw("c", "Re: Plan", ("a", "b")),
    "d": raw("d", "Re: Plan", ("a",)),
    "other": raw("other", "Unrelated"),
}


def threads_of(store: SandboxStore) -> dict[str, str]:
    page = store.list_emails("agent@mailgate.local", EmailQuery(limit=100))
    return {e.message_id.strip("<>").split("@")[0]: e.thread_id for e in page.emails}


@pytest.mark.parametrize(
    "order", [("a", "b", "c", "d"), ("d", "c", "b", "a"), ("c", "a", "d", "b"), ("b", "d", "c", "a")]
)
def test_the_store_threads_out_of_order_arrivals_together(tmp_path: Path, order: tuple[str, ...]) -> None:
    store = SandboxStore(tmp_path / "s.db")
    store.create_mailbox("agent@mailgate.local")
    store.deliver(MESSAGES["other"], "bob@example.com", ["agent@mailgate.local"])
    for key in order:
        store.deliver(MESSAGES[key], "bob@example.com", ["agent@mailgate.local"])
    threads = threads_of(store)
    assert len({threads[k] for k in "abcd"}) == 1
    assert threads["other"] != threads["a"]


def test_two_threads_joined_by_a_later_message_merge_and_the_old_id_still_works(tmp_path: Path) -> None:
    store = SandboxStore(tmp_path / "s.db")
    store.create_mailbox("agent@mailgate.local")
    store.deliver(raw("c", "Re: Plan", ("a", "b")), "bob@example.com", ["agent@mailgate.local"])
    store.deliver(raw("x", "Re: Plan", ("z",)), "bob@example.com", ["agent@mailgate.local"])
    before = threads_of(store)
    assert before["c"] != before["x"]
    store.deliver(raw("y", "Re: Plan", ("b", "z")), "bob@example.com", ["agent@mailgate.local"])
    after = threads_of(store)
    assert after["c"] == after["x"] == after["y"]
    for old in (before["c"], before["x"]):
        page = store.list_emails("agent@mailgate.local", EmailQuery(thread_id=old, limit=10))
        assert len(page.emails) == 3


def test_subject_grouping_only_for_replies_without_any_reference(tmp_path: Path) -> None:
    store = SandboxStore(tmp_path / "s.db")
    store.create_mailbox("agent@mailgate.local")
    store.deliver(raw("a", "Budget 2027"), "bob@example.com", ["agent@mailgate.local"])
    store.deliver(raw("b", "RE: budget 2027"), "bob@example.com", ["agent@mailgate.local"])  # headers dropped
    store.deliver(raw("c", "Budget 2027"), "bob@example.com", ["agent@mailgate.local"])  # a new thread
    store.deliver(raw("d", "Re: Budget 2027", ("elsewhere",)), "bob@example.com", ["agent@mailgate.local"])
    threads = threads_of(store)
    assert threads["b"] == threads["a"]
    assert threads["c"] != threads["a"]
    assert threads["d"] not in (threads["a"], threads["c"])


def test_sent_and_received_mail_share_a_thread(tmp_path: Path) -> None:
    store = SandboxStore(tmp_path / "s.db")
    store.create_mailbox("agent@mailgate.local")
    store.deliver(raw("a", "Plan"), "bob@example.com", ["agent@mailgate.local"])
    ours = raw("ours", "Re: Plan", ("a",)).replace(b"From: bob@example.com", b"From: agent@mailgate.local")
    store.deliver(ours, "agent@mailgate.local", ["bob@example.com"])
    store.deliver(raw("answer", "Re: Plan", ("a", "ours")), "bob@example.com", ["agent@mailgate.local"])
    page = store.list_emails("agent@mailgate.local", EmailQuery(folder=None, limit=10))
    assert {e.folder for e in page.emails} == {"inbox", "sent"}
    assert len({e.thread_id for e in page.emails}) == 1
    reply = store.find_reply("agent@mailgate.local", "<ours@x>")
    assert reply is not None and reply.message_id == "<answer@x>"
