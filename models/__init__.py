"""SQLAlchemy mappings; imports nothing of ours outside this package."""

from models.base import Base
from models.environment import Environment
from models.event import Event, IdempotencyKey
from models.session import Session
from models.user import User, UserAlias

__all__ = ["Base", "Environment", "Event", "IdempotencyKey", "Session", "User", "UserAlias"]
