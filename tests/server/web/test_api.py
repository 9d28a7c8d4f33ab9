"""The approver JSON API: roles, decisions, errors."""

from __future__ import annotations

import asyncio

from tests.support.wait import wait_for_status
from tests.support.web import Web


async def pending(web: Web, subject: str = "Hello") -> str:
    result = await web.app.sends.submit(
        mailbox=web.app.settings.default_mailbox, to=["bob@example.com"], subject=subject, body="Body"
    )
    return result.send_id


async def test_healthz_answers_without_a_token(web: Web) -> None:
    response = await web.anonymous.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_only_the_admin_token_reaches_the_api(web: Web) -> None:
    assert (await web.anonymous.get("/api/approvals")).status_code == 401
    refused = await web.agent.get("/api/approvals")
    assert refused.status_code == 403
    assert "agent token" in refused.json()["error"]
    wrong = await web.anonymous.get("/api/approvals", headers={"Authorization": "Bearer nope-nope-nope-nope"})
    assert wrong.status_code == 401
    assert (await web.admin.get("/api/approvals")).status_code == 200


async def test_list_filter_approve_and_the_delivered_email_is_the_edited_one(web: Web) -> None:
    send_id = await pending(web)
    for _ in range(50):  # visibility follows the workflow by a moment
        listed = await web.admin.get(
            "/api/approvals", params={"status": "pending", "mailbox": web.app.settings.default_mailbox}
        )
        if listed.json()["approvals"]:
            break
        await asyncio.sleep(0.1)
    assert [a["send_id"] for a in listed.json()["approvals"]] == [send_id]

    approved = await web.admin.post(
        f"/api/approvals/{send_id}/approve",
        json={
            "approver": "alice",
            "reason": "fine",
            "edits": {"subject": "Edited", "cc": ["carol@example.com"]},
        },
    )
    assert approved.status_code == 200, approved.text
    assert approved.json()["decision"]["approver"] == "alice"
    await wait_for_status(web.app, send_id, ["sent"])
    copies = web.app.sandbox.deliveries(web.app.settings.default_mailbox)
    assert sorted((c.recipient, c.subject) for c in copies) == [
        ("bob@example.com", "Edited"),
        ("carol@example.com", "Edited"),
    ]

    again = await web.admin.post(f"/api/approvals/{send_id}/reject", json={"approver": "bob", "reason": "late"})
    assert again.status_code == 409
    assert "approved by alice" in again.json()["error"]


async def test_reject_requires_a_reason(web: Web) -> None:
    send_id = await pending(web)
    missing = await web.admin.post(f"/api/approvals/{send_id}/reject", json={"approver": "bob"})
    assert missing.status_code == 400
    assert "reason" in missing.json()["error"]
    done = await web.admin.post(f"/api/approvals/{send_id}/reject", json={"approver": "bob", "reason": "no"})
    assert done.status_code == 200
    assert done.json()["status"] == "rejected"


async def test_bad_requests_change_nothing(web: Web) -> None:
    send_id = await pending(web)
    cases = [
        ({"approver": "alice", "edits": {"to": ["x@example.com\r\nBcc: e@evil.com"]}}, 400),
        ({"approver": "alice", "edits": {"subject": "a\nb"}}, 400),
        ({"approver": "", "reason": "r"}, 400),
        ({"approver": "alice", "unexpected": 1}, 400),
        ({"approver": "agent"}, 409),
    ]
    for body, status in cases:
        response = await web.admin.post(f"/api/approvals/{send_id}/approve", json=body)
        assert response.status_code == status, (body, response.text)
    malformed = await web.admin.post(
        f"/api/approvals/{send_id}/approve",
        content=b"{not json",
        headers={"content-type": "application/json"},
    )
    assert malformed.status_code == 400
    huge = await web.admin.post(f"/api/approvals/{send_id}/approve", json={"approver": "a", "reason": "x" * 2_000_000})
    assert huge.status_code == 413
    assert (await web.app.sends.status(send_id)).status == "pending_approval"


async def test_unknown_and_malformed_send_ids(web: Web) -> None:
    unknown = await web.admin.post("/api/approvals/send-aaaaaaaaaaaaaaaaaaaa/approve", json={"approver": "a"})
    assert unknown.status_code == 404
    malformed = await web.admin.post("/api/approvals/whatever/approve", json={"approver": "a"})
    assert malformed.status_code == 400


async def test_humans_set_mailbox_modes_through_the_api(web: Web) -> None:
    mailbox = web.app.settings.default_mailbox
    response = await web.admin.post(f"/api/mailboxes/{mailbox}/mode", json={"mode": "autonomous", "actor": "ops"})
    assert response.status_code == 200
    assert response.json()["mode"] == "autonomous"
    boxes = (await web.admin.get("/api/mailboxes")).json()["mailboxes"]
    assert {b["address"]: b["oversight_mode"] for b in boxes}[mailbox] == "autonomous"


async def test_foreign_origin_and_unexpected_host_get_nothing(web: Web) -> None:
    foreign = await web.admin.get("/api/approvals", headers={"Origin": "http://evil.example"})
    assert foreign.status_code == 403
    rebound = await web.admin.get("/api/approvals", headers={"Host": "evil.example:8025"})
    assert rebound.status_code == 421


async def test_reviews_upgrades_policies_and_audit_over_the_api(web: Web) -> None:
    mailbox = web.app.settings.default_mailbox
    configured = await web.admin.post(
        f"/api/mailboxes/{mailbox}", json={"actor": "ops", "allow": ["example.com"], "rate_per_day": 100}
    )
    assert configured.status_code == 200, configured.text
    assert configured.json()["allow"] == ["example.com"]
    invalid = await web.admin.post(f"/api/mailboxes/{mailbox}", json={"actor": "ops", "rate_per_day": -1})
    assert invalid.status_code == 400
    unknown_field = await web.admin.post(f"/api/mailboxes/{mailbox}", json={"actor": "ops", "mode": "autonomous"})
    assert unknown_field.status_code == 400

    await web.admin.post(f"/api/mailboxes/{mailbox}/mode", json={"mode": "monitored", "actor": "ops"})
    sent = await web.app.sends.submit(mailbox=mailbox, to=["b@example.com"], subject="s", body="b")
    await wait_for_status(web.app, sent.send_id, ["sent"])
    reviews = (await web.admin.get("/api/reviews")).json()["reviews"]
    assert [r["send_id"] for r in reviews] == [sent.send_id]
    acked = await web.admin.post(f"/api/reviews/{sent.send_id}/ack", json={"reviewer": "rita"})
    assert acked.status_code == 200
    assert (await web.admin.get("/api/reviews")).json()["reviews"] == []

    upgrade = await web.app.mailboxes.request_upgrade(mailbox, "autonomous", "bulk", requested_by="agent")
    upgrades = (await web.admin.get("/api/upgrades")).json()["upgrades"]
    assert [u["code"] for u in upgrades] == [upgrade.code]
    assert (await web.agent.get("/api/upgrades")).status_code == 403

    audit = await web.admin.get("/api/audit", params={"mailbox": mailbox, "limit": 5})
    assert audit.status_code == 200
    assert len(audit.json()["events"]) == 5
    assert audit.json()["next_cursor"]
    bad_cursor = await web.admin.get("/api/audit", params={"cursor": "zz"})
    assert bad_cursor.status_code == 400
