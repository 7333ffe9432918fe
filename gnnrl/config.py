"""Typed, JSON-serialisable configuration dataclasses.

Every concern has one config object (`SimConfig`, `DynamicGraphConfig`, `TGNConfig`,
`PPOConfig`, `ScalerConfig`, ...). They validate in ``__post_init__`` and round-trip through
JSON so that a model carries the config it was trained with.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
import typing
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T", bound="JsonConfig")


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the field."""


@dataclasses.dataclass
class JsonConfig:
    """Mixin: ``to_dict`` / ``from_dict`` / ``to_json`` / ``from_json`` for flat dataclasses.

    Nested dataclass fields and tuples are supported. Unknown keys are an error, so a typo
    in a config file is caught instead of silently ignored.
    """

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls: type[T], data: dict[str, Any]) -> T:
        if not isinstance(data, dict):
            raise ConfigError(f"{cls.__name__}: expected a mapping, got {type(data).__name__}")
        hints = typing.get_type_hints(cls)
        names = {f.name for f in dataclasses.fields(cls) if f.init}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(f"{cls.__name__}: unknown field(s) {', '.join(unknown)}")
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            hint = hints.get(key)
            if (isinstance(hint, type) and dataclasses.is_dataclass(hint)
                    and isinstance(value, dict)):
                value = hint.from_dict(value) if issubclass(hint, JsonConfig) else hint(**value)
            elif isinstance(value, list) and typing.get_origin(hint) is tuple:
                value = tuple(value)
            kwargs[key] = value
        return cls(**kwargs)

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, sort_keys=True)

    @classmethod
    def from_json(cls: type[T], text: str) -> T:
        return cls.from_dict(json.loads(text))

    def replace(self: T, **changes: Any) -> T:
        return dataclasses.replace(self, **changes)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically: temp file in the same folder, fsync, rename.

    A reader never sees a half-written file, and a failure leaves the previous file intact.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            # mkstemp creates 0600; give the file the mode a plain open() would (0666 & ~umask)
            # so that models and reports stay readable by e.g. a scaler running as another user.
            umask = os.umask(0)
            os.umask(umask)
            os.fchmod(fh.fileno(), 0o666 & ~umask)
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """`atomic_write_bytes` for UTF-8 text."""
    atomic_write_bytes(path, text.encode("utf-8"))
