"""The `mailgate` command line, run as a real subprocess against the session's Temporal server."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

from server.app import Mailgate
from tests.support.cli import MAILGATE, mailgate
from tests.support.wait import wait_for_status


async def pending(app: Mailgate, subject: str = "Hello") -> str:
    result = await app.sends.submit(
        mailbox=app.settings.default_mailbox, to=["bob@example.com"], subject=subject, body="Body"
    )
    return result.send_id


async def test_exit_codes_are_right_on_every_one_of_30_runs(app: Mailgate) -> None:
    send_id = await pending(app)
    unknown = "send-aaaaaaaaaaaaaaaaaaaa"
    codes: list[tuple[int, int]] = []
    for batch in range(10):
        runs = await asyncio.gather(
            mailgate(app, "sends", "show", send_id, "--json"),
            mailgate(app, "sends", "show", unknown),
            mailgate(app, "approvals", "list", "--json"),
        )
        codes += [(0, runs[0].code), (1, runs[1].code), (0, runs[2].code)]
        assert json.loads(runs[0].out)["send_id"] == send_id, batch
        assert "no send with id" in runs[1].err
    assert len(codes) == 30
    assert [actual for _, actual in codes] == [expected for expected, _ in codes]


async def test_approve_from_the_cli_delivers_once(app: Mailgate) -> None:
    send_id = await pending(app)
    listed = await mailgate(app, "approvals", "list", "--json", "--mailbox", app.settings.default_mailbox)
    assert listed.code == 0
    assert [row["send_id"] for row in json.loads(listed.out)] == [send_id]

    approved = await mailgate(app, "approvals", "approve", send_id, "--as", "alice", "--reason", "ok", "--json")
    assert approved.code == 0, approved.err
    assert json.loads(approved.out)["decision"]["approver"] == "alice"
    await wait_for_status(app, send_id, ["sent"])

    again = await mailgate(app, "approvals", "approve", send_id, "--as", "bob")
    assert again.code == 1
    assert "approved by alice" in again.err

    copies = await mailgate(app, "sandbox", "list", "--json", "--mailbox", app.settings.default_mailbox)
    rows = json.loads(copies.out)
    assert len(rows) == 1
    assert {"message_id", "from", "to", "subject", "delivered_at"} <= set(rows[0])
    assert rows[0]["to"] == ["bob@example.com"]


async def test_reject_needs_a_reason_and_edits_are_validated(app: Mailgate) -> None:
    send_id = await pending(app)
    no_reason = await mailgate(app, "approvals", "reject", send_id, "--as", "carol")
    assert no_reason.code == 2
    bad_edit = await mailgate(
        app, "approvals", "approve", send_id, "--as", "carol", "--to", "x@example.com\nBcc: e@e.com"
    )
    assert bad_edit.code == 1
    assert "control character" in bad_edit.err
    rejected = await mailgate(app, "approvals", "reject", send_id, "--as", "carol", "--reason", "no")
    assert rejected.code == 0
    assert (await app.sends.status(send_id)).status == "rejected"


async def test_mailbox_commands(app: Mailgate) -> None:
    address = "cli-" + app.settings.default_mailbox
    created = await mailgate(app, "mailbox", "create", address, "--json")
    assert created.code == 0, created.err
    assert json.loads(created.out)["mode"] == "gated_send"
    loosened = await mailgate(app, "mailbox", "set-mode", address, "monitored", "--as", "ops", "--json")
    assert json.loads(loosened.out)["mode"] == "monitored"
    listed = json.loads((await mailgate(app, "mailbox", "list", "--json")).out)
    assert {m["address"]: m["oversight_mode"] for m in listed}[address] == "monitored"
    bad = await mailgate(app, "mailbox", "set-mode", address, "lenient")
    assert bad.code == 2


async def test_help_explains_every_command() -> None:
    process = await asyncio.create_subprocess_exec(*MAILGATE, "--help", stdout=asyncio.subprocess.PIPE)
    out, _ = await process.communicate()
    for command in ("serve", "mcp", "worker", "approvals", "mailbox", "sends", "sandbox", "setup"):
        assert command in out.decode()


async def test_trust_commands_reviews_upgrades_configure_audit(app: Mailgate) -> None:
    mailbox = app.settings.default_mailbox
    configured = await mailgate(
        app,
        "mailbox",
        "configure",
        mailbox,
        "--reviewer",
        "rita@example.com",
        "--deny",
        "evil.com",
        "--rate-per-hour",
        "10",
        "--as",
        "ops",
        "--json",
    )
    assert configured.code == 0, configured.err
    config = json.loads(configured.out)
    assert (config["reviewers"], config["deny"], config["rate_per_hour"]) == (["rita@example.com"], ["evil.com"], 10)
    bad = await mailgate(app, "mailbox", "configure", mailbox, "--allow", "not a domain!")
    assert bad.code == 1

    await app.mailboxes.set_mode(mailbox, "monitored", actor="ops", role="human")
    sent = await app.sends.submit(mailbox=mailbox, to=["b@example.com"], subject="fyi", body="b")
    await wait_for_status(app, sent.send_id, ["sent"])
    reviews = await mailgate(app, "reviews", "list", "--json")
    assert [r["send_id"] for r in json.loads(reviews.out)] == [sent.send_id]
    acked = await mailgate(app, "reviews", "ack", sent.send_id, "--as", "rita")
    assert acked.code == 0, acked.err
    twice = await mailgate(app, "reviews", "ack", sent.send_id, "--as", "rita")
    assert twice.code == 1
    assert "already reviewed by rita" in twice.err

    upgrade = await app.mailboxes.request_upgrade(mailbox, "autonomous", "bulk", requested_by="agent")
    listed = json.loads((await mailgate(app, "upgrades", "list", "--json")).out)
    assert [(u["code"], u["request"]["mode"]) for u in listed] == [(upgrade.code, "autonomous")]

    audit = await mailgate(app, "mailbox", "audit", mailbox, "--json")
    kinds = {e["kind"] for e in json.loads(audit.out)}
    assert {"configured", "mode_changed", "review_acked", "upgrade_requested", "sent"} <= kinds


async def test_inbound_list_release_and_discard(app: Mailgate) -> None:
    from tests.support.inbox import receive

    mailbox = app.settings.default_mailbox
    await app.mailboxes.set_mode(mailbox, "gated_all", actor="ops", role="human")
    await receive(app, subject="Held by the CLI test")
    await receive(app, subject="Another")
    listed = await mailgate(app, "inbound", "list", "--mailbox", mailbox, "--json")
    assert listed.code == 0, listed.err
    held = json.loads(listed.out)
    assert [h["subject"] for h in held] == ["Held by the CLI test", "Another"]
    table = await mailgate(app, "inbound", "list")
    assert "Held by the CLI test" in table.out and "EMAIL_ID" in table.out

    released = await mailgate(app, "inbound", "release", held[0]["email_id"], "--as", "alice")
    assert released.code == 0, released.err
    assert "released" in released.out
    again = await mailgate(app, "inbound", "release", held[0]["email_id"], "--mailbox", mailbox)
    assert again.code == 1 and "no held email" in again.err
    discarded = await mailgate(app, "inbound", "discard", held[1]["email_id"], "--mailbox", mailbox, "--json")
    assert discarded.code == 0 and json.loads(discarded.out)["email_id"] == held[1]["email_id"]
    assert [e.subject for e in (await app.inbox.check(mailbox)).emails] == ["Held by the CLI test"]


def test_an_unexpected_error_leaves_through_finish_with_its_traceback_and_status_1() -> None:
    script = (
        "from server.cli import run\n"
        "async def main() -> int:\n"
        "    raise RuntimeError('boom in a command')\n"
        "run(main)\n"
        "print('not reached')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "RuntimeError: boom in a command" in done.stderr
    assert "not reached" not in done.stdout


async def test_sends_show_marks_what_a_terminal_would_hide(app: Mailgate) -> None:
    body = "Pay to 12\u200b34.\x1b[8mcard 4111 1111 1111 1111\x1b[0m\n<!-- and this -->"
    result = await app.sends.submit(
        mailbox=app.settings.default_mailbox, to=["bob@example.com"], subject="Invoice", body=body
    )
    shown = await mailgate(app, "sends", "show", result.send_id)
    assert shown.code == 0, shown.err
    assert "\x1b" not in shown.out and "\u200b" not in shown.out
    assert "Pay to 12<U+200B>34.<U+001B>[8mcard 4111 1111 1111 1111<U+001B>[0m" in shown.out
    assert "LOOK CLOSELY: The body contains 3 invisible" in shown.out
    assert "an HTML view would hide" in shown.out.replace("An HTML", "an HTML")
    assert "bcc:       (none)" in shown.out


async def test_approvals_show_shows_a_send_as_sends_show_does(app: Mailgate) -> None:
    send_id = await pending(app, "Shown twice")
    shown = await asyncio.gather(
        mailgate(app, "approvals", "show", send_id, "--json"), mailgate(app, "sends", "show", send_id, "--json")
    )
    assert [s.code for s in shown] == [0, 0], [s.err for s in shown]
    assert json.loads(shown[0].out) == json.loads(shown[1].out)
    assert json.loads(shown[0].out)["original"]["subject"] == "Shown twice"


async def test_every_approvals_command_says_it_takes_trash_requests() -> None:
    for command in ([], ["list"], ["show"], ["approve"], ["reject"]):
        process = await asyncio.create_subprocess_exec(
            *MAILGATE, "approvals", *command, "--help", stdout=asyncio.subprocess.PIPE
        )
        out, _ = await process.communicate()
        assert process.returncode == 0 and "trash request" in out.decode(), (command, out.decode())
