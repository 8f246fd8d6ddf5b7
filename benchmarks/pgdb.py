"""A benchmark's own PostgreSQL database, emptied before each run."""

from __future__ import annotations


def fresh_postgres_database(url: str) -> None:
    """Drop and create the database `url` names; it must be a benchmark's (`bench_...`)."""
    import psycopg

    base, name = url.rsplit("/", 1)
    if not name.startswith("bench_"):
        raise ValueError("the PostgreSQL database's name must start with bench_ (it is emptied)")
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
