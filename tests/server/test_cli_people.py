"""`mailgate approvals` with a person's API token (MAILGATE_API_TOKEN): the token names the approver."""

from __future__ import annotations

import json
import uuid

from server.app import Mailgate
from tests.support.cli import Run, mailgate


async def as_person(app: Mailgate, token: str, *args: str) -> Run:
    return await mailgate(app, *args, env={"MAILGATE_API_TOKEN": token})


async def test_the_cli_decides_as_the_tokens_owner_only(app: Mailgate) -> None:
    tag = uuid.uuid4().hex[:8]
    box = f"cli-{tag}@mailgate.local"
    await app.mailboxes.create(box, created_by="test")
    ann = app.identities.add_person(f"ann-{tag}@example.com", approves=[box])
    eve = app.identities.add_person(f"eve-{tag}@example.com")
    first = await app.sends.submit(mailbox=box, to=["c@example.com"], subject="1", body="b")

    impostor = await as_person(app, ann.api_token, "approvals", "approve", first.send_id, "--as", eve.email)
    assert impostor.code == 1 and "cannot act as" in impostor.err
    outsider = await as_person(app, eve.api_token, "approvals", "reject", first.send_id, "--reason", "no")
    assert outsider.code == 1 and "not an approver" in outsider.err
    bogus = await as_person(app, "mgp_" + "x" * 40, "approvals", "approve", first.send_id)
    assert bogus.code == 1 and "not a person's API token" in bogus.err
    assert (await app.sends.status(first.send_id)).status == "pending_approval"

    done = await as_person(app, ann.api_token, "approvals", "approve", first.send_id, "--json")
    assert done.code == 0, done.err
    assert json.loads(done.out)["decision"]["approver"] == ann.email


async def test_approvals_list_with_a_token_shows_only_what_its_owner_may_decide(app: Mailgate) -> None:
    tag = uuid.uuid4().hex[:8]
    box, elsewhere = f"cli-{tag}@mailgate.local", f"other-{tag}@mailgate.local"
    for address in (box, elsewhere):
        await app.mailboxes.create(address, created_by="test")
    ann = app.identities.add_person(f"ann-{tag}@example.com", approves=[box], reviews=[elsewhere])
    helper = app.identities.add_agent(f"helper-{tag}", mailboxes=[box], owner=ann.email)
    theirs = await app.sends.submit(mailbox=box, to=["c@example.com"], subject="1", body="b", requester=helper.name)
    ours = await app.sends.submit(mailbox=box, to=["c@example.com"], subject="2", body="b")
    reviewed = await app.sends.submit(mailbox=elsewhere, to=["c@example.com"], subject="3", body="b")

    listed = await as_person(app, ann.api_token, "approvals", "list", "--limit", "1000", "--json")
    assert listed.code == 0, listed.err
    ids = {s["send_id"] for s in json.loads(listed.out)}
    assert ours.send_id in ids
    assert theirs.send_id not in ids and reviewed.send_id not in ids
    refused = await as_person(app, ann.api_token, "approvals", "approve", theirs.send_id)
    assert refused.code == 1 and f"owns agent {helper.name}" in refused.err
