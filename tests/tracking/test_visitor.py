import pytest

from leadrelay.tracking.geo import country_for_ip
from leadrelay.tracking.visitor import device_for
from tests.tracking.test_clicks import GEOIP, GOOGLEBOT, IPHONE

IPAD = (
    "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/16.6 Mobile/15E148 Safari/604.1"
)
ANDROID_PHONE = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Mobile Safari/537.36"
)
MAC = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.1 Safari/605.1.15"
)


@pytest.mark.parametrize(
    ("agent", "kind", "os", "bot"),
    [
        (IPHONE, "mobile", "iOS", False),
        (IPAD, "tablet", "iOS", False),
        (ANDROID_PHONE, "mobile", "Android", False),
        (MAC, "desktop", "Mac OS X", False),
        (GOOGLEBOT, "bot", "", True),
        ("curl/8.5.0", "bot", "", True),
        ("", "unknown", "", False),
    ],
)
def test_devices(agent, kind, os, bot) -> None:
    device = device_for(agent)
    assert (device.kind, device.os, device.is_bot) == (kind, os, bot)


def test_countries_from_the_offline_database(settings) -> None:
    settings.LEADRELAY_GEOIP_DB = GEOIP
    assert country_for_ip("203.0.113.5") == "US"
    assert country_for_ip("198.51.100.7") == "IT"
    assert country_for_ip("2001:db8:2::9") == "IT"
    assert country_for_ip("8.8.8.8") == ""
    assert country_for_ip("not an ip") == ""
    assert country_for_ip(None) == ""


def test_without_a_database_countries_are_unknown(settings) -> None:
    settings.LEADRELAY_GEOIP_DB = ""
    assert country_for_ip("203.0.113.5") == ""
