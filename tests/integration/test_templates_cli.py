"""`python -m core templates ...`, and the commands that take --template NAME, with a template stored as data."""

from __future__ import annotations

import json

import sqlalchemy as sa
from cli_runner import run_cli
from people import person

from core.auth import Role
from core.store.schema import batch_items, conversations, template_versions, templates
from core.templates.builtin import BUILTINS
from core.templates.yaml_io import HEADER

SANDBOX = {"seed": 9, "latency_ms": 0, "tokens_per_s": 200_000.0}
SANDBOX_ENV = {"STUDIO_WORKER_POLL_INTERVAL_S": "0.1"}

CLAIM = """name: insurance_claim
title: Insurance claim
description: A policyholder reports a claim.
system_prompt: You are a claims handler at Harbor Mutual.
user_template: |-
  The policyholder is {persona}, feels {emotion}, calls about {topic} and is {customer}.
  The conversation has {turns} messages.
variables:
  persona:
  - a farmer
  - a nurse
  emotion:
  - worried
  topic:
  - a flooded barn
  customer:
  - a long-time customer
  - a new customer
edge_cases:
- name: switches language
  instruction: Halfway through, {persona} switches to Spanish.
  weight: 1
turns:
  min: 2
  max: 12
model: null
max_tokens: null
"""


def _count(engine, table) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def _import(tmp_path, text: str, name: str = "claim.yaml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return run_cli(["templates", "import", str(path)])


def test_import_then_export_is_byte_identical_and_a_second_import_changes_nothing(engine, tmp_path):
    """A file in the documented form imports as version 1; exported, it is the same bytes; imported again, no version."""
    text = HEADER + CLAIM
    first = _import(tmp_path, text)
    assert first.returncode == 0 and first.stdout.strip() == "imported insurance_claim as version 1"
    out = tmp_path / "out.yaml"
    assert run_cli(["templates", "export", "insurance_claim", "--out", str(out)]).returncode == 0
    assert out.read_bytes() == text.encode("utf-8")
    again = _import(tmp_path, out.read_text(encoding="utf-8"), "again.yaml")
    assert again.returncode == 0 and "unchanged" in again.stdout
    assert _count(engine, template_versions) == len(BUILTINS) + 1


def test_an_invalid_import_exits_2_naming_the_field_and_saves_nothing(engine, tmp_path):
    """A file with a misspelt placeholder exits 2 with the field and reason; no row is written."""
    before = (_count(engine, templates), _count(engine, template_versions))
    bad = _import(tmp_path, CLAIM.replace("is {customer}", "is {custmer}"))
    assert bad.returncode == 2
    assert (f"{tmp_path / 'claim.yaml'}: user_template: `{{custmer}}` is not a variable of this template — did you "
            "mean `{customer}`?") in bad.stderr
    assert "nothing was imported." in bad.stderr
    assert (_count(engine, templates), _count(engine, template_versions)) == before


def test_a_changed_file_imports_as_the_next_version_and_show_prints_either(engine, tmp_path):
    """Importing an edit makes version 2; show prints the latest, --version 1 the first."""
    _import(tmp_path, CLAIM)
    assert _import(tmp_path, CLAIM.replace("Harbor Mutual", "Lakeside Mutual"), "v2.yaml").stdout.strip() == \
        "imported insurance_claim as version 2"
    latest = run_cli(["templates", "show", "insurance_claim"])
    first = run_cli(["templates", "show", "insurance_claim", "--version", "1"])
    assert latest.stdout.startswith("# version 2 of 2, saved by ") and "Lakeside Mutual" in latest.stdout
    assert first.stdout.startswith("# version 1 of 2") and "Harbor Mutual" in first.stdout


def test_list_json_has_every_template_with_its_version_variables_and_usage(engine, tmp_path):
    """templates list --json: the built-ins and the imported one, with custom variables and counts."""
    _import(tmp_path, CLAIM)
    rows = {r["name"]: r for r in json.loads(run_cli(["templates", "list", "--json"]).stdout)}
    assert set(rows) == {*BUILTINS, "insurance_claim"}
    claim = rows["insurance_claim"]
    assert (claim["version"], claim["variables"], claim["edge_cases"], claim["batches"]) == (
        1, ["persona", "emotion", "topic", "customer"], ["switches language"], 0)
    assert rows["tutoring"]["author"] == "built-in"


def test_archive_needs_the_author_or_an_admin_and_hides_the_template(engine, tmp_path):
    """Someone else archiving is 'not found' (exit 1); the author archives; list leaves it out, --all shows it."""
    person(engine, "ana@example.com")
    person(engine, "bo@example.com")
    path = tmp_path / "claim.yaml"
    path.write_text(CLAIM, encoding="utf-8")
    assert run_cli(["templates", "import", str(path)], env={"STUDIO_USER": "ana@example.com"}).returncode == 0
    refused = run_cli(["templates", "archive", "insurance_claim"], env={"STUDIO_USER": "bo@example.com"})
    assert refused.returncode == 1 and "no template named 'insurance_claim'" in refused.stderr
    done = run_cli(["templates", "archive", "insurance_claim"], env={"STUDIO_USER": "ana@example.com"})
    assert done.returncode == 0
    listed = run_cli(["templates", "list", "--json"]).stdout
    assert "insurance_claim" not in listed
    assert "insurance_claim" in run_cli(["templates", "list", "--all", "--json"]).stdout
    person(engine, "boss@example.com", Role.ADMIN)
    assert run_cli(["templates", "archive", "tutoring"], env={"STUDIO_USER": "boss@example.com"}).returncode == 0


def test_generate_batch_create_and_export_take_a_stored_template(engine, tmp_path, sandbox):
    """generate, batch create (balanced, a custom variable's values) and conversations export all accept the name."""
    _import(tmp_path, CLAIM)
    gen = run_cli(["generate", "--template", "insurance_claim", "--var", "customer=a VIP", "--edge-case",
                   "switches language", "--turns", "4", "--json"])
    assert gen.returncode == 0, gen.stderr
    params = json.loads(gen.stdout)["params"]
    assert (params["template_version"], params["variables"], params["edge_case"]) == (
        1, {"customer": "a VIP"}, "switches language")
    made = run_cli(["batch", "create", "--template", "insurance_claim", "--count", "4", "--turns", "4",
                    "--coverage", "balanced", "--var", "customer=new,old"])
    assert made.returncode == 0, made.stderr
    bid = made.stdout.strip()
    with engine.connect() as conn:
        customers = sorted(r[0]["variables"]["customer"] for r in conn.execute(
            sa.select(batch_items.c.params).where(batch_items.c.batch_id == bid)))
    assert customers == ["new", "new", "old", "old"]
    assert run_cli(["worker", "--once"]).returncode == 0
    out = tmp_path / "c.jsonl"
    exported = run_cli(["conversations", "export", "--out", str(out), "--template", "insurance_claim",
                        "--status", "all"])
    assert exported.returncode == 0 and len(out.read_text().splitlines()) == 4
    assert _count(engine, conversations) == 4


def test_a_csv_column_may_be_a_custom_variable(engine, tmp_path):
    """batch create --csv with a customer column puts each row's value in its item."""
    _import(tmp_path, CLAIM)
    csv = tmp_path / "rows.csv"
    csv.write_text("persona,emotion,topic,customer\na,b,c,a VIP\n", encoding="utf-8")
    made = run_cli(["batch", "create", "--template", "insurance_claim", "--csv", str(csv), "--turns", "4"])
    assert made.returncode == 0, made.stderr
    with engine.connect() as conn:
        params = conn.execute(sa.select(batch_items.c.params)).scalar_one()
    assert params["variables"] == {"customer": "a VIP"}


def test_an_unknown_custom_variable_is_refused_with_exit_2(engine, tmp_path):
    """--var for a variable the template does not declare is a bad argument."""
    _import(tmp_path, CLAIM)
    bad = run_cli(["batch", "create", "--template", "insurance_claim", "--count", "2", "--var", "colour=red"])
    assert bad.returncode == 2 and "'colour' is not a variable of the template 'insurance_claim'" in bad.stderr
