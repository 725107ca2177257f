"""CSV cells: every one quoted, a formula defused at the start of a cell and after every
separator a spreadsheet may split a cell at, our numbers written as they are."""

from decimal import Decimal

import pytest

from leadrelay.core.csvexport import csv_cell, csv_text


def test_the_exact_bytes_of_a_file_with_formulas_after_separators():
    text = csv_text(
        ["sub1", "amount"],
        [
            ["q;=1+13;", -1250],
            ["a,=b", Decimal("-7.00")],
            ["x\t@y", 0],
            ["-1", None],
            ['say "hi"', True],
        ],
    )
    assert text == (
        '"sub1","amount"\r\n'
        '"q;\'=1+13;","-1250"\r\n'
        '"a,\'=b","-7.00"\r\n'
        '"x\t\'@y","0"\r\n'
        '"\'-1",""\r\n'
        '"say ""hi""","true"\r\n'
    )


@pytest.mark.parametrize(
    ("text", "cell"),
    [
        ("=1+1", "'=1+1"),
        ("+1", "'+1"),
        ("-1", "'-1"),  # text, not our number
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t1+1", "'\t1+1"),
        ("\r1+1", "'\r1+1"),
        ("\n1+1", "'\n1+1"),
        ("  =1+1", "  '=1+1"),  # a spreadsheet may trim the spaces
        ("\t=1", "'\t'=1"),
        ("q;=1+13;", "q;'=1+13;"),  # `q`, `=1+13` where `;` is the list separator
        ("a, =b", "a, '=b"),
        ("a|+b", "a|'+b"),
        ("a;=b;=c", "a;'=b;'=c"),
        ("a;;-b", "a;;'-b"),
        ("line\n=cmd", "line\n'=cmd"),  # a reader that ignores quotes starts a row there
        ("a\r\n@b", "a\r\n'@b"),
        # Left alone: no formula begins a piece.
        ("Smith - Jones", "Smith - Jones"),
        ("a=b", "a=b"),
        ("ann@example.com", "ann@example.com"),
        ("2026-03-01", "2026-03-01"),
        ("a;b,c|d", "a;b,c|d"),
        ("plain", "plain"),
        ("", ""),
    ],
)
def test_a_formula_is_defused_wherever_a_piece_begins(text, cell):
    assert csv_cell(text) == cell


def test_our_numbers_are_written_as_they_are():
    assert csv_cell(-5) == "-5"
    assert csv_cell(Decimal("-7.00")) == "-7.00"
    assert csv_cell(Decimal("0.50")) == "0.50"
    assert (csv_cell(True), csv_cell(False), csv_cell(None)) == ("true", "false", "")
    assert csv_cell("-5") == "'-5"  # a str is text, whoever wrote it
