"""Request-safety extensions: query limits, caches, error masking."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from graphql import GraphQLError
from strawberry.extensions import (
    MaskErrors,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    ValidationCache,
)


def is_unexpected(error: GraphQLError) -> bool:
    """Mask only errors raised by bugs; validation, limit and input errors stay readable."""
    original = error.original_error
    return original is not None and not isinstance(original, GraphQLError)


def extensions_for(*, dev: bool) -> list[Callable[[], Any]]:
    """Factories (never shared instances) of the schema's extensions."""
    extensions: list[Callable[[], Any]] = [
        lambda: QueryDepthLimiter(max_depth=12),
        lambda: MaxAliasesLimiter(max_alias_count=30),
        lambda: MaxTokensLimiter(max_token_count=5000),
        lambda: ParserCache(maxsize=256),
        lambda: ValidationCache(maxsize=256),
    ]
    if not dev:
        extensions.append(lambda: MaskErrors(should_mask_error=is_unexpected))
    return extensions
