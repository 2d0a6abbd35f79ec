"""The contract's enums."""

from __future__ import annotations

from enum import Enum

import strawberry


@strawberry.enum(description="Where an event came from: a client SDK or a server.")
class EventSource(Enum):
    WEB = "WEB"
    IOS = "IOS"
    ANDROID = "ANDROID"
    SERVER = "SERVER"


@strawberry.enum(description="CLIENT: started by client events; SERVER: only server-side events.")
class SessionOrigin(Enum):
    CLIENT = "CLIENT"
    SERVER = "SERVER"


@strawberry.enum(description="The kind of device a session ran on, from its user agent.")
class DeviceType(Enum):
    DESKTOP = "DESKTOP"
    MOBILE = "MOBILE"
    TABLET = "TABLET"
    OTHER = "OTHER"


@strawberry.enum(description="DYNAMIC: its filter, evaluated when asked; STATIC: a fixed list.")
class SegmentKind(Enum):
    DYNAMIC = "DYNAMIC"
    STATIC = "STATIC"
