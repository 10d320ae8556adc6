"""The simulated plant: products, lines, number ranges, fault shares and the journey records."""

from dataclasses import dataclass, field
from typing import NamedTuple


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
    "quality_hold": ("never_released", "propagation_lost", "release_lost", *DELIVERY_FAULTS),
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
