from typing import Any

from django import template

from leadrelay.core.money import bp_format, money_format

register = template.Library()


@register.filter
def money(amount_minor: int | None, currency: str) -> str:
    if amount_minor is None:
        return "–"
    return money_format(amount_minor, currency)


@register.filter
def percent_bp(bp: int | None) -> str:
    return bp_format(bp)


@register.filter
def get_item(mapping: dict[Any, Any], key: Any) -> object:
    return mapping.get(key)
