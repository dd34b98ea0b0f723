"""Rows: the write-behind cache views write through, against a real SQLite database."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ledger.database import DatabaseUrl, Db
from projections.rows import Rows

SCHEMA = (
    "CREATE TABLE one (id TEXT PRIMARY KEY, name TEXT, n INTEGER)",
    "CREATE TABLE many (owner TEXT NOT NULL, item TEXT NOT NULL, note TEXT,"
    " PRIMARY KEY (owner, item))",
)
KEYS = {"one": ("id",), "many": ("owner", "item")}


@pytest.fixture
def db() -> Iterator[Db]:
    db = Db(DatabaseUrl.memory())
    with db.transaction() as cur:
        for statement in SCHEMA:
            cur.execute(statement)
    yield db
    db.close()


def batch(db: Db, rows: Rows, work: object) -> None:
    with db.transaction() as cur:
        rows.bind(cur)
        work(rows)  # type: ignore[operator]
        rows.flush(cur)


def stored(db: Db, table: str) -> list[tuple[object, ...]]:
    return sorted(db.execute(f"SELECT * FROM {table}"), key=repr)


def test_put_patch_and_delete_reach_the_table(db: Db) -> None:
    rows = Rows(KEYS)
    batch(db, rows, lambda r: (r.put("one", {"id": "a", "name": "A"}), r.patch("one", ("a",), n=1)))
    assert stored(db, "one") == [("a", "A", 1)]
    batch(db, rows, lambda r: r.patch("one", ("a",), name="B"))
    assert stored(db, "one") == [("a", "B", 1)]
    batch(db, rows, lambda r: r.delete("one", "a"))
    assert stored(db, "one") == []


def test_patch_of_a_missing_row_changes_nothing(db: Db) -> None:
    rows = Rows(KEYS)
    batch(db, rows, lambda r: r.patch("one", ("ghost",), n=5))
    assert stored(db, "one") == []


def test_rows_written_by_another_writer_are_read_through(db: Db) -> None:
    db.execute("INSERT INTO one VALUES ('x', 'stored', 7)")
    rows = Rows(KEYS)
    seen: list[object] = []
    batch(db, rows, lambda r: seen.append(r.get("one", "x")))
    assert seen == [{"id": "x", "name": "stored", "n": 7}]


def test_delete_then_put_again_in_one_batch_keeps_the_new_row(db: Db) -> None:
    db.execute("INSERT INTO one VALUES ('a', 'old', 1)")
    rows = Rows(KEYS)

    def work(r: Rows) -> None:
        r.delete("one", "a")
        r.put("one", {"id": "a", "name": "new"}, new=True)

    batch(db, rows, work)
    assert stored(db, "one") == [("a", "new", None)]


def test_a_new_row_deleted_in_the_same_batch_never_reaches_the_table(db: Db) -> None:
    rows = Rows(KEYS)

    def work(r: Rows) -> None:
        r.put("many", {"owner": "o", "item": "1"}, new=True)
        r.delete("many", "o", "1")

    batch(db, rows, work)
    assert stored(db, "many") == []
    assert not rows.tables["many"].deleted  # nothing was sent to the database


def test_delete_where_removes_stored_and_cached_rows_of_a_prefix(db: Db) -> None:
    db.execute("INSERT INTO many VALUES ('o', 'stored', NULL), ('p', 'kept', NULL)")
    rows = Rows(KEYS)

    def work(r: Rows) -> None:
        r.put("many", {"owner": "o", "item": "cached"})
        r.delete_where("many", "o")
        assert r.get("many", "o", "stored") is None
        r.put("many", {"owner": "o", "item": "after"})

    batch(db, rows, work)
    assert stored(db, "many") == [("o", "after", None), ("p", "kept", None)]
    batch(db, rows, lambda r: r.delete_where("many"))
    assert stored(db, "many") == []


def test_add_keeps_a_stored_row_but_for_the_least_column(db: Db) -> None:
    db.execute("INSERT INTO one VALUES ('a', 'first', 5), ('c', 'third', 5)")
    rows = Rows(KEYS)

    def work(r: Rows) -> None:
        r.add("one", {"id": "a", "name": "2nd", "n": 7}, least="n")  # stored 5 is less
        r.add("one", {"id": "b", "n": 4}, least="n")
        r.add("one", {"id": "b", "name": "later", "n": 3}, least="n")  # cached, less
        r.add("one", {"id": "c", "name": "3rd", "n": 2}, least="n")  # stored, more

    batch(db, rows, work)
    assert stored(db, "one") == [("a", "first", 5), ("b", None, 3), ("c", "third", 2)]


@pytest.mark.parametrize("order", [(1, 2, 3), (3, 1, 2), (2, 3, 1)])
def test_rows_added_in_any_order_end_the_same(db: Db, order: tuple[int, ...]) -> None:
    for n in order:  # each in a batch of its own, by a cache that forgets
        rows = Rows(KEYS)
        batch(db, rows, lambda r, n=n: r.add("one", {"id": "p", "name": "doc", "n": n}, least="n"))
    assert stored(db, "one") == [("p", "doc", 1)]


def test_prepare_completes_changed_rows_before_they_are_written(db: Db) -> None:
    rows = Rows(KEYS)
    rows.prepare["one"] = lambda row: row.update(n=len(row["name"]))
    batch(db, rows, lambda r: r.put("one", {"id": "a", "name": "four"}))
    assert stored(db, "one") == [("a", "four", 4)]


def test_forget_drops_cached_rows_so_the_table_is_read_again(db: Db) -> None:
    rows = Rows(KEYS)
    batch(db, rows, lambda r: r.put("one", {"id": "a", "name": "mine"}))
    db.execute("UPDATE one SET name = 'theirs' WHERE id = 'a'")
    seen: list[object] = []
    batch(db, rows, lambda r: seen.append(r.get("one", "a")["name"]))  # type: ignore[index]
    rows.forget()
    batch(db, rows, lambda r: seen.append(r.get("one", "a")["name"]))  # type: ignore[index]
    assert seen == ["mine", "theirs"]


def test_a_failed_batch_leaves_the_table_unchanged(db: Db) -> None:
    rows = Rows(KEYS)
    with pytest.raises(RuntimeError), db.transaction() as cur:
        rows.bind(cur)
        rows.put("one", {"id": "a"})
        rows.flush(cur)
        raise RuntimeError("boom")
    rows.forget()
    assert stored(db, "one") == []


def test_rows_beyond_the_capacity_are_forgotten_at_the_flush(db: Db) -> None:
    rows = Rows(KEYS)
    rows.capacity = 3
    batch(db, rows, lambda r: [r.put("one", {"id": str(i)}) for i in range(3)])
    assert len(rows.tables["one"].cached) == 3
    batch(db, rows, lambda r: r.put("one", {"id": "3"}))
    assert not rows.tables["one"].cached
    assert len(stored(db, "one")) == 4
