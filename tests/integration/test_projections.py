"""The read models: agreement with the log, exactly-once, rebuilds, subscriptions."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from operator import attrgetter
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from eventsourcing.persistence import Notification
from eventsourcing.projection import ApplicationSubscription

from ledger.application import Ledger
from ledger.bootstrap import open_views
from ledger.domain.context import Ctx
from ledger.domain.errors import Forbidden, NotFound
from ledger.pki import generate_private_key, make_ca, sign_csr
from ledger.profile import profile_from_policy
from ledger.worker import Worker
from projections.decode import FastMapper
from projections.projector import Projector
from projections.queries import Queries
from projections.source import EventLog, StreamShare, default_mapper
from tests.integration.conftest import PolicyFactory
from tests.unit.test_view_decode import assert_kept_texts, fields

CTX = Ctx("admin")


@pytest.fixture
def views(ledger: Ledger) -> Iterator[tuple[Projector, Queries]]:
    projector, queries = open_views(ledger)
    yield projector, queries
    projector.db.close()


def merge_outside(ledger: Ledger, name: str) -> None:
    """Sign the pending CSR with an outside CA and merge it."""
    cert = ledger.certificate(name)
    csr_der = cert.pending_version().csr_der
    assert csr_der is not None
    now = datetime.now(UTC)
    key = generate_private_key("EC", None, "P-256")
    ca = make_ca(key, "Outside CA", now=now)
    import base64

    leaf = sign_csr(
        x509.load_der_x509_csr(base64.b64decode(csr_der)),
        ca_key=key,
        ca_cert=ca,
        profile=profile_from_policy(ledger.policy_of(cert)),
        now=now,
    )
    pem = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in (leaf, ca))
    ledger.merge_certificate(CTX, name, pem)


def scenario(ledger: Ledger, make_policy: PolicyFactory, step: Any = None) -> None:
    """A history touching every view; `step()` runs after each command."""
    worker = Worker(ledger)
    tick = step or (lambda: None)
    ledger.create_certificate(
        CTX, "web", make_policy(subject="CN=web.example", dns_names=("web.example",))
    )
    tick()
    worker.drive("web")
    tick()
    ledger.create_certificate(CTX, "web", tags={"env": "prod"})
    tick()
    worker.drive("web")
    tick()
    ledger.update_certificate(CTX, "web", enabled=False)
    tick()
    ledger.create_certificate(
        CTX,
        "api",
        make_policy(
            issuer="Unknown",
            subject="CN=api.example",
            dns_names=("api.example",),
            kty="RSA",
            curve=None,
        ),
    )
    tick()
    merge_outside(ledger, "api")
    tick()
    ledger.set_issuer(CTX, "corp", provider="LocalCA")
    tick()
    ledger.create_certificate(
        CTX,
        "site",
        make_policy(issuer="corp", subject="CN=site.example", dns_names=("site.example",)),
    )
    tick()
    worker.drive("site")
    tick()
    ledger.create_certificate(CTX, "waiting", make_policy(issuer="Unknown", subject="CN=w"))
    tick()
    ledger.cancel_operation(CTX, "waiting")
    tick()
    worker.drive("waiting")
    tick()
    ledger.create_certificate(CTX, "gone", make_policy(subject="CN=gone"))
    worker.drive("gone")
    tick()
    ledger.delete_certificate(CTX, "gone")
    tick()
    ledger.set_contacts(CTX, [{"email": "ops@example.com", "name": "Ops"}])
    tick()
    ledger.create_certificate(CTX, "again", make_policy(subject="CN=again"))
    worker.drive("again")
    ledger.delete_certificate(CTX, "again")
    ledger.purge_certificate(CTX, "again")
    tick()
    ledger.create_certificate(CTX, "again", make_policy(subject="CN=again.example"))
    worker.drive("again")
    tick()


def dump(projector: Projector) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every view table, sorted."""
    tables: dict[str, list[tuple[Any, ...]]] = {}
    for view in projector.views:
        for table in view.tables:
            rows = projector.db.execute(f"SELECT * FROM {table}")
            tables[table] = sorted(rows, key=repr)
    return tables


def test_views_agree_with_the_aggregates(
    ledger: Ledger, make_policy: PolicyFactory, views: tuple[Projector, Queries]
) -> None:
    projector, queries = views
    scenario(ledger, make_policy)
    projector.catch_up()

    for name in ("web", "api", "site", "again"):
        cert = ledger.certificate(name)
        current = cert.version_of(None)
        bundle = queries.certificate(name)
        assert bundle["id"].endswith(f"/{current.version}")
        assert bundle["x5t"] == current.x5t
        assert bundle["cer"] == current.cert_der
        assert bundle["attributes"]["enabled"] == current.enabled
        assert bundle["tags"] == current.tags
        assert bundle["policy"]["issuer"] == cert.policy["issuer"]  # type: ignore[index]
        ids = [item["id"].rsplit("/", 1)[1] for item in queries.versions(name)]
        assert ids == [v.version for v in cert.completed_versions()]
        op = queries.operation(name)
        assert op["status"] == cert.require_operation().status
        key = queries.key(name)
        assert key["key"]["kid"].endswith(f"/keys/{name}/{current.version}")
        assert queries.secret(name)["contentType"] == current.content_type

    # web: two versions, the first superseded; the current one disabled, with tags.
    _, lineage = queries.lineage("web")
    assert [v["status"] for v in lineage] == ["completed", "completed"]
    assert lineage[0]["superseded_at"] is not None
    assert lineage[1]["previous_version"] == lineage[0]["version"]
    assert queries.certificate("web")["attributes"]["enabled"] is False

    # The cancelled operation, the deleted and the purged-then-recreated names.
    assert queries.operation("waiting")["status"] == "cancelled"
    with pytest.raises(NotFound):
        queries.certificate("waiting")
    with pytest.raises(NotFound):
        queries.certificate("gone")
    assert queries.deleted("gone")["recoveryId"].endswith("/deletedcertificates/gone")
    assert [d["recoveryId"].rsplit("/", 1)[1] for d in queries.list_deleted()] == ["gone"]
    _, again = queries.lineage("again")
    assert len(again) == 1  # the purged generation is not this one's lineage

    # Issuers, contacts, and the searchable inventory.
    assert queries.issuer("corp")["provider"] == "localca"
    assert queries.contacts()["contacts"] == [{"email": "ops@example.com", "name": "Ops"}]
    names = [r["name"] for r in queries.inventory()]
    assert names == ["again", "api", "site", "web"]
    assert [r["name"] for r in queries.inventory(san="API.example")] == ["api"]
    assert [r["name"] for r in queries.inventory(issuer="corp")] == ["site"]
    assert [r["name"] for r in queries.inventory(kty="RSA")] == ["api"]
    assert [r["name"] for r in queries.inventory(subject="site")] == ["site"]
    assert queries.inventory(expires_within_days=30) == []
    assert len(queries.inventory(expires_within_days=400)) == 4


@pytest.mark.parametrize("jobs", [1, 3])
def test_rebuild_gives_the_same_rows_as_the_live_views(
    ledger: Ledger, make_policy: PolicyFactory, views: tuple[Projector, Queries], jobs: int
) -> None:
    projector, _ = views
    scenario(ledger, make_policy, step=projector.catch_up)
    projector.catch_up()
    live = dump(projector)
    assert sum(len(rows) for rows in live.values()) > 30
    read = projector.rebuild(jobs=jobs)
    assert read == projector.head()
    # a rebuild leaves no rows cached (they would weigh on every later allocation)
    assert not any(t.cached for v in projector.views for t in v.rows.tables.values())
    assert dump(projector) == live
    assert {s.lag for s in projector.status()} == {0}


def test_a_policy_first_seen_is_its_earliest_use_in_whatever_order_streams_are_read(
    ledger: Ledger, make_policy: PolicyFactory, views: tuple[Projector, Queries]
) -> None:
    projector, _ = views
    policy = make_policy(subject="CN=shared")
    ledger.create_certificate(CTX, "first", policy)
    first = ledger.certificate("first").id.hex
    for i in range(30):  # until a later certificate's stream is read before the first's
        ledger.create_certificate(CTX, f"later-{i}", policy)
        if ledger.certificate(f"later-{i}").id.hex < first:
            break
    else:
        pytest.fail("no stream id sorted before the first's")
    projector.catch_up()
    live = dump(projector)
    ((seen,),) = projector.db.execute("SELECT first_seen FROM v_policies")
    registered = dict(projector.db.execute("SELECT name, created FROM v_current"))
    assert registered["first"] < seen < min(t for n, t in registered.items() if n != "first")
    projector.rebuild(jobs=1)
    assert dump(projector) == live


def test_the_views_answer_during_a_rebuild_and_catch_up_after_it(
    ledger: Ledger, make_policy: PolicyFactory, views: tuple[Projector, Queries]
) -> None:
    projector, queries = views
    scenario(ledger, make_policy)
    projector.catch_up()
    before = queries.certificate("web")
    # The left-overs of a rebuild that broke off are replaced.
    projector.db.execute("CREATE TABLE v_current__new (junk TEXT)")
    seen: list[dict[str, Any]] = []

    def midway(done: int, head: int) -> None:
        # The new tables are filled; the live views still answer, and the log moves on.
        seen.append(queries.certificate("web"))
        ledger.create_certificate(CTX, "late", make_policy(issuer="Unknown"))
        assert projector.catch_up() > 0  # the live views follow it meanwhile

    projector.rebuild(jobs=1, progress=midway)
    assert seen == [before]
    assert projector.positions()["current"] < projector.head()  # the rebuild's position
    projector.catch_up()
    assert queries.operation("late")["status"] == "inProgress"
    live = dump(projector)
    projector.rebuild(jobs=1)
    assert dump(projector) == live
    tables = {t for v in projector.views for t in v.tables}
    left = [
        name
        for (name,) in projector.db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'"
            if projector.db.url.is_sqlite
            else "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
        )
        if name.endswith(("__new", "__old"))
    ]
    assert left == [] and tables
    assert projector.db.execute("SELECT COUNT(*) FROM v_rebuilding") == [(0,)]


def test_the_event_log_reads_what_the_recorder_reads(
    ledger: Ledger, make_policy: PolicyFactory, views: tuple[Projector, Queries]
) -> None:
    projector, _ = views
    scenario(ledger, make_policy)
    log = EventLog(projector.db)
    mapper = default_mapper()
    assert log.max_notification_id() == ledger.recorder.max_notification_id()
    ours = log.select_notifications(3, 1000)
    theirs = ledger.recorder.select_notifications(start=3, limit=1000)
    assert len(ours) == len(theirs) > 30
    assert ours == theirs
    quick = FastMapper(mapper)
    for n in ours:
        expected = vars(ledger.mapper.to_domain_event(n))
        assert vars(mapper.to_domain_event(n)) == expected
        fast_event = quick.to_domain_event(n)
        assert type(fast_event) is type(ledger.mapper.to_domain_event(n))
        assert fields(fast_event) == expected
        assert [type(v) for v in fields(fast_event).values()] == [
            type(v) for v in expected.values()
        ]
        assert_kept_texts(fast_event)


def read_share(share: StreamShare, batch: int) -> list[Notification]:
    found: list[Notification] = []
    while chunk := share.select_notifications(len(found) + 1, batch):
        found.extend(chunk)
    return found


@pytest.mark.parametrize("n", [1, 2, 3, 16])
def test_the_log_shared_out_by_stream_is_the_whole_log_once(
    ledger: Ledger, make_policy: PolicyFactory, views: tuple[Projector, Queries], n: int
) -> None:
    projector, _ = views
    scenario(ledger, make_policy)
    whole = EventLog(projector.db).select_notifications(1, 10_000)
    until = whole[-3].id
    logs = [StreamShare(projector.db, until=until, share=(k, n)) for k in range(n)]
    shares = [read_share(log, batch=7) for log in logs]
    key = attrgetter("originator_id", "originator_version", "topic", "state")
    assert sorted(map(key, whole[:-2])) == sorted(key(e) for s in shares for e in s)
    for log, share in zip(logs, shares, strict=True):
        assert [e.id for e in share] == list(range(1, len(share) + 1))
        assert log.max_notification_id() == len(share)
        streams = [e.originator_id for e in share]
        # each stream's events together, in order
        assert len(set(streams)) == len([s for s, _ in itertools.groupby(streams)])
        assert [(e.originator_id, e.originator_version) for e in share] == sorted(
            (e.originator_id, e.originator_version) for e in share
        )
    streams_of = [{e.originator_id for e in share} for share in shares]
    assert sum(len(s) for s in streams_of) == len(set().union(*streams_of))  # one share each
    assert sum(1 for s in streams_of if s) >= min(n, 2), "the streams are spread out"
    some = next(k for k, share in enumerate(shares) if share)
    again = StreamShare(projector.db, until=until, share=(some, n))
    assert again.select_notifications(1, 5)
    with pytest.raises(ValueError, match="read once, in order"):
        again.select_notifications(1, 5)
    with pytest.raises(ValueError, match="share 2 of 2"):
        StreamShare(projector.db, until=until, share=(2, 2))


def test_one_view_rebuilds_alone(
    ledger: Ledger, make_policy: PolicyFactory, views: tuple[Projector, Queries]
) -> None:
    projector, _ = views
    scenario(ledger, make_policy)
    projector.catch_up()
    live = dump(projector)
    projector.db.execute("DELETE FROM v_inventory")
    projector.rebuild(["inventory"])
    assert dump(projector) == live
    with pytest.raises(ValueError, match="unknown view"):
        projector.rebuild(["nope"])


@pytest.mark.parametrize("older", ["revision 1", "no revisions table"])
def test_a_view_stored_at_an_older_revision_is_rebuilt(
    ledger: Ledger, make_policy: PolicyFactory, views: tuple[Projector, Queries], older: str
) -> None:
    projector, _ = views
    scenario(ledger, make_policy)
    projector.catch_up()
    live = dump(projector)
    projector.db.execute("DELETE FROM v_lineage_heads")  # as a ledger from before heads
    if older == "revision 1":
        projector.db.execute("UPDATE v_revisions SET revision = 1 WHERE view = 'lineage'")
    else:
        projector.db.execute("DROP TABLE v_revisions")
    again = Projector(ledger.settings.database.connect(), ledger.recorder, ledger.mapper)
    try:
        positions = again.positions()
        assert positions["lineage"] == 0
        assert positions["current"] == projector.head()
        again.catch_up()
        assert dump(again) == live
    finally:
        again.db.close()


def test_concurrent_projectors_apply_each_event_once(
    ledger: Ledger, make_policy: PolicyFactory, views: tuple[Projector, Queries]
) -> None:
    projector, _ = views
    scenario(ledger, make_policy)
    others = [
        Projector(ledger.settings.database.connect(), ledger.recorder, ledger.mapper)
        for _ in range(3)
    ]
    errors: list[BaseException] = []

    def run(p: Projector) -> None:
        try:
            for _ in range(3):
                p.catch_up(batch_size=7)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(p,)) for p in others]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Conflicting batches may fail and retry; the end state must be exact.
    for p in others:
        p.catch_up()
    concurrent = dump(projector)
    projector.rebuild()
    assert dump(projector) == concurrent
    for p in others:
        p.db.close()
    assert all("locked" in str(e).lower() or "serializ" in str(e).lower() for e in errors), errors


def test_read_your_writes(
    ledger: Ledger, make_policy: PolicyFactory, views: tuple[Projector, Queries]
) -> None:
    projector, queries = views
    ledger.create_certificate(CTX, "fresh", make_policy(subject="CN=fresh"))
    assert projector.wait_for(projector.head(), timeout=5)
    assert queries.operation("fresh")["status"] == "inProgress"


def test_subscription_follows_new_events(ledger: Ledger, make_policy: PolicyFactory) -> None:
    start = ledger.recorder.max_notification_id() or 0
    with ApplicationSubscription(ledger, gt=start) as subscription:
        ledger.create_certificate(CTX, "sub", make_policy(subject="CN=sub"))
        names = [type(next(subscription)[0]).__name__ for _ in range(5)]
    assert names == [
        "Registered",
        "PolicyReplaced",
        "OperationOpened",
        "KeyPairCreated",
        "CsrIssued",
    ]


def test_follower_keeps_views_current(
    ledger: Ledger, make_policy: PolicyFactory, views: tuple[Projector, Queries]
) -> None:
    projector, queries = views
    follower = Projector(ledger.settings.database.connect(), ledger.recorder, ledger.mapper)
    stop = threading.Event()
    thread = threading.Thread(target=follower.follow, args=(stop, 0.01))
    thread.start()
    try:
        ledger.create_certificate(CTX, "followed", make_policy(subject="CN=followed"))
        head = projector.head()
        for _ in range(500):
            if min(projector.positions().values()) >= head:
                break
            stop.wait(0.01)
        assert min(projector.positions().values()) >= head
        assert queries.operation("followed")["status"] == "inProgress"
    finally:
        stop.set()
        thread.join()
        follower.db.close()


def test_a_version_created_disabled_comes_out_disabled(
    ledger: Ledger, make_policy: PolicyFactory, views: tuple[Projector, Queries]
) -> None:
    projector, queries = views
    ledger.create_certificate(CTX, "off", make_policy(), enabled=False)
    cert = Worker(ledger).drive("off")
    current = cert.versions[cert.current or ""]
    assert not current.enabled
    # Promotion and the disabling are one commit: the version was never enabled.
    events = [
        ledger.mapper.to_domain_event(n)
        for n in ledger.recorder.select_notifications(start=1, limit=1000)
    ]
    names = [type(e).__name__ for e in events if e.originator_id == cert.id]
    assert names[-2:] == ["VersionPromoted", "AttributesUpdated"]
    assert events[-1].enabled is False and events[-1].actor == "certledger-worker"
    with pytest.raises(Forbidden):
        ledger.secret_value(CTX, "off")
    projector.catch_up()
    assert queries.certificate("off")["attributes"]["enabled"] is False
    assert queries.key("off")["attributes"]["enabled"] is False

    ledger.update_certificate(CTX, "off", enabled=True)
    assert ledger.secret_value(CTX, "off")[1].version == current.version
    ledger.create_certificate(CTX, "off")  # a later create without attributes: enabled
    assert Worker(ledger).drive("off").versions[ledger.certificate("off").current or ""].enabled
