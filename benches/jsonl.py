"""Reads the JSON-lines output of the bench binaries and the Python peer scripts: one object
per line starting with '{'; other lines (log output) are skipped."""
import json


def load(path):
    """The JSON objects of the lines of `path` that start with '{', in file order."""
    rows = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("{"):
                rows.append(json.loads(line))
    return rows
