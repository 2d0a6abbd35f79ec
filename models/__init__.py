"""SQLAlchemy mappings; imports nothing of ours outside this package."""

from models.api_key import ApiKey
from models.base import Base
from models.definition import DefinitionMatch, EventDefinition, RageClick
from models.environment import Environment
from models.event import Event, IdempotencyKey
from models.segment import Segment, SegmentMember
from models.session import Session
from models.user import User, UserAlias, UserVersion

__all__ = [
    "ApiKey",
    "Base",
    "DefinitionMatch",
    "Environment",
    "Event",
    "EventDefinition",
    "IdempotencyKey",
    "RageClick",
    "Segment",
    "SegmentMember",
    "Session",
    "User",
    "UserAlias",
    "UserVersion",
]
