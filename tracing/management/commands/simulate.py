"""Feeds the hub realistic plant traffic through its HTTP ingest API."""

import contextlib
import signal
import threading

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from integration_hub.models import ApiKey, Plant, code_validator
from tracing.simulator.journeys import Simulator
from tracing.simulator.sender import ApiRefused, Client, Runner, wait_ready


def ensure_plants(codes):
    """The plants' time zones by code, creating the plants that are missing."""
    zones = {}
    for code in codes:
        try:
            code_validator(code)
        except ValidationError as exc:
            raise CommandError(f"--plants: {code!r}: {' '.join(exc.messages)}") from None
        zones[code] = Plant.objects.ensure(code).timezone
    return zones


@contextlib.contextmanager
def sigterm_interrupts():
    """Treat SIGTERM like Ctrl-C, so `rundemo` stopping us still ends with a summary."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class Command(BaseCommand):
    help = "Post realistic plant traffic (production-order journeys, with faults) to the API."

    def add_arguments(self, parser):
        parser.add_argument("--url", default="http://127.0.0.1:8000", help="The hub's base URL.")
        parser.add_argument("--key", help="Reporter API key (default: issue a new one).")
        parser.add_argument("--plants", default="P100,P200", help="Comma-separated plant codes.")
        parser.add_argument("--rate", type=float, default=30.0, help="Orders started a minute.")
        parser.add_argument(
            "--fault-rate", type=float, default=0.1, help="Share of transactions with a fault."
        )
        parser.add_argument(
            "--duration", type=float, default=0, help="Seconds to run (0: until Ctrl-C)."
        )
        parser.add_argument("--seed", type=int, help="Seed for a reproducible run.")
        parser.add_argument(
            "--time-scale", type=float, default=60.0, help="Plant time runs this much faster."
        )
        parser.add_argument(
            "--wait-ready", action="store_true", help="Wait up to 60 s for /readyz first."
        )
        parser.add_argument(
            "--once", type=int, metavar="N", help="Send N orders' journeys at once, then stop."
        )

    def handle(self, *args, **options):
        codes = [c.strip() for c in options["plants"].split(",") if c.strip()]
        if not codes:
            raise CommandError("--plants: give at least one plant code.")
        self._check_numbers(options)
        sim = Simulator(
            codes,
            options["seed"],
            options["fault_rate"],
            options["time_scale"],
            rate=options["rate"],
            timezones=ensure_plants(codes),
        )
        key = options["key"] or self._issue_key()
        url = options["url"]
        self.stdout.write(
            f"simulating {', '.join(codes)} → {url}: {sim.rate:g} orders/min, "
            f"fault rate {sim.fault_rate:g}, time scale {sim.time_scale:g}, seed {sim.seed}"
        )
        if options["wait_ready"] and not wait_ready(url, out=self.stdout.write):
            self.stderr.write("starting anyway; batches are retried while the hub is away")
        runner = Runner(Client(url, key, warn=self.stderr.write), out=self.stdout.write)
        once = options["once"]
        if once:
            sim.backdate(once)
        try:
            with sigterm_interrupts():
                runner.run(sim.events(once), fast=bool(once), duration=options["duration"])
        except ApiRefused as exc:
            raise CommandError(f"the hub refused the API key: {exc}") from None
        except KeyboardInterrupt:
            pass
        self.stdout.write("done: " + runner.stats.line(runner.clock()))

    def _check_numbers(self, options):
        if not 0 <= options["fault_rate"] <= 1:
            raise CommandError("--fault-rate: give a share between 0 and 1.")
        for name in ("rate", "time_scale"):
            if options[name] <= 0:
                raise CommandError(f"--{name.replace('_', '-')}: must be positive.")
        if options["duration"] < 0:
            raise CommandError("--duration: must be 0 (no limit) or positive.")
        if options["once"] is not None and options["once"] < 1:
            raise CommandError("--once: give a positive number of orders.")

    def _issue_key(self):
        key, raw = ApiKey.issue("simulator")
        self.stdout.write(f"issued API key {key.prefix}… named 'simulator'")
        return raw
