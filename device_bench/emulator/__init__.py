"""An emulated Android device that speaks the real ADB wire protocol on 127.0.0.1.

It exists so that the harness's real transports (adb-shell's TCP transport and the stock
`adb` client) can be exercised end to end on machines with no phone: in tests, in CI and
in the no-phone demo. See docs/architecture.md (section "emulator") for its layers.
"""

from __future__ import annotations
