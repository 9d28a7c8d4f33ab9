"""Activities that post a send's Slack message and update it in place once the send is decided.

The bot token and the dashboard's URL live in SlackConfig, built by the worker from its own
settings; workflows pass only the SlackRequest. chat.update is safe to repeat; chat.postMessage
is not idempotent at Slack, so a lost answer may rarely leave a second copy (still decidable once).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from temporalio import activity
from temporalio.exceptions import ApplicationError

from workflows.slack_client.api import DEFAULT_API_URL, SlackApi, SlackError
from workflows.slack_client.message import SlackOutcome, SlackPosted, SlackRequest, final_message, pending_message


@dataclass(frozen=True)
class SlackConfig:
    """The worker's Slack settings. Holds the token: never put it in a workflow payload."""

    base_url: str
    bot_token: str | None = field(default=None, repr=False)
    api_url: str = DEFAULT_API_URL


def _failure(err: SlackError) -> ApplicationError:
    return ApplicationError(str(err), type="SlackError", non_retryable=err.permanent)


class SlackActivities:
    def __init__(self, config: SlackConfig | None) -> None:
        self._config = config

    def _api(self) -> tuple[SlackApi, SlackConfig]:
        config = self._config
        if config is None or not config.bot_token:
            raise ApplicationError("Slack is not configured on this worker", type="SlackError", non_retryable=True)
        return SlackApi(config.bot_token, config.api_url), config

    @activity.defn
    async def post_slack(self, request: SlackRequest) -> SlackPosted:
        api, config = self._api()
        try:
            answer = await api.call(
                "chat.postMessage", {"channel": request.channel, **pending_message(request, config.base_url)}
            )
        except SlackError as err:
            raise _failure(err) from err
        return SlackPosted(channel=str(answer.get("channel") or request.channel), ts=str(answer["ts"]))

    @activity.defn
    async def update_slack(self, request: SlackRequest, posted: SlackPosted, outcome: SlackOutcome) -> None:
        api, config = self._api()
        body = {"channel": posted.channel, "ts": posted.ts, **final_message(request, outcome, config.base_url)}
        try:
            await api.call("chat.update", body)
        except SlackError as err:
            raise _failure(err) from err
