"""What both sides need to talk to Temporal the same way: the data converter and search attributes."""

from __future__ import annotations

import dataclasses

from temporalio.common import SearchAttributeKey
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes, PayloadCodec

STATUS = SearchAttributeKey.for_keyword("MailgateStatus")
MAILBOX = SearchAttributeKey.for_keyword("MailgateMailbox")
# Name -> type, as `temporal server start-dev --search-attribute` and `operator` expect them.
SEARCH_ATTRIBUTES = {STATUS.name: "Keyword", MAILBOX.name: "Keyword"}


def data_converter(codec: PayloadCodec | None = None) -> DataConverter:
    """Pydantic payloads, sealed by ``codec`` when encryption is configured.

    With a codec, failures are sealed too: their message and stack trace (recipients, an SMTP
    server's answer) move into encoded attributes, and history keeps only "Encoded failure".
    """
    if codec is None:
        return pydantic_data_converter
    return dataclasses.replace(
        pydantic_data_converter,
        payload_codec=codec,
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )
