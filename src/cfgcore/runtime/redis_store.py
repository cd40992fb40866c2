"""The flag store in Redis: one document for a whole fleet of processes.

URL forms (``open_store`` hands these to :class:`RedisFlagStore`)::

    redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]?namespace=NS
    rediss://...                      # TLS (ssl_ca_certs=, ssl_certfile=, ssl_keyfile=,
                                      #      ssl_password[_file]=,
                                      #      ssl_cert_reqs=none|optional|required)
    redis+sentinel://[[USER]:PASSWORD@]HOST:PORT[,HOST:PORT...]/SERVICE[/DB]?namespace=NS
    unix:///path/to/redis.sock?db=N&namespace=NS

Other query parameters: ``cache=PATH`` (the local cache file; ``cache=off`` for none;
a published configuration of the same URL keeps its own beside it:
``ROOT.config:ENV.EXT`` for ``ROOT.EXT``),
``poll=SECONDS`` (a safety re-read of the key, default 30), ``wait=N`` (after a write,
``WAIT`` for N replicas: a write acknowledged by a replica survives a failover),
``wait_timeout=MS``, ``min_version=N`` (the lowest flag document version this
process serves or builds on: a deployment's pin against an older document put back
while it has no cache file), ``max_items=N`` (the most items, maps, arrays, keys and
values, a document of the store may hold: 1,000 to 10,000,000, default 1,000,000,
:data:`cfgcore.snapshot.MAX_MSGPACK_ITEMS`; a process reads none larger, keeping its
last good document, and writes none larger, refusing the write), ``socket_timeout=S``,
``socket_connect_timeout=S``,
``sentinel_password=``/``sentinel_username=``, ``ssl=true`` (TLS to a Sentinel-managed
primary) and ``sentinel_ssl=true`` (TLS to the Sentinels too, with the same files),
``password_file=PATH``/``sentinel_password_file=PATH``/``ssl_password_file=PATH``
(the password, or the TLS client key's, read from the file at every new connection, for
one rotated while the process runs:
:mod:`cfgcore.runtime.redis_credentials`). An unknown parameter is an error, so a typo
does not silently change behaviour.

Layout in Redis (``NS`` is the namespace, default ``cfgcore``; the braces are a cluster
hash tag so key and channel stay on one slot)::

    {NS}:flags           hash: version, checksum (sha256 hex of data), writer, data,
                         epoch (the store's epoch id), forced ("1": a forced write began it),
                         environment (the one ``cfgcore publish --flags`` published it for),
                         signature (written only by a process holding a fleet signing
                         key: cfgcore.runtime.signing; followers holding verification
                         keys refuse a document without a valid one)
    {NS}:flags:changes   pub/sub channel: "VERSION CHECKSUM" after every write (and
                         "0", no news, before a wait=N's WAIT: _replicate)
    {NS}:flags:floor     the highest version a process served when it found the
                         document gone or older (Redis restarted empty, a lost failover)
    {NS}:flags:floor:epoch  "VERSION EPOCH": the epoch that process served at the floor's
                         version (void when the floor has another version)
    {NS}:flags:writes    sorted set: the token of each of the newest WRITES_KEPT writes (its
                         writer record and checksum: write_token) -> the version it took,
                         written with the document: a write script sent again after its
                         reply was lost answers what it did (_CAS)
    {NS}:flags:guardrail-stops  hash: A/B test name -> JSON {"at": TIME, "record": ...}:
                         the fleet's guardrail stop register (the stops in force, the
                         record each went live with; an end: null record, resumed or
                         deleted at TIME), merged at every start with the host's own
                         (cfgcore.experiments.stops); read within bounds
                         (MAX_STOP_ENTRIES, MAX_STOP_ENTRY_BYTES, ...: see
                         RedisFlagStore.read_stop_register)
    {NS}:config:ENV      the same for a configuration published by ``cfgcore publish``

The floor keys and records are never cleared by a write: they live as long as the
namespace, which ``cfgcore retire`` (:func:`retire_namespace`) deletes whole.

``data`` is the flag snapshot in MessagePack (msgspec); ``writer`` is a MessagePack map
``{host, pid, actor, time, id}``. ``cfgcore publish`` with flags writes the configuration
and the flag document in one script (:meth:`RedisConfigStore.publish_with_flags`), so the
store never pairs one publish's configuration with another's flags; a namespace has one
flag document, so that script refuses flags for another environment than the one
recorded on it (:class:`FlagsEnvironmentError`). A publish may name the version it
expects to replace (``expected_version=``): the script refuses another one stored
(:class:`VersionConflictError`), else the last writer wins. Writes are one Lua
script: compare the stored version
with the one the change was computed from, store the new document with version + 1 and
publish, all in one atomic step; on a conflict the change is recomputed on the newer
document and tried again.

Followers (one thread per store, started by :meth:`RedisFlagStore.watch`) subscribe
first and then re-read the key, on every (re)connect and every ``poll`` seconds, because
pub/sub drops messages while disconnected. A document is delivered only if its checksum
matches, it decodes, and its version is newer than the last one delivered; a corrupt or
invalid document is rejected, counted (``stats``), logged and reported to ``on_error``
once (and not downloaded again while the store holds it: a poll then costs a few
bytes), and the last good one keeps serving; so is a key that another program replaced
with another type (a string, a list: reported as such, not as a lost connection), a
document nested too deeply to decode, and one with a field longer than cfgcore writes
there (:data:`FIELD_LIMITS`: the read script measures every field before it reads any,
so what a hostile writer stored is never copied, and names the field; so do the other
reads of those fields, :meth:`RedisFlagStore._fields`). After every
accepted document a local cache file is written atomically (the document with its
signature and writer field as stored, and for the flags the environment the repair
commands name: :meth:`RedisFlagStore._environment_arg`); when Redis is unreachable at
start, :meth:`read` serves it, checked first as a document read from Redis against the
keys the process trusts then (:meth:`RedisFlagStore._cached_signature`).
Nothing here is on the evaluation path: a flag check never waits for the network.

A store that loses its document (Redis restarted without persistence, a flush) is not
a new store: a process that has seen version N > 0 (in memory, in its cache file, or
in the floor key another process left) refuses to write to it without ``force`` (the
change would go to the seed, and every follower would take it), a follower keeps its
flags and reports it, and :meth:`read` serves the cache file. ``cfgcore publish
--store URL --flags FILE`` restores it, numbered above every version the fleet holds.
The same forced publish repairs an unreadable version field or a key of another type:
followers that refuse one raise the floor to what they serve, so the repair is
numbered above it (a floor key that is not a usable number is ignored and replaced).

A store that lost its document and was written again by a process that never saw it
(no cache file, no floor key: it took the empty store for a new one) is told apart by
its **epoch**: a random id that begins with a write on a store holding no document, or
with a forced write, and that every other write keeps (the write script compares it as
it compares the version). Each process remembers the epoch of the document it serves
(its cache file records it). A document of another epoch that no forced write began is
a re-created store: a write without ``force`` refuses it, a follower keeps its flags and
reports it once (and raises the floor), :meth:`read` serves the cache file. ``cfgcore
publish`` begins a new epoch marked forced, which every process takes (and builds on).
Nothing in Redis survives the loss, so the first process to write on the empty store
cannot be told. But the processes that served the old epoch record it beside the floor
when they raise it (they find the document gone or re-created): from then on every
process, a new one without a cache file and the one that re-created the store included,
refuses a document of another epoch that no forced write began (reads, followers and the
write script alike), until ``cfgcore publish``. A floor raised without a record (by a
release before this one) voids it: the store is then judged as before. A forced write
begins an epoch every process takes only when it is numbered above what was served (a
publish always is): a forced document at or below it is an older one back (a failover
lost the publish the fleet took since), refused like a re-created store.
A document of a release before epochs has none: the first write of this release gives it
one in place (the older release's script keeps the field when it writes), and a process
that served an epoch refuses a document without one (re-created by an older release:
repair with this release's ``cfgcore publish``).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import os
import secrets
import shlex
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import msgspec

from cfgcore._numbers import shown, whole_number
from cfgcore.errors import ConfigError, StopRegisterError, printable_name
from cfgcore.observability import instruments
from cfgcore.runtime.atomicio import (
    MAX_READ_BYTES,
    FileLock,
    ForeignStateFile,
    read_regular,
    read_state_file,
    write_state_file,
)
from cfgcore.runtime.flagstore import (
    FlagDocument,
    clean_writer,
    default_state_dir,
    writer_identity,
)
from cfgcore.runtime.forks import after_fork_in_child, restart_in_child
from cfgcore.runtime.redis_follow import (
    BACKOFF_MAX,
    CACHE_RETRY_SECONDS,
    JITTER,
    MAX_VERSION,
    RedisFollower,
    stored_epoch,
    stored_version,
)
from cfgcore.runtime.redis_url import RedisURL, parse_redis_url
from cfgcore.runtime.signing import MAX_ENVELOPE, FleetKeys
from cfgcore.snapshot import (  # the MessagePack decoding stages, reused per flag
    _MP_COND,
    _MP_FLAG,
    MAX_MSGPACK_ITEMS,
    MAX_VALUE_DEPTH,
    Snapshot,
    _deeper_than,
    _refuse_deep_values,
    _scan_msgpack,
    _split_msgpack,
    _too_deep,
    decode_snapshot,
    encode_msgpack,
    encode_snapshot,
    mark_decoded,
    msgpack_items,
    msgpack_items_bound,
    refuse_msgpack_duplicates,
    too_many_items,
)

if TYPE_CHECKING:
    # typing.Self is new in 3.11 and cfgcore supports 3.10: with postponed annotations
    # only type checkers read the name, and they know typing_extensions without it
    # being installed.
    from typing_extensions import Self

__all__ = [
    "FlagsEnvironmentError",
    "PublishedConfig",
    "RedisConfigStore",
    "RedisFlagStore",
    "RedisURL",
    "StoreUnreachableError",
    "VersionConflictError",
    "open_redis_store",
    "parse_redis_url",
    "retire_namespace",
]

log = logging.getLogger("cfgcore.fleet")

# The largest stored document read or written: a flag file's limit (atomicio).
MAX_DOCUMENT_BYTES = MAX_READ_BYTES
# The most bytes a writer record and an environment name take in a stored document (the
# fields ``writer`` and ``environment``): far more than cfgcore writes there (a writer
# record of host, pid, an actor of at most 256 characters, time and id is under 2 KiB;
# an environment is a file stem, and a publish refuses a longer one).
MAX_WRITER_BYTES = 64 * 1024
MAX_ENVIRONMENT_BYTES = 200
# Every field of a document hash beside its data, with the most bytes it may hold: the
# read script measures each one (HSTRLEN) before it reads any, and a document with a
# longer one is refused unread (whatever was stored there is never copied into the
# script's memory, nor sent: a hostile writer's 500 MB field would otherwise be copied by
# every poll of every process of the fleet). The order is the one refusals name them in.
FIELD_LIMITS: Mapping[str, int] = {
    "version": 64,  # (16 digits at most: 2**53 - 1)
    "checksum": 128,  # (64 hex digits)
    "epoch": 64,  # (16 to 64 hex digits: stored_epoch)
    "forced": 64,  # ("1")
    "writer": MAX_WRITER_BYTES,
    "signature": MAX_ENVELOPE,
    "environment": MAX_ENVIRONMENT_BYTES,
}
# The largest cache file read: a document and its fields (url, version, checksum, a
# writer of at most 64 KiB as the read script sends it, kept twice: as its record and
# as the field signed, a signature, an environment name) in MessagePack.
MAX_CACHE_BYTES = MAX_DOCUMENT_BYTES + (1 << 20)
# Seconds a cache file write waits for another process of the host to finish its own
# (a few milliseconds each); past that it is skipped and retried like a failed write.
CACHE_LOCK_SECONDS = 2.0
MAX_ATTEMPTS = 200  # CAS attempts before an update gives up (each attempt is a round trip)
# The writes a document's record of recent writes keeps ({NS}:flags:writes: a token of
# each write and the version it took, written in the write's own step): a write script
# sent again after its reply was lost finds its write there, even with other writers'
# documents stored on top since, and answers what it did instead of making the change a
# second time. Far more writes than a fleet makes in the seconds a resend takes; about
# 140 KB in Redis once full (MEMORY USAGE).
WRITES_KEPT = 1024

# Shared by the scripts: a stored version or floor is usable only as an integer in
# 0..2**53 - 1 (what Lua numbers count exactly); anything else stored there (by hand, by
# another program) is corrupt. A key that another program replaced with another type
# (a string, a list) is reported, never an error that looks like a lost connection.
# No value is read before its size is known (HSTRLEN, STRLEN: constant time): one longer
# than cfgcore writes there is never copied into the script's memory. LIMIT and FIELDS
# are FIELD_LIMITS.
_LUA_HELPERS = (
    f"local WRITES_KEPT = {WRITES_KEPT}\n"
    "local LIMIT = {"
    + ", ".join(f"{name} = {limit}" for name, limit in FIELD_LIMITS.items())
    + "}\nlocal FIELDS = {"
    + ", ".join(f"'{name}'" for name in FIELD_LIMITS)
    + "}\n"
    + """
-- A field of the hash at key, read only when it holds at most LIMIT[name] bytes; else
-- ``instead`` (false by default), without reading it. False for no such field.
local function hfield(key, name, instead)
  if redis.call('HSTRLEN', key, name) > LIMIT[name] then return instead or false end
  return redis.call('HGET', key, name)
end
-- The string at key (of type string) when it holds at most ``limit`` bytes, else false.
local function small(key, limit)
  if redis.call('STRLEN', key) > limit then return false end
  return redis.call('GET', key)
end
local function usable(n)
  return n ~= nil and n >= 0 and n < 9007199254740992 and n == math.floor(n)
end
-- A stored version (a document's version field, a floor key) by the rule Python reads
-- it by (stored_version): ASCII digits only, 0 to 2**53 - 1; nil for anything else.
-- (tonumber alone also takes '1.0', '0x2', ' 3', '3 ', '+3' and '1e3': a write went
-- through, or was numbered, by a version every reader refuses or ignores.)
local function version_of(text)
  if type(text) ~= 'string' or not string.find(text, '^[0-9]+$') then return nil end
  local n = tonumber(text)
  if usable(n) then return n end
  return nil
end
local function floor_of(key)
  if redis.call('TYPE', key).ok ~= 'string' then return 0 end
  return version_of(small(key, LIMIT.version)) or 0
end
-- The version field of the document hash at key as stored (within its limit, else
-- 'oversized'): false for no document (no version and no data), '' for data without a
-- version (Python refuses it as it refuses any version it cannot read).
local function stored_text(key)
  local raw = hfield(key, 'version', 'oversized')
  if not raw and redis.call('HEXISTS', key, 'data') == 1 then return '' end
  return raw
end
-- The epoch the fleet served at the floor's version, as the process that raised the
-- floor there recorded it ("VERSION EPOCH" in ekey), or '': none recorded, or recorded
-- at another version (the floor rose since without one: an earlier release's process).
local function floor_epoch(key, ekey)
  if floor_of(key) <= 0 or redis.call('TYPE', ekey).ok ~= 'string' then return '' end
  local record = small(ekey, LIMIT.version + 1 + LIMIT.epoch) or ''
  local v, e = string.match(record, '^(%d+) (%x+)$')
  if v == nil or v ~= small(key, LIMIT.version) or #e < 16 or #e > 64 then return '' end
  return e
end
-- The floor rises to v; with ekey, the epoch served at v ('' for none) is recorded
-- beside it when v is the floor's version now and none is recorded there, or v is
-- above the floor.
local function raise_floor(key, v, ekey, epoch)
  local kind = redis.call('TYPE', key).ok
  if kind ~= 'string' and kind ~= 'none' then redis.call('DEL', key) end
  local f = floor_of(key)
  local fleet = ekey and floor_epoch(key, ekey) or ''
  if v > f then redis.call('SET', key, v) end
  -- (the floor's text: v's, or a usable one, unless it is unusable and v is 0)
  local now = small(key, LIMIT.version) or ''
  if ekey and epoch and epoch ~= '' and v >= f and (fleet == '' or v > f) then
    redis.call('SET', ekey, now .. ' ' .. epoch)
  elseif ekey and fleet ~= '' and v > f then
    -- raised by a process that records no epoch (it refused a document by this very
    -- record): the record rises with the floor
    redis.call('SET', ekey, now .. ' ' .. fleet)
  end
end
-- A forced document is taken across epochs (a publish) only when it is numbered above
-- the floor: one at or below it is an older document back (a failover lost the publish
-- the fleet served since), not a repair (a forced write is numbered above the floor).
local function forced_above(key, raw, floor_key)
  if hfield(key, 'forced') ~= '1' then return false end
  local n = version_of(raw)
  return n == nil or n > floor_of(floor_key)
end
-- Compare-and-set on a version the caller names (a publisher's --expect-version):
-- nil when ``expected`` is '' (none named) or the stored version is ``expected`` (0 for
-- no document), else the version held (-1: unreadable, or a key of another type).
local function held_version(key, expected)
  if expected == nil or expected == '' then return nil end
  local kind = redis.call('TYPE', key).ok
  local held = -1
  if kind == 'none' then
    held = 0
  elseif kind == 'hash' then
    local raw = stored_text(key)
    held = raw and (version_of(raw) or -1) or 0  -- (a hash of no document: none)
  end
  if held == tonumber(expected) then return nil end
  return held
end
-- The token of a write (its writer record, unique to each write, and its checksum) in
-- the record of recent writes (see write_token in Python: the same text).
local function write_token(writer, checksum)
  return redis.sha1hex(writer .. '\\n' .. checksum)
end
-- The version this very write took when the store holds it (the writer record and
-- checksum of the document at key), or its record of recent writes at wkey (a sorted
-- set: token -> version) names it, else nil: a script sent again after its reply was
-- lost (redis-py sends a command again on a new connection when the first one fails)
-- answers what it did instead of counting its own write as another writer's (a
-- conflict: the change made a second time; --expect-version refused), also when another
-- writer's document was stored on top of it meanwhile (a forced resend replaced it).
local function written_by(key, wkey, writer, checksum)
  if redis.call('TYPE', key).ok == 'hash' and hfield(key, 'writer') == writer
      and hfield(key, 'checksum') == checksum then
    local n = version_of(stored_text(key))
    if n then return n end
  end
  if redis.call('TYPE', wkey).ok ~= 'zset' then return nil end
  return version_of(redis.call('ZSCORE', wkey, write_token(writer, checksum)))
end
-- Record a write made now (version n) at wkey, keeping the newest WRITES_KEPT (by
-- version); a key of another type there (not cfgcore's) is replaced.
local function record_write(wkey, writer, checksum, n)
  local kind = redis.call('TYPE', wkey).ok
  if kind ~= 'zset' and kind ~= 'none' then redis.call('DEL', wkey) end
  redis.call('ZADD', wkey, n, write_token(writer, checksum))
  redis.call('ZREMRANGEBYRANK', wkey, 0, -(WRITES_KEPT + 1))
end
local function epoch_of(key)  -- of a hash or no key: '' for none (a previous release's)
  -- (past LIMIT.epoch: not cfgcore's, refused as corrupt)
  return hfield(key, 'epoch', 'oversized') or ''
end
"""
)

# Compare-and-set in one step. KEYS[1] the document hash, KEYS[2] the fleet's version
# floor (a plain key; see _LOST), KEYS[3] the epoch recorded beside it, KEYS[4] the
# record of recent writes (written_by, record_write): without force, a
# document of another epoch than the one recorded that no forced write began is not
# written to ({-5, floor}: re-created after the fleet served the recorded one).
# ARGV: expected version, version floor (the highest this writer has seen: after a
# failover that lost writes, versions continue above it instead of repeating numbers
# followers already hold), checksum, writer, data, channel, force
# ("1": overwrite whatever is there, even an unreadable version field or a key of
# another type). Returns {1, new} on success, {0, current} on a conflict, {-1, text} if
# the stored version is not a usable number (and force is off), {-2, floor} if the
# document is gone although a version was seen (and force is off): writing now would
# start over from the seed, {-3, type} if the key holds another type than a hash (and
# force is off), {-4, highest} if the next version would pass 2**53 - 1 (a floor key or
# version set by hand or by another program: cfgcore never numbers that far).
# ARGV[8] the epoch of the document the change was computed from ('' for none: no
# document, or one a previous release wrote): compared like the version, so a store
# re-created since the read is a conflict (the retry reads it and refuses it, see
# RedisFlagStore._foreign). ARGV[9] a fresh epoch id: a forced write, a write on a store
# without a document and the first write on a previous release's document (upgraded in
# place) begin an epoch; every other write keeps the stored one. 'forced' says whether a
# forced write began it: processes that served another epoch take only such a document.
# ARGV[10] the version the caller expects to replace ('' for any: see _expected_check),
# checked first, forced or not: {-6, held} when the store holds another (nothing written).
# ARGV[11] the version ARGV[12], the document's signature (cfgcore.runtime.signing), was
# made for ('' and '': unsigned, the field is removed): a write that would take another
# number is not made ({-8, new}: the writer signs for that one and tries again), so a
# signature always names the version it is stored under. A forced write also removes an
# environment record longer than cfgcore writes (FIELD_LIMITS), which readers refuse.
# A store already holding this write (its writer record ARGV[4], unique to each write,
# and checksum ARGV[3]: the script sent again after its reply was lost), or whose record
# of recent writes KEYS[4] names it (another writer's document stored on top since),
# answers {1, its version}, writing nothing (written_by); so does _PAIR.
# ARGV[13] the checksum of the document the change was computed from ('' for none):
# compared like the version and the epoch, so another document stored under the same
# number since the read (a failover lost the write that took it first and another
# writer took it again; a hand repair keeping the version) is a conflict, and the change
# is computed and judged again on it instead of silently replacing it.
_CAS = (
    _LUA_HELPERS
    + """
local mine = written_by(KEYS[1], KEYS[4], ARGV[4], ARGV[3])
if mine then return {1, mine} end
local kind = redis.call('TYPE', KEYS[1]).ok
local held = held_version(KEYS[1], ARGV[10])
if held then return {-6, held} end
if kind ~= 'hash' and kind ~= 'none' then
  if ARGV[7] ~= '1' then return {-3, kind} end
  redis.call('DEL', KEYS[1])
end
local raw = stored_text(KEYS[1])
local epoch = epoch_of(KEYS[1])
if raw and ARGV[7] ~= '1' then
  local fleet = floor_epoch(KEYS[2], KEYS[3])
  if fleet ~= '' and epoch ~= fleet and not forced_above(KEYS[1], raw, KEYS[2]) then
    return {-5, floor_of(KEYS[2])}  -- re-created after the fleet served another epoch
  end
end
local floor = math.max(tonumber(ARGV[2]), floor_of(KEYS[2]))
local cur = 0
if raw then
  cur = version_of(raw)
  if not cur then
    if ARGV[7] ~= '1' then return {-1, raw} end  -- (the text, to name it)
    cur = 0  -- numbered above the floor: followers raise it when they refuse this one
  end
elseif floor > 0 and ARGV[7] ~= '1' then
  raise_floor(KEYS[2], floor, KEYS[3], '')
  return {-2, floor}
end
if ARGV[7] ~= '1' and (cur ~= tonumber(ARGV[1]) or epoch ~= ARGV[8]
    or (ARGV[13] ~= '' and (hfield(KEYS[1], 'checksum') or '') ~= ARGV[13])) then
  return {0, cur}
end
local new = math.max(cur, floor) + 1
if not usable(new) then return {-4, new - 1} end
if ARGV[11] ~= '' and tonumber(ARGV[11]) ~= new then return {-8, new} end
redis.call('HSET', KEYS[1], 'version', new, 'checksum', ARGV[3], 'writer', ARGV[4],
           'data', ARGV[5])
if ARGV[12] ~= '' then
  redis.call('HSET', KEYS[1], 'signature', ARGV[12])
else
  redis.call('HDEL', KEYS[1], 'signature')
end
if ARGV[7] == '1' then
  redis.call('HSET', KEYS[1], 'epoch', ARGV[9], 'forced', '1')
  -- (a record longer than cfgcore writes makes every reader refuse the document: a
  -- repair removes it; a publish records its own)
  if redis.call('HSTRLEN', KEYS[1], 'environment') > LIMIT.environment then
    redis.call('HDEL', KEYS[1], 'environment')
  end
elseif epoch == '' then
  redis.call('HSET', KEYS[1], 'epoch', ARGV[9])
  redis.call('HDEL', KEYS[1], 'forced')
end
record_write(KEYS[4], ARGV[4], ARGV[3], new)
redis.call('PUBLISH', ARGV[6], new .. ' ' .. ARGV[3])
return {1, new}
"""
)

# Read the document in one step, its data only when it is at most ARGV[1] bytes (a
# follower must not download and decode whatever was stored, up to Redis's 512 MB, when
# a flag file is refused past 64 MiB). Every other field is measured before any is read
# (FIELD_LIMITS): the first one longer than cfgcore writes there is sent back by name
# and size ("NAME SIZE", thirteenth), and neither it nor the writer nor the data is read:
# the document is refused by it. (Such a field was stored by another program or by hand;
# copied into the script's memory at every poll of every process, it would cost the
# fleet whatever its writer chose.) KEYS[1] the document hash, KEYS[2] and KEYS[3] the
# floor and the epoch recorded beside it (sent back tenth, nil for none or when it does
# not judge the document: a forced one numbered above the floor; a poll is 'unchanged'
# only when the document is of that epoch or so exempt). ARGV[2] the version the reader
# serves ('' for none), ARGV[3] the epoch of the document it serves ('' for none).
# ARGV[4] '1' while the reader refuses a stored document, which ARGV[5..11] identify: its
# version, epoch, checksum and forced mark ('0'/'1') as this script sends them ('' for
# none), the epoch recorded beside the floor as sent ('' for none) when the refusal
# depends on it ('*' when not), the size of its data (followed by ' NAME' when a field
# NAME is over its limit), and the SHA-1 of its data when it
# did not match its checksum ('' otherwise: data put back by hand under the same version
# and checksum is read). ARGV[2] may add the checksum of the document the reader serves
# ("VERSION:CHECKSUM"): another document under the version served (a failover lost the
# write that took the number first) is then not 'unchanged'. (Few arguments: a Redis
# that wants a password answers a client that sent none NOAUTH only for commands of at
# most 10 elements, and a protocol error for longer ones.)
# Returns {version, checksum, writer, data or nil, size of data, nil, nil, epoch or nil,
# forced or nil}; {version, nil, nil, nil, size, nil, 'unchanged', nil, nil} when the
# stored version and epoch are ARGV[2] and ARGV[3] (a poll, or an announcement that
# brought nothing new, costs a few bytes, not the document); {version, checksum, nil,
# nil, size, nil, 'refused', epoch, forced} when the stored document is the one the
# reader refuses (it is not sent again on every poll); or {nil, nil, nil, nil, 0, type,
# nil, nil, nil} when the key holds another type; each with the recorded epoch tenth,
# the signature field eleventh (nil but in the full reply), the environment a publish
# recorded on the document twelfth (nil for none): the -e of the repair commands a
# refusal prints (RedisFlagStore._environment_arg), read in the same round trip; and the
# field over its limit last (nil for none). A version or epoch over its limit is sent as
# 'oversized', a checksum as nil.
_READ = (
    _LUA_HELPERS
    + """
local kind = redis.call('TYPE', KEYS[1]).ok
if kind ~= 'hash' and kind ~= 'none' then
  return {false, false, false, false, 0, kind, false, false, false, false, false, false, false}
end
local fleet = floor_epoch(KEYS[2], KEYS[3])
local sizes, over = {}, false  -- every field measured; the first one over its limit
for _, name in ipairs(FIELDS) do
  sizes[name] = redis.call('HSTRLEN', KEYS[1], name)
  if not over and sizes[name] > LIMIT[name] then over = name end
end
local over_text = over and (over .. ' ' .. string.format('%d', sizes[over]))
-- a field as measured above: read only within its limit, else ``instead`` (or false)
local function field(name, instead)
  if sizes[name] > LIMIT[name] then return instead or false end
  return redis.call('HGET', KEYS[1], name)
end
-- (ARGV[10]: a refused document's shape, its size and the field over its limit)
local size = redis.call('HSTRLEN', KEYS[1], 'data')
local shape = string.format('%d', size) .. (over and (' ' .. over) or '')
local env = field('environment')
local r = {field('version', 'oversized'), field('checksum')}
local epoch = field('epoch', 'oversized') or ''  -- (as epoch_of)
local forced = field('forced') == '1'
-- (the record does not judge a document it exempts: sent back as none)
if fleet ~= '' and forced_above(KEYS[1], r[1], KEYS[2]) then fleet = '' end
if ARGV[4] == '1' and (r[1] or '') == ARGV[5] and epoch == ARGV[6]
    and (r[2] or '') == ARGV[7] and (forced and '1' or '0') == ARGV[8]
    and (ARGV[9] == '*' or fleet == ARGV[9]) and shape == ARGV[10]
    and (ARGV[11] == '' or redis.sha1hex(redis.call('HGET', KEYS[1], 'data') or '') == ARGV[11])
then
  -- the document the reader refuses: refused again without being sent
  return {r[1], r[2], false, false, size, false, 'refused', epoch ~= '' and epoch, forced,
          fleet ~= '' and fleet, false, env, over_text}
end
local served, sum = string.match(ARGV[2], '^(%d*):?(%x*)$')
-- (compared as numbers: readers take a version written with leading zeros, 007, as 7,
-- and such a version compared as text was never the one served, so every poll of every
-- process downloaded the whole document again; a value past 2**53 - 1 rounds to no
-- version a reader serves)
local same = served and served ~= '' and version_of(r[1]) ~= nil
  and version_of(r[1]) == tonumber(served)
if same and epoch == ARGV[3]
    and (fleet == '' or fleet == epoch) and (sum == '' or r[2] == sum) then
  -- the version the reader serves already: only the version is sent back
  return {r[1], false, false, false, size, false, 'unchanged', false, false, false, false, env,
          false}
end
r[3] = false
r[4] = false
if not over then
  -- (refused by a field over its limit: nothing more is read)
  r[3] = field('writer')
  if size <= tonumber(ARGV[1]) then r[4] = redis.call('HGET', KEYS[1], 'data') end
end
r[5] = size
r[6] = false
r[7] = false
r[8] = epoch ~= '' and epoch
r[9] = forced
r[10] = fleet ~= '' and fleet
r[11] = field('signature')
r[12] = env
r[13] = over_text
return r
"""
)

# KEYS[1] the floor key, ARGV[1] a version some process serves: the floor rises to it;
# KEYS[2] the record beside it, ARGV[2] the epoch that process serves ('' for none).
# Written when a process finds the document gone, older than what it serves (Redis
# restarted empty, a failover lost writes) or unreadable, so that the store remembers
# it lost a document (writes without force are refused, see _CAS) and whatever is
# published next is numbered above every version a follower holds (else followers
# would ignore it). A floor that is not a usable number (or not a string) is replaced.
_LOST = (
    _LUA_HELPERS
    + """
local cur = floor_of(KEYS[1])
raise_floor(KEYS[1], tonumber(ARGV[1]), KEYS[2], ARGV[2])
return cur
"""
)

# ``cfgcore publish`` with flags: the configuration and the flag document in one atomic
# step, both forced writes (as _CAS with force), so no follower can ever read one
# publish's configuration with another's flags (two publishes at once interleaved their
# two writes before). KEYS[1..3] the configuration's document, floor and floor record,
# KEYS[4..6] the flag document's, KEYS[7] and KEYS[8] the records of recent writes of
# the two (written_by, record_write): all in the namespace's hash slot ({NS}), so the script
# runs on a cluster too. ARGV[1] the flag document's identity ("VERSION CHECKSUM" as
# identity() computes it) when the publisher read and judged it: another one stored since
# (a concurrent publish or write) is a conflict ({0, 0, 0}), and the publisher judges its
# flags again against that one. ARGV[2..7] the configuration's floor, checksum, writer,
# data, channel and fresh epoch, ARGV[8..13] the same for the flags. ARGV[14] the
# configuration version the publisher expects to replace ('' for any): another one
# stored is {-6, held, 0}. ARGV[15] the configuration's environment, recorded on the flag
# document (field 'environment'): a namespace has one flag document, so a publish for
# another environment than the one recorded would replace the flags that environment's
# processes serve: refused, {-7, 0, 0, recorded}, unless ARGV[16] is '1' (the operator
# moves the namespace's flags on purpose). A document without the field (written before
# it, or by a flags-only write on an empty store), or with one longer than cfgcore writes,
# is recorded by its first publish.
# ARGV[17], ARGV[18] the version the configuration's signature was made for and the
# signature, ARGV[19], ARGV[20] the same for the flags ('' and '': unsigned, the field is
# removed); either numbered otherwise is {-8, config version, flags version}, nothing
# written (the publisher signs for those and tries again).
# Returns {1, config version, flags version}, or {-4, highest, 0 or 1} when a version
# would pass 2**53 - 1 (nothing written).
_PAIR = (
    _LUA_HELPERS
    + """
local function identity(key)
  if redis.call('TYPE', key).ok ~= 'hash' then return ' ' end
  -- (as the read script sends them)
  local v = hfield(key, 'version', 'oversized') or ''
  local c = hfield(key, 'checksum') or ''
  return v .. ' ' .. c
end
local function next_version(key, floor_key, floor)
  local cur = 0
  if redis.call('TYPE', key).ok == 'hash' then
    cur = version_of(stored_text(key)) or 0
  end
  return math.max(cur, tonumber(floor), floor_of(floor_key)) + 1
end
local function write(key, new, a, s)  -- a: the ARGV index of checksum, writer, data, ...
  local kind = redis.call('TYPE', key).ok
  if kind ~= 'hash' and kind ~= 'none' then redis.call('DEL', key) end
  redis.call('HSET', key, 'version', new, 'checksum', ARGV[a], 'writer', ARGV[a + 1],
             'data', ARGV[a + 2], 'epoch', ARGV[a + 4], 'forced', '1')
  if ARGV[s] ~= '' then  -- s: the ARGV index of the signature
    redis.call('HSET', key, 'signature', ARGV[s])
  else
    redis.call('HDEL', key, 'signature')
  end
  -- (as a forced write of _CAS: a record longer than cfgcore writes, which makes every
  -- reader refuse the document, is removed; the flag document's is written below)
  if redis.call('HSTRLEN', key, 'environment') > LIMIT.environment then
    redis.call('HDEL', key, 'environment')
  end
end
local cmine = written_by(KEYS[1], KEYS[7], ARGV[4], ARGV[3])
local fmine = written_by(KEYS[4], KEYS[8], ARGV[10], ARGV[9])
if cmine and fmine then return {1, cmine, fmine} end
local held = held_version(KEYS[1], ARGV[14])
if held then return {-6, held, 0} end
if ARGV[16] ~= '1' and redis.call('TYPE', KEYS[4]).ok == 'hash' then
  -- (a record longer than cfgcore writes is none: every reader refuses the document
  -- it is on, and this publish, the repair they print, replaces it)
  local recorded = hfield(KEYS[4], 'environment')
  if recorded and recorded ~= ARGV[15] then
    return {-7, 0, 0, recorded}
  end
end
if identity(KEYS[4]) ~= ARGV[1] then return {0, 0, 0} end
local cv = next_version(KEYS[1], KEYS[2], ARGV[2])
local fv = next_version(KEYS[4], KEYS[5], ARGV[8])
if not usable(cv) then return {-4, cv - 1, 0} end
if not usable(fv) then return {-4, fv - 1, 1} end
if (ARGV[17] ~= '' and tonumber(ARGV[17]) ~= cv)
    or (ARGV[19] ~= '' and tonumber(ARGV[19]) ~= fv) then
  return {-8, cv, fv}
end
write(KEYS[1], cv, 3, 18)
write(KEYS[4], fv, 9, 20)
redis.call('HSET', KEYS[4], 'environment', ARGV[15])
record_write(KEYS[7], ARGV[4], ARGV[3], cv)
record_write(KEYS[8], ARGV[10], ARGV[9], fv)
redis.call('PUBLISH', ARGV[6], cv .. ' ' .. ARGV[3])
redis.call('PUBLISH', ARGV[12], fv .. ' ' .. ARGV[9])
return {1, cv, fv}
"""
)

# The fleet's guardrail stop register is read within bounds, as the document's fields
# are (FIELD_LIMITS): whoever can write Redis could plant entries of any number and size,
# which every process would otherwise copy at every start and every fleet document it
# judges. A legitimate entry is one A/B test's: its name (the test's flag key) as field,
# and as value the JSON of its time and its record as the flag document holds it
# (traffic split, metrics, guardrails, control, status and times: under 1 KiB, a few
# KiB with a long description), with, when signed, a signature (at most MAX_ENVELOPE, 256
# bytes) and a writer record (host, pid, an actor of at most 256 characters, time and id:
# under 2 KiB). Entries are never removed (an end stays, with a null record), so a
# register holds one per test ever stopped by a guardrail in the namespace.
MAX_STOP_ENTRIES = 4096  # (as many as the verdicts kept per store: _MAX_STOP_VERDICTS)
MAX_STOP_NAME_BYTES = 1024  # a test's name (a flag key)
MAX_STOP_ENTRY_BYTES = 64 * 1024  # an entry's value: over ten times a large record
# The most bytes the entries one read takes hold, names and values: as much as the
# host's own register file holds (cfgcore.experiments.stops.read_stops reads at most
# 16 MiB), into which a start copies the fleet's stops.
MAX_STOP_REGISTER_BYTES = 16 << 20
# The most memory the register's key may take in Redis (MEMORY USAGE, names, values and
# Redis's own overhead) for the read script to list its names: Redis has no command that
# measures a field's name, and listing them copies every name into the script's memory
# while the whole server waits. Twice MAX_STOP_REGISTER_BYTES: a register cfgcore wrote
# (entries within their limits, allocator rounding) fits, with room for a few oversized
# values planted beside it (each passed over alone).
MAX_STOP_REGISTER_MEMORY = 2 * MAX_STOP_REGISTER_BYTES
# How a poll checks that a refused entry of the register still stands (_STOPS_STANDING).
_Probe = tuple[str, bytes, bytes]

# The stop register (KEYS[1]) read within those bounds (ARGV[1..5]: MAX_STOP_ENTRIES,
# MAX_STOP_NAME_BYTES, MAX_STOP_ENTRY_BYTES, MAX_STOP_REGISTER_BYTES,
# MAX_STOP_REGISTER_MEMORY), no value read before it is measured (HSTRLEN). A register
# of more entries than MAX_STOP_ENTRIES is not enumerated at all ({'count', entries}),
# nor is one whose key takes more than MAX_STOP_REGISTER_MEMORY in Redis ({'memory',
# bytes}); one whose entries within their limits hold more than MAX_STOP_REGISTER_BYTES
# is not read ({'total', bytes}); a key of another type is {'type', type}. Else {'ok',
# then per entry: name, value, name size, value size}: the value nil (not read) when it
# is over MAX_STOP_ENTRY_BYTES, and when the name is over MAX_STOP_NAME_BYTES (then only
# its first 64 bytes are sent, and the value size is -1: not measured). Redis has no
# command that measures a field's name: HKEYS copies every name into the script's
# memory (4,096 names of 64 KiB: 256 MiB, 1.5 s with the server blocked), so the key's
# memory is asked first (MEMORY USAGE with SAMPLES 0 counts every field in place,
# copying nothing; a server that refuses MEMORY, an ACL say, is read as before); a long
# name within it is never sent.
_STOPS_READ = """
local kind = redis.call('TYPE', KEYS[1]).ok
if kind == 'none' then return {'ok'} end
if kind ~= 'hash' then return {'type', kind} end
local n = redis.call('HLEN', KEYS[1])
if n > tonumber(ARGV[1]) then return {'count', n} end
local used = redis.pcall('MEMORY', 'USAGE', KEYS[1], 'SAMPLES', '0')
if type(used) == 'number' and used > tonumber(ARGV[5]) then return {'memory', used} end
local max_name, max_entry = tonumber(ARGV[2]), tonumber(ARGV[3])
local names = redis.call('HKEYS', KEYS[1])
local sizes, total = {}, 0
for i, name in ipairs(names) do
  sizes[i] = -1
  if #name <= max_name then
    sizes[i] = redis.call('HSTRLEN', KEYS[1], name)
    if sizes[i] <= max_entry then total = total + #name + sizes[i] end
  end
end
if total > tonumber(ARGV[4]) then return {'total', total} end
local r = {'ok'}
for i, name in ipairs(names) do
  local value = false
  if sizes[i] >= 0 and sizes[i] <= max_entry then
    value = redis.call('HGET', KEYS[1], name)
  end
  r[#r + 1] = sizes[i] >= 0 and name or string.sub(name, 1, 64)
  r[#r + 1] = value
  r[#r + 1] = #name
  r[#r + 1] = sizes[i]
end
return r
"""

# The fleet's guardrail stop register (KEYS[1], a hash: test name -> JSON
# {"at": TIME, "record": RECORD or null}, plus "signature" and "writer" when the writer
# holds a fleet signing key; see RedisFlagStore.write_stop_register), all the changes of
# one call in one atomic step. ARGV: quadruples (test, time, JSON, refused), the time
# being the stop's (the record's guardrail_stopped_at) or the end's (null record: its
# resume or deletion). An entry replaces the stored one only when it is later, or as
# late and an end (a resume at the stop's time ends it, as in guardrail_stop): a host
# that writes what it knows never undoes a newer stop or end. A stored value that is
# not such an entry (written by another program) is replaced; so is one the writer read
# and refused (an unsigned entry, a bad signature, an unknown key: "refused" is the
# value it read, '' for none), whatever its time, if it is still the one stored; and so
# is one longer than MAX_STOP_ENTRY_BYTES, measured and never read (no reader takes it:
# a host that holds the test's stop writes it back over it). A key of another
# type is deleted first. Returns the number of entries written.
_STOPS = (
    f"local MAX_ENTRY = {MAX_STOP_ENTRY_BYTES}\n"
    + """
local kind = redis.call('TYPE', KEYS[1]).ok
if kind ~= 'hash' and kind ~= 'none' then redis.call('DEL', KEYS[1]) end
local written = 0
for i = 1, #ARGV, 4 do
  local at = tonumber(ARGV[i + 1])
  local okn, new = pcall(cjson.decode, ARGV[i + 2])
  local ends = okn and type(new) == 'table' and
    (new['record'] == nil or new['record'] == cjson.null)
  local take = true
  local old = false
  if redis.call('HSTRLEN', KEYS[1], ARGV[i]) <= MAX_ENTRY then
    old = redis.call('HGET', KEYS[1], ARGV[i])
  end
  if old and not (ARGV[i + 3] ~= '' and old == ARGV[i + 3]) then
    local ok, entry = pcall(cjson.decode, old)
    local was = ok and type(entry) == 'table' and tonumber(entry['at']) or nil
    if was ~= nil then
      local was_end = entry['record'] == nil or entry['record'] == cjson.null
      take = at > was or (at == was and ends and not was_end)
    end
  end
  if take then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 2])
    written = written + 1
  end
end
return written
"""
)


# Whether the stop register (KEYS[1]) still holds a host's own entries, at each poll
# of the host's follower: ARGV[1] is MAX_STOP_ENTRY_BYTES, then pairs (test, SHA-1 of
# the value last judged to hold this host's entry, '' for none). Returns {type, then per
# test whose value is not that one: test, value, size}: the value false when there is
# none (size 0) or it is over MAX_ENTRY (measured with HSTRLEN, never read). A register
# that holds this host's entries as last judged answers {'hash'}: a few bytes, whatever
# the entries hold. (Not a counter the write script bumps: whoever loses an entry,
# HDEL, a planted value, Redis losing its data, bypasses that script.)
_STOPS_CHECK = """
local kind = redis.call('TYPE', KEYS[1]).ok
local r = {kind}
if kind ~= 'hash' then return r end
local max_entry = tonumber(ARGV[1])
for i = 2, #ARGV, 2 do
  local size = redis.call('HSTRLEN', KEYS[1], ARGV[i])
  if size == 0 or size > max_entry then
    r[#r + 1] = ARGV[i]
    r[#r + 1] = false
    r[#r + 1] = size
  else
    local value = redis.call('HGET', KEYS[1], ARGV[i])
    if redis.sha1hex(value) ~= ARGV[i + 1] then
      r[#r + 1] = ARGV[i]
      r[#r + 1] = value
      r[#r + 1] = size
    end
  end
end
return r
"""


# Whether the refused entries of the stop register (KEYS[1]) standing on a process are
# still stored as that process last read them, at each poll of its follower while one
# stands (RedisFlagStore._recheck_stop_register): ARGV[1..4] are MAX_STOP_ENTRIES,
# MAX_STOP_ENTRY_BYTES, MAX_STOP_NAME_BYTES and MAX_STOP_REGISTER_MEMORY, then triples
# (how, name, mark): 'sha', the entry named so (its exact bytes: a name that is not
# UTF-8 too) holds a value within MAX_ENTRY whose SHA-1 is mark; 'size', its value is
# still mark bytes long (over MAX_ENTRY: measured, never read); 'long', the register
# still has a name of mark bytes (over MAX_NAME) beginning with name (its first 64
# bytes, as the read script sent them): the names are listed (HKEYS, within the read
# script's bounds, which are checked first), no value is read. Returns 1 when every one
# still stands (a few bytes, whatever the register holds), else 0: the caller reads the
# register again, which says what stands now.
_STOPS_STANDING = """
local kind = redis.call('TYPE', KEYS[1]).ok
if kind ~= 'hash' then return 0 end
local max_entry, max_name = tonumber(ARGV[2]), tonumber(ARGV[3])
local long, left = {}, 0
for i = 5, #ARGV, 3 do
  local how, name, mark = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  if how == 'sha' then
    if redis.call('HEXISTS', KEYS[1], name) == 0 then return 0 end
    if redis.call('HSTRLEN', KEYS[1], name) > max_entry then return 0 end
    if redis.sha1hex(redis.call('HGET', KEYS[1], name)) ~= mark then return 0 end
  elseif how == 'size' then
    if redis.call('HSTRLEN', KEYS[1], name) ~= tonumber(mark) then return 0 end
  else
    local key = mark .. ' ' .. name
    if not long[key] then
      long[key] = true
      left = left + 1
    end
  end
end
if left == 0 then return 1 end
if redis.call('HLEN', KEYS[1]) > tonumber(ARGV[1]) then return 0 end
local used = redis.pcall('MEMORY', 'USAGE', KEYS[1], 'SAMPLES', '0')
if type(used) == 'number' and used > tonumber(ARGV[4]) then return 0 end
for _, name in ipairs(redis.call('HKEYS', KEYS[1])) do
  if #name > max_name then
    local key = string.format('%d', #name) .. ' ' .. string.sub(name, 1, 64)
    if long[key] then
      long[key] = nil
      left = left - 1
    end
  end
end
if left == 0 then return 1 end
return 0
"""


# Named fields of a document hash, each read only within its FIELD_LIMITS limit, in one
# step: KEYS[1] the hash, ARGV the names (of FIELD_LIMITS). Returns {type, over, value
# per name}: the key's type ('hash', 'none', another: then no value is sent), the first
# field over its limit as "NAME SIZE" (nil for none), and each value (nil for no such
# field, or one over its limit: measured with HSTRLEN, never read). What a hostile writer
# stored there is never copied into the script's memory nor sent (a write's lost reply,
# a publish's signature: see RedisFlagStore._fields).
_FIELDS = (
    _LUA_HELPERS
    + """
local kind = redis.call('TYPE', KEYS[1]).ok
local r = {kind, false}
if kind ~= 'hash' then return r end
for i, name in ipairs(ARGV) do
  local size = redis.call('HSTRLEN', KEYS[1], name)
  if size > LIMIT[name] then
    r[2] = r[2] or (name .. ' ' .. string.format('%d', size))
    r[i + 2] = false
  else
    r[i + 2] = redis.call('HGET', KEYS[1], name)
  end
end
return r
"""
)


def _identity(raw: list[Any]) -> bytes:
    """The flag document's identity in a reply of the read script, as ``_PAIR`` computes
    it from the stored fields: b"VERSION CHECKSUM" (b" " for no document, or a key of
    another type), the bytes as stored."""
    if raw[5]:
        return b" "
    version, checksum = raw[0], raw[1]
    return (
        (version if isinstance(version, bytes) else b"")
        + b" "
        + (checksum if isinstance(checksum, bytes) else b"")
    )


def _environment_text(value: Any) -> str | None:
    """An environment name as a command may show it (bytes from Redis, or text): None
    for none, or for text ``-e`` would refuse (what another tool or a hostile writer
    stored: empty, a ':', blanks inside, anything but letters, digits, '_', '-', '.'),
    so a repair command never suggests an ``-e`` that cannot work."""
    from cfgcore.config.builder import is_environment_name

    if isinstance(value, bytes):
        try:
            value = value.decode()
        except UnicodeDecodeError:
            return None
    if not isinstance(value, str) or not value or len(value) > MAX_ENVIRONMENT_BYTES:
        return None
    return value if is_environment_name(value) and value.isprintable() else None


def _unexpected(what: str, reply: Any) -> Exception:
    """The error for a reply of another shape than ``what`` returns (a proxy or server
    that is not Redis, or misbehaves): a Redis error, so a read serves the cache file,
    a follower reconnects and a write fails with a ConfigError, never a TypeError."""
    from redis.exceptions import InvalidResponse

    shown = repr(reply)
    shown = shown if len(shown) <= 80 else shown[:77] + "..."
    return InvalidResponse(f"unexpected reply to {what}: {shown}")


# Verdicts on stop register values (and refusals reported) kept per store: values an
# attacker keeps changing must not grow them without bound.
_MAX_STOP_VERDICTS = 4096


def _canonical(value: Any) -> Any:
    """``value`` as a JSON reader gets it back (non-JSON values as their text): what a
    signature over a register entry covers is what every reader reconstructs."""
    return json.loads(json.dumps(value, default=str))


def _stop_signed(entry: Mapping[str, Any]) -> tuple[bytes, bytes]:
    """The content and writer a register entry's signature covers: the canonical JSON
    (sorted keys) of its time and record, and of its writer record."""
    content = json.dumps({"at": entry["at"], "record": entry["record"]}, sort_keys=True)
    writer = json.dumps(entry.get("writer"), sort_keys=True)
    return content.encode(), writer.encode()


class VersionConflictError(ConfigError):
    """A write that named the version it expected to replace (``expected_version=``,
    ``cfgcore publish --expect-version N``) found another one stored: nothing was
    written. ``current`` is the version the store holds (0: no document; -1: not a
    usable version), ``expected`` the one named."""

    def __init__(self, message: str, *, current: int, expected: int, file: str) -> None:
        super().__init__(message, file=file)
        self.current, self.expected = current, expected


class StoreUnreachableError(ConfigError):
    """:meth:`RedisFlagStore.read` could not read Redis (unreachable, credentials
    refused, a TLS problem, a reply that is not Redis's) and no cache file could serve:
    nothing was read, so nothing was refused. Any other ConfigError of a read is the
    stored document refused (corrupt, signed by no trusted key, older than what this
    host served): ``cfgcore watch --store`` keeps watching for the next one then."""


class FlagsEnvironmentError(ConfigError):
    """``cfgcore publish --flags`` for another environment than the one the namespace's
    flag document was published for: refused, nothing written (one flag document per
    namespace: it would replace the flags that environment's processes serve).
    ``recorded`` is that environment."""

    def __init__(self, message: str, *, recorded: str, file: str) -> None:
        super().__init__(message, file=file)
        self.recorded = recorded


def _expected_arg(expected: Any, origin: str) -> str:
    """``expected_version`` as the write scripts take it ('' for none); ConfigError
    naming the store for a value that is no version. A whole number by its value
    (``3``, ``numpy.int64(3)``, ``3.0``: cfgcore._numbers), never a bool or text."""
    if expected is None:
        return ""
    version = whole_number(expected)
    if version is None or not 0 <= version < 2**53:
        raise ConfigError(
            f"expected_version: must be a whole number from 0 to 2**53 - 1, got {shown(expected)}",
            file=origin,
        )
    return str(version)


def _conflict(key: str, held: Any, expected: int, origin: str) -> VersionConflictError:
    held = int(held)
    where = (
        "no document" if held == 0 else "an unreadable version" if held < 0 else f"version {held}"
    )
    return VersionConflictError(
        f"not written: expected to replace version {expected} of {key}, but the store holds "
        f"{where} (another publish or write replaced it since): nothing changed; check what "
        f"is stored, then publish again expecting version {max(held, 0)}",
        current=held,
        expected=expected,
        file=origin,
    )


class _DocumentKind(msgspec.Struct):
    """What tells a published configuration (it names its environment) from a flag
    document (which has no such field) in a cache file without a document record."""

    environment: Any = None


_DOCUMENT_KIND = msgspec.msgpack.Decoder(_DocumentKind)


def _foreign_cache(exc: ForeignStateFile) -> str:
    """The refusal of a store's own cache file that another user may have put there."""
    return (
        f"cache file refused: {exc.why}, so another user may have put it there; not "
        f"served, and its version raises no floor ({exc.fix})"
    )


def _cached_document(blob: dict[Any, Any]) -> Any:
    """The document a cache file holds: its record, or for a file of a release before
    the record (which wrote a published configuration and the flags of one URL to the
    same path), what its data is; None when that cannot be told (judged by contents)."""
    document = blob.get("document")
    if document is not None or "document" in blob:
        return document
    data = blob.get("data")
    if not isinstance(data, bytes):
        return None
    try:
        environment = _DOCUMENT_KIND.decode(data).environment
    except (msgspec.ValidationError, msgspec.DecodeError, RecursionError):
        return None
    return f"config:{environment}" if isinstance(environment, str) else "flags"


# _document_from's signature for a document that did not come from Redis (a cache file)
_LOCAL: Any = object()


def write_token(writer: bytes, checksum: str) -> str:
    """The token of a write in its document's record of recent writes (the write
    scripts' ``write_token``: the same text): its writer field, unique to each write,
    and its checksum."""
    return hashlib.sha1(writer + b"\n" + checksum.encode()).hexdigest()  # noqa: S324


def _written(version: Any, epoch: str | None, forced: bool, checksum: str) -> FlagDocument:
    """What ``_saw`` needs of a document this process wrote."""
    return FlagDocument(Snapshot(), b"", int(version), checksum, {}, "", epoch, forced)


def _writer(actor: str | None) -> dict[str, Any]:
    writer = writer_identity(actor)
    # Text as readers keep it (clean_writer), so that no actor makes the record pass the
    # writer field's limit (MAX_WRITER_BYTES), past which every reader refuses it.
    writer["actor"], writer["host"] = writer["actor"][:256], writer["host"][:256]
    # A write whose reply is lost (the connection drops after Redis ran the script) is
    # recognised by this id on the retry, instead of being applied a second time.
    writer["id"] = secrets.token_hex(8)
    return writer


def _refuse_open_ca(parsed: Any) -> None:
    """A CA file (``ssl_ca_certs=``) every local user may rewrite or replace, or another
    user's in a directory every user may create files in, trusts whatever server they
    choose: ConfigError naming the option, as a key or policy file so is refused
    (:func:`cfgcore.runtime.atomicio.rewritable_by_all`)."""
    from cfgcore.runtime.atomicio import rewritable_by_all, trust_fix

    ca = parsed.options.get("ssl_ca_certs")
    if ca is None:
        return
    why = rewritable_by_all(os.fspath(ca))
    if why:
        raise ConfigError(
            f"ssl_ca_certs={printable_name(ca)} refused: {why}, and whoever can put a "
            f"certificate there is trusted as the Redis server ({trust_fix(why)})",
            file=parsed.redacted(),
        )


class RedisFlagStore(RedisFollower):
    """The flag document in Redis, shared by every process that opens the same URL.

    Implements the FlagStore protocol (``read``, ``update``, ``watch``, ``close``;
    ``url`` and ``kind == "redis"``). ``stats`` counts accepted, rejected and written
    documents, conflicts, reconnects, versions seen going backwards and deliveries a
    listener failed on (retried); ``last_error`` is the last rejection, failure or
    connection problem (a write's or publish's failure only until Redis takes a later
    write or gives this process a document: it no longer holds then; Redis unreachable
    only until a read from Redis succeeds, when a problem standing before is said
    again: :meth:`_clear_problem`); ``connected``
    tells whether the follower is subscribed now.

    >>> store = RedisFlagStore("redis://localhost:6379/0?namespace=music")  # doctest: +SKIP
    >>> old, new = store.update(lambda snap: snap, actor="deploy-bot")       # doctest: +SKIP
    """

    #: What a write's error calls the document (a published configuration, below).
    noun = "the flag document"

    kind = "redis"

    #: The item bound of this store's documents, read and written: the URL's
    #: ``max_items=`` or the argument (see ``__init__``), else the default.
    max_items: int = MAX_MSGPACK_ITEMS

    def __init__(
        self,
        url: str,
        *,
        document: str = "flags",
        cache_dir: str | os.PathLike[str] | None = None,
        seed: str | None = None,
        keys: FleetKeys | None = None,
        credential_provider: Any = None,
        max_items: int | None = None,
    ) -> None:
        """``credential_provider``: Redis's credentials, asked again at every new
        connection (a redis-py ``CredentialProvider``, or a callable returning
        ``(password,)`` or ``(username, password)``), for a password rotated while the
        process runs; the URL then gives none (no user-info part, no
        ``password_file=``). The URL's ``password_file=`` does the same from a file.

        ``max_items``: the most items (maps, arrays, keys and values) a document of this
        store may hold, counted before it is decoded (reads) or written (writes: a
        document over it is refused, nothing written), as the URL's ``max_items=``
        gives it (one or the other, or both alike): a whole number from 1,000 to
        10,000,000; :data:`cfgcore.snapshot.MAX_MSGPACK_ITEMS` (1,000,000) by default."""
        self._parsed = parse_redis_url(url)
        _refuse_open_ca(self._parsed)
        if credential_provider is not None:
            p = self._parsed
            if p.username is not None or p.password is not None or ("password_file" in p.options):
                raise ConfigError(
                    "both the URL (user name, password or password_file=) and "
                    "credential_provider= give Redis's credentials: keep one",
                    file=p.redacted(),
                )
        self._credential_provider = credential_provider
        given = self._parsed.options.get("max_items")
        if max_items is not None:
            max_items = msgpack_items_bound(max_items, file=self._parsed.redacted())
            if given is not None and given != max_items:
                raise ConfigError(
                    f"max_items: the URL gives {given:,} and max_items= {max_items:,}: keep one",
                    file=self._parsed.redacted(),
                )
        self.max_items = max_items or given or MAX_MSGPACK_ITEMS
        # Signing and verification keys (cfgcore.runtime.signing): given, else the
        # process environment's; none: documents neither signed nor checked.
        self.keys = keys if keys is not None else FleetKeys.from_environ()
        self.seed = seed
        self._document = document
        self.url = self._parsed.redacted()
        opts = self._parsed.options
        ns = self._parsed.namespace
        self.key = f"{{{ns}}}:{document}"
        self.channel = f"{{{ns}}}:{document}:changes"
        self.floor_key = f"{{{ns}}}:{document}:floor"
        # "VERSION EPOCH": the epoch the fleet served at the floor's version
        self.floor_epoch_key = f"{{{ns}}}:{document}:floor:epoch"
        # The recent writes: a token of each and the version it took (WRITES_KEPT)
        self.writes_key = f"{{{ns}}}:{document}:writes"
        # The fleet's guardrail stop register (see write_stop_register)
        self.stops_key = f"{{{ns}}}:{document}:guardrail-stops"
        # The lowest flag document version this process accepts (``min_version=`` in
        # the URL, 0: any): trusted state a deployment pins where no cache file can
        # serve as the high-water mark (see _behind). A published configuration of the
        # same URL numbers its own versions: not concerned.
        self.min_version = int(opts.get("min_version", 0)) if document == "flags" else 0
        self.poll = float(opts.get("poll", 30.0))
        self.backoff_max = float(opts.get("backoff_max", BACKOFF_MAX))
        self.cache_path = self._cache_path(cache_dir)
        self.stats = {
            "accepted": 0,
            "rejected": 0,
            "writes": 0,
            "conflicts": 0,
            "reconnects": 0,
            "backwards": 0,
            "cache_reads": 0,
            "failed": 0,
            "stops_rejected": 0,
        }
        # The problems standing, by kind, in the order reported (last_error says the
        # last: see _raise_problem), and what the rejection rests on (_reported and
        # _failing when it was reported).
        self._problems: dict[str, str] = {}
        self._problems_lock = threading.Lock()
        self._rejection_basis: tuple[Any, Any] = (None, None)
        self.connected = False
        # The document came from the cache file (Redis unreachable) and Redis has not
        # been reached since; last_contact: time.time() Redis last confirmed what we
        # serve (a read, or a catch-up of the follower). Health and metrics read both.
        self.serving_cache = False
        self.last_contact = 0.0
        # time.monotonic() of the same confirmation (ages in this process: a wall-clock
        # step must not make a follower look stale or fresh), and since when the
        # follower has lost its connection (None while following, and before it first
        # tried): the OpenFeature provider's STALE reads both.
        self.confirmed_at = time.monotonic()
        self.lost_since: float | None = None
        self._lock = threading.Lock()  # guards _seen and the callback list
        self._seen = 0  # the highest version read, written or delivered by this process
        # Of those, the highest read from Redis or written by this process, and its
        # epoch: what the fleet's floor may rise to (never what only a cache file says)
        self._confirmed = 0
        self._confirmed_epoch: str | None = None
        # The cache file's identity as last checked: (the file's stat, the identity)
        self._cache_checked: tuple[Any, tuple[int, str | None]] | None = None
        # The state of the cache file last refused as another user's (logged once)
        self._cache_refused: Any = None
        # The checksum of that version's document: a failover that lost a write lets
        # another writer store another document under the same number (see _catch_up).
        self._served_sum = ""
        # (version, checksum) of a write of this process that the store took but its
        # ``wait=N`` replicas did not acknowledge in time: the caller was told it failed,
        # so no listener of this process serves it, yet every other process takes it.
        # The follower delivers it here too while the store holds it (see _catch_up).
        self._unserved: tuple[int, str] | None = None
        # The epoch of that version's document (None: none yet, or a document of a
        # release before epochs): a document of another epoch is taken only when a
        # forced write began it (see _foreign).
        self._epoch: str | None = None
        # The epoch this process served before that one ("" for a document without one;
        # None: it served no other): a store back at an older version of it lost the
        # write that began the newer one (a failover), and is no re-created store.
        self._before: str | None = None
        self._cached = -1  # version of the cache file this process wrote last
        self._cached_sum = ""  # and the checksum of its document
        # The version whose cache write failed last (a read-only or full disk) and when
        # (time.monotonic()), or None: polls do not download the document again to retry
        # until CACHE_RETRY_SECONDS have passed, and the failure is logged once.
        self._cache_failed: tuple[int, float] | None = None
        # flags of the last decoded document by key: (encoded bytes, decoded Flag)
        self._decoded: tuple[dict[str, tuple[bytes, Any]], tuple[bytes, Any] | None] = ({}, None)
        self._reported: tuple[int, str] | None = None  # a rejected document, reported once
        # While that report stands: the stored document refused (its identity, as the
        # read script compares it) and whether each poll raises the floor; a poll that
        # finds it still there is not sent the document again.
        self._refused: tuple[Any, tuple[bytes, ...], bool, str | None] | None = None
        self._failing: tuple[int, str] | None = None  # a document a listener failed on
        # The document read at start that the flag set refused, serving the cache file's
        # instead (see served_instead): never made the cache file's.
        self._not_served: tuple[int, str] | None = None
        self._poll_checks: list[Callable[[], None]] = []  # (add_poll_check)
        # {test: (this host's entry's time, whether an end, SHA-1 of the stored value
        # judged to hold it)}: stop_register_lost's values not sent again while unchanged
        self._stops_held: dict[str, tuple[float, bool, str]] = {}
        # The stop register (read_stop_register): each value's verdict (True or the
        # refusal), the entries refused at the last read (test -> the value read: a
        # write replaces them), the refusals reported (test, SHA-256 of the value) and
        # those found before any listener followed (told to the first one).
        self._stop_verdicts: dict[tuple[str, bytes], Any] = {}
        self._stops_refused: dict[str, bytes] = {}
        self._stops_reported: set[tuple[str, str]] = set()
        self._stops_untold: list[ConfigError] = []
        # The refusals standing in the register (stop_register_problem): test -> (what
        # was said, how a poll checks that it still stands: _STOPS_STANDING's triple,
        # or None for the register itself not read, under the test "").
        # Replaced whole by each read of the register; _stops_found collects one read's.
        self._stops_standing: dict[str, tuple[str, _Probe | None]] = {}
        self._stops_found: dict[str, tuple[str, _Probe | None]] | None = None
        self._stops_judging = threading.Lock()
        # The environment a publish recorded on the stored flag document at the last read
        # (None: none recorded, no document, another type) and the last one any read or
        # publish of this store found; with the environments its owners serve
        # (add_owner), what the repair commands this store prints name with -e.
        self._env_stored: str | None = None
        self._env_seen: str | None = None
        # Weak references, replaced whole under _lock by add_owner/remove_owner and read
        # without it: a WeakSet iterated while another thread adds to it raises
        # (managers open and close while the follower formats a refusal).
        self._owners: tuple[weakref.ref[Any], ...] = ()
        self._callbacks: list[tuple[Callable[[Any], None], Callable[[Exception], None] | None]] = []
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None
        self._pubsub: Any = None
        self._client = self._make_client(retries=1)
        # The follower's connections never retry on their own: a reconnect must be
        # seen here, because the key has to be re-read after it.
        self._follow_client = self._make_client(retries=0)
        self._cas = self._client.register_script(_CAS)
        self._lost = self._follow_client.register_script(_LOST)
        self._read = self._client.register_script(_READ)  # run on either client
        self._stops = self._client.register_script(_STOPS)
        self._stops_read = self._client.register_script(_STOPS_READ)
        self._stops_check = self._client.register_script(_STOPS_CHECK)
        self._stops_stand = self._client.register_script(_STOPS_STANDING)
        self._fields_script = self._client.register_script(_FIELDS)
        if document == "flags":  # (a published configuration has no stop register)
            self._poll_checks.append(self._recheck_stop_register)
        _STORES.add(self)
        instruments.track_store(self)

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._closed.is_set()

    def _refuse_closed(self, action: str) -> None:
        """ConfigError when the store is closed: a change made after ``close()`` (a
        manager closed while another thread was about to change a flag) is not written.
        redis-py would open a new connection for it and write it, unseen by the
        follower close() stopped and by this process's cache file."""
        if self.closed:
            raise ConfigError(f"not written: the store is closed (the {action} came after close())",
                              file=self.url)  # fmt: skip

    @property
    def failing_version(self) -> int | None:
        """A newer version a listener failed to apply (it is retried at every poll), or
        None: this process serves an older version than the store holds."""
        failing = self._failing
        return failing[0] if failing is not None else None

    @property
    def document_name(self) -> str:
        """The document this store holds: ``flags``, or ``config:ENV`` for a published
        configuration."""
        return self._document

    # -- connections -------------------------------------------------------------

    def _make_client(self, *, retries: int) -> Any:
        try:
            import redis
            from redis.backoff import ExponentialBackoff
            from redis.retry import Retry
        except ImportError as exc:  # an optional extra: say which (open_store does too)
            raise ConfigError(
                f"{self._document} store {self.url!r} needs the Redis store "
                f"(pip install 'cfgcore[redis]'): {exc}"
            ) from exc

        from cfgcore.runtime.redis_credentials import (
            FileCredentials,
            GivenCredentials,
            KeyPasswordFile,
        )

        p, opts = self._parsed, self._parsed.options
        # Credentials asked for at each new connection (redis-py's handshake), never
        # per command: a password file, or the application's provider. Else the URL's.
        credentials: dict[str, Any] = {"username": p.username, "password": p.password}
        if self._credential_provider is not None:
            credentials = {"credential_provider": GivenCredentials(self._credential_provider)}
        elif "password_file" in opts:
            credentials = {
                "credential_provider": FileCredentials(opts["password_file"], p.username)
            }
        kwargs: dict[str, Any] = {
            "db": p.db,
            **credentials,
            "socket_timeout": opts.get("socket_timeout", 5.0),
            "socket_connect_timeout": opts.get("socket_connect_timeout", 2.0),
            "retry": Retry(ExponentialBackoff(cap=0.5, base=0.02), retries),
            "client_name": opts.get("client_name"),
            # RESP2, whatever redis-py defaults to (8.x: RESP3, by HELLO 3, which a
            # Redis before 6 or a server without HELLO answers "unknown command": every
            # store would then look unreachable). The scripts' replies are the same.
            "protocol": 2,
        }
        tls: dict[str, Any] = {}
        if p.scheme == "rediss" or opts.get("ssl", False):
            tls["ssl"] = True
            for key in ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile", "ssl_password"):
                if key in opts:
                    tls[key] = opts[key]
            if "ssl_password_file" in opts:
                # Read by the TLS layer as it loads the key for each new connection
                # (Sentinel-managed ones too: master_for passes these on).
                tls["ssl_password"] = KeyPasswordFile(opts["ssl_password_file"])
            elif "ssl_certfile" in tls and "ssl_password" not in tls:
                # No password given: "" (none), never None, with which OpenSSL asks for
                # an encrypted key's pass phrase on the process's terminal and waits.
                tls["ssl_password"] = ""
            if "ssl_cert_reqs" in opts:
                tls["ssl_cert_reqs"] = opts["ssl_cert_reqs"]
            if "ssl_check_hostname" in opts:
                tls["ssl_check_hostname"] = opts["ssl_check_hostname"]
        kwargs.update(tls)
        if p.scheme == "redis+sentinel":
            sentinel_auth: dict[str, Any] = {
                "password": opts.get("sentinel_password"),
                "username": opts.get("sentinel_username"),
            }
            if "sentinel_password_file" in opts:
                sentinel_auth = {
                    "credential_provider": FileCredentials(
                        opts["sentinel_password_file"],
                        opts.get("sentinel_username"),
                        "Sentinel password file",
                    )
                }
            sentinel_kwargs = {
                **sentinel_auth,
                "socket_timeout": kwargs["socket_timeout"],
                "socket_connect_timeout": kwargs["socket_connect_timeout"],
                "protocol": 2,
                # sentinel_ssl=true: the same TLS files (parse_redis_url requires ssl=true)
                **(tls if opts.get("sentinel_ssl") else {}),
            }
            sentinel = _Sentinel(list(p.hosts), sentinel_kwargs=sentinel_kwargs)
            assert p.service is not None  # parse_redis_url requires it
            return sentinel.master_for(p.service, **kwargs)
        if p.socket_path is not None:
            return redis.Redis(unix_socket_path=p.socket_path, **kwargs)
        host, port = p.hosts[0]
        return redis.Redis(host=host, port=port, **kwargs)

    def _cache_path(self, cache_dir: str | os.PathLike[str] | None) -> str | None:
        given = self._parsed.options.get("cache")
        if given in ("off", "none", "0"):
            return None
        if given:
            path = os.path.abspath(os.path.expanduser(str(given)))
            if self._document != "flags":
                # The URL's cache= names the flag document's file; a published
                # configuration of the same URL (config_source=), one per environment,
                # gets its own beside it: one file held whichever document was written
                # last, and a store of another environment served it (see read_cache).
                root, ext = os.path.splitext(path)
                path = f"{root}.{quote(self._document, safe=':')}{ext or '.msgpack'}"
            return path
        if cache_dir is None:
            cache_dir = os.path.join(default_state_dir(), "fleet")
        # One file per store: the password is not part of the name (redacted URL). The
        # namespace is percent-encoded in the name: one holding '/' or '..' (a Redis key
        # prefix may) put the file in another directory, outside the state directory.
        tag = hashlib.sha256(self.url.encode()).hexdigest()[:12]
        namespace = quote(self._parsed.namespace, safe="")
        # (so is the environment of a published configuration's, ``config:ENV``:
        # RedisConfigStore takes any name without ':')
        document = quote(self._document, safe=":")
        name = f"{namespace}-{document}-{tag}.msgpack"
        return os.path.join(os.fspath(cache_dir), name)

    # -- decoding ------------------------------------------------------------------

    def _decode(self, data: bytes, origin: str) -> Any:
        """The snapshot in ``data``; raises ConfigError naming ``origin``.

        A change usually touches one flag of hundreds: a flag whose encoded bytes are
        the same as in the previous document is not decoded again but reused (the same
        object), which also lets the incremental compiler skip it by identity. For 200
        flags this is ~0.1 ms instead of ~1.7 ms per document and process. Anything
        that does not decode goes through ``decode_snapshot`` for its full error report.
        """
        # A key repeated in a map (msgspec keeps the last one) is refused as a flag file's
        # is: a writer could otherwise make two readers serve different flags.
        spans = _scan_msgpack(data, origin, self.max_items)
        try:
            # (split a run of flags at a time: see _split_msgpack)
            top = _split_msgpack(data, spans)
            prev_flags, prev_segments = self._decoded
            flags: dict[str, Any] = {}
            raw_flags: dict[str, tuple[bytes, Any]] = {}
            fresh: list[str] = []  # the flags decoded anew (the others were checked before)
            for key, raw in top.flags.items():
                blob = bytes(raw)
                hit = prev_flags.get(key)
                if hit is not None and hit[0] == blob:
                    value = hit[1]
                else:
                    value = _MP_FLAG.decode(raw)
                    fresh.append(key)
                flags[key] = value
                raw_flags[key] = (blob, value)
            seg_blob = msgspec.msgpack.encode(top.segments)
            if prev_segments is not None and prev_segments[0] == seg_blob:
                segments = prev_segments[1]
            else:
                segments = {k: _MP_COND.decode(raw) for k, raw in top.segments.items()}
            # Every flag and segment came from the typed decoders (or is the previous
            # document's, which did): the compiler need not check their types again.
            snapshot = mark_decoded(Snapshot(
                version=top.version, flags=flags, segments=segments,
                experiments=top.experiments, metadata=top.metadata,
            ))  # fmt: skip
            # Free-form values (variants, metadata, experiments) held to the depth every
            # document is (decode_snapshot's rule and message): deeper ones made the
            # secret-reference check raise RecursionError in the listener.
            _refuse_deep_values(snapshot, origin, fresh)
        except (msgspec.ValidationError, msgspec.DecodeError):
            # (raises, with every path)
            return decode_snapshot(data, "msgpack", file=origin, max_items=self.max_items)
        self._decoded = (raw_flags, (seg_blob, segments))
        return snapshot

    def _encode(self, snapshot: Any) -> bytes:
        return encode_snapshot(snapshot, "msgpack")

    def _empty(self) -> Any:
        """What an empty store (version 0) serves: the seed file's flags, if given (the
        bundled catalog for the managers, as for a file store), else no flags."""
        if self.seed is None:
            return Snapshot()
        from cfgcore.snapshot import load_snapshot

        return load_snapshot(self.seed, max_items=self.max_items)

    def _document_from(
        self,
        version_raw: Any,
        checksum_raw: Any,
        writer_raw: Any,
        data: Any,
        origin: str,
        epoch_raw: Any = None,
        forced: bool = False,
        signature: Any = _LOCAL,
    ) -> FlagDocument:
        """Check and decode one stored document; ConfigError says what is wrong.

        ``signature``: the stored signature field (None: none) of a document read from
        Redis or restored from this store's cache file, checked when this process holds
        verification keys before anything is decoded; left out for a document that is
        not checked (a cache file an operator restores from: ``read_cache(path)``).
        Either way the document keeps it, with ``writer_raw`` (the signed writer field),
        for the cache file (:meth:`_write_cache`)."""
        if version_raw is None and data is None:
            return FlagDocument(self._empty(), b"", 0, hashlib.sha256(b"").hexdigest(), {}, origin)
        # (read from Redis: the key and field are named)
        where = f"the 'version' field of {self.key}" if origin == self.url else ""
        version = stored_version(version_raw, origin, where)
        epoch = stored_epoch(epoch_raw, version, origin)
        try:
            checksum = checksum_raw.decode() if isinstance(checksum_raw, bytes) else checksum_raw
        except UnicodeDecodeError:
            checksum = None  # refused below as missing
        if not isinstance(data, bytes) or not isinstance(checksum, str):
            raise ConfigError(
                "stored document is incomplete (data or checksum missing)", file=origin
            )
        actual = hashlib.sha256(data).hexdigest()
        if actual != checksum:
            raise ConfigError(
                f"checksum mismatch in version {version}: stored {checksum[:16]}..., "
                f"data hashes to {actual[:16]}...",
                file=origin,
            )
        signed_writer = writer_raw if isinstance(writer_raw, bytes) else b""
        if signature is not _LOCAL and self.keys.verifies:
            self.keys.verify(self.key, version, data, signed_writer, signature, origin)
        writer: Mapping[str, Any] = {}
        if signed_writer:
            with contextlib.suppress(msgspec.DecodeError, RecursionError):
                writer = clean_writer(msgspec.msgpack.decode(signed_writer))
        try:
            snapshot = self._decode(data, origin)
        except RecursionError:  # msgspec's nesting limit: a hostile or broken document
            raise ConfigError(
                f"version {version} is nested too deeply to decode", file=origin
            ) from None
        kept = signature if isinstance(signature, bytes) and signature else None
        return FlagDocument(
            snapshot, data, version, checksum, writer, origin, epoch, bool(forced and epoch),
            kept, signed_writer,
        )  # fmt: skip

    def _wrong_type(self, raw: list[Any]) -> str | None:
        """The type of the key when it is not a hash (another program replaced it),
        as the read script reports it; None for a hash or no key."""
        kind = raw[5] if len(raw) > 5 else None
        if not kind:
            return None
        return kind.decode(errors="replace") if isinstance(kind, bytes) else str(kind)

    @staticmethod
    def _no_credentials(exc: BaseException) -> bool:
        return _credentials_unavailable(exc)

    def _tls_problem(self, exc: BaseException) -> str | None:
        """What is wrong with this store's TLS files when the connection failure ``exc``
        came from loading them (a wrong key password, a file missing or holding no
        PEM), naming them; None otherwise. Still an outage: the file may be fixed
        while the process runs, and the next connection loads it again."""
        p = self._parsed
        if p.scheme != "rediss" and not p.options.get("ssl"):
            return None
        from cfgcore.runtime.redis_credentials import tls_files_problem

        return tls_files_problem(p.options, exc)

    def _wrong_type_message(self, kind: str) -> str:
        return (
            f"the key {self.key} holds a Redis {kind}, not a cfgcore document (a hash): "
            f"replaced by another program? The last good document keeps serving; repair "
            f"with {self._repair_command()}"
        )

    def _store_arg(self) -> tuple[str, str]:
        """``--store`` as a command a message names needs it: this store's URL with the
        options that reach it (TLS files, Sentinel user, timeouts), quoted for a shell,
        and a note when a secret in it is shown as ``***``."""
        url = self._parsed.for_command()
        note = " (*** stands for the password this process was given)" if "***" in url else ""
        return shlex.quote(url), note

    def add_owner(self, owner: Any) -> None:
        """``owner`` (held weakly) serves this store's flags with a configuration:
        ``owner.serving_environment()`` names its environment (None while it has none).
        The repair commands this store prints publish for it (``cfgcore publish -e
        ENV``) when the stored flag document records no environment."""
        with self._lock:
            self._owners = (*self._other_owners(owner), weakref.ref(owner))

    def remove_owner(self, owner: Any) -> None:
        """``owner`` no longer serves this store (see :meth:`add_owner`)."""
        with self._lock:
            self._owners = self._other_owners(owner)

    def _other_owners(self, owner: Any) -> tuple[weakref.ref[Any], ...]:
        """The owners but ``owner``, those gone dropped (under _lock)."""
        return tuple(r for r in self._owners if (o := r()) is not None and o is not owner)

    def _note_environment(self, raw: list[Any]) -> None:
        """Remember the environment recorded on the stored document in a reply of the
        read script (its last element)."""
        env = None if raw[5] else _environment_text(raw[11])
        self._env_stored = env
        if env is not None:
            self._env_seen = env

    def _owner_environment(self) -> str | None:
        """The environment every owner serving this store serves now (None: no owner,
        none known yet, or owners of several environments)."""
        envs: set[str] = set()
        for ref in self._owners:  # (a tuple: never changes while read)
            owner = ref()
            if owner is None:
                continue
            with contextlib.suppress(Exception):  # (a message must never fail)
                env = _environment_text(owner.serving_environment())
                if env is not None:
                    envs.add(env)
        return envs.pop() if len(envs) == 1 else None

    def _known_environment(self) -> str | None:
        """The environment this process knows the namespace's flags for, without its
        cache file: the one the stored flag document records, else the one this process
        last found recorded (the stored document may be a re-created one, recording
        none), else the one its owners serve; None when it knows none."""
        return self._env_stored or self._env_seen or self._owner_environment()

    def _environment_arg(self) -> tuple[str, str]:
        """``-e ENV`` as a publish that repairs this store needs it, and a note when
        ENV stands for an environment this process cannot tell. Without -e a publish is
        for the default environment, and the publish script refuses flags for another
        environment than the one the stored flag document records (FlagsEnvironmentError):
        :meth:`_known_environment`, else the one the cache file records (a process
        restarted after Redis lost its data, with no manager, knows no other)."""
        if self._document != "flags":
            return f"-e {shlex.quote(self._document.partition(':')[2])}", ""
        env = self._known_environment() or self._cache_environment()
        if env is not None:
            return f"-e {shlex.quote(env)}", ""
        return "-e ENV", (
            "ENV: the environment the namespace's processes serve, whose configuration "
            "is published with the flags; the stored flag document records none"
        )

    def _repair_command(self) -> str:
        store, note = self._store_arg()
        env, env_note = self._environment_arg()
        if self._document == "flags":
            # the cache file a process wrote holds the last document it served, experiment
            # records included (docs/fleet.md)
            env_note = f"; {env_note}" if env_note else ""
            return (
                f"cfgcore publish --store {store} {env} --flags FILE (or --flags-from-cache "
                f"CACHE_FILE: the document a process served, from its cache file{env_note})"
                f"{note}"
            )
        return f"cfgcore publish --store {store} {env}{note}"

    def _from_raw(self, raw: list[Any]) -> FlagDocument:
        kind = self._wrong_type(raw)
        if kind is not None:
            raise ConfigError(self._wrong_type_message(kind), file=self.url)
        over = raw[12] if len(raw) > 12 else None
        if over:
            raise ConfigError(self._oversized_field_message(raw[0], over), file=self.url)
        size = int(raw[4]) if len(raw) > 4 and raw[4] is not None else 0
        if size > MAX_DOCUMENT_BYTES:
            version = stored_version(raw[0], self.url) if raw[0] is not None else 0
            raise ConfigError(
                f"stored document version {version} is {size:,} bytes, over the "
                f"{MAX_DOCUMENT_BYTES:,}-byte limit: not read",
                file=self.url,
            )
        signature = raw[10] if len(raw) > 10 else None
        return self._document_from(
            raw[0], raw[1], raw[2], raw[3], self.url, raw[7], raw[8] == 1, signature
        )

    def _unusable_version(self, raw: Any) -> str:
        """What is wrong with ``raw``, the text of this store's ``version`` field that
        is no version (:func:`stored_version`'s rule, the write scripts' too), naming the
        key, the field and the text."""
        if isinstance(raw, bytes):
            raw = raw.decode("ascii", "backslashreplace")
        if raw == "oversized":  # (the scripts' word for one over FIELD_LIMITS)
            text = f"over its {FIELD_LIMITS['version']}-byte limit"
        elif raw in (None, ""):
            text = "empty or missing (beside the document's data)"
        else:
            text = f"{str(raw)[:40]!r}"
        return (
            f"the 'version' field of {self.key} is {text}, not a version (ASCII digits "
            f"only, 0 to 2**53 - 1)"
        )

    def _oversized_field_message(self, version_raw: Any, over: Any) -> str:
        """Why a stored document with a field over its limit (``over``, the read
        script's "NAME SIZE") is refused, naming the key and the field."""
        text = over.decode("ascii", "replace") if isinstance(over, bytes) else str(over)
        name, _, size = text.partition(" ")
        limit = FIELD_LIMITS.get(name)
        what = "the stored document"
        with contextlib.suppress(ConfigError):
            what = f"stored document version {stored_version(version_raw, self.url)}"
        if limit is None or not size.isdigit():  # (not this release's script: a proxy?)
            shown = text if len(text) <= 80 else text[:77] + "..."
            return f"{what}: a field is over its limit ({shown!r}): not read"
        return (
            f"{what}: the {name!r} field of {self.key} is {int(size):,} bytes, over the "
            f"{limit:,}-byte limit for it: not read (cfgcore never writes that much there: "
            f"stored by another program or by hand). Repair with {self._repair_command()}"
        )

    def _read_raw(
        self,
        client: Any,
        unless: int | None = None,
        epoch: str | None = None,
        refused: tuple[bytes, ...] | None = None,
        served: str = "",
    ) -> list[Any]:
        """The stored fields (version, checksum, writer, data, size of data, the key's
        type when not a hash, 'unchanged' or 'refused', epoch, forced, the floor's record,
        signature, recorded environment, the field over its limit: see ``_READ``); the
        data is left out (None) when it is over :data:`MAX_DOCUMENT_BYTES`, the writer
        and data when a field is over its limit (:data:`FIELD_LIMITS`, none of them read
        by the script then), everything but the version
        when the stored version and epoch are ``unless`` and ``epoch``, and the writer
        and data when the stored document is ``refused`` (its version, epoch, checksum
        and forced mark as this method returned them, the floor's record, the size of the data
        and its SHA-1 when it did not match its checksum: see ``_READ``). ``served``:
        the checksum of the document served under ``unless`` ('' for any: the store
        holding another document under that version is then not 'unchanged')."""
        skip = "" if unless is None else f"{unless}:{served}" if served else str(unless)
        args: list[Any] = [MAX_DOCUMENT_BYTES, skip, epoch or ""]
        if refused is not None:
            args += [b"1", *refused]
        keys = [self.key, self.floor_key, self.floor_epoch_key]
        reply = self._read(keys=keys, args=args, client=client)
        if (
            isinstance(reply, list)
            and len(reply) == 13
            and type(reply[4]) is int
            and all(x is None or isinstance(x, (bytes, int)) for x in reply)
        ):
            self._note_environment(reply)
            return reply
        raise _unexpected("the read script", reply)

    def _fetch(self, client: Any) -> tuple[FlagDocument, str | None]:
        """The stored document and the epoch the fleet served at the floor (None for
        none recorded, or not an epoch id)."""
        raw = self._read_raw(client)
        return self._from_raw(raw), self._fleet_epoch(raw)

    @staticmethod
    def _fleet_epoch(raw: list[Any]) -> str | None:
        """The epoch the floor key's record names in a reply of the read script."""
        fleet = raw[9] if len(raw) > 9 else None
        if not isinstance(fleet, bytes):
            return None
        with contextlib.suppress(ConfigError):
            return stored_epoch(fleet, 0, "")
        return None

    # -- the local cache file -----------------------------------------------------

    def _write_cache(self, doc: FlagDocument) -> None:
        if self.cache_path is None or doc.version == 0:
            return
        if doc.version < self._cached or (
            doc.version == self._cached and doc.checksum == self._cached_sum
        ):
            return
        fields: dict[str, Any] = {
            "url": self.url,
            "document": self._document,
            "version": doc.version,
            "checksum": doc.checksum,
            "writer": dict(doc.writer),
            "data": doc.data,
            "epoch": doc.epoch,
            "forced": doc.forced,
        }
        if doc.writer_field is not None:
            # What a restore checks against the keys the process trusts then (see
            # read_cache): the stored signature (None: unsigned) over this version, the
            # data and the writer field exactly as stored. A file without "signature"
            # is an earlier release's, which a process with verification keys refuses.
            fields["signature"] = doc.signature
            fields["writer_field"] = doc.writer_field
        if self._document == "flags":
            # The environment a repair command names (see _environment_arg): a process
            # restarted after Redis lost its data, with no manager, still knows it.
            # Earlier releases neither write nor read the field.
            fields["environment"] = self._known_environment()
        blob = msgspec.msgpack.encode(fields)
        try:
            os.makedirs(os.path.dirname(self.cache_path), exist_ok=True)
            # The processes of a host share the file: one that took a newer version
            # wrote it already, and a lagging one must not put an older one back (a
            # start while Redis is unreachable would serve it). The check and the
            # replace are one step under the file's lock: two processes checking at
            # once both found the file older, and the slower rename put an older
            # version back over the newer one.
            with self._cache_lock():
                if not self._cache_ahead(doc):
                    write_state_file(self.cache_path, blob)
                # (under the file's lock, and never back: the follower thread and a
                # write of this process may both be caching, in either order)
                if doc.version >= self._cached:
                    self._cached, self._cached_sum = doc.version, doc.checksum
        except OSError as exc:  # a full disk must not stop the fleet from following
            # Logged once (a read-only state directory fails every time): not at
            # every poll, which would also download the document again to retry.
            level = logging.DEBUG if self._cache_failed is not None else logging.WARNING
            log.log(
                level, "%s: cannot write the cache file %s: %s (retried with the next "
                "version, or in %.0f s)", self.url, self.cache_path, exc, CACHE_RETRY_SECONDS,
            )  # fmt: skip
            self._cache_failed = (doc.version, time.monotonic())
            return
        if self._cache_failed is not None:
            self._cache_failed = None
            log.warning("%s: the cache file %s is written again", self.url, self.cache_path)

    @contextlib.contextmanager
    def _cache_lock(self) -> Any:
        """Hold the cache file's lock (``.NAME.lock`` beside it), waiting at most
        :data:`CACHE_LOCK_SECONDS` (LockTimeout, an OSError: the write is skipped and
        retried as a failed one). A lock file this process may not open (another user's,
        in a shared directory) is no lock: the write goes ahead as before there was one."""
        assert self.cache_path is not None
        directory, base = os.path.split(self.cache_path)
        lock = FileLock(os.path.join(directory, f".{base}.lock"), timeout=CACHE_LOCK_SECONDS)
        held = True
        try:
            lock.acquire()
        except PermissionError:
            held = False
        try:
            yield
        finally:
            if held:
                lock.release()

    def _cache_ahead(self, doc: FlagDocument) -> bool:
        """Whether the cache file holds ``doc`` already (with its signature), or a newer
        version of this store's document (written by another process of this host)."""
        assert self.cache_path is not None
        try:
            # (another user's file is not this host's: replaced, whatever it holds)
            blob = msgspec.msgpack.decode(read_state_file(self.cache_path, MAX_CACHE_BYTES))
        except (OSError, msgspec.DecodeError, RecursionError):
            return False
        if not isinstance(blob, dict) or self._other_store(blob):
            return False
        version = blob.get("version")
        if type(version) is not int:
            return False
        # (the same document in a file of an earlier release, which kept no signature,
        # is written again with it: a restore checks it against the keys trusted then)
        return version > doc.version or (
            version == doc.version
            and blob.get("checksum") == doc.checksum
            and ("signature" in blob or doc.writer_field is None)
        )

    def read_cache(self, path: str | os.PathLike[str] | None = None) -> FlagDocument:
        """The document in the local cache file, or in the cache file at ``path`` (another
        process's, for ``cfgcore publish --flags-from-cache``); ConfigError if it is
        missing or damaged (its checksum is checked as for a document read from Redis)."""
        given = path is not None
        if path is not None:
            path = os.path.abspath(os.fspath(path))
            origin = f"{path} (a cache file)"
        else:
            path = self.cache_path
            if path is None:
                raise ConfigError("no cache file configured (cache=off)", file=self.url)
            origin = f"{path} (cache of {self.url})"
        try:
            # A regular file of bounded size: a FIFO there would block the read (and
            # the start) forever, a device or a runaway file would fill the memory. This
            # store's own file is one this host's processes wrote: another user's is
            # refused (a path given is another process's, read whoever owns it).
            read = read_regular if given else read_state_file
            blob = msgspec.msgpack.decode(read(path, MAX_CACHE_BYTES))
        except FileNotFoundError:
            earlier = None if given else self._earlier_release_cache()
            if earlier is not None:
                return earlier
            what = "no such cache file" if given else "no cache file yet"
            raise ConfigError(what, file=origin) from None
        except ForeignStateFile as exc:
            raise ConfigError(_foreign_cache(exc), file=origin) from None
        except (OSError, msgspec.DecodeError) as exc:
            raise ConfigError(f"unreadable cache file: {exc}", file=origin) from None
        except RecursionError:  # msgspec's nesting limit: damaged, or planted
            raise ConfigError("unreadable cache file: nested too deeply", file=origin) from None
        if not isinstance(blob, dict):
            raise ConfigError("unreadable cache file: not a map", file=origin)
        other = self._other_store(blob, given)
        if other:
            raise ConfigError(f"not this store's cache file: {other}", file=origin)
        url = blob.get("url")
        if given and isinstance(url, str) and url.isprintable():
            origin = f"{path} (cache of {url[:300]})"  # the store it was a cache of
        writer, signature = self._cached_signature(blob, origin, checked=not given)
        return self._document_from(
            blob.get("version"), blob.get("checksum"), writer, blob.get("data"), origin,
            blob.get("epoch"), blob.get("forced") is True, signature,
        )  # fmt: skip

    def _cached_signature(
        self, blob: dict[Any, Any], origin: str, *, checked: bool = True
    ) -> tuple[bytes, Any]:
        """The writer field and signature to check the cache file ``blob``'s document
        with (:meth:`_document_from`'s ``writer_raw`` and ``signature``), as a document
        read from Redis is checked, against the keys this process trusts now: a
        document signed by a key retired since, unsigned, or whose signature does not
        match is refused, as a damaged cache file is (ConfigError naming it). A file
        of a release before the cache file kept the signature (no ``signature`` field)
        cannot be checked: refused too while this process holds verification keys.
        Not ``checked`` (a cache file an operator restores from, which ``cfgcore
        publish`` signs again), or without keys: nothing is refused."""
        raw = blob.get("writer_field")
        kept = "signature" in blob or "writer_field" in blob  # (this release's file)
        if kept and isinstance(raw, bytes):
            writer, signature = raw, blob.get("signature")
        else:
            writer, signature = msgspec.msgpack.encode(blob.get("writer") or {}), None
            version = blob.get("version")
            what = f"version {version}" if type(version) is int else "the document"
            if checked and self.keys.verifies and kept:
                raise ConfigError(
                    f"damaged cache file: {what}'s signed writer field is missing or not "
                    f"bytes, so its signature cannot be checked: not served",
                    file=origin,
                )
            if checked and self.keys.verifies:
                raise ConfigError(
                    f"{what} in the cache file cannot be checked against the keys this "
                    f"process trusts ({self.keys.verify_origin}): the file was written "
                    f"by a release of cfgcore that kept no signature in it, so it is not "
                    f"served (a process following Redis writes the cache file again, "
                    f"with the signature)",
                    file=origin,
                )
        return writer, (signature if checked else _LOCAL)

    def _earlier_release_cache(self) -> FlagDocument | None:
        """A published configuration's document in the ``cache=`` path itself, as a
        release before per-document cache files left it there (it wrote every document
        of the URL to that one path), when it is this store's: this environment's, of
        this namespace. Until the follower writes the store's own file, a start while
        Redis is unreachable serves it, as that release did. None otherwise."""
        given = self._parsed.options.get("cache")
        if self._document == "flags" or not given:
            return None
        path = os.path.abspath(os.path.expanduser(str(given)))
        try:
            blob = msgspec.msgpack.decode(read_state_file(path, MAX_CACHE_BYTES))
        except (OSError, msgspec.DecodeError, RecursionError):
            return None
        if (
            not isinstance(blob, dict)
            or "document" in blob  # this release's: its own document is in its own file
            or _cached_document(blob) != self._document
            or self._other_store(blob)
        ):
            return None
        origin = f"{path} (cache of {self.url}, written by an earlier release)"
        # (an earlier release's file keeps no signature: refused, saying so, while this
        # process holds verification keys)
        writer, signature = self._cached_signature(blob, origin)
        try:
            return self._document_from(
                blob.get("version"), blob.get("checksum"), writer, blob.get("data"),
                origin, blob.get("epoch"), blob.get("forced") is True, signature,
            )  # fmt: skip
        except ConfigError:
            return None

    def _other_store(self, blob: dict[Any, Any], given: bool = False) -> str:
        """Why the cache file ``blob`` is another store's or another document's ('' when
        it is not): a document of another kind (a published configuration, another
        environment's), or, for this store's own file (not ``given``), the store of
        another namespace (one ``cache=`` path in two URLs). Served in its place while
        Redis is unreachable, it was another environment's configuration or another
        service's flags; its version was taken as one this store had seen."""
        document = _cached_document(blob)
        if document is not None and document != self._document:
            shown = str(document)[:80]
            return f"it holds the {shown!r} document, not {self._document!r}"
        if given:
            return ""
        url = blob.get("url")
        if isinstance(url, str):
            try:
                namespace = parse_redis_url(url).namespace
            except ConfigError:
                return ""  # (not a URL cfgcore wrote: judged by its contents)
            if namespace != self._parsed.namespace:
                return (
                    f"it was written for namespace {namespace[:80]!r}, not "
                    f"{self._parsed.namespace!r} (give each store a cache= path of its own)"
                )
        return ""

    # -- a store that lost its document -------------------------------------------

    def _cache_version(self) -> int:
        """The version in the cache file; 0 if there is none (or it is unreadable)."""
        return self._cache_identity()[0]

    def _own_cache(self) -> dict[Any, Any] | None:
        """The cache file's fields, when it is this store's; None when there is none,
        or it is unreadable or another store's."""
        if self.cache_path is None:
            return None
        try:
            blob = msgspec.msgpack.decode(read_state_file(self.cache_path, MAX_CACHE_BYTES))
        except ForeignStateFile as exc:
            # (as an unreadable file: not served, its version raises no floor)
            self._refused_cache(exc)
            return None
        except (OSError, msgspec.DecodeError, RecursionError):
            return None
        if not isinstance(blob, dict) or self._other_store(blob):
            return None
        return blob

    def _refused_cache(self, exc: ForeignStateFile) -> None:
        """Log, once per state of the file, that the cache file is another user's."""
        try:
            st = os.lstat(self.cache_path or "")
            state: Any = (st.st_ino, st.st_uid, st.st_mtime_ns, st.st_ctime_ns)
        except OSError:
            state = None
        if state != self._cache_refused:
            self._cache_refused = state
            log.warning("%s: %s: %s", self.url, self.cache_path, _foreign_cache(exc))

    def _cache_environment(self) -> str | None:
        """The environment the cache file records (see :meth:`_write_cache`); None for
        none (a cache file of an earlier release, or a published configuration's), and
        for a value that is no text ``-e`` takes (a damaged or planted file)."""
        blob = self._own_cache()
        env = blob.get("environment") if blob is not None else None
        return _environment_text(env) if isinstance(env, str) else None

    def _cache_identity(self) -> tuple[int, str | None]:
        """The version and epoch in the cache file; (0, None) if there is none, or it is
        unreadable, or its document fails the checks a restore makes (:meth:`read_cache`:
        its data match its checksum, its version and epoch are ones cfgcore writes, and
        with verification keys its signature is valid): a damaged or planted file that
        no restore would serve does not count as what this host served either. The
        epoch is None for a cache file of a release before epochs. (Checked once per
        state of the file: its size, times and inode.)"""
        if self.cache_path is None:
            return 0, None
        try:
            st = os.stat(self.cache_path)
            state: Any = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        except OSError:
            state = None
        checked = self._cache_checked
        if state is not None and checked is not None and checked[0] == state:
            return checked[1]
        identity = self._checked_cache_identity()
        if state is not None:
            self._cache_checked = (state, identity)
        return identity

    def _checked_cache_identity(self) -> tuple[int, str | None]:
        """:meth:`_cache_identity`, read and checked now."""
        blob = self._own_cache()
        version = blob.get("version") if blob is not None else None
        if blob is None or type(version) is not int or not 0 < version <= MAX_VERSION:
            return 0, None
        data, checksum = blob.get("data"), blob.get("checksum")
        if not isinstance(data, bytes) or checksum != hashlib.sha256(data).hexdigest():
            return 0, None
        try:
            epoch = stored_epoch(blob.get("epoch"), version, self.url)
            if self.keys.verifies:
                writer, signature = self._cached_signature(blob, self.url)
                self.keys.verify(self.key, version, data, writer, signature, self.url)
        except ConfigError:
            return 0, None
        return version, epoch

    def served_instead(self, refused: FlagDocument) -> None:
        """The flag set refused ``refused``, the document :meth:`read` gave at start,
        and serves the cache file's document instead (it would move a served A/B test's
        users): the follower does not make ``refused`` the cache file's, so the next
        start is judged against the document actually served, not the refused one."""
        self._not_served = (refused.version, refused.checksum)

    def _saw(self, doc: FlagDocument) -> None:
        """``doc`` is read, written or delivered: the newest seen (call under the lock)."""
        if doc.version >= self._seen:
            if self._seen > 0 and doc.epoch != self._epoch:
                self._before = self._epoch or ""  # (a publish, most often)
            self._seen, self._epoch, self._served_sum = doc.version, doc.epoch, doc.checksum
        if doc.origin in (self.url, "") and doc.version >= self._confirmed:
            # read from Redis (or written by this process): not a cache file's
            self._confirmed, self._confirmed_epoch = doc.version, doc.epoch

    def _known_epoch(self) -> str | None:
        """The epoch of the document this process serves or, before it serves one, of
        its cache file's; None when neither has one."""
        return self._known()[0]

    def _known(self) -> tuple[str | None, int]:
        """The epoch and version of the document this process serves or, before it
        serves one, of its cache file's; (None, version) when it has no epoch."""
        with self._lock:
            if self._seen > 0:
                return self._epoch, self._seen
        version, epoch = self._cache_identity()
        return (epoch if version > 0 else None), version

    @staticmethod
    def _foreign(
        version: int, epoch: str | None, forced: bool, known: str | None, served: int = 0
    ) -> bool:
        """A stored document of another epoch than the one this process knows (or the
        fleet served, as the floor key records: the read script then leaves out a
        record that does not judge the document), which no forced write numbered above
        the version ``served`` began: the store was re-created since, or went back to an
        older document after the fleet took a publish (a failover lost it). A publish is
        numbered above every version served, so only an older document is refused."""
        return (
            known is not None
            and version > 0
            and epoch != known
            and not (forced and version > served)
        )

    def _recreated_message(
        self,
        version: int,
        epoch: str | None,
        known: str,
        served: int,
        by_fleet: bool = False,
        forced: bool = False,
    ) -> str:
        what = "flag" if self._document == "flags" else "published configuration"
        theirs = f"epoch {epoch[:12]}" if epoch else "no epoch: written by an older release"
        fix = self._restore_command(served)
        lost_publish = not by_fleet and version < served and (epoch or "") == self._before
        if forced and not lost_publish:
            # A publish numbered at or below what was served: not a re-created store.
            basis = (
                f"the version the fleet served (epoch {known[:12]}, recorded beside the "
                f"floor key {self.floor_key})"
                if by_fleet
                else f"the version {served} this process serves (epoch {known[:12]})"
            )
            return (
                f"the store holds version {version} of another {what} document ({theirs}, "
                f"begun by a forced write: cfgcore publish), numbered at or below {basis}: "
                f"a failover lost newer writes (a publish without wait=1 in the store URL, "
                f"acknowledged by no replica), or it was published after Redis lost its "
                f"data, before the fleet reported the versions it served. Processes that "
                f"served epoch {known[:12]} keep serving it, and nothing is built on the "
                f"store's document. Publish the intended document again (it is then "
                f"numbered above every version served): {fix}"
            )
        if by_fleet:
            # Judged by the floor key's record, not by what this process served: a new
            # process (or the one that wrote the re-created document) is told too.
            serves = f"this process serves version {served}" if served else "none served yet"
            return (
                f"the store was re-created after Redis lost its data: it holds version "
                f"{version} of another {what} document ({theirs}, which no forced write "
                f"began), while the fleet served epoch {known[:12]} (recorded beside the "
                f"floor key {self.floor_key} by a process that served it; {serves}). A "
                f"process that had not seen the old document started over from the seed "
                f"before the fleet noticed. Writing to it would build on that document and "
                f"drop the fleet's flags; restore the intended document first: {fix}"
            )
        if lost_publish:
            # The document this process served before its epoch began: the store lost
            # the write that began it, and nothing since. Not re-created, and no
            # process built on it yet; what ends the refusal is the same publish.
            return (
                f"the store went back to version {version} of the {what} document this "
                f"process served before ({theirs}): the write that began epoch {known[:12]} "
                f"(version {served} or earlier, written by cfgcore publish or a forced "
                f"write) is lost, most likely in a failover to a replica that had not "
                f"received it (publish with wait=1 in the store URL to have a replica "
                f"acknowledge it first). Processes that took epoch {known[:12]} refuse the "
                f"store's document and keep theirs, and so does a process started without "
                f"a cache file once the epoch they served is recorded beside the floor key "
                f"{self.floor_key}. Publish it again: {fix}"
            )
        lost = ""
        if version < served:
            lost = (
                f", or a failover lost the write that began epoch {known[:12]} (a publish "
                f"without wait=1 in the store URL, acknowledged by no replica)"
            )
        return (
            f"the store was re-created since this process last saw it: it holds version "
            f"{version} of another {what} document ({theirs}), not the one this process "
            f"served (epoch {known[:12]}, version {served}). Redis lost its data (restarted "
            f"without persistence, flushed, or failed over to an empty replica) and a "
            f"process that had not seen the old document started over from the seed{lost}. "
            f"Writing to it would build on that document and drop the fleet's flags; "
            f"restore the intended document first: {fix}"
        )

    def _restore_command(self, served: int) -> str:
        """The command that publishes ``served`` again: from this process's cache file
        when it holds that version (exactly the document this process serves), else the
        general repair."""
        path = self.cache_path
        if self._document == "flags" and path is not None and served > 0:
            if self._cache_version() == served:
                store, note = self._store_arg()
                env, env_note = self._environment_arg()
                env_note = f"; {env_note}" if env_note else ""
                return (
                    f"cfgcore publish --store {store} {env} --flags-from-cache "
                    f"{shlex.quote(path)} (version {served}, the document this process "
                    f"serves, from its cache file; or --flags FILE{env_note}){note}"
                )
        return self._repair_command()

    def _instead_of_recreated(
        self, doc: FlagDocument, known: str, by_fleet: bool = False
    ) -> FlagDocument:
        """``read()`` found a document of another epoch that no forced write began:
        like a lost document, ConfigError if this process serves a version already, else
        the cache file's (this process knew the old epoch from it, or the floor key's
        record did: then only its cache file of that epoch is served)."""
        with self._lock:
            serving = self._seen
        lost = max(serving, self._cache_version())
        # (what this process served is recorded beside the floor only when it is of the
        # epoch it judged by: the fleet's record is not replaced by the other epoch)
        self._mark_lost(self._client, lost, None if by_fleet else known)
        msg = self._recreated_message(
            doc.version, doc.epoch, known, lost, by_fleet, forced=doc.forced
        )
        if by_fleet and serving == 0 and self._cache_identity()[1] not in (None, known):
            self._raise_problem("rejection", msg)  # its cache file is of another epoch
            raise ConfigError(f"{msg}; not serving the cache file of another epoch", file=self.url)
        return self._keep_or_cache(msg)

    def _keep_or_cache(self, msg: str) -> FlagDocument:
        """What ``read()`` serves instead of a store refused for ``msg`` (lost or
        re-created): ConfigError if this process serves a version already (it keeps it,
        and a reload reports why), else the cache file's document (ConfigError
        without one)."""
        self._raise_problem("rejection", msg)
        with self._lock:
            serving = self._seen
        if serving > 0:
            raise ConfigError(f"{msg}; keeping version {serving}", file=self.url)
        try:
            cached = self.read_cache()
        except ConfigError as exc:
            why = f"{msg}; no cache file to serve meanwhile: {exc}"
            self._raise_problem("rejection", why)
            raise ConfigError(why, file=self.url) from None
        log.error("%s: %s; serving version %d from the cache file", self.url, msg, cached.version)
        return cached

    def _unless_behind(self, doc: FlagDocument) -> FlagDocument:
        """``read()`` before this process serves anything: a stored document older than
        the one this host served (its cache file: the high-water mark a restart keeps),
        or below ``min_version``, is not served. Writes lost in a failover, or an older
        document put back by whoever can write Redis (a signed one passes the
        signature check under its own version): the cache file's document serves
        instead, as a running process keeps what it serves, and the floor rises to it so
        the next write is numbered above it. ConfigError when the cache file cannot
        serve (none, or itself below ``min_version``). Later reads are judged by the
        follower, which never goes back."""
        with self._lock:
            if self._seen > 0:
                return doc
        cached, epoch = self._cache_identity()
        if doc.version >= max(cached, self.min_version):
            return doc
        if doc.version < cached:
            self._mark_lost(self._client, cached, epoch)
        msg = self._behind_message(doc.version, cached)
        if cached < self.min_version:
            self._raise_problem("rejection", msg)
            raise ConfigError(self._below_pin_message(doc.version, cached), file=self.url)
        return self._keep_or_cache(msg)

    def _behind_message(self, version: int, cached: int) -> str:
        """Why stored ``version`` is not served: older than the cache file's ``cached``
        (the high-water mark this host keeps), or below ``min_version``."""
        what = "flag" if self._document == "flags" else "published configuration"
        if version < cached:
            why = (
                f"the store holds version {version} of the {what} document, older than "
                f"version {cached} this host served (its cache file {self.cache_path})"
            )
        else:
            why = (
                f"the store holds version {version} of the {what} document, below "
                f"min_version={self.min_version} of the store URL (the lowest version this "
                f"deployment accepts)"
            )
        return (
            f"{why}: writes lost in a failover, or an older document put back by someone "
            f"who can write Redis (a signed one too, under its own version); not served. "
            f"If the store's document is the intended one, publish it again (it is then "
            f"numbered above): {self._repair_command()}"
        )

    def _below_pin_message(self, version: int, cached: int | None = None) -> str:
        """The refusal of stored ``version``, below ``min_version``, by a process that
        serves nothing: its cache file (version ``cached``; read when None) cannot serve
        either. :meth:`read` raises it at start; the follower of a store that serves
        nothing yet (``cfgcore watch --store``) reports it for each such version."""
        if cached is None:
            cached = self._cache_identity()[0]
        shown = f"version {cached}" if cached else "none"
        return (
            f"{self._behind_message(version, cached)}; the cache file cannot serve "
            f"meanwhile ({shown}, below min_version={self.min_version})"
        )

    def _lost_version(self) -> int:
        """For an empty store: the highest version this process, its cache file or the
        fleet (the floor key) has seen; 0 for a store that never held a document."""
        with self._lock:
            seen = self._seen
        return max(seen, self._cache_version(), self.min_version, self._floor_version())

    def _floor_version(self) -> int:
        """The version of the floor key (the highest one a process of the fleet served
        when it refused a document, see :meth:`_mark_lost`); 0 for none, or when it
        cannot be read. A floor that is not a usable version (set by hand) is ignored;
        one longer than a version is, too, and never downloaded, as the scripts leave
        it."""
        import redis

        with contextlib.suppress(redis.RedisError, ConfigError):
            pipe = self._client.pipeline(transaction=True)
            pipe.strlen(self.floor_key)
            pipe.getrange(self.floor_key, 0, FIELD_LIMITS["version"] - 1)
            length, floor = pipe.execute()
            if length <= FIELD_LIMITS["version"] and floor:
                return stored_version(floor, self.url)
        return 0

    def _mark_lost(self, client: Any, version: int, epoch: str | None = None) -> None:
        """Raise the floor key to ``version`` (best effort: a read-only ACL may refuse),
        recording ``epoch`` beside it: the epoch this process served at that version,
        which any process (a new one too) then holds a document of another epoch that no
        forced write began against (see ``_CAS``)."""
        import redis

        with self._lock:
            # A write of this process (or a delivery) may have come after the caller
            # read what it serves: the follower's poll read version 1, this process then
            # wrote 2, Redis was flushed, and the poll recorded 1, so a repair numbered 2
            # collided with the 2 this process holds. The floor is what it knows now.
            if self._seen > version:
                version = self._seen
                if epoch is not None:
                    epoch = self._epoch
            # The epoch recorded beside the floor is one this process read from Redis
            # or wrote, never one only its cache file names (restored, or judged by at
            # a start): every process, a new one too, refuses a document of another
            # epoch by that record, so a file copied from another host (of another
            # Redis at the same URL) made the whole fleet refuse the store's real
            # document. The floor's version still rises to the cache file's (checked
            # as a restore checks it): the next write is numbered above what this host
            # served, as after a failover that lost writes.
            if epoch is not None and epoch != self._confirmed_epoch:
                epoch = None
        keys = [self.floor_key, self.floor_epoch_key]
        with contextlib.suppress(redis.RedisError):
            self._lost(keys=keys, args=[version, epoch or ""], client=client)

    def _lost_message(self, version: int) -> str:
        what = "flag" if self._document == "flags" else "published configuration"
        fix = self._repair_command()
        return (
            f"the store lost its {what} document (Redis restarted empty, was flushed or "
            f"failed over to an empty replica): it holds none, but version {version} was "
            f"seen (by this process, its cache file or another process). Writing to it now "
            f"would start over from the seed and replace every process's flags with it; "
            f"restore the document first: {fix}"
        )

    def _instead_of_lost(self, empty: FlagDocument) -> FlagDocument:
        """``read()`` found no document: the seed for a new store. For one that lost its
        document, what :meth:`_keep_or_cache` serves."""
        lost = self._lost_version()
        if lost <= 0:
            return empty
        self._mark_lost(self._client, lost)
        return self._keep_or_cache(self._lost_message(lost))

    # -- FlagStore ---------------------------------------------------------------

    def read(self) -> FlagDocument:
        """The newest document in Redis, or the cache file's when Redis is unreachable.

        Raises ConfigError if the stored document is corrupt or invalid, or if Redis is
        unreachable and there is no usable cache file.
        """
        import redis

        try:
            try:
                doc, fleet = self._fetch(self._client)
            except (AttributeError, ValueError, TypeError) as exc:
                if not self.closed:
                    raise
                # The connection was closed under the read (close() in another thread).
                raise redis.ConnectionError(f"the store was closed: {exc}") from None
            self.serving_cache, self.last_contact = False, time.time()
            self.confirmed_at = time.monotonic()
            self._clear_problem("write", "outage")
            if doc.version == 0:
                doc = self._instead_of_lost(doc)
            else:
                known, served = self._known()
                if known is not None and self._foreign(
                    doc.version, doc.epoch, doc.forced, known, served
                ):
                    doc = self._instead_of_recreated(doc, known)
                elif fleet is not None and self._foreign(doc.version, doc.epoch, False, fleet):
                    doc = self._instead_of_recreated(doc, fleet, by_fleet=True)
                else:
                    doc = self._unless_behind(doc)
        except redis.RedisError as exc:
            if self.closed:
                # Whatever the closed connection raised under the read (its socket shut,
                # or the read's own timeout when close() came late): not an outage.
                down = "the store was closed during the read"
            elif isinstance(exc, redis.AuthenticationError):
                down = "Redis refused this store's credentials"
            elif _credentials_unavailable(exc):
                down = "no credentials for Redis"
            else:
                down = self._tls_problem(exc) or "Redis unreachable"
            try:
                doc = self.read_cache()
            except ConfigError as cache_exc:
                # (last_error says it too: a caller that goes on without this store's
                # document, a published configuration's last followed file serving,
                # reports it in health while Redis stays unreachable)
                why = self._raise_problem(
                    "outage", f"{down} ({exc}) and no usable cache file: {cache_exc}"
                )
                raise StoreUnreachableError(why, file=self.url) from None
            self.stats["cache_reads"] += 1
            self.serving_cache = True
            if not self.last_contact and self.cache_path is not None:
                # Never reached in this process: the cache file was current when written.
                with contextlib.suppress(OSError):
                    self.last_contact = os.path.getmtime(self.cache_path)
            self._raise_problem("outage", f"{down}, serving the cache file: {exc}")
            log.warning(
                "%s: %s (%s); serving version %d from the cache file %s",
                self.url, down, exc, doc.version, self.cache_path,
            )  # fmt: skip
        with self._lock:
            self._saw(doc)
        return doc

    def update(
        self,
        change: Callable[[Any], Any],
        *,
        check: Callable[[Any], Any] | None = None,
        actor: str | None = None,
        force: bool = False,
        replicate: bool = True,
        expected_version: int | None = None,
    ) -> tuple[FlagDocument, FlagDocument]:
        """Apply ``change`` to the newest stored document and store the result atomically.

        Compare-and-set on the version; on a conflict ``change`` (and ``check``) run
        again on the newer document. ``check(new)`` validates and compiles before
        anything is written: if it raises, nothing is written. ``force=True`` writes
        even over a corrupt document (``change`` then receives an empty snapshot);
        ``cfgcore publish`` uses it to repair a store. Returns ``(old, new)``.
        Raises ConfigError if Redis is unreachable: a write is never queued; and,
        without ``force``, if the store lost its document (it is empty, but a version
        was seen: see :meth:`_lost_version`), because the change would go to the seed.
        ``replicate=False``: return without waiting for the ``wait=N`` replicas (a
        caller that writes another document of this store next, and waits once for
        both: ``cfgcore publish``; replication keeps the order of the writes).
        ``expected_version``: the version the caller expects to replace (0: no document
        yet); when the store holds another, nothing is written and
        :class:`VersionConflictError` names the one it holds (checked in the write
        script itself, forced or not). Without it, a forced write replaces whatever is
        stored (the last writer wins).
        """
        import redis

        expected = _expected_arg(expected_version, self.url)
        self._refuse_closed("write")
        self._refuse_unsigned()
        writer = _writer(actor)
        writer_blob = msgspec.msgpack.encode(writer)
        # The version the write script said the document takes (a signature names it):
        # the next attempt signs for that one.
        numbered: int | None = None
        for attempt in range(MAX_ATTEMPTS):
            sent = False  # whether the write script may have reached Redis
            try:
                self._check_primary()
                fleet: str | None = None
                try:
                    old, fleet = self._fetch(self._client)
                except ConfigError:
                    if not force:
                        raise
                    old = FlagDocument(self._empty(), b"", -1, "", {}, self.url)
                with self._lock:
                    floor = max(self._seen, self.min_version)
                if force:
                    # A repair is numbered above what this machine's cache file holds
                    # too (followers also raise the floor when they refuse a document).
                    floor = max(floor, self._cache_version())
                elif 0 < old.version < self.min_version:
                    raise self._refuse(
                        f"not written: the store holds version {old.version}, below "
                        f"min_version={self.min_version} of the store URL (an older "
                        f"document put back, or writes lost): nothing is built on it; "
                        f"restore the intended document first: {self._repair_command()}"
                    )
                if old.version == 0 and not force:
                    # An empty store: new, or one that lost its document? (The script
                    # also checks the floor key, for a writer that has seen nothing.)
                    floor = max(floor, self._cache_version())
                    if floor > 0 and self._fetch(self._client)[0].version > 0:
                        # A first write landed after the read, and another process of
                        # this host cached it (they share the cache file): not a loss,
                        # the change goes onto that document.
                        continue
                    if floor > 0:
                        self._mark_lost(self._client, floor)
                        raise self._refuse(self._lost_message(floor))
                if not force and old.version > 0:
                    known, served = self._known()
                    if known is not None and self._foreign(
                        old.version, old.epoch, old.forced, known, served
                    ):
                        with self._lock:
                            served = self._seen
                        served = max(served, self._cache_version())
                        self._mark_lost(self._client, served, known)
                        raise self._refuse(
                            self._recreated_message(
                                old.version, old.epoch, known, served, forced=old.forced
                            )
                        )
                    if fleet is not None and self._foreign(old.version, old.epoch, False, fleet):
                        raise self._refused_by_fleet(old, fleet)
                    if self.keys.verifies and old.version > 0:
                        # Signed fleets fail closed: a change on top of an older document
                        # than this process served (an older signed document put back, or
                        # writes lost in a failover) would be signed and taken by every
                        # process, undoing every change since for the whole fleet. So
                        # on top of one older than the fleet served: the floor key, which
                        # the processes that refused it raised to what they serve (a
                        # writer that served nothing yet cannot tell by itself).
                        served = max(floor, self._cache_version())
                        whose = "this process served"
                        if old.version >= served:
                            served = self._floor_version()
                            whose = f"the fleet served (the floor key {self.floor_key})"
                        if old.version < served:
                            raise self._refuse(
                                f"not written: the store holds version {old.version}, older "
                                f"than version {served} {whose}: an older signed document put "
                                f"back by someone who can write Redis, or writes lost in a "
                                f"failover; a signing process builds nothing on it. Publish "
                                f"the intended document: {self._restore_command(served)}"
                            )
                new_snapshot = change(old.snapshot)
                if check is not None:
                    check(new_snapshot)
                data = self._encode(new_snapshot)
                if len(data) > MAX_DOCUMENT_BYTES:  # no follower would read it
                    raise ConfigError(
                        f"{self.noun} would be {len(data):,} bytes, over the "
                        f"{MAX_DOCUMENT_BYTES:,}-byte limit: not written",
                        file=self.url,
                    )
                self._refuse_items(data, self, "not written")
                checksum = hashlib.sha256(data).hexdigest()
                # The epoch the document will have (the script decides the same way).
                fresh = secrets.token_hex(16)
                if force or old.epoch is None:
                    epoch, forced = fresh, force
                else:
                    epoch, forced = old.epoch, old.forced
                self._to_primary()
                with self._lock:
                    floor = max(floor, self._seen)
                    signed_for: Any = ""
                    signature = b""
                    if self.keys.signs:
                        # (the script numbers it max(stored, floors) + 1, and refuses
                        # another number than the one signed: -8, signed again)
                        signed_for = numbered or max(old.version, 0, floor) + 1
                        signature = self.keys.sign(self.key, signed_for, data, writer_blob)
                    self._refuse_closed("write")  # (closed while the change was made)
                    sent = True
                    reply = self._cas(
                        keys=[self.key, self.floor_key, self.floor_epoch_key, self.writes_key],
                        args=[
                            max(old.version, 0), floor, checksum, writer_blob, data,
                            self.channel, "1" if force else "0", old.epoch or "", fresh,
                            expected, signed_for, signature,
                            old.checksum if old.version > 0 else "",
                        ],
                    )  # fmt: skip
                    if not (
                        isinstance(reply, list)
                        and len(reply) == 2
                        and reply[0] in (1, 0, -1, -2, -3, -4, -5, -6, -8)
                        and type(reply[0]) is int
                        and (
                            type(reply[1]) is int
                            or (reply[0] in (-1, -3) and type(reply[1]) is bytes)
                        )
                    ):
                        raise _unexpected("the write script", reply)
                    status, version = reply
                    if status == 1:
                        self._saw(_written(version, epoch, forced, checksum))
            except ConfigError:
                raise
            except Exception as exc:
                # A connection closed under the write by close() in another thread
                # fails inside redis-py with whatever it was doing (AttributeError,
                # ValueError): as a lost connection. Anything else is a bug: raised.
                if not isinstance(exc, redis.RedisError) and not self.closed:
                    raise
                # Failed before the write script was sent (reading the document, a
                # connection refused, credentials refused at connect): certainly not
                # written, nothing to ask.
                wrote = (
                    self._wrote_already(
                        writer["id"], checksum, max(old.version, 0), writer_blob, epoch, forced
                    )
                    if sent
                    else False
                )
                if wrote:
                    status, version = 1, self._seen
                else:
                    why = self._failure(exc, wrote, "write")
                    self._raise_problem("write", f"write failed: {why}")
                    raise ConfigError(f"cannot write {self.noun}: {why}", file=self.url) from None
            if status == 1:
                new = FlagDocument(
                    new_snapshot, data, int(version), checksum, writer, self.url, epoch, forced
                )
                if replicate:
                    try:
                        self._replicate(new.version)
                    except ConfigError:
                        self._stored_unserved(new)
                        raise
                self.stats["writes"] += 1
                self._clear_problem("write", "outage")
                self._own_write(new, writer_blob, signature)
                return old, new
            if status == -6:
                raise _conflict(self.key, version, int(expected), self.url)
            if status == -8:  # numbered otherwise than signed: signed for that number
                numbered = int(version)
                continue
            if status == -2:
                raise self._refuse(self._lost_message(int(version)))
            if status == -5:  # the floor key's record, read by the script itself
                raise self._refused_by_fleet(old, fleet or "?" * 12)
            if status == -1:  # (the text stored, as the script read it)
                raise ConfigError(
                    f"not written: {self._unusable_version(version)}; repair with "
                    + self._repair_command(),
                    file=self.url,
                )
            if status == -4:
                raise self._refuse(self._end_of_versions(int(version), old.version))
            if status == -3:
                kind = version.decode(errors="replace") if isinstance(version, bytes) else version
                raise self._refuse(self._wrong_type_message(str(kind)))
            self.stats["conflicts"] += 1
            numbered = None  # (the next attempt's number follows from what it reads)
            # Another writer got in between: back off a little (jittered, so writers
            # that collided do not collide again in lockstep) and redo the change.
            time.sleep(JITTER.uniform(0, min(0.05, 0.001 * (attempt + 1))))
        raise ConfigError(
            f"gave up after {MAX_ATTEMPTS} conflicting writes (too many concurrent writers)",
            file=self.url,
        )

    @staticmethod
    def _refuse_items(data: bytes, store: RedisFlagStore, outcome: str) -> None:
        """ConfigError when ``data``, a document ``store`` is about to write, holds more
        items than its bound (``max_items``): every reader with that bound would refuse
        it, while this process served it. Counted by the scan the readers count with."""
        items = msgpack_items(data)
        if items > store.max_items:
            raise ConfigError(
                f"{outcome}: {store.noun} would hold "
                + too_many_items(items, store.max_items, "the store URL"),
                file=store.url,
            )

    def _end_of_versions(self, highest: int, stored: int, publish: bool = False) -> str:
        """Why a write was refused at the end of the version space (the script's -4:
        ``highest``, the version the next one would follow, is 2**53 - 1), naming what
        holds that version and the way out that works for it. A floor key set that high
        is deleted. A stored document (or this host's record of one) that high is no
        version a write can follow, and every process that took it refuses anything
        older, from memory and from its cache file: the namespace starts over."""
        with self._lock:
            seen = self._seen
        found = []
        if stored >= highest:
            found.append(f"the stored document {self.key} is at version {stored}")
        if self._floor_version() >= highest:
            found.append(f"the floor key {self.floor_key} holds {highest}")
        own = max(seen, self._cache_version())
        if own >= highest:
            cache = f" (its cache file {self.cache_path})" if self.cache_path else ""
            found.append(f"this process served or cached version {own}{cache}")
        if self.min_version >= highest:
            found.append(f"the store URL pins min_version={self.min_version}")
        if not found:  # (moved since the script ran)
            found.append(f"the floor key {self.floor_key} or the stored version is {highest}")
        again = "publish again" if publish else self._repair_command()
        head = (
            f"not written: the next version would pass 2**53 - 1, where versions stop "
            f"counting: {'; '.join(found)}, further than cfgcore ever numbers (set by hand "
            f"or by another program?). "
        )
        if len(found) == 1 and found[0].startswith("the floor key"):
            return head + f"Delete the floor key (DEL {self.floor_key}), then {again}"
        store, note = self._store_arg()
        return head + (
            "No version can follow it, and every process that took it refuses any older "
            "one: stop the processes of this namespace, remove their cache files "
            f"(STATE_DIR/fleet/{self._parsed.namespace}-{self._document}-*.msgpack), "
            f"delete the namespace's keys (cfgcore retire --store {store}{note}), then "
            f"{again} and start them"
        )

    def _refuse_unsigned(self) -> None:
        """A process that checks the fleet's signatures but holds no signing key does not
        write: every process that checks them would refuse the document."""
        if self.keys.verifies and not self.keys.signs:
            from cfgcore.runtime.signing import ENV_SIGNING_KEY, ENV_SIGNING_KEY_FILE

            raise ConfigError(
                f"not written: this process accepts only signed fleet documents "
                f"({self.keys.verify_origin}) but holds no signing key ({ENV_SIGNING_KEY} "
                f"or {ENV_SIGNING_KEY_FILE}), so every process that checks signatures would "
                f"refuse the document; change flags from a process that holds the signing "
                f"key (cfgcore publish)",
                file=self.url,
            )

    def _stored_unserved(self, doc: FlagDocument) -> None:
        """``doc`` is stored, but its write was reported failed (``wait=N`` replicas did
        not acknowledge it): the follower delivers it to this process's listeners as
        another process's write while the store holds it (at its next poll at the
        latest), as every other process takes it. (Its version stays this process's
        floor, so the next write is numbered above it either way.)"""
        with self._lock:
            self._unserved = (doc.version, doc.checksum)

    def _own_write(self, doc: FlagDocument, writer: bytes, signature: bytes) -> None:
        """``doc`` was just written by this process: make it the cache file's now, as
        this process's follower does when the announcement of its own write comes (a
        writer that exits at once, a CLI or a deploy script, never got that far, and its
        next start knew neither the store's epoch nor its version).

        Only a document that follower would cache: the written bytes go through the
        checks it makes (checksum, the signature against this process's own trusted
        keys, decoding, nesting, then :meth:`_followed`); one that fails them is written
        but not cached, as the follower would leave it. (A process's own write is not
        delivered to its listeners: the flag set that wrote it serves it already.)
        Nothing with ``cache=off``."""
        if self.cache_path is None or doc.version <= 0:
            return
        try:
            checked = self._document_from(
                str(doc.version).encode(), doc.checksum.encode(), writer, doc.data,
                self.url, doc.epoch, doc.forced, signature or None,
            )  # fmt: skip
            self._followed(checked)
        except ConfigError as exc:
            log.warning(
                "%s: version %d written by this process would be refused by its own "
                "follower, so it is not cached: %s", self.url, doc.version, exc,
            )  # fmt: skip
            return
        self._write_cache(checked)  # (with the signature and writer field as stored)

    def _followed(self, doc: FlagDocument) -> None:
        """ConfigError when a follower would refuse ``doc`` (decoded and checked as read
        from Redis) for what the document holds, past the store's checks. Nothing more
        for a flag document (its compile is the writer's ``check=``, when it gives one,
        as the flag set's writes do)."""

    def _refused_by_fleet(self, old: FlagDocument, fleet: str) -> ConfigError:
        """The error for a write refused because the fleet served another epoch than the
        stored document's (the floor key's record)."""
        with self._lock:
            served = self._seen
        return self._refuse(
            self._recreated_message(
                old.version, old.epoch, fleet, served, by_fleet=True, forced=old.forced
            )
        )

    def _refuse(self, message: str) -> ConfigError:
        """The error for a read or write refused for ``message``, which ``last_error``
        says from now (a rejection)."""
        return ConfigError(self._raise_problem("rejection", message), file=self.url)

    def _check_primary(self) -> None:
        """Sentinel URLs: ask the Sentinels who the primary is before every write.

        redis-py keeps pooled connections to the old primary after a failover until an
        error breaks them, and until Sentinel demotes it the old primary accepts writes
        that are then thrown away. Asking first (one round trip to a Sentinel, on the
        write path only) drops idle connections to a primary that is no longer one.
        """
        self._primary_moved(self._client)

    @staticmethod
    def _primary_moved(client: Any) -> bool:
        """True if the Sentinels now name another primary (idle connections are dropped)."""
        pool = client.connection_pool
        proxy = getattr(pool, "proxy", None)
        if proxy is None:
            return False
        before = proxy.master_address
        return before is not None and pool.get_master_address() != before

    def _failure(self, exc: BaseException, wrote: bool | None, action: str) -> str:
        """Why a ``write``/``publish`` that raised ``exc`` failed, for its error and
        ``last_error``; ``wrote`` is :meth:`_wrote_already`'s answer (False: not sent)."""
        import redis

        why = str(exc)
        if self.closed:
            why = f"the store was closed during the {action} ({exc})"
        elif isinstance(exc, redis.AuthenticationError):
            why = f"Redis refused this store's credentials ({exc})"
        elif _credentials_unavailable(exc):
            why = f"no credentials for Redis ({exc})"
        elif (tls := self._tls_problem(exc)) is not None:
            why = f"{tls} ({exc})"
        if wrote is None:
            # The script may have run before the connection dropped, and the store
            # cannot be asked: saying "not written" could be false.
            why = (
                f"{why}; the outcome is unknown (the connection was lost after the "
                f"{action} was sent, and the store could not tell whether it was "
                "applied): read the store before retrying"
            )
        return why

    def _fields(self, *names: str) -> tuple[str, str | None, list[bytes | None]]:
        """``(type of the key, the first field over its limit as "NAME SIZE" or None,
        the values)`` of the named fields of this store's document (names of
        :data:`FIELD_LIMITS`), each read only when it is within its limit (None for no
        such field, one over its limit, or a key that is no hash), in one script: what
        a hostile writer stored there is never copied nor sent. Raises redis.RedisError,
        or one for a reply of another shape (see :func:`_unexpected`)."""
        reply = self._fields_script(keys=[self.key], args=list(names))
        if not (
            isinstance(reply, list)
            and 2 <= len(reply) <= len(names) + 2
            and isinstance(reply[0], bytes)
            and all(x is None or isinstance(x, bytes) for x in reply[1:])
            and (reply[0] == b"hash" or len(reply) == 2)
        ):
            raise _unexpected("the field script", reply)
        values = list(reply[2:]) + [None] * (len(names) + 2 - len(reply))
        over = reply[1].decode(errors="replace") if reply[1] is not None else None
        return reply[0].decode(errors="replace"), over, values

    def _wrote_already(
        self,
        write_id: str,
        checksum: str,
        read: int | None = None,
        writer_field: bytes | None = None,
        epoch: str | None = None,
        forced: bool = False,
    ) -> bool | None:
        """After a dropped reply: did the script run anyway? (Then it must not run again.)
        True when the store holds the write, or its record of recent writes names it
        (``writer_field``, the writer field sent, and ``checksum``: see :data:`WRITES_KEPT`;
        ``epoch`` and ``forced`` those the write gave the document). None when the store
        cannot be asked (the outcome is unknown), or holds another type than a hash
        (replaced since, or before: either way it cannot tell), or another writer's
        document numbered above ``read``, the version the change was made on, that the
        record does not tell from one written on top of this one (a record trimmed
        since, or a store an earlier release wrote: it cannot tell).

        The fields it looks at (``version``, ``writer``, ``epoch``, ``forced``) are
        measured before they are read (:meth:`_fields`): one longer than cfgcore writes
        there (:data:`FIELD_LIMITS`) is never fetched, and the answer is False: the
        write script stores all four within their limits in one step, so a document
        holding one past it is no write of ours as it stands (another writer changed it
        since, or wrote it: it is logged, naming the key and the field, and a read
        refuses the document, saying the same)."""
        import redis

        if writer_field is not None:
            try:
                score = self._client.zscore(self.writes_key, write_token(writer_field, checksum))
            except redis.ResponseError:  # (another type there: not cfgcore's, no record)
                score = None
            except redis.RedisError:
                return None  # unreachable: it may or may not have run
            version = whole_number(score) if score is not None else None
            if version is not None and 0 < version <= MAX_VERSION:
                with self._lock:
                    self._saw(_written(version, epoch, forced, checksum))
                return True
        try:
            kind, over, (raw_version, raw_writer, raw_epoch, raw_forced) = self._fields(
                "version", "writer", "epoch", "forced"
            )
            if kind not in ("hash", "none"):
                return None
            if over is not None:
                log.warning(
                    "%s: asked after a lost reply whether this process's write was "
                    "applied: %s; so no write of this process is stored",
                    self.url, self._oversized_field_message(raw_version, over),
                )  # fmt: skip
                return False
            writer = msgspec.msgpack.decode(raw_writer) if raw_writer else {}
            if isinstance(writer, dict) and writer.get("id") == write_id:
                version = stored_version(raw_version, self.url)
                epoch = stored_epoch(raw_epoch, version, self.url)
                with self._lock:
                    self._saw(_written(version, epoch, raw_forced == b"1", checksum))
                return True
            if read is not None and raw_version is not None:
                with contextlib.suppress(ConfigError):
                    if stored_version(raw_version, self.url) > read:
                        return None
        except redis.RedisError:
            return None  # unreachable: it may or may not have run
        except (msgspec.DecodeError, RecursionError, ConfigError, TypeError, ValueError):
            return False  # (fields cfgcore did not write: not written by us)
        return False

    def _to_primary(self) -> None:
        """Through Sentinel, ask the Sentinels for the primary before a write: after a
        failover, a connection still open to the old primary would send the write there,
        where it is accepted (and may even be acknowledged by a replica not yet moved)
        and then lost when Sentinel turns that server into a replica. Asking moves the
        idle connections to the new primary (redis-py's ``get_master_address``), so the
        window is the time between this question and the write, not until the next
        failed write. Raises redis.RedisError when no Sentinel knows a primary."""
        self._primary_moved(self._client)

    def _replicate(self, version: int | str) -> None:
        """With ``wait=N``: return once N replicas hold the write, else raise.

        A primary that lost its replicas (the old one, just after a failover) still
        accepts writes, and they vanish when it rejoins as a replica. Such a write is
        reported as failed, and the connections are dropped so that the retry asks
        the Sentinels for the primary again. Its version stays this writer's floor,
        so whatever is written next is numbered above anything a follower saw.
        ``version``: the document version written, or what else was (text).
        """
        replicas = int(self._parsed.options.get("wait", 0))
        if replicas <= 0:
            return
        import redis

        timeout = int(self._parsed.options.get("wait_timeout", 1000))
        # WAIT counts the replicas holding what its own connection wrote last. The
        # write's connection may be gone (its reply lost), or another of the pool's,
        # and redis-py sends a command again on a new connection when the first one
        # fails or outlasts socket_timeout: a WAIT on a connection that wrote nothing
        # counted every replica at once, so a write no replica held was reported
        # acknowledged. So WAIT follows a write of its own on the same connection,
        # sent again with it: a message on the change channel announcing version 0
        # (followers take it for no news), later in the replication stream than the
        # document.
        try:
            pipe = self._client.pipeline(transaction=False)
            pipe.publish(self.channel, b"0")
            pipe.wait(replicas, timeout)
            acked = pipe.execute()[-1]
            if type(acked) is not int:
                raise _unexpected("WAIT", acked)
        except redis.RedisError as exc:
            acked, failed = 0, f" (WAIT failed: {exc})"
        else:
            failed = ""
        if acked < replicas:
            with contextlib.suppress(Exception):
                self._client.connection_pool.disconnect()
            what = f"version {version}" if isinstance(version, int) else version
            msg = (
                f"{what} was acknowledged by {acked} of {replicas} replicas "
                f"within {timeout} ms{failed} and may be lost in a failover; write it again"
            )
            raise ConfigError(self._raise_problem("rejection", msg), file=self.url)

    def watch(
        self,
        callback: Callable[[FlagDocument], None],
        *,
        on_error: Callable[[Exception], None] | None = None,
    ) -> Callable[[], None]:
        """Call ``callback(doc)`` (on the follower thread) for every newer document.

        A document the store itself finds corrupt (checksum, decoding) is counted,
        logged and passed to ``on_error`` once. If ``callback`` raises ConfigError (the
        document does not compile), it is counted and never delivered again; reporting
        it is the callback's business.
        Returns a function that unsubscribes.
        """
        from cfgcore.runtime.events import run_after_delivery

        entry = (callback, on_error)
        with self._lock:
            self._callbacks.append(entry)
            untold: list[ConfigError] = []
            if on_error is not None:
                untold, self._stops_untold = self._stops_untold, []
        if on_error is not None:
            for exc in untold:  # (stop register entries refused before anyone listened)
                run_after_delivery(functools.partial(on_error, exc))
        self._start()

        def unsubscribe() -> None:
            with self._lock, contextlib.suppress(ValueError):
                self._callbacks.remove(entry)

        return unsubscribe

    # -- the fleet's guardrail stop register ------------------------------------------

    def read_stop_register(self) -> dict[str, tuple[float, Any]]:
        """``{test: (time, record or None)}``: the guardrail stops the fleet recorded
        beside the document (``{NS}:flags:guardrail-stops``), a stop in force (its
        record) or its end (None: resumed or deleted at that time). Entries that are not
        such (written by another program) are passed over and reported as a refused
        entry is (below). With verification
        keys (:mod:`cfgcore.runtime.signing`), so is an entry without a valid signature
        by a trusted key, reported as a refused document is (once per stored value:
        ``stats["stops_rejected"]``, ``last_error``, an ERROR line, the store's
        ``on_error`` listeners: the flag set's health, audit and metrics). Raises
        redis.RedisError when Redis cannot be read (the caller degrades).

        Read within bounds, in one script that measures every value before it reads
        any: an entry whose value is longer than :data:`MAX_STOP_ENTRY_BYTES`, or whose
        name is longer than :data:`MAX_STOP_NAME_BYTES`, is never fetched, and is
        passed over and reported as a refused entry is, naming the register, the test
        and the size, while the other entries are read as usual. A register of more
        than :data:`MAX_STOP_ENTRIES` entries, or whose key takes more than
        :data:`MAX_STOP_REGISTER_MEMORY` in Redis (no name listed: long names would be
        copied), or whose entries hold more than :data:`MAX_STOP_REGISTER_BYTES`, or a
        key of another type, is not read at all:
        reported once the same way and raised as a ConfigError, so the caller degrades as
        when Redis is unreachable (the host's own records hold).

        Why an entry that cannot be read is passed over rather than held as a stop:
        cfgcore never writes one so long (:meth:`write_stop_register` refuses to), so it
        is no stop any process recorded; whoever could store it could as well have
        deleted the real entry, which no reader can tell from none. It cannot be held
        either: a stop is held by serving its recorded record's control, and its record
        is what is not read; holding the test stopped without it would mean refusing
        every document that serves the test, which would let anyone who can write Redis
        freeze the fleet's flags with one planted value. What holds a stop does not rest
        on it: the document's own record, each host's register and audit log, and a
        host that holds the stop (or recorded its end) writes it back over the refused
        value at its start, when it next judges a fleet document, and at its
        follower's next poll (the write script replaces a value it cannot read; see
        :func:`cfgcore.experiments.stops.fleet_reactivations`,
        :meth:`stop_register_lost`)."""
        self._to_primary()  # not the old primary of a failover, which misses later stops
        reply = self._stops_read(
            keys=[self.stops_key],
            args=[
                MAX_STOP_ENTRIES, MAX_STOP_NAME_BYTES, MAX_STOP_ENTRY_BYTES,
                MAX_STOP_REGISTER_BYTES, MAX_STOP_REGISTER_MEMORY,
            ],
        )  # fmt: skip
        if not (
            isinstance(reply, list)
            and reply
            and reply[0] in (b"ok", b"count", b"memory", b"total", b"type")
            and (
                len(reply) % 4 == 1
                if reply[0] == b"ok"
                else len(reply) == 2 and isinstance(reply[1], (int, bytes))
            )
        ):
            raise _unexpected("the stop register's read script", reply)
        with self._stops_judging:
            self._stops_found = {}
            try:
                if reply[0] != b"ok":
                    exc = self._stops_not_read(reply[0], reply[1])
                    self._stops_now(self._stops_found)
                    raise exc
                entries: dict[str, tuple[float, Any]] = {}
                refused: dict[str, bytes] = {}
                for i in range(1, len(reply), 4):
                    name, value, name_size, size = reply[i : i + 4]
                    if not (
                        isinstance(name, bytes)
                        and (value is None or isinstance(value, bytes))
                        and type(name_size) is int
                        and type(size) is int
                    ):
                        raise _unexpected("the stop register's read script", reply[i : i + 4])
                    if value is None:  # (measured, not read: over a limit)
                        self._stop_oversized(name, name_size, size)
                        continue
                    entry = self._stop_entry(name, value, refused)
                    if entry is not None:
                        entries[name.decode()] = entry
                self._stops_refused = refused
                # (what this read found refused is what stands: an entry fixed or
                # removed since the last read no longer does)
                self._stops_now(self._stops_found)
            finally:
                self._stops_found = None
        return entries

    def _stops_now(self, standing: dict[str, tuple[str, _Probe | None]]) -> None:
        """The refusals of the stop register that stand from now; one that no longer
        does is no longer what ``last_error`` says either."""
        gone = {said for said, _ in self._stops_standing.values()}
        gone -= {said for said, _ in standing.values()}
        self._stops_standing = standing
        current = self._problems.get("rejection")
        if current is not None and current in gone:
            self._clear_problem("rejection", only=current)

    @property
    def stop_register_problem(self) -> str | None:
        """What is wrong with the fleet's guardrail stop register now, or None: the
        refusal of an entry passed over (not an entry cfgcore writes, over a limit, not
        signed by a trusted key) or of the register itself (not read), as the last read
        of the register found it, and how many more stand. Reported once per stored
        value (:meth:`read_stop_register`); this stands until a read finds the register
        without it (the follower checks, at each poll while one stands, whether the
        refused values are still stored): health's ``flag_store`` check warns on it."""
        standing = self._stops_standing
        if not standing:
            return None
        first = next(iter(standing.values()))[0]
        more = len(standing) - 1
        return first if not more else f"{first} (and {more} more refused entries)"

    def _recheck_stop_register(self) -> None:
        """At each poll while a refusal of the stop register stands: whether the
        refused entries are still stored as they were read, in one script that sends
        none of them (a few bytes; see _STOPS_STANDING): a value read, by its exact name
        (one that is not UTF-8 too) and SHA-1; a value over its limit, by its size; a
        name over its limit, by its size and first 64 bytes. One changed or gone, or the
        register itself not read, reads the register again, which says what stands
        now. Raises redis.RedisError (logged by the poll)."""
        standing = self._stops_standing
        if not standing:
            return
        probes = [probe for _said, probe in standing.values()]
        if all(probe is not None for probe in probes):
            args: list[Any] = [
                MAX_STOP_ENTRIES, MAX_STOP_ENTRY_BYTES, MAX_STOP_NAME_BYTES,
                MAX_STOP_REGISTER_MEMORY,
            ]  # fmt: skip
            for probe in probes:
                assert probe is not None
                args += probe
            self._to_primary()
            if self._stops_stand(keys=[self.stops_key], args=args) == 1:
                return  # every refusal still stored as read: still standing, still said
        with contextlib.suppress(ConfigError):  # (not read: said, and standing)
            self.read_stop_register()

    def _stop_entry(
        self, name: bytes, value: bytes, refused: dict[str, bytes]
    ) -> tuple[float, Any] | None:
        """The entry ``(time, record or None)`` a stored ``value`` of the stop register
        holds for test ``name``; None for one that is not such an entry (logged) or, with
        verification keys, is not signed by a trusted key (reported, and put in
        ``refused``: a write replaces it)."""
        try:
            test = name.decode()
            entry = json.loads(value)
            at = entry["at"]
            record = entry["record"]
            if isinstance(at, bool) or not isinstance(at, (int, float)):
                raise ValueError(f"time {at!r}")
            if record is not None and not isinstance(record, dict):
                raise ValueError("record not a mapping")
        except (UnicodeDecodeError, ValueError, TypeError, KeyError, RecursionError) as exc:
            # Reported as a refused entry is, once while it stays stored (it was logged
            # at every read: every write and every document judged, and never reached
            # last_error, health or the audit log).
            shown = name.decode(errors="backslashreplace")
            why = f"{type(exc).__name__}: {exc}"
            self._stop_refused(
                shown,
                value,
                name,
                ConfigError(
                    f"the guardrail stop register {self.stops_key}: the entry of A/B test "
                    f"{shown[:80]!r} is no entry cfgcore writes ({why[:200]}): passed "
                    f"over (stored by another program or by hand; a host that holds this "
                    f"test's stop writes it back over it)",
                    file=self.url,
                ),
            )
            return None
        if self.keys.verifies:
            try:
                self._verify_stop(test, entry, value)
            except ConfigError as exc:
                refused[test] = value
                self._stop_refused(test, value, name, exc)
                return None
        return float(at), record

    def add_poll_check(self, check: Callable[[], None]) -> Callable[[], None]:
        """Run ``check()`` on the follower's thread after every poll of the key and
        every (re)connect (not after an announced change); returns the function that
        removes it. The flag set's: its host's own entries of the stop register
        written back where the register lost them
        (:func:`cfgcore.experiments.stops.poll_own_entries`)."""
        with self._lock:
            self._poll_checks.append(check)

        def remove() -> None:
            with self._lock, contextlib.suppress(ValueError):
                self._poll_checks.remove(check)

        return remove

    def stop_register_lost(self, own: Mapping[str, tuple[float, bool]]) -> list[str]:
        """Which of this host's own entries of the stop register (``{test: (time,
        whether an end)}``) the register no longer holds: none stored, a value no
        reader takes (past :data:`MAX_STOP_ENTRY_BYTES`, not an entry, refused by the
        signature check: reported as :meth:`read_stop_register` reports it), or an
        older entry (or, for an end, a stop as late). One script reads only those
        entries, each measured before it is read, and sends none whose value is the
        one last judged to hold this host's entry: an unchanged register costs a few
        bytes. Raises redis.RedisError."""
        names = [n for n in sorted(own) if len(n.encode()) <= MAX_STOP_NAME_BYTES]
        held = self._stops_held
        for name in [n for n in held if n not in own or held[n][:2] != own[n]]:
            del held[name]  # (no longer this host's, or another entry of it since)
        args: list[Any] = [MAX_STOP_ENTRY_BYTES]
        for name in names:
            args += [name, held[name][2] if name in held else ""]
        self._to_primary()
        reply = self._stops_check(keys=[self.stops_key], args=args)
        if not (isinstance(reply, list) and reply and isinstance(reply[0], bytes)):
            raise _unexpected("the stop register's check script", reply)
        if reply[0] != b"hash":  # (none: lost with every entry; another type: replaced)
            return names
        if len(reply) % 3 != 1:
            raise _unexpected("the stop register's check script", reply)
        with self._stops_judging:
            self._stops_found = {}
            try:
                lost = self._own_entries_judged(reply, own, held)
                # (the names checked stand refused as this check found them)
                standing = {k: v for k, v in self._stops_standing.items() if k not in own}
                self._stops_now({**standing, **self._stops_found})
            finally:
                self._stops_found = None
        return lost

    def _own_entries_judged(
        self,
        reply: list[Any],
        own: Mapping[str, tuple[float, bool]],
        held: dict[str, tuple[float, bool, str]],
    ) -> list[str]:
        """stop_register_lost's reply judged: the tests whose entry the register lost."""
        lost = []
        refused = dict(self._stops_refused)
        for i in range(1, len(reply), 3):
            name, value, size = reply[i : i + 3]
            test = name.decode(errors="replace") if isinstance(name, bytes) else ""
            if test not in own or not (value is None or isinstance(value, bytes)):
                raise _unexpected("the stop register's check script", reply[i : i + 3])
            held.pop(test, None)
            if value is None:
                if size:  # (over the limit: measured, not read)
                    self._stop_oversized(name, len(name), int(size))
                lost.append(test)
                continue
            entry = self._stop_entry(name, value, refused)
            at, ends = own[test]
            if entry is None or entry[0] < at or (entry[0] == at and ends and entry[1] is not None):
                lost.append(test)
            else:
                held[test] = (at, ends, hashlib.sha1(value).hexdigest())
        self._stops_refused = refused
        return lost

    def _stop_oversized(self, name: bytes, name_size: int, size: int) -> None:
        """Report an entry of the stop register that the read script measured and did
        not read (its name, or the first 64 bytes of a name over its limit; their sizes,
        -1 for a value not measured), as a refused entry is."""
        shown = name.decode(errors="replace")
        if size < 0:
            what = (
                f"an entry whose name is {name_size:,} bytes ({shown[:40]!r}...), over the "
                f"{MAX_STOP_NAME_BYTES:,}-byte limit for a test's name"
            )
            test, mark = shown, b"name %d" % name_size
            probe: _Probe = ("long", name, b"%d" % name_size)
        else:
            what = (
                f"the entry of A/B test {shown!r} is {size:,} bytes, over the "
                f"{MAX_STOP_ENTRY_BYTES:,}-byte limit for an entry"
            )
            test, mark = shown, b"value %d" % size
            probe = ("size", name, b"%d" % size)
        exc = ConfigError(
            f"the guardrail stop register {self.stops_key}: {what}: not read, and passed "
            f"over (cfgcore never writes one so long: stored by another program or by "
            f"hand; a host that holds this test's stop writes it back over it)",
            file=self.url,
        )
        self._stop_refused(test, mark, None, exc, probe=probe)

    def _stops_not_read(self, why: bytes, amount: Any) -> ConfigError:
        """The ConfigError for a stop register the read script did not read (``why``:
        b"count", b"memory", b"total" or b"type", with the number of entries, the key's
        memory, their bytes or the key's type), reported once as a refused entry is."""
        if why == b"type":
            kind = amount.decode(errors="replace") if isinstance(amount, bytes) else amount
            what = f"is a Redis {kind}, not a hash"
        elif why == b"count":
            what = (
                f"holds {int(amount):,} entries, more than the {MAX_STOP_ENTRIES:,} cfgcore reads"
            )
        elif why == b"memory":
            what = (
                f"takes {int(amount):,} bytes of Redis memory (its names and values), more "
                f"than the {MAX_STOP_REGISTER_MEMORY:,} cfgcore reads"
            )
        else:
            what = (
                f"holds {int(amount):,} bytes in its entries, more than the "
                f"{MAX_STOP_REGISTER_BYTES:,} cfgcore reads"
            )
        exc = ConfigError(
            f"the guardrail stop register {self.stops_key} {what}: not read (the flags "
            f"are checked against this host's stops on record only; remove the entries "
            f"cfgcore did not write: each host writes the stops it holds again at its "
            f"next start)",
            file=self.url,
        )
        self._stop_refused("", b"%s %s" % (why, str(amount).encode()), None, exc)
        return exc

    def _verify_stop(self, test: str, entry: dict[str, Any], value: bytes) -> None:
        """ConfigError unless ``entry`` (the stored ``value`` of ``test``) is signed by a
        key this process trusts. A value checked before is not checked again."""
        verdicts = self._stop_verdicts
        known = verdicts.get((test, value))
        if known is not None:
            if isinstance(known, ConfigError):
                raise known
            return
        try:
            content, writer = _stop_signed(entry)
            self.keys.verify_stop(
                self.stops_key, test, content, writer, entry.get("signature"), self.url
            )
        except ConfigError as exc:
            verdict: Any = exc
        else:
            verdict = True
        if len(verdicts) >= _MAX_STOP_VERDICTS:  # (values an attacker keeps changing)
            verdicts.clear()
        verdicts[(test, value)] = verdict
        if verdict is not True:
            raise verdict

    def _stop_refused(
        self,
        test: str,
        value: bytes,
        name: bytes | None,
        exc: ConfigError,
        *,
        probe: _Probe | None = None,
    ) -> None:
        """Report a refused entry of the stop register once while it stays stored: as a
        refused document (stats, last_error, log, the on_error listeners after the
        change path that read it; one refused before any listener follows is told to the
        first that does). ``value``: the stored value of the entry ``name`` (its bytes as
        stored), or (``name`` None) what marks one not read (its size, the register's),
        which ``probe`` checks at each poll (None: the register itself not read)."""
        from cfgcore.runtime.events import run_after_delivery

        if not isinstance(exc, StopRegisterError):  # what the listeners are told
            exc = StopRegisterError(exc.problems)
        found = self._stops_found
        if found is not None:  # (a read of the register: what it found stands)
            if name is not None:
                probe = ("sha", name, hashlib.sha1(value).hexdigest().encode())
            found[test] = (str(exc), probe)
        mark = (test, hashlib.sha256(value).hexdigest())
        with self._lock:
            if mark in self._stops_reported:
                return
            if len(self._stops_reported) >= _MAX_STOP_VERDICTS:
                self._stops_reported.clear()
            self._stops_reported.add(mark)
            handlers = [h for _, h in self._callbacks if h is not None]
            if not handlers:
                self._stops_untold.append(exc)
        self._raise_problem("rejection", str(exc))
        self.stats["stops_rejected"] += 1
        log.error(
            "passing over a refused guardrail stop register entry (the fleet does not take it): %s",
            exc,
        )
        for handler in handlers:
            run_after_delivery(functools.partial(handler, exc))

    def write_stop_register(self, entries: Mapping[str, tuple[float, Any]]) -> int:
        """Record guardrail stops (``{test: (stop time, record)}``) and their ends
        (``(end time, None)``) in the fleet's register, in one atomic script: an entry
        replaces the stored one only when it is later, or as late and an end, so no
        host undoes a newer stop or end; or when the stored one is an entry this process
        refused when it last read the register (unsigned, a bad signature: see
        :meth:`read_stop_register`). A process holding the fleet signing key signs each
        entry (its field, time, record and a writer record); one that checks signatures
        but holds no signing key writes nothing (ConfigError: every process that checks
        would refuse them). An entry longer than :data:`MAX_STOP_ENTRY_BYTES`, or named
        by more than :data:`MAX_STOP_NAME_BYTES`, is not written (logged as an ERROR):
        every reader would pass it over. Returns how many were written; raises
        redis.RedisError, or ConfigError when fewer replicas than ``wait=N``
        acknowledged the write."""
        if self.keys.verifies and not self.keys.signs:
            from cfgcore.runtime.signing import ENV_SIGNING_KEY, ENV_SIGNING_KEY_FILE

            raise ConfigError(
                f"not written: this process accepts only signed guardrail stop entries "
                f"({self.keys.verify_origin}) but holds no signing key ({ENV_SIGNING_KEY} "
                f"or {ENV_SIGNING_KEY_FILE})",
                file=self.url,
            )
        writer: Any = None
        if self.keys.signs:
            writer = _canonical(writer_identity())
            writer_text = json.dumps(writer, sort_keys=True).encode()
        refused = self._stops_refused
        args: list[Any] = []
        for name, (at, record) in sorted(entries.items()):
            if writer is not None:
                body = _canonical({"at": at, "record": record})
                content = json.dumps(body, sort_keys=True).encode()
                signature = self.keys.sign_stop(self.stops_key, name, content, writer_text)
                signed = {**body, "signature": signature, "writer": writer}
                value = json.dumps(signed, sort_keys=True)
            else:  # (exactly the entries of releases before signing)
                value = json.dumps({"at": at, "record": record}, sort_keys=True, default=str)
            size, name_size = len(value.encode()), len(name.encode())
            if size > MAX_STOP_ENTRY_BYTES or name_size > MAX_STOP_NAME_BYTES:
                # (every reader would pass it over: MAX_STOP_ENTRY_BYTES)
                log.error(
                    "%s: not written to the guardrail stop register %s: the entry of A/B "
                    "test %r is %s bytes and its name %s, over the %s-byte limit for an "
                    "entry or the %s-byte one for a name that every reader keeps; the "
                    "stop is kept on this host (its register and audit log) only",
                    self.url, self.stops_key, name[:40], f"{size:,}", f"{name_size:,}",
                    f"{MAX_STOP_ENTRY_BYTES:,}", f"{MAX_STOP_NAME_BYTES:,}",
                )  # fmt: skip
                continue
            args += [name, repr(float(at)), value, refused.get(name, b"")]
        if not args:
            return 0
        self._to_primary()
        written = int(self._stops(keys=[self.stops_key], args=args))
        if written:
            # as a document write: with wait=N, entries no replica acknowledged are
            # reported as not written (the caller keeps them and writes them again)
            self._replicate("the write to the guardrail stop register")
        return written

    def close(self) -> None:
        """Stop following and close the connections."""
        self._closed.set()
        # Its series leave the scrape; what it counted stays in its URL's counters.
        instruments.untrack(self)
        pubsub = self._pubsub
        if pubsub is not None:
            with contextlib.suppress(Exception):
                pubsub.close()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)
        for client in (self._client, self._follow_client):
            with contextlib.suppress(Exception):
                client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _credentials_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` says no credentials could be had for a connection (a password
    file missing or unreadable, a provider that failed), directly or as the reason
    every Sentinel failed (redis-py's own ConnectionError around it, or "no primary
    found" listing them)."""
    from cfgcore.runtime.redis_credentials import CredentialsUnavailable

    found: BaseException | None = exc
    for _ in range(8):  # (a bounded walk: a chain can be made circular)
        if found is None:
            return False
        if isinstance(found, CredentialsUnavailable):
            return True
        found = found.__cause__ or (None if found.__suppress_context__ else found.__context__)
    return False


def _dropped(exc: BaseException) -> bool:
    """Whether the server reset or closed the connection ``exc`` failed on (what a
    server that takes TLS only does to a client in clear text), not refused it, timed
    out or answered (a wrong password)."""
    found: BaseException | None = exc
    for _ in range(8):  # (a bounded walk: a chain can be made circular)
        if found is None:
            return False
        if isinstance(found, (ConnectionResetError, BrokenPipeError)):
            return True
        if "closed by server" in str(found) or "Connection reset by peer" in str(found):
            return True
        found = found.__cause__ or (None if found.__suppress_context__ else found.__context__)
    return False


def _sentinel_class() -> type:
    from redis.exceptions import AuthenticationError, ConnectionError, TimeoutError
    from redis.sentinel import MasterNotFoundError, Sentinel

    class Discovery(Sentinel):  # type: ignore[misc]
        """Sentinel discovery by ``SENTINEL GET-MASTER-ADDR-BY-NAME`` (the protocol the
        Redis Sentinel client guidelines give). It names the promoted replica as soon
        as a failover promotes it; ``SENTINEL MASTERS`` (redis-py's default) keeps
        naming the old primary until the failover ends, and writes sent there in the
        meantime are lost when it is demoted."""

        def discover_master(self, service_name: str) -> tuple[str, int]:
            errors = []
            # (a Sentinel password file that cannot be read: the reason, as the cause,
            # for the store to say so rather than "unreachable"; else the last failure,
            # for the store to name a TLS file that cannot be loaded)
            no_credentials: Exception | None = None
            failed: Exception | None = None
            dropped = answered = False
            for sentinel in self.sentinels:
                try:
                    # The command itself: redis-py 8.2 types the helper method
                    # sentinel_get_master_addr_by_name as (host, port) or a bool
                    # (the bool when called on a Sentinel). On one sentinel's client the
                    # reply is parsed to (host, port), or None when it knows no primary.
                    addr = sentinel.execute_command(
                        "SENTINEL GET-MASTER-ADDR-BY-NAME", service_name
                    )
                except (ConnectionError, TimeoutError) as exc:
                    if isinstance(exc, AuthenticationError):
                        answered = True  # (reached: it refused the Sentinel password)
                    failed = exc
                    dropped = dropped or _dropped(exc)
                    if _credentials_unavailable(exc):
                        # (its text names the file; redis-py's repr() of it does not)
                        no_credentials = exc
                        errors.append(str(exc))
                    else:
                        # (redis-py 8.2's repr() of it is "network:ConnectionError" only)
                        kwargs = sentinel.connection_pool.connection_kwargs
                        where = f"{kwargs.get('host')}:{kwargs.get('port')}"
                        errors.append(f"{where}: {type(exc).__name__}: {exc}")
                    continue
                if isinstance(addr, (tuple, list)) and len(addr) == 2:
                    host = addr[0].decode() if isinstance(addr[0], bytes) else str(addr[0])
                    return host, int(addr[1])
            if (
                no_credentials is None
                and not answered
                and failed is not None
                and len(errors) == len(self.sentinels)
            ):
                hint = ""
                if dropped and not self.sentinel_kwargs.get("ssl"):
                    hint = " (Sentinels that take TLS only need sentinel_ssl=true)"
                raise MasterNotFoundError(
                    f"no Sentinel could be reached for {service_name!r}{hint}: {'; '.join(errors)}"
                ) from failed
            raise MasterNotFoundError(
                f"no primary found for {service_name!r} {errors}"
            ) from no_credentials

    return Discovery


def _Sentinel(*args: Any, **kwargs: Any) -> Any:  # noqa: N802 - stands for the class
    return _sentinel_class()(*args, **kwargs)


class PublishedConfig(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """A full configuration snapshot published by ``cfgcore publish``: the validated,
    layered tree of one environment (values that came from environment variables are
    kept as their ``${VAR}`` references, never as the secrets they resolved to) and the
    flag snapshot that was validated with it."""

    environment: str
    config: dict[str, Any]
    flags: Snapshot | None = None
    profile: str | None = None
    geographic_profile: str | None = None


_PUBLISHED = msgspec.msgpack.Decoder(PublishedConfig)


class RedisConfigStore(RedisFlagStore):
    """The published configuration of one environment (key ``{NS}:config:ENV``), with
    the same guarantees as the flag document: compare-and-set writes, checksums,
    followers that never go backwards, a local cache file. ``doc.snapshot`` is a
    :class:`PublishedConfig`."""

    def __init__(
        self,
        url: str,
        environment: str,
        *,
        environ: Mapping[str, str] | None = None,
        env_overrides: bool = True,
        **kwargs: Any,
    ) -> None:
        """``environ``: the environment a follower's build of this process's own write
        resolves ``${VAR}`` references and ``CFGCORE__`` variables from, when it is
        checked before it is cached (:meth:`_followed`; ``cfgcore publish`` passes the
        one it validated with); None: the process environment. ``env_overrides=False``
        leaves that environment's ``CFGCORE__`` variables out of the check, as
        ``cfgcore publish`` leaves them out of what it publishes."""
        self.environ = environ
        self.env_overrides = env_overrides
        if not environment or ":" in environment:
            raise ConfigError(f"environment {environment!r}: must be non-empty, without ':'")
        try:
            environment.encode("utf-8")  # (a key name: a lone surrogate cannot be sent)
        except UnicodeEncodeError:
            raise ConfigError(
                f"environment {environment!r}: not valid text (a lone surrogate)"
            ) from None
        super().__init__(url, document=f"config:{environment}", **kwargs)
        self.environment = environment
        # (a publish without --flags failed with "cannot write the flag document")
        self.noun = f"the published configuration of {environment}"

    def _decode(self, data: bytes, origin: str) -> Any:
        # A repeated key is refused here as in a flag document: msgspec would keep
        # the last, and a configuration read by two releases must read the same. (So is
        # one of more items than the store's bound.)
        refuse_msgpack_duplicates(data, origin, self.max_items)
        try:
            doc = _PUBLISHED.decode(data)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            raise ConfigError(f"published configuration: {exc}", file=origin) from None
        # Held to the depth every document is (the configuration files too): a tree
        # deeper than that, within msgspec's own limit, made the follower's rendering
        # (and so a start) raise RecursionError instead of refusing it.
        if _deeper_than(doc.config, MAX_VALUE_DEPTH):
            path = _too_deep(doc.config) or ""
            shown = path if len(path) <= 120 else path[:117] + "..."
            raise ConfigError(
                f"published configuration: {shown}: nested deeper than {MAX_VALUE_DEPTH} levels",
                file=origin,
            )
        if doc.flags is not None:
            _refuse_deep_values(doc.flags, origin)
        return doc

    def _encode(self, snapshot: Any) -> bytes:
        if isinstance(snapshot, PublishedConfig):
            # dates, datetimes and times travel as their extension values whoever
            # writes the document (cfgcore publish does this already: idempotent)
            from cfgcore.config.published import encode_temporal

            snapshot = msgspec.structs.replace(snapshot, config=encode_temporal(snapshot.config))
        return encode_msgpack(snapshot, file=self.url)

    def _empty(self) -> Any:
        return None

    def _followed(self, doc: FlagDocument) -> None:
        """A follower (:class:`cfgcore.config.published.PublishedSource`) writes the
        tree to ``ENV.json``, builds from it and validates the result: a publisher's
        own write it would refuse is kept out of the cache file
        (:func:`cfgcore.config.published.check_followed`, with :attr:`environ`)."""
        from cfgcore.config.published import check_followed

        origin = doc.origin or self.url
        try:
            check_followed(
                doc.snapshot, self.environment, origin, self.environ,
                env_overrides=self.env_overrides,
            )  # fmt: skip
        except ConfigError:
            raise
        except Exception as exc:  # (the write is done: it must not look failed; not cached)
            raise ConfigError(
                f"cannot build it as a follower does: {type(exc).__name__}: {exc}", file=origin
            ) from exc

    def read_pair(
        self,
        flags: RedisFlagStore,
        known: tuple[FlagDocument | None, FlagDocument | None] = (None, None),
    ) -> tuple[FlagDocument, FlagDocument]:
        """This configuration and ``flags`` (the flag document of the same URL) as the
        store held them at one moment: both read in one transaction, so never one
        publish's configuration with another publish's flags. ``known``: documents the
        caller holds (configuration, flags); one still stored (same version, checksum
        and epoch) is returned as is, its data not sent again. Checksums are checked as
        for any read (ConfigError); connection problems raise Redis errors."""
        if flags._parsed != self._parsed:
            raise ConfigError("the flag store is not this store's URL", file=self.url)
        pipe = self._client.pipeline(transaction=True)
        for store, doc in zip((self, flags), known, strict=True):
            keys = [store.key, store.floor_key, store.floor_epoch_key]
            skip, epoch = "", ""
            if doc is not None and doc.version > 0:
                skip, epoch = f"{doc.version}:{doc.checksum}", doc.epoch or ""
            store._read(keys=keys, args=[MAX_DOCUMENT_BYTES, skip, epoch], client=pipe)
        replies = pipe.execute()
        docs: list[FlagDocument] = []
        for store, doc, reply in zip((self, flags), known, replies, strict=True):
            if not (
                isinstance(reply, list)
                and len(reply) == 13
                and type(reply[4]) is int
                and all(x is None or isinstance(x, (bytes, int)) for x in reply)
            ):
                raise _unexpected("the read script", reply)
            store._note_environment(reply)
            if doc is not None and reply[6] == b"unchanged":
                docs.append(doc)
            else:
                docs.append(store._from_raw(reply))
        return docs[0], docs[1]

    def publish_with_flags(
        self,
        config: Any,
        flags: RedisFlagStore,
        change: Callable[[Any], Any],
        *,
        check: Callable[[Any], Any] | None = None,
        actor: str | None = None,
        expected_version: int | None = None,
        replace_environment: bool = False,
    ) -> tuple[FlagDocument, FlagDocument]:
        """Write ``config`` (a :class:`PublishedConfig`) here and ``change(stored flag
        snapshot)`` to ``flags`` (a store of the same URL) in one atomic step: both
        forced writes, as ``update(force=True)`` makes them. No follower can read this
        configuration with another publish's flags: two publishes at once each write
        their pair whole, in some order. ``change`` and ``check`` run before anything is
        written, on the stored flag document; one that another write replaced before
        this one was applied is a conflict: they run again on the newer document (a
        publish judges its flags against the document it replaces). Waits for the
        ``wait=N`` replicas once, for both. Returns the two new documents.

        ``expected_version``: the configuration version the caller expects to replace
        (0: none published yet); another one stored refuses the publish with
        :class:`VersionConflictError`, nothing written (checked in the script that
        writes). The flag document records this environment: a namespace has one, so
        a publish for another environment than the one recorded is refused with
        :class:`FlagsEnvironmentError` (it would replace the flags that environment's
        processes serve), unless ``replace_environment`` (the namespace's flags move to
        this environment on purpose)."""
        import redis

        expected = _expected_arg(expected_version, self.url)
        self._refuse_closed("publish")
        flags._refuse_closed("publish")
        if flags._parsed != self._parsed:
            raise ConfigError("the flag store is not this store's URL", file=self.url)
        if len(self.environment.encode()) > MAX_ENVIRONMENT_BYTES:
            # (recorded on the flag document: every follower would refuse it)
            raise ConfigError(
                f"environment {self.environment[:40]!r}... is longer than "
                f"{MAX_ENVIRONMENT_BYTES:,} bytes, more than the flag document can "
                f"record: nothing published",
                file=self.url,
            )
        pair = self._client.register_script(_PAIR)
        cwriter, fwriter = _writer(actor), _writer(actor)
        cblob, fblob = msgspec.msgpack.encode(cwriter), msgspec.msgpack.encode(fwriter)
        cdata = self._encode(config)
        if len(cdata) > MAX_DOCUMENT_BYTES:
            raise ConfigError(
                f"the published configuration would be {len(cdata):,} bytes, over the "
                f"{MAX_DOCUMENT_BYTES:,}-byte limit: not written",
                file=self.url,
            )
        self._refuse_items(cdata, self, "nothing published")
        csum = hashlib.sha256(cdata).hexdigest()
        self._refuse_unsigned()
        flags._refuse_unsigned()
        # The versions the script said the two documents take (-8): signed for those.
        numbered: tuple[int, int] | None = None
        for attempt in range(MAX_ATTEMPTS):
            sent = False
            fsum = ""
            try:
                self._check_primary()
                raw = flags._read_raw(self._client)
                seen = _identity(raw)
                try:
                    old = flags._from_raw(raw)
                except ConfigError:  # repaired by the forced write, as update() does
                    old = FlagDocument(flags._empty(), b"", -1, "", {}, flags.url)
                new_snapshot = change(old.snapshot)
                if check is not None:
                    check(new_snapshot)
                fdata = flags._encode(new_snapshot)
                if len(fdata) > MAX_DOCUMENT_BYTES:
                    raise ConfigError(
                        f"the flag document would be {len(fdata):,} bytes, over the "
                        f"{MAX_DOCUMENT_BYTES:,}-byte limit: nothing written",
                        file=flags.url,
                    )
                self._refuse_items(fdata, flags, "nothing written")
                fsum = hashlib.sha256(fdata).hexdigest()
                cepoch, fepoch = secrets.token_hex(16), secrets.token_hex(16)
                # (numbered above what this machine's cache files hold, as a repair is)
                cfloor, ffloor = self._cache_version(), flags._cache_version()
                with self._lock:
                    cfloor = max(cfloor, self._seen)
                with flags._lock:
                    ffloor = max(ffloor, flags._seen, flags.min_version)
                csigned: Any = ""
                fsigned: Any = ""
                csig = fsig = b""
                if self.keys.signs or flags.keys.signs:
                    if numbered is not None:
                        csigned, fsigned = numbered
                    else:  # as the script numbers them (a floor key above: -8, again)
                        # (a key of another type is replaced: as none; a version
                        # that is no number, or longer than one, measured and not
                        # read: as none, as the script numbers it)
                        try:
                            _, _, (held,) = self._fields("version")
                            cheld = stored_version(held, self.url) if held is not None else 0
                        except (ConfigError, redis.ResponseError):
                            cheld = 0
                        csigned = max(cheld, cfloor) + 1
                        fsigned = max(old.version, 0, ffloor) + 1
                    if self.keys.signs:
                        csig = self.keys.sign(self.key, csigned, cdata, cblob)
                    else:
                        csigned = ""
                    if flags.keys.signs:
                        fsig = flags.keys.sign(flags.key, fsigned, fdata, fblob)
                    else:
                        fsigned = ""
                self._refuse_closed("publish")
                flags._refuse_closed("publish")
                self._to_primary()
                sent = True
                reply = pair(
                    keys=[
                        self.key, self.floor_key, self.floor_epoch_key,
                        flags.key, flags.floor_key, flags.floor_epoch_key,
                        self.writes_key, flags.writes_key,
                    ],
                    args=[
                        seen,
                        cfloor, csum, cblob, cdata, self.channel, cepoch,
                        ffloor, fsum, fblob, fdata, flags.channel, fepoch,
                        expected, self.environment, "1" if replace_environment else "0",
                        csigned, csig, fsigned, fsig,
                    ],
                    client=self._client,
                )  # fmt: skip
                if not (
                    isinstance(reply, list)
                    and len(reply) in (3, 4)
                    and all(type(x) is int for x in reply[:3])
                    and reply[0] in (1, 0, -4, -6, -7, -8)
                    and (len(reply) == 3 or (reply[0] == -7 and type(reply[3]) is bytes))
                ):
                    raise _unexpected("the publish script", reply)
            except ConfigError:
                raise
            except Exception as exc:
                if not isinstance(exc, redis.RedisError) and not self.closed:
                    raise
                wrote = (
                    flags._wrote_already(
                        fwriter["id"], fsum, max(old.version, 0), fblob, fepoch, True
                    )
                    if sent
                    else False
                )
                if wrote:
                    # The script ran before the reply was lost: both are written.
                    self._wrote_already(cwriter["id"], csum, None, cblob, cepoch, True)
                    reply = [1, self._seen, flags._seen]
                else:
                    why = self._failure(exc, wrote, "publish")
                    self._raise_problem("write", f"publish failed: {why}")
                    raise ConfigError(
                        f"cannot publish the configuration and flags: {why}", file=self.url
                    ) from None
            status, cversion, fversion = reply[:3]
            if status == -6:
                raise _conflict(self.key, cversion, int(expected), self.url)
            if status == -8:  # numbered otherwise than signed: signed for those numbers
                numbered = (cversion, fversion)
                continue
            if status == -7:
                recorded = reply[3].decode(errors="replace")
                raise FlagsEnvironmentError(
                    f"not written: the flag document {flags.key} was published for "
                    f"environment {recorded!r}, and a namespace has one flag document: "
                    f"publishing flags for {self.environment!r} would replace the flags "
                    f"every {recorded!r} process serves. Publish each environment's flags "
                    f"to a namespace of its own (?namespace=...), publish this "
                    f"configuration without flags, or move the namespace's flags to "
                    f"{self.environment!r} on purpose (--replace-flags-environment)",
                    recorded=recorded,
                    file=flags.url,
                )
            if status == 1:
                cnew = FlagDocument(config, cdata, cversion, csum, cwriter, self.url, cepoch, True)
                fnew = FlagDocument(
                    new_snapshot, fdata, fversion, fsum, fwriter, flags.url, fepoch, True
                )
                with self._lock:
                    self._saw(cnew)
                with flags._lock:
                    flags._saw(fnew)
                flags._env_stored = flags._env_seen = self.environment  # (recorded)
                try:
                    flags._replicate(fversion)  # (one wait covers both: one script)
                except ConfigError:
                    self._stored_unserved(cnew)
                    flags._stored_unserved(fnew)
                    raise
                self.stats["writes"] += 1
                flags.stats["writes"] += 1
                self._clear_problem("write", "outage")
                flags._clear_problem("write", "outage")
                # Both in this host's cache files when the publish returns, as a
                # follower would cache them (a publisher exits at once: its next run
                # numbers above them, a process starting on the host refuses older ones).
                self._own_write(cnew, cblob, csig)
                flags._own_write(fnew, fblob, fsig)
                return cnew, fnew
            if status == -4:
                store = flags if fversion else self
                stored = old.version
                if not fversion:  # (the configuration's, as its signing reads it)
                    try:
                        _, _, (field,) = self._fields("version")
                        stored = stored_version(field, self.url) if field is not None else 0
                    except (ConfigError, redis.RedisError):
                        stored = 0
                raise store._refuse(store._end_of_versions(int(cversion), stored, publish=True))
            flags.stats["conflicts"] += 1
            numbered = None
            # Another publish (or write) replaced the flag document since it was read:
            # judge against that one, after a jittered pause.
            time.sleep(JITTER.uniform(0, min(0.05, 0.001 * (attempt + 1))))
        raise ConfigError(
            f"gave up after {MAX_ATTEMPTS} conflicting writes (too many concurrent writers)",
            file=self.url,
        )


def open_redis_store(url: str, *, seed: str | None = None) -> RedisFlagStore:
    """The store for a ``redis://``, ``rediss://`` or ``redis+sentinel://`` URL (what
    :func:`cfgcore.runtime.flagstore.open_store` calls)."""
    return RedisFlagStore(url, seed=seed)


def retire_namespace(url: str, *, force: bool = False) -> list[bytes]:
    """Delete every key cfgcore keeps for the URL's namespace: the flag document, each
    published configuration, and their floor keys and epoch records (which nothing else
    ever clears: they outlive the documents by design, so a store that lost its documents
    is refused, not built on). For a namespace no process serves any more (a service
    decommissioned, or a namespace to start over from nothing). Refused with ConfigError
    while a process follows one of its documents (subscribed to its change channel),
    unless ``force``: such a process would find its document gone, keep serving it and
    record the floor again, as it must. Other keys with the namespace's prefix are not
    cfgcore's and stay. Returns the names of the deleted keys."""
    import re

    import redis

    store = RedisFlagStore(url)
    try:
        ns = store._parsed.namespace
        ours = re.compile(
            rb"\{"
            + re.escape(ns.encode())
            + rb"\}:(?:flags|config:[^:]+)(?::floor(?::epoch)?|:guardrail-stops|:writes)?"
        )
        document = re.compile(rb"\{" + re.escape(ns.encode()) + rb"\}:(?:flags|config:[^:]+)")
        match = "{" + re.sub(r"([*?\[\]\\])", r"\\\1", ns) + "}:*"  # MATCH is a glob
        try:
            keys = sorted(
                {k for k in store._client.scan_iter(match=match, count=1000) if ours.fullmatch(k)}
            )
            documents = [k for k in keys if document.fullmatch(k)]
            channels = {store.channel.encode()} | {k + b":changes" for k in documents}
            followers = sum(n for _, n in store._client.pubsub_numsub(*sorted(channels)))
            if followers and not force:
                raise ConfigError(
                    f"{followers} process(es) still follow namespace {ns!r}: stop them "
                    "first (or --force: they keep serving what they have, and record the "
                    "floor again)",
                    file=store.url,
                )
            if keys:
                store._client.delete(*keys)  # (one slot: {NS})
        except redis.RedisError as exc:
            raise ConfigError(f"cannot retire namespace {ns!r}: {exc}", file=store.url) from None
        return keys
    finally:
        store.close()


_STORES: weakref.WeakSet[RedisFlagStore] = weakref.WeakSet()


def _reset_followers_after_fork() -> None:
    for store in list(_STORES):
        store._after_fork_in_child()
        # What this process did starts at zero, as a flag set's documents and the
        # registry's counters do: else each worker of a pre-fork server reported the
        # parent's counts again, and a sum over the workers counted them once per
        # worker. In place: the metrics keep this dict, to count it once it is closed.
        for key in store.stats:
            store.stats[key] = 0


def _restart_followers_after_fork() -> None:
    for store in list(_STORES):
        store._restart_in_child()


after_fork_in_child(_reset_followers_after_fork)
restart_in_child(_restart_followers_after_fork)
