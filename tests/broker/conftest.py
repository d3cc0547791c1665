"""Fixtures for the broker conformance suite (see harness.py)."""

from collections.abc import AsyncIterator

import httpx
import pytest

from functions.dev.services import free_port
from tests.broker.harness import Lab, Subscribers
from tests.support.servers import serving


@pytest.fixture(scope="session")
async def session_lab() -> AsyncIterator[Lab]:
    subscribers = Subscribers("")
    async with serving(subscribers) as url:
        subscribers.url = url
        port = free_port()
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            lab = Lab(subscribers, port, client)
            async with serving(lab, port):
                yield lab


@pytest.fixture
def lab(session_lab: Lab) -> Lab:
    session_lab.subscribers.reset()
    return session_lab
