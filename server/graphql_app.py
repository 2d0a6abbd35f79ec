"""The GraphQL endpoint: Strawberry's ASGI app with our per-request context."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from strawberry.asgi import GraphQL

from resolvers.context import Context
from resolvers.loaders import Loaders


class GraphQLApp(GraphQL[Context, None]):
    """Builds a Context (database, environment, fresh loaders) for every request."""

    async def get_context(self, request: Request | Any, response: Response | Any) -> Context:
        state = request.app.state.usertrail
        environment_id = await state.environment_for(request)
        return Context(
            db=state.db,
            environment_id=environment_id,
            dev=state.settings.dev,
            loaders=Loaders(state.db, environment_id),
            request=request,
            response=response,
        )
