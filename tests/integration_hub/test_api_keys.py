"""Reporter API keys: only a hash is stored, shown once, limited, revocable."""

import re

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from integration_hub.api_keys import _find_query
from integration_hub.models import ApiKey, Plant, System, hash_api_key

pytestmark = pytest.mark.django_db


def test_only_the_hash_is_stored():
    key, raw = ApiKey.issue("MES adapter")
    stored = ApiKey.objects.filter(pk=key.pk).values().get()
    assert raw not in {str(v) for v in stored.values()}
    assert stored["key_hash"] == hash_api_key(raw)
    assert raw.startswith(stored["prefix"])


def test_a_key_is_found_until_it_is_revoked():
    key, raw = ApiKey.issue("WMS adapter")
    assert ApiKey.objects.find(raw) == key
    assert ApiKey.objects.find(raw + "x") is None
    assert ApiKey.objects.find("") is None
    key.revoke()
    assert ApiKey.objects.find(raw) is None


def test_a_key_is_found_in_one_query_whose_sql_is_compiled_once(p100, p200):
    """The reporters' doors ask on every request: one query, its SQL kept per database."""
    key, raw = ApiKey.issue("MES P100", systems=[System.objects.get(code="MES")], plants=[p100])
    other, other_raw = ApiKey.issue("anything")
    assert ApiKey.objects.find(raw) == key
    compiled = _find_query.cache_info().misses
    with CaptureQueriesContext(connection) as queries:
        found, anyone = ApiKey.objects.find(raw), ApiKey.objects.find(other_raw)
    assert (found, anyone) == (key, other)
    assert len(queries) == 2 and _find_query.cache_info().misses == compiled
    assert found.allowed_codes == ({"MES"}, {"P100"}) and anyone.allowed_codes == (set(), set())
    key.revoke()
    assert ApiKey.objects.find(raw) is None


def test_limits_by_system_and_plant(p100, p200):
    key, _ = ApiKey.issue("MES P100", systems=[System.objects.get(code="MES")], plants=[p100])
    assert key.allows(system_code="MES", plant_code="P100")
    assert not key.allows(system_code="ERP", plant_code="P100")
    assert not key.allows(system_code="MES", plant_code="P200")
    anyone, _ = ApiKey.issue("anything")
    assert anyone.allows(system_code="QMS", plant_code="P200")


def test_create_api_key_prints_the_key_alone_on_the_last_line(capsys, p100):
    call_command("create_api_key", "MES P100 adapter", "--system", "MES", "--plant", "P100")
    out = capsys.readouterr()
    raw = out.out.strip().splitlines()[-1]
    key = ApiKey.objects.find(raw)
    assert key.name == "MES P100 adapter"
    assert [s.code for s in key.systems.all()] == ["MES"]
    assert [p.code for p in key.plants.all()] == ["P100"]
    assert "not shown again" in out.err


def test_create_api_key_refuses_unknown_codes_listing_the_valid_ones(p100):
    with pytest.raises(CommandError, match=r"--plant: unknown P999 \(valid: P100\)"):
        call_command("create_api_key", "x", "--plant", "P999")
    assert not ApiKey.objects.exists()
    assert Plant.objects.count() == 1


def test_admin_shows_a_new_key_once(client, alice):
    client.force_login(alice)
    response = client.post(
        "/admin/integration_hub/apikey/add/", {"name": "QMS adapter"}, follow=True
    )
    shown = [str(m) for m in response.context["messages"]]
    raw = shown[0].rsplit(" ", 1)[-1]
    assert ApiKey.objects.find(raw).name == "QMS adapter"
    again = client.get(f"/admin/integration_hub/apikey/{ApiKey.objects.get().pk}/change/")
    assert raw.encode() not in again.content


def test_a_new_keys_raw_value_is_shown_once_and_never_travels_in_a_cookie(client, alice):
    client.force_login(alice)
    created = client.post("/admin/integration_hub/apikey/add/", {"name": "WMS P200"})
    assert created.status_code == 302
    assert "messages" not in created.cookies
    shown = client.get(created["Location"]).content.decode()
    raw = re.search(r"ihk_[A-Za-z0-9_-]{40,}", shown).group(0)
    assert ApiKey.objects.find(raw).name == "WMS P200"
    assert all(raw not in morsel.value for morsel in created.cookies.values())
    assert raw not in client.get(created["Location"]).content.decode()  # once
