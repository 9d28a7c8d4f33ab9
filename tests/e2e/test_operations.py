"""What an operator runs mailgate by: /livez, /readyz, /metrics and JSON logs of a real `mailgate serve`."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from tests.prometheus import sample
from tests.support.serve import Serve

pytestmark = pytest.mark.e2e
METRICS_TOKEN = "metrics-scraper-token-0123456789"


async def test_probes_metrics_and_json_logs_of_a_real_serve(serve: Serve) -> None:
    serve.extra_env.update({"MAILGATE_LOG_FORMAT": "json", "MAILGATE_METRICS_TOKEN": METRICS_TOKEN})
    serve.start()
    scraper = {"Authorization": f"Bearer {METRICS_TOKEN}"}
    # A kubelet or a scraper reaches a pod by its IP: the probes answer any Host.
    pod = {"Host": "10.1.2.3:8025"}
    async with httpx.AsyncClient(base_url=serve.url, timeout=30) as http:
        live = await http.get("/livez", headers=pod)
        assert (live.status_code, live.json()) == (200, {"status": "ok"})
        ready = await http.get("/readyz", headers=pod)
        assert ready.status_code == 200, ready.text
        assert ready.json() == {"status": "ok", "checks": {"temporal": "ok", "worker": "ok"}}
        assert (await http.post("/readyz")).status_code == 405
        # The app behind them still refuses a foreign Host.
        assert (await http.get("/healthz", headers=pod)).status_code == 421

        assert (await http.get("/metrics")).status_code == 401
        assert (await http.get("/metrics", headers={"Authorization": "Bearer wrong"})).status_code == 401
        before = (await http.get("/metrics", headers=scraper)).text
        assert sample(before, "mailgate_sends_total", status="sent") == 0

        await serve.submit_and_approve(["ops-1"])

        async def scrape() -> str:
            answer = await http.get("/metrics", headers={**scraper, **pod})
            assert answer.status_code == 200
            assert answer.headers["content-type"].startswith("text/plain")
            return answer.text

        last = {"text": ""}

        async def moved() -> bool:
            last["text"] = await scrape()
            return sample(last["text"], "mailgate_sends_total", status="sent") >= 1

        for _ in range(150):
            if await moved():
                break
            await asyncio.sleep(0.2)
        text = last["text"]
        # At least once (tests/workflows/test_metrics.py says why a send may count twice).
        assert sample(text, "mailgate_sends_total", status="sent", mailbox="agent@mailgate.local") in (1, 2), text
        assert sample(text, "mailgate_approval_latency_count", outcome="approve") in (1, 2)
        assert sample(text, "mailgate_approval_latency_bucket", outcome="approve", le="+Inf") in (1, 2)
        # The Temporal SDK's own metrics come along: worker task latency among them.
        assert sample(text, "temporal_activity_execution_latency_count", activity_type="admit_and_deliver") >= 1
        assert sample(text, "temporal_workflow_task_execution_latency_count", workflow_type="SendEmailWorkflow") >= 1

    assert serve.stop() == 0
    lines = [line for line in (serve.data_dir / "serve.log").read_text().splitlines() if line.strip()]
    records = []
    for line in lines:
        try:
            records.append(json.loads(line))
        except ValueError:
            raise AssertionError(f"a log line is not JSON: {line!r}") from None
    about_send = [r for r in records if "ops-1" in r["message"] or r.get("send_id")]
    send_ids = {r["send_id"] for r in about_send if "send_id" in r}
    assert len(send_ids) == 1, about_send
    (send_id,) = send_ids
    # Every line that names the send carries its id: the front door's and the workflow's.
    naming = [r for r in records if send_id in r["message"]]
    assert {r["logger"] for r in naming} >= {"mailgate.sends", "temporalio.workflow"}, naming
    assert all(r.get("send_id") == send_id for r in naming), naming


async def test_metrics_without_a_token_answer_loopback_only(serve: Serve) -> None:
    serve.start()
    async with httpx.AsyncClient(base_url=serve.url, timeout=30) as http:
        answer = await http.get("/metrics")
        assert answer.status_code == 200
        assert "temporal_" in answer.text
    assert serve.stop() == 0
