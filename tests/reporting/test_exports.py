"""CSV and XLSX exports of report tables: the page's columns for the role, the numbers of
report_table, users' text escaped against formulas, safe file names."""

import csv
import datetime as dt
import io
import re
import zipfile
from decimal import Decimal
from xml.etree import ElementTree

import pytest

from leadrelay.core.money import money_decimal
from leadrelay.reporting.exports import (
    Grid,
    GridRow,
    report_columns,
    report_csv,
    report_xlsx,
)
from leadrelay.reporting.tables import TableQuery, Visibility, report_table
from tests.conftest import logged_in
from tests.reporting.test_report_pages import EVIL_OFFER, PERIOD, traffic  # noqa: F401

MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
QUERY = TableQuery(dt.date(2026, 3, 1), dt.date(2026, 3, 10), ("offer", "affiliate"))


def _export(organization, extension, **params):
    response = logged_in(organization).get(
        f"/portal/reports/export.{extension}", {**PERIOD, **params}
    )
    assert response.status_code == 200, response.content
    return response


def _csv(organization, **params):
    return list(csv.reader(io.StringIO(_export(organization, "csv", **params).content.decode())))


def _xlsx(organization, **params):
    return _xlsx_cells(_export(organization, "xlsx", **params).content)


def _xlsx_cells(content):
    """The sheet's cells as text, read from the XML (no spreadsheet library needed), and
    the sheet XML itself."""
    book = zipfile.ZipFile(io.BytesIO(content))
    shared = [
        "".join(t.text or "" for t in si.iter(f"{MAIN}t"))
        for si in ElementTree.fromstring(book.read("xl/sharedStrings.xml")).iter(f"{MAIN}si")
    ]
    sheet_xml = book.read("xl/worksheets/sheet1.xml").decode()
    rows = []
    for row in ElementTree.fromstring(sheet_xml).iter(f"{MAIN}row"):
        cells: dict[int, str] = {}
        for c in row.iter(f"{MAIN}c"):
            column = _column_index(re.match(r"[A-Z]+", c.get("r")).group())
            value = c.find(f"{MAIN}v").text
            cells[column] = shared[int(value)] if c.get("t") == "s" else value
        rows.append([cells.get(i, "") for i in range(max(cells) + 1)])
    return rows, sheet_xml


def _column_index(letters):
    n = 0
    for letter in letters:
        n = n * 26 + ord(letter) - 64
    return n - 1


def _same_number(a, b):
    if a == b:
        return True
    try:
        return Decimal(a) == Decimal(b)
    except ArithmeticError:
        return False


@pytest.mark.usefixtures("traffic")
def test_the_networks_csv_holds_report_tables_numbers(network):
    rows = _csv(network, group_by=["offer", "affiliate"])
    assert rows[0] == [
        "Offer", "Affiliate", "Currency", "Clicks", "Unique clicks", "Leads", "Approved",
        "Rejected", "Duplicates", "Pending", "Returned", "Conversion rate (%)",
        "Approval rate (%)", "Return rate (%)", "Revenue", "Payout", "Profit", "Margin (%)",
        "ROI (%)", "EPC", "CPL",
    ]  # fmt: skip
    assert rows[1] == [
        "'" + EVIL_OFFER, "Good Traffic", "USD", "2", "2", "2", "1", "1", "1", "0", "0",
        "100.00", "50.00", "0.00", "25.00", "18.00", "7.00", "28.00", "38.89", "9.00", "25.00",
    ]  # fmt: skip
    table = report_table(organization=network, query=QUERY)
    assert len(rows) == 1 + len(table.rows) + 2
    for line, metric in zip(rows[1:], [*table.rows, table.totals, table.previous], strict=True):
        usd = metric.money["USD"]
        assert line[3:11] == [
            str(n)
            for n in (metric.clicks, metric.unique_clicks, metric.leads, metric.approved,
                      metric.rejected, metric.duplicates, metric.pending, metric.returned)
        ]  # fmt: skip
        assert line[14:17] == [
            money_decimal(m, "USD") for m in (usd.revenue_minor, usd.payout_minor, usd.profit_minor)
        ]
    assert rows[-2][:3] == ["Total", "", "USD"]
    assert rows[-2][5:8] == ["4", "3", "1"]
    assert rows[-1][:3] == ["Previous period (2026-02-19 – 2026-02-28)", "", "USD"]


@pytest.mark.usefixtures("traffic")
def test_xlsx_has_the_same_cells_as_csv(network):
    params = {"group_by": ["day", "offer", "sub1"]}
    from_csv = _csv(network, **params)
    from_xlsx, sheet = _xlsx(network, **params)
    assert len(from_xlsx) == len(from_csv) == 6  # header, three rows, total, previous
    assert [r[2] for r in from_csv[1:4]] == ["(none)", "'+1", "(none)"]
    for a, b in zip(from_csv, from_xlsx, strict=True):
        assert len(a) == len(b) or a[len(b) :] == [""] * (len(a) - len(b))
        assert all(_same_number(x, y) for x, y in zip(a, b, strict=False)), (a, b)
    assert "<f>" not in sheet  # no formula anywhere


@pytest.mark.usefixtures("traffic")
def test_users_text_that_looks_like_a_formula_is_escaped_in_both(network):
    for group, value in (("sub1", "+1"), ("sub2", "@SUM(A1)")):
        params = {"group_by": ["offer", group]}
        rows = _csv(network, **params)
        labels = {tuple(r[:2]) for r in rows[1:]}
        assert ("'" + EVIL_OFFER, "'" + value) in labels
        cells, sheet = _xlsx(network, **params)
        assert ("'" + EVIL_OFFER, "'" + value) in {tuple(r[:2]) for r in cells[1:]}
        assert "<f>" not in sheet
    raw = _export(network, "csv", group_by="offer").content.decode()
    assert '"\'=HYPERLINK(""http://x"")"' in raw


def test_every_cell_is_quoted_and_a_formula_after_a_separator_is_defused():
    visibility = Visibility(revenue=True, payout=True, groups=())
    columns = [c for c in report_columns(visibility, "network") if c.key in {"leads", "profit"}]
    grid = Grid(
        group_titles=["Sub1"],
        columns=columns,
        currency="USD",
        rows=[
            GridRow(["q;=1+13;"], [2, -700]),
            GridRow(["a,=b"], [1, 1250]),
            GridRow(["x\t@y"], [0, None]),
            GridRow(["-1"], [1, 0]),
        ],
        total=GridRow(["Total"], [4, 550]),
        previous=GridRow(["Previous period (2026-02-19 – 2026-02-28)"], [0, None]),
        changes=[None, None],
        previous_start=dt.date(2026, 2, 19),
        previous_end=dt.date(2026, 2, 28),
    )
    assert report_csv(grid) == (
        '"Sub1","Currency","Leads","Profit"\r\n'
        '"q;\'=1+13;","USD","2","-7.00"\r\n'
        '"a,\'=b","USD","1","12.50"\r\n'
        '"x\t\'@y","USD","0",""\r\n'
        '"\'-1","USD","1","0.00"\r\n'
        '"Total","USD","4","5.50"\r\n'
        '"Previous period (2026-02-19 – 2026-02-28)","USD","0",""\r\n'
    )
    cells, sheet = _xlsx_cells(report_xlsx(grid))
    assert [row[0] for row in cells[1:5]] == ["q;'=1+13;", "a,'=b", "x\t'@y", "'-1"]
    assert [row[3] for row in cells[1:3]] == ["-7", "12.5"]  # numbers, not text
    assert "<f>" not in sheet


@pytest.mark.usefixtures("traffic")
def test_an_advertisers_export_has_no_payout_and_no_sub_ids(advertiser):
    rows = _csv(advertiser, group_by=["offer", "affiliate"])
    assert rows[0][:3] == ["Offer", "Source", "Currency"]
    assert rows[0][14:] == ["Spend", "CPL"]
    assert {r[0] for r in rows[1:-2]} == {"'" + EVIL_OFFER}  # not the other advertiser's
    cells, _ = _xlsx(advertiser, group_by=["offer", "affiliate"])
    assert cells[0] == rows[0]
    query = {"group_by": ["day", "offer", "country"]}
    texts = [str(_csv(advertiser, **query)), str(_xlsx(advertiser, **query)[0])]
    for text in texts:
        for secret in ("+1", "@SUM", "Payout", "Good Traffic", "Theirs"):
            assert secret not in text
    refused = logged_in(advertiser).get(
        "/portal/reports/export.xlsx", {**PERIOD, "group_by": "sub2"}
    )
    assert refused.status_code == 422
    assert refused.content.decode().startswith("Not a grouping you can use: sub2")


@pytest.mark.usefixtures("traffic")
def test_an_affiliates_export_has_no_revenue(affiliate):
    rows = _csv(affiliate, group_by="offer")
    assert rows[0][:2] == ["Offer", "Currency"]
    assert rows[0][2:] == [
        "Clicks", "Unique clicks", "Leads", "Approved", "Rejected", "Duplicates", "Pending",
        "Returned", "Conversion rate (%)", "Approval rate (%)", "Return rate (%)", "Earnings",
        "EPC",
    ]  # fmt: skip
    assert rows[-2] == [
        "Total", "USD", "2", "2", "3", "2", "1", "1", "0", "0", "150.00", "66.67", "0.00",
        "48.00", "24.00",
    ]  # fmt: skip
    cells, _ = _xlsx(affiliate, group_by="offer")
    assert cells[0] == rows[0]
    assert "Revenue" not in str(cells) and "Spend" not in str(cells)


@pytest.mark.usefixtures("traffic")
def test_file_names_say_the_period_and_groupings(network):
    csv_response = _export(network, "csv", group_by=["day", "offer"])
    assert csv_response["Content-Type"] == "text/csv; charset=utf-8"
    assert csv_response["Content-Disposition"] == (
        'attachment; filename="leadrelay-report-2026-03-01-2026-03-10-day-offer.csv"'
    )
    xlsx = _export(network, "xlsx", group_by=[])
    assert xlsx["Content-Disposition"] == (
        'attachment; filename="leadrelay-report-2026-03-01-2026-03-10-totals.xlsx"'
    )
    assert xlsx.content.startswith(b"PK")
