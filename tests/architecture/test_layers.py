"""The layout shows the architecture: three layers whose imports only go down, capability
packages instead of file-name prefixes, and modules of one job (no file over 500 lines)."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAYERS = {"integration_hub": 1, "tracing": 2, "monitoring": 3}
# The only modules that see every layer: the root urlconf and Celery's task discovery (which
# names task packages as strings, so it needs no exemption).
SEES_ALL = {"integration_hub/urls.py"}
PREFIXES = ("dl_", "alert_", "page_")
MAX_LINES = 500


def source_files():
    for package in LAYERS:
        yield from sorted((ROOT / package).rglob("*.py"))


def imported_modules(tree):
    """Every module an import names, at module level or inside a function, with its line."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module, node.lineno


def climbing_imports(path, tree):
    own = LAYERS[path.relative_to(ROOT).parts[0]]
    for module, line in imported_modules(tree):
        layer = LAYERS.get(module.split(".")[0])
        if layer is not None and layer > own:
            yield f"{path.relative_to(ROOT)}:{line} imports {module}"


def test_no_module_of_a_lower_layer_imports_a_higher_one():
    found = [
        problem
        for path in source_files()
        if str(path.relative_to(ROOT)) not in SEES_ALL
        for problem in climbing_imports(path, ast.parse(path.read_text()))
    ]
    assert found == []


@pytest.mark.parametrize(
    "code, expected",
    [
        ("from monitoring.models import SLO\n", 1),
        ("def f():\n    from monitoring.replay import queue\n", 1),
        ("import monitoring.alerts.delivery\n", 1),
        ("from monitoring import triage\n", 1),
        ("from integration_hub.models import Plant\nfrom tracing.models import Transaction\n", 0),
    ],
)
def test_the_check_sees_module_and_function_level_imports(code, expected):
    path = ROOT / "tracing" / "example.py"
    assert len(list(climbing_imports(path, ast.parse(code)))) == expected


def test_no_file_name_carries_a_package_prefix():
    prefixed = [
        str(path.relative_to(ROOT)) for path in source_files() if path.name.startswith(PREFIXES)
    ]
    assert prefixed == []


def test_no_module_outside_migrations_is_over_500_lines():
    long = {
        str(path.relative_to(ROOT)): n
        for path in source_files()
        if "migrations" not in path.parts and (n := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}


def test_no_test_module_imports_another_test_module():
    """Shared fixtures and helpers live in conftest.py files (or tests/events.py, receivers/)."""
    found = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path in sorted((ROOT / "tests").rglob("*.py"))
        for module, line in imported_modules(ast.parse(path.read_text()))
        if module.split(".")[-1].startswith("test_")
    ]
    assert found == []


def tasks_sent_by_name():
    for path in source_files():
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "send_task"
            ):
                yield node.args[0].value


def test_every_task_enqueued_by_name_or_scheduled_is_one_celery_discovers(settings):
    from integration_hub.celery import TASK_PACKAGES, app

    app.autodiscover_tasks(TASK_PACKAGES, force=True)
    named = set(tasks_sent_by_name()) | {
        entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()
    }
    assert {"monitoring.deliver_replays", "monitoring.send_deliveries"} <= named
    assert named - set(app.tasks) == set()
