"""Production-order journeys across ERP, MES, WMS and QMS as canonical trace events, with
injected faults."""

import heapq
import itertools
import math
import random
import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from tracing.simulator.messages import FlowMessages
from tracing.simulator.scenarios import (
    DELIVERY_FAULTS,
    FAULTS,
    HOLD_SHARE,
    LINES,
    MOVEMENT_SHARE,
    NUMBER_RANGES,
    ORDER_SIZES,
    PRODUCTS,
    REPOST_SHARE,
    SYSTEM_SERVICES,
    Hop,
    Order,
)


class Simulator(FlowMessages):
    """Scripts production-order journeys as trace events, in the order they fall due."""

    def __init__(
        self,
        plants,
        seed=None,
        fault_rate=0.1,
        time_scale=60.0,
        *,
        rate=30.0,
        start=None,
        timezones=None,
    ):
        if not plants:
            raise ValueError("At least one plant code is needed.")
        if not 0 <= fault_rate <= 1:
            raise ValueError("fault_rate must be between 0 and 1.")
        if time_scale <= 0 or rate <= 0:
            raise ValueError("time_scale and rate must be positive.")
        self.plants = list(plants)
        self.seed = seed if seed is not None else random.SystemRandom().randrange(2**31)
        self.fault_rate, self.time_scale, self.rate = fault_rate, time_scale, rate
        self.start = start or datetime.now(UTC)
        self.timezones = dict(timezones or {})
        self._zones = {p: ZoneInfo(self.timezones.get(p, "Europe/Berlin")) for p in self.plants}
        self.rng = random.Random(self.seed)
        self._numbers = {k: self.rng.randrange(*bounds) for k, bounds in NUMBER_RANGES.items()}
        self._lots = {}
        self._heap = []
        self._seq = itertools.count()

    # -- time ---------------------------------------------------------------------------------

    def stamp(self, t, plant, timespec="milliseconds"):
        """RFC 3339 time, in the plant's zone, of t seconds after the start."""
        moment = self.start + timedelta(seconds=t)
        return moment.astimezone(self._zones[plant]).isoformat(timespec=timespec)

    def _plant(self, seconds):
        """Real seconds for that many seconds of plant time."""
        return seconds / self.time_scale

    @staticmethod
    def _hop(seconds):
        """Real seconds for one hop's latency: not compressed, so latency SLOs see real figures."""
        return seconds

    def _posting_delay(self, slow_up_to=900):
        """Plant seconds from a message being sent to it being posted: mostly seconds."""
        roll = self.rng.random()
        if roll < 0.85:
            return self.rng.uniform(2, 60)
        if roll < 0.97:
            return self.rng.uniform(60, 300)
        return self.rng.uniform(300, slow_up_to)

    # -- output -------------------------------------------------------------------------------

    def events(self, orders=None):
        """Yield (due, event) by due time for `orders` order journeys (None: without end)."""
        t, started = 0.0, 0
        while orders is None or started < orders:
            t += self.rng.expovariate(self.rate / 60)
            yield from self._pop_until(t)
            self._journey(t)
            if self.rng.random() < MOVEMENT_SHARE:
                self._movement(t + self.rng.uniform(0, 60 / self.rate))
            started += 1
        yield from self._pop_until(math.inf)

    def _pop_until(self, t):
        while self._heap and self._heap[0].due <= t:
            hop = heapq.heappop(self._heap)
            yield self.start + timedelta(seconds=hop.due), hop.event

    def backdate(self, orders, now=None):
        """Move the start back so that `orders` journeys have all fallen due by `now`."""
        twin = Simulator(
            self.plants,
            self.seed,
            self.fault_rate,
            self.time_scale,
            rate=self.rate,
            start=self.start,
            timezones=self.timezones,
        )
        last = max((due for due, _ in twin.events(orders)), default=self.start)
        self.start = (now or datetime.now(UTC)) - (last - self.start)

    # -- numbers and faults -------------------------------------------------------------------

    def _next(self, kind):
        self._numbers[kind] += 1
        return self._numbers[kind]

    def _year(self):
        return self.start.year

    def _lot(self, material):
        """A raw-material lot in stock: the same few lots are used until a new one arrives."""
        pool = self._lots.setdefault(material, [])
        if not pool or self.rng.random() < 0.1:
            pool.append(f"L-{self._year() % 100:02d}-{self._next('lot'):06d}")
            del pool[:-3]
        return self.rng.choice(pool)

    def _fault(self, flow):
        """The fault to inject into one transaction of that flow, or None."""
        if self.rng.random() < self.fault_rate:
            return self.rng.choice(FAULTS[flow])
        return None

    def _transient(self, target):
        request = uuid.UUID(int=self.rng.getrandbits(128), version=4)
        code, message = self.rng.choice(
            (
                ("HTTP_503", f"{SYSTEM_SERVICES[target]} unavailable (request {request})"),
                ("TIMEOUT", f"No response from {target} within 30 s (request {request})"),
                ("ECONNRESET", f"Connection to {target} reset by peer"),
            )
        )
        return {"class": "transient", "code": code, "message": message}

    def _deficit(self, plant, material, unit, location, lot, quantity):
        short = quantity * self.rng.uniform(0.05, 0.6)
        short = f"{short:.1f}" if unit != "EA" else str(max(1, round(short)))
        return {
            "class": "business_rule",
            "code": "M7-021",
            "message": (
                f"Deficit of SL Unrestricted-use {short} {unit} : "
                f"{material} {plant} {location} {lot}"
            ),
        }

    def _emit(self, tx, fault):
        """Queue a transaction's hops, disturbing their delivery if that is its fault."""
        hops = sorted(tx.hops, key=lambda h: h.occurred)
        if fault in DELIVERY_FAULTS:
            self._disturb(hops, fault)
        for hop in hops:
            hop.seq = next(self._seq)
            heapq.heappush(self._heap, hop)

    def _disturb(self, hops, fault):
        rng = self.rng
        if fault == "duplicate":
            hop = rng.choice(hops)
            hops.append(Hop(hop.due + rng.uniform(0.5, 30), 0, hop.occurred, hop.event))
        elif fault == "late":
            # Lateness is transport delay (a backlog in middleware), so it is not scaled.
            rng.choice(hops).due += rng.uniform(120, 600)
        elif fault == "out_of_order":
            pairs = [
                i
                for i in range(len(hops) - 1)
                if hops[i].event["step"] != hops[i + 1].event["step"]
            ]
            if pairs:
                i = rng.choice(pairs)
                hops[i].due = hops[i + 1].due + rng.uniform(0.2, 5)

    # -- journeys -----------------------------------------------------------------------------

    def _journey(self, t):
        """Script one production order from release to shipment, starting at t."""
        rng = self.rng
        product = rng.choice(PRODUCTS)
        order = Order(
            number=str(self._next("order")),
            plant=rng.choice(self.plants),
            product=product,
            quantity=rng.choice(ORDER_SIZES),
            work_order=f"WO-{self._next('work_order')}",
            line=rng.choice(LINES),
            fg_lot=f"FG-{self._year() % 100:02d}-{self._next('lot'):06d}",
            handling_unit=f"HU-{self._next('handling_unit'):08d}",
        )
        t = self._order_release(order, t)
        if t is None:
            return
        t += self._plant(rng.uniform(300, 1800))
        for n, component in enumerate(product.components, start=1):
            self._consumption(order, t + self._plant(rng.uniform(0, 600)), n, component)
        produced = order.quantity
        for i, operation in enumerate(product.operations):
            t += self._plant(rng.uniform(1200, 5400))
            scrap = rng.choice((0, 0, 0, 1, 2, max(1, produced // 50)))
            produced = max(1, produced - scrap)
            final = i == len(product.operations) - 1
            self._confirmation(order, t, operation, produced, scrap, final)
        t += self._plant(rng.uniform(60, 600))
        self._goods_receipt(order, t, produced)
        if rng.random() < HOLD_SHARE:
            t = self._quality_hold(order, t + self._plant(rng.uniform(120, 1200)))
            if t is None:
                return
        self._shipment(order, t + self._plant(rng.uniform(1800, 14400)), produced)

    def _post(self, tx, t, fault, source, target, payload, *, error=None, attrs=None):
        """Script the posting hop with its retries or failure; return when it posted, or None."""
        rng = self.rng
        if fault == "transient":
            for attempt in range(1, rng.choice((1, 1, 2)) + 1):
                tx.retrying(t, "posted", source, self._transient(source), attempt)
                t += self._plant(rng.uniform(30, 300))
        elif error is not None:
            status = "failed" if error["class"] == "business_rule" else "rejected"
            tx.hop(t, "posted", source, target, status=status, error=error, payload=payload)
            if rng.random() >= REPOST_SHARE:
                return None
            # Someone fixed the cause and posted again by hand: the dead letter is superseded.
            t += self._plant(rng.uniform(900, 3600))
        tx.hop(t, "posted", source, target, attrs=attrs)
        return t
