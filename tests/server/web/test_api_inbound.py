"""The approver API for inbound mail held by gated_all: list, release, discard."""

from __future__ import annotations

from tests.support.inbox import receive
from tests.support.web import Web


async def test_held_mail_is_listed_released_and_discarded_by_the_admin_only(web: Web) -> None:
    app = web.app
    mailbox = app.settings.default_mailbox
    await app.mailboxes.set_mode(mailbox, "gated_all", actor="ops", role="human")
    await receive(app, subject="First")
    await receive(app, subject="Second")
    assert (await web.agent.get("/api/inbound")).status_code == 403
    listed = await web.admin.get("/api/inbound", params={"mailbox": mailbox})
    assert listed.status_code == 200
    held = listed.json()["inbound"]
    assert [h["subject"] for h in held] == ["First", "Second"]

    first, second = held[0]["email_id"], held[1]["email_id"]
    released = await web.admin.post(f"/api/inbound/{mailbox}/{first}/release", json={"actor": "alice"})
    assert released.status_code == 200 and released.json()["held"] is False
    refused = await web.admin.post(f"/api/inbound/{mailbox}/{first}/release", json={"actor": "alice"})
    assert refused.status_code == 404
    bad = await web.admin.post(f"/api/inbound/{mailbox}/{second}/discard", json={})
    assert bad.status_code == 400 and "actor" in bad.json()["error"]
    discarded = await web.admin.post(f"/api/inbound/{mailbox}/{second}/discard", json={"actor": "alice"})
    assert discarded.status_code == 200
    assert [e.subject for e in (await app.inbox.check(mailbox)).emails] == ["First"]
    assert (await web.admin.get("/api/inbound")).json()["inbound"] == []
