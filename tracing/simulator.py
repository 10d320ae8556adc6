"""Plant simulator: production-order journeys across ERP, MES, WMS and QMS as canonical trace
events, with injected faults, and a sender that posts them to the ingest API in batches."""

import heapq
import http.client
import itertools
import json
import math
import random
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import NamedTuple
from zoneinfo import ZoneInfo


class Component(NamedTuple):
    material: str
    unit: str
    per_piece: float


class Product(NamedTuple):
    material: str
    routing: str
    bom_revision: str
    operations: tuple
    components: tuple


PRODUCTS = (
    Product(
        "FG-4711",
        "R-4711-01",
        "C",
        ("0010", "0020", "0030"),
        (
            Component("RM-200", "KG", 0.05),
            Component("CP-3301", "EA", 2),
            Component("PK-0100", "EA", 1),
        ),
    ),
    Product(
        "FG-4712",
        "R-4712-02",
        "A",
        ("0010", "0020"),
        (Component("RM-210", "KG", 0.12), Component("CP-3302", "EA", 4)),
    ),
    Product(
        "FG-4715",
        "R-4715-01",
        "B",
        ("0010", "0020", "0030"),
        (
            Component("RM-200", "KG", 0.08),
            Component("RM-330", "M", 1.5),
            Component("PK-0100", "EA", 1),
        ),
    ),
    Product(
        "FG-5020",
        "R-5020-03",
        "D",
        ("0010", "0020", "0030", "0040"),
        (
            Component("RM-410", "KG", 0.4),
            Component("CP-3310", "EA", 6),
            Component("PK-0200", "EA", 1),
        ),
    ),
    Product(
        "FG-5021",
        "R-5021-01",
        "A",
        ("0010", "0020"),
        (Component("RM-410", "KG", 0.35), Component("CP-3302", "EA", 2)),
    ),
)
COMPONENTS = tuple({c.material: c for p in PRODUCTS for c in p.components}.values())
LINES = ("L1", "L2", "L3", "L4")
ORDER_SIZES = (40, 50, 100, 120, 200, 250, 500)
CARRIERS = (("DHL", "JJD00"), ("DB Schenker", "SCH"), ("UPS", "1Z"), ("Dachser", "DAC"))
# name, nominal, tolerance, unit
CHARACTERISTICS = (
    ("Bore diameter", 12.0, 0.05, "mm"),
    ("Surface roughness Ra", 0.8, 0.2, "um"),
    ("Tightening torque", 25.0, 1.5, "Nm"),
    ("Coating thickness", 60.0, 10.0, "um"),
)
SYSTEM_SERVICES = {
    "ERP": "ERP OData service",
    "MES": "MES order interface",
    "WMS": "WMS inbound queue",
}
# Number ranges: each run starts at a seeded offset so runs with other seeds do not collide.
NUMBER_RANGES = {
    "order": (1_000_000, 8_000_000),
    "work_order": (1_000_000, 9_000_000),
    "lot": (100_000, 900_000),
    "handling_unit": (10_000_000, 90_000_000),
    "delivery": (80_000_000, 89_000_000),
    "shipment": (100_000, 900_000),
    "nonconformance": (100_000, 900_000),
    "transfer": (1_000_000, 9_000_000),
    "counter": (100, 900_000),
}

DELIVERY_FAULTS = ("duplicate", "out_of_order", "late")
FAULTS = {
    "order_release": ("master_data", "never_acknowledged", "transient", *DELIVERY_FAULTS),
    "material_consumption": ("business_rule", "transient", *DELIVERY_FAULTS),
    "production_confirmation": ("transient", *DELIVERY_FAULTS),
    "goods_receipt": ("transient", *DELIVERY_FAULTS),
    "quality_hold": ("never_released", *DELIVERY_FAULTS),
    "shipment_confirmation": ("schema", "transient", *DELIVERY_FAULTS),
    "inventory_movement": ("business_rule", "transient", *DELIVERY_FAULTS),
}
HOLD_SHARE = 0.15
SCRAP_SHARE = 0.2
SLOW_ACK_SHARE = 0.03
MOVEMENT_SHARE = 0.5
REPOST_SHARE = 0.4


@dataclass(order=True)
class Hop:
    """One event to send: `due` and `occurred` are seconds after the simulator's start."""

    due: float
    seq: int
    occurred: float = field(compare=False)
    event: dict = field(compare=False)


@dataclass
class Order:
    number: str
    plant: str
    product: Product
    quantity: int
    work_order: str
    line: str
    fg_lot: str
    handling_unit: str


class Tx:
    """A transaction being scripted: one flow and correlation id, and its hops."""

    def __init__(self, sim, flow, correlation_id, plant, keys):
        self.sim, self.flow, self.correlation_id = sim, flow, correlation_id
        self.plant, self.keys = plant, keys
        self.hops = []

    def hop(self, t, step, source, target, *, status="ok", error=None, payload=None, attrs=None):
        """Record that `source` reported `step` at t seconds after the start."""
        event = {
            "event_id": f"{source.lower()}-{self.correlation_id.lower()}-{len(self.hops) + 1}",
            "correlation_id": self.correlation_id,
            "flow": self.flow,
            "step": step,
            "source": source,
            "target": target,
            "plant": self.plant,
            "status": status,
            "occurred_at": self.sim.stamp(t, self.plant),
            "business_keys": dict(self.keys),
        }
        if error:
            event["error"] = error
        if payload is not None:
            event["payload"] = payload
        if attrs:
            event["attributes"] = attrs
        self.hops.append(Hop(due=t, seq=0, occurred=t, event=event))

    def retrying(self, t, step, target, error, attempt):
        """Middleware reports a failed delivery to `target` that it will try again."""
        attrs = {"attempt": str(attempt)}
        self.hop(t, step, "MW", target, status="retrying", error=error, attrs=attrs)


class Simulator:
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

    def _order_release(self, order, t):
        """ERP releases the order to MES; return when MES acknowledged it, or None."""
        rng = self.rng
        keys = {"order": order.number, "material": order.product.material}
        tx = Tx(self, "order_release", f"PO-{order.number}", order.plant, keys)
        fault = self._fault(tx.flow)
        routing = order.product.routing
        payload = {
            "ProductionOrder": {
                "ID": order.number,
                "Material": order.product.material,
                "Plant": order.plant,
                "Quantity": {"value": order.quantity, "uom": "EA"},
                "Routing": routing,
                "ScheduledStart": self.stamp(t + self._plant(3600), order.plant, "seconds"),
                "BOMRevision": order.product.bom_revision,
            }
        }
        tx.hop(t, "released", "ERP", "MES", payload=payload)
        t += self._hop(rng.uniform(1, 5))
        if fault == "transient":
            tx.retrying(t, "received", "MES", self._transient("MES"), 1)
            t += self._hop(rng.uniform(20, 120))
        if fault == "master_data":
            error = {
                "class": "master_data",
                "code": "ROUTING_NOT_FOUND",
                "message": (
                    f"Routing {routing} for material {order.product.material} "
                    f"not released in plant {order.plant}"
                ),
            }
            tx.hop(t, "received", "MES", "MES", status="rejected", error=error, payload=payload)
            self._emit(tx, fault)
            return None
        tx.hop(t, "received", "MW", "MES")
        if fault == "never_acknowledged":
            self._emit(tx, fault)
            return None
        slow = rng.random() < SLOW_ACK_SHARE
        t += self._hop(rng.uniform(60, 240) if slow else rng.uniform(5, 40))
        attrs = {"mes_work_order": order.work_order, "line": order.line}
        tx.hop(t, "acknowledged", "MES", "ERP", attrs=attrs)
        self._emit(tx, fault)
        return t

    def _consumption(self, order, t, n, component):
        """MES reports a goods issue (261) of one component; ERP posts it."""
        lot = self._lot(component.material)
        keys = {"order": order.number, "lot": lot, "material": component.material}
        correlation = f"GI-{order.work_order.removeprefix('WO-')}-{n}"
        tx = Tx(self, "material_consumption", correlation, order.plant, keys)
        fault = self._fault(tx.flow)
        quantity = component.per_piece * order.quantity
        quantity = round(quantity, 3) if component.unit != "EA" else int(quantity)
        payload = {
            "GoodsMovement": {
                "MovementType": "261",
                "Order": order.number,
                "Material": component.material,
                "Batch": lot,
                "Quantity": quantity,
                "Unit": component.unit,
                "StorageLocation": "0001",
            }
        }
        tx.hop(t, "consumed", "MES", "ERP", payload=payload)
        error = None
        if fault == "business_rule":
            error = self._deficit(
                order.plant, component.material, component.unit, "0001", lot, quantity
            )
        t += self._hop(self._posting_delay())
        self._post(tx, t, fault, "ERP", "MES", payload, error=error)
        self._emit(tx, fault)

    def _confirmation(self, order, t, operation, produced, scrap, final):
        """MES confirms one operation; ERP posts the confirmation."""
        keys = {"order": order.number, "operation": operation}
        correlation = f"CF-{order.work_order.removeprefix('WO-')}-{int(operation)}"
        tx = Tx(self, "production_confirmation", correlation, order.plant, keys)
        fault = self._fault(tx.flow)
        payload = {
            "Confirmation": {
                "Order": order.number,
                "Operation": operation,
                "Yield": produced,
                "Scrap": scrap,
                "Unit": "EA",
                "FinalConfirmation": final,
                "WorkCenter": f"WC-{order.line}",
            }
        }
        tx.hop(t, "confirmed", "MES", "ERP", payload=payload)
        t += self._hop(self._posting_delay())
        attrs = {"confirmation_counter": f"{self._next('counter'):08d}"}
        self._post(tx, t, fault, "ERP", "MES", payload, attrs=attrs)
        self._emit(tx, fault)

    def _goods_receipt(self, order, t, produced):
        """MES completes the order (101), WMS puts the handling unit away, ERP posts it."""
        keys = {
            "order": order.number,
            "lot": order.fg_lot,
            "handling_unit": order.handling_unit,
            "material": order.product.material,
        }
        tx = Tx(self, "goods_receipt", f"GR-{order.number}-1", order.plant, keys)
        fault = self._fault(tx.flow)
        payload = {
            "GoodsReceipt": {
                "MovementType": "101",
                "Order": order.number,
                "Material": order.product.material,
                "Batch": order.fg_lot,
                "Quantity": produced,
                "Unit": "EA",
                "HandlingUnit": order.handling_unit,
            }
        }
        tx.hop(t, "completed", "MES", "WMS", payload=payload)
        t += self._plant(self.rng.uniform(30, 300))
        bin_ = (
            f"{self.rng.choice('ABCD')}-{self.rng.randint(1, 20):02d}-{self.rng.randint(1, 6):02d}"
        )
        attrs = {"putaway_task": f"TO-{self._next('transfer')}", "bin": bin_}
        tx.hop(t, "received", "WMS", "ERP", attrs=attrs)
        t += self._hop(self._posting_delay())
        self._post(tx, t, fault, "ERP", "WMS", payload)
        self._emit(tx, fault)

    def _quality_hold(self, order, t):
        """QMS holds the finished-goods lot; return when it was released, or None."""
        rng = self.rng
        nc = f"NC-{self._year()}-{self._next('nonconformance'):06d}"
        keys = {
            "lot": order.fg_lot,
            "nonconformance": nc,
            "order": order.number,
            "material": order.product.material,
        }
        tx = Tx(self, "quality_hold", nc, order.plant, keys)
        fault = self._fault(tx.flow)
        name, nominal, tolerance, unit = rng.choice(CHARACTERISTICS)
        measured = nominal + rng.choice((-1, 1)) * tolerance * rng.uniform(1.1, 2.0)
        payload = {
            "Nonconformance": {
                "ID": nc,
                "Lot": order.fg_lot,
                "Characteristic": name,
                "Measured": round(measured, 3),
                "Tolerance": f"{nominal:.2f} +/- {tolerance:.2f} {unit}",
                "Severity": rng.choice(("minor", "major", "major", "critical")),
            }
        }
        tx.hop(t, "hold_applied", "QMS", "ERP", payload=payload)
        for target, attrs in (
            ("ERP", {"stock_type": "blocked"}),
            ("MES", {"lot_status": "HOLD"}),
            ("WMS", {"wms_lock": "QI"}),
        ):
            tx.hop(t + self._hop(rng.uniform(5, 60)), "hold_propagated", "MW", target, attrs=attrs)
        if fault == "never_released":
            self._emit(tx, fault)
            return None
        t += self._plant(rng.uniform(1800, 6 * 3600))
        scrapped = rng.random() < SCRAP_SHARE
        decision = "scrapped" if scrapped else "released"
        tx.hop(t, decision, "QMS", "ERP", attrs={"usage_decision": "R" if scrapped else "A"})
        self._emit(tx, fault)
        return None if scrapped else t

    def _shipment(self, order, t, quantity):
        """WMS ships the lot on a delivery; ERP posts the goods issue."""
        rng = self.rng
        delivery = str(self._next("delivery"))
        keys = {
            "delivery": delivery,
            "shipment": f"SH-{self._next('shipment')}",
            "order": order.number,
            "lot": order.fg_lot,
            "handling_unit": order.handling_unit,
        }
        tx = Tx(self, "shipment_confirmation", f"DLV-{delivery}", order.plant, keys)
        fault = self._fault(tx.flow)
        carrier, prefix = rng.choice(CARRIERS)
        issued = self.stamp(t, order.plant, "seconds")
        # The schema fault is the classic one: a date where ERP's XSD wants a dateTime.
        issue_date = issued[:10] if fault == "schema" else issued
        payload = {
            "ShipmentConfirmation": {
                "Delivery": delivery,
                "Carrier": carrier,
                "TrackingNo": f"{prefix}{rng.randrange(10**9, 10**10)}",
                "GoodsIssueDate": issue_date,
                "Items": [
                    {
                        "Item": "000010",
                        "Material": order.product.material,
                        "Batch": order.fg_lot,
                        "Quantity": quantity,
                        "Unit": "EA",
                    }
                ],
            }
        }
        tx.hop(t, "shipped", "WMS", "ERP", payload=payload)
        error = None
        if fault == "schema":
            error = {
                "class": "schema",
                "code": "XSD_VALIDATION",
                "message": (
                    f"Element 'GoodsIssueDate': '{issue_date}' is not a valid value "
                    "of the atomic type 'xs:dateTime'"
                ),
            }
        t += self._hop(self._posting_delay(slow_up_to=1500))
        self._post(tx, t, fault, "ERP", "WMS", payload, error=error)
        self._emit(tx, fault)

    def _movement(self, t):
        """WMS transfers a raw-material lot between storage locations (311); ERP posts it."""
        rng = self.rng
        component = rng.choice(COMPONENTS)
        lot = self._lot(component.material)
        plant = rng.choice(self.plants)
        keys = {"material": component.material, "lot": lot}
        tx = Tx(self, "inventory_movement", f"TO-{self._next('transfer')}", plant, keys)
        fault = self._fault(tx.flow)
        quantity = rng.choice((50, 100, 200, 300, 500))
        source, destination = rng.choice((("0001", "0002"), ("0001", "0003"), ("0002", "0001")))
        payload = {
            "Transfer": {
                "MovementType": "311",
                "Material": component.material,
                "Batch": lot,
                "From": source,
                "To": destination,
                "Quantity": quantity,
                "Unit": component.unit,
            }
        }
        tx.hop(t, "moved", "WMS", "ERP", payload=payload)
        error = None
        if fault == "business_rule":
            error = self._deficit(plant, component.material, component.unit, source, lot, quantity)
        t += self._hop(self._posting_delay())
        self._post(tx, t, fault, "ERP", "WMS", payload, error=error)
        self._emit(tx, fault)


# -- sending ----------------------------------------------------------------------------------


class ApiRefused(Exception):
    """The API refused the key; retrying will not help."""


class _Retryable(Exception):
    pass


class _Undeliverable(Exception):
    pass


@dataclass
class Stats:
    """What was sent and what the API made of it."""

    started: float
    sent: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    dropped: int = 0
    orders: int = 0

    def line(self, now):
        """One progress line: sent, accepted, duplicates, rejected, orders, events per second."""
        rate = self.sent / max(now - self.started, 1e-6)
        text = (
            f"sent {self.sent:,} events (accepted {self.accepted:,}, "
            f"duplicates {self.duplicates:,}, rejected {self.rejected:,}) "
            f"· {self.orders:,} orders · {rate:.1f} ev/s"
        )
        if self.dropped:
            text += f" · {self.dropped:,} undelivered"
        return text


class Client:
    """Posts batches to POST {url}/api/v1/events, retrying with backoff while the API is away."""

    def __init__(self, url, key, *, warn=print, attempts=5, backoff=1.0, timeout=30, sleep=None):
        self.endpoint = url.rstrip("/") + "/api/v1/events"
        self.key, self.warn = key, warn
        self.attempts, self.backoff, self.timeout = attempts, backoff, timeout
        self.sleep = sleep or time.sleep

    def post(self, events):
        """The API's answer for a batch, or None when it could not be delivered."""
        body = json.dumps({"events": events}).encode()
        for attempt in range(1, self.attempts + 1):
            try:
                return self._send(body)
            except _Retryable as exc:
                self.warn(
                    f"batch of {len(events)} events: {exc} (attempt {attempt}/{self.attempts})"
                )
            except _Undeliverable as exc:
                self.warn(f"batch of {len(events)} events not accepted: {exc}")
                return None
            if attempt < self.attempts:
                self.sleep(self.backoff * 2 ** (attempt - 1))
        self.warn(f"gave up on a batch of {len(events)} events")
        return None

    def _send(self, body):
        request = urllib.request.Request(
            self.endpoint,
            data=body,
            method="POST",
            headers={"Authorization": f"Bearer {self.key}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return self._answer_for_error(exc)
        except urllib.error.URLError as exc:
            raise _Retryable(str(exc.reason)) from None
        except (OSError, http.client.HTTPException, ValueError) as exc:
            raise _Retryable(f"{type(exc).__name__}: {exc}") from None

    def _answer_for_error(self, exc):
        text = exc.read().decode("utf-8", "replace")
        summary = f"HTTP {exc.code}: {text[:300]}"
        if exc.code == 400:
            try:
                answer = json.loads(text)
            except ValueError:
                answer = None
            if isinstance(answer, dict) and "rejected" in answer:
                return answer
        if exc.code in (401, 403):
            raise ApiRefused(summary)
        if exc.code in (408, 429) or exc.code >= 500:
            raise _Retryable(summary)
        raise _Undeliverable(summary)


def wait_ready(url, *, timeout=60, out=print, sleep=time.sleep, clock=time.monotonic):
    """Poll {url}/readyz until it answers 200; whether it did within `timeout` seconds."""
    deadline = clock() + timeout
    probe = url.rstrip("/") + "/readyz"
    out(f"waiting for {probe} …")
    last = "no answer yet"
    while clock() < deadline:
        try:
            with urllib.request.urlopen(probe, timeout=5) as response:
                if response.status == 200:
                    return True
        except urllib.error.HTTPError as exc:
            last = f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            last = str(getattr(exc, "reason", exc))
        sleep(1)
    out(f"{probe} not ready after {timeout:.0f} s ({last})")
    return False


class Runner:
    """Sends (due, event) pairs when they fall due, in batches, and prints progress."""

    def __init__(
        self,
        client,
        *,
        out=print,
        batch_size=200,
        flush_every=0.5,
        progress_every=5.0,
        clock=time.monotonic,
        sleep=time.sleep,
        now=None,
    ):
        self.client, self.out = client, out
        self.batch_size, self.flush_every, self.progress_every = (
            batch_size,
            flush_every,
            progress_every,
        )
        self.clock, self.sleep = clock, sleep
        self.now = now or (lambda: datetime.now(UTC))
        self.stats = Stats(started=clock())
        self.batch = []
        self._batch_since = None
        self._last_progress = self.stats.started
        self._orders = set()
        self._shown_rejections = 0

    def run(self, events, *, fast=False, duration=0):
        """Send events as they fall due (or at once if fast) until done, duration or Ctrl-C."""
        deadline = self.clock() + duration if duration else math.inf
        try:
            for due, event in events:
                if not fast and not self._wait_until(due, deadline):
                    break
                if self.clock() >= deadline:
                    break
                self._add(event)
                self._tick()
        except KeyboardInterrupt:
            self.out("interrupted: sending what is buffered, then stopping")
        try:
            self.flush()
        except KeyboardInterrupt:
            self.stats.dropped += len(self.batch)
        return self.stats

    def _add(self, event):
        if not self.batch:
            self._batch_since = self.clock()
        self.batch.append(event)

    def _wait_until(self, due, deadline):
        """Sleep until due, flushing and reporting meanwhile; False if the deadline came first."""
        while True:
            remaining = (due - self.now()).total_seconds()
            if remaining <= 0:
                return True
            if self.clock() >= deadline:
                return False
            self._tick()
            step = min(remaining, self.flush_every, max(deadline - self.clock(), 0))
            self.sleep(max(step, 0.001))

    def _tick(self):
        """Flush a full or old batch, and print progress when it is time."""
        now = self.clock()
        if self.batch and (
            len(self.batch) >= self.batch_size or now - self._batch_since >= self.flush_every
        ):
            self.flush()
        if now - self._last_progress >= self.progress_every:
            self._last_progress = now
            self.out(self.stats.line(self.clock()))

    def flush(self):
        """Post the buffered events and count the API's answer."""
        if not self.batch:
            return
        batch, self.batch = self.batch, []
        answer = self.client.post(batch)
        if answer is None:
            self.stats.dropped += len(batch)
            return
        rejected = answer.get("rejected") or []
        self.stats.sent += len(batch)
        self.stats.accepted += answer.get("accepted", 0)
        self.stats.duplicates += answer.get("duplicates", 0)
        self.stats.rejected += len(rejected)
        self._orders.update(
            e["correlation_id"]
            for e in batch
            if e["flow"] == "order_release" and e["step"] == "released"
        )
        self.stats.orders = len(self._orders)
        for item in rejected[: max(0, 5 - self._shown_rejections)]:
            self._shown_rejections += 1
            self.out(f"rejected {item.get('event_id')}: {item.get('errors')}")
