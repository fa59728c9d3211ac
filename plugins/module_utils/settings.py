# -*- coding: utf-8 -*-
# Copyright: (c) 2026, offsite.zfs developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Typed settings: a dataset's policy parsed once, and everything one operation on the dataset needs.

Private to the collection: not an API for other collections.

`DatasetPolicy` is what the config file says about one dataset (`defaults` < its entry), as typed
fields: durations in seconds, keep rules a `Keep`, `full_every` a `FullEvery`, bools as bools. The
defaults of every policy field are the field defaults here, and nowhere else; no code reads the
policy as a dict. `DatasetSettings` adds where and how (providers, namespace, recipients, chunking,
directories); resolve.py builds it from the config file and the module parameters. A bad value is
one sentence naming the field and the dataset (code `bad_value`; a config that breaks the schema is
`bad_config`, from config.check_structure).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from ansible_collections.offsite.zfs.plugins.module_utils import schedule
from ansible_collections.offsite.zfs.plugins.module_utils.common import parse_duration
from ansible_collections.offsite.zfs.plugins.module_utils.config import DEFAULT_PARALLEL, dataset_entry
from ansible_collections.offsite.zfs.plugins.module_utils.errors import OffsiteError
from ansible_collections.offsite.zfs.plugins.module_utils.signing import Trust
from ansible_collections.offsite.zfs.plugins.module_utils.store import Provider

DEFAULT_STATE_DIR = "/var/lib/offsite"
DEFAULT_LOG_DIR = "/var/log/offsite"
DEFAULT_SPOOL_DIR = "/var/tmp/offsite"
DEFAULT_CHUNK_SIZE = 256 * 1024 * 1024
DEFAULT_SNAPSHOT_PREFIX = "offsite"
DAY = 86400.0
RULES = ("last", "hourly", "daily", "weekly", "monthly", "yearly")


def _where(key: str, dataset: str) -> str:
    return "%s of %s" % (key, dataset) if dataset else key


def _bad(what: str, value: Any, form: str) -> OffsiteError:
    """A setting the collection cannot use, in one sentence: the setting, its value, what it must be."""
    return OffsiteError("The %s %r is not %s." % (what, value, form), "bad_value")


@dataclass(frozen=True)
class Keep:
    """The keep rules (docs/policy.md): how many of the newest snapshots, and of each period, to keep."""

    last: int = 0
    hourly: int = 0
    daily: int = 0
    weekly: int = 0
    monthly: int = 0
    yearly: int = 0

    @classmethod
    def parse(cls, value: Any, dataset: str = "") -> "Keep":
        """From the policy's (or offsite_prune's) mapping; None or empty: no rules (nothing is ever deleted)."""
        if isinstance(value, Keep):
            return value
        if value in (None, ""):
            return cls()
        if not isinstance(value, dict):
            raise _bad(_where("keep", dataset), value, "a mapping of keep rules like {last: 3, daily: 7}")
        for rule, count in value.items():
            if rule not in RULES:
                raise _bad(_where("keep", dataset) + " rule", rule, "one of %s" % ", ".join(RULES))
            if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 0):
                raise _bad(_where("keep.%s" % rule, dataset), count, "a whole number >= 0")
        return cls(**{rule: count or 0 for rule, count in value.items()})

    def rules(self) -> Dict[str, int]:
        """The rules that select something, in a fixed order (last, hourly, ..., yearly)."""
        return {rule: getattr(self, rule) for rule in RULES if getattr(self, rule) > 0}


@dataclass(frozen=True)
class FullEvery:
    """When the next backup to a provider is full: when its newest full backup is `seconds` old, or when its
    newest chain has `incrementals` incrementals (one of the two is set)."""

    seconds: Optional[float] = 30 * DAY
    incrementals: Optional[int] = None

    @classmethod
    def parse(cls, value: Any, dataset: str = "") -> "FullEvery":
        if value is None:
            return cls()
        if isinstance(value, dict):
            count = value.get("incrementals")
            if isinstance(count, bool) or not isinstance(count, int) or count < 0 or set(value) != {"incrementals"}:
                raise _bad(_where("full_every", dataset), value, "a duration like 30d or {incrementals: N}")
            return cls(seconds=None, incrementals=count)
        return cls(seconds=parse_duration(value, _where("full_every", dataset)))


def _duration(entry: Dict[str, Any], key: str, dataset: str, default: Optional[float]) -> Optional[float]:
    value = entry.get(key)
    return default if value in (None, "") else parse_duration(value, _where(key, dataset))


def _flag(entry: Dict[str, Any], key: str, dataset: str, default: bool) -> bool:
    value = entry.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise _bad(_where(key, dataset), value, "true or false")
    return value


def _text(entry: Dict[str, Any], key: str, dataset: str) -> Optional[str]:
    value = entry.get(key)
    if value is not None and not isinstance(value, str):
        raise _bad(_where(key, dataset), value, "a string")
    return value or None


def _names(entry: Dict[str, Any], key: str, dataset: str) -> Tuple[str, ...]:
    value = entry.get(key)
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _bad(_where(key, dataset), value, "a list of names")
    return tuple(value)


@dataclass
class DatasetPolicy:
    """What the policy says about one dataset, typed; the defaults are the collection's (docs/policy.md)."""

    wanted_providers: Optional[Tuple[str, ...]] = None  # the dataset's `providers`; None: all of them
    every: float = DAY  # how often a policy run takes a snapshot (schedule.py); 0: every run
    at: Optional[str] = None  # the time of day the slots of `every` start at
    slack: Optional[float] = None  # None: 10 % of every, at most 15 minutes (schedule.py)
    full_every: FullEvery = FullEvery()
    keep: Keep = Keep()
    max_age: Optional[float] = None  # the freshness objective of offsite_status
    drill_every: Optional[float] = None  # ops/status/drills.py
    verify_coverage: Optional[float] = None  # verify_sample.py
    snapshot_prefix: str = DEFAULT_SNAPSHOT_PREFIX
    snapshot_pattern: Optional[str] = None  # back up a snapshot manager's snapshots (snapshot_managers.py)
    hold_base: bool = True  # holds.py
    new_lineage: bool = False  # lineage.py
    recursive: bool = False  # tree.py
    exclude: Tuple[str, ...] = ()  # with recursive: descendants left out (names or patterns)
    prune_incomplete_after: float = 2 * DAY
    prune_local_snapshots: bool = False

    @classmethod
    def parse(cls, entry: Dict[str, Any], dataset: str = "") -> "DatasetPolicy":
        """From one merged entry of the config file (config.dataset_entry); every value is checked here, once."""
        at = entry.get("at")
        if at not in (None, ""):
            schedule.parse_at(at, _where("at", dataset))  # a time of day like 02:00 or 02:00Z, else bad_value
        providers = entry.get("providers")
        if isinstance(providers, str):
            providers = [n.strip() for n in providers.split(",") if n.strip()]
        wanted = None if providers in (None, ["all"]) else _names({"providers": providers}, "providers", dataset)
        return cls(
            wanted_providers=wanted,
            every=_duration(entry, "every", dataset, DAY),
            at=None if at in (None, "") else str(at).strip(),
            slack=_duration(entry, "slack", dataset, None),
            full_every=FullEvery.parse(entry.get("full_every"), dataset),
            keep=Keep.parse(entry.get("keep"), dataset),
            max_age=_duration(entry, "max_age", dataset, None),
            drill_every=_duration(entry, "drill_every", dataset, None),
            verify_coverage=_duration(entry, "verify_coverage", dataset, None),
            snapshot_prefix=_text(entry, "snapshot_prefix", dataset) or DEFAULT_SNAPSHOT_PREFIX,
            snapshot_pattern=_text(entry, "snapshot_pattern", dataset),
            hold_base=_flag(entry, "hold_base", dataset, True),
            new_lineage=_flag(entry, "new_lineage", dataset, False),
            recursive=_flag(entry, "recursive", dataset, False),
            exclude=_names(entry, "exclude", dataset),
            prune_incomplete_after=_duration(entry, "prune_incomplete_after", dataset, 2 * DAY),
            prune_local_snapshots=_flag(entry, "prune_local_snapshots", dataset, False),
        )

    def schedule(self, dataset: str = "") -> schedule.Schedule:
        """The slots of `every` (schedule.py); a slack not shorter than every is refused here."""
        return schedule.make(self.every, self.at, self.slack, dataset)


def policy_of(config: Dict[str, Any], dataset: Optional[str]) -> DatasetPolicy:
    """The typed policy of one dataset (None: the file's defaults), without resolving providers or keys."""
    return DatasetPolicy.parse(dataset_entry(config, dataset), dataset or "defaults")


@dataclass
class DatasetSettings(DatasetPolicy):
    """Everything one operation on one dataset needs: its policy, plus providers, keys, chunking and places.

    Built by resolve.resolve() (file defaults < dataset entry < module parameters); dataset and namespace
    are always set there (their defaults only let the policy fields above come first).
    """

    dataset: str = ""
    namespace: str = ""
    providers: Dict[str, Provider] = field(default_factory=dict)
    selected: List[str] = field(default_factory=list)
    recipients: List[str] = field(default_factory=list)
    passphrase: Optional[str] = None
    chunk_size: int = DEFAULT_CHUNK_SIZE
    compression: str = "zstd"
    compression_level: int = 3
    compression_threads: Optional[int] = None  # zstd workers; None: one where there is a second core (encoder.py)
    spool: bool = True
    spool_dir: str = DEFAULT_SPOOL_DIR
    send_options: Dict[str, Any] = field(default_factory=dict)
    state_dir: str = DEFAULT_STATE_DIR
    log_dir: str = DEFAULT_LOG_DIR
    zfs: str = "zfs"
    trust: Trust = field(default_factory=Trust)  # signers, allow_unsigned, signing_key (signing.py)
    namespace_note: str = ""  # why a defaulted namespace is the 1.0 short-name one (namespaces.py)

    @property
    def spool_bound(self) -> int:
        """The most temp space a backup uses: (sum of the providers' parallel_uploads + 1) chunks plus framing.

        One send feeds every selected provider (ops/backup/spool.py); a spooled chunk stays until the slowest
        provider has it. For one provider this is (parallel_uploads + 1) chunks, as before the fan-out.
        """
        if not self.spool:
            return 0
        parallel = sum(max(1, self.providers[p].parallel_uploads) for p in self.selected) or DEFAULT_PARALLEL
        return (parallel + 1) * (self.chunk_size + self.chunk_size // 1000 + 65536)
