"""Computing an identical request once per bench.

The cascade and the escalation model measured alone send the same request for an item that
both escalate. The second config gets the first call's response, with the cost and latency
measured for that call, so both report what the call costs without running it twice.
"""

from __future__ import annotations

from shoal.providers.base import Provider, Request, Response


class MemoProvider:
    """Wrap a provider so that repeated identical requests return the first response."""

    def __init__(self, provider: Provider) -> None:
        self.provider = provider
        self.model = provider.model
        self._responses: dict[Request, Response] = {}

    async def complete(self, request: Request) -> Response:
        if request in self._responses:
            return self._responses[request]
        response = await self.provider.complete(request)
        self._responses[request] = response
        return response
