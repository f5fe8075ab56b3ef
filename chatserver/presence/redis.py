"""Redis presence: operators, the waiting queue and atomic assignment shared by many nodes.

Keys (``{p}`` is the key prefix, default ``cs``)::

    {p}:ops              set of known operator ids
    {p}:op:{id}          hash: status, load, capacity, departments, idle_since, node
    {p}:alive:{id}       exists while the operator's node heartbeats (TTL)
    {p}:vis:{sid}        hash: node, page_url, since — while a visitor is connected (TTL)
    {p}:q:all            zset of every waiting session (score = service order)
    {p}:q:d:{pool}       zset per pool "<department>@<level>" (department "" for any)
    {p}:qdepts           set of pools with a zset
    {p}:qe:{sid}         hash: department, priority, enqueued_at, requeued, preferred

The score encodes the same order as :meth:`chatserver.chat.routing.QueueEntry.sort_key`;
equal scores fall back to the member (session id), as in the memory backend.
:meth:`RedisPresence.assign_next` is one Lua script: it reads the queue heads and the
operator slots, picks, removes the entries and reserves capacity atomically, so
concurrent nodes can never hand one chat out twice or overfill an operator.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from redis.asyncio import Redis

from chatserver.chat.routing import Assignment, OperatorSlot, QueueEntry
from chatserver.types import OperatorId, OperatorStatus, Priority, SessionId

_Id = TypeVar("_Id", bound=str)
_PRIORITY_SPAN = 10**13  # > any enqueued_at in ms until the year 2286


def queue_score(entry: QueueEntry) -> float:
    """The zset score: the same order as :meth:`QueueEntry.sort_key` (ms resolution)."""
    requeued, effective = entry.sort_key()
    return float(requeued * _PRIORITY_SPAN + int(effective * 1000))


# ARGV: prefix. 1 as soon as one registered operator is online and heartbeating.
_ANY_ONLINE = """
local p = ARGV[1]
for _, id in ipairs(redis.call('SMEMBERS', p .. ':ops')) do
  if redis.call('HGET', p .. ':op:' .. id, 'status') == 'online'
     and redis.call('EXISTS', p .. ':alive:' .. id) == 1 then
    return 1
  end
end
return 0
"""

# KEYS: none (prefix in ARGV so every key is derived). ARGV: prefix, now, max.
_ASSIGN = """
local p = ARGV[1]
local now = ARGV[2]
local max = tonumber(ARGV[3])
local nownum = tonumber(now)
local result = {}
local blocked = {}
local skip = {}
local ops = redis.call('SMEMBERS', p .. ':ops')
local slots = {}
for _, id in ipairs(ops) do
  if redis.call('EXISTS', p .. ':alive:' .. id) == 1 then
    local h = redis.call('HMGET', p .. ':op:' .. id, 'status', 'load', 'capacity',
                         'departments', 'idle_since', 'levels')
    if h[1] == 'online' then
      local depts = {}
      local any = true
      if h[4] and h[4] ~= '' then
        any = false
        for d in string.gmatch(h[4], '[^,]+') do depts[d] = true end
      end
      local levels = {}
      for l in string.gmatch(h[6] or '1', '[^,]+') do levels[l] = true end
      table.insert(slots, {id = id, load = tonumber(h[2] or '0'),
        capacity = tonumber(h[3] or '0'), any = any, depts = depts, levels = levels,
        idle = tonumber(h[5] or '0')})
    end
  end
end
local pools = redis.call('SMEMBERS', p .. ':qdepts')
while #result < max do
  local best, best_score, best_pool = nil, nil, nil
  for _, d in ipairs(pools) do
    if not blocked[d] then
      local off = skip[d] or 0
      local head = redis.call('ZRANGE', p .. ':q:d:' .. d, off, off, 'WITHSCORES')
      if #head > 0 then
        local score = tonumber(head[2])
        if best == nil or score < best_score or (score == best_score and head[1] < best) then
          best, best_score, best_pool = head[1], score, d
        end
      end
    end
  end
  if best == nil then break end
  local e = redis.call('HMGET', p .. ':qe:' .. best, 'preferred', 'preferred_until', 'avoid')
  local preferred = e[1]
  if preferred == '' then preferred = false end
  local hold = preferred and nownum < tonumber(e[2] or '0')
  local avoid = e[3] or ''
  local at = string.find(best_pool, '@', 1, true)
  local dept = string.sub(best_pool, 1, at - 1)
  local level = string.sub(best_pool, at + 1)
  local chosen = nil
  for _, s in ipairs(slots) do
    if s.load < s.capacity and s.levels[level] and s.id ~= avoid
       and (dept == '' or s.any or s.depts[dept]) then
      if preferred and s.id == preferred then chosen = s break end
      if not hold and (chosen == nil or s.load < chosen.load
         or (s.load == chosen.load and (s.idle < chosen.idle
             or (s.idle == chosen.idle and s.id < chosen.id)))) then
        chosen = s
      end
    end
  end
  if chosen == nil then
    if hold or avoid ~= '' then
      skip[best_pool] = (skip[best_pool] or 0) + 1
    else
      blocked[best_pool] = true
    end
  else
    redis.call('ZREM', p .. ':q:d:' .. best_pool, best)
    redis.call('ZREM', p .. ':q:all', best)
    local entry = redis.call('HGETALL', p .. ':qe:' .. best)
    redis.call('DEL', p .. ':qe:' .. best)
    chosen.load = chosen.load + 1
    chosen.idle = nownum
    redis.call('HSET', p .. ':op:' .. chosen.id, 'load', chosen.load, 'idle_since', now)
    table.insert(result, {best, chosen.id, entry})
  end
end
return result
"""

# KEYS: none. ARGV: prefix, id, delta
_ADD_LOAD = """
local key = ARGV[1] .. ':op:' .. ARGV[2]
if redis.call('EXISTS', key) == 0 then return -1 end
local load = tonumber(redis.call('HGET', key, 'load') or '0') + tonumber(ARGV[3])
if load < 0 then load = 0 end
redis.call('HSET', key, 'load', load)
return load
"""

# ARGV: prefix, sid, pool, score, priority, enqueued_at, requeued, preferred, name, preview,
#       department, level, aging, preferred_until, avoid, kind, plan, sla_due
_ENQUEUE = """
local p = ARGV[1]
if redis.call('EXISTS', p .. ':qe:' .. ARGV[2]) == 1 then return -1 end
redis.call('HSET', p .. ':qe:' .. ARGV[2], 'pool', ARGV[3], 'priority', ARGV[5],
           'enqueued_at', ARGV[6], 'requeued', ARGV[7], 'preferred', ARGV[8],
           'name', ARGV[9], 'preview', ARGV[10], 'department', ARGV[11], 'level', ARGV[12],
           'aging', ARGV[13], 'preferred_until', ARGV[14], 'avoid', ARGV[15],
           'kind', ARGV[16], 'plan', ARGV[17], 'sla_due', ARGV[18])
redis.call('ZADD', p .. ':q:d:' .. ARGV[3], ARGV[4], ARGV[2])
redis.call('ZADD', p .. ':q:all', ARGV[4], ARGV[2])
redis.call('SADD', p .. ':qdepts', ARGV[3])
return redis.call('ZRANK', p .. ':q:all', ARGV[2]) + 1
"""

# ARGV: prefix, sid
_DEQUEUE = """
local p = ARGV[1]
local dept = redis.call('HGET', p .. ':qe:' .. ARGV[2], 'pool')
if not dept then return 0 end
redis.call('ZREM', p .. ':q:d:' .. dept, ARGV[2])
redis.call('ZREM', p .. ':q:all', ARGV[2])
redis.call('DEL', p .. ':qe:' .. ARGV[2])
return 1
"""


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _fields(raw: Any) -> dict[str, str]:
    return {_text(k): _text(v) for k, v in dict(raw).items()}


def _entry_from(session_id: str, fields: dict[str, str]) -> QueueEntry:
    return QueueEntry(
        session_id=SessionId(session_id),
        enqueued_at=float(fields.get("enqueued_at", "0")),
        priority=Priority(int(fields.get("priority", Priority.NORMAL))),
        department=fields.get("department") or None,
        requeued=fields.get("requeued") == "1",
        preferred_operator=OperatorId(fields["preferred"]) if fields.get("preferred") else None,
        name=fields.get("name") or None,
        preview=fields.get("preview") or None,
        level=int(fields.get("level") or 1),
        aging_seconds=float(fields.get("aging") or 0),
        preferred_until=float(fields.get("preferred_until") or 0),
        avoid_operator=OperatorId(fields["avoid"]) if fields.get("avoid") else None,
        kind=fields.get("kind") or "chat",
        plan=fields.get("plan") or None,
        sla_due=float(fields["sla_due"]) if fields.get("sla_due") else None,
    )


class RedisPresence:
    """:class:`~chatserver.presence.base.Presence` shared through Redis.

    Operators registered here are kept alive by :meth:`heartbeat`; one whose node
    stops heartbeating becomes ineligible after ``ttl`` seconds.
    """

    def __init__(
        self,
        redis: Redis,
        *,
        prefix: str = "cs",
        node_id: str = "node",
        ttl: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.redis = redis
        self.prefix = prefix
        self.node_id = node_id
        self.ttl = ttl
        self._clock = clock
        self._assign = redis.register_script(_ASSIGN)
        self._add_load = redis.register_script(_ADD_LOAD)
        self._enqueue = redis.register_script(_ENQUEUE)
        self._dequeue = redis.register_script(_DEQUEUE)
        self._any_online = redis.register_script(_ANY_ONLINE)
        self._local: set[OperatorId] = set()
        self._visitors: set[SessionId] = set()

    def _op(self, operator_id: str) -> str:
        return f"{self.prefix}:op:{operator_id}"

    async def register_operator(
        self,
        operator_id: OperatorId,
        *,
        capacity: int,
        departments: Iterable[str],
        levels: Iterable[int] = (1,),
    ) -> OperatorSlot:
        key = self._op(operator_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.sadd(f"{self.prefix}:ops", operator_id)
            pipe.hsetnx(key, "status", OperatorStatus.OFFLINE.value)
            pipe.hsetnx(key, "load", 0)
            pipe.hsetnx(key, "idle_since", 0)
            pipe.hset(
                key,
                mapping={
                    "capacity": capacity,
                    "departments": ",".join(sorted(departments)),
                    "levels": ",".join(str(level) for level in sorted(set(levels))),
                },
            )
            await pipe.execute()
        slot = await self.operator(operator_id)
        assert slot is not None
        return slot

    async def set_status(self, operator_id: OperatorId, status: OperatorStatus) -> OperatorSlot:
        key = self._op(operator_id)
        before = await self.redis.hget(key, "status")
        mapping: dict[Any, Any] = {"status": status.value, "node": self.node_id}
        if status is OperatorStatus.ONLINE and before != OperatorStatus.ONLINE.value:
            mapping["idle_since"] = self._clock()
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping=mapping)
            pipe.set(f"{self.prefix}:alive:{operator_id}", self.node_id, px=int(self.ttl * 1000))
            await pipe.execute()
        self._local.add(operator_id)
        slot = await self.operator(operator_id)
        assert slot is not None
        return slot

    async def heartbeat(self) -> None:
        """Refresh the TTL of every operator and visitor this node holds."""
        if not self._local and not self._visitors:
            return
        ttl = int(self.ttl * 1000)
        async with self.redis.pipeline(transaction=False) as pipe:
            for operator_id in self._local:
                pipe.set(f"{self.prefix}:alive:{operator_id}", self.node_id, px=ttl)
            for session_id in self._visitors:
                pipe.pexpire(f"{self.prefix}:vis:{session_id}", ttl)
            await pipe.execute()

    async def visitor_seen(self, session_id: SessionId, page_url: str | None) -> None:
        """A visitor of ``session_id`` is connected to this node (kept alive by heartbeats)."""
        self._visitors.add(session_id)
        key = f"{self.prefix}:vis:{session_id}"
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(
                key,
                mapping={
                    "node": self.node_id,
                    "page_url": page_url or "",
                    "since": repr(self._clock()),
                },
            )
            pipe.pexpire(key, int(self.ttl * 1000))
            await pipe.execute()

    async def visitor_left(self, session_id: SessionId) -> None:
        """The last connection of the visitor on this node closed."""
        self._visitors.discard(session_id)
        await self.redis.delete(f"{self.prefix}:vis:{session_id}")

    async def _existing(self, kind: str, ids: Iterable[_Id]) -> set[_Id]:
        """Those of ``ids`` whose ``{prefix}:{kind}:{id}`` key exists (one round trip)."""
        wanted = list(ids)
        if not wanted:
            return set()
        async with self.redis.pipeline(transaction=False) as pipe:
            for key in wanted:
                pipe.exists(f"{self.prefix}:{kind}:{key}")
            found = await pipe.execute()
        return {key for key, ok in zip(wanted, found, strict=True) if ok}

    async def visitors_connected(self, session_ids: Iterable[SessionId]) -> set[SessionId]:
        return await self._existing("vis", session_ids)

    async def alive(self, operator_ids: Iterable[OperatorId]) -> set[OperatorId]:
        """Those of ``operator_ids`` whose node is still heartbeating."""
        return await self._existing("alive", operator_ids)

    async def add_load(self, operator_id: OperatorId, delta: int) -> None:
        await self._add_load(args=[self.prefix, operator_id, delta])

    async def set_load(self, operator_id: OperatorId, load: int) -> None:
        key = self._op(operator_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.exists(key)
            pipe.hset(key, "load", max(0, load))
            exists, _ = await pipe.execute()
        if not exists:  # do not create a half operator hash
            await self.redis.delete(key)

    async def operator(self, operator_id: OperatorId) -> OperatorSlot | None:
        fields = await self.redis.hgetall(self._op(operator_id))
        if not fields:
            return None
        alive = await self.redis.exists(f"{self.prefix}:alive:{operator_id}")
        return self._slot(operator_id, fields, bool(alive))

    async def operators(self) -> list[OperatorSlot]:
        """Every registered operator, in two round trips."""
        ids = sorted(_text(m) for m in await self.redis.smembers(f"{self.prefix}:ops"))
        if not ids:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for operator_id in ids:
                pipe.hgetall(self._op(operator_id))
                pipe.exists(f"{self.prefix}:alive:{operator_id}")
            replies = await pipe.execute()
        slots = []
        for i, operator_id in enumerate(ids):
            fields, alive = replies[2 * i], replies[2 * i + 1]
            if fields:
                slots.append(self._slot(OperatorId(operator_id), fields, bool(alive)))
        return slots

    async def any_online(self) -> bool:
        """One script call: the scan stays in Redis, the answer is one integer."""
        return bool(await self._any_online(args=[self.prefix]))

    @staticmethod
    def _slot(operator_id: OperatorId, fields: Any, alive: bool) -> OperatorSlot:
        f = _fields(fields)
        status = OperatorStatus(f.get("status", "offline")) if alive else OperatorStatus.OFFLINE
        return OperatorSlot(
            operator_id=operator_id,
            capacity=int(f.get("capacity", 0)),
            status=status,
            load=int(f.get("load", 0)),
            departments=frozenset(d for d in f.get("departments", "").split(",") if d),
            idle_since=float(f.get("idle_since", 0)),
            levels=frozenset(int(v) for v in f.get("levels", "1").split(",") if v.isdigit()),
        )

    async def enqueue(self, entry: QueueEntry) -> int:
        position = await self._enqueue(
            args=[
                self.prefix,
                entry.session_id,
                entry.pool,
                repr(queue_score(entry)),
                int(entry.priority),
                repr(entry.enqueued_at),
                "1" if entry.requeued else "0",
                entry.preferred_operator or "",
                entry.name or "",
                entry.preview or "",
                entry.department or "",
                entry.level,
                repr(entry.aging_seconds),
                repr(entry.preferred_until),
                entry.avoid_operator or "",
                entry.kind,
                entry.plan or "",
                repr(entry.sla_due) if entry.sla_due is not None else "",
            ]
        )
        if int(position) < 0:
            raise ValueError(f"{entry.session_id} is already queued")
        return int(position)

    async def dequeue(self, session_id: SessionId) -> bool:
        return bool(await self._dequeue(args=[self.prefix, session_id]))

    async def position(self, session_id: SessionId) -> int | None:
        rank: Any = await self.redis.zrank(f"{self.prefix}:q:all", session_id)
        return None if rank is None else int(rank) + 1

    async def assign_next(self, limit: int = 1000) -> list[Assignment]:
        rows = await self._assign(args=[self.prefix, repr(self._clock()), limit])
        result = []
        for session_id, operator_id, flat in rows:
            sid, oid = _text(session_id), _text(operator_id)
            items = [_text(x) for x in flat]
            fields = dict(zip(items[::2], items[1::2], strict=True))
            result.append(Assignment(SessionId(sid), OperatorId(oid), _entry_from(sid, fields)))
        return result

    async def queue_snapshot(self) -> list[QueueEntry]:
        raw: Any = await self.redis.zrange(f"{self.prefix}:q:all", 0, -1)
        members = [_text(m) for m in raw]
        if not members:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for member in members:
                pipe.hgetall(f"{self.prefix}:qe:{member}")
            details = await pipe.execute()
        return [
            _entry_from(sid, _fields(raw_fields))
            for sid, raw_fields in zip(members, details, strict=True)
            if raw_fields
        ]
