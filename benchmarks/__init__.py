"""Speed measurements of jellyroll against their anchors (``make bench``)."""
