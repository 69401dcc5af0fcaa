"""Templates in the store, on both engines: seeded built-ins, immutable versions, archiving, and pinned batches."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest
import sqlalchemy as sa
from people import person

from core.auth import Role, acting_as
from core.batches.service import create_batch
from core.batches.worker import BatchWorker
from core.errors import NotFoundError, ValidationError
from core.store.schema import (
    audit_events,
    batch_items,
    batch_jobs,
    conversations,
    template_versions,
    templates,
)
from core.templates import EdgeCase, TemplateContent, TemplateInvalid
from core.templates.builtin import BUILTINS
from core.templates.store import (
    archive_template,
    get_template,
    list_templates,
    save_template,
    template_history,
    usage_counts,
)

SANDBOX = {"seed": 5, "latency_ms": 0, "tokens_per_s": 200_000.0}
SANDBOX_ENV = {"STUDIO_WORKER_POLL_INTERVAL_S": "0.1", "STUDIO_RATE_LIMIT_RPM": "100000",
               "STUDIO_RATE_LIMIT_INPUT_TPM": "100000000", "STUDIO_RATE_LIMIT_OUTPUT_TPM": "100000000"}


def _claim(**changes) -> TemplateContent:
    base = TemplateContent(
        title="Insurance claim", description="A policyholder reports a claim.",
        system_prompt="You are a claims handler at Harbor Mutual. Version one.",
        user_template="The policyholder is {persona}, feels {emotion}, calls about {topic} and is {customer}. "
                      "The conversation has {turns} messages.",
        variables={"persona": ("a farmer", "a nurse"), "emotion": ("worried", "calm"),
                   "topic": ("a flooded barn",), "customer": ("a long-time customer", "a new customer")},
        edge_cases=(EdgeCase("switches language", "Halfway through, {persona} switches to Spanish.", 1),
                    EdgeCase("plain", "Nothing unusual happens.", 1)))
    return replace(base, **changes)


def _count(engine, table) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def test_the_migration_seeds_the_six_builtins_as_version_1(engine):
    """Every built-in is stored as version 1, with exactly the code's content and no author."""
    stored = {t.name: t for t in list_templates(engine)}
    assert set(stored) == set(BUILTINS)
    for slug, builtin in BUILTINS.items():
        assert (stored[slug].version, stored[slug].content, stored[slug].created_by) == (1, builtin.content, None)
        assert stored[slug].id == builtin.id


def test_every_save_is_a_new_version_and_old_versions_stay_as_they_were(engine):
    """Saving twice makes versions 1 and 2; version 1 still reads as saved; saving the same content makes none."""
    first = save_template(engine, "insurance_claim", _claim())
    second = save_template(engine, "insurance_claim", _claim(system_prompt="You are a claims handler. Version two."))
    again = save_template(engine, "insurance_claim", _claim(system_prompt="You are a claims handler. Version two."))
    assert (first.version, second.version, again.version) == (1, 2, 2)
    assert get_template(engine, "insurance_claim", 1).system_prompt.endswith("Version one.")
    assert get_template(engine, "insurance_claim").version == 2
    assert [t.version for t in template_history(engine, "insurance_claim")] == [1, 2]


def test_an_invalid_save_writes_nothing_and_the_previous_version_stays_in_force(engine):
    """A template that breaks a rule is refused with its problems; the latest version is unchanged."""
    save_template(engine, "insurance_claim", _claim())
    before = (_count(engine, templates), _count(engine, template_versions), _count(engine, audit_events))
    with pytest.raises(TemplateInvalid) as info:
        save_template(engine, "insurance_claim", _claim(user_template="{persona} {emotion} {topic} {custmer}"))
    assert info.value.problems[0].message == "`{custmer}` is not a variable of this template — did you mean `{customer}`?"
    assert (_count(engine, templates), _count(engine, template_versions), _count(engine, audit_events)) == before
    assert get_template(engine, "insurance_claim").version == 1


def test_a_save_from_a_stale_version_is_refused(engine):
    """An edit that began at version 1 cannot overwrite a version 2 saved meanwhile."""
    save_template(engine, "insurance_claim", _claim())
    save_template(engine, "insurance_claim", _claim(title="Claims"), based_on=1)
    with pytest.raises(ValidationError) as info:
        save_template(engine, "insurance_claim", _claim(title="Claims desk"), based_on=1)
    assert "Version 2 of 'insurance_claim' was saved after you began this edit" in info.value.user_message


def test_each_version_records_its_author_and_each_save_one_audit_row(engine):
    """A version carries who saved it; every save writes one audit row in its transaction."""
    ana = person(engine, "ana@example.com")
    with acting_as(ana):
        saved = save_template(engine, "insurance_claim", _claim())
    assert saved.created_by == ana.user_id == get_template(engine, "insurance_claim").created_by
    with engine.connect() as conn:
        rows = conn.execute(sa.select(audit_events.c.action, audit_events.c.actor_id)
                            .where(audit_events.c.target_kind == "template")).all()
    assert rows == [("template.save", ana.user_id)]


def test_only_the_author_of_the_latest_version_or_an_admin_archives(engine):
    """Another analyst is told the template does not exist; its author archives it; an admin may archive a built-in."""
    ana, bo = person(engine, "ana@example.com"), person(engine, "bo@example.com")
    boss = person(engine, "boss@example.com", Role.ADMIN)
    with acting_as(ana):
        save_template(engine, "insurance_claim", _claim())
    with acting_as(bo), pytest.raises(NotFoundError) as info:
        archive_template(engine, "insurance_claim")
    assert "no template named 'insurance_claim'" in info.value.user_message
    with acting_as(bo), pytest.raises(NotFoundError):
        archive_template(engine, "tutoring")  # a built-in has no author: only admins
    with acting_as(ana):
        assert archive_template(engine, "insurance_claim").archived
    with acting_as(boss):
        assert archive_template(engine, "tutoring").archived
    names = [t.name for t in list_templates(engine)]
    assert "insurance_claim" not in names and "tutoring" not in names
    assert {t.name for t in list_templates(engine, include_archived=True)} >= {"insurance_claim", "tutoring"}
    with engine.connect() as conn:
        archives = conn.execute(sa.select(sa.func.count()).select_from(audit_events)
                                .where(audit_events.c.action == "template.archive")).scalar_one()
    assert archives == 2


def test_an_archived_template_starts_no_batch_and_takes_no_new_version(engine):
    """Archived: create_batch and save refuse it; its versions stay readable."""
    save_template(engine, "insurance_claim", _claim())
    archive_template(engine, "insurance_claim")
    with pytest.raises(ValidationError) as info:
        create_batch(engine, template="insurance_claim", count=2)
    assert info.value.field == "template" and "archived" in info.value.user_message
    with pytest.raises(ValidationError):
        save_template(engine, "insurance_claim", _claim(title="Again"))
    assert get_template(engine, "insurance_claim", 1).title == "Insurance claim"


def test_a_batch_keeps_generating_from_the_version_it_started_with(engine, sandbox):
    """Edited after the batch was created, the template's new text reaches none of the batch's conversations."""
    save_template(engine, "insurance_claim", _claim())
    bid = create_batch(engine, template="insurance_claim", count=4, turns=4)
    save_template(engine, "insurance_claim", _claim(system_prompt="You are someone else entirely. Version two."))
    assert asyncio.run(BatchWorker(engine, concurrency=2).run(once=True)) == 0
    with engine.connect() as conn:
        config = conn.execute(sa.select(batch_jobs.c.config).where(batch_jobs.c.id == bid)).scalar_one()
        rows = conn.execute(sa.select(conversations.c.system_prompt, conversations.c.params)
                            .where(conversations.c.batch_id == bid)).all()
    assert config["template_version"] == 1
    assert len(rows) == 4
    assert {r.system_prompt for r in rows} == {"You are a claims handler at Harbor Mutual. Version one."}
    assert {r.params["template_version"] for r in rows} == {1}
    later = create_batch(engine, template="insurance_claim", count=1, turns=4)
    with engine.connect() as conn:
        assert conn.execute(sa.select(batch_jobs.c.config).where(batch_jobs.c.id == later)
                            ).scalar_one()["template_version"] == 2


def test_a_balanced_batch_covers_every_value_and_edge_case_cell_evenly(engine):
    """20 balanced items over 2 personas x 2 emotions x 2 customers x 2 edge cases: every one of the 16 cells once or twice."""
    save_template(engine, "insurance_claim", _claim())
    bid = create_batch(engine, template="insurance_claim", count=20, coverage="balanced", turns=4)
    with engine.connect() as conn:
        params = [r[0] for r in conn.execute(sa.select(batch_items.c.params).where(batch_items.c.batch_id == bid))]
    cells: dict[tuple[str, ...], int] = {}
    for p in params:
        key = (p["persona"], p["emotion"], p["variables"]["customer"], p["edge_case"])
        cells[key] = cells.get(key, 0) + 1
    assert len(cells) == 16 and max(cells.values()) - min(cells.values()) <= 1


def test_a_csv_may_name_a_custom_variable_as_a_column(engine):
    """A CSV row's custom-variable value goes into its item; an empty cell takes the first suggestion."""
    from core.batches.csv_import import parse_csv

    save_template(engine, "insurance_claim", _claim())
    rows = parse_csv(b"persona,emotion,topic,customer\na,b,c,a VIP\nd,e,f,\n", variables=("customer",))
    bid = create_batch(engine, template="insurance_claim", rows=rows, turns=4)
    with engine.connect() as conn:
        params = [r[0] for r in conn.execute(sa.select(batch_items.c.params).where(batch_items.c.batch_id == bid)
                                             .order_by(batch_items.c.item_index))]
    assert [p.get("variables") for p in params] == [{"customer": "a VIP"}, None]


def test_usage_counts_say_how_many_batches_and_conversations_a_template_made(engine):
    """Counts per template slug, from the batches and conversations the actor may see."""
    save_template(engine, "insurance_claim", _claim())
    create_batch(engine, template="insurance_claim", count=2)
    assert usage_counts(engine)["insurance_claim"] == {"batches": 1, "conversations": 0}


@pytest.fixture
def pg_engine(pg_databases, monkeypatch):
    """A migrated Postgres database only (Row Level Security has no SQLite twin)."""
    from core.config import reload_settings
    from core.store import create_store_engine, reset_engine

    url = pg_databases.new(migrated=True)
    monkeypatch.setenv("DATABASE_URL", url)
    reload_settings()
    reset_engine()
    eng = create_store_engine(url)
    yield eng
    eng.dispose()


@pytest.mark.postgres
def test_row_level_security_keeps_versions_immutable_and_archive_to_the_author(pg_engine):
    """On Postgres, a person cannot update a version, nor archive someone else's template, even by raw SQL."""
    engine = pg_engine
    ana, bo = person(engine, "ana@example.com"), person(engine, "bo@example.com")
    with acting_as(ana):
        save_template(engine, "insurance_claim", _claim())
    with acting_as(bo):
        with pytest.raises(sa.exc.ProgrammingError), engine.begin() as conn:
            conn.execute(template_versions.update().values(content={}))
        with engine.begin() as conn:
            changed = conn.execute(templates.update().where(templates.c.slug == "insurance_claim")
                                   .values(archived=True)).rowcount
        assert changed == 0
        with pytest.raises(sa.exc.ProgrammingError), engine.begin() as conn:  # a version as someone else
            conn.execute(template_versions.insert().values(
                id="00000000-0000-0000-0000-000000000001", template_id=get_template(engine, "insurance_claim").template_id,
                version=9, content={}, created_by=ana.user_id))
    with acting_as(ana), engine.begin() as conn:
        assert conn.execute(templates.update().where(templates.c.slug == "insurance_claim")
                            .values(archived=True)).rowcount == 1



def test_the_coverage_grid_counts_items_and_done_items_per_cell(engine, sandbox):
    """batch_coverage counts per persona x emotion x topic, per edge case and per custom value, done ones apart."""
    from core.templates.grid import batch_coverage

    save_template(engine, "insurance_claim", _claim())
    bid = create_batch(engine, template="insurance_claim", count=8, coverage="balanced", turns=4)
    before = batch_coverage(engine, bid)
    assert sum(n for n, _d in before.cells.values()) == 8 and before.thinnest == 2
    assert set(before.cells) == {(p, e, "a flooded barn") for p in ("a farmer", "a nurse") for e in ("worried", "calm")}
    assert before.edge_cases == {"switches language": (4, 0), "plain": (4, 0)}
    assert before.variables == {"customer": {"a long-time customer": (4, 0), "a new customer": (4, 0)}}
    assert asyncio.run(BatchWorker(engine, concurrency=2).run(once=True)) == 0
    after = batch_coverage(engine, bid)
    assert all(done == n for n, done in after.cells.values())
    with pytest.raises(NotFoundError):
        batch_coverage(engine, "no-such-batch")


@pytest.mark.parametrize("action", ["save", "archive"])
def test_an_action_that_fails_after_its_write_leaves_no_version_archive_or_audit_row(engine, monkeypatch, action):
    """Save and archive write their row and their audit row in one transaction: a failure after both keeps neither."""
    import core.auth.audit as audit_module

    save_template(engine, "insurance_claim", _claim())
    real = audit_module.audit

    def audit_then_fail(*args, **kwargs):
        real(*args, **kwargs)
        raise RuntimeError("the transaction fails after the audit row")

    before = (_count(engine, template_versions), _count(engine, audit_events))
    monkeypatch.setattr(audit_module, "audit", audit_then_fail)
    with pytest.raises(Exception, match="fails after the audit row"):
        if action == "save":
            save_template(engine, "insurance_claim", _claim(title="Claims"))
        else:
            archive_template(engine, "insurance_claim")
    assert (_count(engine, template_versions), _count(engine, audit_events)) == before
    assert not get_template(engine, "insurance_claim").archived


def test_two_saves_at_the_same_moment_do_not_both_become_the_same_version(engine, monkeypatch):
    """A save that read the latest version just before another save wrote the next one is refused, not an error."""
    import core.templates.store as store

    first = save_template(engine, "insurance_claim", _claim())
    save_template(engine, "insurance_claim", _claim(title="Claims"))
    real_read = store._read
    monkeypatch.setattr(store, "_read", lambda conn, slug, version: first if version is None else
                        real_read(conn, slug, version))  # what it read before the other save committed
    with pytest.raises(ValidationError) as info:
        save_template(engine, "insurance_claim", _claim(title="Claims desk"))
    assert "at the same moment" in info.value.user_message
    monkeypatch.undo()
    assert [t.title for t in template_history(engine, "insurance_claim")] == ["Insurance claim", "Claims"]


@pytest.mark.postgres
def test_generation_reads_its_template_version_whoever_its_thread_acts_as(pg_engine):
    """resolve() reads as the system (a generation thread may carry no person); listing still needs a person."""
    from core.auth import ANONYMOUS
    from core.templates.store import forget_cache, resolve

    forget_cache()
    with acting_as(ANONYMOUS):
        assert resolve("tutoring", 1, engine=pg_engine).title == "Tutoring"
        with pytest.raises(NotFoundError):
            list_templates(pg_engine)
