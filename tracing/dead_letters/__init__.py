"""Dead letters as captured failed hops: capture at ingest, direct reports, fingerprints,
superseded marking."""
