"""Ids and enums shared by every layer."""

from __future__ import annotations

import enum
from typing import NewType

SessionId = NewType("SessionId", str)
OperatorId = NewType("OperatorId", str)
NodeId = NewType("NodeId", str)


class SessionState(enum.StrEnum):
    NEW = "new"  # hello received, no message yet: not in the queue
    WAITING = "waiting"  # in the queue
    ASSIGNED = "assigned"  # an operator has it
    CLOSED = "closed"


class OperatorStatus(enum.StrEnum):
    ONLINE = "online"
    AWAY = "away"
    OFFLINE = "offline"


class Role(enum.StrEnum):
    OPERATOR = "operator"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"


class Priority(enum.IntEnum):
    """Queue priority class; lower sorts first."""

    URGENT = 0
    VIP = 1
    NORMAL = 2

    @property
    def label(self) -> str:
        return self.name.lower()


class Sender(enum.StrEnum):
    VISITOR = "visitor"
    OPERATOR = "operator"
    SYSTEM = "system"


PLAN_PRIORITY: dict[str, Priority] = {
    "urgent": Priority.URGENT,
    "vip": Priority.VIP,
    "standard": Priority.NORMAL,
    "free": Priority.NORMAL,
    "normal": Priority.NORMAL,
}
