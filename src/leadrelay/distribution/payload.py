"""What a buyer is sent and how its answer is read: the lead's values, a field map applied
to them, and the small JSON paths (`$.a.b[0]`) of response rules and bids."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from leadrelay.core.money import money_decimal
from leadrelay.distribution.buyers import MACRO_RE
from leadrelay.leads.models import Lead


def lead_values(lead: Lead, price_minor: int, currency: str, ping_id: str = "") -> dict[str, str]:
    values = {k: "" if v is None else str(v) for k, v in lead.fields.items()}
    values.update(
        ping_id=ping_id,
        lead_id="" if lead.pk is None else str(lead.pk),
        offer_id=str(lead.offer_id),
        price=money_decimal(price_minor, currency),
        country=str(lead.fields.get("country", "")),
        **{f"sub{i}": getattr(lead, f"sub{i}") for i in range(1, 6)},
    )
    return values


def mapped_fields(field_map: Mapping[str, str], values: Mapping[str, str]) -> dict[str, str]:
    return {
        name: MACRO_RE.sub(lambda m: values.get(m.group(1), ""), template)
        for name, template in field_map.items()
    }


_PATH_TOKEN_RE = re.compile(r"\.([A-Za-z0-9_-]+)|\[(\d+)\]")


def json_path_get(document: Any, path: str) -> Any:
    """`$.a.b[0]` → document["a"]["b"][0]; None when any step is missing."""
    node = document
    for name, index in _PATH_TOKEN_RE.findall(path[1:]):
        if name and isinstance(node, dict):
            node = node.get(name)
        elif index and isinstance(node, list) and int(index) < len(node):
            node = node[int(index)]
        else:
            return None
    return node
