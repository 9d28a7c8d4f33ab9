"""The notice mark: made with the deployment's key, recognised in a header or in the text."""

from __future__ import annotations

from workflows.trust.marks import HEADER, NoticeMarks, mark_key

MARKS = NoticeMarks(mark_key(b"server-secret"))


def test_a_mark_is_recognised_in_the_header_or_the_text_and_is_stable() -> None:
    token = MARKS.token("<notify-1.abc@example.com>")
    assert token == MARKS.token("<notify-1.abc@example.com>")  # a retry writes the same mark
    folded = f"Subject: x\r\n{HEADER}:\r\n {token}\r\n\r\nbody\r\n".encode()
    assert MARKS.in_message(folded)
    assert MARKS.in_message(b"Subject: x\r\n\r\nbody\r\n", text=f"Approve: ...\n-- \n{token}\n")
    assert MARKS.in_text(f"> quoted by a human: {token}")


def test_a_mark_made_without_the_key_is_not_a_mark() -> None:
    token = MARKS.token("<notify-1.abc@example.com>")
    other = NoticeMarks(mark_key(b"another-deployment")).token("<notify-1.abc@example.com>")
    nonce, _, mac = token.removeprefix("mailgate-notice:").partition(".")
    tampered = f"mailgate-notice:{nonce}.{mac[::-1]}"
    for text in (other, tampered, f"mailgate-notice:{'0' * 16}.{'0' * 32}", "mailgate-notice:", ""):
        assert not MARKS.in_text(text)
        assert not MARKS.in_message(f"{HEADER}: {text}\r\n\r\n{text}\r\n".encode(), text=text)
