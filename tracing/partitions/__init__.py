"""Range partitions of the trace events by receive time (PostgreSQL only; SQLite stays one table).

One partition per period (`EVENT_PARTITION`: a UTC day, ISO week or calendar month), named by
its first day (`tracing_traceevent_p20261203`), plus a default partition that catches what no
period partition covers, so an insert never fails when beat is late. Beat creates partitions
ahead (`ensure.py`); retention drops the ones whose whole range has expired (`expiry.py`).
The unique guarantee on event_id lives in the event ledger (see `EventLedger`).
"""
