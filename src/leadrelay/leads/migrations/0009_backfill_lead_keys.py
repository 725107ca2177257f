"""Index the leads stored before LeadKey existed, so dedupe still sees them."""

from typing import Any

from django.db import migrations

from leadrelay.leads.dedupe import value_digest


def backfill(apps: Any, schema_editor: Any) -> None:
    Lead = apps.get_model("leads", "Lead")
    LeadKey = apps.get_model("leads", "LeadKey")
    OfferField = apps.get_model("offers", "OfferField")
    keyed: dict[int, list[tuple[str, str]]] = {}
    for offer_id, key, kind in OfferField.objects.filter(type__in=["email", "phone"]).values_list(
        "offer_id", "key", "type"
    ):
        keyed.setdefault(offer_id, []).append((key, kind))
    batch = []
    for lead in Lead.objects.select_related("offer").iterator(chunk_size=2000):
        for key, kind in keyed.get(lead.offer_id, []):
            value = (lead.fields or {}).get(key)
            if value in (None, ""):
                continue
            text = str(value).strip()
            batch.append(
                LeadKey(
                    lead_id=lead.pk,
                    offer_id=lead.offer_id,
                    advertiser_id=lead.offer.advertiser_id,
                    name=key,
                    digest=value_digest(text.lower() if kind == "email" else text),
                    created_at=lead.created_at,
                )
            )
        if len(batch) >= 2000:
            LeadKey.objects.bulk_create(batch)
            batch = []
    LeadKey.objects.bulk_create(batch)


class Migration(migrations.Migration):
    dependencies = [("leads", "0008_leadkey_suppressionentry")]

    operations = [migrations.RunPython(backfill, migrations.RunPython.noop)]
