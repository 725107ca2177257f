"""Report rollups at scale, on PostgreSQL only:

    .venv/bin/python bench/reports.py [--scale 1.0] [--keep]

`--scale 1` is the issue's dataset: 10 million clicks and 500 thousand leads over
90 days, from 36 offers of 12 advertisers run by 300 affiliates (about 1,350
affiliate x offer links, traffic skewed so a few affiliates send most of it).
The database is `leadrelay_bench_reports` on 127.0.0.1 (`--database-url`),
dropped, created and migrated here, and dropped again at the end unless
`--keep`; never the developers' database. Printed:

(c) the load: organizations, offers, links and ledger accounts through the
    services; raw rows (clicks; leads: 60% approved, 7% pending, 18% rejected
    with reasons, 10% duplicate, 5% returned; a ledger sale for each approved or
    returned lead, and a reversal for each returned one) by INSERT ... SELECT from
    generate_series in the server, with triggers off and the click table's plain
    indexes dropped for the load and built afterwards. Then the rollups:
    `rollups_rebuild()` when there are at most `--python-rebuild-max` clicks (it
    holds every cell in memory: its time, cell count and peak RSS), and
    `rollups_fill_sql`, the same cells computed by one INSERT ... SELECT in the
    server (the rollup table's plain indexes dropped meanwhile and built after) and
    the day cells by `rollups.days_fill` (checked equal to `rollups_rebuild()`'s
    whenever both run), above that;
    `rollup_problems()` up to `--check-max` clicks (both default 200k: about 2k cells/s
    and 0.7 KiB of memory a cell for the rebuild, 4-6 cells a click);
(d) table sizes (pg_total_relation_size) and row counts, raw tables and rollups;
(a) `report_table` for the last 30 days by day x offer x affiliate, from the
    rollups, for the network, the busiest advertiser and the busiest affiliate
    (by day x offer: affiliates can't group by affiliate): p50/p95 over `--runs`
    runs (target <= 200 ms), in UTC and in New York's days, in a process prepared
    as the server's (core/startup.py), and EXPLAIN ANALYZE of the network's statement;
(b) rollup upkeep as a share of ingest: clicks through `tracking.buffer.clicks_write`
    in batches of 500 and leads through `leads.services.lead_intake` (auto-approved
    CPL: the ledger posting included), each batch or lead alternately with the
    rollup calls and with them replaced by no-ops (module attributes patched for
    those calls only), so drift on a shared machine falls on both alike. Clicks come
    in time order, 500 a batch, as the click buffer writes what a process served.
    Share = (with - without) / with (target <= 10%).

Written by hand: the data generator is this project's schema; no library makes it.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import random
import resource
import shlex
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/leadrelay_bench_reports"
CLICKS = 10_000_000
LEADS = 500_000
DAYS = 90
ADVERTISERS = 12
OFFERS_PER_ADVERTISER = 3
AFFILIATES = 300
TARGET_MS = 200.0
TARGET_SHARE = 0.10
CHUNK = 1_000_000  # rows per INSERT ... SELECT statement

COUNTRIES = ["US"] * 70 + ["CA"] * 8 + ["GB"] * 7 + ["AU"] * 5 + ["DE"] * 3 + ["MX"] * 3
COUNTRIES += ["IN"] * 2 + [""] * 2
DEVICES = ["desktop"] * 45 + ["mobile"] * 50 + ["tablet"] * 5
SOURCES = ["search"] * 30 + ["social"] * 25 + ["native"] * 15 + ["email"] * 10
SOURCES += ["push"] * 10 + ["display"] * 10
# UTC hours weighted like US traffic: quiet 07-12 UTC, busiest 14-03 UTC.
HOURS = [h for h in range(24) for _ in range(1 if 7 <= h <= 12 else 3 if 4 <= h <= 13 else 6)]
REASONS = ["bad_phone", "bad_email", "not_qualified", "out_of_area", "fraud_score",
           "suppressed", "over_cap", "missing_consent"]  # fmt: skip
USER_AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Chrome/131.0 Mobile Safari",
    "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
]


def _say(text: str) -> None:
    print(text, flush=True)


@contextlib.contextmanager
def _timed(label: str, out: dict[str, float] | None = None) -> Iterator[None]:
    started = time.perf_counter()
    yield
    seconds = time.perf_counter() - started
    if out is not None:
        out[label] = seconds
    _say(f"  {label}: {seconds:.1f} s")


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# ---------------------------------------------------------------------------- the database


def database_prepare(url: str) -> None:
    """Drop and create the bench database, point Django at it and migrate."""
    import psycopg

    name = url.rsplit("/", 1)[1]
    admin = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "leadrelay.settings")
    os.environ.setdefault("LEADRELAY_DATA_DIR", "/tmp/leadrelay-bench-reports")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


def database_drop(url: str) -> None:
    import psycopg
    from django.db import connection

    connection.close()
    name = url.rsplit("/", 1)[1]
    admin = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _sql(statement: str, params: Any = None) -> list[tuple[Any, ...]]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.fetchall() if cursor.description else []


# ---------------------------------------------------------------------------- the world


class World:
    """Organizations, offers and links, and how traffic is spread over the links."""

    def __init__(self) -> None:
        self.network: Any = None
        self.advertisers: list[Any] = []
        self.affiliates: list[Any] = []
        self.offers: list[Any] = []
        self.links: list[Any] = []
        self.weights: list[float] = []  # of each link: its share of traffic
        self.start = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0)
        self.end = self.start  # the dataset's last instant (exclusive)
        self.start -= dt.timedelta(days=DAYS)

    def link_table(self, size: int = 20_000) -> list[int]:
        """Link indexes repeated by weight: a uniform pick from it follows the traffic."""
        total = sum(self.weights)
        table = []
        for i, w in enumerate(self.weights):
            table += [i] * max(1, round(w / total * size))
        return table


def world_create(rng: random.Random) -> World:
    from leadrelay.accounts.services import organization_create
    from leadrelay.demo import CONTACT
    from leadrelay.ledger.models import AccountRole
    from leadrelay.ledger.services import account_for, network_organization
    from leadrelay.offers.services import offer_create
    from leadrelay.tracking.services import tracking_link_create

    world = World()
    world.network = network_organization()
    for a in range(ADVERTISERS):
        advertiser = organization_create(name=f"Bench Advertiser {a + 1:02d}", kind="advertiser")
        world.advertisers.append(advertiser)
        for o in range(OFFERS_PER_ADVERTISER):
            revenue = rng.choice([1500, 2000, 2500, 3000, 4500, 6000])
            world.offers.append(
                offer_create(
                    advertiser=advertiser,
                    name=f"Bench Offer {a + 1:02d}-{o + 1}",
                    revenue_minor=revenue,
                    payout_minor=revenue * rng.choice([60, 65, 70, 75]) // 100,
                    landing_url="https://lp.example.com/bench?cid={click_id}",
                    status="active",
                    visibility="public",
                    review_mode="auto_approve",
                    fields=CONTACT,
                )
            )
    offer_weight = {
        o.pk: 1 / (i + 1) ** 0.8 for i, o in enumerate(rng.sample(world.offers, len(world.offers)))
    }
    for f in range(AFFILIATES):
        affiliate = organization_create(name=f"Bench Affiliate {f + 1:03d}", kind="affiliate")
        world.affiliates.append(affiliate)
        weight = 1 / (f + 1) ** 1.1  # a few affiliates send most of the traffic
        for offer in rng.sample(world.offers, rng.randint(3, 6)):
            world.links.append(tracking_link_create(offer=offer, affiliate=affiliate))
            world.weights.append(weight * offer_weight[offer.pk])
    # Ledger accounts, made once through the service; the SQL load posts to them.
    _sql("CREATE TABLE bench_account (org_id bigint PRIMARY KEY, account_id bigint NOT NULL)")
    accounts = [
        (org.pk, account_for(organization=org, role=role, currency="USD").pk)
        for orgs, role in (
            (world.advertisers, AccountRole.ADVERTISER_RECEIVABLE),
            (world.affiliates, AccountRole.AFFILIATE_PAYABLE),
            ([world.network], AccountRole.NETWORK_REVENUE),
        )
        for org in orgs
    ]
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.executemany("INSERT INTO bench_account VALUES (%s, %s)", accounts)
    return world


# ---------------------------------------------------------------------------- the raw rows


def _arrays(world: World) -> dict[str, Any]:
    table = world.link_table()
    links = [world.links[i] for i in table]
    offers = {o.pk: o for o in world.offers}
    return {
        "n": len(table),
        "link": [link.pk for link in links],
        "offer": [link.offer_id for link in links],
        "aff": [link.affiliate_id for link in links],
        "adv": [offers[link.offer_id].advertiser_id for link in links],
        "rev": [offers[link.offer_id].revenue_minor for link in links],
        "pay": [offers[link.offer_id].payout_minor for link in links],
        "countries": COUNTRIES,
        "devices": DEVICES,
        "sources": SOURCES,
        "hours": HOURS,
        "uas": USER_AGENTS,
        "reasons": REASONS,
        "start": world.start,
        "end": world.end,
        "days": DAYS,
    }


# Per row: which link (so offer and affiliate), when, and the breakdown values. The random
# numbers are drawn in the inner SELECT, one per use, so each is drawn once per row.
_DRAW = """
    SELECT g, 1 + floor(random() * %(n)s)::int AS k,
        %(start)s::timestamptz + floor(random() * %(days)s) * interval '1 day'
            + (%(hours)s::int[])[1 + floor(random() * cardinality(%(hours)s::int[]))::int]
              * interval '1 hour'
            + random() * interval '1 hour' AS at,
        (%(countries)s::text[])[1 + floor(random() * cardinality(%(countries)s::text[]))::int]
            AS country,
        1 + floor(random() * cardinality(%(devices)s::text[]))::int AS dk,
        (%(sources)s::text[])[1 + floor(random() * cardinality(%(sources)s::text[]))::int]
            AS sub1,
        'cmp' || floor(random() * 10)::int AS sub2,
        'cr' || floor(random() * 40)::int AS sub3,
        CASE WHEN random() < 0.2 THEN 'pl' || floor(random() * 500)::int ELSE '' END AS sub4,
        random() AS r1, random() AS r2
    FROM generate_series(%(lo)s::bigint, %(hi)s::bigint) g
"""

_CLICKS = f"""
INSERT INTO tracking_click (click_id, created_at, ip, user_agent, referer, sub1, sub2, sub3,
    sub4, sub5, affiliate_id, offer_id, link_id, browser, country, device, ip_ua_hash, is_bot,
    is_unique, os, params, visitor_id, fallback, fallback_from_id, landing_variant_id, refusal)
SELECT md5(g::text) || to_hex(g), at, '198.18.0.0'::inet + (g %% 131072),
    (%(uas)s::text[])[1 + (dk %% 4)], '', sub1, sub2, sub3, sub4, '',
    p.aff, p.offer, p.link,
    'Chrome', country, (%(devices)s::text[])[dk], left(md5('h' || (g %% 3000000)), 32),
    r1 < 0.02, r1 >= 0.02 AND r2 < 0.8, 'Windows', '{{}}', md5('v' || (g %% 4000000)),
    CASE WHEN r2 > 0.995 THEN 'url' ELSE '' END, NULL, NULL, ''
FROM ({_DRAW}) d JOIN bench_pick p ON p.k = d.k
"""

_LEADS = f"""
INSERT INTO leads_lead (click_id, sub1, sub2, sub3, sub4, sub5, source, fields,
    email_normalized, phone_e164, status, reasons, ip, user_agent, currency, revenue_minor,
    payout_minor, created_at, decided_at, affiliate_id, duplicate_of_id, link_id, offer_id,
    signals, fraud_score, visitor_id, consent_at, consent_page_url, jornaya_leadid,
    trustedform_cert_url, consent_text_id, payable_at, released_at, payout_basis,
    payout_line_id, return_reason, returned_at, ping_quote_minor, country, device,
    landing_variant_id)
SELECT md5(g::text) || to_hex(g), sub1, sub2, sub3, sub4, '',
    CASE WHEN r2 < 0.4 THEN 'api' ELSE 'form' END,
    jsonb_build_object('first_name', 'Bench', 'last_name', 'Lead' || g,
        'email', 'lead' || g || '@example.com',
        'phone', '+1415' || lpad((g %% 10000000)::text, 7, '0'), 'zip', '94103'),
    'lead' || g || '@example.com', '+1415' || lpad((g %% 10000000)::text, 7, '0'), st,
    CASE st WHEN 'rejected' THEN
            CASE WHEN r2 < 0.3 THEN jsonb_build_array((%(reasons)s::text[])[1 + (g %% 8)],
                                                      (%(reasons)s::text[])[1 + ((g / 8) %% 8)])
                 ELSE jsonb_build_array((%(reasons)s::text[])[1 + (g %% 8)]) END
        WHEN 'duplicate' THEN '["duplicate"]'::jsonb ELSE '[]'::jsonb END,
    '198.18.0.0'::inet + (g %% 131072), (%(uas)s::text[])[1 + (dk %% 4)], 'USD',
    CASE WHEN st IN ('approved', 'returned') THEN p.rev ELSE 0 END,
    CASE WHEN st IN ('approved', 'returned') THEN p.pay ELSE 0 END,
    at, CASE WHEN st = 'pending_review' THEN NULL ELSE at + interval '2 seconds' END,
    p.aff, NULL, p.link, p.offer,
    '[]', 0, '', NULL, '', '', '', NULL, NULL, NULL, '', NULL,
    CASE WHEN st = 'returned' THEN 'bad_phone' ELSE '' END,
    CASE WHEN st = 'returned' THEN least(at + interval '1 day', %(end)s::timestamptz) END,
    NULL, country,
    (%(devices)s::text[])[dk], NULL
FROM (SELECT *, CASE WHEN r1 < 0.60 THEN 'approved' WHEN r1 < 0.67 THEN 'pending_review'
                     WHEN r1 < 0.85 THEN 'rejected' WHEN r1 < 0.95 THEN 'duplicate'
                     ELSE 'returned' END AS st
      FROM ({_DRAW}) d0) d JOIN bench_pick p ON p.k = d.k
"""

# A sale for each approved or returned lead, as `lead_approval_post` books it (advertiser
# owes the revenue, the affiliate earns the payout, the network keeps the rest), and a
# reversal of it for each returned lead, as `transaction_reverse` books it.
_SALES = """
INSERT INTO ledger_transaction (external_id, kind, memo, posted_at, lead_id, reverses_id,
    created_by_id, affiliate_id, offer_id, quantity)
SELECT 'lead:' || id || ':approved', 'lead_approved', 'Lead ' || id || ' approved', decided_at,
    id, NULL, NULL, affiliate_id, offer_id, 1
FROM leads_lead WHERE status IN ('approved', 'returned') AND id BETWEEN %(lo)s AND %(hi)s
"""
_REVERSALS = """
INSERT INTO ledger_transaction (external_id, kind, memo, posted_at, lead_id, reverses_id,
    created_by_id, affiliate_id, offer_id, quantity)
SELECT t.external_id || ':reversal', 'reversal', 'Reverses ' || t.external_id, l.returned_at,
    l.id, t.id, NULL, t.affiliate_id, t.offer_id, 1
FROM leads_lead l JOIN ledger_transaction t ON t.lead_id = l.id AND t.kind = 'lead_approved'
WHERE l.status = 'returned' AND l.id BETWEEN %(lo)s AND %(hi)s
"""
_ENTRIES = """
INSERT INTO ledger_entry (amount_minor, currency, account_id, transaction_id)
SELECT sign * amount, 'USD', account_id, tid FROM (
    SELECT t.id AS tid, CASE WHEN t.kind = 'reversal' THEN -1 ELSE 1 END AS sign,
           l.revenue_minor AS rev, l.payout_minor AS pay, o.advertiser_id, l.affiliate_id
    FROM ledger_transaction t JOIN leads_lead l ON l.id = t.lead_id
    JOIN offers_offer o ON o.id = l.offer_id
    WHERE l.id BETWEEN %(lo)s AND %(hi)s
) s CROSS JOIN LATERAL (VALUES
    (rev, (SELECT account_id FROM bench_account WHERE org_id = s.advertiser_id)),
    (-pay, (SELECT account_id FROM bench_account WHERE org_id = s.affiliate_id)),
    (pay - rev, (SELECT account_id FROM bench_account WHERE org_id = %(network)s))
) e(amount, account_id)
"""


def raw_rows_load(world: World, clicks: int, leads: int, timings: dict[str, float]) -> None:
    """Clicks, leads and their ledger postings, generated in the server, a chunk a statement."""
    from django.db import connection

    params = _arrays(world)
    # The links by weight as a table: a join is cheap where a big array subscript per row
    # (a detoasted copy of the array each time) is not.
    _sql("CREATE TABLE bench_pick (k int PRIMARY KEY, link bigint, offer bigint, aff bigint, "
         "rev bigint, pay bigint)")  # fmt: skip
    _sql(
        "INSERT INTO bench_pick SELECT * FROM unnest(%(k)s::int[], %(link)s::bigint[], "
        "%(offer)s::bigint[], %(aff)s::bigint[], %(rev)s::bigint[], %(pay)s::bigint[])",
        {**params, "k": list(range(1, params["n"] + 1))},
    )
    _sql("ANALYZE bench_pick")
    _sql("SET session_replication_role = replica")  # no FK or ledger triggers: rows are ours
    _sql("SET synchronous_commit = off")
    # Plain indexes of the click table go while it loads and come back after, built once
    # each (the primary key and the click id's unique constraint stay).
    indexes = _sql(
        "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.tablename = 'tracking_click' "
        "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)"
    )
    for name, _ in indexes:
        _sql(f'DROP INDEX "{name}"')
    try:
        started = time.perf_counter()
        for lo in range(1, clicks + 1, CHUNK):
            _sql("SELECT setseed(%s)", [((lo // CHUNK) % 1000) / 1000])
            _sql(_CLICKS, {**params, "lo": lo, "hi": min(clicks, lo + CHUNK - 1)})
            done = min(clicks, lo + CHUNK - 1)
            rate = done / (time.perf_counter() - started)
            _say(f"  clicks: {done:,} ({rate:,.0f}/s)")
        _sql("SET maintenance_work_mem = '1GB'")
        for _, definition in indexes:
            _sql(definition)
        timings["clicks"] = time.perf_counter() - started
        _say(f"  clicks with their {len(indexes)} indexes rebuilt: {timings['clicks']:.1f} s")
        started = time.perf_counter()
        _sql("SELECT setseed(0.5)")
        first = (_sql("SELECT coalesce(max(id), 0) FROM leads_lead")[0][0] or 0) + 1
        _sql(_LEADS, {**params, "lo": 1, "hi": leads})
        last = _sql("SELECT max(id) FROM leads_lead")[0][0]
        timings["leads"] = time.perf_counter() - started
        _say(f"  leads: {leads:,} in {timings['leads']:.1f} s")
        started = time.perf_counter()
        span = {"lo": first, "hi": last, "network": world.network.pk}
        _sql(_SALES, span)
        _sql(_REVERSALS, span)
        _sql(_ENTRIES, span)
        timings["ledger"] = time.perf_counter() - started
        _say(f"  ledger transactions and entries: {timings['ledger']:.1f} s")
    finally:
        _sql("SET session_replication_role = origin")
        _sql("SET synchronous_commit = on")
    with _timed("VACUUM ANALYZE", timings), connection.cursor() as cursor:
        for table in ("tracking_click", "leads_lead", "ledger_transaction", "ledger_entry"):
            cursor.execute(f"VACUUM ANALYZE {table}")


# ---------------------------------------------------------------------------- the rollups

_COLUMNS = ("clicks", "unique_clicks", "leads", "approved", "rejected", "duplicate", "pending",
            "returned", "revenue_minor", "payout_minor")  # fmt: skip
_KEYS = "hour, offer_id, affiliate_id, dim, value, currency"


def _dims(alias: str) -> str:
    """The whole and each breakdown value of a click or lead row, as (dim, value) rows."""
    subs = ", ".join(f"('sub{i}', {alias}.sub{i})" for i in range(1, 6))
    return (
        f"(VALUES ('', ''), {subs}, ('country', {alias}.country), ('device', {alias}.device), "
        f"('variant', coalesce({alias}.landing_variant_id::text, ''))) d(dim, value)"
    )


def _row(**given: str) -> str:
    return ", ".join(given.get(c, "0") + f" AS {c}" for c in _COLUMNS)


_STATUS_COUNT = (
    "CASE l.status WHEN 'pending_review' THEN 'pending' WHEN 'approved' THEN 'approved' "
    "WHEN 'rejected' THEN 'rejected' WHEN 'duplicate' THEN 'duplicate' ELSE 'returned' END"
)
_CLICK_ROW = _row(clicks="count(*)", unique_clicks="count(*) FILTER (WHERE c.is_unique)")
_LEAD_ROW = _row(
    leads="count(*)",
    approved="count(*) FILTER (WHERE l.status = 'approved')",
    rejected="count(*) FILTER (WHERE l.status = 'rejected')",
    duplicate="count(*) FILTER (WHERE l.status = 'duplicate')",
    pending="count(*) FILTER (WHERE l.status = 'pending_review')",
    returned="count(*) FILTER (WHERE l.status IN ('returned', 'reversed'))",
)
_REASON_ROW = _row(
    rejected="count(*) FILTER (WHERE l.status = 'rejected')",
    duplicate="count(*) FILTER (WHERE l.status = 'duplicate')",
)
_MONEY_ROW = _row(
    revenue_minor="coalesce(sum(e.amount_minor) FILTER "
    "(WHERE a.role = 'advertiser_receivable'), 0)",
    payout_minor="-coalesce(sum(e.amount_minor) FILTER (WHERE a.role IN "
    "('affiliate_payable', 'affiliate_payable_pending')), 0)",
)
_MONEY_DIMS = _dims("l").replace(" d(", " x(")
# Each source is grouped on its own first, so the outer GROUP BY adds a few rows per cell.
_FILL = f"""
INSERT INTO reporting_rollup ({_KEYS}, {", ".join(_COLUMNS)})
SELECT {_KEYS}, {", ".join(f"sum({c})" for c in _COLUMNS)} FROM (
    SELECT date_trunc('hour', c.created_at, 'UTC') AS hour, c.offer_id, c.affiliate_id,
        d.dim, left(d.value, 100) AS value, '' AS currency,
        {_CLICK_ROW}
    FROM tracking_click c CROSS JOIN LATERAL {_dims("c")}
    WHERE NOT c.is_bot AND c.fallback NOT IN ('url', 'none') AND (d.dim = '' OR d.value <> '')
    GROUP BY 1, 2, 3, 4, 5
  UNION ALL
    SELECT date_trunc('hour', l.created_at, 'UTC'), l.offer_id, coalesce(l.affiliate_id, 0),
        d.dim, left(d.value, 100), '',
        {_LEAD_ROW}
    FROM leads_lead l CROSS JOIN LATERAL {_dims("l")}
    WHERE d.dim = '' OR d.value <> ''
    GROUP BY 1, 2, 3, 4, 5
  UNION ALL
    SELECT date_trunc('hour', l.created_at, 'UTC'), l.offer_id, coalesce(l.affiliate_id, 0),
        'reason', r.code, '',
        {_REASON_ROW}
    FROM leads_lead l CROSS JOIN LATERAL (
        SELECT DISTINCT left(x, 100) AS code FROM jsonb_array_elements_text(l.reasons) x
    ) r
    WHERE l.status IN ('rejected', 'duplicate')
    GROUP BY 1, 2, 3, 4, 5
  UNION ALL
    SELECT date_trunc('hour', t.posted_at, 'UTC'), t.offer_id, coalesce(t.affiliate_id, 0),
        d.dim, left(d.value, 100), e.currency,
        {_MONEY_ROW}
    FROM ledger_entry e JOIN ledger_account a ON a.id = e.account_id
    JOIN ledger_transaction t ON t.id = e.transaction_id
    LEFT JOIN ledger_transaction rv ON rv.id = t.reverses_id
    LEFT JOIN leads_lead l ON l.id = t.lead_id
    CROSS JOIN LATERAL (
        SELECT '' AS dim, '' AS value
        UNION ALL SELECT x.dim, x.value FROM {_MONEY_DIMS}
        WHERE l.id IS NOT NULL AND x.dim <> '' AND x.value <> ''
    ) d
    WHERE t.offer_id IS NOT NULL
      AND a.role IN ('advertiser_receivable', 'affiliate_payable', 'affiliate_payable_pending')
      AND (t.kind IN ('lead_approved', 'clicks', 'conversion', 'sale')
           OR (t.kind = 'reversal'
               AND rv.kind IN ('lead_approved', 'clicks', 'conversion', 'sale')))
    GROUP BY 1, 2, 3, 4, 5, 6
) u
GROUP BY {_KEYS}
HAVING {" OR ".join(f"sum({c}) <> 0" for c in _COLUMNS)}
ORDER BY {_KEYS}  -- in key order: the unique index fills from one end
"""


def rollups_fill_sql() -> int:
    """The cells `rollups_rebuild` computes, computed in the server in one statement and the
    day cells added up from them."""
    from django.db import connection, transaction

    from leadrelay.reporting.rollups import days_fill

    indexes = _sql(
        "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.tablename = 'reporting_rollup' "
        "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)"
    )
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL work_mem = '512MB'")
        cursor.execute("SET LOCAL maintenance_work_mem = '1GB'")
        cursor.execute("LOCK TABLE reporting_rollup IN EXCLUSIVE MODE")
        cursor.execute("DELETE FROM reporting_rollup")
        for name, _ in indexes:  # built once each afterwards, not row by row
            cursor.execute(f'DROP INDEX "{name}"')
        cursor.execute(_FILL)
        days_fill()
        for _, definition in indexes:
            cursor.execute(definition)
        cursor.execute("SELECT count(*) FROM reporting_rollup")
        return int(cursor.fetchone()[0])


def _rollup_copy(name: str) -> None:
    _sql(f"DROP TABLE IF EXISTS {name}")
    _sql(f"CREATE TABLE {name} AS SELECT {_KEYS}, {', '.join(_COLUMNS)} FROM reporting_rollup")


def _rollup_diff(name: str) -> tuple[int, int]:
    cols = f"{_KEYS}, {', '.join(_COLUMNS)}"
    a = _sql(
        f"SELECT count(*) FROM (SELECT {cols} FROM reporting_rollup EXCEPT ALL "
        f"SELECT {cols} FROM {name}) x"
    )[0][0]
    b = _sql(
        f"SELECT count(*) FROM (SELECT {cols} FROM {name} EXCEPT ALL "
        f"SELECT {cols} FROM reporting_rollup) x"
    )[0][0]
    return a, b


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rollups_load(args: argparse.Namespace, clicks: int, timings: dict[str, float]) -> int:
    from leadrelay.reporting.rollups import rollup_problems, rollups_rebuild

    cells = 0
    if clicks <= args.python_rebuild_max:
        rss = _rss_mib()
        with _timed("rollups_rebuild()", timings):
            cells = rollups_rebuild()
        _say(f"  rollups_rebuild(): {cells:,} cells; peak RSS {rss:,.0f} -> {_rss_mib():,.0f} MiB")
        _rollup_copy("bench_rollup_python")
        with _timed("rollups_fill_sql()", timings):
            sql_cells = rollups_fill_sql()
        a, b = _rollup_diff("bench_rollup_python")
        same = "identical" if (a, b) == (0, 0) and sql_cells == cells else "DIFFERENT"
        _say(f"  rollups_fill_sql(): {sql_cells:,} cells, {same} to rollups_rebuild()'s "
             f"({a} only in SQL's, {b} only in rebuild's)")  # fmt: skip
        _sql("DROP TABLE bench_rollup_python")
    else:
        _say(
            f"  rollups_rebuild() skipped: {clicks:,} clicks > --python-rebuild-max "
            f"{args.python_rebuild_max:,} (it keeps every cell in a Python dict)"
        )
        with _timed("rollups_fill_sql()", timings):
            cells = rollups_fill_sql()
        _say(f"  rollups_fill_sql(): {cells:,} cells")
    _sql("VACUUM ANALYZE reporting_rollup")
    if clicks <= args.check_max:
        with _timed("rollup_problems()", timings):
            problems = rollup_problems()
        _say(f"  rollup_problems(): {len(problems)} problems {problems[:3]}")
    else:
        _say(f"  rollup_problems() skipped: {clicks:,} clicks > --check-max {args.check_max:,}")
    return cells


# ---------------------------------------------------------------------------- (d) sizes

_TABLES = ("tracking_click", "leads_lead", "ledger_transaction", "ledger_entry",
           "reporting_rollup")  # fmt: skip


def sizes_report() -> dict[str, tuple[int, int, int]]:
    out = {}
    _say("(d) sizes: rows, heap, total with indexes (pg_total_relation_size)")
    for table in _TABLES:
        rows = _sql(f"SELECT count(*) FROM {table}")[0][0]
        heap, total = _sql(
            "SELECT pg_relation_size(%s), pg_total_relation_size(%s)", [table, table]
        )[0]
        out[table] = (rows, heap, total)
        _say(f"  {table:<20}{rows:>12,} rows {heap / 2**20:>9,.0f} MiB {total / 2**20:>9,.0f} MiB")
    by_dim = _sql("SELECT dim, count(*) FROM reporting_rollup GROUP BY dim ORDER BY dim")
    _say("  rollup cells by dim: " + ", ".join(f"{d or 'whole'} {n:,}" for d, n in by_dim))
    return out


# ---------------------------------------------------------------------------- (a) reports


def report_timings(world: World, runs: int) -> list[tuple[str, float, float, int]]:

    from leadrelay.reporting.tables import TableQuery, report_table

    last_day = (world.end - dt.timedelta(seconds=1)).date()
    first_day = last_day - dt.timedelta(days=29)
    busiest = {}
    for column in ("affiliate_id", "offer_id"):
        busiest[column] = _sql(
            f"SELECT {column} FROM reporting_rollup WHERE dim = '' AND currency = '' "
            f"GROUP BY 1 ORDER BY sum(clicks) DESC LIMIT 1"
        )[0][0]
    offers = {o.pk: o for o in world.offers}
    advertiser = next(
        a for a in world.advertisers if a.pk == offers[busiest["offer_id"]].advertiser_id
    )
    affiliate = next(a for a in world.affiliates if a.pk == busiest["affiliate_id"])
    by_all = ("day", "offer", "affiliate")
    cases = [
        ("network", world.network, by_all, "UTC"),
        ("network, America/New_York", world.network, by_all, "America/New_York"),
        (f"advertiser {advertiser.pk} (busiest)", advertiser, by_all, "UTC"),
        (f"affiliate {affiliate.pk} (busiest), day x offer", affiliate, ("day", "offer"), "UTC"),
    ]
    results = []
    _say(f"(a) report_table {first_day}..{last_day} (30 days), {runs} runs each after 2 warm-ups")
    for label, org, group_by, tz in cases:
        query = TableQuery(start=first_day, end=last_day, group_by=group_by, tz=tz)
        times = []
        for i in range(runs + 2):
            started = time.perf_counter()
            table = report_table(organization=org, query=query)
            if i >= 2:
                times.append((time.perf_counter() - started) * 1000)
        p50, p95 = statistics.median(times), _pct(times, 0.95)
        verdict = "PASS" if p95 <= TARGET_MS else "MISS"
        _say(
            f"  {label:<42} p50 {p50:7.1f} ms  p95 {p95:7.1f} ms  {verdict}  "
            f"({len(table.rows):,} rows shown, truncated {table.truncated}, "
            f"{table.totals.clicks:,} clicks, {table.totals.leads:,} leads)"
        )
        results.append((label, p50, p95, len(table.rows)))
    return results


def report_explain(world: World) -> None:
    """EXPLAIN ANALYZE of the statement that reads the network's 30-day report (its rows,
    totals and group count; reporting/tables.py `_whole_read`), as the report sends it."""
    from django.db import connection, transaction

    from leadrelay.reporting.tables import TableQuery, report_table

    last_day = (world.end - dt.timedelta(seconds=1)).date()
    query = TableQuery(last_day - dt.timedelta(days=29), last_day, ("day", "offer", "affiliate"))
    sent: list[tuple[str, Any]] = []

    def keep(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        sent.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(keep):
        report_table(organization=world.network, query=query)
    sql, params = next((q, p) for q, p in sent if q.startswith("WITH m0"))
    settings = [q for q, _ in sent if q.startswith("SET LOCAL")]
    with transaction.atomic(), connection.cursor() as cursor:
        for setting in settings:
            cursor.execute(setting)
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
        plan = [row[0] for row in cursor.fetchall()]
    _say("  EXPLAIN ANALYZE, the network report's statement (rows, totals, groups):")
    for line in plan:
        if "Filter: ((" not in line:  # the long any-column-not-zero filters
            _say("    " + line)


# ---------------------------------------------------------------------------- (b) ingest


@contextlib.contextmanager
def _patched(pairs: list[tuple[Any, str]], enabled: bool) -> Iterator[None]:
    """Replace the writers' rollup calls by no-ops for the duration (enabled=False)."""
    if enabled:
        yield
        return
    saved = [(module, name, getattr(module, name)) for module, name in pairs]
    for module, name in pairs:
        setattr(module, name, lambda *a, **k: None)
    try:
        yield
    finally:
        for module, name, value in saved:
            setattr(module, name, value)


def _sample_clicks(world: World, rng: random.Random, n: int, at: dt.datetime) -> list[Any]:
    from leadrelay.core.clickid import click_id_issue
    from leadrelay.tracking.models import Click

    table = world.link_table()
    out = []
    for i in range(n):
        link = world.links[rng.choice(table)]
        when = at + dt.timedelta(seconds=rng.uniform(0, 6 * 3600))
        identity = click_id_issue(
            link_id=link.pk, offer_id=link.offer_id, affiliate_id=link.affiliate_id, at=when
        )
        device = rng.choice(DEVICES)
        out.append(
            Click(
                click_id=identity.click_id,
                link_id=link.pk,
                offer_id=link.offer_id,
                affiliate_id=link.affiliate_id,
                created_at=identity.issued_at,
                ip=f"198.19.{(i >> 8) % 256}.{i % 256}",
                user_agent=USER_AGENTS[DEVICES.index(device) % 4],
                visitor_id=f"{rng.getrandbits(128):032x}",
                ip_ua_hash=f"{rng.getrandbits(128):032x}" if rng.random() < 0.9 else "",
                country=rng.choice(COUNTRIES),
                device=device,
                os="Windows",
                browser="Chrome",
                is_bot=rng.random() < 0.02,
                sub1=rng.choice(SOURCES),
                sub2=f"cmp{rng.randrange(10)}",
                sub3=f"cr{rng.randrange(40)}",
                sub4=f"pl{rng.randrange(500)}" if rng.random() < 0.2 else "",
            )
        )
    return sorted(out, key=lambda c: c.created_at)


def ingest_clicks(world: World, rng: random.Random, n: int) -> dict[str, float]:
    """Seconds a click through clicks_write: with the rollups ("current") and without them
    ("none"), batch by batch in turn."""
    from leadrelay.tracking import buffer

    # Live traffic: the last 6 hours of the dataset, so cells exist and are added to; in
    # time order, as the buffer writes it.
    clicks = _sample_clicks(world, rng, n, world.end - dt.timedelta(hours=6))
    batches = [clicks[i : i + buffer.CHUNK] for i in range(0, len(clicks), buffer.CHUNK)]
    modes = ["current", "none"]
    spent = dict.fromkeys(modes, 0.0)
    count = dict.fromkeys(modes, 0)
    for i, batch in enumerate(batches):
        mode = modes[(i + i // 2) % 2]  # each mode first in turn
        with _patched([(buffer, "clicks_counted")], mode == "current"):
            started = time.perf_counter()
            buffer.clicks_write(batch)
            spent[mode] += time.perf_counter() - started
        count[mode] += len(batch)
    return {mode: spent[mode] / count[mode] for mode in modes}


def ingest_leads(world: World, rng: random.Random, n: int) -> tuple[float, float, int]:
    from leadrelay.core.clickid import click_id_issue
    from leadrelay.core.errors import DomainError
    from leadrelay.leads import services
    from leadrelay.leads.models import LeadSource
    from leadrelay.ledger import services as ledger

    table = world.link_table()
    area = ["415", "212", "312", "512", "206", "305", "303", "617", "404", "602"]
    spent = {True: 0.0, False: 0.0}
    count = {True: 0, False: 0}
    refused = 0
    targets = [(services, "lead_counted"), (ledger, "money_posted")]
    for i in range(n):
        link = world.links[rng.choice(table)]
        at = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=3)  # a visitor fills a form
        click = click_id_issue(
            link_id=link.pk, offer_id=link.offer_id, affiliate_id=link.affiliate_id, at=at
        )
        fields = {
            "first_name": "Bench",
            "last_name": f"Lead{i}",
            "email": f"ingest{i}.{rng.getrandbits(32):x}@example.com",
            "phone": f"+1{rng.choice(area)}{rng.randint(200, 999)}{rng.randint(1000, 9999)}",
            "zip": "94103",
        }
        with_rollups = (i % 2 == 0) == ((i // 2) % 2 == 0)
        with _patched(targets, with_rollups):
            started = time.perf_counter()
            try:
                services.lead_intake(
                    offer_id=link.offer_id,
                    fields=fields,
                    source=LeadSource.API,
                    click_id=click.click_id,
                    origin=services.LeadOrigin(
                        ip=f"198.19.{i % 256}.{(i >> 8) % 256}", user_agent=USER_AGENTS[0]
                    ),
                )
            except DomainError:
                refused += 1
                continue
            spent[with_rollups] += time.perf_counter() - started
        count[with_rollups] += 1
    if refused:
        _say(f"  ({refused} sample leads refused at validation, not counted)")
    return spent[True] / count[True], spent[False] / count[False], count[True] + count[False]


def ingest_report(world: World, args: argparse.Namespace, rng: random.Random) -> dict[str, float]:
    clicks = args.sample_clicks or max(10_000, round(200_000 * args.scale))
    leads = args.sample_leads or max(500, round(5_000 * args.scale))
    _say(
        f"(b) ingest through the writers, modes alternating: {clicks:,} clicks (batches of 500 "
        f"in time order, half with the rollups, half without), {leads:,} leads (the same)"
    )
    per_click = ingest_clicks(world, rng, clicks)
    c_with, c_without = per_click["current"], per_click["none"]
    l_with, l_without, l_n = ingest_leads(world, rng, leads)
    out = {}
    for label, w, wo, n, unit in (
        ("clicks_write", c_with, c_without, clicks, "a click"),
        ("lead_intake", l_with, l_without, l_n, "a lead"),
    ):
        share = (w - wo) / w
        out[label] = share
        verdict = "PASS" if share <= TARGET_SHARE else "MISS"
        _say(
            f"  {label:<13} with rollups {w * 1e6:8.0f} us {unit}, without {wo * 1e6:8.0f} us; "
            f"upkeep {share:6.1%} of ingest  {verdict}  ({n:,} in all)"
        )
    # The dataset's mix: 20 clicks a lead.
    w = 20 * c_with + l_with
    wo = 20 * c_without + l_without
    out["mix"] = (w - wo) / w
    verdict = "PASS" if out["mix"] <= TARGET_SHARE else "MISS"
    _say(f"  20 clicks + 1 lead (the dataset's mix): with {w * 1e3:.2f} ms, without "
         f"{wo * 1e3:.2f} ms; upkeep {out['mix']:.1%}  {verdict}")  # fmt: skip
    return out


# ---------------------------------------------------------------------------- the run


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scale", type=float, default=1.0, help="1.0: 10M clicks, 500k leads")
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--runs", type=int, default=30, help="report_table runs per case")
    parser.add_argument("--sample-clicks", type=int, default=0, help="default 200k x scale")
    parser.add_argument("--sample-leads", type=int, default=0, help="default 5k x scale")
    parser.add_argument("--python-rebuild-max", type=int, default=200_000,
                        help="run rollups_rebuild() up to this many clicks")  # fmt: skip
    parser.add_argument("--check-max", type=int, default=200_000,
                        help="run rollup_problems() up to this many clicks")  # fmt: skip
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument("--skip-ingest", action="store_true")
    args = parser.parse_args()
    if not args.database_url.startswith(("postgres://", "postgresql://")):
        parser.error("PostgreSQL only: rollups at this scale are a PostgreSQL question; "
                     "SQLite is the embedded default, not measured here")  # fmt: skip
    if os.environ.get("DATABASE_URL", "").startswith("sqlite"):
        _say("(DATABASE_URL is SQLite: ignored, the bench uses --database-url)")
    clicks, leads = round(CLICKS * args.scale), round(LEADS * args.scale)
    _say("command: " + " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv]))
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    _say(f"machine: {os.cpu_count()} cores, {mem:.0f} GiB, shared with other agents; "
         f"load average at start {load}")  # fmt: skip
    _say(f"dataset: {clicks:,} clicks, {leads:,} leads over {DAYS} days; {ADVERTISERS} "
         f"advertisers x {OFFERS_PER_ADVERTISER} offers, {AFFILIATES} affiliates")  # fmt: skip
    started = time.perf_counter()
    timings: dict[str, float] = {}
    database_prepare(args.database_url)
    from leadrelay.core.startup import serving_process_ready

    serving_process_ready()  # as the server's WSGI entry does: reports timed as it runs them
    try:
        rng = random.Random(7)
        _say("(c) load")
        with _timed("world (services)", timings):
            world = world_create(rng)
        _say(f"  {len(world.links):,} links; window {world.start:%Y-%m-%d %H:%M} .. "
             f"{world.end:%Y-%m-%d %H:%M} UTC")  # fmt: skip
        raw_rows_load(world, clicks, leads, timings)
        from django.db import connection

        server = _sql("SHOW server_version")[0][0]
        _say(f"  PostgreSQL {server}, shared_buffers {_sql('SHOW shared_buffers')[0][0]}, "
             f"work_mem {_sql('SHOW work_mem')[0][0]}")  # fmt: skip
        rollups_load(args, clicks, timings)
        sizes_report()
        report_timings(world, args.runs)
        report_explain(world)
        if not args.skip_ingest:
            ingest_report(world, args, rng)
        connection.close()
        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
        _say(f"done in {time.perf_counter() - started:.0f} s; load average at the end {load}")
    finally:
        if not args.keep:
            database_drop(args.database_url)


if __name__ == "__main__":
    main()
