"""People on the approver API: their own tokens, their own mailboxes, decisions in their own name."""

from __future__ import annotations

import re
import uuid

import httpx

from server.identities import NewPerson
from tests.support.web import Web


def as_person(web: Web, person: NewPerson) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=web.url, headers={"Authorization": f"Bearer {person.api_token}"}, timeout=30)


async def test_each_person_sees_and_decides_only_their_mailboxes(web: Web) -> None:
    tag = uuid.uuid4().hex[:8]
    sales, finance = f"sales-{tag}@mailgate.local", f"finance-{tag}@mailgate.local"
    for box in (sales, finance):
        await web.app.mailboxes.create(box, created_by="test")
    ann = web.app.identities.add_person(f"ann-{tag}@example.com", approves=[sales])
    bob = web.app.identities.add_person(f"bob-{tag}@example.com", approves=[finance])
    carol = web.app.identities.add_person(f"carol-{tag}@example.com", reviews=[sales])
    ours = await web.app.sends.submit(mailbox=sales, to=["c@example.com"], subject="S", body="b")
    theirs = await web.app.sends.submit(mailbox=finance, to=["c@example.com"], subject="F", body="b")

    async with as_person(web, ann) as a, as_person(web, carol) as c, as_person(web, bob) as b:
        listed = (await a.get("/api/approvals")).json()["approvals"]
        assert ours.send_id in {s["send_id"] for s in listed}
        assert {s["mailbox"] for s in listed} == {sales}
        assert [m["address"] for m in (await a.get("/api/mailboxes")).json()["mailboxes"]] == [sales]
        assert (await a.get(f"/api/sends/{theirs.send_id}")).status_code == 404
        assert (await a.get(f"/api/approvals?mailbox={finance}")).status_code == 404

        # Not an approver: a reviewer sees the send but may not decide it; nor may anyone else's.
        assert (await c.post(f"/api/approvals/{ours.send_id}/approve", json={})).status_code == 403
        assert (await a.post(f"/api/approvals/{theirs.send_id}/approve", json={})).status_code == 404
        # Naming someone else is refused, even someone who may decide.
        impostor = await b.post(f"/api/approvals/{theirs.send_id}/approve", json={"approver": ann.email})
        assert impostor.status_code == 403 and bob.email in impostor.json()["error"]
        # Only admins manage mailboxes.
        assert (await a.post("/api/mailboxes", json={"address": f"x-{tag}@mailgate.local"})).status_code == 403

        approved = await a.post(f"/api/approvals/{ours.send_id}/approve", json={"reason": "fine"})
        assert approved.status_code == 200, approved.text
        assert approved.json()["decision"]["approver"] == ann.email
        assert approved.json()["decision"]["channel"] == "api"
        rejected = await b.post(
            f"/api/approvals/{theirs.send_id}/reject", json={"approver": bob.email.upper(), "reason": "no"}
        )
        assert rejected.status_code == 200, rejected.text
        assert rejected.json()["decision"]["approver"] == bob.email


async def test_admins_decide_when_no_one_approves_and_the_admin_token_is_recorded(web: Web) -> None:
    tag = uuid.uuid4().hex[:8]
    box = f"ops-{tag}@mailgate.local"
    await web.app.mailboxes.create(box, created_by="test")
    root = web.app.identities.add_person(f"root-{tag}@example.com", admin=True)
    first = await web.app.sends.submit(mailbox=box, to=["c@example.com"], subject="1", body="b")
    second = await web.app.sends.submit(mailbox=box, to=["c@example.com"], subject="2", body="b")
    async with as_person(web, root) as r:
        decided = await r.post(f"/api/approvals/{first.send_id}/reject", json={"reason": "no"})
        assert decided.status_code == 200, decided.text
    glass = await web.admin.post(f"/api/approvals/{second.send_id}/reject", json={"approver": "ops", "reason": "no"})
    assert glass.status_code == 200, glass.text
    assert glass.json()["decision"]["channel"] == "api (admin token)"
    # Once someone approves the mailbox, the admin person no longer decides its sends.
    web.app.identities.add_person(f"dee-{tag}@example.com", approves=[box])
    third = await web.app.sends.submit(mailbox=box, to=["c@example.com"], subject="3", body="b")
    async with as_person(web, root) as r:
        assert (await r.post(f"/api/approvals/{third.send_id}/approve", json={})).status_code == 403
    # A removed person's token stops at once.
    web.app.identities.remove_person(root.email)
    async with as_person(web, root) as r:
        assert (await r.get("/api/approvals")).status_code == 401


async def test_password_guessing_is_throttled_like_the_admin_token(web: Web) -> None:
    ann = web.app.identities.add_person(f"ann-{uuid.uuid4().hex[:8]}@example.com")
    async with httpx.AsyncClient(base_url=web.url, timeout=30) as browser:
        page = await browser.get("/signin")

        async def attempt(password: str) -> int:
            nonlocal page
            csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
            assert csrf is not None
            page = await browser.post("/signin", data={"csrf": csrf.group(1), "email": ann.email, "password": password})
            return page.status_code

        codes = [await attempt("guess-guess") for _ in range(11)]
        assert codes[:10] == [401] * 10 and codes[10] == 429
        # Even the right password waits while the throttle holds.
        assert await attempt(ann.password) == 429


async def test_the_approvals_list_and_decisions_leave_out_what_a_person_may_not_decide(web: Web) -> None:
    tag = uuid.uuid4().hex[:8]
    box = f"own-{tag}@mailgate.local"
    await web.app.mailboxes.create(box, created_by="test")
    ann = web.app.identities.add_person(f"ann-{tag}@example.com", approves=[box])
    bob = web.app.identities.add_person(f"bob-{tag}@example.com", approves=[box])
    rev = web.app.identities.add_person(f"rev-{tag}@example.com", reviews=[box])
    helper = web.app.identities.add_agent(f"helper-{tag}", mailboxes=[box], owner=ann.email)
    mine = await web.app.sends.submit(mailbox=box, to=["c@example.com"], subject="M", body="b", requester=helper.name)
    other = await web.app.sends.submit(mailbox=box, to=["c@example.com"], subject="O", body="b", requester="default")

    async with as_person(web, ann) as a, as_person(web, bob) as b, as_person(web, rev) as r:
        listed = {s["send_id"] for s in (await a.get(f"/api/approvals?mailbox={box}")).json()["approvals"]}
        assert listed == {other.send_id}  # not the send of her own agent
        assert {s["send_id"] for s in (await b.get(f"/api/approvals?mailbox={box}")).json()["approvals"]} == {
            mine.send_id,
            other.send_id,
        }
        assert (await r.get(f"/api/approvals?mailbox={box}")).json()["approvals"] == []  # a reviewer decides nothing
        refused = await a.post(f"/api/approvals/{mine.send_id}/approve", json={})
        assert refused.status_code == 403 and f"owns agent {helper.name}" in refused.json()["error"]
        approved = await b.post(f"/api/approvals/{mine.send_id}/approve", json={})
        assert approved.status_code == 200, approved.text
