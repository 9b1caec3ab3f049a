"""Helpers shared by the console's browser tests."""


def resize(driver, width, height):
    """Makes the page's viewport exactly `width` x `height` CSS pixels (a phone below 600)."""
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600})
