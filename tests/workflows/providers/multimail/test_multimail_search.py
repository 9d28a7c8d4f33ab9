"""MultiMail mailboxes (contract fake): the search syntax maps onto its listing filters where it
has them and is refused by name where not; what MultiMail cannot do (archive, drafts) is refused
clearly (the rest of manage_email: test_multimail_manage.py)."""

from __future__ import annotations

import pytest

from tests.support.peers.multimail import ADDRESS, provider_for
from tests.support.peers.multimail_fake import FakeServer
from workflows.mail.search_query import QuerySyntaxError


async def test_search_maps_or_refuses_by_name(server: FakeServer) -> None:
    provider = provider_for(server)
    box = provider.config.mailbox_id
    server.fake.add_email(box, "inbound", from_="Carol <carol@example.org>", to=[ADDRESS], subject="Invoice 9")
    server.fake.add_email(box, "inbound", from_="Dan <dan@example.org>", to=[ADDRESS], subject="Lunch")
    found = await provider.search(ADDRESS, "invoice from:carol", 10, None)
    assert [e.subject for e in found.emails] == ["Invoice 9"]
    listed = [path for _, path, _ in server.fake.requests if "/emails" in path]
    assert listed
    with pytest.raises(QuerySyntaxError, match=r"has:attachment, label:"):
        await provider.search(ADDRESS, "invoice label:x has:attachment", 10, None)
    with pytest.raises(ValueError, match="no archive call"):
        await provider.manage(ADDRESS, found.emails[0].email_id, "archive", None, "agent")
    with pytest.raises(ValueError, match="have no drafts"):
        await provider.save_draft(ADDRESS, b"Subject: x\r\n\r\nbody\r\n")
    await provider.aclose()
