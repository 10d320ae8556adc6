"""Settings come from the environment; production mode refuses unsafe defaults."""

import pytest
from django.core.exceptions import ImproperlyConfigured

from integration_hub.env import email_from_address, env_bool, env_int, mailer_from_url
from tests.integration_hub.conftest import run_django


def test_production_mode_refuses_default_secret_key():
    result = run_django({"DEBUG": "0", "ALLOWED_HOSTS": "hub.plant.example"})
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr
    assert "started" not in result.stdout


def test_debug_is_off_unless_asked_for():
    result = run_django({"DEBUG": None})
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_production_mode_refuses_empty_allowed_hosts():
    result = run_django({"DEBUG": "0", "SECRET_KEY": "x" * 50})
    assert result.returncode != 0
    assert "ALLOWED_HOSTS must list" in result.stderr


def test_production_mode_starts_with_safe_settings():
    result = run_django({"DEBUG": "0", "SECRET_KEY": "s3cr3t-" * 8, "ALLOWED_HOSTS": "hub.example"})
    assert result.returncode == 0, result.stderr
    assert "started" in result.stdout


def test_typo_in_boolean_is_refused_with_the_variable_name(monkeypatch):
    monkeypatch.setenv("DEBUG", "ture")
    with pytest.raises(ImproperlyConfigured, match="DEBUG must be one of"):
        env_bool("DEBUG", True)


def test_non_number_is_refused_with_the_variable_name(monkeypatch):
    monkeypatch.setenv("EMAIL_PORT", "twenty-five")
    with pytest.raises(ImproperlyConfigured, match="EMAIL_PORT must be a whole number"):
        env_int("EMAIL_PORT", 25)


def test_bad_database_url_is_refused_naming_it():
    result = run_django({"DATABASE_URL": "mongodb://somewhere/db"})
    assert result.returncode != 0
    assert "DATABASE_URL" in result.stderr


def test_email_url_becomes_an_smtp_mailer():
    url = "smtp+tls://hub%40plant.example:p%40ss@mail.plant.example:2525?from=hub@plant.example"
    assert mailer_from_url(url) == {
        "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "OPTIONS": {
            "host": "mail.plant.example",
            "port": 2525,
            "username": "hub@plant.example",
            "password": "p@ss",
            "use_tls": True,
            "use_ssl": False,
            "timeout": 10,
        },
    }
    assert email_from_address(url, "x@y") == "hub@plant.example"


def test_email_url_with_unknown_scheme_is_refused():
    with pytest.raises(ImproperlyConfigured, match="EMAIL_URL scheme must be one of"):
        mailer_from_url("pigeon://coop")


def test_usual_email_variables_build_the_mailer():
    code = (
        "import django; django.setup(); from django.conf import settings; print(settings.MAILERS)"
    )
    result = run_django(
        {"EMAIL_HOST": "smtp.plant.example", "EMAIL_PORT": "587", "EMAIL_USE_TLS": "1"}, code
    )
    assert "'host': 'smtp.plant.example'" in result.stdout, result.stderr
    assert "'port': 587" in result.stdout
    assert "'use_tls': True" in result.stdout


PRODUCTION = {
    "DEBUG": "0",
    "SECRET_KEY": "s3cr3t-" * 8,
    "ALLOWED_HOSTS": "hub.plant.example",
    "CSRF_TRUSTED_ORIGINS": "https://hub.plant.example",
    "EMAIL_URL": "smtp+tls://hub:pw@mail.plant.example:587?from=hub@plant.example",
}


def test_the_documented_production_variables_pass_the_deploy_check():
    code = (
        "import django; django.setup(); from django.core.management import call_command; "
        "call_command('check', deploy=True, fail_level='WARNING')"
    )
    result = run_django(PRODUCTION, code)
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_production_redirects_plain_http_but_not_the_health_probes():
    code = (
        "import django; django.setup(); from django.test import Client; c = Client(); "
        "r = c.get('/transactions/', HTTP_HOST='hub.plant.example'); "
        "h = c.get('/healthz', HTTP_HOST='hub.plant.example'); "
        "s = c.get('/healthz', HTTP_HOST='hub.plant.example', secure=True); "
        "print(r.status_code, r['Location'], h.status_code, s['Strict-Transport-Security'])"
    )
    result = run_django(PRODUCTION, code)
    assert result.returncode == 0, result.stderr
    status, location, health, hsts = result.stdout.split(maxsplit=3)
    assert (status, location, health) == ("301", "https://hub.plant.example/transactions/", "200")
    assert "max-age=31536000" in hsts and "preload" in hsts
