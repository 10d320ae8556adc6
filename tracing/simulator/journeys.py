"""Production-order journeys across ERP, MES, WMS and QMS as canonical trace events, with
injected faults."""

import heapq
import itertools
import math
import random
import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from tracing.simulator.scenarios import (
    CARRIERS,
    CHARACTERISTICS,
    COMPONENTS,
    DELIVERY_FAULTS,
    FAULTS,
    HOLD_SHARE,
    LINES,
    MOVEMENT_SHARE,
    NUMBER_RANGES,
    ORDER_SIZES,
    PRODUCTS,
    REPOST_SHARE,
    SCRAP_SHARE,
    SLOW_ACK_SHARE,
    SYSTEM_SERVICES,
    Hop,
    Order,
    Tx,
)


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
