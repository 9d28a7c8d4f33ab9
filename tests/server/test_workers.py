from __future__ import annotations

from server.workers import register_yourself


def test_a_cluster_that_refuses_gets_the_exact_commands_for_cloud_and_self_hosted() -> None:
    message = register_yourself("prod.a1b2c", "PermissionDenied")
    assert "PermissionDenied" in message
    # tcld takes Name=Type pairs; the temporal CLI takes --name/--type pairs.
    assert (
        'tcld namespace search-attributes add --namespace prod.a1b2c --search-attribute "MailgateStatus=Keyword" '
        '--search-attribute "MailgateMailbox=Keyword"' in message
    )
    assert (
        "temporal operator search-attribute create --namespace prod.a1b2c --name MailgateStatus --type Keyword "
        "--name MailgateMailbox --type Keyword" in message
    )
