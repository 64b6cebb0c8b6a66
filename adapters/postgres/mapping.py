"""Rows <-> domain entities, by the entities' own attrs fields.

Columns carry the fields' names except where SQL reserves the word (``start``, ``end``, ``user``);
enums are stored as their values. A field added to an entity maps without touching this file, and
the migration test catches a table that lacks its column.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any, Generic, TypeVar

import attrs
import sqlalchemy as sa

from domain.jobs import (
    Feedback,
    Job,
    JobStatus,
    ModelStatus,
    ModelVersion,
    StoredClip,
    TrainingRun,
    TrainingStatus,
    Video,
)

E = TypeVar("E")


@attrs.frozen
class RowMapping(Generic[E]):
    entity: type[E]
    columns: Mapping[str, str] = attrs.field(factory=dict)  # field -> column, where they differ
    enums: Mapping[str, type[enum.Enum]] = attrs.field(factory=dict)  # field -> its enum

    def values(self, item: E) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for field in attrs.fields(self.entity):  # type: ignore[arg-type]  # E is always an attrs class
            value = getattr(item, field.name)
            out[self.columns.get(field.name, field.name)] = (
                value.value if isinstance(value, enum.Enum) else value
            )
        return out

    def entity_of(self, row: sa.Row[Any]) -> E:
        data = row._mapping
        kwargs: dict[str, Any] = {}
        for field in attrs.fields(self.entity):  # type: ignore[arg-type]  # see values()
            value = data[self.columns.get(field.name, field.name)]
            kind = self.enums.get(field.name)
            kwargs[field.name] = kind(value) if kind is not None else value
        return self.entity(**kwargs)


VIDEOS = RowMapping(Video)
JOBS = RowMapping(Job, enums={"status": JobStatus})
CLIPS = RowMapping(StoredClip, columns={"start": "start_seconds", "end": "end_seconds"})
FEEDBACK = RowMapping(Feedback, columns={"user": "rater"})
MODELS = RowMapping(ModelVersion, enums={"status": ModelStatus})
RUNS = RowMapping(TrainingRun, enums={"status": TrainingStatus})
