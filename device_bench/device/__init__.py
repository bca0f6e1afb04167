"""The device room: the Device protocol, adb-shell and stock-adb transports, adb servers, keys,
the per-device lock and the pure parsers of device output.
"""
