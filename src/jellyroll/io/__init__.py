"""File formats at the edges of jellyroll: raw scans, volumes, results and provenance."""
