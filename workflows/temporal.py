"""What both sides need to talk to Temporal the same way: the data converter and search attributes."""

from __future__ import annotations

from temporalio.common import SearchAttributeKey
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter

STATUS = SearchAttributeKey.for_keyword("MailgateStatus")
MAILBOX = SearchAttributeKey.for_keyword("MailgateMailbox")
# Name -> type, as `temporal server start-dev --search-attribute` and `operator` expect them.
SEARCH_ATTRIBUTES = {STATUS.name: "Keyword", MAILBOX.name: "Keyword"}


def data_converter() -> DataConverter:
    return pydantic_data_converter
