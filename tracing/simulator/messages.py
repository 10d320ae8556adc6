"""What each system sends at each hop of a flow: payloads shaped like the plant's real messages
(IDocs, MES confirmations, WMS transfers), with the faults a flow may carry."""

from tracing.simulator.scenarios import (
    CARRIERS,
    CHARACTERISTICS,
    COMPONENTS,
    SCRAP_SHARE,
    SLOW_ACK_SHARE,
    Tx,
)


class FlowMessages:
    """The per-flow steps of a journey; mixed into `Simulator`, whose clock, random source and
    helpers (`_post`, `_emit`, `_fault`, `_hop`…) they use."""

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
        posted = self._post(tx, t, fault, "ERP", "MES", payload, error=error)
        if posted is not None:  # WMS books the stock out too: consumption fans out to both
            tx.hop(posted + self._hop(self.rng.uniform(2, 30)), "posted", "WMS", "MES")
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
            if target == "WMS" and fault == "propagation_lost":
                continue  # middleware dropped it: a reconciliation exception after 15 min
            tx.hop(t + self._hop(rng.uniform(5, 60)), "hold_propagated", "MW", target, attrs=attrs)
        if fault == "never_released":
            self._emit(tx, fault)
            return None
        t += self._plant(rng.uniform(1800, 6 * 3600))
        scrapped = rng.random() < SCRAP_SHARE
        decision = "scrapped" if scrapped else "released"
        tx.hop(t, decision, "QMS", "ERP", attrs={"usage_decision": "R" if scrapped else "A"})
        if fault != "release_lost":  # else WMS keeps the lot blocked: an agreement rule fires
            tx.hop(t + self._hop(rng.uniform(5, 60)), decision, "MW", "WMS")
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
