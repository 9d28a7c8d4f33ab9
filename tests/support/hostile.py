"""Hostile inbound mail: messages built to make a parser slow (issue 25, items 6-8).

Each one took mailgate's parsing from tens of seconds to minutes before it was bounded;
all fit under the sandbox's 10 MB SMTP limit.
"""

from __future__ import annotations

from collections.abc import Callable


def _repeat(unit: str, count: int, per_line: int = 100, fold: str = "\n") -> str:
    """`unit` * `count`, broken into lines: SMTP refuses lines over 1,000 bytes."""
    lines = (unit * min(per_line, count - start) for start in range(0, count, per_line))
    return fold.join(lines)


def _message(headers: str, body: bytes = b"hello\r\n", *, message_id: str) -> bytes:
    head = f"From: Stranger <stranger@example.org>\r\nTo: agent@mailgate.local\r\nMessage-ID: <{message_id}>\r\n"
    return (head + headers).encode() + b"\r\n" + body


def _html(name: str, html: str) -> bytes:
    return _message(
        f"Subject: {name}\r\nMIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n",
        html.replace("\n", "\r\n").encode(),
        message_id=f"{name}@hostile.example.org",
    )


def _nested(name: str, depth: int) -> bytes:
    head = tail = ""
    for level in range(depth):
        head += f'Content-Type: multipart/mixed; boundary="b{level}"\r\n\r\n--b{level}\r\n'
        tail = f"\r\n--b{level}--\r\n" + tail
    return _message(
        f"Subject: {name}\r\nMIME-Version: 1.0\r\n" + head + "Content-Type: text/plain\r\n",
        b"deep inside\r\n" + tail.encode(),
        message_id=f"{name}@hostile.example.org",
    )


def _many_parts(name: str, parts: int, params: int = 0) -> bytes:
    ctype = "text/plain" + "".join(f";\r\n name*{i}*=utf-8''%41b" for i in range(params))
    body = "".join(f"--p\r\nContent-Type: {ctype}\r\n\r\npart {n}\r\n" for n in range(parts)) + "--p--\r\n"
    return _message(
        f'Subject: {name}\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="p"\r\n',
        body.encode(),
        message_id=f"{name}@hostile.example.org",
    )


def _header(name: str, field: str, value: str) -> bytes:
    return _message(f"Subject: {name}\r\n{field}: {value}\r\n", message_id=f"{name}@hostile.example.org")


BUILDERS: dict[str, Callable[[str], bytes]] = {
    # The three measured in the issue: 40 s, 78 s, and until the SMTP session timed out.
    "html-bold": lambda n: _html(n, _repeat("<b>", 40_000) + "bold"),
    "to-8000": lambda n: _message(
        f"Subject: {n}\r\nCc: " + ",\r\n ".join(f"user{i}@example.com" for i in range(8_000)) + "\r\n",
        message_id=f"{n}@hostile.example.org",
    ),
    "references-200k": lambda n: _header(n, "References", "\r\n ".join(f"<r{i}@x.example>" for i in range(200_000))),
    # Variants: the stdlib's html.parser, header parser and MIME parser each have a slow path.
    "html-comments": lambda n: _html(n, _repeat("<!--", 30_000)),
    "html-cdata": lambda n: _html(n, _repeat("<![CDATA[", 30_000)),
    "html-end-tags": lambda n: _html(n, _repeat("<i>", 20_000) + _repeat("</b>", 20_000)),
    "html-links": lambda n: _html(
        n, _repeat('<a href="https://x.example/">', 20_000, 20) + "x" + _repeat("</a>", 20_000)
    ),
    "html-unclosed-quote": lambda n: _html(n, "<a title='" + _repeat("<b>", 100_000)),
    "to-quotes": lambda n: _header(n, "To", _repeat('"a\\"', 20_000, 200, "\r\n ") + " <a@example.com>"),
    "subject-encoded-words": lambda n: _message(
        "Subject: " + "\r\n ".join("=?utf-8?q?a?=" for _ in range(20_000)) + "\r\n",
        message_id=f"{n}@hostile.example.org",
    ),
    "content-type-params": lambda n: _message(
        f"Subject: {n}\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; "
        + ";\r\n ".join(f"name*{i}=b" for i in range(10_000))
        + "\r\n",
        message_id=f"{n}@hostile.example.org",
    ),
    "many-headers": lambda n: _message(
        "".join(f"X-Header-{i}: v\r\n" for i in range(200_000)) + f"Subject: {n}\r\n",
        message_id=f"{n}@hostile.example.org",
    ),
    "deep-mime": lambda n: _nested(n, 2_000),
    "many-parts": lambda n: _many_parts(n, 50_000),
    "many-parts-with-parameters": lambda n: _many_parts(n, 900, params=200),
    "empty-lines": lambda n: _message(f"Subject: {n}\r\n", b"\r\n" * 3_000_000, message_id=f"{n}@hostile.example.org"),
}


def hostile(name: str) -> bytes:
    return BUILDERS[name](name)
