"""Render the Slack message of a pending send from its Block Kit JSON to docs/slack-message.png.

A small Block Kit renderer (header, section text and fields, context, buttons; mrkdwn bold, links
and dates) in Slack's look, screenshotted by Debian's chromium through playwright. Run:
``.venv/bin/python docs/render_slack_message.py``.
"""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from playwright.sync_api import sync_playwright

from workflows.models import Attachment, EmailAddress, EmailDraft
from workflows.slack_client.message import SlackRequest, pending_message

OUT = Path(__file__).parent / "slack-message.png"
CSS = """
body { font: 15px/1.46 -apple-system, 'Segoe UI', 'Helvetica Neue', Arial, sans-serif; color: #1d1c1d;
       margin: 0; background: #fff; }
.msg { display: flex; gap: 8px; padding: 16px 20px; width: 640px; }
.avatar { width: 36px; height: 36px; border-radius: 6px; background: #4a154b; color: #fff; font-weight: 700;
          display: flex; align-items: center; justify-content: center; flex: none; }
.who b { font-weight: 900; } .app { font-size: 10px; background: #e8e8e8; color: #616061; padding: 1px 3px;
       border-radius: 2px; margin: 0 4px; } .time { color: #616061; font-size: 12px; }
h2 { font-size: 18px; font-weight: 900; margin: 6px 0 8px; }
.fields { display: grid; grid-template-columns: 120px 1fr; gap: 2px 12px; margin: 2px 0; }
.text { white-space: pre-wrap; margin: 8px 0; padding: 8px 10px; background: #f8f8f8; border-radius: 4px; }
.context { color: #616061; font-size: 13px; margin: 6px 0; }
a { color: #1264a3; text-decoration: none; }
.actions { display: flex; gap: 8px; margin-top: 10px; }
.button { border: 1px solid #ccc; border-radius: 4px; padding: 4px 12px; font-weight: 700; font-size: 14px; }
.primary { background: #007a5a; color: #fff; border-color: #007a5a; }
.danger { background: #fff; color: #e01e5a; border-color: #e01e5a; }
"""


def mrkdwn(text: str) -> str:
    out = html.escape(html.unescape(text), quote=False)
    out = re.sub(r"&lt;!date\^\d+\^[^|]*\|(.*?)&gt;", r"\1", out)
    out = re.sub(r"&lt;(https?://[^|]*?)\|(.*?)&gt;", r'<a href="\1">\2</a>', out)
    return re.sub(r"\*(.+?)\*", r"<b>\1</b>", out)


def text(obj: dict[str, Any]) -> str:
    return mrkdwn(obj["text"]) if obj["type"] == "mrkdwn" else html.escape(obj["text"])


def block(b: dict[str, Any]) -> str:
    if b["type"] == "header":
        return f"<h2>{text(b['text'])}</h2>"
    if b["type"] == "section" and "fields" in b:
        return '<div class="fields">' + "".join(f"<div>{text(f)}</div>" for f in b["fields"]) + "</div>"
    if b["type"] == "section":
        return f'<div class="text">{text(b["text"])}</div>'
    if b["type"] == "context":
        return '<div class="context">' + " ".join(text(e) for e in b["elements"]) + "</div>"
    if b["type"] == "actions":
        buttons = (
            f'<span class="button {e.get("style", "")}">{html.escape(e["text"]["text"])}</span>' for e in b["elements"]
        )
        return '<div class="actions">' + "".join(buttons) + "</div>"
    return ""


def page(blocks: list[dict[str, Any]]) -> str:
    body = "".join(block(b) for b in blocks)
    return (
        f"<!doctype html><meta charset=utf-8><style>{CSS}</style><div class=msg><div class=avatar>m</div>"
        f"<div><div class=who><b>mailgate</b><span class=app>APP</span><span class=time>9:41 AM</span></div>"
        f"{body}</div></div>"
    )


def example() -> dict[str, Any]:
    draft = EmailDraft(
        to=(EmailAddress(address="carol@acme.example", name="Carol Diaz"),),
        cc=(EmailAddress(address="sales@example.com"),),
        bcc=(EmailAddress(address="crm-archive@example.com"),),
        subject="Your renewal quote for 2027",
        body="Hi Carol,\n\nThanks for the call today. As promised, the renewal quote for 2027 is attached: "
        "40 seats at the current rate, with the onboarding workshop included.\n\nBest,\nSam (sales assistant)",
        attachments=(
            Attachment(filename="quote-2027.pdf", content_type="application/pdf", content_b64="", size=48213),
        ),
    )
    request = SlackRequest(
        send_id="send-q4m2x7k3p9vt5wzr6hna",
        mailbox="sales@example.com",
        channel="C0123ABCDEF",
        requester="sales-assistant",
        draft=draft,
        expires_at=datetime(2026, 12, 5, 9, 41, tzinfo=UTC),
    )
    return pending_message(request, "https://mailgate.example.com")


def main() -> None:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium")
        tab = browser.new_page(viewport={"width": 680, "height": 400}, device_scale_factor=2)
        tab.set_content(page(example()["blocks"]))
        tab.locator(".msg").screenshot(path=str(OUT))
        browser.close()


if __name__ == "__main__":
    main()
