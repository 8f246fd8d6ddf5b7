"""Many rows of one model written with one prepared statement (`executemany`).

The record writer inserts every live call's playout log and the review
updates every ended call's summary, hundreds of rows a second at 100 calls.
`bulk_create` builds a model instance per row and compiles its INSERT anew
each time; `bulk_update` compiles a CASE WHEN per field and row. Here the
statement is written once per shape and each row is only its values,
prepared for the database by the model's own fields (`get_db_prep_save`:
JSON, time zones and foreign keys as the ORM writes them).

No signals are sent and no instances are made (as with `bulk_create` and
`update`), and a field not named gets the column's own default, not the
model's: name every field that has no database default. Callers run inside
the transaction they want.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from django.db import connection, models


def _fields(model: type[models.Model], names: Sequence[str]) -> list[Any]:
    return [model._meta.get_field(name) for name in names]


def _prepared(fields: Sequence[Any], values: Sequence[Any]) -> list[Any]:
    return [
        field.get_db_prep_save(value, connection)
        for field, value in zip(fields, values, strict=True)
    ]


def _execute_many(sql: str, params: list[list[Any]]) -> None:
    if params:
        with connection.cursor() as cursor:
            cursor.executemany(sql, params)


def insert_rows(
    model: type[models.Model], names: Sequence[str], rows: Iterable[Sequence[Any]]
) -> None:
    """INSERT `rows` (values in the order of the fields `names`) into `model`'s table."""
    fields = _fields(model, names)
    quote = connection.ops.quote_name
    sql = "INSERT INTO {} ({}) VALUES ({})".format(
        quote(model._meta.db_table),
        ", ".join(quote(field.column) for field in fields),
        ", ".join(["%s"] * len(fields)),
    )
    _execute_many(sql, [_prepared(fields, row) for row in rows])


def update_rows(
    model: type[models.Model], names: Sequence[str], rows: Iterable[tuple[Any, Sequence[Any]]]
) -> None:
    """UPDATE the rows of `model` whose primary key each `(pk, values)` names; `values`
    are in the order of the fields `names`."""
    if not names:
        return  # nothing to set (as `update()` with no fields)
    fields = _fields(model, names)
    pk = model._meta.pk
    assert pk is not None
    quote = connection.ops.quote_name
    sql = "UPDATE {} SET {} WHERE {} = %s".format(
        quote(model._meta.db_table),
        ", ".join(f"{quote(field.column)} = %s" for field in fields),
        quote(pk.column),
    )
    _execute_many(
        sql,
        [
            [*_prepared(fields, values), pk.get_db_prep_save(key, connection)]
            for key, values in rows
        ],
    )
